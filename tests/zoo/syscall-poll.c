/*
 * syscall-poll: waits that the kernel restarts through a restart block, which only the old
 * kernel task had: after restore they must go on waiting, not fail with EINTR.
 *   main thread: poll() on an empty pipe, no timeout (as tail -F waits);
 *   thread B: clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) until 60 s after start;
 *   thread C: futex(FUTEX_WAIT_BITSET) on a word that stays 0, absolute timeout 60 s ahead;
 *   thread D: poll() on another empty pipe with a relative timeout of 120 s (tinyproxy's and
 *   privoxy's tunnels wait so: an EINTR ends the tunnel);
 *   thread E: futex(FUTEX_WAIT) on the word with a relative timeout of 120 s.
 * After restore and SIGTERM: poll returned only for the SIGTERM (EINTR with the handler run),
 * B, C, D and E never returned and still sit in their calls (/proc/self/task/TID/syscall).
 * Dumped with --leave-running and not restored (zoo_left_running), D and E may be in
 * restart_syscall instead: the kernel's own way back into a relative wait a tracer interrupted.
 * Blocks in: poll (syscall 7).
 */
#include "zoo.h"
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>

static volatile int word;
static volatile pid_t tid_b, tid_c, tid_d, tid_e;
static volatile int returned_b, returned_c, returned_d, returned_e, errno_b, errno_c, errno_d, errno_e;
static int pipe_d[2];
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

static void *relative_poller(void *arg)
{
	(void)arg;
	tid_d = gettid();
	struct pollfd pfd = { .fd = pipe_d[0], .events = POLLIN };
	int r = poll(&pfd, 1, 120000);
	errno_d = r < 0 ? errno : 0;
	returned_d = 1;
	return NULL;
}

static void *relative_futex_waiter(void *arg)
{
	(void)arg;
	tid_e = gettid();
	struct timespec timeout = { 120, 0 };
	long r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &timeout, NULL, 0);
	errno_e = r < 0 ? errno : 0;
	returned_e = 1;
	return NULL;
}

/* What an engine that cannot restart them would cause: the waits end with EINTR. */
static void c_waits(ucontext_t *u)
{
	(void)u;
	syscall(SYS_tgkill, getpid(), tid_b, SIGUSR1);
	syscall(SYS_tgkill, getpid(), tid_c, SIGUSR1);
	zoo_sleep_ms(20);
}
static void c_relative(ucontext_t *u)
{
	(void)u;
	syscall(SYS_tgkill, getpid(), tid_d, SIGUSR1);
	syscall(SYS_tgkill, getpid(), tid_e, SIGUSR1);
	zoo_sleep_ms(20);
}
static const struct zoo_corruption corruptions[] = {
	{ "waits", c_waits, 0 },
	{ "relative", c_relative, 0 },
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
	pthread_t b, c, d, e;
	struct sigaction sa = { .sa_handler = on_usr1 }; /* no SA_RESTART */

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	sigaction(SIGUSR1, &sa, NULL);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += 60;
	if (pipe(p) || pipe(pipe_d) || pthread_create(&b, NULL, sleeper, NULL) ||
	    pthread_create(&c, NULL, futex_waiter, NULL) || pthread_create(&d, NULL, relative_poller, NULL) ||
	    pthread_create(&e, NULL, relative_futex_waiter, NULL))
		zoo_die("setup: %s", strerror(errno));
	while (!tid_b || !tid_c || !tid_d || !tid_e)
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
	/* (left running, not restored: the dump's interruption left them in restart_syscall, which
	 * waits out the rest of their timeouts, as the kernel does for any tracer) */
	long again = zoo_left_running() ? SYS_restart_syscall : -2;
	long now_d = in_syscall(tid_d), now_e = in_syscall(tid_e);
	CHECK("relative", !returned_d && (now_d == SYS_poll || now_d == again),
	      "thread D's poll with a relative timeout returned (%s) or left it (syscall %ld)", strerror(errno_d),
	      now_d);
	CHECK("relative", !returned_e && (now_e == SYS_futex || now_e == again),
	      "thread E's FUTEX_WAIT with a relative timeout returned (%s) or left it (syscall %ld)",
	      strerror(errno_e), now_e);
	return zoo_finish("poll, absolute clock_nanosleep and futex waits, poll and futex waits with relative timeouts");
}
