/*
 * Namespace files (an fd of /proc/PID/ns/NAME: "net:[4026531840]"). One of the process's own
 * namespaces is saved by the name of its file and comes back as the restored process's own
 * (/proc/self/ns/NAME, opened once the process is in its namespaces). A time namespace, while
 * the tree has some of its own, is saved by its id (ns_id): one of the tree's that the process
 * can reach, or stasis's own; cr/time-ns.c makes them and hands out their fds. A network, UTS,
 * IPC, mount or cgroup namespace of another process of the tree (a parent holding its child's,
 * as a sandbox or a test harness does to enter it later; a process that made its own and kept
 * the one it left) is saved by the topmost process in it (ns_pid): at restore it is opened
 * through that process's pidfd once the process is in it, which it may make only after it is
 * forked (made by its parent or stasis at once otherwise). Any other namespace (one no process
 * of the tree is in, the host's while the tree has its own, a user, PID or time namespace of
 * another process) is refused by name: nothing in the images would make it again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "files.h"
#include "log.h"
#include "task.h"
#include "time-ns.h"
#include "util.h"

struct ns_file {
	const char *file;   /* in /proc/PID/ns */
	const char *kind;   /* as its link names it */
	size_t off, has_off; /* the process's own, in NsIds */
	unsigned long of_pidfd; /* the ioctl giving it from a pidfd; 0: not kept as another's */
};

#define NS_OWN(f) offsetof(NsIds, f), offsetof(NsIds, has_##f)

static const struct ns_file ns_files[] = {
	{ "cgroup", "cgroup", NS_OWN(cgroup), PIDFD_GET_CGROUP_NAMESPACE },
	{ "ipc", "ipc", NS_OWN(ipc), PIDFD_GET_IPC_NAMESPACE },
	{ "mnt", "mnt", NS_OWN(mnt), PIDFD_GET_MNT_NAMESPACE },
	{ "net", "net", NS_OWN(net), PIDFD_GET_NET_NAMESPACE },
	{ "pid", "pid", NS_OWN(pid), 0 },
	{ "pid_for_children", "pid", NS_OWN(pid_for_children), 0 },
	{ "time", "time", NS_OWN(time), 0 },
	{ "time_for_children", "time", NS_OWN(time_for_children), 0 },
	{ "user", "user", NS_OWN(user), 0 },
	{ "uts", "uts", NS_OWN(uts), PIDFD_GET_UTS_NAMESPACE },
};

static const struct ns_file *ns_file_named(const char *file)
{
	for (size_t i = 0; i < ARRAY_SIZE(ns_files); i++)
		if (!strcmp(ns_files[i].file, file))
			return &ns_files[i];
	return NULL;
}

/* Is namespace ino of kind f one of ids'? */
static bool ns_is(const NsIds *ids, const struct ns_file *f, uint64_t ino)
{
	return *(const protobuf_c_boolean *)((const char *)ids + f->has_off) &&
	       *(const uint64_t *)((const char *)ids + f->off) == ino;
}

/* The topmost process of the tree in namespace ino of kind f (its parent is not), or NULL. */
static const struct dump_task *ns_topmost(const struct dump_task *t, const struct ns_file *f, uint64_t ino)
{
	for (size_t i = 0; t->tree && i < t->tree_size; i++) {
		const struct dump_task *m = &t->tree[i];
		if (!ns_is(namespaces_of(m), f, ino))
			continue;
		while (m->parent && ns_is(namespaces_of(m->parent), f, ino))
			m = m->parent;
		return m;
	}
	return NULL;
}

static int dump_nsfile(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	const NsIds *own = t->core->ns;
	char kind[24];
	unsigned long long ino;
	int len = 0;

	if (sscanf(p->link, "%23[a-z_]:[%llu]%n", kind, &ino, &len) != 2 || p->link[len] || ino != p->st.st_ino)
		return 0;
	bool known = false;
	for (size_t i = 0; i < ARRAY_SIZE(ns_files); i++)
		known |= !strcmp(ns_files[i].kind, kind);
	if (!known || !S_ISREG(p->st.st_mode))
		return 0; /* pipe:[N], socket:[N] */
	/* (shared files are opened by stasis: it names which one) */
	if (!strcmp(kind, "time") && time_ns_reachable(t, ino)) {
		if (!(e->path = xstrdup("time")))
			return -ENOMEM;
		e->has_flags = e->has_ns_id = true;
		e->flags = p->flags;
		e->ns_id = ino;
		return 1;
	}
	for (size_t i = 0; own && i < ARRAY_SIZE(ns_files); i++) {
		const struct ns_file *f = &ns_files[i];
		if (strcmp(f->kind, kind) || !ns_is(own, f, ino))
			continue;
		if (!(e->path = xstrdup(f->file)))
			return -ENOMEM;
		e->has_flags = true;
		e->flags = p->flags;
		return 1;
	}
	const struct ns_file *f = ns_file_named(kind);
	const struct dump_task *m = f && f->of_pidfd ? ns_topmost(t, f, ino) : NULL;
	/* (its pid is the holder's name for it: both in the tree's PID namespace) */
	if (m && own && namespaces_of(&t->tree[0])->pid == own->pid) {
		if (!(e->path = xstrdup(f->file)))
			return -ENOMEM;
		e->has_flags = e->has_ns_pid = true;
		e->flags = p->flags;
		e->ns_pid = m->vpid;
		pr_debug("dump pid %d fd %d: %s is the namespace of pid %u", t->pid, p->fd, p->link, m->vpid);
		return 1;
	}
	if (!f || !f->of_pidfd)
		pr_err("dump pid %d fd %d: %s is a namespace the process is not in (one of this kind is "
		       "kept as the process's own only): not supported", t->pid, p->fd, p->link);
	else if (!m)
		pr_err("dump pid %d fd %d: %s is a namespace the process is not in, nor any process of "
		       "the tree (fds alone hold it, or it is outside the tree): not supported",
		       t->pid, p->fd, p->link);
	else
		pr_err("dump pid %d fd %d: %s is a namespace the process is not in, pid %u's, which its "
		       "PID namespace does not show: not supported", t->pid, p->fd, p->link, m->vpid);
	return -ENOTSUP;
}

