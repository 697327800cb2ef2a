/*
 * io_uring instances between requests: libuv >= 1.50 (Node.js 22+, uvloop) makes one per event
 * loop to batch its epoll_ctl calls, and liburing programs keep theirs open for their life.
 *
 * What the kernel shows of an instance: fdinfo gives its sizes (SqMask, CqMask), its counters
 * (SqHead and CqTail, the kernel's; SqTail and CqHead, the process's), whether a kernel thread
 * polls it (SqThread), its registered files and buffers, the requests armed on a file's wait
 * queue (PollList) and the completions waiting for room (CqOverflowList). Its setup flags are
 * not shown: the sizes of its two memory regions tell 32-byte completions (IORING_SETUP_CQE32)
 * and 128-byte submissions (IORING_SETUP_SQE128) apart; a copy of the fd is mapped by stasis
 * and the regions measured (the kernel maps the ring region's pages up to the length asked,
 * mincore counts them; a mapping of the entries shorter than their region fails). A ring so
 * small that both sizes fit the same pages is told by what it holds past the smaller layout's
 * end (cr/files/io-uring-layout.c).
 *
 * Saved only when every request the kernel took from the submission ring has completed (its
 * CqTail is its SqHead): nothing is in flight, armed, or queued. Requests in flight that
 * complete by themselves (none armed on a file, no completion waiting for room: file reads and
 * writes, timeouts) are waited for first, at most SETTLE_WAIT_NS, by an io_uring_enter injected
 * into the process's main thread or the ring's one submitter (it runs the completions the kernel
 * queued to that thread): their completions are then saved unread, as if they had come while
 * the process was frozen.
 * Made again with the same sizes, the new ring's counters are brought to the saved ones by as
 * many NOPs (about 20 million a second here; the counters are 32 bits), then the memory the
 * process shares with the kernel is written back whole: the entries the process wrote and has
 * not submitted (SqHead..SqTail), the completions it has not read (CqHead..CqTail), the index
 * array.
 *
 * The rings' mappings are VMA_IO_URING of cr/mm.c. The kernel maps an instance's memory only
 * where it chooses (its get_unmapped_area refuses an address, to mmap and mremap alike), so a
 * mapped instance comes back with its memory in a memfd ("stasis-io_uring") made by cr/mm.c,
 * given to io_uring_setup (IORING_SETUP_NO_MMAP: Linux >= 6.5, and for regions of several
 * pages a kernel that maps scattered pages, as 6.18 here does; pages pinned for the ring's
 * life): the blob maps that memfd where the rings were. The ring region's unused bytes after
 * its header (48..63) hold a tag naming the instance (its inode), which a later dump reads to
 * tie the memfd's mappings to the fd.
 *
 * What is registered with an instance is asked with io_uring_register: an eventfd (EBUSY to a
 * NULL one), provided buffers (IORING_REGISTER_PBUF_STATUS of each of the 65,536 groups, about
 * 75 ms: the kernel lists them nowhere). A ring whose submitter is one task
 * (IORING_SETUP_SINGLE_ISSUER, liburing's advice and fio's) answers EEXIST to any other: it is
 * asked by the process's thread that is its submitter (the main thread tried first), through
 * injected syscalls in loops (cr/seize.h).
 *
 * Registered buffers are listed by fdinfo and registered again by the blob
 * (cr/files/io-uring-buffers.c); registered files are the process's fds of those files
 * (cr/files/io-uring-files.c).
 * Refused by name: a kernel thread polling the ring (IORING_SETUP_SQPOLL), registered buffers or
 * files of a ring another process holds too, provided buffers, a registered eventfd, NAPI busy
 * polling, rings in the process's own memory not made by a restore (IORING_SETUP_NO_MMAP), a
 * single submitter that exited, requests in flight, counted drops or overflows, a mapped ring
 * that another process of the tree holds or maps too (a fork: stasis opens a shared file for the
 * tree, where no process's memfd can be given to the ring).
 * Not seen and so not kept: the other setup flags (SINGLE_ISSUER, DEFER_TASKRUN, COOP_TASKRUN,
 * SUBMIT_ALL, IOPOLL: the ring comes back without them, which only lifts their limits),
 * registered personalities, restrictions, io-wq limits. The instances a thread registered with
 * itself (IORING_REGISTER_RING_FDS) are a state of their own (cr/files/io-uring-ring-fds.c).
 * The kernel's io-wq worker threads of a process (PF_IO_WORKER, never in user space) are not
 * dumped (cr/threads.c): it makes new ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/kcmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../compat/kernel-abi.h"
#include "files.h"
#include "io-uring-buffers.h"
#include "io-uring-files.h"
#include "io-uring-layout.h"
#include "io-uring-probe-group.h"
#include "log.h"
#include "proc.h"
#include "seize.h"
#include "thread-inject.h"
#include "util.h"

/* struct io_rings as the kernel lays it out (the offsets io_uring_setup reports) */
#define RING_SQ_MASK 16
#define RING_CQ_MASK 20
#define RING_SQ_DROPPED 32
#define RING_CQ_FLAGS 40
#define RING_CQ_OVERFLOW 44
#define MAX_SQ_ENTRIES 32768u /* IORING_MAX_ENTRIES */
#define MAX_CQ_ENTRIES (2 * MAX_SQ_ENTRIES)
#define MAX_BUF_GROUPS 65536u /* a buffer group id is 16 bits */
#define SETTLE_WAIT_NS 100000000 /* for requests in flight to complete by themselves: 100 ms */

#define MEMFD_NAME "stasis-io_uring"
#define MEMFD_PATH "/memfd:" MEMFD_NAME " (deleted)"
#define TAG_AT 48 /* struct io_rings' padding before its completions */
#define TAG_MAGIC 0x4f495453u
struct memory_tag {
	uint32_t magic;
	uint16_t ring_pages, sqe_pages; /* the memfd: the ring region, then the entries */
	uint64_t ino;                   /* the instance's inode */
};

