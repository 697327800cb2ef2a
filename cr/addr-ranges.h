/*
 * Sets of address ranges [start, end), kept in address order: what write tracking reads from
 * PAGEMAP_SCAN (the ranges tracked, the pages written) and looks pages up in, one lookup per
 * page in rising order.
 */
#ifndef STASIS_ADDR_RANGES_H
#define STASIS_ADDR_RANGES_H

#include <stddef.h>
#include <stdint.h>

struct addr_ranges {
	struct addr_range { uint64_t start, end; } *v;
	size_t n, alloc;
	size_t hint; /* where the last lookup ended: lookups in rising order go on from there */
};

/*
 * In n ranges in address order that do not overlap (any kind: end_at(base, i) is range i's
 * end), the first whose end is above addr: its index, or n. With hint (else NULL), where the
 * last lookup ended: a lookup whose every range before the hint ends at or below addr (one
 * at a rising address, say) walks on from there instead of bisecting, and moves the hint.
 * Inline: the lookups run once per page of a dump, and end_at is inlined with it.
 */
static inline size_t range_index(const void *base, size_t n, uint64_t addr, size_t *hint,
				 uint64_t (*end_at)(const void *base, size_t i))
{
	size_t lo = 0, hi = n;

	if (hint && *hint <= n && (!*hint || end_at(base, *hint - 1) <= addr)) {
		lo = *hint;
		while (lo < n && end_at(base, lo) <= addr)
			lo++;
	} else {
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (end_at(base, mid) <= addr)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	if (hint)
		*hint = lo;
	return lo;
}

/* Appends [start, end) (merged with the last range if they touch); -ENOMEM. */
int ranges_add(struct addr_ranges *r, uint64_t start, uint64_t end);
/* In address order, overlapping or touching ranges merged: what ranges_find needs. */
void ranges_sort(struct addr_ranges *r);
/* The range holding addr, or NULL; lookups in rising order walk on from the last one. */
const struct addr_range *ranges_find(struct addr_ranges *r, uint64_t addr);
void ranges_free(struct addr_ranges *r);

#endif
