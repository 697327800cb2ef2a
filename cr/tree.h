/*
 * The tree as a dump holds it and as a restore makes it: the shapes every kind of state sees.
 * cr/pstree.c freezes and recreates it; kinds below it (namespaces, threads) only read it.
 */
#ifndef STASIS_TREE_H
#define STASIS_TREE_H

#include "freezer.h"
#include "task.h"

struct dump_tree {
	struct dump_task *tasks; /* live processes, frozen; tasks[0] is the root */
	size_t nr_tasks;
	TreeEntry **entries;     /* every process, zombies too, parents first */
	size_t nr_entries;
	Inventory inv;           /* written last; tree-wide kinds note what the tree has in it */
	pid_t *kill_tids;        /* room for every pid and tid, made once the tree is frozen: a
				    kill after the dump allocates nothing */
	int *kill_pidfds;        /* room for a pidfd of every process (pstree_kill's), likewise */
	const char *refreeze_cgroup; /* --freeze-cgroup found it frozen: pstree_release refreezes */
	int freeze_timeout_s;
	struct freezer_catch paused; /* then: the cgroup's threads not the tree's, held till then */
};

struct restore_watchdog;

/*
 * How restore makes one entry of the tree (cr/tree-plan.c decides, before any process starts):
 * a process inherits its session from the one that forks it, so the forker is not always its
 * parent.
 */
struct tree_plan_step {
	uint32_t creator;   /* the process that forks it: its parent, or a child of its parent */
	bool clone_parent;  /* forked by that child of its parent, as its sibling (CLONE_PARENT) */
	bool before_setsid; /* forked by a session leader while still in its first session */
	bool lift;          /* forked by a helper or zombie below its parent: the orphan of it */
	bool lift_target;   /* such orphans come to it: a subreaper until they have */
	bool has_orphans;   /* a helper or zombie that forks such orphans */
	uint32_t born_sid;  /* a session leader: the session it is forked in first (0: any) */
};

struct restore_tree {
	struct run_ctx *ctx;
	Inventory *inv;
	uint64_t clone_flags;       /* CLONE_NEW* for the root, set by the tree-wide kinds */
	struct tree_plan_step *plan; /* per inventory tree entry, in its order */
	uint8_t *lift_done;         /* shared, per entry: a parent of lifted orphans has them all
				       and is no subreaper any more (NULL: no orphans planned) */
	uint8_t *lift_came;         /* shared, per entry: an orphan has come to its parent */
	struct restore_task *tasks; /* live processes, in inventory order */
	size_t nr_tasks;
	int status_fd;              /* write end, shared by every new task */
	int *ctl_fds;               /* per task: the read end the task keeps */
	int *ctl_peer_fds;          /* per task: the write end stasis keeps */
	pid_t root_parent;          /* the root's parent as the root sees it (0: cannot tell) */
	const struct restore_watchdog *watchdog; /* stasis's (cr/restore-watchdog.h) */
};

/* The frozen process of the dumped tree whose host pid is pid, or NULL. */
static inline const struct dump_task *dump_tree_task(const struct dump_tree *tr, long pid)
{
	for (size_t i = 0; i < tr->nr_tasks && pid > 0; i++)
		if (tr->tasks[i].tgid == pid)
			return &tr->tasks[i];
	return NULL;
}

/* The task of the tree with pid (as the images name it), or NULL. */
static inline struct restore_task *pstree_task(struct restore_tree *rt, pid_t pid)
{
	for (size_t i = 0; i < rt->nr_tasks; i++)
		if (rt->tasks[i].pid == pid)
			return &rt->tasks[i];
	return NULL;
}

#endif
