/*
 * tcp-mptcp: MPTCP sockets (IPPROTO_MPTCP) as a Go program (>= 1.24) makes its listeners by
 * default, and what they hand out (dumped with --tcp-established, see tests/run-zoo.sh):
 *   fd 60 an MPTCP listener on 127.0.0.1 (backlog 9, SO_REUSEADDR, SO_KEEPALIVE, TCP_NODELAY);
 *   fd 61 an MPTCP listener on [::] (dual stack, backlog 5);
 *   fd 62 an MPTCP socket bound to 127.0.0.1, not listening; fd 63 a fresh MPTCP socket;
 *   fd 64 a plain TCP client of fd 60's, fd 65 the connection fd 60 accepted for it (a plain
 *   TCP socket: the kernel falls back for a client that does not speak MPTCP), 3000 bytes from
 *   the client and 2000 to it waiting unread.
 * After restore and SIGTERM: fds 60 to 63 are MPTCP sockets still, on their ports, with their
 * options; fd 60 accepts a new plain TCP client (a TCP socket) and fd 61 an MPTCP client over
 * IPv4 (an MPTCP socket), each answering a ping; fd 65 is TCP, and the connection gives every
 * byte each way, then carries new ones.
 * --mptcp-client: an MPTCP client of fd 60's at fd 66 and its accepted connection (an MPTCP
 * one) at fd 67; --waiting: a plain TCP client at fd 66 waits in fd 60's accept queue. The dump
 * refuses both (tests/failure-cases.sh); the program's checks leave them alone.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include "zoo-net.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#define C2S 3000
#define S2C 2000

static struct sockaddr_in listen4, bound4;
static struct sockaddr_in6 listen6;

static int protocol_of(int fd) { return zoo_get_int(fd, SOL_SOCKET, SO_PROTOCOL); }

static void place(int fd, int at)
{
	if (fd < 0 || dup2(fd, at) != at)
		zoo_die("fd %d: %s", at, strerror(errno));
	close(fd);
}

/* Socket s bound to *sa (its port in *sa then), listening with backlog (< 0: not), at fd at. */
static void bind_at(int s, void *sa, socklen_t len, int backlog, int at, const char *what)
{
	if (s < 0 || bind(s, sa, len) || (backlog >= 0 && listen(s, backlog)) || getsockname(s, sa, &len))
		zoo_die("%s: %s", what, strerror(errno));
	place(s, at);
}

/* fd's local port (network order; 0: none) */
static in_port_t port_of(int fd)
{
	struct sockaddr_storage sa = { 0 };
	socklen_t len = sizeof(sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &len))
		return 0;
	return sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port : ((struct sockaddr_in *)&sa)->sin_port;
}

/* Sends len bytes of the pattern of seed (all of them: a few KiB fit). */
static int send_pattern(int fd, size_t len, uint64_t seed)
{
	char buf[C2S > S2C ? C2S : S2C];
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)zoo_pattern(i, seed);
	return send(fd, buf, len, 0) == (ssize_t)len;
}

