/*
 * The IPv4 and IPv6 addresses of the tree's namespace's interfaces (net-addrs.img), over
 * rtnetlink: each with its prefix, peer, broadcast address, label, scope, flags, metric and
 * lifetimes, primary ones before the secondary ones of their subnet, as the kernel lists
 * them (but in the order that makes the kernel's prefix routes in theirs again, where one
 * subnet is on several interfaces: order_by_prefix_routes); IPv6 link-local ones too (an interface has one or not, as before: the kernel makes
 * none until they are in). Those the kernel makes by itself otherwise (loopback's, those from
 * router advertisements, temporary ones) are left to it; one it has made again by the time
 * the saved ones are added (127.0.0.1 when lo comes up) is found there and kept.
 * IPv6 addresses come back without duplicate address detection (net-links.c turned it off
 * until net-sysctls.c writes the saved accept_dad): they were in use, and a socket of the tree
 * may be bound to one before the restored tree runs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
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

#define KEPT_FLAGS (IFA_F_NODAD | IFA_F_HOMEADDRESS | IFA_F_MANAGETEMPADDR | IFA_F_NOPREFIXROUTE | \
		    IFA_F_MCAUTOJOIN | IFA_F_PERMANENT)
#define FOREVER 0xffffffffu

struct addrs_state {
	NetAddrs *img;
};

static struct addrs_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_net_addrs);
}

static size_t addr_len(uint32_t family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

/* "10.0.0.1/24 on ifindex 2" for messages. */
static const char *addr_str(const NetAddr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->local.len == addr_len(a->family))
		inet_ntop(a->family, a->local.data, ip, sizeof(ip));
	snprintf(buf, len, "%s/%u on interface %u", ip, a->prefixlen, a->ifindex);
	return buf;
}

/* ---- dump ---- */

struct addr_dump {
	NetAddrs *img;
	const struct run_ctx *ctx; /* the engine's namespace: only on the interfaces saved */
};

static int on_addr(const struct nlmsghdr *h, void *arg)
{
	const struct addr_dump *d = arg;
	NetAddrs *img = d->img;
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	const struct nlattr *tb[IFA_MAX + 1];

	if (h->nlmsg_type != RTM_NEWADDR || !addr_len(ifa->ifa_family))
		return 0;
	nl_parse_msg(h, sizeof(*ifa), tb, IFA_MAX);
	uint32_t flags = tb[IFA_FLAGS] ? nl_uint(tb[IFA_FLAGS], 0) : ifa->ifa_flags;
	uint32_t proto = nl_uint(tb[IFA_PROTO], IFAPROT_UNSPEC);
	const struct nlattr *local = tb[IFA_LOCAL] ?: tb[IFA_ADDRESS];
	/* (IFA_F_TEMPORARY is IPv4's IFA_F_SECONDARY) */
	if ((ifa->ifa_family == AF_INET6 && (flags & IFA_F_TEMPORARY)) || proto == IFAPROT_KERNEL_LO ||
	    proto == IFAPROT_KERNEL_RA || !local || nl_len(local) != addr_len(ifa->ifa_family))
		return 0; /* the kernel's own */
	if (d->ctx && !net_links_saved(d->ctx, ifa->ifa_index))
		return 0; /* the engine's */
	NetAddr *a = xzalloc(sizeof(*a)), **more;
	if (!a || !(more = xreallocarray(img->addrs, img->n_addrs + 1, sizeof(*more)))) {
		free(a);
		return -ENOMEM;
	}
	img->addrs = more;
	img->addrs[img->n_addrs++] = a;
	net_addr__init(a);
	a->family = ifa->ifa_family;
	a->ifindex = ifa->ifa_index;
	a->prefixlen = ifa->ifa_prefixlen;
	a->flags = flags & KEPT_FLAGS;
	a->scope = ifa->ifa_scope;
	if (nl_bytes(&a->local, nl_data(local), nl_len(local)))
		return -ENOMEM;
	if (tb[IFA_LOCAL] && tb[IFA_ADDRESS] && nl_len(tb[IFA_ADDRESS]) == nl_len(local) &&
	    memcmp(nl_data(tb[IFA_ADDRESS]), nl_data(local), nl_len(local))) {
		a->has_peer = true;
		if (nl_bytes(&a->peer, nl_data(tb[IFA_ADDRESS]), nl_len(tb[IFA_ADDRESS])))
			return -ENOMEM;
	}
	if (tb[IFA_BROADCAST] && nl_len(tb[IFA_BROADCAST]) == 4) {
		a->has_broadcast = true;
		if (nl_bytes(&a->broadcast, nl_data(tb[IFA_BROADCAST]), 4))
			return -ENOMEM;
	}
	if (nl_str(tb[IFA_LABEL]) && !(a->label = xstrdup(nl_str(tb[IFA_LABEL]))))
		return -ENOMEM;
	if (tb[IFA_CACHEINFO] && nl_len(tb[IFA_CACHEINFO]) >= sizeof(struct ifa_cacheinfo)) {
		const struct ifa_cacheinfo *ci = nl_data(tb[IFA_CACHEINFO]);
		if (ci->ifa_valid != FOREVER) {
			a->has_valid_lft = a->has_preferred_lft = true;
			a->valid_lft = ci->ifa_valid;
			a->preferred_lft = ci->ifa_prefered;
		}
	}
	if (tb[IFA_RT_PRIORITY]) {
		a->has_metric = true;
		a->metric = nl_uint(tb[IFA_RT_PRIORITY], 0);
	}
	if (tb[IFA_PROTO]) {
		a->has_proto = true;
		a->proto = proto;
	}
	return 0;
}

