/*
 * The cgroup freezer at dump (--freeze-cgroup PATH, what LXC and runc pass): the whole
 * container is frozen at once, so that no process of it can fork while the tree is seized.
 */
#ifndef STASIS_FREEZER_H
#define STASIS_FREEZER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Threads seized while their cgroup was frozen. */
struct freezer_catch {
	pid_t *tids;
	bool *claimed;
	size_t n;
	bool was_frozen; /* frozen before the dump (an engine's pause): frozen again after it */
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
 * failed dump) is frozen again once stasis has let it go, as it was found.
 */
int freezer_refreeze(const char *path, int timeout_s);
/* Whether the cgroup at path is frozen (an engine's pause): 1, 0, or <0 having said why not
 * known (the path names no freezer cgroup). */
int freezer_is_frozen(const char *path);
/* tid belongs to the tree: the tree's seizing lets it go. */
void freezer_claim(struct freezer_catch *fc, pid_t tid);
/* Lets every caught thread not claimed go on (once it has stopped); frees fc. */
void freezer_release_unclaimed(struct freezer_catch *fc);

#endif
