/*
 * The files of a tmpfs mount of the tree (they live nowhere else): every directory, file,
 * symlink, device node, FIFO and socket with its mode, owner, times and extended attributes,
 * hard links kept as links, files' data with their holes (SEEK_DATA/SEEK_HOLE). tmpfs-ID.img
 * lists the entries, parents first; tmpfsdata-ID.img holds the data pages. The dump reads a
 * detached copy of the mount (nothing mounted over it hides anything); the restore fills the
 * new, empty tmpfs, every path checked first (relative, no "..", its parent made before it).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "log.h"
#include "mounts.h"
#include "ns-make.h"
#include "task.h"
#include "util.h"

#define TMPFS_MAX_ENTRIES (1u << 20)
#define XATTR_LIST_MAX_LEN 65536

struct tmpfs_dump {
	TmpfsTree tree;
	int data_fd;
	uint64_t nr_pages;
	const char *mountpoint;
	dev_t dev; /* the tmpfs's: a directory of another is a mount over it (read in place) */
	struct seen_inode { dev_t dev; ino_t ino; char *path; } *seen;
	size_t nr_seen;
	char buf[1 << 16];
};

static uint64_t ts_ns(const struct timespec *ts)
{
	return ts->tv_sec * 1000000000ull + ts->tv_nsec;
}

static int add_entry(struct tmpfs_dump *d, TmpfsEntry *e)
{
	TmpfsEntry **more;

	if (d->tree.n_entries >= TMPFS_MAX_ENTRIES) {
		pr_err("dump: tmpfs %s: more than %u entries", d->mountpoint, TMPFS_MAX_ENTRIES);
		return -E2BIG;
	}
	if (!(more = xreallocarray(d->tree.entries, d->tree.n_entries + 1, sizeof(*more))))
		return -ENOMEM;
	d->tree.entries = more;
	d->tree.entries[d->tree.n_entries++] = e;
	return 0;
}

static int read_xattrs(const char *path, TmpfsEntry *e)
{
	char names[XATTR_LIST_MAX_LEN];
	ssize_t len = llistxattr(path, names, sizeof(names));

	if (len < 0)
		return errno == ENOTSUP ? 0 : -errno;
	for (char *n = names; n < names + len; n += strlen(n) + 1) {
		ssize_t vlen = lgetxattr(path, n, NULL, 0);
		if (vlen < 0)
			return -errno;
		TmpfsXattr *x = xzalloc(sizeof(*x)), **more;
		if (!x || !(more = xreallocarray(e->xattrs, e->n_xattrs + 1, sizeof(*more)))) {
			free(x);
			return -ENOMEM;
		}
		e->xattrs = more;
		e->xattrs[e->n_xattrs++] = x;
		tmpfs_xattr__init(x);
		if (!(x->name = xstrdup(n)) || !(x->value.data = xzalloc(vlen + 1)))
			return -ENOMEM;
		x->value.len = lgetxattr(path, n, x->value.data, vlen);
		if ((ssize_t)x->value.len != vlen)
			return -EIO;
	}
	return 0;
}

/* A file's data, page by page over its data ranges, into tmpfsdata-ID.img. */
static int read_data(struct tmpfs_dump *d, int fd, TmpfsEntry *e)
{
	off_t data = 0, hole, end = PAGE_ALIGN(e->size);

	while (data < end && (data = lseek(fd, data, SEEK_DATA)) >= 0) {
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		data &= ~(off_t)(PAGE_SIZE - 1);
		hole = PAGE_ALIGN(hole);
		PageRun *r = xzalloc(sizeof(*r)), **more;
		if (!r || !(more = xreallocarray(e->data, e->n_data + 1, sizeof(*more)))) {
			free(r);
			return -ENOMEM;
		}
		e->data = more;
		e->data[e->n_data++] = r;
		page_run__init(r);
		r->vaddr = data;
		r->file_off = PAGES_HEADER_SIZE + d->nr_pages * PAGE_SIZE;
		r->nr_pages = (hole - data) / PAGE_SIZE;
		for (off_t off = data; off < hole; off += sizeof(d->buf)) {
			size_t len = hole - off < (off_t)sizeof(d->buf) ? (size_t)(hole - off) : sizeof(d->buf);
			ssize_t got = pread(fd, d->buf, len, off);
			if (got < 0)
				return -errno;
			memset(d->buf + got, 0, len - got);
			if (write_all(d->data_fd, d->buf, len))
				return -EIO;
		}
		d->nr_pages += r->nr_pages;
		data = hole;
	}
	return 0;
}

