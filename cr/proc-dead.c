/*
 * Files of /proc/PID of a process that exited and was reaped while a process of the tree kept
 * them: an fd on /proc/D/status (reads fail with ESRCH), on the /proc/D directory (getdents
 * fails with ENOENT, openat in it with ESRCH; fstat still works), a cwd in /proc/D (its name
 * is "/proc/D (deleted)"). Nothing by that path exists any more to open again.
 *
 * Dump: a /proc/D path, on the tree's /proc, that leads to no file or to another one than the
 * process holds (D was reaped, or is another process's pid now): D and the path are saved.
 * Restore: for each such D, stasis makes a process with pid D (clone3 set_tid) in the tree's
 * PID namespace (its own: as soon as the root is in it), that waits; every process of the
 * tree opens its files and changes into its directory by path as usual, and once every
 * process is ready, before any is let go, the process D is killed and reaped: each fd and cwd
 * points into the /proc directory of a dead process again, and fails as it did.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "pid-ns.h"
#include "proc-dead.h"
#include "pstree.h"
#include "task.h"
#include "tree-objects.h"
#include "tree-path.h"
#include "util.h"

#define PID_MAX_LIMIT 4194304 /* the kernel's largest pid_max */
#define DELETED " (deleted)"

/* "/proc/D", "/proc/D/..." (D a number from 1 up): D; else 0. */
static long proc_path_pid(const char *path)
{
	char *end;
	long pid;

	if (strncmp(path, "/proc/", 6) || path[6] < '1' || path[6] > '9')
		return 0;
	pid = strtol(path + 6, &end, 10);
	return (*end && *end != '/') || pid > PID_MAX_LIMIT ? 0 : pid;
}

static bool of_tree(const struct dump_task *t, long pid)
{
	for (size_t i = 0; i < t->tree_size; i++)
		if (t->tree[i].pid == pid || t->tree[i].vpid == (uint32_t)pid)
			return true;
	return false;
}

/* The st_dev of path with root as "/" (-1: stasis's own; 0: cannot tell). */
static dev_t dev_in_root(int root, const char *path)
{
	struct stat st;

	return path_stat_in_root(root, path, &st, 0) ? 0 : st.st_dev;
}

int proc_dead_dump(const struct dump_task *t, const char *what, const char *link, const char *magic,
		   const struct stat *st, char **path, bool *outer)
{
	size_t len = strlen(link), del = strlen(DELETED);
	struct statfs fs;
	struct stat now;

	*path = NULL;
	if (strncmp(link, "/proc/", 6))
		return 0;
	auto_free char *name = xstrdup(link);
	if (!name)
		return -ENOMEM;
	if (len > del && !strcmp(name + len - del, DELETED))
		name[len - del] = 0;
	long pid = proc_path_pid(name);
	if (!pid || statfs(magic, &fs) || fs.f_type != PROC_SUPER_MAGIC)
		return 0;
	char root_path[64];
	snprintf(root_path, sizeof(root_path), "/proc/%d/root", t->pid);
	auto_close int root = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		pr_perror("dump pid %d %s: cannot open its root", t->pid, what);
		return -errno;
	}
	int err = path_stat_in_root(root, name, &now, AT_SYMLINK_NOFOLLOW);
	if (!err && now.st_dev == st->st_dev && now.st_ino == st->st_ino) {
		if (!of_tree(t, pid))
			pr_warn("dump pid %d %s: %s is of process %ld, which is not in the tree: it is "
				"opened again by its path, of whatever process has that pid then",
				t->pid, what, name, pid);
		return 0;
	}
	if (err && err != -ENOENT && err != -ESRCH)
		return 0; /* (not ours to judge: reopened by path, which says what is wrong) */
	/* D is a pid of the PID namespace of the /proc the file is on: stasis's, or the tree's */
	dev_t stasis_proc = dev_in_root(-1, "/proc");
	*outer = pid_ns_is_own(t->ctx) && stasis_proc == st->st_dev;
	if (stasis_proc != st->st_dev && dev_in_root(root, "/proc") != st->st_dev) {
		pr_err("dump pid %d %s: %s is of process %ld, which exited, on a /proc that is neither "
		       "the tree's /proc nor stasis's: not supported", t->pid, what, name, pid);
		return -ENOTSUP;
	}
	pr_debug("dump pid %d %s: %s is of process %ld (of %s PID namespace), which exited and was "
		 "reaped", t->pid, what, link, pid, *outer ? "stasis's" : "the tree's");
	*path = name;
	name = NULL;
	return pid;
}

