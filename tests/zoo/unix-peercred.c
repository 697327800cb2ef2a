/*
 * unix-peercred: peer credentials of connected unix sockets (SO_PEERCRED: the pid, euid and
 * egid the kernel took from the process that connected them).
 *   fds 60/61: a SOCK_STREAM pair made by a child as uid 2001 gid 3001, handed over (SCM_RIGHTS);
 *   the child has exited since (the sockets keep its pid).
 *   fds 62/63: a SOCK_DGRAM pair made by a child as root that then became uid 2002 gid 3002 and
 *   lives on (a process of the tree: its pid is the tree's again).
 *   fd 64: a SOCK_STREAM listener bound to an abstract name, whose listen() a child as uid 2003
 *   gid 3003 called (exited since): its own peer's credentials are that child's.
 *   fd 65: a connection to it made by a child as uid 2004 gid 3004 (exited since), accepted
 *   here: its peer is that child; fd 66: that child's end (its peer: the listener's child).
 *   fds 67/68: a SOCK_SEQPACKET pair this process made (root).
 *   fd 69: a listener (abstract name) this process listened on itself, as euid 2005 egid 3005
 *   for the call (its saved uid root): what a server's clients read of it.
 * After restore and SIGTERM: each fd reads the same pid, uid and gid as before, those of the
 * process that made it, also as the init of a PID namespace of its own (its pids as that
 * namespace numbers them, 0 for none: restore makes the sockets before the namespace, its root
 * must make them again in it), and a socket connecting to fd 69 after the restore reads this
 * process's pid (1 in a container: systemd's clients refuse a server whose pid reads 0), euid
 * 2005 and egid 3005; the pairs still carry data.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#define FIRST 60
#define NFDS 11

static struct ucred want[NFDS];
static pid_t keeper;

static void send_fds(int via, const int *fds, int n)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	char c = 'x';
	struct iovec iov = { &c, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
	if (sendmsg(via, &mh, 0) != 1)
		_exit(9);
}

static void recv_fds(int via, int *fds, int n)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	char c;
	struct iovec iov = { &c, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm;
	if (recvmsg(via, &mh, MSG_CMSG_CLOEXEC) != 1 || !(cm = CMSG_FIRSTHDR(&mh)) ||
	    cm->cmsg_len != CMSG_LEN(n * sizeof(int)))
		zoo_die("recvmsg: %s", strerror(errno));
	memcpy(fds, CMSG_DATA(cm), n * sizeof(int));
}

static void become(uid_t uid, gid_t gid)
{
	if (setresgid(gid, gid, gid) || setresuid(uid, uid, uid))
		_exit(9);
}

static struct sockaddr_un sa;
static socklen_t sa_len;

/* A child that does what: 1 a pair as 2001, 2 a pair then becomes 2002 and waits, 3 listens
 * as 2003, 4 connects as 2004. */
static pid_t child(int what, int via, int listener)
{
	pid_t pid = fork();
	if (pid < 0)
		zoo_die("fork: %s", strerror(errno));
	if (pid > 0)
		return pid;
	int sv[2];
	switch (what) {
	case 1:
		become(2001, 3001);
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
			_exit(9);
		send_fds(via, sv, 2);
		_exit(0);
	case 2:
		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv))
			_exit(9);
		become(2002, 3002);
		send_fds(via, sv, 2);
		close(sv[0]);
		close(sv[1]);
		for (;;)
			pause(); /* until killed */
	case 3:
		become(2003, 3003);
		_exit(listen(listener, 4) ? 9 : 0);
	default:
		become(2004, 3004);
		sv[0] = socket(AF_UNIX, SOCK_STREAM, 0);
		if (sv[0] < 0 || connect(sv[0], (struct sockaddr *)&sa, sa_len))
			_exit(9);
		send_fds(via, sv, 1);
		_exit(0);
	}
}

static void reap(pid_t pid)
{
	int st = 0;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		zoo_die("child %d failed (%#x)", pid, st);
}

static struct ucred peercred(int fd)
{
	struct ucred c = { 0, (uid_t)-1, (gid_t)-1 };
	socklen_t len = sizeof(c);
	getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len);
	return c;
}

/* The pair at 60/61 made again here: its credentials this process's. */
static void c_pair(ucontext_t *u)
{
	(void)u;
	int sv[2];
	if (!socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
		dup3(sv[0], 60, O_CLOEXEC);
		dup3(sv[1], 61, O_CLOEXEC);
		close(sv[0]);
		close(sv[1]);
	}
}
/* listen() again here: the listener's credentials this process's. */
static void c_listen(ucontext_t *u) { (void)u; listen(64, 4); }
/* fd 69 listened on again by a child: its clients read the child's pid */
static void c_server(ucontext_t *u)
{
	(void)u;
	pid_t pid = fork();
	if (pid == 0)
		_exit(listen(69, 4) ? 9 : 0);
	waitpid(pid, NULL, 0);
}
static const struct zoo_corruption corruptions[] = {
	{ "pair", c_pair, 0 },
	{ "listen", c_listen, 0 },
	{ "server", c_server, 0 },
};

