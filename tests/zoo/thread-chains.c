/*
 * thread-chains: 48 chains of short-lived threads: each thread makes its successor and exits,
 * over and over, so the dump meets threads that exit and are born while it freezes them (a
 * thread it lists may be gone, after making one the list missed; thread-churn's threads are
 * joined by long-lived makers instead). Every thread counts itself in (by its maker) and out
 * (as it exits).
 * After restore and SIGTERM: the chains are told to stop and every thread must be counted out
 * within 5 s (a thread the dump missed never comes back, so its count stays in), and each
 * chain must have gone on after the restore (its turn counter moved within 2 s).
 * Blocks in: nothing (every thread runs; main in nanosleep).
 */
#include "zoo.h"
#include <pthread.h>

#define CHAINS 48

static volatile int stop;
static int alive;                    /* threads counted in and not yet out */
static unsigned long turns[CHAINS];  /* threads each chain has made */

static void *link_thread(void *arg);

/* Makes the next thread of chain c: 0, or the error. */
static int make_link(long c)
{
	pthread_attr_t attr;
	pthread_t th;
	int err;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	__atomic_fetch_add(&alive, 1, __ATOMIC_ACQ_REL);
	if ((err = pthread_create(&th, &attr, link_thread, (void *)c)))
		__atomic_fetch_sub(&alive, 1, __ATOMIC_ACQ_REL);
	pthread_attr_destroy(&attr);
	return err;
}

static void *link_thread(void *arg)
{
	long c = (long)arg;

	__atomic_fetch_add(&turns[c], 1, __ATOMIC_RELAXED);
	/* (EAGAIN: the kernel's thread limits, for a moment: try again) */
	while (!stop && make_link(c) == EAGAIN)
		sched_yield();
	__atomic_fetch_sub(&alive, 1, __ATOMIC_ACQ_REL);
	return NULL;
}

static void c_churn(ucontext_t *u) { (void)u; __atomic_fetch_add(&alive, 1, __ATOMIC_ACQ_REL); }
static const struct zoo_corruption corruptions[] = {
	{ "churn", c_churn, 0 }, /* a thread counted in that never comes out */
};

int main(int argc, char **argv)
{
	unsigned long before[CHAINS];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	zoo_check_maps = 0; /* the threads' stacks come and go after READY */
	for (long c = 0; c < CHAINS; c++)
		if ((errno = make_link(c)))
			zoo_die("pthread_create: %s", strerror(errno));
	zoo_sleep_ms(50);
	zoo_ready();
	zoo_wait();

	for (int c = 0; c < CHAINS; c++)
		before[c] = __atomic_load_n(&turns[c], __ATOMIC_RELAXED);
	int moved = 0;
	for (int tries = 0; tries < 200 && moved < CHAINS; tries++) {
		zoo_sleep_ms(10);
		moved = 0;
		for (int c = 0; c < CHAINS; c++)
			moved += __atomic_load_n(&turns[c], __ATOMIC_RELAXED) != before[c];
	}
	zoo_begin_verify();
	stop = 1;
	int left = 0;
	for (int tries = 0; tries < 2500 && (left = __atomic_load_n(&alive, __ATOMIC_ACQUIRE)); tries++)
		zoo_sleep_ms(2);
	CHECK("churn", left == 0, "%d threads counted in never came out (lost at the dump?)", left);
	CHECK("chains", moved == CHAINS, "%d of %d chains went on after the restore", moved, CHAINS);
	return zoo_finish("48 chains of threads that make their successor and exit");
}
