/*
 * The kernel's view of UDP sockets (NETLINK_SOCK_DIAG): which sides shutdown() closed, a state
 * no socket option tells. One listing per network namespace, family and protocol (UDP,
 * UDP-Lite) is taken on first use and searched by inode, so that a tree of n UDP sockets costs
 * n lookups, not n walks of the kernel's whole table.
 */
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "inet.h"
#include "nlmsg.h"
#include "tree-objects.h"
#include "util.h"

struct udp_seen {
	uint64_t ino;
	uint32_t shutdown; /* the kernel's RCV_SHUTDOWN (1) | SEND_SHUTDOWN (2) */
};

/* The sockets of one namespace's listings so far, by inode. */
struct udp_snapshot {
	uint64_t netns;
	unsigned listed; /* a bit per listing taken (listing_bit) */
	struct udp_seen *socks;
	size_t n;
};

static unsigned listing_bit(int family, int protocol)
{
	return 1u << ((family == AF_INET6) * 2 + (protocol == IPPROTO_UDPLITE));
}

static int on_socket(const struct nlmsghdr *h, void *arg)
{
	struct udp_snapshot *snap = arg;
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	const struct nlattr *tb[INET_DIAG_MAX + 1];

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return 0;
	if (snap->n % 256 == 0) {
		struct udp_seen *more = xreallocarray(snap->socks, snap->n + 256, sizeof(*more));
		if (!more)
			return -ENOMEM;
		snap->socks = more;
	}
	nl_parse_msg(h, sizeof(*m), tb, INET_DIAG_MAX);
	snap->socks[snap->n++] = (struct udp_seen){ m->idiag_inode, nl_uint(tb[INET_DIAG_SHUTDOWN], 0) };
	return 0;
}

static int by_ino(const void *a, const void *b)
{
	uint64_t x = ((const struct udp_seen *)a)->ino, y = ((const struct udp_seen *)b)->ino;
	return (x > y) - (x < y);
}

/* The listing of family and protocol in the calling thread's namespace, added if need be. */
static int snapshot_list(struct udp_snapshot *snap, int family, int protocol)
{
	struct inet_diag_req_v2 req = { .sdiag_family = family, .sdiag_protocol = protocol,
					.idiag_states = ~0u };
	uint64_t netns;
	int err;

	if ((err = nl_netns_ino(&netns)))
		return err;
	if (snap->netns != netns) {
		free(snap->socks);
		*snap = (struct udp_snapshot){ .netns = netns };
	}
	if (snap->listed & listing_bit(family, protocol))
		return 0;
	if ((err = nl_sock_diag(&req, sizeof(req), on_socket, snap))) {
		free(snap->socks);
		*snap = (struct udp_snapshot){ 0 };
		return err;
	}
	snap->listed |= listing_bit(family, protocol);
	if (snap->n)
		qsort(snap->socks, snap->n, sizeof(*snap->socks), by_ino);
	return 0;
}

int udp_shutdown_dump(const struct run_ctx *ctx, InetSocket *in)
{
	struct udp_snapshot *snap = run_state(ctx, &tree_udp_sockets);
	struct udp_seen key = { .ino = in->ino };
	int err = snapshot_list(snap, in->family, in->protocol);

	if (err)
		return err;
	const struct udp_seen *found = snap->n ? bsearch(&key, snap->socks, snap->n, sizeof(key), by_ino) : NULL;
	if (!found) /* a socket never bound is in no table the kernel lists (its state untold) */
		return in->state == INET_STATE__INET_FRESH ? 0 : -ENOENT;
	if (found->shutdown & 3) {
		in->has_shutdown = true;
		in->shutdown = found->shutdown & 3;
	}
	return 0;
}

static void free_snapshot(void *state)
{
	free(((struct udp_snapshot *)state)->socks);
}

const struct tree_object_ops tree_udp_sockets = {
	.name = "UDP sockets",
	.state_size = sizeof(struct udp_snapshot),
	.free_state = free_snapshot,
};
