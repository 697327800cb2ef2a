/*
 * The interfaces of the tree's own network namespace (net-links.img), over rtnetlink: each
 * with its index, name, state (up, NOARP, promiscuous, all-multicast, multicast), MTU, MAC,
 * queue length, alias, IPv6 address generation mode, and the bridge it is a port of.
 * Kinds:
 * - loopback: it is there in every new namespace; only its settings are written;
 * - veth: a pair with both ends inside is made again as one; a pair whose other end is in
 *   another of the tree's namespaces (one a process made, netns/net-nested.c, or the tree's own
 *   seen from one) names that namespace and the end's index and name there (peer_netns), and is
 *   made once, by the side whose namespace is configured first, with the other end put in its
 *   namespace (the other side finds it and configures it); a pair whose other end was
 *   outside gets that end made again in stasis's own namespace (the restoring caller's), named
 *   by --veth-pair IN=OUT[@BRIDGE] or --external veth[IN]:OUT[@BRIDGE], else by the name it had
 *   at dump (when it was in stasis's namespace then), with its MAC, MTU and state, and made a
 *   port of the bridge named there (or of the one it was a port of, if that exists);
 * - bridge: with its options (STP, timers, priority, VLAN filtering, multicast snooping, ...);
 *   its ports with theirs (hairpin, learning, flooding, isolation, cost, backup port, ...: the
 *   port_opts), set once every port is in; a port falling back to a nexthop group fails the
 *   dump, and so does a bridge that filters VLANs (its VLANs are not saved). Their forwarding
 *   entries are netns/net-fdb.c's;
 * - tun: a tun/tap device with its type, flags, owner and group (netns/net-tun.c), made again
 *   persistent through /dev/net/tun; the tree's files attach to it as they are opened;
 * - macvlan: with its mode and flags, on its lower device: one in the namespace, or one
 *   outside it (LXC's lxc.net.N.type = macvlan), named by --external macvlan[IN]:OUT, else by
 *   the name it had at dump (when it was in stasis's namespace then); that one is made by
 *   stasis's namespace and put into the tree's at once (IFLA_NET_NS_FD). The dump removes
 *   the macvlans of the dying namespace, which would hold their MACs on the lower device;
 * - any other kind fails the dump, naming the interface and its kind.
 * Every interface also keeps its group, link mode, GSO and GRO sizes (link_opts) and its other
 * names (altnames); one with an XDP program, or BPF programs on its ingress or egress through
 * BPF links (TCX, which tc does not list), fails the dump naming it.
 * In the engine's namespace (net_ns_devices) only the interfaces the tree made there are saved:
 * tun/tap devices, bridges, veth pairs with both ends inside (an engine puts none of those in
 * a container's namespace; its own are loopback and veths whose other end is outside). On
 * restore they are made in the namespace given for the tree (a persistent tun/tap there already
 * is used as it is; else their names must be free there; a tun/tap whose index is taken gets
 * another, which its addresses and routes follow: net_links_index_now; another kind's taken
 * index fails the restore, naming it), and a failed restore removes those it made.
 * Interfaces are made down, then configured, then made ports of their bridges, then brought
 * up, before addresses and routes are added (net-addrs.c, net-routes.c). Until then the
 * kernel makes no IPv6 address of its own on them (their link-local addresses are among the
 * saved ones: a bridge without a port that carries has none), and does no duplicate address
 * detection (net-sysctls.c writes accept_dad: their addresses were in use); net-addrs.c
 * gives each its address generation mode back once its addresses are in. A failed restore
 * removes the outer ends it made (the inner ones go with the namespace).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "log.h"
#include "net-links.h"
#include "net-nested.h"
#include "net-ns.h"
#include "net-tun.h"
#include "nlmsg.h"
#include "pstree.h"
#include "tree-objects.h"
#include "task.h"
#include "util.h"

#define LINK_FLAGS (IFF_UP | IFF_NOARP | IFF_PROMISC | IFF_ALLMULTI | IFF_MULTICAST)
#define MAC_MAX 32

/* Bridge options kept (the rest the kernel reports are its own state: timers, root ids). */
static const struct nl_attr_rule bridge_opts[] = {
	{ IFLA_BR_FORWARD_DELAY, 4, 4 },     { IFLA_BR_HELLO_TIME, 4, 4 },
	{ IFLA_BR_MAX_AGE, 4, 4 },           { IFLA_BR_AGEING_TIME, 4, 4 },
	{ IFLA_BR_STP_STATE, 4, 4 },         { IFLA_BR_PRIORITY, 2, 2 },
	{ IFLA_BR_VLAN_FILTERING, 1, 1 },    { IFLA_BR_VLAN_PROTOCOL, 2, 2 },
	{ IFLA_BR_GROUP_FWD_MASK, 2, 2 },    { IFLA_BR_GROUP_ADDR, 6, 6 },
	{ IFLA_BR_MCAST_SNOOPING, 1, 1 },    { IFLA_BR_MCAST_ROUTER, 1, 1 },
	{ IFLA_BR_MCAST_QUERIER, 1, 1 },     { IFLA_BR_VLAN_DEFAULT_PVID, 2, 2 },
	{ IFLA_BR_NF_CALL_IPTABLES, 1, 1 },  { IFLA_BR_NF_CALL_IP6TABLES, 1, 1 },
	{ IFLA_BR_NF_CALL_ARPTABLES, 1, 1 }, { IFLA_BR_VLAN_STATS_ENABLED, 1, 1 },
	{ IFLA_BR_MCAST_STATS_ENABLED, 1, 1 }, { IFLA_BR_MCAST_IGMP_VERSION, 1, 1 },
	{ IFLA_BR_MCAST_MLD_VERSION, 1, 1 },
};

/*
 * Bridge port options kept: what `ip link set ... type bridge_slave` and `bridge link set`
 * set (hairpin as Docker and Kubernetes set it on their ports, isolation, learning,
 * flooding, ...). The rest the kernel reports are STP's state, ids and timers; the port's STP
 * state itself is not kept (the kernel sets it as the port and the bridge come up).
 */
static const struct nl_attr_rule port_opts[] = {
	{ IFLA_BRPORT_PRIORITY, 2, 2 },        { IFLA_BRPORT_COST, 4, 4 },
	{ IFLA_BRPORT_MODE, 1, 1 },            { IFLA_BRPORT_GUARD, 1, 1 },
	{ IFLA_BRPORT_PROTECT, 1, 1 },         { IFLA_BRPORT_FAST_LEAVE, 1, 1 },
	{ IFLA_BRPORT_LEARNING, 1, 1 },        { IFLA_BRPORT_UNICAST_FLOOD, 1, 1 },
	{ IFLA_BRPORT_PROXYARP, 1, 1 },        { IFLA_BRPORT_PROXYARP_WIFI, 1, 1 },
	{ IFLA_BRPORT_MULTICAST_ROUTER, 1, 1 }, { IFLA_BRPORT_MCAST_FLOOD, 1, 1 },
	{ IFLA_BRPORT_MCAST_TO_UCAST, 1, 1 },  { IFLA_BRPORT_VLAN_TUNNEL, 1, 1 },
	{ IFLA_BRPORT_BCAST_FLOOD, 1, 1 },     { IFLA_BRPORT_GROUP_FWD_MASK, 2, 2 },
	{ IFLA_BRPORT_NEIGH_SUPPRESS, 1, 1 },  { IFLA_BRPORT_ISOLATED, 1, 1 },
	{ IFLA_BRPORT_BACKUP_PORT, 4, 4 },     { IFLA_BRPORT_MCAST_EHT_HOSTS_LIMIT, 4, 4 },
	{ IFLA_BRPORT_LOCKED, 1, 1 },          { STASIS_IFLA_BRPORT_MAB, 1, 1 },
	{ STASIS_IFLA_BRPORT_MCAST_MAX_GROUPS, 4, 4 }, { STASIS_IFLA_BRPORT_NEIGH_VLAN_SUPPRESS, 1, 1 },
};

/*
 * Settings of any interface kept (each written where it differs from a new one's): its group,
 * link mode (dormant, as 802.1X supplicants set it), and the largest GSO and GRO packets (BIG
 * TCP, as Cilium sets them on a pod's interface).
 */
static const struct nl_attr_rule link_opts[] = {
	{ IFLA_GROUP, 4, 4 },         { IFLA_LINKMODE, 1, 1 },
	{ IFLA_GSO_MAX_SIZE, 4, 4 },  { IFLA_GSO_MAX_SEGS, 4, 4 },
	{ IFLA_GRO_MAX_SIZE, 4, 4 },  { STASIS_IFLA_GSO_IPV4_MAX_SIZE, 4, 4 },
	{ STASIS_IFLA_GRO_IPV4_MAX_SIZE, 4, 4 },
};

struct links_state {
	NetLinks *img;        /* dump: the interfaces saved; restore: net-links.img */
	char **outer;         /* per link: the name of its outer end (veth), or NULL */
	char **outer_bridge;  /* ... the bridge it joins outside, or NULL */
	char **lower;         /* per link: a macvlan's lower device outside, its name there, or NULL */
	bool *bridge_given;   /* ... named by an option (it must exist) */
	int nl, home_nl;      /* + 1 */
	int home;             /* stasis's own namespace (net-ns.c's fd) */
	bool *made_outer;     /* per link: its outer end was made (a failed restore removes it) */
	bool *made_device;    /* per link: made in the engine's namespace (likewise) */
	uint32_t *saved_index; /* restore: per link its index at dump (the image's may change) */
	int peer_ns;          /* make_link: the namespace of a veth's other end (net_nested_fd) */
};

