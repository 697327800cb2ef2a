/*
 * PAGEMAP_SCAN over a whole range (cr/pagemap-scan.h). Only a call that filled the whole
 * vector stopped early: one that returns fewer walked to the end, whatever its walk_end says.
 * This kernel leaves walk_end where its internal buffer of 512 regions filled, mid-walk, when
 * a call finds 513 to 1023; walking again from there, with the process running, reported
 * pages written meanwhile behind regions of higher addresses (write tracking then missed
 * them: lost writes in migration). A call that fills the vector can leave walk_end there too,
 * behind regions it returned: the next walk starts after the last region handed over, and a
 * region (or part) that walk returns again is not handed over twice.
 */
#include <errno.h>
#include <sys/ioctl.h>

#include "pagemap-scan.h"

#define SCAN_VEC 1024

int pagemap_scan_range(int pagemap, struct pm_scan_arg how, uint64_t start, uint64_t end,
		       int (*each)(const struct page_region *r, void *opaque), void *opaque)
{
	struct page_region vec[SCAN_VEC];
	uint64_t done = start; /* every region below was handed over */

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
			struct page_region r = vec[i];
			if (r.end <= done)
				continue;
			if (r.start < done)
				r.start = done;
			int err = each(&r, opaque);
			if (err)
				return err;
			done = r.end;
		}
		if (n < SCAN_VEC)
			break;
		uint64_t next = how.walk_end > done ? how.walk_end : done;
		if (next <= start)
			return -EIO;
		start = next;
	}
	return 0;
}
