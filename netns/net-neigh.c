/*
 * Neighbour entries of the tree's namespace that were configured (net-neigh.img): permanent
 * ARP and NDP entries (`ip neigh add ... nud permanent`) and proxy entries, IPv4 and IPv6.
 * Those the kernel learnt come back by themselves.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net-ns.h"
#include "nlmsg.h"
#include "pstree.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

#define LLADDR_MAX 32

struct neigh_state {
	NetNeighs *img;
};

static struct neigh_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_net_neigh);
}

static const char *neigh_str(const NetNeigh *n, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (n->dst.len == (n->family == AF_INET ? 4u : 16u))
		inet_ntop(n->family, n->dst.data, ip, sizeof(ip));
	snprintf(buf, len, "%s%s on interface %u", n->flags & NTF_PROXY ? "proxy " : "", ip, n->ifindex);
	return buf;
}

/* ---- dump ---- */

static int on_neigh(const struct nlmsghdr *h, void *arg)
{
	NetNeighs *img = arg;
	const struct ndmsg *nd = NLMSG_DATA(h);
	const struct nlattr *tb[NDA_MAX + 1];

	if (h->nlmsg_type != RTM_NEWNEIGH || (nd->ndm_family != AF_INET && nd->ndm_family != AF_INET6))
		return 0;
	if (!(nd->ndm_flags & NTF_PROXY) && !(nd->ndm_state & NUD_PERMANENT))
		return 0; /* learnt */
	nl_parse_msg(h, sizeof(*nd), tb, NDA_MAX);
	if (!tb[NDA_DST] || nl_len(tb[NDA_DST]) != (nd->ndm_family == AF_INET ? 4u : 16u))
		return 0;
	NetNeigh *n = xzalloc(sizeof(*n)), **more;
	if (!n || !(more = xreallocarray(img->neighs, img->n_neighs + 1, sizeof(*more)))) {
		free(n);
		return -ENOMEM;
	}
	img->neighs = more;
	img->neighs[img->n_neighs++] = n;
	net_neigh__init(n);
	n->family = nd->ndm_family;
	n->ifindex = nd->ndm_ifindex;
	n->state = nd->ndm_state & NUD_PERMANENT;
	n->flags = nd->ndm_flags & (NTF_PROXY | NTF_ROUTER);
	if (nl_bytes(&n->dst, nl_data(tb[NDA_DST]), nl_len(tb[NDA_DST])))
		return -ENOMEM;
	if (tb[NDA_LLADDR] && nl_len(tb[NDA_LLADDR]) <= LLADDR_MAX) {
		n->has_lladdr = true;
		return nl_bytes(&n->lladdr, nl_data(tb[NDA_LLADDR]), nl_len(tb[NDA_LLADDR]));
	}
	return 0;
}

static int collect_neigh(struct run_ctx *ctx, struct dump_tree *tr)
{
	NetNeighs img = NET_NEIGHS__INIT;
	unsigned logged = log_errors();
	int err = 0;

	if (!net_ns_config(ctx))
		return 0;
	auto_close int nl = nl_open(NETLINK_ROUTE);
	/* each family twice: the entries, then the proxy entries */
	for (int k = 0; k < 4 && !err; k++) {
		struct ndmsg nd = { .ndm_family = k & 1 ? AF_INET6 : AF_INET, .ndm_flags = k & 2 ? NTF_PROXY : 0 };
		err = nl_dump_all(nl, RTM_GETNEIGH, &nd, sizeof(nd), on_neigh, &img);
	}
	if (err)
		log_unnamed(logged, err, "dump pid %d: cannot list the neighbour entries of its network namespace",
			    net_ns_holder(ctx, tr));
	else
		err = image_write(ctx->images_dir_fd, IMG_NET_NEIGH, run_scope_id(ctx), &img.base);
	for (size_t i = 0; i < img.n_neighs; i++)
		net_neigh__free_unpacked(img.neighs[i], NULL);
	free(img.neighs);
	return err;
}

/* ---- restore ---- */

static int validate_neigh(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct neigh_state *st = state_of(ctx);
	char buf[96];
	int err;

	(void)rt;
	if (!net_ns_config(ctx))
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_NET_NEIGH, run_scope_id(ctx), (ProtobufCMessage **)&st->img)))
		return err;
	for (size_t i = 0; i < st->img->n_neighs; i++) {
		const NetNeigh *n = st->img->neighs[i];
		if ((n->family != AF_INET && n->family != AF_INET6) ||
		    n->dst.len != (n->family == AF_INET ? 4u : 16u) || n->ifindex > INT32_MAX ||
		    (n->state & ~NUD_PERMANENT) || (n->flags & ~(NTF_PROXY | NTF_ROUTER)) ||
		    (n->has_lladdr && n->lladdr.len > LLADDR_MAX)) {
			pr_err("image net-neigh.img: entry %zu (%s) is invalid", i, neigh_str(n, buf, sizeof(buf)));
			return -EINVAL;
		}
	}
	return 0;
}

static int prepare_neigh(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct neigh_state *st = state_of(ctx);
	char why[256] = "", buf[96];
	int err = 0;

	(void)rt;
	if (!st->img)
		return 0;
	auto_close int nl = nl_open(NETLINK_ROUTE);
	for (size_t i = 0; i < st->img->n_neighs && !err; i++) {
		const NetNeigh *n = st->img->neighs[i];
		struct ndmsg nd = { .ndm_family = n->family, .ndm_ifindex = n->ifindex,
				    .ndm_state = n->state, .ndm_flags = n->flags };
		struct nl_buf b = { 0 };
		size_t m = nl_msg_begin(&b, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK, &nd, sizeof(nd));
		nl_put(&b, NDA_DST, n->dst.data, n->dst.len);
		if (n->has_lladdr)
			nl_put(&b, NDA_LLADDR, n->lladdr.data, n->lladdr.len);
		nl_msg_end(&b, m);
		err = nl < 0 ? nl : nl_talk(nl, &b, why, sizeof(why));
		nl_buf_free(&b);
		if (err)
			pr_err("restore: cannot add neighbour entry %s: %s%s%s", neigh_str(n, buf, sizeof(buf)),
			       strerror(-err), why[0] ? ": " : "", why);
	}
	return err;
}

static void free_neigh(void *state)
{
	struct neigh_state *st = state;

	if (st->img)
		image_free(&st->img->base);
}

const struct tree_object_ops tree_net_neigh = {
	.name = "neighbour entries",
	.per_net_ns = true,
	.state_size = sizeof(struct neigh_state),
	.free_state = free_neigh,
	.collect = collect_neigh,
	.validate = validate_neigh,
	.prepare = prepare_neigh,
};
