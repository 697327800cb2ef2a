/*
 * Per-thread registrations the kernel holds on the task's behalf: the rseq area (glibc
 * registers one in every thread), the robust futex list, the clear_child_tid address and the
 * syscall user dispatch (PR_SET_SYSCALL_USER_DISPATCH, Wine's: system calls made outside a
 * region, while a selector byte says so, raise SIGSYS instead), read and set by the tracer
 * (Linux >= 6.4). A thread whose dispatch would send the dump's own system calls to its handler
 * is refused before any runs; the restore sets it last, after every system call of its own.
 */
#include <errno.h>
#include "compat/kernel-abi.h"
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "restorer/restorer.h"
#include "task.h"
#include "util.h"

#ifndef PR_GET_TID_ADDRESS
#define PR_GET_TID_ADDRESS 40
#endif

struct rseq_cs_desc {
	uint32_t version, flags;
	uint64_t start_ip, post_commit_offset, abort_ip;
};

/* A few bytes of the thread's memory: one process_vm_readv, /proc/PID/mem if that fails. */
static int read_small(pid_t tid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };

	if (process_vm_readv(tid, &local, 1, &remote, 1, 0) == (ssize_t)len)
		return 0;
	return task_mem_read(tid, addr, buf, len);
}

/*
 * A thread frozen inside an rseq critical section must resume at the section's abort
 * handler: the IP it resumes at, given the one it was frozen at.
 */
static uint64_t rseq_resume_ip(pid_t tid, uint64_t rseq_addr, uint64_t ip)
{
	uint64_t cs_ptr = 0;
	struct rseq_cs_desc cs;

	if (read_small(tid, rseq_addr + 8, &cs_ptr, sizeof(cs_ptr)) || !cs_ptr)
		return ip;
	if (read_small(tid, cs_ptr, &cs, sizeof(cs)))
		return ip;
	if (ip < cs.start_ip || ip >= cs.start_ip + cs.post_commit_offset)
		return ip;
	pr_info("dump tid %d: frozen in an rseq critical section, resuming at abort %#llx", tid,
		(unsigned long long)cs.abort_ip);
	return cs.abort_ip;
}

static int rseq_configuration(pid_t tid, struct ptrace_rseq_configuration *rc)
{
	memset(rc, 0, sizeof(*rc));
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, sizeof(*rc), rc) < 0) {
		pr_perror("dump tid %d: cannot read rseq configuration", tid);
		return -errno;
	}
	return 0;
}

/*
 * Before the first syscall injected into the frozen thread: its return to user mode, at an IP
 * outside the section, lets the kernel clear the area's rseq_cs pointer, after which the
 * section could no longer be told and the thread would finish it as if never interrupted.
 */
int kernel_task_leave_rseq_section(pid_t tid, struct user_regs_struct *regs)
{
	struct ptrace_rseq_configuration rc;
	int err = rseq_configuration(tid, &rc);

	if (err)
		return err;
	if (rc.rseq_abi_pointer)
		regs->rip = rseq_resume_ip(tid, rc.rseq_abi_pointer, regs->rip);
	return 0;
}

int kernel_task_prepare_frozen(const struct dump_task *t, pid_t tid, struct user_regs_struct *regs)
{
	int err;

	if ((err = kernel_task_refuse_dispatch(tid, t->vdso_start, t->vdso_end)) ||
	    (err = inject_leave_stale_stub(tid, t->vdso_start, t->vdso_end, t->stop_sig, regs)))
		return err;
	return kernel_task_leave_rseq_section(tid, regs);
}

/* The thread's syscall user dispatch: c->mode 0 when off, or when this kernel cannot tell. */
static int dispatch_config(pid_t tid, struct ptrace_sud_config *c)
{
	memset(c, 0, sizeof(*c));
	if (!ptrace(PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG, tid, sizeof(*c), c))
		return 0;
	if (errno == EIO) { /* before 6.4: a program using it is not told apart */
		pr_debug("dump tid %d: this kernel does not tell syscall user dispatch", tid);
		memset(c, 0, sizeof(*c));
		return 0;
	}
	pr_perror("dump tid %d: cannot read its syscall user dispatch", tid);
	return -errno;
}

