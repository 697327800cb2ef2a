/* Between the two ways of dumping: cr/dump.c (dump) and cr/pre-dump.c (memory only). */
#ifndef STASIS_DUMP_H
#define STASIS_DUMP_H

#include <unistd.h>

#include "pstree.h"

/* Seizes of a tree caught in the middle of something that lasts a moment (a dump's
 * tree_in_the_middle, a pre-dump's process whose syscall user dispatch blocks), which runs on
 * between them for settle_pause (2, 4, ... 18 ms: 90 ms in all); something from outside the tree
 * (a process joined to its PID namespace, an engine's exec: a health check; a unix client being
 * served) is waited for longer, SETTLE_TRIES_OUTSIDER seizes (2, 4, ... 48 ms: 600 ms) */
#define SETTLE_TRIES 10
#define SETTLE_TRIES_OUTSIDER 25

static inline void settle_pause(unsigned tries)
{
	usleep(tries * 2000);
}

struct image_set;
/*
 * Runs dump (a dump or pre-dump) writing into a new image set of the images directory
 * (ctx->images_dir_fd the set's, ctx->images_dest_fd the directory's meanwhile); dump commits
 * the set into images_dir once complete (image_set_commit), else it is removed.
 */
int dump_into_image_set(struct run_ctx *ctx, int (*dump)(struct run_ctx *ctx, int images_dir,
							 struct image_set *set));
/* Every tree-wide kind's before_freeze step, in table order (nothing is frozen yet). */
int dump_before_freeze(struct run_ctx *ctx);
/* Each process learns its parent in the tree (parents come first): it saves shared pages. */
void dump_link_parents(struct dump_tree *tr);
/* inventory.img, last: a directory without it is not a complete image set. */
int dump_write_inventory(const struct run_ctx *ctx, const struct dump_tree *tr);
/* Everything the dump read into tr, freed (the processes are released or killed before). */
void dump_tree_free(struct dump_tree *tr);

#endif
