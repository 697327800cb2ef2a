/*
 * orphan-born-session: an orphan that was born in another session, forked a child there, then
 * left it for a session of its own, below a subreaper that leads a session of its own too.
 * Root forks P; P leads a session and is a subreaper; P forks A; A forks L; L leads session S,
 * forks M; M forks C and exits (L reaps it), so C goes up to P (A and L are no subreapers);
 * C forks F, then calls setsid(). F: C's child in session and group S; C: P's child, leader of
 * its own session. No process that could fork C in S below P is left, and P itself was never
 * in S: a restore must stand in for M below L, not make P fork C before a setsid() of its own.
 * After restore and SIGTERM: every process checks its parent, session and group; P its
 * subreaper flag.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/prctl.h>
#include <sys/wait.h>

static pid_t p_pid, a_pid, l_pid, c_pid, f_pid;

/* Ends child pid with SIGTERM: its exit code, or 128 if it did not exit by itself. */
static int end_child(pid_t pid)
{
	int st;
	kill(pid, SIGTERM);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return 128;
	return WEXITSTATUS(st);
}

/* Exit codes, one bit each: F's parent 1, F's session or group 2, C's parent 4, C's session or
 * group 8, L's parent, session or group 16, P's parent or session 32, P's subreaper flag 64. */
static __attribute__((noreturn)) void run_f(void)
{
	zoo_child_wait_term();
	if (zoo_corr && !strcmp(zoo_corr->tag, "session"))
		setsid();
	_exit((getppid() != c_pid) | (getsid(0) != l_pid || getpgrp() != l_pid) << 1);
}

static __attribute__((noreturn)) void run_c(int report)
{
	c_pid = getpid();
	if ((f_pid = fork()) == 0)
		run_f();
	if (f_pid < 0 || setsid() < 0)
		_exit(127);
	if (write(report, &c_pid, sizeof(c_pid)) != sizeof(c_pid))
		_exit(127);
	close(report);
	zoo_child_wait_term();
	int code = end_child(f_pid);
	_exit(code | (getppid() != p_pid) << 2 | (getsid(0) != c_pid || getpgrp() != c_pid) << 3);
}

static __attribute__((noreturn)) void run_l(int report)
{
	l_pid = getpid();
	if (setsid() < 0)
		_exit(127);
	pid_t m = fork();
	if (m == 0) {
		if (fork() == 0)
			run_c(report);
		_exit(0);
	}
	waitpid(m, NULL, 0);
	close(report);
	zoo_child_wait_term();
	_exit((getppid() != a_pid || getsid(0) != l_pid || getpgrp() != l_pid) << 4);
}

/* P: report carries C's pid up from C; ready tells root that the tree is made. */
static __attribute__((noreturn)) void run_p(int report[2], int ready)
{
	int sub = 0;
	p_pid = getpid();
	pid_t root = getppid();
	if (setsid() < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1))
		_exit(127);
	if ((a_pid = fork()) == 0) {
		a_pid = getpid();
		close(report[0]);
		close(ready);
		if ((l_pid = fork()) == 0)
			run_l(report[1]);
		close(report[1]);
		zoo_child_wait_term();
		_exit(end_child(l_pid));
	}
	close(report[1]);
	if (read(report[0], &c_pid, sizeof(c_pid)) != sizeof(c_pid))
		_exit(127);
	close(report[0]);
	/* C is P's child once M has exited */
	for (int tries = 0; tries < 1000; tries++) {
		siginfo_t si = { 0 };
		if (waitid(P_PID, c_pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && !si.si_pid)
			break;
		zoo_sleep_ms(2);
	}
	if (write(ready, "r", 1) != 1)
		_exit(127);
	close(ready);
	zoo_child_wait_term();
	prctl(PR_GET_CHILD_SUBREAPER, &sub);
	int code = end_child(a_pid) | end_child(c_pid);
	_exit(code | (getppid() != root || getsid(0) != p_pid) << 5 | !sub << 6);
}

static void c_session(ucontext_t *u) { (void)u; } /* F leaves session S itself */
static const struct zoo_corruption corruptions[] = {
	{ "session", c_session, 0 },
};

int main(int argc, char **argv)
{
	int report[2], ready[2], st;
	char r;
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (pipe(report) || pipe(ready))
		zoo_die("pipe");
	if ((p_pid = fork()) == 0) {
		close(ready[0]);
		run_p(report, ready[1]);
	}
	close(report[0]);
	close(report[1]);
	close(ready[1]);
	if (read(ready[0], &r, 1) != 1)
		zoo_die("the tree was not made");
	close(ready[0]);
	zoo_ready();
	zoo_wait();

	kill(p_pid, SIGTERM);
	waitpid(p_pid, &st, 0);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	CHECK("session", code != 255 && !(code & 3), "F: wrong parent or session (%#x)", code);
	CHECK("orphan", code != 255 && !(code & 12), "C: wrong parent or session (%#x)", code);
	CHECK("tree", code != 255 && !(code & 0xf0), "L or P: wrong parent, session or subreaper "
	      "flag, or a child killed (%#x)", code);
	return zoo_finish("an orphan born in another session, below a subreaper leading its own");
}
