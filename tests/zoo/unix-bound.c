/*
 * unix-bound: unix sockets bound to a name, neither listening nor connected, and sockets
 * whose socket file is gone.
 *   fd 60 SOCK_STREAM bound to $ZOO_TMPDIR/bound.sock (file mode 0640), not listening;
 *   fd 61 SOCK_SEQPACKET bound to an abstract name with NUL bytes inside, not listening;
 *   fd 62 SOCK_DGRAM bound to $ZOO_TMPDIR/gone.sock, whose file was removed; 2 datagrams wait;
 *   fd 63 SOCK_STREAM listening on $ZOO_TMPDIR/gone-listen.sock, whose file was removed;
 *   fd 64 SOCK_STREAM bound to the relative name "rel.sock" (in the working directory);
 *   fd 65 SOCK_DGRAM bound to $ZOO_TMPDIR/taken.sock, whose file was removed and then taken
 *   by fd 66, another datagram socket bound to the same path;
 *   fd 67 SOCK_DGRAM bound to $ZOO_TMPDIR/self.sock and connected to itself, its own datagram
 *   waiting.
 * After restore and SIGTERM: every socket reads its name back (getsockname); 60 refuses a
 * connection until it listens, then accepts one; 61 listens and accepts one at its abstract
 * name; gone.sock and gone-listen.sock do not exist, 62 gives its 2 datagrams in order, 63
 * has no connection waiting; rel.sock is a socket file; a datagram sent to taken.sock
 * reaches 66, not 65; 67's peer is its own name, its datagram waits, and what it sends comes
 * back to it.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static struct sockaddr_un bound_sa, abs_sa, gone_sa, listen_sa, rel_sa, taken_sa, self_sa;
static socklen_t abs_len, rel_len;

static socklen_t path_addr(struct sockaddr_un *sa, const char *dir, const char *name)
{
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s%s%s", dir, dir[0] ? "/" : "", name);
	return sizeof(*sa);
}

static int bound(int type, const struct sockaddr_un *sa, socklen_t len)
{
	int s = socket(AF_UNIX, type, 0);
	if (s < 0 || bind(s, (const struct sockaddr *)sa, len))
		zoo_die("bind %s: %s", sa->sun_path[0] ? sa->sun_path : "(abstract)", strerror(errno));
	return s;
}

/* getsockname() gives back exactly this address. */
static int named(int fd, const struct sockaddr_un *sa, socklen_t len)
{
	struct sockaddr_un got;
	socklen_t got_len = sizeof(got);
	if (getsockname(fd, (struct sockaddr *)&got, &got_len))
		return 0;
	if (sa->sun_path[0]) /* a path: compare the string */
		return got_len > offsetof(struct sockaddr_un, sun_path) && !strcmp(got.sun_path, sa->sun_path);
	return got_len == len && !memcmp(&got, sa, len);
}

static int connect_to(int type, const struct sockaddr_un *sa, socklen_t len)
{
	int c = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (c >= 0 && connect(c, (const struct sockaddr *)sa, len) == 0)
		return c;
	if (c >= 0) {
		int e = errno;
		close(c);
		errno = e;
	}
	return -1;
}

static int accepts(int listener, int type, const struct sockaddr_un *sa, socklen_t len)
{
	int c = connect_to(type, sa, len), ok = 0;
	if (c >= 0) {
		int s = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		ok = s >= 0;
		if (s >= 0)
			close(s);
		close(c);
	}
	return ok;
}

