/*
 * netns-inet: inet sockets of a service in a network namespace of its own with its loopback
 * alone (systemd's PrivateNetwork=yes), under a parent in the tree's namespace that listens on
 * the same address and port.
 *   The parent listens on 127.0.0.1:P (fd 60, the tree's namespace).
 *   The child binds a UDP socket to 127.0.0.1 of the tree's namespace (fd 56, its own alone:
 *   vsftpd's sessions keep their control connection so), then unshares CLONE_NEWNET (its
 *   maker), brings its loopback up and there: listens on
 *   127.0.0.1:P too (fd 50); binds a UDP socket to 127.0.0.1:Q (fd 51) holding two datagrams
 *   that fd 52 (UDP, connected to it) sent; binds a UDP socket to [::1]:R (fd 53) holding a
 *   datagram it sent itself; holds a TCP connection over its loopback (fds 54, 55: "abc" sent
 *   from 54 waits unread in 55), a NETLINK_ROUTE socket (fd 59). Dumped with --tcp-established.
 *   It forks a grandchild, which inherits all of them but fd 53 (shared sockets of the
 *   namespace: its maker opens them at restore; fd 53 its own alone).
 * After restore and SIGTERM: the child's seven sockets are in the child's namespace; a new
 * connection of the child's to 127.0.0.1:P is accepted on fd 50, one of the parent's on fd 60;
 * fd 51 reads the two datagrams in order from fd 52's address, then one more that fd 52 sends;
 * fd 53 reads its datagram; fd 55 reads "abc" and answers a ping from 54; the grandchild's
 * sockets are the child's and in its namespace; fd 56 is in the parent's namespace and reads a
 * datagram it sends itself there.
 * What the dump must refuse (tests/failure-cases.sh): --held-outside the child sends its
 * listener up to the parent (fd 61 there: a socket of the child's namespace that two processes
 * hold, which the restore would make in the tree's).
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include "zoo-net.h"
#include <poll.h>
#include <sched.h>
#include <sys/stat.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>

#define FD_LISTEN_C 50
#define FD_UDP_C 51
#define FD_UDP_CONN_C 52
#define FD_UDP6_C 53
#define FD_TCP_C 54
#define FD_TCP_S 55
#define FD_BEFORE_C 56
#define FD_NETLINK_C 59
#define FD_PIPE_P 57 /* and 58, the child's end */
#define FD_LISTEN_P 60
#define FD_SENT_P 61

static pid_t kid, grandkid;
static volatile sig_atomic_t child_term;
static struct sockaddr_in listen_addr, udp_addr;
static struct sockaddr_in6 udp6_addr;

static void on_term(int sig) { (void)sig; child_term = 1; }

static int is(const char *tag) { return zoo_corr && !strcmp(zoo_corr->tag, tag); }

static int bound(int family, int type, struct sockaddr *sa, socklen_t len)
{
	int s = socket(family, type, 0);
	if (s < 0 || bind(s, sa, len) || getsockname(s, sa, &len))
		zoo_die("bind a socket of family %d: %s", family, strerror(errno));
	return s;
}

/* a connection to 127.0.0.1:P from the caller's namespace, accepted on listener l */
static int accepts(int l)
{
	struct pollfd p = { .fd = l, .events = POLLIN };
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), a = -1;
	if (c >= 0 && !connect(c, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) &&
	    poll(&p, 1, 3000) == 1)
		a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (c >= 0)
		close(c);
	if (a >= 0)
		close(a);
	return a >= 0;
}

static int reads(int fd, const char *want, const struct sockaddr *from, socklen_t from_len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct sockaddr_storage src;
	socklen_t len = sizeof(src);
	char b[16];
	ssize_t n = poll(&p, 1, 3000) == 1 ? recvfrom(fd, b, sizeof(b), MSG_DONTWAIT, (struct sockaddr *)&src, &len) : -1;
	return n == (ssize_t)strlen(want) && !memcmp(b, want, n) && (!from || (len == from_len && !memcmp(&src, from, len)));
}

/* the socket at fd was made in the caller's network namespace */
static int in_my_netns(int fd)
{
	struct stat mine, its;
	int ns = ioctl(fd, SIOCGSKNS);
	int ok = ns >= 0 && !fstat(ns, &its) && !stat("/proc/self/ns/net", &mine) && its.st_ino == mine.st_ino;
	if (ns >= 0)
		close(ns);
	return ok;
}

/* the socket at fd was made in process pid's network namespace */
static int in_netns_of(int fd, pid_t pid)
{
	struct stat theirs, its;
	char path[64];
	int ns = ioctl(fd, SIOCGSKNS);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", zoo_proc_pid(pid));
	int ok = ns >= 0 && !fstat(ns, &its) && !stat(path, &theirs) && its.st_ino == theirs.st_ino;
	if (ns >= 0)
		close(ns);
	return ok;
}

