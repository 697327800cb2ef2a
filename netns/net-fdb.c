/*
 * What the bridges of the tree's own network namespace were told to forward (net-fdb.img):
 * - static and local MAC entries (`bridge fdb add MAC dev PORT master static|permanent`,
 *   `... dev BRIDGE self local`), sticky or not, per VLAN. Those the bridge learnt come back by
 *   themselves; so do the local entries it makes for its own and its ports' addresses (a local
 *   entry for a port's or the bridge's own MAC is taken for one of those, not saved); entries
 *   an external controller added (NTF_EXT_LEARNED, offloaded) are left to it;
 * - multicast group entries a user added (`bridge mdb add`: protocol static; permanent, or
 *   temporary with a fresh timer), IPv4, IPv6 or MAC groups, (*, G) or (S, G). Those learnt
 *   from IGMP/MLD and the host's own joins (port: the bridge) come back with their traffic.
 * Restore: after the interfaces are made, joined and up (an entry wants its port in the bridge,
 * a group entry a bridge that runs), each is added again; the kernel checks it.
 * Not kept: an entry's activity notification (NFEA_ACTIVITY_NOTIFY); a group entry's source
 * list and filter mode; the unicast/multicast address lists of devices (`self` entries of
 * other devices than a bridge), which their owners fill again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if.h>
#include <linux/if_bridge.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
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

struct fdb_state {
	NetBridgeEntries *img;
};

static struct fdb_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_net_fdb);
}

static const char *mac_str(const ProtobufCBinaryData *mac, char *buf, size_t len)
{
	const uint8_t *m = mac->data;

	if (mac->len != ETH_ALEN)
		snprintf(buf, len, "?");
	else
		snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return buf;
}

static const char *group_str(const NetMdbEntry *e, char *buf, size_t len)
{
	if (e->proto == ETH_P_IP && e->group.len == 4)
		inet_ntop(AF_INET, e->group.data, buf, len);
	else if (e->proto == ETH_P_IPV6 && e->group.len == 16)
		inet_ntop(AF_INET6, e->group.data, buf, len);
	else
		mac_str(&e->group, buf, len);
	return buf;
}

/* ---- dump ---- */

struct fdb_dump {
	pid_t root;
	const struct run_ctx *ctx; /* the interfaces, as net-links.c saved them */
	NetBridgeEntries *img;
	int err;
};

static bool own_mac(const struct fdb_dump *d, uint32_t ifindex, const void *mac)
{
	const NetLink *l = net_links_at(d->ctx, ifindex);

	return l && l->has_mac && l->mac.len == ETH_ALEN && !memcmp(l->mac.data, mac, ETH_ALEN);
}

/* A bridge that is up and snoops multicast: one that takes group entries. */
static bool takes_groups(const NetLink *br)
{
	const NlAttr *snooping = br ? nl_attrs_find(br->bridge, br->n_bridge, IFLA_BR_MCAST_SNOOPING) : NULL;

	return br && (br->flags & IFF_UP) && snooping && snooping->value.len == 1 && snooping->value.data[0];
}

