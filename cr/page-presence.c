/*
 * Which pages hold data (cr/page-presence.h). The per-page pagemap costs the kernel a full
 * entry per page (pfn, flags) and 8 bytes copied out: for a 1 GiB process about 2 MiB and a
 * third of the final dump's page step. One PAGEMAP_SCAN walk per mapping gives the same
 * answer for what the page walk asks of a mapping no other process shares: present, swapped
 * (a uffd-wp marker counts as swapped in both, as it does in pagemap entries), guard.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "log.h"
#include "page-presence.h"
#include "pagemap-scan.h"
#include "util.h"

#define PAGE_SHIFT_BITS 12
#define SCAN_CATEGORIES (PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_GUARD)

int presence_open(struct page_presence *pp, pid_t pid)
{
	char path[64];

	*pp = (struct page_presence){ .pid = pid, .scan_ok = true };
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	pp->pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pp->pagemap_fd < 0) {
		pr_perror("dump pid %d: cannot open %s", pid, path);
		return -errno;
	}
	return 0;
}

static int keep_range(const struct page_region *r, void *opaque)
{
	struct page_presence *pp = opaque;

	if (pp->n == pp->alloc) {
		size_t alloc = pp->alloc ? pp->alloc * 2 : 64;
		struct presence_range *v = xreallocarray(pp->v, alloc, sizeof(*v));
		if (!v) {
			pp->out_of_memory = true;
			return -ENOMEM;
		}
		pp->v = v;
		pp->alloc = alloc;
	}
	pp->v[pp->n++] = (struct presence_range){ r->start, r->end, r->categories };
	return 0;
}

/* The ranges of [start, end) with data, in address order. */
static int scan_mapping(struct page_presence *pp, uint64_t start, uint64_t end)
{
	struct pm_scan_arg how = {
		.category_anyof_mask = SCAN_CATEGORIES,
		.return_mask = SCAN_CATEGORIES,
	};

	pp->n = pp->pos = 0;
	return pagemap_scan_range(pp->pagemap_fd, how, start, end, keep_range, pp);
}

int presence_mapping(struct page_presence *pp, uint64_t start, uint64_t end, bool by_scan,
		     bool full_entries)
{
	int err;

	pp->scanned = false;
	pp->full_entries = full_entries;
	if (!by_scan || !pp->scan_ok)
		return 0;
	if ((err = scan_mapping(pp, start, end)) && pp->out_of_memory)
		return err; /* (said) */
	if (err) {
		pr_info("dump pid %d: PAGEMAP_SCAN of %#llx-%#llx failed (%s): its pagemap is read "
			"page by page", pp->pid, (unsigned long long)start, (unsigned long long)end,
			strerror(-err));
		pp->scan_ok = false;
		return 0;
	}
	pp->scanned = true;
	return 0;
}

uint64_t presence_next(struct page_presence *pp, uint64_t addr, uint64_t end)
{
	if (!pp->scanned)
		return addr;
	while (pp->pos < pp->n && pp->v[pp->pos].end <= addr)
		pp->pos++;
	if (pp->pos == pp->n || pp->v[pp->pos].start >= end)
		return end;
	return pp->v[pp->pos].start > addr ? pp->v[pp->pos].start : addr;
}

/* The pagemap's entries of [from, to) into pme (which starts at the page of from). */
static int read_entries(struct page_presence *pp, uint64_t from, uint64_t to, uint64_t *pme)
{
	size_t bytes = ((to - from) >> PAGE_SHIFT_BITS) * 8;
	ssize_t got = pread(pp->pagemap_fd, pme, bytes, (from >> PAGE_SHIFT_BITS) * 8);

	return got == (ssize_t)bytes ? 0 : got < 0 ? -errno : -EIO;
}

static uint64_t entry_of(uint64_t categories)
{
	return (categories & PAGE_IS_PRESENT ? PM_PRESENT : 0) |
	       (categories & PAGE_IS_SWAPPED ? PM_SWAPPED : 0) |
	       (categories & PAGE_IS_GUARD ? PM_GUARD : 0);
}

int presence_read(struct page_presence *pp, uint64_t addr, size_t nr, uint64_t *pme)
{
	uint64_t end = addr + (nr << PAGE_SHIFT_BITS);

	if (!pp->scanned)
		return read_entries(pp, addr, end, pme);
	memset(pme, 0, nr * sizeof(*pme));
	while (pp->pos < pp->n && pp->v[pp->pos].end <= addr)
		pp->pos++;
	for (size_t i = pp->pos; i < pp->n && pp->v[i].start < end; i++) {
		uint64_t from = pp->v[i].start > addr ? pp->v[i].start : addr;
		uint64_t to = pp->v[i].end < end ? pp->v[i].end : end;
		uint64_t *at = pme + ((from - addr) >> PAGE_SHIFT_BITS);
		size_t n = (to - from) >> PAGE_SHIFT_BITS;
		uint64_t cat = pp->v[i].categories;
		bool markers = (cat & (PAGE_IS_PRESENT | PAGE_IS_SWAPPED)) == PAGE_IS_SWAPPED;
		if (pp->full_entries || markers) {
			int err = read_entries(pp, from, to, at);
			if (err)
				return err;
			for (size_t k = 0; k < n; k++) /* (a guard page is a marker too) */
				at[k] = pm_is_marker(at[k])	? at[k] & PM_GUARD
					: pp->full_entries ? at[k]
							   : entry_of(cat);
			continue;
		}
		for (size_t k = 0; k < n; k++)
			at[k] = entry_of(cat);
	}
	return 0;
}

void presence_close(struct page_presence *pp)
{
	if (pp->pagemap_fd >= 0)
		close(pp->pagemap_fd);
	free(pp->v);
	pp->v = NULL;
	pp->pagemap_fd = -1;
}
