/*
 * What clone() lets processes share besides threads: an fd table (CLONE_FILES), memory
 * (CLONE_VM, also a vfork() child before it execs), the filesystem context of cwd, root and
 * umask (CLONE_FS), signal handlers (CLONE_SIGHAND). kcmp tells (the tree is frozen): the
 * processes are sorted by its order of each table, and neighbours compared.
 *
 * An fd table shared by several processes is dumped once, by the first of them in tree order
 * (its owner); each other one records that it shares the owner's table (cr/files/fdtable.c)
 * and is made again by its parent with CLONE_FILES (cr/pstree.c), so its parent must hold the
 * table too: a sharer whose parent left it (unshare, or a sharer adopted by another process)
 * is refused, naming both. Memory, cwd/root/umask and signal handlers shared by processes
 * are refused at dump, naming both, rather than restored unshared. (A thread's own fd table or
 * cwd and umask: cr/thread-tables.c.)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "log.h"
#include "task.h"
#include "tree.h"
#include "tree-objects.h"
#include "util.h"

struct shared_table {
	int kcmp_type;
	const char *what, *how;
	bool by_processes; /* processes sharing it are dumped and restored sharing it */
};

static const struct shared_table tables[] = {
	{ KCMP_FILES, "fd table", "CLONE_FILES", true },
	{ KCMP_VM, "memory", "CLONE_VM", false },
	{ KCMP_FS, "cwd, root and umask", "CLONE_FS", false },
	{ KCMP_SIGHAND, "signal handlers", "CLONE_SIGHAND", false },
};

/* 0 when a and b share the table, else kcmp's order (by pid when kcmp fails: a process gone) */
static int kcmp_order(pid_t a, pid_t b, int type)
{
	long order = syscall(SYS_kcmp, a, b, type, 0, 0);

	if (order < 0)
		return (a > b) - (a < b);
	return order == 0 ? 0 : order == 1 ? -1 : 1;
}

static int by_table(const void *a, const void *b, void *type)
{
	return kcmp_order((*(struct dump_task *const *)a)->pid, (*(struct dump_task *const *)b)->pid,
			  *(const int *)type);
}

/*
 * sorted[from..to) hold one fd table: the first in tree order owns it, every other one's parent
 * must hold it (it makes that one again with CLONE_FILES).
 */
static int share_fd_table(struct dump_task **sorted, size_t from, size_t to)
{
	struct dump_task *owner = sorted[from];

	for (size_t i = from + 1; i < to; i++)
		if (sorted[i] < owner)
			owner = sorted[i];
	for (size_t i = from; i < to; i++) {
		struct dump_task *t = sorted[i];
		if (t == owner)
			continue;
		if (!t->parent || kcmp_order(t->parent->pid, t->pid, KCMP_FILES)) {
			pr_err("dump pid %d: it shares its fd table with pid %d, but its parent pid %d does "
			       "not hold that table (it left it by unshare(CLONE_FILES), or the sharer was "
			       "adopted; not supported)", t->pid, owner->pid, t->parent ? t->parent->pid : 0);
			return -ENOTSUP;
		}
		t->fds_owner = owner;
	}
	return 0;
}

static int collect_shared_tables(struct run_ctx *ctx, struct dump_tree *tr)
{
	int err;

	(void)ctx;
	if (tr->nr_tasks < 2)
		return 0;
	auto_free struct dump_task **sorted = xzalloc(tr->nr_tasks * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	for (size_t i = 0; i < tr->nr_tasks; i++)
		sorted[i] = &tr->tasks[i];
	for (size_t k = 0; k < ARRAY_SIZE(tables); k++) {
		int type = tables[k].kcmp_type;
		qsort_r(sorted, tr->nr_tasks, sizeof(*sorted), by_table, &type);
		for (size_t i = 1, from = 0; i <= tr->nr_tasks; i++) {
			if (i < tr->nr_tasks && !kcmp_order(sorted[i - 1]->pid, sorted[i]->pid, type)) {
				if (tables[k].by_processes)
					continue;
				pr_err("dump pid %d: it shares its %s with pid %d (clone with %s; not "
				       "supported)", sorted[i]->pid, tables[k].what, sorted[i - 1]->pid,
				       tables[k].how);
				return -ENOTSUP;
			}
			if (i - from > 1 && (err = share_fd_table(sorted, from, i)))
				return err;
			from = i;
		}
	}
	return 0;
}

const struct tree_object_ops tree_shared_tables = {
	.name = "tables shared by several processes",
	.collect = collect_shared_tables,
};
