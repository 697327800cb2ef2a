/*
 * The policy routing rules of the tree's namespace, IPv4 and IPv6 (net-rules.img), over
 * rtnetlink: every rule in order, the kernel's defaults too (the tree may have removed or
 * changed them). On restore the new namespace's defaults are removed and the saved rules
 * added in their order. A rule with an attribute stasis does not know fails the dump, naming
 * it.
 */
#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
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

static const struct nl_attr_rule rule_attrs[] = {
	{ FRA_DST, 4, 16 },          { FRA_SRC, 4, 16 },          { FRA_IIFNAME, 1, IFNAMSIZ },
	{ FRA_OIFNAME, 1, IFNAMSIZ }, { FRA_GOTO, 4, 4 },          { FRA_PRIORITY, 4, 4 },
	{ FRA_FWMARK, 4, 4 },        { FRA_FLOW, 4, 4 },          { FRA_TUN_ID, 8, 8 },
	{ FRA_SUPPRESS_IFGROUP, 4, 4 }, { FRA_SUPPRESS_PREFIXLEN, 4, 4 }, { FRA_TABLE, 4, 4 },
	{ FRA_FWMASK, 4, 4 },        { FRA_L3MDEV, 1, 1 },        { FRA_UID_RANGE, 8, 8 },
	{ FRA_PROTOCOL, 1, 1 },      { FRA_IP_PROTO, 1, 1 },      { FRA_SPORT_RANGE, 4, 4 },
	{ FRA_DPORT_RANGE, 4, 4 },
};
static const uint16_t rule_dropped[] = { FRA_PAD };

struct rules_state {
	NetRules *img;
};

static struct rules_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_net_rules);
}

static uint32_t rule_priority(const NetRule *r)
{
	uint32_t prio = 0;

	for (size_t i = 0; i < r->n_attrs; i++)
		if ((r->attrs[i]->type & NLA_TYPE_MASK) == FRA_PRIORITY && r->attrs[i]->value.len == 4)
			memcpy(&prio, r->attrs[i]->value.data, 4);
	return prio;
}

/* ---- dump ---- */

struct rule_dump {
	pid_t root;
	NetRules *img;
	int err;
};

/* A rule's message into an image rule; the first unknown attribute's type, or 0; -ENOMEM (*out
 * NULL if none was made). */
static int rule_of(const struct nlmsghdr *h, NetRule **out)
{
	const struct fib_rule_hdr *frh = NLMSG_DATA(h);
	NetRule *r = xzalloc(sizeof(*r));

	if (!(*out = r))
		return -ENOMEM;
	net_rule__init(r);
	r->family = frh->family;
	r->dst_len = frh->dst_len;
	r->src_len = frh->src_len;
	r->tos = frh->tos;
	r->table = frh->table;
	r->action = frh->action;
	r->flags = frh->flags;
	return nl_attrs_keep_msg(h, sizeof(*frh), rule_attrs, ARRAY_SIZE(rule_attrs), rule_dropped,
				 ARRAY_SIZE(rule_dropped), &r->attrs, &r->n_attrs);
}

/* r (from rule_of, which said bad) kept in (*v, *n): bad, or -ENOMEM. */
static int keep_rule(NetRule ***v, size_t *n, NetRule *r, int bad)
{
	NetRule **more = r ? xreallocarray(*v, *n + 1, sizeof(*more)) : NULL;

	if (!more) {
		if (r)
			net_rule__free_unpacked(r, NULL);
		return -ENOMEM;
	}
	*v = more;
	(*v)[(*n)++] = r;
	return bad;
}

static int on_rule(const struct nlmsghdr *h, void *arg)
{
	struct rule_dump *d = arg;
	NetRule *r;

	if (h->nlmsg_type != RTM_NEWRULE)
		return 0;
	int bad = rule_of(h, &r);
	if ((bad = keep_rule(&d->img->rules, &d->img->n_rules, r, bad)) < 0)
		return bad;
	if (bad) {
		pr_err("dump pid %d: routing rule %u (IPv%d) of its network namespace has attribute %d: "
		       "not supported", d->root, rule_priority(r), r->family == AF_INET ? 4 : 6, bad);
		d->err = -ENOTSUP;
		return 1;
	}
	return 0;
}

/* Every rule of family in the calling thread's namespace, through fn. */
static int list_rules(int nl, int family, int (*fn)(const struct nlmsghdr *h, void *arg), void *arg)
{
	struct fib_rule_hdr frh = { .family = family };

	return nl_dump_all(nl, RTM_GETRULE, &frh, sizeof(frh), fn, arg);
}

