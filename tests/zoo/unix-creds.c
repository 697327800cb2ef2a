/*
 * unix-creds: credentials in flight (SCM_CREDENTIALS) waiting for receivers with SO_PASSCRED.
 *   fd 60 SOCK_DGRAM bound to an abstract name, SO_PASSCRED; waiting in it: "self" sent by this
 *   process (root); "child" sent by its child, which runs as uid 1234 gid 5678; "forged", sent
 *   by this process with explicit credentials: the child's pid, uid 4321, gid 8765.
 *   fd 61 -> fd 62, a SOCK_STREAM pair, 62 with SO_PASSCRED: "from-parent" written by this
 *   process, then "from-child" by the child (its fd 70, a duplicate of 61).
 * After restore and SIGTERM: each datagram reads the same pid, uid and gid as before; the
 * stream gives "from-parent" and "from-child" in two reads (the kernel does not glue writes
 * of different writers), each with its writer's credentials.
 * (A message from a process that is gone at restore carries stasis's pid: the kernel sends
 * only a live process's. The tree's own processes are there: their pids come back.)
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

static struct sockaddr_un sa;
static socklen_t sa_len;
static pid_t kid;
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

static void send_creds(int s, const char *data, const struct ucred *cred)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { (void *)data, strlen(data) };
	struct msghdr mh = { .msg_name = &sa, .msg_namelen = sa_len, .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cred ? ctl.buf : NULL, .msg_controllen = cred ? sizeof(ctl) : 0 };
	if (cred) {
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(sizeof(*cred));
		memcpy(CMSG_DATA(c), cred, sizeof(*cred));
	}
	if (sendmsg(s, &mh, 0) != (ssize_t)strlen(data))
		zoo_die("sendmsg %s: %s", data, strerror(errno));
}

/* The next message at fd: want, with these credentials. */
static int next(int fd, const char *want, pid_t pid, uid_t uid, gid_t gid, char *got, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} ctl;
	char b[32] = "";
	struct iovec iov = { b, sizeof(b) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl) };
	struct ucred cred = { 0, 0, 0 };
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
	struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (c && c->cmsg_type == SCM_CREDENTIALS)
		memcpy(&cred, CMSG_DATA(c), sizeof(cred));
	snprintf(got, len, "'%.*s' pid %d uid %u gid %u", n > 0 ? (int)n : 0, b, cred.pid, cred.uid, cred.gid);
	return n == (ssize_t)strlen(want) && !memcmp(b, want, n) && cred.pid == pid && cred.uid == uid &&
	       cred.gid == gid;
}

static void child(void)
{
	struct sigaction act = { .sa_handler = on_term };
	sigaction(SIGTERM, &act, NULL);
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (s < 0 || setresgid(5678, 5678, 5678) || setresuid(1234, 1234, 1234))
		_exit(9);
	send_creds(s, "child", NULL);
	if (write(70, "from-child", 10) != 10)
		_exit(9);
	close(s);
	while (!child_term)
		zoo_sleep_ms(10);
	_exit(0);
}

static void c_creds(ucontext_t *u) { (void)u; char b[16]; recv(60, b, sizeof(b), MSG_DONTWAIT); }
static void c_glue(ucontext_t *u) { (void)u; char b[16]; recv(62, b, 11, MSG_DONTWAIT); }
static const struct zoo_corruption corruptions[] = {
	{ "creds", c_creds, 0 },
	{ "glue", c_glue, 0 },
};

int main(int argc, char **argv)
{
	int on = 1, sv[2];
	char got[96];
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	sa.sun_family = AF_UNIX;
	int n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "zoo-creds-%d", getpid());
	sa_len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	int r = socket(AF_UNIX, SOCK_DGRAM, 0), tx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (r < 0 || bind(r, (struct sockaddr *)&sa, sa_len) || setsockopt(r, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) ||
	    dup3(r, 60, O_CLOEXEC) != 60 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) ||
	    dup3(sv[0], 61, O_CLOEXEC) != 61 || dup3(sv[1], 62, O_CLOEXEC) != 62 || dup2(sv[0], 70) != 70 ||
	    setsockopt(62, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)))
		zoo_die("setup: %s", strerror(errno));
	close(r);
	close(sv[0]);
	close(sv[1]);
	send_creds(tx, "self", NULL);
	if (write(61, "from-parent", 11) != 11)
		zoo_die("write: %s", strerror(errno));
	kid = fork();
	if (kid == 0)
		child();
	close(70);
	zoo_sleep_ms(100); /* the child has sent */
	send_creds(tx, "forged", &(struct ucred){ kid, 4321, 8765 });
	close(tx);
	zoo_ready();
	zoo_wait();

	CHECK("creds", next(60, "self", getpid(), 0, 0, got, sizeof(got)), "first datagram: %s", got);
	CHECK("creds", next(60, "child", kid, 1234, 5678, got, sizeof(got)), "second datagram: %s", got);
	CHECK("creds", next(60, "forged", kid, 4321, 8765, got, sizeof(got)), "third datagram: %s", got);
	CHECK("glue", next(62, "from-parent", getpid(), 0, 0, got, sizeof(got)), "first read of the stream: %s", got);
	CHECK("glue", next(62, "from-child", kid, 1234, 5678, got, sizeof(got)), "second read of the stream: %s", got);
	kill(kid, SIGTERM);
	int st = 0;
	waitpid(kid, &st, 0);
	CHECK("child", WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child failed (%#x)", st);
	return zoo_finish("3 datagrams and 2 writes with their senders' credentials");
}
