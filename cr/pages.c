/*
 * Memory contents. Dump: read /proc/PID/pagemap, take only pages that hold data of their own
 * (present or swapped; in private file mappings only the copied-on-write ones), skip pages of
 * zeroes in anonymous memory, and write them to pages-PID.img at page-aligned offsets.
 * Restore: the restorer blob reads each run straight into place.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/ioctl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dirty-track.h"
#include "log.h"
#include "mm.h"
#include "options.h"
#include "page-presence.h"
#include "page-queue.h"
#include "page-xfer.h"
#include "restorer/restorer.h"
#include "task.h"
#include "util.h"

#define CHUNK_PAGES 256 /* 1 MiB per read: stays in cache until written */

struct page_writer {
	struct dump_task *t;
	struct pages_out out; /* pages-PID.img, or the page server */
	uint64_t file_off;
	size_t runs_alloc;
	uint64_t vma_start; /* runs never cross a mapping boundary */
	struct page_queue queue;
	struct page_sums sums; /* of the pages queued, summed while they are still in the cache */
	bool indexed;          /* a child in the tree may share its pages: each one noted (note_saved) */
	int mem_fd;            /* the task's /proc/PID/mem */
};


/*
 * Appends nr pages at vaddr whose data is at file_off of the pages image of from_pid (0: this
 * process's own), depth links up the chain of dumps, merging with the last run when both the
 * addresses and the data follow on.
 */
static int append_run(struct page_writer *w, uint64_t vaddr, uint64_t nr, uint64_t file_off,
		      uint32_t from_pid, uint32_t depth)
{
	Pagemap *pm = w->t->pagemap;
	PageRun *last = pm->n_runs ? pm->runs[pm->n_runs - 1] : NULL;

	if (last && last->from_pid == from_pid && last->chain_depth == depth &&
	    last->vaddr >= w->vma_start &&
	    last->vaddr + last->nr_pages * PAGE_SIZE == vaddr &&
	    last->file_off + last->nr_pages * PAGE_SIZE == file_off && last->nr_pages + nr < (1u << 31)) {
		last->nr_pages += nr;
		return 0;
	}
	if (pm->n_runs == w->runs_alloc) {
		size_t alloc = w->runs_alloc ? w->runs_alloc * 2 : 256;
		PageRun **runs = xreallocarray(pm->runs, alloc, sizeof(*runs));
		if (!runs)
			return -ENOMEM;
		pm->runs = runs;
		w->runs_alloc = alloc;
	}
	PageRun *r = xzalloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	page_run__init(r);
	r->vaddr = vaddr;
	r->nr_pages = nr;
	r->file_off = file_off;
	r->has_from_pid = from_pid != 0;
	r->from_pid = from_pid;
	r->has_chain_depth = depth != 0;
	r->chain_depth = depth;
	pm->runs[pm->n_runs++] = r;
	return 0;
}

/* nr pages written next in this process's own pages image. */
static int add_run(struct page_writer *w, uint64_t vaddr, uint64_t nr)
{
	int err = append_run(w, vaddr, nr, w->file_off, 0, 0);

	if (err)
		return err;
	w->t->pagemap->nr_pages += nr;
	w->file_off += nr * PAGE_SIZE;
	return 0;
}

static int note_saved(struct dump_task *t, uint64_t vaddr, uint64_t pfn, pid_t in_pid,
		      uint64_t file_off, uint32_t depth)
{
	if (t->nr_saved == t->saved_alloc) {
		size_t alloc = t->saved_alloc ? t->saved_alloc * 2 : 4096;
		struct saved_page *saved = xreallocarray(t->saved, alloc, sizeof(*saved));
		if (!saved)
			return -ENOMEM;
		t->saved = saved;
		t->saved_alloc = alloc;
	}
	t->saved[t->nr_saved++] = (struct saved_page){ vaddr, pfn, file_off, in_pid, depth };
	return 0;
}

static const struct saved_page *find_saved(const struct dump_task *t, uint64_t vaddr)
{
	size_t lo = 0, hi = t ? t->nr_saved : 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (t->saved[mid].vaddr < vaddr)
			lo = mid + 1;
		else if (t->saved[mid].vaddr > vaddr)
			hi = mid;
		else
			return &t->saved[mid];
	}
	return NULL;
}

/*
 * A private anonymous page, or a copied-on-write page of a private file mapping, still shared
 * copy-on-write with the parent (same physical page at the same address): saved once, by
 * whoever saved it first up the tree.
 */
