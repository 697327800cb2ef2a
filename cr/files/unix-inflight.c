/*
 * Files in flight: carried by messages waiting in unix sockets' queues (SCM_RIGHTS), not yet
 * received. A peek hands stasis a duplicate of each; each file is saved once, by id, in
 * sockets.img's in_flight table: as a reference to a process's fd when a process of the tree
 * holds the same open file (kcmp), else as a file only messages hold, by its own kind
 * (regular files, pipes, eventfds, signalfds, timerfds, inotify; unix sockets are unix.c's; an
 * epoll by its targets, each found among the tree's files with kcmp; a file of a network
 * namespace a process of the tree made, as that process's namespace). Restore: files only
 * messages hold are made by stasis before the tree (while pipes and held sockets are there),
 * the others are taken from the new processes once they exist (pidfd_getfd; a namespace: its
 * file in the process's /proc/PID/ns), then epolls get
 * their targets (in a child that puts each at its old fd number), and the messages are sent
 * again with them.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "net-nested.h"
#include "pid-ns.h"
#include "unix.h"
#include "util.h"

#define EPOLL_LINK "anon_inode:[eventpoll]"

/* The kinds a file only messages hold may be of; in the order each is offered one at dump. */
static const struct fd_kind_ops *const carried_kinds[] = {
	&fd_kind_memfd, &fd_kind_mqueue, /* claimed first (they look like regular files), refused */
	&fd_kind_regular, &fd_kind_pipe, &fd_kind_eventfd, &fd_kind_signalfd, &fd_kind_timerfd,
	&fd_kind_inotify,
};

static bool carried_kind_ok(const FdEntry *e)
{
	switch (e->kind) {
	case FD_KIND__FD_REGULAR:
		return !e->has_ghost_id; /* deleted files: ghosts.img is read for processes' only */
	case FD_KIND__FD_PIPE:
	case FD_KIND__FD_EVENTFD:
	case FD_KIND__FD_SIGNALFD:
	case FD_KIND__FD_TIMERFD:
	case FD_KIND__FD_INOTIFY:
	case FD_KIND__FD_EPOLL:
	case FD_KIND__FD_UNIX_PAIR:
	case FD_KIND__FD_UNIX_PENDING:
	case FD_KIND__FD_UNIX_FRESH:
	case FD_KIND__FD_UNIX_EXTERNAL:
	case FD_KIND__FD_EXTERNAL:
		return true;
	case FD_KIND__FD_UNIX_BOUND:
		return e->has_sock_ino;
	case FD_KIND__FD_NSFILE: /* the namespace of process shared_pid */
		return e->has_shared_pid && e->path && !strcmp(e->path, "net");
	default:
		return false;
	}
}

static const struct fd_kind_ops *carried_kind_of(FdKind kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(carried_kinds); i++)
		if (carried_kinds[i]->kind == kind)
			return carried_kinds[i];
	return kind == FD_KIND__FD_EPOLL ? &fd_kind_epoll : kind == FD_KIND__FD_EXTERNAL ? &fd_kind_external : NULL;
}

static bool same_file(pid_t pid1, int fd1, pid_t pid2, int fd2)
{
	return syscall(SYS_kcmp, pid1, pid2, KCMP_FILE, fd1, fd2) == 0;
}

int unix_carried_note(struct unix_state *ud, int fd, pid_t pid, int via_fd)
{
	struct stat st;

	if (fstat(fd, &st)) {
		close(fd);
		return -errno;
	}
	for (size_t i = 0; i < ud->nr_carried; i++) {
		const struct carried_file *c = &ud->carried[i];
		if (c->dev == st.st_dev && c->ino == st.st_ino && same_file(getpid(), c->fd, getpid(), fd)) {
			close(fd);
			return i;
		}
	}
	struct carried_file *more = xreallocarray(ud->carried, ud->nr_carried + 1, sizeof(*more));
	if (!more) {
		close(fd);
		return -ENOMEM;
	}
	ud->carried = more;
	ud->carried[ud->nr_carried] = (struct carried_file){ fd, st.st_dev, st.st_ino, S_ISSOCK(st.st_mode),
							     pid, via_fd, NULL };
	return ud->nr_carried++;
}