/* A prefix route the kernel made for an address (main table, "proto kernel"). */
struct prefix_route {
	uint32_t family, len;
	int oif;
	uint8_t dst[16];
};

struct prefix_routes {
	struct prefix_route *v; /* in the order the kernel lists them: the order a lookup meets them */
	size_t n;
};

static int on_prefix_route(const struct nlmsghdr *h, void *arg)
{
	struct prefix_routes *r = arg;
	const struct rtmsg *rtm = NLMSG_DATA(h);
	const struct nlattr *tb[RTA_MAX + 1];
	struct prefix_route *more;

	if (h->nlmsg_type != RTM_NEWROUTE || rtm->rtm_protocol != RTPROT_KERNEL || rtm->rtm_type != RTN_UNICAST ||
	    !addr_len(rtm->rtm_family))
		return 0;
	nl_parse_msg(h, sizeof(*rtm), tb, RTA_MAX);
	if (nl_uint(tb[RTA_TABLE], rtm->rtm_table) != RT_TABLE_MAIN || !tb[RTA_OIF] || !tb[RTA_DST] ||
	    nl_len(tb[RTA_DST]) != addr_len(rtm->rtm_family))
		return 0;
	if (!(more = xreallocarray(r->v, r->n + 1, sizeof(*more))))
		return -ENOMEM;
	r->v = more;
	struct prefix_route *p = &r->v[r->n++];
	memset(p, 0, sizeof(*p));
	p->family = rtm->rtm_family;
	p->len = rtm->rtm_dst_len;
	p->oif = (int)nl_uint(tb[RTA_OIF], 0);
	memcpy(p->dst, nl_data(tb[RTA_DST]), nl_len(tb[RTA_DST]));
	return 0;
}

static bool same_prefix(const struct prefix_route *x, const struct prefix_route *y)
{
	return x->family == y->family && x->len == y->len && !memcmp(x->dst, y->dst, sizeof(x->dst));
}

/* The index in r of the prefix route of address a, -1 if it has none. */
static ssize_t route_of(const struct prefix_routes *r, const NetAddr *a)
{
	struct prefix_route want = { .family = a->family, .len = a->prefixlen };

	if (a->has_peer || (a->flags & IFA_F_NOPREFIXROUTE))
		return -1;
	memcpy(want.dst, a->local.data, a->local.len);
	for (size_t b = a->prefixlen; b < sizeof(want.dst) * 8; b++)
		want.dst[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].oif == (int)a->ifindex && same_prefix(&r->v[i], &want))
			return i;
	return -1;
}

