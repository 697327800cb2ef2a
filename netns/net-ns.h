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
/*
 * Dump: the tree's network namespace is the engine's (--external net), and stasis is in it:
 * the interfaces the tree made there (tun/tap, bridges, inner veth pairs) are saved with their
 * addresses, routes and sysctls. Restore: the tree is given a namespace (joined, or made
 * empty: the engine's), and stasis is in it: those saved (so, or in a namespace saved whole)
 * are made again there, with what is on them.
 */
bool net_ns_devices(const struct run_ctx *ctx);
/* net_ns_config or net_ns_devices: interfaces of the tree's are saved / made again. */
bool net_ns_interfaces(const struct run_ctx *ctx);
/* stasis's own network namespace (an fd of it) while it is in the tree's; -1 if it is not. */
int net_ns_home(const struct run_ctx *ctx);

#endif
