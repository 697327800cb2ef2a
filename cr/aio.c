/*
 * AIO contexts (io_setup): each is a ring mapped in the process ("/[aio] (deleted)"), whose
 * address is the context's id. Dump: the ring's head, tail and events, read from its memory.
 * Restore: the blob makes the context again with io_setup of as many events, moves the ring to
 * its old address (mremap: the id follows), brings the kernel's tail to where it was (writes
 * that complete at once), and puts the events and the head back: the events not read yet are
 * read again. Requests still in flight at the dump (submitted, not completed) are not kept; the
 * kernel does not show them (nor does criu keep them).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "restorer/restorer.h"
#include "task.h"
#include "util.h"

#define AIO_RING_MAGIC 0xa10a10a1

struct aio_ring_head {
	uint32_t id, nr, head, tail, magic, compat_features, incompat_features, header_length;
};

/* Events a ring of len bytes holds. */
static uint32_t ring_events(uint64_t len)
{
	return (len - sizeof(struct aio_ring_head)) / sizeof(struct io_event);
}

static int dump_aio(struct dump_task *t)
{
	Mm *mm = t->mm;

	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];
		struct aio_ring_head h;
		if (v->kind != VMA_KIND__VMA_AIO)
			continue;
		uint64_t len = v->end - v->start;
		if (task_mem_read(t->pid, v->start, &h, sizeof(h)) || h.magic != AIO_RING_MAGIC ||
		    h.header_length != sizeof(h) || h.nr != ring_events(len) || h.head >= h.nr || h.tail >= h.nr) {
			pr_err("dump pid %d: AIO ring at %#llx: not a ring stasis knows (nr %u, head %u, tail %u)",
			       t->pid, (unsigned long long)v->start, h.nr, h.head, h.tail);
			return -ENOTSUP;
		}
		AioRing *r = xzalloc(sizeof(*r));
		if (!r)
			return -ENOMEM;
		aio_ring__init(r);
		r->start = v->start;
		r->nr = h.nr;
		r->head = h.head;
		r->tail = h.tail;
		r->events.len = (size_t)h.nr * sizeof(struct io_event);
		if (!(r->events.data = xzalloc(r->events.len)))
			return -ENOMEM;
		if (task_mem_read(t->pid, v->start + sizeof(h), r->events.data, r->events.len)) {
			pr_err("dump pid %d: cannot read the AIO ring at %#llx", t->pid, (unsigned long long)v->start);
			return -EIO;
		}
		AioRing **more = xreallocarray(mm->aio_rings, mm->n_aio_rings + 1, sizeof(*more));
		if (!more)
			return -ENOMEM;
		mm->aio_rings = more;
		mm->aio_rings[mm->n_aio_rings++] = r;
	}
	return 0;
}

static const VmaEntry *ring_vma(const Mm *mm, uint64_t start)
{
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->start == start && mm->vmas[i]->kind == VMA_KIND__VMA_AIO)
			return mm->vmas[i];
	return NULL;
}

static int validate_aio(struct restore_task *t)
{
	const Mm *mm = t->mm;
	size_t rings = 0;

	for (size_t i = 0; i < mm->n_vmas; i++)
		rings += mm->vmas[i]->kind == VMA_KIND__VMA_AIO;
	for (size_t i = 0; i < mm->n_aio_rings; i++) {
		const AioRing *r = mm->aio_rings[i];
		const VmaEntry *v = ring_vma(mm, r->start);
		if (!v || v->end - v->start < PAGE_SIZE || v->end - v->start > (64u << 20) ||
		    r->nr != ring_events(v->end - v->start) || r->nr < 2 || r->head >= r->nr || r->tail >= r->nr ||
		    r->events.len != (size_t)r->nr * sizeof(struct io_event)) {
			pr_err("image mm-%d.img: AIO ring %zu is invalid", t->pid, i);
			return -EINVAL;
		}
	}
	if (rings != mm->n_aio_rings) {
		pr_err("image mm-%d.img: %zu AIO ring mappings, %zu rings", t->pid, rings, mm->n_aio_rings);
		return -EINVAL;
	}
	return 0;
}

static size_t aio_args_size(const struct restore_task *t)
{
	size_t len = t->mm->n_aio_rings * sizeof(struct rst_aio);

	for (size_t i = 0; i < t->mm->n_aio_rings; i++)
		len += t->mm->aio_rings[i]->events.len + 8;
	return len;
}

static int restore_aio(struct restore_task *t)
{
	struct restorer_args *a = t->args;
	const Mm *mm = t->mm;

	a->nr_aios = mm->n_aio_rings;
	a->aio_fd = -1;
	if (!mm->n_aio_rings)
		return 0;
	struct rst_aio *out = restorer_args_alloc(t, mm->n_aio_rings * sizeof(*out), &a->aios_off);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < mm->n_aio_rings; i++) {
		const AioRing *r = mm->aio_rings[i];
		const VmaEntry *v = ring_vma(mm, r->start);
		void *events = restorer_args_alloc(t, r->events.len, &out[i].events_off);
		if (!events)
			return -ENOMEM;
		memcpy(events, r->events.data, r->events.len);
		out[i].start = v->start;
		out[i].len = v->end - v->start;
		out[i].nr = r->nr;
		out[i].nr_req = (r->nr - 2) / 2; /* the kernel doubles it and adds 2 */
		out[i].head = r->head;
		out[i].tail = r->tail;
	}
	int fd = memfd_create("stasis-aio", MFD_CLOEXEC);
	if (fd < 0 || (a->aio_fd = restore_move_high(t, fd)) < 0)
		return fd < 0 ? -errno : a->aio_fd;
	return 0;
}

const struct state_ops state_aio = {
	.name = "AIO rings",
	.dump = dump_aio,
	.validate = validate_aio,
	.args_size = aio_args_size,
	.restore = restore_aio,
};