static const struct saved_page *inherited_page(const struct dump_task *t, uint64_t vaddr,
					       uint64_t pme)
{
	const struct saved_page *sp;

	if (!t->parent || !(pme & PM_PRESENT) || (pme & PM_EXCLUSIVE) || !(pme & PM_PFN_MASK))
		return NULL;
	sp = find_saved(t->parent, vaddr);
	return sp && sp->pfn == (pme & PM_PFN_MASK) ? sp : NULL;
}

static int add_ref_run(struct page_writer *w, uint64_t vaddr, const struct saved_page *sp)
{
	uint32_t from = sp->in_pid == (pid_t)w->t->vpid ? 0 : sp->in_pid;
	int err = append_run(w, vaddr, 1, sp->file_off, from, sp->depth);

	if (err)
		return err;
	w->t->nr_shared_pages++;
	return w->indexed ? note_saved(w->t, vaddr, sp->pfn, sp->in_pid, sp->file_off, sp->depth) : 0;
}

/* A page unchanged since the parent dump: where the chain keeps it. */
static int add_parent_run(struct page_writer *w, uint64_t vaddr, uint64_t pme,
			  const struct page_loc *loc)
{
	uint32_t from = loc->pid == w->t->vpid ? 0 : loc->pid;
	int err = append_run(w, vaddr, 1, loc->off, from, loc->depth);

	if (err)
		return err;
	w->t->nr_parent_pages++;
	return w->indexed ? note_saved(w->t, vaddr, pme & PM_PFN_MASK, loc->pid, loc->off, loc->depth)
			  : 0;
}

/*
 * The tree runs while a pre-dump copies (cr/pre-dump.c): a mapping may be gone by now. Pages
 * that cannot be read are left out (zeroes here, dropped as such): the next dump saves them.
 */
static int read_running(struct page_writer *w, uint64_t vaddr, char *buf, size_t nr)
{
	if (!task_mem_read(w->t->pid, vaddr, buf, nr * PAGE_SIZE))
		return 0;
	for (size_t i = 0; i < nr; i++)
		if (task_mem_read(w->t->pid, vaddr + i * PAGE_SIZE, buf + i * PAGE_SIZE, PAGE_SIZE))
			memset(buf + i * PAGE_SIZE, 0, PAGE_SIZE);
	return 0;
}

/* The file of an executable private mapping whose breakpoints are taken out (code_file_restore). */
struct code_file {
	int fd;
	uint64_t start, pgoff;
};

/*
 * A process that hit uprobes (--allow-uprobes): the probes' breakpoints (int3, 0xcc) in the
 * copied-on-write pages of its executable file mappings are the kernel's, not its own, and the
 * restored process would die on them (the kernel does not know them there). A page that differs
 * from the file only by bytes 0xcc gets the file's bytes back; one that differs otherwise (code
 * the process changed) is left as it is.
 */
static void code_file_restore(const struct code_file *c, uint64_t vaddr, char *buf, size_t nr)
{
	char file[PAGE_SIZE];

	for (size_t i = 0; i < nr; i++) {
		char *mem = buf + i * PAGE_SIZE;
		ssize_t n = pread(c->fd, file, PAGE_SIZE, c->pgoff + (vaddr - c->start) + i * PAGE_SIZE);
		bool only_breakpoints = n > 0;
		for (ssize_t k = 0; only_breakpoints && k < n; k++)
			only_breakpoints = mem[k] == file[k] || (uint8_t)mem[k] == 0xcc;
		if (only_breakpoints)
			memcpy(mem, file, n);
	}
}

/*
 * A span of wanted pages: read it from the task into the write queue, squeeze out pages of
 * zeroes if allowed (they come back as fresh anonymous memory), and commit the rest.
 */
static int dump_span(struct page_writer *w, uint64_t vaddr, size_t nr, bool skip_zero,
		     const uint64_t *pme, bool index, const struct code_file *code)
{
	char *buf = pq_reserve(&w->queue, nr * PAGE_SIZE);
	size_t kept = 0, run_start = 0;
	int err;

	if (w->t->ctx->opts->pre_dump ? read_running(w, vaddr, buf, nr)
				      : task_mem_read_fd(w->mem_fd, vaddr, buf, nr * PAGE_SIZE)) {
		pr_err("dump pid %d: cannot read memory at %#llx (%zu pages)", w->t->pid,
		       (unsigned long long)vaddr, nr);
		return -EIO;
	}
	if (code)
		code_file_restore(code, vaddr, buf, nr);
	for (size_t i = 0; i <= nr; i++) {
		if (i < nr && !(skip_zero && page_is_zero(buf + i * PAGE_SIZE)))
			continue;
		size_t len = i - run_start;
		if (len) {
			if (kept != run_start)
				memmove(buf + kept * PAGE_SIZE, buf + run_start * PAGE_SIZE, len * PAGE_SIZE);
			for (size_t k = 0; index && k < len; k++)
				if ((err = note_saved(w->t, vaddr + (run_start + k) * PAGE_SIZE,
						      pme[run_start + k] & PM_PFN_MASK, w->t->vpid,
						      w->file_off + k * PAGE_SIZE, 0)))
					return err;
			if ((err = add_run(w, vaddr + run_start * PAGE_SIZE, len)))
				return err;
			kept += len;
		}
		run_start = i + 1;
	}
	page_sums_add(&w->sums, buf, kept * PAGE_SIZE);
	pq_commit(&w->queue, kept * PAGE_SIZE);
	return 0;
}

