/*
 * Chains of dumps (iterative migration): a dump or pre-dump made with --prev-images-dir keeps
 * only where the pages unchanged since that earlier dump are. The earlier directory is
 * DIR/parent (a symlink, as criu lays it out), its own earlier one DIR/parent/parent, and so
 * on; a page run names how many links up its pages image is (page_run.chain_depth).
 */
#ifndef STASIS_IMAGE_CHAIN_H
#define STASIS_IMAGE_CHAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "image.h"
#include "run.h"

/* The longest chain: a page unchanged for longer is saved again. */
#define CHAIN_MAX_DEPTH 64

/* Where a saved page's data is: pages-PID.img, depth parent links up, at byte off. */
struct page_loc {
	uint32_t depth;
	uint32_t pid;
	uint64_t off;
};

/*
 * Dump: DIR/parent made from --prev-images-dir (collect), its page tables read on demand,
 * --auto-dedup (write: holes punched in the chain's pages images where no page of this dump
 * points any more).
 */
extern const struct tree_object_ops tree_image_chain;

/* DIR/parent -> prev (a symlink left by an earlier dump is replaced); dir_name for messages. */
int chain_make_link(int dirfd, const char *dir_name, const char *prev);
/* Whether this dump has a parent. */
bool chain_has_parent(const struct run_ctx *ctx);
/* The parent's pagemap-VPID.img, read and checked before the tree was frozen, handed over once
 * (the caller frees it); *pm NULL if the parent has none for vpid. */
int chain_parent_pagemap(const struct run_ctx *ctx, uint32_t vpid, Pagemap **pm);
/*
 * Where the parent's pagemap pm (of process vpid) keeps page vaddr, as this dump names it
 * (one link further up); false if it holds no such page, or the chain would grow too long.
 * *hint is the run the last lookup ended at: lookups in rising order walk on from there.
 */
bool chain_parent_page(const Pagemap *pm, uint32_t vpid, uint64_t vaddr, struct page_loc *loc,
		       size_t *hint);

/* Restore: pages-PID.img depth links up from dirfd, checked; *nr_pages its page count. */
int chain_pages_open(int dirfd, uint32_t depth, uint32_t pid, uint64_t *nr_pages);
/* "parent/parent/pages-7.img" for messages. */
const char *chain_pages_name(char *buf, size_t len, uint32_t depth, uint32_t pid);

#endif