/* What fdinfo says of a ring. */
struct ring_info {
	uint64_t sq_mask, sq_head, sq_tail, cached_sq_head, cq_mask, cq_head, cq_tail, cached_cq_tail;
	uint64_t user_files, user_bufs;
	long sq_thread;
	bool polls, overflows, napi;
};

/* Lines under a heading of fdinfo ("PollList:"): true if it lists any (indented lines). */
static bool lists_any(const char *info, const char *heading)
{
	const char *l = fdinfo_key(info, heading);
	if (!l || !(l = strchr(l, '\n')))
		return false;
	return l[1] == ' ' || l[1] == '\t';
}

static int read_info(const char *info, struct ring_info *r)
{
	const char *thread = fdinfo_key(info, "SqThread:");

	if (!fdinfo_u64(info, "SqMask:", 0, &r->sq_mask) || !fdinfo_u64(info, "SqHead:", 10, &r->sq_head) ||
	    !fdinfo_u64(info, "SqTail:", 10, &r->sq_tail) ||
	    !fdinfo_u64(info, "CachedSqHead:", 10, &r->cached_sq_head) ||
	    !fdinfo_u64(info, "CqMask:", 0, &r->cq_mask) || !fdinfo_u64(info, "CqHead:", 10, &r->cq_head) ||
	    !fdinfo_u64(info, "CqTail:", 10, &r->cq_tail) ||
	    !fdinfo_u64(info, "CachedCqTail:", 10, &r->cached_cq_tail) ||
	    !fdinfo_u64(info, "UserFiles:", 10, &r->user_files) ||
	    !fdinfo_u64(info, "UserBufs:", 10, &r->user_bufs) || !thread)
		return -EINVAL;
	r->sq_thread = strtol(thread + strlen("SqThread:"), NULL, 10);
	r->polls = lists_any(info, "PollList:");
	r->overflows = lists_any(info, "CqOverflowList:");
	const char *napi = fdinfo_key(info, "NAPI:");
	char line[64];
	r->napi = napi && !strstr(fdinfo_line(napi, line, sizeof(line)), "disabled");
	return 0;
}

static bool power_of_2(uint64_t n)
{
	return n && !(n & (n - 1));
}

/*
 * Who asks io_uring_register about a ring: stasis on its copy of the fd, or, for a ring whose
 * submitter is one task (IORING_SETUP_SINGLE_ISSUER: EEXIST to any other), the thread of the
 * process that is (the main thread first), on the process's fd, through injected syscalls.
 */
struct ring_asker {
	struct dump_task *t;
	int copy, fd;
	struct inject_ctx *inj; /* the thread asking; NULL: stasis */
	struct inject_ctx own;  /* its context, when not the main thread's */
};

/* Syscall nr (args) run by the thread a->inj: what it returned, or <0. */
static long call_inside(const struct ring_asker *a, long nr, const uint64_t args[6])
{
	int64_t ret;
	int err = inject_syscall(a->inj, nr, args, &ret);
	return err ? err : ret;
}

static long ask(const struct ring_asker *a, unsigned opcode, uint64_t arg)
{
	if (!a->inj)
		return syscall(SYS_io_uring_register, a->copy, opcode, arg, 1) < 0 ? -errno : 0;
	return call_inside(a, SYS_io_uring_register, (const uint64_t[6]){ a->fd, opcode, arg, 1 });
}

/* With a ring of one submitter (EEXIST to others): the process's thread that is, left in
 * a->inj, running syscall nr (args); EEXIST if none is (it exited). What the thread answered,
 * or <0. */
static long find_submitter(struct ring_asker *a, long nr, const uint64_t args[6])
{
	struct dump_task *t = a->t;

	a->inj = &t->inj;
	long err = call_inside(a, nr, args);
	for (size_t i = 0; err == -EEXIST && i < t->nr_threads; i++) {
		const struct frozen_thread *ft = &t->threads[i];
		if (ft->tid == t->pid || syscall(SYS_kcmp, t->pid, ft->tid, KCMP_FILE, a->fd, a->fd))
			continue; /* (the main thread asked; a table of its own without this file) */
		a->inj = thread_inject_begin(t, ft, &a->own);
		if ((err = call_inside(a, nr, args)) == -EEXIST) {
			int end = thread_inject_end(t, a->inj);
			a->inj = &t->inj;
			err = end ? end : err;
		}
	}
	return err;
}

/* A register of opcode (arg) asked by stasis, or, if that answers EEXIST (a ring of one
 * submitter), by the process's thread that is (left in a->inj); EEXIST if none is. */
static long ask_as_submitter(struct ring_asker *a, unsigned opcode, uint64_t arg)
{
	long ret = ask(a, opcode, arg);
	return ret == -EEXIST ? find_submitter(a, SYS_io_uring_register, (const uint64_t[6]){ a->fd, opcode, arg, 1 })
			      : ret;
}

/* The first buffer group of the ring from group from on that is not ENOENT to
 * IORING_REGISTER_PBUF_STATUS: its number, MAX_BUF_GROUPS if none, or <0. */
