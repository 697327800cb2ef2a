/*
 * The restorer blob. It runs inside the new task after the engine has prepared fds, signal
 * handlers and the args block, with no libc and no stack but its own: it tears down the
 * engine's address space, puts the saved one back, sets what needs the final memory in place
 * (mm fields, rseq, robust list, altstack), reports to the parent and waits there. The parent
 * (the tracer) then removes this region and sets the saved registers.
 */
#include <stddef.h>
#include <stdint.h>
#include <asm/unistd.h>
#include <linux/mman.h>
#include <linux/prctl.h>
#include <linux/errno.h>
#include <linux/ioctl.h>
#include <linux/userfaultfd.h>
#include <linux/aio_abi.h>
#include <asm/prctl.h>

#include "restorer/restorer.h"

#define F_DUPFD_CLOEXEC_ 1030

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif
#include "syscall-raw.h"

#define TASK_TOP 0x7ffffffff000UL
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1

struct rst_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	uint64_t set_tid, set_tid_size, cgroup;
};

long restorer_clone_thread(void *clone_args, uint64_t size, void (*fn)(void *), void *arg);
#define RSEQ_SIG_UNUSED 0

static void fail(struct restorer_args *a, enum rst_step step, long err, uint64_t detail)
{
	a->status.ok = 0;
	a->status.step = step;
	a->status.err = (int32_t)err;
	a->status.detail = detail;
	raw_syscall3(__NR_write, a->status_fd, &a->status, sizeof(a->status));
	raw_syscall1(__NR_exit_group, 1);
	for (;;)
		;
}

static void unmap_all_but_kept(struct restorer_args *a)
{
	uint64_t cur = 0;

	/* keep[] is sorted by start and does not overlap. */
	for (uint32_t i = 0; i <= a->nr_keep; i++) {
		uint64_t end = i < a->nr_keep ? a->keep[i].start : TASK_TOP;
		if (end > cur) {
			long r = raw_syscall2(__NR_munmap, cur, end - cur);
			if (r)
				fail(a, RST_STEP_UNMAP, r, cur);
		}
		if (i < a->nr_keep)
			cur = a->keep[i].end;
	}
}

static void move_special_mappings(struct restorer_args *a)
{
	/* Park every mapping first, so that no destination overlaps a mapping still in place. */
	for (uint32_t i = 0; i < a->nr_moves; i++) {
		struct rst_move *m = &a->moves[i];
		long r = raw_syscall5(__NR_mremap, m->from, m->len, m->len,
				      MREMAP_MAYMOVE | MREMAP_FIXED, m->park);
		if (r != (long)m->park)
			fail(a, RST_STEP_MOVE_SPECIAL, r, m->from);
	}
	for (uint32_t i = 0; i < a->nr_moves; i++) {
		struct rst_move *m = &a->moves[i];
		long r = raw_syscall5(__NR_mremap, m->park, m->len, m->len,
				      MREMAP_MAYMOVE | MREMAP_FIXED, m->to);
		if (r != (long)m->to)
			fail(a, RST_STEP_MOVE_SPECIAL, r, m->to);
	}
}

#define SHM_RDONLY_FLAG 010000
#define SHM_EXEC_FLAG 0100000

/* The madvise() flags the mapping had (KSM may be missing: MADV_MERGEABLE is best effort). */
static void advise(struct restorer_args *a, const struct rst_vma *v)
{
	static const struct { uint32_t bit; int advice; } advices[] = {
		{ VMA_ADVICE_DONTFORK, MADV_DONTFORK },	    { VMA_ADVICE_WIPEONFORK, MADV_WIPEONFORK },
		{ VMA_ADVICE_HUGEPAGE, MADV_HUGEPAGE },	    { VMA_ADVICE_NOHUGEPAGE, MADV_NOHUGEPAGE },
		{ VMA_ADVICE_DONTDUMP, MADV_DONTDUMP },	    { VMA_ADVICE_MERGEABLE, MADV_MERGEABLE },
		{ VMA_ADVICE_SEQUENTIAL, MADV_SEQUENTIAL }, { VMA_ADVICE_RANDOM, MADV_RANDOM },
	};

	for (unsigned k = 0; k < sizeof(advices) / sizeof(advices[0]); k++) {
		if (!(v->advice & advices[k].bit))
			continue;
		long r = raw_syscall3(__NR_madvise, v->start, v->end - v->start, advices[k].advice);
		if (r && advices[k].bit != VMA_ADVICE_MERGEABLE)
			fail(a, RST_STEP_MADVISE, r, v->start);
	}
}

/* A NUMA policy: mbind of [start, start + len), or, len 0, set_mempolicy of the calling thread. */
static long set_policy(const struct rst_mempolicy *p, uint64_t start, uint64_t len)
{
	long maxnode = p->nr_words * 64 + 1; /* (the kernel takes one bit less than told) */

	if (len)
		return raw_syscall6(__NR_mbind, start, len, p->mode, (long)p->nodes, maxnode, 0);
	return raw_syscall3(__NR_set_mempolicy, p->mode, (long)p->nodes, maxnode);
}

