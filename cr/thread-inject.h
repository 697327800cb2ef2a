/* System calls injected into one frozen thread of a process being dumped (cr/thread-inject.c). */
#ifndef STASIS_THREAD_INJECT_H
#define STASIS_THREAD_INJECT_H

#include "seize.h"
#include "task.h"

/*
 * Syscalls injected into frozen thread ft of t (cr/seize.h): own becomes a context of t's stub
 * and scratch page with ft's registers; for the thread standing for the process, t->inj itself.
 * thread_inject_end puts the thread's registers back (t->inj: left to the process's end).
 */
struct inject_ctx *thread_inject_begin(struct dump_task *t, const struct frozen_thread *ft,
				      struct inject_ctx *own);
int thread_inject_end(struct dump_task *t, struct inject_ctx *inj);

#endif
