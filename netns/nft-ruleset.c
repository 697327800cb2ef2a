/*
 * The nftables ruleset of the tree's namespace (nftables.img), over nftables netlink (no nft
 * binary): every table of every family with its chains, named objects (counters, quotas,
 * limits, ...), flowtables, sets and maps with their elements, and rules, each object kept as
 * the attributes the kernel reported for it (what names it, and its content: hooks, policies,
 * expressions, keys, timeouts, counters' values). The kernel's bookkeeping (handles, use
 * counts) is left out. On restore the whole ruleset is made again in one transaction,
 * tables first, then per table its chains, objects, flowtables, sets with their elements, and
 * rules in their order: all of it, or nothing (the error names the object the kernel
 * refused). The network lock's own tables are not part of it. A table owned by a process's
 * netlink socket (NFT_TABLE_F_OWNER), a chain bound to a rule (NFT_CHAIN_BINDING), an
 * attribute stasis does not know fail the dump, naming them. Legacy iptables tables (x_tables)
 * are netns/xtables.c's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net-lock.h"
#include "net-ns.h"
#include "nft.h"
#include "nlmsg.h"
#include "pstree.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

#define NAME_LEN 1, 256
#define BLOB 0, 65535

static const struct nl_attr_rule table_keep[] = {
	{ NFTA_TABLE_NAME, NAME_LEN }, { NFTA_TABLE_FLAGS, 4, 4 }, { NFTA_TABLE_USERDATA, BLOB },
};
static const uint16_t table_drop[] = { NFTA_TABLE_USE, NFTA_TABLE_HANDLE, NFTA_TABLE_PAD,
				       NFTA_TABLE_OWNER };
static const struct nl_attr_rule chain_keep[] = {
	{ NFTA_CHAIN_TABLE, NAME_LEN }, { NFTA_CHAIN_NAME, NAME_LEN }, { NFTA_CHAIN_HOOK, BLOB },
	{ NFTA_CHAIN_POLICY, 4, 4 },    { NFTA_CHAIN_TYPE, NAME_LEN }, { NFTA_CHAIN_COUNTERS, BLOB },
	{ NFTA_CHAIN_FLAGS, 4, 4 },     { NFTA_CHAIN_USERDATA, BLOB },
};
static const uint16_t chain_drop[] = { NFTA_CHAIN_HANDLE, NFTA_CHAIN_USE, NFTA_CHAIN_PAD,
				       NFTA_CHAIN_ID };
static const struct nl_attr_rule obj_keep[] = {
	{ NFTA_OBJ_TABLE, NAME_LEN }, { NFTA_OBJ_NAME, NAME_LEN }, { NFTA_OBJ_TYPE, 4, 4 },
	{ NFTA_OBJ_DATA, BLOB },      { NFTA_OBJ_USERDATA, BLOB },
};
static const uint16_t obj_drop[] = { NFTA_OBJ_USE, NFTA_OBJ_HANDLE, NFTA_OBJ_PAD };
static const struct nl_attr_rule flowtable_keep[] = {
	{ NFTA_FLOWTABLE_TABLE, NAME_LEN }, { NFTA_FLOWTABLE_NAME, NAME_LEN },
	{ NFTA_FLOWTABLE_HOOK, BLOB },      { NFTA_FLOWTABLE_FLAGS, 4, 4 },
};
static const uint16_t flowtable_drop[] = { NFTA_FLOWTABLE_USE, NFTA_FLOWTABLE_HANDLE,
					   NFTA_FLOWTABLE_PAD };
static const struct nl_attr_rule set_keep[] = {
	{ NFTA_SET_TABLE, NAME_LEN },  { NFTA_SET_NAME, NAME_LEN },    { NFTA_SET_FLAGS, 4, 4 },
	{ NFTA_SET_KEY_TYPE, 4, 4 },   { NFTA_SET_KEY_LEN, 4, 4 },     { NFTA_SET_DATA_TYPE, 4, 4 },
	{ NFTA_SET_DATA_LEN, 4, 4 },   { NFTA_SET_POLICY, 4, 4 },      { NFTA_SET_DESC, BLOB },
	{ NFTA_SET_TIMEOUT, 8, 8 },    { NFTA_SET_GC_INTERVAL, 4, 4 }, { NFTA_SET_USERDATA, BLOB },
	{ NFTA_SET_OBJ_TYPE, 4, 4 },   { NFTA_SET_EXPR, BLOB },        { NFTA_SET_EXPRESSIONS, BLOB },
};
/* newer kernels than these headers also report the set's backend (19) and size (20) */
static const uint16_t set_drop[] = { NFTA_SET_ID, NFTA_SET_PAD, NFTA_SET_HANDLE, 19, 20 };
static const struct nl_attr_rule elems_keep[] = {
	{ NFTA_SET_ELEM_LIST_TABLE, NAME_LEN }, { NFTA_SET_ELEM_LIST_SET, NAME_LEN },
	{ NFTA_SET_ELEM_LIST_ELEMENTS, BLOB },
};
static const uint16_t elems_drop[] = { NFTA_SET_ELEM_LIST_SET_ID };
static const struct nl_attr_rule rule_keep[] = {
	{ NFTA_RULE_TABLE, NAME_LEN }, { NFTA_RULE_CHAIN, NAME_LEN }, { NFTA_RULE_EXPRESSIONS, BLOB },
	{ NFTA_RULE_COMPAT, BLOB },    { NFTA_RULE_USERDATA, BLOB },
};
static const uint16_t rule_drop[] = { NFTA_RULE_HANDLE, NFTA_RULE_POSITION, NFTA_RULE_PAD,
				      NFTA_RULE_ID, NFTA_RULE_POSITION_ID, NFTA_RULE_CHAIN_ID };

