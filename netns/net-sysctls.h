/* The sysctls of the tree's network namespace (netns/net-sysctls.c, tree_net_sysctls). */
#ifndef STASIS_NET_SYSCTLS_H
#define STASIS_NET_SYSCTLS_H

#include <sys/types.h>

#include "run.h"

/*
 * Restore in a new empty namespace (--empty-ns net), once the engine's hooks have set it up
 * (after setup-namespaces; root's host pid): the namespace's own sysctls written as the tree
 * had them (stasis goes into it and back). 0 if there are none; -errno, said.
 */
int net_sysctls_after_engine(struct run_ctx *ctx, pid_t root);

#endif
