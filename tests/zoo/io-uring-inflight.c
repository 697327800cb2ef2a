/*
 * io-uring-inflight: an event loop whose timer is an io_uring request, so that a request is in
 * flight whenever it is dumped: it submits a timeout of 30 ms (IORING_OP_TIMEOUT, user_data its
 * number) and waits in io_uring_enter for its completion, again and again. The dump finds one
 * timeout in flight; it waits for it to complete (inside the process: the completion is queued
 * to it) and saves the ring with that completion not read yet. After restore the loop reads it
 * and goes on; every completion must come in order, each with -ETIME.
 * After SIGTERM: the loop ends; the timeout then in flight completes within a second with its
 * number; no completion was missed, repeated or out of order; the loop went on.
 * (A worker thread's ring of deferred completions, IORING_SETUP_DEFER_TASKRUN, is not here: its
 * completions run only when that thread waits, and the dump's wait there did not always get
 * them within 100 ms; such a ring may be refused as in flight.)
 * Blocks in: io_uring_enter (GETEVENTS), 30 ms at a time.
 */
#include "zoo.h"
#include "zoo-uring.h"

#ifndef IORING_ENTER_EXT_ARG
#define IORING_ENTER_EXT_ARG (1U << 3)
#endif

static struct zring U = { .name = "U" };
static uint64_t next_seq = 1, bad_seq, bad_res;
static unsigned completed;

static void submit_timeout(void)
{
	static struct { int64_t sec, nsec; } ts = { 0, 30 * 1000 * 1000 };
	struct io_uring_sqe *s = zring_sqe(&U);
	s->opcode = IORING_OP_TIMEOUT;
	s->addr = (uintptr_t)&ts;
	s->len = 1;
	s->user_data = next_seq;
	__atomic_store_n(U.sqt, *U.sqt + 1, __ATOMIC_RELEASE);
}

/* Reads every completion there: each must be the next timeout's, expired. */
static void reap(void)
{
	static uint64_t want = 1;
	while (*U.cqh != __atomic_load_n(U.cqt, __ATOMIC_ACQUIRE)) {
		struct io_uring_cqe *c =
			(void *)(U.ring + U.p.cq_off.cqes + (*U.cqh & (U.p.cq_entries - 1)) * sizeof(*c));
		if (c->user_data != want && !bad_seq)
			bad_seq = c->user_data | (want << 32);
		if (c->res != -ETIME && !bad_res)
			bad_res = (uint64_t)(uint32_t)c->res | (c->user_data << 32);
		want++;
		completed++;
		__atomic_store_n(U.cqh, *U.cqh + 1, __ATOMIC_RELEASE);
	}
}

/* io_uring_enter: submit what is written, wait for one completion at most timeout_ms (0: no
 * limit); its result. */
static long enter(unsigned submit, long timeout_ms)
{
	struct { int64_t sec, nsec; } ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000 };
	struct io_uring_getevents_arg arg = { .ts = (uintptr_t)&ts };
	return timeout_ms ? syscall(SYS_io_uring_enter, U.fd, submit, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
				    &arg, sizeof(arg))
			  : syscall(SYS_io_uring_enter, U.fd, submit, 1, IORING_ENTER_GETEVENTS, NULL, 0);
}

static void c_lost(ucontext_t *u) /* the timeout in flight cancelled: its completion says so */
{
	(void)u;
	struct io_uring_sqe *s = zring_sqe(&U);
	s->opcode = IORING_OP_TIMEOUT_REMOVE;
	s->addr = next_seq - 1;
	s->user_data = 0;
	__atomic_store_n(U.sqt, *U.sqt + 1, __ATOMIC_RELEASE);
	syscall(SYS_io_uring_enter, U.fd, 1, 0, 0, NULL, 0);
}
static const struct zoo_corruption corruptions[] = {
	{ "lost", c_lost, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	zring_make(&U, 8, 0, 1);
	for (int i = 0; i < 3; i++) { /* (the loop's first rounds, before the dump can come) */
		submit_timeout();
		next_seq++;
		if (enter(1, 0) != 1)
			zoo_die("io_uring_enter: %s", strerror(errno));
		reap();
	}
	zoo_check_maps = 0; /* the ring is a new inode */
	zoo_ready();
	while (!zoo_term) {
		submit_timeout();
		next_seq++;
		long n = enter(1, 0);
		while (n < 0 && errno == EINTR && !zoo_term && *U.cqh == *U.cqt)
			n = enter(0, 0); /* (interrupted: the timeout is in flight, wait on) */
		reap();
	}
	zoo_begin_verify();
	/* the timeout in flight at SIGTERM completes, in order (a TIMEOUT_REMOVE's own completion
	 * has user_data 0: out of order) */
	for (int i = 0; i < 20 && completed < next_seq - 1; i++) {
		enter(0, 100);
		reap();
	}
	CHECK("lost", completed == next_seq - 1, "%u completions for %llu timeouts submitted: the last never came",
	      completed, (unsigned long long)(next_seq - 1));
	CHECK("lost", !bad_seq && !bad_res, "a completion out of order (%#llx: got/wanted) or not expired (%#llx: res/seq)",
	      (unsigned long long)bad_seq, (unsigned long long)bad_res);
	CHECK("lost", completed > 3, "only the %u timeouts before the loop completed", completed);
	return zoo_finish("an event loop's io_uring timeout in flight at the dump: every completion in order");
}
