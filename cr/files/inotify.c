/*
 * inotify: the watches, each with its wd and mask (from fdinfo). The watched file is found
 * from the file handle fdinfo shows (open_by_handle_at through a mount of that filesystem);
 * a deleted one is a ghost file, and a symlink is watched as itself (IN_DONT_FOLLOW).
 * Restore adds the watches again in wd order and checks each gets its old wd. Events queued
 * but not read yet are not kept (reading them would take them from the running task): the
 * dump warns. Events the restore itself causes (reopening watched files, closing helper fds)
 * are dropped before the tree runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "files.h"
#include "log.h"
#include "util.h"

/* Bytes of events waiting in fd of pid (through a copy of the fd: reading it would drain it). */
static int queued_bytes(pid_t pid, int fd)
{
	auto_close int copy = task_fd_copy(pid, fd);
	int bytes = 0;

	if (copy < 0)
		return copy;
	if (ioctl(copy, FIONREAD, &bytes))
		return -errno;
	return bytes;
}

static int dump_inotify(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	if (strcmp(p->link, "anon_inode:inotify"))
		return 0;
	e->has_flags = true;
	e->flags = p->flags;
	if (queued_bytes(t->pid, p->fd) > 0)
		pr_warn("dump pid %d fd %d: inotify events not read yet are not kept", t->pid, p->fd);
	for (const char *l = strstr(p->info, "inotify wd:"); l; l = strstr(l + 11, "inotify wd:")) {
		unsigned wd, mask, bytes;
		unsigned long sdev;
		int type;
		char hex[260], path[4096];
		char line[512];
		int err = -EINVAL;
		auto_close int watched = -1;
		if (sscanf(fdinfo_line(l, line, sizeof(line)), "inotify wd:%x ino:%*x sdev:%lx mask:%x ignored_mask:%*x fhandle-bytes:%x "
			      "fhandle-type:%x f_handle:%259s",
			   &wd, &sdev, &mask, &bytes, &type, hex) != 6 ||
		    bytes > 128 || (err = watched = fhandle_path_fd(t->pid, sdev, bytes, type, hex, path, sizeof(path))) < 0) {
			if (err == -ENOMEM)
				return err;
			pr_err("dump pid %d fd %d: cannot find the file of an inotify watch", t->pid, p->fd);
			return -ENOENT;
		}
		struct stat st;
		if (!fstat(watched, &st) && S_ISLNK(st.st_mode))
			mask |= IN_DONT_FOLLOW; /* the symlink's own watch */
		InotifyWatch *w = xzalloc(sizeof(*w)), **more;
		if (!w || !(more = xreallocarray(e->watches, e->n_watches + 1, sizeof(*more)))) {
			free(w);
			return -ENOMEM;
		}
		inotify_watch__init(w);
		e->watches = more;
		e->watches[e->n_watches++] = w;
		w->wd = wd;
		w->mask = mask;
		if (!(w->path = xstrdup(path)))
			return -ENOMEM;
		if (ghost_path(path)) {
			char proc[64], what[64];
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", watched);
			snprintf(what, sizeof(what), "fd %d inotify watch %u", p->fd, wd);
			int id = ghost_note(t->ctx, proc, path, t->pid, what, true);
			if (id < 0)
				return id;
			w->has_ghost_id = true;
			w->ghost_id = id;
		}
	}
	return 1;
}

static int by_wd(const void *a, const void *b)
{
	return (int)(*(InotifyWatch *const *)a)->wd - (int)(*(InotifyWatch *const *)b)->wd;
}

/* inotify_add_watch of w on inotify fd: a deleted file through the ghost the restore made. */
static int watch_again(const struct restore_task *t, int fd, const InotifyWatch *w)
{
	if (!w->has_ghost_id)
		return inotify_add_watch(fd, w->path, w->mask);
	auto_close int ghost = ghost_open(t->ctx, w->ghost_id, O_PATH);
	char proc[64];

	if (ghost < 0) {
		errno = -ghost;
		return -1;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", ghost);
	return inotify_add_watch(fd, proc, w->mask & ~IN_DONT_FOLLOW);
}

static int open_inotify(struct restore_task *t, const FdEntry *e)
{
	InotifyWatch **w = xzalloc((e->n_watches + 1) * sizeof(*w));
	int fd;

	if (!w)
		return -ENOMEM;
	if ((fd = inotify_init1(IN_CLOEXEC | (e->flags & O_NONBLOCK ? IN_NONBLOCK : 0))) < 0) {
		free(w);
		return -errno;
	}
	memcpy(w, e->watches, e->n_watches * sizeof(*w));
	qsort(w, e->n_watches, sizeof(*w), by_wd);
	for (size_t i = 0; i < e->n_watches; i++) {
		/* (wds are handed out in turn: one removed before the dump left a gap, which the
		 * next wd set skips; a kernel without it keeps no gap, as said below) */
		int want = (int)w[i]->wd;
		ioctl(fd, INOTIFY_IOC_SETNEXTWD, want);
		int wd = watch_again(t, fd, w[i]);
		if (wd != want) {
			int err = wd < 0 ? -errno : -EEXIST; /* the wd numbering cannot be reproduced */
			if (wd < 0)
				pr_perror("restore pid %d fd %u: cannot watch %s again", t->pid, e->fd,
					  w[i]->path);
			else
				pr_err("restore pid %d fd %u: the watch of %s came back as wd %d, not %u",
				       t->pid, e->fd, w[i]->path, wd, w[i]->wd);
			free(w);
			close(fd);
			return err;
		}
	}
	free(w);
	return fd;
}

/*
 * Once every process of the tree is restored and waits for the tracer: the events the restore
 * caused are read out of each inotify fd of pid, so the program finds the queue as it was.
 */
static int drop_restore_events(const struct restore_task *t, const FdEntry *e)
{
	auto_close int copy = task_fd_copy(t->host_pid, e->fd);
	char buf[4096] __attribute__((aligned(8)));
	int bytes;

	if (copy < 0) {
		pr_err("restore pid %d fd %d: cannot reach the inotify fd: %s", t->pid, e->fd,
		       strerror(-copy));
		return copy;
	}
	while (!ioctl(copy, FIONREAD, &bytes) && bytes > 0)
		if (read(copy, buf, sizeof(buf)) <= 0) /* whole events: never blocks while bytes > 0 */
			break;
	return 0;
}

const struct fd_kind_ops fd_kind_inotify = {
	.name = "inotify",
	.dump = dump_inotify,
	.open = open_inotify,
	.finish = drop_restore_events,
	.kind = FD_KIND__FD_INOTIFY,
};