/* A system call made at ip is not dispatched whatever the selector says (either kind of region). */
static bool dispatch_region_has(const struct ptrace_sud_config *c, uint64_t ip)
{
	return ip - c->offset < c->len;
}

/*
 * Would the thread's syscall user dispatch c send the system calls stasis runs from the vDSO's
 * page to its SIGSYS handler now? *selector: what its selector says.
 */
static bool dispatch_blocks(pid_t tid, uint64_t vdso_start, uint64_t vdso_end, const struct ptrace_sud_config *c,
			    uint8_t *selector)
{
	*selector = SYSCALL_DISPATCH_FILTER_BLOCK;
	if (!c->mode)
		return false;
	if (vdso_end > vdso_start && dispatch_region_has(c, vdso_start) && dispatch_region_has(c, vdso_end - 1))
		return false;
	return !c->selector || read_small(tid, c->selector, selector, 1) ||
	       *selector != SYSCALL_DISPATCH_FILTER_ALLOW;
}

bool kernel_task_dispatch_blocks(pid_t pid, pid_t tid)
{
	struct ptrace_sud_config c;
	struct proc_vmas vmas = { 0 };
	uint64_t vdso_start = 0, vdso_end = 0;
	uint8_t selector;

	if (dispatch_config(tid, &c) || !c.mode || !c.selector) /* (without one: for ever) */
		return false;
	if (!proc_read_layout(pid, &vmas))
		proc_vdso_range(&vmas, &vdso_start, &vdso_end);
	proc_vmas_free(&vmas);
	return dispatch_blocks(tid, vdso_start, vdso_end, &c, &selector);
}

int kernel_task_refuse_dispatch(pid_t tid, uint64_t vdso_start, uint64_t vdso_end)
{
	struct ptrace_sud_config c;
	uint8_t selector;
	int err = dispatch_config(tid, &c);

	if (err || !dispatch_blocks(tid, vdso_start, vdso_end, &c, &selector))
		return err;
	pr_err("dump tid %d: its syscall user dispatch (PR_SET_SYSCALL_USER_DISPATCH) sends system calls "
	       "to its SIGSYS handler now (selector %#llx: %s), those stasis runs inside it to dump it too; "
	       "not supported (a running tree is let go a few times for its selector to allow system "
	       "calls; it did not)",
	       tid, (unsigned long long)c.selector,
	       !c.selector                                 ? "none"
	       : selector == SYSCALL_DISPATCH_FILTER_BLOCK ? "block"
							   : "unreadable or neither allow nor block");
	return -ENOTSUP;
}

void kernel_task_ask(struct inject_call *call, uint64_t at)
{
	*call = (struct inject_call){ SYS_prctl, { PR_GET_TID_ADDRESS, at } };
}

int kernel_task_collect(pid_t tid, GpRegs *regs, struct thread_kstate *ks, int64_t ret,
			const void *answer)
{
	struct ptrace_rseq_configuration rc;
	int err;

	memset(ks, 0, sizeof(*ks));
	if ((err = rseq_configuration(tid, &rc)))
		return err;
	if (rc.rseq_abi_pointer) {
		RseqConfig *r = xzalloc(sizeof(*r));
		if (!r)
			return -ENOMEM;
		rseq_config__init(r);
		r->addr = rc.rseq_abi_pointer;
		r->len = rc.rseq_abi_size;
		r->flags = rc.flags;
		r->signature = rc.signature;
		ks->rseq = r;
		regs->rip = rseq_resume_ip(tid, r->addr, regs->rip);
	}
	struct ptrace_sud_config sud;
	if ((err = dispatch_config(tid, &sud)))
		return err;
	if (sud.mode) {
		if (!(ks->sud = xzalloc(sizeof(*ks->sud))))
			return -ENOMEM;
		syscall_dispatch__init(ks->sud);
		ks->sud->selector = sud.selector;
		ks->sud->offset = sud.offset;
		ks->sud->len = sud.len;
	}
	if (syscall(SYS_get_robust_list, tid, &ks->robust_list, &ks->robust_list_len)) {
		pr_perror("dump tid %d: cannot read robust futex list", tid);
		return -errno;
	}
	if (ret)
		pr_warn("dump tid %d: clear_child_tid unknown (prctl: %s)", tid,
			strerror(-inject_ret_err(ret)));
	else
		memcpy(&ks->clear_child_tid, answer, sizeof(ks->clear_child_tid));
	return 0;
}

