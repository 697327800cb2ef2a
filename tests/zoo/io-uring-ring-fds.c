/*
 * io-uring-ring-fds: io_uring instances that threads registered with themselves
 * (IORING_REGISTER_RING_FDS, what liburing's io_uring_register_ring_fd does), then entered by
 * their index in the thread's table (IORING_ENTER_REGISTERED_RING), not by fd.
 *   The main thread: P at the first free index (0: offset -1, as liburing asks), S at 1 (S is
 *   IORING_SETUP_SINGLE_ISSUER, this thread its submitter), Q at 9.
 *   Thread W: Q at its first free index (0), P at 4, and at 2 T, an instance W made with
 *   liburing's recommended flags (IORING_SETUP_SINGLE_ISSUER|DEFER_TASKRUN: W its submitter, what
 *   is registered with it asked by W).
 *   Each instance took NOPs by index before the dump (4 through P, 2 through Q, 3 through S, 5
 *   through T).
 *   With --closed (a failure case of tests/failure-cases.sh): W also registers R at 7 and
 *   closes R's fd (io_uring_close_ring_fd), R never mapped; the dump must refuse, naming it.
 * After restore and SIGTERM: each thread submits a NOP through each of its indexes (the entry
 * written to that instance's memory, io_uring_enter by index): it completes on that instance
 * with its user_data; the indexes it did not register answer EBADF.
 * Blocks in: nanosleep (zoo_wait loop; W in its own loop).
 */
#include "zoo.h"
#include "zoo-uring.h"
#include <pthread.h>

#ifndef IORING_UNREGISTER_RING_FDS
#define IORING_UNREGISTER_RING_FDS 21
#endif

static struct zring P = { .name = "P" }, Q = { .name = "Q" }, S = { .name = "S" }, R = { .name = "R" },
		    T = { .name = "T" };
/* an index of a thread's table: its instance */
struct slot {
	unsigned index;
	struct zring *r;
};
static const struct slot main_slots[] = { { 0, &P }, { 1, &S }, { 9, &Q } };
static const struct slot w_slots[] = { { 0, &Q }, { 2, &T }, { 4, &P } };
static volatile int w_go, w_done, w_corrupt;
static int closed; /* --closed: W's index 7 holds R, whose fd is closed */
static char w_fail[256];

/* r at index (-1: the first free one) of the calling thread's table: the index, or -errno. */
static int register_at(struct zring *r, int index)
{
	struct io_uring_rsrc_update up = { .offset = (unsigned)index, .data = (uint64_t)r->fd };
	if (syscall(SYS_io_uring_register, r->fd, IORING_REGISTER_RING_FDS, &up, 1) != 1)
		return -errno;
	return (int)up.offset;
}

static int unregister_at(struct zring *r, unsigned index)
{
	struct io_uring_rsrc_update up = { .offset = index };
	return syscall(SYS_io_uring_register, r->fd, IORING_UNREGISTER_RING_FDS, &up, 1) == 1 ? 0 : -errno;
}

/* A NOP for r through index of the calling thread's table: 1 if it completed on r with its
 * user_data, else 0, why in err. */
static int nop_through(struct zring *r, unsigned index, uint64_t user_data, char *err, size_t len)
{
	struct io_uring_cqe c;
	zring_sqe(r)->user_data = user_data; /* (opcode 0: IORING_OP_NOP) */
	if (!zring_run(r, (int)index, &c, err, len))
		return 0;
	if (c.user_data != user_data) {
		snprintf(err, len, "index %u: %s's completion has user_data %llu, not %llu", index, r->name,
			 (unsigned long long)c.user_data, (unsigned long long)user_data);
		return 0;
	}
	return 1;
}

