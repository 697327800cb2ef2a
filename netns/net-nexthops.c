/*
 * The nexthop objects of the tree's own network namespace (net-nexthops.img): what `ip
 * nexthop` makes and routing daemons (FRR's zebra) use, routes naming one by its id
 * (RTA_NH_ID, netns/net-routes.c). Each is kept as its header and attributes as the kernel
 * reports them: id, device and gateway, blackhole, encapsulation, or a group of others with
 * weights. A resilient group, or an attribute stasis does not know, fails the dump naming the
 * nexthop. On restore, once the addresses are in (a gateway must be reachable), the single
 * nexthops are added, then the groups of them, before the routes. In a namespace that is the
 * engine's, none are saved (a route of the tree's naming one fails the dump).
 */
#include <errno.h>
#include <linux/nexthop.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "log.h"
#include "net-ns.h"
#include "nlmsg.h"
#include "pstree.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

static const struct nl_attr_rule nexthop_attrs[] = {
	{ NHA_ID, 4, 4 },          { NHA_GROUP, 8, 8 * 4096 }, { NHA_GROUP_TYPE, 2, 2 },
	{ NHA_BLACKHOLE, 0, 0 },   { NHA_OIF, 4, 4 },          { NHA_GATEWAY, 4, 16 },
	{ NHA_ENCAP_TYPE, 2, 2 },  { NHA_ENCAP, 0, 4096 },     { NHA_FDB, 0, 0 },
};
/* What the kernel says of a group's reply, not of the group */
static const uint16_t nexthop_dropped[] = { STASIS_NHA_OP_FLAGS };

struct nexthops_state {
	NetNexthops *img;
};

static struct nexthops_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_net_nexthops);
}

static uint32_t id_of(const NetNexthop *n)
{
	const NlAttr *a = nl_attrs_find(n->attrs, n->n_attrs, NHA_ID);
	uint32_t id = 0;

	if (a && a->value.len == sizeof(id))
		memcpy(&id, a->value.data, sizeof(id));
	return id;
}

/* ---- dump ---- */

struct nexthop_dump {
	pid_t root;
	NetNexthops *img;
	int err;
};

static int on_nexthop(const struct nlmsghdr *h, void *arg)
{
	struct nexthop_dump *d = arg;
	const struct nhmsg *nhm = NLMSG_DATA(h);

	if (h->nlmsg_type != RTM_NEWNEXTHOP)
		return 0;
	NetNexthop *n = xzalloc(sizeof(*n)), **more;
	if (!n || !(more = xreallocarray(d->img->nexthops, d->img->n_nexthops + 1, sizeof(*more)))) {
		free(n);
		return -ENOMEM;
	}
	d->img->nexthops = more;
	d->img->nexthops[d->img->n_nexthops++] = n;
	net_nexthop__init(n);
	n->family = nhm->nh_family;
	n->protocol = nhm->nh_protocol;
	n->flags = nhm->nh_flags & RTNH_F_ONLINK; /* (its scope, dead or down are the kernel's) */
	int bad = nl_attrs_keep_msg(h, sizeof(*nhm), nexthop_attrs, ARRAY_SIZE(nexthop_attrs), nexthop_dropped,
				    ARRAY_SIZE(nexthop_dropped), &n->attrs, &n->n_attrs);
	if (bad < 0)
		return bad;
	if (bad) {
		pr_err("dump pid %d: nexthop %u of its network namespace has attribute %d%s: not supported",
		       d->root, id_of(n), bad, bad == NHA_RES_GROUP ? " (a resilient group)" : "");
		d->err = -ENOTSUP;
		return 1;
	}
	return 0;
}

