/*
 * pidfd-exit: how the processes of pidfds ended (PIDFD_GET_INFO with PIDFD_INFO_EXIT, 6.15):
 *   fd 40: a child that exited with 0;  fd 41: one that exited with 201;
 *   fd 42: one killed by SIGKILL (sent through fd 42); fd 45: a second pidfd of it (its own
 *          open file), fd 46 a dup of fd 45;
 *   fd 43: one killed by SIGTERM (its default action);
 *   fd 44: one killed by real-time signal SIGRTMIN+5;
 *   fd 47: one killed by SIGABRT that dumped core (into ZOO_TMPDIR, core_pattern permitting);
 *   fd 48: one killed by SIGABRT without a core (not dumpable);
 *   all reaped;
 *   fd 50: PIDFD_THREAD pidfd of a thread of the program that ended with exit(5) (reaped);
 *   fd 51: a child that exited with 33, not waited for (a zombie: no exit information yet);
 *   fd 52: a child alive (in pause): no exit information;
 *   fd 53: PIDFD_THREAD pidfd of the program's own first thread.
 * After restore and SIGTERM: each reaped process's pidfd tells the wait status it told before
 * (code, signal, core dumped), pidfds of one process share an inode and others differ, fd 50
 * keeps PIDFD_THREAD; the zombie still tells nothing, waitid on fd 51 reports 33 and then fd 51
 * tells it; the live child is killed with SIGUSR2 through fd 52, and fd 52 then tells that;
 * fd 53 keeps PIDFD_THREAD and signals the program itself. On a kernel without
 * PIDFD_INFO_EXIT only the inodes, flags, zombie and live child are checked.
 * Blocks in: nanosleep (zoo_wait loop); the live child in pause.
 */
#include "zoo.h"
#include <pthread.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define PIDFD_THREAD_FLAG O_EXCL

struct pidfd_info_v0 {
	uint64_t mask, cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
};
#define GET_INFO _IOWR(0xFF, 11, struct pidfd_info_v0)
#define INFO_EXIT (1ULL << 3)

enum { EXIT0 = 40, EXIT201, KILLED, TERMED, RTSIG, SECOND, DUP, CORE, NOCORE, THREAD = 50, ZOMBIE, LIVE, SELF };
static const int reaped_fds[] = { EXIT0, EXIT201, KILLED, TERMED, RTSIG, SECOND, DUP, CORE, NOCORE, THREAD };
#define NR_REAPED (int)(sizeof(reaped_fds) / sizeof(reaped_fds[0]))
static int expected[NR_REAPED]; /* the wait status each told before the checkpoint */
static bool have_exit_info;
static pid_t zombie, live;

/* The wait status pidfd fd tells, -1 if none, -2 if the ioctl fails. */
static int exit_status(int fd)
{
	struct pidfd_info_v0 info = { .mask = INFO_EXIT };
	if (ioctl(fd, GET_INFO, &info))
		return -2;
	return (info.mask & INFO_EXIT) ? info.exit_code : -1;
}

static void c_exit(void) { int t = dup(EXIT0); dup2(EXIT201, EXIT0), dup2(t, EXIT201), close(t); }
static void c_signal(void) { dup2(TERMED, RTSIG); }
static void c_core(void) { dup2(NOCORE, CORE); }
static void c_inode(void) { dup2(TERMED, SECOND); }
static void c_thread(void) { dup2(EXIT0, THREAD); }
static void c_zombie(void) { siginfo_t si; waitid(P_PIDFD, ZOMBIE, &si, WEXITED); }
static void c_live(void) { kill(live, SIGUSR1); }
static void c_self(void) { dup2(LIVE, SELF); }
#define C(f) static void f##_(ucontext_t *u) { (void)u; f(); }
C(c_exit) C(c_signal) C(c_core) C(c_inode) C(c_thread) C(c_zombie) C(c_live) C(c_self)
static const struct zoo_corruption corruptions[] = {
	{ "exit", c_exit_, 0 },     { "signal", c_signal_, 0 }, { "core", c_core_, 0 },
	{ "inode", c_inode_, 0 },   { "thread", c_thread_, 0 }, { "zombie", c_zombie_, 0 },
	{ "live", c_live_, 0 },     { "self", c_self_, 0 },
};

