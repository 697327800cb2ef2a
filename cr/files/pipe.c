/*
 * Pipes and named pipes (FIFOs): each is saved once (pipes.img) with its capacity and the
 * data written to it but not read yet, copied out with tee() so that nothing is consumed. On
 * restore stasis creates every pipe (or opens every FIFO by path) before the tree, sizes it
 * and writes the data back; each end is then handed to every process that held it, as the
 * same open file. A pipe the caller names with --inherit-fd fd[N]:pipe:[INODE] (its other
 * end was outside the tree, a container's stdio say) is not made: fd N takes its place, as
 * it is (its data is the caller's business).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "util.h"

struct pipe_dump {
	PipeObject **pipes;
	size_t n;
};

struct pipe_dump *pipe_dump_new(void)
{
	return xzalloc(sizeof(struct pipe_dump));
}

/* Capacity and unread data of the pipe behind /proc/PID/fd/N, without consuming the data. */
static int read_pipe(pid_t pid, int fd, PipeObject *o)
{
	char path[64];
	int tmp[2] = { -1, -1 };
	auto_close int in = -1;
	int size, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	in = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (in < 0 || (size = fcntl(in, F_GETPIPE_SZ)) < 0) {
		pr_perror("dump pid %d fd %d: cannot open its pipe", pid, fd);
		return -errno;
	}
	o->size = size;
	if (pipe2(tmp, O_CLOEXEC | O_NONBLOCK) || fcntl(tmp[1], F_SETPIPE_SZ, size) < size) {
		pr_perror("dump pid %d fd %d: cannot make a pipe of %d bytes to copy its data", pid, fd,
			  size);
		err = -errno;
		goto out;
	}
	ssize_t n = tee(in, tmp[1], size, SPLICE_F_NONBLOCK);
	if (n < 0 && errno != EAGAIN) {
		pr_perror("dump pid %d fd %d: cannot copy its pipe's data", pid, fd);
		err = -errno;
		goto out;
	}
	if (n > 0) {
		o->has_data = true;
		o->data.data = xzalloc(n);
		o->data.len = n;
		if (read_all(tmp[0], o->data.data, n) != n)
			err = -EIO;
	}
out:
	if (tmp[0] >= 0)
		close(tmp[0]);
	if (tmp[1] >= 0)
		close(tmp[1]);
	return err;
}

static int dump_pipe(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	struct pipe_dump *pd = t->pipes;
	bool fifo = p->link[0] == '/';

	if (!S_ISFIFO(p->st.st_mode) || (!fifo && strncmp(p->link, "pipe:[", 6)))
		return 0;
	if (fifo && strstr(p->link, " (deleted)")) {
		pr_err("dump pid %d fd %d: named pipe %s was removed (not supported yet)", t->pid,
		       p->fd, p->link);
		return -ENOTSUP;
	}
	e->has_pipe_id = e->has_flags = true;
	e->pipe_id = p->st.st_ino;
	e->flags = p->flags;
	e->path = xstrdup(p->link);
	for (size_t i = 0; i < pd->n; i++)
		if (pd->pipes[i]->id == e->pipe_id)
			return 1;
	PipeObject *o = xzalloc(sizeof(*o));
	pipe_object__init(o);
	o->id = e->pipe_id;
	if (fifo)
		o->fifo_path = xstrdup(p->link);
	int err = read_pipe(t->pid, p->fd, o);
	if (err)
		return err;
	pd->pipes = realloc(pd->pipes, (pd->n + 1) * sizeof(*pd->pipes));
	if (!pd->pipes)
		return -ENOMEM;
	pd->pipes[pd->n++] = o;
	return 1;
}

int pipes_dump_all(struct pipe_dump *pd, int dirfd)
{
	PipeTable tab = PIPE_TABLE__INIT;

	if (!pd->n)
		return 0;
	tab.n_pipes = pd->n;
	tab.pipes = pd->pipes;
	return image_write(dirfd, IMG_PIPES, 0, &tab.base);
}

/* ---- restore ---- */

struct restored_pipe {
	uint64_t id;
	int ends[2];     /* stasis' own, inherited by every new process; a FIFO: one O_RDWR */
	char *fifo_path; /* a named pipe: each fd is opened by path (by stasis, see open_in_stasis) */
};