static TmpfsType type_of(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR: return TMPFS_TYPE__TMPFS_DIR;
	case S_IFLNK: return TMPFS_TYPE__TMPFS_SYMLINK;
	case S_IFCHR: return TMPFS_TYPE__TMPFS_CHR;
	case S_IFBLK: return TMPFS_TYPE__TMPFS_BLK;
	case S_IFIFO: return TMPFS_TYPE__TMPFS_FIFO;
	case S_IFSOCK: return TMPFS_TYPE__TMPFS_SOCK;
	default: return TMPFS_TYPE__TMPFS_FILE;
	}
}

/* One entry (name in dir_fd, path its path in the mount), and below it if a directory. */
static int walk(struct tmpfs_dump *d, int dir_fd, const char *name, const char *path)
{
	struct stat st;
	char proc[PATH_MAX + 64];
	unsigned logged = log_errors();
	int err;

	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW)) {
		pr_perror("dump: tmpfs %s: cannot stat %s", d->mountpoint, path);
		return -errno;
	}
	TmpfsEntry *e = xzalloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	tmpfs_entry__init(e);
	if ((err = add_entry(d, e))) {
		free(e);
		return err;
	}
	if (!(e->path = xstrdup(path)))
		return -ENOMEM;
	e->type = type_of(st.st_mode);
	e->mode = st.st_mode & 07777;
	e->uid = st.st_uid;
	e->gid = st.st_gid;
	e->mtime_ns = ts_ns(&st.st_mtim);
	e->atime_ns = ts_ns(&st.st_atim);
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
		for (size_t i = 0; i < d->nr_seen; i++)
			if (d->seen[i].dev == st.st_dev && d->seen[i].ino == st.st_ino) {
				return (e->link_to = xstrdup(d->seen[i].path)) ? 0 : -ENOMEM;
			}
		struct seen_inode *more = xreallocarray(d->seen, d->nr_seen + 1, sizeof(*more));
		if (!more)
			return -ENOMEM;
		d->seen = more;
		d->seen[d->nr_seen++] = (struct seen_inode){ st.st_dev, st.st_ino, e->path };
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dir_fd, name);
	if ((err = read_xattrs(proc, e)))
		return log_unnamed(logged, err, "dump: tmpfs %s: cannot read the extended attributes of %s",
				   d->mountpoint, path);
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(dir_fd, name, target, sizeof(target) - 1);
		if (n < 0)
			return -errno;
		target[n] = 0;
		if (!(e->target = xstrdup(target)))
			return -ENOMEM;
	} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
		e->has_rdev = true;
		e->rdev = st.st_rdev;
	} else if (S_ISREG(st.st_mode)) {
		/* O_NOATIME: the dump leaves a tree that goes on (--leave-running) its access times */
		auto_close int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC);
		e->has_size = true;
		e->size = st.st_size;
		if (fd < 0 || (err = read_data(d, fd, e)))
			return log_unnamed(logged, fd < 0 ? -errno : err, "dump: tmpfs %s: cannot read %s",
					   d->mountpoint, path);
	} else if (S_ISDIR(st.st_mode) && st.st_dev != d->dev) {
		pr_warn("dump: tmpfs %s (unbindable: read in place): %s has a mount over it; what that "
			"hides is not saved", d->mountpoint, path);
	} else if (S_ISDIR(st.st_mode)) {
		DIR *dir = opendir_at(dir_fd, name, O_NOFOLLOW | O_NOATIME);
		struct dirent *de;
		if (!dir) {
			pr_perror("dump: tmpfs %s: cannot list %s", d->mountpoint, path);
			return -errno;
		}
		err = 0;
		while (!err && (de = readdir(dir))) {
			char *child;
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (!(child = xasprintf("%s%s%s", path, *path ? "/" : "", de->d_name))) {
				err = -ENOMEM;
				break;
			}
			err = walk(d, dirfd(dir), de->d_name, child);
			free(child);
		}
		closedir(dir);
		return err;
	}
	return 0;
}

