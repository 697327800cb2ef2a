#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "restore-watchdog.h"
#include "util.h"

#define MAX_PROCESSES 65536
#define MAX_UNDO 16384
#define NAME_MAX_LEN 256

/* What goes on stasis's socket: 'D' (done), or an object to remove ('M' queue, 'S' segment,
 * 'Q' SysV message queue, 'E' SysV semaphore set, 'C' cgroup directory). */
struct ctl_msg {
	char kind;
	int id;
	char name[NAME_MAX_LEN];
};

struct registered {
	pid_t pid;
	int pidfd; /* -1: no room for it, killed by pid */
};

static struct registered procs[MAX_PROCESSES];
static size_t n_procs;

struct undo {
	struct ctl_msg what;
	int fd; /* 'M', 'S', 'Q', 'E': the IPC namespace it was made in; 'C': its hierarchy's root */
};
static struct undo undos[MAX_UNDO];
static size_t n_undos;

/* A fd passed along a message, or -1. */
static int passed_fd(struct msghdr *mh)
{
	struct cmsghdr *c = CMSG_FIRSTHDR(mh);
	int fd = -1;

	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* One registration taken from the socket (fd 1): false if none was waiting. */
static bool take_registration(void)
{
	pid_t pid = 0;
	int fd;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &pid, sizeof(pid) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t got = recvmsg(1, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

	if (got < 0)
		return errno == EINTR;
	fd = passed_fd(&mh);
	if (got == sizeof(pid) && n_procs < MAX_PROCESSES)
		procs[n_procs++] = (struct registered){ pid, fd };
	else if (fd >= 0)
		close(fd);
	return true;
}

/*
 * One message from stasis (fd 0): 1 an object to remove, noted; 0 none waiting; -1 stasis's
 * end closed. "done" ends the watchdog here.
 */
static int take_ctl(void)
{
	struct ctl_msg m = { 0 };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &m, sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t got = recvmsg(0, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

	if (got < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (got == 0)
		return -1;
	int fd = passed_fd(&mh);
	if (got == sizeof(m) && m.kind == 'D')
		_exit(0); /* the tree is let go */
	if (got == sizeof(m) && n_undos < MAX_UNDO) {
		m.name[NAME_MAX_LEN - 1] = 0;
		undos[n_undos++] = (struct undo){ m, fd };
	} else if (fd >= 0) {
		close(fd);
	}
	return 1;
}

#define CGROUP_WAIT_MS 5000

/* The cgroups stasis made, children (made later) first, once the killed processes have left
 * them (a cgroup with a process in it is busy). */
static void remove_cgroups(void)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };

	for (size_t i = n_undos; i-- > 0;) {
		const struct undo *u = &undos[i];
		if (u->what.kind != 'C' || u->fd < 0)
			continue;
		for (int waited = 0; unlinkat(u->fd, u->what.name, AT_REMOVEDIR) && errno == EBUSY &&
				     waited < CGROUP_WAIT_MS; waited += 10)
			nanosleep(&tick, NULL);
	}
}

/*
 * Stasis's death is seen on a pidfd of it (fd 2), or as its end of the socket closing: a
 * helper stasis forked may hold a copy of that end a while longer.
 */
static __attribute__((noreturn)) void watchdog_main(int ctl, int reg, int stasis)
{
	struct rlimit r;

	setsid();
	prctl(PR_SET_NAME, "stasis-watch");
	if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
	/* nothing of stasis's but its two sockets and its pidfd, on fds 0, 1 and 2 */
	if (dup2(ctl, 100) < 0 || dup2(reg, 101) < 0 || dup2(stasis, 102) < 0 || dup2(100, 0) < 0 ||
	    dup2(101, 1) < 0 || dup2(102, 2) < 0)
		_exit(1);
	syscall(SYS_close_range, 3, ~0U, 0);
	for (;;) {
		struct pollfd p[3] = { { 0, POLLIN, 0 }, { 1, POLLIN, 0 }, { 2, POLLIN, 0 } };
		if (poll(p, 3, -1) < 0)
			continue;
		if (p[1].revents & POLLIN) {
			take_registration();
			continue; /* registrations first: stasis's end may close right after one */
		}
		if (p[0].revents && take_ctl() >= 0)
			continue;
		if (p[0].revents || p[2].revents)
			break; /* stasis is gone */
	}
	while (take_ctl() > 0) /* what it sent just before it died too */
		;
	while (take_registration()) /* those sent just before stasis died too */
		;
	for (size_t i = 0; i < n_procs; i++) {
		if (procs[i].pidfd >= 0)
			syscall(SYS_pidfd_send_signal, procs[i].pidfd, SIGKILL, NULL, 0);
		else
			kill(procs[i].pid, SIGKILL);
	}
	/* then what stasis made for them outside the tree (a segment goes once they are gone) */
	for (size_t i = 0; i < n_undos; i++) {
		const struct undo *u = &undos[i];
		if (u->what.kind == 'C' || u->fd < 0 || setns(u->fd, CLONE_NEWIPC))
			continue;
		if (u->what.kind == 'M')
			mq_unlink(u->what.name);
		else if (u->what.kind == 'S')
			shmctl(u->what.id, IPC_RMID, NULL);
		else if (u->what.kind == 'Q')
			msgctl(u->what.id, IPC_RMID, NULL);
		else if (u->what.kind == 'E')
			semctl(u->what.id, 0, IPC_RMID);
	}
	remove_cgroups();
	_exit(0);
}

int watchdog_start(struct restore_watchdog *w)
{
	int ctl[2], reg[2], self;

	w->pid = -1;
	w->sock = w->reg_fd = -1;
	if ((self = syscall(SYS_pidfd_open, getpid(), 0)) < 0) {
		pr_perror("restore: cannot open a pidfd of stasis for its watchdog");
		return -errno;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl)) {
		pr_perror("restore: cannot make the watchdog's socket");
		close(self);
		return -errno;
	}
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, reg)) {
		pr_perror("restore: cannot make the watchdog's socket");
		close(ctl[0]);
		close(ctl[1]);
		close(self);
		return -errno;
	}
	fflush(NULL);
	w->pid = fork();
	if (w->pid == 0) {
		close(ctl[0]);
		close(reg[0]);
		watchdog_main(ctl[1], reg[1], self);
	}
	close(ctl[1]);
	close(reg[1]);
	close(self);
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

	/* (if the watchdog is gone, so is stasis: the parent-death signal does the rest) */
	send_with_fd(reg_fd, &self, sizeof(self), pidfd);
	if (pidfd >= 0)
		close(pidfd);
}

