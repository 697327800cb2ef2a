/*
 * Options of inet sockets beyond the SOL_SOCKET ones of sockopts.c: IP, IPv6, TCP and UDP
 * levels, raw sockets' (IP_HDRINCL, IPV6_CHECKSUM, the ICMP and ICMPv6 type filters), and
 * the SOL_SOCKET ones that must be set before bind (SO_REUSEADDR, SO_REUSEPORT,
 * SO_BINDTODEVICE). As with sockopts.c, only values that differ from a fresh socket's of the
 * same family, type and protocol are saved, so the kernel's defaults stay defaults.
 *
 * Multicast memberships cannot be listed per socket, but a socket can be asked about one
 * group: getsockopt(MCAST_MSFILTER) answers with the membership's filter, or EADDRNOTAVAIL
 * if the socket is not in the group on that interface. The candidates are the groups the
 * namespace's interfaces are in (/proc/net/igmp, /proc/net/igmp6), which include every
 * socket's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "inet.h"
#include "log.h"
#include "util.h"

#define OPT_MAX 64
#define MCAST_MAX_SOURCES 64

#define OPT_KEYS ((size_t)-1) /* TCP_FASTOPEN_KEY's: a key of 16 bytes, or it and a backup key */
#define FASTOPEN_KEY_LEN 16