static struct links_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_net_links);
}

/* ---- dump ---- */

struct link_dump {
	const struct run_ctx *ctx;
	pid_t root;
	NetLinks *img;
	int nl;          /* a socket of the namespace for questions while the interfaces are listed */
	int home_nl;     /* a socket in stasis's namespace, -1 */
	int home_nsid;   /* the id the tree's namespace gives stasis's, -1 */
	bool devices;    /* the engine's namespace: the interfaces the tree made only (tree_made) */
	int err;
};

static const char *link_kind(const struct ifinfomsg *ifi, const struct nlattr *const *tb)
{
	const struct nlattr *li[IFLA_INFO_MAX + 1];

	if (!tb[IFLA_LINKINFO])
		return ifi->ifi_type == ARPHRD_LOOPBACK ? "loopback" : NULL;
	nl_parse(nl_data(tb[IFLA_LINKINFO]), nl_len(tb[IFLA_LINKINFO]), li, IFLA_INFO_MAX);
	return nl_str(li[IFLA_INFO_KIND]);
}

/* The IPv6 attributes in IFLA_AF_SPEC into in6: false if none. */
static bool inet6_attrs(const struct nlattr *spec, const struct nlattr **in6)
{
	const struct nlattr *fam[AF_INET6 + 1];

	if (!spec)
		return false;
	nl_parse(nl_data(spec), nl_len(spec), fam, AF_INET6);
	if (!fam[AF_INET6])
		return false;
	nl_parse(nl_data(fam[AF_INET6]), nl_len(fam[AF_INET6]), in6, IFLA_INET6_MAX);
	return true;
}

/* Its IPv6 address generation mode and token (`ip token`, if set); -ENOMEM. */
static int keep_inet6(NetLink *l, const struct nlattr *spec)
{
	const struct nlattr *in6[IFLA_INET6_MAX + 1];
	static const uint8_t none[16];

	if (!inet6_attrs(spec, in6))
		return 0;
	if (in6[IFLA_INET6_ADDR_GEN_MODE]) {
		l->has_addr_gen_mode = true;
		l->addr_gen_mode = nl_uint(in6[IFLA_INET6_ADDR_GEN_MODE], 0);
	}
	const struct nlattr *token = in6[IFLA_INET6_TOKEN];
	if (!token || nl_len(token) != sizeof(none) || !memcmp(nl_data(token), none, sizeof(none)))
		return 0;
	l->has_ipv6_token = true;
	return nl_bytes(&l->ipv6_token, nl_data(token), sizeof(none));
}

/*
 * The options of a link's kind (a bridge's, IFLA_INFO_DATA) or of its place in its master
 * (a bridge port's, IFLA_INFO_SLAVE_DATA), as IFLA_LINKINFO reports them and takes them; or
 * settings of any link, at the message's top level (data 0).
 */
struct info_opts {
	uint16_t kind, data; /* IFLA_INFO_KIND and _DATA, or IFLA_INFO_SLAVE_KIND and _DATA */
	const struct nl_attr_rule *rules;
	size_t nr_rules;
	const char *what; /* for messages: "IFLA_BR_*) of bridge" */
};

static const struct info_opts bridge_info = { IFLA_INFO_KIND, IFLA_INFO_DATA, bridge_opts,
					      ARRAY_SIZE(bridge_opts), "IFLA_BR_*) of bridge" };
static const struct info_opts port_info = { IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA, port_opts,
					    ARRAY_SIZE(port_opts), "IFLA_BRPORT_*) of bridge port" };
static const struct info_opts link_info = { 0, 0, link_opts, ARRAY_SIZE(link_opts), "IFLA_*) of interface" };

/* The options o keeps of link message h appended to (*v, *n); -ENOMEM. */
static int keep_info_opts(const struct info_opts *o, NlAttr ***v, size_t *n, const struct nlmsghdr *h)
{
	const struct nlattr *tb[IFLA_MAX + 1], *li[IFLA_INFO_MAX + 1];
	size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct ifinfomsg)), rest;
	const void *data = (const char *)h + off;
	size_t len = h->nlmsg_len > off ? h->nlmsg_len - off : 0;

	if (o->data) {
		nl_parse_msg(h, sizeof(struct ifinfomsg), tb, IFLA_MAX);
		if (!tb[IFLA_LINKINFO])
			return 0;
		nl_parse(nl_data(tb[IFLA_LINKINFO]), nl_len(tb[IFLA_LINKINFO]), li, IFLA_INFO_MAX);
		if (!li[o->data] || !nl_str(li[o->kind]) || strcmp(nl_str(li[o->kind]), "bridge"))
			return 0;
		data = nl_data(li[o->data]);
		len = nl_len(li[o->data]);
	}
	for (const struct nlattr *a = nl_first(data, len, &rest); a; a = nl_next(a, &rest)) {
		const struct nl_attr_rule *r = nl_attr_rule(a->nla_type & NLA_TYPE_MASK, o->rules, o->nr_rules);
		if (r && nl_len(a) >= r->min && nl_len(a) <= r->max && nl_attr_keep(v, n, a))
			return -ENOMEM;
	}
	return 0;
}

static int get_link(int nl, int ifindex, int (*fn)(const struct nlmsghdr *h, void *arg), void *arg)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex };
	struct nl_buf b = { 0 };

	nl_msg_end(&b, nl_msg_begin(&b, RTM_GETLINK, 0, &ifi, sizeof(ifi)));
	int ret = nl_get(nl, &b, fn, arg);
	nl_buf_free(&b);
	return ret;
}

static bool macvlan_valid_mode(uint32_t mode, uint32_t flags)
{
	return (mode == MACVLAN_MODE_PRIVATE || mode == MACVLAN_MODE_VEPA || mode == MACVLAN_MODE_BRIDGE ||
		mode == MACVLAN_MODE_PASSTHRU) && !(flags & ~(MACVLAN_FLAG_NOPROMISC | MACVLAN_FLAG_NODST));
}

static int on_lower_name(const struct nlmsghdr *h, void *arg)
{
	NetMacvlan *m = arg;
	const struct nlattr *tb[IFLA_MAX + 1];

	if (h->nlmsg_type != RTM_NEWLINK)
		return 0;
	nl_parse_msg(h, sizeof(struct ifinfomsg), tb, IFLA_MAX);
	return nl_str(tb[IFLA_IFNAME]) && !(m->lower_outside = xstrdup(nl_str(tb[IFLA_IFNAME]))) ? -ENOMEM : 0;
}

/* A macvlan's mode, flags and lower device (its index, or its name in stasis's namespace). */
static int keep_macvlan(struct link_dump *d, NetLink *l, const struct nlattr *const *tb)
{
	const struct nlattr *li[IFLA_INFO_MAX + 1], *data[IFLA_MACVLAN_MAX + 1] = { 0 };
	NetMacvlan *m = xzalloc(sizeof(*m));

	if (!m)
		return -ENOMEM;
	net_macvlan__init(m);
	l->macvlan = m;
	nl_parse(nl_data(tb[IFLA_LINKINFO]), nl_len(tb[IFLA_LINKINFO]), li, IFLA_INFO_MAX);
	if (li[IFLA_INFO_DATA])
		nl_parse(nl_data(li[IFLA_INFO_DATA]), nl_len(li[IFLA_INFO_DATA]), data, IFLA_MACVLAN_MAX);
	m->mode = nl_uint(data[IFLA_MACVLAN_MODE], MACVLAN_MODE_VEPA);
	m->flags = nl_uint(data[IFLA_MACVLAN_FLAGS], 0);
	if (!macvlan_valid_mode(m->mode, m->flags) || !tb[IFLA_LINK]) {
		pr_err("dump pid %d: macvlan %s in mode %#x (flags %#x%s): not supported (modes private, "
		       "vepa, bridge and passthru are)", d->root, l->name, m->mode, m->flags,
		       tb[IFLA_LINK] ? "" : ", no lower device");
		return -ENOTSUP;
	}
	uint32_t lower = nl_uint(tb[IFLA_LINK], 0);
	if (!tb[IFLA_LINK_NETNSID]) {
		m->has_lower_ifindex = true;
		m->lower_ifindex = lower;
	} else if ((int)nl_uint(tb[IFLA_LINK_NETNSID], -1) == d->home_nsid && d->home_nl >= 0 &&
		   get_link(d->home_nl, lower, on_lower_name, m) == -ENOMEM) {
		return -ENOMEM;
	}
	if (!m->has_lower_ifindex && !m->lower_outside)
		pr_warn("dump pid %d: the lower device of macvlan %s is in another network namespace than "
			"stasis's: the restore needs --external macvlan[%s]:NAME", d->root, l->name, l->name);
	return 0;
}

/* The outer end of a veth, as stasis's own namespace has it: name, MAC, MTU, state, bridge. */
struct outer_view {
	NetLink *l;
	int home_nl;
	bool master_query; /* the answer is about the bridge: its name only */
};

