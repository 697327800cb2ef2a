/*
 * Connections waiting in a TCP listener's accept queue, their clients outside the tree
 * (netns/tcp-requeue.c): taken at dump (accepted by stasis, read in repair mode, closed
 * without a packet) and made again in the listener's queue, with their sequence numbers and
 * the bytes the client had sent, by hand-made segments the kernel takes as a syncookie
 * handshake's last ACK (Linux >= 6.9: bpf_sk_assign_tcp_reqsk from a TCX program).
 */
#ifndef STASIS_TCP_REQUEUE_H
#define STASIS_TCP_REQUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "image.h"
#include "nft.h"
#include "run.h"

/* Can this kernel put a connection back in an accept queue? If not, why says what it lacks.
 * (It loads the program and attaches it to lo of the calling thread's network namespace.) */
bool tcp_requeue_supported(char *why, size_t why_len);

/*
 * Dump, stasis in the tree's network namespace: what the next connection taken from in's queue
 * needs made ready (a failure then leaves it in the queue), then the first one waiting in the
 * queue of listener (stasis's copy) accepted, without waiting: its fd (close-on-exec), its
 * addresses in *c; -EAGAIN when none waits.
 */
int tcp_requeue_accept(struct run_ctx *ctx, int listener, InetSocket *in, struct nft_conn *c);

/*
 * Dump: taken, accepted by tcp_requeue_accept and locked, read in repair mode into a new entry
 * of in->waiting and closed (repair mode: nothing is sent). If the tree goes on
 * (tcp_requeue_dump_over) it is put back in the queue. taken is closed in any case; a failure
 * (what failed in why) loses that connection: its client meets a reset at its next segment.
 */
int tcp_requeue_take(struct run_ctx *ctx, int taken, InetSocket *in, char *why, size_t why_len);

/* Dump over; tree_goes_on (a failure, --leave-running): every connection taken is put back in
 * its listener's queue (before the network lock goes). */
void tcp_requeue_dump_over(struct run_ctx *ctx, bool tree_goes_on);

/* Restore, every process ready, the network still locked: the images' waiting connections
 * made again in their listeners' queues. */
int tcp_requeue_restore(struct run_ctx *ctx);

/* A waiting connection of the image is consistent with its listener (checked at validate). */
bool tcp_waiting_valid(const InetSocket *listener, const TcpWaiting *w);

#endif
