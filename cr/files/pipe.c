/*
 * Pipes and named pipes (FIFOs, also one removed while open: made again for the moment through
 * ghosts.img): each is saved once (pipes.img) with its capacity and the data written to it but
 * not read yet, copied out with tee() so that nothing is consumed (and where packets of an
 * O_DIRECT writer end: read_packets, written back as packets). On
 * restore stasis creates every pipe (or opens every FIFO by path) before the tree, sizes it
 * and writes the data back; each end is then handed to every process that held it, as the
 * same open file. A pipe the caller names with --inherit-fd fd[N]:pipe:[INODE] (its other
 * end was outside the tree, a container's stdio say) is not made: fd N takes its place, as
 * it is (its data is the caller's business). A named pipe's reader that had not seen a writer
 * since its open (no POLLHUP once writers are gone: note_fifo_hup) is opened again after
 * stasis's own writer is closed (keep_fifo_unhung).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "files.h"
#include "log.h"
#include "mounts.h"
#include "tree-path.h"
#include "pstree.h"
#include "tree-objects.h"
#include "util.h"

struct restored_pipe {
	uint64_t id;
	int ends[2];     /* stasis' own, inherited by every new process; a FIFO: one O_RDWR
	                  * (O_RDONLY after keep_fifo_unhung) */
	char *fifo_path; /* a named pipe: each fd is opened by path (by stasis, see open_in_stasis) */
	int ghost_id;    /* a named pipe removed: each fd is opened through its ghost (or -1) */
	/* a named pipe a reader of which awaits its first writer (keep_fifo_unhung): its other
	 * readers, opened before the tree's (each early[i] is the open file of entry early_of[i]) */
	const FdEntry **early_of;
	int *early;
	size_t n_early;
};

/* A new open file of the named pipe rp with open(2) flags: by path, or its ghost's. */
static int open_fifo(const struct run_ctx *ctx, const struct restored_pipe *rp, int flags)
{
	return rp->ghost_id >= 0 ? ghost_open(ctx, rp->ghost_id, flags) : tree_open(ctx, rp->fifo_path, flags, 0);
}

/* The run's pipes: saved by the dump, or made again by the restore. */
struct pipe_state {
	PipeObject **pipes; /* dump */
	size_t n;
	PipeTable *tab;     /* restore: pipes.img, checked */
	struct restored_pipe *made;
	size_t nr_made;
};

static struct pipe_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_pipes);
}

static int add_packet(PipeObject *o, size_t len)
{
	uint32_t *more = xreallocarray(o->packets, o->n_packets + 1, sizeof(*more));

	if (!more)
		return -ENOMEM;
	o->packets = more;
	o->packets[o->n_packets++] = len;
	return 0;
}

/*
 * The data of o copied into the pipe whose read end is copy, read out as a reader would: a
 * read ends after a packet (a buffer an O_DIRECT writer wrote), so each read but the last ends
 * with one: o->packets lists them. The last read ends with one too if a read of all its bytes
 * but one, on another copy (tee'd from in), leaves nothing behind (the packet's rest is
 * dropped); else it is a byte stream. (A stream before a packet is taken as part of it.)
 */
