/* The process tree: which processes a dump takes, and how restore recreates the shape. */
#ifndef STASIS_PSTREE_H
#define STASIS_PSTREE_H

#include "tree.h"

/* Freezes the tree under root (every process and thread), re-scanning until it is closed. */
int pstree_seize(struct dump_tree *tr, pid_t root, struct run_ctx *ctx);
/* A process of the frozen tree tracing (ptrace: strace -p, gdb -p) one outside it: refused
 * naming both (the dump ends the tracing; a restored tracer traces nothing any more). */
int pstree_refuse_tracers(const struct dump_tree *tr);
/* Lets every frozen process go on as before (in its cgroup frozen again if it was). */
void pstree_release(struct dump_tree *tr);
/*
 * Kills every frozen process (SIGKILL through a pidfd): once it returns, no process of the tree
 * runs again. pstree_wait_killed then gives their memory back at once (process_mrelease)
 * rather than as each exits, and collects each exit as their tracer.
 */
int pstree_kill(struct dump_tree *tr);
/*
 * Before pstree_kill, for a kind that must see exits one at a time: from then on the death of
 * stasis kills the tree (PTRACE_O_EXITKILL), none of it runs on; pstree_kill_one kills process
 * tasks[i] and waits until all its threads are gone (its exit done: its SEM_UNDO applied, ...).
 * pstree_kill and pstree_wait_killed leave it out.
 */
int pstree_die_with_stasis(struct dump_tree *tr);
int pstree_kill_one(struct dump_tree *tr, size_t i);
int pstree_wait_killed(struct dump_tree *tr);

/* Checks the tree entries against the task images. */
int pstree_validate(struct restore_tree *rt);
/*
 * Process pid of the tree (as the tree's PID namespace names it) as e's own namespace names it:
 * its pid there if it is in e's namespace or one below, 0 if it is outside (as getppid() and
 * getpgid() say then).
 */
pid_t pstree_pid_seen_by(const Inventory *inv, const TreeEntry *e, uint32_t pid);
/*
 * In a new process of the tree: join its session and group, then create its children with
 * their pids (each runs run_child) and its zombies.
 */
int pstree_restore_links(struct restore_tree *rt, struct restore_task *self,
			 void (*run_child)(struct restore_tree *, struct restore_task *));


#endif