/* Must address k be added before address i? */
static bool added_before(const NetAddrs *img, const struct prefix_routes *r, const ssize_t *route, size_t k,
			 size_t i)
{
	if (k < i && img->addrs[k]->ifindex == img->addrs[i]->ifindex)
		return true; /* an earlier address of its interface */
	/* one whose route of the same subnet comes first (it is on another interface) */
	return route[i] >= 0 && route[k] >= 0 && route[k] < route[i] && same_prefix(&r->v[route[k]], &r->v[route[i]]);
}

/*
 * Addresses of one subnet on several interfaces: the kernel makes their prefix routes in the
 * order the addresses are added, and the first route is the one lookups take. The image lists
 * the addresses so that adding them in its order makes the routes in the order they have now;
 * each interface's own addresses stay in their order (the first is its source address).
 */
static int order_by_prefix_routes(int nl, NetAddrs *img)
{
	struct rtmsg rtm = { .rtm_family = AF_UNSPEC };
	struct prefix_routes r = { 0 };
	size_t n = img->n_addrs, done = 0;
	bool tie = false;

	int err = nl_dump_all(nl, RTM_GETROUTE, &rtm, sizeof(rtm), on_prefix_route, &r);
	for (size_t i = 0; !err && i < r.n && !tie; i++)
		for (size_t k = i + 1; k < r.n && !tie; k++)
			tie = same_prefix(&r.v[i], &r.v[k]) && r.v[i].oif != r.v[k].oif;
	if (err || !tie) {
		free(r.v);
		return err;
	}
	auto_free ssize_t *route = xzalloc((n + 1) * sizeof(*route));
	auto_free bool *out = xzalloc(n + 1);
	auto_free NetAddr **order = xzalloc((n + 1) * sizeof(*order));
	if (!route || !out || !order) {
		free(r.v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		route[i] = route_of(&r, img->addrs[i]);
	while (done < n) {
		size_t pick = n;
		for (size_t i = 0; i < n && pick == n; i++) {
			bool ready = !out[i];
			for (size_t k = 0; k < n && ready; k++)
				ready = out[k] || k == i || !added_before(img, &r, route, k, i);
			if (ready)
				pick = i;
		}
		for (size_t i = 0; i < n && pick == n; i++)
			if (!out[i])
				pick = i; /* (orders that cannot all be kept: as listed) */
		out[pick] = true;
		order[done++] = img->addrs[pick];
	}
	memcpy(img->addrs, order, n * sizeof(*order));
	free(r.v);
	return 0;
}

static int collect_addrs(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct ifaddrmsg ifa = { .ifa_family = AF_UNSPEC };
	NetAddrs img = NET_ADDRS__INIT;
	struct addr_dump d = { &img, net_ns_devices(ctx) ? ctx : NULL };
	unsigned logged = log_errors();
	int err;

	if (!net_ns_interfaces(ctx))
		return 0;
	auto_close int nl = nl_open(NETLINK_ROUTE);
	if (!(err = nl_dump_all(nl, RTM_GETADDR, &ifa, sizeof(ifa), on_addr, &d)))
		err = order_by_prefix_routes(nl, &img);
	if (err)
		log_unnamed(logged, err, "dump pid %d: cannot list the addresses of its network namespace",
			    net_ns_holder(ctx, tr));
	else
		err = image_write(ctx->images_dir_fd, IMG_NET_ADDRS, run_scope_id(ctx), &img.base);
	for (size_t i = 0; i < img.n_addrs; i++)
		net_addr__free_unpacked(img.addrs[i], NULL);
	free(img.addrs);
	return err;
}

/* ---- restore ---- */

static bool addr_valid(const NetAddr *a)
{
	size_t len = addr_len(a->family);

	return len && a->local.len == len && a->prefixlen <= len * 8 && a->ifindex >= 1 &&
	       a->ifindex <= INT32_MAX && !(a->flags & ~KEPT_FLAGS) && a->scope <= 255 &&
	       (!a->has_peer || a->peer.len == len) && (!a->has_broadcast || a->broadcast.len == 4) &&
	       (!a->label || strlen(a->label) < IFNAMSIZ) && (!a->has_proto || a->proto <= 255) &&
	       (!a->has_valid_lft || (a->has_preferred_lft && a->preferred_lft <= a->valid_lft));
}

static int validate_addrs(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct addrs_state *st = state_of(ctx);
	char buf[96];
	int err;

	(void)rt;
	if (!net_ns_interfaces(ctx))
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_NET_ADDRS, run_scope_id(ctx), (ProtobufCMessage **)&st->img)))
		return err;
	size_t kept = 0;
	for (size_t i = 0; i < st->img->n_addrs; i++) {
		NetAddr *a = st->img->addrs[i];
		if (!addr_valid(a)) {
			pr_err("image net-addrs.img: address %zu (%s) is invalid", i, addr_str(a, buf, sizeof(buf)));
			return -EINVAL;
		}
		if (net_ns_devices(ctx) && !net_links_saved(ctx, a->ifindex))
			net_addr__free_unpacked(a, NULL); /* the engine's namespace: not on a device of the tree */
		else
			st->img->addrs[kept++] = a;
	}
	st->img->n_addrs = kept;
	return 0;
}

