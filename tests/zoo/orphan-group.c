/*
 * orphan-group: a process group whose leader has exited. Root (a subreaper) forks L; L makes
 * its own group, forks M1 and M2 into it, and exits (root reaps it). M1 and M2 now belong to
 * root and to group L, which has no leader. After restore and SIGTERM: both are still in
 * group L under root, and a signal sent to the group (kill(-L)) reaches both.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/prctl.h>
#include <sys/wait.h>

static pid_t root, leader, members[2];
static volatile sig_atomic_t child_term, got_usr1;

static void on_term(int sig) { (void)sig; child_term = 1; }
static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }

/* Exit code: 0, or 1 parent, 2 group, 4 group signal not received */
static void member(int n)
{
	struct sigaction sa = { .sa_handler = on_term }, su = { .sa_handler = on_usr1 };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &su, NULL);
	while (!got_usr1 || !child_term)
		zoo_sleep_ms(5);
	if (n == 1 && zoo_corr && !strcmp(zoo_corr->tag, "group"))
		setpgid(0, 0);
	_exit((getppid() != root) | (getpgrp() != leader) << 1);
}

static void c_group(ucontext_t *u) { (void)u; } /* M2 leaves the group itself */
static const struct zoo_corruption corruptions[] = {
	{ "group", c_group, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	root = getpid();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	int ready[2];
	if (pipe(ready))
		zoo_die("pipe");
	leader = fork();
	if (leader == 0) {
		leader = getpid(); /* what the members check against */
		setpgid(0, 0);
		for (int n = 0; n < 2; n++)
			if ((members[n] = fork()) == 0) {
				close(ready[0]);
				close(ready[1]);
				member(n);
			}
		close(ready[0]);
		if (write(ready[1], members, sizeof(members)) != sizeof(members))
			_exit(1);
		_exit(0);
	}
	close(ready[1]);
	if (read(ready[0], members, sizeof(members)) != sizeof(members) || members[0] <= 0 || members[1] <= 0)
		zoo_die("leader did not start its members");
	close(ready[0]);
	waitpid(leader, NULL, 0);
	/* the members are root's children now (waitid finds them, alive, without reaping) */
	int adopted = 0;
	for (int tries = 0; tries < 500 && adopted < 2; tries++) {
		adopted = 0;
		for (int n = 0; n < 2; n++) {
			siginfo_t si = { 0 };
			adopted += waitid(P_PID, members[n], &si, WEXITED | WNOHANG | WNOWAIT) == 0 && !si.si_pid;
		}
		if (adopted < 2)
			zoo_sleep_ms(2);
	}
	if (adopted < 2)
		zoo_die("the members were not reparented to root");
	zoo_ready();
	zoo_wait();

	CHECK("group", kill(-leader, SIGUSR1) == 0, "group %d does not exist: %s", leader, strerror(errno));
	for (int n = 0; n < 2; n++) {
		int st = 0;
		kill(members[n], SIGTERM);
		waitpid(members[n], &st, 0);
		int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
		CHECK("parent", code != 255 && !(code & 1), "member %d (pid %d): wrong parent (%#x)", n, members[n], st);
		CHECK("group", code == 255 || !(code & 2), "member %d (pid %d) left group %d", n, members[n], leader);
	}
	return zoo_finish("group of an exited leader, 2 members");
}
