/*
 * The tree's own cgroup namespace: the restored root makes a new one (unshare) once it is in
 * its cgroups, so that the namespace is rooted where the tree's cgroups are, and before the
 * mounts of cgroup filesystems that show that root.
 */
#include <errno.h>
#include <sched.h>

#include "log.h"
#include "ns-helper.h"
#include "pstree.h"
#include "tree-objects.h"

static int collect_cgroup_ns(struct run_ctx *ctx, struct dump_tree *tr)
{
	(void)ctx;
	if (ns_is_own(tr->tasks[0].pid, "cgroup", NULL))
		tr->inv.has_cgroup_ns = tr->inv.cgroup_ns = true;
	return 0;
}

static int enter_cgroup_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	(void)ctx;
	if (rt->inv->cgroup_ns && unshare(CLONE_NEWCGROUP)) {
		pr_perror("restore: cannot make the tree's cgroup namespace");
		return -errno;
	}
	return 0;
}

const struct tree_object_ops tree_cgroup_ns = {
	.name = "cgroup namespace",
	.collect = collect_cgroup_ns,
	.enter = enter_cgroup_ns,
};
