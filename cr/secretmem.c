/*
 * memfd_secret() memory at dump. Its pages are outside the kernel's direct map: neither
 * process_vm_readv, nor /proc/PID/mem, nor ptrace, nor a reopening of the file reads them,
 * and read() on its fd is not supported. Only a process mapping the file can touch them,
 * through its own page tables, so the frozen process copies them itself with injected
 * syscalls: mincore() on its mapping says which pages of the file exist (those never touched
 * stay holes), memfd_create() gives it a memfd, pwrite64() from the mapping puts each existing
 * page there at its offset in the file; stasis takes that memfd (pidfd_getfd) and has the
 * process close it. A file the process holds only as an fd is mapped for the copy (mmap
 * PROT_READ, MAP_SHARED: counted against its RLIMIT_MEMLOCK like its own mappings) and
 * unmapped after. Whatever happens, the process is left without the memfd and the mapping
 * (if stasis itself dies in between, a close-on-exec memfd or a read-only mapping may remain).
 * The file is one object of cr/shmem.c, read once however many fds and mappings hold it (each
 * range of it once: a mapping of a part already read is not read again), saved in shmem.img
 * and made again there with memfd_secret(). A file no fd of the tree holds is read through its
 * mappings only: its pages that no mapping covers come back as holes (no process could reach
 * them, but by growing a mapping with mremap).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "secretmem.h"
#include "shmem.h"
#include "util.h"

#define COPY_NAME "stasis-secretmem"

/* A range of pages of the mapping that exist, as offsets from its start. */
struct page_span {
	uint64_t off, len;
};

static int inject(struct dump_task *t, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		  uint64_t a4, uint64_t a5, int64_t *ret)
{
	uint64_t args[6] = { a0, a1, a2, a3, a4, a5 };

	return inject_syscall(&t->inj, nr, args, ret);
}

/* The spans of pages of [addr, addr + len) that the file has (mincore in the task). */
static int existing_pages(struct dump_task *t, uint64_t addr, uint64_t len, struct page_span **spans,
			  size_t *n, const char *what)
{
	size_t chunk = t->inj.scratch_len; /* pages per call: one byte each */
	auto_free unsigned char *vec = xmalloc(chunk);

	*spans = NULL;
	*n = 0;
	if (!vec)
		return -ENOMEM;
	for (uint64_t at = 0; at < len; at += chunk * PAGE_SIZE) {
		size_t pages = (len - at) / PAGE_SIZE < chunk ? (len - at) / PAGE_SIZE : chunk;
		uint64_t args[6] = { addr + at, pages * PAGE_SIZE, t->inj.scratch };
		int err = inject_syscall_out(&t->inj, SYS_mincore, args, vec, pages);
		if (err) {
			pr_err("dump pid %d: %s: mincore in the process: %s", t->pid, what, strerror(-err));
			return err;
		}
		for (size_t p = 0; p < pages; p++) {
			uint64_t off = at + p * PAGE_SIZE;
			if (!(vec[p] & 1))
				continue;
			if (*n && (*spans)[*n - 1].off + (*spans)[*n - 1].len == off) {
				(*spans)[*n - 1].len += PAGE_SIZE;
				continue;
			}
			struct page_span *more = xreallocarray(*spans, *n + 1, sizeof(*more));
			if (!more)
				return -ENOMEM;
			*spans = more;
			(*spans)[(*n)++] = (struct page_span){ off, PAGE_SIZE };
		}
	}
	return 0;
}

/* The spans of the mapping at addr written by the task into its memfd tfd, at file_off + off. */
static int write_spans(struct dump_task *t, int tfd, uint64_t addr, uint64_t file_off,
		       const struct page_span *spans, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		for (uint64_t done = 0; done < spans[i].len;) {
			int64_t wrote;
			int err = inject(t, SYS_pwrite64, tfd, addr + spans[i].off + done,
					 spans[i].len - done, file_off + spans[i].off + done, 0, 0, &wrote);
			if (!err && wrote <= 0)
				err = wrote ? (int)wrote : -EIO;
			if (err) {
				pr_err("dump pid %d: %s: the process cannot copy its pages %#llx-%#llx: %s",
				       t->pid, what, (unsigned long long)(addr + spans[i].off + done),
				       (unsigned long long)(addr + spans[i].off + spans[i].len),
				       strerror(-err));
				return err;
			}
			done += wrote;
		}
	}
	return 0;
}

/*
 * The existing pages of the mapping of [file_off, file_off + len) of secret file ino at addr
 * in the task, copied by the task into a memfd that stasis takes (shmem_secret_add). Fault
 * point fault (tests): a failure once the memfd is written.
 */