static struct sockaddr_un server_sa;
static socklen_t server_sa_len;

/* A socket connected to fd 69's name, at fd: its peer is the listener. */
static void connect_server(int at)
{
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&server_sa, server_sa_len))
		zoo_die("connect to fd 69's name: %s", strerror(errno));
	zoo_place(c, at, O_CLOEXEC);
}

int main(int argc, char **argv)
{
	int ch[2], got[2];
	pid_t made_by[NFDS];
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, ch))
		zoo_die("socketpair: %s", strerror(errno));

	pid_t p1 = child(1, ch[1], -1);
	recv_fds(ch[0], got, 2);
	reap(p1);
	zoo_place(got[0], 60, O_CLOEXEC);
	zoo_place(got[1], 61, O_CLOEXEC);

	keeper = child(2, ch[1], -1);
	recv_fds(ch[0], got, 2);
	zoo_place(got[0], 62, O_CLOEXEC);
	zoo_place(got[1], 63, O_CLOEXEC);

	sa.sun_family = AF_UNIX;
	int n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "zoo-peercred-%d", getpid());
	sa_len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sa_len))
		zoo_die("bind: %s", strerror(errno));
	zoo_place(l, 64, O_CLOEXEC);
	pid_t p3 = child(3, -1, 64);
	reap(p3);
	pid_t p4 = child(4, ch[1], -1);
	recv_fds(ch[0], got, 1);
	reap(p4);
	zoo_place(got[0], 66, O_CLOEXEC);
	zoo_place(accept4(64, NULL, NULL, SOCK_CLOEXEC), 65, O_CLOEXEC);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, got))
		zoo_die("socketpair: %s", strerror(errno));
	zoo_place(got[0], 67, O_CLOEXEC);
	zoo_place(got[1], 68, O_CLOEXEC);
	close(ch[0]);
	close(ch[1]);
	server_sa.sun_family = AF_UNIX;
	n = snprintf(server_sa.sun_path + 1, sizeof(server_sa.sun_path) - 1, "zoo-peercred-server-%d", getpid());
	server_sa_len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	if ((l = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 || bind(l, (struct sockaddr *)&server_sa, server_sa_len))
		zoo_die("bind: %s", strerror(errno));
	zoo_place(l, 69, O_CLOEXEC);
	if (setresgid(-1, 3005, -1) || setresuid(-1, 2005, -1) || listen(69, 8) || setresuid(-1, 0, -1) ||
	    setresgid(-1, 0, -1))
		zoo_die("listen on fd 69 as 2005: %s", strerror(errno));
	connect_server(70);

	pid_t me = getpid();
	pid_t by[NFDS] = { p1, p1, keeper, keeper, p3, p4, p3, me, me, me, me };
	uid_t uids[NFDS] = { 2001, 2001, 0, 0, 2003, 2004, 2003, 0, 0, 2005, 2005 };
	memcpy(made_by, by, sizeof(by));
	for (int i = 0; i < NFDS; i++) {
		want[i] = peercred(FIRST + i);
		if (want[i].pid != by[i] || want[i].uid != uids[i] || want[i].gid != (uids[i] ? uids[i] + 1000 : 0))
			zoo_die("fd %d: peer pid %d uid %u gid %u at setup", FIRST + i, want[i].pid, want[i].uid,
				want[i].gid);
	}
	zoo_ready();
	zoo_wait();

	int own_ns = me == 1;
	close(70);
	connect_server(70); /* fd 70: connected after the restore, reads fd 69's listen() */
	for (int i = 0; i < NFDS; i++) {
		struct ucred c = peercred(FIRST + i);
		CHECK(i < 2 ? "pair" : i == 4 || i == 6 ? "listen" : i >= 9 ? "server" : "peercred",
		      c.pid == want[i].pid && c.uid == want[i].uid && c.gid == want[i].gid,
		      "fd %d: peer pid %d uid %u gid %u, made by pid %d uid %u gid %u", FIRST + i, c.pid, c.uid,
		      c.gid, made_by[i], want[i].uid, want[i].gid);
	}
	char b[8] = "";
	for (int i = 0; i < 4; i++) {
		int from = (int[]){ 60, 62, 65, 67 }[i], to = (int[]){ 61, 63, 66, 68 }[i];
		CHECK("data", write(from, "ping", 4) == 4 && recv(to, b, sizeof(b), MSG_DONTWAIT) == 4 &&
			      !memcmp(b, "ping", 4), "fd %d does not reach fd %d", from, to);
	}
	kill(keeper, SIGKILL);
	waitpid(keeper, NULL, 0);
	return zoo_finish(own_ns ? "11 sockets with their makers' peer credentials (as init of a PID namespace)"
			  : "11 sockets with their makers' peer credentials");
}