static void map_vmas(struct restorer_args *a, struct rst_vma *v)
{
	const struct rst_mempolicy *policies = (const void *)((char *)a + a->mempolicies_off);

	for (uint64_t i = 0; i < a->nr_vmas; i++) {
		uint32_t prot = v[i].prot | (v[i].need_write ? PROT_WRITE : 0);
		long r;
		if (v[i].map_flags == RST_MAP_SYSV_SHM && v[i].pgoff) {
			/* a later piece of an attach (the first piece made it whole): its protection */
			r = raw_syscall3(__NR_mprotect, v[i].start, v[i].end - v[i].start, v[i].prot);
			r = r ? r : (long)v[i].start;
		} else if (v[i].map_flags == RST_MAP_SYSV_SHM) {
			long flags = (prot & PROT_WRITE ? 0 : SHM_RDONLY_FLAG) |
				     (prot & PROT_EXEC ? SHM_EXEC_FLAG : 0);
			r = raw_syscall3(__NR_shmat, v[i].fd, v[i].start, flags);
			if (r == (long)v[i].start) /* PROT_NONE and other mprotect()s of the attach */
				raw_syscall3(__NR_mprotect, v[i].start, v[i].end - v[i].start, v[i].prot);
		} else if (v[i].moved_from) {
			r = raw_syscall5(__NR_mremap, v[i].moved_from, v[i].moved_len,
					 v[i].end - v[i].start, MREMAP_MAYMOVE | MREMAP_FIXED, v[i].start);
			/* (its region was mapped read-write, or PROT_NONE if its source's was not writable) */
			if (r == (long)v[i].start) {
				long p = raw_syscall3(__NR_mprotect, v[i].start, v[i].end - v[i].start, prot);
				r = p ? p : r;
			}
		} else {
			r = raw_syscall6(__NR_mmap, v[i].start, v[i].end - v[i].start, prot,
					 v[i].map_flags | MAP_FIXED, v[i].fd, v[i].pgoff);
		}
		if (r != (long)v[i].start)
			fail(a, RST_STEP_MAP_VMA, r, v[i].start);
		advise(a, &v[i]);
		if (v[i].mempolicy &&
		    (r = set_policy(&policies[v[i].mempolicy - 1], v[i].start, v[i].end - v[i].start)))
			fail(a, RST_STEP_MEMPOLICY, r, v[i].start);
	}
}

/* The head of an AIO ring as the kernel keeps it in the ring's first page. */
struct aio_ring_head {
	uint32_t id, nr, head, tail, magic, compat_features, incompat_features, header_length;
};

/*
 * Each AIO context again, at its old address (its id): io_setup, then mremap. The kernel
 * keeps the ring's tail for itself: writes to a memfd, which complete at once, each add an
 * event (taken at once: the head follows) until the tail is where it was; then the saved
 * events and head. Requests that were still in flight at the dump are not there.
 */
static void restore_aio_rings(struct restorer_args *a)
{
	const struct rst_aio *r = (const struct rst_aio *)((char *)a + a->aios_off);

	for (uint64_t i = 0; i < a->nr_aios; i++) {
		uint64_t ctx = 0;
		long ret = raw_syscall2(__NR_io_setup, r[i].nr_req, &ctx);
		if (ret)
			fail(a, RST_STEP_AIO, ret, r[i].start);
		if (((volatile struct aio_ring_head *)ctx)->nr != r[i].nr)
			fail(a, RST_STEP_AIO, -EINVAL, r[i].start); /* another number of CPUs */
		ret = raw_syscall5(__NR_mremap, ctx, r[i].len, r[i].len, MREMAP_MAYMOVE | MREMAP_FIXED, r[i].start);
		if (ret != (long)r[i].start)
			fail(a, RST_STEP_AIO, ret, r[i].start);
		volatile struct aio_ring_head *ring = (volatile struct aio_ring_head *)r[i].start;
		struct iocb cb;
		struct iocb *cbp = &cb;
		for (char *c = (char *)&cb; c < (char *)(&cb + 1); c++)
			*c = 0;
		cb.aio_lio_opcode = IOCB_CMD_PWRITE;
		cb.aio_fildes = a->aio_fd;
		cb.aio_buf = (uint64_t)&cb;
		cb.aio_nbytes = 1;
		while (ring->tail != r[i].tail) {
			ret = raw_syscall3(__NR_io_submit, r[i].start, 1, &cbp);
			if (ret != 1)
				fail(a, RST_STEP_AIO, ret < 0 ? ret : -EIO, r[i].start);
			ring->head = ring->tail;
		}
		const char *src = (const char *)a + r[i].events_off;
		volatile char *dst = (volatile char *)(ring + 1);
		for (uint64_t k = 0; k < (uint64_t)r[i].nr * sizeof(struct io_event); k++)
			dst[k] = src[k];
		ring->head = r[i].head;
	}
}

static void pread_run(struct restorer_args *a, const struct rst_run *r)
{
	uint64_t done = 0;

	while (done < r->len) {
		long n = raw_syscall4(__NR_pread64, r->fd, r->vaddr + done, r->len - done,
				      r->off + done);
		if (n <= 0)
			fail(a, RST_STEP_READ_PAGES, n ? n : -5 /* EIO */, r->vaddr + done);
		done += n;
	}
}

