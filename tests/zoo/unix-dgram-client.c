/*
 * unix-dgram-client: datagram sockets connected to a named datagram socket of the same tree,
 * which is not connected back, with datagrams waiting on both sides.
 *   fd 60 SOCK_DGRAM bound to $ZOO_TMPDIR/server.sock: the server;
 *   fd 61 unnamed, connected to the server, sent "c1-a" and "c1-b";
 *   fd 62 bound to an abstract name, connected to the server, sent "from-c2"; the server sent
 *         it "srv-to-c2" (waiting in 62);
 *   fd 70 of a child process, unnamed, connected to the server, sent "c3";
 *   fds 63 and 64 bound to $ZOO_TMPDIR/ma.sock and mb.sock, connected to each other, with
 *   "b-to-a" waiting in 63 and "a-to-b" in 64; mb.sock's file has mode 0604 and owner
 *   1234:5678.
 * After restore and SIGTERM: the server reads c1-a, c1-b, from-c2 (from 62's name), c3 (from
 * no name), in order; 62 reads srv-to-c2 from the server's name; the server answers 62 at the
 * name a datagram came from; 61 and the child's socket still send to the server, and read it
 * as their peer (getpeername); 63 and 64 read each other's datagram from each other's name,
 * their socket files are there (mb.sock's with its mode and owner), and a third socket may not
 * send to 63 (EPERM).
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

static struct sockaddr_un srv_sa, c2_sa, ma_sa, mb_sa;
static socklen_t c2_len;
static pid_t kid;
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

static int client(const struct sockaddr_un *own, socklen_t own_len)
{
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (s < 0 || (own && bind(s, (const struct sockaddr *)own, own_len)) ||
	    connect(s, (struct sockaddr *)&srv_sa, sizeof(srv_sa)))
		zoo_die("client: %s", strerror(errno));
	return s;
}

static int peer_is_server(int fd)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	return !getpeername(fd, (struct sockaddr *)&sa, &len) && !strcmp(sa.sun_path, srv_sa.sun_path);
}

/* Exit code 0: its socket still has the server as its peer and sends to it. */
static void child(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	for (int fd = 60; fd <= 64; fd++)
		close(fd);
	while (!child_term)
		zoo_sleep_ms(10);
	_exit(peer_is_server(70) && send(70, "c3-after", 8, 0) == 8 ? 0 : 1);
}

/* The next datagram at fd: its text, and who sent it (a name, or "" for none). */
static int next(int fd, const char *want, const struct sockaddr_un *from, socklen_t from_len)
{
	char b[32] = "";
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	ssize_t n = recvfrom(fd, b, sizeof(b) - 1, MSG_DONTWAIT, (struct sockaddr *)&sa, &len);
	if (n != (ssize_t)strlen(want) || memcmp(b, want, n))
		return 0;
	if (!from)
		return len <= offsetof(struct sockaddr_un, sun_path);
	return from->sun_path[0] ? !strcmp(sa.sun_path, from->sun_path) : len == from_len && !memcmp(&sa, from, len);
}

