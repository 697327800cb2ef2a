/*
 * fanotify groups: their fanotify_init flags and event flags, and every mark with its masks
 * and flags (from fdinfo): a mark on an inode (found from its file handle), on a mount (its
 * mount point, from the process's mountinfo) or on a whole filesystem (a mount of it). The
 * restored process makes the group again and adds each mark. Events queued but not read yet
 * are not kept (reading them would take them from the running task): the dump warns.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "util.h"

#ifndef FAN_MARK_EVICTABLE
#define FAN_MARK_EVICTABLE 0x00000200
#endif
#ifndef FAN_MARK_IGNORE
#define FAN_MARK_IGNORE 0x00000400
#endif
/* The mark flags fdinfo shows that a mark keeps (and that it is added with again). */
#define MARK_FLAGS_KEPT (FAN_MARK_IGNORED_SURV_MODIFY | FAN_MARK_EVICTABLE | FAN_MARK_IGNORE)

enum { MARK_INODE = 1, MARK_MOUNT = 2, MARK_FILESYSTEM = 3 };

/* The mount point of mount mnt_id (or of a mount of device maj:min) as pid sees it. */
static int mount_point(pid_t pid, long mnt_id, unsigned long sdev, char *path, size_t len)
{
	char file[64];

	snprintf(file, sizeof(file), "/proc/%d/mountinfo", pid);
	auto_free char *mi = read_file_at(AT_FDCWD, file, NULL);
	for (char *l = mi; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		long id;
		unsigned maj, min;
		char mnt[4096];
		if (sscanf(l, "%ld %*d %u:%u %*s %4095s", &id, &maj, &min, mnt) != 4)
			continue;
		if (mnt_id >= 0 ? id == mnt_id : (maj == sdev >> 20 && min == (sdev & 0xfffff))) {
			snprintf(path, len, "%s", mnt);
			return 0;
		}
	}
	return -ENOENT;
}

/* One "fanotify ino:... / mnt_id:... / sdev:..." line of fdinfo as a mark. */
static int parse_mark(pid_t pid, const char *text, FanotifyMark *m, char *path, size_t len)
{
	char l[512];
	unsigned long ino, sdev, mflags, mask, ignored;
	unsigned bytes;
	int type, err;
	char hex[260];
	long mnt_id;

	fdinfo_line(text, l, sizeof(l));
	if (sscanf(l, "fanotify ino:%lx sdev:%lx mflags:%lx mask:%lx ignored_mask:%lx fhandle-bytes:%x "
		      "fhandle-type:%x f_handle:%259s",
		   &ino, &sdev, &mflags, &mask, &ignored, &bytes, &type, hex) == 8) {
		struct stat st;
		m->type = MARK_INODE;
		auto_close int marked = fhandle_path_fd(pid, sdev, ino, bytes, type, hex, path, len);
		if (marked < 0)
			return marked;
		if (!fstat(marked, &st) && S_ISLNK(st.st_mode)) /* the symlink's own mark */
			mflags |= FAN_MARK_DONT_FOLLOW;
	} else if (sscanf(l, "fanotify mnt_id:%lx mflags:%lx mask:%lx ignored_mask:%lx", &mnt_id, &mflags,
			  &mask, &ignored) == 4) {
		m->type = MARK_MOUNT;
		if ((err = mount_point(pid, mnt_id, 0, path, len)))
			return err;
	} else if (sscanf(l, "fanotify sdev:%lx mflags:%lx mask:%lx ignored_mask:%lx", &sdev, &mflags, &mask,
			  &ignored) == 4) {
		m->type = MARK_FILESYSTEM;
		if ((err = mount_point(pid, -1, sdev, path, len)))
			return err;
	} else {
		return -EINVAL;
	}
	m->flags = mflags & (MARK_FLAGS_KEPT | FAN_MARK_DONT_FOLLOW);
	m->mask = mask;
	m->ignored_mask = ignored;
	return 0;
}