static int on_outer(const struct nlmsghdr *h, void *arg)
{
	struct outer_view *v = arg;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct nlattr *tb[IFLA_MAX + 1];

	if (h->nlmsg_type != RTM_NEWLINK)
		return 0;
	nl_parse_msg(h, sizeof(*ifi), tb, IFLA_MAX);
	if (!nl_str(tb[IFLA_IFNAME]))
		return 0;
	if (v->master_query)
		return (v->l->peer_master = xstrdup(nl_str(tb[IFLA_IFNAME]))) ? 0 : -ENOMEM;
	if (!(v->l->peer_name = xstrdup(nl_str(tb[IFLA_IFNAME]))))
		return -ENOMEM;
	v->l->has_peer_up = true;
	v->l->peer_up = ifi->ifi_flags & IFF_UP;
	if (tb[IFLA_MTU]) {
		v->l->has_peer_mtu = true;
		v->l->peer_mtu = nl_uint(tb[IFLA_MTU], 0);
	}
	if (tb[IFLA_ADDRESS] && nl_len(tb[IFLA_ADDRESS]) <= MAC_MAX) {
		v->l->has_peer_mac = true;
		if (nl_bytes(&v->l->peer_mac, nl_data(tb[IFLA_ADDRESS]), nl_len(tb[IFLA_ADDRESS])))
			return -ENOMEM;
	}
	return tb[IFLA_MASTER] ? (int)nl_uint(tb[IFLA_MASTER], 0) : 0;
}

static int outer_end(struct link_dump *d, NetLink *l, int peer)
{
	struct outer_view v = { l, d->home_nl, false };
	int master = get_link(d->home_nl, peer, on_outer, &v);

	if (master > 0) {
		v.master_query = true;
		if (get_link(d->home_nl, master, on_outer, &v) == -ENOMEM)
			return -ENOMEM;
	}
	return master < 0 ? master : 0;
}

static const NetLink *by_index(const NetLinks *img, uint32_t ifindex)
{
	for (size_t i = 0; i < img->n_links; i++)
		if (img->links[i]->ifindex == ifindex)
			return img->links[i];
	return NULL;
}

static int on_peer_name(const struct nlmsghdr *h, void *arg)
{
	const struct nlattr *tb[IFLA_MAX + 1];

	if (h->nlmsg_type != RTM_NEWLINK)
		return 0;
	nl_parse_msg(h, sizeof(struct ifinfomsg), tb, IFLA_MAX);
	return nl_str(tb[IFLA_IFNAME]) && !(((NetLink *)arg)->peer_name = xstrdup(nl_str(tb[IFLA_IFNAME]))) ? -ENOMEM : 0;
}

/* Veth l's other end, index peer in another of the tree's namespaces (id, an fd of it:
 * netns/net-nested.c): l names that namespace, the end's index and its name there. */
static int tree_peer(const struct link_dump *d, NetLink *l, uint32_t id, int fd, int peer)
{
	int err = 0;

	l->has_peer_netns = l->has_peer_netns_ifindex = true;
	l->peer_netns = id;
	l->peer_netns_ifindex = peer;
	auto_close int nl = nl_open_in(fd, NETLINK_ROUTE);
	if (nl < 0 || (err = get_link(nl, peer, on_peer_name, l)) || !l->peer_name) {
		if (err != -ENOMEM)
			pr_err("dump pid %d: cannot read the other end of veth %s (index %d in the network namespace "
			       "%u of the tree's): %s", d->root, l->name, peer, id, strerror(nl < 0 ? -nl : err ? -err : ENOENT));
		return err == -ENOMEM ? err : -EIO;
	}
	return 0;
}

/* l comes back out of its bridge (which is the engine's): no port options either. */
static void not_a_port(NetLink *l)
{
	l->has_master = false;
	for (size_t i = 0; i < l->n_bridge_port; i++)
		nl_attr__free_unpacked(l->bridge_port[i], NULL);
	free(l->bridge_port);
	l->bridge_port = NULL;
	l->n_bridge_port = 0;
}

/* In the engine's namespace, an interface the tree made: a tun/tap, a bridge, an inner veth. */
static bool tree_made(const char *kind, bool peer_outside)
{
	return kind && (!strcmp(kind, "tun") || !strcmp(kind, "bridge") || (!strcmp(kind, "veth") && !peer_outside));
}

/* A bridge port's options; one falling back to a nexthop group fails the dump (nexthops are
 * made after the interfaces). */
static int keep_port_opts(const struct link_dump *d, NetLink *l, const struct nlmsghdr *h,
			  const struct nlattr *linkinfo)
{
	const struct nlattr *li[IFLA_INFO_MAX + 1], *port[STASIS_IFLA_BRPORT_BACKUP_NHID + 1];

	if (!linkinfo)
		return 0;
	nl_parse(nl_data(linkinfo), nl_len(linkinfo), li, IFLA_INFO_MAX);
	if (li[IFLA_INFO_SLAVE_DATA]) {
		nl_parse(nl_data(li[IFLA_INFO_SLAVE_DATA]), nl_len(li[IFLA_INFO_SLAVE_DATA]), port,
			 STASIS_IFLA_BRPORT_BACKUP_NHID);
		if (nl_uint(port[STASIS_IFLA_BRPORT_BACKUP_NHID], 0)) {
			pr_err("dump pid %d: bridge port %s falls back to nexthop %u (backup_nhid): not supported",
			       d->root, l->name, nl_uint(port[STASIS_IFLA_BRPORT_BACKUP_NHID], 0));
			return -ENOTSUP;
		}
	}
	return keep_info_opts(&port_info, &l->bridge_port, &l->n_bridge_port, h);
}

/* Its other names (`ip link property add ... altname`). */
static int keep_altnames(NetLink *l, const struct nlattr *props)
{
	size_t rest;

	for (const struct nlattr *a = props ? nl_first(nl_data(props), nl_len(props), &rest) : NULL; a;
	     a = nl_next(a, &rest)) {
		char **more;
		if ((a->nla_type & NLA_TYPE_MASK) != IFLA_ALT_IFNAME || !nl_str(a))
			continue;
		if (!(more = xreallocarray(l->altnames, l->n_altnames + 1, sizeof(*more))))
			return -ENOMEM;
		l->altnames = more;
		if (!(l->altnames[l->n_altnames++] = xstrdup(nl_str(a))))
			return -ENOMEM;
	}
	return 0;
}

/* How many BPF programs interface ifindex has on its ingress and egress through BPF links (TCX). */
static int tcx_programs(int ifindex, uint32_t *count)
{
	*count = 0;
	for (int dir = 0; dir < 2; dir++) {
		union bpf_attr a = { 0 };
		a.query.target_fd = ifindex; /* (target_ifindex since 6.6, the same field) */
		a.query.attach_type = dir ? STASIS_BPF_TCX_EGRESS : STASIS_BPF_TCX_INGRESS;
		if (syscall(SYS_bpf, BPF_PROG_QUERY, &a, sizeof(a)))
			return errno == EINVAL || errno == ENOSYS || errno == EPERM ? 0 : -errno; /* (no TCX here) */
		*count += a.query.prog_cnt;
	}
	return 0;
}

/* An XDP program on interface l, or TCX ones: not kept (they would be lost): refused. */
static int refuse_bpf(const struct link_dump *d, const NetLink *l, const struct nlattr *xdp)
{
	const struct nlattr *x[IFLA_XDP_MAX + 1];
	uint32_t tcx;

	if (xdp) {
		nl_parse(nl_data(xdp), nl_len(xdp), x, IFLA_XDP_MAX);
		if (nl_uint(x[IFLA_XDP_ATTACHED], XDP_ATTACHED_NONE) != XDP_ATTACHED_NONE) {
			pr_err("dump pid %d: interface %s has an XDP program attached (program id %u): not supported",
			       d->root, l->name, nl_uint(x[IFLA_XDP_PROG_ID], 0));
			return -ENOTSUP;
		}
	}
	int err = tcx_programs((int)l->ifindex, &tcx);
	if (!err && tcx) {
		pr_err("dump pid %d: interface %s has %u BPF program%s attached to its ingress or egress "
		       "(TCX): not supported", d->root, l->name, tcx, tcx == 1 ? "" : "s");
		return -ENOTSUP;
	}
	if (err)
		pr_err("dump pid %d: cannot list the BPF programs of interface %s: %s", d->root, l->name,
		       strerror(-err));
	return err;
}

/*
 * A bridge that filters VLANs: its ports' VLANs (`bridge vlan`) are not saved, and it would come
 * back with each port in VLAN 1 alone. (A kernel without VLAN filtering refuses to turn it on.)
 */
static int refuse_vlans(const struct link_dump *d, const NetLink *l)
{
	const NlAttr *f = nl_attrs_find(l->bridge, l->n_bridge, IFLA_BR_VLAN_FILTERING);

	if (!f || f->value.len != 1 || !f->value.data[0])
		return 0;
	pr_err("dump pid %d: bridge %s filters VLANs (vlan_filtering 1): its VLANs are not saved: "
	       "not supported", d->root, l->name);
	return -ENOTSUP;
}

