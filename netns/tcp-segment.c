/*
 * TCP segments made by hand: an IPv4 or IPv6 header (the raw socket of IPPROTO_RAW takes it
 * as it is), the TCP header with its checksum over the pseudo-header, and the data.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "csum.h"
#include "tcp-segment.h"
#include "util.h"

#define SEGMENT_MAX 65000 /* a larger one is sent in pieces by the caller */

int tcp_segment_socket(int family)
{
	int raw = socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW), mark = TCP_SEGMENT_MARK;

	if (raw < 0)
		return -errno;
	if (setsockopt(raw, SOL_SOCKET, SO_MARK, &mark, sizeof(mark))) {
		int err = -errno;
		close(raw);
		return err;
	}
	return raw;
}

int tcp_segment_send(int raw, const struct tcp_segment *s)
{
	bool v4 = s->family == AF_INET;
	size_t hdr = v4 ? sizeof(struct iphdr) : sizeof(struct ip6_hdr), alen = v4 ? 4 : 16;
	size_t tcp_len = sizeof(struct tcphdr) + s->len;
	struct sockaddr_storage to = { 0 };
	socklen_t to_len;
	uint32_t sum = 0;

	if (s->len > SEGMENT_MAX)
		return -EMSGSIZE;
	auto_free uint8_t *pkt = xzalloc(hdr + tcp_len);
	if (!pkt)
		return -ENOMEM;
	struct tcphdr *th = (struct tcphdr *)(pkt + hdr);
	th->source = s->sport;
	th->dest = s->dport;
	th->seq = htonl(s->seq);
	th->ack_seq = htonl(s->ack);
	th->doff = sizeof(*th) / 4;
	th->th_flags = s->flags;
	th->window = htons(s->window);
	if (s->len)
		memcpy(th + 1, s->data, s->len);
	if (v4) {
		struct iphdr *ip = (struct iphdr *)pkt;
		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = IPPROTO_TCP;
		ip->tot_len = htons(hdr + tcp_len);
		memcpy(&ip->saddr, s->src, 4);
		memcpy(&ip->daddr, s->dst, 4);
		struct sockaddr_in *t4 = (struct sockaddr_in *)&to;
		t4->sin_family = AF_INET;
		memcpy(&t4->sin_addr, s->dst, 4);
		to_len = sizeof(*t4);
	} else {
		struct ip6_hdr *ip = (struct ip6_hdr *)pkt;
		ip->ip6_flow = htonl(6u << 28);
		ip->ip6_plen = htons(tcp_len);
		ip->ip6_nxt = IPPROTO_TCP;
		ip->ip6_hlim = 64;
		memcpy(&ip->ip6_src, s->src, 16);
		memcpy(&ip->ip6_dst, s->dst, 16);
		struct sockaddr_in6 *t6 = (struct sockaddr_in6 *)&to;
		t6->sin6_family = AF_INET6;
		memcpy(&t6->sin6_addr, s->dst, 16);
		to_len = sizeof(*t6);
	}
	/* the pseudo-header: both addresses, the protocol and the TCP length */
	sum = csum_add(sum, s->src, alen);
	sum = csum_add(sum, s->dst, alen);
	sum += IPPROTO_TCP + (uint32_t)(tcp_len & 0xffff) + (uint32_t)(tcp_len >> 16);
	th->check = htons(csum_fold(csum_add(sum, th, tcp_len)));
	ssize_t n = sendto(raw, pkt, hdr + tcp_len, 0, (struct sockaddr *)&to, to_len);
	return n == (ssize_t)(hdr + tcp_len) ? 0 : n < 0 ? -errno : -EIO;
}
