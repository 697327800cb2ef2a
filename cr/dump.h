/* Between the two ways of dumping: cr/dump.c (dump) and cr/pre-dump.c (memory only). */
#ifndef STASIS_DUMP_H
#define STASIS_DUMP_H

#include "pstree.h"

/* The images directory takes files (said if not). */
int dump_check_images_dir(const struct run_ctx *ctx);
/* Every file of dirfd named like an image: what a failed dump wrote. */
void dump_remove_images(int dirfd);
/* Each process learns its parent in the tree (parents come first): it saves shared pages. */
void dump_link_parents(struct dump_tree *tr);
/* inventory.img, last: a directory without it is not a complete image set. */
int dump_write_inventory(const struct run_ctx *ctx, const struct dump_tree *tr);

#endif