/* A guard page at vaddr: noted (merged with the last one when they follow on). */
static int note_guard(struct page_writer *w, uint64_t vaddr)
{
	Pagemap *pm = w->t->pagemap;
	GuardRun *last = pm->n_guards ? pm->guards[pm->n_guards - 1] : NULL;

	if (last && last->vaddr + (uint64_t)last->nr_pages * PAGE_SIZE == vaddr && last->vaddr >= w->vma_start) {
		last->nr_pages++;
		return 0;
	}
	GuardRun **more = xreallocarray(pm->guards, pm->n_guards + 1, sizeof(*pm->guards));
	if (!more)
		return -ENOMEM;
	pm->guards = more;
	GuardRun *g = xzalloc(sizeof(*g));
	if (!g)
		return -ENOMEM;
	guard_run__init(g);
	g->vaddr = vaddr;
	g->nr_pages = 1;
	pm->guards[pm->n_guards++] = g;
	return 0;
}

static bool page_wanted(uint64_t pme, VmaKind kind)
{
	if (!(pme & (PM_PRESENT | PM_SWAPPED)) || (pme & PM_GUARD) || pm_is_marker(pme))
		return false;
	if (vma_kind_is_private_file(kind))
		return !(pme & PM_FILE_OR_SHARED) || (pme & PM_SWAPPED);
	return true;
}

/* A pre-dump copies while the tree runs: a process that exits meanwhile has no pages left. */
static bool pagemap_gone(const struct dump_task *t, uint64_t *pme, size_t nr)
{
	if (!t->ctx->opts->pre_dump)
		return false;
	memset(pme, 0, nr * sizeof(*pme));
	return true;
}

static int dump_vma_pages(struct page_writer *w, struct page_presence *pp, const VmaEntry *v,
			  uint64_t *pme)
{
	bool skip_zero = !vma_kind_is_private_file(v->kind);
	bool private_anon = v->kind == VMA_KIND__VMA_ANON_PRIVATE;
	/* pages that may be a parent's or a child's too (cr/cow-share.c) */
	bool inheritable = vma_kind_shares_cow(v->kind);
	auto_close int code_fd = -1;

	w->vma_start = v->start;
	if (w->t->hit_uprobes && v->kind == VMA_KIND__VMA_FILE_PRIVATE && (v->prot & PROT_EXEC)) {
		char mf[MAP_FILES_PATH_SIZE];
		map_files_path(mf, w->t->pid, v->start, v->end);
		code_fd = open(mf, O_RDONLY | O_CLOEXEC);
	}
	const struct code_file code = { code_fd, v->start, v->pgoff };
	/*
	 * private anonymous memory is scanned for its ranges with data; their entries need pfn
	 * and exclusivity when pages may be shared with the parent or a child
	 */
	int perr = presence_mapping(pp, v->start, v->end, private_anon, w->t->parent || w->indexed);
	if (perr)
		return perr;

	for (uint64_t addr = v->start; addr < v->end; addr += CHUNK_PAGES * PAGE_SIZE) {
		/* no chunk of nothing but holes (a reservation of a TiB is 2^28 pages) */
		if ((addr = presence_next(pp, addr, v->end)) >= v->end)
			break;
		size_t nr = (v->end - addr) / PAGE_SIZE, span = 0;
		if (nr > CHUNK_PAGES)
			nr = CHUNK_PAGES;
		int rerr = presence_read(pp, addr, nr, pme);
		if (rerr && !pagemap_gone(w->t, pme, nr)) {
			pr_err("dump pid %d: cannot read pagemap at %#llx: %s", w->t->pid,
			       (unsigned long long)addr, strerror(-rerr));
			return -EIO;
		}
		for (size_t i = 0; i <= nr; i++) {
			const struct saved_page *sp = NULL;
			struct page_loc loc;
			bool in_parent = false;
			if (i < nr && (pme[i] & PM_GUARD)) {
				int err = note_guard(w, addr + i * PAGE_SIZE);
				if (err)
					return err;
			}
			if (i < nr && page_wanted(pme[i], v->kind)) {
				if (!inheritable ||
				    (!(in_parent = private_anon &&
						   dirty_track_unchanged(w->t, addr + i * PAGE_SIZE, &loc)) &&
				     !(sp = inherited_page(w->t, addr + i * PAGE_SIZE, pme[i])))) {
					span++;
					continue;
				}
			}
			if (span) {
				uint64_t from = addr + (i - span) * PAGE_SIZE;
				int err = dump_span(w, from, span, skip_zero, pme + (i - span),
						    inheritable && w->indexed, code.fd >= 0 ? &code : NULL);
				if (err)
					return err;
			}
			span = 0;
			int err = in_parent ? add_parent_run(w, addr + i * PAGE_SIZE, pme[i], &loc)
				  : sp	    ? add_ref_run(w, addr + i * PAGE_SIZE, sp)
					    : 0;
			if (err)
				return err;
		}
	}
	return 0;
}