/* Reads len bytes (5 s at most): 1 if they are the pattern of seed and nothing more waits. */
static int take_pattern(int fd, size_t len, uint64_t seed)
{
	char buf[C2S > S2C ? C2S : S2C], more;
	size_t got = 0;
	while (got < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;
		if (poll(&p, 1, 5000) <= 0 || (n = recv(fd, buf + got, len - got, 0)) <= 0)
			return 0;
		got += (size_t)n;
	}
	for (size_t i = 0; i < len; i++)
		if (buf[i] != (char)zoo_pattern(i, seed))
			return 0;
	return recv(fd, &more, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

/* "ping" from c, answered by a with "pong" (5 s at most) */
static int ping_through(int c, int a)
{
	char b[4];
	struct pollfd p = { c, POLLIN, 0 };
	return send(c, "ping", 4, MSG_NOSIGNAL) == 4 && zoo_answer(a) && poll(&p, 1, 5000) == 1 &&
	       recv(c, b, 4, MSG_WAITALL) == 4 && !memcmp(b, "pong", 4);
}

/* A new client of protocol to addr, accepted by listener: 1 if the accepted socket is of
 * protocol accepted_protocol and a ping goes through. */
static int new_client(int listener, const struct sockaddr *addr, socklen_t len, int protocol, int accepted_protocol)
{
	int c = socket(addr->sa_family, SOCK_STREAM, protocol), ok = 0;
	if (c >= 0 && !connect(c, addr, len)) {
		struct pollfd p = { listener, POLLIN, 0 };
		int a = poll(&p, 1, 5000) == 1 ? accept(listener, NULL, NULL) : -1;
		ok = a >= 0 && protocol_of(a) == accepted_protocol && ping_through(c, a);
		if (a >= 0)
			close(a);
	}
	if (c >= 0)
		close(c);
	return ok;
}

static void c_listener(ucontext_t *u)
{
	(void)u;
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	close(60);
	if (!bind(s, (struct sockaddr *)&listen4, sizeof(listen4)) && !listen(s, 9))
		place(s, 60); /* (the same port, plain TCP) */
}
static void c_options(ucontext_t *u) { (void)u; int v = 0; setsockopt(60, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v)); }
static void c_bound(ucontext_t *u) { (void)u; place(socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP), 62); }
static void c_fresh(ucontext_t *u) { (void)u; place(socket(AF_INET, SOCK_STREAM, 0), 63); }
static void c_connection(ucontext_t *u) { (void)u; char b; recv(65, &b, 1, 0); }
static const struct zoo_corruption corruptions[] = {
	{ "listener", c_listener, 0 }, { "options", c_options, 0 }, { "bound", c_bound, 0 },
	{ "fresh", c_fresh, 0 },       { "connection", c_connection, 0 },
};