/* Maps slices of the pages image into the window and copies them in with UFFDIO_COPY. */
static void uffd_copy_run(struct restorer_args *a, int uffd, const struct rst_run *r)
{
	uint64_t done = 0;

	while (done < r->len) {
		uint64_t len = r->len - done < RST_WINDOW_SIZE ? r->len - done : RST_WINDOW_SIZE;
		long m = raw_syscall6(__NR_mmap, a->window, len, PROT_READ, MAP_PRIVATE | MAP_FIXED,
				      r->fd, r->off + done);
		if (m != (long)a->window)
			fail(a, RST_STEP_UFFD, m, r->vaddr + done);
		uint64_t copied = 0;
		while (copied < len) {
			struct uffdio_copy c = {
				.dst = r->vaddr + done + copied,
				.src = a->window + copied,
				.len = len - copied,
			};
			long ret = raw_syscall3(__NR_ioctl, uffd, UFFDIO_COPY, &c);
			if (c.copy > 0)
				copied += c.copy;
			else if (ret)
				fail(a, RST_STEP_UFFD, ret ? ret : c.copy, c.dst);
		}
		done += len;
	}
}

/*
 * A lazy restore's server follows what the program does to its memory before every page is
 * in: a fork (the child's own userfaultfd), mremap, munmap, madvise(MADV_DONTNEED).
 */
#define LAZY_UFFD_FEATURES                                                                 \
	(UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |  \
	 UFFD_FEATURE_EVENT_UNMAP)

/* A userfaultfd on every mapping filled by copy; -1 if the kernel refuses (then: pread). */
static int uffd_open(struct restorer_args *a, struct rst_vma *v)
{
	struct uffdio_api api = { .api = UFFD_API, .features = a->lazy ? LAZY_UFFD_FEATURES : 0 };
	int uffd = raw_syscall1(__NR_userfaultfd, 02000000 /* O_CLOEXEC */);

	if (uffd < 0)
		return -1;
	if (raw_syscall3(__NR_ioctl, uffd, UFFDIO_API, &api))
		goto refuse;
	for (uint64_t i = 0; i < a->nr_vmas; i++) {
		if (!v[i].by_uffd)
			continue;
		struct uffdio_register reg = {
			.range = { .start = v[i].start, .len = v[i].end - v[i].start },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};
		if (raw_syscall3(__NR_ioctl, uffd, UFFDIO_REGISTER, &reg))
			goto refuse;
	}
	return uffd;
refuse:
	raw_syscall1(__NR_close, uffd);
	return -1;
}

/*
 * Hands the userfaultfd to stasis, which copies the runs from both cores, and waits until it
 * says they are all in place.
 */
static void hand_off_uffd_runs(struct restorer_args *a, int uffd)
{
	char reply = 0;

	a->status.ok = 1;
	a->status.step = RST_STEP_PAGES_HANDOFF;
	a->status.uffd = uffd;
	if (raw_syscall3(__NR_write, a->status_fd, &a->status, sizeof(a->status)) != sizeof(a->status))
		fail(a, RST_STEP_UFFD, -5, 0);
	if (raw_syscall3(__NR_read, a->ctl_fd, &reply, 1) != 1 || reply != 'y')
		fail(a, RST_STEP_UFFD, -5 /* EIO */, 0);
}

static void read_pages(struct restorer_args *a, struct rst_vma *v, struct rst_run *runs)
{
	int uffd = uffd_open(a, v);
	int handed_off = uffd >= 0 && a->ctl_fd >= 0;

	if (handed_off)
		hand_off_uffd_runs(a, uffd);
	for (uint64_t i = 0; i < a->nr_runs; i++) {
		if (!runs[i].by_uffd || uffd < 0)
			pread_run(a, &runs[i]);
		else if (!handed_off)
			uffd_copy_run(a, uffd, &runs[i]);
	}
	for (uint64_t i = 0; uffd >= 0 && !(handed_off && a->lazy) && i < a->nr_vmas; i++) {
		/* now: stasis may still hold its copy of the userfaultfd for a moment */
		struct uffdio_range range = { .start = v[i].start, .len = v[i].end - v[i].start };
		if (v[i].by_uffd)
			raw_syscall3(__NR_ioctl, uffd, UFFDIO_UNREGISTER, &range);
	}
	if (uffd >= 0)
		raw_syscall1(__NR_close, uffd);
	raw_syscall2(__NR_munmap, a->window, RST_WINDOW_SIZE);
}

#define MADV_GUARD_INSTALL_ 102
#define __NR_mseal_ 462 /* (x86_64; Linux 6.10) */

/* Guard pages (MADV_GUARD_INSTALL) again, once every page is in and before any lock. */
static void install_guards(struct restorer_args *a)
{
	const struct rst_range *g = (const struct rst_range *)((char *)a + a->guards_off);

	for (uint64_t i = 0; i < a->nr_guards; i++) {
		long r = raw_syscall3(__NR_madvise, g[i].start, g[i].len, MADV_GUARD_INSTALL_);
		if (r)
			fail(a, RST_STEP_GUARD, r, g[i].start);
	}
}

