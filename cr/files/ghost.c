/*
 * Ghost files: files still open, mapped, or a process's cwd after their name was removed.
 * A regular file's content is saved (ghosts.img, at most the ghost limit of data; its holes
 * stay holes: only the stretches SEEK_DATA finds are saved); a directory, device node, FIFO or
 * socket file keeps its type, device number, mode, owner and times; a symbolic link (an
 * O_PATH | O_NOFOLLOW fd, or an inotify watch, holds it) its target, owner and times.
 * On restore stasis makes each again at its old path (or beside it if the name is taken), a
 * removed directory before what was removed inside it (which is made in it, so that ".." is
 * right), making for the moment the directories above that are gone; it keeps an fd on each,
 * then removes every name it made, children first. Each file is then again open, removed, and
 * named "/path (deleted)"; every fd, mapping and cwd reopens it through /proc/self/fd. The
 * directories it made names in get their times back; each ghost gets its own.
 * A file made by O_TMPFILE and never named ("/dir/#INODE (deleted)") is made by O_TMPFILE
 * again, so that it can still be linked into the filesystem.
 * A file deleted under the name the process used but still linked under another is the same
 * inode again: it is saved as a file handle, reopened with open_by_handle_at (same dev and inode
 * checked) and linked at its old name for a moment, so that it is "/path (deleted)" again. On a
 * filesystem without handles (overlayfs) its other name is searched for by inode number and
 * reopened by it; when none is found (a file of an image's layer removed in the container, which
 * only a whiteout hides) it is saved as a removed file is.
 * A symbolic link made again is reopened O_PATH | O_NOFOLLOW by its file handle (through
 * /proc/self/fd a reopen without O_NOFOLLOW is all there is: the link itself, but without that
 * flag); on a filesystem without handles, or in a user namespace (open_by_handle_at needs
 * CAP_DAC_READ_SEARCH of the host), its one fd is shared.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "tree-path.h"
#include "pstree.h"
#include "tree-objects.h"
#include "util.h"

#define GHOST_LIMIT_DEFAULT (64u << 20)
#define DELETED_SUFFIX " (deleted)"
#define GHOST_NAME_MAX 256

/* One ghost made by the restore. */
struct ghost_made {
	int fd;     /* stasis's own: read-only for a regular file (an executable has no writer), else O_PATH */
	bool made;  /* a new inode: it gets the saved owner, mode and times */
	/* a symbolic link: its handle and a (not O_PATH) fd on its directory's mount, to reopen
	 * it O_PATH | O_NOFOLLOW; has_handle false if the filesystem gives none */
	bool is_link, has_handle;
	ProtobufCBinaryData handle;
	int32_t handle_type;
	int mount_fd;
};

/* A name the restore made (a ghost's, or a missing directory's), removed before the tree runs. */
struct made_name {
	int dir;
	char name[GHOST_NAME_MAX];
	bool is_dir;
};

/* A directory that was there before the restore made names in it: its times are put back. */
struct touched_dir {
	int fd; /* O_PATH */
	struct timespec times[2];
};

/* The run's deleted files: noted by the dump, or recreated by the restore. */
struct ghost_state {
	GhostFile **ghosts; /* dump: every ghost noted */
	size_t n;
	GhostTable *rst;  /* restore: ghosts.img, checked */
	struct ghost_made *made; /* restore: by ghost id */
	size_t nr_made;
};

static struct ghost_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_ghosts);
}

uint64_t ghost_limit(const struct run_ctx *ctx)
{
	return ctx->opts->ghost_limit ? ctx->opts->ghost_limit : GHOST_LIMIT_DEFAULT;
}

bool ghost_path(const char *link)
{
	size_t n = strlen(link), d = strlen(DELETED_SUFFIX);
	return link[0] == '/' && n > d && !strcmp(link + n - d, DELETED_SUFFIX);
}

static bool kept_type(mode_t type)
{
	return type == S_IFREG || type == S_IFDIR || type == S_IFCHR || type == S_IFBLK || type == S_IFIFO ||
	       type == S_IFSOCK || type == S_IFLNK;
}

static const char *type_name(mode_t type)
{
	switch (type) {
	case S_IFDIR: return "directory";
	case S_IFCHR: return "character device";
	case S_IFBLK: return "block device";
	case S_IFIFO: return "FIFO";
	case S_IFSOCK: return "socket file";
	case S_IFLNK: return "symbolic link";
	case S_IFREG: return "file";
	default: return "file of an unknown type";
	}
}

