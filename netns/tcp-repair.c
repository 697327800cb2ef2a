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
 * Half-closed connections: the kernel makes only ESTABLISHED in repair mode. Our own FIN
 * (FIN_WAIT1, FIN_WAIT2, CLOSING, LAST_ACK) is made again by shutdown(SHUT_WR) in repair mode:
 * it takes its place in the sequence after the data, as sent; a FIN the peer had acknowledged
 * (FIN_WAIT2) is sent again and acknowledged again. The peer's FIN (CLOSE_WAIT, LAST_ACK,
 * CLOSING) cannot be given back to a socket in repair mode: the receive side is shut
 * (shutdown(SHUT_RD)), so the program reads the data and then end-of-file as before, and the
 * connection carries on as one that received no FIN (its own close ends it in FIN_WAIT2,
 * which the kernel times out, instead of LAST_ACK).
 */
#include <errno.h>
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
#include "util.h"

#define QUEUE_MAX (64u << 20) /* per queue: a larger one is a damaged image */
#define CHUNK_MAX (64u << 10)

#define WHY(...) (snprintf(why, why_len, __VA_ARGS__), -errno)

int tcp_repair_set(int sk, bool on, bool probe)
{
	int v = on ? TCP_REPAIR_ON : probe ? TCP_REPAIR_OFF : TCP_REPAIR_OFF_NO_WP;

	return setsockopt(sk, IPPROTO_TCP, TCP_REPAIR, &v, sizeof(v)) ? -errno : 0;
}

static int set_int(int sk, int level, int name, int v)
{
	return setsockopt(sk, level, name, &v, sizeof(v)) ? -errno : 0;
}

static int get_int(int sk, int level, int name, int *v)
{
	socklen_t len = sizeof(*v);

	return getsockopt(sk, level, name, v, &len) ? -errno : 0;
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

/* len bytes of one queue, peeked (the receive queue from its start: SO_PEEK_OFF is put back). */
static int peek_queue(int sk, int queue, size_t len, ProtobufCBinaryData *out)
{
	int own = -1, zero = 0, err = 0;
	ssize_t n = 0;

	if (!(out->data = xzalloc(len + 1)))
		return -ENOMEM;
	out->len = len;
	if (!len)
		return 0;
	if (set_int(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue))
		return -errno;
	bool peek_off = queue == TCP_RECV_QUEUE && !get_int(sk, SOL_SOCKET, SO_PEEK_OFF, &own) && own >= 0;
	if (peek_off)
		setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero));
	/* the send queue is copied whole skbs at a time: room for all of it */
	n = recv(sk, out->data, len, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != len)
		err = -EIO;
	if (peek_off)
		setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &own, sizeof(own));
	return err;
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
	c->has_fin_sent = c->has_fin_acked = c->has_fin_received = true;
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

bool tcp_conn_valid(const TcpConn *c)
{
	return c->out_queue.len <= QUEUE_MAX && c->in_queue.len <= QUEUE_MAX &&
	       c->unsent <= c->out_queue.len && c->mss > 0 && c->mss < 65536 &&
	       (!c->has_snd_wscale || (c->snd_wscale <= 14 && c->rcv_wscale <= 14)) &&
	       (!c->fin_acked || (c->fin_sent && !c->out_queue.len));
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

/* The socket's buffer grows (SO_*BUFFORCE) if the saved queue would not fit in it. */
static int make_room(int sk, int opt, int force_opt, size_t need)
{
	int have;

	if (get_int(sk, SOL_SOCKET, opt, &have))
		return -errno;
	if ((size_t)have / 2 >= need + CHUNK_MAX)
		return 0;
	return set_int(sk, SOL_SOCKET, force_opt, need + CHUNK_MAX);
}

int tcp_repair_make(int sk, const TcpConn *c, const struct sockaddr *src, socklen_t src_len,
		    const struct sockaddr *dst, socklen_t dst_len, char *why, size_t why_len)
{
	struct tcp_repair_opt opts[4];
	unsigned nr = 0;
	/* what goes into the send queue in repair mode, as sent: all of it when our FIN follows */
	size_t sent = c->fin_sent ? c->out_queue.len : c->out_queue.len - c->unsent;
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
	if (connect(sk, dst, dst_len))
		return WHY("cannot connect in repair mode");
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
	if (make_room(sk, SO_RCVBUF, SO_RCVBUFFORCE, c->in_queue.len) ||
	    make_room(sk, SO_SNDBUF, SO_SNDBUFFORCE, c->out_queue.len))
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
	if (c->fin_sent && shutdown(sk, SHUT_WR))
		return WHY("cannot queue its FIN again");
	if (c->fin_received && shutdown(sk, SHUT_RD))
		return WHY("cannot shut its read side (the peer's FIN)");
	return 0;
}

int tcp_repair_resume(int sk, const TcpConn *c)
{
	size_t off = c->out_queue.len - c->unsent;
	int err = tcp_repair_set(sk, false, true);

	if (err || c->fin_sent)
		return err;
	while (off < c->out_queue.len) {
		ssize_t n = send(sk, c->out_queue.data + off, c->out_queue.len - off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += n;
	}
	return 0;
}
