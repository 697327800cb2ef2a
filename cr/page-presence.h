/*
 * Which pages of a process's mappings hold data, for the dump's page walk (cr/pages.c):
 * /proc/PID/pagemap entries, 8 bytes a page; or, for mappings whose pages no other process
 * of the tree shares (no pfn or exclusivity needed), the ranges one PAGEMAP_SCAN walk finds
 * per mapping, given as entries with only the present, swapped and guard bits.
 */
#ifndef STASIS_PAGE_PRESENCE_H
#define STASIS_PAGE_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_FILE_OR_SHARED (1ULL << 61)
#define PM_GUARD (1ULL << 58) /* MADV_GUARD_INSTALL: no page, a fault on touch */
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_PFN_MASK ((1ULL << 55) - 1)

struct page_presence {
	pid_t pid;
	int pagemap_fd;
	bool scan_ok;   /* PAGEMAP_SCAN works here (cleared at its first failure) */
	bool scanned;   /* the current mapping was scanned: entries come from its ranges */
	bool out_of_memory; /* the scan's ranges found no room (ours: the dump fails) */
	struct presence_range { uint64_t start, end, categories; } *v; /* the current mapping's */
	size_t n, alloc, pos;
};

/* Opens /proc/PID/pagemap; -errno (said) if it cannot. */
int presence_open(struct page_presence *pp, pid_t pid);
/*
 * The walk enters the mapping [start, end): with by_scan, its ranges are scanned at once
 * (falling back to entries, for good, if the kernel cannot). 0, or -ENOMEM (said).
 */
int presence_mapping(struct page_presence *pp, uint64_t start, uint64_t end, bool by_scan);
/* The entries of nr pages from addr (in the current mapping, addresses rising); -errno. */
int presence_read(struct page_presence *pp, uint64_t addr, size_t nr, uint64_t *pme);
void presence_close(struct page_presence *pp);

#endif
