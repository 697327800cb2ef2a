/*
 * TCP repair: the kernel's TCP_REPAIR mode lets a privileged process read an established
 * connection's state and make a new socket that is that connection, without the handshake.
 *
 * Read (the socket in repair mode, so the kernel sends nothing for it): the sequence numbers
 * (TCP_QUEUE_SEQ of each queue), the send queue (sent and not acknowledged, then not sent:
 * MSG_PEEK of TCP_SEND_QUEUE), the receive queue (received and not read: MSG_PEEK of
 * TCP_RECV_QUEUE), the options agreed at the handshake (tcp_info: window scaling, SACK,
 * timestamps; TCP_MAXSEG in repair mode is the MSS clamp), our timestamp clock (TCP_TIMESTAMP)
 * and the window (TCP_REPAIR_WINDOW).
 *
 * Made again: a socket in repair mode is bound, given both sequence numbers, connected (the
 * kernel makes it ESTABLISHED at once), given the options (TCP_REPAIR_OPTIONS), the clock and
 * the window; the received bytes are put back in its receive queue, the sent ones in its send
 * queue as sent and not acknowledged (they are sent again when the retransmission timer
 * fires). Bytes never sent are queued normally once repair mode is off.
 *
 * Half-closed connections: the kernel makes only ESTABLISHED in repair mode; the FINs are
 * given back in the order they were exchanged, once the network is unlocked (the tree about
 * to run), so that nothing made then is dropped and sent again only at the retransmission
 * timer's pace:
 * - the peer's FIN (CLOSE_WAIT, LAST_ACK, CLOSING) is a packet made by hand from the peer's
 *   address (a raw socket in the connection's network namespace), at the sequence number
 *   after the data the program has not read, acknowledging what the socket has had
 *   acknowledged; the kernel takes it as it took the first one (read gives the data, then
 *   end-of-file) and answers with an acknowledgement the peer has already had;
 * - our FIN (FIN_WAIT1, FIN_WAIT2, CLOSING, LAST_ACK) is shutdown(SHUT_WR). With nothing
 *   left to send and no FIN of the peer's it is made in repair mode, as sent (a FIN the peer
 *   had acknowledged, FIN_WAIT2, is sent again and acknowledged again). Otherwise it is made
 *   once repair mode is off, after the bytes never sent are queued again: the kernel sends
 *   them and then the FIN at its own pace, with a congestion window no timeout has shrunk;
 * - LAST_ACK is the peer's FIN then ours, CLOSING ours then the peer's.
 * The MSS: the kernel sizes its segments when the connection is made (connect in repair
 * mode), from the MSS the user set (TCP_MAXSEG) or the protocol's default of 536; the MSS
 * clamp given afterwards (TCP_REPAIR_OPTIONS) does not size them again. So TCP_MAXSEG is the
 * saved MSS (within the 88..32767 the option takes) for the connect and is cleared after it.
 *
 * A connection that ended (TCP_CLOSE with its peer's address: both FINs exchanged, or reset)
 * is made again as one: connected in repair mode, its unread bytes put back, and aborted
 * (SOCK_DESTROY, which closes it without a FIN: read gives the bytes, then end-of-file; its
 * addresses stay; the error the abort leaves, ECONNABORTED, is taken off unless it is the one
 * the connection had pending). One that had ECONNRESET pending (its peer reset it) is reset
 * instead: a RST made by hand from its peer's address at the next sequence number it expects,
 * which the kernel takes as the first one (tcp_reset: ECONNRESET pending, then closed). The
 * kernel has no other way to give a socket an error: a reset is the only source of
 * ECONNRESET on an established socket, and a closed one takes no segment.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <unistd.h>

#include "log.h"
#include "task.h"
#include "tcp-repair.h"
#include "tcp-segment.h"
#include "util.h"

#define QUEUE_MAX (64u << 20) /* per queue: a larger one is a damaged image */
#define CHUNK_MAX (64u << 10)
#define USER_MSS_MIN 88    /* the least and the most TCP_MAXSEG takes */
#define USER_MSS_MAX 32767