/* Each kind of object, in the order a table's objects are made again. */
static const struct nft_kind {
	uint16_t get, make;
	const char *what;
	uint16_t table_attr, name_attr;
	const struct nl_attr_rule *keep;
	size_t nr_keep;
	const uint16_t *drop;
	size_t nr_drop;
} kinds[] = {
#define KIND(GET, NEW, what, T, N, k, d) { GET, NEW, what, T, N, k, ARRAY_SIZE(k), d, ARRAY_SIZE(d) }
	KIND(NFT_MSG_GETTABLE, NFT_MSG_NEWTABLE, "table", NFTA_TABLE_NAME, NFTA_TABLE_NAME, table_keep, table_drop),
	KIND(NFT_MSG_GETCHAIN, NFT_MSG_NEWCHAIN, "chain", NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, chain_keep, chain_drop),
	KIND(NFT_MSG_GETOBJ, NFT_MSG_NEWOBJ, "object", NFTA_OBJ_TABLE, NFTA_OBJ_NAME, obj_keep, obj_drop),
	KIND(NFT_MSG_GETFLOWTABLE, NFT_MSG_NEWFLOWTABLE, "flowtable", NFTA_FLOWTABLE_TABLE,
	     NFTA_FLOWTABLE_NAME, flowtable_keep, flowtable_drop),
	KIND(NFT_MSG_GETSET, NFT_MSG_NEWSET, "set", NFTA_SET_TABLE, NFTA_SET_NAME, set_keep, set_drop),
	KIND(NFT_MSG_GETSETELEM, NFT_MSG_NEWSETELEM, "elements of set", NFTA_SET_ELEM_LIST_TABLE,
	     NFTA_SET_ELEM_LIST_SET, elems_keep, elems_drop),
	KIND(NFT_MSG_GETRULE, NFT_MSG_NEWRULE, "rule in chain", NFTA_RULE_TABLE, NFTA_RULE_CHAIN, rule_keep, rule_drop),
#undef KIND
};
enum { K_TABLE, K_CHAIN, K_OBJ, K_FLOWTABLE, K_SET, K_ELEMS, K_RULE, K_NR };