static struct restored_pipe *pipes;
static size_t nr_pipes;

int pipes_restore_prepare(int dirfd, bool needed)
{
	PipeTable *tab = NULL;
	int err;

	if (!needed)
		return 0;
	if ((err = image_read(dirfd, IMG_PIPES, 0, (ProtobufCMessage **)&tab)))
		return err;
	pipes = xzalloc((tab->n_pipes + 1) * sizeof(*pipes));
	for (size_t i = 0; i < tab->n_pipes; i++) {
		PipeObject *o = tab->pipes[i];
		struct restored_pipe *rp = &pipes[nr_pipes];
		if (o->data.len > o->size || o->size > (1u << 30)) {
			pr_err("image pipes.img: pipe %zu holds %zu bytes in %u", i, o->data.len, o->size);
			return -EINVAL;
		}
		char key[48];
		snprintf(key, sizeof(key), "pipe:[%llu]", (unsigned long long)o->id);
		int in = o->fifo_path ? -ENOENT : inherit_fd_get(key);
		if (in >= 0) {
			rp->ends[0] = rp->ends[1] = fcntl(in, F_DUPFD_CLOEXEC, 0);
			if (rp->ends[0] < 0) {
				pr_perror("restore: --inherit-fd fd[%d]:%s", in, key);
				return -errno;
			}
			nr_pipes++;
			rp->id = o->id;
			pr_info("restore: %s is the caller's fd %d (--inherit-fd)", key, in);
			continue;
		}
		if (in != -ENOENT)
			return in;
		if (o->fifo_path) {
			/* O_RDWR never blocks on a FIFO and keeps its data alive while ends are opened */
			rp->fifo_path = xstrdup(o->fifo_path);
			rp->ends[0] = rp->ends[1] = open(o->fifo_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
			if (rp->ends[0] < 0) {
				pr_perror("restore: named pipe %s", o->fifo_path);
				return -errno;
			}
		} else if (pipe2(rp->ends, O_CLOEXEC)) {
			pr_perror("restore: pipe");
			return -errno;
		}
		nr_pipes++;
		rp->id = o->id;
		if (fcntl(rp->ends[1], F_SETPIPE_SZ, o->size) < (int)o->size)
			pr_warn("restore: pipe %llu keeps the default size, not %u bytes: %m",
				(unsigned long long)o->id, o->size);
		if (o->data.len && write_all(rp->ends[1], o->data.data, o->data.len)) {
			pr_perror("restore: cannot refill pipe %llu", (unsigned long long)o->id);
			return -errno;
		}
	}
	image_free(&tab->base);
	return 0;
}

void pipes_close_all(void)
{
	for (size_t i = 0; i < nr_pipes; i++) {
		close(pipes[i].ends[0]);
		if (pipes[i].ends[1] != pipes[i].ends[0])
			close(pipes[i].ends[1]);
	}
	nr_pipes = 0;
}

bool pipe_known(uint64_t id)
{
	for (size_t i = 0; i < nr_pipes; i++)
		if (pipes[i].id == id)
			return true;
	return false;
}

static int open_pipe(struct restore_task *t, const FdEntry *e)
{
	(void)t;
	for (size_t i = 0; i < nr_pipes; i++) {
		if (pipes[i].id != e->pipe_id)
			continue;
		if (pipes[i].fifo_path) {
			int fd = open(pipes[i].fifo_path, (e->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY)) |
								   O_NONBLOCK | O_CLOEXEC);
			if (fd < 0 || fcntl(fd, F_SETFL, e->flags & (O_NONBLOCK | O_DIRECT)))
				return -errno;
			return fd;
		}
		int end = pipes[i].ends[(e->flags & O_ACCMODE) == O_RDONLY ? 0 : 1];
		if (fcntl(end, F_SETFL, e->flags & (O_NONBLOCK | O_DIRECT)))
			return -errno;
		int fd = fcntl(end, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? -errno : fd;
	}
	return -ENOENT;
}

const struct fd_kind_ops fd_kind_pipe = {
	.name = "pipe",
	.dump = dump_pipe,
	.open = open_pipe,
	.kind = FD_KIND__FD_PIPE,
	.open_in_stasis = true, /* a FIFO's buffer lives only while someone holds it open */
};
