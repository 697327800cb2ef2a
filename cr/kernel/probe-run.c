/* Recording a probe's answer, and running a probe in a throwaway child. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel/probe.h"
#include "log.h"
#include "util.h"

#define CHILD_TIMEOUT_S 5
#define CHILD_OUT_OF_MEMORY 4 /* the child's exit status: it could not tell (said) */

bool probe_set(struct probe_result *r, bool ok, const char *fmt, ...)
{
	va_list ap;

	r->ok = ok;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	return ok;
}

char *probe_read_file(struct probe_result *r, const char *path)
{
	char *text = read_file_at(AT_FDCWD, path, NULL);

	if (!text && errno == ENOMEM)
		r->error = -ENOMEM;
	return text;
}

void probe_close_pair(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
	p[0] = p[1] = -1;
}

int probe_reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, __WALL) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return status;
}

bool probe_in_child(bool (*fn)(struct probe_result *r), struct probe_result *r)
{
	int p[2];
	pid_t pid;
	ssize_t n;
	int status;

	if (pipe2(p, O_CLOEXEC) < 0)
		return probe_set(r, false, "probe pipe: %m");
	fflush(NULL);
	pid = fork();
	if (pid < 0) { /* the kernel is not asked: said, not taken for its answer */
		int err = -errno;
		probe_close_pair(p);
		pr_err("cannot start a process to probe the kernel: %s%s", strerror(-err),
		       err == -EAGAIN ? " (a limit on processes: the cgroup's pids.max, RLIMIT_NPROC?)" : "");
		r->error = err;
		return probe_set(r, false, "probe fork: %s", strerror(-err));
	}
	if (pid == 0) {
		struct probe_result cr = { 0 };
		bool ok;

		close(p[0]);
		alarm(CHILD_TIMEOUT_S);
		ok = fn(&cr);
		if (write(p[1], cr.detail, strlen(cr.detail)) < 0)
			_exit(3);
		_exit(cr.error == -ENOMEM ? CHILD_OUT_OF_MEMORY : ok ? 0 : 1);
	}
	close(p[1]);
	memset(r->detail, 0, sizeof(r->detail));
	n = read_all(p[0], r->detail, sizeof(r->detail) - 1);
	close(p[0]);
	status = probe_reap(pid);
	if (n < 0)
		r->detail[0] = 0;
	if (status < 0)
		return probe_set(r, false, "probe child lost: %m");
	if (WIFSIGNALED(status))
		return probe_set(r, false, "probe child died of signal %d%s", WTERMSIG(status),
				 WTERMSIG(status) == SIGALRM ? ": timed out" : "");
	if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_OUT_OF_MEMORY)
		r->error = -ENOMEM;
	r->ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	return r->ok;
}
