/* Registered files of an io_uring instance (cr/files/io-uring-files.c). */
#ifndef STASIS_IO_URING_FILES_H
#define STASIS_IO_URING_FILES_H

#include <stdbool.h>
#include <stdint.h>

#include "task.h"

/* Dump: the table of count slots fdinfo (info) lists, into r, each file as t's fd of it;
 * refused (said) where that fd cannot be told. what names the instance. 0 or <0. */
int io_uring_files_dump(const struct dump_task *t, const char *info, uint64_t count, IoUringRing *r,
			const char *what);
/* Restore: r's table holds fds of t the kernel registers, each at a slot of the table. */
bool io_uring_files_valid(const struct restore_task *t, const IoUringRing *r);

#endif
