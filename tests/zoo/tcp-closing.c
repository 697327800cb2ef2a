/*
 * tcp-closing: TCP connections closing and closed, both ends in this process (dumped with
 * --tcp-established, see tests/run-zoo.sh). "Full" below: the writer wrote until its send
 * buffer was full while the reader read nothing, so most of its bytes were never sent (the
 * reader's window is 0) and its FIN, after them, was only queued.
 *   fd 71 / 72 (IPv4): 71 wrote full and shut its write side; 72 then wrote 7000 bytes and
 *         shut its own: they and 72's FIN reached 71 before 71's FIN went out, so 71 is in
 *         CLOSING (FIN sent, not acknowledged, the peer's received) with the 7000 bytes
 *         unread, 72 in FIN_WAIT2;
 *   fd 73 / 74 (IPv6): 74 wrote 5000 bytes and shut its write side first; 73 then wrote full
 *         and shut its own: 73 is in LAST_ACK with the 5000 bytes unread, 74 in FIN_WAIT2;
 *   fd 75 / 76 (IPv4): 75 wrote full and shut its write side: FIN_WAIT1, 76 ESTABLISHED;
 *   fd 77 / 78 (IPv4): a connection that ended: 77 wrote "tail" and shut its write side, 78
 *         shut its own without reading: both in CLOSE, "tail" unread in 78;
 *   fd 79 (IPv4): a connection its peer reset (SO_LINGER 0 close), the ECONNRESET already
 *         read: CLOSE.
 * After restore and SIGTERM: the kernel's states are the same (before anything is read);
 * every byte arrives in order, then end-of-file, the large queues within seconds; 75 still
 * reads what 76 writes; the ended ones give their unread bytes then end-of-file, EPIPE to a
 * write, POLLHUP, no pending error, the same local address, the same peer (SO_PEERNAME;
 * getpeername says ENOTCONN as the kernel says for a closed socket).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include "zoo-net.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#define X_LEN 7000  /* 72 -> 71 */
#define Y_LEN 5000  /* 74 -> 73 */

static size_t full_71, full_73, full_75;
static struct sockaddr_storage names[3], peers[3]; /* of 77, 78, 79 */

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

/* Writes the pattern of seed until fd's buffer stays full (or len bytes): how many. */
static size_t fill(int fd, size_t len, uint64_t seed)
{
	char buf[4096];
	size_t done = 0;
	for (int idle = 0; done < len && idle < 20;) {
		size_t n = len - done < sizeof(buf) ? len - done : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)zoo_pattern(done + i, seed);
		ssize_t w = send(fd, buf, n, MSG_DONTWAIT);
		if (w <= 0) {
			idle++;
			zoo_sleep_ms(10);
			continue;
		}
		idle = 0;
		done += (size_t)w;
	}
	return done;
}

/* len bytes of the pattern of seed (waiting up to 5 s for each piece), then end-of-file. */
static int take_then_eof(int fd, size_t len, uint64_t seed)
{
	char buf[65536];
	size_t got = 0;
	int ok = 1;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 5000) <= 0)
			return 0;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0)
			return 0;
		if (n == 0)
			return ok && got == len;
		for (ssize_t i = 0; i < n; i++)
			ok &= got + (size_t)i < len && buf[i] == (char)zoo_pattern(got + (size_t)i, seed);
		got += (size_t)n;
	}
}

static void wait_state(int fd, int state, const char *what)
{
	for (int i = 0; i < 200 && tcp_state(fd) != state; i++)
		zoo_sleep_ms(10);
	if (tcp_state(fd) != state)
		zoo_die("%s: fd %d in state %d, not %d", what, fd, tcp_state(fd), state);
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	return a->ss_family == b->ss_family && !memcmp(a, b, zoo_inet_len(a->ss_family));
}

