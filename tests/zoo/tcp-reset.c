/*
 * tcp-reset: TCP connections their peer reset before the dump, the ECONNRESET not read yet
 * (dumped with --tcp-established, see tests/run-zoo.sh); both ends in this process.
 *   fd 70 (IPv4): its peer wrote "left" and closed with SO_LINGER 0 (a reset): 70 is closed
 *         (TCP_CLOSE) with "left" unread and ECONNRESET pending;
 *   fd 72 (IPv6): its peer closed with SO_LINGER 0 at once: 72 is closed, nothing unread,
 *         ECONNRESET pending.
 * After restore and SIGTERM: both are closed and poll says POLLERR (the error pending); 70's
 * reads give "left", then ECONNRESET once, then end-of-file; 72's first write fails with
 * ECONNRESET (no SIGPIPE), the next with EPIPE; both keep their local address and their peer
 * (SO_PEERNAME).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include "zoo-net.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static struct sockaddr_storage names[2], peers[2]; /* of 70, 72 */

static int tcp_state(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ? -1 : ti.tcpi_state;
}

/* A connected pair over loopback of family at fds c and s (the client, the accepted side). */
static void pair(int family, int c, int s)
{
	int fc, fs;
	zoo_tcp_loopback_pair(family, &fc, &fs);
	zoo_place(fc, c, O_CLOEXEC);
	zoo_place(fs, s, O_CLOEXEC);
}

/* The peer at fd closes with a reset; the other end, at fd mine, closed by it. */
static void reset_by_peer(int peer, int mine)
{
	struct linger lg = { 1, 0 };
	if (setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) || close(peer))
		zoo_die("reset: %s", strerror(errno));
	for (int i = 0; i < 500 && tcp_state(mine) != TCP_CLOSE; i++)
		zoo_sleep_ms(10);
	if (tcp_state(mine) != TCP_CLOSE)
		zoo_die("fd %d: not closed by its peer's reset (state %d)", mine, tcp_state(mine));
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	return a->ss_family == b->ss_family && !memcmp(a, b, zoo_inet_len(a->ss_family));
}

static int as_before(int fd, int k)
{
	struct sockaddr_storage now, peer;
	socklen_t nlen = sizeof(now), plen = zoo_inet_len(names[k].ss_family);
	return !getsockname(fd, (struct sockaddr *)&now, &nlen) && same_addr(&now, &names[k]) &&
	       !getsockopt(fd, SOL_SOCKET, SO_PEERNAME, &peer, &plen) && same_addr(&peer, &peers[k]);
}

static int pending(int fd)
{
	struct pollfd p = { fd, POLLIN | POLLOUT, 0 };
	return poll(&p, 1, 0) == 1 && (p.revents & POLLERR) && tcp_state(fd) == TCP_CLOSE;
}

/* the error taken off (as a restore that loses it would leave the socket) */
static void c_read(ucontext_t *u) { (void)u; int e; socklen_t l = sizeof(e); getsockopt(70, SOL_SOCKET, SO_ERROR, &e, &l); }
static void c_write(ucontext_t *u) { (void)u; int e; socklen_t l = sizeof(e); getsockopt(72, SOL_SOCKET, SO_ERROR, &e, &l); }
static void c_addr(ucontext_t *u)
{
	(void)u;
	memset(&peers[1], 0, sizeof(peers[1]));
}
static const struct zoo_corruption corruptions[] = {
	{ "read", c_read, 0 },
	{ "write", c_write, 0 },
	{ "addr", c_addr, 0 },
};

int main(int argc, char **argv)
{
	char buf[16];
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));

	/* 70 / 71: "left" unread in 70, then the reset */
	pair(AF_INET, 70, 71);
	if (write(71, "left", 4) != 4)
		zoo_die("reset-read: %s", strerror(errno));
	for (int i = 0; i < 500; i++) {
		int inq = 0;
		if (!ioctl(70, FIONREAD, &inq) && inq == 4)
			break;
		zoo_sleep_ms(10);
	}
	reset_by_peer(71, 70);
	/* 72 / 73 (IPv6): the reset alone */
	pair(AF_INET6, 72, 73);
	reset_by_peer(73, 72);
	for (int k = 0; k < 2; k++) {
		socklen_t len = sizeof(names[k]), plen = zoo_inet_len(k ? AF_INET6 : AF_INET);
		if (getsockname(70 + 2 * k, (struct sockaddr *)&names[k], &len) ||
		    getsockopt(70 + 2 * k, SOL_SOCKET, SO_PEERNAME, &peers[k], &plen))
			zoo_die("fd %d: its names: %s", 70 + 2 * k, strerror(errno));
	}
	if (!pending(70) || !pending(72))
		zoo_die("no error pending after the resets");

	zoo_ready();
	zoo_wait();

	CHECK("read", pending(70), "fd 70: not closed with an error pending (POLLERR)");
	CHECK("write", pending(72), "fd 72: not closed with an error pending (POLLERR)");
	ssize_t n1 = recv(70, buf, sizeof(buf), MSG_DONTWAIT);
	int ok = n1 == 4 && !memcmp(buf, "left", 4);
	ssize_t n2 = recv(70, buf, sizeof(buf), MSG_DONTWAIT);
	int e2 = errno;
	ssize_t n3 = recv(70, buf, sizeof(buf), MSG_DONTWAIT);
	CHECK("read", ok && n2 == -1 && e2 == ECONNRESET && n3 == 0,
	      "fd 70: reads gave %zd bytes, then %zd (%s), then %zd: not 'left', ECONNRESET, end-of-file",
	      n1, n2, n2 < 0 ? strerror(e2) : "-", n3);
	ssize_t w1 = send(72, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	int we1 = errno;
	ssize_t w2 = send(72, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	int we2 = errno;
	CHECK("write", w1 == -1 && we1 == ECONNRESET && w2 == -1 && we2 == EPIPE,
	      "fd 72: writes gave %zd (%s) then %zd (%s): not ECONNRESET then EPIPE", w1,
	      w1 < 0 ? strerror(we1) : "-", w2, w2 < 0 ? strerror(we2) : "-");
	CHECK("addr", as_before(70, 0) && as_before(72, 1), "a reset connection lost its addresses");
	return zoo_finish("reset: ECONNRESET pending, then end-of-file");
}
