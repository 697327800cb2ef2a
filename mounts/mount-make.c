/*
 * Making the tree's mounts again, under its root. Every path from the images is resolved
 * inside the root (openat2 RESOLVE_IN_ROOT: no "..", no symlink leads out) and mounts are
 * made on and from those fds (/proc/self/fd/N), so a crafted image cannot mount over the
 * host. Mount points that are missing are made (a directory, or an empty file for a file
 * bind). Propagation last: every mount private, then the saved peer groups made again with
 * MOVE_MOUNT_SET_GROUP, slaves made slaves of their group, unbindable ones unbindable.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "log.h"
#include "mounts.h"
#include "net-nested.h"
#include "ns-make.h"
#include "util.h"

#ifndef MOVE_MOUNT_SET_GROUP
#define MOVE_MOUNT_SET_GROUP 0x00000100
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif

int mount_open_in_root(int root_fd, const char *path, int flags)
{
	struct open_how how = { .flags = flags | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	int fd;

	while (*path == '/')
		path++;
	fd = syscall(SYS_openat2, root_fd, *path ? path : ".", &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

/* The mount point, made if missing: a directory, or an empty file for a file bind. */
static int mount_point(int root_fd, const char *path, bool is_file)
{
	int fd = mount_open_in_root(root_fd, path, O_PATH);
	char *dir, *slash;

	if (fd >= 0 || fd != -ENOENT)
		return fd;
	if (!(dir = xstrdup(path)))
		return -ENOMEM;
	slash = strrchr(dir, '/');
	*slash = 0;
	int parent = mount_open_in_root(root_fd, *dir ? dir : "/", O_PATH | O_DIRECTORY);
	const char *name = slash + 1;
	if (parent >= 0) {
		if (is_file) {
			int f = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (f >= 0)
				close(f);
		} else if (mkdirat(parent, name, 0755) && errno != EEXIST) {
			pr_perror("restore: cannot make mount point %s", path);
		}
		close(parent);
	}
	free(dir);
	return mount_open_in_root(root_fd, path, O_PATH);
}

static const MountEntry *entry_by_id(const MountNs *ns, uint32_t id)
{
	for (size_t i = 0; i < ns->n_mounts; i++)
		if (ns->mounts[i]->id == id)
			return ns->mounts[i];
	return NULL;
}

const char *mount_external_source(const struct run_ctx *ctx, const MountEntry *e)
{
	const struct stasis_opts *o = ctx->opts;

	if (e->ext_key) {
		for (size_t i = 0; i < o->ext_mount_maps.n; i++)
			if (o->ext_mount_maps.v[i].key && !strcmp(o->ext_mount_maps.v[i].key, e->ext_key))
				return o->ext_mount_maps.v[i].value;
		size_t n = strlen(e->ext_key);
		for (size_t i = 0; i < o->externals.n; i++) {
			const char *x = o->externals.v[i].value;
			if (!strncmp(x, "mnt[", 4) && !strncmp(x + 4, e->ext_key, n) && x[4 + n] == ']' &&
			    x[5 + n] == ':')
				return x + 6 + n;
		}
		pr_err("restore: mount %s was outside the tree (key %s): pass --ext-mount-map %s:HOSTPATH "
		       "(or --external mnt[%s]:HOSTPATH)", e->mountpoint, e->ext_key, e->ext_key, e->ext_key);
		return NULL;
	}
	if (!o->ext_mount_auto) {
		pr_err("restore: mount %s was bound from the host's %s: pass --ext-mount-map auto to bind "
		       "it from there again", e->mountpoint, e->ext_path);
		return NULL;
	}
	return e->ext_path;
}

static int fd_path(char *buf, size_t len, int fd)
{
	return snprintf(buf, len, "/proc/self/fd/%d", fd);
}

/* The per-mount flags as saved, on the mount now at path (in root_fd). */
static int set_flags(int root_fd, const MountEntry *e)
{
	char path[64];
	auto_close int top = mount_open_in_root(root_fd, e->mountpoint, O_PATH);

	if (top < 0)
		return top;
	fd_path(path, sizeof(path), top);
	if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | e->mount_flags, NULL)) {
		pr_perror("restore: cannot set the flags of mount %s", e->mountpoint);
		return -errno;
	}
	return 0;
}

