/*
 * io_uring instances a thread registered with itself (IORING_REGISTER_RING_FDS, liburing's
 * io_uring_register_ring_fd): the thread then enters the instance by its index in a table of
 * 16 the kernel keeps per thread (IORING_ENTER_REGISTERED_RING), not by its fd. Without this a
 * restored liburing program that registered its ring gets EBADF from its next io_uring_enter.
 *
 * The kernel lists these tables nowhere. In each thread of a process holding an io_uring fd,
 * an io_uring_enter by index of each of the 16 (nothing to submit, nothing to wait for) tells
 * which indexes hold an instance: EBADF where none is, EINVAL if the thread never used io_uring.
 * Which instance an index holds is asked per fd of the process: stasis registers a buffer ring
 * of group PROBE_GROUP with the instance (IOU_PBUF_RING_MMAP: the kernel's memory), the thread
 * asks that group's state through the index (IORING_REGISTER_PBUF_STATUS of
 * IORING_REGISTER_USE_REGISTERED_RING: ENOENT on any other instance), and stasis takes the group
 * back. The instances saved have no buffer groups (cr/files/io-uring.c refuses them), so the
 * group is free; marked as stasis's, what a stasis killed meanwhile leaves is taken back by the
 * next dump (cr/files/io-uring-probe-group.c). A single submitter's ring
 * (IORING_SETUP_SINGLE_ISSUER) takes the group from that thread itself.
 *
 * Refused by name: an index whose instance no fd of the process holds (the program closed it:
 * io_uring_close_ring_fd), one that is a single submitter's of another thread, and any on a
 * kernel without IORING_REGISTER_PBUF_STATUS (6.8), which cannot tell them apart.
 * Not seen: the indexes of a process holding no io_uring fd (asked only where one is: the
 * questions cost a stop of each thread), an instance the process reaches by index alone (its
 * fd closed, its memory its own: IORING_SETUP_NO_MMAP) in such a process.
 * Restore: each thread registers the process's fd at its index again in the blob, before it
 * takes an fd table of its own (cr/restorer/restorer.c).
 */
#include <errno.h>
#include <linux/io_uring.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../compat/kernel-abi.h"
#include "files.h"
#include "io-uring-probe-group.h"
#include "log.h"
#include "pid-ns.h"
#include "restorer/restorer.h"
#include "run.h"
#include "seize.h"
#include "thread-inject.h"
#include "util.h"

#define RING_FD_SLOTS 16 /* IO_RINGFD_REG_MAX */
#define PROBE_GROUP IO_URING_PROBE_GROUP
#define STATUS_AT 64      /* in the scratch page: the group's registration, then the questions */

static const FdTable *process_fds(const struct dump_task *t)
{
	return t->fds_owner ? t->fds_owner->fds : t->fds;
}

/* The indexes of the thread's table that hold an instance (a bit each), or <0. */
static int registered_slots(struct inject_ctx *inj, const char *what)
{
	struct inject_call calls[RING_FD_SLOTS];
	int64_t ret[RING_FD_SLOTS];
	int err, slots = 0;

	for (unsigned k = 0; k < RING_FD_SLOTS; k++)
		calls[k] = (struct inject_call){ SYS_io_uring_enter, { k, 0, 0, IORING_ENTER_REGISTERED_RING } };
	if ((err = inject_syscalls(inj, calls, RING_FD_SLOTS, ret, NULL, 0))) {
		pr_err("%s: cannot ask which io_uring instances it registered: %s", what, strerror(-err));
		return err;
	}
	for (unsigned k = 0; k < RING_FD_SLOTS; k++)
		if (ret[k] != -EBADF && ret[k] != -EINVAL) /* 0, or the instance's own error */
			slots |= 1 << k;
	return slots;
}

/* What the indexes of a thread's table answered, a bit each. */
struct slot_answers {
	int held;         /* the instance asked about */
	int other_issuer; /* EEXIST: a single submitter's instance, not this thread's */
	int untold;       /* EINVAL: a kernel that cannot tell (before 6.8) */
};

/* Which of slots hold the instance at fd e->fd: their bits in a->held. 0 or <0, said. */
static int slots_holding(struct dump_task *t, struct inject_ctx *inj, pid_t tid, const FdEntry *e, int slots,
			 struct slot_answers *a, const char *what)
{
	struct stasis_io_uring_buf_status st[RING_FD_SLOTS] = { 0 };
	struct inject_call calls[RING_FD_SLOTS];
	int64_t ret[RING_FD_SLOTS];
	unsigned n = 0, slot_of[RING_FD_SLOTS];
	bool inside = false;
	int err;