#define WHY(...) (snprintf(why, why_len, __VA_ARGS__), -errno)
#define URGENT_MARK_WHY()                                                                          \
	(errno = ENOTSUP, WHY("an urgent mark (MSG_OOB) is ahead in its receive queue, its byte read " \
			      "out of band already or in the stream (SO_OOBINLINE): not supported"))

int tcp_repair_set(int sk, bool on, bool probe)
{
	int v = on ? TCP_REPAIR_ON : probe ? TCP_REPAIR_OFF : TCP_REPAIR_OFF_NO_WP;

	return setsockopt(sk, IPPROTO_TCP, TCP_REPAIR, &v, sizeof(v)) ? -errno : 0;
}

static int set_int(int sk, int level, int name, int v)
{
	return setsockopt(sk, level, name, &v, sizeof(v)) ? -errno : 0;
}

int tcp_repair_leave(int sk, bool probe, int reuse)
{
	int err = tcp_repair_set(sk, false, probe);

	return err ? err : reuse ? set_int(sk, SOL_SOCKET, SO_REUSEADDR, reuse) : 0;
}

static int get_int(int sk, int level, int name, int *v)
{
	socklen_t len = sizeof(*v);

	return getsockopt(sk, level, name, v, &len) ? -errno : 0;
}

static int tcp_state(int sk)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	return getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &len) ? -errno : ti.tcpi_state;
}

static bool fin_sent_state(int state)
{
	return state == TCP_FIN_WAIT1 || state == TCP_FIN_WAIT2 || state == TCP_CLOSING ||
	       state == TCP_LAST_ACK;
}

static bool fin_received_state(int state)
{
	return state == TCP_CLOSE_WAIT || state == TCP_CLOSING || state == TCP_LAST_ACK;
}

/* len bytes of one queue, peeked (the receive queue from its start: SO_PEEK_OFF is put back;
 * fewer if the peek stops at an urgent mark: urgent_mark_ahead); queue TCP_NO_QUEUE: the
 * receive queue of a socket not in repair mode. */
static int peek_queue(int sk, int queue, size_t len, ProtobufCBinaryData *out)
{
	int own = -1, zero = 0, err = 0;
	ssize_t n = 0;

	if (!(out->data = xzalloc(len + 1)))
		return -ENOMEM;
	out->len = len;
	if (!len)
		return 0;
	if (queue != TCP_NO_QUEUE && set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue))
		return -errno;
	bool peek_off = queue != TCP_SEND_QUEUE && !get_int(sk, SOL_SOCKET, SO_PEEK_OFF, &own) && own >= 0;
	if (peek_off)
		setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero));
	/* the send queue is copied whole skbs at a time: room for all of it */
	n = recv(sk, out->data, len, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != len && queue == TCP_SEND_QUEUE)
		err = -EIO;
	else
		out->len = n;
	if (peek_off)
		setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &own, sizeof(own));
	return err;
}

/*
 * Is an urgent mark ahead in the receive queue, of which q holds what a peek gave? Reads stop
 * there: a peek gives fewer bytes than SIOCINQ counts when the urgent byte is in the stream
 * (SO_OOBINLINE); SIOCINQ counts only the bytes before the mark when the byte was read out of
 * band already, while the queue's whole length (TCP_INQ's hint: its hole and a FIN included)
 * says more. (Not a peek past the mark: with nothing there, it would take the socket's pending
 * error.) A mark where reading stands now (SIOCATMARK) counts too.
 */
