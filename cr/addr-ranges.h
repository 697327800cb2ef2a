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

/* Appends [start, end) (merged with the last range if they touch); -ENOMEM. */
int ranges_add(struct addr_ranges *r, uint64_t start, uint64_t end);
/* In address order, overlapping or touching ranges merged: what ranges_find needs. */
void ranges_sort(struct addr_ranges *r);
/* The range holding addr, or NULL; lookups in rising order walk on from the last one. */
const struct addr_range *ranges_find(struct addr_ranges *r, uint64_t addr);
void ranges_free(struct addr_ranges *r);

#endif