static long first_buffer_group(const struct ring_asker *a, uint32_t from)
{
	struct stasis_io_uring_buf_status st = { 0 };
	const size_t each = sizeof(st) + sizeof(struct inject_call);
	size_t per_loop = !a->inj			      ? 1
			  : a->inj->pid == a->inj->owner ? a->inj->scratch_len / each
							 : INJECT_THREAD_LOOP_MAX; /* (another thread's list) */
	auto_free struct inject_call *calls = xzalloc(per_loop * sizeof(*calls));
	auto_free struct stasis_io_uring_buf_status *sts = xzalloc(per_loop * sizeof(*sts));
	auto_free int64_t *ret = xzalloc(per_loop * sizeof(*ret));
	int err;

	if (!calls || !sts || !ret)
		return -ENOMEM;
	for (uint32_t first = from; first < MAX_BUF_GROUPS; first += per_loop) {
		size_t n = MAX_BUF_GROUPS - first < per_loop ? MAX_BUF_GROUPS - first : per_loop;
		if (!a->inj) {
			st.buf_group = first;
			ret[0] = syscall(SYS_io_uring_register, a->copy, STASIS_IORING_REGISTER_PBUF_STATUS, &st, 1) < 0
					 ? -errno
					 : 0;
		} else {
			for (size_t k = 0; k < n; k++) {
				sts[k].buf_group = first + k;
				calls[k] = (struct inject_call){ SYS_io_uring_register,
								 { a->fd, STASIS_IORING_REGISTER_PBUF_STATUS,
								   a->inj->scratch + k * sizeof(st), 1 } };
			}
			if ((err = task_mem_write(a->t->pid, a->inj->scratch, sts, n * sizeof(st))) ||
			    (err = inject_syscalls(a->inj, calls, n, ret, NULL, 0)))
				return err;
		}
		for (size_t k = 0; k < n; k++)
			if (ret[k] != -ENOENT)
				return first + k;
	}
	return MAX_BUF_GROUPS;
}

/* Whether the ring has registrations stasis cannot make again: 0, or <0 having said. */
static int refuse_registered(struct ring_asker *a, const char *what)
{
	/* an eventfd: EBUSY if one is registered, else EFAULT (NULL is read) */
	long err = ask_as_submitter(a, IORING_REGISTER_EVENTFD, 0);
	if (err == -EEXIST)
		pr_err("%s whose submitter is one thread (IORING_SETUP_SINGLE_ISSUER) that is none of the "
		       "process's threads (it exited): what is registered with it cannot be read: not supported",
		       what);
	else if (err == -EBUSY)
		pr_err("%s with an eventfd registered for its completions: not supported yet", what);
	else if (err != -EFAULT)
		pr_err("%s: cannot ask whether an eventfd is registered with it: %s", what, strerror(-err));
	if (err != -EFAULT)
		return err == -EEXIST || err == -EBUSY ? -ENOTSUP : err ? err : -EIO;
	/* provided buffers: a buffer group's status is ENOENT where there is none (a kernel
	 * without IORING_REGISTER_PBUF_STATUS, 6.8, says EINVAL to a bad pointer: not asked) */
	if (ask(a, STASIS_IORING_REGISTER_PBUF_STATUS, 1) != -EFAULT)
		return 0;
	long group = first_buffer_group(a, 0);
	if (group == IO_URING_PROBE_GROUP) { /* one a killed stasis left? then the groups after it */
		int gone = io_uring_probe_group_take_back(a->t, a->inj, a->copy, a->fd);
		group = gone < 0 ? gone : gone ? first_buffer_group(a, IO_URING_PROBE_GROUP + 1) : group;
	}
	if (group < 0) {
		pr_err("%s: cannot ask about its provided buffers: %s", what, strerror(-group));
		return group;
	}
	if (group < MAX_BUF_GROUPS) {
		pr_err("%s with provided buffers (group %ld): not supported yet", what, group);
		return -ENOTSUP;
	}
	return 0;
}

/* The asker's injection into a thread other than the main one ended. */
static int asker_end(struct ring_asker *a, int err)
{
	int end = a->inj == &a->own ? thread_inject_end(a->t, a->inj) : 0;
	a->inj = NULL;
	return err ? err : end;
}

/* The shared memory of a ring, mapped read-only by stasis: its ring region (ring_pages of it)
 * and its entries' (sqe_pages). */
struct ring_memory {
	uint8_t *ring, *sqes;
	size_t ring_pages, sqe_pages;
	void *map[2];
	size_t map_len[2];
};

static void unmap_memory(struct ring_memory *m)
{
	for (int i = 0; i < 2; i++)
		if (m->map[i])
			munmap(m->map[i], m->map_len[i]);
}

static void *map_readonly(struct ring_memory *m, int slot, int fd, size_t len, off_t off)
{
	void *at = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, off);
	if (at == MAP_FAILED)
		return NULL;
	m->map[slot] = at;
	m->map_len[slot] = len;
	return at;
}

/* The tag of the memfd at path (a map_files entry), false if it holds none. */
static bool read_tag(const char *path, struct memory_tag *tag)
{
	auto_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd >= 0 && pread(fd, tag, sizeof(*tag), TAG_AT) == sizeof(*tag) && tag->magic == TAG_MAGIC &&
	       tag->ring_pages && tag->sqe_pages;
}

/* The memory of instance ino in a memfd stasis made at a restore (IORING_SETUP_NO_MMAP), from
 * one of t's mappings of it (t->vmas, read at the freeze). */
static int map_restored_memory(const struct dump_task *t, uint64_t ino, struct ring_memory *m)
{
	char mf[MAP_FILES_PATH_SIZE];

	for (size_t i = 0; i < t->vmas.n; i++) {
		const struct proc_vma *pv = &t->vmas.v[i];
		struct memory_tag tag;
		if (!pv->shared || strcmp(pv->path, MEMFD_PATH))
			continue;
		map_files_path(mf, t->pid, pv->start, pv->end);
		if (!read_tag(mf, &tag) || tag.ino != ino)
			continue;
		auto_close int fd = open(mf, O_RDONLY | O_CLOEXEC);
		size_t total = ((size_t)tag.ring_pages + tag.sqe_pages) * PAGE_SIZE;
		if (fd < 0 || !(m->ring = map_readonly(m, 0, fd, total, 0)))
			return -errno;
		m->sqes = m->ring + (size_t)tag.ring_pages * PAGE_SIZE;
		m->ring_pages = tag.ring_pages;
		m->sqe_pages = tag.sqe_pages;
		return 0;
	}
	return -ENOENT;
}

