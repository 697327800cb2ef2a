/*
 * The kernel's view of UDP and TCP sockets (NETLINK_SOCK_DIAG), for what no socket option
 * tells: which sides shutdown() closed, and a TCP socket's TCP_MD5SIG keys (given to a listing
 * made with CAP_NET_ADMIN, as stasis's is). One listing per network namespace (the one the
 * socket was made in), family and protocol (UDP, UDP-Lite, TCP) is taken on first use and
 * searched by inode, so that a tree of n sockets costs n lookups, not n walks of the kernel's
 * whole table. Likewise the connections being set up (SYN_RECV) that TCP listeners hold, one
 * listing per namespace and family (a walk of the kernel's whole connection table each).
 */
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "inet.h"
#include "log.h"
#include "nlmsg.h"
#include "tree-objects.h"
#include "util.h"

/* INET_DIAG_MD5SIG's items (linux/tcp.h's struct tcp_diag_md5sig: that header clashes with
 * netinet/tcp.h) */
#define MD5_KEY_MAX 80
struct diag_md5_key {
	uint8_t family, prefixlen;
	uint16_t keylen;
	uint32_t addr[4];
	uint8_t key[MD5_KEY_MAX];
};

struct diag_seen {
	uint64_t ino;
	uint32_t shutdown; /* the kernel's RCV_SHUTDOWN (1) | SEND_SHUTDOWN (2) */
	uint32_t n_keys;
	struct diag_md5_key *keys; /* TCP: its TCP_MD5SIG keys (malloc'd) */
};

/* A connection being set up (SYN_RECV: a request of a listener's, no socket yet). */
struct diag_syn {
	uint8_t family;
	uint16_t port;    /* local */
	uint8_t addr[16]; /* local */
};

/* The sockets of one namespace's listings so far, by inode; its connections being set up. */
struct diag_snapshot {
	uint64_t netns;
	unsigned listed; /* a bit per listing taken (listing_bit, SYN_LISTED) */
	struct diag_seen *socks;
	size_t n, cap;
	struct diag_syn *syns;
	size_t n_syns, cap_syns;
};

/* One per network namespace that the tree's sockets were made in. */
struct diag_snapshots {
	struct diag_snapshot *ns;
	size_t n;
};

static unsigned listing_bit(int family, int protocol)
{
	return 1u << ((family == AF_INET6) * 3 + (protocol == IPPROTO_UDPLITE) + 2 * (protocol == IPPROTO_TCP));
}
#define SYN_LISTED(family) (1u << (6 + ((family) == AF_INET6)))

static int on_socket(const struct nlmsghdr *h, void *arg)
{
	struct diag_snapshot *snap = arg;
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	const struct nlattr *tb[INET_DIAG_MAX + 1];

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) || !m->idiag_inode)
		return 0; /* (a connection in its handshake, or in TIME_WAIT: no socket of a process) */
	if (xgrow(&snap->socks, &snap->cap, snap->n, sizeof(*snap->socks)))
		return -ENOMEM;
	nl_parse_msg(h, sizeof(*m), tb, INET_DIAG_MAX);
	struct diag_seen *s = &snap->socks[snap->n++];
	*s = (struct diag_seen){ m->idiag_inode, nl_uint(tb[INET_DIAG_SHUTDOWN], 0), 0, NULL };
	if (tb[INET_DIAG_MD5SIG]) {
		size_t len = tb[INET_DIAG_MD5SIG]->nla_len - NLA_HDRLEN;
		s->n_keys = len / sizeof(*s->keys);
		if (!(s->keys = xzalloc(s->n_keys * sizeof(*s->keys) + 1)))
			return -ENOMEM;
		memcpy(s->keys, (const char *)tb[INET_DIAG_MD5SIG] + NLA_HDRLEN, s->n_keys * sizeof(*s->keys));
	}
	return 0;
}

static int by_ino(const void *a, const void *b)
{
	uint64_t x = ((const struct diag_seen *)a)->ino, y = ((const struct diag_seen *)b)->ino;
	return (x > y) - (x < y);
}

static int on_syn(const struct nlmsghdr *h, void *arg)
{
	struct diag_snapshot *snap = arg;
	const struct inet_diag_msg *m = NLMSG_DATA(h);

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return 0;
	int err = xgrow(&snap->syns, &snap->cap_syns, snap->n_syns, sizeof(*snap->syns));
	if (err)
		return err;
	struct diag_syn *c = &snap->syns[snap->n_syns++];
	*c = (struct diag_syn){ m->idiag_family, ntohs(m->id.idiag_sport), { 0 } };
	memcpy(c->addr, m->id.idiag_src, sizeof(c->addr));
	return 0;
}

static void free_snapshot(struct diag_snapshot *snap)
{
	for (size_t i = 0; i < snap->n; i++)
		free(snap->socks[i].keys);
	free(snap->socks);
	free(snap->syns);
}

/* The snapshot of the network namespace socket sk was made in (a namespace of the tree's
 * processes, nested or not), added if need be; that namespace's fd in *nsfd (-1: stasis's). */
static int snapshot_of(const struct run_ctx *ctx, int sk, int *nsfd, struct diag_snapshot **out)
{
	struct diag_snapshots *all = run_state(ctx, &tree_inet_sockets);
	struct stat ns;
	uint64_t netns;
	int err;

	if ((*nsfd = ioctl(sk, SIOCGSKNS)) >= 0 && !fstat(*nsfd, &ns))
		netns = ns.st_ino;
	else if ((err = nl_netns_ino(&netns)))
		return err;
	for (size_t i = 0; i < all->n; i++)
		if (all->ns[i].netns == netns) {
			*out = &all->ns[i];
			return 0;
		}
	struct diag_snapshot *more = xreallocarray(all->ns, all->n + 1, sizeof(*more));
	if (!more)
		return -ENOMEM;
	all->ns = more;
	*out = &all->ns[all->n++];
	**out = (struct diag_snapshot){ .netns = netns };
	return 0;
}