static int64_t ns_of(const struct timespec *ts)
{
	return ts->tv_sec * 1000000000ll + ts->tv_nsec;
}

/* Made by O_TMPFILE and never named: the kernel names it "#INODE". */
static bool is_tmpfile(const char *path, const struct stat *st)
{
	const char *slash = strrchr(path, '/');
	char name[32];

	snprintf(name, sizeof(name), "#%llu", (unsigned long long)st->st_ino);
	return slash && !strcmp(slash + 1, name);
}

/* The data of the removed regular file open at fd, stretch by stretch (holes are left out). */
static int save_content(const struct run_ctx *ctx, int fd, const struct stat *st, GhostFile *g,
			pid_t pid, const char *what)
{
	uint64_t total = 0;
	off_t off = 0, data;

	g->has_size = true;
	g->size = st->st_size;
	while (off < st->st_size && (data = lseek(fd, off, SEEK_DATA)) >= 0) {
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole <= data)
			hole = st->st_size;
		GhostExtent *x = xzalloc(sizeof(*x)), **more;
		if (!x)
			return -ENOMEM;
		ghost_extent__init(x);
		x->offset = data;
		x->len = hole - data;
		total += x->len;
		if (!(more = xreallocarray(g->extents, g->n_extents + 1, sizeof(*more)))) {
			ghost_extent__free_unpacked(x, NULL);
			return -ENOMEM;
		}
		g->extents = more;
		g->extents[g->n_extents++] = x;
		off = hole;
	}
	if (total > ghost_limit(ctx)) {
		pr_err("dump pid %d %s: deleted file %s holds %llu bytes of data, more than the ghost "
		       "limit of %llu (raise it with --ghost-limit; --link-remap cannot keep it: the kernel "
		       "links back no file whose last name is gone)",
		       pid, what, g->path, (unsigned long long)total, (unsigned long long)ghost_limit(ctx));
		return -EFBIG;
	}
	if (!(g->data.data = xzalloc(total + 1)))
		return -ENOMEM;
	g->data.len = total;
	for (size_t i = 0, at = 0; i < g->n_extents; at += g->extents[i++]->len) {
		const GhostExtent *x = g->extents[i];
		if (pread(fd, g->data.data + at, x->len, x->offset) != (ssize_t)x->len) {
			pr_perror("dump pid %d %s: cannot read deleted file %s", pid, what, g->path);
			return -EIO;
		}
	}
	return 0;
}

/* What a file made again gets back of st: type, mode, owner, times, device number. */
static void note_attributes(GhostFile *g, const struct stat *st)
{
	mode_t type = st->st_mode & S_IFMT;

	g->mode = st->st_mode & 07777;
	g->has_uid = g->has_gid = g->has_atime_ns = g->has_mtime_ns = true;
	g->uid = st->st_uid;
	g->gid = st->st_gid;
	g->atime_ns = ns_of(&st->st_atim);
	g->mtime_ns = ns_of(&st->st_mtim);
	g->dev = st->st_dev;
	g->ino = st->st_ino;
	if (type != S_IFREG) {
		g->has_type = true;
		g->type = type;
	}
	if (type == S_IFCHR || type == S_IFBLK) {
		g->has_rdev = true;
		g->rdev = st->st_rdev;
	}
}

/* A regular file's data or a symbolic link's target, of the inode open (O_PATH) at fd. */
static int copy_body(const struct run_ctx *ctx, int fd, const struct stat *st, GhostFile *g, pid_t pid,
		     const char *what)
{
	char self[64];

	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (S_ISREG(st->st_mode)) {
		/* read without touching its access time (stasis owns it: root) */
		auto_close int rd = open(self, O_RDONLY | O_NOATIME | O_CLOEXEC);
		if (rd < 0 && errno == EPERM)
			rd = open(self, O_RDONLY | O_CLOEXEC);
		if (rd < 0) {
			pr_perror("dump pid %d %s: cannot read %s", pid, what, g->path);
			return -errno;
		}
		return save_content(ctx, rd, st, g, pid, what);
	}
	if (!S_ISLNK(st->st_mode))
		return 0;
	/* (fd is the link itself: O_PATH through the /proc link does not follow it further) */
	char target[PATH_MAX];
	ssize_t n = readlinkat(fd, "", target, sizeof(target));
	if (n <= 0 || n >= (ssize_t)sizeof(target)) {
		pr_perror("dump pid %d %s: cannot read the target of symbolic link %s", pid, what, g->path);
		return n < 0 ? -errno : -ENAMETOOLONG;
	}
	if (!(g->link_target.data = xzalloc(n + 1)))
		return -ENOMEM;
	memcpy(g->link_target.data, target, n);
	g->link_target.len = n;
	g->has_link_target = true;
	return 0;
}