/* A process's fd for which match(pid, fd) holds: 1, *pid and *fd; 0: none; -ENOMEM. */
static int find_in_tree(struct dump_task *t, bool (*match)(const void *, pid_t, int), const void *arg,
			pid_t *pid, int *fd)
{
	for (size_t k = 0; k < t->tree_size; k++) {
		auto_free int *fds = NULL;
		size_t n;
		int err = proc_list_numbers(t->tree[k].pid, "fd", &fds, &n);
		if (err == -ENOMEM)
			return err;
		if (err)
			continue;
		for (size_t i = 0; i < n; i++) {
			if (match(arg, t->tree[k].pid, fds[i])) {
				*pid = t->tree[k].pid;
				*fd = fds[i];
				return 1;
			}
		}
	}
	return 0;
}

static bool is_carried_file(const void *arg, pid_t pid, int fd)
{
	const struct carried_file *c = arg;
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	return stat(path, &st) == 0 && st.st_ino == c->ino && st.st_dev == c->dev &&
	       same_file(getpid(), c->fd, pid, fd);
}

int unix_carried_held_by_tree(struct unix_state *ud, struct dump_task *t, uint32_t id, FdEntry *e)
{
	pid_t pid;
	int fd, found = find_in_tree(t, is_carried_file, &ud->carried[id], &pid, &fd);

	if (found <= 0)
		return found;
	e->kind = FD_KIND__FD_SHARED;
	e->has_shared_pid = e->has_shared_fd = true;
	e->shared_pid = pid_ns_vpid(t->ctx, pid);
	e->shared_fd = fd;
	return 1;
}

static bool is_epoll_target(const void *arg, pid_t pid, int fd)
{
	return syscall(SYS_kcmp, pid, getpid(), KCMP_EPOLL_TFD, fd, arg) == 0;
}

/* An epoll in flight: its targets, each a file of the tree (held or carried) found with kcmp. */
static int dump_carried_epoll(struct unix_state *ud, struct dump_task *t, uint32_t id,
			      const struct fd_probe *p, FdEntry *e)
{
	const int efd = ud->carried[id].fd, via_fd = ud->carried[id].via_fd; /* the table may grow */
	const pid_t via_pid = ud->carried[id].pid;

	e->kind = FD_KIND__FD_EPOLL;
	for (const char *l = strstr(p->info, "tfd:"); l; l = strstr(l + 4, "tfd:")) {
		struct kcmp_epoll_slot slot;
		pid_t pid;
		int fd, target = -1, found = 0, err = epoll_item_read(e, l, efd, &slot);
		if (err == -EINVAL)
			pr_err("dump pid %d fd %d: cannot read the registrations of an epoll carried in flight",
			       via_pid, via_fd);
		if (err)
			return err;
		for (size_t k = 0; k < ud->nr_carried && target < 0; k++)
			if (is_epoll_target(&slot, getpid(), ud->carried[k].fd))
				target = k;
		if (target < 0 && (found = find_in_tree(t, is_epoll_target, &slot, &pid, &fd)) < 0)
			return found;
		if (found) {
			int copy = task_fd_copy(pid, fd);
			target = copy < 0 ? copy : unix_carried_note(ud, copy, via_pid, via_fd);
			if (target == -ENOMEM)
				return target;
		}
		if (target < 0) {
			pr_err("dump pid %d fd %d: an epoll carried in flight watches a file (fd %u where "
			       "it was added) that no process of the tree holds (not supported)",
			       via_pid, via_fd, slot.tfd);
			return -ENOTSUP;
		}
		uint32_t *files = xreallocarray(e->target_files, e->n_target_files + 1, sizeof(*files));
		if (!files)
			return -ENOMEM;
		e->target_files = files;
		e->target_files[e->n_target_files++] = target;
	}
	return 1;
}