static bool has_children(const struct dump_task *t)
{
	for (size_t i = t->tree_pos + 1; i < t->tree_size; i++)
		if (t->tree[i].parent == t)
			return true;
	return false;
}

static int dump_pages(struct dump_task *t)
{
	struct page_writer w = { .t = t, .file_off = PAGES_HEADER_SIZE, .indexed = has_children(t),
				 .mem_fd = -1 };
	auto_free uint64_t *pme = xmalloc(CHUNK_PAGES * 8);
	auto_close int mem_fd = -1;
	struct page_presence pp;
	char path[64];
	int err = 0, werr;

	if (!pme)
		return -ENOMEM;
	/* (a pre-dump reads the running task's memory page by page where it changed meanwhile) */
	if (!t->ctx->opts->pre_dump && (w.mem_fd = mem_fd = task_mem_open(t->pid)) < 0) {
		pr_err("dump pid %d: cannot open its memory: %s", t->pid, strerror(-mem_fd));
		return mem_fd;
	}
	if ((err = presence_open(&pp, t->pid)))
		return err;
	snprintf(path, sizeof(path), "dump pid %d", t->pid);
	if ((err = pages_out_open(t->ctx, t->dirfd, t->vpid, path, &w.out))) {
		presence_close(&pp);
		return err;
	}
	if ((err = pq_start(&w.queue, pages_out_write, &w.out, CHUNK_PAGES * PAGE_SIZE))) {
		pages_out_close(&w.out);
		presence_close(&pp);
		return err;
	}
	for (size_t i = 0; i < t->mm->n_vmas && !err; i++)
		if (vma_has_pages(t->mm->vmas[i]))
			err = dump_vma_pages(&w, &pp, t->mm->vmas[i], pme);
	presence_close(&pp);
	werr = pq_finish(&w.queue);
	if (werr && !err) {
		if (w.out.ps)
			pr_err("dump pid %d: cannot send pages-%u.img to the page server %s: %s", t->pid,
			       t->vpid, w.out.ps->peer, strerror(-werr));
		else
			pr_err("dump pid %d: cannot write pages-%u.img: %s", t->pid, t->vpid,
			       strerror(-werr));
		err = werr;
	}
	if (!err)
		err = pages_out_finish(&w.out, t->pagemap->nr_pages, &w.sums);
	t->page_sums_ns = w.sums.ns;
	page_sums_free(&w.sums);
	pages_out_close(&w.out);
	t->nr_pages_written = t->pagemap->nr_pages;
	if (!err && run_fault(t->ctx, "after-pages")) {
		pr_err("dump pid %d: injected failure after-pages", t->pid);
		return -EIO;
	}
	return err;
}

static const VmaEntry *vma_of(const Mm *mm, uint64_t addr)
{
	size_t lo = 0, hi = mm->n_vmas;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (addr < mm->vmas[mid]->start)
			hi = mid;
		else if (addr >= mm->vmas[mid]->end)
			lo = mid + 1;
		else
			return mm->vmas[mid];
	}
	return NULL;
}

static uint32_t run_depth(const PageRun *r)
{
	return r->has_chain_depth ? r->chain_depth : 0;
}

/* Whose pages image holds the run's data. */
static uint32_t run_source_pid(const struct restore_task *t, const PageRun *r)
{
	return r->has_from_pid ? r->from_pid : (uint32_t)t->pid;
}