static int on_fdb(const struct nlmsghdr *h, void *arg)
{
	struct fdb_dump *d = arg;
	const struct ndmsg *nd = NLMSG_DATA(h);
	const struct nlattr *tb[NDA_MAX + 1];

	if (h->nlmsg_type != RTM_NEWNEIGH || nd->ndm_family != AF_BRIDGE)
		return 0;
	nl_parse_msg(h, sizeof(*nd), tb, NDA_MAX);
	/* a bridge's entry (NDA_MASTER), configured, not a controller's */
	if (!tb[NDA_MASTER] || !tb[NDA_LLADDR] || nl_len(tb[NDA_LLADDR]) != ETH_ALEN ||
	    !(nd->ndm_state & (NUD_NOARP | NUD_PERMANENT)) || (nd->ndm_flags & (NTF_EXT_LEARNED | NTF_OFFLOADED)))
		return 0;
	uint32_t master = nl_uint(tb[NDA_MASTER], 0);
	if ((nd->ndm_state & NUD_PERMANENT) &&
	    (own_mac(d, nd->ndm_ifindex, nl_data(tb[NDA_LLADDR])) || own_mac(d, master, nl_data(tb[NDA_LLADDR]))))
		return 0; /* the bridge's own for an address of its or a port's */
	NetFdbEntry *e = xzalloc(sizeof(*e)), **more;
	if (!e || !(more = xreallocarray(d->img->fdb, d->img->n_fdb + 1, sizeof(*more)))) {
		free(e);
		return -ENOMEM;
	}
	d->img->fdb = more;
	d->img->fdb[d->img->n_fdb++] = e;
	net_fdb_entry__init(e);
	e->ifindex = nd->ndm_ifindex;
	e->master = master;
	e->state = nd->ndm_state & (NUD_NOARP | NUD_PERMANENT);
	e->flags = nd->ndm_flags & NTF_STICKY;
	if (tb[NDA_VLAN] && nl_len(tb[NDA_VLAN]) == 2) {
		e->has_vlan = true;
		e->vlan = nl_uint(tb[NDA_VLAN], 0);
	}
	return nl_bytes(&e->mac, nl_data(tb[NDA_LLADDR]), ETH_ALEN);
}

static int keep_mdb_entry(struct fdb_dump *d, int bridge, const struct nlattr *info)
{
	const struct br_mdb_entry *be = nl_data(info);
	const struct nlattr *ea[MDBA_MDB_EATTR_MAX + 1];
	size_t off = NLA_ALIGN(sizeof(*be));

	if (nl_len(info) < sizeof(*be))
		return 0;
	nl_parse((const char *)be + off, nl_len(info) > off ? nl_len(info) - off : 0, ea, MDBA_MDB_EATTR_MAX);
	size_t glen = be->addr.proto == htons(ETH_P_IP) ? 4 : be->addr.proto == htons(ETH_P_IPV6) ? 16 : ETH_ALEN;
	/* a user's (static), on a port (not the host's join), not one the kernel made for a (*, G) */
	if (be->ifindex == (uint32_t)bridge || (be->flags & MDB_FLAGS_STAR_EXCL) ||
	    nl_uint(ea[MDBA_MDB_EATTR_RTPROT], RTPROT_KERNEL) != RTPROT_STATIC)
		return 0;
	NetMdbEntry *e = xzalloc(sizeof(*e)), **more;
	if (!e || !(more = xreallocarray(d->img->mdb, d->img->n_mdb + 1, sizeof(*more)))) {
		free(e);
		return -ENOMEM;
	}
	d->img->mdb = more;
	d->img->mdb[d->img->n_mdb++] = e;
	net_mdb_entry__init(e);
	e->bridge = bridge;
	e->port = be->ifindex;
	e->state = be->state;
	e->proto = ntohs(be->addr.proto);
	e->vid = be->vid;
	if (nl_bytes(&e->group, &be->addr.u, glen))
		return -ENOMEM;
	const struct nlattr *src = ea[MDBA_MDB_EATTR_SOURCE];
	if (src && (nl_len(src) == 4 || nl_len(src) == 16)) {
		e->has_source = true;
		if (nl_bytes(&e->source, nl_data(src), nl_len(src)))
			return -ENOMEM;
	}
	const NetLink *b = net_links_at(d->ctx, bridge);
	if (!takes_groups(b)) {
		char group[INET6_ADDRSTRLEN];
		pr_err("dump pid %d: bridge %s holds multicast group entry %s while it is down or does not "
		       "snoop (a new bridge takes none then): not supported", d->root, b ? b->name : "?",
		       group_str(e, group, sizeof(group)));
		d->err = -ENOTSUP;
		return 1;
	}
	return 0;
}

