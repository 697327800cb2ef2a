/*
 * inet-opts: options of inet sockets that few programs set, each away from its default, each on
 * a socket of its own (fds 60...): the IP level's (IP_MULTICAST_ALL, IP_MINTTL, IP_UNICAST_IF
 * as systemd-resolved sets it, IP_RECVOPTS, IP_RETOPTS, IP_PASSSEC, IP_RECVFRAGSIZE, IP_RECVERR_RFC4884, IP_LOCAL_PORT_RANGE where the
 * kernel has it) on UDP; the IPv6 level's (IPV6_RECVHOPLIMIT, IPV6_RECVTCLASS,
 * IPV6_RECVPATHMTU, IPV6_RECV{RTHDR,HOPOPTS,DSTOPTS}, IPV6_RECVORIGDSTADDR, IPV6_RECVFRAGSIZE,
 * IPV6_RECVERR_RFC4884, IPV6_FLOWINFO, IPV6_FLOWINFO_SEND, IPV6_DONTFRAG, IPV6_AUTOFLOWLABEL,
 * IPV6_MINHOPCOUNT, IPV6_MULTICAST_ALL, IPV6_ADDR_PREFERENCES, IPV6_UNICAST_IF: a QUIC server's
 * and a DNS server's) on UDP over IPv6; the TCP level's (TCP_THIN_LINEAR_TIMEOUTS, TCP_SAVE_SYN, TCP_INQ,
 * TCP_TX_DELAY, TCP_FASTOPEN_NO_COOKIE, TCP_FASTOPEN_CONNECT) on a fresh socket, TCP_SAVE_SYN
 * and TCP_INQ also on a listener (127.0.0.1), with a TCP Fast Open key of its own (TCP_FASTOPEN_KEY,
 * a key and a backup key); SOL_SOCKET's (SO_TIMESTAMPING, SO_MAX_PACING_RATE,
 * SO_TXTIME, SO_WIFI_STATUS) on UDP.
 * After restore and SIGTERM: each option reads as it was set; the listener accepts a connection.
 * Corruptions (each sets one option of a level back to its default): ip, ipv6, tcp, socket;
 * fastopen-key (the listener's key changed).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include "zoo-net.h"
#include <linux/net_tstamp.h>
#include <netinet/tcp.h>
#include <poll.h>

#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif
#ifndef IPV6_FLOWINFO /* (linux/in6.h) */
#define IPV6_FLOWINFO 11
#define IPV6_FLOWINFO_SEND 33
#endif

#define FD_FIRST 60

struct opt {
	int family, type, level, name;
	uint64_t value;
	size_t size;
	const char *what, *tag;
	int fd;
	char was[16];
};

