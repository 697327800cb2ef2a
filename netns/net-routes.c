/*
 * The routes of the tree's namespace, every table (net-routes.img), over rtnetlink. Routes
 * the kernel makes by itself (for its addresses, the local table, link-local and multicast,
 * those learnt from router advertisements, cached ones) are left to it. A route is kept as
 * its header and its attributes as the kernel gave them (table, destination, gateway,
 * device, metrics, multiple paths, preference, encapsulation ...); one that names a nexthop
 * object (netns/net-nexthops.c) keeps its id alone. One with an attribute stasis does not
 * know, or one naming a nexthop object in the engine's namespace, fails the dump naming it. On restore, routes without a gateway go first, and a route whose gateway is not
 * reachable yet is tried again once the others are in.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net-links.h"
#include "net-ns.h"
#include "nlmsg.h"
#include "pstree.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

static const struct nl_attr_rule route_attrs[] = {
	{ RTA_DST, 4, 16 },        { RTA_SRC, 4, 16 },       { RTA_IIF, 4, 4 },
	{ RTA_OIF, 4, 4 },         { RTA_GATEWAY, 4, 16 },   { RTA_PRIORITY, 4, 4 },
	{ RTA_PREFSRC, 4, 16 },    { RTA_METRICS, 0, 1024 }, { RTA_MULTIPATH, 0, 16384 },
	{ RTA_FLOW, 4, 4 },        { RTA_TABLE, 4, 4 },      { RTA_MARK, 4, 4 },
	{ RTA_VIA, 2, 18 },        { RTA_PREF, 1, 1 },       { RTA_ENCAP_TYPE, 2, 2 },
	{ RTA_ENCAP, 0, 4096 },    { RTA_TTL_PROPAGATE, 1, 1 }, { RTA_NH_ID, 4, 4 },
};
/* What the kernel says of a route that is not part of it (its cache, its time left, padding). */
static const uint16_t route_dropped[] = { RTA_CACHEINFO, RTA_EXPIRES, RTA_PAD, RTA_UID };

struct routes_state {
	NetRoutes *img;
};

static struct routes_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_net_routes);
}

/* The value of attribute type of r, NULL if absent. */
static const NlAttr *attr_of(const NetRoute *r, uint16_t type)
{
	return nl_attrs_find(r->attrs, r->n_attrs, type);
}

/* "10.1.0.0/16 via 10.0.0.1 table 254" for messages. */
static const char *route_str(uint32_t family, uint32_t dst_len, const NlAttr *dst, const NlAttr *gw,
			     uint32_t table, char *buf, size_t len)
{
	char d[INET6_ADDRSTRLEN] = "default", g[INET6_ADDRSTRLEN] = "";
	size_t alen = family == AF_INET ? 4 : 16;

	if (dst && dst->value.len == alen)
		inet_ntop(family, dst->value.data, d, sizeof(d));
	if (gw && gw->value.len == alen)
		inet_ntop(family, gw->value.data, g, sizeof(g));
	snprintf(buf, len, "%s/%u%s%s table %u", d, dst_len, g[0] ? " via " : "", g, table);
	return buf;
}

static const char *net_route_str(const NetRoute *r, char *buf, size_t len)
{
	const NlAttr *t = attr_of(r, RTA_TABLE);
	uint32_t table = RT_TABLE_MAIN;

	if (t && t->value.len == 4)
		memcpy(&table, t->value.data, 4);
	return route_str(r->family, r->dst_len, attr_of(r, RTA_DST), attr_of(r, RTA_GATEWAY), table,
			 buf, len);
}

/* ---- dump ---- */

/* In the engine's namespace the tree's routes go out of one of its interfaces (attributes checked). */
static bool out_of_saved(const struct run_ctx *ctx, const NetRoute *r)
{
	const NlAttr *oif = attr_of(r, RTA_OIF);
	uint32_t ifindex;

	if (!oif || attr_of(r, RTA_MULTIPATH))
		return false;
	memcpy(&ifindex, oif->value.data, sizeof(ifindex));
	return net_links_saved(ctx, ifindex);
}

/*
 * A route naming a nexthop object is reported with the object's device and gateway too; it is
 * given back with the id alone (the kernel takes one or the other).
 */
static void nexthop_only(NetRoute *r)
{
	static const uint16_t expanded[] = { RTA_OIF, RTA_GATEWAY, RTA_MULTIPATH, RTA_VIA, RTA_ENCAP,
					     RTA_ENCAP_TYPE };
	size_t kept = 0;

	for (size_t i = 0; i < r->n_attrs; i++) {
		bool drop = false;
		for (size_t k = 0; k < ARRAY_SIZE(expanded) && !drop; k++)
			drop = (r->attrs[i]->type & NLA_TYPE_MASK) == expanded[k];
		if (drop)
			nl_attr__free_unpacked(r->attrs[i], NULL);
		else
			r->attrs[kept++] = r->attrs[i];
	}
	r->n_attrs = kept;
}

