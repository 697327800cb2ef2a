/*
 * The tree's network namespace (netns/net-ns.c), as the kinds of its configuration
 * (interfaces, addresses, routes, rules, neighbours, sysctls, nftables) see it.
 */
#ifndef STASIS_NET_NS_H
#define STASIS_NET_NS_H

#include <stdbool.h>

#include "run.h"

/*
 * Dump: the tree has a network namespace of its own that is not the engine's, and stasis is
 * in it (its configuration is saved). Restore: stasis made a new one for the tree and is in
 * it (its configuration is made again).
 */
bool net_ns_config(const struct run_ctx *ctx);
/* stasis's own network namespace (an fd of it) while it is in the tree's; -1 if it is not. */
int net_ns_home(const struct run_ctx *ctx);

#endif
