/*
 * subreaper COMMAND [ARG...]: runs COMMAND as a child subreaper's child (PR_SET_CHILD_SUBREAPER)
 * and reaps every process orphaned below it as soon as it ends; exits as COMMAND does.
 *
 * The tests start programs that leave their parent (daemons, a tree restored with -d whose
 * stasis has exited); without this they are reparented to the machine's init, and an init
 * that reaps slowly (a second or two on some VMs) keeps a dumped tree's pids taken: every
 * restore of the same pids then waits for it. Under the subreaper they are reaped at once.
 * SIGINT, SIGTERM and SIGHUP sent to the subreaper are passed on to COMMAND.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t command;

static void pass_on(int sig)
{
	if (command > 0)
		kill(command, sig);
}

int main(int argc, char **argv)
{
	static const int passed[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = pass_on, .sa_flags = SA_RESTART };
	int status, exit_code = 1;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: subreaper COMMAND [ARG...]\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1)) {
		fprintf(stderr, "subreaper: cannot become a child subreaper: %s\n", strerror(errno));
		execvp(argv[1], argv + 1); /* (the tests run, only slower) */
		return 127;
	}
	for (size_t i = 0; i < sizeof(passed) / sizeof(passed[0]); i++)
		sigaction(passed[i], &sa, NULL);
	if ((command = fork()) < 0) {
		fprintf(stderr, "subreaper: cannot fork: %s\n", strerror(errno));
		return 1;
	}
	if (!command) {
		execvp(argv[1], argv + 1);
		fprintf(stderr, "subreaper: cannot run %s: %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	while ((pid = wait(&status)) != command)
		if (pid < 0 && errno != EINTR)
			return 1;
	if (WIFEXITED(status))
		exit_code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		exit_code = 128 + WTERMSIG(status);
	return exit_code;
}