int pages_check_runs(const struct restore_task *t)
{
	const Pagemap *pm = t->pagemap;
	uint64_t expect_off = PAGES_HEADER_SIZE, total = 0, prev_end = 0;

	for (size_t i = 0; i < pm->n_runs; i++) {
		const PageRun *r = pm->runs[i];
		uint64_t len = (uint64_t)r->nr_pages * PAGE_SIZE;
		const VmaEntry *v = vma_of(t->mm, r->vaddr);
		bool ref = r->has_from_pid || run_depth(r);
		if (!r->nr_pages || r->vaddr % PAGE_SIZE || r->vaddr < prev_end || !v ||
		    !vma_has_pages(v) || r->vaddr + len > v->end ||
		    (!ref && r->file_off != expect_off) || run_depth(r) > CHAIN_MAX_DEPTH ||
		    (ref && ((!run_depth(r) && r->from_pid == (uint32_t)t->pid) ||
			     r->file_off % PAGE_SIZE || !vma_kind_shares_cow(v->kind) ||
			     (run_depth(r) && v->kind != VMA_KIND__VMA_ANON_PRIVATE)))) {
			pr_err("image pagemap-%d.img: run %zu (%#llx, %u pages) does not fit the saved "
			       "memory layout",
			       t->pid, i, (unsigned long long)r->vaddr, r->nr_pages);
			return -EINVAL;
		}
		prev_end = r->vaddr + len;
		if (ref)
			continue;
		expect_off += len;
		total += r->nr_pages;
	}
	prev_end = 0;
	for (size_t i = 0; i < pm->n_guards; i++) {
		const GuardRun *g = pm->guards[i];
		const VmaEntry *v = vma_of(t->mm, g->vaddr);
		if (!g->nr_pages || g->vaddr % PAGE_SIZE || g->vaddr < prev_end || !v ||
		    !vma_has_pages(v) || g->vaddr + (uint64_t)g->nr_pages * PAGE_SIZE > v->end) {
			pr_err("image pagemap-%d.img: guard pages %zu (%#llx) do not fit the saved memory layout",
			       t->pid, i, (unsigned long long)g->vaddr);
			return -EINVAL;
		}
		prev_end = g->vaddr + (uint64_t)g->nr_pages * PAGE_SIZE;
	}
	if (total != pm->nr_pages) {
		pr_err("image pagemap-%d.img: runs hold %llu pages, header says %llu", t->pid,
		       (unsigned long long)total, (unsigned long long)pm->nr_pages);
		return -EINVAL;
	}
	return 0;
}

/* The pages images a process's runs read from besides its own: an ancestor's, or up the chain. */
struct page_source {
	uint32_t depth, pid;
	uint64_t nr_pages;
	int fd;
	char *map; /* in stasis, for UFFDIO_COPY: the whole image, read-only (NULL: not yet) */
	const uint32_t *sums; /* in map: the checksum of each page */
};

struct page_sources {
	struct page_source *v;
	size_t n;
};

/* The source (depth, pid) among those open, or NULL. */
static struct page_source *find_source(const struct page_sources *ps, uint32_t depth, uint32_t pid)
{
	for (size_t i = 0; ps && i < ps->n; i++)
		if (ps->v[i].depth == depth && ps->v[i].pid == pid)
			return &ps->v[i];
	return NULL;
}

static int open_source(const struct restore_task *t, uint32_t depth, uint32_t pid, uint64_t *nr);

/* In stasis: the source (depth, pid), opened the first time; NULL (said) if it cannot be. */
static struct page_source *source_of(struct page_sources *ps, uint32_t depth, uint32_t pid,
				     const struct restore_task *t)
{
	struct page_source *found = find_source(ps, depth, pid);
	if (found)
		return found;
	struct page_source *more = xreallocarray(ps->v, ps->n + 1, sizeof(*more)), *s;
	if (!more) {
		pr_err("restore pid %d: out of memory", t->pid);
		return NULL;
	}
	ps->v = more;
	uint64_t nr_pages = 0;
	int fd = open_source(t, depth, pid, &nr_pages);
	if (fd < 0)
		return NULL;
	s = &ps->v[ps->n];
	*s = (struct page_source){ depth, pid, nr_pages, fd, NULL, NULL };
	ps->n++;
	return s;
}

static void sources_close(struct page_sources *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		if (ps->v[i].map)
			munmap(ps->v[i].map, raw_image_size(ps->v[i].nr_pages));
		close(ps->v[i].fd);
	}
	free(ps->v);
	*ps = (struct page_sources){ 0 };
}

/* In stasis: pages-PID.img of the tree, or depth links up the chain, read-only. */
static int open_source(const struct restore_task *t, uint32_t depth, uint32_t pid, uint64_t *nr)
{
	if (depth)
		return chain_pages_open(t->dirfd, depth, pid, nr);
	const struct restore_task *src = pid == (uint32_t)t->pid ? t : restore_tree_task(t, pid);
	if (!src) {
		pr_err("image pagemap-%d.img: a run refers to pages of pid %u, which the tree does not have",
		       t->pid, pid);
		return -ENOENT;
	}
	if (src->pages_fd < 0) /* images read only for their pages (a lazy restore's server) */
		return pages_image_open(t->dirfd, pid, *nr = src->pagemap->nr_pages);
	*nr = src->pagemap->nr_pages;
	int fd = fcntl(src->pages_fd, F_DUPFD_CLOEXEC, 0), err = -errno;
	if (fd < 0)
		pr_err("restore pid %d: cannot use the pages image of pid %u: %s", t->pid, pid, strerror(-err));
	return fd < 0 ? err : fd;
}

