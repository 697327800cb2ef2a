/*
 * Files open or mapped (or a working directory) on a detached mount: one that no mount
 * namespace holds any more (umount -l of a mount a file was open on, a clone made by
 * open_tree(OPEN_TREE_CLONE), a new filesystem's fsmount() never attached). The file's path
 * (readlink) is then from that mount's root, and leads nowhere in the tree. Two cases:
 * - its filesystem is still mounted in the process's mount namespace (a bind detached, the
 *   original of a clone still there): the file is found there by its handle, and the directory
 *   that is the detached mount's root is saved (clone_of). Each fd opens again through a clone
 *   of that directory (open_tree), dropped at once: the fd holds a detached mount as before; an
 *   fd of its root itself is the clone's fd (as open_tree or fsmount gave it);
 * - a tmpfs that no mount of any namespace shows: what the tree can reach of it is saved as
 *   ghosts are (the files open; all of it once a directory is open or the cwd, since ".." leads
 *   from there to its root), and the restore makes a new tmpfs (fsmount, not attached) with
 *   them, every fd opening through it.
 * Its read-only, nosuid, nodev and noexec flags are set again (mount_setattr). A detached mount
 * of another filesystem that no mount shows (a disk's) is refused, as is a file removed on it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "mount-ns.h"
#include "mounts.h"
#include "proc.h"
#include "pstree.h"
#include "tree-objects.h"
#include "tree-path.h"
#include "util.h"

#define DETACHED_FILES_MAX 65536
#define ATTRS_KEPT (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)

/* A detached mount met by the dump. */
struct detached_seen {
	uint64_t mnt_id;
	DetachedMount *m;
	uint64_t bytes;  /* a tmpfs's: the data saved so far */
	uint32_t *slots; /* a tmpfs's files by path (open addressing: index + 1), made at first */
};

#define SLOTS (2 * DETACHED_FILES_MAX) /* (a power of two) */

struct detached_state {
	struct detached_seen *seen; /* dump */
	size_t n;
	DetachedMountTable *rst; /* restore: detached-mounts.img, checked */
	int *made;               /* restore: a tmpfs's new mount (fsmount fd), by id; else -1 */
	size_t nr_made;
};

static struct detached_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_detached_mounts);
}

/* ---- dump ---- */

/* Whether mnt_id is a mount of a namespace: the process's own, the tree's, a nested one's. */
static bool attached(const struct dump_task *t, uint64_t mnt_id)
{
	return mount_table_has(t->pid, mnt_id) || mount_nested_holds(t->ctx, mnt_id) ||
	       (mount_ns_is_stasis(t->ctx) ? mount_table_has(getpid(), mnt_id) : mount_ns_holds(t->ctx, mnt_id));
}

static uint32_t attrs_of(int fd)
{
	struct statfs sf;
	uint32_t a = 0;

	if (fstatfs(fd, &sf))
		return 0;
	a |= sf.f_flags & ST_RDONLY ? MOUNT_ATTR_RDONLY : 0;
	a |= sf.f_flags & ST_NOSUID ? MOUNT_ATTR_NOSUID : 0;
	a |= sf.f_flags & ST_NODEV ? MOUNT_ATTR_NODEV : 0;
	a |= sf.f_flags & ST_NOEXEC ? MOUNT_ATTR_NOEXEC : 0;
	return a;
}

/* The directory that is the root of the detached mount of a file at path whose path from that
 * root is link: path without link at its end (NULL if it does not end so). */
static char *root_of(const char *path, const char *link)
{
	size_t k = strcmp(link, "/") ? strlen(link) : 0, p = strlen(path);

	if (p < k || strcmp(path + p - k, k ? link : ""))
		return NULL;
	return p == k ? xstrdup("/") : strndup(path, p - k);
}

/*
 * The directory (as pid sees it) that is the root of the detached mount that the file open at
 * fd (O_PATH; link: its path from that root) is on, in a mount of pid's namespace of the
 * same filesystem: found by the file's handle, or by its inode number where the filesystem
 * gives no handles (overlayfs). NULL if none shows it.
 */
static char *root_in_namespace(pid_t pid, const char *link, const struct stat *st, int fd)
{
	char found[PATH_MAX];
	int in = fhandle_path_in(pid, fd, st, found, sizeof(found));

	if (in < 0)
		return NULL;
	close(in);
	return root_of(found, link);
}