/* A closed connection as the kernel leaves it: addresses kept, end-of-file, EPIPE, POLLHUP. */
static int ended_as_before(int fd, int k)
{
	struct sockaddr_storage now = { 0 }, peer = { 0 };
	socklen_t nlen = sizeof(now), plen = zoo_inet_len(names[k].ss_family);
	struct pollfd p = { fd, POLLIN | POLLOUT, 0 };
	int ok = tcp_state(fd) == TCP_CLOSE && zoo_get_int(fd, SOL_SOCKET, SO_ERROR) == 0;
	ok &= !getsockname(fd, (struct sockaddr *)&now, &nlen) && same_addr(&now, &names[k]);
	ok &= !getsockopt(fd, SOL_SOCKET, SO_PEERNAME, &peer, &plen) && same_addr(&peer, &peers[k]);
	nlen = sizeof(now);
	ok &= getpeername(fd, (struct sockaddr *)&now, &nlen) < 0 && errno == ENOTCONN;
	ok &= poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) && !(p.revents & POLLERR);
	return ok && send(fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EPIPE;
}

static void c_closing(ucontext_t *u) { (void)u; char b; recv(71, &b, 1, 0); }
static void c_last_ack(ucontext_t *u) { (void)u; char b; recv(73, &b, 1, 0); }
static void c_fin_wait1(ucontext_t *u) { (void)u; char b; recv(76, &b, 1, 0); }
static void c_states(ucontext_t *u) { (void)u; shutdown(76, SHUT_WR); zoo_sleep_ms(100); }
static void c_ended(ucontext_t *u) { (void)u; char b; recv(78, &b, 1, 0); }
static void c_ended_addr(ucontext_t *u)
{
	(void)u;
	struct sockaddr sa = { .sa_family = AF_UNSPEC };
	connect(79, &sa, sizeof(sa));
}
static const struct zoo_corruption corruptions[] = {
	{ "closing", c_closing, 0 },
	{ "last-ack", c_last_ack, 0 },
	{ "fin-wait1", c_fin_wait1, 0 },
	{ "states", c_states, 0 },
	{ "ended", c_ended, 0 },
	{ "ended-addr", c_ended_addr, 0 },
};

