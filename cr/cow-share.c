/*
 * Private memory shared copy-on-write between processes of the tree, shared again after the
 * restore: private anonymous memory, and the pages of a private file mapping that were
 * copied on write (a program's .data, a file mapped MAP_PRIVATE and written, then fork). The
 * kernel shares anonymous pages only through fork, so the restore does what fork did:
 *   - a process whose private mapping a process it forks takes over fills it (a region)
 *     before it forks, at a temporary address inside a range (the reserve) that stasis maps
 *     PROT_NONE before the tree exists, so that every process of the tree has it free; a
 *     region of a file is mapped MAP_PRIVATE from that file at the same offset, and only the
 *     pages saved (those copied on write) are written: the others stay the file's; a region
 *     whose source's mapping is not writable is mapped PROT_NONE and made writable only around
 *     the pages written (no commit charged for the rest: V8's 32 GiB cage, say);
 *   - the processes it forks inherit the region; each makes it its own before forking in turn:
 *     it drops the pages its forker has there and it does not (in a file's region, the file's
 *     page shows again), writes its pages that differ;
 *   - each one's blob moves its mapping from the region to its address with mremap (its pages
 *     in place: none of them is copied again) and unmaps the rest of the reserve.
 * Which pages are the same: a page of a process and the page its forker has at the same
 * address come from the same place of the same pages image (the dump saves a page still
 * shared with the parent once: the child's run refers to the parent's pages image).
 * A mapping is taken from the region of the nearest process up the line of forkers (the
 * restore's plan, cr/tree-plan.c: a CLONE_PARENT sibling or a helper forks some) that holds
 * it whole, of the same kind (anonymous, or the same file at the same offset), with the same
 * MAP_NORESERVE; a stack (MAP_GROWSDOWN) is never taken, nor a private file mapping without
 * a saved page (the file's pages are the page cache's anyway). Everything else is restored as
 * before: mapped anew by the blob, filled through its userfaultfd (or read in by the blob: a
 * file's). A lazy restore shares nothing (its server fills every private page on demand).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cow-share.h"
#include "free-range.h"
#include "log.h"
#include "mm.h"
#include "restorer/restorer.h"
#include "tree-objects.h"
#include "tree-plan.h"
#include "tree.h"
#include "util.h"

#define HUGE_PAGE (2UL << 20)         /* a region lies at its address modulo this (THP moves whole) */

/* A mapping of one process, filled by it before it forks, taken over by processes it forks. */
struct cow_region {
	size_t source;       /* the inventory entry that fills it first */
	uint64_t start, end; /* its mapping there */
	size_t vma;          /* which of its source's mappings */
	uint64_t temp;       /* where it lies (prepare) */
	bool file;           /* of a file: MAP_PRIVATE of the file (dev, ino as saved) at pgoff */
	uint64_t dev, ino, pgoff;
	bool noreserve;
	bool writable;       /* its source's mapping may be written: mapped so; else PROT_NONE, made
			      * writable only where pages are written (the kernel charged the source's
			      * mapping no commit, a reservation of a TiB; read-write it would be) */
	uint32_t advice;     /* THP advice, given before it is filled */
	bool taken;          /* by another process than its source */
};

struct cow_state {
	struct cow_region *regions;
	size_t nr_regions;
	size_t nr_entries;            /* the inventory's tree entries */
	ssize_t *forker;              /* per entry: the entry whose memory it is forked with (-1) */
	struct restore_task **task;   /* per entry, NULL: a helper or zombie */
	struct cow_use **uses;        /* per entry, by start */
	size_t *nr_uses;
	size_t *regions_from;         /* per entry: its regions, [from, from + n) (planning) */
	size_t *nr_regions_of;
	uint64_t reserve_start, reserve_len; /* mapped by stasis from prepare to undo */
};

static struct cow_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_cow_share);
}