static int map_memory(const struct dump_task *t, int copy, uint64_t ino, uint32_t sq, uint32_t cq,
		      struct ring_memory *m, const char *what)
{
	size_t ring_len = PAGE_ALIGN(io_uring_ring_bytes(sq, cq, 32, true));
	if (!(m->ring = map_readonly(m, 0, copy, ring_len, IORING_OFF_SQ_RING))) {
		int err = -errno;
		if (!map_restored_memory(t, ino, m))
			return 0;
		if (err == -EINVAL || err == -ENOMEM)
			pr_err("%s whose rings are in the process's own memory (IORING_SETUP_NO_MMAP): "
			       "not supported", what);
		else
			pr_err("%s: cannot map its rings: %s", what, strerror(-err));
		return err;
	}
	auto_free unsigned char *in = xzalloc(ring_len / PAGE_SIZE);
	if (!in)
		return -ENOMEM;
	if (mincore(m->ring, ring_len, in)) {
		pr_perror("%s: cannot measure its rings", what);
		return -errno;
	}
	while (m->ring_pages < ring_len / PAGE_SIZE && in[m->ring_pages] & 1)
		m->ring_pages++;
	/* the entries' region maps whole or not at all */
	for (size_t pages = PAGE_ALIGN((size_t)sq * 64) / PAGE_SIZE;
	     pages <= PAGE_ALIGN((size_t)sq * 128) / PAGE_SIZE && !m->sqes; pages++)
		if ((m->sqes = map_readonly(m, 1, copy, pages * PAGE_SIZE, IORING_OFF_SQES)))
			m->sqe_pages = pages;
	if (!m->sqes || !m->ring_pages) {
		pr_err("%s: cannot map its submission entries or measure its rings (%zu pages)", what,
		       m->ring_pages);
		return -EIO;
	}
	return 0;
}

static uint32_t ring_u32(const struct ring_memory *m, size_t off)
{
	uint32_t v;
	memcpy(&v, m->ring + off, sizeof(v));
	return v;
}

/* e's ring from the memory m of a ring of sq and cq entries. */
static int save_memory(const struct ring_memory *m, uint32_t sq, uint32_t cq, IoUringRing *r,
		       const char *what)
{
	size_t cqe_size = io_uring_completion_size(m->ring, m->ring_pages, sq, cq);
	size_t sqe_size = io_uring_submission_size(m->sqes, m->sqe_pages, sq);
	size_t array = io_uring_array_offset(cq, cqe_size);

	if (ring_u32(m, RING_SQ_MASK) != sq - 1 || ring_u32(m, RING_CQ_MASK) != cq - 1 ||
	    IO_URING_CQES + (size_t)cq * cqe_size > m->ring_pages * PAGE_SIZE) {
		pr_err("%s: its rings (%zu pages) are not laid out as its fdinfo says (%u and %u entries)",
		       what, m->ring_pages, sq, cq);
		return -EIO;
	}
	uint32_t dropped = ring_u32(m, RING_SQ_DROPPED), overflow = ring_u32(m, RING_CQ_OVERFLOW);
	if (dropped || overflow) {
		pr_err("%s that has counted %u invalid submissions and %u lost completions: its "
		       "counters cannot be made again", what, dropped, overflow);
		return -ENOTSUP;
	}
	r->has_sqe128 = r->sqe128 = sqe_size == 128;
	r->has_cqe32 = r->cqe32 = cqe_size == 32;
	r->has_cq_flags = true;
	r->cq_flags = ring_u32(m, RING_CQ_FLAGS);
	r->sqes.len = (size_t)sq * sqe_size;
	r->cqes.len = (size_t)cq * cqe_size;
	r->sqes.data = xmemdup(m->sqes, r->sqes.len);
	r->cqes.data = xmemdup(m->ring + IO_URING_CQES, r->cqes.len);
	if (!r->sqes.data || !r->cqes.data)
		return -ENOMEM;
	size_t array_end = array + (size_t)sq * 4;
	if (array_end <= m->ring_pages * PAGE_SIZE && io_uring_nonzero(m->ring, array, array_end)) {
		r->has_sq_array = true;
		r->sq_array.len = (size_t)sq * 4;
		if (!(r->sq_array.data = xmemdup(m->ring + array, r->sq_array.len)))
			return -ENOMEM;
	}
	pr_info("%s: %u submission entries of %zu bytes, %u completions of %zu bytes%s", what, sq,
		sqe_size, cq, cqe_size, r->has_sq_array ? "" : ", no index array written");
	return 0;
}

static pid_t other_user(const struct dump_task *t, uint64_t ino);

static bool in_flight(const struct ring_info *ri)
{
	return ri->polls || ri->overflows || ri->sq_head != ri->cached_sq_head || ri->cq_tail != ri->cached_cq_tail ||
	       ri->cq_tail != ri->sq_head;
}

/*
 * Requests in flight that complete by themselves (none armed on a file, no completion waiting
 * for room), waited for at most SETTLE_WAIT_NS by the ring's one submitter (left in a->inj),
 * else the process's main thread: an injected io_uring_enter waiting for every completion (which
 * also runs the completions the kernel queued to that thread). Its fdinfo read again into *ri,
 * the text into *info (the caller's to free). 0, or <0 (not said: the caller says what stays
 * in flight).
 */
