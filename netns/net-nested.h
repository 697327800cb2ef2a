/*
 * Network namespaces that processes of the tree made (netns/net-nested.c; cr/nested-ns.h says
 * how nested namespaces are found and made again): each holds its loopback alone.
 */
#ifndef STASIS_NET_NESTED_H
#define STASIS_NET_NESTED_H

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

#endif