/* The snapshot's listing of family and protocol (in namespace nsfd), taken if need be. */
static int snapshot_list(struct diag_snapshot *snap, int nsfd, int family, int protocol)
{
	/* (TCP's keys come with the socket's info only) */
	struct inet_diag_req_v2 req = { .sdiag_family = family, .sdiag_protocol = protocol,
					.idiag_ext = protocol == IPPROTO_TCP ? 1 << (INET_DIAG_INFO - 1) : 0,
					.idiag_states = ~0u };
	size_t had = snap->n;
	int err;

	if (snap->listed & listing_bit(family, protocol))
		return 0;
	if ((err = nl_sock_diag_in(nsfd, &req, sizeof(req), on_socket, snap))) {
		while (snap->n > had) /* (this listing's, kept: the others' stay valid) */
			free(snap->socks[--snap->n].keys);
		return err;
	}
	snap->listed |= listing_bit(family, protocol);
	if (snap->n)
		qsort(snap->socks, snap->n, sizeof(*snap->socks), by_ino);
	return 0;
}

/* What the kernel's listing says of inet socket in (its inode; sk, a copy of it); NULL in *out
 * for a socket in no listing (one never bound). */
static int diag_find(const struct run_ctx *ctx, int sk, const InetSocket *in, const struct diag_seen **out)
{
	struct diag_seen key = { .ino = in->ino };
	struct diag_snapshot *snap;
	int err;

	auto_close int nsfd = -1;
	if ((err = snapshot_of(ctx, sk, &nsfd, &snap)) ||
	    (err = snapshot_list(snap, nsfd, in->family, in->protocol)))
		return err;
	*out = snap->n ? bsearch(&key, snap->socks, snap->n, sizeof(key), by_ino) : NULL;
	return 0;
}

int inet_syn_recv_count(const struct run_ctx *ctx, int sk, const InetSocket *listener, unsigned *n)
{
	struct inet_diag_req_v2 req = { .sdiag_family = listener->family, .sdiag_protocol = IPPROTO_TCP,
					.idiag_states = (1u << TCP_SYN_RECV) | (1u << TCP_NEW_SYN_RECV_STATE) };
	struct diag_snapshot *snap;
	int err;

	auto_close int nsfd = -1;
	if ((err = snapshot_of(ctx, sk, &nsfd, &snap)))
		return err;
	if (!(snap->listed & SYN_LISTED(listener->family))) {
		size_t had = snap->n_syns;
		if ((err = nl_sock_diag_in(nsfd, &req, sizeof(req), on_syn, snap))) {
			snap->n_syns = had; /* (the other family's kept) */
			return err;
		}
		snap->listed |= SYN_LISTED(listener->family);
	}
	*n = 0;
	for (size_t i = 0; i < snap->n_syns; i++)
		*n += snap->syns[i].family == listener->family &&
		      inet_listener_has(listener, snap->syns[i].port, snap->syns[i].addr);
	return 0;
}

int inet_shutdown_dump(const struct run_ctx *ctx, int sk, InetSocket *in)
{
	const struct diag_seen *found;
	int err = diag_find(ctx, sk, in, &found);

	if (err)
		return err;
	if (!found) /* a socket never bound is in no table the kernel lists (its state untold) */
		return in->state == INET_STATE__INET_FRESH ? 0 : -ENOENT;
	/* (TCP: the write side is its state, a FIN sent) */
	uint32_t sides = found->shutdown & (in->protocol == IPPROTO_TCP ? 1 : 3);
	if (sides) {
		in->has_shutdown = true;
		in->shutdown = sides;
	}
	return 0;
}

int inet_md5_keys_dump(const struct run_ctx *ctx, int sk, InetSocket *in)
{
	const struct diag_seen *found;
	int err = diag_find(ctx, sk, in, &found);

	if (err || !found || !found->n_keys)
		return err;
	if (!(in->md5_keys = xzalloc(found->n_keys * sizeof(*in->md5_keys))))
		return -ENOMEM;
	for (size_t i = 0; i < found->n_keys; i++) {
		const struct diag_md5_key *k = &found->keys[i];
		TcpMd5Key *key = xzalloc(sizeof(*key));
		if (!key)
			return -ENOMEM;
		tcp_md5_key__init(key);
		in->md5_keys[in->n_md5_keys++] = key; /* freed with the image */
		key->family = k->family;
		key->prefixlen = k->prefixlen;
		key->addr.len = k->family == AF_INET ? 4 : 16;
		key->key.len = k->keylen > MD5_KEY_MAX ? MD5_KEY_MAX : k->keylen;
		if (!(key->addr.data = xzalloc(key->addr.len)) || !(key->key.data = xzalloc(key->key.len + 1)))
			return -ENOMEM;
		memcpy(key->addr.data, k->addr, key->addr.len);
		memcpy(key->key.data, k->key, key->key.len);
	}
	return 0;
}

static void free_snapshots(void *state)
{
	struct diag_snapshots *all = state;

	for (size_t i = 0; i < all->n; i++)
		free_snapshot(&all->ns[i]);
	free(all->ns);
}

const struct tree_object_ops tree_inet_sockets = {
	.name = "inet sockets",
	.state_size = sizeof(struct diag_snapshots),
	.free_state = free_snapshots,
};
