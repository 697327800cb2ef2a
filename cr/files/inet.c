/*
 * IPv4 and IPv6 sockets: what every kind has in common (family, type, protocol, addresses,
 * options, file flags), and the datagram ones. TCP is in inet-tcp.c.
 *
 * UDP: bound and connected again to the same addresses and ports, with the multicast groups
 * it joined (inet-opts.c). Datagrams waiting in its receive queue are peeked at dump (with
 * their source address, SO_PEEK_OFF walking the queue without taking anything) and, on
 * restore, sent to it again from their original source: an IP packet made by hand on a raw
 * socket (IP_HDRINCL; IPv6 with its UDP checksum), so recvfrom() gives the program the same
 * sender as before, and a connected socket accepts them. A datagram the raw socket cannot
 * send (too large for the route's MTU) is sent from a socket of stasis's, with a warning
 * naming the address it came from (a connected socket would not take it: the warning says
 * it is lost). Its shutdown state (udp-diag.c: which sides shutdown() closed, also on a
 * socket that is not connected) is applied again after its queue is refilled.
 *
 * ICMP ping sockets (SOCK_DGRAM, IPPROTO_ICMP / IPPROTO_ICMPV6): their identifier (the bound
 * port) and peer (getpeername() does not tell it: inet_table_peer, inet-raw.c, reads the
 * namespace's /proc/net/icmp); echo replies waiting to be read are not kept (the dump warns).
 * Raw sockets (SOCK_RAW, any protocol): inet-raw.c reads their state; made again here like a
 * datagram socket (bound, connected), without their queue. Packet sockets are packet.c's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "inet.h"
#include "log.h"
#include "csum.h"
#include "util.h"

#define MAX_QUEUED (4u << 20)
#define DGRAM_MAX 65536

/* ---- dump ---- */

/* The ancillary data asked for while the queue is read: a datagram's destination, TOS (IPv6:
 * traffic class) and TTL (hop limit), each an option of the socket's own put back after. */
static const struct {
	int level, name;
} dgram_info_opts[2][3] = {
	{ { IPPROTO_IP, IP_PKTINFO }, { IPPROTO_IP, IP_RECVTOS }, { IPPROTO_IP, IP_RECVTTL } },
	{ { IPPROTO_IPV6, IPV6_RECVPKTINFO }, { IPPROTO_IPV6, IPV6_RECVTCLASS }, { IPPROTO_IPV6, IPV6_RECVHOPLIMIT } },
};

/* What mh's ancillary data says of its datagram, into d. */
static int datagram_info(const struct msghdr *mh, InetDatagram *d)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)mh); c; c = CMSG_NXTHDR((struct msghdr *)mh, c)) {
		int v = 0;
		const void *addr = NULL;
		size_t alen = 0;
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			addr = &((const struct in_pktinfo *)CMSG_DATA(c))->ipi_addr;
			alen = 4;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			addr = &((const struct in6_pktinfo *)CMSG_DATA(c))->ipi6_addr;
			alen = 16;
		} else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) {
			d->has_tos = true;
			d->tos = *(const uint8_t *)CMSG_DATA(c);
		} else if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
			   (c->cmsg_level == IPPROTO_IPV6 && (c->cmsg_type == IPV6_TCLASS || c->cmsg_type == IPV6_HOPLIMIT))) {
			memcpy(&v, CMSG_DATA(c), sizeof(v));
			if (c->cmsg_type == IPV6_TCLASS)
				d->has_tos = true, d->tos = v & 0xff;
			else
				d->has_ttl = true, d->ttl = v & 0xff;
		}
		if (addr && !d->dst_addr.data) {
			if (!(d->dst_addr.data = xzalloc(alen)))
				return -ENOMEM;
			d->has_dst_addr = true;
			d->dst_addr.len = alen;
			memcpy(d->dst_addr.data, addr, alen);
		}
	}
	return 0;
}

