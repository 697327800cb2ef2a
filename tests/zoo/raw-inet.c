/*
 * raw-inet: raw IPv4/IPv6 sockets.
 *   fd 60 raw ICMP over IPv4, bound to 127.0.0.1 and connected to it, its ICMP_FILTER passing
 *         echo replies only, SO_RCVBUF set;
 *   fd 61 raw IPv4 socket of protocol UDP with IP_HDRINCL, and IP-level options every inet
 *         socket has: IP_FREEBIND, IP_PKTINFO, IP_TTL 33;
 *   fd 62 raw ICMPv6 bound to ::1, its ICMPV6_FILTER passing echo replies only, and
 *         IPV6_RECVPKTINFO, IPV6_FREEBIND, IPV6_UNICAST_HOPS 17;
 *   fd 63 raw IPv4 socket of protocol 256 (the kernel takes protocols up to IPPROTO_MAX - 1,
 *         past the one byte of an IP header's).
 * After restore and SIGTERM: the options, filters, address and peer are as set; fd 60 pings
 * 127.0.0.1 with send() (no address: it is connected) and reads the reply, and nothing but
 * the reply (its filter drops its own echo request); fd 62 pings ::1 and reads the reply.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <arpa/inet.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <sys/socket.h>

#define ECHO_ID 0x5a17

static uint16_t csum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (p[i] << 8) | p[i + 1];
	if (len & 1)
		sum += p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons(~sum);
}

/* An echo request of seq out of fd (v6: to ::1, the kernel sums it), its reply read back:
 * 1 if the first thing fd reads is that reply. */
static int ping(int fd, int v6, uint16_t seq)
{
	uint8_t pkt[64] = { 0 }, buf[256];
	struct icmphdr *h = (struct icmphdr *)pkt;
	h->type = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
	h->un.echo.id = htons(ECHO_ID);
	h->un.echo.sequence = htons(seq);
	memcpy(pkt + 8, "stasis-raw", 10);
	ssize_t n;
	if (v6) {
		struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
		n = sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to));
	} else {
		h->checksum = csum(pkt, sizeof(pkt));
		n = send(fd, pkt, sizeof(pkt), 0);
	}
	if (n != sizeof(pkt))
		return 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 2000) != 1 || (n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) <= 0)
		return 0;
	size_t off = v6 ? 0 : (size_t)(buf[0] & 0xf) * 4; /* IPv4: the IP header comes first */
	const struct icmphdr *r = (const struct icmphdr *)(buf + off);
	return (size_t)n >= off + sizeof(pkt) && r->type == (v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY) &&
	       r->un.echo.id == htons(ECHO_ID) && r->un.echo.sequence == htons(seq) &&
	       !memcmp(buf + off + 8, "stasis-raw", 10);
}

static void c_filter(ucontext_t *u) { (void)u; struct icmp_filter f = { 0 }; setsockopt(60, SOL_RAW, ICMP_FILTER, &f, sizeof(f)); }
static void c_peer(ucontext_t *u)
{
	(void)u;
	struct sockaddr sa = { .sa_family = AF_UNSPEC };
	connect(60, &sa, sizeof(sa));
}
static void c_hdrincl(ucontext_t *u) { (void)u; int off = 0; setsockopt(61, IPPROTO_IP, IP_HDRINCL, &off, sizeof(off)); }
static void c_filter6(ucontext_t *u)
{
	(void)u;
	struct icmp6_filter f;
	ICMP6_FILTER_SETPASSALL(&f);
	setsockopt(62, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof(f));
}
static void c_ipopts(ucontext_t *u)
{
	(void)u;
	int zero = 0;
	setsockopt(61, IPPROTO_IP, IP_FREEBIND, &zero, sizeof(zero));
}
static void c_ip6opts(ucontext_t *u)
{
	(void)u;
	int zero = 0;
	setsockopt(62, IPPROTO_IPV6, IPV6_RECVPKTINFO, &zero, sizeof(zero));
}
static void c_proto(ucontext_t *u)
{
	(void)u;
	int other = socket(AF_INET, SOCK_RAW, 255);
	if (other >= 0 && other != 63) {
		dup2(other, 63);
		close(other);
	}
}
static const struct zoo_corruption corruptions[] = {
	{ "filter", c_filter, 0 },
	{ "proto", c_proto, 0 },
	{ "ipopts", c_ipopts, 0 },
	{ "ip6opts", c_ip6opts, 0 },
	{ "peer", c_peer, 0 },
	{ "hdrincl", c_hdrincl, 0 },
	{ "filter6", c_filter6, 0 },
};

