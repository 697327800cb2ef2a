/*
 * Files reopened by path: regular files (flags, O_APPEND, offset), directories, O_PATH fds of
 * anything with a name (a symlink itself with O_NOFOLLOW, a FIFO, a socket file, a device
 * node), the memory character devices (/dev/null, /dev/zero, /dev/urandom ...) and /dev/tty
 * (the controlling terminal of the session, which is restored before any fd), files of /proc
 * (of a process reaped since: cr/proc-dead.c makes its pid exist again while they are opened).
 * A file, directory or node removed while open comes back from ghosts.img (cr/files/ghost.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "mount-ns.h"
#include "mounts.h"
#include "pid-ns.h"
#include "proc.h"
#include "proc-dead.h"
#include "tree-path.h"
#include "util.h"

#define MEM_MAJOR 1 /* /dev/null, zero, full, random, urandom */
#define DEV_TTY makedev(5, 0)

/* Flags that made sense at open time only. */
#define REOPEN_DROP (O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC)

/* open(2) flags to open e's file again with (O_TMPFILE made the file: it is not asked again). */
static int reopen_flags(const FdEntry *e)
{
	return e->flags & ~REOPEN_DROP & ((e->flags & O_TMPFILE) == O_TMPFILE ? ~O_TMPFILE : ~0);
}

/*
 * A memory device's /dev name by its number. Its fd may come from a mount the tree cannot see
 * (the engine's /dev/null as stdin; a file stasis opened for several processes of a restored
 * container): its path is then relative to that mount ("/null") and means nothing in the tree.
 */
static const char *memdev_name(dev_t rdev)
{
	static const struct { unsigned minor; const char *path; } mem[] = {
		{ 1, "/dev/mem" },  { 2, "/dev/kmem" },   { 3, "/dev/null" },    { 4, "/dev/port" },
		{ 5, "/dev/zero" }, { 7, "/dev/full" },   { 8, "/dev/random" }, { 9, "/dev/urandom" },
		{ 11, "/dev/kmsg" },
	};

	if (rdev == DEV_TTY)
		return "/dev/tty";
	for (size_t i = 0; major(rdev) == MEM_MAJOR && i < sizeof(mem) / sizeof(mem[0]); i++)
		if (mem[i].minor == minor(rdev))
			return mem[i].path;
	return NULL;
}

/* "/proc/N..." with N a number: N, and *rest what follows it ("" or "/..."); else -1. */
static long proc_path_pid(const char *path, const char **rest)
{
	char *end;
	long pid;

	if (strncmp(path, "/proc/", 6) || path[6] < '1' || path[6] > '9')
		return -1;
	pid = strtol(path + 6, &end, 10);
	if (*end && *end != '/')
		return -1;
	*rest = end;
	return pid;
}

/* Whether host pid (a process or a thread) belongs to a process of the tree. */
static bool pid_in_tree(const struct dump_task *t, long pid)
{
	uint64_t tgid;

	if (proc_status_field((pid_t)pid, "Tgid", 10, &tgid))
		tgid = (uint64_t)pid; /* (gone: by its number alone) */
	for (size_t i = 0; i < t->tree_size; i++)
		if (t->tree[i].tgid == pid || (uint64_t)t->tree[i].tgid == tgid)
			return true;
	return false;
}

/*
 * /proc/PID... on stasis's /proc (the same device: the host's, which a tree with a PID
 * namespace of its own may keep when nothing mounted it a /proc of its own), the tree having
 * a PID namespace of its own: PID is the host's pid. Of a process of the tree, which the
 * restored process will not have: the image names it as the tree's /proc would, by its pid in
 * the tree's namespace (the restore names it as the /proc there does: proc_path_here); 1, done
 * into buf. Of a process outside the tree: the path stays, and must not be read as one of the
 * tree's pids at restore (the host's init's /proc/1 is not the tree's init's); 2. 0: not such
 * a file (or nothing to change).
 */
