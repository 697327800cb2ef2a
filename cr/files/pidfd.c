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
 * of a process the caller's namespace does not hold). Where the kernel tells how the reaped
 * process ended (PIDFD_INFO_EXIT, 6.15), its made process ends the same way: exits with its
 * code, or is killed by its signal, dumping a core (into a directory of its own, removed at
 * once) if it did. A pidfd of one thread (PIDFD_THREAD) keeps that flag: of a reaped thread,
 * of a thread group leader, or of another thread of the tree (the thread's tid and its process
 * are saved). Such a thread is made by the restorer after the fds: a unix socket stands at the
 * pidfd's numbers (one per open file, so dups and sharing processes keep one file) until every
 * thread exists; then stasis opens the pidfd and sends it through that socket, and each holder
 * (a thread with a table of its own too) puts it in the socket's place (cr/restore-finish.c).
 * An epoll watching such a pidfd is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "end-as.h"
#include "files.h"
#include "log.h"
#include "pid-ns.h"
#include "pstree.h"
#include "restore-watchdog.h"
#include "tree-objects.h"
#include "tree.h"
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

/* The process (thread group) of thread tid: its pid, 0 if tid is gone, -ENOMEM. */
static pid_t thread_group_of(pid_t tid)
{
	char path[64];
	uint64_t tgid;

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	auto_free char *status = read_file_at(AT_FDCWD, path, NULL);
	if (!status && errno == ENOMEM)
		return -ENOMEM;
	return status && fdinfo_u64(status, "Tgid:", 10, &tgid) && tgid <= INT32_MAX ? (pid_t)tgid : 0;
}

/* How the reaped process of pidfd p ended, where the kernel tells it (PIDFD_INFO_EXIT, 6.15):
 * 1 with its wait status in *status, 0 if it does not, or <0. */
static int reaped_status(struct dump_task *t, const struct fd_probe *p, int32_t *status)
{
	struct pidfd_info_v0 info = { .mask = PIDFD_INFO_EXIT };
	int fd = task_fd_copy(t->pid, p->fd), ret;

	if (fd < 0) {
		pr_err("dump pid %d fd %d: cannot copy its pidfd: %s", t->pid, p->fd, strerror(-fd));
		return fd;
	}
	ret = ioctl(fd, PIDFD_GET_INFO_V0, &info) ? -errno : 0;
	close(fd);
	if (ret == -ENOTTY || ret == -EINVAL || ret == -ESRCH)
		return 0; /* before 6.15 */
	if (ret) {
		pr_err("dump pid %d fd %d: PIDFD_GET_INFO: %s", t->pid, p->fd, strerror(-ret));
		return ret;
	}
	*status = info.exit_code;
	return !!(info.mask & PIDFD_INFO_EXIT);
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
	/* PIDFD_THREAD: the process of the thread, whose other threads are made by its restorer */
	pid_t group = pid > 0 && (p->flags & PIDFD_THREAD) ? thread_group_of(pid) : pid;
	if (pid > 0 && group <= 0) {
		if (!group)
			pr_err("dump pid %d fd %d: a pidfd of thread %d, whose process is gone", t->pid,
			       p->fd, pid);
		return group ? group : -ESRCH;
	}
	if (pid > 0 && (err = in_tree(group, t->tree[0].tgid)) < 0)
		return err;
	if (pid > 0 && !err) {
		pr_err("dump pid %d fd %d: a pidfd of pid %d, which is not in the tree", t->pid, p->fd, pid);
		return -ENOTSUP;
	}
	e->has_flags = e->has_pidfd_pid = true;
	e->flags = p->flags;
	e->pidfd_pid = pid > 0 && group == pid ? pid_ns_vpid(t->ctx, pid) : 0;
	if (group != pid) {
		e->has_pidfd_tgid = true;
		e->pidfd_tgid = pid_ns_vpid(t->ctx, group);
		if ((err = pid_ns_vtid(t->ctx, group, pid, &e->pidfd_pid)))
			return err;
	}
	if (pid < 0) {
		e->has_pidfd_ino = true;
		e->pidfd_ino = p->st.st_ino;
		if ((err = reaped_status(t, p, &e->pidfd_exit)) < 0)
			return err;
		e->has_pidfd_exit = err;
	}
	return 1;
}

/* ---- restore ---- */

static int32_t status_of(const FdEntry *e)
{
	return e->has_pidfd_exit ? e->pidfd_exit : -1;
}

