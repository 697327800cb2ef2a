/*
 * ns-init CMD [ARG...]: the init of the PID namespace a test runs in for the ns flavour
 * (run.sh -n), like zdtm's own: it runs CMD (the test's launcher, which exits once the test
 * daemonized) and waits for it, then waits for SIGTERM. It reaps nothing else: orphans that
 * tests leave as zombies must stay so (helper_zombie_child); the namespace ends with it. It
 * is the dumped tree's root, waiting in sigsuspend.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t term;

static void on_term(int sig) { (void)sig; term = 1; }

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigset_t block, wait_set;
	pid_t launcher;
	int st;

	if (argc < 2 || getpid() != 1) {
		fprintf(stderr, "usage: ns-init CMD [ARG...] (as pid 1 of a PID namespace)\n");
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &wait_set);
	if ((launcher = fork()) == 0) {
		sigprocmask(SIG_SETMASK, &wait_set, NULL);
		execvp(argv[1], argv + 1);
		perror(argv[1]);
		_exit(127);
	}
	if (launcher < 0 || waitpid(launcher, &st, 0) != launcher || !WIFEXITED(st) || WEXITSTATUS(st))
		return 1; /* (the test did not start: the namespace ends with it) */
	while (!term)
		sigsuspend(&wait_set);
	return 0;
}