/*
 * Final protections, then locks (once every page is in and no userfaultfd is registered).
 * Each lock is set first without filling in pages (MLOCK_ONFAULT: any error is the lock's),
 * then, unless it was an on-fault one, again with the filling in, whose -ENOMEM (a page it
 * cannot fault in: PROT_NONE, a guard page, a file mapping past the file's end) leaves the lock
 * set and those pages to their faults, as mlockall() in the process had.
 */
static void protect_vmas(struct restorer_args *a, struct rst_vma *v)
{
	for (uint64_t i = 0; i < a->nr_vmas; i++) {
		long r;
		if (v[i].need_write && (r = raw_syscall3(__NR_mprotect, v[i].start, v[i].end - v[i].start, v[i].prot)))
			fail(a, RST_STEP_MPROTECT, r, v[i].start);
		if (!(v[i].advice & VMA_ADVICE_LOCKED))
			continue;
		r = raw_syscall3(__NR_mlock2, v[i].start, v[i].end - v[i].start, MLOCK_ONFAULT);
		if (!r && !(v[i].advice & VMA_ADVICE_LOCKONFAULT) &&
		    (r = raw_syscall3(__NR_mlock2, v[i].start, v[i].end - v[i].start, 0)) == -ENOMEM)
			r = 0;
		if (r)
			fail(a, RST_STEP_MLOCK, r, v[i].start);
	}
	long r = a->mlock_future ? raw_syscall1(__NR_mlockall, a->mlock_future) : 0;
	if (r)
		fail(a, RST_STEP_MLOCK, r, 0);
	/* sealed last: nothing may change those mappings any more */
	for (uint64_t i = 0; i < a->nr_vmas; i++)
		if ((v[i].advice & VMA_ADVICE_SEALED) &&
		    (r = raw_syscall3(__NR_mseal_, v[i].start, v[i].end - v[i].start, 0)))
			fail(a, RST_STEP_SEAL, r, v[i].start);
}

static void set_task_state(struct restorer_args *a)
{
	long r;

	a->mm_map.auxv = (uint64_t)a->auxv;
	r = raw_syscall5(__NR_prctl, PR_SET_MM, PR_SET_MM_MAP, &a->mm_map, sizeof(a->mm_map), 0);
	if (r)
		fail(a, RST_STEP_MM_MAP, r, 0);
	if (a->rseq_addr) {
		r = raw_syscall4(__NR_rseq, a->rseq_addr, a->rseq_len, 0, a->rseq_sig);
		if (r)
			fail(a, RST_STEP_RSEQ, r, a->rseq_addr);
	}
	if (a->robust_list) {
		r = raw_syscall2(__NR_set_robust_list, a->robust_list, a->robust_len);
		if (r)
			fail(a, RST_STEP_ROBUST_LIST, r, a->robust_list);
	}
	raw_syscall1(__NR_set_tid_address, a->clear_child_tid);
	r = raw_syscall2(__NR_sigaltstack, &a->altstack, 0);
	if (r)
		fail(a, RST_STEP_ALTSTACK, r, a->altstack.sp);
}

#define PR_SET_MDWE_ 65 /* linux/prctl.h, 6.3 (the installed headers may be older) */

/* After the last mprotect (memory-deny-write-execute refuses making memory executable), before
 * the threads are made (they inherit the TSC and CPUID settings). */
static void set_process_controls(struct restorer_args *a)
{
	long r;

	if (a->tsc && (r = raw_syscall2(__NR_prctl, PR_SET_TSC, a->tsc)))
		fail(a, RST_STEP_PRCTL, r, PR_SET_TSC);
	if (a->mdwe && (r = raw_syscall5(__NR_prctl, PR_SET_MDWE_, a->mdwe, 0, 0, 0)))
		fail(a, RST_STEP_PRCTL, r, PR_SET_MDWE_);
	if (a->cpuid_faulting && (r = raw_syscall2(__NR_arch_prctl, ARCH_SET_CPUID, 0)))
		fail(a, RST_STEP_PRCTL, r, ARCH_SET_CPUID);
}

static void set_timers_and_limits(struct restorer_args *a)
{
	for (int which = 0; which < 3; which++) {
		long r = raw_syscall3(__NR_setitimer, which, &a->itimers[which], 0);
		if (r)
			fail(a, RST_STEP_ITIMER, r, which);
	}
	for (uint32_t i = 0; i < a->nr_rlimits; i++) {
		struct { uint64_t cur, max; } lim = { a->rlimits[i].cur, a->rlimits[i].max };
		if (raw_syscall4(__NR_prlimit64, 0, a->rlimits[i].resource, &lim, 0))
			a->status.rlimits_refused |= 1u << a->rlimits[i].resource;
	}
}

#define F_SETLK_ 6