static int proc_path_in_tree(const struct dump_task *t, const struct fd_probe *p, char *buf, size_t len)
{
	const char *rest;
	long pid = proc_path_pid(p->link, &rest);
	struct stat proc;

	if (pid < 0 || stat("/proc", &proc) || proc.st_dev != p->st.st_dev)
		return 0;
	for (size_t i = 0; i < t->tree_size; i++)
		if (t->tree[i].tgid == pid && t->tree[i].vpid != (uint32_t)pid)
			return snprintf(buf, len, "/proc/%u%s", t->tree[i].vpid, rest) < (int)len;
	return pid_ns_is_own(t->ctx) && !pid_in_tree(t, pid) ? 2 : 0;
}

/*
 * The file the fd's path leads to now is its file: a mount made over it (or over a directory
 * above it) since it was opened hides it, or its mount was detached (umount -l), and the path
 * would open another file at restore (the tree's mounts are made again as they are), or none.
 */
static int same_file_by_path(const struct dump_task *t, const struct fd_probe *p)
{
	char what[32];

	snprintf(what, sizeof(what), " fd %d:", p->fd);
	return mount_refuse_hidden(t->pid, t->core->root, p->link, &p->st, what);
}

#define DEV_KMSG makedev(MEM_MAJOR, 11)

/* The sequence number of a /dev/kmsg record as read ("PRI,SEQ,TS,FLAGS;text"). */
static bool kmsg_record_seq(int fd, uint64_t *seq)
{
	char rec[8192];
	ssize_t n;

	while ((n = read(fd, rec, sizeof(rec) - 1)) < 0 && errno == EPIPE)
		; /* (records overwritten since: the next one) */
	if (n <= 0)
		return false;
	rec[n] = 0;
	const char *comma = strchr(rec, ',');
	*seq = comma ? strtoull(comma + 1, NULL, 10) : 0;
	return true;
}

/*
 * A reader of /dev/kmsg (dmesg -w, a log daemon) keeps its place in the kernel's log in its
 * open file, not in its offset. One that has read every record (its file not readable) comes
 * back after the last record logged now; one behind is said to read the log again.
 */
static int kmsg_position(const struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	auto_close int copy = (p->flags & O_ACCMODE) == O_WRONLY ? -1 : task_fd_copy(t->pid, p->fd);
	struct pollfd pf = { .fd = copy, .events = POLLIN };
	uint64_t seq;

	if (copy < 0)
		return copy == -ENOMEM ? -ENOMEM : 0;
	if (poll(&pf, 1, 0)) {
		pr_warn("dump pid %d fd %d: /dev/kmsg has records it has not read yet: it reads the "
			"kernel's log again from its oldest record after the restore", t->pid, p->fd);
		return 0;
	}
	auto_close int now = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	while (now >= 0 && kmsg_record_seq(now, &seq)) {
		e->has_kmsg_seq = true;
		e->kmsg_seq = seq;
	}
	return 0;
}

/* The reader of /dev/kmsg at fd goes on after the record seq (from the oldest if it is gone). */
static void kmsg_skip_to(int fd, uint64_t seq)
{
	int flags = fcntl(fd, F_GETFL);
	uint64_t got = 0;
	bool first = true;

	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	while (kmsg_record_seq(fd, &got) && got < seq)
		first = false;
	if (first && got > seq) /* (the record was overwritten: every one left is newer) */
		lseek(fd, 0, SEEK_SET);
	fcntl(fd, F_SETFL, flags);
}

/*
 * A memory device on a mount outside the tree (an engine's /dev/null given as stdio) is opened
 * again by its name in the tree's root: that name must be the same device there.
 */
static bool memdev_in_tree(const struct dump_task *t, const struct fd_probe *p)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/root%s", t->pid, memdev_name(p->st.st_rdev));
	if (!stat(path, &st) && S_ISCHR(st.st_mode) && st.st_rdev == p->st.st_rdev)
		return true;
	pr_err("dump pid %d fd %d: %s (device %u:%u) is on a mount outside the tree's mount "
	       "namespace, and the tree has no %s of its own to open it again by: not supported",
	       t->pid, p->fd, p->link, major(p->st.st_rdev), minor(p->st.st_rdev),
	       memdev_name(p->st.st_rdev));
	return false;
}

