/*
 * The tree's network namespace (netns/net-ns.c), as the kinds of its configuration
 * (interfaces, addresses, routes, rules, neighbours, sysctls, nftables) see it.
 */
#ifndef STASIS_NET_NS_H
#define STASIS_NET_NS_H

#include <stdbool.h>
#include <sys/types.h>

#include "run.h"

struct dump_tree;

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
/* Restore, net_ns_devices: the namespace given is a new empty one stasis made (--empty-ns net),
 * which the engine sets up once the tree's namespaces exist (its hook at setup-namespaces). */
bool net_ns_empty(const struct run_ctx *ctx);
/* net_ns_config or net_ns_devices: interfaces of the tree's are saved / made again. */
bool net_ns_interfaces(const struct run_ctx *ctx);
/* Is the loopback of the calling thread's network namespace up? */
bool net_ns_lo_is_up(void);
/* The loopback of the calling thread's network namespace brought up: 0 or -errno. */
int net_ns_lo_up(void);
/* stasis's own network namespace (an fd of it) while it is in the tree's; -1 if it is not. */
int net_ns_home(const struct run_ctx *ctx);
/*
 * In the scope of a network namespace a process of the tree made (netns/net-nested.c: ctx->scope
 * set, stasis in that namespace): its configuration is saved, or made again, whole; home is
 * stasis's own namespace (an fd the caller keeps), where the other end of a veth lies if it
 * is in none of the tree's namespaces.
 */
void net_ns_scope_nested(struct run_ctx *ctx, int home, pid_t maker);
/* Dump: the process the messages about the namespace name: the tree's root, or in a nested
 * namespace's scope its maker. */
pid_t net_ns_holder(const struct run_ctx *ctx, const struct dump_tree *tr);

#endif