static int settle(struct ring_asker *a, struct ring_info *ri, char **info)
{
	struct dump_task *t = a->t;
	struct {
		struct io_uring_getevents_arg arg;
		struct { int64_t sec, nsec; } ts;
	} w = { .arg = { .ts = t->inj.scratch + offsetof(typeof(w), ts) }, .ts = { 0, SETTLE_WAIT_NS } };
	uint64_t args[6] = { a->fd, 0, (uint32_t)(ri->sq_head - ri->cq_head), /* (the kernel caps it) */
			     IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, t->inj.scratch, sizeof(w.arg) };
	uint64_t start = now_ns(CLOCK_MONOTONIC);
	char path[64];
	int err = task_mem_write(t->pid, t->inj.scratch, &w, sizeof(w));

	if (err)
		return err;
	/* which thread waits: a register answers EEXIST to all but a single submitter, certainly
	 * (a wait by another thread may just wait, without the completions deferred to it) */
	long ret = ask_as_submitter(a, IORING_REGISTER_EVENTFD, 0);
	if (ret != -EEXIST) {
		if (!a->inj)
			a->inj = &t->inj;
		ret = call_inside(a, SYS_io_uring_enter, args); /* (-ETIME, -EINTR: fdinfo tells) */
	}
	if (a->inj == &t->inj)
		a->inj = NULL; /* (not one submitter's: stasis asks the rest itself) */
	if (ret < 0 && ret > -4096 && ret != -ETIME && ret != -EINTR && ret != -EEXIST)
		return (int)ret;
	pr_debug("dump pid %d fd %d: waited %.1f ms for its io_uring requests in flight (%s)", t->pid, a->fd,
		 (now_ns(CLOCK_MONOTONIC) - start) / 1e6, ret ? strerror((int)-ret) : "all completed");
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", t->pid, a->fd);
	if (!(*info = read_proc_record(path)) || read_info(*info, ri))
		return *info ? -EINVAL : -errno;
	if (!in_flight(ri) || ri->polls)
		return 0;
	/* completions the kernel queued to the other threads that submitted (task work): each runs
	 * its own on its way back from a syscall (one thread's injection at a time: they share a stub) */
	pid_t waited = a->inj ? a->inj->pid : t->pid;
	if (a->inj == &a->own && (err = asker_end(a, 0)))
		return err;
	for (size_t i = 0; i < t->nr_threads; i++) {
		struct inject_ctx own, *inj;
		int64_t pid;
		if (t->threads[i].tid == t->pid || t->threads[i].tid == waited)
			continue;
		inj = thread_inject_begin(t, &t->threads[i], &own);
		err = inject_syscall(inj, SYS_getpid, (const uint64_t[6]){ 0 }, &pid);
		int end = thread_inject_end(t, inj);
		if (err || end)
			return err ? err : end;
	}
	free(*info);
	if (!(*info = read_proc_record(path)))
		return -errno;
	return read_info(*info, ri);
}

static int dump_io_uring(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	struct ring_info ri = { 0 };
	auto_free char *settled = NULL;
	const char *info = p->info;
	char what[80];

	if (strcmp(p->link, "anon_inode:[io_uring]"))
		return 0;
	snprintf(what, sizeof(what), "dump pid %d fd %d: an io_uring instance", t->pid, p->fd);
	if (read_info(p->info, &ri)) {
		pr_err("%s: its fdinfo does not show its rings' counters (an older kernel?)", what);
		return -EINVAL;
	}
	uint32_t sq = ri.sq_mask + 1, cq = ri.cq_mask + 1;
	if (ri.sq_thread != -1) {
		pr_err("%s with a kernel thread polling its submissions (IORING_SETUP_SQPOLL, thread %ld): "
		       "not supported", what, ri.sq_thread);
		return -ENOTSUP;
	}
	if (ri.napi) {
		pr_err("%s with busy polling of network queues (NAPI): not supported yet", what);
		return -ENOTSUP;
	}
	auto_close int copy = task_fd_copy(t->pid, p->fd);
	if (copy < 0) {
		pr_err("%s: cannot take a copy of it: %s", what, strerror(-copy));
		return copy;
	}
	struct ring_asker asker = { .t = t, .copy = copy, .fd = p->fd };
	if (in_flight(&ri) && !ri.polls && !ri.overflows) {
		int err = settle(&asker, &ri, &settled);
		if (err) {
			pr_err("%s: cannot wait for its requests in flight: %s", what, strerror(-err));
			return asker_end(&asker, err);
		}
		info = settled;
	}
	if (in_flight(&ri)) {
		pr_err("%s with requests in flight (%llu taken from its submission ring, %llu completed%s%s): "
		       "not supported, a ring is saved between requests (a dump a moment later may find "
		       "it so)", what,
		       (unsigned long long)ri.cached_sq_head, (unsigned long long)ri.cached_cq_tail,
		       ri.polls ? ", some waiting on a file" : "",
		       ri.overflows ? ", completions waiting for room in its ring" : "");
		return asker_end(&asker, -ENOTSUP);
	}
	if (!power_of_2(sq) || !power_of_2(cq) || sq > MAX_SQ_ENTRIES || cq > MAX_CQ_ENTRIES || cq < sq) {
		pr_err("%s of %u and %u entries, which stasis does not know", what, sq, cq);
		return asker_end(&asker, -EINVAL);
	}
	int err = asker_end(&asker, refuse_registered(&asker, what));
	if (err)
		return err;
	struct ring_memory m = { 0 };
	IoUringRing *r = xzalloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	io_uring_ring__init(r);
	e->io_uring = r; /* (freed with e) */
	e->has_flags = true;
	e->flags = p->flags;
	r->sq_entries = sq;
	r->cq_entries = cq;
	r->sq_head = ri.sq_head;
	r->sq_tail = ri.sq_tail;
	r->cq_head = ri.cq_head;
	r->cq_tail = ri.cq_tail;
	pid_t other = ri.user_bufs || ri.user_files ? other_user(t, p->id_ino) : 0;
	if (other) {
		pr_err("%s with registered %s, which pid %d holds or maps too (a fork): not supported yet", what,
		       ri.user_bufs ? "buffers" : "files", other);
		return -ENOTSUP;
	}
	if ((err = io_uring_buffers_dump(t, info, ri.user_bufs, r, what)) ||
	    (err = io_uring_files_dump(t, info, ri.user_files, r, what)))
		return err;
	if (!(err = map_memory(t, copy, p->id_ino, sq, cq, &m, what)))
		err = save_memory(&m, sq, cq, r, what);
	unmap_memory(&m);
	return err ? err : 1;
}

