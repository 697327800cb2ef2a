/*
 * Registered buffers of an io_uring instance (IORING_REGISTER_BUFFERS, liburing's
 * io_uring_register_buffers, fio's fixedbufs): memory of the process that the kernel pins for
 * the requests naming a buffer by index (IORING_OP_READ_FIXED, WRITE_FIXED, SEND_ZC...).
 *
 * fdinfo lists them by index: address and length, "<none>" for an empty slot of a sparse table
 * (listed only when the kernel takes the instance's lock at once: a frozen process holds none).
 * The list is saved with the instance (cr/files/io-uring.c); their memory is the process's,
 * saved with its mappings. A buffer must lie in writable mappings of the process at the dump:
 * the kernel registers only such memory, and a buffer whose memory was unmapped since pins
 * pages the process no longer maps, which no restore could give back (refused by name).
 * Restore: the blob registers the list again once the pages are in, before the mappings take
 * their final protections (cr/restorer/restorer.c), so that the kernel pins the process's own
 * pages at those addresses.
 * Not kept: the tags given with IORING_REGISTER_BUFFERS2 (shown nowhere: a later update of a
 * buffer posts no completion for its tag).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "files.h"
#include "io-uring-buffers.h"
#include "log.h"
#include "restorer/restorer.h"
#include "util.h"

#define MAX_BUFFERS (1u << 14)        /* IORING_MAX_REG_BUFFERS */
#define MAX_BUFFER_LEN (1ull << 30)   /* the kernel's limit for one buffer */
#define USER_END 0x800000000000ull    /* x86_64's user address space */

/* Whether [start, end) lies in writable mappings of l, with no hole. */
static bool writable(const struct proc_vmas *l, uint64_t start, uint64_t end)
{
	uint64_t at = start;

	for (size_t i = 0; i < l->n && at < end; i++) {
		const struct proc_vma *v = &l->v[i];
		if (v->end <= at)
			continue;
		if (v->start > at || !(v->prot & PROT_WRITE))
			return false;
		at = v->end;
	}
	return at >= end;
}

/* One line of the list, "    k: 0xADDR/LEN" or "    k: <none>", for index k: 0 or -EINVAL. */
static int read_buffer(const char *l, uint64_t k, IoUringBuffer *b)
{
	char *end;
	uint64_t index = strtoull(l, &end, 10);

	if (end == l || *end != ':' || index != k)
		return -EINVAL;
	for (l = end + 1; *l == ' ' || *l == '\t'; l++)
		;
	if (!strncmp(l, "<none>", 6))
		return 0;
	return sscanf(l, "0x%" SCNx64 "/%" SCNu64, &b->addr, &b->len) == 2 && b->addr && b->len ? 0 : -EINVAL;
}

int io_uring_buffers_dump(const struct dump_task *t, const char *info, uint64_t count, IoUringRing *r,
			  const char *what)
{
	const char *l = fdinfo_key(info, "UserBufs:");

	if (!count)
		return 0;
	if (count > MAX_BUFFERS) {
		pr_err("%s with %" PRIu64 " registered buffers, more than the kernel allows", what, count);
		return -EINVAL;
	}
	if (!(r->buffers = xzalloc(count * sizeof(*r->buffers))))
		return -ENOMEM;
	for (uint64_t k = 0; k < count; k++) {
		IoUringBuffer *b = xzalloc(sizeof(*b));
		if (!b)
			return -ENOMEM;
		io_uring_buffer__init(b);
		r->buffers[r->n_buffers++] = b;
		if (!l || !(l = strchr(l, '\n')) || read_buffer(l + 1, k, b)) {
			pr_err("%s: its fdinfo lists %" PRIu64 " of its %" PRIu64 " registered buffers (the kernel "
			       "lists them when it finds the instance's lock free: a dump a moment later may)",
			       what, k, count);
			return -EAGAIN;
		}
		l++;
		if (b->addr && !writable(&t->vmas, b->addr, b->addr + b->len)) {
			pr_err("%s: its registered buffer %" PRIu64 " (%#" PRIx64 ", %" PRIu64 " bytes) is no writable "
			       "memory of the process now (unmapped or protected since: the pages the kernel pins "
			       "are not what the process maps there): not supported", what, k, b->addr, b->len);
			return -ENOTSUP;
		}
	}
	return 0;
}

bool io_uring_buffers_valid(const IoUringRing *r)
{
	if (r->n_buffers > MAX_BUFFERS)
		return false;
	for (size_t i = 0; i < r->n_buffers; i++) {
		const IoUringBuffer *b = r->buffers[i];
		if (!b->addr != !b->len || b->len > MAX_BUFFER_LEN || b->addr >= USER_END ||
		    b->len > USER_END - b->addr)
			return false;
	}
	return true;
}

/* The process's own instances with registered buffers (a sharer's are its owner's). */
static bool has_buffers(const FdEntry *e)
{
	return e->kind == FD_KIND__FD_IO_URING && e->io_uring && e->io_uring->n_buffers;
}

static size_t buffers_args_size(const struct restore_task *t)
{
	size_t len = 8;

	for (size_t i = 0; i < t->fds->n_fds; i++) {
		const FdEntry *e = t->fds->fds[i];
		if (has_buffers(e))
			len += sizeof(struct rst_ring_buffers) + e->io_uring->n_buffers * sizeof(struct rst_iovec) + 8;
	}
	return len;
}

static int restore_buffers(struct restore_task *t)
{
	struct restorer_args *a = t->args;
	size_t n = 0;

	for (size_t i = 0; i < t->fds->n_fds; i++)
		n += has_buffers(t->fds->fds[i]);
	a->nr_ring_buffers = 0;
	if (!n)
		return 0;
	struct rst_ring_buffers *out = restorer_args_alloc(t, n * sizeof(*out), &a->ring_buffers_off);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < t->fds->n_fds; i++) {
		const FdEntry *e = t->fds->fds[i];
		if (!has_buffers(e))
			continue;
		struct rst_ring_buffers *rb = &out[a->nr_ring_buffers++];
		struct rst_iovec *iov = restorer_args_alloc(t, e->io_uring->n_buffers * sizeof(*iov), &rb->iovecs_off);
		if (!iov)
			return -ENOMEM;
		rb->fd = (int32_t)e->fd;
		rb->nr = e->io_uring->n_buffers;
		for (size_t k = 0; k < e->io_uring->n_buffers; k++)
			iov[k] = (struct rst_iovec){ e->io_uring->buffers[k]->addr, e->io_uring->buffers[k]->len };
	}
	return 0;
}

const struct state_ops state_io_uring_buffers = {
	.name = "io_uring registered buffers",
	.args_size = buffers_args_size,
	.restore = restore_buffers,
};