static int copy_out(struct dump_task *t, uint64_t ino, uint64_t addr, uint64_t file_off,
		    uint64_t len, const char *what, const char *fault)
{
	auto_free struct page_span *spans = NULL;
	size_t n;
	int64_t tfd, closed;
	int err, copy;

	if ((err = existing_pages(t, addr, len, &spans, &n, what)))
		return err;
	if (!n)
		return 0; /* no page of it exists: nothing to save */
	if ((err = task_mem_write(t->pid, t->inj.scratch, COPY_NAME, sizeof(COPY_NAME))) ||
	    (err = inject(t, SYS_memfd_create, t->inj.scratch, MFD_CLOEXEC, 0, 0, 0, 0, &tfd)) ||
	    (err = tfd < 0 ? (int)tfd : 0)) {
		pr_err("dump pid %d: %s: the process cannot make a memfd to copy it into: %s", t->pid,
		       what, strerror(-err));
		return err;
	}
	err = write_spans(t, tfd, addr, file_off, spans, n, what);
	if (!err && run_fault(t->ctx, fault)) {
		pr_err("dump pid %d: %s: injected failure %s", t->pid, what, fault);
		err = -EIO;
	}
	copy = err ? -1 : task_fd_copy(t->pid, tfd);
	if (!err && copy < 0) {
		err = copy;
		pr_err("dump pid %d: %s: cannot take the memfd %lld it was copied into: %s", t->pid, what,
		       (long long)tfd, strerror(-err));
	}
	int cerr = inject(t, SYS_close, tfd, 0, 0, 0, 0, 0, &closed);
	if (!err && (cerr || closed)) {
		err = cerr ? cerr : (int)closed;
		pr_err("dump pid %d: %s: cannot close the memfd %lld it was copied into: %s", t->pid,
		       what, (long long)tfd, strerror(-err));
	}
	if (err) {
		if (copy >= 0)
			close(copy);
		return err;
	}
	return shmem_secret_add(t->ctx, ino, file_off, file_off + len, copy);
}

int secretmem_dump_mapping(struct dump_task *t, uint64_t start, uint64_t end, uint64_t pgoff,
			   uint64_t ino, uint64_t size)
{
	uint64_t file_end = pgoff + (end - start);
	char what[96];
	int r;

	if (!t->inj_active) {
		pr_err("dump pid %d: memfd_secret() mapping %#llx-%#llx read with no syscall injection",
		       t->pid, (unsigned long long)start, (unsigned long long)end);
		return -EINVAL;
	}
	if ((r = shmem_note_secret(t->ctx, ino, size, pgoff, file_end)))
		return r < 0 ? r : 0;
	if (file_end > PAGE_ALIGN(size)) /* pages past the end of the file: none to read */
		file_end = PAGE_ALIGN(size);
	snprintf(what, sizeof(what), "memfd_secret() mapping %#llx-%#llx", (unsigned long long)start,
		 (unsigned long long)end);
	return copy_out(t, ino, start, pgoff, file_end - pgoff, what, "secret-map-copied");
}

int secretmem_dump_fd(struct dump_task *t, int fd, uint64_t ino, uint64_t size)
{
	uint64_t len = PAGE_ALIGN(size);
	int64_t addr, unmapped;
	char what[64];
	int r, err;

	if (!t->inj_active) {
		pr_err("dump pid %d fd %d: memfd_secret() file read with no syscall injection", t->pid, fd);
		return -EINVAL;
	}
	if ((r = shmem_note_secret(t->ctx, ino, size, 0, len)))
		return r < 0 ? r : 0;
	snprintf(what, sizeof(what), "fd %d (a memfd_secret() file)", fd);
	if ((err = inject(t, SYS_mmap, 0, len, PROT_READ, MAP_SHARED, fd, 0, &addr)))
		return err;
	if (addr < 0 && addr > -4096) {
		pr_err("dump pid %d: %s: the process cannot map it to copy it out: %s%s", t->pid, what,
		       strerror(-addr), addr == -EAGAIN ? " (its RLIMIT_MEMLOCK has no room for it)" : "");
		return (int)addr;
	}
	err = copy_out(t, ino, addr, 0, len, what, "secret-fd-copied");
	int uerr = inject(t, SYS_munmap, addr, len, 0, 0, 0, 0, &unmapped);
	if (!err && (uerr || unmapped)) {
		err = uerr ? uerr : (int)unmapped;
		pr_err("dump pid %d: %s: cannot unmap the copy of it at %#llx: %s", t->pid, what,
		       (unsigned long long)addr, strerror(-err));
	}
	return err;
}
