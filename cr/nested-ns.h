/*
 * Namespaces that processes of the tree made for themselves (unshare) from the tree's: a
 * systemd service's own mount, UTS and network namespaces (cr/nested-ns.c). Each is made again
 * by one process, its maker (the topmost of the tree in it), when that process is created;
 * every other process in it descends from the maker and inherits it. The kinds are
 * mounts/mount-nested.c, cr/uts-nested.c, cr/ipc-nested.c, netns/net-nested.c and
 * cr/cgroups.c (cgroup namespaces, in cgroups.img).
 */
#ifndef STASIS_NESTED_NS_H
#define STASIS_NESTED_NS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "image.h"
#include "tree.h"

/* Dump: one namespace of a kind that is not the root's. */
struct nested_ns {
	uint64_t id;            /* its inode (/proc/PID/ns/KIND) */
	size_t *members;        /* indexes into tr->tasks, the maker first */
	size_t n;
	ssize_t from;           /* the nested namespace the maker's parent is in, -1: the tree's */
};

/*
 * Dump: the namespaces of kind ("mnt", "uts") that processes of tr are in other than the
 * root's, in tree order (one made from another after it). Refuses, naming the pid and the
 * namespace, a spread a restore cannot make again: stasis's own namespace under a root in
 * another, a namespace whose processes do not all descend from its topmost one.
 */
int nested_ns_find(const struct dump_tree *tr, const char *kind, struct nested_ns **out, size_t *n);
void nested_ns_free(struct nested_ns *v, size_t n);

/*
 * Restore: the image of a kind of nested namespaces (type) read into *img when the inventory
 * lists it (listed), else *img stays NULL and a file of that name is refused. 0 or <0, said.
 */
int nested_ns_image_read(int images_dir, bool listed, enum image_type type, ProtobufCMessage **img);

/* Restore: one namespace as an image lists it. */
struct nested_ns_view {
	uint32_t maker;
	const uint32_t *pids;   /* the maker first */
	size_t n;
};

/*
 * Restore: the namespaces of image (its name for messages) checked against the tree and how
 * it is made (rt->plan): every pid a live process, in one namespace at most; the maker first,
 * not the root, its parent outside it, in the tree's or an earlier one; every other member's
 * parent in it; every process forked by one in the namespace it must inherit.
 */
int nested_ns_validate(const struct restore_tree *rt, const char *image, const struct nested_ns_view *v,
		       size_t n);

/* Restore: the namespace of v that pid makes (-1: none). */
ssize_t nested_ns_made_by(const struct nested_ns_view *v, size_t n, pid_t pid);

/*
 * Restore, in each new process of the tree (non-root) before it forks any: the namespaces it
 * makes (a maker), unshared and set up as saved. Errors are said, naming the pid.
 */
int uts_nested_make(const struct run_ctx *ctx, pid_t pid);   /* cr/uts-nested.c */
int ipc_nested_make(const struct run_ctx *ctx, pid_t pid);   /* cr/ipc-nested.c */
int mount_nested_make(const struct run_ctx *ctx, pid_t pid); /* mounts/mount-nested.c */
int net_nested_make(const struct run_ctx *ctx, pid_t pid);   /* netns/net-nested.c */
int cgroup_nested_make(const struct run_ctx *ctx, pid_t pid); /* cr/cgroups.c */

#endif