static bool urgent_mark_ahead(int sk, int queue, const ProtobufCBinaryData *q, size_t counted)
{
	int at_mark = 0, own_inq = 0, inq = 0;
	char byte, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &byte, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };

	if (q->len < counted || (!ioctl(sk, SIOCATMARK, &at_mark) && at_mark))
		return true;
	if (!q->len || (queue != TCP_NO_QUEUE && set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue)) ||
	    get_int(sk, IPPROTO_TCP, TCP_INQ, &own_inq) || set_int(sk, IPPROTO_TCP, TCP_INQ, 1))
		return false;
	bool got = recvmsg(sk, &mh, MSG_PEEK | MSG_DONTWAIT) == 1;
	set_int(sk, IPPROTO_TCP, TCP_INQ, own_inq);
	for (struct cmsghdr *c = got ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ)
			memcpy(&inq, CMSG_DATA(c), sizeof(inq));
	return inq > 0 && (size_t)inq > counted + 1; /* (+ 1: a FIN) */
}

int tcp_repair_read(int sk, int state, TcpConn *c, char *why, size_t why_len)
{
	struct tcp_info ti;
	struct tcp_repair_window w;
	socklen_t len = sizeof(ti);
	int write_seq, rcv_nxt, outq, unsent, inq, mss, ts;

	c->fin_sent = fin_sent_state(state);
	c->fin_acked = state == TCP_FIN_WAIT2;
	c->fin_received = fin_received_state(state);
	c->fins_crossed = state == TCP_CLOSING;
	c->has_fin_sent = c->has_fin_acked = c->has_fin_received = c->has_fins_crossed = true;
	char urgent;
	if (recv(sk, &urgent, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT) == 1) {
		/* (reading the queue stops at its mark; the byte and the mark are not repairable) */
		errno = ENOTSUP;
		return WHY("an urgent byte (MSG_OOB) waits to be read out of band: not supported");
	}
	if (getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return WHY("cannot read tcp_info");
	if (set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) ||
	    get_int(sk, IPPROTO_TCP, TCP_QUEUE_SEQ, &write_seq))
		return WHY("cannot read the send sequence");
	if (set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) ||
	    get_int(sk, IPPROTO_TCP, TCP_QUEUE_SEQ, &rcv_nxt))
		return WHY("cannot read the receive sequence");
	if (ioctl(sk, SIOCOUTQ, &outq) || ioctl(sk, SIOCOUTQNSD, &unsent) || ioctl(sk, SIOCINQ, &inq))
		return WHY("cannot read the queues' lengths");
	/* a FIN not acknowledged yet takes one place of the send queue, after the data */
	bool fin_in_queue = c->fin_sent && !c->fin_acked;
	size_t data_out = outq - fin_in_queue;
	if (outq < 0 || inq < 0 || unsent < 0 || unsent > outq || data_out > QUEUE_MAX || (size_t)inq > QUEUE_MAX) {
		errno = EIO;
		return WHY("queues of %d bytes out, %d in", outq, inq);
	}
	c->snd_una = (uint32_t)write_seq - outq;
	c->rcv_nxt = rcv_nxt;
	c->unsent = unsent > (int)fin_in_queue ? unsent - fin_in_queue : 0;
	if (peek_queue(sk, TCP_SEND_QUEUE, data_out, &c->out_queue))
		return WHY("cannot read the %zu bytes of its send queue", data_out);
	if (peek_queue(sk, TCP_RECV_QUEUE, inq, &c->in_queue))
		return WHY("cannot read the %d bytes of its receive queue", inq);
	if (urgent_mark_ahead(sk, TCP_RECV_QUEUE, &c->in_queue, inq))
		return URGENT_MARK_WHY();
	if (get_int(sk, IPPROTO_TCP, TCP_MAXSEG, &mss))
		return WHY("cannot read its MSS");
	c->mss = mss;
	if (ti.tcpi_options & TCPI_OPT_WSCALE) {
		c->has_snd_wscale = c->has_rcv_wscale = true;
		c->snd_wscale = ti.tcpi_snd_wscale;
		c->rcv_wscale = ti.tcpi_rcv_wscale;
	}
	c->has_sack = true;
	c->sack = ti.tcpi_options & TCPI_OPT_SACK;
	if (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) {
		if (get_int(sk, IPPROTO_TCP, TCP_TIMESTAMP, &ts))
			return WHY("cannot read its timestamp clock");
		c->has_timestamp = true;
		c->timestamp = ts;
	}
	len = sizeof(w);
	if (getsockopt(sk, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &len))
		return WHY("cannot read its window");
	c->snd_wl1 = w.snd_wl1;
	c->snd_wnd = w.snd_wnd;
	c->max_window = w.max_window;
	c->rcv_wnd = w.rcv_wnd;
	c->rcv_wup = w.rcv_wup;
	return 0;
}