static const struct inet_opt_desc {
	int level, name;
	size_t size; /* 0: a string (a name); OPT_KEYS */
	const char *what;
} inet_opts[] = {
	{ SOL_SOCKET, SO_REUSEADDR, sizeof(int), "SO_REUSEADDR" },
	{ SOL_SOCKET, SO_REUSEPORT, sizeof(int), "SO_REUSEPORT" },
	{ SOL_SOCKET, SO_BINDTODEVICE, 0, "SO_BINDTODEVICE" },
	{ IPPROTO_IP, IP_TOS, sizeof(int), "IP_TOS" },
	{ IPPROTO_IP, IP_TTL, sizeof(int), "IP_TTL" },
	{ IPPROTO_IP, IP_FREEBIND, sizeof(int), "IP_FREEBIND" },
	{ IPPROTO_IP, IP_TRANSPARENT, sizeof(int), "IP_TRANSPARENT" },
	{ IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, sizeof(int), "IP_BIND_ADDRESS_NO_PORT" },
	{ IPPROTO_IP, IP_RECVERR, sizeof(int), "IP_RECVERR" },
	{ IPPROTO_IP, IP_PKTINFO, sizeof(int), "IP_PKTINFO" },
	{ IPPROTO_IP, IP_RECVTOS, sizeof(int), "IP_RECVTOS" },
	{ IPPROTO_IP, IP_RECVTTL, sizeof(int), "IP_RECVTTL" },
	{ IPPROTO_IP, IP_RECVORIGDSTADDR, sizeof(int), "IP_RECVORIGDSTADDR" },
	{ IPPROTO_IP, IP_MTU_DISCOVER, sizeof(int), "IP_MTU_DISCOVER" },
	{ IPPROTO_IP, IP_MULTICAST_TTL, sizeof(int), "IP_MULTICAST_TTL" },
	{ IPPROTO_IP, IP_MULTICAST_LOOP, sizeof(int), "IP_MULTICAST_LOOP" },
	{ IPPROTO_IP, IP_MULTICAST_IF, sizeof(struct in_addr), "IP_MULTICAST_IF" },
	{ IPPROTO_IP, IP_MULTICAST_ALL, sizeof(int), "IP_MULTICAST_ALL" },
	{ IPPROTO_IP, IP_UNICAST_IF, sizeof(int), "IP_UNICAST_IF" }, /* (systemd-resolved's) */
	{ IPPROTO_IP, IP_MINTTL, sizeof(int), "IP_MINTTL" },
	{ IPPROTO_IP, IP_RECVOPTS, sizeof(int), "IP_RECVOPTS" },
	{ IPPROTO_IP, IP_RETOPTS, sizeof(int), "IP_RETOPTS" },
	{ IPPROTO_IP, IP_PASSSEC, sizeof(int), "IP_PASSSEC" },
	{ IPPROTO_IP, IP_RECVFRAGSIZE, sizeof(int), "IP_RECVFRAGSIZE" },
	{ IPPROTO_IP, IP_RECVERR_RFC4884, sizeof(int), "IP_RECVERR_RFC4884" },
	{ IPPROTO_IP, IP_LOCAL_PORT_RANGE, sizeof(uint32_t), "IP_LOCAL_PORT_RANGE" }, /* Linux >= 6.3 */
	{ IPPROTO_IPV6, IPV6_V6ONLY, sizeof(int), "IPV6_V6ONLY" },
	{ IPPROTO_IPV6, IPV6_TCLASS, sizeof(int), "IPV6_TCLASS" },
	{ IPPROTO_IPV6, IPV6_UNICAST_HOPS, sizeof(int), "IPV6_UNICAST_HOPS" },
	{ IPPROTO_IPV6, IPV6_MULTICAST_HOPS, sizeof(int), "IPV6_MULTICAST_HOPS" },
	{ IPPROTO_IPV6, IPV6_MULTICAST_LOOP, sizeof(int), "IPV6_MULTICAST_LOOP" },
	{ IPPROTO_IPV6, IPV6_MULTICAST_IF, sizeof(int), "IPV6_MULTICAST_IF" },
	{ IPPROTO_IPV6, IPV6_RECVPKTINFO, sizeof(int), "IPV6_RECVPKTINFO" },
	{ IPPROTO_IPV6, IPV6_RECVERR, sizeof(int), "IPV6_RECVERR" },
	{ IPPROTO_IPV6, IPV6_MTU_DISCOVER, sizeof(int), "IPV6_MTU_DISCOVER" },
	{ IPPROTO_IPV6, IPV6_TRANSPARENT, sizeof(int), "IPV6_TRANSPARENT" },
	{ IPPROTO_IPV6, IPV6_FREEBIND, sizeof(int), "IPV6_FREEBIND" },
	{ IPPROTO_IPV6, IPV6_UNICAST_IF, sizeof(int), "IPV6_UNICAST_IF" },
	{ IPPROTO_IPV6, IPV6_RECVHOPLIMIT, sizeof(int), "IPV6_RECVHOPLIMIT" },
	{ IPPROTO_IPV6, IPV6_RECVTCLASS, sizeof(int), "IPV6_RECVTCLASS" },
	{ IPPROTO_IPV6, IPV6_RECVPATHMTU, sizeof(int), "IPV6_RECVPATHMTU" },
	{ IPPROTO_IPV6, IPV6_RECVRTHDR, sizeof(int), "IPV6_RECVRTHDR" },
	{ IPPROTO_IPV6, IPV6_RECVHOPOPTS, sizeof(int), "IPV6_RECVHOPOPTS" },
	{ IPPROTO_IPV6, IPV6_RECVDSTOPTS, sizeof(int), "IPV6_RECVDSTOPTS" },
	{ IPPROTO_IPV6, IPV6_RECVORIGDSTADDR, sizeof(int), "IPV6_RECVORIGDSTADDR" },
	{ IPPROTO_IPV6, IPV6_RECVFRAGSIZE, sizeof(int), "IPV6_RECVFRAGSIZE" },
	{ IPPROTO_IPV6, IPV6_RECVERR_RFC4884, sizeof(int), "IPV6_RECVERR_RFC4884" },
	{ IPPROTO_IPV6, IPV6_FLOWINFO, sizeof(int), "IPV6_FLOWINFO" },
	{ IPPROTO_IPV6, IPV6_FLOWINFO_SEND, sizeof(int), "IPV6_FLOWINFO_SEND" },
	{ IPPROTO_IPV6, IPV6_DONTFRAG, sizeof(int), "IPV6_DONTFRAG" },
	{ IPPROTO_IPV6, IPV6_AUTOFLOWLABEL, sizeof(int), "IPV6_AUTOFLOWLABEL" },
	{ IPPROTO_IPV6, IPV6_MINHOPCOUNT, sizeof(int), "IPV6_MINHOPCOUNT" },
	{ IPPROTO_IPV6, IPV6_MULTICAST_ALL, sizeof(int), "IPV6_MULTICAST_ALL" },
	{ IPPROTO_IPV6, IPV6_ADDR_PREFERENCES, sizeof(int), "IPV6_ADDR_PREFERENCES" },
	{ IPPROTO_TCP, TCP_NODELAY, sizeof(int), "TCP_NODELAY" },
	{ IPPROTO_TCP, TCP_CORK, sizeof(int), "TCP_CORK" },
	{ IPPROTO_TCP, TCP_QUICKACK, sizeof(int), "TCP_QUICKACK" }, /* 0: delayed acks (pingpong) */
	{ IPPROTO_TCP, TCP_KEEPIDLE, sizeof(int), "TCP_KEEPIDLE" },
	{ IPPROTO_TCP, TCP_KEEPINTVL, sizeof(int), "TCP_KEEPINTVL" },
	{ IPPROTO_TCP, TCP_KEEPCNT, sizeof(int), "TCP_KEEPCNT" },
	{ IPPROTO_TCP, TCP_USER_TIMEOUT, sizeof(int), "TCP_USER_TIMEOUT" },
	{ IPPROTO_TCP, TCP_DEFER_ACCEPT, sizeof(int), "TCP_DEFER_ACCEPT" },
	{ IPPROTO_TCP, TCP_NOTSENT_LOWAT, sizeof(int), "TCP_NOTSENT_LOWAT" },
	{ IPPROTO_TCP, TCP_LINGER2, sizeof(int), "TCP_LINGER2" },
	{ IPPROTO_TCP, TCP_WINDOW_CLAMP, sizeof(int), "TCP_WINDOW_CLAMP" },
	{ IPPROTO_TCP, TCP_SYNCNT, sizeof(int), "TCP_SYNCNT" },
	{ IPPROTO_TCP, TCP_FASTOPEN, sizeof(int), "TCP_FASTOPEN" },
	/* a listener's own (a fresh socket reads its namespace's, net.ipv4.tcp_fastopen_key) */
	{ IPPROTO_TCP, TCP_FASTOPEN_KEY, OPT_KEYS, "TCP_FASTOPEN_KEY" },
	{ IPPROTO_TCP, TCP_CONGESTION, 0, "TCP_CONGESTION" },
	{ IPPROTO_TCP, TCP_MAXSEG, sizeof(int), "TCP_MAXSEG" }, /* not connected: the MSS asked for */
	{ IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS, sizeof(int), "TCP_THIN_LINEAR_TIMEOUTS" },
	{ IPPROTO_TCP, TCP_SAVE_SYN, sizeof(int), "TCP_SAVE_SYN" },
	{ IPPROTO_TCP, TCP_INQ, sizeof(int), "TCP_INQ" },
	{ IPPROTO_TCP, TCP_TX_DELAY, sizeof(int), "TCP_TX_DELAY" },
	{ IPPROTO_TCP, TCP_FASTOPEN_NO_COOKIE, sizeof(int), "TCP_FASTOPEN_NO_COOKIE" },
	{ IPPROTO_TCP, TCP_FASTOPEN_CONNECT, sizeof(int), "TCP_FASTOPEN_CONNECT" }, /* before connect */
	{ IPPROTO_UDP, UDP_CORK, sizeof(int), "UDP_CORK" },
	{ IPPROTO_UDP, UDP_SEGMENT, sizeof(int), "UDP_SEGMENT" },
	{ IPPROTO_UDP, UDP_GRO, sizeof(int), "UDP_GRO" },
	{ IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, sizeof(int), "UDPLITE_SEND_CSCOV" },
	{ IPPROTO_UDPLITE, UDPLITE_RECV_CSCOV, sizeof(int), "UDPLITE_RECV_CSCOV" },
	/* raw sockets */
	{ IPPROTO_IP, IP_HDRINCL, sizeof(int), "IP_HDRINCL" },
	{ SOL_RAW, ICMP_FILTER, sizeof(struct icmp_filter), "ICMP_FILTER" },
	{ IPPROTO_IPV6, IPV6_HDRINCL, sizeof(int), "IPV6_HDRINCL" },
	{ IPPROTO_IPV6, IPV6_CHECKSUM, sizeof(int), "IPV6_CHECKSUM" },
	{ IPPROTO_ICMPV6, ICMP6_FILTER, sizeof(struct icmp6_filter), "ICMPV6_FILTER" },
};

