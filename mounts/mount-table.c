/*
 * A mount table read with libmount, and the tree's mounts classified for the images: the
 * root (given back on restore with --root); filesystems made anew (proc, sysfs, devpts,
 * mqueue, cgroup, tmpfs with its files saved...); binds of another mount of the tree (runc's
 * masked paths: /dev/null over /proc/kcore; read-only paths: /proc/sys over itself); binds
 * from outside the tree's namespace, whose host path the restore is given (--external
 * mnt[PATH]:KEY, --ext-mount-map PATH:KEY) or finds again (--ext-mount-map auto: the path
 * where the host sees the same filesystem).
 */
#include <errno.h>
#include <fcntl.h>
#include <libmount/libmount.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "log.h"
#include "mounts.h"
#include "ns-helper.h"
#include "proc.h"
#include "task.h"
#include "util.h"

static const char *const fresh_fstypes[] = {
	"proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "ramfs", "binfmt_misc",
	"securityfs", "debugfs", "tracefs", "configfs", "fusectl", "pstore", "bpf",
};

static bool in_list(const char *fstype, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(fstype, list[i]))
			return true;
	return false;
}

bool mount_fstype_fresh(const char *fstype)
{
	return in_list(fstype, fresh_fstypes, ARRAY_SIZE(fresh_fstypes));
}

bool mount_fstype_in_ns(const char *fstype)
{
	static const char *const in_ns[] = { "proc", "sysfs", "mqueue", "cgroup", "cgroup2" };
	return in_list(fstype, in_ns, ARRAY_SIZE(in_ns));
}

/* Per-mount flags of a mountinfo's per-mount options; no atime option means strictatime. */
static uint64_t mount_flags(const char *vfs)
{
	unsigned long flags = 0;

	if (vfs)
		mnt_optstr_get_flags(vfs, &flags, mnt_get_builtin_optmap(MNT_LINUX_MAP));
	flags &= MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME |
		 MS_RELATIME | MS_NOSYMFOLLOW;
	if (!(flags & (MS_NOATIME | MS_RELATIME)))
		flags |= MS_STRICTATIME;
	return flags;
}

/* The filesystem's options without "rw"/"ro" (the per-mount flag says that). */
static char *fs_data(const char *fs_options)
{
	char *out = xstrdup(fs_options), *o = out;
	const char *p = fs_options ? fs_options : "";

	if (!out)
		return NULL;
	while (*p) {
		size_t len = strcspn(p, ",");
		if (!((len == 2 && !strncmp(p, "rw", 2)) || (len == 2 && !strncmp(p, "ro", 2)))) {
			if (o != out)
				*o++ = ',';
			memcpy(o, p, len);
			o += len;
		}
		p += len + (p[len] == ',');
	}
	*o = 0;
	return out;
}

static void optional_fields(const char *opt, struct mount_info *m)
{
	for (const char *p = opt; p && *p;) {
		p += strspn(p, " ");
		if (!strncmp(p, "shared:", 7))
			m->shared = strtoul(p + 7, NULL, 10);
		else if (!strncmp(p, "master:", 7))
			m->master = strtoul(p + 7, NULL, 10);
		else if (!strncmp(p, "unbindable", 10))
			m->unbindable = true;
		p += strcspn(p, " ");
	}
}

static int parents_first(struct mount_table *t);

