/*
 * orphan-session: a process that went up to a subreaper as an orphan out of a session its
 * parent is not in. Root (a subreaper) forks T; T forks S; S leads a session of its own, forks
 * H; H forks O and exits (S reaps it), so O goes up to root (S and T are no subreapers then);
 * S becomes a subreaper after. O: root's child in S's session and group, with no process of
 * that session left that could fork it below root (a restore must stand in for H). After
 * restore and SIGTERM: O is still root's child in session and group S; S still leads its
 * session and is a subreaper; T is still S's parent.
 * --escape: root is no subreaper, so O goes up out of the tree, still in S's session; its pid
 * and S's are written to $ZOO_TMPDIR/escaped-orphan ("O S"), for the test to end it (the restore
 * of the tree is refused while O keeps S's pid taken). After restore: S and T alone are checked.
 * ZOMBIE_ORPHAN (orphan-zombie-session): O has exited with status 42 before the dump, a zombie
 * of root's in S's session; after restore root checks its session and status, then reaps it.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/prctl.h>
#include <sys/wait.h>

#ifdef ZOMBIE_ORPHAN
#define ZOMBIE 1
#else
#define ZOMBIE 0
#endif

static pid_t root, t_pid, s_pid, o_pid;
static int escape;

/* Exit code: 0, or 1 parent, 2 session, 4 group */
static __attribute__((noreturn)) void orphan(void)
{
#ifdef ZOMBIE_ORPHAN
	if (zoo_corr && !strcmp(zoo_corr->tag, "session"))
		setsid();
	_exit(42);
#endif
	zoo_child_wait_term();
	if (zoo_corr && !strcmp(zoo_corr->tag, "session"))
		setsid();
	_exit((getppid() != root) | (getsid(0) != s_pid) << 1 | (getpgrp() != s_pid) << 2);
}

/* S. Exit code: 0, or 8 session, 16 subreaper, 32 parent */
static __attribute__((noreturn)) void session_leader(int report)
{
	int sub = 0;
	s_pid = getpid();
	if (setsid() < 0)
		_exit(64);
	pid_t h = fork();
	if (h == 0) {
		if ((o_pid = fork()) == 0)
			orphan();
		pid_t ids[2] = { o_pid, s_pid };
		_exit(write(report, ids, sizeof(ids)) == sizeof(ids) ? 0 : 1);
	}
	waitpid(h, NULL, 0);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	close(report);
	zoo_child_wait_term();
	prctl(PR_GET_CHILD_SUBREAPER, &sub);
	_exit((getsid(0) != s_pid) << 3 | !sub << 4 | (getppid() != t_pid) << 5);
}

static void c_session(ucontext_t *u) { (void)u; } /* O leaves the session itself */
static const struct zoo_corruption corruptions[] = {
	{ "session", c_session, 0 },
};

int main(int argc, char **argv)
{
	int report[2], st;
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	escape = argc > 1 && !strcmp(argv[1], "--escape");
	root = getpid();
	prctl(PR_SET_CHILD_SUBREAPER, !escape);
	if (pipe(report))
		zoo_die("pipe");
	if ((t_pid = fork()) == 0) {
		t_pid = getpid();
		close(report[0]);
		if ((s_pid = fork()) == 0)
			session_leader(report[1]);
		close(report[1]);
		zoo_child_wait_term();
		kill(s_pid, SIGTERM);
		waitpid(s_pid, &st, 0);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128);
	}
	close(report[1]);
	pid_t ids[2];
	if (read(report[0], ids, sizeof(ids)) != sizeof(ids) || ids[0] <= 0)
		zoo_die("the orphan was not made");
	o_pid = ids[0];
	s_pid = ids[1];
	close(report[0]);
	if (escape) {
		char path[600], ids_text[32];
		snprintf(path, sizeof(path), "%s/escaped-orphan", zoo_tmpdir());
		snprintf(ids_text, sizeof(ids_text), "%d %d\n", o_pid, s_pid);
		if (zoo_write_file(path, ids_text, strlen(ids_text)))
			zoo_die("write %s: %s", path, strerror(errno));
	}
	/* O is root's child now (waitid finds it, alive or a zombie, without reaping) */
	int adopted = escape;
	for (int tries = 0; tries < 500 && !adopted; tries++) {
		siginfo_t si = { 0 };
		adopted = waitid(P_PID, o_pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
			  (ZOMBIE ? si.si_pid == o_pid : !si.si_pid);
		if (!adopted)
			zoo_sleep_ms(2);
	}
	if (!adopted)
		zoo_die("the orphan was not reparented to root");
	zoo_sleep_ms(20); /* (S becomes a subreaper) */
	zoo_ready();
	zoo_wait();

	int code;
	if (ZOMBIE) {
		pid_t sid = getsid(o_pid);
		waitpid(o_pid, &st, 0);
		CHECK("session", sid == s_pid, "zombie orphan %d: in session %d, not %d", o_pid, sid, s_pid);
		CHECK("status", WIFEXITED(st) && WEXITSTATUS(st) == 42, "zombie orphan %d: status %#x, "
		      "not exit 42", o_pid, st);
	} else if (!escape) {
		kill(o_pid, SIGTERM);
		waitpid(o_pid, &st, 0);
		code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
		CHECK("parent", code != 255 && !(code & 1), "orphan %d: wrong parent (%#x)", o_pid, st);
		CHECK("session", code == 255 || !(code & 6), "orphan %d: not in session and group %d (%#x)",
		      o_pid, s_pid, code);
	}
	kill(t_pid, SIGTERM);
	waitpid(t_pid, &st, 0);
	code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	CHECK("leader", code == 0, "session leader %d (T %d): exit %#x (8 session, 16 subreaper, 32 parent)",
	      s_pid, t_pid, code);
	return zoo_finish("an orphan of a session gone up to a subreaper outside it");
}