/*
 * The ghost id of the removed file behind read_path (a /proc path), saving it on first sight.
 * what names its use ("fd 5"); any_type: a directory, device node, FIFO, socket file or
 * symbolic link too.
 */
int ghost_note(struct run_ctx *ctx, const char *read_path, const char *link, pid_t pid,
	       const char *what, bool any_type)
{
	struct ghost_state *gd = state_of(ctx);
	struct stat st;
	auto_close int fd = open(read_path, O_PATH | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st)) {
		pr_perror("dump pid %d %s: cannot open deleted file %s", pid, what, link);
		return -errno;
	}
	for (size_t i = 0; i < gd->n; i++)
		if (gd->ghosts[i]->dev == st.st_dev && gd->ghosts[i]->ino == st.st_ino)
			return gd->ghosts[i]->id;
	mode_t type = st.st_mode & S_IFMT;
	if (!kept_type(type) || (!any_type && type != S_IFREG)) {
		pr_err("dump pid %d %s: %s is a removed %s (not supported)", pid, what, link, type_name(type));
		return -ENOTSUP;
	}
	GhostFile *g, **more = xreallocarray(gd->ghosts, gd->n + 1, sizeof(*more));
	if (!more)
		return -ENOMEM;
	gd->ghosts = more;
	if (!(g = xzalloc(sizeof(*g))))
		return -ENOMEM;
	ghost_file__init(g);
	g->id = gd->n;
	gd->ghosts[gd->n++] = g; /* (freed with the state, also if what follows fails) */
	if (!(g->path = xstrdup(link)))
		return -ENOMEM;
	g->path[strlen(g->path) - strlen(DELETED_SUFFIX)] = 0;
	note_attributes(g, &st);
	int err = st.st_nlink ? fhandle_of_fd(fd, &g->handle, &g->handle_type) : -ENOENT;
	if (err == -ENOMEM)
		return err;
	if (st.st_nlink && err) {
		char other[PATH_MAX];
		struct statfs sfs;
		if (fstatfs(fd, &sfs) || sfs.f_type != OVERLAYFS_SUPER_MAGIC) {
			pr_err("dump pid %d %s: %s is deleted under this name but linked under another, and "
			       "its filesystem gives no file handle: %s", pid, what, link, strerror(-err));
			return err;
		}
		int found = fhandle_search_inode(pid, st.st_dev, st.st_ino, other, sizeof(other));
		if (found == -ENOMEM)
			return found;
		if (found >= 0) {
			close(found);
			if (!(g->linked_path = xstrdup(other)))
				return -ENOMEM;
			pr_debug("dump pid %d %s: %s is still %s (no file handle: found by inode number)", pid,
				 what, link, other);
			return g->id;
		}
		pr_info("dump pid %d %s: %s is deleted under this name but linked under another that "
			"overlayfs gives no handle to reach and no search finds (%s: a file of an image's "
			"layer removed in the container, which a whiteout hides): kept as a removed file",
			pid, what, link, strerror(-err));
	}
	if (!err) {
		g->has_handle = g->has_handle_type = true;
		return g->id;
	}
	g->has_tmpfile = g->tmpfile = type == S_IFREG && is_tmpfile(g->path, &st);
	return (err = copy_body(ctx, fd, &st, g, pid, what)) ? err : (int)g->id;
}

int ghost_file_copy(const struct run_ctx *ctx, int fd, const char *path, pid_t pid, const char *what,
		    GhostFile *g)
{
	struct stat st;

	ghost_file__init(g);
	if (fstat(fd, &st)) {
		pr_perror("dump pid %d %s: cannot read %s", pid, what, path);
		return -errno;
	}
	if (!(g->path = xstrdup(path)))
		return -ENOMEM;
	note_attributes(g, &st);
	return copy_body(ctx, fd, &st, g, pid, what);
}

static int write_ghosts(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct ghost_state *gd = state_of(ctx);
	GhostTable tab = GHOST_TABLE__INIT;

	(void)tr;
	tab.n_ghosts = gd->n;
	tab.ghosts = gd->ghosts;
	return gd->n ? image_write(ctx->images_dir_fd, IMG_GHOSTS, 0, &tab.base) : 0;
}

/* ---- restore ---- */

/* What the restore made and touched, undone or put back at the end of prepare. */
struct ghost_work {
	struct made_name *names;
	size_t nr_names;
	struct touched_dir *dirs;
	size_t nr_dirs;
};

