/*
 * The cgroup freezer at dump (--freeze-cgroup PATH, what LXC and runc pass): the whole
 * container is frozen at once, so that no process of it can fork while the tree is seized.
 */
#ifndef STASIS_FREEZER_H
#define STASIS_FREEZER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A process of stasis's that thaws the cgroup (or, for a paused one, freezes it again) if
 * stasis dies while it holds the cgroup's threads. */
struct freezer_guardian {
	pid_t pid; /* 0: none */
	int fd;    /* the pipe's write end */
};

/* Threads seized while their cgroup was frozen. */
struct freezer_catch {
	pid_t *tids;
	bool *claimed;
	int *stop_sigs; /* freezer_hold_unclaimed: the signal each stopped with (-1: not stopped) */
	size_t n;
	bool was_frozen; /* frozen before the dump (an engine's pause): frozen again after it */
	struct freezer_guardian paused; /* was_frozen: until freezer_refreeze_caught */
};

/*
 * Freezes the cgroup at path (v1: freezer.state; v2: cgroup.freeze and cgroup.events), waiting
 * up to timeout_s seconds (0: 10) for it to be frozen; seizes every thread in it and below with
 * ptrace, an interrupt pending (a thread stopped by a signal can stop nothing new: it is seized
 * later, as usual); then thaws it. Each caught thread stops for ptrace as it wakes, before any
 * code of its own runs; task_seize() finds it seized already. On failure (naming the cgroup)
 * the cgroup is thawed and no thread stays seized. root: the tree's root, which should be in it.
 */
int freezer_catch_tree(const char *path, int timeout_s, pid_t root, struct freezer_catch *fc);
/*
 * The cgroup was frozen before the dump (containerd pauses a container before it checkpoints
 * it and resumes it after; runc resumes only a frozen one): a tree left running (or after a
 * failed dump) is frozen again while stasis still holds it, as it was found. Until then the
 * guardian (fc->paused) freezes it again should stasis die. First the caught threads not
 * claimed are held stopped (freezer_hold_unclaimed: none of them runs while the cgroup is
 * thawed); freezer_refreeze_caught freezes the cgroup, lets them go where they stopped, ends the
 * guardian and frees fc. The claimed threads are the caller's to let go, after it.
 */
void freezer_hold_unclaimed(struct freezer_catch *fc);
void freezer_refreeze_caught(const char *path, int timeout_s, struct freezer_catch *fc);
/* The held threads go on now, each with the signal it stopped with (the cgroup, thawed, lets
 * them run: an exec into a paused container ends); the cgroup's freezing again takes those left. */
void freezer_let_go_held(const char *path, struct freezer_catch *fc);
/* Whether the cgroup at path is frozen (an engine's pause): 1, 0, or <0 having said why not
 * known (the path names no freezer cgroup). */
int freezer_is_frozen(const char *path);
/* tid belongs to the tree: the tree's seizing lets it go. */
void freezer_claim(struct freezer_catch *fc, pid_t tid);
/* Lets every caught thread not claimed go on (once it has stopped); frees fc (a cgroup that
 * was not frozen before: its threads run anyway). */
void freezer_release_unclaimed(struct freezer_catch *fc);

#endif