int tmpfs_dump(int mnt_fd, int dirfd, uint32_t id, const char *mountpoint)
{
	struct tmpfs_dump *d = xzalloc(sizeof(*d));
	int err;

	if (!d)
		return -ENOMEM;
	tmpfs_tree__init(&d->tree);
	d->mountpoint = mountpoint;
	struct stat root;
	if (fstat(mnt_fd, &root)) {
		err = -errno;
		pr_perror("dump: tmpfs %s: cannot stat its root", mountpoint);
		goto out;
	}
	d->dev = root.st_dev;
	d->data_fd = raw_image_create(dirfd, IMG_TMPFS_DATA, id);
	if (d->data_fd < 0) {
		err = d->data_fd;
		goto out;
	}
	if (!(err = walk(d, mnt_fd, ".", ""))) {
		d->tree.nr_pages = d->nr_pages;
		if (!(err = raw_image_finish(d->data_fd, IMG_TMPFS_DATA, id, d->nr_pages)))
			err = image_write(dirfd, IMG_TMPFS, id, &d->tree.base);
	}
	close(d->data_fd);
	if (!err)
		pr_info("dump: tmpfs %s: %zu entries, %llu pages", mountpoint, d->tree.n_entries,
			(unsigned long long)d->nr_pages);
out:
	free(d->seen); /* (its paths are the entries') */
	image_free_fields(&d->tree.base);
	free(d);
	return err;
}

/* ---- restore ---- */

/* A relative path of plain components, none "." or "..". */
static bool path_ok(const char *p)
{
	if (*p == '/' || strlen(p) >= PATH_MAX)
		return false;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (!n || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n + (p[n] == '/');
	}
	return true;
}

/* The entries of a tree checked so far, by path (open addressing: slot holds index + 1). */
struct path_index {
	const TmpfsTree *t;
	uint32_t *slots;
	size_t mask;
};

static size_t path_slot(const struct path_index *x, const char *path)
{
	size_t s = str_hash(path) & x->mask;
	while (x->slots[s] && strcmp(x->t->entries[x->slots[s] - 1]->path, path))
		s = (s + 1) & x->mask;
	return s;
}

static const TmpfsEntry *find_entry(const struct path_index *x, const char *path)
{
	size_t s = path_slot(x, path);
	return x->slots[s] ? x->t->entries[x->slots[s] - 1] : NULL;
}

static void index_entry(struct path_index *x, size_t i)
{
	size_t s = path_slot(x, x->t->entries[i]->path);
	if (!x->slots[s])
		x->slots[s] = i + 1;
}

static int check_tree(const TmpfsTree *t, const char *name)
{
	uint64_t pages = 0;
	struct path_index x = { t, NULL, 0 };

	if (!t->n_entries || t->n_entries > TMPFS_MAX_ENTRIES || t->entries[0]->path[0] ||
	    t->entries[0]->type != TMPFS_TYPE__TMPFS_DIR) {
		pr_err("image %s: does not start with its root directory", name);
		return -EINVAL;
	}
	for (x.mask = 1; x.mask < 2 * t->n_entries; x.mask <<= 1)
		;
	auto_free uint32_t *slots = x.slots = xzalloc(x.mask * sizeof(*x.slots));
	if (!slots)
		return -ENOMEM;
	x.mask--;
	index_entry(&x, 0);
	for (size_t i = 1; i < t->n_entries; i++) {
		const TmpfsEntry *e = t->entries[i];
		char *slash = strrchr(e->path, '/');
		char parent[PATH_MAX];
		snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - e->path) : 0, e->path);
		const TmpfsEntry *p = find_entry(&x, parent), *l = e->link_to ? find_entry(&x, e->link_to) : NULL;
		bool ok = path_ok(e->path) && p && p->type == TMPFS_TYPE__TMPFS_DIR && !find_entry(&x, e->path) &&
			  e->mode <= 07777 && (!e->link_to || (l && l->type != TMPFS_TYPE__TMPFS_DIR && !l->link_to)) &&
			  (e->type != TMPFS_TYPE__TMPFS_SYMLINK || e->link_to || (e->target && *e->target)) &&
			  (e->type != TMPFS_TYPE__TMPFS_FILE || e->link_to || e->has_size);
		uint64_t end = 0;
		for (size_t r = 0; ok && r < e->n_data; r++) {
			const PageRun *run = e->data[r];
			ok = run->vaddr % PAGE_SIZE == 0 && run->vaddr >= end && run->nr_pages &&
			     run->file_off == PAGES_HEADER_SIZE + pages * PAGE_SIZE &&
			     run->vaddr + (uint64_t)run->nr_pages * PAGE_SIZE <= PAGE_ALIGN(e->size);
			end = run->vaddr + (uint64_t)run->nr_pages * PAGE_SIZE;
			pages += run->nr_pages;
		}
		if (!ok) {
			pr_err("image %s: entry %zu (%.100s) is invalid", name, i, e->path);
			return -EINVAL;
		}
		index_entry(&x, i);
	}
	if (pages != t->nr_pages) {
		pr_err("image %s: its files hold %llu pages, the table says %llu", name,
		       (unsigned long long)pages, (unsigned long long)t->nr_pages);
		return -EINVAL;
	}
	return 0;
}

