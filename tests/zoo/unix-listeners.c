/*
 * unix-listeners: many unix listeners of one process, as a server's master holds them.
 *   fds 60..89: 30 SOCK_STREAM listeners bound to $ZOO_TMPDIR/l-N.sock, each listened on by
 *   this process (its pid, root): what a client that connects reads as its peer; fd 66 has a
 *   connection waiting in its backlog (the client's end: fd 96);
 *   fds 90..94: 5 listeners on $ZOO_TMPDIR/c-N.sock whose listen() a child as uid 2006 gid 3006
 *   called (exited since): their clients read that child's pid, 2006 and 3006.
 *   fd 95: a listener on an abstract name, listened on by this process.
 * After restore and SIGTERM: a client connects to each listener, reads the listener's
 * credentials as before (SO_PEERCRED: the pid as this process's PID namespace numbers it), and
 * is accepted; the waiting connection is accepted first on fd 66.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#define FIRST 60
#define N_OWN 30
#define N_CHILD 5
#define N_ALL (N_OWN + N_CHILD + 1)
#define WAITING 96

static struct sockaddr_un sa[N_ALL];
static socklen_t sa_len[N_ALL];
static struct ucred want[N_ALL];

/* accept(2) of a connection waiting on listener fd, if there is one (-1: none). */
static int accept_waiting(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	return poll(&p, 1, 0) == 1 ? accept4(fd, NULL, NULL, SOCK_CLOEXEC) : -1;
}

static struct ucred peercred(int fd)
{
	struct ucred c = { 0, (uid_t)-1, (gid_t)-1 };
	socklen_t len = sizeof(c);
	getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len);
	return c;
}

/* A client of listener i: the listener's credentials as it reads them (uid -1: no connection). */
static struct ucred client_of(int i, int *accepted)
{
	struct ucred c = { 0, (uid_t)-1, (gid_t)-1 };
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	*accepted = 0;
	if (s < 0 || connect(s, (struct sockaddr *)&sa[i], sa_len[i])) {
		if (s >= 0)
			close(s);
		return c;
	}
	c = peercred(s);
	int a = accept_waiting(FIRST + i);
	*accepted = a >= 0;
	if (a >= 0)
		close(a);
	close(s);
	return c;
}

/* fd 61 listened on again by a child: its clients read the child's pid */
static void c_listen(ucontext_t *u)
{
	(void)u;
	pid_t pid = fork();
	if (pid == 0)
		_exit(listen(FIRST + 1, 4) ? 9 : 0);
	waitpid(pid, NULL, 0);
}
/* fd 92 listened on again here: its clients read this process's credentials */
static void c_child(ucontext_t *u) { (void)u; listen(FIRST + N_OWN + 2, 4); }
/* the waiting connection taken */
static void c_waiting(ucontext_t *u)
{
	(void)u;
	int a = accept_waiting(66);
	if (a >= 0)
		close(a);
}
static const struct zoo_corruption corruptions[] = {
	{ "listen", c_listen, 0 },
	{ "child", c_child, 0 },
	{ "waiting", c_waiting, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	const char *dir = zoo_tmpdir();
	for (int i = 0; i < N_ALL; i++) {
		sa[i].sun_family = AF_UNIX;
		int n = i == N_ALL - 1
				? snprintf(sa[i].sun_path + 1, sizeof(sa[i].sun_path) - 1, "zoo-listeners-%d", getpid()) + 1
			: i < N_OWN ? snprintf(sa[i].sun_path, sizeof(sa[i].sun_path), "%s/l-%d.sock", dir, i)
				    : snprintf(sa[i].sun_path, sizeof(sa[i].sun_path), "%s/c-%d.sock", dir, i - N_OWN);
		sa_len[i] = offsetof(struct sockaddr_un, sun_path) + n + (i == N_ALL - 1 ? 0 : 1);
		if (i != N_ALL - 1)
			unlink(sa[i].sun_path);
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		if (s < 0 || bind(s, (struct sockaddr *)&sa[i], sa_len[i]))
			zoo_die("bind listener %d: %s", i, strerror(errno));
		zoo_place(s, FIRST + i, O_CLOEXEC);
		if ((i < N_OWN || i == N_ALL - 1) && listen(FIRST + i, 8))
			zoo_die("listen %d: %s", i, strerror(errno));
	}
	pid_t child = fork();
	if (child < 0)
		zoo_die("fork: %s", strerror(errno));
	if (child == 0) {
		if (setresgid(3006, 3006, 3006) || setresuid(2006, 2006, 2006))
			_exit(9);
		for (int i = N_OWN; i < N_OWN + N_CHILD; i++)
			if (listen(FIRST + i, 8))
				_exit(9);
		_exit(0);
	}
	int st = 0;
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st))
		zoo_die("child failed (%#x)", st);
	int w = socket(AF_UNIX, SOCK_STREAM, 0);
	if (w < 0 || connect(w, (struct sockaddr *)&sa[6], sa_len[6]))
		zoo_die("connect to listener 6: %s", strerror(errno));
	zoo_place(w, WAITING, O_CLOEXEC);
	for (int i = 0; i < N_ALL; i++) {
		int accepted;
		want[i] = client_of(i, &accepted);
		pid_t by = i >= N_OWN && i < N_OWN + N_CHILD ? child : getpid();
		uid_t uid = by == child ? 2006 : 0;
		if (i == 6) { /* the probe queued behind the waiting connection: taken, then it again */
			int a = accept4(FIRST + 6, NULL, NULL, SOCK_CLOEXEC);
			if (a < 0)
				zoo_die("accept on listener 6: %s", strerror(errno));
			close(a);
			if (connect(w = socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&sa[6], sa_len[6]))
				zoo_die("connect to listener 6: %s", strerror(errno));
			zoo_place(w, WAITING, O_CLOEXEC);
		}
		if (!accepted || want[i].pid != by || want[i].uid != uid || want[i].gid != (uid ? uid + 1000 : 0))
			zoo_die("listener %d: peer pid %d uid %u gid %u at setup", i, want[i].pid, want[i].uid,
				want[i].gid);
	}
	struct ucred waiting = peercred(WAITING);
	zoo_ready();
	zoo_wait();

	struct ucred now = peercred(WAITING);
	CHECK("waiting", now.pid == waiting.pid && now.uid == waiting.uid && now.gid == waiting.gid,
	      "the waiting client reads peer pid %d uid %u gid %u, was %d %u %u", now.pid, now.uid, now.gid,
	      waiting.pid, waiting.uid, waiting.gid);
	int a = accept_waiting(66);
	CHECK("waiting", a >= 0, "no connection waiting on fd 66");
	if (a >= 0)
		close(a);
	for (int i = 0; i < N_ALL; i++) {
		int accepted;
		struct ucred c = client_of(i, &accepted);
		CHECK(i >= N_OWN && i < N_OWN + N_CHILD ? "child" : "listen",
		      accepted && c.pid == want[i].pid && c.uid == want[i].uid && c.gid == want[i].gid,
		      "listener fd %d: %s, peer pid %d uid %u gid %u, was pid %d uid %u gid %u", FIRST + i,
		      accepted ? "accepted" : "no connection", c.pid, c.uid, c.gid, want[i].pid, want[i].uid,
		      want[i].gid);
	}
	for (int i = 0; i < N_ALL - 1; i++)
		unlink(sa[i].sun_path);
	return zoo_finish("36 listeners with their listen()'s credentials");
}
