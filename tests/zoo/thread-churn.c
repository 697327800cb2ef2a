/*
 * thread-churn: threads are born and die all the time, also while the dump freezes the
 * process. 4 churner threads each create and join short-lived threads in a loop (each one
 * increments a counter and exits); 2 threads spin on the CPU. A thread missed by the freeze
 * would be lost by the restore and its join would hang; one caught half-made would break the
 * counts. After restore and SIGTERM: churning went on after the restore, and for every churner
 * the threads it created = the threads it joined = the increments they made.
 * Blocks in: nothing for long: futex (pthread_join) and clone, all the time.
 */
#include "zoo.h"
#include <pthread.h>

#define CHURNERS 4
#define SPINNERS 2

static volatile int stop;
static uint64_t created[CHURNERS], joined[CHURNERS], ran[CHURNERS];
static uint64_t at_ready;

static void *short_lived(void *arg)
{
	__atomic_add_fetch(&ran[(long)arg], 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void *churner(void *arg)
{
	long i = (long)arg;
	while (!stop) {
		pthread_t t;
		if (pthread_create(&t, NULL, short_lived, arg))
			continue;
		created[i]++;
		pthread_join(t, NULL);
		joined[i]++;
	}
	return NULL;
}

static void *spinner(void *arg)
{
	volatile uint64_t x = (uint64_t)(long)arg;
	while (!stop)
		x = x * 6364136223846793005ull + 1;
	return NULL;
}

static uint64_t total_joined(void)
{
	uint64_t n = 0;
	for (int i = 0; i < CHURNERS; i++)
		n += __atomic_load_n(&joined[i], __ATOMIC_SEQ_CST);
	return n;
}

static void c_count(ucontext_t *u) { (void)u; ran[2] += 1; }
static void c_progress(ucontext_t *u) { (void)u; at_ready = UINT64_MAX / 2; }

static const struct zoo_corruption corruptions[] = {
	{ "counts", c_count, 0 },
	{ "progress", c_progress, 0 },
};

int main(int argc, char **argv)
{
	pthread_t ch[CHURNERS], sp[SPINNERS];
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	for (long i = 0; i < CHURNERS; i++)
		pthread_create(&ch[i], NULL, churner, (void *)i);
	for (long i = 0; i < SPINNERS; i++)
		pthread_create(&sp[i], NULL, spinner, (void *)i);
	while (total_joined() < 1000)
		zoo_sleep_ms(1);
	at_ready = total_joined();
	zoo_check_maps = 0; /* new threads keep adding stacks and malloc arenas after READY */
	zoo_ready();
	zoo_wait();

	uint64_t at_term = total_joined();
	stop = 1;
	for (int i = 0; i < CHURNERS; i++)
		pthread_join(ch[i], NULL);
	for (int i = 0; i < SPINNERS; i++)
		pthread_join(sp[i], NULL);
	CHECK("progress", at_term > at_ready, "no thread was created after READY (%lu, then %lu)",
	      (unsigned long)at_ready, (unsigned long)at_term);
	for (int i = 0; i < CHURNERS; i++)
		CHECK("counts", created[i] == joined[i] && joined[i] == ran[i],
		      "churner %d: created %lu, joined %lu, ran %lu", i, (unsigned long)created[i],
		      (unsigned long)joined[i], (unsigned long)ran[i]);
	char info[64];
	snprintf(info, sizeof(info), "%lu threads made", (unsigned long)total_joined());
	return zoo_finish(info);
}
