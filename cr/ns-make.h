/*
 * Making the tree's namespaces on restore (cr/ns-make.c). When the tree has a user namespace
 * of its own (cr/user-ns.c), a helper process made at the start of the restore creates it
 * (stasis writes its uid and gid maps) and the root's PID namespace, and then every namespace
 * the tree's user namespace owned at dump: the helper unshares one kind at a time and stasis
 * joins the result, keeping its host privilege. Every other namespace stasis makes itself (unshare), as before.
 */
#ifndef STASIS_NS_MAKE_H
#define STASIS_NS_MAKE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "image.h"
#include "run.h"

/* The user namespace kind's per-run state (run_state(ctx, &tree_user_ns)). */
struct user_ns_state {
	UserNs *img;     /* userns.img (dump: written; restore: read); NULL: stasis's own */
	pid_t helper;    /* restore: the helper, the user namespace's first process (0: none) */
	int sock;        /* stasis's end of the helper's requests, + 1 (0: none) */
	int user_fd;     /* /proc/HELPER/ns/user, + 1: the root joins it (0: none) */
	int pid_fd;      /* /proc/HELPER/ns/pid_for_children, + 1: the root's (0: none) */
	int join_fd;     /* restore: the user namespace to join (--join-ns user), + 1 (0: none):
			  * the helper enters it instead of making one */
};

/* Is the restored tree in a user namespace of its own (its root and every process)? */
bool ns_make_tree_userns(const struct run_ctx *ctx);
/* Does the restored tree's user namespace own its new namespace of kind nstype (CLONE_NEW*)? */
bool ns_make_in_tree_userns(const struct run_ctx *ctx, int nstype);

/*
 * A new namespace of kind nstype (CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWIPC) for
 * the tree, and stasis (this thread) in it: made by the helper and joined when the tree's
 * user namespace owns it, else unshare(). Says what failed.
 */
int ns_make(struct run_ctx *ctx, int nstype);

/*
 * A namespace of kind nstype that a process of the tree made, and stasis (this thread) in it:
 * made by the helper when the tree has a user namespace of its own (that one owns it, as it
 * did at dump), else unshare(). Says what failed.
 */
int ns_make_nested(struct run_ctx *ctx, int nstype);

/*
 * The tree's root, pid 1 of the new PID namespace the helper made in the tree's user
 * namespace: cloned by stasis (flags: CLONE_PARENT with --restore-sibling), it joins the user
 * namespace (after setgroups(groups) when setgroups is denied there) and makes there the
 * namespaces flags asks for (CLONE_NEWUTS). Returns its pid in stasis, 0 in the root, or a
 * negative errno (said).
 */
pid_t ns_make_clone_root(struct run_ctx *ctx, uint64_t flags, const uint32_t *groups, size_t n_groups);

/*
 * A helper process stasis forked (single-threaded) into the tree's user namespace, with every
 * capability there: what it makes (a time namespace) belongs to that one. Says what failed.
 */
int ns_make_enter_tree_userns(const struct run_ctx *ctx);
/* fn(arg) run by such a helper (stasis's copy, in its namespaces otherwise): its result. */
int ns_make_run_in_tree_userns(const struct run_ctx *ctx, int (*fn)(void *arg), void *arg);

/* The helper made, in a new user namespace with the image's maps and setgroups, or in the one
 * given to join (its maps must be the image's). */
int ns_make_start(struct run_ctx *ctx);
/* The helper killed and reaped (its namespaces live on in the tree, or go with it). */
void ns_make_stop(struct run_ctx *ctx);

/*
 * Host ids (uids if !gid, else gids) as a process of the tree takes them on: in its user
 * namespace's view when it has one (every process's ids mapped there: checked by its validate
 * step). False if one is not mapped there (left as it was).
 */
bool ns_make_tree_ids(const struct run_ctx *ctx, bool gid, uint32_t *ids, size_t n);
/* The tree's user namespace denies setgroups: its processes keep the groups they inherit. */
bool ns_make_groups_denied(const struct run_ctx *ctx);

/* ids outer (stasis's view) to the namespace's view; false: not mapped there. */
bool id_map_inner(const IdMapLine *const *map, size_t n, uint32_t outer, uint32_t *inner);

#endif
