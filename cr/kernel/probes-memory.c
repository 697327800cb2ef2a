/*
 * Kernel features for memory: pagemap with PFNs (which pages a task has, and which it shares
 * with its parent), userfaultfd and its write-protect modes, PAGEMAP_SCAN, and the two
 * together (writes since the last scan: the loop of iterative migration); soft-dirty bits,
 * which this kernel generation dropped, are looked at for information only; memfd_secret(),
 * which the restore of secret memory makes again.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "kernel/probe.h"
#include "util.h"

/* The pagemap entry of one page of this process. */
static int read_pme(int fd, const void *addr, uint64_t *pme)
{
	off_t off = (uintptr_t)addr / PAGE_SIZE * sizeof(*pme);

	if (pread(fd, pme, sizeof(*pme), off) != sizeof(*pme))
		return -errno ? -errno : -EIO;
	return 0;
}

bool probe_pagemap(struct probe_result *r)
{
	static volatile char page[2 * PAGE_SIZE];
	volatile char *p = (char *)PAGE_ALIGN((uintptr_t)page);
	uint64_t pme;
	int fd, err;

	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return probe_set(r, false, "/proc/self/pagemap: %m");
	*p = 1;
	err = read_pme(fd, (const void *)p, &pme);
	close(fd);
	if (err < 0)
		return probe_set(r, false, "read: %s", strerror(-err));
	if (!(pme & PME_PRESENT))
		return probe_set(r, false, "a touched page is not reported present");
	if (!(pme & PME_PFN_MASK))
		return probe_set(r, false, "PFNs are hidden: needs CAP_SYS_ADMIN");
	return probe_set(r, true, "%s", "");
}

static int uffd_open(void)
{
	int flags = O_CLOEXEC | O_NONBLOCK;
	int fd = syscall(SYS_userfaultfd, flags | UFFD_USER_MODE_ONLY);

	if (fd < 0 && errno == EINVAL) /* before 5.11 */
		fd = syscall(SYS_userfaultfd, flags);
	if (fd < 0 && errno == EPERM) { /* vm.unprivileged_userfaultfd=0: try the device */
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (dev >= 0) {
			fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
			close(dev);
		}
	}
	return fd;
}

/* Opens a userfaultfd with the given features enabled; *avail gets what the kernel has. */
static int uffd_open_api(uint64_t features, uint64_t *avail, struct probe_result *r)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd = uffd_open();

	if (fd < 0) {
		probe_set(r, false, "userfaultfd: %m");
		return -1;
	}
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		probe_set(r, false, "UFFDIO_API with features 0x%" PRIx64 ": %m", features);
		close(fd);
		return -1;
	}
	if (avail)
		*avail = api.features;
	return fd;
}

static void probe_uffd(struct probe_result res[KF_NR])
{
	struct probe_result *base = &res[KF_USERFAULTFD], *async = &res[KF_UFFD_WP_ASYNC];
	uint64_t avail = 0, want = UFFD_FEATURE_PAGEFAULT_FLAG_WP;
	int fd = uffd_open_api(0, &avail, base);

	if (fd < 0) {
		res[KF_UFFD_WP] = res[KF_UFFD_WP_UNPOPULATED] = *async = *base;
		return;
	}
	close(fd);
	probe_set(base, true, "features 0x%" PRIx64, avail);
	probe_set(&res[KF_UFFD_WP], avail & UFFD_FEATURE_PAGEFAULT_FLAG_WP, "%s",
		  avail & UFFD_FEATURE_PAGEFAULT_FLAG_WP ? "" : "not offered");
	probe_set(&res[KF_UFFD_WP_UNPOPULATED], avail & UFFD_FEATURE_WP_UNPOPULATED, "%s",
		  avail & UFFD_FEATURE_WP_UNPOPULATED ? "" : "not offered");
	if (!(avail & UFFD_FEATURE_WP_ASYNC)) {
		probe_set(async, false, "not offered");
		return;
	}
	/* Offered is not enabled: enable it once to be sure. */
	want |= UFFD_FEATURE_WP_ASYNC | (avail & UFFD_FEATURE_WP_UNPOPULATED);
	fd = uffd_open_api(want, NULL, async);
	if (fd < 0)
		return;
	close(fd);
	probe_set(async, true, "%s", "");
}

