/*
 * syscall-poll: waits that the kernel restarts through a restart block, which only the old
 * kernel task had: after restore they must go on waiting, not fail with EINTR.
 *   main thread: poll() on an empty pipe, no timeout (as tail -F waits);
 *   thread B: clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) until 60 s after start;
 *   thread C: futex(FUTEX_WAIT_BITSET) on a word that stays 0, absolute timeout 60 s ahead.
 * After restore and SIGTERM: poll returned only for the SIGTERM (EINTR with the handler run),
 * B and C never returned and still sit in their calls (/proc/self/task/TID/syscall).
 * Blocks in: poll (syscall 7).
 */
#include "zoo.h"
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>

static volatile int word;
static volatile pid_t tid_b, tid_c;
static volatile int returned_b, returned_c, errno_b, errno_c;
static struct timespec deadline;

static void on_usr1(int sig) { (void)sig; }

static void *sleeper(void *arg)
{
	(void)arg;
	tid_b = gettid();
	int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
	errno_b = r;
	returned_b = 1;
	return NULL;
}

static void *futex_waiter(void *arg)
{
	(void)arg;
	tid_c = gettid();
	long r = syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, 0, &deadline, NULL, FUTEX_BITSET_MATCH_ANY);
	errno_c = r < 0 ? errno : 0;
	returned_c = 1;
	return NULL;
}

/* What an engine that cannot restart them would cause: both waits end with EINTR. */
static void c_waits(ucontext_t *u)
{
	(void)u;
	syscall(SYS_tgkill, getpid(), tid_b, SIGUSR1);
	syscall(SYS_tgkill, getpid(), tid_c, SIGUSR1);
	zoo_sleep_ms(20);
}
static const struct zoo_corruption corruptions[] = {
	{ "waits", c_waits, 0 },
};

/* The system call thread tid (gettid()'s) is in, from /proc/self/task/TID/syscall. */
static long in_syscall(pid_t tid)
{
	char path[64], text[256] = "";
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", zoo_proc_tid(tid));
	zoo_read_file(path, text, sizeof(text));
	return strtol(text, NULL, 10);
}

int main(int argc, char **argv)
{
	int p[2];
	pthread_t b, c;
	struct sigaction sa = { .sa_handler = on_usr1 }; /* no SA_RESTART */

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	sigaction(SIGUSR1, &sa, NULL);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += 60;
	if (pipe(p) || pthread_create(&b, NULL, sleeper, NULL) || pthread_create(&c, NULL, futex_waiter, NULL))
		zoo_die("setup: %s", strerror(errno));
	while (!tid_b || !tid_c)
		zoo_sleep_ms(1);
	zoo_sleep_ms(20);
	zoo_ready();
	int early = 0, r;
	struct pollfd pfd = { .fd = p[0], .events = POLLIN };
	for (;;) {
		r = poll(&pfd, 1, -1);
		if (r < 0 && errno == EINTR && zoo_term)
			break;
		early++; /* anything else: data that nobody wrote, or EINTR without a signal */
		if (early > 100)
			break;
	}
	zoo_begin_verify();
	CHECK("poll", early == 0, "poll returned %d times before SIGTERM (last: %d, %s)", early, r, strerror(errno));
	CHECK("waits", !returned_b && in_syscall(tid_b) == SYS_clock_nanosleep,
	      "thread B's absolute clock_nanosleep returned (%s) or left it (syscall %ld)", strerror(errno_b),
	      in_syscall(tid_b));
	CHECK("waits", !returned_c && in_syscall(tid_c) == SYS_futex,
	      "thread C's FUTEX_WAIT_BITSET returned (%s) or left it (syscall %ld)", strerror(errno_c),
	      in_syscall(tid_c));
	return zoo_finish("poll, absolute clock_nanosleep and futex waits");
}