/* A child that ends by how (>= 0: exits with it; < 0: dies by signal -how); its pidfd at fd. */
static pid_t child(int how, bool core, int at)
{
	int go[2];
	if (pipe(go))
		zoo_die("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(99);
		if (how >= 0)
			_exit(how);
		struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
		int filter = open("/proc/self/coredump_filter", O_WRONLY);
		if (core && (setrlimit(RLIMIT_CORE, &unlimited) || chdir(zoo_tmpdir()) || write(filter, "0", 1) != 1))
			_exit(98);
		if (!core)
			prctl(PR_SET_DUMPABLE, 0);
		signal(-how, SIG_DFL);
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, -how);
		sigprocmask(SIG_UNBLOCK, &s, NULL);
		raise(-how);
		_exit(97);
	}
	close(go[0]);
	zoo_place(syscall(SYS_pidfd_open, pid, 0), at, 0);
	if (write(go[1], "x", 1) != 1)
		zoo_die("write: %s", strerror(errno));
	close(go[1]);
	return pid;
}

static void reap(pid_t pid)
{
	siginfo_t si;
	if (waitid(P_PID, pid, &si, WEXITED))
		zoo_die("waitid %d: %s", pid, strerror(errno));
}

static void *thread_main(void *arg)
{
	(void)arg;
	zoo_place(syscall(SYS_pidfd_open, gettid(), PIDFD_THREAD_FLAG), THREAD, 0);
	syscall(SYS_exit, 5);
	return NULL;
}

/* fd's fdinfo says "Pid: -1" (the thread is gone). */
static bool pid_gone(int fd)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	return zoo_read_file(path, buf, sizeof(buf)) > 0 && strstr(buf, "Pid:\t-1");
}

static ino_t ino(int fd)
{
	struct stat st;
	return fstat(fd, &st) ? 0 : st.st_ino;
}