int unix_carried_dump_file(struct unix_state *ud, struct dump_task *t, uint32_t id, FdEntry *e)
{
	const pid_t via_pid = ud->carried[id].pid;
	const int via_fd = ud->carried[id].via_fd;
	struct fd_probe p;
	auto_free char *info = NULL;
	int claimed = 0, err = fd_probe(getpid(), ud->carried[id].fd, &p, &info);

	if (err)
		return err;
	p.flags &= ~O_CLOEXEC; /* the receiver's recvmsg decides */
	e->has_flags = true;
	e->flags = p.flags;
	unsigned long long ns;
	int end = 0;
	if (sscanf(p.link, "net:[%llu]%n", &ns, &end) == 1 && !p.link[end] &&
	    (e->shared_pid = net_nested_maker_of(t->ctx, ns))) {
		e->kind = FD_KIND__FD_NSFILE;
		e->has_shared_pid = true;
		return (e->path = xstrdup("net")) ? 0 : -ENOMEM;
	}
	if (!strcmp(p.link, EPOLL_LINK))
		claimed = dump_carried_epoll(ud, t, id, &p, e);
	for (size_t k = 0; k < ARRAY_SIZE(carried_kinds) && !claimed; k++) {
		e->kind = carried_kinds[k]->kind;
		claimed = carried_kinds[k]->dump(t, &p, e);
	}
	if (claimed < 0)
		return claimed;
	if (!claimed || !carried_kind_ok(e)) {
		const struct fd_kind_ops *ops = claimed ? carried_kind_of(e->kind) : NULL;
		pr_err("dump pid %d fd %d: a message waiting in its unix socket carries %s (%s), which "
		       "no process holds: not supported in flight",
		       via_pid, via_fd, p.link,
		       e->has_ghost_id ? "a deleted file" : ops ? ops->name : "a kind not restored in flight");
		return -ENOTSUP;
	}
	return 0;
}

int unix_carried_check(const struct unix_state *ud, struct dump_task *tasks, size_t nr_tasks)
{
	bool tree_has_pipe = false;

	for (size_t i = 0; i < nr_tasks; i++)
		for (size_t k = 0; k < tasks[i].fds->n_fds; k++)
			tree_has_pipe |= tasks[i].fds->fds[k]->kind == FD_KIND__FD_PIPE;
	for (size_t i = 0; i < ud->nr_carried; i++) {
		const FdEntry *e = ud->carried[i].e;
		if (e && e->kind == FD_KIND__FD_PIPE && !tree_has_pipe) {
			pr_err("dump pid %d fd %d: a message waiting in its unix socket carries %s, and no "
			       "process of the tree holds a pipe: restore reads pipes.img only for those "
			       "(not supported)",
			       ud->carried[i].pid, ud->carried[i].via_fd, e->path);
			return -ENOTSUP;
		}
	}
	return 0;
}

/* ---- restore ---- */

static const FdEntry *holder_entry(const struct restore_task *tasks, size_t nr_tasks, pid_t pid,
				   uint32_t fd)
{
	for (size_t i = 0; i < nr_tasks; i++)
		for (size_t k = 0; tasks[i].pid == pid && k < tasks[i].fds->n_fds; k++)
			if (tasks[i].fds->fds[k]->fd == fd)
				return tasks[i].fds->fds[k];
	return NULL;
}

static bool live_task(const struct restore_task *tasks, size_t nr_tasks, uint32_t pid)
{
	for (size_t i = 0; i < nr_tasks; i++)
		if (tasks[i].pid == (pid_t)pid)
			return true;
	return false;
}