static int queue_datagram(InetSocket *in, const char *data, size_t len,
			  const struct sockaddr_storage *from, const struct msghdr *mh)
{
	InetDatagram *d = xzalloc(sizeof(*d)), **more;
	int known;

	if (!d || !(more = xreallocarray(in->queued, in->n_queued + 1, sizeof(*more)))) {
		free(d);
		return -ENOMEM;
	}
	in->queued = more;
	in->queued[in->n_queued++] = d;
	inet_datagram__init(d);
	if (!(d->data.data = xzalloc(len + 1)))
		return -ENOMEM;
	d->data.len = len;
	memcpy(d->data.data, data, len);
	if ((known = inet_from_sockaddr(from, &d->src_addr, &d->src_port)) < 0)
		return known;
	if (!known) {
		if (!(d->src_addr.data = xzalloc(in->family == AF_INET ? 4 : 16)))
			return -ENOMEM;
		d->src_addr.len = in->family == AF_INET ? 4 : 16;
	}
	return datagram_info(mh, d);
}

/* Every datagram waiting in sk, with its sender, without taking it. */
static int peek_datagrams(int sk, InetSocket *in)
{
	auto_free char *buf = xmalloc(DGRAM_MAX);
	int own = -1, off = 0, on = 1, err = 0, own_info[3] = { 0 };
	socklen_t len = sizeof(own);
	size_t total = 0, v6 = in->family == AF_INET6;
	char ctl[512];

	if (!buf)
		return -ENOMEM;
	if (getsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &own, &len) ||
	    setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)))
		return -errno;
	for (size_t i = 0; i < 3; i++) {
		len = sizeof(own_info[i]);
		getsockopt(sk, dgram_info_opts[v6][i].level, dgram_info_opts[v6][i].name, &own_info[i], &len);
		setsockopt(sk, dgram_info_opts[v6][i].level, dgram_info_opts[v6][i].name, &on, sizeof(on));
	}
	while (!err && total < MAX_QUEUED) {
		struct sockaddr_storage from = { 0 };
		struct iovec iov = { buf, DGRAM_MAX };
		struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
				     .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
		ssize_t n = recvmsg(sk, &mh, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0)
			break;
		err = queue_datagram(in, buf, n, &from, &mh);
		total += n;
	}
	for (size_t i = 0; i < 3; i++)
		setsockopt(sk, dgram_info_opts[v6][i].level, dgram_info_opts[v6][i].name, &own_info[i],
			   sizeof(own_info[i]));
	setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &own, sizeof(own));
	return err;
}

/*
 * What a UDP socket holds that is not kept, said: a pending error (ICMP's port unreachable to a
 * connected one: the kernel gives it only by taking it, so it is taken here, before the queue
 * is read, which would take it and stop; refused with --leave-running, which keeps the socket
 * running), its error queue (IP_RECVERR), bytes not sent yet (UDP_CORK, MSG_MORE).
 */
static int udp_unkept(struct dump_task *t, const struct fd_probe *p, int sk)
{
	struct pollfd pfd = { sk, 0, 0 };
	int error = 0, outq = 0;
	socklen_t len = sizeof(error);

	if (poll(&pfd, 1, 0) < 0)
		return -errno;
	if (pfd.revents & POLLERR) {
		if (t->ctx->opts->leave_running) {
			pr_err("dump pid %d fd %d: UDP socket %s has an error pending or in its error queue: "
			       "the kernel gives it only by taking it from the socket, which --leave-running "
			       "keeps running: not supported", t->pid, p->fd, p->link);
			return -ENOTSUP;
		}
		if (getsockopt(sk, SOL_SOCKET, SO_ERROR, &error, &len))
			return -errno;
		if (error)
			pr_warn("dump pid %d fd %d: UDP socket %s had an error pending (%s): not restored",
				t->pid, p->fd, p->link, strerror(error));
		if (poll(&pfd, 1, 0) > 0 && pfd.revents & POLLERR)
			pr_warn("dump pid %d fd %d: UDP socket %s has messages in its error queue "
				"(IP_RECVERR): not restored", t->pid, p->fd, p->link);
	}
	if (!ioctl(sk, SIOCOUTQ, &outq) && outq > 0)
		pr_warn("dump pid %d fd %d: UDP socket %s holds %d bytes not sent yet (UDP_CORK, MSG_MORE, "
			"or waiting for its device): not restored", t->pid, p->fd, p->link, outq);
	return 0;
}