/* The calling thread's indexes: each takes a NOP to its instance, the others are EBADF. */
static int check_slots(const struct slot *slots, size_t n, uint64_t user_data, char *err, size_t len)
{
	for (unsigned k = 0; k < 16; k++) {
		const struct slot *sl = NULL;
		for (size_t i = 0; i < n; i++)
			if (slots[i].index == k)
				sl = &slots[i];
		if (sl && !nop_through(sl->r, k, user_data + k, err, len))
			return 0;
		if (closed && slots == w_slots && k == 7) {
			if (syscall(SYS_io_uring_enter, k, 0, 0, IORING_ENTER_REGISTERED_RING, NULL, 0)) {
				snprintf(err, len, "index 7 (R, its fd closed): %s", strerror(errno));
				return 0;
			}
		} else if (!sl && (syscall(SYS_io_uring_enter, k, 0, 0, IORING_ENTER_REGISTERED_RING, NULL, 0) != -1 ||
			    errno != EBADF)) {
			snprintf(err, len, "index %u holds an instance it did not register", k);
			return 0;
		}
	}
	return 1;
}

static void *w_main(void *arg)
{
	char err[128];
	(void)arg;
	zring_make(&T, 4, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, 1);
	if (register_at(&Q, -1) != 0 || register_at(&T, 2) != 2 || register_at(&P, 4) != 4)
		zoo_die("thread W: IORING_REGISTER_RING_FDS: %s", strerror(errno));
	for (unsigned i = 0; i < 5; i++)
		if (!nop_through(&T, 2, 400 + i, err, sizeof(err)))
			zoo_die("thread W before the dump: %s", err);
	if (closed) {
		zring_make(&R, 4, 0, 0);
		if (register_at(&R, 7) != 7)
			zoo_die("thread W: IORING_REGISTER_RING_FDS of R: %s", strerror(errno));
		close(R.fd);
	}
	if (!nop_through(&Q, 0, 10, err, sizeof(err)) || !nop_through(&Q, 0, 11, err, sizeof(err)) ||
	    !nop_through(&P, 4, 12, err, sizeof(err)))
		zoo_die("thread W before the dump: %s", err);
	w_done = 1;
	while (!w_go) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (w_corrupt) /* P's index 4 given to Q */
		if (unregister_at(&P, 4) || register_at(&Q, 4) != 4)
			snprintf(w_fail, sizeof(w_fail), "the corruption failed: %s", strerror(errno));
	if (!w_fail[0])
		check_slots(w_slots, sizeof(w_slots) / sizeof(w_slots[0]), 2000, w_fail, sizeof(w_fail));
	return NULL;
}

static void c_main(ucontext_t *u) { (void)u; unregister_at(&P, 0); }
static void c_thread(ucontext_t *u) { (void)u; w_corrupt = 1; }
static const struct zoo_corruption corruptions[] = {
	{ "main-index", c_main, 0 },
	{ "thread-index", c_thread, 0 },
};

int main(int argc, char **argv)
{
	char err[128] = "";
	pthread_t w;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	closed = argc > 1 && !strcmp(argv[argc - 1], "--closed");
	zring_make(&P, 4, 0, 1);
	zring_make(&Q, 4, 0, 1);
	zring_make(&S, 4, IORING_SETUP_SINGLE_ISSUER, 1);
	if (register_at(&P, -1) != 0 || register_at(&S, -1) != 1 || register_at(&Q, 9) != 9)
		zoo_die("IORING_REGISTER_RING_FDS: %s", strerror(errno));
	for (unsigned i = 0; i < 4; i++)
		if (!nop_through(&P, 0, 100 + i, err, sizeof(err)) || (i < 3 && !nop_through(&S, 1, 200 + i, err, sizeof(err))) ||
		    (i < 2 && !nop_through(&Q, 9, 300 + i, err, sizeof(err))))
			zoo_die("before the dump: %s", err);
	if (pthread_create(&w, NULL, w_main, NULL))
		zoo_die("pthread_create failed");
	while (!w_done) {
		struct timespec ts = { 0, 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	zoo_check_maps = 0; /* each ring is a new inode */
	zoo_ready();
	zoo_wait();

	CHECK("main-index", check_slots(main_slots, sizeof(main_slots) / sizeof(main_slots[0]), 1000, err, sizeof(err)),
	      "the main thread's registered instances: %s", err);
	w_go = 1;
	pthread_join(w, NULL);
	CHECK("thread-index", !w_fail[0], "thread W's registered instances: %s", w_fail);
	return zoo_finish("4 io_uring instances registered with 2 threads at 6 indexes (one a single submitter's, "
			  "another thread's), each entered by index");
}