static mode_t ghost_type(const GhostFile *g)
{
	return g->has_type ? g->type : S_IFREG;
}

static int note_name(struct ghost_work *w, int dir, const char *name, bool is_dir)
{
	struct made_name *more = xreallocarray(w->names, w->nr_names + 1, sizeof(*w->names));
	if (!more)
		return -ENOMEM;
	w->names = more;
	more[w->nr_names].dir = fcntl(dir, F_DUPFD_CLOEXEC, 0);
	snprintf(more[w->nr_names].name, GHOST_NAME_MAX, "%s", name);
	more[w->nr_names++].is_dir = is_dir;
	return 0;
}

/* dir was there before: its times are saved once, before the first name is made in it. */
static int note_dir(struct ghost_work *w, int dir)
{
	struct stat st;

	if (fstat(dir, &st))
		return 0;
	for (size_t i = 0; i < w->nr_dirs; i++) {
		struct stat o;
		if (!fstat(w->dirs[i].fd, &o) && o.st_dev == st.st_dev && o.st_ino == st.st_ino)
			return 0;
	}
	struct touched_dir *more = xreallocarray(w->dirs, w->nr_dirs + 1, sizeof(*w->dirs));
	if (!more)
		return -ENOMEM;
	w->dirs = more;
	more[w->nr_dirs].fd = fcntl(dir, F_DUPFD_CLOEXEC, 0);
	more[w->nr_dirs].times[0] = st.st_atim;
	more[w->nr_dirs++].times[1] = st.st_mtim;
	return 0;
}

static void set_times_of_fd(int fd, const struct timespec times[2])
{
	char self[64];

	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	utimensat(AT_FDCWD, self, times, 0);
}

/* The ghost already made for the directory at path (removed too), or NULL. */
static const struct ghost_made *ghost_dir_at(const struct ghost_state *st, const char *path,
					     size_t len)
{
	for (size_t i = 0; i < st->rst->n_ghosts; i++) {
		const GhostFile *g = st->rst->ghosts[i];
		if (st->made[i].fd >= 0 && ghost_type(g) == S_IFDIR && strlen(g->path) == len &&
		    !strncmp(g->path, path, len))
			return &st->made[i];
	}
	return NULL;
}

/*
 * The directory path[0, len) as an O_PATH fd: a removed directory made again (its ghost), or
 * the one there, or one made for the moment (with its missing parents) if there is none.
 */