static int on_link(const struct nlmsghdr *h, void *arg)
{
	struct link_dump *d = arg;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct nlattr *tb[IFLA_MAX + 1];

	if (h->nlmsg_type != RTM_NEWLINK)
		return 0;
	nl_parse_msg(h, sizeof(*ifi), tb, IFLA_MAX);
	const char *name = nl_str(tb[IFLA_IFNAME]) ?: "?", *kind = link_kind(ifi, tb);
	/* (a veth's other end in another namespace: stasis's, another of the tree's, or neither) */
	int nsid = tb[IFLA_LINK_NETNSID] ? (int)nl_uint(tb[IFLA_LINK_NETNSID], -1) : -1, peer_ns_fd = -1;
	uint32_t peer_ns = 0;
	int in_tree = nsid < 0 || nsid == d->home_nsid ? -ENOENT : net_nested_ns_of(d->ctx, d->nl, nsid, &peer_ns, &peer_ns_fd);
	if (in_tree == -ENOMEM)
		return -ENOMEM;
	if (d->devices && !tree_made(kind, tb[IFLA_LINK_NETNSID] && in_tree)) {
		if (!kind || (strcmp(kind, "loopback") && strcmp(kind, "veth")))
			pr_info("dump pid %d: interface %s (%s) of the engine's network namespace is left "
				"to it, not saved", d->root, name, kind ?: "of no kind");
		return 0;
	}
	if (!kind || (strcmp(kind, "loopback") && strcmp(kind, "veth") && strcmp(kind, "bridge") &&
		      strcmp(kind, "tun") && strcmp(kind, "macvlan"))) {
		pr_err("dump pid %d: its network namespace has interface %s, %s%s%s: not supported "
		       "(loopback, veth, bridge, macvlan and tun/tap are; --external net[INODE]:KEY leaves the "
		       "namespace to the engine)", d->root, name, kind ? "a " : "",
		       kind ?: "a device of no kind", kind ? " link" : "");
		d->err = -ENOTSUP;
		return 1;
	}
	NetLink *l = xzalloc(sizeof(*l)), **more;
	if (!l || !(more = xreallocarray(d->img->links, d->img->n_links + 1, sizeof(*more)))) {
		free(l);
		return -ENOMEM;
	}
	d->img->links = more;
	d->img->links[d->img->n_links++] = l;
	net_link__init(l);
	l->ifindex = ifi->ifi_index;
	if (!(l->name = xstrdup(name)) || !(l->kind = xstrdup(kind)))
		return -ENOMEM;
	l->flags = ifi->ifi_flags & LINK_FLAGS;
	l->mtu = nl_uint(tb[IFLA_MTU], 0);
	if (tb[IFLA_ADDRESS] && nl_len(tb[IFLA_ADDRESS]) <= MAC_MAX && strcmp(kind, "loopback")) {
		l->has_mac = true;
		if (nl_bytes(&l->mac, nl_data(tb[IFLA_ADDRESS]), nl_len(tb[IFLA_ADDRESS])))
			return -ENOMEM;
	}
	if (tb[IFLA_TXQLEN]) {
		l->has_txqlen = true;
		l->txqlen = nl_uint(tb[IFLA_TXQLEN], 0);
	}
	if (tb[IFLA_MASTER]) {
		l->has_master = true;
		l->master = nl_uint(tb[IFLA_MASTER], 0);
	}
	if (nl_str(tb[IFLA_IFALIAS]) && !(l->alias = xstrdup(nl_str(tb[IFLA_IFALIAS]))))
		return -ENOMEM;
	if (keep_inet6(l, tb[IFLA_AF_SPEC]))
		return -ENOMEM;
	if ((!strcmp(kind, "bridge") && keep_info_opts(&bridge_info, &l->bridge, &l->n_bridge, h)) ||
	    keep_info_opts(&link_info, &l->settings, &l->n_settings, h) || keep_altnames(l, tb[IFLA_PROP_LIST]))
		return -ENOMEM;
	if ((l->has_master && (d->err = keep_port_opts(d, l, h, tb[IFLA_LINKINFO]))) ||
	    (d->err = refuse_bpf(d, l, tb[IFLA_XDP])) || (d->err = refuse_vlans(d, l)))
		return d->err == -ENOMEM ? -ENOMEM : 1;
	if (!strcmp(kind, "tun") && (d->err = net_tun_keep(d->root, l, tb[IFLA_LINKINFO])))
		return d->err == -ENOMEM ? -ENOMEM : 1;
	if (!strcmp(kind, "macvlan") && (d->err = keep_macvlan(d, l, tb)))
		return d->err == -ENOMEM ? -ENOMEM : 1;
	if (!strcmp(kind, "veth") && tb[IFLA_LINK]) {
		int peer = nl_uint(tb[IFLA_LINK], 0);
		if (!tb[IFLA_LINK_NETNSID]) {
			l->has_peer_ifindex = true;
			l->peer_ifindex = peer;
		} else if (nsid == d->home_nsid && d->home_nl >= 0) {
			if ((d->err = outer_end(d, l, peer))) {
				if (d->err == -ENOMEM)
					return -ENOMEM; /* (said) */
				pr_err("dump pid %d: cannot read the other end of veth %s in stasis's namespace: %s",
				       d->root, name, strerror(-d->err));
				return 1;
			}
		} else if (!in_tree && (d->err = tree_peer(d, l, peer_ns, peer_ns_fd, peer))) {
			return d->err == -ENOMEM ? -ENOMEM : 1;
		}
	}
	return 0;
}

static int collect_links(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct link_dump d = { .ctx = ctx, .root = net_ns_holder(ctx, tr), .home_nl = -1, .home_nsid = -1,
			       .devices = net_ns_devices(ctx) };
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct links_state *st = state_of(ctx);
	int home = net_ns_home(ctx), err;

	if (!net_ns_interfaces(ctx))
		return 0;
	if (!(st->img = xzalloc(sizeof(*st->img))))
		return -ENOMEM;
	net_links__init(st->img); /* (kept for the kinds after this one) */
	auto_close int nl = nl_open(NETLINK_ROUTE);
	if (nl < 0) {
		pr_err("dump pid %d: cannot talk rtnetlink in its network namespace: %s", d.root,
		       strerror(-nl));
		return nl;
	}
	if (home >= 0) {
		if ((d.home_nsid = nl_nsid(nl, home)) == -ENOMEM)
			return -ENOMEM;
		d.home_nl = nl_open_in(home, NETLINK_ROUTE);
	}
	d.img = st->img;
	auto_close int ask_nl = d.nl = nl_open(NETLINK_ROUTE);
	if (ask_nl < 0) {
		pr_err("dump pid %d: cannot talk rtnetlink in its network namespace: %s", d.root,
		       strerror(-ask_nl));
		return ask_nl;
	}
	err = nl_dump_all(nl, RTM_GETLINK, &ifi, sizeof(ifi), on_link, &d);
	if (d.home_nl >= 0)
		close(d.home_nl);
	for (size_t i = 0; !err && !d.err && i < st->img->n_links; i++) {
		NetLink *l = st->img->links[i];
		if (l->has_master && !by_index(st->img, l->master)) { /* (the engine's namespace) */
			pr_warn("dump pid %d: interface %s is a port of interface %u, which is the engine's: "
				"it comes back out of it", d.root, l->name, l->master);
			not_a_port(l);
		}
	}
	if (err || d.err) {
		if (!d.err && err != -ENOMEM)
			pr_err("dump pid %d: cannot list the interfaces of its network namespace: %s",
			       d.root, strerror(-err));
		err = d.err ?: err;
	} else {
		err = image_write(ctx->images_dir_fd, IMG_NET_LINKS, run_scope_id(ctx), &st->img->base);
	}
	return err;
}

/* ---- restore ---- */

static bool ifname_valid(const char *n)
{
	size_t len = strlen(n);

	if (!len || len >= IFNAMSIZ || !strcmp(n, ".") || !strcmp(n, ".."))
		return false;
	for (const char *c = n; *c; c++)
		if (*c == '/' || *c == ':' || *c <= ' ' || *c == 0x7f)
			return false;
	return true;
}

/* The link that had index ifindex at dump, -1 if none. */
static ssize_t saved_link(const struct links_state *st, uint32_t ifindex)
{
	for (size_t i = 0; st->img && i < st->img->n_links; i++)
		if ((st->saved_index ? st->saved_index[i] : st->img->links[i]->ifindex) == ifindex)
			return i;
	return -1;
}

bool net_links_saved(const struct run_ctx *ctx, uint32_t ifindex)
{
	return saved_link(state_of(ctx), ifindex) >= 0;
}

const NetLink *net_links_at(const struct run_ctx *ctx, uint32_t ifindex)
{
	const struct links_state *st = state_of(ctx);
	ssize_t i = saved_link(st, ifindex);

	return i < 0 ? NULL : st->img->links[i];
}

uint32_t net_links_index_now(const struct run_ctx *ctx, uint32_t saved)
{
	const struct links_state *st = state_of(ctx);
	ssize_t i = saved_link(st, saved);

	return i < 0 ? saved : st->img->links[i]->ifindex;
}

const char *net_links_name_of(const struct run_ctx *ctx, uint32_t ifindex)
{
	const struct links_state *st = state_of(ctx);
	ssize_t i = saved_link(st, ifindex);

	return i < 0 ? NULL : st->img->links[i]->name;
}

const char *net_links_name(const struct run_ctx *ctx, size_t i)
{
	const NetLinks *img = state_of(ctx)->img;

	return img && i < img->n_links ? img->links[i]->name : NULL;
}

/* What --external KIND[IN]:VALUE gives for interface IN, or NULL. */
static const char *external_link(const struct stasis_opts *o, const char *kind, const char *in)
{
	char want[IFNAMSIZ + 16];

	snprintf(want, sizeof(want), "%s[%s]:", kind, in);
	for (size_t i = 0; i < o->externals.n; i++)
		if (!strncmp(o->externals.v[i].value, want, strlen(want)))
			return o->externals.v[i].value + strlen(want);
	return NULL;
}

/* "OUT" or "OUT@BRIDGE" for IN, from --veth-pair IN=OUT[@BRIDGE] or --external veth[IN]:... */
static const char *veth_option(const struct stasis_opts *o, const char *in)
{
	for (size_t i = 0; i < o->veth_pairs.n; i++)
		if (o->veth_pairs.v[i].key && !strcmp(o->veth_pairs.v[i].key, in))
			return o->veth_pairs.v[i].value;
	return external_link(o, "veth", in);
}

