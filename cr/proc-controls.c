/*
 * prctl controls that have no other home: whether the time stamp counter may be read
 * (PR_SET_TSC), the machine-check kill policy (PR_SET_MCE_KILL), memory-deny-write-execute
 * (PR_SET_MDWE), the speculation mitigations a process asked for (PR_SET_SPECULATION_CTRL:
 * store bypass, indirect branches, L1D flush), the I/O flusher flag (PR_SET_IO_FLUSHER) and KSM
 * for every mapping (PR_SET_MEMORY_MERGE), and whether CPUID traps (arch_prctl ARCH_SET_CPUID,
 * which rr and sandboxes use to show a program other CPU features). Read in the main thread at
 * dump (the I/O flusher from its task flags in /proc/PID/stat, readable without
 * CAP_SYS_RESOURCE); its other threads are made from it at restore and inherit them (CPUID
 * faulting and the TSC setting are a thread's own: threads.c asks each and the blob sets them
 * in a thread that differs). The new process sets the mitigations, the MCE policy, the flusher
 * and KSM before the blob runs; the blob sets the TSC and CPUID faulting before it makes the
 * threads, and memory-deny-write-execute once every mapping has its protection (it refuses
 * making memory executable, which the blob does). MDWE cannot be taken back: set only if saved.
 */
#include <asm/prctl.h>
#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "log.h"
#include "proc.h"
#include "restorer/restorer.h"
#include "task.h"

#define PF_IO_FLUSHER (0x00080000u | 0x00100000u) /* PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE */
#define SPEC_BITS (PR_SPEC_PRCTL | PR_SPEC_ENABLE | PR_SPEC_DISABLE | PR_SPEC_FORCE_DISABLE | PR_SPEC_DISABLE_NOEXEC)
#define NR_SPEC 3 /* PR_SPEC_STORE_BYPASS, PR_SPEC_INDIRECT_BRANCH, PR_SPEC_L1D_FLUSH */

static uint32_t *spec_field(ProcessControls *p, int which, protobuf_c_boolean **has)
{
	switch (which) {
	case PR_SPEC_STORE_BYPASS: *has = &p->has_spec_store_bypass; return &p->spec_store_bypass;
	case PR_SPEC_INDIRECT_BRANCH: *has = &p->has_spec_indirect_branch; return &p->spec_indirect_branch;
	default: *has = &p->has_spec_l1d_flush; return &p->spec_l1d_flush;
	}
}

/* What the task tells of them, asked in one list of injected syscalls (prctl answers for the
 * caller): the TSC setting through a pointer, the others returned (-EINVAL: a kernel without). */
enum { ASK_TSC, ASK_MCE_KILL, ASK_MDWE, ASK_SPEC, ASK_MEMORY_MERGE = ASK_SPEC + NR_SPEC, ASK_CPUID,
       NR_ASKS };

static int ask_controls(struct dump_task *t, int64_t ret[NR_ASKS], int32_t *tsc)
{
	struct inject_call calls[NR_ASKS] = {
		[ASK_TSC] = { SYS_prctl, { PR_GET_TSC, t->inj.scratch } },
		[ASK_MCE_KILL] = { SYS_prctl, { PR_MCE_KILL_GET } },
		[ASK_MDWE] = { SYS_prctl, { PR_GET_MDWE } },
		[ASK_MEMORY_MERGE] = { SYS_prctl, { PR_GET_MEMORY_MERGE } },
		[ASK_CPUID] = { SYS_arch_prctl, { ARCH_GET_CPUID } },
	};
	unsigned logged = log_errors();
	int err;

	for (int which = 0; which < NR_SPEC; which++)
		calls[ASK_SPEC + which] = (struct inject_call){ SYS_prctl, { PR_GET_SPECULATION_CTRL, which } };
	if ((err = inject_syscalls(&t->inj, calls, NR_ASKS, ret, tsc, sizeof(*tsc))))
		return log_unnamed(logged, err, "dump pid %d: cannot run prctl in the task", t->pid);
	if (ret[ASK_TSC]) {
		err = inject_ret_err(ret[ASK_TSC]);
		return log_unnamed(logged, err, "dump pid %d: cannot read its TSC setting", t->pid);
	}
	return 0;
}

static int dump_controls(struct dump_task *t)
{
	ProcessControls *p = xzalloc(sizeof(*p));
	struct proc_stat st;
	int64_t ret[NR_ASKS];
	int32_t tsc;
	int err;

	if (!p)
		return -ENOMEM;
	process_controls__init(p);
	t->core->controls = p;
	if ((err = ask_controls(t, ret, &tsc)))
		return err;
	p->has_tsc = true;
	p->tsc = tsc;
	if (ret[ASK_MCE_KILL] >= 0) {
		p->has_mce_kill = true;
		p->mce_kill = ret[ASK_MCE_KILL];
	}
	if (ret[ASK_MDWE] > 0) { /* (-EINVAL: a kernel without it) */
		p->has_mdwe = true;
		p->mdwe = ret[ASK_MDWE];
	}
	for (int which = 0; which < NR_SPEC; which++) {
		protobuf_c_boolean *has;
		uint32_t *val = spec_field(p, which, &has);
		int64_t r = ret[ASK_SPEC + which];
		if (r > 0 && (r & PR_SPEC_PRCTL)) { /* (else not the process's to choose) */
			*has = true;
			*val = r;
		}
	}
	if (ret[ASK_MEMORY_MERGE] > 0) {
		p->has_memory_merge = true;
		p->memory_merge = true;
	}
	p->has_cpuid_faulting = p->cpuid_faulting = ret[ASK_CPUID] == 0;
	if ((err = proc_read_stat(t->pid, &st))) {
		if (err != -ENOMEM)
			pr_err("dump pid %d: cannot read its task flags", t->pid);
		return err;
	}
	if ((st.flags & PF_IO_FLUSHER) == PF_IO_FLUSHER) {
		p->has_io_flusher = true;
		p->io_flusher = true;
	}
	return 0;
}