int tcp_unread_read(int sk, TcpConn *c, char *why, size_t why_len)
{
	int inq;

	if (ioctl(sk, SIOCINQ, &inq))
		return WHY("cannot read its receive queue's length");
	if (inq < 0 || (size_t)inq > QUEUE_MAX) {
		errno = EIO;
		return WHY("%d bytes to read", inq);
	}
	if (peek_queue(sk, TCP_NO_QUEUE, inq, &c->in_queue))
		return WHY("cannot read the %d bytes of its receive queue", inq);
	if (urgent_mark_ahead(sk, TCP_NO_QUEUE, &c->in_queue, inq))
		return URGENT_MARK_WHY();
	return 0;
}

bool tcp_ended_valid(const TcpConn *c)
{
	return c->in_queue.len <= QUEUE_MAX && !c->out_queue.len;
}

bool tcp_conn_valid(const TcpConn *c)
{
	return c->out_queue.len <= QUEUE_MAX && c->in_queue.len <= QUEUE_MAX &&
	       c->unsent <= c->out_queue.len && c->mss > 0 && c->mss < 65536 &&
	       (!c->has_snd_wscale || (c->snd_wscale <= 14 && c->rcv_wscale <= 14)) &&
	       (!c->fin_acked || (c->fin_sent && !c->out_queue.len)) &&
	       (!c->fins_crossed || (c->fin_sent && c->fin_received && !c->fin_acked));
}

/* Bytes into one queue of a socket in repair mode, in pieces the kernel takes. */
static int fill_queue(int sk, int queue, const uint8_t *data, size_t len)
{
	size_t chunk = CHUNK_MAX;

	if (set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue))
		return -errno;
	while (len) {
		ssize_t n = send(sk, data, len < chunk ? len : chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == ENOMEM && chunk > 1024) {
			chunk /= 2;
			continue;
		}
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		data += n;
		len -= n;
	}
	return 0;
}

/*
 * Bytes put in the receive queue in repair mode wake nobody: an epoll that watched the socket
 * before (its items are made with the process, the queues filled afterwards) would not report
 * them until more came. Setting SO_RCVLOWAT (again, to the value it has) makes the kernel check
 * its readers' threshold and wake them (tcp_set_rcvlowat calls tcp_data_ready).
 */
static int wake_readers(int sk)
{
	int lowat;

	if (get_int(sk, SOL_SOCKET, SO_RCVLOWAT, &lowat) || set_int(sk, SOL_SOCKET, SO_RCVLOWAT, lowat))
		return -errno;
	return 0;
}

int tcp_repair_make_ended(int sk, const TcpConn *c, const struct sockaddr *src, socklen_t src_len,
			  const struct sockaddr *dst, socklen_t dst_len, char *why, size_t why_len)
{
	size_t unread = c ? c->in_queue.len : 0;
	/* the abort's reset, if it leaves, falls outside the window of any connection alive */
	uint32_t snd = (c ? c->snd_una : 0) + 0x80000000u, rcv = c ? c->rcv_nxt - unread : 0;

	if (tcp_repair_set(sk, true, false))
		return WHY("cannot turn repair mode on");
	if (bind(sk, src, src_len))
		return WHY("cannot bind");
	if (set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) ||
	    set_int(sk, IPPROTO_TCP, TCP_QUEUE_SEQ, snd) ||
	    set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) ||
	    set_int(sk, IPPROTO_TCP, TCP_QUEUE_SEQ, rcv))
		return WHY("cannot set the sequence numbers");
	if (connect(sk, dst, dst_len))
		return WHY("cannot connect in repair mode");
	if (unread && (sock_buf_room(sk, SO_RCVBUF, SO_RCVBUFFORCE, unread + CHUNK_MAX) ||
		       fill_queue(sk, TCP_RECV_QUEUE, c->in_queue.data, unread)))
		return WHY("cannot refill its receive queue (%zu bytes)", unread);
	return 0;
}