int main(int argc, char **argv)
{
	pthread_t th;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	zoo_tmpdir(); /* made here, where the core goes */
	/* first: it holds none of the pidfds (a reaped process's pidfd held by two processes of a
	 * tree in its own PID namespace is not restored yet) */
	live = fork();
	if (live == 0) {
		for (;;)
			pause();
	}
	reap(child(0, false, EXIT0));
	reap(child(201, false, EXIT201));
	pid_t k = child(-SIGSTOP, false, KILLED); /* stops itself; SIGKILL through fd 42 ends it */
	if (syscall(SYS_pidfd_send_signal, KILLED, SIGKILL, NULL, 0))
		zoo_die("pidfd_send_signal: %s", strerror(errno));
	zoo_place(syscall(SYS_pidfd_open, k, 0), SECOND, 0);
	reap(k);
	if (dup2(SECOND, DUP) != DUP)
		zoo_die("dup2: %s", strerror(errno));
	reap(child(-SIGTERM, false, TERMED));
	reap(child(-(SIGRTMIN + 5), false, RTSIG));
	reap(child(-SIGABRT, true, CORE));
	reap(child(-SIGABRT, false, NOCORE));
	if (pthread_create(&th, NULL, thread_main, NULL))
		zoo_die("pthread_create");
	for (int i = 0; i < 2000 && !(fcntl(THREAD, F_GETFD) >= 0 && pid_gone(THREAD)); i++)
		zoo_sleep_ms(1);
	if (!pid_gone(THREAD))
		zoo_die("the thread did not end");
	zombie = child(33, false, ZOMBIE);
	siginfo_t si;
	if (waitid(P_PID, zombie, &si, WEXITED | WNOWAIT))
		zoo_die("waitid: %s", strerror(errno));
	zoo_place(syscall(SYS_pidfd_open, live, 0), LIVE, 0);
	zoo_place(syscall(SYS_pidfd_open, getpid(), PIDFD_THREAD_FLAG), SELF, 0);

	have_exit_info = exit_status(EXIT0) >= 0;
	for (int i = 0; i < NR_REAPED; i++)
		expected[i] = exit_status(reaped_fds[i]);
	if (have_exit_info &&
	    (expected[0] != 0 || expected[1] != 201 << 8 || expected[2] != SIGKILL || expected[3] != SIGTERM ||
	     expected[4] != SIGRTMIN + 5 || (expected[7] & 0x7f) != SIGABRT || expected[8] != SIGABRT ||
	     expected[9] != 5 << 8))
		zoo_die("the kernel told other statuses than expected: %#x %#x %#x %#x %#x %#x %#x %#x", expected[0],
			expected[1], expected[2], expected[3], expected[4], expected[7], expected[8], expected[9]);
	if (exit_status(ZOMBIE) != -1 || exit_status(LIVE) != -1)
		zoo_die("a zombie or a live process tells how it ended");

	zoo_ready();
	zoo_wait();

	for (int i = 0; have_exit_info && i < NR_REAPED; i++) {
		int fd = reaped_fds[i], got = exit_status(fd);
		const char *tag = fd == CORE ? "core" : fd == THREAD ? "thread" : fd == SECOND || fd == DUP ? "inode"
			: (expected[i] & 0x7f) && fd != KILLED ? "signal" : "exit";
		CHECK(tag, got == expected[i], "fd %d tells wait status %#x, not %#x", fd, got, expected[i]);
	}
	CHECK("core", !have_exit_info || (expected[7] & 0x80) || (exit_status(CORE) & 0x80) == 0,
	      "fd %d tells a core", CORE);
	CHECK("inode", ino(KILLED) == ino(SECOND) && ino(SECOND) == ino(DUP) && ino(KILLED) != ino(TERMED) &&
		       ino(EXIT0) != ino(EXIT201) && ino(CORE) != ino(NOCORE),
	      "inodes: killed %lu, second %lu, dup %lu, termed %lu", (unsigned long)ino(KILLED),
	      (unsigned long)ino(SECOND), (unsigned long)ino(DUP), (unsigned long)ino(TERMED));
	for (int i = 0; i < NR_REAPED; i++)
		CHECK(reaped_fds[i] == THREAD ? "thread" : "inode",
		      syscall(SYS_pidfd_send_signal, reaped_fds[i], 0, NULL, 0) < 0 && errno == ESRCH && pid_gone(reaped_fds[i]),
		      "fd %d does not refer to a reaped process", reaped_fds[i]);
	CHECK("thread", (fcntl(THREAD, F_GETFL) & PIDFD_THREAD_FLAG) && !(fcntl(EXIT0, F_GETFL) & PIDFD_THREAD_FLAG),
	      "fd %d flags %#o (PIDFD_THREAD lost), fd %d %#o", THREAD, fcntl(THREAD, F_GETFL), EXIT0,
	      fcntl(EXIT0, F_GETFL));

	int before = exit_status(ZOMBIE);
	memset(&si, 0, sizeof(si));
	int w = waitid(P_PIDFD, ZOMBIE, &si, WEXITED | WNOHANG);
	CHECK("zombie", before == -1 && w == 0 && si.si_pid == zombie && si.si_code == CLD_EXITED && si.si_status == 33,
	      "zombie: before waitid tells %#x, waitid %d (%s) pid %d code %d status %d", before, w,
	      w ? strerror(errno) : "", si.si_pid, si.si_code, si.si_status);
	CHECK("zombie", !have_exit_info || exit_status(ZOMBIE) == 33 << 8, "reaped zombie tells %#x",
	      exit_status(ZOMBIE));

	before = exit_status(LIVE);
	int sent = syscall(SYS_pidfd_send_signal, LIVE, SIGUSR2, NULL, 0);
	memset(&si, 0, sizeof(si));
	w = waitid(P_PIDFD, LIVE, &si, WEXITED);
	CHECK("live", before == -1 && !sent && !w && si.si_code == CLD_KILLED && si.si_status == SIGUSR2,
	      "live child: told %#x before, signal %d, waitid %d code %d status %d", before, sent, w, si.si_code,
	      si.si_status);
	CHECK("live", !have_exit_info || exit_status(LIVE) == SIGUSR2, "killed child tells %#x", exit_status(LIVE));

	CHECK("self", (fcntl(SELF, F_GETFL) & PIDFD_THREAD_FLAG) && !syscall(SYS_pidfd_send_signal, SELF, 0, NULL, 0) &&
		      exit_status(SELF) == -1,
	      "fd %d flags %#o, signal 0 %s", SELF, fcntl(SELF, F_GETFL), strerror(errno));
	return zoo_finish(have_exit_info ? "exit statuses of 9 reaped processes and a thread kept"
					 : "no PIDFD_INFO_EXIT here: inodes, flags, zombie and live child");
}
