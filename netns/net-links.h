/* The tree's network interfaces (netns/net-links.c), as the kinds after it need them. */
#ifndef STASIS_NET_LINKS_H
#define STASIS_NET_LINKS_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "image.h"
#include "run.h"

/*
 * Restore, the saved addresses in: each interface's IPv6 address generation mode as it was
 * (until then the kernel makes no address of its own). 0, or <0 having said what failed.
 */
int net_links_addr_gen_mode(const struct run_ctx *ctx);

/* Dump (once they are collected) and restore: is ifindex one of the interfaces saved? */
bool net_links_saved(const struct run_ctx *ctx, uint32_t ifindex);
/* ... the one that had index ifindex at dump, as saved (MAC, flags, bridge options), NULL if none. */
const NetLink *net_links_at(const struct run_ctx *ctx, uint32_t ifindex);
/* ... the name of the i-th, NULL past the last. */
const char *net_links_name(const struct run_ctx *ctx, size_t i);
/* ... the name of the one that had index ifindex at dump, NULL if none. */
const char *net_links_name_of(const struct run_ctx *ctx, uint32_t ifindex);
/* Restore, the interfaces made: the index now of the one that had index saved at dump. */
uint32_t net_links_index_now(const struct run_ctx *ctx, uint32_t saved);

/*
 * Dump done, the tree about to be killed with its own network namespace (made again by the
 * restore): its veths (their other ends, outside, with them) and macvlans (their MACs held on
 * their lower devices) are deleted and every other interface but loopback is taken down. A namespace that dies removes its nftables tables
 * before its interfaces: a peer's segment arriving in between would meet no socket and no
 * lock and be answered with a reset (the kept lock, netns/net-lock.c, would not hold); and it
 * dies in the background, its veths' outer ends a while after the tree: a restore right after
 * the dump would find their names taken. Failing only warns.
 */
void net_links_down(const struct run_ctx *ctx, pid_t root);

#endif