/*
 * Saved options name ids as stasis sees them (uid=, gid=); a mount made from inside the tree's
 * user namespace gives them in that one's view. NULL: out of memory.
 */
static char *options_in_userns(const struct run_ctx *ctx, const char *opts)
{
	char *out = xmalloc(strlen(opts) + 16 * 8 + 1), *copy = xstrdup(opts), *save = NULL;
	size_t len = 0;

	if (!out || !copy) {
		free(out);
		free(copy);
		return NULL;
	}
	out[0] = 0;
	for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		uint32_t id;
		char *end;
		bool uid = !strncmp(o, "uid=", 4), gid = !strncmp(o, "gid=", 4);
		if ((uid || gid) && (id = strtoul(o + 4, &end, 10), !*end) && len < 16 * 8) {
			ns_make_tree_ids(ctx, gid, &id, 1);
			len += sprintf(out + len, "%s%s=%u", len ? "," : "", uid ? "uid" : "gid", id);
		} else {
			len += sprintf(out + len, "%s%s", len ? "," : "", o);
		}
	}
	free(copy);
	return out;
}

struct fresh_mount {
	const MountEntry *e;
	int root_fd;
	const char *target; /* its mount point, through /proc/self/fd */
	struct tmpfs_image *contents;
	const struct run_ctx *ctx;
};

/* A filesystem made anew (and a tmpfs filled): in_userns, from inside the tree's user namespace. */
static int make_fresh(const struct fresh_mount *fm, bool in_userns)
{
	const MountEntry *e = fm->e;
	char target[64];
	int err;

	/* a read-only filesystem with contents (a tmpfs) is filled first */
	unsigned long flags = e->mount_flags & ~(unsigned long)MS_RDONLY;
	if (e->sb_readonly && !e->has_contents)
		flags |= MS_RDONLY;
	auto_free char *opts = e->fs_options && *e->fs_options
				       ? in_userns ? options_in_userns(fm->ctx, e->fs_options) : xstrdup(e->fs_options)
				       : NULL;
	if (e->fs_options && *e->fs_options && !opts)
		return -ENOMEM;
	if (mount(e->source, fm->target, e->fstype, flags, opts)) {
		pr_perror("restore: cannot mount %s (%s)", e->mountpoint, e->fstype);
		return -errno;
	}
	if (e->has_contents) {
		if (!fm->contents || !fm->contents->tree)
			return -EINVAL;
		auto_close int top = mount_open_in_root(fm->root_fd, e->mountpoint, O_RDONLY | O_DIRECTORY);
		if (top < 0) {
			pr_err("restore: cannot open mount %s: %s", e->mountpoint, strerror(-top));
			return top;
		}
		if ((err = tmpfs_restore(top, fm->contents, e->mountpoint, in_userns ? fm->ctx : NULL)))
			return err;
		fd_path(target, sizeof(target), top); /* the new mount's root */
		if (e->sb_readonly && mount(NULL, target, NULL, MS_REMOUNT | MS_RDONLY | flags, NULL)) {
			pr_perror("restore: cannot make the filesystem of mount %s read-only", e->mountpoint);
			return -errno;
		}
	}
	return (e->mount_flags & MS_RDONLY) ? set_flags(fm->root_fd, e) : 0;
}

static int make_fresh_in_userns(void *fm)
{
	return make_fresh(fm, true);
}

/* A directory made to stand for a removed one while it is bound, then removed again. */
struct removed_dir {
	int parent;
	char name[64];
};

/*
 * The removed directory path (under root_fd) that mount e binds, made again empty with its
 * mode and owner: by its own name, or by a name of stasis's when another file took it since.
 * An O_PATH fd of it, or -errno (said).
 */