/*
 * In stasis, before the tree exists: the images the task's runs read besides its own, kept
 * open for it (a process of a user namespace may not open the images' files itself).
 */
static int keep_sources(struct restore_task *t)
{
	if (!(t->page_sources = xzalloc(sizeof(*t->page_sources))))
		return -ENOMEM;
	for (size_t i = 0; i < t->pagemap->n_runs; i++) {
		const PageRun *r = t->pagemap->runs[i];
		if ((r->has_from_pid || run_depth(r)) &&
		    !source_of(t->page_sources, run_depth(r), run_source_pid(t, r), t))
			return -ENOENT;
	}
	return 0;
}

int pages_sources_move_high(struct restore_task *t)
{
	for (size_t i = 0; t->page_sources && i < t->page_sources->n; i++) {
		int fd = restore_move_high(t, t->page_sources->v[i].fd);
		if (fd < 0)
			return fd;
		t->page_sources->v[i].fd = fd;
	}
	return 0;
}

void pages_sources_free(struct restore_task *t)
{
	if (t->page_sources)
		sources_close(t->page_sources);
	free(t->page_sources);
	t->page_sources = NULL;
}

static int validate_pages(struct restore_task *t)
{
	int err = pages_check_runs(t);

	if (err)
		return err;
	t->pages_fd = pages_image_open(t->dirfd, t->pid, t->pagemap->nr_pages);
	if (t->pages_fd < 0)
		return t->pages_fd;
	/* the blob reads these itself: their checksums are checked now */
	return pages_verify_runs(t, false) ?: keep_sources(t);
}

/* Runs kept in an ancestor's pages image, or up the chain of dumps, must lie inside it. */
int pages_verify_runs(const struct restore_task *t, bool uffd_runs)
{
	char name[CHAIN_MAX_DEPTH * 7 + 32];
	struct page_sources ps = { 0 };
	int err = 0;

	for (size_t i = 0; i < t->pagemap->n_runs && !err; i++) {
		const PageRun *r = t->pagemap->runs[i];
		const struct page_source *src;
		if ((vma_of(t->mm, r->vaddr)->kind == VMA_KIND__VMA_ANON_PRIVATE) != uffd_runs)
			continue;
		if (!(src = source_of(&ps, run_depth(r), run_source_pid(t, r), t))) {
			err = -ENOENT; /* (said where it could not be opened) */
			break;
		}
		/* up the chain, a parent's file against its own checksums */
		if ((err = raw_image_check_pages(src->fd, IMG_PAGES, src->pid,
						 (r->file_off - PAGES_HEADER_SIZE) / PAGE_SIZE, r->nr_pages)) &&
		    src->depth)
			pr_err("image %s: that file (above) is the parent dump's up the chain",
			       chain_pages_name(name, sizeof(name), src->depth, src->pid));
	}
	sources_close(&ps);
	return err;
}

int pages_check_references(const struct restore_task *t)
{
	struct page_sources ps = { 0 };
	int err = 0;

	for (size_t i = 0; i < t->pagemap->n_runs && !err; i++) {
		const PageRun *r = t->pagemap->runs[i];
		const struct page_source *src;
		if (!r->has_from_pid && !run_depth(r))
			continue;
		if (!(src = source_of(&ps, run_depth(r), run_source_pid(t, r), t))) {
			err = -EINVAL; /* (said where it could not be opened) */
			break;
		}
		if (r->file_off < PAGES_HEADER_SIZE ||
		    r->file_off + (uint64_t)r->nr_pages * PAGE_SIZE >
			    PAGES_HEADER_SIZE + src->nr_pages * PAGE_SIZE) {
			pr_err("image pagemap-%d.img: run %zu refers to pages of pid %u%s that its images "
			       "do not hold",
			       t->pid, i, run_source_pid(t, r), run_depth(r) ? " up the chain of dumps" : "");
			err = -EINVAL;
		}
	}
	sources_close(&ps);
	return err;
}

static size_t pages_args_size(const struct restore_task *t)
{
	return t->pagemap->n_runs * sizeof(struct rst_run) + t->pagemap->n_guards * sizeof(struct rst_range) + 8;
}