static int validate_nsfile(const struct restore_task *t, const FdEntry *e)
{
	const struct ns_file *f = e->path ? ns_file_named(e->path) : NULL;

	if (!f || !e->has_flags || (e->has_ns_id && strcmp(e->path, "time")) ||
	    (e->has_ns_pid && (e->has_ns_id || !f->of_pidfd))) {
		pr_err("image fds-%d.img: fd %u is a namespace file of no known kind", t->pid, e->fd);
		return -EINVAL;
	}
	if (e->has_ns_pid && (!restore_tree_task(t, e->ns_pid) || e->ns_pid == (uint32_t)t->pid)) {
		pr_err("image fds-%d.img: fd %u is the namespace of pid %u, no other process of the tree",
		       t->pid, e->fd, e->ns_pid);
		return -EINVAL;
	}
	return 0;
}

/* An fd of namespace f of process pid (the tree's PID namespace names it), or -errno. */
static int ns_of(pid_t pid, const struct ns_file *f)
{
	auto_close int pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	char path[64];
	int fd = ioctl(pidfd, f->of_pidfd, 0);
	if (fd >= 0) {
		/* opened again as open(2) opens it (O_LARGEFILE), where /proc is there */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		int again = open(path, O_RDONLY | O_CLOEXEC);
		if (again < 0)
			return fd;
		close(fd);
		return again;
	}
	if (errno != ENOTTY)
		return -errno;
	/* (before 6.11: by the process's /proc, which it has unless chrooted) */
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, f->file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static bool same_ns(int a, int b)
{
	struct stat sa, sb;
	return !fstat(a, &sa) && !fstat(b, &sb) && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

/*
 * The namespace of another process of the tree, m, its topmost: once m exists and is in it.
 * The root is in its namespaces before it forks anything; another topmost process is forked
 * in its parent's and makes or joins its own then (cr/nested-ns.h): until its namespace
 * differs from its parent's, it is not there yet. 2 s at most, as pidfds of later processes.
 */
static int open_tree_nsfile(struct restore_task *t, const FdEntry *e, const struct ns_file *f)
{
	const struct restore_task *m = restore_tree_task(t, e->ns_pid);
	const struct restore_task *parent = m->is_root ? NULL : restore_tree_task(t, m->core->ppid);
	int err = -ESRCH;

	for (int tries = 0; tries < 1000; tries++, usleep(2000)) {
		int fd = ns_of(m->pid, f);
		if (fd == -ESRCH)
			continue;
		if (fd < 0 || !parent)
			return fd;
		int outer = ns_of(parent->pid, f);
		if (outer < 0 && outer != -ESRCH) {
			close(fd);
			return outer;
		}
		bool there = outer >= 0 && !same_ns(fd, outer);
		if (outer >= 0)
			close(outer);
		if (there)
			return fd;
		close(fd);
		err = -EAGAIN;
	}
	pr_err("restore pid %d fd %u: pid %u %s in its %s namespace", t->pid, e->fd, e->ns_pid,
	       err == -ESRCH ? "never appeared to give it: not" : "never was", f->file);
	return err;
}

/* In the new task, in its namespaces by now: its own namespace of that kind. */
static int open_nsfile(struct restore_task *t, const FdEntry *e)
{
	char path[64];

	if (e->has_ns_id)
		return time_ns_fd(t->ctx, t->pid, e->ns_id);
	if (e->has_ns_pid)
		return open_tree_nsfile(t, e, ns_file_named(e->path));
	snprintf(path, sizeof(path), "/proc/thread-self/ns/%s", e->path);
	int fd = open(path, (e->flags & (O_ACCMODE | O_PATH)) | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

const struct fd_kind_ops fd_kind_nsfile = {
	.name = "namespace file",
	.dump = dump_nsfile,
	.validate = validate_nsfile,
	.open = open_nsfile,
	.kind = FD_KIND__FD_NSFILE,
};
