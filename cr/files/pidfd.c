/*
 * pidfds (pidfd_open, clone3 CLONE_PIDFD; Go keeps one per child it starts): the pid they
 * refer to, which must be a process of the tree (or a zombie of it). Restore opens one again
 * for that pid, waiting a little for it to exist if it is created later in the tree. A pidfd
 * whose process was already reaped ("Pid: -1") comes back as a pidfd of a process that exited
 * and was reaped, made once by stasis before the tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "util.h"

#define PIDFD_THREAD O_EXCL /* a pidfd of one thread (6.9+) */

static bool is_pidfd(const char *link)
{
	return !strcmp(link, "anon_inode:[pidfd]") || !strncmp(link, "pidfd:", 6);
}

/* Is pid the tree's root or below it (zombies included: /proc still has their parent)? */
static bool in_tree(pid_t pid, pid_t root)
{
	for (int depth = 0; pid > 1 && depth < 4096; depth++) {
		char path[64];
		uint64_t ppid;
		if (pid == root)
			return true;
		snprintf(path, sizeof(path), "/proc/%d/status", pid);
		auto_free char *status = read_file_at(AT_FDCWD, path, NULL);
		if (!status || !fdinfo_u64(status, "PPid:", 10, &ppid))
			return false;
		pid = ppid;
	}
	return false;
}

static int dump_pidfd(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	const char *line = strstr(p->info, "\nPid:");
	int pid;

	if (!is_pidfd(p->link))
		return 0;
	if (!line || sscanf(line + 5, "%d", &pid) != 1 || pid == 0) {
		pr_err("dump pid %d fd %d: a pidfd of a process stasis cannot see (other pid namespace)",
		       t->pid, p->fd);
		return -ENOTSUP;
	}
	if (p->flags & PIDFD_THREAD) {
		pr_err("dump pid %d fd %d: a pidfd of one thread (PIDFD_THREAD, not supported yet)",
		       t->pid, p->fd);
		return -ENOTSUP;
	}
	if (pid > 0 && !in_tree(pid, t->tree[0].pid)) {
		pr_err("dump pid %d fd %d: a pidfd of pid %d, which is not in the tree", t->pid, p->fd, pid);
		return -ENOTSUP;
	}
	e->has_flags = e->has_pidfd_pid = true;
	e->flags = p->flags;
	e->pidfd_pid = pid > 0 ? pid : 0;
	return 1;
}

/* ---- restore ---- */

static int reaped_pidfd = -1; /* a pidfd of a process that exited and was reaped */

int pidfds_restore_prepare(bool needed)
{
	if (!needed)
		return 0;
	fflush(NULL);
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	if (child < 0 || (reaped_pidfd = syscall(SYS_pidfd_open, child, 0)) < 0) {
		pr_perror("restore: cannot make a pidfd of a reaped process");
		return -errno;
	}
	fcntl(reaped_pidfd, F_SETFD, FD_CLOEXEC);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	return 0;
}

void pidfds_close_all(void)
{
	if (reaped_pidfd >= 0)
		close(reaped_pidfd);
	reaped_pidfd = -1;
}

static int open_pidfd(struct restore_task *t, const FdEntry *e)
{
	int fd = -1;

	if (!e->has_pidfd_pid || e->pidfd_pid > INT32_MAX)
		return -EINVAL;
	if (!e->pidfd_pid) {
		fd = reaped_pidfd < 0 ? -1 : fcntl(reaped_pidfd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return -EBADF;
	}
	/* the process may be one of the tree created after this one: wait for it (2 s at most) */
	for (int tries = 0; fd < 0 && tries < 1000; tries++) {
		fd = syscall(SYS_pidfd_open, e->pidfd_pid, e->flags & O_NONBLOCK);
		if (fd < 0 && errno != ESRCH)
			return -errno;
		if (fd < 0)
			usleep(2000);
	}
	if (fd < 0) {
		pr_err("restore pid %d fd %u: pid %u of its pidfd never appeared", t->pid, e->fd, e->pidfd_pid);
		return -ESRCH;
	}
	if (fcntl(fd, F_SETFL, e->flags & O_NONBLOCK)) {
		close(fd);
		return -errno;
	}
	return fd;
}

const struct fd_kind_ops fd_kind_pidfd = {
	.name = "pidfd",
	.dump = dump_pidfd,
	.open = open_pidfd,
	.kind = FD_KIND__FD_PIDFD,
};