static int read_packets(int in, int copy, PipeObject *o)
{
	size_t off = 0, n = o->data.len, last = 0;
	int err;

	while (off < n) {
		ssize_t got = read(copy, o->data.data + off, n - off);
		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		if (off + got < n && (err = add_packet(o, got)))
			return err;
		last = got;
		off += got;
	}
	if (last < 2)
		return 0;
	int probe[2], left = -1;
	if (pipe2(probe, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	bool ok = fcntl(probe[1], F_SETPIPE_SZ, (int)o->size) >= (int)o->size &&
		  tee(in, probe[1], n, SPLICE_F_NONBLOCK) == (ssize_t)n;
	auto_free char *scratch = ok ? xmalloc(n) : NULL;
	err = ok && !scratch ? -ENOMEM : 0;
	for (size_t i = 0; ok && scratch && i < o->n_packets; i++)
		ok = read(probe[0], scratch, n) == (ssize_t)o->packets[i];
	ok = ok && scratch && read(probe[0], scratch, last - 1) == (ssize_t)last - 1 &&
	     !ioctl(probe[0], FIONREAD, &left);
	close(probe[0]);
	close(probe[1]);
	return err ? err : ok && left == 0 ? add_packet(o, last) : 0;
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
		if (!(o->data.data = xzalloc(n))) {
			err = -ENOMEM;
			goto out;
		}
		o->has_data = true;
		o->data.len = n;
		err = read_packets(in, tmp[0], o);
		if (err)
			pr_err("dump pid %d fd %d: cannot read the copy of its pipe's data: %s", pid, fd,
			       strerror(-err));
	}
out:
	if (tmp[0] >= 0)
		close(tmp[0]);
	if (tmp[1] >= 0)
		close(tmp[1]);
	return err;
}

/*
 * A reader of a named pipe gets POLLHUP when no writer is left and a writer opened the FIFO
 * after it: the kernel keeps in a reader opened O_NONBLOCK while no writer was the pipe's
 * count of writer opens (f_pipe) and compares it with the count now (w_counter); a reader
 * opened otherwise keeps 0. A poll() of the reader itself (a copy of the fd: the same open
 * file) tells which, without POLLHUP while writers are left too: the restore looks at the
 * tree's writers for that (a writer outside the tree is not seen). Unknown if the fd cannot be
 * copied, or is not p's file (one carried in flight: p is stasis's own fd), the restore then
 * opens the reader as before (it hangs up once writers are gone).
 */
static void note_fifo_hup(pid_t pid, const struct fd_probe *p, FdEntry *e)
{
	struct pollfd pfd = { .fd = task_fd_copy(pid, p->fd), .events = POLLIN };
	struct stat st;

	if (pfd.fd < 0) {
		pr_warn("dump pid %d fd %d: cannot copy the named pipe's reader to poll it: %s", pid, p->fd,
			strerror(-pfd.fd));
		return;
	}
	if (!fstat(pfd.fd, &st) && st.st_dev == p->st.st_dev && st.st_ino == p->st.st_ino &&
	    poll(&pfd, 1, 0) >= 0) {
		e->has_fifo_no_hup = true;
		e->fifo_no_hup = !(pfd.revents & POLLHUP);
	}
	close(pfd.fd);
}

static int dump_pipe(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	struct pipe_state *pd = state_of(t->ctx);
	bool fifo = p->link[0] == '/';

	if (!S_ISFIFO(p->st.st_mode) || (!fifo && strncmp(p->link, "pipe:[", 6)))
		return 0;
	if (fifo && ghost_path(p->link)) { /* removed: made again for the moment (ghosts.img) */
		char path[64], what[32];
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", t->pid, p->fd);
		snprintf(what, sizeof(what), "fd %d", p->fd);
		int id = ghost_note(t->ctx, path, p->link, t->pid, what, true);
		if (id < 0)
			return id;
		e->has_ghost_id = true;
		e->ghost_id = id;
	}
	if (fifo && !e->has_ghost_id && !mount_tree_root_reaches(t->pid, t->tree[0].pid, p->link, &p->st)) {
		pr_err("dump pid %d fd %d: named pipe %s is on a mount of the mount namespace the process "
		       "is in, which the tree's first process does not reach it through: not supported yet "
		       "(stasis makes named pipes before the tree runs, in its first process's namespace)",
		       t->pid, p->fd, p->link);
		return -ENOTSUP;
	}
	e->has_pipe_id = e->has_flags = true;
	e->pipe_id = p->st.st_ino;
	e->flags = p->flags;
	if (!(e->path = xstrdup(p->link)))
		return -ENOMEM;
	if (fifo && (p->flags & O_ACCMODE) == O_RDONLY)
		note_fifo_hup(t->pid, p, e);
	for (size_t i = 0; i < pd->n; i++)
		if (pd->pipes[i]->id == e->pipe_id)
			return 1;
	PipeObject **more = xreallocarray(pd->pipes, pd->n + 1, sizeof(*pd->pipes));
	if (!more)
		return -ENOMEM;
	pd->pipes = more;
	PipeObject *o = xzalloc(sizeof(*o));
	if (!o)
		return -ENOMEM;
	pipe_object__init(o);
	pd->pipes[pd->n++] = o; /* (freed with the state, also if what follows fails) */
	o->id = e->pipe_id;
	if (fifo && !(o->fifo_path = xstrdup(p->link)))
		return -ENOMEM;
	o->has_fifo_ghost_id = e->has_ghost_id;
	o->fifo_ghost_id = e->ghost_id;
	int err = read_pipe(t->pid, p->fd, o);
	return err ? err : 1;
}

static int write_pipes(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct pipe_state *pd = state_of(ctx);
	PipeTable tab = PIPE_TABLE__INIT;

	(void)tr;
	if (!pd->n)
		return 0;
	tab.n_pipes = pd->n;
	tab.pipes = pd->pipes;
	return image_write(ctx->images_dir_fd, IMG_PIPES, 0, &tab.base);
}

/* ---- restore ---- */

static const PipeObject *saved_pipe(const PipeTable *tab, uint64_t id)
{
	for (size_t i = 0; tab && i < tab->n_pipes; i++)
		if (tab->pipes[i]->id == id)
			return tab->pipes[i];
	return NULL;
}

/* pipes.img, if some fd of the tree is a pipe, checked with every pipe fd. */
static int validate_pipes(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct pipe_state *st = state_of(ctx);
	bool needed = false;
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++)
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++)
			needed |= rt->tasks[i].fds->fds[k]->kind == FD_KIND__FD_PIPE;
	if (!needed)
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_PIPES, 0, (ProtobufCMessage **)&st->tab)))
		return err;
	for (size_t i = 0; i < st->tab->n_pipes; i++) {
		const PipeObject *o = st->tab->pipes[i];
		uint64_t in_packets = 0;
		for (size_t k = 0; k < o->n_packets; k++)
			in_packets += o->packets[k] ? o->packets[k] : o->data.len + 1;
		if (o->data.len > o->size || o->size > (1u << 30) || saved_pipe(st->tab, o->id) != o ||
		    in_packets > o->data.len ||
		    (o->fifo_path && !image_path_ok(o->fifo_path)) || (o->has_fifo_ghost_id && !o->fifo_path)) {
			pr_err("image pipes.img: pipe %zu (id %llu) is invalid", i, (unsigned long long)o->id);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			const PipeObject *o = e->kind == FD_KIND__FD_PIPE ? saved_pipe(st->tab, e->pipe_id) : NULL;
			if (e->kind == FD_KIND__FD_PIPE && o && o->has_fifo_ghost_id &&
			    (!e->has_ghost_id || e->ghost_id != o->fifo_ghost_id)) {
				pr_err("image fds-%d.img: fd %u and pipes.img disagree on the removed named pipe "
				       "%s", rt->tasks[i].pid, e->fd, o->fifo_path);
				return -EINVAL;
			}
			if (e->kind == FD_KIND__FD_PIPE && !o) {
				pr_err("image fds-%d.img: fd %u is pipe %llu, which pipes.img does not hold",
				       rt->tasks[i].pid, e->fd, (unsigned long long)e->pipe_id);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* The caller's pipe given with --inherit-fd: used as it is (its data is the caller's). */
static int take_inherited(const struct run_ctx *ctx, const PipeObject *o, struct restored_pipe *rp)
{
	char key[48];
	int in;

	snprintf(key, sizeof(key), "pipe:[%llu]", (unsigned long long)o->id);
	in = o->fifo_path ? -ENOENT : inherit_fd_get(ctx, key);
	if (in < 0)
		return in;
	rp->ends[0] = rp->ends[1] = fcntl(in, F_DUPFD_CLOEXEC, 0);
	if (rp->ends[0] < 0) {
		pr_perror("restore: --inherit-fd fd[%d]:%s", in, key);
		return -errno;
	}
	pr_info("restore: %s is the caller's fd %d (--inherit-fd)", key, in);
	return 0;
}

/* The open file of the tree's entry e of the named pipe rp, with e's flags (O_NONBLOCK so that
 * no open waits for the other end), or -errno. */
static int open_fifo_end(const struct run_ctx *ctx, const struct restored_pipe *rp, const FdEntry *e)
{
	int fd = open_fifo(ctx, rp, (e->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC)) | O_NONBLOCK);
	if (fd < 0)
		return fd;
	if (fcntl(fd, F_SETFL, e->flags & (O_NONBLOCK | O_DIRECT))) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* A reader of the tree that had seen no writer since its open (note_fifo_hup). */
static bool awaits_writer(const FdEntry *e)
{
	return (e->flags & O_ACCMODE) == O_RDONLY && e->has_fifo_no_hup && e->fifo_no_hup;
}

/* Whether a reader of the named pipe id awaits its first writer: that can only be when no
 * writer of it is in the tree. */
static bool fifo_awaits_writer(const struct restore_tree *rt, uint64_t id)
{
	bool awaits = false;

	for (size_t i = 0; i < rt->nr_tasks; i++)
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			if (e->kind != FD_KIND__FD_PIPE || e->pipe_id != id)
				continue;
			if ((e->flags & O_ACCMODE) != O_RDONLY)
				return false;
			awaits |= awaits_writer(e);
		}
	return awaits;
}

/*
 * The named pipe rp, sized and refilled through stasis' O_RDWR end, has readers that await
 * their first writer: each tree reader opened from now on would keep the writer count the
 * O_RDWR open bumped and then see POLLHUP once that end is closed. So a reader of stasis's
 * own takes the place of that end (it keeps the buffer alive) and the O_RDWR end is closed
 * before the tree's readers are opened; the tree's other readers (they had seen a writer, they
 * see POLLHUP) are opened first, while the O_RDWR end is still open.
 */
static int keep_fifo_unhung(const struct run_ctx *ctx, const struct restore_tree *rt,
			    struct restored_pipe *rp)
{
	int rdwr = rp->ends[0], keeper;
	size_t n = 0;

	for (size_t i = 0; i < rt->nr_tasks; i++)
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			n += e->kind == FD_KIND__FD_PIPE && e->pipe_id == rp->id && !awaits_writer(e);
		}
	if (n && (!(rp->early_of = xzalloc(n * sizeof(*rp->early_of))) ||
		  !(rp->early = xzalloc(n * sizeof(*rp->early)))))
		return -ENOMEM;
	for (size_t i = 0; i < rt->nr_tasks; i++)
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			if (e->kind != FD_KIND__FD_PIPE || e->pipe_id != rp->id || awaits_writer(e))
				continue;
			int fd = open_fifo_end(ctx, rp, e);
			if (fd < 0) {
				pr_err("restore pid %d fd %u: named pipe %s: %s", rt->tasks[i].pid, e->fd,
				       rp->fifo_path, strerror(-fd));
				return fd;
			}
			rp->early_of[rp->n_early] = e;
			rp->early[rp->n_early++] = fd;
		}
	keeper = open_fifo(ctx, rp, O_RDONLY | O_NONBLOCK);
	if (keeper < 0) {
		pr_err("restore: named pipe %s: %s", rp->fifo_path, strerror(-keeper));
		return keeper;
	}
	rp->ends[0] = rp->ends[1] = keeper;
	close(rdwr);
	return 0;
}

