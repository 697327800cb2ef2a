/* System calls injected into one frozen thread of a process being dumped: the process's stub
 * and scratch page (its main thread's injection context), the thread's own registers. */
#include "thread-inject.h"

struct inject_ctx *thread_inject_begin(struct dump_task *t, const struct frozen_thread *ft,
				      struct inject_ctx *own)
{
	if (ft->tid == t->pid)
		return &t->inj;
	*own = t->inj; /* the same stub and scratch page, this thread's registers */
	own->pid = ft->tid;
	own->saved = ft->regs;
	own->rests_in_signal_path = false;
	return own;
}

int thread_inject_end(struct dump_task *t, struct inject_ctx *inj)
{
	if (inj == &t->inj)
		return 0;
	inj->scratch = 0; /* the main thread's injection owns the scratch page */
	int err = inject_end(inj); /* the thread's registers as frozen, after a failure too */
	if (inj->group_stop_sig) /* a SIGSTOP came meanwhile: the process keeps it */
		t->inj.group_stop_sig = inj->group_stop_sig;
	return err;
}