/* The name of macvlan l's (index i) lower device outside: from the option, or the image. */
static int lower_name(const struct run_ctx *ctx, struct links_state *st, size_t i, const NetLink *l)
{
	const char *name = external_link(ctx->opts, "macvlan", l->name) ?: l->macvlan->lower_outside;

	if (!name) {
		pr_err("restore: interface %s is a macvlan whose lower device was outside the tree's "
		       "network namespace: name one with --external macvlan[%s]:NAME", l->name, l->name);
		return -EINVAL;
	}
	if (!ifname_valid(name)) {
		pr_err("restore: macvlan %s: the name of its lower device (%s) is not an interface name",
		       l->name, name);
		return -EINVAL;
	}
	return (st->lower[i] = xstrdup(name)) ? 0 : -ENOMEM;
}

/* The outer end's name and bridge of veth l (index i): from the options, or the image. */
static int outer_names(const struct run_ctx *ctx, struct links_state *st, size_t i, const NetLink *l)
{
	const char *opt = veth_option(ctx->opts, l->name);

	if (opt) {
		const char *at = strchr(opt, '@');
		if (!(st->outer[i] = xstrdup(opt)))
			return -ENOMEM;
		if (at) {
			st->outer[i][at - opt] = 0;
			if (!(st->outer_bridge[i] = xstrdup(at + 1)))
				return -ENOMEM;
			st->bridge_given[i] = true;
		}
	} else if (l->peer_name && !(st->outer[i] = xstrdup(l->peer_name))) {
		return -ENOMEM;
	}
	if (!st->outer_bridge[i] && l->peer_master && !(st->outer_bridge[i] = xstrdup(l->peer_master)))
		return -ENOMEM;
	if (!st->outer[i]) {
		pr_err("restore: interface %s is a veth whose other end was outside the tree's network "
		       "namespace: name that end with --veth-pair %s=NAME", l->name, l->name);
		return -EINVAL;
	}
	if (!ifname_valid(st->outer[i]) || (st->outer_bridge[i] && !ifname_valid(st->outer_bridge[i]))) {
		pr_err("restore: veth %s: the name of its other end (%s%s%s) is not an interface name",
		       l->name, st->outer[i], st->outer_bridge[i] ? "@" : "", st->outer_bridge[i] ?: "");
		return -EINVAL;
	}
	return 0;
}

static int on_index(const struct nlmsghdr *h, void *arg)
{
	(void)arg;
	return h->nlmsg_type == RTM_NEWLINK ? ((const struct ifinfomsg *)NLMSG_DATA(h))->ifi_index
					    : -ENOENT;
}

/* The index of the interface called name, or <0. */
static int index_of(int nl, const char *name)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct nl_buf b = { 0 };

	size_t m = nl_msg_begin(&b, RTM_GETLINK, 0, &ifi, sizeof(ifi));
	nl_put_str(&b, IFLA_IFNAME, name);
	nl_msg_end(&b, m);
	int ret = nl_get(nl, &b, on_index, NULL);
	nl_buf_free(&b);
	return ret;
}

/*
 * The outer end's name must be free in stasis's namespace. Right after a dump the tree's old
 * namespace may still be going away (the kernel dismantles it in the background), with the
 * outer ends of its veths: they are given a few seconds.
 */
static int outer_free(const char *out, const NetLink *l)
{
	auto_close int nl = nl_open(NETLINK_ROUTE);

	for (int tries = 0; nl >= 0 && tries < 50; tries++) {
		if (index_of(nl, out) < 0)
			return 0;
		usleep(100 * 1000);
	}
	pr_err("restore: there is an interface %s in stasis's network namespace already: the other "
	       "end of veth %s cannot be made there (name it with --veth-pair %s=NAME)",
	       out, l->name, l->name);
	return -EEXIST;
}

/* Its mode and flags known; its lower device inside (not a macvlan: the kernel gives the one
 * below that) or named outside. */
static bool macvlan_valid(const NetLinks *img, const NetLink *l)
{
	const NetMacvlan *m = l->macvlan;
	const NetLink *lower = m && m->has_lower_ifindex ? by_index(img, m->lower_ifindex) : NULL;

	if (!m || !macvlan_valid_mode(m->mode, m->flags))
		return false;
	if (m->has_lower_ifindex)
		return lower && !m->lower_outside && strcmp(lower->kind, "macvlan") && strcmp(lower->kind, "loopback");
	return !m->lower_outside || ifname_valid(m->lower_outside);
}

static bool link_valid(const NetLinks *img, const NetLink *l)
{
	const NetLink *peer = l->has_peer_ifindex ? by_index(img, l->peer_ifindex) : NULL;
	const NetLink *master = l->has_master ? by_index(img, l->master) : NULL;
	bool lo = !strcmp(l->kind, "loopback"), veth = !strcmp(l->kind, "veth"), tun = !strcmp(l->kind, "tun");
	bool macvlan = !strcmp(l->kind, "macvlan");

	if (!ifname_valid(l->name) || l->ifindex < 1 || l->ifindex > INT32_MAX || (lo != (l->ifindex == 1)) ||
	    (!lo && !veth && !tun && !macvlan && strcmp(l->kind, "bridge")) || l->mtu < 1 || l->mtu > 1u << 20 ||
	    (tun ? !net_tun_valid(l) : l->tun != NULL) || (macvlan ? !macvlan_valid(img, l) : l->macvlan != NULL) ||
	    (l->flags & ~LINK_FLAGS) || (l->has_mac && l->mac.len > MAC_MAX) ||
	    (l->has_peer_mac && l->peer_mac.len > MAC_MAX) ||
	    (l->has_addr_gen_mode && l->addr_gen_mode > 255) ||
	    (l->has_ipv6_token && (l->ipv6_token.len != 16 || !l->has_addr_gen_mode)) ||
	    (l->alias && strlen(l->alias) >= 256))
		return false;
	if (l->has_master && (!master || strcmp(master->kind, "bridge") || master == l))
		return false;
	if (l->has_peer_ifindex && (!veth || !peer || peer == l || strcmp(peer->kind, "veth") ||
				    !peer->has_peer_ifindex || peer->peer_ifindex != l->ifindex))
		return false;
	if (l->has_peer_netns && (!veth || l->has_peer_ifindex || !l->has_peer_netns_ifindex || !l->peer_name ||
				  !ifname_valid(l->peer_name) || l->peer_netns_ifindex < 2 ||
				  l->peer_netns_ifindex > INT32_MAX))
		return false;
	if ((strcmp(l->kind, "bridge") && l->n_bridge) || (!l->has_master && l->n_bridge_port))
		return false;
	for (size_t i = 0; i < l->n_altnames; i++)
		if (!l->altnames[i][0] || strlen(l->altnames[i]) >= ALTIFNAMSIZ || strchr(l->altnames[i], '/'))
			return false;
	return !nl_attrs_check(l->settings, l->n_settings, link_opts, ARRAY_SIZE(link_opts)) &&
	       !nl_attrs_check(l->bridge, l->n_bridge, bridge_opts, ARRAY_SIZE(bridge_opts)) &&
	       !nl_attrs_check(l->bridge_port, l->n_bridge_port, port_opts, ARRAY_SIZE(port_opts));
}

static void free_links(void *state)
{
	struct links_state *st = state;

	for (size_t i = 0; st->img && st->outer && st->outer_bridge && st->lower && i < st->img->n_links; i++) {
		free(st->outer[i]);
		free(st->outer_bridge[i]);
		free(st->lower[i]);
	}
	free(st->outer);
	free(st->outer_bridge);
	free(st->lower);
	free(st->bridge_given);
	free(st->made_outer);
	free(st->made_device);
	free(st->saved_index);
	if (st->nl)
		close(st->nl - 1);
	if (st->home_nl)
		close(st->home_nl - 1);
	if (st->img)
		image_free(&st->img->base);
}

/*
 * Into the engine's namespace only the interfaces the tree made are made (the images of a
 * namespace saved whole hold the engine's too), out of any bridge that is not among them.
 */
static void devices_only(NetLinks *img)
{
	size_t kept = 0;

	for (size_t i = 0; i < img->n_links; i++) {
		NetLink *l = img->links[i];
		if (!tree_made(l->kind, !l->has_peer_ifindex && !l->has_peer_netns))
			net_link__free_unpacked(l, NULL);
		else
			img->links[kept++] = l;
	}
	img->n_links = kept;
	for (size_t i = 0; i < kept; i++)
		if (img->links[i]->has_master && !by_index(img, img->links[i]->master))
			not_a_port(img->links[i]);
}

/*
 * Veth l's other end in another of the tree's namespaces: that namespace's images hold it, and
 * the two agree, once both are read (the one read second checks).
 */
static int check_tree_peer(const struct run_ctx *ctx, const NetLink *l)
{
	struct run_ctx there;
	uint32_t here = run_scope_id(ctx);
	char image[64];

	image_filename(image, sizeof(image), IMG_NET_LINKS, here);
	if (!net_nested_scope_of(ctx, l->peer_netns, &there)) {
		pr_err("image %s: veth %s: the network namespace of its other end (%u) is none of the "
		       "tree's", image, l->name, l->peer_netns);
		return -EINVAL;
	}
	const struct links_state *other = state_of(&there);
	const NetLink *p = other->img ? by_index(other->img, l->peer_netns_ifindex) : NULL;
	if (other->img && (!p || strcmp(p->kind, "veth") || !p->has_peer_netns || p->peer_netns != here ||
			   p->peer_netns_ifindex != l->ifindex || strcmp(p->name, l->peer_name) ||
			   strcmp(p->peer_name, l->name))) {
		pr_err("image %s: veth %s and its other end %s (index %u in the network namespace %u) do not "
		       "name each other", image, l->name, l->peer_name, l->peer_netns_ifindex, l->peer_netns);
		return -EINVAL;
	}
	return 0;
}