static bool multicast_opt(int level, int name)
{
	return (level == IPPROTO_IP && (name == IP_MULTICAST_TTL || name == IP_MULTICAST_LOOP ||
					name == IP_MULTICAST_IF)) ||
	       (level == IPPROTO_IPV6 && (name == IPV6_MULTICAST_HOPS || name == IPV6_MULTICAST_LOOP ||
					  name == IPV6_MULTICAST_IF));
}

static bool raw_opt(int level, int name)
{
	return level == SOL_RAW || level == IPPROTO_ICMPV6 ||
	       (level == IPPROTO_IP && name == IP_HDRINCL) ||
	       (level == IPPROTO_IPV6 && (name == IPV6_HDRINCL || name == IPV6_CHECKSUM));
}

bool inet_tcp_like(uint32_t protocol)
{
	return protocol == IPPROTO_TCP || protocol == IPPROTO_MPTCP;
}

bool inet_listener_has(const InetSocket *listener, uint16_t port, const uint8_t addr[16])
{
	static const uint8_t any[16];
	size_t len = listener->src_addr.len;

	return port == listener->src_port && len <= sizeof(any) &&
	       (!memcmp(listener->src_addr.data, any, len) || !memcmp(listener->src_addr.data, addr, len));
}

/* Whether an option means anything to a socket of this family, type and protocol. */
static bool applies(int level, int name, const InetSocket *in)
{
	int family = in->family, protocol = in->protocol;

	if (raw_opt(level, name) && in->type != SOCK_RAW)
		return false; /* the IP and IPv6 levels' others are a raw socket's too */
	if (level == SOL_RAW)
		return family == AF_INET && protocol == IPPROTO_ICMP;
	if (level == IPPROTO_ICMPV6)
		return family == AF_INET6 && protocol == IPPROTO_ICMPV6;
	bool tcp = inet_tcp_like(protocol) && in->type == SOCK_STREAM;
	if (inet_tcp_like(protocol) && multicast_opt(level, name))
		return false;
	if (level == IPPROTO_TCP && name == TCP_MAXSEG) /* (connected: the MSS in use, not an option) */
		return tcp && in->state != INET_STATE__INET_CONNECTED;
	if (level == IPPROTO_TCP && name == TCP_FASTOPEN_CONNECT) /* (a closed socket's alone) */
		return tcp && (in->state == INET_STATE__INET_FRESH || in->state == INET_STATE__INET_BOUND);
	if (level == IPPROTO_IPV6)
		return family == AF_INET6;
	if (level == IPPROTO_TCP)
		return tcp;
	if (level == IPPROTO_UDP || level == IPPROTO_UDPLITE)
		return level == protocol && in->type != SOCK_RAW;
	return true;
}

