/*
 * orphan-group: process groups whose leader has exited. Root (a subreaper) forks L; L makes
 * its own group, forks M1 and M2 into it, and exits (root reaps it). M1 and M2 now belong to
 * root and to group L, which has no leader. Root also forks S, which leads a session of its
 * own and forks L2 there; L2 makes its group, forks N1 and N2 into it and exits (S reaps it):
 * N1 and N2 are root's (the subreaper's) too, in S's session and group L2.
 * After restore and SIGTERM: the members are still in their groups under root (and N1, N2 in
 * S's session), a signal sent to each group (kill(-L)) reaches its members, no process has the
 * pid of L or L2 (what stood in for them while the groups were made again is gone), and root
 * has no child but S and the members.
 * orphan-group-session is this program with only S's group (built with SESSION_ONLY): root
 * then has no group of its own to wait for while the restore makes S's.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/prctl.h>
#include <sys/wait.h>

#ifndef SESSION_ONLY
#define SESSION_ONLY 0
#endif

/* group 0: led by a child of root; group 1: led by a child of S, in S's session */
static pid_t root, session, leaders[2], members[2][2];
static volatile sig_atomic_t child_term, got_usr1;

static void on_term(int sig) { (void)sig; child_term = 1; }
static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }

/* Exit code: 0, or 1 parent, 2 group, 8 session */
static void member(int n, pid_t group, pid_t sid)
{
	struct sigaction sa = { .sa_handler = on_term }, su = { .sa_handler = on_usr1 };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &su, NULL);
	while (!got_usr1 || !child_term)
		zoo_sleep_ms(5);
	if (n == 1 && zoo_corr && !strcmp(zoo_corr->tag, "group"))
		setpgid(0, 0);
	_exit((getppid() != root) | (getpgrp() != group) << 1 | (getsid(0) != sid) << 3);
}

/* The caller leads group g (its pid) and forks its members into it, tells their pids and its
 * own through fd (one write: another leader writes there too), and exits. */
static void lead_and_exit(int g, int fd, int other)
{
	pid_t said[3] = { 0, 0, getpid() };
	setpgid(0, 0);
	for (int n = 0; n < 2; n++)
		if ((said[n] = fork()) == 0) {
			close(fd);
			close(other);
			member(n, said[2], getsid(0));
		}
	close(other);
	if (write(fd, said, sizeof(said)) != sizeof(said))
		_exit(1);
	(void)g;
	_exit(0);
}

/* waitid finds pid, alive, as root's child (without reaping) */
static int adopted(pid_t pid)
{
	siginfo_t si = { 0 };
	return waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && !si.si_pid;
}

static void c_group(ucontext_t *u) { (void)u; } /* a member leaves the group itself */
static const struct zoo_corruption corruptions[] = {
	{ "group", c_group, 0 },
};

int main(int argc, char **argv)
{
	int first = SESSION_ONLY ? 1 : 0, ready[2];
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	root = getpid();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (pipe(ready))
		zoo_die("pipe");
	if (!SESSION_ONLY && (leaders[0] = fork()) == 0)
		lead_and_exit(0, ready[1], ready[0]);
	if ((session = fork()) == 0) { /* S: a session, group 1 in it */
		setsid();
		pid_t l = fork();
		if (l == 0)
			lead_and_exit(1, ready[1], ready[0]);
		waitpid(l, NULL, 0);
		close(ready[0]);
		close(ready[1]);
		struct sigaction sa = { .sa_handler = on_term };
		sigaction(SIGTERM, &sa, NULL);
		while (!child_term)
			zoo_sleep_ms(5);
		_exit(0);
	}
	close(ready[1]);
	for (int g = first; g < 2; g++) {
		pid_t got[3];
		if (read(ready[0], got, sizeof(got)) != sizeof(got) || got[0] <= 0 || got[1] <= 0)
			zoo_die("a leader did not start its members");
		int k = got[2] == leaders[0] ? 0 : 1;
		leaders[k] = got[2];
		members[k][0] = got[0];
		members[k][1] = got[1];
	}
	close(ready[0]);
	if (!SESSION_ONLY)
		waitpid(leaders[0], NULL, 0);
	/* the members are root's children now */
	int n_adopted = 0, want = 2 * (2 - first);
	for (int tries = 0; tries < 500 && n_adopted < want; tries++) {
		n_adopted = 0;
		for (int g = first; g < 2; g++)
			n_adopted += adopted(members[g][0]) + adopted(members[g][1]);
		if (n_adopted < want)
			zoo_sleep_ms(2);
	}
	if (n_adopted < want)
		zoo_die("the members were not reparented to root");
	zoo_ready();
	zoo_wait();

	for (int g = first; g < 2; g++) {
		CHECK("group", kill(-leaders[g], SIGUSR1) == 0, "group %d does not exist: %s", leaders[g],
		      strerror(errno));
		CHECK("group", kill(leaders[g], 0) && errno == ESRCH, "a process has the pid of the exited leader %d",
		      leaders[g]);
		for (int n = 0; n < 2; n++) {
			int st = 0;
			kill(members[g][n], SIGTERM);
			waitpid(members[g][n], &st, 0);
			int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
			CHECK("parent", code != 255 && !(code & 1), "member %d of group %d (pid %d): wrong parent (%#x)", n,
			      leaders[g], members[g][n], st);
			CHECK("group", code == 255 || !(code & 10), "member %d (pid %d) left group %d or its session (%#x)", n,
			      members[g][n], leaders[g], st);
		}
	}
	kill(session, SIGTERM);
	waitpid(session, NULL, 0);
	pid_t extra = waitpid(-1, NULL, WNOHANG);
	CHECK("group", extra < 0 && errno == ECHILD, "root has another child (waitpid: %d)", extra);
	return zoo_finish(SESSION_ONLY ? "a group of an exited leader in a session of its own, 2 members"
				       : "groups of exited leaders (one in a session of its own), 2 members each");
}