int tcp_ended_settle(int sk, bool keep_error)
{
	int err;

	if (tcp_state(sk) != TCP_CLOSE)
		return -ENOTCONN;
	if ((err = tcp_repair_set(sk, false, false)) ||
	    (!keep_error && (err = get_int(sk, SOL_SOCKET, SO_ERROR, &(int){ 0 }))))
		return err;
	return 0;
}

/* Our FIN made in repair mode (as sent), not once the connection runs. */
static bool fin_in_repair(const TcpConn *c)
{
	return c->fin_sent && !c->unsent && !c->fin_received;
}

int tcp_repair_make(int sk, const TcpConn *c, const struct sockaddr *src, socklen_t src_len,
		    const struct sockaddr *dst, socklen_t dst_len, char *why, size_t why_len)
{
	struct tcp_repair_opt opts[4];
	unsigned nr = 0;
	uint32_t rcv_start = c->rcv_nxt - c->in_queue.len - c->fin_received;

	if (tcp_repair_set(sk, true, false))
		return WHY("cannot turn repair mode on");
	if (bind(sk, src, src_len))
		return WHY("cannot bind");
	if (set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) ||
	    set_int(sk, IPPROTO_TCP, TCP_QUEUE_SEQ, c->snd_una - c->fin_acked) ||
	    set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) ||
	    set_int(sk, IPPROTO_TCP, TCP_QUEUE_SEQ, rcv_start))
		return WHY("cannot set the sequence numbers");
	int user_mss = c->mss < USER_MSS_MAX ? c->mss : USER_MSS_MAX;
	if (user_mss >= USER_MSS_MIN && set_int(sk, IPPROTO_TCP, TCP_MAXSEG, user_mss))
		return WHY("cannot set its MSS");
	if (connect(sk, dst, dst_len))
		return WHY("cannot connect in repair mode");
	if (set_int(sk, IPPROTO_TCP, TCP_MAXSEG, 0))
		return WHY("cannot clear its MSS");
	opts[nr++] = (struct tcp_repair_opt){ TCPOPT_MAXSEG, c->mss };
	if (c->has_snd_wscale)
		opts[nr++] = (struct tcp_repair_opt){ TCPOPT_WINDOW, c->snd_wscale | (c->rcv_wscale << 16) };
	if (c->sack)
		opts[nr++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERMITTED, 0 };
	if (c->has_timestamp)
		opts[nr++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts, nr * sizeof(opts[0])))
		return WHY("cannot set its options (MSS, window scale, SACK, timestamps)");
	if (c->has_timestamp && set_int(sk, IPPROTO_TCP, TCP_TIMESTAMP, c->timestamp))
		return WHY("cannot set its timestamp clock");
	return 0;
}

int tcp_repair_fill(int sk, const TcpConn *c, char *why, size_t why_len)
{
	size_t sent = c->out_queue.len - c->unsent; /* into the send queue in repair mode */

	if (sock_buf_room(sk, SO_RCVBUF, SO_RCVBUFFORCE, c->in_queue.len + CHUNK_MAX) ||
	    sock_buf_room(sk, SO_SNDBUF, SO_SNDBUFFORCE, c->out_queue.len + CHUNK_MAX))
		return WHY("cannot make its buffers large enough for its queues");
	if (fill_queue(sk, TCP_RECV_QUEUE, c->in_queue.data, c->in_queue.len))
		return WHY("cannot refill its receive queue (%zu bytes)", c->in_queue.len);
	if (fill_queue(sk, TCP_SEND_QUEUE, c->out_queue.data, sent))
		return WHY("cannot refill its send queue (%zu bytes)", sent);
	struct tcp_repair_window w = {
		.snd_wl1 = c->snd_wl1, .snd_wnd = c->snd_wnd, .max_window = c->max_window,
		.rcv_wnd = c->rcv_wnd,
		/* the peer's FIN is not in the new receive sequence */
		.rcv_wup = c->fin_received && c->rcv_wup == c->rcv_nxt ? c->rcv_wup - 1 : c->rcv_wup,
	};
	if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)))
		return WHY("cannot set its window");
	if (fin_in_repair(c) && shutdown(sk, SHUT_WR))
		return WHY("cannot queue its FIN again");
	if (c->in_queue.len && wake_readers(sk))
		return WHY("cannot tell its epoll watchers of its unread bytes");
	return 0;
}