static int validate_links(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct links_state *st = state_of(ctx);
	int err;

	(void)rt;
	if (!net_ns_interfaces(ctx))
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_NET_LINKS, run_scope_id(ctx), (ProtobufCMessage **)&st->img)))
		return err;
	for (size_t i = 0; i < st->img->n_links; i++) {
		const NetLink *l = st->img->links[i];
		if (!link_valid(st->img, l)) {
			pr_err("image net-links.img: interface %zu (%s) is invalid", i, l->name);
			return -EINVAL;
		}
		for (size_t k = 0; k < i; k++) {
			if (st->img->links[k]->ifindex == l->ifindex || !strcmp(st->img->links[k]->name, l->name)) {
				pr_err("image net-links.img: interface %s is there twice", l->name);
				return -EINVAL;
			}
		}
	}
	if (net_ns_devices(ctx))
		devices_only(st->img);
	size_t n = st->img->n_links;
	if (!(st->outer = xzalloc((n + 1) * sizeof(*st->outer))) ||
	    !(st->outer_bridge = xzalloc((n + 1) * sizeof(*st->outer_bridge))) ||
	    !(st->lower = xzalloc((n + 1) * sizeof(*st->lower))) ||
	    !(st->bridge_given = xzalloc(n + 1)) || !(st->made_outer = xzalloc(n + 1)) ||
	    !(st->made_device = xzalloc(n + 1)) || !(st->saved_index = xzalloc((n + 1) * sizeof(uint32_t))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const NetLink *l = st->img->links[i];
		st->saved_index[i] = l->ifindex;
		if (l->has_peer_netns && (err = check_tree_peer(ctx, l)))
			return err;
		if (!strcmp(l->kind, "veth") && !l->has_peer_ifindex && !l->has_peer_netns &&
		    ((err = outer_names(ctx, st, i, l)) || (err = outer_free(st->outer[i], l))))
			return err;
		if (l->macvlan && !l->macvlan->has_lower_ifindex && (err = lower_name(ctx, st, i, l)))
			return err;
	}
	return 0;
}

/* One rtnetlink request, acknowledged: 0, or <0 with the kernel's words in why. */
static int ask(int nl, struct nl_buf *b, char *why, size_t len)
{
	int err = nl_talk(nl, b, why, len);

	nl_buf_free(b);
	return err;
}

/*
 * Macvlan l (index i) on its lower device: made in the tree's namespace (stasis is in it), or,
 * on a lower device outside, by stasis's namespace and put into the tree's as it is made.
 */
static int make_macvlan(struct links_state *st, size_t i, char *why, size_t len)
{
	const NetLink *l = st->img->links[i];
	const NetMacvlan *m = l->macvlan;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = l->ifindex };
	bool inside = m->has_lower_ifindex;
	int lower = inside ? (int)m->lower_ifindex : index_of(st->home_nl - 1, st->lower[i]);
	struct nl_buf b = { 0 };

	if (lower < 0) {
		snprintf(why, len, "no interface %s in stasis's network namespace for its lower device "
			 "(--external macvlan[%s]:NAME names another)", st->lower[i], l->name);
		return lower;
	}
	auto_close int tree_ns = inside ? -1 : open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (!inside && tree_ns < 0) {
		snprintf(why, len, "cannot open the tree's network namespace");
		return -errno;
	}
	size_t msg = nl_msg_begin(&b, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, &ifi, sizeof(ifi));
	nl_put_str(&b, IFLA_IFNAME, l->name);
	nl_put_u32(&b, IFLA_LINK, lower);
	if (!inside)
		nl_put_u32(&b, IFLA_NET_NS_FD, tree_ns);
	size_t info = nl_nest_begin(&b, IFLA_LINKINFO);
	nl_put_str(&b, IFLA_INFO_KIND, "macvlan");
	size_t data = nl_nest_begin(&b, IFLA_INFO_DATA);
	nl_put_u32(&b, IFLA_MACVLAN_MODE, m->mode);
	nl_put_u16(&b, IFLA_MACVLAN_FLAGS, m->flags);
	nl_nest_end(&b, data);
	nl_nest_end(&b, info);
	nl_msg_end(&b, msg);
	return ask((inside ? st->nl : st->home_nl) - 1, &b, why, len);
}

/* A new link of kind l->kind, down, with its index, name (and its veth peer). */
static int make_link(struct links_state *st, size_t i, char *why, size_t len)
{
	const NetLink *l = st->img->links[i];
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = l->ifindex };
	struct nl_buf b = { 0 };

	if (l->tun) /* (stasis is in the tree's namespace) */
		return net_tun_make(l, why, len);
	if (l->macvlan)
		return make_macvlan(st, i, why, len);
	size_t m = nl_msg_begin(&b, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, &ifi, sizeof(ifi));
	nl_put_str(&b, IFLA_IFNAME, l->name);
	size_t info = nl_nest_begin(&b, IFLA_LINKINFO);
	nl_put_str(&b, IFLA_INFO_KIND, l->kind);
	size_t data = nl_nest_begin(&b, IFLA_INFO_DATA);
	if (!strcmp(l->kind, "veth") && l->has_peer_netns) { /* (its other end's namespace comes after) */
		struct ifinfomsg peer = { .ifi_family = AF_UNSPEC, .ifi_index = l->peer_netns_ifindex };
		size_t pm = nl_nest_begin(&b, VETH_INFO_PEER);
		memcpy(nl_room(&b, sizeof(peer)), &peer, sizeof(peer));
		nl_put_str(&b, IFLA_IFNAME, l->peer_name);
		nl_put_u32(&b, IFLA_NET_NS_FD, st->peer_ns);
		nl_nest_end(&b, pm);
	} else if (!strcmp(l->kind, "veth")) {
		const NetLink *p = l->has_peer_ifindex ? by_index(st->img, l->peer_ifindex) : NULL;
		struct ifinfomsg peer = { .ifi_family = AF_UNSPEC, .ifi_index = p ? (int)p->ifindex : 0 };
		size_t pm = nl_nest_begin(&b, VETH_INFO_PEER);
		memcpy(nl_room(&b, sizeof(peer)), &peer, sizeof(peer));
		nl_put_str(&b, IFLA_IFNAME, p ? p->name : st->outer[i]);
		if (!p) {
			nl_put_u32(&b, IFLA_NET_NS_FD, st->home);
			if (l->has_peer_mac)
				nl_put(&b, IFLA_ADDRESS, l->peer_mac.data, l->peer_mac.len);
			if (l->has_peer_mtu)
				nl_put_u32(&b, IFLA_MTU, l->peer_mtu);
		}
		nl_nest_end(&b, pm);
	}
	nl_nest_end(&b, data);
	nl_nest_end(&b, info);
	nl_msg_end(&b, m);
	return ask(st->nl - 1, &b, why, len);
}

/* IPv6 settings of a link: its address generation mode, its token (NULL: none). */
static void put_inet6(struct nl_buf *b, uint8_t mode, const ProtobufCBinaryData *token)
{
	size_t spec = nl_nest_begin(b, IFLA_AF_SPEC), in6 = nl_nest_begin(b, AF_INET6);

	if (token)
		nl_put(b, IFLA_INET6_TOKEN, token->data, token->len);
	nl_put_u8(b, IFLA_INET6_ADDR_GEN_MODE, mode);
	nl_nest_end(b, in6);
	nl_nest_end(b, spec);
}

/*
 * A bridge whose MAC is its ports' least and whose MTU their least takes them from its ports
 * as they join, and goes on following them, unless it is given one: given none, it is as it
 * was (its own local forwarding entry for that MAC too, which is then its port's).
 */
static void follows_ports(const NetLinks *img, const NetLink *br, bool *mac, bool *mtu)
{
	const NetLink *least_mac = NULL;
	uint32_t least_mtu = UINT32_MAX;

	*mac = *mtu = false;
	if (strcmp(br->kind, "bridge"))
		return;
	for (size_t i = 0; i < img->n_links; i++) {
		const NetLink *p = img->links[i];
		if (!p->has_master || p->master != br->ifindex)
			continue;
		if (p->has_mac && p->mac.len == br->mac.len &&
		    (!least_mac || memcmp(p->mac.data, least_mac->mac.data, p->mac.len) < 0))
			least_mac = p;
		least_mtu = p->mtu < least_mtu ? p->mtu : least_mtu;
	}
	*mac = br->has_mac && least_mac && !memcmp(least_mac->mac.data, br->mac.data, br->mac.len);
	*mtu = least_mtu == br->mtu;
}

/*
 * Its settings: MTU, MAC, queue length, alias, IPv6 token; IPv6 address generation off until
 * its addresses are in (net_links_addr_gen_mode).
 */
