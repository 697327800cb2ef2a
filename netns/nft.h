/*
 * nftables over netlink (netns/nft.c): batches (one transaction of the kernel's each), and
 * the tables of the network lock, made and removed in one transaction each, with no nft
 * binary.
 */
#ifndef STASIS_NFT_H
#define STASIS_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nlmsg.h"

/* One TCP connection of the tree, as its own end sees it. Ports in network byte order. */
struct nft_conn {
	int family; /* AF_INET, AF_INET6 */
	uint8_t local[16], remote[16];
	uint16_t lport, rport;
};

/* A NETLINK_NETFILTER socket of the calling thread's network namespace, or <0. */
int nft_socket(void);

/* A batch: b opened (BATCH_BEGIN); its messages added; then closed, sent, every answer read:
 * 0, or the first error with the kernel's words in why. */
void nft_batch_begin(struct nl_buf *b);
int nft_batch_run(int nl, struct nl_buf *b, char *why, size_t why_len);

/*
 * Table `name` (family inet) dropping every packet of the connections, both ways (input and
 * output hooks, before conntrack), but for the segments stasis makes (TCP_SEGMENT_MARK). owner: the kernel removes the table when the socket nl
 * is closed (stasis killed included). 0, or <0 having said nothing (the caller names it).
 */
int nft_lock_table_add(int nl, const char *name, bool owner, const struct nft_conn *conns,
		       size_t n);

/* More connections into the lock table `name`. 0, or <0 having said nothing. */
int nft_lock_table_add_conns(int nl, const char *name, const struct nft_conn *conns, size_t n);

/* Table `name` removed (a missing one: 0 when missing_ok). */
int nft_table_del(int nl, const char *name, bool missing_ok);

#endif