/* The POSIX locks the closes just dropped (the process held them all: nothing conflicts). */
static void retake_posix_locks(struct restorer_args *a)
{
	struct rst_posix_lock *l = (struct rst_posix_lock *)((char *)a + a->posix_locks_off);

	for (uint64_t i = 0; i < a->nr_posix_locks; i++) {
		long r = raw_syscall3(__NR_fcntl, l[i].fd, F_SETLK_, &l[i].fl);
		if (r)
			fail(a, RST_STEP_POSIX_LOCK, r, (uint64_t)l[i].fd);
	}
}

#define PR_TIMER_CREATE_RESTORE_IDS 77

/* Each timer with its own ID (the prctl makes timer_create take it), armed with its time left. */
static void create_posix_timers(struct restorer_args *a)
{
	struct rst_posix_timer *pt = (struct rst_posix_timer *)((char *)a + a->posix_timers_off);
	long r;

	if (!a->nr_posix_timers)
		return;
	if ((r = raw_syscall2(__NR_prctl, PR_TIMER_CREATE_RESTORE_IDS, 1)))
		fail(a, RST_STEP_POSIX_TIMER, r, 0);
	for (uint64_t i = 0; i < a->nr_posix_timers; i++) {
		int32_t id = pt[i].id;
		r = raw_syscall3(__NR_timer_create, pt[i].clockid, &pt[i].sev, &id);
		if (!r && id != pt[i].id)
			r = -EEXIST;
		if (!r && (pt[i].its.value_sec || pt[i].its.value_nsec))
			r = raw_syscall4(__NR_timer_settime, id, 0, &pt[i].its, 0);
		if (r)
			fail(a, RST_STEP_POSIX_TIMER, r, pt[i].id);
	}
	raw_syscall2(__NR_prctl, PR_TIMER_CREATE_RESTORE_IDS, 0);
}

#define CAP_V3 0x20080522
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#endif

#define SECBIT_NO_SETUID_FIXUP_ (1u << 2)
#define CAP_SETPCAP_ 8

static long set_caps(uint64_t eff, uint64_t prm, uint64_t inh)
{
	struct { uint32_t version; int pid; } hdr = { CAP_V3, 0 };
	struct { uint32_t eff, prm, inh; } data[2] = {
		{ (uint32_t)eff, (uint32_t)prm, (uint32_t)inh },
		{ (uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32) },
	};

	return raw_syscall2(__NR_capset, &hdr, data);
}

/*
 * The calling thread takes on its saved credentials, as root still can: groups, gids, the
 * bounding set, uids (with the kernel's fixups of the capability sets off meanwhile), its
 * capability sets and ambient ones (CAP_SETPCAP kept for a moment), then its secure bits
 * (which need CAP_SETPCAP, and may forbid raising ambient ones), and only then its
 * capability sets without CAP_SETPCAP if it had not got it. Raw system calls: each thread
 * sets its own.
 */
static void take_creds(struct restorer_args *a, const struct rst_creds *c)
{
	const uint64_t setpcap = 1ull << CAP_SETPCAP_;
	long r;

	if (!c->set)
		return;
	if (!c->keep_groups && (r = raw_syscall2(__NR_setgroups, c->nr_groups, (char *)a + c->groups_off)))
		fail(a, RST_STEP_CREDS, r, 1);
	if ((r = raw_syscall3(__NR_setresgid, c->gids[0], c->gids[1], c->gids[2])))
		fail(a, RST_STEP_CREDS, r, 2);
	raw_syscall1(__NR_setfsgid, c->gids[3]);
	for (uint32_t cap = 0; cap <= c->cap_last && cap < 64; cap++)
		if (!(c->cap_bnd & (1ull << cap)) && (r = raw_syscall2(__NR_prctl, PR_CAPBSET_DROP, cap)))
			fail(a, RST_STEP_CREDS, r, 3);
	if ((r = raw_syscall2(__NR_prctl, PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP_)) ||
	    (r = raw_syscall3(__NR_setresuid, c->uids[0], c->uids[1], c->uids[2])))
		fail(a, RST_STEP_CREDS, r, 4);
	raw_syscall1(__NR_setfsuid, c->uids[3]);
	if ((r = set_caps(c->cap_eff | setpcap, c->cap_prm | setpcap, c->cap_inh)))
		fail(a, RST_STEP_CREDS, r, 5);
	for (uint32_t cap = 0; cap <= c->cap_last && cap < 64; cap++)
		if ((c->cap_amb & (1ull << cap)) &&
		    (r = raw_syscall5(__NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0)))
			fail(a, RST_STEP_CREDS, r, 6);
	if ((r = raw_syscall2(__NR_prctl, PR_SET_SECUREBITS, c->securebits)))
		fail(a, RST_STEP_CREDS, r, 7);
	if ((~c->cap_eff | ~c->cap_prm) & setpcap && (r = set_caps(c->cap_eff, c->cap_prm, c->cap_inh)))
		fail(a, RST_STEP_CREDS, r, 8);
}

#define SECCOMP_SET_MODE_STRICT_ 0
#define SECCOMP_SET_MODE_FILTER_ 1
#define SECCOMP_FILTER_FLAG_TSYNC_ 1
#define SECCOMP_MODE_STRICT_ 1
#define SECCOMP_MODE_FILTER_ 2
#define FUTEX_WAKE_ALL 0x7fffffff