static int removed_dir_make(int root_fd, const char *path, const MountEntry *e,
			    const struct run_ctx *in_userns, struct removed_dir *rd)
{
	uint32_t uid = e->deleted_uid, gid = e->deleted_gid;
	auto_free char *dir = xstrdup(path);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	const char *base = slash ? slash + 1 : "";

	if (!dir)
		return -ENOMEM;
	if (!slash || !*base || strlen(base) >= sizeof(rd->name)) {
		snprintf(rd->name, sizeof(rd->name), ".stasis-removed.%u", e->id);
	} else {
		snprintf(rd->name, sizeof(rd->name), "%s", base);
	}
	if (slash)
		*slash = 0;
	if ((rd->parent = mount_open_in_root(root_fd, slash && *dir ? dir : "/", O_PATH | O_DIRECTORY)) < 0) {
		pr_err("restore: mount %s: the directory its removed source %s was in is not there: %s",
		       e->mountpoint, path, strerror(-rd->parent));
		return rd->parent;
	}
	bool taken = mkdirat(rd->parent, rd->name, 0700) && errno == EEXIST; /* by another file since */
	if (taken)
		snprintf(rd->name, sizeof(rd->name), ".stasis-removed.%u", e->id);
	int fd = taken && mkdirat(rd->parent, rd->name, 0700)
			 ? -1
			 : openat(rd->parent, rd->name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("restore: mount %s: cannot make its removed source %s again", e->mountpoint, path);
		unlinkat(rd->parent, rd->name, AT_REMOVEDIR);
		close(rd->parent);
		rd->parent = -1;
		return -errno;
	}
	if (in_userns) {
		ns_make_tree_ids(in_userns, false, &uid, 1);
		ns_make_tree_ids(in_userns, true, &gid, 1);
	}
	if (fchownat(rd->parent, rd->name, uid, gid, AT_SYMLINK_NOFOLLOW))
		pr_warn("restore: mount %s: its removed source %s keeps its owner root: %m", e->mountpoint,
			path);
	if (fchmodat(rd->parent, rd->name, e->deleted_mode & 07777, 0))
		pr_warn("restore: mount %s: its removed source %s keeps mode 0700: %m", e->mountpoint, path);
	return fd;
}

#define MASTERLESS_PTY_MAX 256
/* The masters opened to make a pty of a given index (closed once it is bound). */
struct pty_masters {
	int fd[MASTERLESS_PTY_MAX];
	size_t n;
};

static void pty_masters_close(struct pty_masters *pm)
{
	while (pm->n)
		close(pm->fd[--pm->n]);
}

/*
 * The pty name (its index) of the devpts mounted at devpts, made to be bound at mount e: one
 * that no process of the tree held, its master outside the tree (an engine's terminal: LXC's
 * lxc.tty.max ttys, whose masters its monitor holds), or one whose master was closed. The
 * devpts's ptmx is opened until that index comes (the kernel gives the lowest free one), and
 * unlocked; pm holds the masters, closed once it is bound: the bind is then of a pty with no
 * master (opening it fails with EIO), as the engine's terminal is without the engine.
 */
static int masterless_pty(int root_fd, const char *devpts, const MountEntry *e, struct pty_masters *pm)
{
	char ptmx[PATH_MAX], *end;
	unsigned long want = strtoul(e->bind_root, &end, 10);
	unsigned got = 0;
	int unlock = 0;

	if (end == e->bind_root || *end || want >= MASTERLESS_PTY_MAX) {
		pr_err("restore: mount %s binds %s of the devpts at %s: no pty index below %d", e->mountpoint,
		       e->bind_root, devpts, MASTERLESS_PTY_MAX);
		return -EINVAL;
	}
	snprintf(ptmx, sizeof(ptmx), "%s/ptmx", devpts);
	do {
		int m = mount_open_in_root(root_fd, ptmx, O_RDWR | O_NOCTTY);
		if (m < 0 || ioctl(m, TIOCGPTN, &got)) {
			int err = m < 0 ? m : -errno;
			if (m >= 0)
				close(m);
			pr_err("restore: mount %s: cannot make pty %lu of the devpts at %s: %s", e->mountpoint, want,
			       devpts, strerror(-err));
			pty_masters_close(pm);
			return err;
		}
		pm->fd[pm->n++] = m;
	} while (got < want && pm->n < MASTERLESS_PTY_MAX);
	if (got != want || ioctl(pm->fd[pm->n - 1], TIOCSPTLCK, &unlock)) {
		pr_err("restore: mount %s: pty %lu of the devpts at %s is taken (got %u)", e->mountpoint, want,
		       devpts, got);
		pty_masters_close(pm);
		return -EBUSY;
	}
	pr_warn("restore: mount %s binds pty %lu of the tree's devpts, which no process of the tree held "
		"(its master was outside the tree: an engine's terminal): made again with no master, "
		"opening it fails", e->mountpoint, want);
	snprintf(ptmx, sizeof(ptmx), "%s/%lu", devpts, want);
	int fd = mount_open_in_root(root_fd, ptmx, O_PATH);
	if (fd < 0)
		pty_masters_close(pm);
	return fd;
}