struct route_dump {
	pid_t root;
	NetRoutes *img;
	const struct run_ctx *ctx; /* the engine's namespace: only out of the interfaces saved */
	int err;
};

static int on_route(const struct nlmsghdr *h, void *arg)
{
	struct route_dump *d = arg;
	const struct rtmsg *rtm = NLMSG_DATA(h);
	char buf[128];

	if (h->nlmsg_type != RTM_NEWROUTE || (rtm->rtm_flags & RTM_F_CLONED) ||
	    rtm->rtm_protocol == RTPROT_KERNEL || rtm->rtm_protocol == RTPROT_RA)
		return 0; /* the kernel's own */
	NetRoute *r = xzalloc(sizeof(*r)), **more;
	if (!r || !(more = xreallocarray(d->img->routes, d->img->n_routes + 1, sizeof(*more)))) {
		free(r);
		return -ENOMEM;
	}
	d->img->routes = more;
	d->img->routes[d->img->n_routes++] = r;
	net_route__init(r);
	r->family = rtm->rtm_family;
	r->dst_len = rtm->rtm_dst_len;
	r->src_len = rtm->rtm_src_len;
	r->tos = rtm->rtm_tos;
	r->protocol = rtm->rtm_protocol;
	r->scope = rtm->rtm_scope;
	r->type = rtm->rtm_type;
	r->flags = rtm->rtm_flags;
	int bad = nl_attrs_keep_msg(h, sizeof(*rtm), route_attrs, ARRAY_SIZE(route_attrs),
				    route_dropped, ARRAY_SIZE(route_dropped), &r->attrs, &r->n_attrs);
	if (bad < 0)
		return bad;
	if (!bad && attr_of(r, RTA_NH_ID)) {
		if (d->ctx) /* (the engine's namespace: its nexthops are not saved) */
			bad = RTA_NH_ID;
		else
			nexthop_only(r);
	}
	if (d->ctx && !bad && !out_of_saved(d->ctx, r)) {
		d->img->n_routes--; /* the engine's */
		net_route__free_unpacked(r, NULL);
		return 0;
	}
	if (!bad && !attr_of(r, RTA_TABLE)) {
		struct {
			struct nlattr a;
			uint32_t table;
		} t = { { NLA_HDRLEN + 4, RTA_TABLE }, rtm->rtm_table };
		if (nl_attr_keep(&r->attrs, &r->n_attrs, &t.a))
			return -ENOMEM;
	}
	if (bad) {
		pr_err("dump pid %d: route %s of its network namespace has %s %u: not supported",
		       d->root, net_route_str(r, buf, sizeof(buf)),
		       bad == RTA_NH_ID ? "a nexthop object, attribute" : "attribute", bad);
		d->err = -ENOTSUP;
		return 1;
	}
	return 0;
}

static int collect_routes(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct route_dump d = { .root = net_ns_holder(ctx, tr), .ctx = net_ns_devices(ctx) ? ctx : NULL };
	NetRoutes img = NET_ROUTES__INIT;
	int err = 0;

	if (!net_ns_interfaces(ctx))
		return 0;
	auto_close int nl = nl_open(NETLINK_ROUTE);
	d.img = &img;
	for (int f = 0; f < 2 && !err && !d.err; f++) {
		struct rtmsg rtm = { .rtm_family = f ? AF_INET6 : AF_INET };
		err = nl_dump_all(nl, RTM_GETROUTE, &rtm, sizeof(rtm), on_route, &d);
	}
	if (err && !d.err && err != -ENOMEM)
		pr_err("dump pid %d: cannot list the routes of its network namespace: %s", d.root,
		       strerror(-err));
	err = d.err ?: err;
	if (!err)
		err = image_write(ctx->images_dir_fd, IMG_NET_ROUTES, run_scope_id(ctx), &img.base);
	for (size_t i = 0; i < img.n_routes; i++)
		net_route__free_unpacked(img.routes[i], NULL);
	free(img.routes);
	return err;
}

/* ---- restore ---- */

