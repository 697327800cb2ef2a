#include "tree-objects.h"
#include "util.h"

const struct tree_object_ops *const tree_objects[] = {
	&tree_pid_ns,       /* cr/pid-ns.c: first, the pids every other kind names */
	&tree_lsm,          /* cr/lsm.c: restore only, refuses a security label it cannot set */
	&tree_core_dir,     /* cr/end-as.c: where processes made to end dump core, if they must */
	&tree_shared_tables, /* cr/shared-tables.c: dump only, who shares an fd table; refuses other sharing */
	&tree_lazy_pages,   /* cr/lazy-restore.c: its server, before stasis changes namespaces */
	&tree_cow_share,    /* cr/cow-share.c: the range where forkers fill memory they share */
	&tree_image_chain,  /* cr/image-chain.c: dump only, the parent of a dump in a chain */
	&tree_dirty_track,  /* cr/dirty-track.c: dump only, the trackers stasis holds */
	&tree_page_xfer,    /* cr/page-xfer.c: dump only, the page server's session */
	&tree_cgroups,      /* cr/cgroups.c: the tree's cgroups; the root moves in (enter) */
	&tree_user_ns,      /* cr/user-ns.c: made before every other namespace; the root joins it */
	&tree_time_ns,      /* cr/time-ns.c: made at prepare, or by the process that unshares it */
	&tree_cgroup_ns,    /* cr/cgroup-ns.c: the root's, once in its cgroups, before cgroup mounts */
	&tree_mount_ns,     /* mounts/mount-ns.c: the mount tree, then the root pivots into it */
	&tree_mount_nested, /* mounts/mount-nested.c: processes' own mount namespaces (their makers) */
	&tree_net_ns,       /* netns/net-ns.c: its own network namespace, or the engine's */
	&tree_net_lock,     /* netns/net-lock.c: its TCP connections' packets dropped (in it), before
			     * its interfaces exist: no peer's segment meets a namespace without them */
	&tree_net_nested,   /* netns/net-nested.c: processes' own network namespaces, each saved whole
			     * by the kinds below marked per_net_ns; made empty before the tree's
			     * interfaces (whose veths may end in them) */
	&tree_net_links,    /* netns/net-links.c: its interfaces (the outer ends of veths too) */
	&tree_net_addrs,    /* netns/net-addrs.c: its addresses */
	&tree_net_sysctls,  /* netns/net-sysctls.c: its sysctls (per interface too) */
	&tree_net_nexthops, /* netns/net-nexthops.c: its nexthop objects (before the routes naming them) */
	&tree_net_routes,   /* netns/net-routes.c: its routes (gateways need the addresses) */
	&tree_net_rules,    /* netns/net-rules.c: its routing rules */
	&tree_net_neigh,    /* netns/net-neigh.c: its configured neighbour entries */
	&tree_net_fdb,      /* netns/net-fdb.c: its bridges' configured forwarding entries (bridges up) */
	&tree_net_qdiscs,   /* netns/net-qdiscs.c: the queueing disciplines tc added to its interfaces */
	&tree_nftables,     /* netns/nft-ruleset.c: its nftables ruleset */
	&tree_xtables,      /* netns/xtables.c: its legacy iptables tables */
	&tree_net_xfrm,     /* netns/net-xfrm.c: its IPsec policies */
	&tree_net_nested_config, /* netns/net-nested.c: the nested ones configured (the kinds above) */
	&tree_tcp_requeue,  /* netns/tcp-requeue.c: connections waiting in TCP listeners' queues */
	&tree_uts_ns,       /* cr/uts-ns.c: host and domain names */
	&tree_uts_nested,   /* cr/uts-nested.c: processes' own UTS namespaces (their makers) */
	&tree_ipc_nested,   /* cr/ipc-nested.c: processes' own IPC namespaces (their makers) */
	&tree_ipc_ns,       /* cr/ipc-ns.c: the tree's own IPC namespace and its SysV objects */
	&tree_shmem,        /* cr/shmem.c: shared anonymous memory, memfds, SysV segments */
	&tree_hugetlb_pool, /* cr/hugetlb-pool.c: restore only, the pool has the huge pages needed */
	&tree_ipc_objects,  /* cr/ipc-ns.c: its queues, semaphore sets and sysctls (after shmem) */
	&tree_host_sems,    /* cr/ipc-host-sem.c: SEM_UNDO on the host's semaphores, given back by the kill */
	&tree_seccomp,      /* cr/seccomp.c: every thread's filters, each saved once */
	&tree_ghosts,       /* cr/files/ghost.c: deleted files still open or mapped */
	&tree_detached_mounts, /* cr/files/detached-mount.c: tmpfs mounts no namespace holds */
	&tree_pipes,        /* cr/files/pipe.c */
	&tree_unix_sockets, /* cr/files/unix.c: socket pairs and connections not accepted yet */
	&tree_inet_sockets, /* cr/files/inet-diag.c: the dump's listings of UDP and TCP sockets */
	&tree_ptys,         /* cr/files/pty.c */
	&tree_mqueues,      /* cr/files/mqueue.c */
	&tree_pidfds,       /* cr/files/pidfd.c: a pidfd of a reaped process */
	&tree_posix_timer_clocks, /* cr/posix-timers.c: restore only, timers on children's clocks */
	&tree_bpf_maps,     /* cr/files/bpf-map.c: dump only, the maps met (one open file each) */
	&tree_proc_dead,    /* cr/proc-dead.c: reaped processes' /proc files: their pids, a moment */
	&tree_shared_files, /* cr/files/shared.c: open files held by several processes (last) */
};
const unsigned tree_objects_len = ARRAY_SIZE(tree_objects);