/* A pidfd of a reaped process made for fd of pid (its own open file). */
struct reaped_pidfd {
	pid_t pid;
	uint32_t fd;
	int held; /* stasis's */
};

/*
 * A pidfd of a thread other than its process's first, held as fd of pid (its own entry): the
 * thread is made by the restorer, after the fds. Until then a unix socket (one end of a pair)
 * stands at its numbers; stasis keeps the other end and, once every thread exists, sends the
 * pidfd through it to each number (restore-finish.c).
 */
struct thread_pidfd {
	pid_t pid;
	const FdEntry *e;
	int stand_in;              /* the tree inherits it; stasis's copy goes once the root exists */
	int channel;               /* stasis's end */
	int file;                  /* the pidfd, once made (-1 before) */
};

/* The run's pidfds of processes that exited and were reaped (made if some fd needs one), and
 * of threads. */
struct pidfd_state {
	struct reaped_pidfd *made;
	size_t n;
	struct thread_pidfd *threads;
	size_t n_threads;
};

static struct pidfd_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_pidfds);
}

static bool is_reaped(const FdEntry *e)
{
	return e->kind == FD_KIND__FD_PIDFD && !e->pidfd_pid;
}

static bool reaped_in_tree_ns(const struct run_ctx *ctx, const FdEntry *e)
{
	return is_reaped(e) && pid_ns_is_own(ctx);
}

static bool is_thread(const FdEntry *e)
{
	return e->kind == FD_KIND__FD_PIDFD && e->has_pidfd_tgid;
}

static struct thread_pidfd *thread_pidfd_of(const struct pidfd_state *st, const FdEntry *e)
{
	for (size_t i = 0; i < st->n_threads; i++)
		if (st->threads[i].e == e)
			return &st->threads[i];
	return NULL;
}

/* The thread of a pidfd is one of the tree's, not its process's first; the pidfd says
 * PIDFD_THREAD. */
static int validate_thread(struct restore_tree *rt, pid_t pid, const FdEntry *e)
{
	const struct restore_task *owner = e->pidfd_tgid <= INT32_MAX ? pstree_task(rt, e->pidfd_tgid) : NULL;
	bool found = false;

	for (size_t i = 0; owner && i < owner->core->n_threads; i++)
		found |= owner->core->threads[i]->tid == e->pidfd_pid;
	if (!found || !e->has_flags || !(e->flags & PIDFD_THREAD) || e->pidfd_pid == e->pidfd_tgid) {
		pr_err("image fds-%d.img: fd %u: a pidfd of thread %u of pid %u, which the tree has not "
		       "(or without PIDFD_THREAD)", pid, e->fd, e->pidfd_pid, e->pidfd_tgid);
		return -EINVAL;
	}
	return 0;
}

static uint64_t reaped_ino(const FdEntry *e)
{
	return e->has_pidfd_ino ? e->pidfd_ino : 0;
}

/* The fd tables of a tree, dump's or restore's, by the images' pid of their process. */
struct fd_tables {
	const FdTable *(*of)(const void *tree, uint32_t pid);
	const void *tree;
};

static const FdEntry *find_fd(const FdTable *tab, uint32_t fd)
{
	for (size_t k = 0; tab && k < tab->n_fds; k++)
		if (tab->fds[k]->fd == fd)
			return tab->fds[k];
	return NULL;
}

/* The entry of the open file at fd of pid: its own, that of its dup, or that of the process
 * it shares it with; NULL if none. */
static const FdEntry *entry_of(const struct fd_tables *tt, uint32_t pid, uint32_t fd)
{
	const FdTable *tab = tt->of(tt->tree, pid);
	const FdEntry *e = find_fd(tab, fd);

	if (e && e->kind == FD_KIND__FD_DUP)
		e = find_fd(tab, e->dup_of);
	if (e && e->kind == FD_KIND__FD_SHARED)
		e = find_fd(tt->of(tt->tree, e->shared_pid), e->shared_fd);
	return e && e->kind != FD_KIND__FD_DUP && e->kind != FD_KIND__FD_SHARED ? e : NULL;
}

/* A pidfd of a thread that epoll ep of pid watches (its target *target), or NULL: it would be
 * registered with the socket standing in for it (not restored yet). */