int mounts_note_nsfs(const struct run_ctx *ctx, MountEntry *const *mounts, size_t n, uint32_t mnt_maker)
{
	int err = 0;

	for (size_t i = 0; i < n && !err; i++)
		if (mounts[i]->how == MOUNT_HOW__MOUNT_NSFS && !mounts[i]->nsfs_tree_net && !mounts[i]->inherited)
			err = net_nested_note_mount(ctx, mounts[i], mnt_maker);
	return err;
}

int mount_make(const MountNs *ns, size_t i, int root_fd, const struct run_ctx *ctx, int ext_copy,
	       struct tmpfs_image *contents, bool in_userns)
{
	const MountEntry *e = ns->mounts[i];
	char target[64], source[64];
	unsigned logged = log_errors();
	auto_close int t = mount_point(root_fd, e->mountpoint, e->is_file);
	auto_close int s = -1;
	struct removed_dir removed = { .parent = -1 };
	struct pty_masters masters = { .n = 0 };

	if (t < 0)
		return log_unnamed(logged, t, "restore: mount point %s", e->mountpoint);
	/* a copy of its source made before (outside the namespace, or where a mount covers it
	 * now: mount-nested.c), moved in */
	if (ext_copy >= 0) {
		if (syscall(SYS_move_mount, ext_copy, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)) {
			pr_perror("restore: cannot bind-mount %s", e->mountpoint);
			return -errno;
		}
		return set_flags(root_fd, e);
	}
	fd_path(target, sizeof(target), t);
	switch (e->how) {
	case MOUNT_HOW__MOUNT_BIND: {
		const MountEntry *of = entry_by_id(ns, e->bind_of);
		/* (the whole of a file bind: its mount point, without a slash after it) */
		bool whole = !e->bind_root[strspn(e->bind_root, "/")];
		char *from = whole ? xstrdup(of->mountpoint) : xasprintf("%s/%s", of->mountpoint, e->bind_root);
		if (!from)
			return -ENOMEM;
		s = e->bind_root_deleted ? removed_dir_make(root_fd, from, e, in_userns ? ctx : NULL, &removed)
					 : mount_open_in_root(root_fd, from, O_PATH);
		free(from);
		if (s == -ENOENT && e->is_file && !strcmp(of->fstype, "devpts"))
			s = masterless_pty(root_fd, of->mountpoint, e, &masters);
		break;
	}
	case MOUNT_HOW__MOUNT_EXTERNAL: {
		const char *host = mount_external_source(ctx, e);
		if (!host)
			return -ENOENT;
		s = open(host, O_PATH | O_CLOEXEC);
		if (s < 0)
			pr_perror("restore: mount %s: its source %s", e->mountpoint, host);
		break;
	}
	case MOUNT_HOW__MOUNT_NSFS: { /* (by the tree's root, in the tree's network namespace, or by
				       * the maker of a nested mount namespace) */
		int ns = e->nsfs_tree_net ? -1 : net_nested_fd_of(ctx, e->nsfs_net);
		if (!e->nsfs_tree_net && ns < 0)
			return -ENOENT;
		s = ns >= 0 ? fcntl(ns, F_DUPFD_CLOEXEC, 0) : open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (s < 0) {
			s = -errno;
			pr_perror("restore: mount %s: its network namespace", e->mountpoint);
		}
		break;
	}
	case MOUNT_HOW__MOUNT_FRESH: {
		struct fresh_mount fm = { e, root_fd, target, contents, ctx };
		/* stasis, for a tree in a user namespace of its own: a filesystem it puts no files
		 * in (devpts: its ptys have no owner check) is made from inside that one, which owns
		 * it as it owned the one saved (its root and ptmx are that one's root's, the ids of
		 * its options are in its view); a tmpfs stays the host's (stasis, host root, could
		 * not make files in it: EOVERFLOW) */
		if (ns_make_tree_userns(ctx) && !in_userns && !e->has_contents)
			return ns_make_run_in_tree_userns(ctx, make_fresh_in_userns, &fm);
		return make_fresh(&fm, in_userns);
	}
	default:
		return -EINVAL;
	}
	if (s < 0) {
		pr_err("restore: the source of mount %s is not there: %s", e->mountpoint, strerror(-s));
		return s;
	}
	fd_path(source, sizeof(source), s);
	int bound = mount(source, target, NULL, MS_BIND, NULL) ? -errno : 0;
	pty_masters_close(&masters);
	if (removed.parent >= 0) { /* removed again, bound */
		unlinkat(removed.parent, removed.name, AT_REMOVEDIR);
		close(removed.parent);
	}
	if (bound) {
		pr_err("restore: cannot bind-mount %s: %s", e->mountpoint, strerror(-bound));
		return bound;
	}
	return set_flags(root_fd, e);
}