/* Exit code bits: 1 a socket in another namespace, 2 listener, 4 queued datagrams, 8 connected
 * UDP, 16 UDP over IPv6, 32 the TCP connection, 64 the socket made before the unshare */
static void child(const char *refused)
{
	struct sockaddr_in before = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	signal(SIGTERM, on_term);
	zoo_place(bound(AF_INET, SOCK_DGRAM, (struct sockaddr *)&before, sizeof(before)), FD_BEFORE_C, 0);
	if (unshare(CLONE_NEWNET) || !zoo_set_lo(1))
		zoo_die("a network namespace of its own with lo up: %s", strerror(errno));
	int l = bound(AF_INET, SOCK_STREAM, (struct sockaddr *)&listen_addr, sizeof(listen_addr));
	if (listen(l, 4))
		zoo_die("listen: %s", strerror(errno));
	zoo_place(l, FD_LISTEN_C, 0);
	zoo_place(bound(AF_INET, SOCK_DGRAM, (struct sockaddr *)&udp_addr, sizeof(udp_addr)), FD_UDP_C, 0);
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	if (u < 0 || connect(u, (struct sockaddr *)&udp_addr, sizeof(udp_addr)) || send(u, "one", 3, 0) != 3 ||
	    send(u, "two", 3, 0) != 3)
		zoo_die("a connected UDP socket: %s", strerror(errno));
	zoo_place(u, FD_UDP_CONN_C, 0);
	zoo_place(bound(AF_INET6, SOCK_DGRAM, (struct sockaddr *)&udp6_addr, sizeof(udp6_addr)), FD_UDP6_C, 0);
	if (sendto(FD_UDP6_C, "six", 3, 0, (struct sockaddr *)&udp6_addr, sizeof(udp6_addr)) != 3)
		zoo_die("a datagram over ::1: %s", strerror(errno));
	zoo_place(socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), FD_NETLINK_C, 0);
	int c, s;
	zoo_tcp_loopback_pair(AF_INET, &c, &s);
	zoo_place(c, FD_TCP_C, 0);
	zoo_place(s, FD_TCP_S, 0);
	if (send(FD_TCP_C, "abc", 3, 0) != 3)
		zoo_die("send over TCP: %s", strerror(errno));
	if (refused && !strcmp(refused, "--held-outside"))
		zoo_send_fd(FD_PIPE_P + 1, FD_LISTEN_C);
	if ((grandkid = fork()) == 0) {
		close(FD_UDP6_C);
		close(FD_BEFORE_C); /* (the child's alone) */
		while (!child_term)
			zoo_sleep_ms(10);
		int code = 0;
		for (int fd = FD_LISTEN_C; fd <= FD_TCP_S; fd++)
			code |= fd != FD_UDP6_C && !in_my_netns(fd);
		code |= !in_my_netns(FD_NETLINK_C);
		_exit(code);
	}
	if (write(FD_PIPE_P + 1, "r", 1) != 1)
		zoo_die("write: %s", strerror(errno));
	while (!child_term)
		zoo_sleep_ms(10);

	if (is("netns")) /* back into the parent's namespace */
		zoo_enter_netns_of(getppid());
	if (is("listener"))
		close(FD_LISTEN_C);
	if (is("queue"))
		recv(FD_UDP_C, (char[8]){ 0 }, 8, MSG_DONTWAIT);
	if (is("connected"))
		connect(FD_UDP_CONN_C, &(struct sockaddr){ .sa_family = AF_UNSPEC }, sizeof(struct sockaddr));
	if (is("udp6"))
		recv(FD_UDP6_C, (char[8]){ 0 }, 8, MSG_DONTWAIT);
	if (is("tcp"))
		recv(FD_TCP_S, (char[8]){ 0 }, 8, MSG_DONTWAIT);
	if (is("before")) /* made again in its own namespace */
		zoo_place(bound(AF_INET, SOCK_DGRAM, (struct sockaddr *)&before, sizeof(before)), FD_BEFORE_C, 0);
	int code = 0, st;
	kill(grandkid, SIGTERM);
	if (waitpid(grandkid, &st, 0) != grandkid || !WIFEXITED(st) || WEXITSTATUS(st))
		code |= 1;
	for (int fd = FD_LISTEN_C; fd <= FD_TCP_S; fd++)
		code |= in_my_netns(fd) ? 0 : 1;
	code |= in_my_netns(FD_NETLINK_C) ? 0 : 1;
	code |= accepts(FD_LISTEN_C) ? 0 : 2;
	struct sockaddr_in from;
	socklen_t len = sizeof(from);
	if (getsockname(FD_UDP_CONN_C, (struct sockaddr *)&from, &len) ||
	    !reads(FD_UDP_C, "one", (struct sockaddr *)&from, len) ||
	    !reads(FD_UDP_C, "two", (struct sockaddr *)&from, len))
		code |= 4;
	code |= send(FD_UDP_CONN_C, "three", 5, 0) == 5 && reads(FD_UDP_C, "three", (struct sockaddr *)&from, len) ? 0 : 8;
	code |= reads(FD_UDP6_C, "six", (struct sockaddr *)&udp6_addr, sizeof(udp6_addr)) ? 0 : 16;
	code |= reads(FD_TCP_S, "abc", NULL, 0) && send(FD_TCP_C, "ping", 4, 0) == 4 &&
			reads(FD_TCP_S, "ping", NULL, 0) && send(FD_TCP_S, "pong", 4, 0) == 4 &&
			reads(FD_TCP_C, "pong", NULL, 0) ? 0 : 32;
	code |= in_netns_of(FD_BEFORE_C, getppid()) &&
			sendto(FD_BEFORE_C, "old", 3, 0, (struct sockaddr *)&before, sizeof(before)) == 3 &&
			reads(FD_BEFORE_C, "old", (struct sockaddr *)&before, sizeof(before)) ? 0 : 64;
	_exit(code);
}