static int dump_regular(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	bool reg = S_ISREG(p->st.st_mode), dir = S_ISDIR(p->st.st_mode);
	bool memdev = S_ISCHR(p->st.st_mode) &&
		      (major(p->st.st_rdev) == MEM_MAJOR || p->st.st_rdev == DEV_TTY);
	bool opath = p->flags & O_PATH, gone = ghost_path(p->link);

	if (!reg && !dir && !memdev && !opath)
		return 0;
	/* a file of /proc/D of a process reaped since: D there again for a moment at restore */
	char magic[64], what[32];
	snprintf(magic, sizeof(magic), "/proc/%d/fd/%d", t->pid, p->fd);
	snprintf(what, sizeof(what), "fd %d", p->fd);
	auto_free char *dead_path = NULL;
	bool outer;
	int dead = proc_dead_dump(t, what, p->link, magic, &p->st, &dead_path, &outer);
	if (dead < 0)
		return dead;
	if (dead) {
		e->has_proc_dead_pid = e->has_proc_dead_outer = true;
		e->proc_dead_pid = dead;
		e->proc_dead_outer = outer;
		gone = false;
	}
	/* (a memory device is the same device by whatever path: its number is checked) */
	uint64_t mnt_id = 0;
	bool outside = fdinfo_u64(p->info, "mnt_id:", 10, &mnt_id) && !mount_ns_holds(t->ctx, mnt_id) &&
		       !mount_nested_holds(t->ctx, mnt_id);
	char tree_path[PATH_MAX];
	const char *saved_path = dead ? dead_path : p->link;
	int in_tree;
	if (!strcmp(p->link, "/secretmem (deleted)")) { /* the task's own: cr/files/memfd.c */
		pr_err("dump: a memfd_secret() file that no fd of the tree holds (carried in flight in "
		       "a unix socket message): not supported");
		return -ENOTSUP;
	}
	/* its path leads elsewhere (or unknown: outside the process's root): on a mount detached
	 * since (or made so), or hidden */
	bool leads = dead || memdev || mount_task_path_holds(t->pid, t->core->root, p->link, &p->st);
	int detached = leads ? 0 : detached_mount_note(t, magic, p->link, &p->st, mnt_id, what, &e->detached_mount);
	if (detached < 0)
		return detached;
	if (detached) {
		e->has_detached_mount = e->has_flags = e->has_pos = true;
		e->flags = p->flags;
		e->pos = p->pos;
		return (e->path = xstrdup(p->link)) ? 1 : -ENOMEM;
	}
	if (!dead && !outside && mount_nested_holds(t->ctx, mnt_id) && !mount_table_has(t->pid, mnt_id)) {
		pr_err("dump pid %d fd %d: %s is on a mount (%llu) of a mount namespace that another "
		       "process of the tree made, not its own (opened there and passed over, or opened "
		       "through that process's /proc/PID): not supported",
		       t->pid, p->fd, p->link, (unsigned long long)mnt_id);
		return -ENOTSUP;
	}
	if (!dead && !memdev && !gone && outside && p->link[0] == '/' &&
	    !mount_ns_path_of(t->ctx, t->pid, p->link, &p->st, tree_path, sizeof(tree_path))) {
		pr_debug("dump pid %d fd %d: %s (mount %llu, outside the tree) is %s in it", t->pid,
			 p->fd, p->link, (unsigned long long)mnt_id, tree_path);
		saved_path = tree_path;
	} else if (!dead && !outside && (in_tree = proc_path_in_tree(t, p, tree_path, sizeof(tree_path)))) {
		if (in_tree == 2) {
			pr_debug("dump pid %d fd %d: %s (the host's /proc) is of a process outside the "
				 "tree", t->pid, p->fd, p->link);
			e->has_proc_outside = e->proc_outside = true;
		} else {
			pr_debug("dump pid %d fd %d: %s (the host's /proc) is %s in the tree", t->pid,
				 p->fd, p->link, tree_path);
			saved_path = tree_path;
		}
	} else if ((!memdev || gone) && outside) {
		pr_err("dump pid %d fd %d: %s is on a mount outside the tree's mount namespace (mount "
		       "%llu): its path means nothing inside; not supported", t->pid, p->fd, p->link,
		       (unsigned long long)mnt_id);
		return -ENOTSUP;
	}
	/* on a mount of the nested mount namespace it is in: there once its maker made it, which
	 * opens it if several share it (cr/files/shared.c) */
	if (!dead && !outside && mount_nested_holds(t->ctx, mnt_id) &&
	    (e->mntns_maker = mount_nested_maker(t->ctx, t->vpid)))
		e->has_mntns_maker = true;
	if (p->st.st_rdev == DEV_TTY && S_ISCHR(p->st.st_mode) && !opath && !t->core->has_ctty_pty &&
	    !t->ctx->opts->shell_job) {
		pr_err("dump pid %d fd %d: /dev/tty, its controlling terminal, is from outside the tree "
		       "(pass --shell-job to use the restoring caller's)", t->pid, p->fd);
		return -ENOTSUP;
	}
	if (gone) { /* removed: a regular file's content, or what a directory or node was */
		int id = ghost_note(t->ctx, magic, p->link, t->pid, what, true);
		if (id < 0)
			return id;
		e->has_ghost_id = true;
		e->ghost_id = id;
	} else if (p->link[0] != '/') {
		pr_err("dump pid %d fd %d: %s is not reachable by path (not supported yet)", t->pid, p->fd,
		       p->link);
		return -ENOTSUP;
	}
	int hidden = !leads && !gone && saved_path == p->link ? same_file_by_path(t, p) : 0;
	if (hidden)
		return hidden;
	if (memdev && outside && memdev_name(p->st.st_rdev) && !memdev_in_tree(t, p))
		return -ENOTSUP;
	if (!(e->path = xstrdup(memdev && outside && memdev_name(p->st.st_rdev) ? memdev_name(p->st.st_rdev)
										: saved_path)))
		return -ENOMEM;
	e->has_flags = e->has_pos = true;
	e->flags = p->flags;
	e->pos = p->pos;
	if (reg) {
		e->has_size = true;
		e->size = p->st.st_size;
	}
	if (S_ISCHR(p->st.st_mode)) {
		e->has_rdev = true;
		e->rdev = p->st.st_rdev;
	}
	int err = S_ISCHR(p->st.st_mode) && p->st.st_rdev == DEV_KMSG ? kmsg_position(t, p, e) : 0;
	return err ? err : 1;
}

