/*
 * TCP segments made by hand (netns/tcp-segment.c): sent from a raw socket of the connection's
 * network namespace, with the peer's address as their source, for the local end to take as
 * if the peer had sent them (the peer's FIN of a half-closed connection made again; the
 * handshake's last ACK and the data of a connection put back in a listener's accept queue).
 */
#ifndef STASIS_TCP_SEGMENT_H
#define STASIS_TCP_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

/* The mark (SO_MARK) of stasis's segments: the network lock lets them through. */
#define TCP_SEGMENT_MARK 0x57a515u

struct tcp_segment {
	int family;              /* AF_INET, AF_INET6 */
	const uint8_t *src, *dst; /* 4 or 16 bytes: the peer's address, the local end's */
	uint16_t sport, dport;   /* network byte order */
	uint32_t seq, ack;
	uint8_t flags;           /* TH_ACK, TH_FIN, TH_PUSH */
	uint16_t window;         /* as sent (scaled down already) */
	const void *data;
	size_t len;
};

/* A raw socket of family in the calling thread's network namespace, its segments marked
 * (TCP_SEGMENT_MARK), or -errno. */
int tcp_segment_socket(int family);
/* s built (IP header, checksum) and sent through raw: 0 or -errno. */
int tcp_segment_send(int raw, const struct tcp_segment *s);

#endif
