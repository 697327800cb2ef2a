/* The tree's network interfaces (netns/net-links.c), as the addresses' kind needs them. */
#ifndef STASIS_NET_LINKS_H
#define STASIS_NET_LINKS_H

#include "run.h"

/*
 * Restore, the saved addresses in: each interface's IPv6 address generation mode as it was
 * (until then the kernel makes no address of its own). 0, or <0 having said what failed.
 */
int net_links_addr_gen_mode(const struct run_ctx *ctx);

#endif
