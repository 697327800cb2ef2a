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
#include <sys/syscall.h>
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
#define CHUNK_PAGES 256 /* 1 MiB per read: stays in cache until written */

struct page_writer {
	struct dump_task *t;
	int fd;
	uint64_t file_off;
	size_t runs_alloc;
	uint64_t vma_start; /* runs never cross a mapping boundary */
	struct page_queue queue;
};

/* Checks a cache line at a time, so that a page with data is rejected after one line. */
static bool page_is_zero(const uint64_t *p)
{
	for (size_t i = 0; i < PAGE_SIZE / 8; i += 8)
		if (p[i] | p[i + 1] | p[i + 2] | p[i + 3] | p[i + 4] | p[i + 5] | p[i + 6] | p[i + 7])
			return false;
	return true;
}

static int add_run(struct page_writer *w, uint64_t vaddr, uint64_t nr)
{
	Pagemap *pm = w->t->pagemap;
	PageRun *last = pm->n_runs ? pm->runs[pm->n_runs - 1] : NULL;

	if (last && last->vaddr >= w->vma_start && last->vaddr + last->nr_pages * PAGE_SIZE == vaddr &&
	    last->file_off + last->nr_pages * PAGE_SIZE == w->file_off && last->nr_pages + nr < (1u << 31)) {
		last->nr_pages += nr;
	} else {
		if (pm->n_runs == w->runs_alloc) {
			w->runs_alloc = w->runs_alloc ? w->runs_alloc * 2 : 256;
			pm->runs = realloc(pm->runs, w->runs_alloc * sizeof(*pm->runs));
			if (!pm->runs)
				return -ENOMEM;
		}
		PageRun *r = xzalloc(sizeof(*r));
		page_run__init(r);
		r->vaddr = vaddr;
		r->nr_pages = nr;
		r->file_off = w->file_off;
		pm->runs[pm->n_runs++] = r;
	}
	pm->nr_pages += nr;
	w->file_off += nr * PAGE_SIZE;
	return 0;
}

/*
 * A span of wanted pages: read it from the task into the write queue, squeeze out pages of
 * zeroes if allowed (they come back as fresh anonymous memory), and commit the rest.
 */
static int dump_span(struct page_writer *w, uint64_t vaddr, size_t nr, bool skip_zero)
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
		if (i < nr && !(skip_zero && page_is_zero((const uint64_t *)(buf + i * PAGE_SIZE))))
			continue;
		size_t len = i - run_start;
		if (len) {
			if (kept != run_start)
				memmove(buf + kept * PAGE_SIZE, buf + run_start * PAGE_SIZE, len * PAGE_SIZE);
			if ((err = add_run(w, vaddr + run_start * PAGE_SIZE, len)))
				return err;
			kept += len;
		}
		run_start = i + 1;
	}
	pq_commit(&w->queue, kept * PAGE_SIZE);
	return 0;
}

static bool page_wanted(uint64_t pme, VmaKind kind)
{
	if (!(pme & (PM_PRESENT | PM_SWAPPED)))
		return false;
	if (kind == VMA_KIND__VMA_FILE_PRIVATE)
		return !(pme & PM_FILE_OR_SHARED) || (pme & PM_SWAPPED);
	return true;
}

static int dump_vma_pages(struct page_writer *w, int pagemap_fd, const VmaEntry *v, uint64_t *pme)
{
	bool skip_zero = v->kind != VMA_KIND__VMA_FILE_PRIVATE;

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
			if (i < nr && page_wanted(pme[i], v->kind)) {
				span++;
				continue;
			}
			if (span) {
				uint64_t from = addr + (i - span) * PAGE_SIZE;
				int err = dump_span(w, from, span, skip_zero);
				if (err)
					return err;
			}
			span = 0;
		}
	}
	return 0;
}

static int dump_pages(struct dump_task *t)
{
	struct page_writer w = { .t = t, .file_off = PAGES_HEADER_SIZE };
	auto_free uint64_t *pme = malloc(CHUNK_PAGES * 8);
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
	w.fd = pages_image_create(t->dirfd, t->pid);
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
		pr_perror("dump pid %d: cannot write pages-%d.img", t->pid, t->pid);
		err = werr;
	}
	if (!err)
		err = pages_image_finish(w.fd, t->pid, t->pagemap->nr_pages);
	close(w.fd);
	t->nr_pages_written = t->pagemap->nr_pages;
	if (!err && fault_injected("after-pages")) {
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
		if (!r->nr_pages || r->vaddr % PAGE_SIZE || r->vaddr < prev_end || !v ||
		    !vma_kind_has_pages(v->kind) || r->vaddr + len > v->end || r->file_off != expect_off) {
			pr_err("image pagemap-%d.img: run %zu (%#llx, %u pages) does not fit the saved "
			       "memory layout",
			       t->pid, i, (unsigned long long)r->vaddr, r->nr_pages);
			return -EINVAL;
		}
		prev_end = r->vaddr + len;
		expect_off += len;
		total += r->nr_pages;
	}
	if (total != pm->nr_pages) {
		pr_err("image pagemap-%d.img: runs hold %llu pages, header says %llu", t->pid,
		       (unsigned long long)total, (unsigned long long)pm->nr_pages);
		return -EINVAL;
	}
	t->pages_fd = pages_image_open(t->dirfd, t->pid, pm->nr_pages);
	return t->pages_fd < 0 ? t->pages_fd : 0;
}

