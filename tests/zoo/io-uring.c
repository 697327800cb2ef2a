/*
 * io-uring: io_uring instances between requests, as libuv and liburing leave them.
 *   A (libuv's epoll_ctl ring): 256 entries, no index array (IORING_SETUP_NO_SQARRAY, as libuv
 *   asks on Linux >= 6.6), mapped as libuv maps it (the longer of its two rings, then the
 *   entries; MAP_POPULATE). 1,500,000 NOPs went through it, then EPOLL_CTL_ADD of 40 pipes'
 *   read ends in batches (each completion read). Then two more ADDs submitted and completed
 *   but not read (one of an fd already there: -EEXIST), and three ADDs of other pipes written
 *   but not submitted (libuv frozen between uv__epoll_ctl_prep and its flush).
 *   B (liburing's layout, small): 8 entries of 128 bytes (SQE128), completions of 32 bytes
 *   (CQE32), the index array written by the program (slot i is entry i); both fit one page
 *   either way, so only what they hold tells. 13 NOPs went through it, one completion not read.
 *   Its fd is watched by an epoll (EPOLLIN: a completion is waiting). One of the NOPs went
 *   through io-wq (IOSQE_ASYNC): the process has a worker thread of the kernel's (iou-wrk-N,
 *   never in user space) when it is dumped.
 *   C: 4 entries, never used, never mapped.
 *   D (liburing's recommended flags, fio's): IORING_SETUP_SINGLE_ISSUER|DEFER_TASKRUN, 4
 *   entries; 6 NOPs through it, the last completion not read (what is registered with it can
 *   only be asked by its submitter, this main thread).
 * After restore and SIGTERM: each ring's counters are what they were; A's two completions are
 * there (user_data, res); its three entries submitted then complete, and every one of the 43
 * pipes is in its epoll (a byte written to each is an event of its own); a new EPOLL_CTL_DEL
 * through A completes. B's waiting completion is there (its 32 bytes); NOPs through B come
 * back with their user_data (entries read at 128-byte slots); B's epoll sees it ready. C maps
 * and takes a NOP. D's counters and waiting completion are there, and it takes NOPs.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <linux/io_uring.h>
#include <sys/epoll.h>
#include <sys/mman.h>

#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY (1U << 16)
#endif

#define A_NOPS 1500000u
#define A_PIPES 40
#define A_PENDING 3
#define B_NOPS 13u

struct ring {
	int fd;
	struct io_uring_params p;
	uint8_t *ring, *sqes;
	size_t ring_len, sqes_len, sqe_size, cqe_size;
	volatile uint32_t *sqh, *sqt, *cqh, *cqt, *array;
};

static struct ring a, b, c, d;
static int epfd, ep_b, pipes[A_PIPES + A_PENDING][2];
static uint32_t a_counters[4], b_counters[4], d_counters[4]; /* sq head, sq tail, cq head, cq tail */