static int add_addr(int nl, const NetAddr *a, char *why, size_t why_len)
{
	uint32_t flags = a->flags;
	struct ifaddrmsg ifa = { .ifa_family = a->family, .ifa_prefixlen = a->prefixlen,
				 .ifa_flags = flags & 0xff, .ifa_scope = a->scope,
				 .ifa_index = a->ifindex };
	struct nl_buf b = { 0 };

	size_t m = nl_msg_begin(&b, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, &ifa, sizeof(ifa));
	nl_put(&b, IFA_LOCAL, a->local.data, a->local.len);
	if (a->has_peer)
		nl_put(&b, IFA_ADDRESS, a->peer.data, a->peer.len);
	else
		nl_put(&b, IFA_ADDRESS, a->local.data, a->local.len);
	if (a->has_broadcast)
		nl_put(&b, IFA_BROADCAST, a->broadcast.data, a->broadcast.len);
	if (a->label)
		nl_put_str(&b, IFA_LABEL, a->label);
	nl_put_u32(&b, IFA_FLAGS, flags & ~IFA_F_PERMANENT);
	if (a->has_valid_lft) {
		struct ifa_cacheinfo ci = { .ifa_prefered = a->preferred_lft, .ifa_valid = a->valid_lft };
		nl_put(&b, IFA_CACHEINFO, &ci, sizeof(ci));
	}
	if (a->has_metric)
		nl_put_u32(&b, IFA_RT_PRIORITY, a->metric);
	if (a->has_proto)
		nl_put_u8(&b, IFA_PROTO, a->proto);
	nl_msg_end(&b, m);
	int err = nl_talk(nl, &b, why, why_len);
	nl_buf_free(&b);
	return err;
}

static int prepare_addrs(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct addrs_state *st = state_of(ctx);
	char why[256] = "", buf[96];
	int err = 0;

	(void)rt;
	if (!st->img)
		return 0;
	auto_close int nl = nl_open(NETLINK_ROUTE);
	for (size_t i = 0; i < st->img->n_addrs && !err; i++) {
		NetAddr *a = st->img->addrs[i];
		a->ifindex = net_links_index_now(ctx, a->ifindex);
		err = nl < 0 ? nl : add_addr(nl, a, why, sizeof(why));
		if (err == -EEXIST)
			err = 0; /* made by the kernel when its interface came up */
		if (err && err != -ENOMEM)
			pr_err("restore: cannot add address %s: %s%s%s", addr_str(a, buf, sizeof(buf)),
			       strerror(-err), why[0] ? ": " : "", why);
	}
	return err ?: net_links_addr_gen_mode(ctx);
}

static void free_addrs(void *state)
{
	struct addrs_state *st = state;

	if (st->img)
		image_free(&st->img->base);
}

const struct tree_object_ops tree_net_addrs = {
	.name = "network addresses",
	.per_net_ns = true,
	.state_size = sizeof(struct addrs_state),
	.free_state = free_addrs,
	.collect = collect_addrs,
	.validate = validate_addrs,
	.prepare = prepare_addrs,
};
