/* Between the parts of a restore: cr/restore.c drives, cr/restore-task.c runs in each new
 * process, cr/restore-finish.c is stasis's side once the tree exists. */
#ifndef STASIS_RESTORE_H
#define STASIS_RESTORE_H

#include "pstree.h"

/* In a new process of the tree, from clone3: never returns (jumps to the restorer or exits). */
__attribute__((noreturn)) void restore_process(struct restore_tree *rt, struct restore_task *t);

/* Serves every process's restorer until each has reported that it is done. */
int restore_collect_reports(struct restore_tree *rt, int status_fd);
/* Then, by stasis, what needs every process's state made first (state_ops.ready). */
int restore_ready_tree(struct restore_tree *rt);
/*
 * Every process prepared (blob removed, registers, kinds' finish steps): from then on the
 * tree no longer dies with stasis (until then it does: PTRACE_O_EXITKILL).
 */
int restore_finish_tree(struct restore_tree *rt);
/* Then all let go (if stasis dies meanwhile, the rest is let go by the kernel); with
 * --shell-job a resized terminal tells its foreground group (SIGWINCH). */
int restore_release_tree(struct restore_tree *rt);

#endif