#define INT_OPT(f, t, l, n, v, tag) { f, t, l, n, v, sizeof(int), #n, tag, -1, { 0 } }
static struct opt opts[] = {
	INT_OPT(AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_MULTICAST_ALL, 0, "ip"),
	INT_OPT(AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_MINTTL, 9, "ip"),
	INT_OPT(AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_UNICAST_IF, 0x01000000 /* htonl(1): lo */, "ip"),
	INT_OPT(AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_RECVOPTS, 1, "ip"),
	INT_OPT(AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_RETOPTS, 1, "ip"),
	INT_OPT(AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_PASSSEC, 1, "ip"),
	INT_OPT(AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_RECVFRAGSIZE, 1, "ip"),
	INT_OPT(AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_RECVERR_RFC4884, 1, "ip"),
	INT_OPT(AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_LOCAL_PORT_RANGE, 40000u | 40100u << 16, "ip"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1, "ipv6"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_UNICAST_IF, 0x01000000 /* htonl(1): lo */, "ipv6"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_RECVTCLASS, 1, "ipv6"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_RECVPATHMTU, 1, "ipv6"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_RECVRTHDR, 1, "ipv6"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_RECVHOPOPTS, 1, "ipv6"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_RECVDSTOPTS, 1, "ipv6"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_RECVORIGDSTADDR, 1, "ipv6"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_RECVFRAGSIZE, 1, "ipv6"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_RECVERR_RFC4884, 1, "ipv6"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_FLOWINFO, 1, "ipv6"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_FLOWINFO_SEND, 1, "ipv6"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_DONTFRAG, 1, "ipv6"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_AUTOFLOWLABEL, 0, "ipv6"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_MINHOPCOUNT, 7, "ipv6"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0, "ipv6"),
	INT_OPT(AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_ADDR_PREFERENCES, 2 /* IPV6_PREFER_SRC_PUBLIC */, "ipv6"),
	INT_OPT(AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS, 1, "tcp"),
	INT_OPT(AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_SAVE_SYN, 1, "tcp"),
	INT_OPT(AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_INQ, 1, "tcp"),
	INT_OPT(AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_TX_DELAY, 500, "tcp"),
	INT_OPT(AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_FASTOPEN_NO_COOKIE, 1, "tcp"),
	INT_OPT(AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 1, "tcp"),
	INT_OPT(AF_INET, SOCK_DGRAM, SOL_SOCKET, SO_TIMESTAMPING,
		SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE, "socket"),
	{ AF_INET, SOCK_DGRAM, SOL_SOCKET, SO_MAX_PACING_RATE, 1000000, sizeof(uint64_t),
	  "SO_MAX_PACING_RATE", "socket", -1, { 0 } },
	INT_OPT(AF_INET, SOCK_DGRAM, SOL_SOCKET, SO_WIFI_STATUS, 1, "socket"),
	{ AF_INET, SOCK_DGRAM, SOL_SOCKET, SO_TXTIME, 0, sizeof(struct sock_txtime), "SO_TXTIME",
	  "socket", -1, { 0 } },
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))
#define FD_LISTENER (FD_FIRST + (int)N_OPTS)

static struct sockaddr_in listen_addr = { .sin_family = AF_INET };

static void value_of(const struct opt *o, void *v)
{
	if (o->name == SO_TXTIME && o->level == SOL_SOCKET)
		*(struct sock_txtime *)v = (struct sock_txtime){ CLOCK_MONOTONIC, SOF_TXTIME_REPORT_ERRORS };
	else if (o->size == sizeof(int))
		*(int *)v = (int)o->value;
	else
		memcpy(v, &o->value, o->size);
}

/* Whether option o reads as it did before the checkpoint. */
static int same(const struct opt *o)
{
	char now[16] = { 0 };
	socklen_t len = o->size;
	return !getsockopt(o->fd, o->level, o->name, now, &len) && len == o->size && !memcmp(now, o->was, o->size);
}

/* the first option of level tag set back to what a fresh socket has */
static void corrupt(const char *tag)
{
	for (size_t i = 0; i < N_OPTS; i++) {
		if (strcmp(opts[i].tag, tag))
			continue;
		char dflt[16] = { 0 };
		socklen_t len = opts[i].size;
		int fresh = socket(opts[i].family, opts[i].type, 0);
		if (fresh < 0 || getsockopt(fresh, opts[i].level, opts[i].name, dflt, &len) ||
		    setsockopt(opts[i].fd, opts[i].level, opts[i].name, dflt, opts[i].size))
			zoo_die("cannot set %s back: %s", opts[i].what, strerror(errno));
		close(fresh);
		return;
	}
}
static void c_ip(ucontext_t *u) { (void)u; corrupt("ip"); }
static void c_ipv6(ucontext_t *u) { (void)u; corrupt("ipv6"); }
static void c_tcp(ucontext_t *u) { (void)u; corrupt("tcp"); }
static void c_socket(ucontext_t *u) { (void)u; corrupt("socket"); }

