/*
 * The tree's open files at dump, each once (struct open_files, cr/task.h). kcmp(KCMP_FILE)
 * orders any two open files of the frozen tree (0 the same, 1 the first is lower, 2 higher)
 * the same way every time it is asked, so the open files of one inode are kept sorted in
 * that order and an fd's is found by a binary search: a tree of 235 processes holding 700
 * fds each, 175 of them eventfds (one anonymous inode), asks kcmp 8 times per eventfd, not
 * once per eventfd already seen in each process before it.
 */
#include <errno.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "util.h"

static size_t group_slot(const struct open_files *x, uint64_t dev, uint64_t ino)
{
	uint64_t h = (ino ^ (dev << 40) ^ (dev >> 24)) * 0x9e3779b97f4a7c15ull;

	return (h >> 20) & x->mask;
}

static bool slot_free(const struct open_file_group *g)
{
	return !g->files;
}

/* The group of (dev, ino): the one in the table, a free slot for it, or NULL (no table). */
static struct open_file_group *group_find(const struct open_files *x, uint64_t dev, uint64_t ino)
{
	if (!x->groups)
		return NULL;
	for (size_t s = group_slot(x, dev, ino);; s = (s + 1) & x->mask) {
		struct open_file_group *g = &x->groups[s];
		if (slot_free(g) || (g->dev == dev && g->ino == ino))
			return g;
	}
}

/* Room for one more group: the table at most half full. */
static int groups_reserve(struct open_files *x)
{
	size_t slots = x->groups ? x->mask + 1 : 0;

	if (2 * (x->used + 1) <= slots)
		return 0;
	size_t more = slots ? 2 * slots : 256;
	struct open_files bigger = { xzalloc(more * sizeof(*bigger.groups)), more - 1, x->used };
	if (!bigger.groups)
		return -ENOMEM;
	for (size_t s = 0; s < slots; s++)
		if (!slot_free(&x->groups[s]))
			*group_find(&bigger, x->groups[s].dev, x->groups[s].ino) = x->groups[s];
	free(x->groups);
	*x = bigger;
	return 0;
}

/*
 * Binary search of g for the open file of fd of pid: 0 and *at its index, 1 and *at where it
 * goes (not there), or <0 (kcmp failed: a holder or pid gone, or no ptrace access).
 */
static int group_search(const struct open_file_group *g, pid_t pid, int fd, size_t *at)
{
	size_t lo = 0, hi = g->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct open_file *f = &g->files[mid];
		long r = syscall(SYS_kcmp, f->pid, pid, KCMP_FILE, f->fd, fd);
		if (r == 0) {
			*at = mid;
			return 0;
		}
		if (r == 1)
			lo = mid + 1; /* f's file is lower than fd's */
		else if (r == 2)
			hi = mid;
		else
			return r < 0 ? -errno : -EINVAL;
	}
	*at = lo;
	return 1;
}

struct open_file *open_files_find(const struct open_files *x, const struct fd_probe *p, pid_t pid)
{
	struct open_file_group *g = group_find(x, p->id_dev, p->id_ino);
	size_t at;

	if (!g || slot_free(g) || group_search(g, pid, p->fd, &at))
		return NULL;
	return &g->files[at];
}

int open_files_see(struct open_files *x, const struct fd_probe *p, const struct open_file *f,
		   struct open_file **where)
{
	struct open_file_group *g;
	size_t at;
	int err;

	if ((err = groups_reserve(x)))
		return err;
	g = group_find(x, p->id_dev, p->id_ino);
	if (!slot_free(g) && (err = group_search(g, f->pid, f->fd, &at)) <= 0) {
		if (err == 0)
			*where = &g->files[at];
		return err < 0 ? err : 1;
	}
	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 4;
		struct open_file *more = xreallocarray(g->files, cap, sizeof(*more));
		if (!more)
			return -ENOMEM;
		if (!g->files) { /* a new group */
			g->dev = p->id_dev;
			g->ino = p->id_ino;
			at = 0;
			x->used++;
		}
		g->files = more;
		g->cap = cap;
	}
	memmove(&g->files[at + 1], &g->files[at], (g->n - at) * sizeof(*g->files));
	g->files[at] = *f;
	g->n++;
	*where = &g->files[at];
	return 0;
}

void open_files_free(struct open_files *x)
{
	for (size_t s = 0; x->groups && s <= x->mask; s++)
		free(x->groups[s].files);
	free(x->groups);
	*x = (struct open_files){ 0 };
}