static int collect_nexthops(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct nexthop_dump d = { .root = net_ns_holder(ctx, tr) };
	NetNexthops img = NET_NEXTHOPS__INIT;
	struct nhmsg nhm = { .nh_family = AF_UNSPEC };
	int err;

	if (!net_ns_config(ctx))
		return 0;
	auto_close int nl = nl_open(NETLINK_ROUTE);
	d.img = &img;
	err = nl_dump_all(nl, RTM_GETNEXTHOP, &nhm, sizeof(nhm), on_nexthop, &d);
	if (err && !d.err && err != -ENOMEM)
		pr_err("dump pid %d: cannot list the nexthops of its network namespace: %s", d.root,
		       strerror(-err));
	err = d.err ?: err;
	if (!err)
		err = image_write(ctx->images_dir_fd, IMG_NET_NEXTHOPS, run_scope_id(ctx), &img.base);
	for (size_t i = 0; i < img.n_nexthops; i++)
		net_nexthop__free_unpacked(img.nexthops[i], NULL);
	free(img.nexthops);
	return err;
}

/* ---- restore ---- */

static int validate_nexthops(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct nexthops_state *st = state_of(ctx);
	int err;

	(void)rt;
	if (!net_ns_config(ctx))
		return 0;
	if ((err = image_read_optional(ctx->images_dir_fd, IMG_NET_NEXTHOPS, run_scope_id(ctx), (ProtobufCMessage **)&st->img)))
		return err;
	for (size_t i = 0; st->img && i < st->img->n_nexthops; i++) {
		const NetNexthop *n = st->img->nexthops[i];
		bool twice = false;
		for (size_t k = 0; k < i && !twice; k++)
			twice = id_of(st->img->nexthops[k]) == id_of(n);
		if ((n->family != AF_UNSPEC && n->family != AF_INET && n->family != AF_INET6) ||
		    n->protocol > 255 || (n->flags & ~RTNH_F_ONLINK) || !id_of(n) || twice ||
		    nl_attrs_check(n->attrs, n->n_attrs, nexthop_attrs, ARRAY_SIZE(nexthop_attrs))) {
			pr_err("image net-nexthops.img: nexthop %zu (id %u) is invalid", i, id_of(n));
			return -EINVAL;
		}
	}
	return 0;
}

static int prepare_nexthops(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct nexthops_state *st = state_of(ctx);
	char why[256] = "";
	int err = 0;

	(void)rt;
	if (!st->img || !st->img->n_nexthops)
		return 0;
	auto_close int nl = nl_open(NETLINK_ROUTE);
	if (nl < 0) {
		pr_err("restore: cannot talk rtnetlink to add the tree's nexthops: %s", strerror(-nl));
		return nl;
	}
	/* the single ones, then the groups of them */
	for (size_t k = 0; k < 2 * st->img->n_nexthops && !err; k++) {
		const NetNexthop *n = st->img->nexthops[k % st->img->n_nexthops];
		if ((k < st->img->n_nexthops) == (nl_attrs_find(n->attrs, n->n_attrs, NHA_GROUP) != NULL))
			continue;
		struct nhmsg nhm = { .nh_family = n->family, .nh_protocol = n->protocol, .nh_flags = n->flags };
		struct nl_buf b = { 0 };
		size_t m = nl_msg_begin(&b, RTM_NEWNEXTHOP, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, &nhm, sizeof(nhm));
		nl_put_attrs(&b, n->attrs, n->n_attrs);
		nl_msg_end(&b, m);
		err = nl_talk(nl, &b, why, sizeof(why));
		nl_buf_free(&b);
		if (err)
			pr_err("restore: cannot add nexthop %u: %s%s%s", id_of(n), strerror(-err),
			       why[0] ? ": " : "", why);
	}
	return err;
}

static void free_nexthops(void *state)
{
	struct nexthops_state *st = state;

	if (st->img)
		image_free(&st->img->base);
}

const struct tree_object_ops tree_net_nexthops = {
	.name = "nexthops",
	.per_net_ns = true,
	.state_size = sizeof(struct nexthops_state),
	.free_state = free_nexthops,
	.collect = collect_nexthops,
	.validate = validate_nexthops,
	.prepare = prepare_nexthops,
};
