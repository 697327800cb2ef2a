/*
 * io-uring-inflight: event loops whose timer is an io_uring request, so that a request is in
 * flight whenever they are dumped: each submits a timeout (IORING_OP_TIMEOUT, user_data its
 * number) and waits in io_uring_enter for its completion, again and again.
 *   M, the main thread's: a plain ring, 30 ms timeouts.
 *   X, a thread's: a ring of liburing's recommended flags (IORING_SETUP_SINGLE_ISSUER|
 *   DEFER_TASKRUN: only X may wait on it, and its completions run only when X waits), 40 ms.
 * The dump finds a timeout in flight on each; it waits for them to complete (inside the
 * process, in the thread each needs) and saves each ring with that completion not read yet.
 * After restore each loop reads it and goes on; every completion must come in order, each with
 * -ETIME.
 * After SIGTERM: the loops end; the timeout then in flight on each completes within a second
 * with its number; no completion was missed, repeated or out of order; each loop went on.
 * Blocks in: io_uring_enter (GETEVENTS), 30 and 40 ms at a time.
 */
#include "zoo.h"
#include "zoo-uring.h"
#include <pthread.h>

#ifndef IORING_ENTER_EXT_ARG
#define IORING_ENTER_EXT_ARG (1U << 3)
#endif

struct loop {
	struct zring r;
	struct { int64_t sec, nsec; } ts;
	uint64_t next_seq, want, bad_seq, bad_res;
	unsigned completed;
	volatile int stop, done;
};

static struct loop M = { .r = { .name = "M" }, .ts = { 0, 30000000 }, .next_seq = 1, .want = 1 },
		   X = { .r = { .name = "X" }, .ts = { 0, 40000000 }, .next_seq = 1, .want = 1 };

static void submit_timeout(struct loop *l)
{
	struct io_uring_sqe *s = zring_sqe(&l->r);
	s->opcode = IORING_OP_TIMEOUT;
	s->addr = (uintptr_t)&l->ts;
	s->len = 1;
	s->user_data = l->next_seq++;
	__atomic_store_n(l->r.sqt, *l->r.sqt + 1, __ATOMIC_RELEASE);
}

/* Reads every completion there: each must be the next timeout's, expired. */
static void reap(struct loop *l)
{
	struct zring *r = &l->r;
	while (*r->cqh != __atomic_load_n(r->cqt, __ATOMIC_ACQUIRE)) {
		struct io_uring_cqe *c = (void *)(r->ring + r->p.cq_off.cqes + (*r->cqh & (r->p.cq_entries - 1)) * sizeof(*c));
		if (c->user_data != l->want && !l->bad_seq)
			l->bad_seq = c->user_data | (l->want << 32);
		if (c->res != -ETIME && !l->bad_res)
			l->bad_res = (uint64_t)(uint32_t)c->res | (c->user_data << 32);
		l->want++;
		l->completed++;
		__atomic_store_n(r->cqh, *r->cqh + 1, __ATOMIC_RELEASE);
	}
}

/* io_uring_enter: submit what is written, wait for one completion, at most timeout_ms (0: no
 * limit); its result. */
static long enter(struct loop *l, unsigned submit, long timeout_ms)
{
	struct { int64_t sec, nsec; } ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000 };
	struct io_uring_getevents_arg arg = { .ts = (uintptr_t)&ts };
	return timeout_ms ? syscall(SYS_io_uring_enter, l->r.fd, submit, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
				    &arg, sizeof(arg))
			  : syscall(SYS_io_uring_enter, l->r.fd, submit, 1, IORING_ENTER_GETEVENTS, NULL, 0);
}

/* One round: a timeout submitted, its completion waited for and read. */
static void round_trip(struct loop *l)
{
	submit_timeout(l);
	long n = enter(l, 1, 0);
	while (n < 0 && errno == EINTR && !l->stop && *l->r.cqh == *l->r.cqt)
		n = enter(l, 0, 0); /* (interrupted: the timeout is in flight, wait on) */
	reap(l);
}

/* After the loop: the timeout in flight completes. */
static void drain(struct loop *l)
{
	for (int i = 0; i < 20 && l->completed < l->next_seq - 1; i++) {
		enter(l, 0, 100);
		reap(l);
	}
}

static void *x_main(void *arg)
{
	(void)arg;
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, NULL); /* (SIGTERM is the main thread's) */
	zring_make(&X.r, 8, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, 1);
	for (int i = 0; i < 3; i++)
		round_trip(&X);
	X.done = 1;
	while (!X.stop)
		round_trip(&X);
	drain(&X);
	return NULL;
}

/* A timeout of M put in flight and cancelled: its completion says so. (The loop ends with its
 * last timeout completed and read, so nothing of M is in flight here otherwise.) */
static void c_lost(ucontext_t *u)
{
	(void)u;
	submit_timeout(&M);
	struct io_uring_sqe *s = zring_sqe(&M.r);
	s->opcode = IORING_OP_TIMEOUT_REMOVE;
	s->addr = M.next_seq - 1;
	s->user_data = 0;
	__atomic_store_n(M.r.sqt, *M.r.sqt + 1, __ATOMIC_RELEASE);
	syscall(SYS_io_uring_enter, M.r.fd, 2, 0, 0, NULL, 0);
}
static const struct zoo_corruption corruptions[] = {
	{ "lost", c_lost, 0 },
};

static void check_loop(const struct loop *l)
{
	CHECK("lost", l->completed == l->next_seq - 1, "ring %s: %u completions for %llu timeouts submitted: the last "
	      "never came", l->r.name, l->completed, (unsigned long long)(l->next_seq - 1));
	CHECK("lost", !l->bad_seq && !l->bad_res, "ring %s: a completion out of order (%#llx: got/wanted) or not "
	      "expired (%#llx: res/seq)", l->r.name, (unsigned long long)l->bad_seq, (unsigned long long)l->bad_res);
	CHECK("lost", l->completed > 3, "ring %s: only the %u timeouts before the loop completed", l->r.name,
	      l->completed);
}

int main(int argc, char **argv)
{
	pthread_t x;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	zring_make(&M.r, 8, 0, 1);
	for (int i = 0; i < 3; i++) /* (the loop's first rounds, before the dump can come) */
		round_trip(&M);
	if (pthread_create(&x, NULL, x_main, NULL))
		zoo_die("pthread_create failed");
	while (!X.done) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	zoo_check_maps = 0; /* the rings are new inodes */
	zoo_ready();
	while (!zoo_term)
		round_trip(&M);
	M.stop = 1;
	X.stop = 1;
	pthread_join(x, NULL);
	zoo_begin_verify();
	/* every timeout submitted completes, in order (a TIMEOUT_REMOVE's own completion has
	 * user_data 0: out of order) */
	drain(&M);
	check_loop(&M);
	check_loop(&X);
	return zoo_finish("two event loops' io_uring timeouts in flight at the dump (one a single submitter's "
			  "thread with deferred completions): every completion in order");
}