static int dump_fanotify(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	unsigned flags, event_flags;
	const char *l = strstr(p->info, "fanotify flags:");

	if (strcmp(p->link, "anon_inode:[fanotify]"))
		return 0;
	if (!l || sscanf(l, "fanotify flags:%x event-flags:%x", &flags, &event_flags) != 2) {
		pr_err("dump pid %d fd %d: cannot read the fanotify group's flags", t->pid, p->fd);
		return -EINVAL;
	}
	e->has_fan_flags = e->has_fan_event_flags = e->has_flags = true;
	e->fan_flags = flags;
	e->fan_event_flags = event_flags;
	e->flags = p->flags;
	auto_close int copy = task_fd_copy(t->pid, p->fd);
	int queued = 0;
	if (copy >= 0 && !ioctl(copy, FIONREAD, &queued) && queued > 0)
		pr_warn("dump pid %d fd %d: fanotify events not read yet are not kept", t->pid, p->fd);
	for (l = strstr(l + 1, "\nfanotify "); l; l = strstr(l + 1, "\nfanotify ")) {
		char path[4096];
		FanotifyMark *m = xzalloc(sizeof(*m));
		if (!m)
			return -ENOMEM;
		fanotify_mark__init(m);
		int err = parse_mark(t->pid, l + 1, m, path, sizeof(path));
		if (err) {
			fanotify_mark__free_unpacked(m, NULL);
			pr_err("dump pid %d fd %d: cannot find what a fanotify mark is on (%.80s): %s", t->pid,
			       p->fd, l + 1, strerror(-err));
			return err;
		}
		FanotifyMark **more;
		if (!(m->path = xstrdup(path)) ||
		    !(more = xreallocarray(e->fan_marks, e->n_fan_marks + 1, sizeof(*more)))) {
			fanotify_mark__free_unpacked(m, NULL);
			return -ENOMEM;
		}
		e->fan_marks = more;
		e->fan_marks[e->n_fan_marks++] = m;
	}
	return 1;
}

static int validate_fanotify(const struct restore_task *t, const FdEntry *e)
{
	for (size_t i = 0; i < e->n_fan_marks; i++) {
		const FanotifyMark *m = e->fan_marks[i];
		if (m->type < MARK_INODE || m->type > MARK_FILESYSTEM || m->path[0] != '/' ||
		    (m->flags & ~(MARK_FLAGS_KEPT | FAN_MARK_DONT_FOLLOW))) {
			pr_err("image fds-%d.img: fd %u: fanotify mark %zu is invalid", t->pid, e->fd, i);
			return -EINVAL;
		}
	}
	if (!e->has_fan_flags || !e->has_fan_event_flags) {
		pr_err("image fds-%d.img: fd %u: a fanotify group without its flags", t->pid, e->fd);
		return -EINVAL;
	}
	return 0;
}

static int add_mark(int fd, const FanotifyMark *m)
{
	unsigned where = m->type == MARK_MOUNT ? FAN_MARK_MOUNT : m->type == MARK_FILESYSTEM ? FAN_MARK_FILESYSTEM : 0;
	unsigned base = FAN_MARK_ADD | where | (m->flags & (FAN_MARK_EVICTABLE | FAN_MARK_DONT_FOLLOW));

	if (m->mask && fanotify_mark(fd, base, m->mask, AT_FDCWD, m->path))
		return -errno;
	if (!m->ignored_mask)
		return 0;
	base |= m->flags & FAN_MARK_IGNORE ? FAN_MARK_IGNORE : FAN_MARK_IGNORED_MASK;
	base |= m->flags & FAN_MARK_IGNORED_SURV_MODIFY;
	return fanotify_mark(fd, base, m->ignored_mask, AT_FDCWD, m->path) ? -errno : 0;
}

static int open_fanotify(struct restore_task *t, const FdEntry *e)
{
	/* as it was made (the group keeps FAN_CLOEXEC among its flags; the fd's own flag is set later) */
	int fd = fanotify_init(e->fan_flags, e->fan_event_flags);

	if (fd < 0)
		return -errno;
	for (size_t i = e->n_fan_marks; i-- > 0;) { /* fdinfo lists the newest mark first */
		int err = add_mark(fd, e->fan_marks[i]);
		if (err) {
			pr_err("restore pid %d fd %u: cannot add the fanotify mark on %s: %s", t->pid, e->fd,
			       e->fan_marks[i]->path, strerror(-err));
			close(fd);
			return err;
		}
	}
	return fd;
}

const struct fd_kind_ops fd_kind_fanotify = {
	.name = "fanotify",
	.dump = dump_fanotify,
	.validate = validate_fanotify,
	.open = open_fanotify,
	.kind = FD_KIND__FD_FANOTIFY,
};