/* Whether t has saved pages in [start, end) (its runs are in address order). */
static bool has_runs_in(const struct restore_task *t, uint64_t start, uint64_t end)
{
	const Pagemap *pm = t->pagemap;
	size_t lo = 0, hi = pm->n_runs;

	while (lo < hi) { /* the first run that ends after start */
		size_t mid = (lo + hi) / 2;
		if (pm->runs[mid]->vaddr + (uint64_t)pm->runs[mid]->nr_pages * PAGE_SIZE <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < pm->n_runs && pm->runs[lo]->vaddr < end;
}

static bool shareable(const struct restore_task *t, const VmaEntry *v)
{
	if (v->growsdown || (v->advice & VMA_ADVICE_DROPPABLE))
		return false;
	if (v->kind == VMA_KIND__VMA_FILE_PRIVATE)
		return v->has_file_id && v->file_id < t->mm->n_files && has_runs_in(t, v->start, v->end);
	return v->kind == VMA_KIND__VMA_ANON_PRIVATE;
}

static const MappedFile *file_of(const struct restore_task *t, const VmaEntry *v)
{
	return v->kind == VMA_KIND__VMA_FILE_PRIVATE ? t->mm->files[v->file_id] : NULL;
}

/* Whether t's v (shareable) is what reg holds at its addresses: the same kind, the same file
 * at the same offset. */
static bool same_backing(const struct cow_region *reg, const struct restore_task *t, const VmaEntry *v)
{
	const MappedFile *f = file_of(t, v);

	if (!f || !reg->file)
		return !f && !reg->file;
	return f->dev == reg->dev && f->ino == reg->ino &&
	       v->pgoff == reg->pgoff + (v->start - reg->start);
}

static bool noreserve(const VmaEntry *v)
{
	return v->advice & VMA_ADVICE_NORESERVE;
}

/* The region up the line of k's forkers, nearest first, that holds v whole; -1: none. */
static ssize_t region_above(const struct cow_state *st, size_t k, const VmaEntry *v)
{
	size_t steps = 0;

	for (ssize_t c = st->forker[k]; c >= 0 && steps++ <= st->nr_entries; c = st->forker[c])
		for (size_t r = st->regions_from[c]; r < st->regions_from[c] + st->nr_regions_of[c]; r++) {
			const struct cow_region *reg = &st->regions[r];
			if (reg->start <= v->start && v->end <= reg->end &&
			    reg->noreserve == noreserve(v) && same_backing(reg, st->task[k], v))
				return r;
		}
	return -1;
}

static int add_use(struct cow_state *st, size_t k, const VmaEntry *v, size_t region, bool fills)
{
	struct cow_use *more = xreallocarray(st->uses[k], st->nr_uses[k] + 1, sizeof(*more));

	if (!more)
		return -ENOMEM;
	st->uses[k] = more;
	more[st->nr_uses[k]++] = (struct cow_use){ v->start, v->end, 0, region, fills };
	return 0;
}

static int add_region(struct cow_state *st, size_t k, size_t vma)
{
	const VmaEntry *v = st->task[k]->mm->vmas[vma];
	const MappedFile *f = file_of(st->task[k], v);
	struct cow_region *more = xreallocarray(st->regions, st->nr_regions + 1, sizeof(*more));

	if (!more)
		return -ENOMEM;
	st->regions = more;
	if (!st->nr_regions_of[k]++)
		st->regions_from[k] = st->nr_regions; /* (an entry's regions are made one after the other) */
	more[st->nr_regions] = (struct cow_region){
		.source = k, .start = v->start, .end = v->end, .vma = vma, .noreserve = noreserve(v),
		.writable = v->prot & PROT_WRITE,
		.file = f != NULL, .dev = f ? f->dev : 0, .ino = f ? f->ino : 0, .pgoff = f ? v->pgoff : 0,
		.advice = v->advice & (VMA_ADVICE_HUGEPAGE | VMA_ADVICE_NOHUGEPAGE),
	};
	return add_use(st, k, v, st->nr_regions++, true);
}

/* Regions nobody else takes are not made: their sources map them anew, as before. */
static int drop_untaken(struct cow_state *st)
{
	auto_free ssize_t *renum = xzalloc((st->nr_regions + 1) * sizeof(*renum));
	size_t kept = 0;

	if (!renum)
		return -ENOMEM;
	for (size_t r = 0; r < st->nr_regions; r++) {
		renum[r] = st->regions[r].taken ? (ssize_t)kept : -1;
		if (st->regions[r].taken)
			st->regions[kept++] = st->regions[r];
	}
	st->nr_regions = kept;
	for (size_t k = 0; k < st->nr_entries; k++) {
		size_t n = 0;
		for (size_t i = 0; i < st->nr_uses[k]; i++) {
			struct cow_use u = st->uses[k][i];
			if (renum[u.region] < 0)
				continue;
			u.region = renum[u.region];
			st->uses[k][n++] = u;
		}
		st->nr_uses[k] = n;
	}
	return 0;
}

/* How many forks from stasis's to entry k (SIZE_MAX: its line of forkers loops). */
static size_t fork_depth(const struct cow_state *st, size_t k)
{
	size_t d = 0;

	for (ssize_t c = st->forker[k]; c >= 0; c = st->forker[c])
		if (++d > st->nr_entries)
			return SIZE_MAX;
	return d;
}

struct entry_depth {
	size_t depth, k;
};

static int by_depth(const void *a, const void *b)
{
	const struct entry_depth *x = a, *y = b;
	return x->depth != y->depth ? (x->depth > y->depth) - (x->depth < y->depth)
				    : (x->k > y->k) - (x->k < y->k);
}

static int plan_entry(struct cow_state *st, size_t k, bool forks)
{
	const struct restore_task *t = st->task[k];
	int err;

	for (size_t i = 0; t && i < t->mm->n_vmas; i++) {
		const VmaEntry *v = t->mm->vmas[i];
		if (!shareable(t, v))
			continue;
		ssize_t r = region_above(st, k, v);
		if (r >= 0) {
			st->regions[r].taken = true;
			err = add_use(st, k, v, r, false);
		} else {
			err = forks ? add_region(st, k, i) : 0;
		}
		if (err)
			return err;
	}
	return 0;
}

/*
 * Which mappings are taken from which region: the entries in the order of their forks (a
 * forker before what it forks), each mapping from the region above it, else (if it forks)
 * a region of its own.
 */
static int cow_validate(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct cow_state *st = state_of(ctx);
	const Inventory *inv = rt->inv;
	size_t n = inv->n_tree;
	int err;

	if (ctx->opts->lazy_pages || n < 2)
		return 0;
	st->nr_entries = n;
	st->forker = xzalloc(n * sizeof(*st->forker));
	st->task = xzalloc(n * sizeof(*st->task));
	st->uses = xzalloc(n * sizeof(*st->uses));
	st->nr_uses = xzalloc(n * sizeof(*st->nr_uses));
	st->regions_from = xzalloc(n * sizeof(*st->regions_from));
	st->nr_regions_of = xzalloc(n * sizeof(*st->nr_regions_of));
	auto_free struct entry_depth *order = xzalloc(n * sizeof(*order));
	auto_free bool *forks = xzalloc(n * sizeof(*forks));
	if (!st->forker || !st->task || !st->uses || !st->nr_uses || !st->regions_from ||
	    !st->nr_regions_of || !order || !forks)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++) {
		st->forker[k] = k ? tree_entry_index(inv, rt->plan[k].creator) : -1;
		st->task[k] = pstree_task(rt, inv->tree[k]->pid);
	}
	for (size_t k = 0; k < n; k++) {
		order[k] = (struct entry_depth){ fork_depth(st, k), k };
		if (st->forker[k] >= 0)
			forks[st->forker[k]] = true;
	}
	qsort(order, n, sizeof(*order), by_depth); /* a forker before what it forks */
	for (size_t i = 0; i < n && order[i].depth != SIZE_MAX; i++)
		if ((err = plan_entry(st, order[i].k, forks[order[i].k])))
			return err;
	if ((err = drop_untaken(st)))
		return err;
	for (size_t k = 0; k < n; k++)
		if (st->task[k]) {
			st->task[k]->cow_uses = st->uses[k];
			st->task[k]->nr_cow_uses = st->nr_uses[k];
		}
	if (st->nr_regions)
		pr_debug("restore: %zu private mappings filled before the fork, shared with what forks them",
			 st->nr_regions);
	return 0;
}

static uint64_t huge_align(uint64_t x)
{
	return (x + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
}

/* The reserve, mapped PROT_NONE: every process of the tree inherits it, nothing lands there. */
static int cow_prepare(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct cow_state *st = state_of(ctx);
	uint64_t len = 0, base;

	if (!st->nr_regions)
		return 0;
	/* each region at its address modulo HUGE_PAGE, one after the other (temp: an offset first) */
	for (size_t r = 0; r < st->nr_regions; r++) {
		struct cow_region *reg = &st->regions[r];
		reg->temp = huge_align(len) + reg->start % HUGE_PAGE;
		len = reg->temp + (reg->end - reg->start);
	}
	len = PAGE_ALIGN(len);
	if (!(base = tree_reserve_map(rt, len))) {
		pr_err("restore: no room for the %llu bytes of private memory shared with forked processes",
		       (unsigned long long)len);
		return -ENOMEM;
	}
	st->reserve_start = base;
	st->reserve_len = len;
	for (size_t r = 0; r < st->nr_regions; r++)
		st->regions[r].temp += base;
	for (size_t k = 0; k < st->nr_entries; k++) {
		for (size_t i = 0; i < st->nr_uses[k]; i++) {
			struct cow_use *u = &st->uses[k][i];
			u->temp = st->regions[u->region].temp + (u->start - st->regions[u->region].start);
		}
		if (st->task[k]) {
			st->task[k]->cow_reserve_start = base;
			st->task[k]->cow_reserve_len = len;
		}
	}
	return 0;
}

static void cow_undo(struct run_ctx *ctx, bool restored)
{
	struct cow_state *st = state_of(ctx);

	(void)restored;
	if (st->reserve_len)
		munmap((void *)st->reserve_start, st->reserve_len);
	st->reserve_len = 0;
}

static void cow_free(void *state)
{
	struct cow_state *st = state;

	for (size_t k = 0; st->uses && k < st->nr_entries; k++)
		free(st->uses[k]);
	free(st->uses);
	free(st->nr_uses);
	free(st->task);
	free(st->forker);
	free(st->regions_from);
	free(st->nr_regions_of);
	free(st->regions);
}

/* ---- in the new process, before it forks ---- */

/* Where a page's data comes from: a place in a pages image (pid 0: none, a page of zeroes). */
struct page_place {
	uint32_t pid, depth;
	uint64_t off;
};

static bool same_place(const struct page_place *a, const struct page_place *b)
{
	return a->pid == b->pid && (!a->pid || (a->depth == b->depth && a->off == b->off));
}

static struct page_place place_in(const struct restore_task *t, uint64_t addr)
{
	const Pagemap *pm = t->pagemap;
	size_t lo = 0, hi = pm->n_runs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const PageRun *r = pm->runs[mid];
		if (addr < r->vaddr)
			hi = mid;
		else if (addr >= r->vaddr + (uint64_t)r->nr_pages * PAGE_SIZE)
			lo = mid + 1;
		else
			return (struct page_place){ r->has_from_pid ? r->from_pid : (uint32_t)t->pid,
						    r->has_chain_depth ? r->chain_depth : 0,
						    r->file_off + (addr - r->vaddr) };
	}
	return (struct page_place){ 0 };
}

/*
 * The page at addr of region as entry k inherits it: that of the nearest forker above that
 * made the region its own there (its source at the latest).
 */
static struct page_place inherited_place(const struct cow_state *st, size_t k, uint32_t region,
					 uint64_t addr)
{
	size_t steps = 0;

	for (ssize_t c = st->forker[k]; c >= 0 && steps++ <= st->nr_entries; c = st->forker[c]) {
		const struct restore_task *up = st->task[c];
		const struct cow_use *u = up ? cow_use_at(up, addr) : NULL;
		if (u && u->region == region)
			return place_in(up, addr);
	}
	return (struct page_place){ 0 };
}

/*
 * Pages [from, to) of the use: written from s (mapped), each checked against its checksum; in
 * a region mapped PROT_NONE, made writable for that (charged: the source's pages were too) and
 * PROT_NONE again.
 */
static int write_pages(const struct cow_state *st, const struct restore_task *t, const struct cow_use *u,
		       const struct uffd_segment *s, uint64_t from, uint64_t to)
{
	void *at = (void *)(u->temp + (from - u->start));
	bool guarded = !st->regions[u->region].writable;
	int err = pages_check_segment(s, from - s->dst, to - from);

	if (err)
		return err;
	if (guarded && mprotect(at, to - from, PROT_READ | PROT_WRITE)) {
		pr_perror("restore pid %d: cannot make its pages at %#llx writable to fill them", t->pid,
			  (unsigned long long)from);
		return -errno;
	}
	memcpy(at, s->src + (from - s->dst), to - from);
	if (guarded && mprotect(at, to - from, PROT_NONE)) {
		pr_perror("restore pid %d: cannot make its pages at %#llx PROT_NONE again", t->pid,
			  (unsigned long long)from);
		return -errno;
	}
	return 0;
}

static int drop_pages(const struct restore_task *t, const struct cow_use *u, uint64_t from, uint64_t to)
{
	if (!madvise((void *)(u->temp + (from - u->start)), to - from, MADV_DONTNEED))
		return 0;
	pr_perror("restore pid %d: cannot drop its forker's pages at %#llx", t->pid, (unsigned long long)from);
	return -errno;
}

struct addr_span {
	uint64_t start, end;
};

static int span_order(const void *a, const void *b)
{
	const struct addr_span *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * The address ranges of u where a process up entry k's line of forkers has saved pages, in
 * order, overlaps merged: *spans (to free), *n. 0 or -ENOMEM (said).
 */
static int forkers_pages(const struct cow_state *st, size_t k, const struct cow_use *u,
			 struct addr_span **spans, size_t *n)
{
	struct addr_span *v = NULL;
	size_t nr = 0, alloc = 0, steps = 0;

	for (ssize_t c = st->forker[k]; c >= 0 && steps++ <= st->nr_entries; c = st->forker[c]) {
		const struct restore_task *up = st->task[c];
		if (!up)
			continue;
		const Pagemap *pm = up->pagemap;
		size_t lo = 0, hi = pm->n_runs;
		while (lo < hi) { /* the first run ending after u->start */
			size_t mid = (lo + hi) / 2;
			const PageRun *r = pm->runs[mid];
			if (r->vaddr + (uint64_t)r->nr_pages * PAGE_SIZE <= u->start)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t i = lo; i < pm->n_runs && pm->runs[i]->vaddr < u->end; i++) {
			const PageRun *r = pm->runs[i];
			uint64_t from = r->vaddr > u->start ? r->vaddr : u->start;
			uint64_t to = r->vaddr + (uint64_t)r->nr_pages * PAGE_SIZE;
			if (nr == alloc) {
				size_t more = alloc ? alloc * 2 : 64;
				struct addr_span *w = xreallocarray(v, more, sizeof(*v));
				if (!w) {
					free(v);
					pr_err("restore: out of memory for the list of pages a process inherits");
					return -ENOMEM;
				}
				v = w;
				alloc = more;
			}
			v[nr++] = (struct addr_span){ from, to < u->end ? to : u->end };
		}
	}
	if (nr)
		qsort(v, nr, sizeof(*v), span_order);
	size_t m = 0;
	for (size_t i = 0; i < nr; i++) {
		if (m && v[i].start <= v[m - 1].end) {
			if (v[i].end > v[m - 1].end)
				v[m - 1].end = v[i].end;
		} else {
			v[m++] = v[i];
		}
	}
	*spans = v;
	*n = m;
	return 0;
}

/*
 * The region made t's own over u: where the page inherited is not t's, t's is written, or the
 * inherited one dropped if t has none there. mine: t's runs in its uses, by address (a run
 * lies inside one mapping).
 */
static int make_own(const struct cow_state *st, size_t k, const struct restore_task *t,
		    const struct cow_use *u, const struct uffd_plan *mine)
{
	const struct uffd_segment *s = mine->v, *end = mine->v + mine->n;
	uint64_t from = 0;
	int err;

	for (; s < end; s++) {
		if (s->dst < u->start || s->dst >= u->end)
			continue;
		for (uint64_t addr = s->dst; addr <= s->dst + s->len; addr += PAGE_SIZE) {
			bool write = addr < s->dst + s->len;
			if (write && !u->fills) {
				struct page_place my = { s->pid, s->depth, s->off + (addr - s->dst) };
				struct page_place theirs = inherited_place(st, k, u->region, addr);
				write = !same_place(&my, &theirs);
			}
			if (write && !from)
				from = addr;
			if (!write && from && (err = write_pages(st, t, u, s, from, addr)))
				return err;
			from = write ? from : 0;
		}
	}
	if (u->fills)
		return 0; /* (a new mapping has no page but those written: zeroes, or the file's) */
	/*
	 * only where a forker has pages can t inherit one: the use itself may be a reservation of
	 * a TiB (2^28 pages), its pages a few
	 */
	struct addr_span *spans = NULL;
	size_t n_spans = 0;
	if ((err = forkers_pages(st, k, u, &spans, &n_spans)))
		return err;
	s = mine->v;
	for (size_t i = 0; i < n_spans && !err; i++) {
		for (uint64_t addr = spans[i].start; addr <= spans[i].end; addr += PAGE_SIZE) {
			while (s < end && s->dst + s->len <= addr)
				s++;
			bool drop = addr < spans[i].end && !(s < end && s->dst <= addr) &&
				    inherited_place(st, k, u->region, addr).pid;
			if (drop && !from)
				from = addr;
			if (!drop && from && (err = drop_pages(t, u, from, addr)))
				break;
			from = drop ? from : 0;
		}
	}
	free(spans);
	return err;
}

/*
 * A region t fills first: mapped at its place in the reserve (anonymous, or MAP_PRIVATE of its
 * file at its offset), with its THP advice.
 */
static int map_region(const struct cow_state *st, struct restore_task *t, const struct cow_use *u)
{
	const struct cow_region *reg = &st->regions[u->region];
	int flags = MAP_PRIVATE | MAP_FIXED | (reg->noreserve ? MAP_NORESERVE : 0), fd = -1, err = 0;
	void *at = (void *)reg->temp;

	if (reg->file && (fd = mm_open_file_of(t, t->mm->vmas[reg->vma])) < 0) {
		pr_err("restore pid %d: cannot open the file of its mapping at %#llx to share it with "
		       "what it forks: %s", t->pid, (unsigned long long)reg->start, strerror(-fd));
		return fd;
	}
	if (mmap(at, reg->end - reg->start, reg->writable ? PROT_READ | PROT_WRITE : PROT_NONE, flags | (fd < 0 ? MAP_ANONYMOUS : 0),
		 fd, fd < 0 ? 0 : reg->pgoff) != at) {
		err = -errno;
		pr_perror("restore pid %d: cannot map its memory at %#llx to share it with what it forks",
			  t->pid, (unsigned long long)reg->start);
	}
	if (fd >= 0)
		close(fd);
	if (err)
		return err;
	if (reg->advice)
		madvise(at, reg->end - reg->start,
			reg->advice & VMA_ADVICE_HUGEPAGE ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	return 0;
}

int cow_share_fill(const struct run_ctx *ctx, struct restore_task *t)
{
	const struct cow_state *st = state_of(ctx);
	struct uffd_plan mine;
	ssize_t k = -1;
	int err = 0;

	if (!t->nr_cow_uses)
		return 0;
	for (size_t i = 0; i < st->nr_entries; i++)
		if (st->task[i] == t)
			k = i;
	if (k < 0)
		return -EINVAL;
	if ((err = pages_cow_plan(t, &mine)))
		return err;
	for (size_t i = 0; i < t->nr_cow_uses && !err; i++) {
		const struct cow_use *u = &t->cow_uses[i];
		if (!u->fills || !(err = map_region(st, t, u)))
			err = make_own(st, k, t, u, &mine);
	}
	pages_uffd_plan_free(&mine);
	return err;
}

const struct tree_object_ops tree_cow_share = {
	.name = "private memory shared with forked processes",
	.state_size = sizeof(struct cow_state),
	.free_state = cow_free,
	.validate = cow_validate,
	.prepare = cow_prepare,
	.undo = cow_undo,
};