/* A socket of family in the network namespace of sk (SIOCGSKNS), stasis's own put back. */
static int socket_in_ns_of(int sk, int family, int type, int protocol)
{
	auto_close int own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	auto_close int ns = ioctl(sk, SIOCGSKNS);
	int s, err;

	if (own < 0 || ns < 0 || setns(ns, CLONE_NEWNET))
		return -errno;
	s = socket(family, type | SOCK_CLOEXEC, protocol);
	err = s < 0 ? -errno : 0;
	if (setns(own, CLONE_NEWNET)) {
		err = -errno;
		if (s >= 0)
			close(s);
	}
	return err ? err : s;
}

/* The IPv4 address of a v4 socket, or of a v4-mapped one of a v6 socket; NULL if none. */
static const void *v4_addr(const struct sockaddr_storage *sa)
{
	const struct sockaddr_in6 *s6 = (const void *)sa;

	if (sa->ss_family == AF_INET)
		return &((const struct sockaddr_in *)sa)->sin_addr;
	return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) ? &s6->sin6_addr.s6_addr[12] : NULL;
}

/*
 * A segment without data made by hand and sent to sk (connected) from its peer's address;
 * marked (TCP_SEGMENT_MARK: through the network lock) or not.
 */
static int send_from_peer(int sk, uint32_t seq, uint32_t ack, uint8_t flags, uint32_t window,
			  bool marked)
{
	struct sockaddr_storage self, peer;
	socklen_t self_len = sizeof(self), peer_len = sizeof(peer);
	int mark = TCP_SEGMENT_MARK;

	if (getsockname(sk, (struct sockaddr *)&self, &self_len) ||
	    getpeername(sk, (struct sockaddr *)&peer, &peer_len))
		return -errno;
	const void *src4 = v4_addr(&peer), *dst4 = v4_addr(&self);
	bool v4 = src4 && dst4;
	struct tcp_segment seg = {
		.family = v4 ? AF_INET : AF_INET6,
		.src = v4 ? src4 : (const void *)&((struct sockaddr_in6 *)&peer)->sin6_addr,
		.dst = v4 ? dst4 : (const void *)&((struct sockaddr_in6 *)&self)->sin6_addr,
		/* (sin_port is at the same place) */
		.sport = ((struct sockaddr_in6 *)&peer)->sin6_port,
		.dport = ((struct sockaddr_in6 *)&self)->sin6_port,
		.seq = seq,
		.ack = ack,
		.flags = flags,
		.window = window > 65535 ? 65535 : window,
	};
	int raw = socket_in_ns_of(sk, seg.family, SOCK_RAW, IPPROTO_RAW);
	if (raw < 0)
		return raw;
	int err = marked && setsockopt(raw, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) ? -errno : 0;
	if (!err)
		err = tcp_segment_send(raw, &seg);
	close(raw);
	return err;
}

/*
 * The peer's FIN, made by hand and sent to sk from the peer's address: at the sequence number
 * it had (after the bytes in_queue), acknowledging what the socket has had acknowledged
 * (write_seq, the end of its send queue, less what is still in it), with the peer's window as
 * the socket knows it.
 */
