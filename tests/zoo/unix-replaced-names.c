/*
 * unix-replaced-names: unix sockets whose name's path now holds another file.
 *   fd 60: SOCK_DGRAM bound to TMP/f; fd 61 connected to it; fd 63 bound to TMP/snd; waiting
 *   in 60, in order: "snd" from 63, "gone" from a socket bound to TMP/g/gsnd (closed, its
 *   file removed; TMP/g stays), "conn" from 61; then TMP/f removed and a FIFO made there,
 *   open O_RDWR at fd 62 with "fifo-data" in it.
 *   fd 64: SOCK_DGRAM bound to TMP/r, fd 65 connected; TMP/r replaced by a regular file.
 *   fd 66: SOCK_DGRAM bound to TMP/s, fd 68 connected; TMP/s removed and fd 67 bound there.
 *   fd 69: SOCK_DGRAM bound to TMP/d, fd 70 connected; TMP/d replaced by a directory (a file
 *   "in" inside).
 *   fd 71: SOCK_STREAM listener at TMP/l: fd 72 connected and accepted as fd 73, fd 74 waiting
 *   to be accepted; TMP/l replaced by a FIFO. fd 76: SOCK_SEQPACKET listener at TMP/q, fd 77
 *   waiting to be accepted; TMP/q replaced by a regular file.
 *   fd 83 SOCK_DGRAM bound to TMP/c and connected to fd 84 (TMP/srv), which sent it "reply";
 *   TMP/c replaced by a symbolic link.
 *   Working directory TMP: fd 80 SOCK_DGRAM bound to the relative name "rel", fd 81 bound to
 *   "rsnd" sent it "rel-msg", fd 82 connected to it; "rel" replaced by a regular file.
 * After restore and SIGTERM: every socket has its name; every file in the paths is what the
 * program left there (the FIFO still holds "fifo-data", fd 62 is it); 60 gives "snd", "gone",
 * "conn" from TMP/snd, TMP/g/gsnd and no name, then nothing; 80 gives "rel-msg" from "rsnd",
 * 83 "reply" from TMP/srv; each connected socket reaches its own socket (68 reaches 66, not
 * 67; a datagram sent to TMP/s reaches 67); 72 and 73 talk; 71 and 76 accept exactly 74's and 77's connections.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static char tmp[512];
static struct sockaddr_un sa_f, sa_snd, sa_gsnd, sa_r, sa_s, sa_d, sa_l, sa_q, sa_rel, sa_rsnd, sa_c, sa_srv;

/* An address for TMP/rel (abs) or for the relative name rel. */
static void addr(struct sockaddr_un *sa, const char *rel, int abs)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s%s%s", abs ? tmp : "", abs ? "/" : "", rel);
	if (n < 0 || (size_t)n >= sizeof(sa->sun_path))
		zoo_die("%s/%s is too long for a socket name", tmp, rel);
}

static int sock(int type, const struct sockaddr_un *bind_to, const struct sockaddr_un *connect_to)
{
	int s = socket(AF_UNIX, type, 0);
	if (s < 0 || (bind_to && bind(s, (const struct sockaddr *)bind_to, sizeof(*bind_to))) ||
	    (connect_to && connect(s, (const struct sockaddr *)connect_to, sizeof(*connect_to))))
		zoo_die("socket %s: %s", bind_to ? bind_to->sun_path : connect_to->sun_path, strerror(errno));
	return s;
}

static void send_to(int s, const char *what, const struct sockaddr_un *to)
{
	if (sendto(s, what, strlen(what), 0, (const struct sockaddr *)to, to ? sizeof(*to) : 0) !=
	    (ssize_t)strlen(what))
		zoo_die("send %s: %s", what, strerror(errno));
}

static void write_file(const struct sockaddr_un *sa, const char *data)
{
	if (zoo_write_file(sa->sun_path, data, strlen(data)))
		zoo_die("write %s: %s", sa->sun_path, strerror(errno));
}