/* o's data written back: its packets by an O_DIRECT writer, each in one write, the rest after. */
static int refill(int end, const PipeObject *o)
{
	int flags = fcntl(end, F_GETFL);
	size_t off = 0;

	if (o->n_packets && (flags < 0 || fcntl(end, F_SETFL, flags | O_DIRECT)))
		return -1;
	for (size_t i = 0; i < o->n_packets; off += o->packets[i++])
		if (write(end, o->data.data + off, o->packets[i]) != (ssize_t)o->packets[i])
			return -1;
	if (o->n_packets && fcntl(end, F_SETFL, flags))
		return -1;
	return write_all(end, o->data.data + off, o->data.len - off) ? -1 : 0;
}

static int make_pipe(const struct run_ctx *ctx, const struct restore_tree *rt, const PipeObject *o,
		     struct restored_pipe *rp)
{
	if (o->fifo_path) {
		/* O_RDWR never blocks on a FIFO and keeps its data alive while ends are opened */
		rp->fifo_path = o->fifo_path;
		rp->ghost_id = o->has_fifo_ghost_id ? (int)o->fifo_ghost_id : -1;
		rp->ends[0] = rp->ends[1] = open_fifo(ctx, rp, O_RDWR | O_NONBLOCK);
		if (rp->ends[0] < 0) {
			pr_err("restore: named pipe %s: %s", o->fifo_path, strerror(-rp->ends[0]));
			return rp->ends[0];
		}
	} else if (pipe2(rp->ends, O_CLOEXEC)) {
		pr_perror("restore: pipe");
		return -errno;
	}
	if (fcntl(rp->ends[1], F_SETPIPE_SZ, o->size) < (int)o->size)
		pr_warn("restore: pipe %llu keeps the default size, not %u bytes: %m",
			(unsigned long long)o->id, o->size);
	if (o->data.len && refill(rp->ends[1], o)) {
		pr_perror("restore: cannot refill pipe %llu", (unsigned long long)o->id);
		return -errno;
	}
	return o->fifo_path && fifo_awaits_writer(rt, o->id) ? keep_fifo_unhung(ctx, rt, rp) : 0;
}

