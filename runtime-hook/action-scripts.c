/*
 * --action-script: criu's hooks for command-line users. At each notification point every
 * script runs in turn under `sh -c`, told the point in CRTOOLS_SCRIPT_ACTION (and the restored
 * root in CRTOOLS_INIT_PID); a script that fails fails the run there.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faces.h"
#include "log.h"

static int run_script(const char *script, const char *point, int init_pid)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		pr_perror("action script at %s: fork", point);
		return -errno;
	}
	if (pid == 0) {
		char num[16];
		setenv("CRTOOLS_SCRIPT_ACTION", point, 1);
		if (init_pid > 0) {
			snprintf(num, sizeof(num), "%d", init_pid);
			setenv("CRTOOLS_INIT_PID", num, 1);
		}
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		pr_err("action script '%s' failed at %s with exit code %d", script, point,
		       WEXITSTATUS(status));
	else
		pr_err("action script '%s' was killed by signal %d at %s", script, WTERMSIG(status),
		       point);
	return -ECANCELED;
}

int action_scripts_run(const struct opt_list *scripts, const char *point, int init_pid)
{
	for (size_t i = 0; i < scripts->n; i++) {
		int err = run_script(scripts->v[i].value, point, init_pid);
		if (err)
			return err;
	}
	return 0;
}
