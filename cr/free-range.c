/*
 * Ranges that stasis maps before the tree exists, so that every process of the tree inherits
 * them at an address its own saved mappings leave free: the memory forkers fill to share with
 * their children (cr/cow-share.c), the shared memory objects stasis keeps as mappings
 * (cr/shmem.c). Each process's blob moves what it needs out of them and unmaps the rest.
 */
#include <sys/mman.h>

#include "free-range.h"
#include "proc.h"
#include "task.h"

#define FREE_RANGE_ALIGN (2ULL << 20) /* where ranges start: a huge page's boundary */
#define SEARCH_FROM (1ULL << 40)
#define TASK_TOP 0x7ffffffff000ULL

static uint64_t range_align(uint64_t x)
{
	return (x + FREE_RANGE_ALIGN - 1) & ~(FREE_RANGE_ALIGN - 1);
}

static bool overlaps(uint64_t a, uint64_t len, uint64_t start, uint64_t end)
{
	return a < end && a + len > start;
}

static uint64_t tree_free_range(const struct restore_tree *rt, uint64_t len)
{
	struct proc_vmas own;
	uint64_t addr = SEARCH_FROM;
	bool moved;

	if (proc_read_layout(PROC_SELF, &own))
		return 0;
	do {
		moved = false;
		for (size_t i = 0; i < own.n; i++)
			if (overlaps(addr, len, own.v[i].start, own.v[i].end)) {
				addr = range_align(own.v[i].end);
				moved = true;
			}
		for (size_t k = 0; k < rt->nr_tasks; k++)
			for (size_t i = 0; rt->tasks[k].mm && i < rt->tasks[k].mm->n_vmas; i++) {
				const VmaEntry *v = rt->tasks[k].mm->vmas[i];
				if (overlaps(addr, len, v->start, v->end)) {
					addr = range_align(v->end);
					moved = true;
				}
			}
	} while (moved && addr + len < TASK_TOP);
	proc_vmas_free(&own);
	return addr + len < TASK_TOP ? addr : 0;
}

uint64_t tree_reserve_map(const struct restore_tree *rt, uint64_t len)
{
	uint64_t base = tree_free_range(rt, len);

	if (!base || mmap((void *)base, len, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0) != (void *)base)
		return 0;
	return base;
}
