#include <stdlib.h>
#include <string.h>

#include "task.h"
#include "util.h"

/* Dump order is this order; restore runs each ->restore in this order too. */
const struct state_ops *const state_table[] = {
	&state_cgroups,    /* cr/cgroups.c: first, a new process moves into its cgroups */
	&state_namespaces, /* cr/namespaces.c: to refuse a tree in namespaces not restored */
	&state_regs,    /* arch/x86_64/regs.c */
	&state_kernel_task, /* cr/kernel-task.c: rseq, robust list, tid address */
	&state_signals, /* cr/signals.c */
	&state_attrs,   /* cr/proc-attrs.c */
	&state_posix_timers, /* cr/posix-timers.c */
	&state_mm,      /* cr/mm.c */
	&state_fds,     /* cr/files/fdtable.c */
	&state_threads, /* cr/threads.c (while the scratch page for injection still exists) */
	&state_sched,   /* cr/sched.c (after threads: every thread's) */
	&state_creds,   /* cr/creds.c (after threads: their table in the blob's arguments) */
	&state_seccomp, /* cr/seccomp.c (after threads: their table in the blob's arguments) */
	&state_pages,   /* cr/pages.c (last: the task is frozen longest for it) */
};
const unsigned state_table_len = ARRAY_SIZE(state_table);

void *xzalloc(size_t size)
{
	void *p = calloc(1, size ? size : 1);
	if (!p)
		abort();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		abort();
	return p;
}