int main(int argc, char **argv)
{
	int one = 1, rcvbuf = 70000, ttl = 33, hops = 17;
	struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 lo6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct icmp_filter f = { ~(1u << ICMP_ECHOREPLY) };
	struct icmp6_filter f6;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	ICMP6_FILTER_SETBLOCKALL(&f6);
	ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f6);
	int a = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), b = socket(AF_INET, SOCK_RAW, IPPROTO_UDP),
	    c = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
	if (a < 0 || b < 0 || c < 0 || setsockopt(a, SOL_RAW, ICMP_FILTER, &f, sizeof(f)) ||
	    setsockopt(a, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) ||
	    bind(a, (struct sockaddr *)&lo, sizeof(lo)) || connect(a, (struct sockaddr *)&lo, sizeof(lo)) ||
	    setsockopt(b, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one)) ||
	    setsockopt(b, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)) ||
	    setsockopt(b, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) ||
	    setsockopt(b, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)) ||
	    setsockopt(c, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) ||
	    setsockopt(c, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one)) ||
	    setsockopt(c, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof(hops)) ||
	    setsockopt(c, IPPROTO_ICMPV6, ICMP6_FILTER, &f6, sizeof(f6)) ||
	    bind(c, (struct sockaddr *)&lo6, sizeof(lo6)))
		zoo_die("setup: %s", strerror(errno));
	if (!ping(a, 0, 1) || !ping(c, 1, 1))
		zoo_die("no echo reply before the dump");
	zoo_place(a, 60, O_CLOEXEC);
	zoo_place(b, 61, O_CLOEXEC);
	zoo_place(c, 62, O_CLOEXEC);
	int d = socket(AF_INET, SOCK_RAW, 256);
	if (d < 0)
		zoo_die("socket of protocol 256: %s", strerror(errno));
	zoo_place(d, 63, O_CLOEXEC);

	zoo_ready();
	zoo_wait();

	struct icmp_filter gf = { 0 };
	struct icmp6_filter gf6;
	struct sockaddr_storage sa;
	int hdrincl = 0, got_rcvbuf = 0, proto = 0;
	socklen_t l = sizeof(gf), l6 = sizeof(gf6), li = sizeof(int), lr = sizeof(int), lp = sizeof(int), ls;
	memset(&gf6, 0, sizeof(gf6));
	getsockopt(60, SOL_RAW, ICMP_FILTER, &gf, &l);
	CHECK("filter", gf.data == f.data, "fd 60's ICMP_FILTER is %#x, not %#x", gf.data, f.data);
	ls = sizeof(sa);
	CHECK("peer", !getpeername(60, (struct sockaddr *)&sa, &ls) || errno == ENOTCONN, "getpeername: %s",
	      strerror(errno));
	CHECK("peer", ping(60, 0, 2), "fd 60 (connected) gets no echo reply to send()");
	ls = sizeof(sa);
	CHECK("bound", !getsockname(60, (struct sockaddr *)&sa, &ls) &&
			       ((struct sockaddr_in *)&sa)->sin_addr.s_addr == htonl(INADDR_LOOPBACK),
	      "fd 60 is not bound to 127.0.0.1");
	getsockopt(60, SOL_SOCKET, SO_RCVBUF, &got_rcvbuf, &lr);
	CHECK("options", got_rcvbuf == 2 * rcvbuf, "fd 60's SO_RCVBUF is %d", got_rcvbuf);
	getsockopt(61, IPPROTO_IP, IP_HDRINCL, &hdrincl, &li);
	getsockopt(61, SOL_SOCKET, SO_PROTOCOL, &proto, &lp);
	CHECK("hdrincl", hdrincl == 1 && proto == IPPROTO_UDP, "fd 61: IP_HDRINCL %d, protocol %d", hdrincl, proto);
	int freebind = -1, pktinfo = -1, got_ttl = -1, pktinfo6 = -1, freebind6 = -1, hops6 = -1;
	socklen_t lo1 = sizeof(int), lo2 = sizeof(int), lo3 = sizeof(int), lo4 = sizeof(int), lo5 = sizeof(int),
		  lo6b = sizeof(int);
	getsockopt(61, IPPROTO_IP, IP_FREEBIND, &freebind, &lo1);
	getsockopt(61, IPPROTO_IP, IP_PKTINFO, &pktinfo, &lo2);
	getsockopt(61, IPPROTO_IP, IP_TTL, &got_ttl, &lo3);
	CHECK("ipopts", freebind == 1 && pktinfo == 1 && got_ttl == ttl, "fd 61: IP_FREEBIND %d, IP_PKTINFO %d, "
	      "IP_TTL %d (set 1, 1, %d)", freebind, pktinfo, got_ttl, ttl);
	getsockopt(62, IPPROTO_IPV6, IPV6_RECVPKTINFO, &pktinfo6, &lo4);
	getsockopt(62, IPPROTO_IPV6, IPV6_FREEBIND, &freebind6, &lo5);
	getsockopt(62, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops6, &lo6b);
	CHECK("ip6opts", pktinfo6 == 1 && freebind6 == 1 && hops6 == hops, "fd 62: IPV6_RECVPKTINFO %d, "
	      "IPV6_FREEBIND %d, IPV6_UNICAST_HOPS %d (set 1, 1, %d)", pktinfo6, freebind6, hops6, hops);
	int proto63 = -1;
	socklen_t lp63 = sizeof(int);
	getsockopt(63, SOL_SOCKET, SO_PROTOCOL, &proto63, &lp63);
	CHECK("proto", proto63 == 256, "fd 63's protocol is %d, not 256", proto63);
	getsockopt(62, IPPROTO_ICMPV6, ICMP6_FILTER, &gf6, &l6);
	CHECK("filter6", !memcmp(&gf6, &f6, sizeof(f6)), "fd 62's ICMPV6_FILTER changed");
	ls = sizeof(sa);
	CHECK("bound", !getsockname(62, (struct sockaddr *)&sa, &ls) &&
			       !memcmp(&((struct sockaddr_in6 *)&sa)->sin6_addr, &in6addr_loopback, 16),
	      "fd 62 is not bound to ::1");
	CHECK("filter6", ping(62, 1, 2), "fd 62 gets no echo reply (or not first)");
	return zoo_finish("icmp filter, connected ping, hdrincl, IP and IPv6 options, icmpv6 filter");
}