static int dump_dgram(struct dump_task *t, const struct fd_probe *p, int sk, InetSocket *in)
{
	unsigned logged = log_errors();
	char byte;
	int err;

	if (in->protocol == IPPROTO_UDP || in->protocol == IPPROTO_UDPLITE) {
		if ((err = udp_unkept(t, p, sk)))
			return err;
		if ((err = peek_datagrams(sk, in)))
			return log_unnamed(logged, err, "dump pid %d fd %d: cannot read the datagrams waiting in %s",
					   t->pid, p->fd, p->link);
		if ((err = inet_shutdown_dump(t->ctx, sk, in)))
			return log_unnamed(logged, err, "dump pid %d fd %d: cannot read the shutdown state of %s",
					   t->pid, p->fd, p->link);
	} else {
		if (in->state == INET_STATE__INET_BOUND && (err = inet_table_peer(t->pid, in)) < 0) {
			pr_err("dump pid %d fd %d: ping socket %s is not in /proc/%d/net/icmp%s (its peer "
			       "cannot be told): %s", t->pid, p->fd, p->link, t->pid,
			       in->family == AF_INET ? "" : "6", strerror(-err));
			return err;
		}
		if (recv(sk, &byte, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
			pr_warn("dump pid %d fd %d: echo replies waiting in ping socket %s are not kept",
				t->pid, p->fd, p->link);
	}
	if ((err = inet_mcast_dump(sk, in)))
		return log_unnamed(logged, err, "dump pid %d fd %d: cannot read the multicast groups of %s",
				   t->pid, p->fd, p->link);
	return 1;
}

static const char *family_name(int family)
{
	return family == AF_INET ? "IPv4" : "IPv6";
}

/*
 * A connection with an upper-layer protocol (TCP_ULP: kernel TLS, which encrypts what the program
 * writes and decrypts what it reads, with keys and record numbers that cannot be read back) would
 * come back a plain one, sending the program's data in the clear: refused.
 */
static int refuse_upper_layer(struct dump_task *t, const struct fd_probe *p, int sk)
{
	char ulp[17] = ""; /* (TCP_ULP_NAME_MAX 16) */
	socklen_t len = sizeof(ulp) - 1;

	if (getsockopt(sk, IPPROTO_TCP, TCP_ULP, ulp, &len) || !ulp[0])
		return 0;
	pr_err("dump pid %d fd %d: %s runs the upper-layer protocol \"%s\" (TCP_ULP: kernel TLS), whose "
	       "keys and record state cannot be read back; not supported", t->pid, p->fd, p->link, ulp);
	return -ENOTSUP;
}

static int dump_inet(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	int family = 0, type = 0, protocol = 0, err;
	socklen_t len = sizeof(int);
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);

	if (!S_ISSOCK(p->st.st_mode))
		return 0;
	auto_close int sk = task_fd_copy(t->pid, p->fd);
	if (sk < 0 || getsockopt(sk, SOL_SOCKET, SO_DOMAIN, &family, &len))
		return 0;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (getsockopt(sk, SOL_SOCKET, SO_TYPE, &type, &len) ||
	    getsockopt(sk, SOL_SOCKET, SO_PROTOCOL, &protocol, &len)) {
		pr_perror("dump pid %d fd %d: cannot look at %s", t->pid, p->fd, p->link);
		return -errno;
	}
	bool tcp = type == SOCK_STREAM && inet_tcp_like(protocol);
	bool dgram = type == SOCK_DGRAM && (protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE ||
					    protocol == IPPROTO_ICMP || protocol == IPPROTO_ICMPV6);
	bool raw = type == SOCK_RAW && protocol > 0 && protocol < IPPROTO_MAX; /* 256..: MPTCP and others */
	if (!tcp && !dgram && !raw) {
		pr_err("dump pid %d fd %d: %s is a%s %s socket of type %d, protocol %d: not supported",
		       t->pid, p->fd, p->link, type == SOCK_RAW ? " raw" : "n", family_name(family),
		       type, protocol);
		return -ENOTSUP;
	}
	InetSocket *in = xzalloc(sizeof(*in));
	unsigned logged = log_errors();
	if (!in)
		return -ENOMEM;
	inet_socket__init(in);
	e->inet = in;
	e->kind = FD_KIND__FD_INET;
	e->has_flags = true;
	e->flags = p->flags;
	in->family = family;
	in->type = type;
	in->protocol = protocol;
	in->has_ino = true;
	in->ino = p->st.st_ino;
	in->state = INET_STATE__INET_FRESH;
	if (!getsockname(sk, (struct sockaddr *)&sa, &salen) &&
	    (err = inet_from_sockaddr(&sa, &in->src_addr, &in->src_port))) {
		if (err < 0)
			return err;
		in->has_src_addr = in->has_src_port = true;
		if (in->src_port)
			in->state = INET_STATE__INET_BOUND;
	}
	salen = sizeof(sa);
	if (!getpeername(sk, (struct sockaddr *)&sa, &salen) &&
	    (err = inet_from_sockaddr(&sa, &in->dst_addr, &in->dst_port))) {
		if (err < 0)
			return err;
		in->has_dst_addr = in->has_dst_port = true;
		in->state = INET_STATE__INET_CONNECTED;
	}
	if ((err = inet_opts_dump(sk, in)))
		return log_unnamed(logged, err, "dump pid %d fd %d: cannot read the options of %s", t->pid,
				   p->fd, p->link);
	if (raw)
		return inet_raw_dump(t, p, sk, in);
	if (tcp && protocol == IPPROTO_TCP && (err = refuse_upper_layer(t, p, sk)))
		return err;
	return tcp ? inet_tcp_dump(t, p, sk, in) : dump_dgram(t, p, sk, in);
}

/* ---- restore ---- */

static bool state_valid(const InetSocket *in)
{
	bool tcp = inet_tcp_like(in->protocol), mptcp = in->protocol == IPPROTO_MPTCP;

	if (mptcp && (in->has_dst_port || in->has_shutdown || in->n_md5_keys || in->tcp))
		return false; /* (never connected) */
	switch (in->state) {
	case INET_STATE__INET_FRESH:
	case INET_STATE__INET_CLOSED:
		return true;
	case INET_STATE__INET_BOUND:
		return in->has_src_port;
	case INET_STATE__INET_LISTEN:
		return tcp && in->has_src_port && in->has_backlog;
	case INET_STATE__INET_CONNECTED:
	case INET_STATE__INET_CONNECTING:
		return !mptcp && in->has_dst_port && in->has_src_port;
	default:
		return false;
	}
}

static int validate_inet(const struct restore_task *t, const FdEntry *e)
{
	const InetSocket *in = e->inet;
	size_t alen = in && in->family == AF_INET ? 4 : 16;
	bool ok = in && (in->family == AF_INET || in->family == AF_INET6);

	ok = ok && ((in->type == SOCK_STREAM && inet_tcp_like(in->protocol)) ||
		    (in->type == SOCK_DGRAM &&
		     (in->protocol == IPPROTO_UDP || in->protocol == IPPROTO_UDPLITE ||
		      in->protocol == IPPROTO_ICMP || in->protocol == IPPROTO_ICMPV6)) ||
		    (in->type == SOCK_RAW && in->protocol > 0 && in->protocol < IPPROTO_MAX && !in->n_queued));
	ok = ok && state_valid(in) && (!in->has_src_port || in->src_addr.len == alen) &&
	     (!in->has_dst_port || in->dst_addr.len == alen) && in->src_port < 65536 &&
	     in->dst_port < 65536 && inet_opts_valid(in) && inet_mcast_valid(in) &&
	     (!in->has_shutdown || (in->shutdown >= 1 && in->shutdown <= 3 && in->protocol != IPPROTO_TCP) ||
	      (in->shutdown == 1 && in->protocol == IPPROTO_TCP && in->state == INET_STATE__INET_CONNECTED)) &&
	     inet_md5_keys_valid(in);
	for (size_t i = 0; ok && i < in->n_queued; i++)
		ok = in->queued[i]->src_addr.len == alen && in->queued[i]->data.len <= DGRAM_MAX &&
		     in->queued[i]->src_port < 65536 &&
		     (!in->queued[i]->has_dst_addr || in->queued[i]->dst_addr.len == alen) &&
		     in->queued[i]->tos < 256 && in->queued[i]->ttl < 256;
	if (!ok) {
		pr_err("image fds-%d.img: fd %u: inet socket is invalid", t->pid, e->fd);
		return -EINVAL;
	}
	return in->protocol == IPPROTO_TCP ? inet_tcp_validate(t, e) : 0;
}

/* One datagram sent to (daddr, dport) from its original source, in a packet made by hand. */
static bool v4_mapped(const uint8_t *a)
{
	static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };
	return !memcmp(a, prefix, sizeof(prefix));
}