/* ---- restore ---- */

/* A pid of a reaped process the tree's /proc files name, and its process while it is made. */
struct dead_pid {
	pid_t pid;
	pid_t holder;      /* the first process of the tree that names it */
	int holder_fd;     /* its fd, or -1: its cwd */
	bool tree_ns;      /* a pid of the tree's own PID namespace (else of stasis's) */
	pid_t made;        /* stasis's child with that pid (0: not made) */
};

struct proc_dead_state {
	struct dead_pid *pids;
	size_t n;
};

static struct proc_dead_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_proc_dead);
}

bool proc_dead_in_tree_ns(const struct run_ctx *ctx, const FdEntry *e)
{
	return e->has_proc_dead_pid && !e->proc_dead_outer && pid_ns_is_own(ctx);
}

/* Is pid one of the tree's processes or threads (as the images name them)? */
static bool pid_of_tree(const struct restore_tree *rt, uint32_t pid)
{
	for (size_t i = 0; i < rt->inv->n_tree; i++)
		if (rt->inv->tree[i]->pid == pid)
			return true;
	for (size_t i = 0; i < rt->nr_tasks; i++)
		for (size_t k = 0; k < rt->tasks[i].core->n_threads; k++)
			if (rt->tasks[i].core->threads[k]->tid == pid)
				return true;
	return false;
}

/*
 * One named pid (outer: of stasis's PID namespace while the tree has its own), checked and
 * added once; holder and holder_fd (-1: its cwd) say where it is named.
 */
static int note_pid(struct proc_dead_state *st, const struct restore_tree *rt, uint32_t pid,
		    bool outer, const char *path, pid_t holder, int holder_fd)
{
	bool tree_ns = pid_ns_is_own(rt->ctx) && !outer;
	/* (the tree's own pids are pids of stasis's namespace unless it has a namespace of its own) */
	bool tree_pid = (tree_ns || !pid_ns_is_own(rt->ctx)) && pid_of_tree(rt, pid);

	if (pid < 2 || pid > PID_MAX_LIMIT || proc_path_pid(path) != (long)pid || tree_pid) {
		if (holder_fd >= 0)
			pr_err("image fds-%d.img: fd %d: %s is named a file of reaped process %u, which "
			       "is no pid of a process gone from the tree", holder, holder_fd, path, pid);
		else
			pr_err("image core-%d.img: its cwd %s is named a directory of reaped process %u, "
			       "which is no pid of a process gone from the tree", holder, path, pid);
		return -EINVAL;
	}
	for (size_t i = 0; i < st->n; i++)
		if (st->pids[i].pid == (pid_t)pid && st->pids[i].tree_ns == tree_ns)
			return 0;
	struct dead_pid *more = xreallocarray(st->pids, st->n + 1, sizeof(*more));
	if (!more)
		return -ENOMEM;
	st->pids = more;
	st->pids[st->n++] = (struct dead_pid){ .pid = pid, .holder = holder, .holder_fd = holder_fd,
					       .tree_ns = tree_ns };
	return 0;
}

static int validate_proc_dead(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct proc_dead_state *st = state_of(ctx);
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const struct restore_task *t = &rt->tasks[i];
		if (t->core->has_cwd_proc_dead_pid && t->core->has_cwd_ghost_id) {
			pr_err("image core-%d.img: its cwd is both a deleted directory and one of a "
			       "reaped process", t->pid);
			return -EINVAL;
		}
		if (t->core->has_cwd_proc_dead_pid &&
		    (err = note_pid(st, rt, t->core->cwd_proc_dead_pid, t->core->cwd_proc_dead_outer,
				    t->core->cwd, t->pid, -1)))
			return err;
		for (size_t k = 0; k < t->fds->n_fds; k++) {
			const FdEntry *e = t->fds->fds[k];
			if (!e->has_proc_dead_pid)
				continue;
			if (e->kind != FD_KIND__FD_REGULAR || e->has_ghost_id || !e->path) {
				pr_err("image fds-%d.img: fd %u names a reaped process but is no file by "
				       "path", t->pid, e->fd);
				return -EINVAL;
			}
			if ((err = note_pid(st, rt, e->proc_dead_pid, e->proc_dead_outer, e->path, t->pid,
					    e->fd)))
				return err;
		}
	}
	return 0;
}