int unix_carried_validate(struct unix_state *st, const struct restore_task *tasks, size_t nr_tasks)
{
	const SocketTable *tab = st->rst;
	struct restore_task pseudo = { .ctx = tasks[0].ctx };

	st->carried = xzalloc((tab->n_in_flight + 1) * sizeof(*st->carried));
	if (!st->carried)
		return -ENOMEM;
	for (size_t i = 0; i < tab->n_in_flight; i++)
		st->carried[i].fd = -1;
	st->nr_carried = tab->n_in_flight;
	for (size_t i = 0; i < tab->n_in_flight; i++) {
		const FdEntry *e = tab->in_flight[i];
		const struct fd_kind_ops *ops = carried_kind_of(e->kind);
		bool ok = e->fd == i && sockopts_valid(e);
		if (e->kind == FD_KIND__FD_SHARED)
			ok = ok && e->has_shared_pid && e->has_shared_fd &&
			     holder_entry(tasks, nr_tasks, e->shared_pid, e->shared_fd);
		else if (e->kind == FD_KIND__FD_NSFILE)
			ok = ok && carried_kind_ok(e) && live_task(tasks, nr_tasks, e->shared_pid);
		else
			ok = ok && carried_kind_ok(e) && (!e->has_sock_ino || e->kind != FD_KIND__FD_UNIX_PAIR ||
							   e->has_pair_id);
		ok = ok && e->n_target_files == (e->kind == FD_KIND__FD_EPOLL ? e->n_targets : 0);
		for (size_t k = 0; ok && k < e->n_target_files; k++)
			ok = e->target_files[k] < tab->n_in_flight && e->targets[k]->fd < (1u << 20) &&
			     !e->targets[k]->has_file_fd && !e->targets[k]->has_file_pid;
		if (!ok) {
			pr_err("image sockets.img: file in flight %zu is invalid", i);
			return -EINVAL;
		}
		unsigned logged = log_errors();
		int err = ops && ops->validate ? ops->validate(&pseudo, e) : 0;
		if (err)
			return log_unnamed(logged, err, "image sockets.img: file in flight %zu (%s) cannot be made again",
					   i, ops->name);
	}
	return 0;
}