static int configure_link(struct links_state *st, const NetLink *l, char *why, size_t len)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = l->ifindex };
	struct nl_buf b = { 0 };
	bool mac_from_ports, mtu_from_ports;

	follows_ports(st->img, l, &mac_from_ports, &mtu_from_ports);
	size_t m = nl_msg_begin(&b, RTM_NEWLINK, NLM_F_ACK, &ifi, sizeof(ifi));
	if (!mtu_from_ports)
		nl_put_u32(&b, IFLA_MTU, l->mtu);
	if (l->has_mac && !mac_from_ports)
		nl_put(&b, IFLA_ADDRESS, l->mac.data, l->mac.len);
	if (l->has_txqlen)
		nl_put_u32(&b, IFLA_TXQLEN, l->txqlen);
	if (l->alias)
		nl_put_str(&b, IFLA_IFALIAS, l->alias);
	if (l->has_addr_gen_mode)
		put_inet6(&b, IN6_ADDR_GEN_MODE_NONE, l->has_ipv6_token ? &l->ipv6_token : NULL);
	nl_msg_end(&b, m);
	return ask(st->nl - 1, &b, why, len);
}

int net_links_addr_gen_mode(const struct run_ctx *ctx)
{
	struct links_state *st = state_of(ctx);
	char why[256];
	int err = 0;

	for (size_t i = 0; st->img && i < st->img->n_links && !err; i++) {
		const NetLink *l = st->img->links[i];
		struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = l->ifindex };
		struct nl_buf b = { 0 };
		if (!l->has_addr_gen_mode)
			continue;
		size_t m = nl_msg_begin(&b, RTM_NEWLINK, NLM_F_ACK, &ifi, sizeof(ifi));
		put_inet6(&b, l->addr_gen_mode, NULL);
		nl_msg_end(&b, m);
		if ((err = ask(st->nl - 1, &b, why, sizeof(why))) && err != -ENOMEM)
			pr_err("restore: cannot set the IPv6 address generation mode of interface %s: %s%s%s",
			       l->name, strerror(-err), why[0] ? ": " : "", why);
	}
	return err;
}

/* A link's options of one kind as the kernel reports them now. */
struct opts_now {
	const struct info_opts *o;
	NlAttr **v;
	size_t n;
};

static int on_info_opts(const struct nlmsghdr *h, void *arg)
{
	struct opts_now *now = arg;
	const struct nlattr *tb[IFLA_MAX + 1];

	nl_parse_msg(h, sizeof(struct ifinfomsg), tb, IFLA_MAX);
	return h->nlmsg_type == RTM_NEWLINK ? keep_info_opts(now->o, &now->v, &now->n, h) : 0;
}

/*
 * A bridge's options, or a bridge port's, each written where it differs from what the new one
 * has (a kernel without VLAN filtering refuses even to be told that it is off).
 */
static int info_options(struct links_state *st, const NetLink *l, const struct info_opts *o,
			NlAttr *const *want, size_t n, char *why, size_t len)
{
	struct opts_now now = { o, NULL, 0 };
	int err = get_link(st->nl - 1, l->ifindex, on_info_opts, &now);

	for (size_t i = 0; !err && i < n; i++) {
		bool same = false;
		for (size_t k = 0; k < now.n && !same; k++)
			same = now.v[k]->type == want[i]->type && now.v[k]->value.len == want[i]->value.len &&
			       !memcmp(now.v[k]->value.data, want[i]->value.data, want[i]->value.len);
		if (same)
			continue;
		struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = l->ifindex };
		struct nl_buf b = { 0 };
		size_t m = nl_msg_begin(&b, RTM_NEWLINK, NLM_F_ACK, &ifi, sizeof(ifi));
		if (o->data) {
			size_t info = nl_nest_begin(&b, IFLA_LINKINFO);
			nl_put_str(&b, o->kind, "bridge");
			size_t data = nl_nest_begin(&b, o->data);
			nl_put_attrs(&b, want + i, 1);
			nl_nest_end(&b, data);
			nl_nest_end(&b, info);
		} else {
			nl_put_attrs(&b, want + i, 1);
		}
		nl_msg_end(&b, m);
		if ((err = ask(st->nl - 1, &b, why, len)) && err != -ENOMEM)
			pr_err("restore: cannot set option %u (%s %s: %s%s%s", want[i]->type & NLA_TYPE_MASK,
			       o->what, l->name, strerror(-err), why[0] ? ": " : "", why);
	}
	for (size_t k = 0; k < now.n; k++)
		nl_attr__free_unpacked(now.v[k], NULL);
	free(now.v);
	return err;
}

static int add_altnames(struct links_state *st, const NetLink *l, char *why, size_t len)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = l->ifindex };
	struct nl_buf b = { 0 };

	size_t m = nl_msg_begin(&b, RTM_NEWLINKPROP, NLM_F_ACK, &ifi, sizeof(ifi));
	size_t props = nl_nest_begin(&b, IFLA_PROP_LIST);
	for (size_t i = 0; i < l->n_altnames; i++)
		nl_put_str(&b, IFLA_ALT_IFNAME, l->altnames[i]);
	nl_nest_end(&b, props);
	nl_msg_end(&b, m);
	return ask(st->nl - 1, &b, why, len);
}

/* Link ifindex (or the one named name, ifindex 0) set: master (if not 0), flags of mask. */
static int set_link(int nl, int ifindex, const char *name, int master, unsigned flags,
		    unsigned mask, char *why, size_t len)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex, .ifi_flags = flags,
				 .ifi_change = mask };
	struct nl_buf b = { 0 };

	size_t m = nl_msg_begin(&b, RTM_NEWLINK, NLM_F_ACK, &ifi, sizeof(ifi));
	if (!ifindex)
		nl_put_str(&b, IFLA_IFNAME, name);
	if (master)
		nl_put_u32(&b, IFLA_MASTER, master);
	nl_msg_end(&b, m);
	return ask(nl, &b, why, len);
}

/* The outer end of veth l (index i), made with it: a port of its bridge, up if it was. */
static int settle_outer(struct links_state *st, size_t i, const NetLink *l, char *why, size_t len)
{
	const char *out = st->outer[i], *br = st->outer_bridge[i];
	int master = 0, err;

	if (br && (master = index_of(st->home_nl - 1, br)) < 0) {
		if (st->bridge_given[i]) {
			pr_err("restore: veth %s: no bridge %s in stasis's network namespace for its other "
			       "end %s", l->name, br, out);
			return master;
		}
		pr_warn("restore: veth %s: its other end %s was a port of bridge %s, which is gone: it "
			"is left out of any bridge", l->name, out, br);
		master = 0;
	}
	if ((err = set_link(st->home_nl - 1, 0, out, master, l->peer_up ? IFF_UP : 0, IFF_UP, why, len)) &&
	    err != -ENOMEM)
		pr_err("restore: veth %s: cannot set up its other end %s%s%s: %s%s%s", l->name, out,
		       master ? " in bridge " : "", master ? br : "", strerror(-err), why[0] ? ": " : "", why);
	return err;
}

/* What net_links_down does to a namespace's interfaces, loopback aside: veths and macvlans go
 * (a macvlan holds its MAC on its lower device), the rest up goes down. */
struct going_links {
	struct going_link {
		int ifindex;
		bool goes;
	} *v;
	size_t n, gone;
};

static int on_going_link(const struct nlmsghdr *h, void *arg)
{
	struct going_links *g = arg;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct nlattr *tb[IFLA_MAX + 1];

	if (h->nlmsg_type != RTM_NEWLINK || (ifi->ifi_flags & IFF_LOOPBACK))
		return 0;
	nl_parse_msg(h, sizeof(*ifi), tb, IFLA_MAX);
	const char *kind = link_kind(ifi, tb);
	bool goes = kind && (!strcmp(kind, "veth") || !strcmp(kind, "macvlan"));
	if (!goes && !(ifi->ifi_flags & IFF_UP))
		return 0;
	struct going_link *more = xreallocarray(g->v, g->n + 1, sizeof(*more));
	if (!more)
		return -ENOMEM;
	g->v = more;
	g->v[g->n++] = (struct going_link){ ifi->ifi_index, goes };
	g->gone += goes;
	return 0;
}

void net_links_down(const struct run_ctx *ctx, pid_t root)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct going_links g = { 0 };
	char path[64], why[256];
	int err = 0;

	if (!net_ns_config(ctx))
		return;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", root);
	auto_close int ns = open(path, O_RDONLY | O_CLOEXEC);
	auto_close int nl = ns < 0 ? -errno : nl_open_in(ns, NETLINK_ROUTE);
	if (nl < 0)
		err = nl;
	else
		err = nl_dump_all(nl, RTM_GETLINK, &ifi, sizeof(ifi), on_going_link, &g);
	for (size_t i = 0; !err && i < g.n; i++) {
		if (!g.v[i].goes) {
			err = set_link(nl, g.v[i].ifindex, NULL, 0, 0, IFF_UP, why, sizeof(why));
			continue;
		}
		struct ifinfomsg del = { .ifi_family = AF_UNSPEC, .ifi_index = g.v[i].ifindex };
		struct nl_buf b = { 0 };
		nl_msg_end(&b, nl_msg_begin(&b, RTM_DELLINK, NLM_F_ACK, &del, sizeof(del)));
		err = ask(nl, &b, why, sizeof(why));
		if (err == -ENODEV) /* (the other end of a veth deleted before it) */
			err = 0;
	}
	if (err)
		pr_warn("dump pid %d: cannot take the interfaces of its network namespace down before "
			"it goes: %s (peers of its TCP connections may see resets, a restore at once may "
			"find the names of its veths' other ends taken)", root, strerror(-err));
	else
		pr_info("dump pid %d: its network namespace's interfaces gone (%zu veths, with their other "
			"ends, and macvlans) or down (%zu) before it goes", root, g.gone, g.n - g.gone);
	free(g.v);
}

