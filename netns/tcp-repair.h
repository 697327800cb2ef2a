/*
 * TCP repair (TCP_REPAIR): an established connection's state read from a socket of the tree
 * and put into a new one, without a packet on the wire (netns/tcp-repair.c).
 */
#ifndef STASIS_TCP_REPAIR_H
#define STASIS_TCP_REPAIR_H

#include <stdbool.h>
#include <sys/socket.h>

#include "image.h"

/* Repair mode on or off; off with a window probe (the peer answers with its window) or not. */
int tcp_repair_set(int sk, bool on, bool probe);
/*
 * Repair mode off for a socket of a tree that goes on: the kernel also clears SO_REUSEADDR then
 * (it forced reuse while in repair), so the value read before repair mode (reuse) is set again.
 */
int tcp_repair_leave(int sk, bool probe, int reuse);

/*
 * The connection of sk (in repair mode, in state, a TCP_* state of the kernel's) into c: its
 * sequence numbers, both queues, options and window. <0 with what failed in why.
 */
int tcp_repair_read(int sk, int state, TcpConn *c, char *why, size_t why_len);

/*
 * sk, new and unconnected, becomes the connection c from src to dst, in repair mode (left on:
 * tcp_repair_resume turns it off once the tree may run), its queues still empty. <0 with what
 * failed in why.
 */
int tcp_repair_make(int sk, const TcpConn *c, const struct sockaddr *src, socklen_t src_len,
		    const struct sockaddr *dst, socklen_t dst_len, char *why, size_t why_len);
/*
 * Then, by stasis (a socket's buffers grow beyond net.core.[rw]mem_max only with CAP_NET_ADMIN
 * over the host, which a process of a user namespace lacks): both queues of c filled, its
 * window set, its FIN queued again if it was in repair mode. <0 with what failed in why.
 */
int tcp_repair_fill(int sk, const TcpConn *c, char *why, size_t why_len);

/* Repair off on sk (a copy of a restored socket), and the bytes never sent queued again. */
int tcp_repair_resume(int sk, const TcpConn *c);

/*
 * A connection that ended (TCP_CLOSE, its peer known) or is restored closed: the bytes sk
 * received and the program has not read, into c->in_queue (sk not in repair mode).
 */
int tcp_unread_read(int sk, TcpConn *c, char *why, size_t why_len);

/*
 * sk, new, becomes the connection from src to dst, in repair mode, with the bytes c had not
 * read (c may be NULL: none), for the caller to abort it (SOCK_DESTROY) or reset it
 * (tcp_ended_reset) and settle it: tcp_ended_settle, which checks it is closed, turns repair
 * mode off and takes off the error the abort left unless keep_error. <0 with what failed in why.
 */
int tcp_repair_make_ended(int sk, const TcpConn *c, const struct sockaddr *src, socklen_t src_len,
			  const struct sockaddr *dst, socklen_t dst_len, char *why, size_t why_len);
int tcp_ended_settle(int sk, bool keep_error);

/* sk (made by tcp_repair_make_ended) reset by a RST from its peer's address, made by hand and
 * let through the network lock: closed with ECONNRESET pending. 0 or -errno. */
int tcp_ended_reset(int sk);

/* c of an ended connection is consistent (only bytes to read). */
bool tcp_ended_valid(const TcpConn *c);

/* c is consistent (lengths, scales): checked before anything is made. */
bool tcp_conn_valid(const TcpConn *c);

#endif