/* A file only messages hold, made again in stasis (unix sockets: held by stasis already). */
static int open_carried(struct unix_state *st, struct run_ctx *ctx, const FdEntry *e)
{
	struct restore_task pseudo = { .ctx = ctx };
	int fd;

	switch (e->kind) {
	case FD_KIND__FD_UNIX_PAIR:
	case FD_KIND__FD_UNIX_PENDING:
	case FD_KIND__FD_UNIX_BOUND:
		fd = unix_held_fd(st, e->sock_ino);
		fd = fd < 0 ? -ENOENT : unix_dup_held(fd, e->flags);
		break;
	case FD_KIND__FD_UNIX_FRESH:
		fd = unix_fresh_socket(e);
		break;
	case FD_KIND__FD_UNIX_EXTERNAL:
		fd = unix_connect_saved(ctx, e);
		break;
	default:
		fd = carried_kind_of(e->kind)->open(&pseudo, e);
	}
	int err = fd >= 0 && sockopts_saved(e) ? sockopts_restore(fd, e) : 0;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

int unix_carried_open(struct unix_state *st, struct run_ctx *ctx)
{
	for (size_t i = 0; i < st->nr_carried; i++) {
		const FdEntry *e = st->rst->in_flight[i];
		unsigned logged = log_errors();
		if (e->kind == FD_KIND__FD_SHARED || e->kind == FD_KIND__FD_NSFILE)
			continue; /* (taken from the processes once they exist) */
		st->carried[i].fd = open_carried(st, ctx, e);
		if (st->carried[i].fd < 0) {
			int err = st->carried[i].fd;
			return log_unnamed(logged, err, "restore: cannot make file in flight %zu (%s) again", i,
					   e->path ? e->path
					   : carried_kind_of(e->kind) ? carried_kind_of(e->kind)->name
								      : "unix socket");
		}
	}
	return 0;
}

/* In a child (the numbers are its own): each target at its old fd number, then registered. */
static void register_in_child(const struct unix_state *st, const FdEntry *e, int epfd, int *src)
{
	int high = 0;

	for (size_t k = 0; k < e->n_targets; k++)
		high = (int)e->targets[k]->fd > high ? (int)e->targets[k]->fd : high;
	if ((epfd = fcntl(epfd, F_DUPFD, high + 1)) < 0)
		_exit(errno);
	for (size_t k = 0; k < e->n_targets; k++)
		if ((src[k] = fcntl(st->carried[e->target_files[k]].fd, F_DUPFD, high + 1)) < 0)
			_exit(errno);
	for (size_t k = 0; k < e->n_targets; k++) {
		struct epoll_event ev = { .events = e->targets[k]->events, .data.u64 = e->targets[k]->data };
		if (dup2(src[k], e->targets[k]->fd) < 0 ||
		    (epoll_ctl(epfd, EPOLL_CTL_ADD, e->targets[k]->fd, &ev) && errno != EEXIST))
			_exit(errno);
	}
	_exit(0);
}

static int register_targets(const struct unix_state *st, size_t id)
{
	const FdEntry *e = st->rst->in_flight[id];
	int status = 0;

	if (!e->n_targets)
		return 0;
	auto_free int *src = xzalloc(e->n_targets * sizeof(int)); /* the child's copies */
	if (!src)
		return -ENOMEM;
	pid_t child = fork();
	if (child == 0)
		register_in_child(st, e, st->carried[id].fd, src);
	if (child < 0 || waitpid(child, &status, 0) != child)
		return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		pr_err("restore: cannot register the targets of the epoll in flight %zu: %s", id,
		       strerror(WIFEXITED(status) ? WEXITSTATUS(status) : EINTR));
		return -EIO;
	}
	return 0;
}

/* The namespace of kind e->path that process host is in, opened as e->flags say. */
static int ns_file_of(pid_t host, const FdEntry *e)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", host, e->path);
	int fd = open(path, (e->flags & O_ACCMODE) | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int unix_carried_take(struct unix_state *st)
{
	int err;

	for (size_t i = 0; i < st->nr_carried; i++) {
		const FdEntry *e = st->rst->in_flight[i];
		if (e->kind != FD_KIND__FD_SHARED && e->kind != FD_KIND__FD_NSFILE)
			continue;
		pid_t host = pid_ns_host_of(st->ctx, st->rt, e->shared_pid);
		st->carried[i].fd = host <= 0 ? (host ? host : -ESRCH)
				    : e->kind == FD_KIND__FD_SHARED ? task_fd_copy(host, e->shared_fd)
								    : ns_file_of(host, e);
		if (st->carried[i].fd == -ENOMEM)
			return -ENOMEM;
		if (st->carried[i].fd < 0 && e->kind == FD_KIND__FD_NSFILE)
			pr_err("restore pid %u: cannot open its %s namespace to send it in flight again: %s",
			       e->shared_pid, e->path, strerror(-st->carried[i].fd));
		else if (st->carried[i].fd < 0)
			pr_err("restore pid %u fd %u: cannot take it to send it in flight again: %s",
			       e->shared_pid, e->shared_fd, strerror(-st->carried[i].fd));
		if (st->carried[i].fd < 0)
			return st->carried[i].fd;
	}
	for (size_t i = 0; i < st->nr_carried; i++)
		if (st->rst->in_flight[i]->kind == FD_KIND__FD_EPOLL && (err = register_targets(st, i)))
			return err;
	return 0;
}

void unix_carried_close(struct unix_state *st)
{
	for (size_t i = 0; i < st->nr_carried; i++) {
		if (st->carried[i].fd >= 0)
			close(st->carried[i].fd);
		st->carried[i].fd = -1;
	}
}