int main(int argc, char **argv)
{
	char buf[X_LEN > Y_LEN ? X_LEN : Y_LEN];
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));

	/* 71 / 72: CLOSING */
	pair(AF_INET, 71, 72);
	full_71 = fill(71, 1 << 30, 71);
	if (shutdown(71, SHUT_WR) || fill(72, X_LEN, 72) != X_LEN || shutdown(72, SHUT_WR))
		zoo_die("closing: %s", strerror(errno));
	wait_state(71, TCP_CLOSING, "closing");
	wait_state(72, TCP_FIN_WAIT2, "closing's peer");

	/* 73 / 74: LAST_ACK (IPv6) */
	pair(AF_INET6, 73, 74);
	if (fill(74, Y_LEN, 74) != Y_LEN || shutdown(74, SHUT_WR))
		zoo_die("last-ack: %s", strerror(errno));
	wait_state(73, TCP_CLOSE_WAIT, "last-ack");
	full_73 = fill(73, 1 << 30, 73);
	if (shutdown(73, SHUT_WR))
		zoo_die("last-ack: %s", strerror(errno));
	wait_state(73, TCP_LAST_ACK, "last-ack");
	wait_state(74, TCP_FIN_WAIT2, "last-ack's peer");

	/* 75 / 76: FIN_WAIT1 */
	pair(AF_INET, 75, 76);
	full_75 = fill(75, 1 << 30, 75);
	if (shutdown(75, SHUT_WR))
		zoo_die("fin-wait1: %s", strerror(errno));
	wait_state(75, TCP_FIN_WAIT1, "fin-wait1");

	/* 77 / 78: ended, "tail" unread in 78 */
	pair(AF_INET, 77, 78);
	if (write(77, "tail", 4) != 4 || shutdown(77, SHUT_WR))
		zoo_die("ended: %s", strerror(errno));
	wait_state(78, TCP_CLOSE_WAIT, "ended");
	if (shutdown(78, SHUT_WR))
		zoo_die("ended: %s", strerror(errno));
	wait_state(78, TCP_CLOSE, "ended");
	wait_state(77, TCP_CLOSE, "ended's peer");

	/* 79: reset by its peer, the error read */
	pair(AF_INET, 79, 80);
	struct linger lg = { 1, 0 };
	if (setsockopt(80, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) || close(80))
		zoo_die("reset: %s", strerror(errno));
	wait_state(79, TCP_CLOSE, "reset");
	if (read(79, buf, 1) != -1 || errno != ECONNRESET)
		zoo_die("reset: the first read did not say ECONNRESET");
	for (int k = 0; k < 3; k++) {
		socklen_t len = sizeof(names[k]), plen = sizeof(struct sockaddr_in);
		if (getsockname(77 + k, (struct sockaddr *)&names[k], &len) ||
		    getsockopt(77 + k, SOL_SOCKET, SO_PEERNAME, &peers[k], &plen))
			zoo_die("fd %d: its names: %s", 77 + k, strerror(errno));
	}
	zoo_sleep_ms(200);

	zoo_ready();
	zoo_wait();

	int st[10];
	for (int i = 0; i < 9; i++)
		st[i] = tcp_state(71 + i);
	CHECK("states", st[0] == TCP_CLOSING && st[1] == TCP_FIN_WAIT2 && st[2] == TCP_LAST_ACK &&
				st[3] == TCP_FIN_WAIT2 && st[4] == TCP_FIN_WAIT1 && st[5] == TCP_ESTABLISHED &&
				st[6] == TCP_CLOSE && st[7] == TCP_CLOSE && st[8] == TCP_CLOSE,
	      "states of fds 71..79: %d %d %d %d %d %d %d %d %d", st[0], st[1], st[2], st[3], st[4],
	      st[5], st[6], st[7], st[8]);
	CHECK("closing", take_then_eof(71, X_LEN, 72), "CLOSING did not read its peer's %d bytes then end-of-file",
	      X_LEN);
	CHECK("closing", take_then_eof(72, full_71, 71), "CLOSING's peer did not get its %zu bytes then end-of-file",
	      full_71);
	CHECK("last-ack", take_then_eof(73, Y_LEN, 74), "LAST_ACK did not read its peer's %d bytes then end-of-file",
	      Y_LEN);
	CHECK("last-ack", take_then_eof(74, full_73, 73), "LAST_ACK's peer did not get its %zu bytes then end-of-file",
	      full_73);
	CHECK("fin-wait1", take_then_eof(76, full_75, 75), "FIN_WAIT1's peer did not get its %zu bytes then end-of-file",
	      full_75);
	struct pollfd p = { 75, POLLIN, 0 };
	CHECK("fin-wait1", send(76, "late", 4, MSG_NOSIGNAL) == 4 && poll(&p, 1, 5000) == 1 && recv(75, buf, 5, 0) == 4 &&
				   !memcmp(buf, "late", 4),
	      "FIN_WAIT1 does not read what its peer still writes");
	CHECK("ended", recv(78, buf, 5, MSG_DONTWAIT) == 4 && !memcmp(buf, "tail", 4) &&
			       recv(78, buf, 1, MSG_DONTWAIT) == 0 && recv(77, buf, 1, MSG_DONTWAIT) == 0 &&
			       recv(79, buf, 1, MSG_DONTWAIT) == 0,
	      "the ended connections did not give 'tail' then end-of-file: %s", strerror(errno));
	CHECK("ended-addr", ended_as_before(77, 0) && ended_as_before(78, 1) && ended_as_before(79, 2),
	      "an ended connection is not as the kernel left it (addresses, EPIPE, POLLHUP, error)");
	return zoo_finish("closing, last-ack, fin-wait1, ended, reset");
}
