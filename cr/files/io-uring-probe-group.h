/* The buffer group stasis adds to an io_uring instance for a moment, to tell it from others
 * (cr/files/io-uring-probe-group.c). */
#ifndef STASIS_IO_URING_PROBE_GROUP_H
#define STASIS_IO_URING_PROBE_GROUP_H

#include <stdbool.h>
#include <stddef.h>

#include "task.h"

/* The last group whose ring can be mapped (the offset of IORING_OFF_PBUF_RING has 11 bits). */
#define IO_URING_PROBE_GROUP 2047

/* io_uring_register of the instance at fd of t: by stasis on its fd copy (inj NULL), or by the
 * thread inj runs in, on fd, the argument (len bytes) put at the start of the scratch page. 0 or
 * the -errno. */
long io_uring_register_as(struct dump_task *t, struct inject_ctx *inj, int copy, int fd, unsigned opcode,
			  const void *arg, size_t len);
/* The group added (as io_uring_register_as) and marked as stasis's: 0, or the registration's
 * -errno (not said), or -EIO said (not marked: the group taken back). */
int io_uring_probe_group_add(struct dump_task *t, struct inject_ctx *inj, int copy, int fd);
/* ... and taken back: 0 or the -errno (not said). */
int io_uring_probe_group_remove(struct dump_task *t, struct inject_ctx *inj, int copy, int fd);
/*
 * The group on the instance at fd of t (copy: stasis's fd of it), if a stasis killed while it
 * was there left it (marked so), taken back (as io_uring_register_as: a single submitter's ring
 * by that thread). 1: it was, and is gone; 0: it is no such group; <0, said.
 */
int io_uring_probe_group_take_back(struct dump_task *t, struct inject_ctx *inj, int copy, int fd);

#endif
