/* The tree's PID namespace (cr/pid-ns.c, tree_pid_ns): pids as the images keep them. */
#ifndef STASIS_PID_NS_H
#define STASIS_PID_NS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "run.h"

struct dump_tree;
struct restore_tree;
struct restore_task;

/* Dump, once the tree is collected; restore, once the images are checked: the tree's pids are
 * those of a PID namespace other than stasis's, the tree's own (its root is pid 1 there) or the
 * engine's (pid_ns_is_engines). */
bool pid_ns_is_own(const struct run_ctx *ctx);

/* Dump: the pid the images keep for host process host (its pid in the tree's namespace;
 * 0: not in the tree). */
uint32_t pid_ns_vpid(const struct run_ctx *ctx, pid_t host);
/*
 * Dump, a tree with a PID namespace of its own: fn(buf, len) run by a process of that
 * namespace (a child of stasis's copy: stasis's fds, a pid of the namespace for a moment), for
 * what the kernel tells in its caller's namespace; its answer in buf. fn's error, or -errno.
 */
int pid_ns_run_in_tree(const struct run_ctx *ctx, int (*fn)(void *buf, size_t len), void *buf, size_t len);
/* Dump: the same for thread tid of process pid. */
int pid_ns_vtid(const struct run_ctx *ctx, pid_t pid, pid_t tid, uint32_t *vtid);
/* Dump, the tree seized: a process of the PID namespace whose init the tree's root is that is
 * not the tree's (an engine's exec into the container: a health check, a shell): its host pid;
 * 0 when there is none, or the root is not the init of a PID namespace. */
pid_t pid_ns_stranger(const struct dump_tree *tr);

/*
 * Restore, in stasis: t->host_pid, the host's pid of new process t, and its state letter
 * ('Z' a zombie...); -ESRCH if it does not exist (yet, or any more), -ENOMEM.
 */
int pid_ns_find_host(const struct run_ctx *ctx, const struct restore_tree *rt, struct restore_task *t,
		     char *state);
/*
 * Restore, in stasis, once the tree exists: the host's pid of the process the tree's namespace
 * calls vpid (vpid itself when the tree is in stasis's own namespace; 0 if the tree has no
 * such process; -ENOMEM).
 */
pid_t pid_ns_host_of(const struct run_ctx *ctx, struct restore_tree *rt, uint32_t vpid);
/* Restore, in stasis, once t's threads exist: t->host_tids, one per thread of its core. */
int pid_ns_host_tids(const struct run_ctx *ctx, struct restore_task *t);

/* Restore: the tree's PID namespace is the engine's (pid_ns_is_own is true too: its pids are
 * that namespace's), not made: the root is made there, and is not its init. */
bool pid_ns_is_engines(const struct run_ctx *ctx);
/* Restore, around the making of the root: stasis's main thread makes its children in the
 * engine's namespace (nothing to do if the tree's is not the engine's); -errno, said. */
int pid_ns_enter_engines(const struct run_ctx *ctx);
void pid_ns_leave_engines(const struct run_ctx *ctx);
/* A failed restore: every process below host_root (the root too) killed, the tree being in the
 * engine's namespace (the root's death does not end it); nothing otherwise. */
void pid_ns_kill_engines_tree(const struct run_ctx *ctx, pid_t host_root);

#endif