static void ring_map(struct ring *r)
{
	unsigned flags = r->p.flags;
	size_t sq_len = r->p.sq_off.array + r->p.sq_entries * 4, cq_len = r->p.cq_off.cqes + r->p.cq_entries * r->cqe_size;
	r->ring_len = sq_len > cq_len ? sq_len : cq_len;
	r->sqes_len = r->p.sq_entries * r->sqe_size;
	r->ring = mmap(NULL, r->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
	r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (r->ring == MAP_FAILED || r->sqes == MAP_FAILED)
		zoo_die("mmap of an io_uring: %s", strerror(errno)); /* (after the restore too: a FAIL) */
	r->sqh = (uint32_t *)(r->ring + r->p.sq_off.head);
	r->sqt = (uint32_t *)(r->ring + r->p.sq_off.tail);
	r->cqh = (uint32_t *)(r->ring + r->p.cq_off.head);
	r->cqt = (uint32_t *)(r->ring + r->p.cq_off.tail);
	if (!(flags & IORING_SETUP_NO_SQARRAY)) {
		r->array = (uint32_t *)(r->ring + r->p.sq_off.array);
		for (unsigned i = 0; i < r->p.sq_entries; i++)
			r->array[i] = i;
	}
}

static void ring_make(struct ring *r, unsigned entries, unsigned flags, int map)
{
	memset(&r->p, 0, sizeof(r->p));
	r->p.flags = flags;
	if ((r->fd = syscall(SYS_io_uring_setup, entries, &r->p)) < 0)
		zoo_die("io_uring_setup(%u, %#x): %s", entries, flags, strerror(errno));
	r->sqe_size = flags & IORING_SETUP_SQE128 ? 128 : 64;
	r->cqe_size = flags & IORING_SETUP_CQE32 ? 32 : 16;
	if (map)
		ring_map(r);
}

/* The next entry to write, zeroed (the caller fills it and calls sqe_push). */
static struct io_uring_sqe *sqe_next(struct ring *r, unsigned ahead)
{
	uint32_t slot = (*r->sqt + ahead) & (r->p.sq_entries - 1);
	struct io_uring_sqe *s = (void *)(r->sqes + slot * r->sqe_size);
	memset(s, 0, r->sqe_size);
	return s;
}

static void sqe_push(struct ring *r, unsigned n)
{
	__atomic_store_n(r->sqt, *r->sqt + n, __ATOMIC_RELEASE);
}

static int enter(struct ring *r, unsigned submit, unsigned wait)
{
	return syscall(SYS_io_uring_enter, r->fd, submit, wait, wait ? IORING_ENTER_GETEVENTS : 0, NULL, 0);
}

static struct io_uring_cqe *cqe_at(struct ring *r, uint32_t index)
{
	return (void *)(r->ring + r->p.cq_off.cqes + (index & (r->p.cq_entries - 1)) * r->cqe_size);
}

static void cq_read_all(struct ring *r)
{
	__atomic_store_n(r->cqh, __atomic_load_n(r->cqt, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
}

/* n NOPs through r one at a time, user_data base on (the one at async_at run by io-wq:
 * IOSQE_ASYNC; -1: none), each completion read but the last if keep_last: 1 if each came back
 * with its user_data. */
static int nops(struct ring *r, uint64_t base, unsigned n, int async_at, int keep_last)
{
	for (unsigned i = 0; i < n; i++) {
		struct io_uring_sqe *s = sqe_next(r, 0);
		s->user_data = base + i;
		s->flags = (int)i == async_at ? IOSQE_ASYNC : 0;
		sqe_push(r, 1);
		if (enter(r, 1, 1) != 1 || cqe_at(r, *r->cqh)->user_data != base + i)
			return 0;
		if (i + 1 < n || !keep_last)
			cq_read_all(r);
	}
	return 1;
}

static void epoll_add_sqe(struct ring *r, unsigned ahead, int fd, uint64_t data, struct epoll_event *ev)
{
	struct io_uring_sqe *s = sqe_next(r, ahead);
	ev->events = EPOLLIN;
	ev->data.u64 = (uint64_t)fd;
	s->opcode = IORING_OP_EPOLL_CTL;
	s->fd = epfd;
	s->len = EPOLL_CTL_ADD;
	s->off = fd;
	s->addr = (uintptr_t)ev;
	s->user_data = data;
}

static void counters(struct ring *r, uint32_t *out)
{
	out[0] = *r->sqh;
	out[1] = *r->sqt;
	out[2] = *r->cqh;
	out[3] = *r->cqt;
}

static struct epoll_event a_events[A_PIPES + A_PENDING + 1];

static void fill_a(void)
{
	ring_make(&a, 256, IORING_SETUP_NO_SQARRAY, 1);
	for (uint32_t done = 0; done < A_NOPS;) {
		unsigned n = A_NOPS - done < 256 ? A_NOPS - done : 256;
		for (unsigned i = 0; i < n; i++)
			sqe_next(&a, i); /* (zeroed: a NOP) */
		sqe_push(&a, n);
		if (enter(&a, n, n) != (int)n)
			zoo_die("NOPs through ring A: %s", strerror(errno));
		cq_read_all(&a);
		done += n;
	}
	for (int i = 0; i < A_PIPES; i += 8) { /* batches of 8, as libuv flushes */
		for (int j = 0; j < 8; j++)
			epoll_add_sqe(&a, j, pipes[i + j][0], 1000 + i + j, &a_events[i + j]);
		sqe_push(&a, 8);
		if (enter(&a, 8, 8) != 8)
			zoo_die("epoll_ctl through ring A: %s", strerror(errno));
		for (uint32_t k = *a.cqh; k != *a.cqt; k++)
			if (cqe_at(&a, k)->res)
				zoo_die("EPOLL_CTL_ADD through ring A: %s", strerror(-cqe_at(&a, k)->res));
		cq_read_all(&a);
	}
	/* two completions not read: the first pipe again (-EEXIST), a NOP */
	epoll_add_sqe(&a, 0, pipes[0][0], 2000, &a_events[A_PIPES + A_PENDING]);
	struct io_uring_sqe *s = sqe_next(&a, 1);
	s->user_data = 2001;
	sqe_push(&a, 2);
	if (enter(&a, 2, 2) != 2)
		zoo_die("ring A: %s", strerror(errno));
	/* three written, not submitted */
	for (int i = 0; i < A_PENDING; i++)
		epoll_add_sqe(&a, i, pipes[A_PIPES + i][0], 3000 + i, &a_events[A_PIPES + i]);
	sqe_push(&a, A_PENDING);
	counters(&a, a_counters);
}

/* A thread of the process named iou-wrk-N (an io-wq worker). */
static int io_worker_present(void)
{
	char path[300], comm[32];
	DIR *dir = opendir("/proc/self/task");
	struct dirent *de;
	int found = 0;
	while (dir && !found && (de = readdir(dir))) {
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		int fd = open(path, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, comm, sizeof(comm) - 1) : -1;
		if (fd >= 0)
			close(fd);
		found = n > 8 && !strncmp(comm, "iou-wrk-", 8);
	}
	if (dir)
		closedir(dir);
	return found;
}

static void fill_b(void)
{
	ring_make(&b, 8, IORING_SETUP_SQE128 | IORING_SETUP_CQE32, 1);
	if (!nops(&b, 500, B_NOPS, 3, 1)) /* the 4th by an io-wq worker thread of the process */
		zoo_die("ring B: %s", strerror(errno));
	counters(&b, b_counters);
	if (!io_worker_present())
		zoo_die("no io-wq worker thread after a NOP with IOSQE_ASYNC");
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 77 };
	if ((ep_b = epoll_create1(0)) < 0 || epoll_ctl(ep_b, EPOLL_CTL_ADD, b.fd, &ev))
		zoo_die("epoll of ring B: %s", strerror(errno));
}

static void fill_d(void)
{
	ring_make(&d, 4, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, 1);
	if (!nops(&d, 800, 6, -1, 1))
		zoo_die("ring D: %s", strerror(errno));
	counters(&d, d_counters);
}

static void c_counters(ucontext_t *u) { (void)u; sqe_next(&a, A_PENDING); sqe_push(&a, 0); enter(&a, 0, 0); *a.cqh += 1; }
static void c_waiting(ucontext_t *u) { (void)u; cqe_at(&a, a_counters[2])->user_data = 1; }
static void c_epoll(ucontext_t *u) { (void)u; epoll_ctl(epfd, EPOLL_CTL_DEL, pipes[5][0], NULL); }
static void c_wide(ucontext_t *u) { (void)u; cqe_at(&b, b_counters[2])->user_data = 9; }
static void c_single(ucontext_t *u) { (void)u; cq_read_all(&d); }
static void c_fresh(ucontext_t *u) { (void)u; ring_map(&c); sqe_next(&c, 0); sqe_push(&c, 1); enter(&c, 1, 1); }
static const struct zoo_corruption corruptions[] = {
	{ "counters", c_counters, 0 },
	{ "waiting", c_waiting, 0 },
	{ "epoll", c_epoll, 0 },
	{ "wide", c_wide, 0 },
	{ "fresh", c_fresh, 0 },
	{ "single", c_single, 0 },
};

static int same_counters(struct ring *r, const uint32_t *want)
{
	uint32_t now[4];
	counters(r, now);
	return !memcmp(now, want, sizeof(now));
}

/* Every pipe of A's epoll reports its own byte. */
static int epoll_has_all(void)
{
	char byte = 'x';
	int seen[A_PIPES + A_PENDING] = { 0 }, n, total = 0;
	for (int i = 0; i < A_PIPES + A_PENDING; i++)
		if (write(pipes[i][1], &byte, 1) != 1)
			return 0;
	while ((n = epoll_wait(epfd, a_events, A_PIPES + A_PENDING + 1, 200)) > 0) {
		for (int i = 0; i < n; i++)
			for (int j = 0; j < A_PIPES + A_PENDING; j++)
				if ((int)a_events[i].data.u64 == pipes[j][0] && !seen[j]++) {
					total++;
					if (read(pipes[j][0], &byte, 1) != 1)
						return 0;
				}
	}
	return total == A_PIPES + A_PENDING;
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		zoo_die("epoll_create1: %s", strerror(errno));
	for (int i = 0; i < A_PIPES + A_PENDING; i++)
		if (pipe2(pipes[i], O_NONBLOCK))
			zoo_die("pipe2: %s", strerror(errno));
	fill_a();
	fill_b();
	ring_make(&c, 4, 0, 0);
	fill_d();
	zoo_check_maps = 0; /* each ring is a new inode */
	zoo_ready();
	zoo_wait();

	CHECK("counters", same_counters(&a, a_counters), "ring A's counters are %u/%u/%u/%u, were %u/%u/%u/%u",
	      *a.sqh, *a.sqt, *a.cqh, *a.cqt, a_counters[0], a_counters[1], a_counters[2], a_counters[3]);
	struct io_uring_cqe *e0 = cqe_at(&a, a_counters[2]), *e1 = cqe_at(&a, a_counters[2] + 1);
	CHECK("waiting", e0->user_data == 2000 && e0->res == -EEXIST && e1->user_data == 2001 && e1->res == 0,
	      "ring A's waiting completions are %llu/%d and %llu/%d, expected 2000/-EEXIST and 2001/0",
	      (unsigned long long)e0->user_data, e0->res, (unsigned long long)e1->user_data, e1->res);
	cq_read_all(&a);
	int n = enter(&a, A_PENDING, A_PENDING), ok = n == A_PENDING;
	for (int i = 0; ok && i < A_PENDING; i++)
		ok = cqe_at(&a, a_counters[3] + i)->user_data == 3000u + i && cqe_at(&a, a_counters[3] + i)->res == 0;
	CHECK("counters", ok, "ring A's entries written before the dump: %d submitted, completions %llu/%d...", n,
	      (unsigned long long)cqe_at(&a, a_counters[3])->user_data, cqe_at(&a, a_counters[3])->res);
	cq_read_all(&a);
	CHECK("epoll", epoll_has_all(), "the epoll fed through ring A does not report each of its %d pipes",
	      A_PIPES + A_PENDING);
	struct io_uring_sqe *s = sqe_next(&a, 0);
	s->opcode = IORING_OP_EPOLL_CTL;
	s->fd = epfd;
	s->len = EPOLL_CTL_DEL;
	s->off = pipes[1][0];
	s->user_data = 4000;
	sqe_push(&a, 1);
	CHECK("counters", enter(&a, 1, 1) == 1 && cqe_at(&a, *a.cqh)->user_data == 4000 && cqe_at(&a, *a.cqh)->res == 0,
	      "EPOLL_CTL_DEL through ring A after the restore: %s", strerror(errno));

	struct io_uring_cqe *w = cqe_at(&b, b_counters[2]);
	CHECK("wide", same_counters(&b, b_counters) && w->user_data == 500 + B_NOPS - 1 && w->res == 0 &&
			      !w->big_cqe[0] && !w->big_cqe[1],
	      "ring B's counters %u/%u/%u/%u (were %u/%u/%u/%u) or its waiting completion (%llu) are not as they were",
	      *b.sqh, *b.sqt, *b.cqh, *b.cqt, b_counters[0], b_counters[1], b_counters[2], b_counters[3],
	      (unsigned long long)w->user_data);
	struct epoll_event ev;
	CHECK("wide", epoll_wait(ep_b, &ev, 1, 0) == 1 && ev.data.u64 == 77, "ring B is not ready in its epoll");
	cq_read_all(&b);
	CHECK("wide", nops(&b, 600, 20, -1, 0), "NOPs through ring B after the restore do not come back with their user_data");

	if (!c.ring)
		ring_map(&c);
	ok = !*c.sqh && !*c.sqt && !*c.cqh && !*c.cqt;
	sqe_next(&c, 0)->user_data = 700;
	sqe_push(&c, 1);
	ok = ok && enter(&c, 1, 1) == 1 && cqe_at(&c, 0)->user_data == 700 && *c.cqt == 1;
	CHECK("fresh", ok, "ring C, never used, does not map with its counters at 0 or take a NOP");

	struct io_uring_cqe *dw = cqe_at(&d, d_counters[2]);
	CHECK("single", same_counters(&d, d_counters) && dw->user_data == 805, "ring D's counters %u/%u/%u/%u (were "
	      "%u/%u/%u/%u) or its waiting completion (%llu) are not as they were", *d.sqh, *d.sqt, *d.cqh, *d.cqt,
	      d_counters[0], d_counters[1], d_counters[2], d_counters[3], (unsigned long long)dw->user_data);
	cq_read_all(&d);
	CHECK("single", nops(&d, 900, 10, -1, 0), "NOPs through ring D after the restore do not come back: %s", strerror(errno));
	return zoo_finish("4 io_uring instances: libuv's epoll_ctl ring, a small one of wide entries, a fresh one, "
			  "a single issuer's");
}
