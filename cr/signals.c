/* Signals: handlers with flags and masks, blocked mask, pending signals, the alternate stack. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "restorer/restorer.h"
#include "task.h"

#define NSIG_KERNEL 64
#define SIGINFO_SIZE 128

struct kernel_sigaction {
	uint64_t handler, flags, restorer, mask;
};

/* Every signal's action, read in the task in one go: rt_sigaction(sig, NULL, scratch + k * 32). */
static int read_sigactions(struct dump_task *t, struct kernel_sigaction *ksa)
{
	static const uint64_t step[6] = { 1, 0, sizeof(*ksa) };
	uint64_t args[6] = { 1, 0, t->inj.scratch, 8 };
	int64_t ret[NSIG_KERNEL];
	unsigned logged = log_errors();
	int err = inject_syscall_repeat(&t->inj, SYS_rt_sigaction, args, step, NSIG_KERNEL, ret, ksa,
					NSIG_KERNEL * sizeof(*ksa));

	if (err)
		return log_unnamed(logged, err, "dump pid %d: rt_sigaction in the task failed", t->pid);
	for (int sig = 1; sig <= NSIG_KERNEL; sig++)
		if (ret[sig - 1] && sig != SIGKILL && sig != SIGSTOP)
			return log_unnamed(logged, inject_ret_err(ret[sig - 1]),
					   "dump pid %d: rt_sigaction(%d) in the task failed", t->pid, sig);
	return 0;
}

static int dump_sigactions(struct dump_task *t)
{
	TaskCore *c = t->core;
	struct kernel_sigaction all[NSIG_KERNEL];
	int err;

	if (!(c->sigactions = xzalloc(NSIG_KERNEL * sizeof(*c->sigactions))))
		return -ENOMEM;
	if ((err = read_sigactions(t, all)))
		return err;
	for (int sig = 1; sig <= NSIG_KERNEL; sig++) {
		struct kernel_sigaction ksa = all[sig - 1];

		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (ksa.handler == (uint64_t)SIG_DFL && !ksa.flags && !ksa.mask)
			continue;
		SigactionEntry *e = xzalloc(sizeof(*e));
		if (!e)
			return -ENOMEM;
		sigaction_entry__init(e);
		e->sig = sig;
		e->handler = ksa.handler;
		e->flags = ksa.flags;
		e->restorer = ksa.restorer;
		e->mask = ksa.mask;
		c->sigactions[c->n_sigactions++] = e;
	}
	return 0;
}

int signals_collect_pending(pid_t tid, bool shared, PendingSignal ***list, size_t *n)
{
	for (uint64_t off = 0;; off++) {
		struct __ptrace_peeksiginfo_args pa = {
			.off = off, .flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0, .nr = 1,
		};
		siginfo_t si;
		long got = ptrace(PTRACE_PEEKSIGINFO, tid, &pa, &si);
		if (got < 0) {
			pr_perror("dump tid %d: cannot read pending signals", tid);
			return -errno;
		}
		if (got == 0)
			return 0;
		PendingSignal *p = xzalloc(sizeof(*p)), **more;
		if (!p)
			return -ENOMEM;
		pending_signal__init(p);
		p->sig = si.si_signo;
		p->shared = shared;
		if (!(p->siginfo.data = xzalloc(SIGINFO_SIZE)) ||
		    !(more = xreallocarray(*list, *n + 1, sizeof(*more)))) {
			free(p->siginfo.data);
			free(p);
			return -ENOMEM;
		}
		p->siginfo.len = SIGINFO_SIZE;
		memcpy(p->siginfo.data, &si, SIGINFO_SIZE);
		*list = more;
		(*list)[(*n)++] = p;
	}
}

int signals_collect_thread(pid_t tid, struct inject_ctx *inj, uint64_t *mask,
			   struct thread_altstack *as)
{
	struct { uint64_t sp; int32_t flags; uint64_t size; } ss;
	uint64_t args[6] = { 0, inj->scratch };
	unsigned logged = log_errors();
	int err;

	if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(*mask), mask)) {
		pr_perror("dump tid %d: cannot read blocked signal mask", tid);
		return -errno;
	}
	if ((err = inject_syscall_out(inj, SYS_sigaltstack, args, &ss, sizeof(ss))))
		return log_unnamed(logged, err, "dump tid %d: cannot read the alternate signal stack", tid);
	as->sp = ss.sp;
	as->flags = ss.flags;
	as->size = ss.size;
	return 0;
}

static int dump_signals(struct dump_task *t)
{
	TaskCore *c = t->core;
	struct thread_altstack as;
	int err;

	if ((err = signals_collect_thread(t->pid, &t->inj, &c->sigmask, &as)) ||
	    (err = dump_sigactions(t)) ||
	    /* (an exited main thread has none of its own: t->pid's are its thread entry's) */
	    (t->pid == t->tgid && (err = signals_collect_pending(t->pid, false, &c->pending, &c->n_pending))) ||
	    (err = signals_collect_pending(t->pid, true, &c->pending, &c->n_pending)))
		return err;
	c->altstack_sp = as.sp;
	c->altstack_flags = as.flags;
	c->altstack_size = as.size;
	return 0;
}

static int validate_signals(struct restore_task *t)
{
	TaskCore *c = t->core;

	for (size_t i = 0; i < c->n_sigactions; i++) {
		uint32_t sig = c->sigactions[i]->sig;
		if (sig < 1 || sig > NSIG_KERNEL || sig == SIGKILL || sig == SIGSTOP) {
			pr_err("image core-%d.img: sigaction for invalid signal %u", t->pid, sig);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < c->n_pending; i++) {
		if (c->pending[i]->siginfo.len != SIGINFO_SIZE || c->pending[i]->sig < 1 ||
		    c->pending[i]->sig > NSIG_KERNEL) {
			pr_err("image core-%d.img: malformed pending signal %zu", t->pid, i);
			return -EINVAL;
		}
	}
	return 0;
}

/* Runs in the new task with every signal blocked; the mask is set by the tracer at the end. */
static int restore_signals(struct restore_task *t)
{
	TaskCore *c = t->core;
	pid_t self = getpid();

	/* every disposition the engine had (or inherited) goes; those saved come back */
	struct kernel_sigaction dfl = { (uint64_t)SIG_DFL, 0, 0, 0 };
	for (int sig = 1; sig <= NSIG_KERNEL; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
	for (size_t i = 0; i < c->n_sigactions; i++) {
		SigactionEntry *e = c->sigactions[i];
		struct kernel_sigaction ksa = { e->handler, e->flags, e->restorer, e->mask };
		if (syscall(SYS_rt_sigaction, e->sig, &ksa, NULL, 8)) {
			pr_perror("restore pid %d: cannot set the action of signal %u", t->pid, e->sig);
			return -errno;
		}
	}
	for (size_t i = 0; i < c->n_pending; i++) {
		PendingSignal *p = c->pending[i];
		long r = p->shared
				 ? syscall(SYS_rt_sigqueueinfo, self, p->sig, p->siginfo.data)
				 : syscall(SYS_rt_tgsigqueueinfo, self, self, p->sig, p->siginfo.data);
		if (r) {
			pr_perror("restore pid %d: cannot queue pending signal %u again", t->pid, p->sig);
			return -errno;
		}
	}
	t->args->altstack.sp = c->altstack_sp;
	t->args->altstack.flags = c->altstack_flags & ~SS_ONSTACK;
	t->args->altstack.size = c->altstack_size;
	return 0;
}

const struct state_ops state_signals = {
	.name = "signals",
	.dump = dump_signals,
	.validate = validate_signals,
	.restore = restore_signals,
};