/* Whether a mount of any process's namespace shows the filesystem dev. */
static bool mounted_anywhere(dev_t dev)
{
	auto_free int *pids = NULL;
	ino_t seen[256];
	size_t n = 0, nr_pids = 0;
	bool found = false;

	if (proc_list_pids(&pids, &nr_pids))
		return true; /* (not known: refused as one mounted elsewhere) */
	for (size_t k = 0; k < nr_pids && !found; k++) {
		char ns[64];
		struct stat st;
		struct mount_table tb;
		snprintf(ns, sizeof(ns), "/proc/%d/ns/mnt", pids[k]);
		if (stat(ns, &st))
			continue;
		bool known = false;
		for (size_t i = 0; i < n && !known; i++)
			known = seen[i] == st.st_ino;
		if (known || mount_table_read(pids[k], &tb))
			continue;
		if (n < ARRAY_SIZE(seen))
			seen[n++] = st.st_ino;
		for (size_t i = 0; i < tb.n && !found; i++)
			found = tb.m[i].dev == dev;
		mount_table_free(&tb);
	}
	return found;
}

/* The slot of path in s's index: the file saved under it, or the free one to put it in. */
static uint32_t *slot_of(const struct detached_seen *s, const char *path)
{
	size_t at = str_hash(path) & (SLOTS - 1);

	while (s->slots[at] && strcmp(s->m->files[s->slots[at] - 1]->path, path))
		at = (at + 1) & (SLOTS - 1);
	return &s->slots[at];
}

/* The inode open at fd (O_PATH) saved as path, once. */
static int save_file(struct dump_task *t, struct detached_seen *s, int fd, const char *path, const char *what)
{
	DetachedMount *m = s->m;
	struct stat st;
	GhostFile *g, **more;
	int err;

	if (!s->slots && !(s->slots = xzalloc(SLOTS * sizeof(*s->slots))))
		return -ENOMEM;
	uint32_t *slot = slot_of(s, path);
	if (*slot)
		return 0;
	if (fstat(fd, &st))
		return -errno;
	if (m->n_files >= DETACHED_FILES_MAX ||
	    (S_ISREG(st.st_mode) && s->bytes + st.st_blocks * 512 > ghost_limit(t->ctx))) {
		pr_err("dump pid %d %s: the detached tmpfs it is on holds more than stasis keeps of one "
		       "(%u files, or more data than the ghost limit of %llu bytes: --ghost-limit)",
		       t->pid, what, DETACHED_FILES_MAX, (unsigned long long)ghost_limit(t->ctx));
		return -EFBIG;
	}
	if (!(more = xreallocarray(m->files, m->n_files + 1, sizeof(*more))) || !(g = xzalloc(sizeof(*g))))
		return -ENOMEM;
	m->files = more;
	if ((err = ghost_file_copy(t->ctx, fd, path, t->pid, what, g))) {
		ghost_file__free_unpacked(g, NULL);
		return err;
	}
	g->id = m->n_files;
	m->files[m->n_files++] = g;
	*slot = m->n_files;
	s->bytes += g->data.len;
	return 0;
}

/* The directory open at dir (as path) and everything below it. */
static int save_tree(struct dump_task *t, struct detached_seen *s, int dir, const char *path, const char *what)
{
	int err = save_file(t, s, dir, path, what);
	int rd = err ? -1 : openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = rd < 0 ? NULL : fdopendir(rd);
	struct dirent *e;

	if (err)
		return err;
	if (!d) {
		err = -errno;
		if (rd >= 0)
			close(rd);
		return err;
	}
	while (!err && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *sub = mount_path_join(path, e->d_name);
		int fd = sub ? openat(dirfd(d), e->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC) : -1;
		struct stat st;
		if (!sub)
			err = -ENOMEM;
		else if (fd < 0 || fstat(fd, &st))
			err = -errno;
		else
			err = S_ISDIR(st.st_mode) ? save_tree(t, s, fd, sub, what) : save_file(t, s, fd, sub, what);
		if (fd >= 0)
			close(fd);
		free(sub);
	}
	closedir(d);
	return err;
}

