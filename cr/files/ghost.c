/*
 * Ghost files: regular files still open or mapped after they were deleted. Their content is
 * saved (ghosts.img, up to GHOST_MAX bytes each). On restore stasis recreates each one at its
 * old path (or beside it if the name is taken), fills it, keeps an fd and unlinks it at once;
 * every fd and mapping then reopens it through /proc/self/fd, so it is again open, deleted,
 * and named "/path (deleted)".
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
	if (!S_ISREG(st.st_mode) || st.st_nlink || st.st_size > GHOST_MAX) {
		pr_err("dump pid %d: %s is %s (not supported yet)", pid, link,
		       st.st_nlink ? "deleted under this name but linked under another"
				   : "a deleted file larger than 64 MiB or not regular");
		return -ENOTSUP;
	}
	GhostFile *g = xzalloc(sizeof(*g));
	ghost_file__init(g);
	g->id = gd->tab.n_ghosts;
	g->path = xstrdup(link);
	g->path[strlen(g->path) - strlen(DELETED_SUFFIX)] = 0;
	g->mode = st.st_mode & 07777;
	g->dev = st.st_dev;
	g->ino = st.st_ino;
	g->data.len = st.st_size;
	g->data.data = xzalloc(st.st_size + 1);
	if (pread(fd, g->data.data, st.st_size, 0) != st.st_size) {
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

static int recreate(const GhostFile *g)
{
	char path[4200];
	int fd = -1;

	for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
		if (attempt)
			snprintf(path, sizeof(path), "%s.stasis-ghost-%d-%d", g->path, getpid(), attempt);
		else
			snprintf(path, sizeof(path), "%s", g->path);
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, g->mode);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		pr_perror("restore: cannot recreate deleted file %s", g->path);
		return -errno;
	}
	int err = write_all(fd, g->data.data, g->data.len) ? -errno : 0;
	unlink(path);
	if (err) {
		pr_perror("restore: cannot refill deleted file %s", g->path);
		close(fd);
		return err;
	}
	return fd;
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
		if ((ghost_fds[i] = recreate(tab->ghosts[i])) < 0)
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
