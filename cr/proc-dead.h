/*
 * Files of /proc/PID of a process that exited and was reaped since they were opened (cr/proc-dead.c,
 * tree_proc_dead): an fd on /proc/PID/status, on the /proc/PID directory, a cwd in it.
 */
#ifndef STASIS_PROC_DEAD_H
#define STASIS_PROC_DEAD_H

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "image.h"
#include "run.h"

struct dump_task;
struct restore_tree;

/*
 * Dump: link, what /proc/PID/fd/N or /proc/PID/cwd of process t (the magic link `magic`) reads,
 * of a file whose stat is st. A file of /proc/D (D, its pid there) of a process that no longer
 * exists: D, *path the link without " (deleted)" (malloc'd), *outer whether D is a pid of
 * stasis's PID namespace (its /proc) while the tree has its own. 0: not such a file; -errno
 * (said, naming t's pid and what).
 */
int proc_dead_dump(const struct dump_task *t, const char *what, const char *link, const char *magic,
		   const struct stat *st, char **path, bool *outer);

/* Restore: fd e is a file of /proc of a reaped process of the tree's own PID namespace
 * (there only once the root is in it and proc_dead_enter_pid_ns made its process). */
bool proc_dead_in_tree_ns(const struct run_ctx *ctx, const FdEntry *e);

/* Restore, in stasis, when the root of a tree with its own PID namespace (host pid root) has
 * just entered it: the processes of the reaped pids are made in that namespace. */
int proc_dead_enter_pid_ns(struct run_ctx *ctx, pid_t root);

#endif