int mount_table_read(pid_t pid, struct mount_table *t)
{
	char path[64];
	struct libmnt_table *tb = mnt_new_table();
	struct libmnt_iter *itr = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	int err = 0;

	*t = (struct mount_table){ 0 };
	proc_path(path, sizeof(path), pid, "mountinfo");
	if (!tb || !itr || mnt_table_parse_file(tb, path)) {
		pr_err("cannot read the mount table %s", path);
		err = -EIO;
		goto out;
	}
	while (!err && mnt_table_next_fs(tb, itr, &fs) == 0) {
		struct mount_info *more = xreallocarray(t->m, t->n + 1, sizeof(*t->m));
		if (!more) {
			err = -ENOMEM;
			break;
		}
		t->m = more;
		struct mount_info *m = &t->m[t->n++];
		const char *src = mnt_fs_get_source(fs);
		*m = (struct mount_info){
			.id = mnt_fs_get_id(fs),
			.parent_id = mnt_fs_get_parent_id(fs),
			.dev = mnt_fs_get_devno(fs),
			.mountpoint = xstrdup(mnt_fs_get_target(fs)),
			.root = xstrdup(mnt_fs_get_root(fs) ?: "/"),
			.fstype = xstrdup(mnt_fs_get_fstype(fs)),
			.source = xstrdup(src ? src : "none"),
			.fs_options = fs_data(mnt_fs_get_fs_options(fs)),
			.flags = mount_flags(mnt_fs_get_vfs_options(fs)),
			.sb_readonly = mnt_fs_get_fs_options(fs) &&
				       !mnt_optstr_get_option(mnt_fs_get_fs_options(fs), "ro", NULL, NULL),
			.idmapped = mnt_fs_get_vfs_options(fs) &&
				    !mnt_optstr_get_option(mnt_fs_get_vfs_options(fs), "idmapped", NULL, NULL),
		};
		optional_fields(mnt_fs_get_optional_fields(fs), m);
		if (!m->mountpoint || !m->root || !m->fstype || !m->source || !m->fs_options)
			err = -ENOMEM;
	}
	if (!err)
		err = parents_first(t);
out:
	mnt_free_iter(itr);
	mnt_unref_table(tb);
	if (err)
		mount_table_free(t);
	return err;
}

/* In pid's cgroup namespace: its /proc/PID/mountinfo, which shows the roots of cgroup
 * filesystems relative to that namespace's root. */
struct cgroup_ns_mountinfo {
	pid_t pid;
	size_t len;
	char text[1 << 20]; /* (a system container has hundreds of mounts) */
};

static int read_mountinfo_here(void *out, size_t len)
{
	struct cgroup_ns_mountinfo *v = out;
	char file[64];
	ssize_t n;

	(void)len;
	snprintf(file, sizeof(file), "/proc/%d/mountinfo", v->pid);
	auto_close int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || (n = read_all(fd, v->text, sizeof(v->text))) < 0)
		return -errno;
	if ((size_t)n == sizeof(v->text))
		return -EFBIG;
	v->len = (size_t)n;
	return 0;
}

int mount_table_cgroup_ns_roots(pid_t pid, struct mount_table *t)
{
	struct cgroup_ns_mountinfo *v = xzalloc(sizeof(*v));
	struct libmnt_table *tb = v ? mnt_new_table() : NULL;
	struct libmnt_iter *itr = tb ? mnt_new_iter(MNT_ITER_FORWARD) : NULL;
	struct libmnt_fs *fs;
	FILE *f = NULL;
	int err = 0;

	if (!itr) {
		err = -ENOMEM;
		goto out;
	}
	v->pid = pid;
	if ((err = ns_helper_run(pid, CLONE_NEWCGROUP, read_mountinfo_here, v, sizeof(*v)))) {
		pr_err("dump pid %d: cannot read its mount table in its cgroup namespace", pid);
		goto out;
	}
	if (!(f = fmemopen(v->text, v->len ? v->len : 1, "r")) ||
	    mnt_table_parse_stream(tb, f, "mountinfo in the tree's cgroup namespace")) {
		pr_err("dump pid %d: cannot read its mount table in its cgroup namespace", pid);
		err = -EIO;
		goto out;
	}
	while (!err && mnt_table_next_fs(tb, itr, &fs) == 0) {
		const char *type = mnt_fs_get_fstype(fs), *root = mnt_fs_get_root(fs);
		if (!type || (strcmp(type, "cgroup") && strcmp(type, "cgroup2")) || !root)
			continue;
		for (size_t i = 0; i < t->n && !err; i++) {
			if (t->m[i].id != (uint32_t)mnt_fs_get_id(fs))
				continue;
			free(t->m[i].root);
			if (!(t->m[i].root = xstrdup(root)))
				err = -ENOMEM;
			t->m[i].cgroup_ns_root = !strcmp(root, "/");
		}
	}
out:
	if (f)
		fclose(f);
	mnt_free_iter(itr);
	mnt_unref_table(tb);
	free(v);
	return err;
}

/*
 * mountinfo lists mounts in the order they joined the namespace, which is not always parents
 * first (a mount moved under a later one): the table in an order where every parent comes
 * before its children, the root (whose parent is not in the table) first.
 */