static int send_peer_fin(int sk, const TcpConn *c, uint32_t write_seq)
{
	int outq;

	if (ioctl(sk, SIOCOUTQ, &outq))
		return -errno;
	return send_from_peer(sk, c->rcv_nxt - 1, write_seq - outq, TH_FIN | TH_ACK,
			      c->snd_wnd >> (c->has_snd_wscale ? c->snd_wscale : 0), false);
}

int tcp_ended_reset(int sk)
{
	int rcv_nxt, state = TCP_ESTABLISHED, err = 0;

	if ((err = set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)) ||
	    (err = get_int(sk, IPPROTO_TCP, TCP_QUEUE_SEQ, &rcv_nxt)))
		return err;
	/* a reset is taken at exactly the next sequence number expected (RFC 5961) */
	for (int tries = 0; !err && state == TCP_ESTABLISHED && tries < 5; tries++) {
		err = send_from_peer(sk, rcv_nxt, 0, TH_RST, 0, true);
		for (int waited = 0; !err && (state = tcp_state(sk)) == TCP_ESTABLISHED && waited < 20;
		     waited++)
			usleep(1000);
	}
	return err ? err : state < 0 ? state : state != TCP_CLOSE ? -ETIMEDOUT : 0;
}

/*
 * The peer's FIN given to sk, taken when the socket leaves state from; sent again if an
 * acknowledgement of the peer's overtook it (its own then being too old).
 */
static int take_peer_fin(int sk, const TcpConn *c, uint32_t write_seq, int from)
{
	int err = 0, state = from;

	for (int tries = 0; !err && state == from && tries < 5; tries++) {
		err = send_peer_fin(sk, c, write_seq);
		for (int waited = 0; !err && (state = tcp_state(sk)) == from && waited < 20; waited++)
			usleep(1000);
	}
	return err ? err : state < 0 ? state : state == from ? -ETIMEDOUT : 0;
}

/*
 * The bytes never sent queued again (repair mode off). The buffer the program's SO_SNDBUF
 * gives may hold them less tightly than the queue its own writes made: it grows for them
 * (SO_SNDBUFFORCE) and is put back to its size after.
 */
static int queue_unsent(int sk, const TcpConn *c)
{
	size_t off = c->out_queue.len - c->unsent;
	int have = 0, err = 0;
	bool grown = false;

	while (!err && off < c->out_queue.len) {
		ssize_t n = send(sk, c->out_queue.data + off, c->out_queue.len - off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EAGAIN && !grown) {
			grown = true;
			if ((err = get_int(sk, SOL_SOCKET, SO_SNDBUF, &have)) ||
			    (err = set_int(sk, SOL_SOCKET, SO_SNDBUFFORCE, have + c->out_queue.len - off + CHUNK_MAX)))
				return err;
			continue;
		}
		if (n <= 0)
			err = n < 0 ? -errno : -EIO;
		else
			off += n;
	}
	int put_back = grown ? set_int(sk, SOL_SOCKET, SO_SNDBUFFORCE, have / 2) : 0;
	return err ? err : put_back;
}

int tcp_repair_resume(int sk, const TcpConn *c)
{
	size_t off = c->out_queue.len - c->unsent;
	bool fin_later = c->fin_sent && !fin_in_repair(c);
	int err = 0;

	/* LAST_ACK, CLOSE_WAIT: the peer's FIN came first (given in repair mode) */
	if (c->fin_received && !c->fins_crossed &&
	    (err = take_peer_fin(sk, c, c->snd_una + off, TCP_ESTABLISHED)))
		return err;
	if ((err = tcp_repair_set(sk, false, true)) || (err = queue_unsent(sk, c)))
		return err;
	if (fin_later && shutdown(sk, SHUT_WR))
		return -errno;
	/* CLOSING: ours first (FIN_WAIT1), then the peer's */
	if (c->fin_received && c->fins_crossed)
		return take_peer_fin(sk, c, c->snd_una + c->out_queue.len + 1, TCP_FIN_WAIT1);
	return 0;
}
