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

#include "log.h"
#include "mm.h"
#include "options.h"
#include "page-queue.h"
#include "restorer/restorer.h"
#include "task.h"
#include "util.h"

#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_FILE_OR_SHARED (1ULL << 61)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_GUARD (1ULL << 58) /* MADV_GUARD_INSTALL: no page, a fault on touch */
#define PM_PFN_MASK ((1ULL << 55) - 1)
#define CHUNK_PAGES 256 /* 1 MiB per read: stays in cache until written */

struct page_writer {
	struct dump_task *t;
	int fd;
	uint64_t file_off;
	size_t runs_alloc;
	uint64_t vma_start; /* runs never cross a mapping boundary */
	struct page_queue queue;
};


/*
 * Appends nr pages at vaddr whose data is at file_off of the pages image of from_pid (0: this
 * process's own), merging with the last run when both the addresses and the data follow on.
 */
static int append_run(struct page_writer *w, uint64_t vaddr, uint64_t nr, uint64_t file_off,
		      uint32_t from_pid)
{
	Pagemap *pm = w->t->pagemap;
	PageRun *last = pm->n_runs ? pm->runs[pm->n_runs - 1] : NULL;

	if (last && last->from_pid == from_pid && last->vaddr >= w->vma_start &&
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
	pm->runs[pm->n_runs++] = r;
	return 0;
}

/* nr pages written next in this process's own pages image. */
static int add_run(struct page_writer *w, uint64_t vaddr, uint64_t nr)
{
	int err = append_run(w, vaddr, nr, w->file_off, 0);

	if (err)
		return err;
	w->t->pagemap->nr_pages += nr;
	w->file_off += nr * PAGE_SIZE;
	return 0;
}

static int note_saved(struct dump_task *t, uint64_t vaddr, uint64_t pfn, pid_t in_pid,
		      uint64_t file_off)
{
	if (t->nr_saved == t->saved_alloc) {
		size_t alloc = t->saved_alloc ? t->saved_alloc * 2 : 4096;
		struct saved_page *saved = xreallocarray(t->saved, alloc, sizeof(*saved));
		if (!saved)
			return -ENOMEM;
		t->saved = saved;
		t->saved_alloc = alloc;
	}
	t->saved[t->nr_saved++] = (struct saved_page){ vaddr, pfn, file_off, in_pid };
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
 * A private anonymous page still shared copy-on-write with the parent (same physical page at
 * the same address): saved once, by whoever saved it first up the tree.
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
	int err = append_run(w, vaddr, 1, sp->file_off, sp->in_pid);

	if (err)
		return err;
	w->t->nr_shared_pages++;
	return note_saved(w->t, vaddr, sp->pfn, sp->in_pid, sp->file_off);
}

/*
 * A span of wanted pages: read it from the task into the write queue, squeeze out pages of
 * zeroes if allowed (they come back as fresh anonymous memory), and commit the rest.
 */
static int dump_span(struct page_writer *w, uint64_t vaddr, size_t nr, bool skip_zero,
		     const uint64_t *pme, bool index)
{
	char *buf = pq_reserve(&w->queue, nr * PAGE_SIZE);
	size_t kept = 0, run_start = 0;
	int err;

	if (task_mem_read(w->t->pid, vaddr, buf, nr * PAGE_SIZE)) {
		pr_err("dump pid %d: cannot read memory at %#llx (%zu pages)", w->t->pid,
		       (unsigned long long)vaddr, nr);
		return -EIO;
	}
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
						      w->file_off + k * PAGE_SIZE)))
					return err;
			if ((err = add_run(w, vaddr + run_start * PAGE_SIZE, len)))
				return err;
			kept += len;
		}
		run_start = i + 1;
	}
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
	if (!(pme & (PM_PRESENT | PM_SWAPPED)) || (pme & PM_GUARD))
		return false;
	if (vma_kind_is_private_file(kind))
		return !(pme & PM_FILE_OR_SHARED) || (pme & PM_SWAPPED);
	return true;
}

