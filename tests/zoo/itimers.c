/*
 * itimers: interval timers.
 *   ITIMER_REAL 50 ms / 50 ms with a SIGALRM handler (SA_RESTART) counting ticks,
 *   ITIMER_VIRTUAL 1000 s / interval 7 s, ITIMER_PROF 500 s / interval 3 s.
 *   After restore: the intervals are exact, the remaining values are plausible (REAL within
 *   one period; VIRTUAL/PROF not more than before and not much less - the process burns
 *   almost no CPU), and the tick counter keeps counting (>= 3 ticks in 300 ms).
 * Blocks in: nanosleep (zoo_wait loop), interrupted every 50 ms by SIGALRM.
 */
#include "zoo.h"
#include <sys/time.h>

static volatile unsigned long ticks;
static struct itimerval before[3];
static uint64_t t_setup;

static void alrm(int sig) { (void)sig; ticks++; }

static void c_real(ucontext_t *u) { (void)u; struct itimerval v = { { 0, 0 }, { 0, 0 } }; setitimer(ITIMER_REAL, &v, NULL); }
static void c_virtual(ucontext_t *u) { (void)u; struct itimerval v = { { 8, 0 }, { 900, 0 } }; setitimer(ITIMER_VIRTUAL, &v, NULL); }
static void c_prof(ucontext_t *u) { (void)u; struct itimerval v = { { 0, 0 }, { 0, 0 } }; setitimer(ITIMER_PROF, &v, NULL); }
static const struct zoo_corruption corruptions[] = {
	{ "real", c_real, 0 },
	{ "virtual", c_virtual, 0 },
	{ "prof", c_prof, 0 },
};

static long us(const struct timeval *tv) { return tv->tv_sec * 1000000L + tv->tv_usec; }

static void check_cpu_timer(int which, const char *tag, long interval_us)
{
	struct itimerval v;
	getitimer(which, &v);
	long was = us(&before[which].it_value), is = us(&v.it_value);
	CHECK(tag, us(&v.it_interval) == interval_us, "interval is %ld us, expected %ld", us(&v.it_interval),
	      interval_us);
	/* setitimer adds one tick to CPU timers, so a restore may add one: allow 20 ms */
	CHECK(tag, is > 0 && is <= was + 20000 && is > was - 10 * 1000000L,
	      "remaining %ld us, was %ld us at setup (expected about the same or a little less)", is, was);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = alrm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);

	struct itimerval r = { { 0, 50000 }, { 0, 50000 } }, v = { { 7, 0 }, { 1000, 0 } }, p = { { 3, 0 }, { 500, 0 } };
	if (setitimer(ITIMER_VIRTUAL, &v, NULL) || setitimer(ITIMER_PROF, &p, NULL) || setitimer(ITIMER_REAL, &r, NULL))
		zoo_die("setitimer: %s", strerror(errno));
	t_setup = zoo_now_ns(CLOCK_MONOTONIC);
	for (int i = 0; i < 3; i++)
		getitimer(i, &before[i]);

	zoo_ready();
	zoo_wait();

	struct itimerval now;
	getitimer(ITIMER_REAL, &now);
	CHECK("real", us(&now.it_interval) == 50000, "ITIMER_REAL interval is %ld us", us(&now.it_interval));
	CHECK("real", us(&now.it_value) > 0 && us(&now.it_value) <= 50000, "ITIMER_REAL remaining %ld us",
	      us(&now.it_value));
	check_cpu_timer(ITIMER_VIRTUAL, "virtual", 7000000);
	check_cpu_timer(ITIMER_PROF, "prof", 3000000);

	unsigned long t0 = ticks;
	zoo_sleep_ms(300);
	unsigned long t1 = ticks;
	CHECK("real", t1 - t0 >= 3 && t1 - t0 <= 12, "%lu SIGALRM ticks in 300 ms, expected about 6", t1 - t0);
	uint64_t elapsed_ms = (zoo_now_ns(CLOCK_MONOTONIC) - t_setup) / 1000000;
	CHECK("real", t1 <= elapsed_ms / 50 + 3, "%lu ticks in %lu ms", t1, (unsigned long)elapsed_ms);
	char info[64];
	snprintf(info, sizeof(info), "(%lu ticks)", t1);
	return zoo_finish(info);
}
