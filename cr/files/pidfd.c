/*
 * pidfds (pidfd_open, clone3 CLONE_PIDFD; Go keeps one per child it starts): the pid they
 * refer to, which must be a process of the tree (or a zombie of it). Restore opens one again
 * for that pid, waiting a little for it to exist if it is created later in the tree. A pidfd
 * whose process was already reaped ("Pid: -1") comes back as a pidfd of a process that exited
 * and was reaped, made before the tree's other processes, which inherit it: one such process
 * for each reaped process (pidfds of two of them keep two inodes, pidfds of one keep one), and
 * one open file for each open file the tree held. stasis makes them, or in a tree with its own
 * PID namespace its root as soon as it is in the new namespace, so that the reaped processes
 * are of the tree's namespace (the kernel refuses pidfd_send_signal and waitid through a pidfd
 * of a process the caller's namespace does not hold).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "files.h"
#include "log.h"
#include "pid-ns.h"
#include "pstree.h"
#include "tree-objects.h"
#include "util.h"

#define PIDFD_THREAD O_EXCL /* a pidfd of one thread (6.9+) */

static bool is_pidfd(const char *link)
{
	return !strcmp(link, "anon_inode:[pidfd]") || !strncmp(link, "pidfd:", 6);
}

/* Is pid the tree's root or below it (zombies included: /proc still has their parent)? 1, 0,
 * -ENOMEM. */
static int in_tree(pid_t pid, pid_t root)
{
	for (int depth = 0; pid > 1 && depth < 4096; depth++) {
		char path[64];
		uint64_t ppid;
		if (pid == root)
			return 1;
		snprintf(path, sizeof(path), "/proc/%d/status", pid);
		auto_free char *status = read_file_at(AT_FDCWD, path, NULL);
		if (!status && errno == ENOMEM)
			return -ENOMEM;
		if (!status || !fdinfo_u64(status, "PPid:", 10, &ppid))
			return 0;
		pid = ppid;
	}
	return 0;
}

static int dump_pidfd(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	const char *line = strstr(p->info, "\nPid:");
	int pid, err;

	if (!is_pidfd(p->link))
		return 0;
	if (!line || sscanf(line + 5, "%d", &pid) != 1 || pid == 0) {
		pr_err("dump pid %d fd %d: a pidfd of a process stasis cannot see (other pid namespace)",
		       t->pid, p->fd);
		return -ENOTSUP;
	}
	if (p->flags & PIDFD_THREAD) {
		pr_err("dump pid %d fd %d: a pidfd of one thread (PIDFD_THREAD, not supported yet)",
		       t->pid, p->fd);
		return -ENOTSUP;
	}
	if (pid > 0 && (err = in_tree(pid, t->tree[0].pid)) < 0)
		return err;
	if (pid > 0 && !err) {
		pr_err("dump pid %d fd %d: a pidfd of pid %d, which is not in the tree", t->pid, p->fd, pid);
		return -ENOTSUP;
	}
	e->has_flags = e->has_pidfd_pid = true;
	e->flags = p->flags;
	e->pidfd_pid = pid > 0 ? pid_ns_vpid(t->ctx, pid) : 0;
	if (pid < 0) {
		e->has_pidfd_ino = true;
		e->pidfd_ino = p->st.st_ino;
	}
	return 1;
}

/* ---- restore ---- */

/* A pidfd of a reaped process made for fd of pid (its own open file). */
struct reaped_pidfd {
	pid_t pid;
	uint32_t fd;
	int held; /* stasis's */
};

/* The run's pidfds of processes that exited and were reaped (made if some fd needs one). */
struct pidfd_state {
	struct reaped_pidfd *made;
	size_t n;
};

static struct pidfd_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_pidfds);
}

static bool is_reaped(const FdEntry *e)
{
	return e->kind == FD_KIND__FD_PIDFD && !e->pidfd_pid;
}

/*
 * A child of the caller, in its PID namespace, that exits at once; every fd of the tree of
 * reaped process ino gets a pidfd of it. No exit signal (in the root, every signal is blocked:
 * it would stay pending).
 */