/* Each bridge's answer: MDBA_MDB { MDBA_MDB_ENTRY { MDBA_MDB_ENTRY_INFO... } } */
static int on_mdb(const struct nlmsghdr *h, void *arg)
{
	const struct br_port_msg *bpm = NLMSG_DATA(h);
	const struct nlattr *tb[MDBA_MAX + 1];
	int err = 0;

	if (h->nlmsg_type != RTM_GETMDB) /* (the type of a dump's answers) */
		return 0;
	nl_parse_msg(h, sizeof(*bpm), tb, MDBA_MAX);
	if (!tb[MDBA_MDB])
		return 0;
	size_t rest, in;
	for (const struct nlattr *a = nl_first(nl_data(tb[MDBA_MDB]), nl_len(tb[MDBA_MDB]), &rest); a && !err;
	     a = nl_next(a, &rest))
		for (const struct nlattr *i = nl_first(nl_data(a), nl_len(a), &in);
		     i && !err && (a->nla_type & NLA_TYPE_MASK) == MDBA_MDB_ENTRY; i = nl_next(i, &in))
			if ((i->nla_type & NLA_TYPE_MASK) == MDBA_MDB_ENTRY_INFO)
				err = keep_mdb_entry(arg, bpm->ifindex, i);
	return err;
}

static int collect_fdb(struct run_ctx *ctx, struct dump_tree *tr)
{
	NetBridgeEntries img = NET_BRIDGE_ENTRIES__INIT;
	struct fdb_dump d = { .root = net_ns_holder(ctx, tr), .ctx = ctx, .img = &img };
	struct ndmsg nd = { .ndm_family = AF_BRIDGE };
	struct br_port_msg bpm = { .family = AF_BRIDGE };
	unsigned logged = log_errors();
	int err;

	if (!net_ns_config(ctx))
		return 0;
	auto_close int nl = nl_open(NETLINK_ROUTE);
	if (!(err = nl_dump_all(nl, RTM_GETNEIGH, &nd, sizeof(nd), on_fdb, &d)))
		err = nl_dump_all(nl, RTM_GETMDB, &bpm, sizeof(bpm), on_mdb, &d);
	if (d.err)
		err = d.err;
	else if (err)
		log_unnamed(logged, err, "dump pid %d: cannot list the forwarding entries of the bridges of its "
			    "network namespace", d.root);
	else
		err = image_write(ctx->images_dir_fd, IMG_NET_FDB, run_scope_id(ctx), &img.base);
	for (size_t i = 0; i < img.n_fdb; i++)
		net_fdb_entry__free_unpacked(img.fdb[i], NULL);
	for (size_t i = 0; i < img.n_mdb; i++)
		net_mdb_entry__free_unpacked(img.mdb[i], NULL);
	free(img.fdb);
	free(img.mdb);
	return err;
}

/* ---- restore ---- */

static bool fdb_valid(const NetFdbEntry *e)
{
	return e->ifindex && e->ifindex <= INT32_MAX && e->master && e->master <= INT32_MAX &&
	       e->mac.len == ETH_ALEN && (e->state == NUD_NOARP || e->state == NUD_PERMANENT) &&
	       !(e->flags & ~NTF_STICKY) && (!e->has_vlan || e->vlan < 4095) &&
	       (e->ifindex != e->master || e->state == NUD_PERMANENT);
}

static bool mdb_valid(const NetMdbEntry *e)
{
	size_t glen = e->proto == ETH_P_IP ? 4 : e->proto == ETH_P_IPV6 ? 16 : e->proto ? 0 : ETH_ALEN;

	return e->bridge && e->bridge <= INT32_MAX && e->port && e->port <= INT32_MAX && e->port != e->bridge &&
	       (e->state == MDB_PERMANENT || e->state == MDB_TEMPORARY) && glen && e->group.len == glen &&
	       e->vid < 4095 && (!e->has_source || e->source.len == glen);
}

static int validate_fdb(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct fdb_state *st = state_of(ctx);
	char buf[64];
	int err;

	(void)rt;
	if (!net_ns_config(ctx))
		return 0;
	if ((err = image_read_optional(ctx->images_dir_fd, IMG_NET_FDB, run_scope_id(ctx), (ProtobufCMessage **)&st->img)))
		return err;
	for (size_t i = 0; st->img && i < st->img->n_fdb; i++) {
		if (!fdb_valid(st->img->fdb[i])) {
			pr_err("image net-fdb.img: forwarding entry %zu (%s on interface %u) is invalid", i,
			       mac_str(&st->img->fdb[i]->mac, buf, sizeof(buf)), st->img->fdb[i]->ifindex);
			return -EINVAL;
		}
	}
	for (size_t i = 0; st->img && i < st->img->n_mdb; i++) {
		if (!mdb_valid(st->img->mdb[i])) {
			pr_err("image net-fdb.img: multicast group entry %zu (on interface %u) is invalid", i,
			       st->img->mdb[i]->port);
			return -EINVAL;
		}
	}
	return 0;
}

