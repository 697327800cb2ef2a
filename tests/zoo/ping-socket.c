/*
 * ping-socket: ICMP ping sockets (SOCK_DGRAM, IPPROTO_ICMP / IPPROTO_ICMPV6), as unprivileged
 * ping and health checkers use them, in a network namespace of the program's own (it unshares
 * one first, brings its loopback up and lets every group make them: net.ipv4.ping_group_range,
 * as Docker sets it in its containers; group 0 alone in a user namespace that maps no more).
 *   fd 60: IPv4, connected to 127.0.0.1 (which bound it: an identifier the kernel chose);
 *   fd 61: IPv4, bound to 127.0.0.1 with identifier 0x1234, not connected;
 *   fd 62: IPv6, connected to ::1.
 * After restore and SIGTERM: each has its identifier (getsockname's port); fd 60 and fd 62
 * ping with send() (no address: they are connected) and read the reply; fd 61 pings
 * 127.0.0.1 with sendto() and reads the reply; fd 61 is still not connected.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include "zoo-net.h"
#include <arpa/inet.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>

#define IDENT 0x1234

/* An echo request of seq (to: NULL if connected), its reply the first thing fd reads: 1. */
static int ping(int fd, int v6, uint16_t seq, const struct sockaddr *to, socklen_t tolen)
{
	uint8_t pkt[32] = { 0 }, buf[256];
	struct icmphdr *h = (struct icmphdr *)pkt;
	h->type = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
	h->un.echo.sequence = htons(seq); /* the kernel puts the identifier and the checksum */
	memcpy(pkt + 8, "stasis-ping", 11);
	if (sendto(fd, pkt, sizeof(pkt), 0, to, tolen) != sizeof(pkt))
		return 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;
	if (poll(&p, 1, 2000) != 1 || (n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) <= 0)
		return 0;
	const struct icmphdr *r = (const struct icmphdr *)buf;
	return (size_t)n == sizeof(pkt) && r->type == (v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY) &&
	       r->un.echo.sequence == htons(seq) && !memcmp(buf + 8, "stasis-ping", 11);
}

static int ident_of(int fd)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &len))
		return -1;
	return ntohs(sa.ss_family == AF_INET ? ((struct sockaddr_in *)&sa)->sin_port
					     : ((struct sockaddr_in6 *)&sa)->sin6_port);
}

static void c_peer(ucontext_t *u)
{
	(void)u;
	struct sockaddr un = { .sa_family = AF_UNSPEC };
	connect(60, &un, sizeof(un));
}
static void c_ident(ucontext_t *u)
{
	(void)u;
	struct sockaddr_in other = { .sin_family = AF_INET, .sin_port = htons(IDENT + 1),
				     .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int s = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	if (s >= 0 && !bind(s, (struct sockaddr *)&other, sizeof(other)))
		dup2(s, 61);
	if (s >= 0)
		close(s);
}
static const struct zoo_corruption corruptions[] = {
	{ "peer", c_peer, 0 },
	{ "ident", c_ident, 0 },
};

int main(int argc, char **argv)
{
	struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in lo_id = lo;
	struct sockaddr_in6 lo6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	lo_id.sin_port = htons(IDENT);
	if (unshare(CLONE_NEWNET) || !zoo_set_lo(1))
		zoo_die("a network namespace of its own with lo up: %s", strerror(errno));
	int range = open("/proc/sys/net/ipv4/ping_group_range", O_WRONLY | O_CLOEXEC);
	/* (in a user namespace whose map stops short: its group 0 alone) */
	if (range < 0 || (write(range, "0 2147483647", 12) != 12 && write(range, "0 0", 3) != 3))
		zoo_die("net.ipv4.ping_group_range: %s", strerror(errno));
	close(range);
	int a = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), b = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP),
	    c = socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
	if (a < 0 || b < 0 || c < 0 || connect(a, (struct sockaddr *)&lo, sizeof(lo)) ||
	    bind(b, (struct sockaddr *)&lo_id, sizeof(lo_id)) ||
	    connect(c, (struct sockaddr *)&lo6, sizeof(lo6)))
		zoo_die("ping sockets: %s", strerror(errno));
	if (!ping(a, 0, 1, NULL, 0) || !ping(b, 0, 1, (struct sockaddr *)&lo, sizeof(lo)) ||
	    !ping(c, 1, 1, NULL, 0))
		zoo_die("no echo reply before the dump");
	zoo_place(a, 60, O_CLOEXEC);
	zoo_place(b, 61, O_CLOEXEC);
	zoo_place(c, 62, O_CLOEXEC);
	int id60 = ident_of(60), id62 = ident_of(62);

	zoo_ready();
	zoo_wait();

	int id = ident_of(60);
	CHECK("ident", id == id60 && id > 0, "fd 60's identifier is %d, not %d", id, id60);
	id = ident_of(61);
	CHECK("ident", id == IDENT, "fd 61's identifier is %#x, not %#x", id, IDENT);
	id = ident_of(62);
	CHECK("ident", id == id62 && id > 0, "fd 62's identifier is %d, not %d", id, id62);
	CHECK("peer", ping(60, 0, 2, NULL, 0), "fd 60 (connected) gets no echo reply to send(): %s",
	      strerror(errno));
	CHECK("peer", ping(62, 1, 2, NULL, 0), "fd 62 (connected) gets no echo reply to send(): %s",
	      strerror(errno));
	CHECK("ident", ping(61, 0, 2, (struct sockaddr *)&lo, sizeof(lo)), "fd 61 gets no echo reply");
	CHECK("peer", !ping(61, 0, 3, NULL, 0) && errno == EDESTADDRREQ,
	      "fd 61 (not connected) sends without an address (%s)", strerror(errno));
	return zoo_finish("two connected ping sockets (IPv4, IPv6), one bound with its identifier");
}
