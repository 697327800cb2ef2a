/*
 * The kernel's view of UDP sockets (NETLINK_SOCK_DIAG): which sides shutdown() closed, a state
 * no socket option tells. One listing per network namespace (the one the socket was made in),
 * family and protocol (UDP, UDP-Lite) is taken on first use and searched by inode, so that a
 * tree of n UDP sockets costs n lookups, not n walks of the kernel's whole table.
 */
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

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

/* One per network namespace that the tree's UDP sockets were made in. */
struct udp_snapshots {
	struct udp_snapshot *ns;
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

/* The listing of family and protocol in network namespace nsfd (inode netns), added if need be. */
static int snapshot_list(struct udp_snapshots *all, int nsfd, uint64_t netns, int family,
			 int protocol, struct udp_snapshot **out)
{
	struct inet_diag_req_v2 req = { .sdiag_family = family, .sdiag_protocol = protocol,
					.idiag_states = ~0u };
	struct udp_snapshot *snap = NULL;
	int err;

	for (size_t i = 0; i < all->n && !snap; i++)
		if (all->ns[i].netns == netns)
			snap = &all->ns[i];
	if (!snap) {
		struct udp_snapshot *more = xreallocarray(all->ns, all->n + 1, sizeof(*more));
		if (!more)
			return -ENOMEM;
		all->ns = more;
		snap = &all->ns[all->n++];
		*snap = (struct udp_snapshot){ .netns = netns };
	}
	*out = snap;
	if (snap->listed & listing_bit(family, protocol))
		return 0;
	if ((err = nl_sock_diag_in(nsfd, &req, sizeof(req), on_socket, snap))) {
		free(snap->socks);
		*snap = (struct udp_snapshot){ .netns = netns };
		return err;
	}
	snap->listed |= listing_bit(family, protocol);
	if (snap->n)
		qsort(snap->socks, snap->n, sizeof(*snap->socks), by_ino);
	return 0;
}

int udp_shutdown_dump(const struct run_ctx *ctx, int sk, InetSocket *in)
{
	struct udp_snapshots *all = run_state(ctx, &tree_udp_sockets);
	struct udp_seen key = { .ino = in->ino };
	struct udp_snapshot *snap;
	struct stat ns;
	uint64_t netns;
	int err;

	/* listed where the socket was made (a namespace of the tree's processes, nested or not) */
	auto_close int nsfd = ioctl(sk, SIOCGSKNS);
	if (nsfd >= 0 && !fstat(nsfd, &ns))
		netns = ns.st_ino;
	else if ((err = nl_netns_ino(&netns)))
		return err;
	if ((err = snapshot_list(all, nsfd, netns, in->family, in->protocol, &snap)))
		return err;
	const struct udp_seen *found =
		snap->n ? bsearch(&key, snap->socks, snap->n, sizeof(key), by_ino) : NULL;
	if (!found) /* a socket never bound is in no table the kernel lists (its state untold) */
		return in->state == INET_STATE__INET_FRESH ? 0 : -ENOENT;
	if (found->shutdown & 3) {
		in->has_shutdown = true;
		in->shutdown = found->shutdown & 3;
	}
	return 0;
}

static void free_snapshots(void *state)
{
	struct udp_snapshots *all = state;

	for (size_t i = 0; i < all->n; i++)
		free(all->ns[i].socks);
	free(all->ns);
}

const struct tree_object_ops tree_udp_sockets = {
	.name = "UDP sockets",
	.state_size = sizeof(struct udp_snapshots),
	.free_state = free_snapshots,
};