static int open_dir(const struct run_ctx *ctx, const struct ghost_state *st, struct ghost_work *w,
		    const char *path, size_t len, bool *existed)
{
	const struct ghost_made *gm = ghost_dir_at(st, path, len);
	char sub[4200];
	int err;

	*existed = false;
	if (gm) {
		int fd = fcntl(gm->fd, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? -errno : fd;
	}
	if (len >= sizeof(sub))
		return -ENAMETOOLONG;
	snprintf(sub, sizeof(sub), "%.*s", (int)(len ? len : 1), len ? path : "/");
	int fd = tree_open(ctx, sub, O_PATH | O_DIRECTORY, 0);
	if (fd != -ENOENT || len <= 1) {
		*existed = fd >= 0;
		return fd;
	}
	/* gone: its parent (maybe made here too), then it, for the moment */
	const char *slash = memrchr(path, '/', len);
	bool parent_existed;
	int parent = open_dir(ctx, st, w, path, slash - path, &parent_existed);
	if (parent < 0)
		return parent;
	snprintf(sub, sizeof(sub), "%.*s", (int)(len - (slash + 1 - path)), slash + 1);
	if (parent_existed && (err = note_dir(w, parent))) {
		close(parent);
		return err;
	}
	if ((mkdirat(parent, sub, 0700) && errno != EEXIST) ||
	    (fd = openat(parent, sub, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		err = -errno;
		close(parent);
		return err;
	}
	err = note_name(w, parent, sub, true);
	close(parent);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* Makes the inode of g under name in dir; 0, -EEXIST (name taken) or another error. */
static int make_at(int dir, const char *name, const GhostFile *g, int linked_fd, int *fd)
{
	mode_t type = ghost_type(g);

	*fd = -1;
	if (linked_fd >= 0) {
		if (linkat(linked_fd, "", dir, name, AT_EMPTY_PATH))
			return -errno;
	} else if (type == S_IFREG) {
		*fd = openat(dir, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, g->mode & 0777);
		return *fd < 0 ? -errno : 0;
	} else if (type == S_IFDIR) {
		if (mkdirat(dir, name, 0700))
			return -errno;
	} else if (type == S_IFLNK) {
		char target[PATH_MAX];
		snprintf(target, sizeof(target), "%.*s", (int)g->link_target.len, (const char *)g->link_target.data);
		if (symlinkat(target, dir, name))
			return -errno;
	} else if (mknodat(dir, name, type | 0600, g->has_rdev ? g->rdev : 0)) {
		return -errno;
	}
	*fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

/* A symbolic link made again at fd (in dir): its handle and a mount fd, for ghost_open. */
static int keep_link_handle(struct ghost_made *m, int dir, int fd)
{
	char self[64];
	int err;

	m->is_link = true;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", dir);
	if ((m->mount_fd = open(self, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	if (!(err = fhandle_of_fd(fd, &m->handle, &m->handle_type)))
		m->has_handle = true;
	else if (err == -ENOMEM)
		return err;
	else
		pr_debug("restore: a deleted symbolic link has no file handle (%s): its fd is shared",
			 strerror(-err));
	return 0;
}

/*
 * g made again at its old name (or beside it if the name is taken): an fd on it (O_RDWR for a
 * new regular file, else O_PATH); the name is noted for removal. linked_fd: link that inode.
 * m: what ghost_open needs of a symbolic link is kept there.
 */
static int make_ghost(const struct run_ctx *ctx, const struct ghost_state *st, struct ghost_work *w,
		      const GhostFile *g, int linked_fd, struct ghost_made *m)
{
	const char *slash = strrchr(g->path, '/');
	char name[GHOST_NAME_MAX];
	bool existed;
	int fd = -1, err = -EEXIST;
	auto_close int dir = open_dir(ctx, st, w, g->path, slash - g->path, &existed);

	if (dir < 0) {
		pr_err("restore: cannot recreate deleted file %s: its directory: %s", g->path, strerror(-dir));
		return dir;
	}
	int noted = existed ? note_dir(w, dir) : 0;
	if (noted)
		return noted;
	if (g->tmpfile && linked_fd < 0) {
		fd = openat(dir, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, g->mode & 0777);
		if (fd < 0)
			pr_perror("restore: cannot recreate deleted file %s (O_TMPFILE)", g->path);
		return fd < 0 ? -errno : fd;
	}
	for (int attempt = 0; attempt < 100 && err == -EEXIST; attempt++) {
		if (attempt)
			snprintf(name, sizeof(name), "%.200s.stasis-ghost-%d-%d", slash + 1, getpid(), attempt);
		else
			snprintf(name, sizeof(name), "%s", slash + 1);
		err = make_at(dir, name, g, linked_fd, &fd);
	}
	if (!err && ((ghost_type(g) == S_IFLNK && (err = keep_link_handle(m, dir, fd))) ||
		     (err = note_name(w, dir, name, ghost_type(g) == S_IFDIR)))) {
		close(fd);
		unlinkat(dir, name, ghost_type(g) == S_IFDIR ? AT_REMOVEDIR : 0);
	}
	if (err)
		pr_err("restore: cannot recreate deleted file %s: %s", g->path, strerror(-err));
	return err ? err : fd;
}

/* Still linked under another name: reached by its handle, or (no handles) by that name. */
static bool still_linked(const GhostFile *g)
{
	return g->has_handle || g->linked_path;
}

/*
 * The inode still linked under another name, checked to be the one saved, is linked again at
 * its old name for a moment: the fd then names it "/path (deleted)" as before. (It is opened
 * through the mount of that directory, the tree's: a link cannot cross mounts. By its other
 * name, only its inode number is checked: an overlayfs mounted again has another device.)
 */
static int reopen_linked(const struct run_ctx *ctx, const struct ghost_state *st, struct ghost_work *w,
			 const GhostFile *g, struct ghost_made *m)
{
	const char *slash = strrchr(g->path, '/');
	struct stat s;
	bool existed;
	auto_close int at = open_dir(ctx, st, w, g->path, slash - g->path, &existed);
	/* (a mount fd for handles: not O_PATH) */
	auto_close int dir = at < 0 ? at : openat(at, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dir < 0) {
		int err = at < 0 ? at : -errno;
		pr_err("restore: cannot recreate deleted file %s: its directory: %s", g->path, strerror(-err));
		return err;
	}
	auto_close int inode = g->linked_path ? tree_open(ctx, g->linked_path, O_PATH | O_NOFOLLOW, 0)
					      : fhandle_open_at(dir, g->handle.data, g->handle.len, g->handle_type, O_PATH);

	if (inode == -ENOMEM)
		return inode;
	if (inode < 0 || fstat(inode, &s) || (!g->linked_path && s.st_dev != g->dev) || s.st_ino != g->ino ||
	    !s.st_nlink) {
		pr_err("restore: file %s (deleted under that name, linked under another%s%s: dev %#llx inode "
		       "%llu) is gone", g->path, g->linked_path ? ", " : "", g->linked_path ? g->linked_path : "",
		       (unsigned long long)g->dev, (unsigned long long)g->ino);
		return -ENOENT;
	}
	return make_ghost(ctx, st, w, g, inode, m);
}

/* Content (its data stretches at their offsets, holes left as holes); a read-only fd back. */
static int fill(int fd, const GhostFile *g)
{
	char self[64];
	int ro;

	if (!g->has_size) { /* (its data whole) */
		if (write_all(fd, g->data.data, g->data.len))
			return -errno;
	} else { /* its size, then its data stretches (none: all a hole, or space allocated only) */
		if (ftruncate(fd, g->size))
			return -errno;
		for (size_t i = 0, at = 0; i < g->n_extents; at += g->extents[i++]->len)
			if (pwrite(fd, g->data.data + at, g->extents[i]->len, g->extents[i]->offset) !=
			    (ssize_t)g->extents[i]->len)
				return -EIO;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	ro = open(self, O_RDONLY | O_CLOEXEC);
	return ro < 0 ? -errno : ro;
}

static int recreate(const struct run_ctx *ctx, const struct ghost_state *st, struct ghost_work *w,
		    const GhostFile *g, struct ghost_made *m)
{
	int fd = make_ghost(ctx, st, w, g, -1, m);

	if (fd < 0 || ghost_type(g) != S_IFREG)
		return fd;
	int ro = fill(fd, g);
	close(fd);
	if (ro < 0) {
		errno = -ro;
		pr_perror("restore: cannot refill deleted file %s", g->path);
	}
	return ro;
}

/* A new ghost's owner, then its mode (a change of owner clears setuid and setgid), then times. */
static int set_attributes(int fd, const GhostFile *g)
{
	char self[64];
	struct timespec times[2] = {
		{ g->atime_ns / 1000000000, g->atime_ns % 1000000000 },
		{ g->mtime_ns / 1000000000, g->mtime_ns % 1000000000 },
	};

	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (ghost_type(g) == S_IFLNK) { /* the link itself: no mode of its own (always 0777) */
		if (g->has_uid && fchownat(fd, "", g->uid, g->has_gid ? g->gid : (gid_t)-1,
					   AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) {
			pr_perror("restore: cannot give deleted symbolic link %s its owner", g->path);
			return -errno;
		}
	} else if ((g->has_uid && chown(self, g->uid, g->has_gid ? g->gid : (gid_t)-1)) || chmod(self, g->mode)) {
		pr_perror("restore: cannot give deleted file %s its owner and mode", g->path);
		return -errno;
	}
	if (g->has_atime_ns && g->has_mtime_ns)
		utimensat(AT_FDCWD, self, times, 0);
	return 0;
}

static bool fd_has_ghost(const FdEntry *e)
{
	for (size_t i = 0; i < e->n_watches; i++)
		if (e->watches[i]->has_ghost_id)
			return true;
	return e->has_ghost_id;
}

/* Whether every ghost e refers to (its own, its inotify watches') is below n. */
static bool fd_ghosts_below(const FdEntry *e, size_t n)
{
	for (size_t i = 0; i < e->n_watches; i++)
		if (e->watches[i]->has_ghost_id && e->watches[i]->ghost_id >= n)
			return false;
	return !e->has_ghost_id || e->ghost_id < n;
}

static bool valid_ghost(const GhostFile *g, size_t i)
{
	mode_t type = ghost_type(g);
	uint64_t total = 0, end = 0;

	if (g->id != i || !image_path_ok(g->path) || g->has_handle != g->has_handle_type ||
	    (g->has_handle && g->data.len) || !kept_type(type) || (g->mode & ~07777u) ||
	    (g->linked_path && (g->has_handle || g->data.len || g->n_extents || g->has_size || g->tmpfile ||
				g->has_link_target || !image_path_ok(g->linked_path))) ||
	    (type != S_IFREG && (g->data.len || g->n_extents || g->tmpfile)) ||
	    (type == S_IFLNK && !still_linked(g) &&
	     (!g->has_link_target || !g->link_target.len || g->link_target.len >= PATH_MAX ||
	      memchr(g->link_target.data, 0, g->link_target.len))) ||
	    (g->has_link_target && (type != S_IFLNK || g->has_handle)) ||
	    (g->has_rdev != (type == S_IFCHR || type == S_IFBLK)) || (g->tmpfile && g->has_handle) ||
	    strlen(strrchr(g->path, '/') + 1) >= GHOST_NAME_MAX)
		return false;
	for (size_t k = 0; k < g->n_extents; k++) {
		const GhostExtent *x = g->extents[k];
		if (x->offset < end || x->len > g->size || x->offset > g->size - x->len)
			return false;
		end = x->offset + x->len;
		total += x->len;
	}
	return g->has_size ? total == g->data.len : !g->n_extents;
}

bool ghost_file_valid(const GhostFile *g)
{
	return !g->has_handle && !g->linked_path && !g->tmpfile && valid_ghost(g, g->id);
}

int ghost_file_attrs(int fd, const GhostFile *g)
{
	return set_attributes(fd, g);
}

int ghost_file_make(int dir, const char *name, const GhostFile *g)
{
	int fd, ro, err = make_at(dir, name, g, -1, &fd);

	if (err)
		return err;
	if (ghost_type(g) == S_IFREG) {
		ro = fill(fd, g);
		close(fd);
		if (ro < 0)
			return ro;
		fd = ro;
	}
	err = set_attributes(fd, g);
	close(fd);
	return err;
}

/* ghosts.img, if some fd, mapping or cwd of the tree is a deleted file, checked with every use. */
static int validate_ghosts(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct ghost_state *st = state_of(ctx);
	bool needed = false;
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++)
			needed |= fd_has_ghost(rt->tasks[i].fds->fds[k]);
		for (size_t k = 0; k < rt->tasks[i].mm->n_files; k++)
			needed |= rt->tasks[i].mm->files[k]->has_ghost_id;
		needed |= rt->tasks[i].core->has_cwd_ghost_id;
	}
	if (!needed)
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_GHOSTS, 0, (ProtobufCMessage **)&st->rst)))
		return err;
	for (size_t i = 0; i < st->rst->n_ghosts; i++) {
		if (!valid_ghost(st->rst->ghosts[i], i)) {
			pr_err("image ghosts.img: entry %zu is invalid", i);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const struct restore_task *t = &rt->tasks[i];
		for (size_t k = 0; k < t->fds->n_fds; k++)
			if (!fd_ghosts_below(t->fds->fds[k], st->rst->n_ghosts)) {
				pr_err("image fds-%d.img: fd %u refers to a deleted file which ghosts.img "
				       "does not hold", t->pid, t->fds->fds[k]->fd);
				return -EINVAL;
			}
		for (size_t k = 0; k < t->mm->n_files; k++) {
			const MappedFile *f = t->mm->files[k];
			if (f->has_ghost_id && (f->ghost_id >= st->rst->n_ghosts ||
						ghost_type(st->rst->ghosts[f->ghost_id]) != S_IFREG)) {
				pr_err("image mm-%d.img: mapped file %zu refers to deleted file %u, which "
				       "ghosts.img does not hold as a regular file", t->pid, k, f->ghost_id);
				return -EINVAL;
			}
		}
		if (t->core->has_cwd_ghost_id && (t->core->cwd_ghost_id >= st->rst->n_ghosts ||
						  ghost_type(st->rst->ghosts[t->core->cwd_ghost_id]) != S_IFDIR)) {
			pr_err("image core-%d.img: its cwd refers to deleted directory %u, which ghosts.img "
			       "does not hold", t->pid, t->core->cwd_ghost_id);
			return -EINVAL;
		}
	}
	return 0;
}

static size_t depth(const char *path)
{
	size_t n = 0;
	for (; *path; path++)
		n += *path == '/';
	return n;
}

/* Every name made goes, children first; the directories touched get their times back. */
static void finish_work(struct ghost_state *st, struct ghost_work *w)
{
	for (size_t i = w->nr_names; i-- > 0;) {
		unlinkat(w->names[i].dir, w->names[i].name, w->names[i].is_dir ? AT_REMOVEDIR : 0);
		close(w->names[i].dir);
	}
	for (size_t i = 0; i < w->nr_dirs; i++) {
		set_times_of_fd(w->dirs[i].fd, w->dirs[i].times);
		close(w->dirs[i].fd);
	}
	/* a removed directory's own times changed with what was made in it */
	for (size_t i = 0; i < st->nr_made; i++) {
		const GhostFile *g = st->rst->ghosts[i];
		struct timespec times[2] = {
			{ g->atime_ns / 1000000000, g->atime_ns % 1000000000 },
			{ g->mtime_ns / 1000000000, g->mtime_ns % 1000000000 },
		};
		if (st->made[i].fd >= 0 && st->made[i].made && ghost_type(g) == S_IFDIR && g->has_atime_ns)
			set_times_of_fd(st->made[i].fd, times);
	}
	free(w->names);
	free(w->dirs);
}

static int prepare_ghosts(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct ghost_state *st = state_of(ctx);
	struct ghost_work w = { 0 };
	size_t n;
	int err = 0;

	(void)rt;
	if (!st->rst)
		return 0;
	n = st->rst->n_ghosts;
	st->made = xzalloc((n + 1) * sizeof(*st->made));
	auto_free size_t *order = xzalloc((n + 1) * sizeof(*order));
	if (!st->made || !order)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		st->made[i].fd = st->made[i].mount_fd = -1;
		order[i] = i;
	}
	st->nr_made = n;
	/* parents first: a removed directory is made before what was removed inside it */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && depth(st->rst->ghosts[order[j]]->path) <
						   depth(st->rst->ghosts[order[j - 1]]->path); j--) {
			size_t tmp = order[j];
			order[j] = order[j - 1];
			order[j - 1] = tmp;
		}
	for (size_t k = 0; k < n && !err; k++) {
		const GhostFile *g = st->rst->ghosts[order[k]];
		struct ghost_made *m = &st->made[order[k]];
		int fd = still_linked(g) ? reopen_linked(ctx, st, &w, g, m) : recreate(ctx, st, &w, g, m);
		if (fd < 0) {
			err = fd;
			break;
		}
		m->fd = fd;
		m->made = !still_linked(g);
		if (m->made && (err = set_attributes(fd, g)))
			break;
	}
	finish_work(st, &w);
	return err;
}

/* A new open file of ghost id, with open(2) flags. */
int ghost_open(const struct run_ctx *ctx, uint32_t id, int flags)
{
	const struct ghost_state *st = state_of(ctx);
	char path[64];

	if (id >= st->nr_made || st->made[id].fd < 0)
		return -ENOENT;
	const struct ghost_made *m = &st->made[id];
	if (m->is_link && (flags & O_NOFOLLOW)) { /* the link itself, with that flag */
		int fd = m->has_handle ? fhandle_open_at(m->mount_fd, m->handle.data, m->handle.len,
							 m->handle_type, flags)
				       : -EPERM;
		if (fd != -EPERM) /* (EPERM: no CAP_DAC_READ_SEARCH here, in a user namespace) */
			return fd;
		fd = fcntl(m->fd, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? -errno : fd;
	}
	if (flags & O_NOFOLLOW) {
		/* (opened O_NOFOLLOW: through /proc/self/fd that is ELOOP; by the handle of the file
		 * made, the flag is kept; with no handle, the file is opened without it) */
		ProtobufCBinaryData handle = { 0 };
		int32_t type;
		int fd = fhandle_of_fd(m->fd, &handle, &type);
		if (!fd)
			fd = fhandle_open_at(m->fd, handle.data, handle.len, type, flags);
		free(handle.data);
		if (fd >= 0)
			return fd;
		flags &= ~O_NOFOLLOW;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", m->fd);
	int fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void close_ghosts(struct run_ctx *ctx)
{
	struct ghost_state *st = state_of(ctx);

	for (size_t i = 0; i < st->nr_made; i++) {
		if (st->made[i].fd >= 0)
			close(st->made[i].fd);
		if (st->made[i].mount_fd >= 0)
			close(st->made[i].mount_fd);
		free(st->made[i].handle.data);
		st->made[i].handle.data = NULL;
	}
	st->nr_made = 0;
}

static void undo_ghosts(struct run_ctx *ctx, bool restored)
{
	(void)restored; /* every ghost's name is removed as soon as all are made: only fds are left */
	close_ghosts(ctx);
}

static void free_ghosts(void *state)
{
	struct ghost_state *st = state;

	if (st->rst)
		image_free(&st->rst->base);
	free(st->made);
	for (size_t i = 0; i < st->n; i++)
		ghost_file__free_unpacked(st->ghosts[i], NULL);
	free(st->ghosts);
}

const struct tree_object_ops tree_ghosts = {
	.name = "deleted files",
	.state_size = sizeof(struct ghost_state),
	.free_state = free_ghosts,
	.write = write_ghosts,
	.validate = validate_ghosts,
	.prepare = prepare_ghosts,
	.close = close_ghosts,
	.undo = undo_ghosts,
};