/*
 * TCP_MAXSEG of a socket not connected is the MSS asked for (user_mss, 88..32767), or the
 * MSS a connection that ended used (on loopback 65483, which no setsockopt takes): only the
 * first is an option.
 */
static bool user_mss(const struct inet_opt_desc *d, const char *value)
{
	int v;

	if (d->level != IPPROTO_TCP || d->name != TCP_MAXSEG)
		return true;
	memcpy(&v, value, sizeof(v));
	return v >= 88 && v <= 32767;
}

/* Reads option i into buf (OPT_MAX bytes); its length, or -1 if the socket has none. */
static int read_opt(int sk, size_t i, char *buf)
{
	size_t size = inet_opts[i].size;
	socklen_t len = size == OPT_KEYS ? 2 * FASTOPEN_KEY_LEN : size ? size : OPT_MAX - 1;

	memset(buf, 0, OPT_MAX);
	if (getsockopt(sk, inet_opts[i].level, inet_opts[i].name, buf, &len))
		return -1;
	if (size == OPT_KEYS)
		return len == FASTOPEN_KEY_LEN || len == 2 * FASTOPEN_KEY_LEN ? (int)len : -1;
	return size ? (len == size ? (int)len : -1) : (int)strnlen(buf, len);
}

int inet_socket(int family, int type, int protocol)
{
	int fd = socket(family, type | SOCK_CLOEXEC, protocol), err = -errno;
	unsigned low, high;
	gid_t own = getegid();

	if (fd >= 0 || err != -EACCES || type != SOCK_DGRAM ||
	    (protocol != IPPROTO_ICMP && protocol != IPPROTO_ICMPV6))
		return fd >= 0 ? fd : err;
	auto_free char *range = read_file_at(AT_FDCWD, "/proc/sys/net/ipv4/ping_group_range", NULL);
	if (!range || sscanf(range, "%u %u", &low, &high) != 2 || low > high ||
	    syscall(SYS_setresgid, -1, low, -1)) /* this thread's alone */
		return err;
	fd = socket(family, type | SOCK_CLOEXEC, protocol);
	err = -errno;
	if (syscall(SYS_setresgid, -1, own, -1)) {
		pr_perror("cannot take group %u back after making a ping socket as group %u", own, low);
		if (fd >= 0)
			close(fd);
		return -EPERM;
	}
	return fd >= 0 ? fd : err;
}