static int validate_io_uring(const struct restore_task *t, const FdEntry *e)
{
	const IoUringRing *r = e->io_uring;

	if (!r || !power_of_2(r->sq_entries) || !power_of_2(r->cq_entries) || r->sq_entries > MAX_SQ_ENTRIES ||
	    r->cq_entries > MAX_CQ_ENTRIES || r->cq_entries < r->sq_entries || r->cq_tail != r->sq_head ||
	    r->sq_tail - r->sq_head > r->sq_entries || r->cq_tail - r->cq_head > r->cq_entries ||
	    r->sqes.len != (size_t)r->sq_entries * (r->sqe128 ? 128 : 64) ||
	    r->cqes.len != (size_t)r->cq_entries * (r->cqe32 ? 32 : 16) ||
	    (r->has_sq_array && r->sq_array.len != (size_t)r->sq_entries * 4) || !io_uring_buffers_valid(r) ||
	    !io_uring_files_valid(t, r)) {
		pr_err("image fds-%d.img: fd %u: its io_uring instance is invalid", t->pid, e->fd);
		return -EINVAL;
	}
	return 0;
}

/* The new ring's memory, mapped in the new task for the time of open_io_uring (sqes_len 0:
 * the entries are in the mapping of the ring, a memfd's). */
struct new_ring {
	uint8_t *ring, *sqes;
	size_t ring_len, sqes_len, sqe_size;
	struct io_uring_params p;
};

static uint32_t *ring_word(const struct new_ring *n, uint32_t off)
{
	return (uint32_t *)(n->ring + off);
}

/* count NOPs through the ring, each completion read: its counters move on by count. */
static int replay_nops(int fd, const struct new_ring *n, uint32_t count)
{
	uint32_t sq = n->p.sq_entries, mask = sq - 1;
	uint32_t tail = __atomic_load_n(ring_word(n, n->p.sq_off.tail), __ATOMIC_ACQUIRE);
	uint32_t *array = ring_word(n, n->p.sq_off.array), *cq_head = ring_word(n, n->p.cq_off.head);

	while (count) {
		uint32_t batch = count < sq ? count : sq;
		for (uint32_t i = 0; i < batch; i++) {
			uint32_t slot = (tail + i) & mask;
			memset(n->sqes + slot * n->sqe_size, 0, n->sqe_size); /* IORING_OP_NOP is 0 */
			array[slot] = slot;
		}
		tail += batch;
		__atomic_store_n(ring_word(n, n->p.sq_off.tail), tail, __ATOMIC_RELEASE);
		long done = syscall(SYS_io_uring_enter, fd, batch, batch, IORING_ENTER_GETEVENTS, NULL, 0);
		if (done != (long)batch)
			return done < 0 ? -errno : -EIO;
		__atomic_store_n(cq_head, __atomic_load_n(ring_word(n, n->p.cq_off.tail), __ATOMIC_ACQUIRE),
				 __ATOMIC_RELEASE);
		count -= batch;
	}
	return 0;
}

/* The saved memory written into the new ring, its counters moved on to the saved ones. */
static int fill_ring(int fd, const struct new_ring *n, const IoUringRing *r, const char *what)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	int err = replay_nops(fd, n, r->sq_head);
	if (err) {
		pr_err("%s: NOPs to bring its counters to %u failed: %s", what, r->sq_head, strerror(-err));
		return err;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	if (ms >= 100)
		pr_info("%s: %u NOPs brought its counters where they were, in %ld ms", what, r->sq_head, ms);
	uint32_t *array = ring_word(n, n->p.sq_off.array);
	for (uint32_t i = 0; i < r->sq_entries; i++)
		array[i] = i;
	if (r->has_sq_array)
		memcpy(array, r->sq_array.data, r->sq_array.len);
	memcpy(n->sqes, r->sqes.data, r->sqes.len);
	memcpy(n->ring + n->p.cq_off.cqes, r->cqes.data, r->cqes.len);
	__atomic_store_n(ring_word(n, n->p.cq_off.flags), r->cq_flags, __ATOMIC_RELEASE);
	__atomic_store_n(ring_word(n, n->p.cq_off.head), r->cq_head, __ATOMIC_RELEASE);
	__atomic_store_n(ring_word(n, n->p.sq_off.tail), r->sq_tail, __ATOMIC_RELEASE);
	return 0;
}

/* The pages of the memory of r: its ring region (laid out with an index array), its entries. */
static size_t restored_ring_pages(const IoUringRing *r)
{
	return PAGE_ALIGN(io_uring_ring_bytes(r->sq_entries, r->cq_entries, r->cqe32 ? 32 : 16, true)) / PAGE_SIZE;
}

static size_t restored_sqe_pages(const IoUringRing *r)
{
	return PAGE_ALIGN(r->sqes.len) / PAGE_SIZE;
}

/* The memfd cr/mm.c made for the mappings of t's instance at fd, -1 if none. */
static int memory_of(const struct restore_task *t, uint32_t fd)
{
	for (size_t i = 0; i < t->n_io_uring_mems; i++)
		if (t->io_uring_mems[i].ring_fd == fd)
			return t->io_uring_mems[i].memfd;
	return -1;
}

/* The instance made, its memory in n: the process's memfd if it maps it (its tag written once
 * the instance exists), else the kernel's, mapped here. */
