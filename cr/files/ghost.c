/*
 * Ghost files: regular files still open or mapped after they were deleted. Their content is
 * saved (ghosts.img, up to GHOST_MAX bytes each). On restore stasis recreates each one at its
 * old path (or beside it if the name is taken), fills it, keeps an fd and unlinks it at once;
 * every fd and mapping then reopens it through /proc/self/fd, so it is again open, deleted,
 * and named "/path (deleted)".
 * A file deleted under the name the process used but still linked under another is the same
 * inode again: it is saved as a file handle, reopened with open_by_handle_at (same dev and inode
 * checked) and linked at its old name for a moment, so that it is "/path (deleted)" again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "tree-path.h"
#include "pstree.h"
#include "tree-objects.h"
#include "util.h"

#define GHOST_LIMIT_DEFAULT (64u << 20)
#define DELETED_SUFFIX " (deleted)"

/* The run's deleted files: noted by the dump, or recreated by the restore. */
struct ghost_state {
	GhostFile **ghosts; /* dump: every ghost noted */
	size_t n;
	GhostTable *rst;  /* restore: ghosts.img, checked */
	int *fds;         /* restore: stasis' own fd on each recreated ghost, inherited by the tree */
	size_t nr_fds;
};

static struct ghost_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_ghosts);
}

static uint64_t ghost_limit(const struct run_ctx *ctx)
{
	return ctx->opts->ghost_limit ? ctx->opts->ghost_limit : GHOST_LIMIT_DEFAULT;
}

bool ghost_path(const char *link)
{
	size_t n = strlen(link), d = strlen(DELETED_SUFFIX);
	return link[0] == '/' && n > d && !strcmp(link + n - d, DELETED_SUFFIX);
}

/* The ghost id of the deleted file behind read_path (a /proc path), saving it on first sight. */
int ghost_note(struct run_ctx *ctx, const char *read_path, const char *link, pid_t pid)
{
	struct ghost_state *gd = state_of(ctx);
	struct stat st;
	auto_close int fd = open(read_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st)) {
		pr_perror("dump pid %d: cannot open deleted file %s", pid, link);
		return -errno;
	}
	for (size_t i = 0; i < gd->n; i++)
		if (gd->ghosts[i]->dev == st.st_dev && gd->ghosts[i]->ino == st.st_ino)
			return gd->ghosts[i]->id;
	if (!S_ISREG(st.st_mode)) {
		pr_err("dump pid %d: %s is a deleted file that is not a regular file (not supported yet)",
		       pid, link);
		return -ENOTSUP;
	}
	if (!st.st_nlink && (uint64_t)st.st_size > ghost_limit(ctx)) {
		pr_err("dump pid %d: deleted file %s holds %lld bytes, more than the ghost limit of %llu "
		       "(raise it with --ghost-limit)",
		       pid, link, (long long)st.st_size, (unsigned long long)ghost_limit(ctx));
		return -EFBIG;
	}
	GhostFile *g = xzalloc(sizeof(*g));
	ghost_file__init(g);
	g->id = gd->n;
	g->path = xstrdup(link);
	g->path[strlen(g->path) - strlen(DELETED_SUFFIX)] = 0;
	g->mode = st.st_mode & 07777;
	g->has_uid = g->has_gid = true;
	g->uid = st.st_uid;
	g->gid = st.st_gid;
	g->dev = st.st_dev;
	g->ino = st.st_ino;
	if (st.st_nlink) {
		int err = fhandle_of_fd(fd, &g->handle, &g->handle_type);
		if (err) {
			pr_err("dump pid %d: %s is deleted under this name but linked under another, and its "
			       "filesystem gives no file handle: %s", pid, link, strerror(-err));
			return err;
		}
		g->has_handle = g->has_handle_type = true;
	} else
		g->data.data = xzalloc(st.st_size + 1);
	g->data.len = st.st_nlink ? 0 : st.st_size;
	if (!st.st_nlink && pread(fd, g->data.data, st.st_size, 0) != st.st_size) {
		pr_perror("dump pid %d: cannot read deleted file %s", pid, link);
		return -EIO;
	}
	GhostFile **more = realloc(gd->ghosts, (gd->n + 1) * sizeof(*gd->ghosts));
	if (!more)
		return -ENOMEM;
	gd->ghosts = more;
	gd->ghosts[gd->n++] = g;
	return g->id;
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

/* The directory of the ghost's old path, as the tree sees it (inside --root for a container). */
static int parent_dir(const struct run_ctx *ctx, const GhostFile *g)
{
	const char *slash = strrchr(g->path, '/');
	char parent[4200];
	int dir;

	snprintf(parent, sizeof(parent), "%.*s", slash == g->path ? 1 : (int)(slash - g->path), g->path);
	if ((dir = tree_open(ctx, parent, O_RDONLY | O_DIRECTORY, 0)) < 0) /* (a mount fd for handles) */
		pr_err("restore: cannot recreate deleted file %s: its directory: %s", g->path, strerror(-dir));
	return dir;
}

/*
 * A new name in dir for the ghost at its old path (or beside it if the name is taken), opened:
 * a new file with linked_fd < 0, else a link to the inode open at linked_fd (on dir's mount).
 * The caller unlinks it.
 */
static int at_free_name(const GhostFile *g, int dir, int linked_fd, char *name, size_t len)
{
	const char *base = strrchr(g->path, '/') + 1;
	int fd = -1;

	for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
		if (attempt)
			snprintf(name, len, "%s.stasis-ghost-%d-%d", base, getpid(), attempt);
		else
			snprintf(name, len, "%s", base);
		if (linked_fd < 0)
			fd = openat(dir, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, g->mode);
		else if (!linkat(linked_fd, "", dir, name, AT_EMPTY_PATH))
			fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		pr_perror("restore: cannot recreate deleted file %s", g->path);
		return -errno;
	}
	return fd;
}