int tmpfs_image_open(int dirfd, uint32_t id, struct tmpfs_image *img)
{
	char name[64];
	int err;

	*img = (struct tmpfs_image){ .data_fd = -1 };
	image_filename(name, sizeof(name), IMG_TMPFS, id);
	if ((err = image_read(dirfd, IMG_TMPFS, id, (ProtobufCMessage **)&img->tree)))
		return err;
	if ((err = check_tree(img->tree, name)) ||
	    (err = img->data_fd = raw_image_open(dirfd, IMG_TMPFS_DATA, id, img->tree->nr_pages)) < 0) {
		tmpfs_image_close(img);
		return err;
	}
	return 0;
}

void tmpfs_image_close(struct tmpfs_image *img)
{
	image_free(img->tree ? &img->tree->base : NULL);
	if (img->data_fd >= 0)
		close(img->data_fd);
	*img = (struct tmpfs_image){ .data_fd = -1 };
}

static int open_dir_in(int root, const char *path)
{
	struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV };
	int fd = syscall(SYS_openat2, root, *path ? path : ".", &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

static int write_data(int fd, int data_fd, const TmpfsEntry *e)
{
	char buf[1 << 16];

	for (size_t r = 0; r < e->n_data; r++) {
		const PageRun *run = e->data[r];
		uint64_t len = (uint64_t)run->nr_pages * PAGE_SIZE;
		for (uint64_t off = 0; off < len; off += sizeof(buf)) {
			size_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);
			if (pread(data_fd, buf, n, run->file_off + off) != (ssize_t)n ||
			    pwrite(fd, buf, n, run->vaddr + off) != (ssize_t)n)
				return -EIO;
		}
	}
	return ftruncate(fd, e->size) ? -errno : 0;
}

/* Owner, mode, extended attributes of name in dir (times come last, with the directories'). */
static int set_attrs(int dir, const char *name, const TmpfsEntry *e)
{
	char proc[PATH_MAX + 64];
	bool link = e->type == TMPFS_TYPE__TMPFS_SYMLINK;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dir, name);
	if (!*name) { /* the mount's root: dir itself */
		if (fchown(dir, e->uid, e->gid) || fchmod(dir, e->mode))
			return -errno;
	} else if (fchownat(dir, name, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) ||
		   (!link && fchmodat(dir, name, e->mode, 0))) {
		return -errno;
	}
	for (size_t i = 0; i < e->n_xattrs; i++)
		if (lsetxattr(proc, e->xattrs[i]->name, e->xattrs[i]->value.data, e->xattrs[i]->value.len, 0))
			return -errno;
	return 0;
}