static long pagemap_scan(int fd, void *start, size_t len, struct page_region *vec, size_t n,
			 uint64_t flags, uint64_t mask)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = flags,
		.start = (uintptr_t)start,
		.end = (uintptr_t)start + len,
		.vec = (uintptr_t)vec,
		.vec_len = n,
		.category_mask = mask,
		.return_mask = mask,
	};

	return ioctl(fd, PAGEMAP_SCAN, &arg);
}

static bool probe_pagemap_scan(struct probe_result *r)
{
	struct page_region vec[4];
	char *p;
	long n;
	int fd;

	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return probe_set(r, false, "/proc/self/pagemap: %m");
	p = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return probe_set(r, false, "mmap: %m");
	}
	p[0] = 1; /* page 0 present, page 1 not */
	n = pagemap_scan(fd, p, 2 * PAGE_SIZE, vec, 4, 0, PAGE_IS_PRESENT);
	if (n < 0)
		probe_set(r, false, "%m%s", errno == ENOTTY ? " (kernel older than 6.7)" : "");
	else if (n != 1 || vec[0].start != (uintptr_t)p || vec[0].end != (uintptr_t)p + PAGE_SIZE)
		probe_set(r, false, "reported %ld regions for one present page", n);
	else
		probe_set(r, true, "%s", "");
	munmap(p, 2 * PAGE_SIZE);
	close(fd);
	return r->ok;
}

/*
 * In a child: write-protect 4 pages with async uffd-wp, write one, and find exactly that one
 * with PAGEMAP_SCAN (which protects it again) - the loop of iterative migration.
 */
static bool dirty_tracking_child(struct probe_result *r)
{
	uint64_t feat = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_ASYNC;
	struct page_region vec[4];
	char *p;
	long n;
	int uffd, pm;

	uffd = uffd_open_api(feat, NULL, r);
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	p = mmap(NULL, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (uffd < 0 || pm < 0 || p == MAP_FAILED)
		return uffd < 0 ? false : probe_set(r, false, "setup: %m");
	memset(p, 1, 4 * PAGE_SIZE);

	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)p, .len = 4 * PAGE_SIZE },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		return probe_set(r, false, "UFFDIO_REGISTER (WP): %m");
	struct uffdio_writeprotect wp = { .range = reg.range, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
		return probe_set(r, false, "UFFDIO_WRITEPROTECT: %m");

	p[2 * PAGE_SIZE] = 2; /* resolved by the kernel: async mode */
	n = pagemap_scan(pm, p, 4 * PAGE_SIZE, vec, 4, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			 PAGE_IS_WRITTEN);
	if (n < 0)
		return probe_set(r, false, "PAGEMAP_SCAN: %m");
	if (n != 1 || vec[0].start != (uintptr_t)p + 2 * PAGE_SIZE ||
	    vec[0].end != (uintptr_t)p + 3 * PAGE_SIZE)
		return probe_set(r, false, "found %ld written regions, expected exactly the page written",
				 n);
	n = pagemap_scan(pm, p, 4 * PAGE_SIZE, vec, 4, 0, PAGE_IS_WRITTEN);
	if (n != 0)
		return probe_set(r, false, "the written page was not protected again");
	return probe_set(r, true, "one written page of 4 found");
}

void probe_write_tracking(struct probe_result res[KF_NR])
{
	struct probe_result *r = &res[KF_DIRTY_TRACKING];

	probe_uffd(res);
	probe_pagemap_scan(&res[KF_PAGEMAP_SCAN]);
	if (!res[KF_UFFD_WP_ASYNC].ok)
		probe_set(r, false, "needs UFFD_FEATURE_WP_ASYNC");
	else if (!res[KF_PAGEMAP_SCAN].ok)
		probe_set(r, false, "needs PAGEMAP_SCAN");
	else
		probe_in_child(dirty_tracking_child, r);
}

