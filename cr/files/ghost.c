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
#include "util.h"

#define GHOST_MAX (64u << 20)
#define DELETED_SUFFIX " (deleted)"

struct ghost_dump {
	GhostTable tab;
};

struct ghost_dump *ghost_dump_new(void)
{
	struct ghost_dump *gd = xzalloc(sizeof(*gd));
	ghost_table__init(&gd->tab);
	return gd;
}

bool ghost_path(const char *link)
{
	size_t n = strlen(link), d = strlen(DELETED_SUFFIX);
	return link[0] == '/' && n > d && !strcmp(link + n - d, DELETED_SUFFIX);
}

/* The ghost id of the deleted file behind read_path (a /proc path), saving it on first sight. */
int ghost_note(struct ghost_dump *gd, const char *read_path, const char *link, pid_t pid)
{
	struct stat st;
	auto_close int fd = open(read_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st)) {
		pr_perror("dump pid %d: cannot open deleted file %s", pid, link);
		return -errno;
	}
	for (size_t i = 0; i < gd->tab.n_ghosts; i++)
		if (gd->tab.ghosts[i]->dev == st.st_dev && gd->tab.ghosts[i]->ino == st.st_ino)
			return gd->tab.ghosts[i]->id;
	if (!S_ISREG(st.st_mode) || (!st.st_nlink && st.st_size > GHOST_MAX)) {
		pr_err("dump pid %d: %s is a deleted file larger than 64 MiB or not regular (not supported yet)",
		       pid, link);
		return -ENOTSUP;
	}
	GhostFile *g = xzalloc(sizeof(*g));
	ghost_file__init(g);
	g->id = gd->tab.n_ghosts;
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
	gd->tab.ghosts = realloc(gd->tab.ghosts, (gd->tab.n_ghosts + 1) * sizeof(*gd->tab.ghosts));
	if (!gd->tab.ghosts)
		return -ENOMEM;
	gd->tab.ghosts[gd->tab.n_ghosts++] = g;
	return g->id;
}

int ghosts_dump_all(struct ghost_dump *gd, int dirfd)
{
	return gd->tab.n_ghosts ? image_write(dirfd, IMG_GHOSTS, 0, &gd->tab.base) : 0;
}

/* ---- restore ---- */

static int *ghost_fds; /* stasis' own fd on each recreated ghost, inherited by the tree */
static size_t nr_ghosts;

/*
 * A new name for the ghost at its old path (or beside it if the name is taken), opened: a new
 * file with linked_fd < 0, else a link to the inode open at linked_fd. The caller unlinks path.
 */
static int at_free_name(const GhostFile *g, int linked_fd, char *path, size_t len)
{
	int fd = -1;

	for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
		if (attempt)
			snprintf(path, len, "%s.stasis-ghost-%d-%d", g->path, getpid(), attempt);
		else
			snprintf(path, len, "%s", g->path);
		if (linked_fd < 0)
			fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, g->mode);
		else if (!linkat(linked_fd, "", AT_FDCWD, path, AT_EMPTY_PATH))
			fd = open(path, O_PATH | O_CLOEXEC);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0)
		pr_perror("restore: cannot recreate deleted file %s", g->path);
	return fd < 0 ? -errno : fd;
}

/*
 * The inode still linked under another name, checked to be the one saved, is linked again at
 * its old name for a moment: the fd then names it "/path (deleted)" as before.
 */
static int reopen_linked(const GhostFile *g)
{
	struct stat st;
	char path[4200];
	auto_close int inode = fhandle_open(g->dev, g->handle.data, g->handle.len, g->handle_type, O_PATH);

	if (inode < 0 || fstat(inode, &st) || st.st_dev != g->dev || st.st_ino != g->ino || !st.st_nlink) {
		pr_err("restore: file %s (deleted under that name, linked under another: dev %#llx inode "
		       "%llu) is gone", g->path, (unsigned long long)g->dev, (unsigned long long)g->ino);
		return -ENOENT;
	}
	int fd = at_free_name(g, inode, path, sizeof(path));
	if (fd >= 0)
		unlink(path);
	return fd;
}

static int recreate(const GhostFile *g)
{
	char path[4200];
	int fd = at_free_name(g, -1, path, sizeof(path));

	if (fd < 0)
		return fd;
	char self[64];
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
	unlink(path);
	close(fd);
	if (err)
		pr_perror("restore: cannot refill deleted file %s", g->path);
	return err ? err : ro;
}

int ghosts_restore_prepare(int dirfd, bool needed)
{
	GhostTable *tab = NULL;
	int err;

	if (!needed)
		return 0;
	if ((err = image_read(dirfd, IMG_GHOSTS, 0, (ProtobufCMessage **)&tab)))
		return err;
	ghost_fds = xzalloc((tab->n_ghosts + 1) * sizeof(int));
	for (size_t i = 0; i < tab->n_ghosts; i++) {
		if (tab->ghosts[i]->id != i || tab->ghosts[i]->path[0] != '/') {
			pr_err("image ghosts.img: entry %zu is invalid", i);
			return -EINVAL;
		}
		if (tab->ghosts[i]->has_handle != tab->ghosts[i]->has_handle_type ||
		    (tab->ghosts[i]->has_handle && tab->ghosts[i]->data.len)) {
			pr_err("image ghosts.img: entry %zu is invalid", i);
			return -EINVAL;
		}
		ghost_fds[i] = tab->ghosts[i]->has_handle ? reopen_linked(tab->ghosts[i]) : recreate(tab->ghosts[i]);
		if (ghost_fds[i] < 0)
			return ghost_fds[i];
		nr_ghosts++;
	}
	image_free(&tab->base);
	return 0;
}

bool ghost_known(uint32_t id)
{
	return id < nr_ghosts;
}

/* A new open file of ghost id, with open(2) flags. */
int ghost_open(uint32_t id, int flags)
{
	char path[64];

	if (id >= nr_ghosts)
		return -ENOENT;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ghost_fds[id]);
	int fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

void ghosts_close_all(void)
{
	for (size_t i = 0; i < nr_ghosts; i++)
		close(ghost_fds[i]);
	nr_ghosts = 0;
}