static int add_fdb(int nl, const NetFdbEntry *e, char *why, size_t len)
{
	struct ndmsg nd = { .ndm_family = AF_BRIDGE, .ndm_ifindex = e->ifindex, .ndm_state = e->state,
			    .ndm_flags = (e->ifindex == e->master ? NTF_SELF : NTF_MASTER) | e->flags };
	struct nl_buf b = { 0 };

	size_t m = nl_msg_begin(&b, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK, &nd, sizeof(nd));
	nl_put(&b, NDA_LLADDR, e->mac.data, ETH_ALEN);
	if (e->has_vlan)
		nl_put_u16(&b, NDA_VLAN, e->vlan);
	nl_msg_end(&b, m);
	int err = nl_talk(nl, &b, why, len);
	nl_buf_free(&b);
	return err;
}

static int add_mdb(int nl, const NetMdbEntry *e, char *why, size_t len)
{
	struct br_port_msg bpm = { .family = AF_BRIDGE, .ifindex = e->bridge };
	struct br_mdb_entry be = { .ifindex = e->port, .state = e->state, .vid = e->vid,
				   .addr.proto = htons(e->proto) };
	struct nl_buf b = { 0 };

	memcpy(&be.addr.u, e->group.data, e->group.len);
	size_t m = nl_msg_begin(&b, RTM_NEWMDB, NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK, &bpm, sizeof(bpm));
	nl_put(&b, MDBA_SET_ENTRY, &be, sizeof(be));
	if (e->has_source) {
		size_t attrs = nl_nest_begin(&b, MDBA_SET_ENTRY_ATTRS);
		nl_put(&b, MDBE_ATTR_SOURCE, e->source.data, e->source.len);
		nl_nest_end(&b, attrs);
	}
	nl_msg_end(&b, m);
	int err = nl_talk(nl, &b, why, len);
	nl_buf_free(&b);
	return err;
}

static int prepare_fdb(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct fdb_state *st = state_of(ctx);
	char why[256] = "", buf[64];
	int err = 0;

	(void)rt;
	if (!st->img || (!st->img->n_fdb && !st->img->n_mdb))
		return 0;
	auto_close int nl = nl_open(NETLINK_ROUTE);
	if (nl < 0) {
		pr_err("restore: cannot talk rtnetlink to give the tree's bridges their entries: %s", strerror(-nl));
		return nl;
	}
	for (size_t i = 0; i < st->img->n_fdb && !err; i++) {
		const NetFdbEntry *e = st->img->fdb[i];
		if ((err = add_fdb(nl, e, why, sizeof(why))))
			pr_err("restore: cannot add forwarding entry %s on interface %u (bridge %u): %s%s%s",
			       mac_str(&e->mac, buf, sizeof(buf)), e->ifindex, e->master, strerror(-err),
			       why[0] ? ": " : "", why);
	}
	for (size_t i = 0; i < st->img->n_mdb && !err; i++) {
		const NetMdbEntry *e = st->img->mdb[i];
		if ((err = add_mdb(nl, e, why, sizeof(why))))
			pr_err("restore: cannot add multicast group entry %s on interface %u (bridge %u): %s%s%s",
			       group_str(e, buf, sizeof(buf)), e->port, e->bridge, strerror(-err),
			       why[0] ? ": " : "", why);
	}
	return err;
}

static void free_fdb(void *state)
{
	struct fdb_state *st = state;

	if (st->img)
		image_free(&st->img->base);
}

const struct tree_object_ops tree_net_fdb = {
	.name = "bridge forwarding entries",
	.per_net_ns = true,
	.state_size = sizeof(struct fdb_state),
	.free_state = free_fdb,
	.collect = collect_fdb,
	.validate = validate_fdb,
	.prepare = prepare_fdb,
};
