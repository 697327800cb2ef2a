#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "restore-watchdog.h"

#define MAX_PROCESSES 65536

struct registered {
	pid_t pid;
	int pidfd; /* -1: no room for it, killed by pid */
};

static struct registered procs[MAX_PROCESSES];
static size_t n_procs;

/* One registration taken from the socket (fd 1): false if none was waiting. */
static bool take_registration(void)
{
	pid_t pid = 0;
	int fd = -1;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &pid, sizeof(pid) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t got = recvmsg(1, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

	if (got < 0)
		return errno == EINTR;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	if (got == sizeof(pid) && n_procs < MAX_PROCESSES)
		procs[n_procs++] = (struct registered){ pid, fd };
	else if (fd >= 0)
		close(fd);
	return true;
}

static __attribute__((noreturn)) void watchdog_main(int ctl, int reg)
{
	struct rlimit r;

	setsid();
	prctl(PR_SET_NAME, "stasis-watch");
	if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
	/* nothing of stasis's but its two sockets, on fds 0 and 1 */
	if (dup2(ctl, 100) < 0 || dup2(reg, 101) < 0 || dup2(100, 0) < 0 || dup2(101, 1) < 0)
		_exit(1);
	syscall(SYS_close_range, 2, ~0U, 0);
	for (;;) {
		struct pollfd p[2] = { { 0, POLLIN, 0 }, { 1, POLLIN, 0 } };
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[1].revents & POLLIN) {
			take_registration();
			continue; /* registrations first: stasis's end may close right after one */
		}
		if (p[0].revents) {
			char msg;
			ssize_t got = recv(0, &msg, 1, MSG_DONTWAIT);
			if (got < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (got == 1 && msg == 'D')
				_exit(0); /* the tree is let go */
			break; /* stasis is gone */
		}
	}
	while (take_registration()) /* those sent just before stasis died too */
		;
	for (size_t i = 0; i < n_procs; i++) {
		if (procs[i].pidfd >= 0)
			syscall(SYS_pidfd_send_signal, procs[i].pidfd, SIGKILL, NULL, 0);
		else
			kill(procs[i].pid, SIGKILL);
	}
	_exit(0);
}

int watchdog_start(struct restore_watchdog *w)
{
	int ctl[2], reg[2];

	w->pid = -1;
	w->sock = w->reg_fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl)) {
		pr_perror("restore: cannot make the watchdog's socket");
		return -errno;
	}
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, reg)) {
		pr_perror("restore: cannot make the watchdog's socket");
		close(ctl[0]);
		close(ctl[1]);
		return -errno;
	}
	fflush(NULL);
	w->pid = fork();
	if (w->pid == 0) {
		close(ctl[0]);
		close(reg[0]);
		watchdog_main(ctl[1], reg[1]);
	}
	close(ctl[1]);
	close(reg[1]);
	if (w->pid < 0) {
		pr_perror("restore: cannot start the watchdog");
		close(ctl[0]);
		close(reg[0]);
		return -errno;
	}
	w->sock = ctl[0];
	w->reg_fd = reg[0];
	return 0;
}

void watchdog_register(int reg_fd)
{
	pid_t self = getpid();
	int pidfd = syscall(SYS_pidfd_open, self, 0);
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &self, sizeof(self) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (pidfd >= 0) {
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pidfd, sizeof(int));
	}
	/* (if the watchdog is gone, so is stasis: the parent-death signal does the rest) */
	while (sendmsg(reg_fd, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
	if (pidfd >= 0)
		close(pidfd);
}

void watchdog_done(struct restore_watchdog *w)
{
	if (w->reg_fd >= 0)
		close(w->reg_fd);
	w->reg_fd = -1;
	if (w->sock < 0)
		return;
	if (send(w->sock, "D", 1, MSG_NOSIGNAL) != 1)
		pr_warn("restore: cannot tell the watchdog the tree is let go: %m");
	close(w->sock);
	w->sock = -1;
	while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
		;
}