static int prepare_pipes(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct pipe_state *st = state_of(ctx);
	int err;

	if (!st->tab)
		return 0;
	st->made = xzalloc((st->tab->n_pipes + 1) * sizeof(*st->made));
	if (!st->made)
		return -ENOMEM;
	for (size_t i = 0; i < st->tab->n_pipes; i++) {
		const PipeObject *o = st->tab->pipes[i];
		struct restored_pipe *rp = &st->made[st->nr_made];
		rp->ends[0] = rp->ends[1] = -1;
		rp->id = o->id;
		err = take_inherited(ctx, o, rp);
		if (err == -ENOENT)
			err = make_pipe(ctx, rt, o, rp);
		if (rp->ends[0] >= 0)
			st->nr_made++;
		if (err)
			return err;
	}
	return 0;
}

static void close_pipes(struct run_ctx *ctx)
{
	struct pipe_state *st = state_of(ctx);

	for (size_t i = 0; i < st->nr_made; i++) {
		if (st->made[i].ends[0] >= 0)
			close(st->made[i].ends[0]);
		if (st->made[i].ends[1] != st->made[i].ends[0] && st->made[i].ends[1] >= 0)
			close(st->made[i].ends[1]);
		for (size_t k = 0; k < st->made[i].n_early; k++)
			close(st->made[i].early[k]);
		free(st->made[i].early);
		free(st->made[i].early_of);
		st->made[i].early = NULL;
		st->made[i].early_of = NULL;
		st->made[i].n_early = 0;
	}
	st->nr_made = 0;
}