static int make_reaped(struct pidfd_state *st, struct restore_tree *rt, uint64_t ino)
{
	struct clone_args ca = { 0 };
	pid_t child = syscall(SYS_clone3, &ca, sizeof(ca));
	int err = 0;

	if (child == 0)
		_exit(0);
	if (child < 0) {
		pr_perror("restore: cannot make a process for the pidfds of a reaped process");
		return -errno;
	}
	siginfo_t si;
	/* a zombie: pidfds can still be opened */
	while (waitid(P_PID, child, &si, WEXITED | WNOWAIT | __WALL) < 0 && errno == EINTR)
		;
	for (size_t i = 0; i < rt->nr_tasks && !err; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds && !err; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			if (!is_reaped(e) || (e->has_pidfd_ino ? e->pidfd_ino : 0) != ino)
				continue;
			int fd = syscall(SYS_pidfd_open, child, 0);
			if (fd < 0) {
				err = -errno;
				pr_perror("restore: cannot make a pidfd of a reaped process");
				break;
			}
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			st->made[st->n++] = (struct reaped_pidfd){ rt->tasks[i].pid, e->fd, fd };
		}
	}
	while (waitpid(child, NULL, __WALL) < 0 && errno == EINTR)
		;
	return err;
}

/* One process per reaped process: the first fd of each inode not made yet makes it. */
static int make_all_reaped(struct pidfd_state *st, struct restore_tree *rt)
{
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			bool done = false;
			for (size_t m = 0; m < st->n && is_reaped(e); m++)
				done |= st->made[m].pid == rt->tasks[i].pid && st->made[m].fd == e->fd;
			if (is_reaped(e) && !done &&
			    (err = make_reaped(st, rt, e->has_pidfd_ino ? e->pidfd_ino : 0)))
				return err;
		}
	}
	return 0;
}

/* Room for every pidfd of a reaped process; they are made here unless the tree has its own
 * PID namespace. */
static int prepare_pidfds(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct pidfd_state *st = state_of(ctx);
	size_t nr = 0;

	for (size_t i = 0; i < rt->nr_tasks; i++)
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++)
			nr += is_reaped(rt->tasks[i].fds->fds[k]);
	if (!nr)
		return 0;
	if (!(st->made = xzalloc(nr * sizeof(*st->made))))
		return -ENOMEM;
	return pid_ns_is_own(ctx) ? 0 : make_all_reaped(st, rt);
}

/* In the root, in the tree's new PID namespace, before it makes any other process. */
static int enter_pidfds(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct pidfd_state *st = state_of(ctx);

	return st->made && pid_ns_is_own(ctx) ? make_all_reaped(st, rt) : 0;
}

static void close_pidfds(struct run_ctx *ctx)
{
	struct pidfd_state *st = state_of(ctx);

	for (size_t i = 0; i < st->n; i++)
		close(st->made[i].held);
	st->n = 0;
}

static void undo_pidfds(struct run_ctx *ctx, bool restored)
{
	(void)restored;
	close_pidfds(ctx);
}

static void free_pidfds(void *state)
{
	free(((struct pidfd_state *)state)->made);
}

const struct tree_object_ops tree_pidfds = {
	.name = "pidfds of reaped processes",
	.state_size = sizeof(struct pidfd_state),
	.free_state = free_pidfds,
	.prepare = prepare_pidfds,
	.enter = enter_pidfds,
	.close = close_pidfds,
	.undo = undo_pidfds,
};

static int open_pidfd(struct restore_task *t, const FdEntry *e)
{
	int fd = -1;

	if (!e->has_pidfd_pid || e->pidfd_pid > INT32_MAX)
		return -EINVAL;
	if (!e->pidfd_pid) {
		const struct pidfd_state *st = state_of(t->ctx);
		for (size_t i = 0; i < st->n && fd < 0; i++)
			if (st->made[i].pid == t->pid && st->made[i].fd == e->fd)
				fd = fcntl(st->made[i].held, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return -EBADF;
	}
	/* the process may be one of the tree created after this one: wait for it (2 s at most) */
	for (int tries = 0; fd < 0 && tries < 1000; tries++) {
		fd = syscall(SYS_pidfd_open, e->pidfd_pid, e->flags & O_NONBLOCK);
		if (fd < 0 && errno != ESRCH)
			return -errno;
		if (fd < 0)
			usleep(2000);
	}
	if (fd < 0) {
		pr_err("restore pid %d fd %u: pid %u of its pidfd never appeared", t->pid, e->fd, e->pidfd_pid);
		return -ESRCH;
	}
	if (fcntl(fd, F_SETFL, e->flags & O_NONBLOCK)) {
		close(fd);
		return -errno;
	}
	return fd;
}

const struct fd_kind_ops fd_kind_pidfd = {
	.name = "pidfd",
	.dump = dump_pidfd,
	.open = open_pidfd,
	.kind = FD_KIND__FD_PIDFD,
};