/* The process with pid d->pid: waits, every signal blocked, until SIGKILL or its parent's death. */
static int make_one(struct dead_pid *d)
{
	pid_t parent_seen = d->tree_ns ? 0 : getpid(); /* (a parent outside its namespace reads as 0) */
	uint32_t pid = d->pid;

	fflush(NULL);
	pid_t child = clone_with_pid(&pid, 1, 0, SIGCHLD, -1);
	if (child == 0) {
		sigset_t all;
		syscall(SYS_close_range, 0, ~0u, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent_seen)
			_exit(0);
		sigfillset(&all);
		sigprocmask(SIG_BLOCK, &all, NULL);
		for (;;)
			pause();
	}
	if (child < 0) {
		int err = -errno;
		char what[32] = "cwd";
		if (d->holder_fd >= 0)
			snprintf(what, sizeof(what), "fd %d", d->holder_fd);
		if (err == -EEXIST)
			pr_err("restore pid %d %s: /proc/%d, of a process reaped before the dump, needs pid "
			       "%d again for a moment, and a process has it; nothing was started",
			       d->holder, what, d->pid, d->pid);
		else
			pr_perror("restore pid %d %s: cannot make a process with pid %d for its /proc/%d",
				  d->holder, what, d->pid, d->pid);
		return err;
	}
	d->made = child;
	return 0;
}

/* The processes of the pids of the tree's own namespace (tree_ns), or of stasis's. */
static int make_all(struct proc_dead_state *st, bool tree_ns)
{
	int err;

	for (size_t i = 0; i < st->n; i++)
		if (st->pids[i].tree_ns == tree_ns && (err = make_one(&st->pids[i])))
			return err;
	return 0;
}

static int prepare_proc_dead(struct run_ctx *ctx, struct restore_tree *rt)
{
	(void)rt;
	return make_all(state_of(ctx), false);
}

int proc_dead_enter_pid_ns(struct run_ctx *ctx, pid_t root)
{
	struct proc_dead_state *st = state_of(ctx);
	char path[64];
	int err;

	bool any = false;

	for (size_t i = 0; i < st->n; i++)
		any |= st->pids[i].tree_ns && !st->pids[i].made;
	if (!any)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", root);
	auto_close int mine = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	auto_close int tree = open(path, O_RDONLY | O_CLOEXEC);
	if (mine < 0 || tree < 0 || setns(tree, CLONE_NEWPID)) {
		pr_perror("restore: cannot enter the tree's PID namespace (%s) to make the processes "
			  "its /proc files of reaped processes name", path);
		return -errno;
	}
	err = make_all(st, true);
	if (setns(mine, CLONE_NEWPID)) {
		pr_perror("restore: cannot go back to stasis's own PID namespace");
		return err ? err : -errno;
	}
	return err;
}

/* Every process ready (or the restore failed): the processes die and are reaped. */
static void undo_proc_dead(struct run_ctx *ctx, bool restored)
{
	struct proc_dead_state *st = state_of(ctx);

	(void)restored;
	for (size_t i = 0; i < st->n; i++) {
		if (!st->pids[i].made)
			continue;
		kill(st->pids[i].made, SIGKILL);
		while (waitpid(st->pids[i].made, NULL, 0) < 0 && errno == EINTR)
			;
		st->pids[i].made = 0;
	}
}

static void free_proc_dead(void *state)
{
	free(((struct proc_dead_state *)state)->pids);
}

const struct tree_object_ops tree_proc_dead = {
	.name = "files of /proc of reaped processes",
	.state_size = sizeof(struct proc_dead_state),
	.free_state = free_proc_dead,
	.validate = validate_proc_dead,
	.prepare = prepare_proc_dead,
	.undo = undo_proc_dead,
};