static int make_ring(struct restore_task *t, const FdEntry *e, struct new_ring *n, const char *what)
{
	const IoUringRing *r = e->io_uring;
	int memfd = memory_of(t, e->fd), fd, err;
	size_t ring_pages = restored_ring_pages(r), total = (ring_pages + restored_sqe_pages(r)) * PAGE_SIZE;

	n->p.flags = IORING_SETUP_CQSIZE | (r->sqe128 ? IORING_SETUP_SQE128 : 0) |
		     (r->cqe32 ? IORING_SETUP_CQE32 : 0);
	n->p.cq_entries = r->cq_entries;
	if (memfd >= 0) {
		void *at = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
		if (at == MAP_FAILED) {
			pr_perror("%s: cannot map the memfd of its memory", what);
			return -errno;
		}
		n->ring = at;
		n->sqes = n->ring + ring_pages * PAGE_SIZE;
		n->ring_len = total;
		n->p.flags |= IORING_SETUP_NO_MMAP;
		n->p.cq_off.resv2 = (uintptr_t)n->ring; /* user_addr */
		n->p.sq_off.resv2 = (uintptr_t)n->sqes;
	}
	if ((fd = syscall(SYS_io_uring_setup, r->sq_entries, &n->p)) < 0) {
		err = -errno;
		pr_err("%s of %u and %u entries cannot be made%s: %s%s", what, r->sq_entries, r->cq_entries,
		       memfd >= 0 ? " in memory of the process's (IORING_SETUP_NO_MMAP: Linux >= 6.5, and for "
				    "rings of several pages a kernel that maps them, as 6.18 does)"
				  : "",
		       strerror(-err), err == -EPERM ? " (sysctl kernel.io_uring_disabled?)" : "");
		return err;
	}
	if (n->p.sq_entries != r->sq_entries || n->p.cq_entries != r->cq_entries) {
		pr_err("%s was made with %u and %u entries, not %u and %u", what, n->p.sq_entries,
		       n->p.cq_entries, r->sq_entries, r->cq_entries);
		close(fd);
		return -EIO;
	}
	if (memfd >= 0) {
		struct stat st;
		struct memory_tag tag = { TAG_MAGIC, ring_pages, restored_sqe_pages(r), 0 };
		if (!fstat(fd, &st))
			tag.ino = st.st_ino;
		memcpy(n->ring + TAG_AT, &tag, sizeof(tag));
		return fd;
	}
	n->ring_len = ring_pages * PAGE_SIZE;
	void *ring = mmap(NULL, n->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, IORING_OFF_SQ_RING);
	void *sqes = ring == MAP_FAILED ? MAP_FAILED
					: mmap(NULL, r->sqes.len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, IORING_OFF_SQES);
	if (sqes == MAP_FAILED) {
		err = -errno;
		pr_err("%s: cannot map its rings: %s", what, strerror(-err));
		if (ring != MAP_FAILED)
			munmap(ring, n->ring_len);
		close(fd);
		return err;
	}
	n->ring = ring;
	n->sqes = sqes;
	n->sqes_len = r->sqes.len;
	return fd;
}

static int open_io_uring(struct restore_task *t, const FdEntry *e)
{
	struct new_ring n = { .sqe_size = e->io_uring->sqe128 ? 128 : 64 };
	char what[80];

	snprintf(what, sizeof(what), "restore pid %d fd %u: its io_uring instance", t->pid, e->fd);
	int fd = make_ring(t, e, &n, what);
	if (fd < 0)
		return fd;
	int err = fill_ring(fd, &n, e->io_uring, what);
	munmap(n.ring, n.ring_len);
	if (n.sqes_len)
		munmap(n.sqes, n.sqes_len);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* ---- mappings of rings (cr/mm.c) ---- */

/* The fd of t holding the io_uring instance of inode ino; -ENOENT: none; -ENOTUNIQ: several
 * (a kernel whose instances share one inode). */
static int fd_holding(const struct dump_task *t, uint64_t ino)
{
	auto_free int *fds = NULL;
	char path[64], link[32];
	size_t n;
	int err, found = -ENOENT;

	if ((err = proc_list_numbers(t->pid, "fd", &fds, &n)))
		return err;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", t->pid, fds[i]);
		if (stat(path, &st) || st.st_ino != ino || readlink(path, link, sizeof(link)) != 21 ||
		    memcmp(link, "anon_inode:[io_uring]", 21))
			continue;
		if (found >= 0)
			return -ENOTUNIQ;
		found = fds[i];
	}
	return found;
}

/* Whether pid maps io_uring instance ino. */
static bool maps_ring(pid_t pid, uint64_t ino)
{
	struct proc_vmas l = { 0 };
	bool found = false;

	if (proc_read_layout(pid, &l))
		return false;
	for (size_t i = 0; i < l.n && !found; i++)
		found = l.v[i].ino == ino && !strcmp(l.v[i].path, "anon_inode:[io_uring]");
	proc_vmas_free(&l);
	return found;
}

/* Another process of the tree that holds or maps instance ino: its pid, 0 if none. A ring
 * shared so is opened by stasis for the tree (cr/files/shared.c), where no process's memfd can
 * be given to it. */
static pid_t other_user(const struct dump_task *t, uint64_t ino)
{
	for (size_t i = 0; i < t->tree_size; i++) {
		const struct dump_task *u = &t->tree[i];
		if (u->tgid != t->tgid && (fd_holding(u, ino) >= 0 || maps_ring(u->pid, ino)))
			return u->pid;
	}
	return 0;
}