	auto_close int copy = task_fd_copy(t->pid, e->fd);
	if (copy < 0) {
		pr_err("%s: cannot take a copy of fd %u: %s", what, e->fd, strerror(-copy));
		return copy;
	}
	int r = io_uring_probe_group_add(t, NULL, copy, e->fd);
	if (r == -EEXIST && syscall(SYS_kcmp, t->pid, tid, KCMP_FILE, e->fd, e->fd) == 0) {
		inside = true; /* a single submitter's: this thread's, if it answers */
		r = io_uring_probe_group_add(t, inj, copy, e->fd);
	}
	if (r == -EEXIST) /* another thread's single submitter */
		return 0;
	if (r == -EINVAL) { /* a kernel before 6.4 */
		a->untold |= slots;
		return 0;
	}
	if (r) {
		pr_err("%s: cannot add buffer group %d to the io_uring instance at fd %u to tell it: %s", what,
		       PROBE_GROUP, e->fd, strerror(-r));
		return r;
	}
	(void)run_fault(t->ctx, "io_uring-probe"); /* (tests: STASIS_FAULT=kill-at:io_uring-probe) */
	for (unsigned k = 0; k < RING_FD_SLOTS; k++) {
		if (!(slots & (1 << k)))
			continue;
		st[n].buf_group = PROBE_GROUP;
		uint64_t opcode = STASIS_IORING_REGISTER_PBUF_STATUS | IORING_REGISTER_USE_REGISTERED_RING;
		calls[n] = (struct inject_call){ SYS_io_uring_register,
						 { k, opcode, inj->scratch + STATUS_AT + n * sizeof(st[0]), 1 } };
		slot_of[n++] = k;
	}
	if (!(err = task_mem_write(t->pid, inj->scratch + STATUS_AT, st, n * sizeof(st[0]))) &&
	    !(err = inject_syscalls(inj, calls, n, ret, NULL, 0)))
		for (unsigned i = 0; i < n; i++) {
			if (ret[i] == 0)
				a->held |= 1 << slot_of[i];
			else if (ret[i] == -EEXIST)
				a->other_issuer |= 1 << slot_of[i];
			else if (ret[i] == -EINVAL)
				a->untold |= 1 << slot_of[i];
		}
	if (err)
		pr_err("%s: cannot ask which io_uring instance each index is: %s", what, strerror(-err));
	if ((r = io_uring_probe_group_remove(t, inside ? inj : NULL, copy, e->fd))) {
		pr_err("%s: cannot take back buffer group %d from the io_uring instance at fd %u: %s", what,
		       PROBE_GROUP, e->fd, strerror(-r));
		return err ? err : r;
	}
	return err;
}

static int add_ring_fd(TaskCore *c, uint32_t tid, unsigned index, uint32_t fd)
{
	IoUringRingFd *f = xzalloc(sizeof(*f));
	IoUringRingFd **grown = xreallocarray(c->io_uring_ring_fds, c->n_io_uring_ring_fds + 1, sizeof(*grown));

	if (!f || !grown) {
		free(f);
		return -ENOMEM;
	}
	io_uring_ring_fd__init(f);
	f->tid = tid;
	f->index = index;
	f->fd = fd;
	c->io_uring_ring_fds = grown;
	c->io_uring_ring_fds[c->n_io_uring_ring_fds++] = f;
	return 0;
}

/* The instances thread tid (inj injects into it) registered with itself. */
static int dump_thread_ring_fds(struct dump_task *t, struct inject_ctx *inj, pid_t tid)
{
	const FdTable *fds = process_fds(t);
	struct slot_answers a = { 0 };
	uint32_t vtid;
	int err;
	char what[64];

	snprintf(what, sizeof(what), "dump pid %d thread %d", t->pid, tid);
	int slots = registered_slots(inj, what);
	if (slots <= 0)
		return slots;
	if ((err = pid_ns_vtid(t->ctx, t->pid, tid, &vtid)))
		return err;
	for (size_t i = 0; i < fds->n_fds && a.held != slots; i++) {
		const FdEntry *e = fds->fds[i];
		int before = a.held;
		if (e->kind != FD_KIND__FD_IO_URING)
			continue;
		if ((err = slots_holding(t, inj, tid, e, slots & ~a.held, &a, what)))
			return err;
		for (unsigned k = 0; k < RING_FD_SLOTS; k++)
			if ((a.held & ~before & (1 << k)) && (err = add_ring_fd(t->core, vtid, k, e->fd)))
				return err;
	}
	for (unsigned k = 0; k < RING_FD_SLOTS; k++) {
		int bit = 1 << k;
		if (!(slots & ~a.held & bit))
			continue;
		pr_err("%s: the io_uring instance it registered with itself at index %u (IORING_REGISTER_RING_FDS) "
		       "%s: not supported", what, k,
		       a.other_issuer & bit ? "has another thread as its single submitter (IORING_SETUP_SINGLE_ISSUER)"
		       : a.untold & bit     ? "cannot be told from the process's others by this kernel (6.8 can)"
					    : "is held by no fd of the process (closed since: io_uring_close_ring_fd)");
		return -ENOTSUP;
	}
	return 0;
}

