/*
 * The network lock (netns/net-lock.c): while a tree is dumped, and while it is restored until
 * it runs, every packet of its TCP connections is dropped, so peers retransmit instead of
 * meeting a closed port.
 */
#ifndef STASIS_NET_LOCK_H
#define STASIS_NET_LOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "nft.h"
#include "run.h"

struct dump_tree;

/* Dump, the tree frozen: its connections locked (nothing without any, or --network-lock skip). */
int net_lock_dump(struct run_ctx *ctx, struct dump_tree *tr);
/* Dump: one more connection locked (one the tree holds no fd of: waiting to be accepted). */
int net_lock_add(struct run_ctx *ctx, const struct nft_conn *c);
/*
 * Dump: the socket (inode ino) at fd of pid was put in repair mode. If the tree goes on, the
 * lock turns repair off again, reaching the socket through the tree's fds at that time; if the
 * tree is killed, its sockets close in repair mode, without a packet. -ENOMEM: not noted.
 */
int net_lock_note_repaired(struct run_ctx *ctx, pid_t pid, int fd, uint64_t ino, int reuse);
/* Dump: the pending error of the closed TCP socket at fd of pid was read, which takes it; if
 * the tree goes on (the dump failed), a warning names the socket that lost it. -ENOMEM. */
int net_lock_note_error_taken(struct run_ctx *ctx, pid_t pid, int fd, int error);
/*
 * Dump over. tree_goes_on (a failure, or --leave-running): the lock goes, then repair mode.
 * Else the tree is about to be killed: the lock is kept for the restore in a table of its own
 * ("stasis-dumped-ROOT", removed by the restore); -ENOMEM: it cannot be, the dump fails.
 */
int net_lock_dump_over(struct run_ctx *ctx, bool tree_goes_on);
/* Is an nftables table of this name one of the lock's (not part of the tree's ruleset)? */
bool net_lock_table(const char *name);
/* Restore, the tree about to run: the lock goes (and the one the dump left); -ENOMEM. */
int net_lock_restore_over(struct run_ctx *ctx);

#endif
