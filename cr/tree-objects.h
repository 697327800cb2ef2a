/*
 * The registry of tree-wide objects: state that belongs to the whole tree rather than to one
 * task (namespaces, shared memory, deleted files, pipes, sockets, ptys, message queues, ...).
 * Each kind lives in a file of its own, keeps its per-run state in the run context
 * (run_state), works out for itself whether the tree needs it, and declares the steps below;
 * any step may be left out. tree_objects[] (cr/tree-objects.c) is the one place that orders
 * them: dump and restore run each step over the kinds in that order (undo in reverse).
 */
#ifndef STASIS_TREE_OBJECTS_H
#define STASIS_TREE_OBJECTS_H

#include <stdbool.h>
#include <stddef.h>

#include "run.h"

struct dump_tree;
struct restore_tree;

struct tree_object_ops {
	const char *name;
	size_t state_size;            /* its per-run state, zeroed, from run_state() */
	/* A network namespace's configuration: the kind runs once more, in a scope of its own
	 * (run.h), for each network namespace a process of the tree made (netns/net-nested.c):
	 * collect, validate, prepare and undo, with stasis in that namespace. */
	bool per_net_ns;
	void (*free_state)(void *state); /* what the state points to, at the end of the run */

	/* Dump, before the tree is frozen: what needs no frozen tree (the parent dump's images),
	 * so that the tree is not kept frozen for it. */
	int (*before_freeze)(struct run_ctx *ctx);
	/* Dump, the tree frozen, before any task is collected. */
	int (*collect)(struct run_ctx *ctx, struct dump_tree *tr);
	/* Dump, once every task is collected: this kind's images. */
	int (*write)(struct run_ctx *ctx, struct dump_tree *tr);
	/*
	 * Dump, the image set in place, the tree still frozen and about to be killed: kills those
	 * of its processes whose exits it must see apart (cr/pstree.h: pstree_kill_one), the rest
	 * are killed together after. It cannot fail the dump (what it misses, it warns about).
	 */
	void (*kill_apart)(struct run_ctx *ctx, struct dump_tree *tr);
	/*
	 * Dump, the image set in place in images_dir and the tree gone (killed, its exit waited
	 * for) or let go (--leave-running): what only the tree's end shows.
	 */
	int (*tree_gone)(struct run_ctx *ctx, const struct dump_tree *tr, int images_dir);
	/* Dump is over, done or failed: what collect changed in stasis itself is put back. */
	void (*dump_done)(struct run_ctx *ctx);

	/*
	 * Restore, before anything is made: reads this kind's images if some task needs them,
	 * checks them and every task's reference to them; errors name the image and the object.
	 */
	int (*validate)(struct run_ctx *ctx, struct restore_tree *rt);
	/* Restore, in stasis before the tree is created: makes the objects the tree inherits. */
	int (*prepare)(struct run_ctx *ctx, struct restore_tree *rt);
	/*
	 * Restore, in the tree's root right after it is created in its new namespaces, before
	 * it makes any other process: what must be done from inside them (mounts that belong to
	 * the new PID or network namespace, pivot_root, the hostname, loopback up).
	 */
	int (*enter)(struct run_ctx *ctx, struct restore_tree *rt);
	/* Restore, once the root exists (it holds copies): stasis lets go of its own. */
	void (*close)(struct run_ctx *ctx);
	/*
	 * Restore is over. restored false: it failed, and what prepare made outside the tree
	 * goes; true: only what served the restore itself goes (temporary names), every
	 * process ready but not yet let go. What prepare makes outside the tree's own
	 * namespaces it also tells the watchdog (restore-watchdog.h), which removes it if
	 * stasis dies first.
	 */
	void (*undo)(struct run_ctx *ctx, bool restored);
};

/*
 * In restore order: pids, cgroups, the user namespace (made first of the namespaces; the root
 * joins it once in its cgroups), the time namespace, the cgroup namespace (rooted at the
 * cgroups the tree is put in), mounts, net (the namespace, the network lock, its interfaces,
 * addresses, sysctls, nexthops, routes, rules, neighbours, queueing disciplines, nftables, legacy iptables, the TCP accept queues), uts, ipc, shared objects,
 * seccomp filters, files.
 */
extern const struct tree_object_ops *const tree_objects[];
extern const unsigned tree_objects_len;

extern const struct tree_object_ops tree_pid_ns, tree_lsm, tree_core_dir, tree_cgroups, tree_cgroup_ns, tree_mount_ns,
	tree_net_ns, tree_net_links, tree_net_addrs, tree_net_sysctls, tree_net_nexthops, tree_net_routes,
	tree_net_rules, tree_net_neigh, tree_net_fdb, tree_net_qdiscs, tree_nftables, tree_xtables, tree_net_xfrm, tree_net_lock, tree_tcp_requeue, tree_uts_ns, tree_ipc_ns, tree_host_sems,
	tree_shmem, tree_hugetlb_pool, tree_ipc_objects, tree_ghosts, tree_detached_mounts, tree_pipes, tree_unix_sockets, tree_inet_sockets, tree_ptys,
	tree_mqueues, tree_pidfds, tree_posix_timer_clocks, tree_bpf_maps, tree_proc_dead, tree_shared_files, tree_shared_tables, tree_time_ns, tree_user_ns, tree_seccomp, tree_image_chain,
	tree_dirty_track, tree_page_xfer, tree_lazy_pages, tree_cow_share, tree_mount_nested, tree_uts_nested, tree_net_nested, tree_net_nested_config, tree_ipc_nested;

#endif