static const FdEntry *watched_thread_pidfd(const struct fd_tables *tt, uint32_t pid, const FdEntry *ep,
					   uint32_t *target)
{
	for (size_t j = 0; j < ep->n_targets; j++) {
		const EpollTarget *et = ep->targets[j];
		const FdEntry *e = entry_of(tt, et->has_file_pid ? et->file_pid : pid,
					    et->has_file_fd ? et->file_fd : et->fd);
		*target = et->fd;
		if (e && is_thread(e))
			return e;
	}
	return NULL;
}

static const FdTable *restore_table(const void *tree, uint32_t pid)
{
	struct restore_tree *rt = (struct restore_tree *)tree;
	const struct restore_task *t = pid <= INT32_MAX ? pstree_task(rt, pid) : NULL;

	if (t && t->fds->has_table_of)
		t = t->fds->table_of <= INT32_MAX ? pstree_task(rt, t->fds->table_of) : NULL;
	return t ? t->fds : NULL;
}

/* Every reaped process's status can be, and its pidfds agree on it. */
static int validate_pidfds(struct run_ctx *ctx, struct restore_tree *rt)
{
	const struct fd_tables tables = { restore_table, rt };

	(void)ctx;
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			int err;
			if (is_thread(e) && (err = validate_thread(rt, rt->tasks[i].pid, e)))
				return err;
			const FdEntry *w;
			uint32_t target;
			if (e->kind == FD_KIND__FD_EPOLL &&
			    (w = watched_thread_pidfd(&tables, rt->tasks[i].pid, e, &target))) {
				pr_err("image fds-%d.img: fd %u: an epoll watching fd %u, a pidfd of thread %u "
				       "(not restored yet)", rt->tasks[i].pid, e->fd, target, w->pidfd_pid);
				return -ENOTSUP;
			}
			if (!is_reaped(e))
				continue;
			if (e->has_pidfd_exit && !wait_status_valid(e->pidfd_exit)) {
				pr_err("image fds-%d.img: fd %u: a pidfd of a reaped process that ended with "
				       "wait status %#x, which no process can", rt->tasks[i].pid, e->fd, e->pidfd_exit);
				return -EINVAL;
			}
			for (size_t j = 0; j <= i; j++) {
				for (size_t m = 0; m < rt->tasks[j].fds->n_fds; m++) {
					const FdEntry *f = rt->tasks[j].fds->fds[m];
					if (f == e)
						break;
					if (is_reaped(f) && reaped_ino(f) == reaped_ino(e) &&
					    status_of(f) != status_of(e)) {
						pr_err("image fds-%d.img: fd %u: a pidfd of a reaped process that ended "
						       "with wait status %#x; fd %u of pid %d, of the same process, says %#x",
						       rt->tasks[i].pid, e->fd, status_of(e), f->fd, rt->tasks[j].pid,
						       status_of(f));
						return -EINVAL;
					}
				}
			}
		}
	}
	return 0;
}

/*
 * A child of the caller, in its PID namespace, that ends as the reaped process of fd of pid
 * (first) did; every fd of the tree of that reaped process gets a pidfd of it. No exit signal
 * (in the root, every signal is blocked: it would stay pending).
 */
static int make_reaped(struct pidfd_state *st, struct restore_tree *rt, pid_t pid, const FdEntry *first)
{
	struct clone_args ca = { 0 };
	int32_t status = first->has_pidfd_exit ? first->pidfd_exit : 0;
	pid_t child = syscall(SYS_clone3, &ca, sizeof(ca));
	int err = 0;

	if (child == 0)
		end_as(rt->ctx, status);
	if (child < 0) {
		pr_perror("restore pid %d fd %u: cannot make a process for its pidfd of a reaped process",
			  pid, first->fd);
		return -errno;
	}
	siginfo_t si;
	/* a zombie: pidfds can still be opened */
	while (waitid(P_PID, child, &si, WEXITED | WNOWAIT | __WALL) < 0 && errno == EINTR)
		;
	if (wait_status_from(&si) == (status & ~CORE_DUMPED) && status != wait_status_from(&si))
		pr_warn("restore pid %d fd %u: its pidfd's reaped process dumped core; the one made again "
			"could not (core_pattern, or the core size limit): the pidfd says it did not",
			pid, first->fd);
	else if (wait_status_from(&si) != status) {
		pr_err("restore pid %d fd %u: the process made for its pidfd of a reaped process ended with "
		       "wait status %#x, not %#x", pid, first->fd, wait_status_from(&si), status);
		err = -EIO;
	}
	for (size_t i = 0; i < rt->nr_tasks && !err; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds && !err; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			if (!is_reaped(e) || reaped_ino(e) != reaped_ino(first))
				continue;
			int fd = syscall(SYS_pidfd_open, child, e->flags & PIDFD_THREAD);
			if (fd < 0) {
				err = -errno;
				pr_perror("restore pid %d fd %u: cannot make a pidfd of a reaped process",
					  rt->tasks[i].pid, e->fd);
				break;
			}
			/* (above the watchdog's socket: the root, which makes these in a tree with its
			 * own PID namespace, has closed it, and each process it forks closes its number) */
			int high = fcntl(fd, F_DUPFD_CLOEXEC, rt->watchdog->sock + 1);
			close(fd);
			if (high < 0) {
				err = -errno;
				pr_perror("restore pid %d fd %u: cannot keep a pidfd of a reaped process",
					  rt->tasks[i].pid, e->fd);
				break;
			}
			st->made[st->n++] = (struct reaped_pidfd){ rt->tasks[i].pid, e->fd, high };
		}
	}
	while (waitpid(child, NULL, __WALL) < 0 && errno == EINTR)
		;
	end_as_remove_cores(rt->ctx);
	return err;
}