static int restore_pages(struct restore_task *t)
{
	struct restorer_args *a = t->args;
	struct rst_run *runs = restorer_args_alloc(t, t->pagemap->n_runs * sizeof(*runs), &a->runs_off);

	struct rst_range *guards = restorer_args_alloc(t, t->pagemap->n_guards * sizeof(*guards), &a->guards_off);
	if (!runs || !guards)
		return -ENOMEM;

	a->nr_guards = t->pagemap->n_guards;
	for (size_t i = 0; i < t->pagemap->n_guards; i++)
		guards[i] = (struct rst_range){ t->pagemap->guards[i]->vaddr,
						(uint64_t)t->pagemap->guards[i]->nr_pages * PAGE_SIZE };

	a->pages_fd = t->pages_fd;
	a->lazy = t->ctx->opts->lazy_pages;
	a->nr_runs = 0;
	for (size_t i = 0; i < t->pagemap->n_runs; i++) {
		const PageRun *r = t->pagemap->runs[i];
		struct rst_run *out = &runs[a->nr_runs];
		if (cow_use_at(t, r->vaddr))
			continue; /* in place already, filled before the fork (cr/cow-share.c) */
		a->nr_runs++;
		out->vaddr = r->vaddr;
		out->len = (uint64_t)r->nr_pages * PAGE_SIZE;
		out->off = r->file_off;
		out->by_uffd = vma_of(t->mm, out->vaddr)->kind == VMA_KIND__VMA_ANON_PRIVATE;
		if (!r->has_from_pid && !run_depth(r)) {
			out->fd = t->pages_fd;
			continue;
		}
		/* kept by stasis (keep_sources), among the helper fds the blob closes */
		const struct page_source *src = find_source(t->page_sources, run_depth(r), run_source_pid(t, r));
		if (!src) {
			pr_err("restore pid %d: no pages image kept for the run at %#llx", t->pid,
			       (unsigned long long)r->vaddr);
			return -ENOENT;
		}
		out->fd = src->fd;
	}
	return 0;
}

/* ---- restore: filling private anonymous memory from stasis, on both cores ---- */

#define UFFD_COPY_CHUNK (1UL << 20) /* checked, then copied while still in the cache */
#define UFFD_COPY_THREADS 2

int pages_check_segment(const struct uffd_segment *s, uint64_t off, uint64_t len)
{
	uint64_t first = (s->off - PAGES_HEADER_SIZE) / PAGE_SIZE;
	char name[CHAIN_MAX_DEPTH * 7 + 32];

	for (uint64_t p = off / PAGE_SIZE; p < (off + len) / PAGE_SIZE; p++) {
		if (page_sum(s->src + p * PAGE_SIZE) != s->sums[first + p]) {
			pr_err("image %s: page %llu does not match its checksum: the file is corrupted",
			       chain_pages_name(name, sizeof(name), s->depth, s->pid),
			       (unsigned long long)(first + p));
			return -EIO;
		}
	}
	return 0;
}

struct uffd_copier {
	int uffd;
	const struct uffd_segment *segs;
	size_t nr_segs;
	uint64_t first, last; /* this thread's share: bytes [first, last) of all segments */
	int err;
	bool checked; /* err: a page did not match its checksum (said) */
	uint64_t fail_addr;
};

static void *uffd_copier_main(void *arg)
{
	struct uffd_copier *c = arg;
	uint64_t pos = 0;

	for (size_t i = 0; i < c->nr_segs && !c->err; pos += c->segs[i++].len) {
		const struct uffd_segment *s = &c->segs[i];
		uint64_t from = c->first > pos ? c->first - pos : 0;
		uint64_t to = c->last - pos < s->len ? c->last - pos : s->len;
		if (c->last <= pos || from >= s->len)
			continue;
		while (from < to) {
			struct uffdio_copy cp = {
				.dst = s->dst + from,
				.src = (uint64_t)(uintptr_t)(s->src + from),
				.len = to - from < UFFD_COPY_CHUNK ? to - from : UFFD_COPY_CHUNK,
			};
			if ((c->err = pages_check_segment(s, from, cp.len))) {
				c->checked = true;
				break;
			}
			if (ioctl(c->uffd, UFFDIO_COPY, &cp) && cp.copy <= 0) {
				c->err = cp.copy < 0 ? (int)cp.copy : -errno;
				c->fail_addr = cp.dst;
				break;
			}
			from += cp.copy;
		}
	}
	return NULL;
}