static int validate_regular(const struct restore_task *t, const FdEntry *e)
{
	if (!e->has_flags || (!e->has_ghost_id && !image_path_ok(e->path))) {
		pr_err("image fds-%d.img: fd %u is a file by path without flags or an absolute path "
		       "free of '..' (%s)", t->pid, e->fd, e->path ? e->path : "no path");
		return -EINVAL;
	}
	return 0;
}

/* A file of /proc/PID/ of a process of the tree: it exists once the tree runs. */
static bool proc_of_tree(const struct restore_task *t, const FdEntry *e)
{
	const char *rest;
	long pid = proc_path_pid(e->path, &rest);

	if (e->proc_outside)
		return false; /* (the host's PID, of a process outside the tree) */
	for (size_t i = 0; pid > 0 && i < t->tree_size; i++)
		if (t->tree[i].pid == pid)
			return true;
	return false;
}

/*
 * In a new process of the tree: *out is e's path; a file of /proc/PID/ of a process of the
 * tree (PID of the tree's namespace) as the /proc the tree sees names it, in buf if that
 * differs (a /proc of another PID namespace, the host's: proc_path_in_tree): by the pid that
 * the process's pidfd's fdinfo read through that /proc says. 0 or -ENOMEM (said).
 */
static int proc_path_here(const struct restore_task *t, const FdEntry *e, char *buf, size_t len,
			  const char **out)
{
	const char *path = e->path, *rest;
	long pid = proc_path_pid(path, &rest);
	char name[16];
	uint64_t here;

	*out = path;
	if (!proc_of_tree(t, e))
		return 0;
	int pidfd = syscall(SYS_pidfd_open, (pid_t)pid, 0);
	int dir = pidfd < 0 ? -1
			    : tree_open(t->ctx, "/proc/self/fdinfo", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	snprintf(name, sizeof(name), "%d", pidfd);
	errno = 0;
	auto_free char *info = dir < 0 ? NULL : read_file_at(dir, name, NULL);
	int err = errno;
	if (dir >= 0)
		close(dir);
	if (pidfd >= 0)
		close(pidfd);
	if (!info && err == ENOMEM) {
		pr_err("restore pid %d fd %u: %s: out of memory", t->pid, e->fd, path);
		return -ENOMEM;
	}
	if (info && fdinfo_u64(info, "\nPid:", 10, &here) && here > 0 && here != (uint64_t)pid &&
	    snprintf(buf, len, "/proc/%llu%s", (unsigned long long)here, rest) < (int)len)
		*out = buf;
	return 0;
}

/* Before anything starts: the file (or device) is still there to be opened. */
static int check_regular(const struct restore_task *t, const FdEntry *e)
{
	struct stat st;
	int err;

	if (e->has_ghost_id || e->has_proc_dead_pid || e->has_detached_mount || proc_of_tree(t, e) ||
	    mount_ns_made_by_root(t->ctx, e->path) || mount_nested_in(t->ctx, t->pid))
		return 0; /* a deleted file: checked with ghosts.img; /proc of the tree or of a reaped
			   * process (cr/proc-dead.c), a file on a mount the tree's root makes (a
			   * cgroup mount), a file of a process in a mount namespace of its own (made
			   * when it is): not there yet */
	if ((err = tree_stat(t->ctx, e->path, &st, (e->flags & O_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0))) {
		pr_err("restore pid %d fd %u: %s: %s; nothing was started", t->pid, e->fd, e->path,
		       err == -EXDEV ? "leads out of the tree's root (refused)" : strerror(-err));
		return err;
	}
	if (e->has_rdev && (!S_ISCHR(st.st_mode) || st.st_rdev != e->rdev)) {
		pr_err("restore pid %d fd %u: %s is no longer the device %u:%u; nothing was started",
		       t->pid, e->fd, e->path, major(e->rdev), minor(e->rdev));
		return -ENODEV;
	}
	return 0;
}

static int open_regular(struct restore_task *t, const FdEntry *e)
{
	char here[PATH_MAX], what[24];
	const char *path;
	struct stat st;
	int fd = proc_path_here(t, e, here, sizeof(here), &path);

	snprintf(what, sizeof(what), "fd %u", e->fd);

	if (fd >= 0)
		fd = e->has_ghost_id	     ? ghost_open(t->ctx, e->ghost_id, reopen_flags(e))
		     : e->has_detached_mount ? detached_mount_open(t->ctx, e->detached_mount, e->path, reopen_flags(e),
							   t->pid, what)
					     : tree_open(t->ctx, path, reopen_flags(e), 0);
	if (fd < 0)
		return fd;
	if (e->has_rdev && (fstat(fd, &st) || !S_ISCHR(st.st_mode) || st.st_rdev != e->rdev)) {
		pr_err("restore pid %d fd %u: %s is no longer the device %u:%u", t->pid, e->fd, e->path,
		       major(e->rdev), minor(e->rdev));
		close(fd);
		return -ENODEV;
	}
	if (e->has_kmsg_seq)
		kmsg_skip_to(fd, e->kmsg_seq);
	if (e->has_size && !e->has_ghost_id && !fstat(fd, &st) && (uint64_t)st.st_size != e->size)
		pr_warn("restore pid %d fd %u: %s has changed size since the dump (%llu, now %lld bytes)", t->pid,
			e->fd, e->path, (unsigned long long)e->size, (long long)st.st_size);
	if (!(e->flags & O_PATH) && e->pos && lseek(fd, e->pos, SEEK_SET) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/*
 * A file of /proc/PID/ of a process of the tree: PID, there only once it runs; one on a mount of
 * a nested mount namespace: that one's maker, once it made it.
 */
static pid_t opener_of(const struct restore_task *t, const FdEntry *e)
{
	const char *rest;
	if (proc_of_tree(t, e))
		return (pid_t)proc_path_pid(e->path, &rest);
	return e->has_mntns_maker ? (pid_t)e->mntns_maker : 0;
}

const struct fd_kind_ops fd_kind_regular = {
	.name = "file by path",
	.dump = dump_regular,
	.validate = validate_regular,
	.check = check_regular,
	.open = open_regular,
	.opens_in_tree_ns = proc_dead_in_tree_ns,
	.opened_by_process = opener_of,
	.kind = FD_KIND__FD_REGULAR,
};
