#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "ns-helper.h"
#include "util.h"

static const char *ns_name(int nstype)
{
	switch (nstype) {
	case CLONE_NEWUTS: return "uts";
	case CLONE_NEWNET: return "net";
	case CLONE_NEWIPC: return "ipc";
	case CLONE_NEWCGROUP: return "cgroup";
	case CLONE_NEWNS: return "mnt";
	case CLONE_NEWPID: return "pid";
	case CLONE_NEWTIME: return "time";
	default: return "?";
	}
}

/* The kind's name in a message ("stasis's own IPC namespace"). */
static const char *ns_word(int nstype)
{
	switch (nstype) {
	case CLONE_NEWUTS: return "UTS";
	case CLONE_NEWNET: return "network";
	case CLONE_NEWIPC: return "IPC";
	case CLONE_NEWNS: return "mount";
	case CLONE_NEWPID: return "PID";
	default: return ns_name(nstype);
	}
}

int ns_enter_from_home(int fd, int nstype, int *home)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/thread-self/ns/%s", ns_name(nstype));
	int own = open(path, O_RDONLY | O_CLOEXEC);
	if (own < 0 || setns(fd, nstype)) {
		int err = -errno;
		if (own >= 0)
			close(own);
		errno = -err;
		return err;
	}
	*home = own + 1;
	return 0;
}

void ns_go_home(int *home, int nstype, const char *who)
{
	if (!*home)
		return;
	if (setns(*home - 1, nstype))
		pr_perror("%s: cannot go back to stasis's own %s namespace", who, ns_word(nstype));
	close(*home - 1);
	*home = 0;
}

bool ns_is_own(pid_t pid, const char *kind, uint64_t *ino)
{
	char path[64];
	struct stat a, b;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, kind);
	if (stat(path, &a))
		return false;
	if (ino)
		*ino = a.st_ino;
	snprintf(path, sizeof(path), "/proc/self/ns/%s", kind);
	return !stat(path, &b) && a.st_ino != b.st_ino;
}

int ns_helper_run(pid_t pid, int nstype, int (*fn)(void *out, size_t len), void *out, size_t len)
{
	char path[64];
	int p[2], status = 0, err;
	pid_t child;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, ns_name(nstype));
	auto_close int nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		pr_perror("dump pid %d: cannot open %s", pid, path);
		return -errno;
	}
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	if ((child = fork()) == 0) {
		close(p[0]);
		if (setns(nsfd, nstype)) {
			pr_perror("dump pid %d: cannot enter its %s namespace", pid, ns_name(nstype));
			_exit(1);
		}
		err = fn(out, len);
		if (err || write_all(p[1], out, len))
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	err = child < 0 ? -errno : 0;
	if (!err && read_all(p[0], out, len) != (ssize_t)len)
		err = -EIO;
	close(p[0]);
	while (child > 0 && waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (!err && (!WIFEXITED(status) || WEXITSTATUS(status)))
		err = -EIO;
	if (err)
		pr_err("dump pid %d: reading its %s namespace failed", pid, ns_name(nstype));
	return err;
}