static int restore_pages(struct restore_task *t)
{
	struct restorer_args *a = t->args;
	struct rst_run *runs = (struct rst_run *)((char *)a + a->runs_off);
	int fd = restore_move_high(t, t->pages_fd);

	if (fd < 0)
		return fd;
	t->pages_fd = a->pages_fd = fd;
	a->nr_runs = t->pagemap->n_runs;
	for (size_t i = 0; i < t->pagemap->n_runs; i++) {
		runs[i].vaddr = t->pagemap->runs[i]->vaddr;
		runs[i].len = (uint64_t)t->pagemap->runs[i]->nr_pages * PAGE_SIZE;
		runs[i].off = t->pagemap->runs[i]->file_off;
		runs[i].by_uffd = vma_of(t->mm, runs[i].vaddr)->kind == VMA_KIND__VMA_ANON_PRIVATE;
	}
	return 0;
}

/* ---- restore: filling private anonymous memory from stasis, on both cores ---- */

#define UFFD_COPY_CHUNK (8UL << 20)
#define UFFD_COPY_THREADS 2

struct uffd_copier {
	const struct restore_task *t;
	int uffd;
	const char *image;     /* the pages image, mapped read-only */
	uint64_t first, last;  /* byte range of the uffd runs' data in the image */
	int err;
	uint64_t fail_addr;
};

static bool run_by_uffd(const struct restore_task *t, const PageRun *r)
{
	return vma_of(t->mm, r->vaddr)->kind == VMA_KIND__VMA_ANON_PRIVATE;
}

/* Copies the part of every uffd run that falls in [c->first, c->last) of the image. */
static void *uffd_copier_main(void *arg)
{
	struct uffd_copier *c = arg;
	const Pagemap *pm = c->t->pagemap;

	for (size_t i = 0; i < pm->n_runs && !c->err; i++) {
		const PageRun *r = pm->runs[i];
		uint64_t from = r->file_off, to = r->file_off + (uint64_t)r->nr_pages * PAGE_SIZE;
		if (!run_by_uffd(c->t, r) || to <= c->first || from >= c->last)
			continue;
		from = from < c->first ? c->first : from;
		to = to > c->last ? c->last : to;
		while (from < to) {
			struct uffdio_copy cp = {
				.dst = r->vaddr + (from - r->file_off),
				.src = (uint64_t)(uintptr_t)(c->image + from),
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

int pages_copy_by_uffd(const struct restore_task *t, pid_t pid, int child_uffd)
{
	const Pagemap *pm = t->pagemap;
	uint64_t image_len = PAGES_HEADER_SIZE + pm->nr_pages * PAGE_SIZE, total = 0, half, seen = 0;
	struct uffd_copier c[UFFD_COPY_THREADS] = { 0 };
	pthread_t helper;
	int pidfd, uffd, err = 0;
	char *image;

	pidfd = syscall(SYS_pidfd_open, pid, 0);
	uffd = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, child_uffd, 0);
	if (pidfd >= 0)
		close(pidfd);
	if (uffd < 0) {
		pr_perror("restore pid %d: cannot take its userfaultfd", pid);
		return -errno;
	}
	image = mmap(NULL, image_len, PROT_READ, MAP_SHARED, t->pages_fd, 0);
	if (image == MAP_FAILED) {
		pr_perror("restore pid %d: cannot map pages-%d.img", pid, pid);
		close(uffd);
		return -ENOMEM;
	}
	/* Split the uffd runs' bytes in two halves, at a page boundary of the image. */
	for (size_t i = 0; i < pm->n_runs; i++)
		if (run_by_uffd(t, pm->runs[i]))
			total += (uint64_t)pm->runs[i]->nr_pages * PAGE_SIZE;
	half = total / 2 / PAGE_SIZE * PAGE_SIZE;
	c[0].first = 0;
	c[0].last = c[1].first = image_len;
	for (size_t i = 0; i < pm->n_runs; i++) {
		const PageRun *r = pm->runs[i];
		uint64_t len = (uint64_t)r->nr_pages * PAGE_SIZE;
		if (!run_by_uffd(t, r))
			continue;
		if (seen + len > half) {
			c[0].last = c[1].first = r->file_off + (half - seen);
			break;
		}
		seen += len;
	}
	c[1].last = image_len;
	for (int i = 0; i < UFFD_COPY_THREADS; i++) {
		c[i].t = t;
		c[i].uffd = uffd;
		c[i].image = image;
	}
	bool threaded = pthread_create(&helper, NULL, uffd_copier_main, &c[1]) == 0;
	uffd_copier_main(&c[0]);
	if (threaded)
		pthread_join(helper, NULL);
	else
		uffd_copier_main(&c[1]);
	for (int i = 0; i < UFFD_COPY_THREADS && !err; i++) {
		if (c[i].err) {
			err = c[i].err;
			pr_err("restore pid %d: copying saved pages to %#llx failed: %s", pid,
			       (unsigned long long)c[i].fail_addr, strerror(-err));
		}
	}
	munmap(image, image_len);
	close(uffd);
	return err;
}

const struct state_ops state_pages = {
	.name = "memory pages",
	.dump = dump_pages,
	.validate = validate_pages,
	.restore = restore_pages,
};