static int make_entry(int dir, const char *name, const TmpfsEntry *e, int data_fd, int root)
{
	int fd, err = 0;

	if (e->link_to) {
		auto_close int from = -1;
		char *slash = strrchr(e->link_to, '/');
		char parent[PATH_MAX];
		snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - e->link_to) : 0, e->link_to);
		if ((from = open_dir_in(root, parent)) < 0)
			return from;
		return linkat(from, slash ? slash + 1 : e->link_to, dir, name, 0) ? -errno : 0;
	}
	switch (e->type) {
	case TMPFS_TYPE__TMPFS_DIR:
		if (mkdirat(dir, name, 0700))
			return -errno;
		break;
	case TMPFS_TYPE__TMPFS_FILE:
		fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		err = write_data(fd, data_fd, e);
		close(fd);
		break;
	case TMPFS_TYPE__TMPFS_SYMLINK:
		if (symlinkat(e->target, dir, name))
			return -errno;
		break;
	case TMPFS_TYPE__TMPFS_CHR:
	case TMPFS_TYPE__TMPFS_BLK:
	case TMPFS_TYPE__TMPFS_FIFO:
	case TMPFS_TYPE__TMPFS_SOCK: {
		mode_t t = e->type == TMPFS_TYPE__TMPFS_CHR   ? S_IFCHR
			   : e->type == TMPFS_TYPE__TMPFS_BLK ? S_IFBLK
			   : e->type == TMPFS_TYPE__TMPFS_FIFO ? S_IFIFO
							      : S_IFSOCK;
		if (mknodat(dir, name, t | 0600, e->has_rdev ? (dev_t)e->rdev : 0))
			return -errno;
		break;
	}
	default:
		return -EINVAL;
	}
	return err ? err : set_attrs(dir, name, e);
}

static void set_times(int root, const TmpfsEntry *e)
{
	struct timespec ts[2] = { { e->atime_ns / 1000000000ull, e->atime_ns % 1000000000ull },
				  { e->mtime_ns / 1000000000ull, e->mtime_ns % 1000000000ull } };
	utimensat(root, *e->path ? e->path : ".", ts, AT_SYMLINK_NOFOLLOW);
}

static int fill(int dir_fd, const TmpfsTree *t, int data_fd, const char *mountpoint)
{
	int err;

	/* the mount's root itself: its owner, mode and attributes */
	if ((err = set_attrs(dir_fd, "", t->entries[0])))
		pr_err("restore: tmpfs %s: cannot set the owner, mode or attributes of its root: %s",
		       mountpoint, strerror(-err));
	for (size_t i = 1; i < t->n_entries && !err; i++) {
		const TmpfsEntry *e = t->entries[i];
		char *slash = strrchr(e->path, '/');
		char parent[PATH_MAX];
		snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - e->path) : 0, e->path);
		int dir = open_dir_in(dir_fd, parent);
		if (dir < 0) {
			err = dir;
			break;
		}
		if ((err = make_entry(dir, slash ? slash + 1 : e->path, e, data_fd, dir_fd)))
			pr_err("restore: tmpfs %s: cannot make %s again: %s", mountpoint, e->path,
			       strerror(-err));
		close(dir);
	}
	for (size_t i = t->n_entries; !err && i-- > 0;) /* children first: a directory's last */
		set_times(dir_fd, t->entries[i]);
	return err;
}

int mount_as_ns_root(int (*fn)(void *), void *arg, const char *what)
{
	int status;
	pid_t child;

	fflush(NULL);
	if ((child = fork()) == 0) {
		setfsgid(0);
		setfsuid(0);
		if (setfsuid(-1) != 0 || setfsgid(-1) != 0) {
			pr_err("restore: %s: the tree's user namespace maps no root to make its files", what);
			_exit(EINVAL);
		}
		_exit(-fn(arg));
	}
	if (child < 0) {
		pr_perror("restore: %s: fork", what);
		return -errno;
	}
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? -WEXITSTATUS(status) : -EIO;
}

struct fill_args {
	int dir_fd;
	const TmpfsTree *t;
	int data_fd;
	const char *mountpoint;
};

static int fill_of(void *arg)
{
	const struct fill_args *f = arg;
	return fill(f->dir_fd, f->t, f->data_fd, f->mountpoint);
}

