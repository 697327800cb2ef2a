/*
 * Chains of dumps. Dump with --prev-images-dir: DIR/parent is made a symlink to it (criu's
 * layout: the path as given, relative to DIR), the page table there of each process the
 * parent's inventory lists is read before the tree is frozen and handed over when its pages
 * are dumped, and a page unchanged since (cr/dirty-track.c says which) is saved as
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

#include "addr-ranges.h"
#include "image-chain.h"
#include "log.h"
#include "pstree.h"
#include "tree-objects.h"
#include "util.h"

struct chain_state {
	bool has_parent;
	int parent_fd; /* DIR/parent, while has_parent */
	/* the dump ids up the chain (the inventory's chain_dump_ids) */
	uint8_t ids[CHAIN_MAX_DEPTH][DUMP_ID_LEN];
	ProtobufCBinaryData id_list[CHAIN_MAX_DEPTH];
	size_t nr_ids;
	struct parent_pagemap *pagemaps; /* read before the freeze, each taken once */
	size_t nr_pagemaps;
};

struct parent_pagemap {
	uint32_t vpid;
	Pagemap *pm; /* NULL once taken (or if the parent had none) */
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

/*
 * The dump id a pages image depth links up from dirfd must carry, as dirfd's inventory names
 * it (want); 1 if dirfd has no inventory (a page server's directory: the pages' own checksums
 * are all there is), else 0 or -errno (said).
 */
static int chain_dump_id(int dirfd, uint32_t depth, const char *name, uint8_t want[DUMP_ID_LEN])
{
	Inventory *inv = NULL;
	int err;

	if (faccessat(dirfd, "inventory.img", F_OK, AT_SYMLINK_NOFOLLOW))
		return 1;
	if ((err = image_read(dirfd, IMG_INVENTORY, 0, (ProtobufCMessage **)&inv)))
		return err;
	if (depth > inv->n_chain_dump_ids || inv->chain_dump_ids[depth - 1].len != DUMP_ID_LEN) {
		pr_err("image %s: the inventory names no dump %u links up the chain", name, depth);
		err = -EINVAL;
	} else {
		memcpy(want, inv->chain_dump_ids[depth - 1].data, DUMP_ID_LEN);
	}
	image_free(&inv->base);
	return err;
}

int chain_pages_open(int dirfd, uint32_t depth, uint32_t pid, uint64_t *nr_pages)
{
	char name[CHAIN_MAX_DEPTH * 7 + 32];
	uint8_t want[DUMP_ID_LEN];
	struct pages_header h;
	int dir, fd, known;

	if (depth == 0 || depth > CHAIN_MAX_DEPTH)
		return -EINVAL;
	chain_pages_name(name, sizeof(name), depth, pid);
	if ((known = chain_dump_id(dirfd, depth, name, want)) < 0)
		return known;
	if ((dir = open_chain_dir(dirfd, depth)) < 0) {
		pr_err("image %s: the chain of parent directories ends before it: %s",
		       chain_pages_name(name, sizeof(name), depth, pid), strerror(-dir));
		return dir;
	}
	/* checked against the inventory up there (the parent's own dump id) */
	fd = pages_image_open_counted(dir, pid, nr_pages);
	close(dir);
	if (fd < 0) {
		pr_err("image %s: cannot be used (above)", name);
		return fd;
	}
	/* and against the dump this one was made from: another dump's parent is refused */
	if (!known && (pread(fd, &h, sizeof(h), 0) != sizeof(h) || memcmp(h.dump_id, want, DUMP_ID_LEN))) {
		pr_err("image %s: belongs to another dump than the one this dump's chain was made "
		       "from (its dump id is not the inventory's chain_dump_ids[%u])",
		       name, depth - 1);
		close(fd);
		return -EINVAL;
	}
	return fd;
}

/* ---- dump ---- */

/* The images directory itself (DIR/parent is there), not the new image set's own. */
static int images_dir(const struct run_ctx *ctx)
{
	return ctx->images_dest_fd >= 0 ? ctx->images_dest_fd : ctx->images_dir_fd;
}

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

/* The page table of every process the parent's inventory lists, checked. */
static int read_parent_pagemaps(struct chain_state *st, const Inventory *inv)
{
	if (!(st->pagemaps = xzalloc((inv->n_tree + 1) * sizeof(*st->pagemaps))))
		return -ENOMEM;
	for (size_t i = 0; i < inv->n_tree; i++) {
		struct parent_pagemap *p = &st->pagemaps[st->nr_pagemaps];
		char name[64];
		int err;
		p->vpid = inv->tree[i]->pid;
		image_filename(name, sizeof(name), IMG_PAGEMAP, p->vpid);
		if (faccessat(st->parent_fd, name, F_OK, 0))
			continue; /* a zombie, or a process the parent did not save */
		st->nr_pagemaps++;
		if ((err = image_read(st->parent_fd, IMG_PAGEMAP, p->vpid, (ProtobufCMessage **)&p->pm)))
			return err;
		if ((err = check_parent_pagemap(p->pm, p->vpid)))
			return err;
	}
	return 0;
}

static void free_parent_pagemaps(struct chain_state *st)
{
	for (size_t i = 0; i < st->nr_pagemaps; i++)
		if (st->pagemaps[i].pm)
			image_free(&st->pagemaps[i].pm->base);
	free(st->pagemaps);
	st->pagemaps = NULL;
	st->nr_pagemaps = 0;
}

/* The dump ids up the chain (the parent's own, then those its inventory lists), and the
 * page tables of the processes its inventory lists. */
static int chain_ids(struct chain_state *st, const char *prev)
{
	Inventory *inv = NULL;
	int err;

	if (image_inventory_dump_id(st->parent_fd, st->ids[0]) ||
	    (err = image_read(st->parent_fd, IMG_INVENTORY, 0, (ProtobufCMessage **)&inv))) {
		pr_err("--prev-images-dir %s: its inventory.img cannot be read", prev);
		return -EINVAL;
	}
	st->nr_ids = 1;
	for (size_t i = 0; i < inv->n_chain_dump_ids && st->nr_ids < CHAIN_MAX_DEPTH; i++) {
		if (inv->chain_dump_ids[i].len != DUMP_ID_LEN) {
			pr_err("image parent/inventory.img: chain dump id %zu is invalid", i);
			image_free(&inv->base);
			return -EINVAL;
		}
		memcpy(st->ids[st->nr_ids++], inv->chain_dump_ids[i].data, DUMP_ID_LEN);
	}
	for (size_t i = 0; i < st->nr_ids; i++)
		st->id_list[i] = (ProtobufCBinaryData){ DUMP_ID_LEN, st->ids[i] };
	err = read_parent_pagemaps(st, inv);
	image_free(&inv->base);
	return err;
}

/* DIR/parent made, and checked to be a dump; its page tables read. */
static int chain_before_freeze(struct run_ctx *ctx)
{
	struct chain_state *st = state_of(ctx);
	const char *prev = ctx->opts->prev_images_dir;
	int dir = images_dir(ctx);
	struct stat dir_st, parent_st;
	int fd, err;

	if (!prev)
		return 0;
	if (!prev[0]) {
		pr_err("--prev-images-dir: an empty path");
		return -EINVAL;
	}
	/* as DIR/parent will lead: relative to the images directory */
	fd = openat(dir, prev, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		pr_perror("--prev-images-dir %s (relative to the images directory %s)", prev,
			  ctx->opts->images_dir);
		return err;
	}
	if (fstat(dir, &dir_st) || fstat(fd, &parent_st) ||
	    (dir_st.st_dev == parent_st.st_dev && dir_st.st_ino == parent_st.st_ino) ||
	    faccessat(fd, "inventory.img", R_OK, 0)) {
		pr_err("--prev-images-dir %s: %s", prev,
		       dir_st.st_ino == parent_st.st_ino ? "is the images directory itself"
							 : "holds no dump (no inventory.img)");
		close(fd);
		return -EINVAL;
	}
	st->has_parent = true;
	st->parent_fd = fd;
	/* the link is the new image set's: it moves into the images directory with it */
	if ((err = chain_make_link(ctx->images_dir_fd, ctx->opts->images_dir, prev)))
		return err;
	return chain_ids(st, prev);
}

int chain_parent_pagemap(const struct run_ctx *ctx, uint32_t vpid, Pagemap **pm)
{
	struct chain_state *st = state_of(ctx);

	*pm = NULL;
	for (size_t i = 0; i < st->nr_pagemaps; i++)
		if (st->pagemaps[i].vpid == vpid) {
			*pm = st->pagemaps[i].pm; /* the caller's now */
			st->pagemaps[i].pm = NULL;
			break;
		}
	return 0;
}

static uint64_t run_end(const void *runs, size_t i)
{
	const PageRun *r = ((PageRun *const *)runs)[i];

	return r->vaddr + (uint64_t)r->nr_pages * PAGE_SIZE;
}

bool chain_parent_page(const Pagemap *pm, uint32_t vpid, uint64_t vaddr, struct page_loc *loc,
		       size_t *hint)
{
	if (!pm)
		return false;
	size_t i = range_index(pm->runs, pm->n_runs, vaddr, hint, run_end);
	if (i >= pm->n_runs || pm->runs[i]->vaddr > vaddr)
		return false;
	const PageRun *r = pm->runs[i];
	loc->depth = (r->has_chain_depth ? r->chain_depth : 0) + 1;
	loc->pid = r->has_from_pid ? r->from_pid : vpid;
	loc->off = r->file_off + (vaddr - r->vaddr);
	return loc->depth <= CHAIN_MAX_DEPTH;
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
				struct span *more = xreallocarray(*out, alloc, sizeof(**out));
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
	struct pages_header h;
	if (err || fd < 0 || fstat(fd, &st))
		return err ? err : -errno;
	if (pread(fd, &h, sizeof(h), 0) != sizeof(h) || raw_image_size(h.nr_pages) != (uint64_t)st.st_size) {
		pr_err("--auto-dedup: %s (%u links up) is no pages image", name, depth);
		return -EINVAL;
	}
	/* the pages only: their checksums after them stay, for the pages still used */
	uint64_t pos = PAGES_HEADER_SIZE, size = PAGES_HEADER_SIZE + h.nr_pages * PAGE_SIZE,
		 blocks = st.st_blocks;
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
	struct chain_state *st = state_of(ctx);
	uint64_t freed = 0;
	int err = 0;

	if (st->has_parent) { /* (the inventory is written after this) */
		tr->inv.n_chain_dump_ids = st->nr_ids;
		tr->inv.chain_dump_ids = st->id_list;
	}
	if (!ctx->opts->auto_dedup || !st->has_parent)
		return 0;
	if (ctx->opts->page_server) {
		pr_warn("--auto-dedup: the pages are on the page server, its images are left whole");
		return 0;
	}
	for (uint32_t depth = 1; depth <= CHAIN_MAX_DEPTH && !err; depth++) {
		/* (the images directory's own link is the earlier dump's until the commit) */
		int dir = depth == 1 ? fcntl(st->parent_fd, F_DUPFD_CLOEXEC, 0)
				     : open_chain_dir(st->parent_fd, depth - 1);
		if (dir < 0)
			break;
		DIR *d = opendir_at(dir, ".", 0);
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
	free_parent_pagemaps(st);
}

static void free_chain(void *state)
{
	free_parent_pagemaps(state);
}

const struct tree_object_ops tree_image_chain = {
	.name = "chain of dumps",
	.state_size = sizeof(struct chain_state),
	.free_state = free_chain,
	.before_freeze = chain_before_freeze,
	.write = dedup_chain,
	.dump_done = chain_dump_done,
};
