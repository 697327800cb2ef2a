/*
 * epoll: the files it watches, each with the fd number it was registered with, its events and
 * data (from fdinfo). The kernel keys an item by file and fd number and keeps it while the file
 * lives: the number may since have been closed or given to another file, and the file may be
 * open only at other numbers, or only in another process of the tree (an epoll inherited
 * across fork). Dump finds each item's file with kcmp (KCMP_EPOLL_TFD) among the fds of the
 * process, then of the tree. Restore: an item whose file is open at its number is registered
 * once every fd has its number; another one is registered with its file put at the item's
 * number for the call only, and the fd table put back right after (a file of another process
 * is held by stasis, cr/files/shared.c: registered when the epoll is made). An EPOLLONESHOT
 * item that had fired is disarmed again by firing it once (add_disarmed).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

#define MAX_TARGET_FD (1u << 20) /* above any fd number a process can hold */

/* Is the file at fd of pid the item of slot (an epoll of epoll_pid)? */
static bool is_target(pid_t pid, int fd, pid_t epoll_pid, const struct kcmp_epoll_slot *slot)
{
	return syscall(SYS_kcmp, pid, epoll_pid, KCMP_EPOLL_TFD, fd, slot) == 0;
}

/* The first fd of pid holding the file of the item; -ENOENT: none. */
static int target_in(pid_t pid, pid_t epoll_pid, const struct kcmp_epoll_slot *slot)
{
	auto_free int *fds = NULL;
	size_t n;
	int err = proc_list_numbers(pid, "fd", &fds, &n);

	if (err)
		return err == -ENOMEM ? err : -ENOENT;
	for (size_t i = 0; i < n; i++)
		if (is_target(pid, fds[i], epoll_pid, slot))
			return fds[i];
	return -ENOENT;
}

/*
 * Where the file of the item is: at its own number (nothing to record), at another fd of the
 * process (file_fd), or at an fd of another process of the tree (file_pid too): the first
 * one, in the order processes and fds are dumped, is the one that holds it in the images (the
 * others are its dups and shares). -ENOENT: nowhere in the tree.
 */
static int find_target(struct dump_task *t, const struct kcmp_epoll_slot *slot, EpollTarget *et)
{
	if (is_target(t->pid, slot->tfd, t->pid, slot))
		return 0;
	int fd = target_in(t->pid, t->pid, slot);
	for (size_t k = 0; fd == -ENOENT && k < t->tree_size; k++) {
		if (t->tree[k].pid == t->pid || (fd = target_in(t->tree[k].pid, t->pid, slot)) < 0)
			continue;
		et->has_file_pid = true;
		et->file_pid = t->tree[k].vpid;
	}
	if (fd < 0)
		return fd;
	et->has_file_fd = true;
	et->file_fd = fd;
	return 0;
}

int epoll_item_read(FdEntry *e, const char *l, int efd, struct kcmp_epoll_slot *slot)
{
	uint64_t fd, events, data;

	if (!fdinfo_u64(l, "tfd:", 10, &fd) || !fdinfo_u64(l, "events:", 16, &events) ||
	    !fdinfo_u64(l, "data:", 16, &data) || fd >= MAX_TARGET_FD)
		return -EINVAL;
	/* items of one number come in the kernel's order, which kcmp counts (toff) */
	*slot = (struct kcmp_epoll_slot){ .efd = efd, .tfd = fd };
	for (size_t k = 0; k < e->n_targets; k++)
		slot->toff += e->targets[k]->fd == fd;
	EpollTarget *et = xzalloc(sizeof(*et)), **more;
	if (!et || !(more = xreallocarray(e->targets, e->n_targets + 1, sizeof(*more)))) {
		free(et);
		return -ENOMEM;
	}
	epoll_target__init(et);
	et->fd = fd;
	et->events = events;
	et->data = data;
	e->targets = more;
	e->targets[e->n_targets++] = et;
	return 0;
}

static int dump_epoll(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	if (strcmp(p->link, "anon_inode:[eventpoll]"))
		return 0;
	e->has_flags = true;
	e->flags = p->flags;
	for (const char *l = strstr(p->info, "tfd:"); l; l = strstr(l + 4, "tfd:")) {
		struct kcmp_epoll_slot slot;
		int err = epoll_item_read(e, l, p->fd, &slot);
		if (err == -EINVAL)
			pr_err("dump pid %d fd %d: cannot read its epoll registrations", t->pid, p->fd);
		if (err)
			return err;
		EpollTarget *et = e->targets[e->n_targets - 1];
		if ((err = find_target(t, &slot, et)) == -ENOENT)
			pr_err("dump pid %d fd %d: epoll watches a file registered as fd %u that no process "
			       "of the tree holds (not supported)",
			       t->pid, p->fd, et->fd);
		if (err)
			return err;
	}
	return 1;
}

static int validate_epoll(const struct restore_task *t, const FdEntry *e)
{
	for (size_t k = 0; k < e->n_targets; k++) {
		const EpollTarget *et = e->targets[k];
		bool ok = et->fd < MAX_TARGET_FD && (!et->has_file_pid || et->has_file_fd);
		if (ok && et->has_file_pid)
			ok = et->file_pid != (uint32_t)t->pid; /* the holder: cr/files/shared.c */
		else if (ok && et->has_file_fd) {
			ok = false;
			for (size_t i = 0; i < t->fds->n_fds && !ok; i++)
				ok = t->fds->fds[i]->fd == et->file_fd && et->file_fd != et->fd;
		}
		if (!ok) {
			pr_err("image fds-%d.img: fd %u: epoll target %zu (fd %u) is invalid", t->pid, e->fd, k,
			       et->fd);
			return -EINVAL;
		}
	}
	return 0;
}