static int dump_vma_pages(struct page_writer *w, int pagemap_fd, const VmaEntry *v, uint64_t *pme)
{
	bool skip_zero = !vma_kind_is_private_file(v->kind);
	bool private_anon = v->kind == VMA_KIND__VMA_ANON_PRIVATE;

	w->vma_start = v->start;

	for (uint64_t addr = v->start; addr < v->end; addr += CHUNK_PAGES * PAGE_SIZE) {
		size_t nr = (v->end - addr) / PAGE_SIZE, span = 0;
		if (nr > CHUNK_PAGES)
			nr = CHUNK_PAGES;
		if (pread(pagemap_fd, pme, nr * 8, addr / PAGE_SIZE * 8) != (ssize_t)(nr * 8)) {
			pr_perror("dump pid %d: cannot read pagemap at %#llx", w->t->pid,
				  (unsigned long long)addr);
			return -EIO;
		}
		for (size_t i = 0; i <= nr; i++) {
			const struct saved_page *sp = NULL;
			int err;
			if (i < nr && (pme[i] & PM_GUARD) && (err = note_guard(w, addr + i * PAGE_SIZE)))
				return err;
			if (i < nr && page_wanted(pme[i], v->kind)) {
				if (!private_anon || !(sp = inherited_page(w->t, addr + i * PAGE_SIZE, pme[i]))) {
					span++;
					continue;
				}
			}
			if (span) {
				uint64_t from = addr + (i - span) * PAGE_SIZE;
				int err = dump_span(w, from, span, skip_zero, pme + (i - span), private_anon);
				if (err)
					return err;
			}
			span = 0;
			if (sp) {
				int err = add_ref_run(w, addr + i * PAGE_SIZE, sp);
				if (err)
					return err;
			}
		}
	}
	return 0;
}

static int dump_pages(struct dump_task *t)
{
	struct page_writer w = { .t = t, .file_off = PAGES_HEADER_SIZE };
	auto_free uint64_t *pme = xmalloc(CHUNK_PAGES * 8);
	auto_close int pagemap_fd = -1;
	char path[64];
	int err = 0, werr;

	if (!pme)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", t->pid);
	pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0) {
		pr_perror("dump pid %d: cannot open %s", t->pid, path);
		return -errno;
	}
	w.fd = pages_image_create(t->dirfd, t->vpid);
	if (w.fd < 0)
		return w.fd;
	if ((err = pq_start(&w.queue, w.fd, CHUNK_PAGES * PAGE_SIZE))) {
		close(w.fd);
		return err;
	}
	for (size_t i = 0; i < t->mm->n_vmas && !err; i++)
		if (vma_kind_has_pages(t->mm->vmas[i]->kind))
			err = dump_vma_pages(&w, pagemap_fd, t->mm->vmas[i], pme);
	werr = pq_finish(&w.queue);
	if (werr && !err) {
		errno = -werr;
		pr_perror("dump pid %d: cannot write pages-%u.img", t->pid, t->vpid);
		err = werr;
	}
	if (!err)
		err = pages_image_finish(w.fd, t->vpid, t->pagemap->nr_pages);
	close(w.fd);
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

