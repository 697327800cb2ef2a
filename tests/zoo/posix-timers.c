/*
 * posix-timers: timers made with timer_create.
 *   timer A: CLOCK_MONOTONIC, every 20 ms, SIGEV_SIGNAL SIGRTMIN with value 0x1234 (counted by
 *            a handler that checks the value);
 *   timer B: CLOCK_REALTIME, one shot 100 s ahead, SIGEV_SIGNAL SIGUSR2;
 *   timer C: CLOCK_MONOTONIC, SIGEV_NONE, 50 s ahead.
 *   One more timer is made and deleted first, so the IDs have a gap.
 * After restore and SIGTERM: each timer has its old ID (timer_gettime on it works, and
 * /proc/self/timers lists exactly those IDs), A keeps firing with its value, B and C have
 * 80-100 s and 30-50 s left.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <time.h>

static timer_t a, b, c;
static volatile sig_atomic_t ticks, bad_value;

static void on_tick(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_value.sival_int != 0x1234)
		bad_value = 1;
	ticks++;
}

static void c_delete(ucontext_t *u) { (void)u; timer_delete(b); }
static void c_disarm(ucontext_t *u)
{
	(void)u;
	struct itimerspec off = { { 0, 0 }, { 0, 0 } };
	timer_settime(a, 0, &off, NULL);
}
static const struct zoo_corruption corruptions[] = {
	{ "ids", c_delete, 0 },
	{ "firing", c_disarm, 0 },
};

static timer_t make(clockid_t clk, int notify, int sig, int value)
{
	struct sigevent sev = { .sigev_notify = notify, .sigev_signo = sig };
	timer_t t;
	sev.sigev_value.sival_int = value;
	if (timer_create(clk, &sev, &t))
		zoo_die("timer_create: %s", strerror(errno));
	return t;
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	struct sigaction sa = { .sa_sigaction = on_tick, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigaction(SIGRTMIN, &sa, NULL);
	signal(SIGUSR2, SIG_IGN);
	timer_t gone = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0);
	a = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN, 0x1234);
	timer_delete(gone);
	b = make(CLOCK_REALTIME, SIGEV_SIGNAL, SIGUSR2, 7);
	c = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0);
	struct itimerspec every = { { 0, 20000000 }, { 0, 20000000 } }, in100 = { { 0, 0 }, { 100, 0 } },
			  in50 = { { 0, 0 }, { 50, 0 } };
	timer_settime(a, 0, &every, NULL);
	timer_settime(b, 0, &in100, NULL);
	timer_settime(c, 0, &in50, NULL);
	zoo_sleep_ms(100);
	zoo_ready();
	zoo_wait();

	int before = ticks;
	zoo_sleep_ms(100);
	CHECK("firing", ticks > before && !bad_value, "timer A fired %d times in 100 ms (value ok: %d)",
	      ticks - before, !bad_value);
	struct itimerspec left;
	CHECK("ids", timer_gettime(b, &left) == 0 && left.it_value.tv_sec >= 80 && left.it_value.tv_sec < 100,
	      "timer B: %s, %ld s left", strerror(errno), (long)left.it_value.tv_sec);
	CHECK("ids", timer_gettime(c, &left) == 0 && left.it_value.tv_sec >= 30 && left.it_value.tv_sec < 50,
	      "timer C: %ld s left", (long)left.it_value.tv_sec);
	char text[2048] = "", want[128];
	zoo_read_file("/proc/self/timers", text, sizeof(text));
	snprintf(want, sizeof(want), "ID: %ld", (long)(intptr_t)a);
	CHECK("ids", strstr(text, want) != NULL, "timer A (%s) missing from /proc/self/timers", want);
	return zoo_finish("3 timers");
}