static int named(int fd, const struct sockaddr_un *sa)
{
	struct sockaddr_un got;
	socklen_t len = sizeof(got);
	return !getsockname(fd, (struct sockaddr *)&got, &len) && len > offsetof(struct sockaddr_un, sun_path) &&
	       !strcmp(got.sun_path, sa->sun_path);
}

/* The next datagram of s is want, from the socket named from (NULL: an unnamed one). */
static int next_is(int s, const char *want, const struct sockaddr_un *from)
{
	struct sockaddr_un got = { 0 };
	socklen_t len = sizeof(got);
	char b[32];
	ssize_t n = recvfrom(s, b, sizeof(b), MSG_DONTWAIT, (struct sockaddr *)&got, &len);
	if (n != (ssize_t)strlen(want) || memcmp(b, want, n))
		return 0;
	if (!from)
		return len <= offsetof(struct sockaddr_un, sun_path);
	return len > offsetof(struct sockaddr_un, sun_path) && !strcmp(got.sun_path, from->sun_path);
}

static int empty(int s)
{
	char b[8];
	return recv(s, b, sizeof(b), MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

static int reaches(int from, int to)
{
	struct pollfd p = { .fd = to, .events = POLLIN };
	char b[8];
	return write(from, "ping", 4) == 4 && poll(&p, 1, 3000) == 1 && recv(to, b, sizeof(b), MSG_DONTWAIT) == 4 &&
	       !memcmp(b, "ping", 4);
}

static int file_is(const struct sockaddr_un *sa, mode_t type, const char *data)
{
	char b[32];
	struct stat st;
	if (lstat(sa->sun_path, &st) || (st.st_mode & S_IFMT) != type)
		return 0;
	if (!data)
		return 1;
	ssize_t n = zoo_read_file(sa->sun_path, b, sizeof(b));
	return n == (ssize_t)strlen(data) && !memcmp(b, data, n);
}

/* The listener's one waiting connection is the client's; then none waits. */
static int accepts_only(int l, int client)
{
	if (fcntl(l, F_SETFL, O_NONBLOCK))
		return 0;
	int c = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c < 0)
		return 0;
	int ok = reaches(client, c) && reaches(c, client);
	close(c);
	c = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c >= 0)
		close(c);
	return ok && c < 0 && errno == EAGAIN;
}

static void c_queue(ucontext_t *u) { (void)u; char b[8]; recv(60, b, sizeof(b), MSG_DONTWAIT); }
static void c_fifo(ucontext_t *u) { (void)u; char b[1]; if (read(62, b, 1)) {} }
static void c_file(ucontext_t *u) { (void)u; zoo_write_file(sa_r.sun_path, "x", 1); }
/* 68 connected to what TMP/s names now (67), not to 66. */
static void c_route(ucontext_t *u) { (void)u; connect(68, (struct sockaddr *)&sa_s, sizeof(sa_s)); }
static void c_listener(ucontext_t *u)
{
	(void)u;
	int c = accept4(71, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c >= 0)
		close(c);
}
static const struct zoo_corruption corruptions[] = {
	{ "queue", c_queue, 0 },
	{ "fifo", c_fifo, 0 },
	{ "file", c_file, 0 },
	{ "route", c_route, 0 },
	{ "listener", c_listener, 0 },
};