static int propagate(int root_fd, const MountEntry *e, unsigned long how)
{
	char path[64];
	auto_close int fd = mount_open_in_root(root_fd, e->mountpoint, O_PATH);

	if (fd < 0) {
		pr_err("restore: mount %s is not there: %s", e->mountpoint, strerror(-fd));
		return fd;
	}
	fd_path(path, sizeof(path), fd);
	if (mount(NULL, path, NULL, how, NULL)) {
		pr_perror("restore: cannot set the propagation of mount %s", e->mountpoint);
		return -errno;
	}
	return 0;
}

/* to joins from's peer group. */
static int join_group(int root_fd, const MountEntry *from, const MountEntry *to)
{
	auto_close int f = mount_open_in_root(root_fd, from->mountpoint, O_PATH);
	auto_close int t = mount_open_in_root(root_fd, to->mountpoint, O_PATH);

	if (f < 0 || t < 0)
		return f < 0 ? f : t;
	if (syscall(SYS_move_mount, f, "", t, "",
		    MOVE_MOUNT_SET_GROUP | MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)) {
		pr_perror("restore: cannot put mount %s in the peer group of %s", to->mountpoint,
			  from->mountpoint);
		return -errno;
	}
	return 0;
}

const MountEntry *mount_group_leader(MountEntry *const *mounts, size_t n, uint32_t g)
{
	for (size_t i = 0; g && i < n; i++)
		if (mounts[i]->shared == g)
			return mounts[i];
	return NULL;
}

/* The leader of peer group g among the tree's mounts after its root. */
static const MountEntry *group_leader(const MountNs *ns, uint32_t g)
{
	return ns->n_mounts ? mount_group_leader(ns->mounts + 1, ns->n_mounts - 1, g) : NULL;
}

int mount_set_propagation(const MountNs *ns, int root_fd)
{
	int err;

	for (size_t i = 1; i < ns->n_mounts; i++)
		if ((err = propagate(root_fd, ns->mounts[i], MS_PRIVATE)))
			return err;
	/* slaves of a group of the tree: peers of its leader first, then slaves */
	for (size_t i = 1; i < ns->n_mounts; i++) {
		const MountEntry *e = ns->mounts[i], *l = group_leader(ns, e->master);
		if (!e->master)
			continue;
		if (!l) {
			pr_warn("restore: mount %s was a slave of a peer group outside the tree; it is "
				"restored private", e->mountpoint);
			continue;
		}
		if ((err = propagate(root_fd, l, MS_SHARED)) || (err = join_group(root_fd, l, e)) ||
		    (err = propagate(root_fd, e, MS_SLAVE)))
			return err;
	}
	for (size_t i = 1; i < ns->n_mounts; i++) {
		const MountEntry *e = ns->mounts[i], *l = group_leader(ns, e->shared);
		if (!e->shared)
			continue;
		if (l == e) {
			if ((err = propagate(root_fd, e, MS_SHARED)))
				return err;
		} else if ((err = join_group(root_fd, l, e))) {
			return err;
		}
	}
	for (size_t i = 1; i < ns->n_mounts; i++)
		if (ns->mounts[i]->unbindable && (err = propagate(root_fd, ns->mounts[i], MS_UNBINDABLE)))
			return err;
	return 0;
}
