/*
 * PAGEMAP_SCAN over a whole range (cr/pagemap-scan.h). Only a call that filled the whole
 * vector stopped early: one that returns fewer walked to the end, whatever its walk_end says.
 * This kernel leaves walk_end where its internal buffer of 512 regions filled, mid-walk, when
 * a call finds 513 to 1023; walking again from there, with the process running, reported
 * pages written meanwhile behind regions of higher addresses (write tracking then missed
 * them: lost writes in migration).
 */
#include <errno.h>
#include <sys/ioctl.h>

#include "pagemap-scan.h"

#define SCAN_VEC 1024

int pagemap_scan_range(int pagemap, struct pm_scan_arg how, uint64_t start, uint64_t end,
		       int (*each)(const struct page_region *r, void *opaque), void *opaque)
{
	struct page_region vec[SCAN_VEC];

	while (start < end) {
		how.size = sizeof(how);
		how.start = start;
		how.end = end;
		how.vec = (uintptr_t)vec;
		how.vec_len = SCAN_VEC;
		long n = ioctl(pagemap, PAGEMAP_SCAN, &how);
		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++) {
			int err = each(&vec[i], opaque);
			if (err)
				return err;
		}
		if (n < SCAN_VEC)
			break;
		if (how.walk_end <= start)
			return -EIO;
		start = how.walk_end;
	}
	return 0;
}