#define EP_PRIVATE_BITS (EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE)
#define EP_FIRING (POLLIN | POLLOUT | POLLPRI | POLLRDHUP)

/* An EPOLLONESHOT item that fired: the kernel left only its private bits. */
static bool disarmed(uint32_t events)
{
	return (events & EPOLLONESHOT) && !(events & ~EP_PRIVATE_BITS);
}

/*
 * EPOLL_CTL_ADD always arms an item for errors and hangups: a disarmed one is added for the
 * events its file has ready now and made to fire once (epoll_wait), which disarms it again.
 * That wait must report nothing else: the epoll has no ready item yet (disarmed items are
 * registered first). 1: it could not be (its file has nothing ready), it stays armed for
 * errors and hangups.
 */
static int add_disarmed(int epfd, int tfd, int src, struct epoll_event *ev)
{
	struct pollfd ep = { epfd, POLLIN, 0 }, file = { src, EP_FIRING, 0 };
	uint64_t data = ev->data.u64;

	if (poll(&ep, 1, 0) || poll(&file, 1, 0) != 1 || !(file.revents & EP_FIRING))
		return epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, ev) ? -errno : 1;
	ev->events |= file.revents & EP_FIRING;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, ev))
		return -errno;
	return epoll_wait(epfd, ev, 1, 0) == 1 && ev->data.u64 == data ? 0 : 1;
}

static int ctl_add(int epfd, int tfd, int src, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	int ret = disarmed(events) ? add_disarmed(epfd, tfd, src, &ev)
				   : epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev) ? -errno : 0;

	return ret == -EEXIST ? 0 : ret;
}

/*
 * Registers the file at fd src with epfd as an item keyed by fd number tfd: the file is put at
 * tfd for the call only, and what tfd held (nothing, or a file with its close-on-exec flag,
 * maybe the epoll itself) is put back. 0, 1 (a disarmed item left armed for errors and
 * hangups), or -errno.
 */
static int add_item(int epfd, int tfd, int src, uint32_t events, uint64_t data)
{
	if (src == tfd)
		return ctl_add(epfd, tfd, src, events, data);
	int flags = fcntl(tfd, F_GETFD), saved = flags < 0 ? -1 : fcntl(tfd, F_DUPFD_CLOEXEC, 0);
	if (flags >= 0 && saved < 0)
		return -errno;
	int err = dup2(src, tfd) < 0 ? -errno : 0;
	if (!err)
		err = ctl_add(epfd == tfd ? saved : epfd, tfd, tfd, events, data);
	int put_back = saved < 0 ? close(tfd) : dup3(saved, tfd, flags & FD_CLOEXEC ? O_CLOEXEC : 0);
	if (put_back < 0 && err >= 0)
		err = -errno;
	if (saved >= 0)
		close(saved);
	return err;
}

/* Step k of 2 * n_targets registrations: the disarmed targets first (add_disarmed), then the
 * others; NULL when target k % n_targets is not registered at this step. */
static const EpollTarget *at_step(const FdEntry *e, size_t k)
{
	const EpollTarget *et = e->targets[k % e->n_targets];

	return disarmed(et->events) == (k < e->n_targets) ? et : NULL;
}

static void warn_armed(const struct restore_task *t, const FdEntry *e, const EpollTarget *et)
{
	pr_warn("restore pid %d fd %u: the EPOLLONESHOT item of fd %u had fired (disarmed); its "
		"file has no event ready to fire it again, so it is armed for errors and hangups",
		t->pid, e->fd, et->fd);
}

/* The items whose file another process holds (stasis holds it now, cr/files/shared.c). */
static int open_epoll(struct restore_task *t, const FdEntry *e)
{
	int fd = epoll_create1(EPOLL_CLOEXEC), err = fd < 0 ? -errno : 0;
	for (size_t k = 0; !err && k < 2 * e->n_targets; k++) {
		const EpollTarget *et = at_step(e, k);
		if (!et || !et->has_file_pid)
			continue;
		int src = shared_file_fd(t->ctx, et->file_pid, et->file_fd);
		err = src < 0 ? -ENOENT : add_item(fd, et->fd, src, et->events, et->data);
		if (err == 1)
			warn_armed(t, e, et);
		if (err < 0)
			pr_err("restore pid %d fd %u: cannot register fd %u of pid %u with epoll as fd %u: %s",
			       t->pid, e->fd, et->file_fd, et->file_pid, et->fd, strerror(-err));
		err = err < 0 ? err : 0;
	}
	if (err && fd >= 0)
		close(fd);
	return err ? err : fd;
}

/* Once every fd has its number: the items whose file the process holds. */
static int register_targets(const struct restore_task *t, const FdEntry *e)
{
	for (size_t k = 0; k < 2 * e->n_targets; k++) {
		const EpollTarget *et = at_step(e, k);
		if (!et || et->has_file_pid)
			continue;
		int src = et->has_file_fd ? (int)et->file_fd : (int)et->fd,
		    err = add_item(e->fd, et->fd, src, et->events, et->data);
		if (err == 1)
			warn_armed(t, e, et);
		if (err < 0) {
			pr_err("restore pid %d fd %u: cannot register fd %d with epoll as fd %u: %s", t->pid,
			       e->fd, src, et->fd, strerror(-err));
			return err;
		}
	}
	return 0;
}

const struct fd_kind_ops fd_kind_epoll = {
	.name = "epoll",
	.dump = dump_epoll,
	.validate = validate_epoll,
	.open = open_epoll,
	.settle = register_targets,
	.kind = FD_KIND__FD_EPOLL,
};
