/*
 * inotify: the watches, each with its wd and mask (from fdinfo). The watched file is found
 * from the file handle fdinfo shows (open_by_handle_at through a mount of that filesystem);
 * a deleted one is a ghost file, and a symlink is watched as itself (IN_DONT_FOLLOW). A file
 * on a mount that only a mount namespace another process of the tree made has (a tmpfs it
 * mounted there, watched through its /proc/PID/fd) is found through that process's mounts and
 * saved with its pid and its path there.
 * Restore adds the watches again, each with its old wd (INOTIFY_IOC_SETNEXTWD), and checks it.
 * A watch in another process's mount namespace is added by stasis at the end, once every
 * process and namespace is made, through /proc/PID/root of that process. Events queued
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
#include "proc.h"
#include "util.h"

/* Whether processes a and b (host pids) are in one mount namespace. */
static bool same_mount_ns(pid_t a, pid_t b)
{
	char pa[64], pb[64];
	struct stat sa, sb;

	snprintf(pa, sizeof(pa), "/proc/%d/ns/mnt", a);
	snprintf(pb, sizeof(pb), "/proc/%d/ns/mnt", b);
	return stat(pa, &sa) || stat(pb, &sb) || (sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
}

/*
 * The watched file of a handle none of the watcher's mounts reach: through the mounts of
 * another process of the tree in a mount namespace of its own; its fd, its path as that
 * process sees it in path, the process in *owner; -ENOENT if none has it.
 */
static int watched_elsewhere(const struct dump_task *t, unsigned long sdev, unsigned long ino, unsigned bytes,
			     int type, const char *hex, char *path, size_t len, const struct dump_task **owner)
{
	for (size_t i = 0; i < t->tree_size; i++) {
		const struct dump_task *o = &t->tree[i];
		if (o->tgid == t->tgid || same_mount_ns(o->pid, t->pid))
			continue;
		int fd = fhandle_path_fd(o->pid, sdev, ino, bytes, type, hex, path, len);
		if (fd >= 0) {
			*owner = o;
			return fd;
		}
		if (fd == -ENOMEM)
			return fd;
	}
	return -ENOENT;
}

/*
 * The watched file of a handle no filesystem opens (overlayfs) and no search finds (removed):
 * one the watcher holds open, the same inode of the same device. Its fd, its path ("... (deleted)").
 */
static int watched_held(pid_t pid, unsigned long sdev, unsigned long ino, char *path, size_t len)
{
	dev_t dev = makedev(sdev >> 20, sdev & 0xfffff);
	int *fds = NULL;
	size_t n = 0;
	int found = -ENOENT;

	if (proc_list_numbers(pid, "fd", &fds, &n))
		return -ENOENT;
	for (size_t i = 0; i < n && found == -ENOENT; i++) {
		char proc[64];
		struct stat st;
		snprintf(proc, sizeof(proc), "/proc/%d/fd/%d", pid, fds[i]);
		int fd = open(proc, O_PATH | O_CLOEXEC);
		ssize_t got = fd < 0 ? -1 : readlink(proc, path, len - 1);
		if (got > 0 && !fstat(fd, &st) && st.st_dev == dev && st.st_ino == ino) {
			path[got] = 0;
			found = fd;
		} else if (fd >= 0) {
			close(fd);
		}
	}
	free(fds);
	return found;
}

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
		unsigned wd = 0, mask, bytes;
		unsigned long sdev = 0, ino = 0;
		int type;
		char hex[260], path[4096];
		char line[512];
		int err = -EINVAL;
		auto_close int watched = -1;
		const struct dump_task *owner = NULL;
		if (sscanf(fdinfo_line(l, line, sizeof(line)), "inotify wd:%x ino:%lx sdev:%lx mask:%x ignored_mask:%*x fhandle-bytes:%x "
			      "fhandle-type:%x f_handle:%259s",
			   &wd, &ino, &sdev, &mask, &bytes, &type, hex) == 7 && bytes <= 128 &&
		    (err = watched = fhandle_path_fd(t->pid, sdev, ino, bytes, type, hex, path, sizeof(path))) == -ENOENT)
			err = watched = watched_elsewhere(t, sdev, ino, bytes, type, hex, path, sizeof(path), &owner);
		if (err == -ENOENT)
			err = watched = watched_held(t->pid, sdev, ino, path, sizeof(path));
		if (err < 0) {
			if (err == -ENOMEM)
				return err;
			pr_err("dump pid %d fd %d: cannot find the file of inotify watch %u (device %u:%u): no "
			       "mount of the tree's processes reaches it", t->pid, p->fd, wd,
			       major(makedev(sdev >> 20, sdev & 0xfffff)), minor(makedev(sdev >> 20, sdev & 0xfffff)));
			return -ENOENT;
		}
		if (owner && ghost_path(path)) {
			pr_err("dump pid %d fd %d: inotify watch %u is on %s, removed, on a mount only the "
			       "mount namespace of pid %u has: not supported", t->pid, p->fd, wd, path, owner->vpid);
			return -ENOTSUP;
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
		if (owner) {
			pr_debug("dump pid %d fd %d: inotify watch %u is on %s in the mount namespace of pid %u",
				 t->pid, p->fd, wd, path, owner->vpid);
			w->has_mount_ns_pid = true;
			w->mount_ns_pid = owner->vpid;
		}
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

/* The mask to add w with: a watch for no event (made with IN_ONLYDIR alone, say) is added
 * with IN_MASK_ADD, which the kernel takes without an event and does not keep. */
static uint32_t add_mask(const InotifyWatch *w)
{
	return w->mask & IN_ALL_EVENTS ? w->mask : w->mask | IN_MASK_ADD;
}

/* inotify_add_watch of w on inotify fd: a deleted file through the ghost the restore made. */
static int watch_again(const struct restore_task *t, int fd, const InotifyWatch *w)
{
	if (!w->has_ghost_id)
		return inotify_add_watch(fd, w->path, add_mask(w));
	auto_close int ghost = ghost_open(t->ctx, w->ghost_id, O_PATH);
	char proc[64];

	if (ghost < 0) {
		errno = -ghost;
		return -1;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", ghost);
	return inotify_add_watch(fd, proc, add_mask(w) & ~IN_DONT_FOLLOW);
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
	if (e->n_watches) /* (an instance watching nothing has none) */
		memcpy(w, e->watches, e->n_watches * sizeof(*w));
	qsort(w, e->n_watches, sizeof(*w), by_wd);
	for (size_t i = 0; i < e->n_watches; i++) {
		if (w[i]->has_mount_ns_pid)
			continue; /* added at the end: add_watches_elsewhere */
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
 * The watches on files of another process's mount namespace, on copy (the inotify fd of t), by
 * stasis through that process's /proc/PID/root, each with its wd; then the next wd is the one
 * after the highest, as after the watches added in order.
 */
static int add_watches_elsewhere(const struct restore_task *t, const FdEntry *e, int copy)
{
	uint32_t top = 0;
	bool any = false;

	for (size_t i = 0; i < e->n_watches; i++) {
		const InotifyWatch *w = e->watches[i];
		const struct restore_task *o = NULL;
		char path[4200];
		top = w->wd > top ? w->wd : top;
		if (!w->has_mount_ns_pid)
			continue;
		any = true;
		for (size_t k = 0; k < t->tree_size && !o; k++)
			if (t->tree[k].pid == (pid_t)w->mount_ns_pid)
				o = &t->tree[k];
		if (!o || o->host_pid <= 0 || w->path[0] != '/') {
			pr_err("restore pid %d fd %u: inotify watch %u is on %s in the mount namespace of "
			       "pid %u, which is not a process of the tree", t->pid, e->fd, w->wd, w->path,
			       w->mount_ns_pid);
			return -EINVAL;
		}
		snprintf(path, sizeof(path), "/proc/%d/root%s", o->host_pid, w->path);
		ioctl(copy, INOTIFY_IOC_SETNEXTWD, (int)w->wd);
		int wd = inotify_add_watch(copy, path, add_mask(w));
		if (wd != (int)w->wd) {
			int err = wd < 0 ? -errno : -EEXIST;
			if (wd < 0)
				pr_perror("restore pid %d fd %u: cannot watch %s (in the mount namespace of pid "
					  "%u) again", t->pid, e->fd, w->path, w->mount_ns_pid);
			else
				pr_err("restore pid %d fd %u: the watch of %s came back as wd %d, not %u",
				       t->pid, e->fd, w->path, wd, w->wd);
			return err;
		}
	}
	if (any)
		ioctl(copy, INOTIFY_IOC_SETNEXTWD, (int)top + 1);
	return 0;
}

/*
 * Once every process of the tree is restored and waits for the tracer: the watches in other
 * mount namespaces are added, then the events the restore caused are read out of each inotify
 * fd of pid, so the program finds the queue as it was.
 */
static int drop_restore_events(const struct restore_task *t, const FdEntry *e)
{
	auto_close int copy = task_fd_copy(t->host_pid, e->fd);
	char buf[4096] __attribute__((aligned(8)));
	int bytes, err;

	if (copy < 0) {
		pr_err("restore pid %d fd %d: cannot reach the inotify fd: %s", t->pid, e->fd,
		       strerror(-copy));
		return copy;
	}
	if ((err = add_watches_elsewhere(t, e, copy)))
		return err;
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
