/*
 * pidfd-thread: pidfds of single threads (pidfd_open with PIDFD_THREAD, 6.9+) of a program
 * with three threads (main, A, B) and a child process.
 *   fd 60: thread A;
 *   fd 61: the main thread (the thread group leader);
 *   fd 62: thread B, O_NONBLOCK;
 *   fd 63: a dup of fd 60 (one open file);
 *   fd 64: thread B again, another open file, which the child (forked after it was opened,
 *          blocked in pause) holds at fd 64 too.
 * Thread B then takes a table of its own (unshare CLONE_FILES): a copy of the process's.
 * --epoll: an epoll at fd 70 watches fd 60 (the dump refuses it, tests/failure-cases.sh).
 * After restore and SIGTERM: fdinfo's Pid of each is its thread's tid (in the namespace /proc
 * belongs to), also in the child; the flags are kept (PIDFD_THREAD everywhere, O_NONBLOCK on fd
 * 62 only); fds 60 and 63 are one open file, and fd 64 is one with the child's; a realtime
 * signal sent through each (pidfd_send_signal, no flags: a thread pidfd signals its thread)
 * reaches exactly its thread (a handler counts per thread); told to, A exits: fd 60 (and 63)
 * become readable (POLLIN), the others do not; B's own table holds the same open files at 60-64.
 * Blocks in: nanosleep (zoo_wait loop, and threads A and B); the child in pause.
 */
#include "zoo.h"
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#define PIDFD_THREAD_FLAG O_EXCL
#define KCMP_FILE_TYPE 0
#define A_FD 60
#define MAIN_FD 61
#define B_NB_FD 62
#define A_DUP_FD 63
#define B_SHARED_FD 64

enum { MAIN, A, B, NR_THREADS };

static pid_t tids[NR_THREADS], child;
static volatile sig_atomic_t got[NR_THREADS], a_quit, a_stays, a_blocks;
/* thread B: unshare its table (1 asked, 2 done); compare it with the process's (1 asked, then
 * 2 same, 3 not); change its fd 60 first */
static volatile sig_atomic_t b_unshare, b_compare, b_changes;
static int sig;

static void on_signal(int s)
{
	(void)s;
	pid_t me = gettid();
	for (int i = 0; i < NR_THREADS; i++)
		if (tids[i] == me)
			got[i]++;
}

static int thread_pidfd(pid_t tid, int flags)
{
	return (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD_FLAG | flags);
}

static void *thread_main(void *arg)
{
	int which = (int)(long)arg;
	tids[which] = gettid();
	for (;;) {
		if (which == A && a_blocks) {
			sigset_t s;
			sigemptyset(&s);
			sigaddset(&s, sig);
			pthread_sigmask(SIG_BLOCK, &s, NULL);
			a_blocks = 0;
		}
		if (which == A && a_quit && !a_stays)
			return NULL;
		if (which == B && b_unshare == 1)
			b_unshare = unshare(CLONE_FILES) ? 3 : 2;
		if (which == B && b_compare == 1) {
			if (b_changes)
				zoo_place(thread_pidfd(tids[B], 0), A_FD, 0);
			bool same = true;
			for (int fd = A_FD; fd <= B_SHARED_FD; fd++)
				same = same && syscall(SYS_kcmp, gettid(), getpid(), KCMP_FILE_TYPE, fd, fd) == 0;
			b_compare = same ? 2 : 3;
		}
		zoo_sleep_ms(2);
	}
}

/* fdinfo's Pid of fd of pid (its pid as /proc names it; 0: this process) */
static long fdinfo_pid(pid_t pid, int fd)
{
	char path[64], text[1024] = "";
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	else
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	zoo_read_file(path, text, sizeof(text));
	const char *p = strstr(text, "\nPid:");
	return p ? strtol(p + 5, NULL, 10) : -100;
}

static bool same_file(pid_t p1, int fd1, pid_t p2, int fd2)
{
	return syscall(SYS_kcmp, p1, p2, KCMP_FILE_TYPE, fd1, fd2) == 0;
}

static bool readable(int fd, int ms)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	return poll(&pf, 1, ms) == 1 && (pf.revents & POLLIN);
}

