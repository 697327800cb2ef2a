/*
 * unix-gone-names: unix sockets whose names outlive their files and directories, and sockets
 * in flight in loops.
 *   fd 60: SOCK_DGRAM bound to TMP/a/b/s (nested directories); fd 61 connected to it; then
 *   the file, TMP/a/b and TMP/a removed.
 *   fd 62: SOCK_DGRAM bound to TMP/d/x, fd 63 connected to it, the file removed; fd 64 bound to
 *   TMP/d/x again, fd 65 connected to it, the file and TMP/d removed (one name, two sockets).
 *   fd 66: SOCK_STREAM listener at TMP/l/srv, fd 67 connected to it and fd 68 accepted; then
 *   the file and TMP/l removed. TMP/keep/k: fd 69 bound there, its file and directory kept.
 *   fds 70/71: a SOCK_DGRAM pair, each end bound to an abstract name (\0zgnA-PID, \0zgnB-PID),
 *   each end sent over itself and over the other (SCM_RIGHTS): four messages, a loop.
 *   fd 72 -> fd 73, a SOCK_STREAM pair: waiting in 73, one message carrying both ends of
 *   another SOCK_STREAM pair (neither held by any process: a socket in flight whose peer is
 *   in flight too), "in-flight" waiting in the second of them.
 * After restore and SIGTERM: each socket has its name (getsockname); TMP/a, TMP/d and TMP/l
 * are gone again and TMP/keep/k is there; 61 reaches 60, 63 reaches 62 and 65 reaches 64, not
 * the other; 67 and 68 talk; the loop gives 70, 70, 71, 71 in order (each by its name) and
 * the carried pair is connected, "in-flight" waiting.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static char tmp[512];

static socklen_t path_addr(struct sockaddr_un *sa, const char *rel)
{
	char path[700];
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	int n = snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	if (n < 0 || (size_t)n >= sizeof(sa->sun_path))
		zoo_die("%s is too long for a socket name", path);
	memcpy(sa->sun_path, path, n + 1);
	return sizeof(*sa);
}

static socklen_t abstract_addr(struct sockaddr_un *sa, char which)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "zgn%c-%d", which, getpid());
	return offsetof(struct sockaddr_un, sun_path) + 1 + n;
}

static int sock_at(int type, const struct sockaddr_un *sa, socklen_t len, int bind_it)
{
	int s = socket(AF_UNIX, type, 0);
	if (s < 0 || (bind_it ? bind(s, (const struct sockaddr *)sa, len) : connect(s, (const struct sockaddr *)sa, len)))
		zoo_die("%s %s: %s", bind_it ? "bind" : "connect", sa->sun_path[0] ? sa->sun_path : sa->sun_path + 1,
			strerror(errno));
	return s;
}

static void send_fds(int via, const char *data, const int *fds, int n)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { (void *)data, strlen(data) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
	if (sendmsg(via, &mh, 0) != (ssize_t)strlen(data))
		zoo_die("sendmsg: %s", strerror(errno));
}

/* The next message's files (n of them) into fds; its bytes' count, or -1. */
static int recv_fds(int via, int *fds, int n)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	char b[16];
	struct iovec iov = { b, sizeof(b) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl) };
	ssize_t got = recvmsg(via, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	struct cmsghdr *cm = got > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(n * sizeof(int)))
		return -1;
	memcpy(fds, CMSG_DATA(cm), n * sizeof(int));
	return (int)got;
}

/* getsockname of fd is the address. */
static int named(int fd, const struct sockaddr_un *sa, socklen_t len)
{
	struct sockaddr_un got;
	socklen_t got_len = sizeof(got);
	if (getsockname(fd, (struct sockaddr *)&got, &got_len))
		return 0;
	if (len == sizeof(*sa)) /* a path: compare the string */
		return got_len > offsetof(struct sockaddr_un, sun_path) && !strcmp(got.sun_path, sa->sun_path);
	return got_len == len && !memcmp(&got, sa, len);
}

static int gone(const char *rel)
{
	char p[700];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", tmp, rel);
	return lstat(p, &st) && errno == ENOENT;
}

static int reaches(int from, int to)
{
	char b[8];
	return write(from, "ping", 4) == 4 && recv(to, b, sizeof(b), MSG_DONTWAIT) == 4 && !memcmp(b, "ping", 4);
}

/* The socket at 60 bound again elsewhere: its name lost. */
static void c_name(ucontext_t *u)
{
	(void)u;
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (s >= 0) {
		dup3(s, 60, O_CLOEXEC);
		close(s);
	}
}
static void c_dirs(ucontext_t *u)
{
	(void)u;
	char p[700];
	snprintf(p, sizeof(p), "%s/a", tmp);
	mkdir(p, 0700);
}
/* 65 connected to 62 instead of 64. */
static void c_route(ucontext_t *u) { (void)u; dup3(63, 65, O_CLOEXEC); }
/* The first message of the loop read and its files dropped. */
static void c_loop(ucontext_t *u)
{
	(void)u;
	char b[4];
	recv(70, b, sizeof(b), MSG_DONTWAIT);
}
static const struct zoo_corruption corruptions[] = {
	{ "name", c_name, 0 },
	{ "dirs", c_dirs, 0 },
	{ "route", c_route, 0 },
	{ "loop", c_loop, 0 },
};