/* (an IPv6 socket's datagram from a v4-mapped sender to a v4-mapped address: an IPv4 packet) */
static int send_as_sender(int family, const uint8_t *daddr, uint16_t dport, const InetDatagram *d)
{
	const uint8_t *saddr = d->src_addr.data;
	if (family == AF_INET6 && v4_mapped(saddr) && v4_mapped(daddr)) {
		family = AF_INET;
		saddr += 12;
		daddr += 12;
	}
	size_t hdr = family == AF_INET ? sizeof(struct iphdr) : sizeof(struct ip6_hdr);
	size_t ulen = sizeof(struct udphdr) + d->data.len;
	auto_free uint8_t *pkt = xzalloc(hdr + ulen);
	auto_close int raw = socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	struct udphdr *u = (struct udphdr *)(pkt ? pkt + hdr : NULL);
	struct sockaddr_storage to = { 0 };
	socklen_t tolen;

	if (!pkt)
		return -ENOMEM;
	if (raw < 0 || ulen > 65535)
		return -errno ?: -EMSGSIZE;
	u->source = htons(d->src_port);
	u->dest = htons(dport);
	u->len = htons(ulen);
	if (d->data.len) /* an empty datagram's bytes may be NULL */
		memcpy(u + 1, d->data.data, d->data.len);
	if (family == AF_INET) {
		struct iphdr *ip = (struct iphdr *)pkt;
		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = d->has_ttl ? d->ttl : 64;
		ip->tos = d->tos;
		ip->protocol = IPPROTO_UDP;
		memcpy(&ip->saddr, saddr, 4);
		memcpy(&ip->daddr, daddr, 4);
		((struct sockaddr_in *)&to)->sin_family = AF_INET;
		memcpy(&((struct sockaddr_in *)&to)->sin_addr, daddr, 4);
		tolen = sizeof(struct sockaddr_in);
	} else {
		struct ip6_hdr *ip = (struct ip6_hdr *)pkt;
		uint32_t sum = 0, be_len = htonl(ulen), nxt = htonl(IPPROTO_UDP);
		ip->ip6_flow = htonl(6u << 28 | (d->tos & 0xff) << 20);
		ip->ip6_plen = htons(ulen);
		ip->ip6_nxt = IPPROTO_UDP;
		ip->ip6_hlim = d->has_ttl ? d->ttl : 64;
		memcpy(&ip->ip6_src, saddr, 16);
		memcpy(&ip->ip6_dst, daddr, 16);
		sum = csum_add(sum, &ip->ip6_src, 32);
		sum = csum_add(sum, &be_len, 4);
		sum = csum_add(sum, &nxt, 4);
		sum = csum_add(sum, u, ulen);
		u->check = htons(csum_fold(sum)) ?: 0xffff;
		((struct sockaddr_in6 *)&to)->sin6_family = AF_INET6;
		memcpy(&((struct sockaddr_in6 *)&to)->sin6_addr, daddr, 16);
		tolen = sizeof(struct sockaddr_in6);
	}
	if (sendto(raw, pkt, hdr + ulen, 0, (struct sockaddr *)&to, tolen) != (ssize_t)(hdr + ulen))
		return -errno;
	return 0;
}