/* The signal sent through fd reached thread which, and no other (within a second). */
static bool reaches(int fd, int which)
{
	for (int i = 0; i < NR_THREADS; i++)
		got[i] = 0;
	if (syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0))
		return false;
	for (int ms = 0; ms < 1000 && !got[which]; ms++)
		zoo_sleep_ms(1);
	zoo_sleep_ms(20); /* a stray delivery elsewhere would show by now */
	bool only = got[which] == 1;
	for (int i = 0; i < NR_THREADS; i++)
		only = only && (i == which || !got[i]);
	return only;
}

static void c_pid(ucontext_t *u) { (void)u; zoo_place(thread_pidfd(tids[B], 0), A_FD, 0); }
static void c_flags(ucontext_t *u) { (void)u; fcntl(B_NB_FD, F_SETFL, 0); }
static void c_leader(ucontext_t *u) { (void)u; zoo_place((int)syscall(SYS_pidfd_open, getpid(), 0), MAIN_FD, 0); }
static void c_dup(ucontext_t *u) { (void)u; zoo_place(thread_pidfd(tids[A], 0), A_DUP_FD, 0); }
static void c_child(ucontext_t *u) { (void)u; zoo_place(thread_pidfd(tids[B], 0), B_SHARED_FD, 0); }
static void c_signal(ucontext_t *u)
{
	(void)u;
	a_blocks = 1;
	while (a_blocks)
		zoo_sleep_ms(1);
}
static void c_poll(ucontext_t *u) { (void)u; a_stays = 1; }
static void c_own(ucontext_t *u) { (void)u; b_changes = 1; }
static const struct zoo_corruption corruptions[] = {
	{ "pid", c_pid, 0 },       { "flags", c_flags, 0 }, { "leader", c_leader, 0 },
	{ "dup", c_dup, 0 },       { "child", c_child, 0 }, { "signal", c_signal, 0 },
	{ "poll", c_poll, 0 },     { "own", c_own, 0 },
};