/*
 * The inode still linked under another name, checked to be the one saved, is linked again at
 * its old name for a moment: the fd then names it "/path (deleted)" as before. (It is opened
 * through the mount of that directory, the tree's: a link cannot cross mounts.)
 */
static int reopen_linked(const struct run_ctx *ctx, const GhostFile *g)
{
	struct stat st;
	char name[4200];
	auto_close int dir = parent_dir(ctx, g);
	if (dir < 0)
		return dir;
	auto_close int inode = fhandle_open_at(dir, g->handle.data, g->handle.len, g->handle_type, O_PATH);

	if (inode < 0 || fstat(inode, &st) || st.st_dev != g->dev || st.st_ino != g->ino || !st.st_nlink) {
		pr_err("restore: file %s (deleted under that name, linked under another: dev %#llx inode "
		       "%llu) is gone", g->path, (unsigned long long)g->dev, (unsigned long long)g->ino);
		return -ENOENT;
	}
	int fd = at_free_name(g, dir, inode, name, sizeof(name));
	if (fd >= 0)
		unlinkat(dir, name, 0);
	return fd;
}

static int recreate(const struct run_ctx *ctx, const GhostFile *g)
{
	char name[4200], self[64];
	auto_close int dir = parent_dir(ctx, g);
	if (dir < 0)
		return dir;
	int fd = at_free_name(g, dir, -1, name, sizeof(name));
	if (fd < 0)
		return fd;
	int err = write_all(fd, g->data.data, g->data.len) ? -errno : 0;
	/* its owner, then its mode again (a change of owner clears setuid and setgid bits) */
	if (!err && g->has_uid && (fchown(fd, g->uid, g->has_gid ? g->gid : (gid_t)-1) || fchmod(fd, g->mode)))
		err = -errno;
	int ro = -1;
	if (!err) { /* stasis keeps a read-only fd: a deleted executable must have no writer */
		snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
		if ((ro = open(self, O_RDONLY | O_CLOEXEC)) < 0)
			err = -errno;
	}
	unlinkat(dir, name, 0);
	close(fd);
	if (err)
		pr_perror("restore: cannot refill deleted file %s", g->path);
	return err ? err : ro;
}

static bool fd_has_ghost(const FdEntry *e)
{
	return e->has_ghost_id;
}

/* ghosts.img, if some fd or mapping of the tree is a deleted file, checked with every use. */
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
	}
	if (!needed)
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_GHOSTS, 0, (ProtobufCMessage **)&st->rst)))
		return err;
	for (size_t i = 0; i < st->rst->n_ghosts; i++) {
		const GhostFile *g = st->rst->ghosts[i];
		if (g->id != i || !g->path || g->path[0] != '/' || g->has_handle != g->has_handle_type ||
		    (g->has_handle && g->data.len)) {
			pr_err("image ghosts.img: entry %zu is invalid", i);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const struct restore_task *t = &rt->tasks[i];
		for (size_t k = 0; k < t->fds->n_fds; k++)
			if (fd_has_ghost(t->fds->fds[k]) && t->fds->fds[k]->ghost_id >= st->rst->n_ghosts) {
				pr_err("image fds-%d.img: fd %u refers to deleted file %u, which ghosts.img "
				       "does not hold", t->pid, t->fds->fds[k]->fd, t->fds->fds[k]->ghost_id);
				return -EINVAL;
			}
		for (size_t k = 0; k < t->mm->n_files; k++)
			if (t->mm->files[k]->has_ghost_id && t->mm->files[k]->ghost_id >= st->rst->n_ghosts) {
				pr_err("image mm-%d.img: mapped file %zu refers to deleted file %u, which "
				       "ghosts.img does not hold", t->pid, k, t->mm->files[k]->ghost_id);
				return -EINVAL;
			}
	}
	return 0;
}

static int prepare_ghosts(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct ghost_state *st = state_of(ctx);

	(void)rt;
	if (!st->rst)
		return 0;
	st->fds = calloc(st->rst->n_ghosts + 1, sizeof(int));
	if (!st->fds)
		return -ENOMEM;
	for (size_t i = 0; i < st->rst->n_ghosts; i++) {
		const GhostFile *g = st->rst->ghosts[i];
		int fd = g->has_handle ? reopen_linked(ctx, g) : recreate(ctx, g);
		if (fd < 0)
			return fd;
		st->fds[st->nr_fds++] = fd;
	}
	return 0;
}

/* A new open file of ghost id, with open(2) flags. */
int ghost_open(const struct run_ctx *ctx, uint32_t id, int flags)
{
	const struct ghost_state *st = state_of(ctx);
	char path[64];

	if (id >= st->nr_fds)
		return -ENOENT;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", st->fds[id]);
	int fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void close_ghosts(struct run_ctx *ctx)
{
	struct ghost_state *st = state_of(ctx);

	for (size_t i = 0; i < st->nr_fds; i++)
		close(st->fds[i]);
	st->nr_fds = 0;
}

static void undo_ghosts(struct run_ctx *ctx, bool restored)
{
	(void)restored; /* every ghost is unlinked as soon as it is made: only fds are left */
	close_ghosts(ctx);
}

static void free_ghosts(void *state)
{
	struct ghost_state *st = state;

	if (st->rst)
		image_free(&st->rst->base);
	free(st->fds);
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