/* filters[first, first + nr), oldest first, with extra_flags besides their own. */
static void install_seccomp_filters(struct restorer_args *a, uint32_t first, uint32_t nr,
				    uint32_t extra_flags)
{
	const struct rst_seccomp_filter *f =
		(const struct rst_seccomp_filter *)((char *)a + a->seccomp_filters_off);

	for (uint32_t i = first; i < first + nr; i++) {
		struct { uint16_t len; uint64_t filter; } prog = { (uint16_t)f[i].len,
								   (uint64_t)a + f[i].insns_off };
		long r = raw_syscall3(__NR_seccomp, SECCOMP_SET_MODE_FILTER_, f[i].flags | extra_flags,
				      &prog);
		if (r) /* TSYNC: the tid of a thread that could not follow */
			fail(a, RST_STEP_SECCOMP, r < 0 ? r : -ESRCH, i);
	}
}

/* The calling thread's own seccomp (the shared filters are in place already). */
static void take_seccomp(struct restorer_args *a, const struct rst_seccomp *s)
{
	long r = 0;

	if (s->mode == SECCOMP_MODE_STRICT_)
		r = raw_syscall3(__NR_seccomp, SECCOMP_SET_MODE_STRICT_, 0, 0);
	else if (s->mode == SECCOMP_MODE_FILTER_)
		install_seccomp_filters(a, s->first, s->nr, 0);
	if (r)
		fail(a, RST_STEP_SECCOMP, r, 0);
}

/*
 * Every thread exists: stasis attaches to each with seccomp suspended before any filter is
 * in place, so that no filter can block what the blob and stasis still do.
 */
static void wait_for_seccomp_tracer(struct restorer_args *a)
{
	char reply = 0;

	a->status.ok = 1;
	a->status.step = RST_STEP_SECCOMP_READY;
	if (raw_syscall3(__NR_write, a->status_fd, &a->status, sizeof(a->status)) != sizeof(a->status) ||
	    raw_syscall3(__NR_read, a->ctl_fd, &reply, 1) != 1 || reply != 'y')
		fail(a, RST_STEP_SECCOMP, -5 /* EIO */, 0);
}

static void wait_for_shared_seccomp(struct restorer_args *a)
{
	while (!__atomic_load_n(&a->seccomp_go, __ATOMIC_SEQ_CST))
		raw_syscall4(__NR_futex, &a->seccomp_go, FUTEX_WAIT, 0, 0);
}

static void copy_comm(char *dst, const char *src)
{
	for (int i = 0; i < 16; i++)
		dst[i] = src[i];
}

/*
 * A thread with a table of its own, a copy of the process's: each saved fd is copied from the
 * process's fd above every number, everything below closed, the copies put at their numbers.
 */
static void own_fd_table(struct restorer_args *a, struct rst_thread *th)
{
	struct rst_thread_fd *f = (struct rst_thread_fd *)((char *)a + th->fds_off);
	long above = a->close_to >= th->fds_above ? a->close_to + 1 : th->fds_above, r;

	for (uint32_t i = 0; i < th->nr_fds; i++)
		if ((f[i].tmp = raw_syscall3(__NR_fcntl, f[i].of, F_DUPFD_CLOEXEC_, above)) < 0)
			fail(a, RST_STEP_THREAD_TABLES, f[i].tmp, th->tid);
	if (above > 0 && (r = raw_syscall3(__NR_close_range, 0, above - 1, 0)))
		fail(a, RST_STEP_THREAD_TABLES, r, th->tid);
	for (uint32_t i = 0; i < th->nr_fds; i++)
		if ((r = raw_syscall3(__NR_dup3, f[i].tmp, f[i].fd, f[i].cloexec ? 02000000 /* O_CLOEXEC */ : 0)) < 0)
			fail(a, RST_STEP_THREAD_TABLES, r, th->tid);
	raw_syscall3(__NR_close_range, above, ~0U, 0);
}

#define IORING_REGISTER_BUFFERS_ 0
#define IORING_REGISTER_RING_FDS_ 20

/* io_uring instances' registered buffers, once their pages are in (a lazy restore's are faulted
 * in by the pins) and before the mappings take their final protections (the kernel pins them for
 * writing). */
static void register_ring_buffers(struct restorer_args *a)
{
	const struct rst_ring_buffers *rb = (const struct rst_ring_buffers *)((char *)a + a->ring_buffers_off);

	for (uint64_t i = 0; i < a->nr_ring_buffers; i++) {
		long r = raw_syscall4(__NR_io_uring_register, rb[i].fd, IORING_REGISTER_BUFFERS_,
				      (char *)a + rb[i].iovecs_off, rb[i].nr);
		if (r)
			fail(a, RST_STEP_RING_BUFFERS, r, (uint64_t)rb[i].fd);
	}
}

/* The io_uring instances the calling thread (tid) had registered with itself, at their indexes
 * (with the process's fd table: before a thread takes a table of its own). */