static int dump_ring_fds(struct dump_task *t)
{
	const FdTable *fds = process_fds(t);
	bool uses_io_uring = false;
	int err;

	for (size_t i = 0; i < fds->n_fds && !uses_io_uring; i++)
		uses_io_uring = fds->fds[i]->kind == FD_KIND__FD_IO_URING;
	if (!uses_io_uring)
		return 0;
	if ((err = dump_thread_ring_fds(t, &t->inj, t->pid)))
		return err;
	for (size_t i = 0; i < t->nr_threads; i++) {
		const struct frozen_thread *ft = &t->threads[i];
		struct inject_ctx own;
		if (ft->tid == t->pid) /* the thread standing for the process: done */
			continue;
		struct inject_ctx *inj = thread_inject_begin(t, ft, &own);
		err = dump_thread_ring_fds(t, inj, ft->tid);
		int end = thread_inject_end(t, inj);
		if (err || end)
			return err ? err : end;
	}
	return 0;
}

static bool is_io_uring_fd(const struct restore_task *t, uint32_t fd)
{
	const FdEntry *e = fd_entry_at(t->fds_owner ? t->fds_owner : t, fd); /* (its table's owner's) */
	return e && e->fd == fd && e->kind == FD_KIND__FD_IO_URING;
}

static bool is_thread(const TaskCore *c, uint32_t tid)
{
	for (size_t i = 0; i < c->n_threads; i++)
		if (c->threads[i]->tid == tid)
			return true;
	return tid == c->pid;
}

static int validate_ring_fds(struct restore_task *t)
{
	const TaskCore *c = t->core;

	for (size_t i = 0; i < c->n_io_uring_ring_fds; i++) {
		const IoUringRingFd *f = c->io_uring_ring_fds[i];
		bool ok = f->index < RING_FD_SLOTS && is_thread(c, f->tid) && is_io_uring_fd(t, f->fd);
		for (size_t j = 0; ok && j < i; j++)
			ok = c->io_uring_ring_fds[j]->tid != f->tid || c->io_uring_ring_fds[j]->index != f->index;
		if (!ok) {
			pr_err("image core-%d.img: io_uring instance registered with a thread, entry %zu (thread %u, "
			       "index %u, fd %u), is invalid", t->pid, i, f->tid, f->index, f->fd);
			return -EINVAL;
		}
	}
	return 0;
}

static size_t ring_fds_args_size(const struct restore_task *t)
{
	return t->core->n_io_uring_ring_fds * sizeof(struct rst_ring_fd) + 8; /* (+ alignment) */
}

static int restore_ring_fds(struct restore_task *t)
{
	const TaskCore *c = t->core;

	t->args->nr_ring_fds = c->n_io_uring_ring_fds;
	if (!c->n_io_uring_ring_fds)
		return 0;
	struct rst_ring_fd *out = restorer_args_alloc(t, c->n_io_uring_ring_fds * sizeof(*out), &t->args->ring_fds_off);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_io_uring_ring_fds; i++)
		out[i] = (struct rst_ring_fd){ .tid = c->io_uring_ring_fds[i]->tid,
					       .index = c->io_uring_ring_fds[i]->index,
					       .fd = (int32_t)c->io_uring_ring_fds[i]->fd };
	return 0;
}

const struct state_ops state_io_uring_ring_fds = {
	.name = "io_uring instances registered with threads",
	.dump = dump_ring_fds,
	.validate = validate_ring_fds,
	.args_size = ring_fds_args_size,
	.restore = restore_ring_fds,
};
