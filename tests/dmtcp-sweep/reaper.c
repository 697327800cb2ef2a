/* reaper: the root of a dmtcp-sweep test's tree. It becomes a child subreaper, starts the
 * test program (argv[1..]) and reaps whatever ends below it, so that a test whose first
 * process exits (shared-fd2) still leaves one tree to checkpoint, and the count of live
 * processes below it is the test's process count. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
	if (argc < 2) {
		fprintf(stderr, "usage: reaper PROGRAM [ARG...]\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
		perror("reaper: PR_SET_CHILD_SUBREAPER");
		return 2;
	}
	pid_t child = fork();
	if (child < 0) {
		perror("reaper: fork");
		return 2;
	}
	if (child == 0) {
		execv(argv[1], argv + 1);
		perror("reaper: exec");
		_exit(127);
	}
	for (;;) {
		if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
			pause();
	}
}