int main(int argc, char **argv)
{
	char p[700];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(tmp, sizeof(tmp), "%s", zoo_tmpdir());
	addr(&sa_f, "f", 1);
	addr(&sa_snd, "snd", 1);
	addr(&sa_gsnd, "g/gsnd", 1);
	addr(&sa_r, "r", 1);
	addr(&sa_s, "s", 1);
	addr(&sa_d, "d", 1);
	addr(&sa_l, "l", 1);
	addr(&sa_q, "q", 1);
	addr(&sa_c, "c", 1);
	addr(&sa_srv, "srv", 1);
	addr(&sa_rel, "rel", 0);
	addr(&sa_rsnd, "rsnd", 0);

	/* a FIFO in place of a datagram receiver with named and unnamed datagrams waiting */
	zoo_place(sock(SOCK_DGRAM, &sa_f, NULL), 60, O_CLOEXEC);
	zoo_place(sock(SOCK_DGRAM, NULL, &sa_f), 61, O_CLOEXEC);
	zoo_place(sock(SOCK_DGRAM, &sa_snd, NULL), 63, O_CLOEXEC);
	send_to(63, "snd", &sa_f);
	snprintf(p, sizeof(p), "%s/g", tmp);
	if (mkdir(p, 0700))
		zoo_die("mkdir %s: %s", p, strerror(errno));
	int gsnd = sock(SOCK_DGRAM, &sa_gsnd, NULL);
	send_to(gsnd, "gone", &sa_f);
	close(gsnd);
	unlink(sa_gsnd.sun_path);
	send_to(61, "conn", NULL);
	unlink(sa_f.sun_path);
	if (mkfifo(sa_f.sun_path, 0600))
		zoo_die("mkfifo: %s", strerror(errno));
	zoo_place(open(sa_f.sun_path, O_RDWR | O_NONBLOCK | O_CLOEXEC), 62, O_CLOEXEC);
	if (write(62, "fifo-data", 9) != 9)
		zoo_die("write fifo: %s", strerror(errno));

	/* a regular file, another socket, a directory */
	zoo_place(sock(SOCK_DGRAM, &sa_r, NULL), 64, O_CLOEXEC);
	zoo_place(sock(SOCK_DGRAM, NULL, &sa_r), 65, O_CLOEXEC);
	unlink(sa_r.sun_path);
	write_file(&sa_r, "regular");
	zoo_place(sock(SOCK_DGRAM, &sa_s, NULL), 66, O_CLOEXEC);
	zoo_place(sock(SOCK_DGRAM, NULL, &sa_s), 68, O_CLOEXEC);
	unlink(sa_s.sun_path);
	zoo_place(sock(SOCK_DGRAM, &sa_s, NULL), 67, O_CLOEXEC);
	zoo_place(sock(SOCK_DGRAM, &sa_d, NULL), 69, O_CLOEXEC);
	zoo_place(sock(SOCK_DGRAM, NULL, &sa_d), 70, O_CLOEXEC);
	unlink(sa_d.sun_path);
	snprintf(p, sizeof(p), "%s/in", sa_d.sun_path);
	if (mkdir(sa_d.sun_path, 0700) || zoo_write_file(p, "in", 2))
		zoo_die("mkdir %s: %s", sa_d.sun_path, strerror(errno));

	/* listeners with accepted and waiting connections */
	zoo_place(sock(SOCK_STREAM, &sa_l, NULL), 71, O_CLOEXEC);
	if (listen(71, 4))
		zoo_die("listen: %s", strerror(errno));
	zoo_place(sock(SOCK_STREAM, NULL, &sa_l), 72, O_CLOEXEC);
	zoo_place(accept4(71, NULL, NULL, SOCK_CLOEXEC), 73, O_CLOEXEC);
	zoo_place(sock(SOCK_STREAM, NULL, &sa_l), 74, O_CLOEXEC);
	unlink(sa_l.sun_path);
	if (mkfifo(sa_l.sun_path, 0600))
		zoo_die("mkfifo: %s", strerror(errno));
	zoo_place(sock(SOCK_SEQPACKET, &sa_q, NULL), 76, O_CLOEXEC);
	if (listen(76, 4))
		zoo_die("listen: %s", strerror(errno));
	zoo_place(sock(SOCK_SEQPACKET, NULL, &sa_q), 77, O_CLOEXEC);
	unlink(sa_q.sun_path);
	write_file(&sa_q, "seqpacket");

	/* a client connected one way, with its server's answer waiting: its path a symbolic link */
	zoo_place(sock(SOCK_DGRAM, &sa_srv, NULL), 84, O_CLOEXEC);
	zoo_place(sock(SOCK_DGRAM, &sa_c, &sa_srv), 83, O_CLOEXEC);
	send_to(84, "reply", &sa_c);
	unlink(sa_c.sun_path);
	if (symlink("r", sa_c.sun_path))
		zoo_die("symlink: %s", strerror(errno));

	/* a relative name */
	if (chdir(tmp))
		zoo_die("chdir: %s", strerror(errno));
	zoo_place(sock(SOCK_DGRAM, &sa_rel, NULL), 80, O_CLOEXEC);
	zoo_place(sock(SOCK_DGRAM, &sa_rsnd, NULL), 81, O_CLOEXEC);
	send_to(81, "rel-msg", &sa_rel);
	zoo_place(sock(SOCK_DGRAM, NULL, &sa_rel), 82, O_CLOEXEC);
	unlink(sa_rel.sun_path);
	write_file(&sa_rel, "relative");

	zoo_ready();
	zoo_wait();

	CHECK("queue", next_is(60, "snd", &sa_snd) && next_is(60, "gone", &sa_gsnd) && next_is(60, "conn", NULL) &&
		       empty(60), "fd 60 does not give snd, gone, conn from their senders");
	CHECK("queue", next_is(80, "rel-msg", &sa_rsnd) && empty(80), "fd 80 does not give rel-msg from rsnd");
	CHECK("queue", next_is(83, "reply", &sa_srv) && empty(83), "fd 83 does not give reply from TMP/srv");
	char b[16] = "";
	struct stat a, f;
	CHECK("fifo", file_is(&sa_f, S_IFIFO, NULL) && !fstat(62, &f) && !lstat(sa_f.sun_path, &a) &&
		      a.st_ino == f.st_ino && read(62, b, sizeof(b)) == 9 && !memcmp(b, "fifo-data", 9),
	      "TMP/f is not the FIFO of fd 62 holding fifo-data");
	CHECK("fifo", file_is(&sa_l, S_IFIFO, NULL), "TMP/l is not a FIFO");
	struct sockaddr_un in;
	addr(&in, "d/in", 1);
	CHECK("file", file_is(&sa_r, S_IFREG, "regular") && file_is(&sa_q, S_IFREG, "seqpacket") &&
		      file_is(&sa_rel, S_IFREG, "relative") && file_is(&sa_d, S_IFDIR, NULL) &&
		      file_is(&in, S_IFREG, "in") && file_is(&sa_c, S_IFLNK, NULL), "the files in the sockets' paths changed");
	CHECK("route", named(60, &sa_f) && named(64, &sa_r) && named(66, &sa_s) && named(67, &sa_s) &&
		       named(69, &sa_d) && named(71, &sa_l) && named(73, &sa_l) && named(76, &sa_q) &&
		       named(80, &sa_rel) && named(83, &sa_c), "a socket lost its name");
	CHECK("route", reaches(61, 60) && reaches(65, 64) && reaches(70, 69) && reaches(82, 80) && reaches(83, 84),
	      "a connected datagram socket does not reach its receiver");
	CHECK("route", reaches(68, 66) && empty(67), "fd 68 does not reach fd 66 (only)");
	int u = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK("route", u >= 0 && !connect(u, (struct sockaddr *)&sa_s, sizeof(sa_s)) && reaches(u, 67) && empty(66),
	      "TMP/s does not reach fd 67 (only)");
	if (u >= 0)
		close(u);
	CHECK("route", reaches(72, 73) && reaches(73, 72), "the accepted connection does not carry data");
	CHECK("listener", accepts_only(71, 74), "fd 71 does not accept exactly fd 74's connection");
	CHECK("listener", accepts_only(76, 77), "fd 76 does not accept exactly fd 77's connection");
	return zoo_finish("sockets whose paths hold a FIFO, a file, a socket, a directory");
}