/* (the child applies the corruption named, on its own side: is()) */
static void c_in_child(ucontext_t *u) { (void)u; }

static const struct zoo_corruption corruptions[] = {
	{ "netns", c_in_child, 0 },	{ "listener", c_in_child, 0 }, { "queue", c_in_child, 0 },
	{ "connected", c_in_child, 0 }, { "udp6", c_in_child, 0 },     { "tcp", c_in_child, 0 },
	{ "outer", c_in_child, 0 },	{ "before", c_in_child, 0 },
};

int main(int argc, char **argv)
{
	int sync[2];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	const char *refused = NULL;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--held-outside"))
			refused = argv[i];
	listen_addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	udp_addr = listen_addr;
	udp6_addr = (struct sockaddr_in6){ .sin6_family = AF_INET6, .sin6_addr = in6addr_loopback };
	int l = bound(AF_INET, SOCK_STREAM, (struct sockaddr *)&listen_addr, sizeof(listen_addr));
	if (listen(l, 4))
		zoo_die("listen: %s", strerror(errno));
	zoo_place(l, FD_LISTEN_P, 0);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sync))
		zoo_die("socketpair: %s", strerror(errno));
	zoo_place(sync[0], FD_PIPE_P, 0);
	zoo_place(sync[1], FD_PIPE_P + 1, 0);
	if ((kid = fork()) == 0)
		child(refused);
	close(FD_PIPE_P + 1);
	if (refused && !strcmp(refused, "--held-outside"))
		zoo_place(zoo_recv_fd(FD_PIPE_P), FD_SENT_P, 0);
	char c;
	if (read(FD_PIPE_P, &c, 1) != 1)
		zoo_die("the child did not get ready");
	zoo_ready();
	zoo_wait();

	char mine[64] = "", its[64] = "", p[64];
	snprintf(p, sizeof(p), "/proc/%d/ns/net", kid);
	if (readlink(p, its, sizeof(its) - 1) > 0 && readlink("/proc/self/ns/net", mine, sizeof(mine) - 1) > 0)
		CHECK("netns", strcmp(mine, its), "the child is in the parent's network namespace %s", mine);
	kill(kid, SIGTERM);
	if (is("outer"))
		close(FD_LISTEN_P);
	CHECK("outer", accepts(FD_LISTEN_P), "no connection accepted on the parent's listener");
	int status = 0;
	if (waitpid(kid, &status, 0) != kid || !WIFEXITED(status)) {
		zoo_failf("netns", "the child did not exit (status %#x)", status);
	} else {
		int code = WEXITSTATUS(status);
		CHECK("netns", !(code & 1), "a socket of the child's or the grandchild's is not in their namespace");
		CHECK("listener", !(code & 2), "the child's listener accepted no connection");
		CHECK("queue", !(code & 4), "the two datagrams queued on 127.0.0.1 were not read in order");
		CHECK("connected", !(code & 8), "the connected UDP socket's datagram did not arrive");
		CHECK("udp6", !(code & 16), "the datagram queued on ::1 was not read");
		CHECK("tcp", !(code & 32), "the TCP connection over the child's loopback lost its data or its peer");
		CHECK("before", !(code & 64), "the child's socket made before it unshared is not in the parent's "
		      "namespace, or its datagram to itself did not arrive");
	}
	return zoo_finish(NULL);
}
