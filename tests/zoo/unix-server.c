/*
 * unix-server: unix sockets a server binds.
 *   fd 60 SOCK_STREAM listening on $ZOO_TMPDIR/server.sock (socket file mode 0660);
 *   fd 61 SOCK_SEQPACKET listening on an abstract name;
 *   fd 62 SOCK_DGRAM bound to $ZOO_TMPDIR/dgram.sock with SO_PASSCRED;
 *   fd 63 SOCK_DGRAM bound to an abstract name, 4 datagrams waiting (1, 100, 0, 3000 bytes);
 *   fd 64 SOCK_DGRAM (non-blocking) neither bound nor connected, as a sendto() client keeps it.
 * After restore and SIGTERM: a client connects to both listeners (the server accepts and
 * answers), and a datagram sent to fd 62 arrives with its sender's credentials; the socket
 * file keeps its mode; fd 63 gives its 4 datagrams, in order, with their sizes and content;
 * a datagram sent from fd 64 to fd 63 arrives.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static struct sockaddr_un path_sa, abstract_sa, dgram_sa;
static const size_t dg_sizes[] = { 1, 100, 0, 3000 };
static socklen_t abstract_len;

/* connect, send "hi", expect the server (this process) to accept and answer "ok" */
static int roundtrip(int listener, int type, const struct sockaddr_un *sa, socklen_t len)
{
	int c = socket(AF_UNIX, type | SOCK_CLOEXEC, 0), ok = 0;
	if (c >= 0 && connect(c, (const struct sockaddr *)sa, len) == 0 && write(c, "hi", 2) == 2) {
		int s = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		char b[4] = "";
		if (s >= 0 && read(s, b, 2) == 2 && !memcmp(b, "hi", 2) && write(s, "ok", 2) == 2 &&
		    read(c, b, 2) == 2 && !memcmp(b, "ok", 2))
			ok = 1;
		if (s >= 0)
			close(s);
	}
	if (c >= 0)
		close(c);
	return ok;
}

static void c_listen(ucontext_t *u) { (void)u; close(60); }
static void c_passcred(ucontext_t *u) { (void)u; int off = 0; setsockopt(62, SOL_SOCKET, SO_PASSCRED, &off, sizeof(off)); }
static void c_queued(ucontext_t *u) { (void)u; char b[4096]; recv(63, b, sizeof(b), MSG_DONTWAIT); }
static const struct zoo_corruption corruptions[] = {
	{ "queued", c_queued, 0 },
	{ "listen", c_listen, 0 },
	{ "passcred", c_passcred, 0 },
};

int main(int argc, char **argv)
{
	const char *dir = getenv("ZOO_TMPDIR") ? getenv("ZOO_TMPDIR") : "/tmp";
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	path_sa.sun_family = abstract_sa.sun_family = dgram_sa.sun_family = AF_UNIX;
	snprintf(path_sa.sun_path, sizeof(path_sa.sun_path), "%s/server.sock", dir);
	snprintf(dgram_sa.sun_path, sizeof(dgram_sa.sun_path), "%s/dgram.sock", dir);
	int n = snprintf(abstract_sa.sun_path + 1, sizeof(abstract_sa.sun_path) - 1, "stasis-zoo-%d", getpid());
	abstract_len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	unlink(path_sa.sun_path);
	unlink(dgram_sa.sun_path);
	int s1 = socket(AF_UNIX, SOCK_STREAM, 0), s2 = socket(AF_UNIX, SOCK_SEQPACKET, 0),
	    s3 = socket(AF_UNIX, SOCK_DGRAM, 0), on = 1;
	if (bind(s1, (struct sockaddr *)&path_sa, sizeof(path_sa)) || listen(s1, 16) ||
	    chmod(path_sa.sun_path, 0660) || chown(path_sa.sun_path, 1234, 5678) || bind(s2, (struct sockaddr *)&abstract_sa, abstract_len) ||
	    listen(s2, 4) || bind(s3, (struct sockaddr *)&dgram_sa, sizeof(dgram_sa)) ||
	    setsockopt(s3, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)))
		zoo_die("socket setup: %s", strerror(errno));
	zoo_place(s1, 60, O_CLOEXEC);
	zoo_place(s2, 61, O_CLOEXEC);
	zoo_place(s3, 62, O_CLOEXEC);
	struct sockaddr_un dg = { .sun_family = AF_UNIX };
	int dn = snprintf(dg.sun_path + 1, sizeof(dg.sun_path) - 1, "stasis-zoo-dg-%d", getpid());
	socklen_t dglen = offsetof(struct sockaddr_un, sun_path) + 1 + dn;
	int s4 = socket(AF_UNIX, SOCK_DGRAM, 0), tx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (bind(s4, (struct sockaddr *)&dg, dglen))
		zoo_die("bind abstract datagram socket: %s", strerror(errno));
	zoo_place(s4, 63, O_CLOEXEC);
	for (size_t i = 0; i < sizeof(dg_sizes) / sizeof(dg_sizes[0]); i++) {
		unsigned char b[3000];
		zoo_fill(b, dg_sizes[i], 70 + i);
		if (sendto(tx, b, dg_sizes[i], 0, (struct sockaddr *)&dg, dglen) != (ssize_t)dg_sizes[i])
			zoo_die("sendto: %s", strerror(errno));
	}
	close(tx);
	zoo_place(socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0), 64, O_CLOEXEC);
	zoo_ready();
	zoo_wait();

	CHECK("listen", roundtrip(60, SOCK_STREAM, &path_sa, sizeof(path_sa)), "no connection through %s",
	      path_sa.sun_path);
	CHECK("listen", roundtrip(61, SOCK_SEQPACKET, &abstract_sa, abstract_len),
	      "no connection through the abstract name");
	struct stat st;
	CHECK("listen", stat(path_sa.sun_path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0660 &&
				st.st_uid == 1234 && st.st_gid == 5678,
	      "%s: mode %o, owner %u:%u", path_sa.sun_path, st.st_mode & 0777, st.st_uid, st.st_gid);
	int c = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	sendto(c, "dg", 2, 0, (struct sockaddr *)&dgram_sa, sizeof(dgram_sa));
	close(c);
	char data[4], ctl[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = { data, sizeof(data) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	ssize_t got = recvmsg(62, &mh, MSG_DONTWAIT);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	CHECK("passcred", got == 2 && cm && cm->cmsg_type == SCM_CREDENTIALS &&
			      ((struct ucred *)CMSG_DATA(cm))->pid == getpid(),
	      "the datagram came without credentials (%zd bytes)", got);
	for (size_t i = 0; i < sizeof(dg_sizes) / sizeof(dg_sizes[0]); i++) {
		unsigned char b[4000];
		ssize_t n = recv(63, b, sizeof(b), MSG_DONTWAIT);
		CHECK("queued", n == (ssize_t)dg_sizes[i] && zoo_check_fill(b, dg_sizes[i], 70 + i) < 0,
		      "datagram %zu waiting in fd 63: %zd bytes, expected %zu of its content", i, n, dg_sizes[i]);
	}
	char fresh[8] = "";
	CHECK("queued", sendto(64, "fresh", 5, 0, (struct sockaddr *)&dg, dglen) == 5 &&
				recv(63, fresh, sizeof(fresh), MSG_DONTWAIT) == 5 && !memcmp(fresh, "fresh", 5),
	      "a datagram from fd 64 did not reach fd 63: %s", strerror(errno));
	unlink(path_sa.sun_path);
	unlink(dgram_sa.sun_path);
	return zoo_finish("2 listeners, 2 datagram receivers, 1 fresh socket");
}
