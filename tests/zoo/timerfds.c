/*
 * timerfds: the exact state of timerfds, each at its own fd:
 *   fd 50 CLOCK_MONOTONIC, first expiry after 30 ms, then every 100 s + 123 ns: expired once,
 *         not read (the kernel rearms it only when it is read or asked);
 *   fd 51 CLOCK_MONOTONIC every 5 ms, never read: a backlog of expirations;
 *   fd 52 CLOCK_BOOTTIME one-shot of 20 ms, expired, not read: disarmed with one expiration;
 *   fd 53 CLOCK_MONOTONIC disarmed, never armed;
 *   fd 54 CLOCK_MONOTONIC absolute (TFD_TIMER_ABSTIME), 300 s ahead;
 *   fd 55 CLOCK_BOOTTIME absolute, 300 s ahead, every 7 s;
 *   fd 56 CLOCK_MONOTONIC every 20 us: expired again by the time anyone asks;
 *   fd 57 CLOCK_REALTIME absolute at the end of time (tv_sec TIME_T_MAX: the kernel keeps its
 *         largest time, about the year 2262) with TFD_TIMER_CANCEL_ON_SET: systemd's watch
 *         for clock changes.
 * After restore and SIGTERM: fd 50 reads exactly 1 and has 90-100 s left, interval exactly
 * 100 s + 123 ns; fd 51 reads at least as many expirations as had come by zoo_ready();
 * fd 52 reads exactly 1, then nothing, and stays disarmed; fd 53 reads nothing and is
 * disarmed, settime flags 0; fd 54 and 55 have 250-300 s left, settime flags 01 (fdinfo),
 * fd 55 interval exactly 7 s; fd 56 still expires every 20 us; fd 57 still has more than 200
 * years left, settime flags 03, and nothing to read (EAGAIN: not cancelled).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/timerfd.h>

#define NS 1000000000ull

static void arm(int fd, int flags, uint64_t value_ns, uint64_t interval_ns)
{
	struct itimerspec its = { { interval_ns / NS, interval_ns % NS }, { value_ns / NS, value_ns % NS } };
	if (timerfd_settime(fd, flags, &its, NULL))
		zoo_die("timerfd_settime fd %d: %s", fd, strerror(errno));
}

static uint64_t ns_of(struct timespec ts) { return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec; }

static uint64_t ticks_of(int fd)
{
	uint64_t n = 0;
	return read(fd, &n, 8) == 8 ? n : 0;
}

static void c_ticks(ucontext_t *u) { (void)u; ticks_of(50); ticks_of(52); }
static void c_backlog(ucontext_t *u) { (void)u; ticks_of(51); }
static void c_periodic(ucontext_t *u) { (void)u; arm(50, 0, 0, 0); }
static void c_interval(ucontext_t *u) { (void)u; arm(55, TFD_TIMER_ABSTIME, zoo_now_ns(CLOCK_BOOTTIME) + 290 * NS, 7 * NS + 1); }
static void c_abstime(ucontext_t *u) { (void)u; arm(54, 0, 290 * NS, 0); }
static void c_fast(ucontext_t *u) { (void)u; arm(56, 0, 0, 0); ticks_of(56); }
static void c_disarmed(ucontext_t *u) { (void)u; arm(53, 0, 100 * NS, 0); }
static void c_far(ucontext_t *u) { (void)u; arm(57, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, zoo_now_ns(CLOCK_REALTIME) + 3600 * NS, 0); }
static const struct zoo_corruption corruptions[] = {
	{ "ticks", c_ticks, 0 },
	{ "backlog", c_backlog, 0 },
	{ "periodic", c_periodic, 0 },
	{ "interval", c_interval, 0 },
	{ "abstime", c_abstime, 0 },
	{ "disarmed", c_disarmed, 0 },
	{ "fast", c_fast, 0 },
	{ "far", c_far, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	static const int clocks[8] = { CLOCK_MONOTONIC, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_MONOTONIC,
				       CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_MONOTONIC, CLOCK_REALTIME };
	for (int i = 0; i < 8; i++)
		zoo_place(timerfd_create(clocks[i], TFD_NONBLOCK), 50 + i, O_CLOEXEC);
	uint64_t armed = zoo_now_ns(CLOCK_MONOTONIC);
	arm(50, 0, 30000000, 100 * NS + 123);
	arm(51, 0, 5000000, 5000000);
	arm(52, 0, 20000000, 0);
	arm(54, TFD_TIMER_ABSTIME, zoo_now_ns(CLOCK_MONOTONIC) + 300 * NS, 0);
	arm(55, TFD_TIMER_ABSTIME, zoo_now_ns(CLOCK_BOOTTIME) + 300 * NS, 7 * NS);
	arm(56, 0, 20000, 20000);
	struct itimerspec end = { .it_value = { .tv_sec = INT64_MAX } };
	if (timerfd_settime(57, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &end, NULL))
		zoo_die("timerfd_settime fd 57: %s", strerror(errno));
	zoo_sleep_ms(100);
	zoo_ready();
	uint64_t backlog = (zoo_now_ns(CLOCK_MONOTONIC) - armed) / 5000000 - 1;
	zoo_wait();

	struct itimerspec its;
	uint64_t n = ticks_of(50);
	timerfd_gettime(50, &its);
	CHECK("ticks", n == 1, "fd 50: %lu expirations, expected 1", (unsigned long)n);
	CHECK("periodic", its.it_value.tv_sec >= 90 && its.it_value.tv_sec < 100 &&
	      ns_of(its.it_interval) == 100 * NS + 123, "fd 50: %ld.%09ld s left, interval %ld.%09ld s (expected "
	      "90-100 s, 100.000000123 s)", (long)its.it_value.tv_sec, its.it_value.tv_nsec,
	      (long)its.it_interval.tv_sec, its.it_interval.tv_nsec);
	n = ticks_of(51);
	timerfd_gettime(51, &its);
	CHECK("backlog", n >= backlog && ns_of(its.it_interval) == 5000000, "fd 51: %lu expirations, at least %lu "
	      "expected; interval %lu ns", (unsigned long)n, (unsigned long)backlog, (unsigned long)ns_of(its.it_interval));
	n = ticks_of(52);
	uint64_t more = ticks_of(52);
	timerfd_gettime(52, &its);
	CHECK("ticks", n == 1 && !more && !ns_of(its.it_value), "fd 52: %lu expirations then %lu, %lu ns left "
	      "(expected 1, 0, disarmed)", (unsigned long)n, (unsigned long)more, (unsigned long)ns_of(its.it_value));
	n = ticks_of(53);
	timerfd_gettime(53, &its);
	CHECK("disarmed", !n && !ns_of(its.it_value) && !ns_of(its.it_interval), "fd 53: %lu expirations, "
	      "%lu ns left, interval %lu ns (expected disarmed)", (unsigned long)n, (unsigned long)ns_of(its.it_value),
	      (unsigned long)ns_of(its.it_interval));
	for (int fd = 54; fd <= 55; fd++) {
		char path[64], info[512] = "";
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
		zoo_read_file(path, info, sizeof(info));
		timerfd_gettime(fd, &its);
		CHECK("abstime", strstr(info, "settime flags: 01") && its.it_value.tv_sec >= 250 &&
		      its.it_value.tv_sec < 300, "fd %d: %ld s left, fdinfo %s", fd, (long)its.it_value.tv_sec, info);
		if (fd == 55)
			CHECK("interval", ns_of(its.it_interval) == 7 * NS, "fd 55: interval %lu ns, expected 7 s",
			      (unsigned long)ns_of(its.it_interval));
	}
	zoo_sleep_ms(5);
	n = ticks_of(56);
	timerfd_gettime(56, &its);
	CHECK("fast", n >= 1 && ns_of(its.it_interval) == 20000 && ns_of(its.it_value) <= 20000,
	      "fd 56: %lu expirations, %lu ns left, interval %lu ns (expected some, <= 20 us, 20 us)",
	      (unsigned long)n, (unsigned long)ns_of(its.it_value), (unsigned long)ns_of(its.it_interval));
	char info57[512] = "";
	zoo_read_file("/proc/self/fdinfo/57", info57, sizeof(info57));
	timerfd_gettime(57, &its);
	errno = 0;
	n = ticks_of(57);
	CHECK("far", its.it_value.tv_sec > 200LL * 365 * 86400 && strstr(info57, "settime flags: 03") && errno == EAGAIN,
	      "fd 57: %ld s left, read: %s, fdinfo %s", (long)its.it_value.tv_sec, strerror(errno), info57);
	return zoo_finish("timerfds: expired, backlog, one-shot expired, disarmed, absolute x2, fast, end of time");
}
