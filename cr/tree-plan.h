/* Which process forks which on restore, so that every one is born in its session. */
#ifndef STASIS_TREE_PLAN_H
#define STASIS_TREE_PLAN_H

#include "tree.h"

/*
 * Fills rt->plan from the inventory's tree (its entries checked already), or refuses, naming
 * the process, a tree whose sessions and groups it cannot make again.
 */
/* The inventory entry of pid (as the tree numbers it), -1 if none. */
ssize_t tree_entry_index(const Inventory *inv, uint32_t pid);
int tree_plan_make(struct restore_tree *rt);
/* The entry that entry k is first the child of when forked (-1: none in the tree, or a loop). */
ssize_t tree_plan_forked_under(const Inventory *inv, const struct tree_plan_step *plan, size_t k);

/* Is entry anc met going up from entry k through the processes that forked them? */
bool tree_plan_forked_below(const Inventory *inv, const struct tree_plan_step *plan, size_t k,
			    size_t anc);
/* Is pid forked by a helper or zombie, to be its parent's orphan? */
bool tree_plan_lifted(const struct restore_tree *rt, pid_t pid);

#endif