static void undo_pipes(struct run_ctx *ctx, bool restored)
{
	(void)restored;
	close_pipes(ctx);
}

static void free_pipes(void *state)
{
	struct pipe_state *st = state;

	if (st->tab)
		image_free(&st->tab->base);
	free(st->made);
	for (size_t i = 0; i < st->n; i++)
		pipe_object__free_unpacked(st->pipes[i], NULL);
	free(st->pipes);
}

const struct tree_object_ops tree_pipes = {
	.name = "pipes",
	.state_size = sizeof(struct pipe_state),
	.free_state = free_pipes,
	.write = write_pipes,
	.validate = validate_pipes,
	.prepare = prepare_pipes,
	.close = close_pipes,
	.undo = undo_pipes,
};

static int open_pipe(struct restore_task *t, const FdEntry *e)
{
	const struct pipe_state *st = state_of(t->ctx);
	const struct restored_pipe *pipes = st->made;

	for (size_t i = 0; i < st->nr_made; i++) {
		if (pipes[i].id != e->pipe_id)
			continue;
		if (pipes[i].fifo_path) {
			for (size_t k = 0; k < pipes[i].n_early; k++) {
				if (pipes[i].early_of[k] != e)
					continue;
				int fd = fcntl(pipes[i].early[k], F_DUPFD_CLOEXEC, 0);
				return fd < 0 ? -errno : fd;
			}
			return open_fifo_end(t->ctx, &pipes[i], e);
		}
		int end = pipes[i].ends[(e->flags & O_ACCMODE) == O_RDONLY ? 0 : 1], fd = -1;
		char path[64];
		/* pipe2() made the open files without KERNEL_O_LARGEFILE; one with it was opened again
		 * through /proc (its flags its own): so it is made again */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", end);
		if (e->flags & KERNEL_O_LARGEFILE)
			fd = open(path, (e->flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 && (!(e->flags & KERNEL_O_LARGEFILE) || errno == ENOENT))
			fd = fcntl(end, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (fcntl(fd, F_SETFL, e->flags & (O_NONBLOCK | O_DIRECT))) {
			close(fd);
			return -errno;
		}
		return fd;
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
