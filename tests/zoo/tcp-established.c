/*
 * tcp-established: TCP over loopback, both ends in this process (dumped with
 * --tcp-established, see tests/run-zoo.sh).
 *   fd 60 listener on 127.0.0.1 (backlog 7, SO_REUSEADDR, TCP_DEFER_ACCEPT 5, TCP_MAXSEG 1200);
 *   fd 61 client / fd 62 server of an IPv4 connection with data in flight both ways: the
 *         client wrote until its send buffer was full (the server read nothing: bytes wait in
 *         the server's receive queue and in the client's send queue, not all of them sent), the
 *         server wrote 5000 bytes the client has not read; options TCP_NODELAY, IP_TOS 0x10 on
 *         the client (and TCP_THIN_LINEAR_TIMEOUTS, TCP_TX_DELAY 300), SO_REUSEADDR on both ends
 *         (repair mode clears it: a dump that fails, or --leave-running, must set it again),
 *         keep-alive with
 *         TCP_KEEPIDLE 77, TCP_KEEPINTVL 9, TCP_KEEPCNT 4 and TCP_INQ on the
 *         server;
 *   fd 63 client / fd 64 server over IPv6 loopback, 3000 bytes waiting each way, the client's
 *         SO_RCVBUF set to 30000 (locked: SO_BUF_LOCK 2), the other connected sockets' sizes
 *         the kernel's (SO_BUF_LOCK 0: autotuned);
 *   fd 65 client / fd 66 server half closed: the client sent "bye" and shut its write side
 *         (the client in FIN_WAIT2, the server in CLOSE_WAIT with "bye" and the FIN unread);
 *   fd 67 bound to 127.0.0.1, not listening; fd 68 a fresh IPv6 TCP socket (IPV6_V6ONLY,
 *         TCP_QUICKACK 0: delayed acknowledgements, SO_BUSY_POLL 50, SO_ZEROCOPY); fd 69 TCP_CORK on a
 *         connected client (fd 70 the server) with 100 bytes held back;
 *   fd 71 an epoll (level-triggered) watching the servers 62, 64 and 66 for EPOLLIN|EPOLLRDHUP,
 *         each reported ready once before the dump and left unread.
 * --defer-long: fd 60's TCP_DEFER_ACCEPT is 60 (a client that connected and sent nothing stays
 * a connection being set up, SYN_RECV, for a minute: tests/failure-cases.sh).
 * --urgent: an urgent byte (MSG_OOB) sent on fd 63 waits out of band at fd 64 (the dump
 * refuses it: tests/failure-cases.sh); the program's checks do not read it. --urgent-read: one
 * sent between the two halves of the 3000 bytes and read out of band at fd 64: its mark waits
 * in the queue (the dump refuses it too).
 * After restore and SIGTERM: the epoll reports the three servers readable at once (as the
 * kernel does for bytes that wait unread, whatever moment they came in: a restore that fills
 * a queue after the epoll's items are back must wake it); every byte arrives in order and nothing more; the connections
 * carry new data both ways; the half-closed one reads "bye" then end-of-file, and its
 * client gets the server's answer and then end-of-file; the listener accepts a new
 * connection on the same port; the bound socket has its port; options are as set; each
 * connected socket's SO_BUF_LOCK is as it was (a restore that grows buffers for the queues it
 * fills must not leave them locked), fd 63's SO_RCVBUF too.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include "zoo-net.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/ip.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static size_t sent_c2s, in_flight_v6 = 3000, s2c = 5000;
static struct sockaddr_storage listen_sa, bound_sa;
static socklen_t listen_len;

/* A connected pair over loopback of family: *c the client, *s the accepted server side. */

/* Writes the pattern of seed from offset off until the socket's buffer is full (or len). */
static size_t fill(int fd, size_t off, size_t len, uint64_t seed)
{
	char buf[4096];
	size_t done = 0;
	while (done < len) {
		size_t n = len - done < sizeof(buf) ? len - done : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)zoo_pattern(off + done + i, seed);
		ssize_t w = send(fd, buf, n, MSG_DONTWAIT);
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	return done;
}

