/* Registered buffers of an io_uring instance (cr/files/io-uring-buffers.c). */
#ifndef STASIS_IO_URING_BUFFERS_H
#define STASIS_IO_URING_BUFFERS_H

#include <stdbool.h>
#include <stdint.h>

#include "task.h"

/* Dump: the count buffers fdinfo (info) lists, into r; refused (said) unless each lies in
 * writable memory of t now. what names the instance. 0 or <0. */
int io_uring_buffers_dump(const struct dump_task *t, const char *info, uint64_t count, IoUringRing *r,
			  const char *what);
/* Restore: r's buffers are ones the kernel could have registered. */
bool io_uring_buffers_valid(const IoUringRing *r);

#endif
