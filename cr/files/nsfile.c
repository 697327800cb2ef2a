/*
 * Namespace files (an fd of /proc/PID/ns/NAME: "net:[4026531840]"). One of the process's own
 * namespaces is saved by the name of its file and comes back as the restored process's own
 * (/proc/self/ns/NAME, opened once the process is in its namespaces). A time namespace, while
 * the tree has some of its own, is saved by its id (ns_id): one of the tree's that the process
 * can reach, or stasis's own; cr/time-ns.c makes them and hands out their fds. Any other
 * namespace that is not one of the process's own (another process's, the host's while the
 * tree has its own) is refused by name: nothing in the images would make it again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "files.h"
#include "log.h"
#include "time-ns.h"
#include "util.h"

struct ns_file {
	const char *file;   /* in /proc/PID/ns */
	const char *kind;   /* as its link names it */
	size_t off, has_off; /* the process's own, in NsIds */
};

#define NS_OWN(f) offsetof(NsIds, f), offsetof(NsIds, has_##f)

static const struct ns_file ns_files[] = {
	{ "cgroup", "cgroup", NS_OWN(cgroup) },
	{ "ipc", "ipc", NS_OWN(ipc) },
	{ "mnt", "mnt", NS_OWN(mnt) },
	{ "net", "net", NS_OWN(net) },
	{ "pid", "pid", NS_OWN(pid) },
	{ "pid_for_children", "pid", NS_OWN(pid_for_children) },
	{ "time", "time", NS_OWN(time) },
	{ "time_for_children", "time", NS_OWN(time_for_children) },
	{ "user", "user", NS_OWN(user) },
	{ "uts", "uts", NS_OWN(uts) },
};

static const struct ns_file *ns_file_named(const char *file)
{
	for (size_t i = 0; i < ARRAY_SIZE(ns_files); i++)
		if (!strcmp(ns_files[i].file, file))
			return &ns_files[i];
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
		if (strcmp(f->kind, kind) || !*(const protobuf_c_boolean *)((const char *)own + f->has_off) ||
		    *(const uint64_t *)((const char *)own + f->off) != ino)
			continue;
		if (!(e->path = xstrdup(f->file)))
			return -ENOMEM;
		e->has_flags = true;
		e->flags = p->flags;
		return 1;
	}
	pr_err("dump pid %d fd %d: %s is a namespace the process is not in (another process's or "
	       "outside the tree): not supported", t->pid, p->fd, p->link);
	return -ENOTSUP;
}

static int validate_nsfile(const struct restore_task *t, const FdEntry *e)
{
	if (!e->path || !ns_file_named(e->path) || !e->has_flags ||
	    (e->has_ns_id && strcmp(e->path, "time"))) {
		pr_err("image fds-%d.img: fd %u is a namespace file of no known kind", t->pid, e->fd);
		return -EINVAL;
	}
	return 0;
}

/* In the new task, in its namespaces by now: its own namespace of that kind. */
static int open_nsfile(struct restore_task *t, const FdEntry *e)
{
	char path[64];

	if (e->has_ns_id)
		return time_ns_fd(t->ctx, t->pid, e->ns_id);
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
