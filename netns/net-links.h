/* The tree's network interfaces (netns/net-links.c), as the addresses' kind needs them. */
#ifndef STASIS_NET_LINKS_H
#define STASIS_NET_LINKS_H

#include "run.h"

/*
 * Restore, the saved addresses in: each interface's IPv6 address generation mode as it was
 * (until then the kernel makes no address of its own). 0, or <0 having said what failed.
 */
int net_links_addr_gen_mode(const struct run_ctx *ctx);

/*
 * Dump done, the tree about to be killed with its own network namespace (made again by the
 * restore): its veths are deleted (their other ends, outside, with them) and every other
 * interface but loopback is taken down. A namespace that dies removes its nftables tables
 * before its interfaces: a peer's segment arriving in between would meet no socket and no
 * lock and be answered with a reset (the kept lock, netns/net-lock.c, would not hold); and it
 * dies in the background, its veths' outer ends a while after the tree: a restore right after
 * the dump would find their names taken. Failing only warns.
 */
void net_links_down(const struct run_ctx *ctx, pid_t root);

#endif
