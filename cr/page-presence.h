/*
 * Which pages of a process's mappings hold data, for the dump's page walk (cr/pages.c):
 * /proc/PID/pagemap entries, 8 bytes a page; or the ranges one PAGEMAP_SCAN walk finds per
 * private anonymous mapping: for mappings whose pages no other process of the tree shares (no
 * pfn or exclusivity needed) given as entries with only the present, swapped and guard bits,
 * else as the pagemap's entries read over those ranges only (a runtime's 1 TiB PROT_NONE
 * reservation, GHC's, costs one scan, not 2 GiB of entries). Scanned, the walk skips what no
 * range covers (presence_next). A scan counts PTE markers as swapped: the entries of ranges
 * swapped and not present are read, markers given as no page (pm_is_marker).
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
/*
 * A swap entry's type, the frame field's low 5 bits (shown to root): the last type is the
 * kernel's PTE marker, no data (the uffd-wp marker write tracking puts in every hole of a
 * tracked mapping). Reading such a page through /proc/PID/mem faults a page of zeroes in:
 * the process's RSS grew to the size of its tracked mappings (beam.smp: 42 MiB -> 2 GiB).
 */
#define PM_SWAP_TYPE_MASK 0x1fULL
#define PM_SWAP_TYPE_MARKER 0x1fULL

/* Is this entry a PTE marker (swapped with the marker type, not present; a guard page too)? */
static inline bool pm_is_marker(uint64_t pme)
{
	return (pme & (PM_PRESENT | PM_SWAPPED)) == PM_SWAPPED &&
	       (pme & PM_SWAP_TYPE_MASK) == PM_SWAP_TYPE_MARKER;
}

struct page_presence {
	pid_t pid;
	int pagemap_fd;
	bool scan_ok;   /* PAGEMAP_SCAN works here (cleared at its first failure) */
	bool scanned;   /* the current mapping was scanned: entries come from its ranges */
	bool full_entries; /* scanned, but its entries are the pagemap's, read over its ranges */
	bool out_of_memory; /* the scan's ranges found no room (ours: the dump fails) */
	struct presence_range { uint64_t start, end, categories; } *v; /* the current mapping's */
	size_t n, alloc, pos;
};

/* Opens /proc/PID/pagemap; -errno (said) if it cannot. */
int presence_open(struct page_presence *pp, pid_t pid);
/*
 * The walk enters the mapping [start, end): with by_scan, its ranges are scanned at once
 * (falling back to entries, for good, if the kernel cannot); with full_entries too, the
 * entries of the pages in those ranges are the pagemap's (pfn, exclusivity), all others 0.
 * 0, or -ENOMEM (said).
 */
int presence_mapping(struct page_presence *pp, uint64_t start, uint64_t end, bool by_scan,
		     bool full_entries);
/*
 * The first address from addr (page aligned, in the current mapping) whose page may hold
 * data: addr itself unless the mapping was scanned; end if no range is left before end.
 */
uint64_t presence_next(struct page_presence *pp, uint64_t addr, uint64_t end);
/* The entries of nr pages from addr (in the current mapping, addresses rising); -errno. */
int presence_read(struct page_presence *pp, uint64_t addr, size_t nr, uint64_t *pme);
void presence_close(struct page_presence *pp);

#endif