/* One process per reaped process: the first fd of each inode not made yet makes it. */
static int make_all_reaped(struct pidfd_state *st, struct restore_tree *rt)
{
	int err = 0;

	for (size_t i = 0; i < rt->nr_tasks && !err; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds && !err; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			bool done = false;
			for (size_t m = 0; m < st->n && is_reaped(e); m++)
				done |= st->made[m].pid == rt->tasks[i].pid && st->made[m].fd == e->fd;
			if (is_reaped(e) && !done)
				err = make_reaped(st, rt, rt->tasks[i].pid, e);
		}
	}
	return err;
}

/* The stand-in sockets of the pidfds of threads. */
static int prepare_threads(struct pidfd_state *st, struct restore_tree *rt, size_t nr)
{
	if (!(st->threads = xzalloc(nr * sizeof(*st->threads))))
		return -ENOMEM;
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			int sk[2];
			if (!is_thread(e))
				continue;
			if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sk)) {
				pr_perror("restore pid %d fd %u: cannot make a socket to stand in for its pidfd "
					  "of thread %u", rt->tasks[i].pid, e->fd, e->pidfd_pid);
				return -errno;
			}
			st->threads[st->n_threads++] = (struct thread_pidfd){ rt->tasks[i].pid, e, sk[0], sk[1], -1 };
		}
	}
	return 0;
}

/* Room for every pidfd of a reaped process; they are made here unless the tree has its own
 * PID namespace. The stand-ins of pidfds of threads. */
static int prepare_pidfds(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct pidfd_state *st = state_of(ctx);
	bool cores = false;
	size_t nr = 0, nr_threads = 0;
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			nr += is_reaped(e);
			nr_threads += is_thread(e);
			cores |= is_reaped(e) && e->has_pidfd_exit && (e->pidfd_exit & CORE_DUMPED);
		}
	}
	if (nr_threads && (err = prepare_threads(st, rt, nr_threads)))
		return err;
	if (!nr)
		return 0;
	if (!(st->made = xzalloc(nr * sizeof(*st->made))))
		return -ENOMEM;
	if (cores)
		end_as_need_cores(ctx);
	return pid_ns_is_own(ctx) ? 0 : make_all_reaped(st, rt);
}