static int validate_routes(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct routes_state *st = state_of(ctx);
	char buf[128];
	int err;

	(void)rt;
	if (!net_ns_interfaces(ctx))
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_NET_ROUTES, run_scope_id(ctx), (ProtobufCMessage **)&st->img)))
		return err;
	size_t kept = 0;
	for (size_t i = 0; i < st->img->n_routes; i++) {
		NetRoute *r = st->img->routes[i];
		size_t bad = nl_attrs_check(r->attrs, r->n_attrs, route_attrs, ARRAY_SIZE(route_attrs));
		if ((r->family != AF_INET && r->family != AF_INET6) ||
		    r->dst_len > (r->family == AF_INET ? 32u : 128u) || r->src_len > 128 || r->tos > 255 ||
		    r->protocol > 255 || r->scope > 255 || r->type > 255 || bad) {
			pr_err("image net-routes.img: route %zu (%s) is invalid", i,
			       net_route_str(r, buf, sizeof(buf)));
			return -EINVAL;
		}
		if (net_ns_devices(ctx) && !out_of_saved(ctx, r))
			net_route__free_unpacked(r, NULL); /* the engine's namespace: not the tree's */
		else
			st->img->routes[kept++] = r;
	}
	st->img->n_routes = kept;
	return 0;
}

static int add_route(int nl, const NetRoute *r, char *why, size_t len)
{
	struct rtmsg rtm = { .rtm_family = r->family, .rtm_dst_len = r->dst_len,
			     .rtm_src_len = r->src_len, .rtm_tos = r->tos,
			     .rtm_table = RT_TABLE_UNSPEC, .rtm_protocol = r->protocol,
			     .rtm_scope = r->scope, .rtm_type = r->type,
			     .rtm_flags = r->flags & RTNH_F_ONLINK };
	struct nl_buf b = { 0 };

	size_t m = nl_msg_begin(&b, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, &rtm, sizeof(rtm));
	nl_put_attrs(&b, r->attrs, r->n_attrs);
	nl_msg_end(&b, m);
	int err = nl_talk(nl, &b, why, len);
	nl_buf_free(&b);
	return err == -EEXIST ? 0 : err;
}

/* Its interface's index now (one made in the engine's namespace may have another). */
static void renumber_oif(const struct run_ctx *ctx, NetRoute *r)
{
	uint32_t index;

	for (size_t i = 0; i < r->n_attrs; i++) {
		if ((r->attrs[i]->type & NLA_TYPE_MASK) != RTA_OIF)
			continue;
		memcpy(&index, r->attrs[i]->value.data, sizeof(index)); /* (4 bytes: validated) */
		index = net_links_index_now(ctx, index);
		memcpy(r->attrs[i]->value.data, &index, sizeof(index));
	}
}

/* A route's gateway may be reachable only through another route of the image: later. */
static bool try_later(int err)
{
	return err == -ENETUNREACH || err == -EINVAL || err == -ESRCH || err == -EHOSTUNREACH;
}

static int prepare_routes(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct routes_state *st = state_of(ctx);
	char why[256] = "", buf[128];
	int err = 0;

	(void)rt;
	if (!st->img)
		return 0;
	size_t n = st->img->n_routes, left = n;
	auto_free bool *done = xzalloc(n + 1);
	if (!done)
		return -ENOMEM;
	auto_close int nl = nl_open(NETLINK_ROUTE);
	if (nl < 0) {
		pr_err("restore: cannot talk rtnetlink to add the tree's routes: %s", strerror(-nl));
		return nl;
	}
	for (size_t i = 0; i < n; i++)
		renumber_oif(ctx, st->img->routes[i]);
	/* pass 0: routes without a gateway; then the others, again while some get in */
	for (int pass = 0; left; pass++) {
		size_t before = left;
		for (size_t i = 0; i < n; i++) {
			const NetRoute *r = st->img->routes[i];
			if (done[i] || (!pass && (attr_of(r, RTA_GATEWAY) || attr_of(r, RTA_MULTIPATH) ||
						  attr_of(r, RTA_VIA))))
				continue;
			err = add_route(nl, r, why, sizeof(why));
			if (err && !try_later(err)) {
				pr_err("restore: cannot add route %s: %s%s%s", net_route_str(r, buf, sizeof(buf)),
				       strerror(-err), why[0] ? ": " : "", why);
				return err;
			}
			if (!err) {
				done[i] = true;
				left--;
			}
		}
		if (pass && left == before)
			break;
	}
	for (size_t i = 0; i < n; i++) {
		if (!done[i]) {
			const NetRoute *r = st->img->routes[i];
			err = add_route(nl, r, why, sizeof(why));
			pr_err("restore: cannot add route %s: %s%s%s", net_route_str(r, buf, sizeof(buf)),
			       strerror(-err), why[0] ? ": " : "", why);
			return err ?: -EIO;
		}
	}
	return 0;
}

static void free_routes(void *state)
{
	struct routes_state *st = state;

	if (st->img)
		image_free(&st->img->base);
}

const struct tree_object_ops tree_net_routes = {
	.name = "routes",
	.per_net_ns = true,
	.state_size = sizeof(struct routes_state),
	.free_state = free_routes,
	.collect = collect_routes,
	.validate = validate_routes,
	.prepare = prepare_routes,
};