static int validate_controls(struct restore_task *t)
{
	ProcessControls *p = t->core->controls;

	if (!p)
		return 0;
	if (p->has_tsc && p->tsc != PR_TSC_ENABLE && p->tsc != PR_TSC_SIGSEGV) {
		pr_err("image core-%d.img: TSC setting %u is neither PR_TSC_ENABLE nor PR_TSC_SIGSEGV", t->pid, p->tsc);
		return -EINVAL;
	}
	if (p->has_mce_kill && p->mce_kill > PR_MCE_KILL_DEFAULT) {
		pr_err("image core-%d.img: machine-check kill policy %u is not 0, 1 or 2", t->pid, p->mce_kill);
		return -EINVAL;
	}
	if (p->mdwe & ~(PR_MDWE_REFUSE_EXEC_GAIN | PR_MDWE_NO_INHERIT) ||
	    (p->mdwe && !(p->mdwe & PR_MDWE_REFUSE_EXEC_GAIN))) {
		pr_err("image core-%d.img: memory-deny-write-execute flags %#x are not the kernel's", t->pid, p->mdwe);
		return -EINVAL;
	}
	for (int which = 0; which < NR_SPEC; which++) {
		protobuf_c_boolean *has;
		uint32_t val = *spec_field(p, which, &has);
		if (*has && ((val & ~SPEC_BITS) || !(val & PR_SPEC_PRCTL))) {
			pr_err("image core-%d.img: speculation control %d: %#x is not a state prctl can set",
			       t->pid, which, val);
			return -EINVAL;
		}
	}
	return 0;
}

/* The PR_SET_SPECULATION_CTRL argument that gives state val (as PR_GET_SPECULATION_CTRL says). */
static unsigned long spec_ctrl_of(uint32_t val)
{
	return val & PR_SPEC_FORCE_DISABLE    ? PR_SPEC_FORCE_DISABLE
	       : val & PR_SPEC_DISABLE_NOEXEC ? PR_SPEC_DISABLE_NOEXEC
	       : val & PR_SPEC_DISABLE	      ? PR_SPEC_DISABLE
					      : PR_SPEC_ENABLE;
}

/* In the new task: what differs from what it inherited from stasis (unchanged: no privilege needed). */
static int restore_controls(struct restore_task *t)
{
	ProcessControls *p = t->core->controls;
	int tsc = 0;

	if (!p)
		return 0;
	if (p->has_mce_kill && prctl(PR_MCE_KILL_GET, 0, 0, 0, 0) != (int)p->mce_kill &&
	    (p->mce_kill == PR_MCE_KILL_DEFAULT ? prctl(PR_MCE_KILL, PR_MCE_KILL_CLEAR, 0, 0, 0)
						: prctl(PR_MCE_KILL, PR_MCE_KILL_SET, p->mce_kill, 0, 0))) {
		pr_perror("restore pid %d: cannot set its machine-check kill policy to %u", t->pid, p->mce_kill);
		return -errno;
	}
	for (int which = 0; which < NR_SPEC; which++) {
		protobuf_c_boolean *has;
		uint32_t val = *spec_field(p, which, &has);
		if (!*has || prctl(PR_GET_SPECULATION_CTRL, which, 0, 0, 0) == (int)val)
			continue;
		if (prctl(PR_SET_SPECULATION_CTRL, which, spec_ctrl_of(val), 0, 0)) {
			pr_perror("restore pid %d: cannot set its speculation control %d to %#x", t->pid, which, val);
			return -errno;
		}
	}
	if (p->io_flusher && prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0)) {
		pr_perror("restore pid %d: cannot make it an I/O flusher (stasis needs CAP_SYS_RESOURCE)", t->pid);
		return -errno;
	}
	if (p->memory_merge && prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0)) {
		pr_perror("restore pid %d: cannot turn KSM on for all its memory (stasis needs CAP_SYS_RESOURCE)",
			  t->pid);
		return -errno;
	}
	if (p->has_tsc && (prctl(PR_GET_TSC, &tsc, 0, 0, 0) || tsc != (int)p->tsc))
		t->args->tsc = p->tsc;
	t->args->mdwe = p->mdwe;
	t->args->cpuid_faulting = p->cpuid_faulting;
	return 0;
}

/* CPUID faulting needs the CPU's (Intel's since Ivy Bridge): asking for it on is refused
 * (ENODEV) without, asking for it off, which stasis is, tells the same at no cost. */
static int check_cpuid_faulting(struct restore_task *t)
{
	ProcessControls *p = t->core->controls;
	bool wanted = p && p->cpuid_faulting;

	for (size_t i = 0; !wanted && i < t->core->n_threads; i++)
		wanted = t->core->threads[i]->cpuid_faulting;
	if (wanted && syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1)) {
		pr_perror("restore pid %d: it has CPUID faulting on (arch_prctl ARCH_SET_CPUID), "
			  "which this machine cannot give",
			  t->pid);
		return -ENODEV;
	}
	return 0;
}

const struct state_ops state_controls = {
	.name = "prctl controls (TSC, machine-check kill, MDWE, speculation, I/O flusher, KSM, CPUID)",
	.dump = dump_controls,
	.validate = validate_controls,
	.check = check_cpuid_faulting,
	.restore = restore_controls,
};