static void c_order(ucontext_t *u) { (void)u; char b[16]; recv(60, b, sizeof(b), MSG_DONTWAIT); }
static void c_client(ucontext_t *u) { (void)u; char b[16]; recv(62, b, sizeof(b), MSG_DONTWAIT); }
static void c_connect(ucontext_t *u) { (void)u; struct sockaddr sa = { .sa_family = AF_UNSPEC }; connect(61, &sa, sizeof(sa)); }
static void c_child(ucontext_t *u) { (void)u; kill(kid, SIGKILL); }
static void c_mutual(ucontext_t *u) { (void)u; unlink(ma_sa.sun_path); }
static void c_owner(ucontext_t *u) { (void)u; chmod(mb_sa.sun_path, 0600); }
static const struct zoo_corruption corruptions[] = {
	{ "order", c_order, 0 },
	{ "client", c_client, 0 },
	{ "connect", c_connect, 0 },
	{ "child", c_child, 0 },
	{ "mutual", c_mutual, 0 },
	{ "owner", c_owner, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	const char *dir = zoo_tmpdir(); /* (after --list-corruptions, which makes none) */
	srv_sa.sun_family = c2_sa.sun_family = AF_UNIX;
	if (snprintf(srv_sa.sun_path, sizeof(srv_sa.sun_path), "%.90s/server.sock", dir) >= 100)
		zoo_die("%s: too long a directory", dir);
	int n = snprintf(c2_sa.sun_path + 1, sizeof(c2_sa.sun_path) - 1, "zoo-dgram-c2-%d", getpid());
	c2_len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	ma_sa = mb_sa = srv_sa;
	memcpy(strrchr(ma_sa.sun_path, '/'), "/ma.sock", 9);
	memcpy(strrchr(mb_sa.sun_path, '/'), "/mb.sock", 9);
	unlink(srv_sa.sun_path);
	unlink(ma_sa.sun_path);
	unlink(mb_sa.sun_path);
	int srv = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (srv < 0 || bind(srv, (struct sockaddr *)&srv_sa, sizeof(srv_sa)))
		zoo_die("bind: %s", strerror(errno));
	zoo_place(srv, 60, O_CLOEXEC);
	zoo_place(client(NULL, 0), 61, O_CLOEXEC);
	zoo_place(client(&c2_sa, c2_len), 62, O_CLOEXEC);
	zoo_place(client(NULL, 0), 70, O_CLOEXEC);
	if (send(61, "c1-a", 4, 0) != 4 || send(61, "c1-b", 4, 0) != 4 || send(62, "from-c2", 7, 0) != 7 ||
	    sendto(60, "srv-to-c2", 9, 0, (struct sockaddr *)&c2_sa, c2_len) != 9)
		zoo_die("send: %s", strerror(errno));
	int ma = socket(AF_UNIX, SOCK_DGRAM, 0), mb = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (ma < 0 || mb < 0 || bind(ma, (struct sockaddr *)&ma_sa, sizeof(ma_sa)) ||
	    bind(mb, (struct sockaddr *)&mb_sa, sizeof(mb_sa)) || connect(ma, (struct sockaddr *)&mb_sa, sizeof(mb_sa)) ||
	    connect(mb, (struct sockaddr *)&ma_sa, sizeof(ma_sa)) || send(ma, "a-to-b", 6, 0) != 6 ||
	    send(mb, "b-to-a", 6, 0) != 6)
		zoo_die("mutual pair: %s", strerror(errno));
	if (chmod(mb_sa.sun_path, 0604) || chown(mb_sa.sun_path, 1234, 5678))
		zoo_die("mb.sock's mode and owner: %s", strerror(errno));
	zoo_place(ma, 63, O_CLOEXEC);
	zoo_place(mb, 64, O_CLOEXEC);
	kid = fork();
	if (kid == 0) {
		if (send(70, "c3", 2, 0) != 2)
			_exit(9);
		child();
	}
	close(70);
	zoo_sleep_ms(100); /* the child has sent its datagram */
	zoo_ready();
	zoo_wait();

	CHECK("order", next(60, "c1-a", NULL, 0), "the server's first datagram is not c1-a from no name");
	CHECK("order", next(60, "c1-b", NULL, 0), "the server's second datagram is not c1-b");
	CHECK("order", next(60, "from-c2", &c2_sa, c2_len), "the server's third datagram is not from-c2 from 62's name");
	CHECK("order", next(60, "c3", NULL, 0), "the server's fourth datagram is not c3 from the child");
	CHECK("client", next(62, "srv-to-c2", &srv_sa, sizeof(srv_sa)), "62 did not get srv-to-c2 from the server");
	CHECK("client", sendto(60, "reply", 5, 0, (struct sockaddr *)&c2_sa, c2_len) == 5 && next(62, "reply", &srv_sa, sizeof(srv_sa)),
	      "the server's reply to 62's name did not arrive");
	CHECK("connect", peer_is_server(61) && send(61, "c1-after", 8, 0) == 8 && next(60, "c1-after", NULL, 0),
	      "61 is no longer connected to the server");
	CHECK("mutual", next(63, "b-to-a", &mb_sa, sizeof(mb_sa)) && next(64, "a-to-b", &ma_sa, sizeof(ma_sa)),
	      "63 and 64 did not read each other's datagram from each other's name");
	struct stat sst;
	CHECK("mutual", stat(ma_sa.sun_path, &sst) == 0 && S_ISSOCK(sst.st_mode) && stat(mb_sa.sun_path, &sst) == 0,
	      "the socket files of 63 and 64 are gone");
	CHECK("owner", stat(mb_sa.sun_path, &sst) == 0 && (sst.st_mode & 07777) == 0604 && sst.st_uid == 1234 &&
	      sst.st_gid == 5678, "mb.sock has mode %o, owner %u:%u (expected 604, 1234:5678)",
	      sst.st_mode & 07777, sst.st_uid, sst.st_gid);
	int third = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK("mutual", sendto(third, "x", 1, 0, (struct sockaddr *)&ma_sa, sizeof(ma_sa)) < 0 && errno == EPERM,
	      "a third socket sends to 63, connected to 64: %s", strerror(errno));
	close(third);
	kill(kid, SIGTERM);
	int st = 0;
	waitpid(kid, &st, 0);
	CHECK("child", WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's socket lost the server (%#x)", st);
	CHECK("child", next(60, "c3-after", NULL, 0), "the child's datagram after the restore did not arrive");
	unlink(srv_sa.sun_path);
	unlink(ma_sa.sun_path);
	unlink(mb_sa.sun_path);
	return zoo_finish("3 clients connected one way to a named server of the tree, 1 named pair");
}