int main(int argc, char **argv)
{
	pthread_t th[NR_THREADS];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	sig = SIGRTMIN + 2;
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL))
		zoo_die("sigaction: %s", strerror(errno));
	tids[MAIN] = gettid();
	for (int i = A; i < NR_THREADS; i++)
		if (pthread_create(&th[i], NULL, thread_main, (void *)(long)i))
			zoo_die("pthread_create");
	for (int i = 0; i < 1000 && !(tids[A] && tids[B]); i++)
		zoo_sleep_ms(1);
	if (!tids[A] || !tids[B])
		zoo_die("the threads did not start");
	zoo_place(thread_pidfd(tids[A], 0), A_FD, 0);
	zoo_place(thread_pidfd(tids[MAIN], 0), MAIN_FD, 0);
	zoo_place(thread_pidfd(tids[B], O_NONBLOCK), B_NB_FD, 0);
	if (dup2(A_FD, A_DUP_FD) != A_DUP_FD)
		zoo_die("dup2: %s", strerror(errno));
	zoo_place(thread_pidfd(tids[B], 0), B_SHARED_FD, 0);
	b_unshare = 1;
	for (int i = 0; i < 1000 && b_unshare == 1; i++)
		zoo_sleep_ms(1);
	if (b_unshare != 2)
		zoo_die("thread B did not take a table of its own");
	for (int i = 1; i < argc; i++) {
		struct epoll_event ev = { .events = EPOLLIN };
		if (strcmp(argv[i], "--epoll"))
			continue;
		int ep = epoll_create1(EPOLL_CLOEXEC);
		if (ep < 0 || dup2(ep, 70) != 70 || epoll_ctl(70, EPOLL_CTL_ADD, A_FD, &ev))
			zoo_die("epoll: %s", strerror(errno));
		close(ep);
	}
	if ((child = fork()) == 0) {
		for (int fd = A_FD; fd < B_SHARED_FD; fd++)
			close(fd);
		for (;;)
			pause();
	}
	if (child < 0)
		zoo_die("fork: %s", strerror(errno));

	zoo_ready();
	zoo_wait();

	pid_t proc[NR_THREADS], proc_child = zoo_proc_pid(child);
	for (int i = 0; i < NR_THREADS; i++)
		proc[i] = zoo_proc_tid_of(0, tids[i]);
	CHECK("pid", fdinfo_pid(0, A_FD) == proc[A] && fdinfo_pid(0, B_NB_FD) == proc[B] &&
			     fdinfo_pid(0, A_DUP_FD) == proc[A] && fdinfo_pid(0, B_SHARED_FD) == proc[B],
	      "fdinfo pids of fds 60 62 63 64: %ld %ld %ld %ld, expected %d %d %d %d", fdinfo_pid(0, A_FD),
	      fdinfo_pid(0, B_NB_FD), fdinfo_pid(0, A_DUP_FD), fdinfo_pid(0, B_SHARED_FD),
	      proc[A], proc[B], proc[A], proc[B]);
	CHECK("leader", fdinfo_pid(0, MAIN_FD) == proc[MAIN] && (fcntl(MAIN_FD, F_GETFL) & PIDFD_THREAD_FLAG),
	      "fd 61: pid %ld (expected %d), flags %#o", fdinfo_pid(0, MAIN_FD), proc[MAIN],
	      fcntl(MAIN_FD, F_GETFL));
	int fl[5];
	bool flags_ok = true;
	for (int fd = A_FD; fd <= B_SHARED_FD; fd++) {
		fl[fd - A_FD] = fcntl(fd, F_GETFL);
		flags_ok = flags_ok && fl[fd - A_FD] >= 0 && (fl[fd - A_FD] & PIDFD_THREAD_FLAG) &&
			   !(fl[fd - A_FD] & O_NONBLOCK) == (fd != B_NB_FD);
	}
	CHECK("flags", flags_ok, "flags of fds 60-64: %#o %#o %#o %#o %#o", fl[0], fl[1], fl[2], fl[3], fl[4]);
	CHECK("dup", same_file(getpid(), A_FD, getpid(), A_DUP_FD) && !same_file(getpid(), A_FD, getpid(), B_NB_FD) &&
			     !same_file(getpid(), B_NB_FD, getpid(), B_SHARED_FD),
	      "fds 60 and 63 are not one open file (or others are)");
	CHECK("child", proc_child > 0 && same_file(getpid(), B_SHARED_FD, child, B_SHARED_FD) &&
			       fdinfo_pid(proc_child, B_SHARED_FD) == proc[B] && fcntl(A_FD, F_GETFD) >= 0,
	      "the child's fd 64 is not our fd 64 (its pid %ld, expected %d)", fdinfo_pid(proc_child, B_SHARED_FD),
	      proc[B]);
	b_compare = 1;
	for (int i = 0; i < 1000 && b_compare == 1; i++)
		zoo_sleep_ms(1);
	CHECK("own", b_compare == 2, "thread B's own table does not hold the process's files at 60-64 (%d)", b_compare);
	CHECK("signal", reaches(A_FD, A), "a signal through fd 60 reached main %d A %d B %d", got[MAIN], got[A], got[B]);
	CHECK("signal", reaches(A_DUP_FD, A), "through fd 63: main %d A %d B %d", got[MAIN], got[A], got[B]);
	CHECK("signal", reaches(MAIN_FD, MAIN), "through fd 61: main %d A %d B %d", got[MAIN], got[A], got[B]);
	CHECK("signal", reaches(B_NB_FD, B), "through fd 62: main %d A %d B %d", got[MAIN], got[A], got[B]);
	CHECK("signal", reaches(B_SHARED_FD, B), "through fd 64: main %d A %d B %d", got[MAIN], got[A], got[B]);
	CHECK("poll", !readable(A_FD, 0) && !readable(B_NB_FD, 0) && !readable(MAIN_FD, 0),
	      "a pidfd is readable before its thread exits");
	a_quit = 1;
	CHECK("poll", readable(A_FD, 2000) && readable(A_DUP_FD, 0), "fd 60 is not readable once thread A exited");
	CHECK("poll", !readable(B_NB_FD, 0) && !readable(B_SHARED_FD, 0) && !readable(MAIN_FD, 0),
	      "another thread's pidfd is readable once thread A exited");
	if (!a_stays)
		pthread_join(th[A], NULL);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return zoo_finish("5 thread pidfds");
}