struct nft_state {
	NftRuleset *img;
};

static struct nft_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_nftables);
}

static const struct nft_kind *kind_of(uint32_t make)
{
	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++)
		if (kinds[k].make == make)
			return &kinds[k];
	return NULL;
}

/* The string attribute type of o ("?" if none). */
static const char *str_attr(const NftObject *o, uint32_t type)
{
	for (size_t i = 0; i < o->n_attrs; i++) {
		const NlAttr *a = o->attrs[i];
		if ((a->type & NLA_TYPE_MASK) == type && a->value.len && !a->value.data[a->value.len - 1])
			return (const char *)a->value.data;
	}
	return "?";
}

static uint32_t u32_attr(const NftObject *o, uint32_t type)
{
	for (size_t i = 0; i < o->n_attrs; i++)
		if ((o->attrs[i]->type & NLA_TYPE_MASK) == type && o->attrs[i]->value.len == 4)
			return ntohl(*(const uint32_t *)o->attrs[i]->value.data);
	return 0;
}

static const char *family_name(uint32_t f)
{
	switch (f) {
	case NFPROTO_INET: return "inet";
	case NFPROTO_IPV4: return "ip";
	case NFPROTO_IPV6: return "ip6";
	case NFPROTO_ARP: return "arp";
	case NFPROTO_BRIDGE: return "bridge";
	case NFPROTO_NETDEV: return "netdev";
	default: return "?";
	}
}

/* "chain inet filter input" for messages. */
static const char *object_str(const NftObject *o, char *buf, size_t len)
{
	const struct nft_kind *k = kind_of(o->type);

	if (!k)
		snprintf(buf, len, "object of type %u", o->type);
	else if (k->make == NFT_MSG_NEWTABLE)
		snprintf(buf, len, "table %s %s", family_name(o->family), str_attr(o, k->name_attr));
	else
		snprintf(buf, len, "%s %s %s %s", k->what, family_name(o->family),
			 str_attr(o, k->table_attr), str_attr(o, k->name_attr));
	return buf;
}

/* ---- dump ---- */

struct list {
	NftObject **v;
	size_t n;
};

struct nft_dump {
	pid_t root;
	const struct nft_kind *kind;
	struct list *out;
	int err;
};

static int add(struct list *l, NftObject *o)
{
	NftObject **more = xreallocarray(l->v, l->n + 1, sizeof(*more));

	if (!more) {
		nft_object__free_unpacked(o, NULL);
		return -ENOMEM;
	}
	l->v = more;
	l->v[l->n++] = o;
	return 0;
}

static int on_object(const struct nlmsghdr *h, void *arg)
{
	struct nft_dump *d = arg;
	const struct nfgenmsg *g = NLMSG_DATA(h);
	char buf[320];
	int err;

	if (h->nlmsg_type != ((NFNL_SUBSYS_NFTABLES << 8) | d->kind->make))
		return 0;
	NftObject *o = xzalloc(sizeof(*o));
	if (!o)
		return -ENOMEM;
	nft_object__init(o);
	o->type = d->kind->make;
	o->family = g->nfgen_family;
	int bad = nl_attrs_keep_msg(h, sizeof(*g), d->kind->keep, d->kind->nr_keep, d->kind->drop,
				    d->kind->nr_drop, &o->attrs, &o->n_attrs);
	if (bad < 0 || net_lock_table(str_attr(o, d->kind->table_attr))) {
		nft_object__free_unpacked(o, NULL); /* (the lock's, not the tree's) */
		return bad < 0 ? bad : 0;
	}
	if ((err = add(d->out, o)))
		return err;
	const char *why = bad ? "has an attribute stasis does not know" : NULL;
	if (o->type == NFT_MSG_NEWTABLE && (u32_attr(o, NFTA_TABLE_FLAGS) & NFT_TABLE_F_OWNER))
		why = "is owned by a process's netlink socket (NFT_TABLE_F_OWNER)";
	if (o->type == NFT_MSG_NEWCHAIN && (u32_attr(o, NFTA_CHAIN_FLAGS) & NFT_CHAIN_BINDING))
		why = "is bound to a rule (NFT_CHAIN_BINDING)";
	if (!why)
		return 0;
	pr_err("dump pid %d: nftables %s of its network namespace %s%s%.0d: not supported", d->root,
	       object_str(o, buf, sizeof(buf)), why, bad ? " " : "", bad);
	d->err = -ENOTSUP;
	return 1;
}