static int validate_pages(struct restore_task *t)
{
	const Pagemap *pm = t->pagemap;
	uint64_t expect_off = PAGES_HEADER_SIZE, total = 0, prev_end = 0;

	for (size_t i = 0; i < pm->n_runs; i++) {
		const PageRun *r = pm->runs[i];
		uint64_t len = (uint64_t)r->nr_pages * PAGE_SIZE;
		const VmaEntry *v = vma_of(t->mm, r->vaddr);
		bool ref = r->has_from_pid;
		if (!r->nr_pages || r->vaddr % PAGE_SIZE || r->vaddr < prev_end || !v ||
		    !vma_kind_has_pages(v->kind) || r->vaddr + len > v->end ||
		    (!ref && r->file_off != expect_off) ||
		    (ref && (r->from_pid == (uint32_t)t->pid || r->file_off % PAGE_SIZE ||
			     v->kind != VMA_KIND__VMA_ANON_PRIVATE))) {
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
		    !vma_kind_has_pages(v->kind) || g->vaddr + (uint64_t)g->nr_pages * PAGE_SIZE > v->end) {
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
	t->pages_fd = pages_image_open(t->dirfd, t->pid, pm->nr_pages);
	return t->pages_fd < 0 ? t->pages_fd : 0;
}

static struct restore_task *tree_task(const struct restore_task *t, uint32_t pid)
{
	for (size_t i = 0; i < t->tree_size; i++)
		if (t->tree[i].pid == (pid_t)pid)
			return &t->tree[i];
	return NULL;
}

/* Runs kept in an ancestor's pages image must lie inside it. */
int pages_check_references(const struct restore_task *t)
{
	for (size_t i = 0; i < t->pagemap->n_runs; i++) {
		const PageRun *r = t->pagemap->runs[i];
		const struct restore_task *src;
		if (!r->has_from_pid)
			continue;
		src = tree_task(t, r->from_pid);
		if (!src || r->file_off < PAGES_HEADER_SIZE ||
		    r->file_off + (uint64_t)r->nr_pages * PAGE_SIZE >
			    PAGES_HEADER_SIZE + src->pagemap->nr_pages * PAGE_SIZE) {
			pr_err("image pagemap-%d.img: run %zu refers to pages of pid %u that its images "
			       "do not hold",
			       t->pid, i, r->from_pid);
			return -EINVAL;
		}
	}
	return 0;
}

/* In the new task: an fd on pages-PID.img of pid (its own, or an ancestor's). */
static int pages_fd_of(struct restore_task *t, uint32_t pid, int *cache_pid, int *cache_fd)
{
	char name[64];

	if (pid == (uint32_t)t->pid)
		return t->pages_fd;
	if (*cache_pid == (int)pid)
		return *cache_fd;
	image_filename(name, sizeof(name), IMG_PAGES, pid);
	int fd = openat(t->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("restore pid %d: image %s: cannot open", t->pid, name);
		return -errno;
	}
	if ((fd = restore_move_high(t, fd)) < 0)
		return fd;
	*cache_pid = pid;
	*cache_fd = fd;
	return fd;
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
	int cache_pid = -1, cache_fd = -1;

	a->nr_guards = t->pagemap->n_guards;
	for (size_t i = 0; i < t->pagemap->n_guards; i++)
		guards[i] = (struct rst_range){ t->pagemap->guards[i]->vaddr,
						(uint64_t)t->pagemap->guards[i]->nr_pages * PAGE_SIZE };

	a->pages_fd = t->pages_fd;
	a->nr_runs = t->pagemap->n_runs;
	for (size_t i = 0; i < t->pagemap->n_runs; i++) {
		const PageRun *r = t->pagemap->runs[i];
		runs[i].vaddr = r->vaddr;
		runs[i].len = (uint64_t)r->nr_pages * PAGE_SIZE;
		runs[i].off = r->file_off;
		runs[i].by_uffd = vma_of(t->mm, runs[i].vaddr)->kind == VMA_KIND__VMA_ANON_PRIVATE;
		runs[i].fd = pages_fd_of(t, r->has_from_pid ? r->from_pid : (uint32_t)t->pid, &cache_pid,
					 &cache_fd);
		if (runs[i].fd < 0)
			return runs[i].fd;
	}
	return 0;
}

/* ---- restore: filling private anonymous memory from stasis, on both cores ---- */

#define UFFD_COPY_CHUNK (8UL << 20)
#define UFFD_COPY_THREADS 2

/* One stretch to copy: len bytes from src (a mapped pages image) to dst in the new task. */
struct copy_segment {
	uint64_t dst, len;
	const char *src;
};

struct uffd_copier {
	int uffd;
	const struct copy_segment *segs;
	size_t nr_segs;
	uint64_t first, last; /* this thread's share: bytes [first, last) of all segments */
	int err;
	uint64_t fail_addr;
};

static void *uffd_copier_main(void *arg)
{
	struct uffd_copier *c = arg;
	uint64_t pos = 0;

	for (size_t i = 0; i < c->nr_segs && !c->err; pos += c->segs[i++].len) {
		const struct copy_segment *s = &c->segs[i];
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

/* The pages images the uffd runs of t read from, mapped read-only: its own and ancestors'. */
struct mapped_images {
	pid_t pid[8];
	char *addr[8];
	uint64_t len[8];
	size_t n;
};

static const char *image_of(const struct restore_task *t, uint32_t pid, struct mapped_images *mi)
{
	for (size_t i = 0; i < mi->n; i++)
		if (mi->pid[i] == (pid_t)pid)
			return mi->addr[i];
	const struct restore_task *src = pid == (uint32_t)t->pid ? t : tree_task(t, pid);
	if (!src || mi->n == ARRAY_SIZE(mi->pid))
		return NULL;
	uint64_t len = PAGES_HEADER_SIZE + src->pagemap->nr_pages * PAGE_SIZE;
	char *m = mmap(NULL, len, PROT_READ, MAP_SHARED, src->pages_fd, 0);
	if (m == MAP_FAILED)
		return NULL;
	mi->pid[mi->n] = pid;
	mi->addr[mi->n] = m;
	mi->len[mi->n++] = len;
	return m;
}

int pages_copy_by_uffd(const struct restore_task *t, pid_t pid, int child_uffd)
{
	const Pagemap *pm = t->pagemap;
	struct mapped_images mi = { .n = 0 };
	struct uffd_copier c[UFFD_COPY_THREADS] = { 0 };
	auto_free struct copy_segment *segs = xzalloc((pm->n_runs + 1) * sizeof(*segs));
	size_t nr_segs = 0;
	uint64_t total = 0;
	pthread_t helper;
	int uffd, err = 0;

	if (!segs)
		return -ENOMEM;
	if ((uffd = task_fd_copy(pid, child_uffd)) < 0) {
		pr_err("restore pid %d: cannot take its userfaultfd: %s", pid, strerror(-uffd));
		return uffd;
	}
	for (size_t i = 0; i < pm->n_runs && !err; i++) {
		const PageRun *r = pm->runs[i];
		if (vma_of(t->mm, r->vaddr)->kind != VMA_KIND__VMA_ANON_PRIVATE)
			continue;
		const char *img = image_of(t, r->has_from_pid ? r->from_pid : (uint32_t)t->pid, &mi);
		if (!img) {
			pr_err("restore pid %d: cannot map the pages image of its run at %#llx", pid,
			       (unsigned long long)r->vaddr);
			err = -ENOMEM;
			break;
		}
		segs[nr_segs++] = (struct copy_segment){ r->vaddr, (uint64_t)r->nr_pages * PAGE_SIZE,
							 img + r->file_off };
		total += (uint64_t)r->nr_pages * PAGE_SIZE;
	}
	/* Both cores: each thread takes half of the bytes, split at a page. */
	for (int i = 0; i < UFFD_COPY_THREADS; i++) {
		c[i] = (struct uffd_copier){ .uffd = uffd, .segs = segs, .nr_segs = nr_segs };
		c[i].first = total / UFFD_COPY_THREADS / PAGE_SIZE * PAGE_SIZE * i;
		c[i].last = i == UFFD_COPY_THREADS - 1 ? total
						      : total / UFFD_COPY_THREADS / PAGE_SIZE * PAGE_SIZE * (i + 1);
	}
	if (!err) {
		bool threaded = pthread_create(&helper, NULL, uffd_copier_main, &c[1]) == 0;
		uffd_copier_main(&c[0]);
		if (threaded)
			pthread_join(helper, NULL);
		else
			uffd_copier_main(&c[1]);
	}
	for (int i = 0; i < UFFD_COPY_THREADS && !err; i++) {
		if (c[i].err) {
			err = c[i].err;
			pr_err("restore pid %d: copying saved pages to %#llx failed: %s", pid,
			       (unsigned long long)c[i].fail_addr, strerror(-err));
		}
	}
	for (size_t i = 0; i < mi.n; i++)
		munmap(mi.addr[i], mi.len[i]);
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