/* Is addr (of family) one of this machine's unicast addresses (a socket can bind to it)? */
static bool local_unicast(int family, const ProtobufCBinaryData *addr)
{
	struct sockaddr_storage sa;
	socklen_t len;
	const uint8_t *a = addr->data;

	if ((family == AF_INET && (a[0] >= 224 || !memcmp(a, "\0\0\0\0", 4))) || (family == AF_INET6 && a[0] == 0xff) ||
	    !inet_sockaddr(family, addr, 0, &sa, &len))
		return false;
	auto_close int s = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	return s >= 0 && !bind(s, (struct sockaddr *)&sa, len);
}

/* The memory sk's receive queue holds (SO_MEMINFO), 0 if it cannot be told. */
static uint32_t queued_memory(int sk)
{
	uint32_t mem[SK_MEMINFO_VARS] = { 0 };
	socklen_t len = sizeof(mem);

	return getsockopt(sk, SOL_SOCKET, SO_MEMINFO, mem, &len) ? 0 : mem[SK_MEMINFO_RMEM_ALLOC];
}

/*
 * Waits (up to a second) until sk's receive queue holds more than before: a packet sent to the
 * machine's own address is taken in by the CPU that sent it, later, so the next one, sent from
 * another CPU, could come in first (and a connect() made after the last could come first, and
 * drop it).
 */
