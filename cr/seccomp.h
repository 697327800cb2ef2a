/* seccomp around the engine's own work inside the tree's tasks (cr/seccomp.c). */
#ifndef STASIS_SECCOMP_H
#define STASIS_SECCOMP_H

#include "pstree.h"
#include "task.h"

/*
 * Dump, the whole tree frozen, before any system call is run inside t: every thread of t
 * under seccomp gets PTRACE_O_SUSPEND_SECCOMP, so that its filter (or strict mode) neither
 * blocks those calls nor kills the task for them. The suspension ends with the detach.
 */
int seccomp_suspend_for_dump(struct dump_task *t);

/*
 * Restore, when t's blob reports RST_STEP_SECCOMP_READY (every thread exists, none has its
 * filters yet): stasis attaches to every thread of t with seccomp suspended, for everything
 * the blob and stasis do after the filters are in place. t->traced is set.
 */
int seccomp_suspend_for_restore(struct restore_tree *rt, struct restore_task *t);

#endif