/* Tells the watchdog of object (kind, id, name), found through fd (-1: said, not sent). */
static void tell_undo(const struct restore_watchdog *w, char kind, int id, const char *name, int fd)
{
	static const char *const what[] = { ['M'] = "message queue", ['S'] = "SysV shm segment",
					    ['Q'] = "SysV message queue", ['E'] = "SysV semaphore set",
					    ['C'] = "cgroup" };
	struct ctl_msg m = { .kind = kind, .id = id };

	snprintf(m.name, sizeof(m.name), "%s", name ? name : "");
	if (fd < 0 || strlen(name ? name : "") >= sizeof(m.name) ||
	    send_with_fd(w->sock, &m, sizeof(m), fd))
		pr_warn("restore: cannot tell the watchdog about %s %d %s: %m (if stasis dies now, it "
			"stays)", what[(unsigned char)kind], id, m.name);
}

static void tell_ipc_undo(const struct restore_watchdog *w, char kind, int id, const char *name)
{
	if (!w || w->sock < 0)
		return;
	int ns = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
	tell_undo(w, kind, id, name, ns);
	if (ns >= 0)
		close(ns);
}

void watchdog_undo_cgroup(const struct restore_watchdog *w, int hierarchy_fd, const char *path)
{
	if (w && w->sock >= 0)
		tell_undo(w, 'C', 0, path, hierarchy_fd);
}

void watchdog_undo_mqueue(const struct restore_watchdog *w, const char *name)
{
	tell_ipc_undo(w, 'M', 0, name);
}

void watchdog_undo_sysv_shm(const struct restore_watchdog *w, int id)
{
	tell_ipc_undo(w, 'S', id, NULL);
}

void watchdog_undo_sysv_msg(const struct restore_watchdog *w, int id)
{
	tell_ipc_undo(w, 'Q', id, NULL);
}

void watchdog_undo_sysv_sem(const struct restore_watchdog *w, int id)
{
	tell_ipc_undo(w, 'E', id, NULL);
}

void watchdog_done(struct restore_watchdog *w)
{
	if (w->reg_fd >= 0)
		close(w->reg_fd);
	w->reg_fd = -1;
	if (w->sock < 0)
		return;
	struct ctl_msg m = { .kind = 'D' };
	if (send_with_fd(w->sock, &m, sizeof(m), -1))
		pr_warn("restore: cannot tell the watchdog the tree is let go: %m");
	close(w->sock);
	w->sock = -1;
	while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
		;
}