/* pv, a mapping of offset off of instance ino's memory: e a VMA_IO_URING of the fd holding it. */
static int ring_vma(struct dump_task *t, const struct proc_vma *pv, uint64_t ino, uint64_t off, VmaEntry *e)
{
	char what[80];

	snprintf(what, sizeof(what), "dump pid %d: mapping %#llx-%#llx", t->pid, (unsigned long long)pv->start,
		 (unsigned long long)pv->end);
	if (off != IORING_OFF_SQ_RING && off != IORING_OFF_CQ_RING && off != IORING_OFF_SQES) {
		pr_err("%s is memory at offset %#llx of an io_uring instance (a ring of provided buffers, a "
		       "zero-copy receive area, or a piece of its rings): not supported", what,
		       (unsigned long long)off);
		return -ENOTSUP;
	}
	int fd = fd_holding(t, ino);
	if (fd < 0) {
		pr_err("%s is the rings of an io_uring instance that %s: not supported", what,
		       fd == -ENOTUNIQ ? "this kernel cannot tell from the process's others (one inode for all)"
				       : "no fd of the process holds");
		return fd == -ENOENT || fd == -ENOTUNIQ ? -ENOTSUP : fd;
	}
	if (t->fds_owner) {
		pr_err("%s is the rings of the io_uring instance at fd %d in a process that shares the fd "
		       "table of pid %d (CLONE_FILES): not supported", what, fd, t->fds_owner->pid);
		return -ENOTSUP;
	}
	pid_t other = other_user(t, ino);
	if (other) {
		pr_err("%s is the rings of the io_uring instance at fd %d, which pid %d holds or maps too "
		       "(a fork): not supported yet", what, fd, other);
		return -ENOTSUP;
	}
	e->kind = VMA_KIND__VMA_IO_URING;
	e->has_ring_fd = e->has_pgoff = true;
	e->ring_fd = fd;
	e->pgoff = off;
	return 0;
}

int io_uring_vma_dump(struct dump_task *t, const struct proc_vma *pv, VmaEntry *e)
{
	return ring_vma(t, pv, pv->ino, pv->pgoff, e);
}

int io_uring_memfd_vma_dump(struct dump_task *t, const struct proc_vma *pv, const char *mf, VmaEntry *e)
{
	struct memory_tag tag;

	if (!pv->shared || strcmp(pv->path, MEMFD_PATH) || !read_tag(mf, &tag))
		return 1;
	uint64_t sqes_at = (uint64_t)tag.ring_pages * PAGE_SIZE;
	return ring_vma(t, pv, tag.ino,
			!pv->pgoff ? IORING_OFF_SQ_RING : pv->pgoff == sqes_at ? IORING_OFF_SQES : pv->pgoff, e);
}

int io_uring_vma_memory(struct restore_task *t, const VmaEntry *v, int *memfd, uint64_t *offset)
{
	const FdEntry *e = fd_entry_at(t, v->ring_fd); /* (an io_uring instance: io_uring_vma_check) */
	if (!e || e->kind != FD_KIND__FD_IO_URING)
		return -EINVAL;
	const IoUringRing *r = e->io_uring;
	int fd = memory_of(t, e->fd);

	if (fd < 0) {
		struct io_uring_memory *more = xreallocarray(t->io_uring_mems, t->n_io_uring_mems + 1, sizeof(*more));
		if (!more)
			return -ENOMEM;
		t->io_uring_mems = more;
		if ((fd = memfd_create(MEMFD_NAME, MFD_CLOEXEC)) < 0 ||
		    ftruncate(fd, (restored_ring_pages(r) + restored_sqe_pages(r)) * PAGE_SIZE)) {
			int err = -errno;
			pr_err("restore pid %d fd %u: cannot make a memfd for the memory of its io_uring instance: %s",
			       t->pid, e->fd, strerror(-err));
			if (fd >= 0)
				close(fd);
			return err;
		}
		if ((fd = restore_move_high(t, fd)) < 0)
			return fd;
		t->io_uring_mems[t->n_io_uring_mems++] = (struct io_uring_memory){ e->fd, fd };
	}
	*memfd = fd;
	*offset = v->pgoff == IORING_OFF_SQES ? restored_ring_pages(r) * PAGE_SIZE : 0;
	return 0;
}

bool io_uring_vma_valid(const VmaEntry *v)
{
	return v->has_ring_fd && !v->has_ring_socket && !v->growsdown && v->ring_fd <= INT32_MAX &&
	       (v->pgoff == IORING_OFF_SQ_RING || v->pgoff == IORING_OFF_CQ_RING || v->pgoff == IORING_OFF_SQES);
}

int io_uring_vma_check(const struct restore_task *t, const VmaEntry *v)
{
	const FdEntry *e = fd_entry_at(t, v->ring_fd);
	char what[80];

	snprintf(what, sizeof(what), "restore pid %d: mapping %#llx-%#llx", t->pid, (unsigned long long)v->start,
		 (unsigned long long)v->end);
	if ((e && e->kind == FD_KIND__FD_SHARED) || (!e && t->fds->has_table_of)) {
		pr_err("%s is the rings of the io_uring instance at fd %u, which %s: not supported yet", what,
		       v->ring_fd,
		       e ? "another process of the tree restores" : "a process it shares its fds with restores");
		return -ENOTSUP;
	}
	if (!e || e->kind != FD_KIND__FD_IO_URING) {
		pr_err("%s is the rings of fd %u, which is no io_uring instance", what, v->ring_fd);
		return -EINVAL;
	}
	bool sqes = v->pgoff == IORING_OFF_SQES;
	uint64_t len = v->end - v->start;
	uint64_t region = (sqes ? restored_sqe_pages(e->io_uring) : restored_ring_pages(e->io_uring)) * PAGE_SIZE;
	if (sqes ? len != region : len > region) {
		pr_err("%s maps %llu bytes of the io_uring instance at fd %u, whose %s take %llu", what,
		       (unsigned long long)len, v->ring_fd, sqes ? "entries" : "rings", (unsigned long long)region);
		return -EINVAL;
	}
	return 0;
}

const struct fd_kind_ops fd_kind_io_uring = {
	.name = "io_uring instance",
	.dump = dump_io_uring,
	.validate = validate_io_uring,
	.open = open_io_uring,
	.kind = FD_KIND__FD_IO_URING,
};