static int parents_first(struct mount_table *t)
{
	struct mount_info *sorted = xzalloc(t->n * sizeof(*sorted));
	bool *placed = sorted ? xzalloc(t->n * sizeof(bool)) : NULL;
	size_t n = 0;

	if (!sorted || !placed) {
		free(sorted);
		free(placed);
		return -ENOMEM;
	}
	for (bool progress = true; n < t->n && progress;) {
		progress = false;
		for (size_t i = 0; i < t->n; i++) {
			bool ready = true;
			if (placed[i])
				continue;
			for (size_t k = 0; k < t->n; k++) /* its parent is in the table, not placed yet */
				if (t->m[k].id == t->m[i].parent_id && k != i && !placed[k])
					ready = false;
			if (!ready)
				continue;
			sorted[n++] = t->m[i];
			placed[i] = progress = true;
		}
	}
	free(placed);
	if (n < t->n) { /* a loop of parents: cannot be */
		free(sorted);
		pr_err("the mount table's parents make a loop");
		return -EINVAL;
	}
	free(t->m);
	t->m = sorted;
	return 0;
}

bool mount_table_has(pid_t pid, uint64_t mnt_id)
{
	struct mount_table tb;
	bool found = false;

	if (mount_table_read(pid, &tb))
		return true;
	for (size_t i = 0; i < tb.n && !found; i++)
		found = tb.m[i].id == mnt_id;
	mount_table_free(&tb);
	return found;
}

void mount_table_free(struct mount_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->m[i].mountpoint);
		free(t->m[i].root);
		free(t->m[i].fstype);
		free(t->m[i].source);
		free(t->m[i].fs_options);
	}
	free(t->m);
	*t = (struct mount_table){ 0 };
}

/* Is root a path at or below inside (both absolute, as mountinfo shows them)? Gives the rest. */
bool mount_path_below(const char *inside, const char *root, const char **rest)
{
	size_t n = strlen(inside);

	if (!strcmp(inside, "/")) {
		*rest = root + 1;
		return true;
	}
	if (strncmp(root, inside, n) || (root[n] && root[n] != '/'))
		return false;
	*rest = root[n] ? root + n + 1 : root + n;
	return true;
}

bool mount_path_leads_to(pid_t pid, const char *path, dev_t dev, ino_t ino)
{
	char there[PATH_MAX + 64];
	struct stat st;

	if (snprintf(there, sizeof(there), "/proc/%d/root%s", pid, path) >= (int)sizeof(there))
		return false;
	return !stat(there, &st) && st.st_dev == dev && st.st_ino == ino;
}

int mount_task_path_holds(pid_t pid, const char *root, const char *path, const struct stat *st)
{
	char there[PATH_MAX + 64];
	const char *rest;
	struct stat now;

	if (path[0] != '/' || !mount_path_below(root, path, &rest) ||
	    snprintf(there, sizeof(there), "/proc/%d/root/%s", pid, rest) >= (int)sizeof(there))
		return -1;
	if (fstatat(AT_FDCWD, there, &now, S_ISLNK(st->st_mode) ? AT_SYMLINK_NOFOLLOW : 0))
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	return now.st_dev == st->st_dev && now.st_ino == st->st_ino;
}

int mount_refuse_hidden(pid_t pid, const char *root, const char *path, const struct stat *st,
			const char *what)
{
	if (mount_task_path_holds(pid, root, path, st))
		return 0; /* (or not known: outside the process's root) */
	pr_err("dump pid %d%s %s is hidden: its path now leads to another file or to none (a mount "
	       "over it or over a directory above it, or its mount detached), so it cannot be opened "
	       "again by its path; not supported", pid, what, path);
	return -ENOTSUP;
}

bool mount_tree_root_reaches(pid_t pid, pid_t tree_root, const char *path, const struct stat *st)
{
	char own[64], root[64];
	struct stat a, b;

	snprintf(own, sizeof(own), "/proc/%d/ns/mnt", pid);
	snprintf(root, sizeof(root), "/proc/%d/ns/mnt", tree_root);
	if (pid == tree_root || stat(own, &a) || stat(root, &b) || a.st_ino == b.st_ino)
		return true;
	return mount_task_path_holds(tree_root, "/", path, st) != 0;
}

