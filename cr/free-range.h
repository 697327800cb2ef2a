/* An address range free in stasis and in every restored process's saved layout (cr/free-range.c). */
#ifndef STASIS_FREE_RANGE_H
#define STASIS_FREE_RANGE_H

#include <stdint.h>

#include "tree.h"

/*
 * A range of len bytes, at a huge page's boundary, from 1 TiB up, where neither stasis's own
 * mappings nor any mapping of the tree's images lie, mapped PROT_NONE (MAP_NORESERVE) for its
 * owner to map into: its address, or 0 if there is none. Mapped by stasis before the tree is
 * made, it is free in every process of the tree until the blob unmaps it.
 */
uint64_t tree_reserve_map(const struct restore_tree *rt, uint64_t len);

#endif