static int collect_rules(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct rule_dump d = { .root = net_ns_holder(ctx, tr) };
	NetRules img = NET_RULES__INIT;
	int err = 0;

	if (!net_ns_config(ctx))
		return 0;
	auto_close int nl = nl_open(NETLINK_ROUTE);
	d.img = &img;
	for (int f = 0; f < 2 && !err && !d.err; f++)
		err = list_rules(nl, f ? AF_INET6 : AF_INET, on_rule, &d);
	if (err && !d.err && err != -ENOMEM)
		pr_err("dump pid %d: cannot list the routing rules of its network namespace: %s", d.root,
		       strerror(-err));
	err = d.err ?: err;
	if (!err)
		err = image_write(ctx->images_dir_fd, IMG_NET_RULES, run_scope_id(ctx), &img.base);
	for (size_t i = 0; i < img.n_rules; i++)
		net_rule__free_unpacked(img.rules[i], NULL);
	free(img.rules);
	return err;
}

/* ---- restore ---- */

static int validate_rules(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct rules_state *st = state_of(ctx);
	int err;

	(void)rt;
	if (!net_ns_config(ctx))
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_NET_RULES, run_scope_id(ctx), (ProtobufCMessage **)&st->img)))
		return err;
	for (size_t i = 0; i < st->img->n_rules; i++) {
		const NetRule *r = st->img->rules[i];
		if ((r->family != AF_INET && r->family != AF_INET6) || r->dst_len > 128 ||
		    r->src_len > 128 || r->tos > 255 || r->table > 255 || r->action > 255 ||
		    nl_attrs_check(r->attrs, r->n_attrs, rule_attrs, ARRAY_SIZE(rule_attrs))) {
			pr_err("image net-rules.img: rule %zu (priority %u) is invalid", i, rule_priority(r));
			return -EINVAL;
		}
	}
	return 0;
}

/* RTM_NEWRULE or RTM_DELRULE of r. */
static int rule_request(int nl, uint16_t type, const NetRule *r, char *why, size_t len)
{
	struct fib_rule_hdr frh = { .family = r->family, .dst_len = r->dst_len,
				    .src_len = r->src_len, .tos = r->tos, .table = r->table,
				    .action = r->action, .flags = r->flags };
	struct nl_buf b = { 0 };

	size_t m = nl_msg_begin(&b, type, NLM_F_ACK | (type == RTM_NEWRULE ? NLM_F_CREATE : 0), &frh,
				sizeof(frh));
	nl_put_attrs(&b, r->attrs, r->n_attrs);
	nl_msg_end(&b, m);
	int err = nl_talk(nl, &b, why, len);
	nl_buf_free(&b);
	return err;
}

struct defaults {
	NetRule **v;
	size_t n;
};

static int on_default(const struct nlmsghdr *h, void *arg)
{
	struct defaults *d = arg;
	NetRule *r;

	if (h->nlmsg_type != RTM_NEWRULE)
		return 0;
	int bad = rule_of(h, &r);
	return (bad = keep_rule(&d->v, &d->n, r, bad)) < 0 ? bad : 0;
}

static int prepare_rules(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct rules_state *st = state_of(ctx);
	struct defaults dflt = { 0 };
	char why[256] = "";
	int err = 0;

	(void)rt;
	if (!st->img)
		return 0;
	auto_close int nl = nl_open(NETLINK_ROUTE);
	for (int f = 0; f < 2 && !err; f++)
		err = list_rules(nl, f ? AF_INET6 : AF_INET, on_default, &dflt);
	for (size_t i = 0; i < dflt.n && !err; i++)
		if ((err = rule_request(nl, RTM_DELRULE, dflt.v[i], why, sizeof(why))) && err != -ENOMEM)
			pr_err("restore: cannot remove the new namespace's routing rule %u: %s%s%s",
			       rule_priority(dflt.v[i]), strerror(-err), why[0] ? ": " : "", why);
	for (size_t i = 0; i < dflt.n; i++)
		net_rule__free_unpacked(dflt.v[i], NULL);
	free(dflt.v);
	for (size_t i = 0; i < st->img->n_rules && !err; i++) {
		const NetRule *r = st->img->rules[i];
		if ((err = rule_request(nl, RTM_NEWRULE, r, why, sizeof(why))) && err != -ENOMEM)
			pr_err("restore: cannot add routing rule %u (IPv%d, table %u): %s%s%s",
			       rule_priority(r), r->family == AF_INET ? 4 : 6, r->table, strerror(-err),
			       why[0] ? ": " : "", why);
	}
	return err;
}

static void free_rules(void *state)
{
	struct rules_state *st = state;

	if (st->img)
		image_free(&st->img->base);
}

const struct tree_object_ops tree_net_rules = {
	.name = "routing rules",
	.per_net_ns = true,
	.state_size = sizeof(struct rules_state),
	.free_state = free_rules,
	.collect = collect_rules,
	.validate = validate_rules,
	.prepare = prepare_rules,
};