static bool datagram_in(int sk, uint32_t before)
{
	for (int i = 0; i < 1000; i++) {
		if (queued_memory(sk) > before)
			return true;
		usleep(1000);
	}
	return false;
}

/*
 * The datagrams that waited in sk, sent to it again in order: each from its sender, to the
 * address it was sent to if that is one of this machine's (the program's IP_PKTINFO tells it;
 * else the socket's own address), with its TOS and TTL.
 */
static int refill_datagrams(const struct restore_task *t, const FdEntry *e, int sk)
{
	const InetSocket *in = e->inet;
	struct sockaddr_storage self;
	socklen_t len = sizeof(self);
	uint8_t daddr[16] = { 0 };
	static const uint8_t any[16];
	char from[80];
	bool gave_up = false;

	if (!in->n_queued)
		return 0;
	if (getsockname(sk, (struct sockaddr *)&self, &len))
		return -errno;
	uint16_t dport = ntohs(in->family == AF_INET ? ((struct sockaddr_in *)&self)->sin_port
						    : ((struct sockaddr_in6 *)&self)->sin6_port);
	memcpy(daddr, in->src_addr.data, in->src_addr.len);
	if (!memcmp(daddr, any, in->src_addr.len)) { /* bound to any address: loopback's */
		if (in->family == AF_INET)
			daddr[0] = 127, daddr[3] = 1;
		else
			daddr[15] = 1;
	}
	for (size_t k = 0; k < in->n_queued; k++) {
		const InetDatagram *d = in->queued[k];
		unsigned logged = log_errors();
		uint32_t before = queued_memory(sk);
		int err = d->has_dst_addr && local_unicast(in->family, &d->dst_addr)
				  ? send_as_sender(in->family, d->dst_addr.data, dport, d)
				  : -EADDRNOTAVAIL;
		if (err && log_errors() == logged)
			err = send_as_sender(in->family, daddr, dport, d);
		/* (one that never comes in, dropped, ends the waits: a second at most per socket) */
		if (!err && !gave_up && !datagram_in(sk, before)) {
			gave_up = true;
			pr_warn("restore pid %d fd %u: datagram %zu of %zu, sent to it again, did not come in "
				"within a second (dropped: the socket is bound to its address, not to the "
				"one the datagram was sent to?)", t->pid, e->fd, k + 1, in->n_queued);
		}
		if (!err)
			continue;
		if (log_errors() != logged) /* out of memory, said */
			return err;
		struct sockaddr_storage to;
		ProtobufCBinaryData da = { in->src_addr.len, daddr };
		auto_close int s = socket(in->family, SOCK_DGRAM | SOCK_CLOEXEC, in->protocol);
		inet_addr_str(in->family, &d->src_addr, d->src_port, from, sizeof(from));
		if (s < 0 || !inet_sockaddr(in->family, &da, dport, &to, &len) ||
		    sendto(s, d->data.data, d->data.len, MSG_DONTWAIT, (struct sockaddr *)&to, len) < 0) {
			pr_perror("restore pid %d fd %u: cannot queue datagram %zu of %zu again", t->pid,
				  e->fd, k + 1, in->n_queued);
			return -EIO;
		}
		pr_warn("restore pid %d fd %u: datagram %zu of %zu (from %s) could not be sent from its "
			"address (%s): it comes from a socket of stasis", t->pid, e->fd, k + 1, in->n_queued,
			from, strerror(-err));
	}
	return 0;
}

