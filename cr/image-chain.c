/*
 * Chains of dumps. Dump with --prev-images-dir: DIR/parent is made a symlink to it (criu's
 * layout: the path as given, relative to DIR), each process's page table there is read when
 * its pages are dumped, and a page unchanged since (cr/dirty-track.c says which) is saved as
 * a reference one link further up than the parent keeps it. --auto-dedup then punches holes
 * in the chain's pages images wherever no page of the new dump points: the older
 * directories are no restore points of their own any more, only the newest is. Restore
 * opens and checks the pages images up the chain that the runs name.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image-chain.h"
#include "log.h"
#include "pstree.h"
#include "tree-objects.h"
#include "util.h"

struct chain_state {
	bool has_parent;
	int parent_fd; /* DIR/parent, while has_parent */
};

static struct chain_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_image_chain);
}

const char *chain_pages_name(char *buf, size_t len, uint32_t depth, uint32_t pid)
{
	size_t n = 0;

	buf[0] = 0;
	for (uint32_t i = 0; i < depth && n + 8 < len; i++)
		n += snprintf(buf + n, len - n, "parent/");
	snprintf(buf + n, len - n, "pages-%u.img", pid);
	return buf;
}

/* The directory depth links up from dirfd (depth >= 1), or -errno. */
static int open_chain_dir(int dirfd, uint32_t depth)
{
	char path[CHAIN_MAX_DEPTH * 7 + 1];
	size_t n = 0;

	for (uint32_t i = 0; i < depth; i++)
		n += snprintf(path + n, sizeof(path) - n, "%sparent", i ? "/" : "");
	int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int chain_pages_open(int dirfd, uint32_t depth, uint32_t pid, uint64_t *nr_pages)
{
	char name[CHAIN_MAX_DEPTH * 7 + 32];
	int dir, fd;

	if (depth == 0 || depth > CHAIN_MAX_DEPTH)
		return -EINVAL;
	if ((dir = open_chain_dir(dirfd, depth)) < 0) {
		pr_err("image %s: the chain of parent directories ends before it: %s",
		       chain_pages_name(name, sizeof(name), depth, pid), strerror(-dir));
		return dir;
	}
	fd = pages_image_open_counted(dir, pid, nr_pages);
	close(dir);
	if (fd < 0)
		pr_err("image %s: cannot be used (above)", chain_pages_name(name, sizeof(name), depth, pid));
	return fd;
}

/* ---- dump ---- */

bool chain_has_parent(const struct run_ctx *ctx)
{
	return state_of(ctx)->has_parent;
}

int chain_make_link(int dirfd, const char *dir_name, const char *prev)
{
	struct stat link_st;

	if (!prev[0]) {
		pr_err("--prev-images-dir: an empty path");
		return -EINVAL;
	}
	if (fstatat(dirfd, "parent", &link_st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!S_ISLNK(link_st.st_mode)) {
			pr_err("images directory %s: 'parent' is there and is no symlink; it would be "
			       "the link to --prev-images-dir %s", dir_name, prev);
			return -EEXIST;
		}
		unlinkat(dirfd, "parent", 0);
	}
	if (symlinkat(prev, dirfd, "parent")) {
		pr_perror("images directory %s: cannot make the link 'parent' -> %s", dir_name, prev);
		return -errno;
	}
	return 0;
}

/* DIR/parent made, and checked to be a dump. */
static int collect_chain(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct chain_state *st = state_of(ctx);
	const char *prev = ctx->opts->prev_images_dir;
	struct stat dir_st, parent_st;
	int fd, err;

	(void)tr;
	if (!prev)
		return 0;
	if ((err = chain_make_link(ctx->images_dir_fd, ctx->opts->images_dir, prev)))
		return err;
	fd = openat(ctx->images_dir_fd, "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("--prev-images-dir %s (relative to the images directory %s)", prev,
			  ctx->opts->images_dir);
		unlinkat(ctx->images_dir_fd, "parent", 0);
		return -errno;
	}
	if (fstat(ctx->images_dir_fd, &dir_st) || fstat(fd, &parent_st) ||
	    (dir_st.st_dev == parent_st.st_dev && dir_st.st_ino == parent_st.st_ino) ||
	    faccessat(fd, "inventory.img", R_OK, 0)) {
		pr_err("--prev-images-dir %s: %s", prev,
		       dir_st.st_ino == parent_st.st_ino ? "is the images directory itself"
							 : "holds no dump (no inventory.img)");
		close(fd);
		unlinkat(ctx->images_dir_fd, "parent", 0);
		return -EINVAL;
	}
	st->has_parent = true;
	st->parent_fd = fd;
	return 0;
}

/* Runs sorted and apart, page aligned, not too deep: the parent is an image like any other. */
static int check_parent_pagemap(const Pagemap *pm, uint32_t vpid)
{
	uint64_t prev_end = 0;

	for (size_t i = 0; i < pm->n_runs; i++) {
		const PageRun *r = pm->runs[i];
		uint64_t len = (uint64_t)r->nr_pages * PAGE_SIZE;
		if (!r->nr_pages || r->vaddr % PAGE_SIZE || r->file_off % PAGE_SIZE ||
		    r->vaddr < prev_end || r->vaddr + len < r->vaddr ||
		    (r->has_chain_depth && r->chain_depth > CHAIN_MAX_DEPTH)) {
			pr_err("image parent/pagemap-%u.img: run %zu (%#llx, %u pages) is out of order "
			       "or out of range",
			       vpid, i, (unsigned long long)r->vaddr, r->nr_pages);
			return -EINVAL;
		}
		prev_end = r->vaddr + len;
	}
	return 0;
}

