/*
 * pidfd: pidfds of the program's children and of itself, as Go keeps one per child it starts.
 *   fd 90: child A, running (blocked in pause);
 *   fd 91 (O_NONBLOCK): child B, exited with status 7, not waited for (a zombie);
 *   fd 92: child C, exited and already reaped through its pidfd ("Pid: -1");
 *   fd 93: the program itself.
 * After restore and SIGTERM: each fd names the same pid (fdinfo's Pid, in the namespace /proc
 * belongs to: a PID namespace's init may keep the host's /proc), A is alive and pidfd_send_signal
 * through fd 90 kills it and waitid(P_PIDFD) reports that; waitid on fd 91 gives B's status 7
 * without blocking; fd 92 still refers to a reaped process (signalling it fails with ESRCH).
 * Blocks in: nanosleep (zoo_wait loop); child A in pause.
 */
#include "zoo.h"
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static pid_t a, b;

static int pidfd_of(pid_t pid, int flags, int fd)
{
	int p = syscall(SYS_pidfd_open, pid, flags);
	if (p < 0 || dup2(p, fd) != fd)
		zoo_die("pidfd_open %d: %s", pid, strerror(errno));
	close(p);
	return fd;
}

static long fdinfo_pid(int fd)
{
	char path[64], text[1024] = "";
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	zoo_read_file(path, text, sizeof(text));
	const char *p = strstr(text, "\nPid:");
	return p ? strtol(p + 5, NULL, 10) : -100;
}

static void c_child(ucontext_t *u) { (void)u; kill(a, SIGKILL); waitpid(a, NULL, 0); }
static void c_flags(ucontext_t *u) { (void)u; fcntl(91, F_SETFL, 0); }
static const struct zoo_corruption corruptions[] = {
	{ "child", c_child, 0 },
	{ "flags", c_flags, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if ((a = fork()) == 0) {
		for (;;)
			pause();
	}
	if ((b = fork()) == 0)
		_exit(7);
	pid_t c = fork();
	if (c == 0)
		_exit(0);
	pidfd_of(a, 0, 90);
	pidfd_of(b, O_NONBLOCK, 91);
	pidfd_of(c, 0, 92);
	pidfd_of(getpid(), 0, 93);
	siginfo_t si;
	if (waitid(P_PIDFD, 92, &si, WEXITED))
		zoo_die("waitid C: %s", strerror(errno));
	zoo_sleep_ms(50); /* B is a zombie by now */
	zoo_ready();
	zoo_wait();

	pid_t proc_a = zoo_proc_pid(a), proc_b = zoo_proc_pid(b), proc_self = zoo_proc_pid(getpid());
	CHECK("child", proc_a > 0 && proc_b > 0 && fdinfo_pid(90) == proc_a && fdinfo_pid(91) == proc_b &&
			       fdinfo_pid(92) == -1 && fdinfo_pid(93) == proc_self,
	      "fdinfo pids %ld %ld %ld %ld, expected %d %d -1 %d (pids %d %d -1 %d here)", fdinfo_pid(90),
	      fdinfo_pid(91), fdinfo_pid(92), fdinfo_pid(93), proc_a, proc_b, proc_self, a, b, getpid());
	struct pollfd pf = { .fd = 90, .events = POLLIN };
	CHECK("child", poll(&pf, 1, 0) == 0, "child A's pidfd is readable: it has exited");
	CHECK("child", syscall(SYS_pidfd_send_signal, 90, SIGKILL, NULL, 0) == 0, "pidfd_send_signal A: %s",
	      strerror(errno));
	memset(&si, 0, sizeof(si));
	CHECK("child", waitid(P_PIDFD, 90, &si, WEXITED) == 0 && si.si_pid == a && si.si_code == CLD_KILLED &&
			       si.si_status == SIGKILL,
	      "waitid A: pid %d code %d status %d", si.si_pid, si.si_code, si.si_status);
	memset(&si, 0, sizeof(si));
	CHECK("flags", (fcntl(91, F_GETFL) & O_NONBLOCK), "fd 91 lost O_NONBLOCK");
	CHECK("child", waitid(P_PIDFD, 91, &si, WEXITED | WNOHANG) == 0 && si.si_pid == b && si.si_status == 7,
	      "waitid B: pid %d status %d (%s)", si.si_pid, si.si_status, strerror(errno));
	CHECK("child", syscall(SYS_pidfd_send_signal, 92, 0, NULL, 0) < 0 && errno == ESRCH,
	      "signalling reaped C through fd 92: %s", strerror(errno));
	return zoo_finish("4 pidfds");
}