/* Every object of kind k (of one set: table and set named, for elements) into out. */
static int list_objects(int nl, pid_t root, const struct nft_kind *k, const NftObject *set,
			struct list *out)
{
	struct nfgenmsg g = { .nfgen_family = set ? set->family : NFPROTO_UNSPEC, .version = NFNETLINK_V0 };
	struct nft_dump d = { root, k, out, 0 };
	struct nl_buf b = { 0 };

	size_t m = nl_msg_begin(&b, (NFNL_SUBSYS_NFTABLES << 8) | k->get, NLM_F_DUMP, &g, sizeof(g));
	if (set) {
		nl_put_str(&b, NFTA_SET_ELEM_LIST_TABLE, str_attr(set, NFTA_SET_TABLE));
		nl_put_str(&b, NFTA_SET_ELEM_LIST_SET, str_attr(set, NFTA_SET_NAME));
	}
	nl_msg_end(&b, m);
	int err = nl_dump(nl, &b, on_object, &d);
	nl_buf_free(&b);
	if (!d.err && err && err != -ENOMEM)
		pr_err("dump pid %d: cannot list the nftables %ss of its network namespace: %s", root,
		       k->what, strerror(-err));
	return d.err ?: err;
}

/* Does o belong to table t? */
static bool in_table(const NftObject *o, const NftObject *t)
{
	return o->family == t->family &&
	       !strcmp(str_attr(o, kind_of(o->type)->table_attr), str_attr(t, NFTA_TABLE_NAME));
}

static int collect_nft(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct list lists[K_NR] = { 0 };
	pid_t root = net_ns_holder(ctx, tr);
	NftRuleset img = NFT_RULESET__INIT;
	struct list all = { 0 };
	int err = 0;

	if (!net_ns_config(ctx))
		return 0;
	auto_close int nl = nft_socket();
	if (nl < 0) {
		pr_err("dump pid %d: cannot talk to nftables in its network namespace: %s", root,
		       strerror(-nl));
		return nl;
	}
	for (int k = 0; k < K_NR && !err; k++)
		if (k != K_ELEMS)
			err = list_objects(nl, root, &kinds[k], NULL, &lists[k]);
	for (size_t t = 0; !err && t < lists[K_TABLE].n; t++) {
		const NftObject *table = lists[K_TABLE].v[t];
		add(&all, lists[K_TABLE].v[t]);
		for (int k = K_CHAIN; k < K_NR && !err; k++) {
			for (size_t i = 0; k != K_ELEMS && i < lists[k].n && !err; i++) {
				if (!in_table(lists[k].v[i], table))
					continue;
				add(&all, lists[k].v[i]);
				if (k == K_SET)
					err = list_objects(nl, root, &kinds[K_ELEMS], lists[k].v[i], &all);
			}
		}
	}
	if (!err) {
		img.objects = all.v;
		img.n_objects = all.n;
		err = image_write(ctx->images_dir_fd, IMG_NFTABLES, run_scope_id(ctx), &img.base);
	}
	/* the set elements are only in all; the rest is also in the lists, freed there */
	for (size_t i = 0; i < all.n; i++)
		if (all.v[i]->type == NFT_MSG_NEWSETELEM)
			nft_object__free_unpacked(all.v[i], NULL);
	free(all.v);
	for (int k = 0; k < K_NR; k++) {
		for (size_t i = 0; i < lists[k].n; i++)
			nft_object__free_unpacked(lists[k].v[i], NULL);
		free(lists[k].v);
	}
	return err;
}

