/*
 * Tun/tap interfaces of the tree's network namespace (netns/net-tun.c), for net-links.c: what
 * rtnetlink tells of one (IFLA_INFO_DATA's IFLA_TUN_*), and making one again through
 * /dev/net/tun (rtnetlink cannot make them).
 */
#ifndef STASIS_NET_TUN_H
#define STASIS_NET_TUN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "nlmsg.h"
#include "image.pb-c.h"

/* The flags of a device kept: its type, packet information, vnet header, queues. */
#define NET_TUN_FLAGS (IFF_TUN | IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE)

/*
 * Dump: l (kind "tun") gets its tun message from linkinfo (its queues, attached or detached, are
 * its files': cr/files/tun.c): 0, -ENOTSUP (said) or -ENOMEM.
 */
int net_tun_keep(pid_t root, NetLink *l, const struct nlattr *linkinfo);
/*
 * Dump, stasis in the tree's namespace: the NET_TUN_FLAGS of tun/tap device name (TUNGETIFF
 * tells IFF_NOFILTER where IFF_NO_PI is). 0, or -errno (-ENODEV: no such tun/tap device).
 */
int net_tun_flags(const char *name, unsigned *flags);
/* Restore: l's tun message is whole and right. */
bool net_tun_valid(const NetLink *l);
/*
 * Restore, stasis in the tree's namespace: the device made again, down, with its index,
 * name, type, flags, owner and group, persistent (its files, attached as the tree's fds are
 * opened, take that back if it was not: cr/files/tun.c). 0 or -errno (why says more).
 */
int net_tun_make(const NetLink *l, char *why, size_t len);

#endif