/* In the root, in the tree's new PID namespace, before it makes any other process. */
static int enter_pidfds(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct pidfd_state *st = state_of(ctx);

	return st->made && pid_ns_is_own(ctx) ? make_all_reaped(st, rt) : 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void close_pidfds(struct run_ctx *ctx)
{
	struct pidfd_state *st = state_of(ctx);

	for (size_t i = 0; i < st->n; i++)
		close(st->made[i].held);
	st->n = 0;
	for (size_t i = 0; i < st->n_threads; i++)
		close_fd(&st->threads[i].stand_in);
}

static void undo_pidfds(struct run_ctx *ctx, bool restored)
{
	struct pidfd_state *st = state_of(ctx);

	(void)restored;
	close_pidfds(ctx);
	for (size_t i = 0; i < st->n_threads; i++) {
		close_fd(&st->threads[i].channel);
		close_fd(&st->threads[i].file);
	}
	st->n_threads = 0;
}

static void free_pidfds(void *state)
{
	free(((struct pidfd_state *)state)->made);
	free(((struct pidfd_state *)state)->threads);
}

/* The pidfd of thread pidfd tp, by stasis: its thread exists now. */
static int make_thread_pidfd(struct restore_tree *rt, struct thread_pidfd *tp)
{
	const FdEntry *e = tp->e;
	struct restore_task *owner = pstree_task(rt, e->pidfd_tgid);
	pid_t host = 0;
	char state;
	int err;

	if ((!owner->host_pid && (err = pid_ns_find_host(rt->ctx, rt, owner, &state))) ||
	    (err = pid_ns_host_tids(rt->ctx, owner))) {
		if (err != -ENOMEM)
			pr_err("restore pid %d fd %u: the process %u of the thread of its pidfd is not there",
			       tp->pid, e->fd, e->pidfd_tgid);
		return err;
	}
	for (size_t i = 0; i < owner->core->n_threads; i++)
		if (owner->core->threads[i]->tid == e->pidfd_pid)
			host = owner->host_tids[i];
	tp->file = host ? syscall(SYS_pidfd_open, host, PIDFD_THREAD | (e->flags & O_NONBLOCK)) : -1;
	if (tp->file < 0) {
		err = host ? -errno : -ESRCH;
		pr_err("restore pid %d fd %u: cannot open a pidfd of thread %u of pid %u: %s", tp->pid,
		       e->fd, e->pidfd_pid, e->pidfd_tgid, strerror(-err));
		return err;
	}
	return 0;
}

int pidfd_thread_at(struct restore_tree *rt, const struct restore_task *t, uint32_t fd,
		    struct thread_pidfd_use *use)
{
	const struct pidfd_state *st = state_of(rt->ctx);
	const struct fd_tables tables = { restore_table, rt };
	const FdEntry *e = st->n_threads ? entry_of(&tables, t->pid, fd) : NULL;
	struct thread_pidfd *tp = e ? thread_pidfd_of(st, e) : NULL;
	int err;

	if (!tp)
		return 0;
	if (tp->file < 0 && (err = make_thread_pidfd(rt, tp)))
		return err;
	*use = (struct thread_pidfd_use){ tp->channel, tp->file };
	return 1;
}

static const FdTable *dump_table(const void *tree, uint32_t pid)
{
	const struct dump_tree *tr = tree;

	for (size_t i = 0; i < tr->nr_tasks; i++)
		if (tr->tasks[i].vpid == pid)
			return tr->tasks[i].fds_owner ? tr->tasks[i].fds_owner->fds : tr->tasks[i].fds;
	return NULL;
}

/* Dump, every fd table saved: no epoll watches a pidfd of a thread (not restored yet). */
static int check_epolls(struct run_ctx *ctx, struct dump_tree *tr)
{
	const struct fd_tables tables = { dump_table, tr };

	(void)ctx;
	for (size_t i = 0; i < tr->nr_tasks; i++) {
		const FdTable *tab = tr->tasks[i].fds;
		for (size_t k = 0; tab && k < tab->n_fds; k++) {
			const FdEntry *w;
			uint32_t target;
			if (tab->fds[k]->kind == FD_KIND__FD_EPOLL &&
			    (w = watched_thread_pidfd(&tables, tr->tasks[i].vpid, tab->fds[k], &target))) {
				pr_err("dump pid %d fd %u: an epoll watching fd %u, a pidfd of thread %u (not "
				       "supported yet)", tr->tasks[i].pid, tab->fds[k]->fd, target, w->pidfd_pid);
				return -ENOTSUP;
			}
		}
	}
	return 0;
}

const struct tree_object_ops tree_pidfds = {
	.name = "pidfds of reaped processes and of threads",
	.write = check_epolls,
	.state_size = sizeof(struct pidfd_state),
	.free_state = free_pidfds,
	.validate = validate_pidfds,
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
	if (is_thread(e)) { /* its thread is made later: its stand-in until then */
		const struct thread_pidfd *tp = thread_pidfd_of(state_of(t->ctx), e);
		if (!tp || tp->stand_in < 0)
			return -EBADF;
		fd = fcntl(tp->stand_in, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? -errno : fd;
	}
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
		fd = syscall(SYS_pidfd_open, e->pidfd_pid, e->flags & (O_NONBLOCK | PIDFD_THREAD));
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
	.opens_in_tree_ns = reaped_in_tree_ns,
	.kind = FD_KIND__FD_PIDFD,
};
