/*
 * PAGEMAP_SCAN (an ioctl on /proc/PID/pagemap, 6.7) over a whole range: as many calls as the
 * regions need, each region handed over in address order.
 */
#ifndef STASIS_PAGEMAP_SCAN_H
#define STASIS_PAGEMAP_SCAN_H

#include <stdint.h>

#include "compat/kernel-abi.h"

/*
 * Every region of [start, end) that PAGEMAP_SCAN finds with how's flags and category masks
 * (its start, end and vector are set here) goes to each(r, opaque). 0, -errno of the ioctl,
 * -EIO if the kernel makes no progress, or the first non-zero value each() returned.
 */
int pagemap_scan_range(int pagemap, struct pm_scan_arg how, uint64_t start, uint64_t end,
		       int (*each)(const struct page_region *r, void *opaque), void *opaque);

#endif
