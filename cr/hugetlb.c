/* Huge pages of the kernel's pool (cr/hugetlb.h). */
#include <stdio.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "hugetlb.h"
#include "util.h"

#define HUGE_SIZE_SHIFT 26 /* MAP_HUGE_SHIFT, MFD_HUGE_SHIFT, SHM_HUGE_SHIFT */

uint64_t hugetlb_page_size_of(const char *path)
{
	struct statfs sfs;

	if (statfs(path, &sfs) || sfs.f_type != HUGETLBFS_MAGIC || sfs.f_bsize <= 0)
		return 0;
	return (uint64_t)sfs.f_bsize;
}

bool hugetlb_size_known(uint64_t size)
{
	char dir[80];

	if (size <= PAGE_SIZE || (size & (size - 1)))
		return false;
	snprintf(dir, sizeof(dir), "/sys/kernel/mm/hugepages/hugepages-%llukB",
		 (unsigned long long)(size >> 10));
	return !access(dir, F_OK);
}

unsigned long hugetlb_size_bits(uint64_t size)
{
	return (unsigned long)__builtin_ctzll(size) << HUGE_SIZE_SHIFT;
}