/* A fresh socket of in's kind; for a ping socket that stasis may not make in its network
 * namespace (net.ipv4.ping_group_range names no group), a UDP socket of its family, whose
 * options start as a ping socket's. */
static int fresh_like(const InetSocket *in)
{
	int fd = inet_socket(in->family, in->type, in->protocol);

	if (fd == -EACCES && in->type == SOCK_DGRAM)
		fd = inet_socket(in->family, SOCK_DGRAM, IPPROTO_UDP);
	return fd;
}

int inet_opts_dump(int sk, InetSocket *in)
{
	auto_close int fresh = fresh_like(in);
	char now[OPT_MAX], dflt[OPT_MAX];

	if (fresh < 0)
		return fresh;
	for (size_t i = 0; i < ARRAY_SIZE(inet_opts); i++) {
		if (!applies(inet_opts[i].level, inet_opts[i].name, in))
			continue;
		int n = read_opt(sk, i, now), d = read_opt(fresh, i, dflt);
		if (n < 0 || (n == d && !memcmp(now, dflt, n)) || !user_mss(&inet_opts[i], now))
			continue;
		InetOpt *o = xzalloc(sizeof(*o)), **more;
		if (!o || !(more = xreallocarray(in->opts, in->n_opts + 1, sizeof(*more)))) {
			free(o);
			return -ENOMEM;
		}
		in->opts = more;
		in->opts[in->n_opts++] = o;
		inet_opt__init(o);
		o->level = inet_opts[i].level;
		o->name = inet_opts[i].name;
		if (!(o->value.data = xzalloc(n + 1)))
			return -ENOMEM;
		o->value.len = n;
		memcpy(o->value.data, now, n);
	}
	return 0;
}

static int known(const InetOpt *o)
{
	for (size_t i = 0; i < ARRAY_SIZE(inet_opts); i++)
		if ((int)o->level == inet_opts[i].level && (int)o->name == inet_opts[i].name)
			return (inet_opts[i].size == OPT_KEYS ? o->value.len == FASTOPEN_KEY_LEN ||
								o->value.len == 2 * FASTOPEN_KEY_LEN
				: inet_opts[i].size ? o->value.len == inet_opts[i].size
						    : o->value.len < OPT_MAX - 1) ? (int)i : -1;
	return -1;
}

bool inet_opts_valid(const InetSocket *in)
{
	for (size_t k = 0; k < in->n_opts; k++)
		if (known(in->opts[k]) < 0)
			return false;
	return true;
}

