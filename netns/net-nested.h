/*
 * Network namespaces that processes of the tree made (netns/net-nested.c; cr/nested-ns.h says
 * how nested namespaces are found and made again), each saved whole; a veth between two of the
 * tree's namespaces, as the kinds of a namespace's configuration see them. A namespace of the
 * tree is named by an id: 0 for the tree's own, else the pid (in the images) of its maker.
 */
#ifndef STASIS_NET_NESTED_H
#define STASIS_NET_NESTED_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "image.h"
#include "run.h"

/*
 * Dump: e, an fd of pid (a socket), noted if it is of a family other than unix and processes
 * of the tree made network namespaces; a socket of such a namespace gets its maker
 * (e->netns_maker, which opens it at restore if several processes there share it); once every
 * process is dumped, one that would come back in another namespace than its own is refused,
 * said naming it. 0 or <0.
 */
int net_nested_note_socket(const struct run_ctx *ctx, pid_t pid, FdEntry *e);
/*
 * Dump: the maker (its pid in the images) of network namespace ns_ino if it is one a process
 * of the tree made, else 0: a file of it carried in flight (systemd keeps a service's
 * namespace so) is that process's namespace again at restore.
 */
uint32_t net_nested_maker_of(const struct run_ctx *ctx, uint64_t ns_ino);

/*
 * A mount of the tree's (of its mount namespace, mnt_maker 0, or of the nested one that pid
 * mnt_maker made) that binds the file of another network namespace than the tree's own
 * (MOUNT_NSFS, `ip netns add`), noted by the mount kinds, which run before this one (dump: once
 * classified; restore: once checked): the dump saves that namespace (one no process is in is
 * opened through the mount), the restore checks the images hold it. -ENOMEM.
 */
int net_nested_note_mount(const struct run_ctx *ctx, const MountEntry *e, uint32_t mnt_maker);
/*
 * Dump: which of the tree's network namespaces, other than the one of the scope (ctx->scope),
 * has id nsid in the namespace that rtnetlink socket nl talks in (a veth's IFLA_LINK_NETNSID):
 * its id and an fd of it (the caller's to use, not to keep). -ENOENT: none; -ENOMEM.
 */
int net_nested_ns_of(const struct run_ctx *ctx, int nl, int nsid, uint32_t *id, int *fd);
/*
 * Restore: *view, ctx in the scope of namespace id (another than ctx's) whose configuration the
 * images hold; false if there is none such.
 */
bool net_nested_scope_of(const struct run_ctx *ctx, uint32_t id, struct run_ctx *view);
/* Restore: an fd of the tree's namespace id (made at prepare), -1 if none. */
int net_nested_fd(const struct run_ctx *ctx, uint32_t id);
/* Restore: an fd of the nested namespace whose inode at dump was ns_ino (a mount binds it), -1
 * if none. */
int net_nested_fd_of(const struct run_ctx *ctx, uint64_t ns_ino);
/* Restore: is namespace id configured before the one of ctx's scope (the tree's own first, then
 * the nested ones in image order)? The side of a veth pair made first makes the pair. */
bool net_nested_made_before(const struct run_ctx *ctx, uint32_t id);

#endif
