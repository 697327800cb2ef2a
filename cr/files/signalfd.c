/* signalfd: the set of signals it reads (from fdinfo). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

static int dump_signalfd(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	uint64_t mask;

	if (strcmp(p->link, "anon_inode:[signalfd]"))
		return 0;
	if (!fdinfo_u64(p->info, "sigmask:", 16, &mask)) {
		pr_err("dump pid %d fd %d: no sigmask in its fdinfo", t->pid, p->fd);
		return -EINVAL;
	}
	e->has_sigmask = e->has_flags = true;
	e->sigmask = mask;
	e->flags = p->flags;
	return 1;
}

static int open_signalfd(struct restore_task *t, const FdEntry *e)
{
	int flags = SFD_CLOEXEC | (e->flags & O_NONBLOCK ? SFD_NONBLOCK : 0);
	(void)t;
	/* the kernel's own 8-byte mask, not glibc's 128-byte sigset_t */
	int fd = syscall(SYS_signalfd4, -1, &e->sigmask, sizeof(e->sigmask), flags);
	return fd < 0 ? -errno : fd;
}

const struct fd_kind_ops fd_kind_signalfd = {
	.name = "signalfd",
	.dump = dump_signalfd,
	.open = open_signalfd,
	.kind = FD_KIND__FD_SIGNALFD,
};