/* Everything of the tmpfs that the directory open at fd is on: ".." leads up to its root. */
static int save_from_root(struct dump_task *t, struct detached_seen *s, int fd, const char *what)
{
	int dir = fcntl(fd, F_DUPFD_CLOEXEC, 0), up, err;
	struct stat here, above;

	if (dir < 0 || fstat(dir, &here))
		err = -errno;
	else
		for (err = 0; !err;) {
			if ((up = openat(dir, "..", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 || fstat(up, &above)) {
				err = -errno;
				break;
			}
			bool top = above.st_ino == here.st_ino && above.st_dev == here.st_dev;
			close(dir);
			dir = up;
			here = above;
			if (top)
				break;
		}
	if (!err)
		err = save_tree(t, s, dir, "/", what);
	if (dir >= 0)
		close(dir);
	return err;
}

/* The detached mount mnt_id that the file open at fd (O_PATH) is on: its entry, made on first sight. */
static int mount_of(struct dump_task *t, const char *link, const struct stat *st, uint64_t mnt_id, int fd,
		    const char *what, struct detached_seen **out)
{
	struct detached_state *ds = state_of(t->ctx);
	struct detached_seen *more;
	struct statfs sf;
	char *root;

	for (size_t i = 0; i < ds->n; i++)
		if (ds->seen[i].mnt_id == mnt_id) {
			*out = &ds->seen[i];
			return 0;
		}
	root = root_in_namespace(t->pid, link, st, fd);
	if (!root && (fstatfs(fd, &sf) || sf.f_type != TMPFS_MAGIC || mounted_anywhere(st->st_dev))) {
		pr_err("dump pid %d %s: %s is on a detached mount (%llu; umount -l, open_tree or fsmount) "
		       "of a filesystem that no mount of its namespace shows it by, and only a tmpfs that no "
		       "mount shows anywhere is saved with the tree: not supported",
		       t->pid, what, link, (unsigned long long)mnt_id);
		return -ENOTSUP;
	}
	if (!(more = xreallocarray(ds->seen, ds->n + 1, sizeof(*more)))) {
		free(root);
		return -ENOMEM;
	}
	ds->seen = more;
	struct detached_seen *s = &ds->seen[ds->n];
	if (!(s->m = xzalloc(sizeof(*s->m)))) {
		free(root);
		return -ENOMEM;
	}
	detached_mount__init(s->m);
	s->mnt_id = mnt_id;
	s->bytes = 0;
	s->slots = NULL;
	s->m->id = ds->n++;
	s->m->clone_of = root;
	s->m->has_attr = true;
	s->m->attr = attrs_of(fd);
	pr_debug("dump pid %d %s: %s is on detached mount %llu, %s%s", t->pid, what, link,
		 (unsigned long long)mnt_id, root ? "a clone of " : "a tmpfs no mount shows", root ? root : "");
	*out = s;
	return 0;
}

int detached_mount_note(struct dump_task *t, const char *magic, const char *link, const struct stat *st,
			uint64_t mnt_id, const char *what, uint32_t *id)
{
	struct detached_seen *s;
	int err;

	if (link[0] != '/' || !mnt_id || attached(t, mnt_id))
		return 0;
	if (ghost_path(link)) {
		pr_err("dump pid %d %s: %s, removed, is on a detached mount (%llu): not supported", t->pid,
		       what, link, (unsigned long long)mnt_id);
		return -ENOTSUP;
	}
	auto_close int fd = open(magic, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("dump pid %d %s: cannot open %s", t->pid, what, link);
		return -errno;
	}
	if ((err = mount_of(t, link, st, mnt_id, fd, what, &s)))
		return err;
	if (!s->m->clone_of) {
		err = S_ISDIR(st->st_mode) ? save_from_root(t, s, fd, what) : save_file(t, s, fd, link, what);
		if (err) {
			if (err != -EFBIG && err != -ENOMEM && err != -ENOTSUP)
				pr_err("dump pid %d %s: cannot save %s of the detached tmpfs it is on: %s", t->pid,
				       what, link, strerror(-err));
			return err;
		}
	}
	*id = s->m->id;
	return 1;
}

static int write_detached(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct detached_state *ds = state_of(ctx);
	DetachedMountTable tab = DETACHED_MOUNT_TABLE__INIT;
	DetachedMount *list[ds->n + 1];

	(void)tr;
	for (size_t i = 0; i < ds->n; i++)
		list[i] = ds->seen[i].m;
	tab.n_mounts = ds->n;
	tab.mounts = list;
	return ds->n ? image_write(ctx->images_dir_fd, IMG_DETACHED_MOUNTS, 0, &tab.base) : 0;
}

/* ---- restore ---- */

static bool valid_mount(const DetachedMount *m, size_t i)
{
	if (m->id != i || !m->clone_of == !m->n_files || (m->attr & ~ATTRS_KEPT) ||
	    (m->clone_of && !image_path_ok(m->clone_of)))
		return false;
	for (size_t k = 0; k < m->n_files; k++)
		if (m->files[k]->id != k || !ghost_file_valid(m->files[k]))
			return false;
	return true;
}

static int validate_detached(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct detached_state *st = state_of(ctx);
	bool needed = false;
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++)
			needed |= rt->tasks[i].fds->fds[k]->has_detached_mount;
		for (size_t k = 0; k < rt->tasks[i].mm->n_files; k++)
			needed |= rt->tasks[i].mm->files[k]->has_detached_mount;
		needed |= rt->tasks[i].core->has_cwd_detached_mount;
	}
	if (!needed)
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_DETACHED_MOUNTS, 0, (ProtobufCMessage **)&st->rst)))
		return err;
	for (size_t i = 0; i < st->rst->n_mounts; i++)
		if (!valid_mount(st->rst->mounts[i], i)) {
			pr_err("image detached-mounts.img: entry %zu is invalid", i);
			return -EINVAL;
		}
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const TaskCore *c = rt->tasks[i].core;
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			if (e->has_detached_mount && e->detached_mount >= st->rst->n_mounts) {
				pr_err("image fds-%d.img: fd %u is on detached mount %u, which "
				       "detached-mounts.img does not hold", rt->tasks[i].pid, e->fd,
				       e->detached_mount);
				return -EINVAL;
			}
		}
		for (size_t k = 0; k < rt->tasks[i].mm->n_files; k++) {
			const MappedFile *f = rt->tasks[i].mm->files[k];
			if (f->has_detached_mount && f->detached_mount >= st->rst->n_mounts) {
				pr_err("image mm-%d.img: mapped file %zu is on detached mount %u, which "
				       "detached-mounts.img does not hold", rt->tasks[i].pid, k, f->detached_mount);
				return -EINVAL;
			}
		}
		if (c->has_cwd_detached_mount && c->cwd_detached_mount >= st->rst->n_mounts) {
			pr_err("image core-%d.img: its cwd is on detached mount %u, which detached-mounts.img "
			       "does not hold", rt->tasks[i].pid, c->cwd_detached_mount);
			return -EINVAL;
		}
	}
	return 0;
}