#define DELETED_SUFFIX "//deleted"

int mount_bind_fill(pid_t pid, const struct mount_info *m, uint32_t of_id, const char *rest,
		    MountEntry *e)
{
	size_t n = strlen(rest), k = strlen(DELETED_SUFFIX);

	e->how = MOUNT_HOW__MOUNT_BIND;
	e->has_bind_of = true;
	e->bind_of = of_id;
	if (!(e->bind_root = xstrdup(rest)))
		return -ENOMEM;
	if (n < k || strcmp(rest + n - k, DELETED_SUFFIX))
		return 0;
	if (!strcmp(m->fstype, "devpts")) { /* a pty closed since: made again (mount-make.c) */
		e->bind_root[n - k] = 0;
		return 0;
	}
	char path[PATH_MAX + 64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/root%s", pid, m->mountpoint);
	if (stat(path, &st) || !S_ISDIR(st.st_mode)) {
		pr_err("dump pid %d: mount %s binds %s, a file removed since: not supported", pid,
		       m->mountpoint, m->root);
		return -ENOTSUP;
	}
	e->bind_root[n - k] = 0;
	e->has_bind_root_deleted = e->bind_root_deleted = true;
	e->has_deleted_mode = e->has_deleted_uid = e->has_deleted_gid = true;
	e->deleted_mode = st.st_mode & 07777;
	e->deleted_uid = st.st_uid;
	e->deleted_gid = st.st_gid;
	return 0;
}

char *mount_path_join(const char *mountpoint, const char *rest)
{
	return xasprintf("%s%s%s", mountpoint, strcmp(mountpoint, "/") && *rest ? "/" : "", rest);
}

char *mount_path_seen_by(pid_t pid, const char *path, dev_t dev, ino_t ino)
{
	struct mount_table own = { 0 }, theirs = { 0 };
	const struct mount_info *by = NULL;
	const char *rest = NULL, *r;
	char *real = NULL, *inner = NULL, *found = NULL;
	struct stat st;
	int err = 0;

	if (path[0] != '/')
		goto none;
	if (mount_path_leads_to(pid, path, dev, ino))
		return xstrdup(path);
	/* the file's path inside its filesystem, by stasis's deepest mount holding it */
	if (!(real = realpath(path, NULL))) {
		err = errno == ENOMEM ? -ENOMEM : 0;
		goto none;
	}
	if (stat(real, &st) || st.st_dev != dev || st.st_ino != ino ||
	    (err = mount_table_read(getpid(), &own)) || (err = mount_table_read(pid, &theirs)))
		goto none;
	for (size_t i = 0; i < own.n; i++)
		if (own.m[i].dev == dev && mount_path_below(own.m[i].mountpoint, real, &r) &&
		    (!by || strlen(own.m[i].mountpoint) > strlen(by->mountpoint))) {
			by = &own.m[i];
			rest = r;
		}
	if (!by)
		goto none;
	if (!(inner = mount_path_join(by->root, rest))) {
		err = -ENOMEM;
		goto none;
	}
	/* a mount of pid's showing that part of the filesystem */
	for (size_t i = 0; !found && !err && i < theirs.n; i++) {
		if (theirs.m[i].dev != dev || !mount_path_below(theirs.m[i].root, inner, &r))
			continue;
		char *candidate = mount_path_join(theirs.m[i].mountpoint, r);
		if (!candidate)
			err = -ENOMEM;
		else if (mount_path_leads_to(pid, candidate, dev, ino))
			found = candidate;
		else
			free(candidate);
	}
none:
	free(real);
	free(inner);
	mount_table_free(&own);
	mount_table_free(&theirs);
	if (!found)
		errno = err == -ENOMEM ? ENOMEM : ENOENT;
	return found;
}

/* The name an external mount has in --external mnt[PATH]:KEY or --ext-mount-map PATH:KEY. */
static const char *external_key(const struct stasis_opts *o, const char *mountpoint)
{
	for (size_t i = 0; i < o->ext_mount_maps.n; i++)
		if (o->ext_mount_maps.v[i].key && !strcmp(o->ext_mount_maps.v[i].key, mountpoint))
			return o->ext_mount_maps.v[i].value;
	for (size_t i = 0; i < o->externals.n; i++) {
		const char *x = o->externals.v[i].value;
		size_t n = strlen(mountpoint);
		if (!strncmp(x, "mnt[", 4) && !strncmp(x + 4, mountpoint, n) && x[4 + n] == ']' &&
		    x[5 + n] == ':')
			return x + 6 + n;
	}
	return NULL;
}

/* Where the host sees what m shows: a host mount of the same filesystem whose root holds m's
 * (NULL: none, errno ENOENT; or out of memory). */
static char *host_path(const struct mount_table *host, const struct mount_info *m)
{
	const struct mount_info *best = NULL;
	const char *rest = NULL, *r;

	for (size_t i = 0; i < host->n; i++)
		if (host->m[i].dev == m->dev && mount_path_below(host->m[i].root, m->root, &r) &&
		    (!best || strlen(host->m[i].root) > strlen(best->root))) {
			best = &host->m[i];
			rest = r;
		}
	if (!best) {
		errno = ENOENT;
		return NULL;
	}
	return mount_path_join(best->mountpoint, rest);
}

static bool on_host(const struct mount_table *host, dev_t dev)
{
	for (size_t i = 0; i < host->n; i++)
		if (host->m[i].dev == dev)
			return true;
	return false;
}

/*
 * A whole sysfs or mqueue of a network or IPC namespace that the tree shares with stasis (the
 * host's: Docker's --network host or --ipc host): the host's superblock, which a mount made
 * anew there is too. (A host's proc is no such: each proc mount is a superblock of its own.)
 */
static bool shares_host_ns_fs(pid_t root_pid, const struct mount_info *m)
{
	if (strcmp(m->root, "/"))
		return false;
	if (!strcmp(m->fstype, "sysfs"))
		return !ns_is_own(root_pid, "net", NULL);
	return !strcmp(m->fstype, "mqueue") && !ns_is_own(root_pid, "ipc", NULL);
}

/* Is mount k of a filesystem that needs the tree's namespaces (proc, sysfs...), or on one? The
 * tree's root makes those at restore, after stasis made the others. */
static bool made_in_tree_ns(const struct mount_table *tree, size_t k)
{
	const char *r;

	for (size_t j = 0; j < tree->n; j++)
		if (mount_fstype_in_ns(tree->m[j].fstype) &&
		    mount_path_below(tree->m[j].mountpoint, tree->m[k].mountpoint, &r))
			return true;
	return false;
}

int mount_nsfs_fill(pid_t root_pid, const struct mount_info *m, MountEntry *e)
{
	unsigned long long ino;
	uint64_t root_ns = 0;
	struct stat own;
	int end = 0;

	if (sscanf(m->root, "net:[%llu]%n", &ino, &end) != 1 || m->root[end]) {
		pr_err("dump pid %d: mount %s binds namespace %s: of namespaces' files only network "
		       "namespaces' are kept", root_pid, m->mountpoint, m->root);
		return -ENOTSUP;
	}
	bool tree_own = ns_is_own(root_pid, "net", &root_ns);
	if (stat("/proc/thread-self/ns/net", &own) || own.st_ino == ino) {
		pr_err("dump pid %d: mount %s binds stasis's own network namespace net:[%llu]: not "
		       "supported; name it with --external mnt[%s]:KEY for the engine to make again",
		       root_pid, m->mountpoint, ino, m->mountpoint);
		return -ENOTSUP;
	}
	e->how = MOUNT_HOW__MOUNT_NSFS;
	e->has_nsfs_net = true;
	e->nsfs_net = ino;
	e->has_nsfs_tree_net = true;
	e->nsfs_tree_net = tree_own && root_ns == ino;
	return 0;
}

bool mount_nsfs_hidden(const struct mount_table *t, size_t i)
{
	const struct mount_info *m = &t->m[i];
	const char *r;

	if (strcmp(m->fstype, "nsfs"))
		return false;
	for (size_t k = 0; k < t->n; k++)
		if (k != i && t->m[k].parent_id == m->parent_id && strcmp(t->m[k].mountpoint, m->mountpoint) &&
		    mount_path_below(t->m[k].mountpoint, m->mountpoint, &r))
			return true;
	return false;
}

bool mount_nsfs_valid(const MountEntry *e)
{
	return !strcmp(e->fstype, "nsfs") && e->is_file && e->has_nsfs_net && e->has_nsfs_tree_net;
}

static int classify(const struct run_ctx *ctx, pid_t root_pid, const struct mount_table *tree,
		    size_t i, const struct mount_table *host, MountEntry *e)
{
	const struct mount_info *m = &tree->m[i];
	const struct mount_info *of = NULL;
	const char *rest = NULL, *r, *key;

	if (i == 0) {
		e->how = MOUNT_HOW__MOUNT_ROOT;
		return 0;
	}
	if ((key = external_key(ctx->opts, m->mountpoint))) { /* named by the caller: theirs */
		e->how = MOUNT_HOW__MOUNT_EXTERNAL;
		return (e->ext_key = xstrdup(key)) ? 0 : -ENOMEM;
	}
	if (m->idmapped) { /* (made again, its owners would be the filesystem's own) */
		pr_err("dump pid %d: mount %s (%s, %s) is idmapped (mount_setattr MOUNT_ATTR_IDMAP): "
		       "not supported; name it with --external mnt[%s]:KEY for the engine to make again",
		       root_pid, m->mountpoint, m->fstype, m->root, m->mountpoint);
		return -ENOTSUP;
	}
	/* a bind of a mount before it: the one whose root holds its root most closely; not one the
	 * tree's root makes late unless this one is too (a file of the host's /dev bound both on
	 * /proc/keys and on /dev/null: /dev/null made first, from the host, as the first dump of
	 * a container lists them; a restored one's table lists them in the order made) */
	bool late = made_in_tree_ns(tree, i);
	for (size_t k = 0; k < i; k++)
		if (tree->m[k].dev == m->dev && mount_path_below(tree->m[k].root, m->root, &r) &&
		    (late || !made_in_tree_ns(tree, k)) && (!of || strlen(tree->m[k].root) < strlen(of->root))) {
			of = &tree->m[k];
			rest = r;
		}
	if (of)
		return mount_bind_fill(root_pid, m, of->id, rest, e);
	if (!strcmp(m->fstype, "nsfs"))
		return mount_nsfs_fill(root_pid, m, e);
	if (m->cgroup_ns_root || shares_host_ns_fs(root_pid, m)) {
		e->how = MOUNT_HOW__MOUNT_FRESH;
		return 0;
	}
	if (on_host(host, m->dev)) {
		if (!ctx->opts->ext_mount_auto) {
			pr_err("dump pid %d: mount %s (%s, %s) comes from outside the tree's mount "
			       "namespace: name it with --external mnt[%s]:KEY, or pass --ext-mount-map auto",
			       root_pid, m->mountpoint, m->fstype, m->root, m->mountpoint);
			return -ENOTSUP;
		}
		e->how = MOUNT_HOW__MOUNT_EXTERNAL;
		if (!(e->ext_path = host_path(host, m))) {
			if (errno == ENOMEM)
				return -ENOMEM;
			pr_err("dump pid %d: mount %s (%s, %s) comes from outside the tree's mount "
			       "namespace, and the host shows no path to it; name it with "
			       "--external mnt[%s]:KEY", root_pid, m->mountpoint, m->fstype, m->root,
			       m->mountpoint);
			return -ENOTSUP;
		}
		return 0;
	}
	bool enabled = false;
	for (size_t k = 0; k < ctx->opts->enable_fs.n; k++)
		enabled |= !strcmp(ctx->opts->enable_fs.v[k].value, m->fstype) ||
			   !strcmp(ctx->opts->enable_fs.v[k].value, "all");
	if ((mount_fstype_fresh(m->fstype) && !strcmp(m->root, "/")) || enabled) {
		e->how = MOUNT_HOW__MOUNT_FRESH;
		e->has_has_contents = true;
		e->has_contents = !strcmp(m->fstype, "tmpfs") || !strcmp(m->fstype, "ramfs");
		return 0;
	}
	pr_err("dump pid %d: mount %s (%s from %s, %s) cannot be made again on restore: name it "
	       "with --external mnt[%s]:KEY, or allow its filesystem with --enable-fs %s",
	       root_pid, m->mountpoint, m->fstype, m->source, m->root, m->mountpoint, m->fstype);
	return -ENOTSUP;
}

int mount_removed_file_fill(pid_t pid, const struct mount_info *m, MountEntry *e)
{
	char path[PATH_MAX + 64];
	struct stat st;
	auto_close int fd = -1;

	if (!ends_with(m->root, DELETED_SUFFIX))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/root%s", pid, m->mountpoint);
	if (stat(path, &st) || !S_ISREG(st.st_mode))
		return 0;
	if (st.st_size > MOUNT_REMOVED_FILE_MAX) {
		pr_err("dump pid %d: mount %s binds %s, a file of %lld bytes removed since: only files "
		       "of up to %d bytes are kept", pid, m->mountpoint, m->root, (long long)st.st_size,
		       MOUNT_REMOVED_FILE_MAX);
		return -EFBIG;
	}
	if (!(e->removed_data.data = xzalloc(st.st_size + 1)))
		return -ENOMEM;
	ssize_t got = (fd = open(path, O_RDONLY | O_NOATIME | O_CLOEXEC)) < 0 ? -1
										   : read_all(fd, e->removed_data.data, st.st_size);
	if (got != st.st_size) {
		pr_perror("dump pid %d: mount %s: cannot read the removed file it binds", pid, m->mountpoint);
		return got < 0 ? -errno : -EIO;
	}
	e->how = MOUNT_HOW__MOUNT_REMOVED_FILE;
	e->has_removed_data = true;
	e->removed_data.len = st.st_size;
	e->has_deleted_mode = e->has_deleted_uid = e->has_deleted_gid = true;
	e->deleted_mode = st.st_mode & 07777;
	e->deleted_uid = st.st_uid;
	e->deleted_gid = st.st_gid;
	return 1;
}

int mount_entry_fill(pid_t pid, const struct mount_info *m, bool is_root, MountEntry *e)
{
	struct stat st;
	char path[4200];

	e->id = m->id;
	e->parent_id = is_root ? 0 : m->parent_id;
	if (!(e->mountpoint = xstrdup(m->mountpoint)) || !(e->fstype = xstrdup(m->fstype)) ||
	    !(e->source = xstrdup(m->source)) || !(e->root = xstrdup(m->root)) ||
	    !(e->fs_options = xstrdup(m->fs_options)))
		return -ENOMEM;
	e->mount_flags = m->flags;
	e->has_sb_readonly = true;
	e->sb_readonly = m->sb_readonly;
	e->has_shared = e->has_master = e->has_unbindable = true;
	e->shared = m->shared;
	e->master = m->master;
	e->unbindable = m->unbindable;
	snprintf(path, sizeof(path), "/proc/%d/root%s", pid, m->mountpoint);
	if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
		e->has_is_file = true;
		e->is_file = true;
	}
	return 0;
}