static int open_dgram(struct restore_task *t, const FdEntry *e, int sk)
{
	const InetSocket *in = e->inet;
	struct sockaddr_storage sa;
	socklen_t len;
	int err;

	if (in->state != INET_STATE__INET_FRESH && (err = inet_bind_saved(sk, in, t->pid, e->fd))) {
		pr_err("restore pid %d fd %u: cannot bind to %s: %s", t->pid, e->fd,
		       inet_addr_str(in->family, &in->src_addr, in->src_port, (char[80]){ 0 }, 80),
		       strerror(-err));
		return err;
	}
	/* (connected after its queue is back: datagrams from others than its peer wait in it too,
	 * from before it connected) */
	if ((err = inet_mcast_restore(sk, in)) || (err = sockopts_restore(sk, e)) ||
	    (err = refill_datagrams(t, e, sk)))
		return err;
	if (in->state == INET_STATE__INET_CONNECTED &&
	    (!inet_sockaddr(in->family, &in->dst_addr, in->dst_port, &sa, &len) ||
	     connect(sk, (struct sockaddr *)&sa, len)))
		return -errno ?: -EINVAL;
	/* (the kernel sets the bits of a socket that is not connected too, and says ENOTCONN) */
	if (in->has_shutdown && shutdown(sk, (int)in->shutdown - 1) && errno != ENOTCONN) {
		pr_perror("restore pid %d fd %u: cannot shut down side %u again", t->pid, e->fd, in->shutdown);
		return -errno;
	}
	return 0;
}

static int open_inet(struct restore_task *t, const FdEntry *e)
{
	const InetSocket *in = e->inet;
	int sk = inet_socket(in->family, in->type, in->protocol), err;

	if (sk < 0 && in->protocol == IPPROTO_MPTCP)
		pr_err("restore pid %d fd %u: cannot make an MPTCP socket again: %s (net.mptcp.enabled is 0 "
		       "here, or the kernel has no MPTCP)", t->pid, e->fd, strerror(-sk));
	if (sk < 0)
		return sk;
	if ((err = inet_opts_restore(sk, in, false)) ||
	    (err = inet_tcp_like(in->protocol) ? inet_tcp_open(t, e, sk) : open_dgram(t, e, sk)))
		goto fail;
	if ((err = inet_opts_restore(sk, in, true)) ||
	    (fcntl(sk, F_SETFL, e->flags & O_NONBLOCK) && (err = -errno)))
		goto fail;
	return sk;
fail:
	close(sk);
	return err;
}

static int ready_inet(const struct restore_task *t, const FdEntry *e)
{
	return e->inet->protocol == IPPROTO_TCP ? inet_tcp_ready(t, e) : 0;
}

static int finish_inet(const struct restore_task *t, const FdEntry *e)
{
	return e->inet->protocol == IPPROTO_TCP ? inet_tcp_finish(t, e) : 0;
}

const struct fd_kind_ops fd_kind_inet = {
	.name = "inet socket",
	.dump = dump_inet,
	.validate = validate_inet,
	.open = open_inet,
	.ready = ready_inet,
	.finish = finish_inet,
	.opened_by_process = fd_netns_maker,
	.kind = FD_KIND__FD_INET,
};