/* ---- restore ---- */

static bool family_valid(uint32_t f)
{
	return f == NFPROTO_INET || f == NFPROTO_IPV4 || f == NFPROTO_IPV6 || f == NFPROTO_ARP ||
	       f == NFPROTO_BRIDGE || f == NFPROTO_NETDEV;
}

static int validate_nft(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct nft_state *st = state_of(ctx);
	char buf[320];
	int err;

	(void)rt;
	if (!net_ns_config(ctx))
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_NFTABLES, run_scope_id(ctx), (ProtobufCMessage **)&st->img)))
		return err;
	for (size_t i = 0; i < st->img->n_objects; i++) {
		const NftObject *o = st->img->objects[i];
		const struct nft_kind *k = kind_of(o->type);
		if (!k || !family_valid(o->family) || nl_attrs_check(o->attrs, o->n_attrs, k->keep, k->nr_keep)) {
			pr_err("image nftables.img: object %zu (%s) is invalid", i,
			       object_str(o, buf, sizeof(buf)));
			return -EINVAL;
		}
	}
	return 0;
}

static int prepare_nft(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct nft_state *st = state_of(ctx);
	char why[256] = "", buf[320];
	struct nl_buf b;
	int err;

	(void)rt;
	if (!st->img || !st->img->n_objects)
		return 0;
	auto_close int nl = nft_socket();
	if (nl < 0) {
		pr_err("restore: cannot talk to nftables in the tree's network namespace: %s",
		       strerror(-nl));
		return nl;
	}
	nft_batch_begin(&b);
	uint32_t first = b.seq + 1;
	for (size_t i = 0; i < st->img->n_objects; i++) {
		const NftObject *o = st->img->objects[i];
		struct nfgenmsg g = { .nfgen_family = o->family, .version = NFNETLINK_V0 };
		uint16_t flags = NLM_F_CREATE | NLM_F_ACK |
				 (o->type == NFT_MSG_NEWTABLE ? NLM_F_EXCL : 0) |
				 (o->type == NFT_MSG_NEWRULE ? NLM_F_APPEND : 0);
		size_t m = nl_msg_begin(&b, (NFNL_SUBSYS_NFTABLES << 8) | o->type, flags, &g, sizeof(g));
		nl_put_attrs(&b, o->attrs, o->n_attrs);
		if (o->type == NFT_MSG_NEWSET) /* the kernel wants one, to name it in this batch */
			nl_put_be32(&b, NFTA_SET_ID, i + 1);
		nl_msg_end(&b, m);
	}
	err = nft_batch_run(nl, &b, why, sizeof(why));
	if (err && err != -ENOMEM) {
		size_t at = b.err_seq >= first ? b.err_seq - first : 0;
		pr_err("restore: the tree's nftables ruleset (%zu objects) cannot be made again: %s "
		       "refused: %s%s%s", st->img->n_objects,
		       at < st->img->n_objects ? object_str(st->img->objects[at], buf, sizeof(buf)) : "?",
		       strerror(-err), why[0] ? ": " : "", why);
	}
	nl_buf_free(&b);
	return err;
}

static void free_nft(void *state)
{
	struct nft_state *st = state;

	if (st->img)
		image_free(&st->img->base);
}

const struct tree_object_ops tree_nftables = {
	.name = "nftables ruleset",
	.per_net_ns = true,
	.state_size = sizeof(struct nft_state),
	.free_state = free_nft,
	.collect = collect_nft,
	.validate = validate_nft,
	.prepare = prepare_nft,
};