/* The directory path (from root, "/": root itself) in the new tmpfs, made if missing. */
static int dir_in(int root, const char *path)
{
	char *copy = xstrdup(path), *part, *save = NULL;
	int dir = openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);

	dir = !copy ? -ENOMEM : dir < 0 ? -errno : dir;
	for (part = copy ? strtok_r(copy, "/", &save) : NULL; dir >= 0 && part; part = strtok_r(NULL, "/", &save)) {
		int next = mkdirat(dir, part, 0755) && errno != EEXIST
				   ? -errno
				   : openat(dir, part, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		next = next == -1 ? -errno : next;
		close(dir);
		dir = next;
	}
	if (!copy && dir >= 0)
		close(dir);
	free(copy);
	return !copy ? -ENOMEM : dir;
}

static bool is_dir(const GhostFile *g)
{
	return g->has_type && g->type == S_IFDIR;
}

/* A new tmpfs, not attached, with m's files: its fsmount fd. */
static int make_tmpfs(const DetachedMount *m)
{
	struct mount_attr attr = { .attr_set = m->attr };
	int fs = syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC), mnt = -1, err = 0;

	if (fs < 0 || syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) ||
	    (mnt = syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0)) < 0)
		err = -errno;
	if (fs >= 0)
		close(fs);
	/* the files (a directory, made if missing, gets its attributes), then the directories'
	 * times again (names made in them changed them), then the mount's flags */
	for (size_t pass = 0; pass < 2 && !err; pass++)
		for (size_t i = 0; i < m->n_files && !err; i++) {
			const GhostFile *g = m->files[i];
			if (pass && !is_dir(g))
				continue;
			const char *slash = strrchr(g->path, '/');
			char *parent = is_dir(g) ? NULL : strndup(g->path, slash - g->path);
			int dir = is_dir(g) ? dir_in(mnt, g->path) : parent ? dir_in(mnt, parent) : -ENOMEM;
			if (dir < 0)
				err = dir;
			else
				err = is_dir(g) ? ghost_file_attrs(dir, g) : ghost_file_make(dir, slash + 1, g);
			if (dir >= 0)
				close(dir);
			free(parent);
		}
	if (!err && m->attr && syscall(SYS_mount_setattr, mnt, "", AT_EMPTY_PATH, &attr, sizeof(attr)))
		err = -errno;
	if (err && mnt >= 0)
		close(mnt);
	return err ? err : mnt;
}

