/* eventfd: its counter and semaphore mode (from fdinfo). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

static int dump_eventfd(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	uint64_t count, sem = 0;

	if (strcmp(p->link, "anon_inode:[eventfd]"))
		return 0;
	if (!fdinfo_u64(p->info, "eventfd-count:", 16, &count)) {
		pr_err("dump pid %d fd %d: no eventfd-count in its fdinfo", t->pid, p->fd);
		return -EINVAL;
	}
	fdinfo_u64(p->info, "eventfd-semaphore:", 10, &sem);
	e->has_counter = e->has_semaphore = e->has_flags = true;
	e->counter = count;
	e->semaphore = sem;
	e->flags = p->flags;
	return 1;
}

static int open_eventfd(struct restore_task *t, const FdEntry *e)
{
	int flags = EFD_CLOEXEC | (e->flags & O_NONBLOCK ? EFD_NONBLOCK : 0) |
		    (e->semaphore ? EFD_SEMAPHORE : 0);
	(void)t;
	if (e->counter > 0xfffffffffffffffeULL)
		return -EINVAL;
	int fd = eventfd(0, flags);
	if (fd < 0)
		return -errno;
	/* eventfd() takes an unsigned int: write the full 64-bit count instead */
	if (e->counter && write(fd, &e->counter, sizeof(e->counter)) != sizeof(e->counter)) {
		close(fd);
		return -EIO;
	}
	return fd;
}

const struct fd_kind_ops fd_kind_eventfd = {
	.name = "eventfd",
	.dump = dump_eventfd,
	.open = open_eventfd,
	.kind = FD_KIND__FD_EVENTFD,
};