/* The pages image (depth, pid) in stasis, mapped read-only with its checksums; NULL (said) if not. */
static const struct page_source *source_map(const struct restore_task *t, struct page_sources *ps,
					    uint32_t depth, uint32_t pid)
{
	struct page_source *src = source_of(ps, depth, pid, t);

	if (src && !src->map) {
		void *m = mmap(NULL, raw_image_size(src->nr_pages), PROT_READ, MAP_SHARED, src->fd, 0);
		src->map = m == MAP_FAILED ? NULL : m;
		if (src->map)
			src->sums = (const uint32_t *)(src->map + PAGES_HEADER_SIZE + src->nr_pages * PAGE_SIZE);
	}
	if (src && !src->map) /* (else said where it could not be opened) */
		pr_err("restore pid %d: cannot map the pages image of pid %u%s", t->pid, pid,
		       depth ? " up the chain of dumps" : "");
	return src && src->map ? src : NULL;
}

/*
 * The runs of private anonymous memory filled by the blob's userfaultfd, or (before_fork) those
 * of every mapping taken from a region filled before the fork (cr/cow-share.c).
 */
static int plan_runs(const struct restore_task *t, bool map, bool before_fork, struct uffd_plan *plan)
{
	const Pagemap *pm = t->pagemap;
	struct page_sources *ps = xzalloc(sizeof(*ps));

	*plan = (struct uffd_plan){ .v = xzalloc((pm->n_runs + 1) * sizeof(*plan->v)), .sources = ps };
	if (!ps || !plan->v) {
		pages_uffd_plan_free(plan);
		return -ENOMEM;
	}
	for (size_t i = 0; i < pm->n_runs; i++) {
		const PageRun *r = pm->runs[i];
		const struct page_source *img = NULL;
		bool in_region = cow_use_at(t, r->vaddr) != NULL;
		if (before_fork ? !in_region
				: in_region || vma_of(t->mm, r->vaddr)->kind != VMA_KIND__VMA_ANON_PRIVATE)
			continue;
		if (map && !(img = source_map(t, ps, run_depth(r), run_source_pid(t, r)))) {
			pages_uffd_plan_free(plan);
			return -ENOMEM;
		}
		plan->v[plan->n++] = (struct uffd_segment){ r->vaddr, (uint64_t)r->nr_pages * PAGE_SIZE,
							    run_depth(r), run_source_pid(t, r), r->file_off,
							    img ? img->map + r->file_off : NULL,
							    img ? img->sums : NULL };
		plan->bytes += (uint64_t)r->nr_pages * PAGE_SIZE;
	}
	return 0;
}

int pages_uffd_plan(const struct restore_task *t, bool map, struct uffd_plan *plan)
{
	return plan_runs(t, map, false, plan);
}

int pages_cow_plan(const struct restore_task *t, struct uffd_plan *plan)
{
	return plan_runs(t, true, true, plan);
}

void pages_uffd_plan_free(struct uffd_plan *plan)
{
	if (plan->sources)
		sources_close(plan->sources);
	free(plan->sources);
	free(plan->v);
	*plan = (struct uffd_plan){ 0 };
}

int pages_copy_by_uffd(const struct restore_task *t, pid_t pid, int child_uffd)
{
	struct uffd_copier c[UFFD_COPY_THREADS] = { 0 };
	struct uffd_plan plan;
	pthread_t helper;
	int uffd = task_fd_copy(pid, child_uffd), err;

	if (uffd < 0) {
		pr_err("restore pid %d: cannot take its userfaultfd: %s", pid, strerror(-uffd));
		return uffd;
	}
	if ((err = pages_uffd_plan(t, true, &plan))) {
		close(uffd);
		return err;
	}
	/* Both cores: each thread takes half of the bytes, split at a page. */
	for (int i = 0; i < UFFD_COPY_THREADS; i++) {
		c[i] = (struct uffd_copier){ .uffd = uffd, .segs = plan.v, .nr_segs = plan.n };
		c[i].first = plan.bytes / UFFD_COPY_THREADS / PAGE_SIZE * PAGE_SIZE * i;
		c[i].last = i == UFFD_COPY_THREADS - 1
				    ? plan.bytes
				    : plan.bytes / UFFD_COPY_THREADS / PAGE_SIZE * PAGE_SIZE * (i + 1);
	}
	bool threaded = pthread_create(&helper, NULL, uffd_copier_main, &c[1]) == 0;
	uffd_copier_main(&c[0]);
	if (threaded)
		pthread_join(helper, NULL);
	else
		uffd_copier_main(&c[1]);
	for (int i = 0; i < UFFD_COPY_THREADS && !err; i++) {
		if ((err = c[i].err) && !c[i].checked)
			pr_err("restore pid %d: copying saved pages to %#llx failed: %s", pid,
			       (unsigned long long)c[i].fail_addr, strerror(-err));
	}
	pages_uffd_plan_free(&plan);
	close(uffd);
	return err;
}

const struct state_ops state_pages = {
	.name = "memory pages",
	.dump = dump_pages,
	.validate = validate_pages,
	.args_size = pages_args_size,
	.restore = restore_pages,
};