int tmpfs_restore(int dir_fd, struct tmpfs_image *img, const char *mountpoint,
		  const struct run_ctx *in_userns)
{
	TmpfsTree *t = img->tree;

	/* its owners in the namespace's view (in the process that makes it: stasis's copy stays) */
	for (size_t i = 0; in_userns && i < t->n_entries; i++) {
		ns_make_tree_ids(in_userns, false, &t->entries[i]->uid, 1);
		ns_make_tree_ids(in_userns, true, &t->entries[i]->gid, 1);
	}
	struct fill_args f = { dir_fd, t, img->data_fd, mountpoint };
	char what[PATH_MAX + 16];
	snprintf(what, sizeof(what), "tmpfs %s", mountpoint);
	return in_userns ? mount_as_ns_root(fill_of, &f, what) : fill_of(&f);
}

/* ---- a namespace's tmpfs mounts, read from inside it ---- */

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif

/* In the helper: inside the namespace, a detached copy of each tmpfs sent back. */
static __attribute__((noreturn)) void clone_helper(pid_t root, const MountNs *ns, int sock)
{
	char path[64];
	int rootfd, nsfd;

	snprintf(path, sizeof(path), "/proc/%d/root", root);
	rootfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", root);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (rootfd < 0 || nsfd < 0 || setns(nsfd, CLONE_NEWNS) || fchdir(rootfd) || chroot(".")) {
		pr_perror("dump pid %d: cannot enter its mount namespace", root);
		_exit(1);
	}
	for (size_t i = 0; i < ns->n_mounts; i++) {
		struct statx top;
		if (!ns->mounts[i]->has_contents)
			continue;
		/* (its path leads to the mount on top there: one covered by another cannot be read) */
		if (statx(AT_FDCWD, ns->mounts[i]->mountpoint, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &top) ||
		    top.stx_mnt_id != ns->mounts[i]->id) {
			pr_err("dump pid %d: tmpfs %s (mount %u) is covered by another mount: its files cannot "
			       "be read (not supported)", root, ns->mounts[i]->mountpoint, ns->mounts[i]->id);
			_exit(1);
		}
		/* (an unbindable one cannot be copied: read in place, through what is mounted on it) */
		int fd = syscall(SYS_open_tree, AT_FDCWD, ns->mounts[i]->mountpoint,
				 (ns->mounts[i]->unbindable ? 0 : OPEN_TREE_CLONE) | O_CLOEXEC);
		if (fd < 0) {
			pr_perror("dump pid %d: cannot copy mount %s to read it", root,
				  ns->mounts[i]->mountpoint);
			_exit(1);
		}
		char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
		uint32_t idx = i;
		struct iovec iov = { &idx, sizeof(idx) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
		if (sendmsg(sock, &mh, MSG_NOSIGNAL) != sizeof(idx))
			_exit(1);
		close(fd);
	}
	_exit(0);
}

int tmpfs_dump_mounts(struct run_ctx *ctx, pid_t root, const MountNs *ns)
{
	int sk[2], status = 0, err = 0;
	pid_t helper;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk))
		return -errno;
	fflush(NULL);
	if ((helper = fork()) == 0) {
		close(sk[0]);
		clone_helper(root, ns, sk[1]);
	}
	close(sk[1]);
	while (helper > 0 && !err) {
		char cbuf[CMSG_SPACE(sizeof(int))];
		uint32_t idx;
		struct iovec iov = { &idx, sizeof(idx) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		ssize_t got = recvmsg(sk[0], &mh, MSG_CMSG_CLOEXEC);
		struct cmsghdr *c = got > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
		int fd;
		if (got == 0)
			break;
		if (got != sizeof(idx) || !c || c->cmsg_type != SCM_RIGHTS || idx >= ns->n_mounts) {
			err = -EIO;
			break;
		}
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
		err = tmpfs_dump(fd, ctx->images_dir_fd, ns->mounts[idx]->id, ns->mounts[idx]->mountpoint);
		close(fd);
	}
	close(sk[0]);
	if (helper < 0)
		return -errno;
	while (waitpid(helper, &status, 0) < 0 && errno == EINTR)
		;
	if (!err && (!WIFEXITED(status) || WEXITSTATUS(status))) {
		pr_err("dump pid %d: reading its tmpfs mounts failed", root);
		err = -EIO;
	}
	return err;
}
