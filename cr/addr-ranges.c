/* Sets of address ranges (cr/addr-ranges.h). */
#include <errno.h>
#include <stdlib.h>

#include "addr-ranges.h"
#include "util.h"

int ranges_add(struct addr_ranges *r, uint64_t start, uint64_t end)
{
	if (r->n && r->v[r->n - 1].end == start) {
		r->v[r->n - 1].end = end;
		return 0;
	}
	if (r->n == r->alloc) {
		size_t alloc = r->alloc ? r->alloc * 2 : 64;
		struct addr_range *v = xreallocarray(r->v, alloc, sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->v = v;
		r->alloc = alloc;
	}
	r->v[r->n++] = (struct addr_range){ start, end };
	return 0;
}

static uint64_t addr_range_end(const void *base, size_t i)
{
	return ((const struct addr_range *)base)[i].end;
}

const struct addr_range *ranges_find(struct addr_ranges *r, uint64_t addr)
{
	size_t i = range_index(r->v, r->n, addr, &r->hint, addr_range_end);

	return i < r->n && r->v[i].start <= addr ? &r->v[i] : NULL;
}

static int range_cmp(const void *a, const void *b)
{
	const struct addr_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

void ranges_sort(struct addr_ranges *r)
{
	size_t n = 0;

	if (r->n < 2)
		return;
	qsort(r->v, r->n, sizeof(*r->v), range_cmp);
	for (size_t i = 0; i < r->n; i++) {
		if (n && r->v[i].start <= r->v[n - 1].end) {
			if (r->v[i].end > r->v[n - 1].end)
				r->v[n - 1].end = r->v[i].end;
		} else {
			r->v[n++] = r->v[i];
		}
	}
	r->n = n;
}

void ranges_free(struct addr_ranges *r)
{
	free(r->v);
	*r = (struct addr_ranges){ 0 };
}
