/* Signals: handlers with flags and masks, blocked mask, pending signals, the alternate stack. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
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

/*
 * Every signal's action, read in the task in one go with the alternate stack (the main
 * thread's): rt_sigaction(sig, NULL, scratch + k * 32), then sigaltstack(NULL, its answer);
 * ret[NSIG_KERNEL] is the latter's (signals_collect_thread judges it).
 */
struct sigaction_answers {
	struct kernel_sigaction ksa[NSIG_KERNEL];
	unsigned char altstack[SIGNALS_ANSWER_SIZE];
};

static int read_sigactions(struct dump_task *t, struct sigaction_answers *out, int64_t *ret)
{
	struct inject_call calls[NSIG_KERNEL + 1];
	unsigned logged = log_errors();
	int err;

	for (int k = 0; k < NSIG_KERNEL; k++)
		calls[k] = (struct inject_call){
			SYS_rt_sigaction,
			{ k + 1, 0, t->inj.scratch + offsetof(struct sigaction_answers, ksa[k]), 8 } };
	signals_ask_altstack(&calls[NSIG_KERNEL],
			     t->inj.scratch + offsetof(struct sigaction_answers, altstack));
	if ((err = inject_syscalls(&t->inj, calls, NSIG_KERNEL + 1, ret, out, sizeof(*out))))
		return log_unnamed(logged, err, "dump pid %d: rt_sigaction in the task failed", t->pid);
	for (int sig = 1; sig <= NSIG_KERNEL; sig++)
		if (ret[sig - 1] && sig != SIGKILL && sig != SIGSTOP)
			return log_unnamed(logged, inject_ret_err(ret[sig - 1]),
					   "dump pid %d: rt_sigaction(%d) in the task failed", t->pid, sig);
	return 0;
}

static int dump_sigactions(struct dump_task *t, const struct kernel_sigaction *all)
{
	TaskCore *c = t->core;

	if (!(c->sigactions = xzalloc(NSIG_KERNEL * sizeof(*c->sigactions))))
		return -ENOMEM;
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

void signals_ask_altstack(struct inject_call *call, uint64_t at)
{
	*call = (struct inject_call){ SYS_sigaltstack, { 0, at } };
}

int signals_collect_thread(pid_t tid, uint64_t *mask, struct thread_altstack *as, int64_t ret,
			   const void *answer)
{
	struct { uint64_t sp; int32_t flags; uint64_t size; } ss;

	_Static_assert(sizeof(ss) == SIGNALS_ANSWER_SIZE, "stack_t");
	if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(*mask), mask)) {
		pr_perror("dump tid %d: cannot read blocked signal mask", tid);
		return -errno;
	}
	if (ret) {
		pr_err("dump tid %d: cannot read the alternate signal stack: %s", tid,
		       strerror(-inject_ret_err(ret)));
		return inject_ret_err(ret);
	}
	memcpy(&ss, answer, sizeof(ss));
	as->sp = ss.sp;
	as->flags = ss.flags;
	as->size = ss.size;
	return 0;
}

static int dump_signals(struct dump_task *t)
{
	TaskCore *c = t->core;
	struct thread_altstack as;
	struct sigaction_answers answers;
	int64_t ret[NSIG_KERNEL + 1];
	int err;

	if ((err = read_sigactions(t, &answers, ret)) ||
	    (err = signals_collect_thread(t->pid, &c->sigmask, &as, ret[NSIG_KERNEL], answers.altstack)) ||
	    (err = dump_sigactions(t, answers.ksa)) ||
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
