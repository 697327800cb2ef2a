/*
 * POSIX message queues (mq_open): reopened by name with the fd's flags. A queue lives in the
 * kernel until unlinked, so on the same host it is there, messages and all; if it is gone (a
 * reboot) it is made again with its saved size limits and mode, empty: messages cannot be
 * read without taking them, so they are not saved.
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "util.h"

#define MQUEUE_MAGIC 0x19800202

static int dump_mqueue(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	char path[64];
	struct statfs sf;
	struct mq_attr attr;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", t->pid, p->fd);
	if (statfs(path, &sf) || sf.f_type != MQUEUE_MAGIC)
		return 0;
	auto_close int pidfd = syscall(SYS_pidfd_open, t->pid, 0);
	auto_close int q = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, p->fd, 0);
	if (q < 0 || mq_getattr(q, &attr)) {
		pr_perror("dump pid %d fd %d: cannot read message queue %s", t->pid, p->fd, p->link);
		return -errno;
	}
	e->path = xstrdup(p->link);
	e->has_flags = e->has_mq_maxmsg = e->has_mq_msgsize = e->has_mq_mode = true;
	e->flags = p->flags;
	e->mq_maxmsg = attr.mq_maxmsg;
	e->mq_msgsize = attr.mq_msgsize;
	e->mq_mode = p->st.st_mode & 07777;
	return 1;
}

static int open_mqueue(struct restore_task *t, const FdEntry *e)
{
	struct mq_attr attr = { .mq_maxmsg = e->mq_maxmsg, .mq_msgsize = e->mq_msgsize };
	int flags = (e->flags & (O_ACCMODE | O_NONBLOCK)) | O_CLOEXEC;
	(void)t;

	if (!e->path || e->path[0] != '/' || strchr(e->path + 1, '/'))
		return -EINVAL;
	mqd_t q = mq_open(e->path, flags);
	if (q < 0 && errno == ENOENT) {
		pr_warn("restore: message queue %s is gone: made again, empty", e->path);
		q = mq_open(e->path, flags | O_CREAT | O_EXCL, e->mq_mode, &attr);
	}
	return q < 0 ? -errno : q;
}

const struct fd_kind_ops fd_kind_mqueue = {
	.name = "POSIX message queue",
	.dump = dump_mqueue,
	.open = open_mqueue,
	.kind = FD_KIND__FD_MQUEUE,
};