int inet_opts_restore(int sk, const InetSocket *in, bool tcp_level)
{
	for (size_t k = 0; k < in->n_opts; k++) {
		const InetOpt *o = in->opts[k];
		int i = known(o);
		char value[OPT_MAX] = { 0 };
		if (i < 0)
			return -EINVAL;
		if ((o->level == IPPROTO_TCP) != tcp_level)
			continue;
		if (o->value.len)
			memcpy(value, o->value.data, o->value.len);
		if (setsockopt(sk, o->level, o->name, value, o->value.len)) {
			pr_perror("restore: cannot set %s", inet_opts[i].what);
			return -errno;
		}
	}
	return 0;
}

int inet_reuse_restore(int sk, const InetSocket *in)
{
	int v = 0;

	for (size_t k = 0; k < in->n_opts; k++)
		if (in->opts[k]->level == SOL_SOCKET && in->opts[k]->name == SO_REUSEADDR &&
		    in->opts[k]->value.len == sizeof(int))
			memcpy(&v, in->opts[k]->value.data, sizeof(int));
	return setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &v, sizeof(v)) ? -errno : 0;
}

int inet_bind_saved(int sk, const InetSocket *in, pid_t pid, unsigned fd)
{
	struct sockaddr_storage sa;
	socklen_t len;
	int on = 1, off = 0, err = 0;
	bool tcp = in->protocol == IPPROTO_TCP;

	if (!inet_sockaddr(in->family, &in->src_addr, in->src_port, &sa, &len))
		return -EINVAL;
	/* TCP: repair mode binds with the reuse forced; UDP shares with nothing it had not */
	if (tcp && setsockopt(sk, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)))
		return -errno;
	if (bind(sk, (struct sockaddr *)&sa, len))
		err = -errno;
	if (err == -EADDRNOTAVAIL) {
		/* bound with IP_FREEBIND, since turned off: bound so again, then off as it was */
		int level = in->family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
		int opt = in->family == AF_INET ? IP_FREEBIND : IPV6_FREEBIND;
		if (!setsockopt(sk, level, opt, &on, sizeof(on))) {
			err = bind(sk, (struct sockaddr *)&sa, len) ? -errno : 0;
			if (setsockopt(sk, level, opt, &off, sizeof(off)) && !err)
				err = -errno;
		}
		if (!err) /* (or an address that its new namespace lacks: a container with another IP) */
			pr_warn("restore pid %d fd %u: bound to %s, an address its network namespace does not "
				"have (IP_FREEBIND): it gets nothing until the address is there", pid, fd,
				inet_addr_str(in->family, &in->src_addr, in->src_port, (char[80]){ 0 }, 80));
	}
	if (tcp && setsockopt(sk, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)) && !err)
		err = -errno;
	return err ?: tcp ? inet_reuse_restore(sk, in) : 0;
}

/* ---- multicast ---- */

