/* IPsec (xfrm) configuration of a network namespace (netns/net-xfrm.c). */
#ifndef STASIS_NET_XFRM_H
#define STASIS_NET_XFRM_H

#include <stddef.h>

/*
 * An IPsec state or policy of the calling thread's network namespace, named into found (which
 * stays "" if none, or if the kernel has no NETLINK_XFRM): 0, or -errno.
 */
int net_xfrm_find(char *found, size_t len);

#endif