static void c_stream(ucontext_t *u) { (void)u; close(60); }
static void c_abstract(ucontext_t *u) { (void)u; close(61); zoo_place(bound(SOCK_SEQPACKET, &abs_sa, abs_len - 2), 61, O_CLOEXEC); }
static void c_gone(ucontext_t *u) { (void)u; zoo_write_file(gone_sa.sun_path, "x", 1); }
static void c_queued(ucontext_t *u) { (void)u; char b[8]; recv(62, b, sizeof(b), MSG_DONTWAIT); }
static void c_relative(ucontext_t *u) { (void)u; unlink("rel.sock"); }
static void c_replaced(ucontext_t *u) { (void)u; close(66); }
static void c_self(ucontext_t *u) { (void)u; char b[8]; recv(67, b, sizeof(b), MSG_DONTWAIT); }
static const struct zoo_corruption corruptions[] = {
	{ "stream", c_stream, 0 },
	{ "abstract", c_abstract, 0 },
	{ "gone", c_gone, 0 },
	{ "queued", c_queued, 0 },
	{ "relative", c_relative, 0 },
	{ "replaced", c_replaced, 0 },
	{ "self", c_self, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	const char *dir = zoo_tmpdir(); /* (after --list-corruptions, which makes none) */
	if (chdir(dir))
		zoo_die("chdir %s: %s", dir, strerror(errno));
	path_addr(&bound_sa, dir, "bound.sock");
	path_addr(&gone_sa, dir, "gone.sock");
	path_addr(&listen_sa, dir, "gone-listen.sock");
	path_addr(&taken_sa, dir, "taken.sock");
	path_addr(&rel_sa, "", "rel.sock");
	path_addr(&self_sa, dir, "self.sock");
	rel_len = offsetof(struct sockaddr_un, sun_path) + strlen(rel_sa.sun_path) + 1;
	abs_sa.sun_family = AF_UNIX;
	int n = snprintf(abs_sa.sun_path + 1, sizeof(abs_sa.sun_path) - 1, "zoo#bound#%d#", getpid());
	for (int i = 1; i <= n; i++)
		if (abs_sa.sun_path[i] == '#')
			abs_sa.sun_path[i] = 0; /* NUL bytes inside the name */
	abs_len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	unlink(bound_sa.sun_path);
	unlink(rel_sa.sun_path);
	unlink(self_sa.sun_path);

	zoo_place(bound(SOCK_STREAM, &bound_sa, sizeof(bound_sa)), 60, O_CLOEXEC);
	if (chmod(bound_sa.sun_path, 0640))
		zoo_die("chmod: %s", strerror(errno));
	zoo_place(bound(SOCK_SEQPACKET, &abs_sa, abs_len), 61, O_CLOEXEC);
	zoo_place(bound(SOCK_DGRAM, &gone_sa, sizeof(gone_sa)), 62, O_CLOEXEC);
	int tx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sendto(tx, "g1", 2, 0, (struct sockaddr *)&gone_sa, sizeof(gone_sa)) != 2 ||
	    sendto(tx, "gg2", 3, 0, (struct sockaddr *)&gone_sa, sizeof(gone_sa)) != 3)
		zoo_die("sendto: %s", strerror(errno));
	close(tx);
	unlink(gone_sa.sun_path);
	zoo_place(bound(SOCK_STREAM, &listen_sa, sizeof(listen_sa)), 63, O_CLOEXEC);
	if (listen(63, 4) || unlink(listen_sa.sun_path))
		zoo_die("listen: %s", strerror(errno));
	zoo_place(bound(SOCK_STREAM, &rel_sa, rel_len), 64, O_CLOEXEC);
	zoo_place(bound(SOCK_DGRAM, &taken_sa, sizeof(taken_sa)), 65, O_CLOEXEC);
	unlink(taken_sa.sun_path);
	zoo_place(bound(SOCK_DGRAM, &taken_sa, sizeof(taken_sa)), 66, O_CLOEXEC);
	zoo_place(bound(SOCK_DGRAM, &self_sa, sizeof(self_sa)), 67, O_CLOEXEC);
	if (connect(67, (struct sockaddr *)&self_sa, sizeof(self_sa)) || send(67, "s1", 2, 0) != 2)
		zoo_die("fd 67 connected to itself: %s", strerror(errno));
	zoo_ready();
	zoo_wait();

	struct stat st;
	CHECK("stream", named(60, &bound_sa, sizeof(bound_sa)), "fd 60 lost its name");
	CHECK("stream", stat(bound_sa.sun_path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0640,
	      "%s: %s, mode %o", bound_sa.sun_path, strerror(errno), st.st_mode & 0777);
	int early = connect_to(SOCK_STREAM, &bound_sa, sizeof(bound_sa)), early_err = errno;
	CHECK("stream", early < 0 && early_err == ECONNREFUSED,
	      "a connection to fd 60, which does not listen: %s", early < 0 ? strerror(early_err) : "accepted");
	CHECK("stream", listen(60, 1) == 0 && accepts(60, SOCK_STREAM, &bound_sa, sizeof(bound_sa)),
	      "fd 60 does not accept once listening: %s", strerror(errno));
	CHECK("abstract", named(61, &abs_sa, abs_len), "fd 61 lost its abstract name");
	CHECK("abstract", listen(61, 1) == 0 && accepts(61, SOCK_SEQPACKET, &abs_sa, abs_len),
	      "fd 61 does not accept at its abstract name: %s", strerror(errno));
	CHECK("gone", named(62, &gone_sa, sizeof(gone_sa)) && named(63, &listen_sa, sizeof(listen_sa)),
	      "fd 62 or 63 lost its name");
	CHECK("gone", stat(gone_sa.sun_path, &st) && errno == ENOENT && stat(listen_sa.sun_path, &st) &&
			      errno == ENOENT,
	      "the removed socket files exist again");
	char b[8] = "";
	ssize_t g1 = recv(62, b, sizeof(b), MSG_DONTWAIT);
	CHECK("queued", g1 == 2 && !memcmp(b, "g1", 2), "first datagram: %zd bytes", g1);
	ssize_t g2 = recv(62, b, sizeof(b), MSG_DONTWAIT);
	CHECK("queued", g2 == 3 && !memcmp(b, "gg2", 3), "second datagram: %zd bytes", g2);
	fcntl(63, F_SETFL, O_NONBLOCK);
	CHECK("gone", accept4(63, NULL, NULL, 0) < 0 && errno == EAGAIN,
	      "fd 63 has a connection waiting, or fails: %s", strerror(errno));
	CHECK("relative", named(64, &rel_sa, rel_len), "fd 64 lost its relative name");
	CHECK("relative", stat("rel.sock", &st) == 0 && S_ISSOCK(st.st_mode), "rel.sock: %s", strerror(errno));
	CHECK("replaced", named(65, &taken_sa, sizeof(taken_sa)) && named(66, &taken_sa, sizeof(taken_sa)),
	      "fd 65 or 66 lost its name");
	int tx2 = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ssize_t sent = sendto(tx2, "t", 1, 0, (struct sockaddr *)&taken_sa, sizeof(taken_sa));
	close(tx2);
	CHECK("replaced", sent == 1 && recv(66, b, 1, MSG_DONTWAIT) == 1 && recv(65, b, 1, MSG_DONTWAIT) < 0,
	      "a datagram to taken.sock did not reach fd 66 only (sent %zd)", sent);
	struct sockaddr_un peer;
	socklen_t peer_len = sizeof(peer);
	CHECK("self", named(67, &self_sa, sizeof(self_sa)) && !getpeername(67, (struct sockaddr *)&peer, &peer_len) &&
			      !strcmp(peer.sun_path, self_sa.sun_path),
	      "fd 67 is not bound and connected to %s", self_sa.sun_path);
	ssize_t s1 = recv(67, b, sizeof(b), MSG_DONTWAIT);
	CHECK("self", s1 == 2 && !memcmp(b, "s1", 2), "fd 67's own datagram: %zd bytes", s1);
	ssize_t s2 = send(67, "s2", 2, 0) == 2 ? recv(67, b, sizeof(b), MSG_DONTWAIT) : -1;
	CHECK("self", s2 == 2 && !memcmp(b, "s2", 2), "fd 67 does not get back what it sends: %zd", s2);
	unlink(bound_sa.sun_path);
	unlink(self_sa.sun_path);
	unlink("rel.sock");
	unlink(taken_sa.sun_path);
	return zoo_finish("7 bound sockets, 3 without their file, 1 connected to itself");
}