/* The socket's membership of group on ifindex into in, if it has one. */
static int probe_group(int sk, InetSocket *in, uint32_t ifindex, const void *group, size_t alen)
{
	char buf[GROUP_FILTER_SIZE(MCAST_MAX_SOURCES)];
	struct group_filter *gf = (struct group_filter *)buf;
	socklen_t len = sizeof(buf);
	int level = in->family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;

	memset(buf, 0, sizeof(buf));
	gf->gf_interface = ifindex;
	gf->gf_numsrc = MCAST_MAX_SOURCES;
	gf->gf_group.ss_family = in->family;
	if (in->family == AF_INET)
		memcpy(&((struct sockaddr_in *)&gf->gf_group)->sin_addr, group, alen);
	else
		memcpy(&((struct sockaddr_in6 *)&gf->gf_group)->sin6_addr, group, alen);
	if (getsockopt(sk, level, MCAST_MSFILTER, gf, &len))
		return errno == EADDRNOTAVAIL || errno == EINVAL ? 0 : -errno;
	if (gf->gf_numsrc > MCAST_MAX_SOURCES)
		return -E2BIG;
	InetMcast *m = xzalloc(sizeof(*m)), **more;
	if (!m || !(more = xreallocarray(in->mcast, in->n_mcast + 1, sizeof(*more)))) {
		free(m);
		return -ENOMEM;
	}
	in->mcast = more;
	in->mcast[in->n_mcast++] = m;
	inet_mcast__init(m);
	if (!(m->group.data = xzalloc(alen)))
		return -ENOMEM;
	m->group.len = alen;
	memcpy(m->group.data, group, alen);
	m->ifindex = ifindex;
	m->has_exclude = true;
	m->exclude = gf->gf_fmode == MCAST_EXCLUDE;
	if (!(m->sources = xzalloc((gf->gf_numsrc + 1) * sizeof(*m->sources))))
		return -ENOMEM;
	m->n_sources = gf->gf_numsrc;
	for (size_t i = 0; i < m->n_sources; i++) {
		uint32_t port;
		if (inet_from_sockaddr(&gf->gf_slist[i], &m->sources[i], &port) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int hex_bytes(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &out[i]) != 1)
			return -1;
	return 0;
}

int inet_mcast_dump(int sk, InetSocket *in)
{
	bool v4 = in->family == AF_INET;
	FILE *f = fopen(v4 ? "/proc/net/igmp" : "/proc/net/igmp6", "re");
	char line[256];
	unsigned ifindex = 0;
	int err = 0;

	if (!f)
		return 0; /* no multicast in this kernel */
	while (!err && fgets(line, sizeof(line), f)) {
		char dev[32], group[40];
		unsigned idx;
		if (v4) {
			unsigned raw;
			if (sscanf(line, "%u %31s", &idx, dev) == 2 && line[0] != '\t')
				ifindex = idx; /* a device line; its groups follow, indented */
			else if (line[0] == '\t' && sscanf(line, " %8x", &raw) == 1 && ifindex)
				err = probe_group(sk, in, ifindex, &raw, 4);
		} else if (sscanf(line, "%u %31s %32s", &idx, dev, group) == 3 && strlen(group) == 32) {
			uint8_t g[16];
			if (!hex_bytes(group, g, 16))
				err = probe_group(sk, in, idx, g, 16);
		}
	}
	fclose(f);
	return err;
}

bool inet_mcast_valid(const InetSocket *in)
{
	size_t alen = in->family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < in->n_mcast; i++) {
		if (in->mcast[i]->group.len != alen || in->mcast[i]->n_sources > MCAST_MAX_SOURCES)
			return false;
		for (size_t k = 0; k < in->mcast[i]->n_sources; k++)
			if (in->mcast[i]->sources[k].len != alen)
				return false;
	}
	return true;
}

int inet_mcast_restore(int sk, const InetSocket *in)
{
	int level = in->family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;

	for (size_t i = 0; i < in->n_mcast; i++) {
		const InetMcast *m = in->mcast[i];
		struct group_req req = { .gr_interface = m->ifindex };
		socklen_t len;
		char buf[GROUP_FILTER_SIZE(MCAST_MAX_SOURCES)];
		struct group_filter *gf = (struct group_filter *)buf;
		char name[64];
		if (!inet_sockaddr(in->family, &m->group, 0, &req.gr_group, &len))
			return -EINVAL;
		if (setsockopt(sk, level, MCAST_JOIN_GROUP, &req, sizeof(req))) {
			pr_perror("restore: cannot join multicast group %s on interface %u",
				  inet_addr_str(in->family, &m->group, 0, name, sizeof(name)), m->ifindex);
			return -errno;
		}
		if (m->exclude && !m->n_sources)
			continue;
		memset(buf, 0, sizeof(buf));
		gf->gf_interface = m->ifindex;
		gf->gf_group = req.gr_group;
		gf->gf_fmode = m->exclude ? MCAST_EXCLUDE : MCAST_INCLUDE;
		gf->gf_numsrc = m->n_sources;
		for (size_t k = 0; k < m->n_sources; k++)
			inet_sockaddr(in->family, &m->sources[k], 0, &gf->gf_slist[k], &len);
		if (setsockopt(sk, level, MCAST_MSFILTER, gf, GROUP_FILTER_SIZE(m->n_sources))) {
			pr_perror("restore: cannot set the source filter of multicast group %s",
				  inet_addr_str(in->family, &m->group, 0, name, sizeof(name)));
			return -errno;
		}
	}
	return 0;
}
