/*
 * The restore's watchdog: a small process of its own (in a session of its own, so that a
 * kill of stasis's process group spares it) that kills every restored process if stasis dies
 * before the tree is released (it watches a pidfd of stasis). Each new process of the tree hands it a pidfd of itself first
 * thing (before its parent can be gone: it dies with its parent until then), so the watchdog
 * knows every process whatever the tree has become; stasis says "done" once the tree is let
 * go (or stasis has killed a failed tree itself). What stasis made outside the tree's own
 * namespaces (a message queue's name, a SysV shm segment) is told to it too, and goes after
 * the processes.
 */
#ifndef STASIS_RESTORE_WATCHDOG_H
#define STASIS_RESTORE_WATCHDOG_H

#include <sys/types.h>

struct restore_watchdog {
	pid_t pid;
	int sock;   /* stasis's end of the watchdog's control socket: closed, it means stasis died */
	int reg_fd; /* where new processes hand their pidfds (inherited by the tree) */
};

/* Starts it (before the root is made); -errno, said. */
int watchdog_start(struct restore_watchdog *w);
/* In a new process of the tree: the watchdog gets a pidfd of it (reg_fd: w->reg_fd). */
void watchdog_register(int reg_fd);
/*
 * Made by stasis, in the IPC namespace of the calling thread: removed if stasis dies before
 * the tree is let go (w NULL or not started: nothing to do).
 */
void watchdog_undo_mqueue(const struct restore_watchdog *w, const char *name);
void watchdog_undo_sysv_shm(const struct restore_watchdog *w, int id);
void watchdog_undo_sysv_msg(const struct restore_watchdog *w, int id);
void watchdog_undo_sysv_sem(const struct restore_watchdog *w, int id);
/* A cgroup directory stasis made (path relative to the hierarchy's root hierarchy_fd): removed,
 * once empty, if stasis dies before the tree is let go. */
void watchdog_undo_cgroup(const struct restore_watchdog *w, int hierarchy_fd, const char *path);
/* The tree is released (or gone): the watchdog goes without killing anything. */
void watchdog_done(struct restore_watchdog *w);

#endif