int mount_table_classify(const struct run_ctx *ctx, pid_t root_pid, const struct mount_table *tree,
			 const struct mount_table *host, MountNs *out)
{
	int err;

	if (!tree->n || strcmp(tree->m[0].mountpoint, "/")) {
		pr_err("dump pid %d: its mount table does not start with its root: its root directory "
		       "is not a mount's (a chroot() into a plain directory, in a mount namespace of its "
		       "own?); not supported", root_pid);
		return -ENOTSUP;
	}
	out->mounts = xzalloc(tree->n * sizeof(*out->mounts));
	if (!out->mounts)
		return -ENOMEM;
	for (size_t i = 0; i < tree->n; i++) {
		const struct mount_info *m = &tree->m[i];
		if (mount_nsfs_hidden(tree, i)) {
			pr_info("dump pid %d: mount %s (nsfs, %s) is hidden below mount of its parent's: a copy "
				"that propagation made, not made again", root_pid, m->mountpoint, m->root);
			continue;
		}
		MountEntry *e = xzalloc(sizeof(*e));

		if (!e)
			return -ENOMEM;
		mount_entry__init(e);
		out->mounts[out->n_mounts++] = e;
		if (i && !strcmp(m->mountpoint, "/")) {
			pr_err("dump pid %d: a mount stacked over its root (%s) is not supported", root_pid,
			       m->fstype);
			return -ENOTSUP;
		}
		if ((err = mount_entry_fill(root_pid, m, i == 0, e)))
			return err;
		if ((err = classify(ctx, root_pid, tree, i, host, e)))
			return err;
	}
	return 0;
}