static void register_ring_fds(struct restorer_args *a, uint64_t tid)
{
	const struct rst_ring_fd *r = (const struct rst_ring_fd *)((char *)a + a->ring_fds_off);

	for (uint64_t i = 0; i < a->nr_ring_fds; i++) {
		if (r[i].tid != tid)
			continue;
		struct { uint32_t offset, resv; uint64_t data; } up = { r[i].index, 0, (uint64_t)r[i].fd };
		long ret = raw_syscall4(__NR_io_uring_register, r[i].fd, IORING_REGISTER_RING_FDS_, &up, 1);
		if (ret != 1)
			fail(a, RST_STEP_RING_FDS, ret < 0 ? ret : -5 /* EIO */, r[i].index);
	}
}

/* A new thread: its own kernel registrations and pending signals, then wait for the tracer. */
static void thread_main(void *arg)
{
	struct rst_thread *th = arg;
	struct restorer_args *a = (struct restorer_args *)th->args;
	struct rst_thread_signal *sigs = (struct rst_thread_signal *)((char *)a + a->thread_signals_off);
	struct rst_stack ss = { th->altstack_sp, th->altstack_flags, th->altstack_size };
	struct rst_thread_cgroup *cgs = (struct rst_thread_cgroup *)((char *)a + a->thread_cgroups_off);
	char comm[16], zero = '0';
	long r;

	for (uint64_t i = 0; i < a->nr_thread_cgroups; i++) /* (with the helper fds still open) */
		if (cgs[i].tid == th->tid && (r = raw_syscall3(__NR_write, cgs[i].fd, &zero, 1)) != 1)
			fail(a, RST_STEP_THREAD_CGROUP, r < 0 ? r : -5 /* EIO */, th->tid);
	register_ring_fds(a, th->tid);
	/* its own cwd and umask, then table (which closes the copy of the cwd's fd, a helper) */
	if (th->cwd_fd >= 0) {
		if ((r = raw_syscall1(__NR_fchdir, th->cwd_fd)))
			fail(a, RST_STEP_THREAD_TABLES, r, th->tid);
		raw_syscall1(__NR_umask, th->umask);
	}
	if (!(th->clone_flags & RST_CLONE_FILES))
		own_fd_table(a, th);
	if (th->rseq_addr &&
	    (r = raw_syscall4(__NR_rseq, th->rseq_addr, th->rseq_len, 0, th->rseq_sig)))
		fail(a, RST_STEP_RSEQ, r, th->rseq_addr);
	if (th->robust_list &&
	    (r = raw_syscall2(__NR_set_robust_list, th->robust_list, th->robust_len)))
		fail(a, RST_STEP_ROBUST_LIST, r, th->robust_list);
	raw_syscall1(__NR_set_tid_address, th->clear_child_tid);
	if (a->mempolicy_threads && (r = set_policy(&th->mempolicy, 0, 0)))
		fail(a, RST_STEP_MEMPOLICY, r, th->tid);
	if (th->timer_slack_ns && (r = raw_syscall2(__NR_prctl, PR_SET_TIMERSLACK, th->timer_slack_ns)))
		fail(a, RST_STEP_PRCTL, r, PR_SET_TIMERSLACK);
	if (th->no_new_privs && (r = raw_syscall5(__NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)))
		fail(a, RST_STEP_PRCTL, r, PR_SET_NO_NEW_PRIVS);
	if (th->cpuid_faulting != a->cpuid_faulting &&
	    (r = raw_syscall2(__NR_arch_prctl, ARCH_SET_CPUID, !th->cpuid_faulting)))
		fail(a, RST_STEP_PRCTL, r, ARCH_SET_CPUID);
	int tsc = 0;
	if (th->tsc && (raw_syscall2(__NR_prctl, PR_GET_TSC, &tsc) || tsc != (int)th->tsc) &&
	    (r = raw_syscall2(__NR_prctl, PR_SET_TSC, th->tsc)))
		fail(a, RST_STEP_PRCTL, r, PR_SET_TSC);
	if ((r = raw_syscall2(__NR_sigaltstack, &ss, 0)))
		fail(a, RST_STEP_ALTSTACK, r, th->altstack_sp);
	copy_comm(comm, th->comm);
	raw_syscall2(__NR_prctl, PR_SET_NAME, comm);
	for (uint64_t i = 0; i < a->nr_thread_signals; i++) {
		if (sigs[i].tid != th->tid)
			continue;
		r = raw_syscall4(__NR_rt_tgsigqueueinfo, raw_syscall0(__NR_getpid), th->tid, sigs[i].sig,
				 sigs[i].info);
		if (r)
			fail(a, RST_STEP_THREADS, r, th->tid);
	}
	__atomic_add_fetch(&a->threads_ready, 1, __ATOMIC_SEQ_CST);
	raw_syscall3(__NR_futex, &a->threads_ready, FUTEX_WAKE, 1);
	if (a->seccomp_sync) {
		wait_for_shared_seccomp(a);
		take_seccomp(a, &th->seccomp);
	}
	take_creds(a, &th->creds);
	/* (after the credentials: a change of uid or gid clears it) */
	if (th->pdeath_signal && (r = raw_syscall2(__NR_prctl, PR_SET_PDEATHSIG, th->pdeath_signal)))
		fail(a, RST_STEP_PRCTL, r, PR_SET_PDEATHSIG);
	__atomic_add_fetch(&a->threads_done, 1, __ATOMIC_SEQ_CST);
	raw_syscall3(__NR_futex, &a->threads_done, FUTEX_WAKE, 1);
	for (;;)
		raw_syscall0(__NR_pause);
}