static int prepare_detached(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct detached_state *st = state_of(ctx);

	(void)rt;
	if (!st->rst)
		return 0;
	if (!(st->made = xzalloc((st->rst->n_mounts + 1) * sizeof(int))))
		return -ENOMEM;
	for (size_t i = 0; i < st->rst->n_mounts; i++)
		st->made[i] = -1;
	st->nr_made = st->rst->n_mounts;
	for (size_t i = 0; i < st->rst->n_mounts; i++) {
		const DetachedMount *m = st->rst->mounts[i];
		if (m->clone_of)
			continue;
		if ((st->made[i] = make_tmpfs(m)) < 0) {
			int err = st->made[i];
			st->made[i] = -1;
			pr_err("restore: cannot make again the detached tmpfs %zu (%zu files): %s", i,
			       m->n_files, strerror(-err));
			return err;
		}
	}
	return 0;
}

int detached_mount_open(const struct run_ctx *ctx, uint32_t id, const char *path, int flags, pid_t pid,
			const char *what)
{
	const struct detached_state *st = state_of(ctx);
	const DetachedMount *m = st->rst->mounts[id];
	struct mount_attr attr = { .attr_set = m->attr };
	bool root = !strcmp(path, "/");
	int mnt, fd;

	if (m->clone_of) {
		auto_close int dir = tree_open(ctx, m->clone_of, O_PATH | O_DIRECTORY, 0);
		mnt = dir < 0 ? -1
			      : syscall(SYS_open_tree, dir, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
		if (mnt < 0 || (m->attr && syscall(SYS_mount_setattr, mnt, "", AT_EMPTY_PATH, &attr, sizeof(attr)))) {
			int err = dir < 0 ? dir : -errno;
			pr_err("restore pid %d %s: cannot clone %s, the root of the detached mount %s is on: %s",
			       pid, what, m->clone_of, path, strerror(-err));
			if (mnt >= 0)
				close(mnt);
			return err;
		}
	} else if ((mnt = fcntl(st->made[id], F_DUPFD_CLOEXEC, 0)) < 0) {
		return -errno;
	}
	if (root && (flags & O_PATH) && !(flags & O_DIRECTORY))
		return mnt; /* (the mount's own fd, as open_tree or fsmount gave it: move_mount takes it) */
	fd = openat(mnt, root ? "." : path + 1, flags | O_CLOEXEC);
	if (fd < 0)
		pr_perror("restore pid %d %s: cannot open %s on its detached mount", pid, what, path);
	fd = fd < 0 ? -errno : fd;
	close(mnt);
	return fd;
}

static void close_detached(struct run_ctx *ctx)
{
	struct detached_state *st = state_of(ctx);

	for (size_t i = 0; i < st->nr_made; i++)
		if (st->made[i] >= 0)
			close(st->made[i]);
	st->nr_made = 0;
}

static void undo_detached(struct run_ctx *ctx, bool restored)
{
	(void)restored; /* (nothing attached: the mounts go with the last fd) */
	close_detached(ctx);
}

static void free_detached(void *state)
{
	struct detached_state *st = state;

	for (size_t i = 0; i < st->n; i++) {
		detached_mount__free_unpacked(st->seen[i].m, NULL);
		free(st->seen[i].slots);
	}
	free(st->seen);
	if (st->rst)
		image_free(&st->rst->base);
	free(st->made);
}

const struct tree_object_ops tree_detached_mounts = {
	.name = "detached mounts",
	.state_size = sizeof(struct detached_state),
	.free_state = free_detached,
	.write = write_detached,
	.validate = validate_detached,
	.prepare = prepare_detached,
	.close = close_detached,
	.undo = undo_detached,
};
