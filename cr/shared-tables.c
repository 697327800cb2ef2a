/*
 * What clone() lets processes share besides threads: an fd table (CLONE_FILES), memory
 * (CLONE_VM, also a vfork() child before it execs), the filesystem context of cwd, root and
 * umask (CLONE_FS), signal handlers (CLONE_SIGHAND). Each process of the tree is saved and
 * made again with its own, so a tree in which two processes share one of them, or a thread
 * has an fd table or filesystem context of its own (unshare), is refused at dump, naming both,
 * rather than restored unshared. kcmp tells (the tree is frozen): the processes are sorted by
 * its order of each table, and neighbours compared.
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
	bool per_thread; /* a thread can take one of its own (unshare) */
};

static const struct shared_table tables[] = {
	{ KCMP_FILES, "fd table", "CLONE_FILES", true },
	{ KCMP_VM, "memory", "CLONE_VM", false },
	{ KCMP_FS, "cwd, root and umask", "CLONE_FS", true },
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

static int refuse_threads_own(const struct dump_task *t)
{
	for (size_t k = 0; k < t->nr_threads; k++) {
		pid_t tid = t->threads[k].tid;
		for (size_t i = 0; i < ARRAY_SIZE(tables); i++)
			if (tables[i].per_thread && kcmp_order(t->pid, tid, tables[i].kcmp_type)) {
				pr_err("dump pid %d: its thread %d does not share the process's %s "
				       "(unshare(%s); not supported)", t->pid, tid, tables[i].what, tables[i].how);
				return -ENOTSUP;
			}
	}
	return 0;
}

static int refuse_shared_tables(struct run_ctx *ctx, struct dump_tree *tr)
{
	int err;

	(void)ctx;
	for (size_t i = 0; i < tr->nr_tasks; i++)
		if ((err = refuse_threads_own(&tr->tasks[i])))
			return err;
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
		for (size_t i = 1; i < tr->nr_tasks; i++)
			if (!kcmp_order(sorted[i - 1]->pid, sorted[i]->pid, type)) {
				pr_err("dump pid %d: it shares its %s with pid %d (clone with %s; not "
				       "supported)", sorted[i]->pid, tables[k].what, sorted[i - 1]->pid,
				       tables[k].how);
				return -ENOTSUP;
			}
	}
	return 0;
}

const struct tree_object_ops tree_shared_tables = {
	.name = "tables shared by several processes",
	.collect = refuse_shared_tables,
};
