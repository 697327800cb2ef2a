/*
 * pidfds (pidfd_open, clone3 CLONE_PIDFD; Go keeps one per child it starts): the pid they
 * refer to, which must be a process of the tree (or a zombie of it). Restore opens one again
 * for that pid, waiting a little for it to exist if it is created later in the tree. A pidfd
 * whose process was already reaped ("Pid: -1") comes back as a pidfd of a process that exited
 * and was reaped, made once before the tree's other processes, which inherit it: by stasis, or
 * in a tree with its own PID namespace by its root as soon as it is in the new namespace, so
 * that the reaped process is one of the tree's namespace (the kernel refuses pidfd_send_signal
 * and waitid through a pidfd of a process the caller's namespace does not hold).
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

/* Is pid the tree's root or below it (zombies included: /proc still has their parent)? */
static bool in_tree(pid_t pid, pid_t root)
{
	for (int depth = 0; pid > 1 && depth < 4096; depth++) {
		char path[64];
		uint64_t ppid;
		if (pid == root)
			return true;
		snprintf(path, sizeof(path), "/proc/%d/status", pid);
		auto_free char *status = read_file_at(AT_FDCWD, path, NULL);
		if (!status || !fdinfo_u64(status, "PPid:", 10, &ppid))
			return false;
		pid = ppid;
	}
	return false;
}

static int dump_pidfd(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	const char *line = strstr(p->info, "\nPid:");
	int pid;

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
	if (pid > 0 && !in_tree(pid, t->tree[0].pid)) {
		pr_err("dump pid %d fd %d: a pidfd of pid %d, which is not in the tree", t->pid, p->fd, pid);
		return -ENOTSUP;
	}
	e->has_flags = e->has_pidfd_pid = true;
	e->flags = p->flags;
	e->pidfd_pid = pid > 0 ? pid_ns_vpid(t->ctx, pid) : 0;
	return 1;
}

/* ---- restore ---- */

/* The run's pidfd of a process that exited and was reaped (made if some fd needs one). */
struct pidfd_state {
	bool needed;
	int reaped; /* the fd + 1 (0: none) */
};

static struct pidfd_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_pidfds);
}

/*
 * A child of the caller, in its PID namespace, that exits at once and is reaped: its pidfd.
 * No exit signal (a restored process has every signal blocked: it would stay pending).
 */
static int make_reaped(struct pidfd_state *st)
{
	int fd = -1;
	struct clone_args ca = { .flags = CLONE_PIDFD, .pidfd = (uint64_t)(uintptr_t)&fd };
	pid_t child = syscall(SYS_clone3, &ca, sizeof(ca));

	if (child == 0)
		_exit(0);
	if (child < 0) {
		pr_perror("restore: cannot make a pidfd of a reaped process");
		return -errno;
	}
	while (waitpid(child, NULL, __WALL) < 0 && errno == EINTR)
		;
	st->reaped = fd + 1;
	return 0;
}

static int prepare_pidfds(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct pidfd_state *st = state_of(ctx);

	for (size_t i = 0; i < rt->nr_tasks; i++)
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++)
			st->needed |= rt->tasks[i].fds->fds[k]->kind == FD_KIND__FD_PIDFD &&
				      !rt->tasks[i].fds->fds[k]->pidfd_pid;
	return st->needed && !pid_ns_is_own(ctx) ? make_reaped(st) : 0;
}

/* In the root, in the tree's new PID namespace, before it makes any other process. */
static int enter_pidfds(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct pidfd_state *st = state_of(ctx);

	(void)rt;
	return st->needed && pid_ns_is_own(ctx) ? make_reaped(st) : 0;
}

static void close_pidfds(struct run_ctx *ctx)
{
	struct pidfd_state *st = state_of(ctx);

	if (st->reaped)
		close(st->reaped - 1);
	st->reaped = 0;
}

static void undo_pidfds(struct run_ctx *ctx, bool restored)
{
	(void)restored;
	close_pidfds(ctx);
}

const struct tree_object_ops tree_pidfds = {
	.name = "pidfds of reaped processes",
	.state_size = sizeof(struct pidfd_state),
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
		int reaped = state_of(t->ctx)->reaped - 1;
		fd = reaped < 0 ? -1 : fcntl(reaped, F_DUPFD_CLOEXEC, 0);
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