/* Reads len bytes (waiting up to 5 s for each piece): 1 if they are the pattern of seed. */
static int take(int fd, size_t len, uint64_t seed)
{
	char buf[4096];
	size_t got = 0;
	int ok = 1;
	while (got < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 5000) <= 0)
			return 0;
		ssize_t n = recv(fd, buf, len - got < sizeof(buf) ? len - got : sizeof(buf), 0);
		if (n <= 0)
			return 0;
		for (ssize_t i = 0; i < n; i++)
			ok &= buf[i] == (char)zoo_pattern(got + (size_t)i, seed);
		got += (size_t)n;
	}
	return ok;
}

static int nothing_more(int fd)
{
	char b;
	return recv(fd, &b, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

/* 4 bytes within 5 s, equal to want */
static int take_exact(int fd, char *buf, const char *want)
{
	struct pollfd p = { fd, POLLIN, 0 };
	return poll(&p, 1, 5000) == 1 && recv(fd, buf, 4, MSG_WAITALL) == 4 && !memcmp(buf, want, 4);
}

/* a new message each way on a connection */
static int roundtrip(int a, int b)
{
	char x[5] = "";
	return write(a, "ping", 4) == 4 && take_exact(b, x, "ping") && write(b, "pong", 4) == 4 &&
	       take_exact(a, x, "pong");
}

static int eof_within(int fd, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char b;
	return poll(&p, 1, ms) == 1 && read(fd, &b, 1) == 0;
}

static void c_stream(ucontext_t *u) { (void)u; char b; recv(62, &b, 1, 0); }
static void c_v6(ucontext_t *u) { (void)u; char b; recv(63, &b, 1, 0); }
static void c_half(ucontext_t *u) { (void)u; char b[3]; recv(66, b, 3, 0); }
static void c_opts(ucontext_t *u) { (void)u; int v = 78; setsockopt(62, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof(v)); }
static void c_listen(ucontext_t *u) { (void)u; close(60); }
static void c_epoll(ucontext_t *u) { (void)u; epoll_ctl(71, EPOLL_CTL_DEL, 64, NULL); }
static void c_buffers(ucontext_t *u) { (void)u; int v = 50000; setsockopt(62, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)); }
static const struct zoo_corruption corruptions[] = {
	{ "stream", c_stream, 0 },
	{ "v6", c_v6, 0 },
	{ "half", c_half, 0 },
	{ "options", c_opts, 0 },
	{ "listen", c_listen, 0 },
	{ "epoll", c_epoll, 0 },
	{ "buffers", c_buffers, 0 },
};
static int buf_lock[72], rcvbuf_63;

/* The servers the epoll at fd 71 reports readable now (a bit per fd - 60), without waiting. */
static unsigned epoll_ready(void)
{
	struct epoll_event ev[8];
	unsigned seen = 0;
	int n = epoll_wait(71, ev, 8, 0);
	for (int i = 0; i < n; i++)
		if (ev[i].events & EPOLLIN)
			seen |= 1u << (ev[i].data.fd - 60);
	return seen;
}
#define EPOLL_SERVERS (1u << 2 | 1u << 4 | 1u << 6)

int main(int argc, char **argv)
{
	int c, s;
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));

	/* fd 60: a listener */
	struct sockaddr_in la = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int l = socket(AF_INET, SOCK_STREAM, 0);
	zoo_set_int(l, SOL_SOCKET, SO_REUSEADDR, 1);
	zoo_set_int(l, IPPROTO_TCP, TCP_DEFER_ACCEPT, argc > 1 && !strcmp(argv[argc - 1], "--defer-long") ? 60 : 5);
	zoo_set_int(l, IPPROTO_TCP, TCP_MAXSEG, 1200);
	listen_len = sizeof(listen_sa);
	if (bind(l, (struct sockaddr *)&la, sizeof(la)) || listen(l, 7) ||
	    getsockname(l, (struct sockaddr *)&listen_sa, &listen_len))
		zoo_die("listener: %s", strerror(errno));
	zoo_place(l, 60, O_CLOEXEC);

	/* fds 61/62: IPv4, data in flight both ways */
	zoo_tcp_loopback_pair(AF_INET, &c, &s);
	zoo_set_int(c, IPPROTO_TCP, TCP_NODELAY, 1);
	zoo_set_int(c, IPPROTO_IP, IP_TOS, 0x10);
	zoo_set_int(s, SOL_SOCKET, SO_KEEPALIVE, 1);
	zoo_set_int(s, IPPROTO_TCP, TCP_KEEPIDLE, 77);
	zoo_set_int(s, IPPROTO_TCP, TCP_KEEPINTVL, 9);
	zoo_set_int(s, IPPROTO_TCP, TCP_KEEPCNT, 4);
	zoo_set_int(s, IPPROTO_TCP, TCP_INQ, 1);
	zoo_set_int(c, IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS, 1);
	zoo_set_int(c, IPPROTO_TCP, TCP_TX_DELAY, 300);
	zoo_set_int(c, SOL_SOCKET, SO_REUSEADDR, 1);
	zoo_set_int(s, SOL_SOCKET, SO_REUSEADDR, 1);
	zoo_place(c, 61, O_CLOEXEC);
	zoo_place(s, 62, O_CLOEXEC);
	if (fill(62, 0, s2c, 2) != s2c)
		zoo_die("server write");
	for (int i = 0; i < 50; i++) { /* until the receiver's window and our buffer are full */
		sent_c2s += fill(61, sent_c2s, 1 << 30, 1);
		zoo_sleep_ms(10);
	}

	/* fds 63/64: IPv6 */
	zoo_tcp_loopback_pair(AF_INET6, &c, &s);
	zoo_place(c, 63, O_CLOEXEC);
	zoo_set_int(63, SOL_SOCKET, SO_RCVBUF, 30000);
	zoo_place(s, 64, O_CLOEXEC);
	size_t half = in_flight_v6 / 2;
	if (argc > 1 && !strcmp(argv[argc - 1], "--urgent-read")) { /* the urgent byte between halves, read */
		char b;
		if (fill(63, 0, half, 3) != half || send(63, "!", 1, MSG_OOB) != 1)
			zoo_die("urgent byte: %s", strerror(errno));
		for (int i = 0; i < 500 && recv(64, &b, 1, MSG_OOB | MSG_DONTWAIT) != 1; i++)
			zoo_sleep_ms(2);
	} else {
		half = 0;
	}
	if (fill(63, half, in_flight_v6 - half, 3) != in_flight_v6 - half || fill(64, 0, in_flight_v6, 4) != in_flight_v6)
		zoo_die("v6 write");
	if (argc > 1 && !strcmp(argv[argc - 1], "--urgent") && send(63, "!", 1, MSG_OOB) != 1)
		zoo_die("urgent byte: %s", strerror(errno));

	/* fds 65/66: half closed */
	zoo_tcp_loopback_pair(AF_INET, &c, &s);
	zoo_place(c, 65, O_CLOEXEC);
	zoo_place(s, 66, O_CLOEXEC);
	if (write(65, "bye", 3) != 3 || shutdown(65, SHUT_WR))
		zoo_die("half close: %s", strerror(errno));

	/* fd 67 bound, fd 68 fresh */
	struct sockaddr_in ba = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t blen = sizeof(bound_sa);
	int b = socket(AF_INET, SOCK_STREAM, 0);
	if (b < 0 || bind(b, (struct sockaddr *)&ba, sizeof(ba)) || getsockname(b, (struct sockaddr *)&bound_sa, &blen))
		zoo_die("bind: %s", strerror(errno));
	zoo_place(b, 67, O_CLOEXEC);
	int f = socket(AF_INET6, SOCK_STREAM, 0);
	zoo_set_int(f, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	zoo_set_int(f, IPPROTO_TCP, TCP_QUICKACK, 0);
	zoo_set_int(f, SOL_SOCKET, SO_BUSY_POLL, 50);
	zoo_set_int(f, SOL_SOCKET, SO_ZEROCOPY, 1);
	zoo_place(f, 68, O_CLOEXEC);

	/* fds 69/70: corked */
	zoo_tcp_loopback_pair(AF_INET, &c, &s);
	zoo_set_int(c, IPPROTO_TCP, TCP_CORK, 1);
	zoo_place(c, 69, O_CLOEXEC);
	zoo_place(s, 70, O_CLOEXEC);
	if (fill(69, 0, 100, 5) != 100)
		zoo_die("corked write");
	zoo_sleep_ms(300); /* everything that will move has moved */

	/* fd 71: an epoll of the servers, each readable */
	int e = epoll_create1(EPOLL_CLOEXEC);
	zoo_place(e, 71, O_CLOEXEC);
	for (int fd = 62; fd <= 66; fd += 2) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd };
		if (epoll_ctl(71, EPOLL_CTL_ADD, fd, &ev))
			zoo_die("epoll_ctl fd %d: %s", fd, strerror(errno));
	}
	if (epoll_ready() != EPOLL_SERVERS)
		zoo_die("the epoll reports %#x before the dump", epoll_ready());

	for (int fd = 61; fd <= 66; fd++)
		buf_lock[fd] = zoo_get_int(fd, SOL_SOCKET, SO_BUF_LOCK);
	rcvbuf_63 = zoo_get_int(63, SOL_SOCKET, SO_RCVBUF);
	if (buf_lock[63] != 2 || buf_lock[61] != 0)
		zoo_die("SO_BUF_LOCK is %d on fd 63 and %d on fd 61 before the dump", buf_lock[63], buf_lock[61]);
	zoo_ready();
	zoo_wait();

	for (int fd = 61; fd <= 66; fd++)
		CHECK("buffers", zoo_get_int(fd, SOL_SOCKET, SO_BUF_LOCK) == buf_lock[fd], "fd %d: SO_BUF_LOCK is %d, was %d",
		      fd, zoo_get_int(fd, SOL_SOCKET, SO_BUF_LOCK), buf_lock[fd]);
	CHECK("buffers", zoo_get_int(63, SOL_SOCKET, SO_RCVBUF) == rcvbuf_63, "fd 63: SO_RCVBUF is %d, was %d",
	      zoo_get_int(63, SOL_SOCKET, SO_RCVBUF), rcvbuf_63);

	CHECK("options", zoo_get_int(61, IPPROTO_TCP, TCP_NODELAY) == 1 && zoo_get_int(61, IPPROTO_IP, IP_TOS) == 0x10 &&
				 zoo_get_int(62, SOL_SOCKET, SO_KEEPALIVE) == 1 && zoo_get_int(62, IPPROTO_TCP, TCP_KEEPIDLE) == 77 &&
				 zoo_get_int(62, IPPROTO_TCP, TCP_KEEPINTVL) == 9 && zoo_get_int(62, IPPROTO_TCP, TCP_KEEPCNT) == 4 &&
				 zoo_get_int(68, IPPROTO_IPV6, IPV6_V6ONLY) == 1 && zoo_get_int(60, SOL_SOCKET, SO_REUSEADDR) == 1 &&
				 zoo_get_int(60, IPPROTO_TCP, TCP_DEFER_ACCEPT) > 0 && zoo_get_int(69, IPPROTO_TCP, TCP_CORK) == 1 &&
				 zoo_get_int(68, IPPROTO_TCP, TCP_QUICKACK) == 0 && zoo_get_int(60, IPPROTO_TCP, TCP_MAXSEG) == 1200 &&
				 zoo_get_int(68, SOL_SOCKET, SO_BUSY_POLL) == 50 && zoo_get_int(68, SOL_SOCKET, SO_ZEROCOPY) == 1 &&
				 zoo_get_int(62, IPPROTO_TCP, TCP_INQ) == 1 && zoo_get_int(61, IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS) == 1 &&
				 zoo_get_int(61, IPPROTO_TCP, TCP_TX_DELAY) == 300 && zoo_get_int(61, SOL_SOCKET, SO_REUSEADDR) == 1 &&
				 zoo_get_int(62, SOL_SOCKET, SO_REUSEADDR) == 1,
	      "nodelay %d tos %#x keepalive %d idle %d intvl %d cnt %d v6only %d reuseaddr %d defer %d cork %d "
	      "quickack %d maxseg %d busy_poll %d zerocopy %d inq %d thin %d tx_delay %d reuseaddr %d/%d",
	      zoo_get_int(61, IPPROTO_TCP, TCP_NODELAY), zoo_get_int(61, IPPROTO_IP, IP_TOS), zoo_get_int(62, SOL_SOCKET, SO_KEEPALIVE),
	      zoo_get_int(62, IPPROTO_TCP, TCP_KEEPIDLE), zoo_get_int(62, IPPROTO_TCP, TCP_KEEPINTVL),
	      zoo_get_int(62, IPPROTO_TCP, TCP_KEEPCNT), zoo_get_int(68, IPPROTO_IPV6, IPV6_V6ONLY),
	      zoo_get_int(60, SOL_SOCKET, SO_REUSEADDR), zoo_get_int(60, IPPROTO_TCP, TCP_DEFER_ACCEPT),
	      zoo_get_int(69, IPPROTO_TCP, TCP_CORK), zoo_get_int(68, IPPROTO_TCP, TCP_QUICKACK),
	      zoo_get_int(60, IPPROTO_TCP, TCP_MAXSEG), zoo_get_int(68, SOL_SOCKET, SO_BUSY_POLL),
	      zoo_get_int(68, SOL_SOCKET, SO_ZEROCOPY), zoo_get_int(62, IPPROTO_TCP, TCP_INQ),
	      zoo_get_int(61, IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS), zoo_get_int(61, IPPROTO_TCP, TCP_TX_DELAY),
	      zoo_get_int(61, SOL_SOCKET, SO_REUSEADDR), zoo_get_int(62, SOL_SOCKET, SO_REUSEADDR));
	unsigned ready = epoll_ready();
	CHECK("epoll", ready == EPOLL_SERVERS,
	      "the epoll reports the servers %#x readable (fd - 60 bits), not %#x: bytes wait unread in each", ready,
	      EPOLL_SERVERS);
	CHECK("stream", take(61, s2c, 2) && nothing_more(61), "the client did not get the server's %zu bytes", s2c);
	CHECK("stream", take(62, sent_c2s, 1) && nothing_more(62), "the server did not get the client's %zu bytes",
	      sent_c2s);
	CHECK("stream", roundtrip(61, 62), "the IPv4 connection carries nothing new");
	CHECK("v6", take(63, in_flight_v6, 4) && take(64, in_flight_v6, 3) && roundtrip(63, 64),
	      "the IPv6 connection lost bytes");
	char bye[4] = "";
	CHECK("half", recv(66, bye, 3, MSG_WAITALL) == 3 && !memcmp(bye, "bye", 3) && eof_within(66, 1000),
	      "the half-closed server did not read 'bye' then end-of-file");
	CHECK("half", write(66, "done", 4) == 4 && take_exact(65, bye, "done"),
	      "the half-closed client did not get the server's answer");
	close(66);
	CHECK("half", eof_within(65, 5000), "the half-closed client got no end-of-file after the server closed");
	/* the corked bytes go once the cork is pulled */
	zoo_set_int(69, IPPROTO_TCP, TCP_CORK, 0);
	CHECK("cork", take(70, 100, 5), "the corked bytes did not arrive");
	struct sockaddr_storage now;
	socklen_t nlen = sizeof(now);
	CHECK("bound", !getsockname(67, (struct sockaddr *)&now, &nlen) &&
			       ((struct sockaddr_in *)&now)->sin_port == ((struct sockaddr_in *)&bound_sa)->sin_port,
	      "the bound socket lost its port");
	int nc = socket(AF_INET, SOCK_STREAM, 0), ns = -1;
	CHECK("listen", nc >= 0 && !connect(nc, (struct sockaddr *)&listen_sa, listen_len) && write(nc, "ping", 4) == 4 &&
				(ns = accept(60, NULL, NULL)) >= 0 && roundtrip(nc, ns),
	      "the listener does not accept a new connection: %s", strerror(errno));
	if (nc >= 0)
		close(nc);
	if (ns >= 0)
		close(ns);
	return zoo_finish("ipv4, ipv6, half-closed, listener, bound, cork, epoll of unread servers");
}