int main(int argc, char **argv)
{
	const char *extra = argc > 1 ? argv[argc - 1] : "";
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));

	int l = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	if (l < 0)
		zoo_die("an MPTCP socket: %s (net.mptcp.enabled?)", strerror(errno));
	listen4 = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	zoo_set_int(l, SOL_SOCKET, SO_REUSEADDR, 1);
	zoo_set_int(l, SOL_SOCKET, SO_KEEPALIVE, 1);
	zoo_set_int(l, IPPROTO_TCP, TCP_NODELAY, 1);
	bind_at(l, &listen4, sizeof(listen4), 9, 60, "MPTCP listener on 127.0.0.1");

	l = socket(AF_INET6, SOCK_STREAM, IPPROTO_MPTCP);
	listen6 = (struct sockaddr_in6){ .sin6_family = AF_INET6, .sin6_addr = in6addr_any };
	zoo_set_int(l, IPPROTO_IPV6, IPV6_V6ONLY, 0);
	bind_at(l, &listen6, sizeof(listen6), 5, 61, "MPTCP listener on [::]");

	bound4 = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bind_at(socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP), &bound4, sizeof(bound4), -1, 62,
		"MPTCP socket bound to 127.0.0.1");
	place(socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP), 63);

	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&listen4, sizeof(listen4)))
		zoo_die("connect to fd 60: %s", strerror(errno));
	place(c, 64);
	place(accept(60, NULL, NULL), 65);
	if (protocol_of(65) != IPPROTO_TCP || !send_pattern(64, C2S, 1) || !send_pattern(65, S2C, 2))
		zoo_die("fd 65: protocol %d, or its data not sent: %s", protocol_of(65), strerror(errno));

	if (!strcmp(extra, "--mptcp-client") || !strcmp(extra, "--waiting")) {
		c = socket(AF_INET, SOCK_STREAM, strcmp(extra, "--waiting") ? IPPROTO_MPTCP : 0);
		if (c < 0 || connect(c, (struct sockaddr *)&listen4, sizeof(listen4)))
			zoo_die("connect to fd 60: %s", strerror(errno));
		place(c, 66);
		if (strcmp(extra, "--waiting"))
			place(accept(60, NULL, NULL), 67);
	}
	zoo_sleep_ms(50); /* (the bytes in the queues) */
	zoo_ready();
	zoo_wait();

	int waiting = !strcmp(extra, "--waiting");
	CHECK("listener", protocol_of(60) == IPPROTO_MPTCP && protocol_of(61) == IPPROTO_MPTCP &&
				  zoo_get_int(60, SOL_SOCKET, SO_ACCEPTCONN) == 1 && zoo_get_int(61, SOL_SOCKET, SO_ACCEPTCONN) == 1 &&
				  port_of(60) == listen4.sin_port && port_of(61) == listen6.sin6_port,
	      "fds 60 and 61: protocols %d and %d, listening %d and %d, ports %d and %d (were %d and %d)",
	      protocol_of(60), protocol_of(61), zoo_get_int(60, SOL_SOCKET, SO_ACCEPTCONN),
	      zoo_get_int(61, SOL_SOCKET, SO_ACCEPTCONN), ntohs(port_of(60)), ntohs(port_of(61)), ntohs(listen4.sin_port),
	      ntohs(listen6.sin6_port));
	CHECK("options", zoo_get_int(60, SOL_SOCKET, SO_REUSEADDR) == 1 && zoo_get_int(60, SOL_SOCKET, SO_KEEPALIVE) == 1 &&
				 zoo_get_int(60, IPPROTO_TCP, TCP_NODELAY) == 1 && zoo_get_int(61, IPPROTO_IPV6, IPV6_V6ONLY) == 0,
	      "fd 60: SO_REUSEADDR %d, SO_KEEPALIVE %d, TCP_NODELAY %d; fd 61: IPV6_V6ONLY %d",
	      zoo_get_int(60, SOL_SOCKET, SO_REUSEADDR), zoo_get_int(60, SOL_SOCKET, SO_KEEPALIVE),
	      zoo_get_int(60, IPPROTO_TCP, TCP_NODELAY), zoo_get_int(61, IPPROTO_IPV6, IPV6_V6ONLY));
	if (!waiting) { /* (the one waiting would be accepted first) */
		CHECK("listener", new_client(60, (struct sockaddr *)&listen4, sizeof(listen4), 0, IPPROTO_TCP),
		      "fd 60 did not serve a new plain TCP client");
		struct sockaddr_in to61 = { .sin_family = AF_INET, .sin_port = listen6.sin6_port,
					    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		CHECK("listener", new_client(61, (struct sockaddr *)&to61, sizeof(to61), IPPROTO_MPTCP, IPPROTO_MPTCP),
		      "fd 61 did not serve a new MPTCP client over IPv4");
	}
	CHECK("bound", protocol_of(62) == IPPROTO_MPTCP && port_of(62) == bound4.sin_port &&
			       zoo_get_int(62, SOL_SOCKET, SO_ACCEPTCONN) == 0,
	      "fd 62: protocol %d, port %d (was %d), listening %d", protocol_of(62), ntohs(port_of(62)),
	      ntohs(bound4.sin_port), zoo_get_int(62, SOL_SOCKET, SO_ACCEPTCONN));
	CHECK("fresh", protocol_of(63) == IPPROTO_MPTCP && port_of(63) == 0, "fd 63: protocol %d, port %d",
	      protocol_of(63), ntohs(port_of(63)));
	CHECK("connection", protocol_of(65) == IPPROTO_TCP && take_pattern(65, C2S, 1) && take_pattern(64, S2C, 2) &&
				    ping_through(64, 65),
	      "the connection at fds 64 and 65 (protocol %d) lost bytes or carries no new ones", protocol_of(65));
	return zoo_finish("MPTCP listeners (IPv4, dual stack), bound and fresh MPTCP sockets, a fallback connection");
}