static int dump_kernel_task(struct dump_task *t)
{
	struct thread_kstate ks;
	struct inject_call call;
	uint64_t answer;
	int64_t ret;
	int err;

	kernel_task_ask(&call, t->inj.scratch);
	/* (a failure, the prctl's or running it, leaves clear_child_tid unknown: a warning) */
	ret = inject_syscall_out(&t->inj, call.nr, call.args, &answer, sizeof(answer));
	if ((err = kernel_task_collect(t->pid, t->core->regs, &ks, ret, &answer)))
		return err;
	if (t->pid != t->tgid) { /* an exited main thread has none: these are its standing thread's */
		if (ks.rseq)
			rseq_config__free_unpacked(ks.rseq, NULL);
		if (ks.sud)
			syscall_dispatch__free_unpacked(ks.sud, NULL);
		return 0;
	}
	t->core->rseq = ks.rseq;
	t->core->sud = ks.sud;
	t->core->robust_list = ks.robust_list;
	t->core->robust_list_len = ks.robust_list_len;
	t->core->clear_child_tid = ks.clear_child_tid;
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

/* An inclusive region (offset + len wraps around) as the kernel was given it: *offset, *len. */
static bool dispatch_inclusive(const SyscallDispatch *d, uint64_t *offset, uint64_t *len)
{
	if (!d->offset || d->offset + d->len > d->offset)
		return false;
	*len = -d->len;
	*offset = d->offset + d->len;
	return true;
}

static int validate_dispatch(const SyscallDispatch *d, pid_t pid, pid_t tid)
{
	uint64_t offset, len;

	if (!d || !dispatch_inclusive(d, &offset, &len) || (len && offset + len > offset))
		return 0;
	pr_err("image core-%d.img: thread %d's syscall user dispatch region %#llx+%#llx is not one",
	       pid, tid, (unsigned long long)d->offset, (unsigned long long)d->len);
	return -EINVAL;
}

static int validate_kernel_task(struct restore_task *t)
{
	int err = validate_dispatch(t->core->sud, t->pid, t->pid);

	for (size_t i = 0; !err && i < t->core->n_threads; i++)
		err = validate_dispatch(t->core->threads[i]->sud, t->pid, t->core->threads[i]->tid);
	return err;
}

static int set_dispatch(pid_t host_tid, const SyscallDispatch *d)
{
	struct ptrace_sud_config c = { PR_SYS_DISPATCH_ON, d->selector, d->offset, d->len };
	uint64_t offset, len;

	/* (the tracer's set takes a mode and the region as prctl does, not as its get tells it) */
	if (dispatch_inclusive(d, &offset, &len))
		c = (struct ptrace_sud_config){ PR_SYS_DISPATCH_INCLUSIVE_ON, d->selector, offset, len };
	if (ptrace(PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG, host_tid, sizeof(c), &c)) {
		pr_perror("restore tid %d: cannot set its syscall user dispatch (selector %#llx, "
			  "region %#llx+%#llx%s)", host_tid, (unsigned long long)d->selector, (unsigned long long)c.offset,
			  (unsigned long long)c.len, c.mode == PR_SYS_DISPATCH_INCLUSIVE_ON ? ", inclusive" : "");
		return -errno;
	}
	return 0;
}

int kernel_task_dispatch_restore(const struct restore_task *t)
{
	int err = 0;

	for (size_t i = 0; !err && i < t->core->n_threads; i++)
		if (t->core->threads[i]->sud)
			err = set_dispatch(t->host_tids[i], t->core->threads[i]->sud);
	if (!err && t->core->sud && !t->leader_exited)
		err = set_dispatch(t->host_pid, t->core->sud);
	return err;
}

const struct state_ops state_kernel_task = {
	.name = "rseq and futex registrations, syscall user dispatch",
	.dump = dump_kernel_task,
	.validate = validate_kernel_task,
	.restore = restore_kernel_task,
};
