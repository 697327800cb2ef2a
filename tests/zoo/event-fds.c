/*
 * event-fds: eventfd, signalfd, timerfd and epoll.
 *   fd 40 eventfd count 7 (non-blocking); fd 41 eventfd in semaphore mode, count 3;
 *   fd 42 signalfd for SIGUSR1|SIGUSR2 (blocked), with one SIGUSR1 queued (value 42);
 *   fd 43 timerfd every 20 ms (CLOCK_MONOTONIC); fd 44 timerfd one-shot, 100 s ahead;
 *   fd 46 timerfd on CLOCK_REALTIME at an absolute date 200 s ahead, TFD_TIMER_CANCEL_ON_SET;
 *   fd 45 epoll: fd 40 (EPOLLIN, data 0xabc), a pipe's read end holding 1 byte (EPOLLIN,
 *   data 0x123), fd 43 (EPOLLIN, data 0xdef).
 * After restore and SIGTERM: epoll reports fd 40 and the pipe with their data, and fd 40 can
 * be removed from it by number; the eventfds read 7 and 1,1,1; the signalfd yields SIGUSR1
 * with value 42; the periodic timer keeps expiring; the one-shot still has 80-100 s to go;
 * fd 46 still expires at its date, with both settime flags (fdinfo).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

static void c_eventfd(ucontext_t *u) { (void)u; uint64_t v = 1; write(40, &v, 8); }
static void c_signalfd(ucontext_t *u) { (void)u; struct signalfd_siginfo s; read(42, &s, sizeof(s)); }
static void c_epoll(ucontext_t *u) { (void)u; epoll_ctl(45, EPOLL_CTL_DEL, 40, NULL); }
static void c_timer(ucontext_t *u)
{
	(void)u;
	struct itimerspec off = { { 0, 0 }, { 0, 0 } };
	timerfd_settime(44, 0, &off, NULL);
}
static void c_abstime(ucontext_t *u)
{
	(void)u;
	struct itimerspec rel = { { 0, 0 }, { 150, 0 } };
	timerfd_settime(46, 0, &rel, NULL);
}
static const struct zoo_corruption corruptions[] = {
	{ "abstime", c_abstime, 0 },
	{ "eventfd", c_eventfd, 0 },
	{ "signalfd", c_signalfd, 0 },
	{ "epoll", c_epoll, 0 },
	{ "timerfd", c_timer, 0 },
};

int main(int argc, char **argv)
{
	int p[2];
	sigset_t mask;
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	zoo_place(eventfd(7, EFD_NONBLOCK), 40, O_CLOEXEC);
	zoo_place(eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK), 41, O_CLOEXEC);
	zoo_place(signalfd(-1, &mask, SFD_NONBLOCK), 42, O_CLOEXEC);
	zoo_place(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK), 43, O_CLOEXEC);
	zoo_place(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK), 44, O_CLOEXEC);
	zoo_place(epoll_create1(0), 45, O_CLOEXEC);
	zoo_place(timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK), 46, O_CLOEXEC);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct itimerspec at = { { 0, 0 }, { now.tv_sec + 200, now.tv_nsec } };
	if (timerfd_settime(46, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &at, NULL))
		zoo_die("timerfd_settime abs: %s", strerror(errno));
	if (pipe2(p, O_CLOEXEC) || write(p[1], "x", 1) != 1)
		zoo_die("pipe");
	struct itimerspec every = { { 0, 20000000 }, { 0, 20000000 } }, once = { { 0, 0 }, { 100, 0 } };
	timerfd_settime(43, 0, &every, NULL);
	timerfd_settime(44, 0, &once, NULL);
	struct epoll_event e1 = { EPOLLIN, { .u64 = 0xabc } }, e2 = { EPOLLIN, { .u64 = 0x123 } },
			   e3 = { EPOLLIN, { .u64 = 0xdef } };
	if (epoll_ctl(45, EPOLL_CTL_ADD, 40, &e1) || epoll_ctl(45, EPOLL_CTL_ADD, p[0], &e2) ||
	    epoll_ctl(45, EPOLL_CTL_ADD, 43, &e3))
		zoo_die("epoll_ctl: %s", strerror(errno));
	union sigval v = { .sival_int = 42 };
	sigqueue(getpid(), SIGUSR1, v);
	zoo_sleep_ms(50);
	zoo_ready();
	zoo_wait();

	struct epoll_event ev[8];
	int n = epoll_wait(45, ev, 8, 0), saw_efd = 0, saw_pipe = 0;
	for (int i = 0; i < n; i++) {
		saw_efd |= ev[i].data.u64 == 0xabc;
		saw_pipe |= ev[i].data.u64 == 0x123;
	}
	CHECK("epoll", saw_efd && saw_pipe, "epoll_wait: %d events, eventfd %d, pipe %d", n, saw_efd, saw_pipe);
	CHECK("epoll", epoll_ctl(45, EPOLL_CTL_DEL, 40, NULL) == 0, "fd 40 is not registered by number: %s",
	      strerror(errno));
	uint64_t c = 0;
	CHECK("eventfd", read(40, &c, 8) == 8 && c == 7, "eventfd count %lu, expected 7", (unsigned long)c);
	int ones = 0;
	while (read(41, &c, 8) == 8 && c == 1)
		ones++;
	CHECK("eventfd", ones == 3, "semaphore eventfd gave %d ones, expected 3", ones);
	struct signalfd_siginfo si = { 0 };
	CHECK("signalfd", read(42, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR1 && si.ssi_int == 42,
	      "signalfd gave signal %u value %d", si.ssi_signo, si.ssi_int);
	zoo_sleep_ms(50);
	uint64_t ticks = 0;
	CHECK("timerfd", read(43, &ticks, 8) == 8 && ticks >= 1, "periodic timerfd: %lu expirations",
	      (unsigned long)ticks);
	struct itimerspec left;
	timerfd_gettime(44, &left);
	CHECK("timerfd", left.it_value.tv_sec >= 80 && left.it_value.tv_sec < 100,
	      "one-shot timerfd has %ld s left", (long)left.it_value.tv_sec);
	char info[512] = "";
	zoo_read_file("/proc/self/fdinfo/46", info, sizeof(info));
	timerfd_gettime(46, &left);
	CHECK("abstime", strstr(info, "settime flags: 03") && left.it_value.tv_sec >= 180 && left.it_value.tv_sec < 200,
	      "absolute timerfd: %ld s left, fdinfo %s", (long)left.it_value.tv_sec, info);
	return zoo_finish("eventfd x2, signalfd, timerfd x3, epoll");
}