/* Until *word counts every thread. */
static void wait_for_threads(struct restorer_args *a, uint32_t *word)
{
	for (;;) {
		uint32_t n = __atomic_load_n(word, __ATOMIC_SEQ_CST);
		if (n >= a->nr_threads)
			break;
		raw_syscall4(__NR_futex, word, FUTEX_WAIT, n, 0);
	}
}

static void create_threads(struct restorer_args *a)
{
	struct rst_thread *th = (struct rst_thread *)((char *)a + a->threads_off);

	for (uint64_t i = 0; i < a->nr_threads; i++) {
		struct rst_clone_args ca = {
			.flags = th[i].clone_flags,
			.stack = th[i].stack_top - RST_THREAD_STACK,
			.stack_size = RST_THREAD_STACK,
			.set_tid = (uint64_t)&th[i].tid,
			.set_tid_size = 1,
		};
		long r = restorer_clone_thread(&ca, sizeof(ca), thread_main, &th[i]);
		if (r < 0)
			fail(a, RST_STEP_THREADS, r, th[i].tid);
	}
	wait_for_threads(a, &a->threads_ready);
}

__attribute__((used, noreturn)) void restorer_main(struct restorer_args *a)
{
	struct rst_vma *vmas = (struct rst_vma *)((char *)a + a->vmas_off);
	struct rst_run *runs = (struct rst_run *)((char *)a + a->runs_off);

	unmap_all_but_kept(a);
	move_special_mappings(a);
	map_vmas(a, vmas);
	/* what is left in the reserves: others' mappings, the reserves themselves */
	for (int i = 0; i < RST_NR_RESERVES; i++) {
		long r = a->reserves[i].len ? raw_syscall2(__NR_munmap, a->reserves[i].start, a->reserves[i].len) : 0;
		if (r)
			fail(a, RST_STEP_UNMAP, r, a->reserves[i].start);
	}
	restore_aio_rings(a);
	read_pages(a, vmas, runs);
	register_ring_buffers(a);
	install_guards(a);
	protect_vmas(a, vmas);
	set_task_state(a);
	set_process_controls(a);
	register_ring_fds(a, (uint64_t)raw_syscall0(__NR_gettid));
	create_threads(a);
	create_posix_timers(a);
	set_timers_and_limits(a);
	if (a->seccomp_sync)
		wait_for_seccomp_tracer(a);

	for (int fd = a->close_from; fd <= a->close_to; fd++)
		if (fd != a->status_fd && fd != a->fds_done_fd)
			raw_syscall1(__NR_close, fd); /* ctl_fd among them */
	if (a->fds_done_fd >= 0) { /* no fd is made or closed by this process from here on */
		if (raw_syscall3(__NR_write, a->fds_done_fd, &a->fds_low, sizeof(a->fds_low)) !=
		    sizeof(a->fds_low))
			fail(a, RST_STEP_CLOSE, -5 /* EIO */, a->fds_done_fd);
		raw_syscall1(__NR_close, a->fds_done_fd);
	}
	retake_posix_locks(a);

	/* (its threads exist: they have their own) */
	long nnp = a->no_new_privs ? raw_syscall5(__NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) : 0;
	if (nnp)
		fail(a, RST_STEP_PRCTL, nnp, PR_SET_NO_NEW_PRIVS);
	/* seccomp before the credentials: installing a filter may need the engine's privileges */
	if (a->seccomp_sync) {
		install_seccomp_filters(a, 0, a->seccomp_shared, SECCOMP_FILTER_FLAG_TSYNC_);
		__atomic_store_n(&a->seccomp_go, 1, __ATOMIC_SEQ_CST);
		raw_syscall3(__NR_futex, &a->seccomp_go, FUTEX_WAKE, FUTEX_WAKE_ALL);
		take_seccomp(a, &a->seccomp);
	}
	take_creds(a, &a->creds);
	wait_for_threads(a, &a->threads_done); /* so that stasis finds every thread in pause() */
	if (a->dumpable >= 0)
		raw_syscall2(__NR_prctl, PR_SET_DUMPABLE, a->dumpable);
	/* The engine's safety net (killed if stasis dies mid-restore) becomes the saved value. */
	raw_syscall2(__NR_prctl, PR_SET_PDEATHSIG, a->pdeath_signal);

	a->status.ok = 1;
	a->status.step = RST_STEP_DONE;
	a->status.region_start = a->region_start;
	a->status.region_len = a->region_len;
	raw_syscall3(__NR_write, a->status_fd, &a->status, sizeof(a->status));
	raw_syscall1(__NR_close, a->status_fd);
	/* The parent interrupts us here, unmaps this region and sets the saved registers. */
	for (;;)
		raw_syscall0(__NR_pause);
}
