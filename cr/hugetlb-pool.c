/*
 * The kernel's pool of huge pages at restore (tree_hugetlb_pool, validate only): the tree's
 * memory of huge pages (private mappings, MAP_HUGETLB or of a hugetlb memfd, each reserving
 * its whole size unless MAP_NORESERVE, and the shmem objects of huge pages, cr/shmem.c) must
 * fit in what the pool has free for each size, counting the surplus pages
 * vm.nr_overcommit_hugepages allows: else the restore is refused before anything starts,
 * naming the size and the numbers.
 */
#include <errno.h>
#include <stdio.h>

#include "hugetlb.h"
#include "log.h"
#include "restorer/restorer.h"
#include "shmem.h"
#include "task.h"
#include "tree-objects.h"
#include "tree.h"
#include "util.h"

/* A number of the pool of huge pages of size bytes (/sys/kernel/mm/hugepages), or 0. */
static uint64_t pool_value(uint64_t size, const char *name)
{
	char path[96];
	unsigned long long v = 0;

	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%llukB/%s",
		 (unsigned long long)(size >> 10), name);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/* The huge pages of size bytes the pool can give: free and not reserved, and surplus ones. */
static uint64_t pool_available(uint64_t size)
{
	uint64_t free = pool_value(size, "free_hugepages"), resv = pool_value(size, "resv_hugepages");
	uint64_t over = pool_value(size, "nr_overcommit_hugepages");
	uint64_t surplus = pool_value(size, "surplus_hugepages");

	return (free > resv ? free - resv : 0) + (over > surplus ? over - surplus : 0);
}

static int validate_pool(struct run_ctx *ctx, struct restore_tree *rt)
{
	uint64_t need[64] = { 0 }; /* pages of 2^N bytes */

	/* private mappings, anonymous or of a shmem object of huge pages: each its whole size */
	for (size_t i = 0; i < rt->nr_tasks; i++)
		for (size_t k = 0; k < rt->tasks[i].mm->n_vmas; k++) {
			const VmaEntry *v = rt->tasks[i].mm->vmas[k];
			uint64_t page = v->kind == VMA_KIND__VMA_HUGETLB_PRIVATE ? v->huge_page_size
					: v->kind == VMA_KIND__VMA_SHMEM_PRIVATE
						? shmem_huge_page_size(ctx, v->shmem_id)
						: 0;
			if (page && !(v->advice & VMA_ADVICE_NORESERVE))
				need[__builtin_ctzll(page)] += (v->end - v->start) / page;
		}
	shmem_huge_pages_count(ctx, need);
	for (unsigned shift = 0; shift < 64; shift++) {
		uint64_t size = 1ULL << shift, have = need[shift] ? pool_available(size) : 0;
		if (need[shift] > have) {
			pr_err("restore: the tree's memory needs %llu huge pages of %llu kB, the pool has "
			       "%llu free (vm.nr_hugepages, /sys/kernel/mm/hugepages/hugepages-%llukB)",
			       (unsigned long long)need[shift], (unsigned long long)size >> 10,
			       (unsigned long long)have, (unsigned long long)size >> 10);
			return -ENOMEM;
		}
	}
	return 0;
}

const struct tree_object_ops tree_hugetlb_pool = {
	.name = "huge pages",
	.validate = validate_pool,
};