static const unsigned char fastopen_keys[32] = "zoo-fastopen-k1-zoo-fastopen-k2";
static void c_fastopen_key(ucontext_t *u)
{
	(void)u;
	setsockopt(FD_LISTENER, IPPROTO_TCP, TCP_FASTOPEN_KEY, "another-key-16by", 16);
}

static const struct zoo_corruption corruptions[] = {
	{ "ip", c_ip, 0 }, { "ipv6", c_ipv6, 0 }, { "tcp", c_tcp, 0 }, { "socket", c_socket, 0 },
	{ "fastopen-key", c_fastopen_key, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	for (size_t i = 0; i < N_OPTS; i++) {
		struct opt *o = &opts[i];
		char v[16] = { 0 };
		socklen_t len = o->size;
		value_of(o, v);
		int s = socket(o->family, o->type, 0);
		if (s < 0)
			zoo_die("socket: %s", strerror(errno));
		if (setsockopt(s, o->level, o->name, v, o->size)) {
			if (o->name == IP_LOCAL_PORT_RANGE && errno == ENOPROTOOPT) {
				close(s); /* (Linux < 6.3) */
				continue;
			}
			zoo_die("set %s: %s", o->what, strerror(errno));
		}
		if (getsockopt(s, o->level, o->name, o->was, &len) || len != o->size)
			zoo_die("read %s back: %s", o->what, strerror(errno));
		zoo_place(s, FD_FIRST + (int)i, 0);
		o->fd = FD_FIRST + (int)i;
	}
	/* a listener's TCP_SAVE_SYN and TCP_INQ */
	int l = socket(AF_INET, SOCK_STREAM, 0), on = 1;
	socklen_t len = sizeof(listen_addr);
	listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || setsockopt(l, IPPROTO_TCP, TCP_SAVE_SYN, &on, sizeof(on)) ||
	    setsockopt(l, IPPROTO_TCP, TCP_INQ, &on, sizeof(on)) ||
	    setsockopt(l, IPPROTO_TCP, TCP_FASTOPEN_KEY, fastopen_keys, sizeof(fastopen_keys)) ||
	    bind(l, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) || listen(l, 4) ||
	    getsockname(l, (struct sockaddr *)&listen_addr, &len))
		zoo_die("a listener: %s", strerror(errno));
	zoo_place(l, FD_LISTENER, 0);
	zoo_ready();
	zoo_wait();

	for (size_t i = 0; i < N_OPTS; i++)
		if (opts[i].fd >= 0)
			CHECK(opts[i].tag, same(&opts[i]), "%s is not as it was set", opts[i].what);
	int save_syn = 0, inq = 0;
	len = sizeof(int);
	getsockopt(FD_LISTENER, IPPROTO_TCP, TCP_SAVE_SYN, &save_syn, &len);
	getsockopt(FD_LISTENER, IPPROTO_TCP, TCP_INQ, &inq, &len);
	CHECK("tcp", save_syn == 1 && inq == 1, "the listener's TCP_SAVE_SYN %d, TCP_INQ %d", save_syn, inq);
	unsigned char keys[32] = { 0 };
	len = sizeof(keys);
	getsockopt(FD_LISTENER, IPPROTO_TCP, TCP_FASTOPEN_KEY, keys, &len);
	CHECK("fastopen-key", len == sizeof(keys) && !memcmp(keys, fastopen_keys, sizeof(keys)),
	      "the listener's TCP_FASTOPEN_KEY: %u bytes, %.16s / %.16s", len, keys, keys + 16);
	struct pollfd p = { .fd = FD_LISTENER, .events = POLLIN };
	int c = socket(AF_INET, SOCK_STREAM, 0), a = -1;
	if (c >= 0 && !connect(c, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) && poll(&p, 1, 3000) == 1)
		a = accept(FD_LISTENER, NULL, NULL);
	CHECK("tcp", a >= 0, "the listener accepted no connection: %s", strerror(errno));
	return zoo_finish(NULL);
}
