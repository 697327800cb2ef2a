/*
 * epoll: the fds it watches, with their events and data (from fdinfo). The instance is
 * created with the other fds; its registrations are made last, once every fd of the process
 * has its own number (the kernel keys a registration by file and fd number).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

/*
 * The kernel keys a registration by file and fd number, and keeps it while the file lives:
 * the fd number may since have been closed, or hold another file. Is it still that file?
 */
static bool same_target(pid_t pid, uint64_t fd, const char *line)
{
	uint64_t ino;
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/fd/%llu", pid, (unsigned long long)fd);
	return fdinfo_u64(line, "ino:", 16, &ino) && stat(path, &st) == 0 && st.st_ino == ino;
}

static int dump_epoll(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	if (strcmp(p->link, "anon_inode:[eventpoll]"))
		return 0;
	e->has_flags = true;
	e->flags = p->flags;
	for (const char *l = strstr(p->info, "tfd:"); l; l = strstr(l + 4, "tfd:")) {
		uint64_t fd, events, data;
		if (!fdinfo_u64(l, "tfd:", 10, &fd) || !fdinfo_u64(l, "events:", 16, &events) ||
		    !fdinfo_u64(l, "data:", 16, &data)) {
			pr_err("dump pid %d fd %d: cannot read its epoll registrations", t->pid, p->fd);
			return -EINVAL;
		}
		if (!same_target(t->pid, fd, l)) {
			pr_err("dump pid %d fd %d: epoll watches a file that is no longer open at fd %llu "
			       "(closed or replaced since; not supported yet)",
			       t->pid, p->fd, (unsigned long long)fd);
			return -ENOTSUP;
		}
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
	}
	return 1;
}

static int open_epoll(struct restore_task *t, const FdEntry *e)
{
	(void)t;
	(void)e;
	int fd = epoll_create1(EPOLL_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Once every fd has its number: the registrations, by fd number. */
static int register_targets(const struct restore_task *t, const FdEntry *e)
{
	for (size_t k = 0; k < e->n_targets; k++) {
		struct epoll_event ev = { .events = e->targets[k]->events,
					  .data.u64 = e->targets[k]->data };
		if (epoll_ctl(e->fd, EPOLL_CTL_ADD, e->targets[k]->fd, &ev) && errno != EEXIST) {
			pr_perror("restore pid %d fd %u: cannot register fd %u with epoll", t->pid, e->fd,
				  e->targets[k]->fd);
			return -errno;
		}
	}
	return 0;
}

const struct fd_kind_ops fd_kind_epoll = {
	.name = "epoll",
	.dump = dump_epoll,
	.open = open_epoll,
	.settle = register_targets,
	.kind = FD_KIND__FD_EPOLL,
};