/* In a child: soft-dirty bits work if a write after clearing them sets bit 55 again. */
static bool soft_dirty_child(struct probe_result *r)
{
	static volatile char page[2 * PAGE_SIZE];
	volatile char *p = (char *)PAGE_ALIGN((uintptr_t)page);
	uint64_t pme = 0;
	int cr, pm;

	*p = 1;
	cr = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (cr < 0 || pm < 0)
		return probe_set(r, false, "/proc/self/clear_refs or pagemap: %m");
	if (write(cr, CLEAR_REFS_SOFT_DIRTY, 1) != 1)
		return probe_set(r, false, "clear_refs: %m");
	*p = 2;
	if (read_pme(pm, (const void *)p, &pme) < 0)
		return probe_set(r, false, "pagemap: %m");
	return pme & PME_SOFT_DIRTY;
}

/* Not used either way: what the line says is what stasis does instead. */
bool probe_soft_dirty(struct probe_result *r)
{
	if (probe_in_child(soft_dirty_child, r))
		return probe_set(r, true, "not used: stasis tracks writes with PAGEMAP_SCAN + uffd-wp");
	if (!r->detail[0])
		probe_set(r, false, "iterative migration will use PAGEMAP_SCAN + uffd-wp");
	return false;
}

/* memfd_secret(): a file made, sized, mapped MAP_SHARED and written (its pages locked). */
static bool memfd_secret_child(struct probe_result *r)
{
	int fd = syscall(SYS_memfd_secret, O_CLOEXEC);
	char *m;

	if (fd < 0)
		return probe_set(r, false, "memfd_secret: %s (secretmem.enable=0?)", strerror(errno));
	if (ftruncate(fd, PAGE_SIZE))
		return probe_set(r, false, "ftruncate of a memfd_secret() file: %s", strerror(errno));
	m = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return probe_set(r, false, "mmap of a memfd_secret() file: %s", strerror(errno));
	m[0] = 1;
	return probe_set(r, m[0] == 1, "secret memory can be made again");
}

bool probe_memfd_secret(struct probe_result *r)
{
	if (probe_in_child(memfd_secret_child, r))
		return true;
	if (!r->detail[0])
		probe_set(r, false, "memfd_secret() memory cannot be restored");
	return false;
}

/* mmap(MAP_DROPPABLE) of anonymous memory (Linux 6.11; 64-bit only). */
bool probe_map_droppable(struct probe_result *r)
{
	void *m = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return probe_set(r, false, "mmap(MAP_DROPPABLE): %s", strerror(errno));
	munmap(m, PAGE_SIZE);
	return probe_set(r, true, "%s", "");
}

/* A guard page (MADV_GUARD_INSTALL) is found by PAGEMAP_SCAN's PAGE_IS_GUARD, where it is. */
bool probe_pagemap_scan_guard(struct probe_result *r)
{
	struct page_region vec[4];
	long n;
	char *p;
	int fd;

	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return probe_set(r, false, "/proc/self/pagemap: %m");
	p = mmap(NULL, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return probe_set(r, false, "mmap: %m");
	}
	if (madvise(p + PAGE_SIZE, PAGE_SIZE, MADV_GUARD_INSTALL))
		probe_set(r, false, "madvise(MADV_GUARD_INSTALL): %m%s",
			  errno == EINVAL ? " (kernel older than 6.13)" : "");
	else if ((n = pagemap_scan(fd, p, 3 * PAGE_SIZE, vec, 4, 0, PAGE_IS_GUARD)) < 0)
		probe_set(r, false, "PAGEMAP_SCAN PAGE_IS_GUARD: %m%s",
			  errno == EINVAL ? " (kernel older than 6.15)" : "");
	else if (n != 1 || vec[0].start != (uintptr_t)p + PAGE_SIZE ||
		 vec[0].end != (uintptr_t)p + 2 * PAGE_SIZE)
		probe_set(r, false, "found %ld guard regions, expected exactly the guard page", n);
	else
		probe_set(r, true, "%s", "");
	munmap(p, 3 * PAGE_SIZE);
	close(fd);
	return r->ok;
}