int chain_parent_pagemap(const struct run_ctx *ctx, uint32_t vpid, Pagemap **pm)
{
	const struct chain_state *st = state_of(ctx);
	char name[64];
	int err;

	*pm = NULL;
	if (!st->has_parent)
		return 0;
	image_filename(name, sizeof(name), IMG_PAGEMAP, vpid);
	if (faccessat(st->parent_fd, name, F_OK, 0))
		return 0; /* a process the parent did not have */
	if ((err = image_read(st->parent_fd, IMG_PAGEMAP, vpid, (ProtobufCMessage **)pm)))
		return err;
	if ((err = check_parent_pagemap(*pm, vpid))) {
		image_free(&(*pm)->base);
		*pm = NULL;
	}
	return err;
}

bool chain_parent_page(const Pagemap *pm, uint32_t vpid, uint64_t vaddr, struct page_loc *loc)
{
	size_t lo = 0, hi = pm ? pm->n_runs : 0;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const PageRun *r = pm->runs[mid];
		if (vaddr < r->vaddr) {
			hi = mid;
		} else if (vaddr >= r->vaddr + (uint64_t)r->nr_pages * PAGE_SIZE) {
			lo = mid + 1;
		} else {
			loc->depth = (r->has_chain_depth ? r->chain_depth : 0) + 1;
			loc->pid = r->has_from_pid ? r->from_pid : vpid;
			loc->off = r->file_off + (vaddr - r->vaddr);
			return loc->depth <= CHAIN_MAX_DEPTH;
		}
	}
	return false;
}

/* ---- --auto-dedup ---- */

struct span {
	uint64_t start, end;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* The byte ranges of pages-PID.img depth links up that some run of this dump points at. */
static int spans_in_use(const struct dump_tree *tr, uint32_t depth, uint32_t pid, struct span **out,
			size_t *n)
{
	size_t alloc = 0;

	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < tr->nr_tasks; i++) {
		const Pagemap *pm = tr->tasks[i].pagemap;
		for (size_t k = 0; pm && k < pm->n_runs; k++) {
			const PageRun *r = pm->runs[k];
			uint32_t src = r->has_from_pid ? r->from_pid : tr->tasks[i].vpid;
			if (!r->has_chain_depth || r->chain_depth != depth || src != pid)
				continue;
			if (*n == alloc) {
				alloc = alloc ? alloc * 2 : 256;
				struct span *more = realloc(*out, alloc * sizeof(**out));
				if (!more)
					return -ENOMEM;
				*out = more;
			}
			(*out)[(*n)++] = (struct span){ r->file_off,
							r->file_off + (uint64_t)r->nr_pages * PAGE_SIZE };
		}
	}
	if (*n)
		qsort(*out, *n, sizeof(**out), span_cmp);
	return 0;
}

/* Holes wherever nothing points, in one pages image of the chain; the pages freed added up. */
static int dedup_one(const struct dump_tree *tr, int dir, uint32_t depth, uint32_t pid,
		     uint64_t *freed)
{
	char name[64];
	auto_free struct span *used = NULL;
	size_t n;
	struct stat st;
	int err = spans_in_use(tr, depth, pid, &used, &n);

	image_filename(name, sizeof(name), IMG_PAGES, pid);
	auto_close int fd = openat(dir, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (err || fd < 0 || fstat(fd, &st))
		return err ? err : -errno;
	uint64_t pos = PAGES_HEADER_SIZE, size = st.st_size, blocks = st.st_blocks;
	for (size_t i = 0; i <= n; i++) {
		uint64_t until = i < n ? used[i].start : size;
		if (until > size)
			until = size;
		if (until > pos) {
			if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pos, until - pos)) {
				pr_perror("--auto-dedup: cannot punch a hole in %s (%u links up)", name,
					  depth);
				return -errno;
			}
		}
		if (i < n && used[i].end > pos)
			pos = used[i].end;
	}
	if (!fstat(fd, &st) && (uint64_t)st.st_blocks < blocks)
		*freed += (blocks - st.st_blocks) * 512 / PAGE_SIZE;
	return 0;
}

static int dedup_chain(struct run_ctx *ctx, struct dump_tree *tr)
{
	uint64_t freed = 0;
	int err = 0;

	if (!ctx->opts->auto_dedup || !state_of(ctx)->has_parent)
		return 0;
	if (ctx->opts->page_server) {
		pr_warn("--auto-dedup: the pages are on the page server, its images are left whole");
		return 0;
	}
	for (uint32_t depth = 1; depth <= CHAIN_MAX_DEPTH && !err; depth++) {
		int dir = open_chain_dir(ctx->images_dir_fd, depth);
		if (dir < 0)
			break;
		DIR *d = fdopendir(dup(dir));
		struct dirent *de;
		while (d && (de = readdir(d)) && !err) {
			const struct image_desc *desc = image_desc_by_filename(de->d_name);
			if (desc && desc->type == IMG_PAGES)
				err = dedup_one(tr, dir, depth, strtoul(de->d_name + 6, NULL, 10), &freed);
		}
		if (d)
			closedir(d);
		close(dir);
	}
	if (!err)
		pr_info("--auto-dedup: %llu pages of earlier dumps freed", (unsigned long long)freed);
	return err;
}

static void chain_dump_done(struct run_ctx *ctx)
{
	struct chain_state *st = state_of(ctx);

	if (st->has_parent)
		close(st->parent_fd);
	st->has_parent = false;
}

const struct tree_object_ops tree_image_chain = {
	.name = "chain of dumps",
	.state_size = sizeof(struct chain_state),
	.collect = collect_chain,
	.write = dedup_chain,
	.dump_done = chain_dump_done,
};
