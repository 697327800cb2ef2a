/*
 * The network lock (netns/net-lock.c): while a tree is dumped, and while it is restored until
 * it runs, every packet of its TCP connections is dropped, so peers retransmit instead of
 * meeting a closed port.
 */
#ifndef STASIS_NET_LOCK_H
#define STASIS_NET_LOCK_H

#include <stdbool.h>

#include "run.h"

struct dump_tree;

/* Dump, the tree frozen: its connections locked (nothing without any, or --network-lock skip). */
int net_lock_dump(struct run_ctx *ctx, struct dump_tree *tr);
/* Dump: sk, stasis's copy of a socket of the tree, was put in repair mode; the lock keeps it
 * (repair off when the tree goes on; closed, silently, when it is killed). */
void net_lock_keep_repaired(struct run_ctx *ctx, int sk);
/*
 * Dump over. tree_goes_on (a failure, or --leave-running): the lock goes, then repair mode.
 * Else the tree is about to be killed: the lock is kept for the restore in a table of its own
 * ("stasis-dumped-ROOT", removed by the restore).
 */
void net_lock_dump_over(struct run_ctx *ctx, bool tree_goes_on);
/* Is an nftables table of this name one of the lock's (not part of the tree's ruleset)? */
bool net_lock_table(const char *name);
/* Restore, the tree about to run: the lock goes (and the one the dump left). */
int net_lock_restore_over(struct run_ctx *ctx);

#endif