static int ignore(const struct nlmsghdr *h, void *arg)
{
	(void)h;
	(void)arg;
	return 0;
}

/*
 * In the engine's namespace: a persistent tun/tap l that is there already (the same namespace
 * given back) is used as it is (1, l->ifindex its index there); else its name must be free, and
 * if its index is taken, the kernel gives it another (index 0 until it is made).
 */
static int device_room(struct links_state *st, NetLink *l)
{
	int there = index_of(st->nl - 1, l->name), err;
	unsigned flags;

	if (there >= 0 && l->tun && !net_tun_flags(l->name, &flags) && flags == l->tun->flags) {
		pr_info("restore: tun/tap %s is in the network namespace given for the tree already (index "
			"%d): it is used as it is", l->name, there);
		l->ifindex = there;
		return 1;
	}
	if (there >= 0) {
		pr_err("restore: the network namespace given for the tree has an interface %s (index %d) "
		       "already: the tree's %s %s cannot be made there", l->name, there, l->kind, l->name);
		return -EEXIST;
	}
	if ((err = get_link(st->nl - 1, l->ifindex, ignore, NULL)) == -ENODEV)
		return 0;
	if (err)
		return err;
	if (!l->tun) {
		pr_err("restore: index %u of the tree's %s %s is taken in the network namespace given for "
		       "the tree", l->ifindex, l->kind, l->name);
		return -EEXIST;
	}
	pr_warn("restore: index %u of tun/tap %s is taken in the network namespace given for the tree: "
		"it gets another", l->ifindex, l->name);
	l->ifindex = 0;
	return 0;
}

/* Its index, as the kernel chose it. */
static int device_renumbered(struct links_state *st, NetLink *l, uint32_t saved_index)
{
	int index = index_of(st->nl - 1, l->name);

	if (index < 0) {
		pr_err("restore: cannot find tun/tap %s it made: %s", l->name, strerror(-index));
		return index;
	}
	pr_info("restore: tun/tap %s has index %d (it had %u)", l->name, index, saved_index);
	l->ifindex = index;
	return 0;
}

/*
 * Bridge l and its ports as the kernel's link watch sees them once it has caught up: asking
 * for one interface makes it catch up on that one. Else a bridge that comes up right after
 * its ports still counts as running at that instant (IPv6 then sets it up as if it carried).
 */
static void sync_operstate(struct links_state *st, const NetLink *l)
{
	for (size_t i = 0; i < st->img->n_links; i++)
		if (st->img->links[i] == l || (st->img->links[i]->has_master && st->img->links[i]->master == l->ifindex))
			get_link(st->nl - 1, st->img->links[i]->ifindex, ignore, NULL);
}

/*
 * No duplicate address detection on l until net-sysctls.c writes its saved accept_dad: its
 * IPv6 addresses were in use (a socket of the tree may be bound to one).
 */
static void no_dad(const NetLink *l)
{
	char path[64 + IFNAMSIZ];

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/accept_dad", l->name);
	auto_close int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0 && write(fd, "0", 1) != 1)
		pr_debug("restore: cannot turn duplicate address detection off on %s: %m", l->name);
}

static int prepare_links(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct links_state *st = state_of(ctx);
	char why[256];
	int nl, err = 0;

	(void)rt;
	if (!st->img)
		return 0;
	size_t n = st->img->n_links;
	auto_free bool *made = xzalloc(n + 1);
	if (!made)
		return -ENOMEM;
	st->home = net_ns_home(ctx);
	if ((nl = nl_open(NETLINK_ROUTE)) < 0 || (st->nl = nl + 1, nl = nl_open_in(st->home, NETLINK_ROUTE)) < 0) {
		pr_err("restore: cannot talk rtnetlink to make the tree's interfaces: %s", strerror(-nl));
		return nl;
	}
	st->home_nl = nl + 1;
	/* made, down: macvlans last, on lower devices made before them */
	for (size_t k = 0; k < 2 * n && !err; k++) {
		size_t i = k % n;
		NetLink *l = st->img->links[i];
		if (made[i] || !strcmp(l->kind, "loopback") || (k < n) == (l->macvlan != NULL))
			continue;
		if (l->has_peer_netns && net_nested_made_before(ctx, l->peer_netns)) {
			if ((err = get_link(st->nl - 1, l->ifindex, ignore, NULL)) && err != -ENOMEM)
				pr_err("restore: veth %s (index %u) was not made with its other end %s: %s", l->name,
				       l->ifindex, l->peer_name, strerror(-err));
			made[i] = true;
			continue;
		}
		st->peer_ns = l->has_peer_netns ? net_nested_fd(ctx, l->peer_netns) : -1;
		if (net_ns_devices(ctx) && (err = device_room(st, l))) {
			if (err < 0)
				break;
			err = 0; /* (there already) */
			continue;
		}
		if ((err = make_link(st, i, why, sizeof(why)))) {
			if (err != -ENOMEM)
				pr_err("restore: cannot make interface %s (%s%s%s): %s%s%s", l->name, l->kind,
				       st->outer[i] ? ", its other end " : "", st->outer[i] ?: "", strerror(-err),
				       why[0] ? ": " : "", why);
			break;
		}
		st->made_outer[i] = st->outer[i] != NULL;
		st->made_device[i] = net_ns_devices(ctx);
		if (!l->ifindex && (err = device_renumbered(st, l, st->saved_index[i])))
			break;
		if (st->made_device[i])
			pr_info("restore: interface %s (%s) made in the network namespace given for the tree",
				l->name, l->kind);
		for (size_t k = 0; k < n; k++)
			made[k] = made[k] || (l->has_peer_ifindex && st->img->links[k]->ifindex == l->peer_ifindex);
	}
	/* configured, ports of their bridges, then up as they were */
	for (size_t i = 0; i < n && !err; i++) {
		const NetLink *l = st->img->links[i];
		if (l->n_bridge && (err = info_options(st, l, &bridge_info, l->bridge, l->n_bridge, why, sizeof(why))))
			break;
		if (((err = configure_link(st, l, why, sizeof(why))) ||
		     (l->has_master && (err = set_link(st->nl - 1, l->ifindex, NULL, l->master, 0, 0, why, sizeof(why))))) &&
		    err != -ENOMEM)
			pr_err("restore: cannot configure interface %s (MTU %u%s%s): %s%s%s", l->name, l->mtu,
			       l->has_master ? ", bridge " : "",
			       l->has_master ? by_index(st->img, l->master)->name : "", strerror(-err),
			       why[0] ? ": " : "", why);
	}
	/* ports' options once every port is in (one names another as its backup); every
	 * interface's other settings and names */
	for (size_t i = 0; i < n && !err; i++) {
		const NetLink *l = st->img->links[i];
		if (l->n_bridge_port)
			err = info_options(st, l, &port_info, l->bridge_port, l->n_bridge_port, why, sizeof(why));
		if (!err && l->n_settings)
			err = info_options(st, l, &link_info, l->settings, l->n_settings, why, sizeof(why));
		if (!err && l->n_altnames && (err = add_altnames(st, l, why, sizeof(why))) && err != -ENOMEM)
			pr_err("restore: cannot give interface %s its other names (%s%s): %s%s%s", l->name,
			       l->altnames[0], l->n_altnames > 1 ? ", ..." : "", strerror(-err), why[0] ? ": " : "", why);
	}
	/* bridges last: one comes up as it finds its ports (without a port that carries, none) */
	for (size_t k = 0; k < 2 * n && !err; k++) {
		const NetLink *l = st->img->links[k % n];
		size_t i = k % n;
		if ((k < n) == !strcmp(l->kind, "bridge"))
			continue;
		if (k >= n)
			sync_operstate(st, l);
		no_dad(l);
		if ((err = set_link(st->nl - 1, l->ifindex, NULL, 0, l->flags, LINK_FLAGS, why, sizeof(why))) &&
		    err != -ENOMEM)
			pr_err("restore: cannot set the state of interface %s (flags %#x): %s%s%s", l->name,
			       l->flags, strerror(-err), why[0] ? ": " : "", why);
		else if (st->outer[i])
			err = settle_outer(st, i, l, why, sizeof(why));
	}
	return err;
}

/*
 * A failed restore: the outer ends made in stasis's namespace go (the pairs with them), and
 * the devices made in the engine's.
 */
static void undo_links(struct run_ctx *ctx, bool restored)
{
	struct links_state *st = state_of(ctx);
	char why[256];
	int err;

	for (size_t i = 0; !restored && st->made_outer && i < st->img->n_links; i++) {
		if (!st->made_outer[i] && !st->made_device[i])
			continue;
		const char *name = st->made_outer[i] ? st->outer[i] : st->img->links[i]->name;
		struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
		struct nl_buf b = { 0 };
		size_t m = nl_msg_begin(&b, RTM_DELLINK, NLM_F_ACK, &ifi, sizeof(ifi));
		nl_put_str(&b, IFLA_IFNAME, name);
		nl_msg_end(&b, m);
		if ((err = ask((st->made_outer[i] ? st->home_nl : st->nl) - 1, &b, why, sizeof(why))) &&
		    err != -ENODEV)
			pr_warn("restore: cannot remove interface %s it made: %s", name, strerror(-err));
		st->made_outer[i] = st->made_device[i] = false;
	}
}

const struct tree_object_ops tree_net_links = {
	.name = "network interfaces",
	.per_net_ns = true,
	.state_size = sizeof(struct links_state),
	.free_state = free_links,
	.collect = collect_links,
	.validate = validate_links,
	.prepare = prepare_links,
	.undo = undo_links,
};
