/*
 * Per-thread registrations the kernel holds on the task's behalf: the rseq area (glibc
 * registers one in every thread), the robust futex list and the clear_child_tid address.
 */
#include <errno.h>
#include "compat/kernel-abi.h"
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "restorer/restorer.h"
#include "task.h"

#ifndef PR_GET_TID_ADDRESS
#define PR_GET_TID_ADDRESS 40
#endif

struct rseq_cs_desc {
	uint32_t version, flags;
	uint64_t start_ip, post_commit_offset, abort_ip;
};

/* A task frozen inside an rseq critical section must resume at the section's abort handler. */
static void fixup_rseq_critical_section(struct dump_task *t, uint64_t rseq_addr)
{
	uint64_t cs_ptr = 0;
	struct rseq_cs_desc cs;
	uint64_t ip = t->core->regs->rip;

	if (task_mem_read(t->pid, rseq_addr + 8, &cs_ptr, sizeof(cs_ptr)) || !cs_ptr)
		return;
	if (task_mem_read(t->pid, cs_ptr, &cs, sizeof(cs)))
		return;
	if (ip >= cs.start_ip && ip < cs.start_ip + cs.post_commit_offset) {
		pr_info("dump pid %d: frozen in an rseq critical section, resuming at abort %#llx",
			t->pid, (unsigned long long)cs.abort_ip);
		t->core->regs->rip = cs.abort_ip;
	}
}

static int dump_kernel_task(struct dump_task *t)
{
	struct ptrace_rseq_configuration rc;
	uint64_t head = 0, len = 0, tid_addr = 0;
	uint64_t args[6] = { PR_GET_TID_ADDRESS, t->inj.scratch };
	int64_t ret;

	memset(&rc, 0, sizeof(rc));
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, t->pid, sizeof(rc), &rc) < 0) {
		pr_perror("dump pid %d: cannot read rseq configuration", t->pid);
		return -errno;
	}
	if (rc.rseq_abi_pointer) {
		RseqConfig *r = xzalloc(sizeof(*r));
		rseq_config__init(r);
		r->addr = rc.rseq_abi_pointer;
		r->len = rc.rseq_abi_size;
		r->flags = rc.flags;
		r->signature = rc.signature;
		t->core->rseq = r;
		fixup_rseq_critical_section(t, r->addr);
	}
	if (syscall(SYS_get_robust_list, t->pid, &head, &len)) {
		pr_perror("dump pid %d: cannot read robust futex list", t->pid);
		return -errno;
	}
	t->core->robust_list = head;
	t->core->robust_list_len = len;

	if (inject_syscall(&t->inj, SYS_prctl, args, &ret))
		return -EIO;
	if (ret == 0 && task_mem_read(t->pid, t->inj.scratch, &tid_addr, sizeof(tid_addr)) == 0)
		t->core->clear_child_tid = tid_addr;
	else
		pr_warn("dump pid %d: clear_child_tid unknown (prctl: %lld)", t->pid, (long long)ret);
	return 0;
}

static int restore_kernel_task(struct restore_task *t)
{
	struct restorer_args *a = t->args;

	if (t->core->rseq) {
		a->rseq_addr = t->core->rseq->addr;
		a->rseq_len = t->core->rseq->len;
		a->rseq_sig = t->core->rseq->signature;
	}
	a->robust_list = t->core->robust_list;
	a->robust_len = t->core->robust_list_len;
	a->clear_child_tid = t->core->clear_child_tid;
	return 0;
}

const struct state_ops state_kernel_task = {
	.name = "rseq and futex registrations",
	.dump = dump_kernel_task,
	.restore = restore_kernel_task,
};