int main(int argc, char **argv)
{
	struct sockaddr_un s1, x, srv, keep, an[2];
	socklen_t an_len[2];
	char p[700];
	int sv[2], inner[2];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(tmp, sizeof(tmp), "%s", zoo_tmpdir());
	const char *dirs[] = { "a", "a/b", "d", "l", "keep" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", tmp, dirs[i]);
		if (mkdir(p, 0755))
			zoo_die("mkdir %s: %s", p, strerror(errno));
	}

	zoo_place(sock_at(SOCK_DGRAM, &s1, path_addr(&s1, "a/b/s"), 1), 60, O_CLOEXEC);
	zoo_place(sock_at(SOCK_DGRAM, &s1, sizeof(s1), 0), 61, O_CLOEXEC);
	unlink(s1.sun_path);
	zoo_place(sock_at(SOCK_DGRAM, &x, path_addr(&x, "d/x"), 1), 62, O_CLOEXEC);
	zoo_place(sock_at(SOCK_DGRAM, &x, sizeof(x), 0), 63, O_CLOEXEC);
	unlink(x.sun_path);
	zoo_place(sock_at(SOCK_DGRAM, &x, sizeof(x), 1), 64, O_CLOEXEC);
	zoo_place(sock_at(SOCK_DGRAM, &x, sizeof(x), 0), 65, O_CLOEXEC);
	unlink(x.sun_path);
	zoo_place(sock_at(SOCK_STREAM, &srv, path_addr(&srv, "l/srv"), 1), 66, O_CLOEXEC);
	if (listen(66, 4))
		zoo_die("listen: %s", strerror(errno));
	zoo_place(sock_at(SOCK_STREAM, &srv, sizeof(srv), 0), 67, O_CLOEXEC);
	zoo_place(accept4(66, NULL, NULL, SOCK_CLOEXEC), 68, O_CLOEXEC);
	unlink(srv.sun_path);
	zoo_place(sock_at(SOCK_DGRAM, &keep, path_addr(&keep, "keep/k"), 1), 69, O_CLOEXEC);
	const char *rm[] = { "a/b", "a", "d", "l" };
	for (size_t i = 0; i < sizeof(rm) / sizeof(rm[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", tmp, rm[i]);
		if (rmdir(p))
			zoo_die("rmdir %s: %s", p, strerror(errno));
	}

	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv))
		zoo_die("socketpair: %s", strerror(errno));
	zoo_place(sv[0], 70, O_CLOEXEC);
	zoo_place(sv[1], 71, O_CLOEXEC);
	for (int i = 0; i < 2; i++) {
		an_len[i] = abstract_addr(&an[i], 'A' + i);
		if (bind(70 + i, (struct sockaddr *)&an[i], an_len[i]))
			zoo_die("bind abstract: %s", strerror(errno));
	}
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++)
			send_fds(70 + i, "L", (int[]){ 70 + j }, 1);

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || socketpair(AF_UNIX, SOCK_STREAM, 0, inner))
		zoo_die("socketpair: %s", strerror(errno));
	zoo_place(sv[0], 72, O_CLOEXEC);
	zoo_place(sv[1], 73, O_CLOEXEC);
	if (write(inner[0], "in-flight", 9) != 9)
		zoo_die("write: %s", strerror(errno));
	send_fds(72, "both", inner, 2);
	close(inner[0]);
	close(inner[1]);

	zoo_ready();
	zoo_wait();

	CHECK("name", named(60, &s1, sizeof(s1)), "fd 60 lost its name %s", s1.sun_path);
	CHECK("name", named(62, &x, sizeof(x)) && named(64, &x, sizeof(x)), "fds 62/64 lost their name %s", x.sun_path);
	CHECK("name", named(66, &srv, sizeof(srv)) && named(68, &srv, sizeof(srv)), "fds 66/68 lost their name");
	CHECK("name", named(69, &keep, sizeof(keep)), "fd 69 lost its name");
	CHECK("dirs", gone("a") && gone("d") && gone("l"), "removed directories are back");
	CHECK("dirs", !gone("keep/k"), "the kept socket file is gone");
	CHECK("route", reaches(61, 60), "fd 61 does not reach fd 60");
	CHECK("route", reaches(63, 62), "fd 63 does not reach fd 62");
	CHECK("route", reaches(65, 64), "fd 65 does not reach fd 64");
	CHECK("route", reaches(67, 68) && reaches(68, 67), "the accepted connection does not carry data");

	/* the loop: 70 carries itself then 71, 71 carries 70 then 71 */
	int order[4] = { 70, 71, 70, 71 }, ok = 1, got = -1;
	for (int i = 0; i < 4 && ok; i++) {
		int via = i < 2 ? 70 : 71;
		ok = recv_fds(via, &got, 1) == 1 && named(got, &an[order[i] - 70], an_len[order[i] - 70]);
		if (got >= 0)
			close(got);
		got = -1;
	}
	CHECK("loop", ok, "the loop's messages do not bring 70, 71, 70, 71");
	char b[16] = "";
	ok = recv_fds(73, inner, 2) == 4;
	CHECK("loop", ok && recv(inner[1], b, sizeof(b), MSG_DONTWAIT) == 9 && !memcmp(b, "in-flight", 9) &&
		      reaches(inner[1], inner[0]), "the pair in flight is not connected with its data");
	if (ok) {
		close(inner[0]);
		close(inner[1]);
	}
	return zoo_finish("sockets bound in removed directories, two on one name, loops in flight");
}
