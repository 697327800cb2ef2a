/* Which process forks which on restore, so that every one is born in its session. */
#ifndef STASIS_TREE_PLAN_H
#define STASIS_TREE_PLAN_H

#include "tree.h"

/*
 * Fills rt->plan from the inventory's tree (its entries checked already), or refuses, naming
 * the process, a tree whose sessions and groups it cannot make again.
 */
int tree_plan_make(struct restore_tree *rt);

#endif
