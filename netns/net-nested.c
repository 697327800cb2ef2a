/*
 * Network namespaces that processes of the tree made for themselves (net-nested.img;
 * cr/nested-ns.h), as systemd makes one for a service with PrivateNetwork=yes: its loopback
 * alone. Dump: per namespace whether its loopback is up, read by a helper inside it; another
 * interface there, another address than the loopback's own, or a firewall table (nftables,
 * legacy iptables) or IPsec policy or state is refused by name. Its unix
 * sockets are listed for cr/files/unix-diag.c (unix_diag_add_netns). Restore: its maker, when
 * created, unshares CLONE_NEWNET and brings the loopback up again; the processes below it
 * inherit it. Unix sockets come back in the tree's namespace (stasis makes most of them there):
 * nothing tells the two apart but an abstract name, which the dump refuses in a nested
 * namespace. Sockets of other families (inet, netlink, packet) come back where the restore
 * makes them: in their process if one holds them, in stasis (the tree's namespace) if several
 * do, but an inet, netlink or packet socket of a nested namespace that processes there alone
 * share is made by the namespace's maker (fd_entry.netns_maker, fd_netns_maker: the kinds'
 * opened_by_process), once it made the namespace and before it forks them; one of the tree's
 * own namespace that a process of a nested one holds alone (made before it unshared: vsftpd's
 * session with its control connection) is made by stasis there and inherited
 * (fd_entry.made_in_tree_ns, cr/files/shared.c). The dump notes each (net_nested_note_socket)
 * and refuses one that would come back in another namespace than its own (check_held_sockets).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/sockios.h>

#include "files/unix.h"
#include "log.h"
#include "nested-ns.h"
#include "net-nested.h"
#include "net-xfrm.h"
#include "nft.h"
#include "nlmsg.h"
#include "ns-helper.h"
#include "tree-objects.h"
#include "task.h"
#include "util.h"
#include "xtables.h"

/* Dump: a socket (not unix) that a process holds, when the tree has nested namespaces. */
struct nested_held_socket {
	uint64_t ino, ns; /* the socket's inode, the namespace it was made in */
	uint64_t holder_ns;
	pid_t pid;
	int fd, family;
	bool maker_opens; /* pid's entry for it is the socket's own (not a sharer's), of a kind
			   * that the maker of its namespace can open (inet, netlink, packet) */
	bool stasis_opens; /* that, of the tree's namespace, pid's in one a process made */
};

struct net_nested_state {
	NetNested *img;
	struct nested_ns_view *views; /* restore */
	uint64_t *ids;                /* dump: the namespaces' inodes */
	struct nested_held_socket *held; /* dump */
	size_t n_held;
	uint64_t tree_ns;             /* dump: the tree's own (its root's) namespace's inode */
};

static struct net_nested_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_net_nested);
}

/* What a helper inside the namespace sees. */
struct ns_probe {
	int32_t lo_up;
	char other[IFNAMSIZ];  /* an interface besides lo ("": none) */
	char addr[INET6_ADDRSTRLEN]; /* an address besides 127.0.0.1 and ::1 ("": none) */
	char firewall[160];    /* a table of nftables or legacy iptables, an IPsec policy ("": none) */
};

static int on_nft_table(const struct nlmsghdr *h, void *arg)
{
	const struct nlattr *tb[NFTA_TABLE_MAX + 1];
	char *found = arg;

	if (h->nlmsg_type != ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE) || found[0])
		return 0;
	nl_parse_msg(h, sizeof(struct nfgenmsg), tb, NFTA_TABLE_MAX);
	snprintf(found, sizeof(((struct ns_probe *)0)->firewall), "nftables table %s",
		 nl_str(tb[NFTA_TABLE_NAME]) ?: "?");
	return 0;
}

/* A firewall table of the calling thread's namespace, named into found (which stays "" if none). */
static int find_firewall(char *found, size_t len)
{
	static const char *const legacy[] = { "ip_tables_names", "ip6_tables_names", "arp_tables_names" };
	struct nfgenmsg g = { .nfgen_family = NFPROTO_UNSPEC, .version = NFNETLINK_V0 };
	char name[40];

	for (size_t i = 0; i < ARRAY_SIZE(legacy) && !found[0]; i++)
		if (xtables_first(legacy[i], name, sizeof(name)))
			snprintf(found, len, "legacy %.*s table %s", (int)strcspn(legacy[i], "_"), legacy[i], name);
	if (found[0])
		return 0;
	int nl = nft_socket();
	if (nl < 0)
		return nl;
	int err = nl_dump_all(nl, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE, &g, sizeof(g), on_nft_table, found);
	close(nl);
	return err || found[0] ? err : net_xfrm_find(found, len);
}

static int probe_ns(void *out, size_t len)
{
	struct ns_probe *r = out;
	struct if_nameindex *names = if_nameindex();
	struct ifaddrs *addrs;
	struct ifreq ifr = { .ifr_name = "lo" };
	int s;

	(void)len;
	if (!names)
		return -errno;
	for (struct if_nameindex *i = names; i->if_index && !r->other[0]; i++)
		if (strcmp(i->if_name, "lo"))
			snprintf(r->other, sizeof(r->other), "%s", i->if_name);
	if_freenameindex(names);
	if (getifaddrs(&addrs))
		return -errno;
	for (struct ifaddrs *a = addrs; a && !r->addr[0]; a = a->ifa_next) {
		const struct sockaddr *sa = a->ifa_addr;
		if (sa && sa->sa_family == AF_INET &&
		    ((const struct sockaddr_in *)sa)->sin_addr.s_addr != htonl(INADDR_LOOPBACK))
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->addr, sizeof(r->addr));
		else if (sa && sa->sa_family == AF_INET6 &&
			 !IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr))
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->addr, sizeof(r->addr));
	}
	freeifaddrs(addrs);
	int err = find_firewall(r->firewall, sizeof(r->firewall));
	if (err)
		return err;
	if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 || ioctl(s, SIOCGIFFLAGS, &ifr)) {
		err = -errno;
		if (s >= 0)
			close(s);
		return err;
	}
	close(s);
	r->lo_up = !!(ifr.ifr_flags & IFF_UP);
	return 0;
}

/* One namespace: its image entry, its loopback read inside it, its unix sockets listed. */
static int collect_one(struct run_ctx *ctx, const struct dump_tree *tr, const struct nested_ns *v,
		       NestedNetNs **out)
{
	NestedNetNs *u = xzalloc(sizeof(*u));
	pid_t maker = tr->tasks[v->members[0]].pid;
	struct ns_probe r = { 0 };
	int err;

	if (!u)
		return -ENOMEM;
	nested_net_ns__init(u);
	*out = u;
	if (!(u->pids = xzalloc(v->n * sizeof(*u->pids))))
		return -ENOMEM;
	u->ns_id = v->id;
	u->maker = tr->tasks[v->members[0]].vpid;
	for (size_t m = 0; m < v->n; m++)
		u->pids[u->n_pids++] = tr->tasks[v->members[m]].vpid;
	if ((err = ns_helper_run(maker, CLONE_NEWNET, probe_ns, &r, sizeof(r)))) {
		pr_err("dump pid %u: cannot read its network namespace net:[%llu]", u->maker,
		       (unsigned long long)v->id);
		return err;
	}
	if (r.other[0] || r.addr[0] || r.firewall[0]) {
		pr_err("dump pid %u: its network namespace net:[%llu] holds %s %s besides its loopback: "
		       "only a namespace with its loopback alone is supported yet", u->maker,
		       (unsigned long long)v->id, r.other[0] ? "interface" : r.addr[0] ? "address" : "firewall rules:",
		       r.other[0] ? r.other : r.addr[0] ? r.addr : r.firewall);
		return -ENOTSUP;
	}
	u->lo_up = r.lo_up;
	pr_info("dump pid %u: its own network namespace net:[%llu] (loopback %s), %zu processes",
		u->maker, (unsigned long long)v->id, r.lo_up ? "up" : "down", u->n_pids);
	return unix_diag_add_netns(ctx, maker);
}

static int collect_net_nested(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct net_nested_state *st = state_of(ctx);
	struct nested_ns *v;
	size_t n;
	int err;

	if ((err = nested_ns_find(tr, "net", &v, &n)) || !n)
		return err;
	char path[64];
	struct stat root_ns;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", tr->tasks[0].pid);
	if (stat(path, &root_ns)) {
		pr_perror("dump pid %d: cannot tell its network namespace", tr->tasks[0].pid);
		return -errno;
	}
	st->tree_ns = root_ns.st_ino;
	if (!(st->img = xzalloc(sizeof(*st->img))) ||
	    (net_nested__init(st->img), !(st->img->ns = xzalloc(n * sizeof(*st->img->ns)))) ||
	    !(st->ids = xzalloc(n * sizeof(*st->ids)))) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && !err; i++) {
		st->ids[i] = v[i].id;
		err = collect_one(ctx, tr, &v[i], &st->img->ns[st->img->n_ns++]);
	}
	if (!err)
		tr->inv.has_net_nested = tr->inv.net_nested = true;
out:
	nested_ns_free(v, n);
	return err;
}

/* The maker of network namespace ns_ino if it is one a process of the tree made, else 0. */
static uint32_t maker_of(const struct net_nested_state *st, uint64_t ns_ino)
{
	for (size_t i = 0; st->img && i < st->img->n_ns; i++)
		if (st->ids[i] == ns_ino)
			return st->img->ns[i]->maker;
	return 0;
}

int net_nested_note_socket(const struct run_ctx *ctx, pid_t pid, FdEntry *e)
{
	struct net_nested_state *st = state_of(ctx);
	bool maker_opens = e->kind == FD_KIND__FD_INET || e->kind == FD_KIND__FD_NETLINK ||
			   e->kind == FD_KIND__FD_PACKET;
	int fd = e->fd, family = 0;
	socklen_t len = sizeof(family);
	struct stat sock, ns, holder;
	char path[64];

	if (!st->img)
		return 0;
	auto_close int sk = task_fd_copy(pid, fd);
	if (sk < 0 || fstat(sk, &sock) || getsockopt(sk, SOL_SOCKET, SO_DOMAIN, &family, &len) ||
	    family == AF_UNIX)
		return 0; /* (the kinds say what they cannot read; unix sockets: cr/files/unix-diag.c) */
	auto_close int nsfd = ioctl(sk, SIOCGSKNS);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	if (nsfd < 0 || fstat(nsfd, &ns) || stat(path, &holder)) {
		pr_perror("dump pid %d fd %d: cannot tell which network namespace its socket is of", pid, fd);
		return -errno;
	}
	if (st->n_held % 64 == 0) {
		struct nested_held_socket *more = xreallocarray(st->held, st->n_held + 64, sizeof(*more));
		if (!more)
			return -ENOMEM;
		st->held = more;
	}
	bool stasis_opens = maker_opens && ns.st_ino == st->tree_ns && holder.st_ino != ns.st_ino &&
			    maker_of(st, holder.st_ino);
	st->held[st->n_held++] = (struct nested_held_socket){ sock.st_ino, ns.st_ino, holder.st_ino,
							      pid, fd, family, maker_opens, stasis_opens };
	/* (its entry is written before the tree's objects: marked now, judged in the write) */
	if (maker_opens && (e->netns_maker = maker_of(st, ns.st_ino)))
		e->has_netns_maker = true;
	if (stasis_opens) /* (made before its holder unshared: vsftpd's sessions' connections) */
		e->has_made_in_tree_ns = e->made_in_tree_ns = true;
	return 0;
}

static int by_socket(const void *a, const void *b)
{
	const struct nested_held_socket *x = a, *y = b;
	return (x->ino > y->ino) - (x->ino < y->ino);
}

/*
 * The restore makes a socket that one process holds in that process; one that several hold in
 * stasis, in the tree's namespace, unless it is an inet, netlink or packet socket of a nested
 * namespace that only processes there hold: that namespace's maker opens it then (netns_maker),
 * before it forks them. A socket that would come back in another namespace than its own is
 * refused, naming a holder.
 */
static int check_held_sockets(struct net_nested_state *st)
{
	if (st->n_held)
		qsort(st->held, st->n_held, sizeof(*st->held), by_socket);
	for (size_t i = 0, j; i < st->n_held; i = j) {
		const struct nested_held_socket *h = &st->held[i], *other = NULL, *outside = NULL;
		bool maker_opens = false;
		for (j = i; j < st->n_held && st->held[j].ino == h->ino; j++) {
			if (st->held[j].pid != h->pid)
				other = &st->held[j];
			if (st->held[j].holder_ns != h->ns)
				outside = &st->held[j];
			maker_opens |= st->held[j].maker_opens;
		}
		if (other && maker_of(st, h->ns) && maker_opens && !outside)
			continue; /* (netns_maker) */
		if (other && maker_of(st, h->ns)) {
			const struct nested_held_socket *x = outside ? outside : other;
			pr_err("dump pid %d fd %d: a socket of family %d made in network namespace "
			       "net:[%llu], the one pid %u made, is held by pid %d%s too: a socket held by "
			       "several processes comes back in the tree's namespace unless it is an inet, "
			       "netlink or packet socket that processes of its own namespace alone hold (not "
			       "supported yet)",
			       h->pid, h->fd, h->family, (unsigned long long)h->ns, maker_of(st, h->ns),
			       x->pid, outside ? ", of another namespace," : "");
			return -ENOTSUP;
		}
		if (!other && h->ns != h->holder_ns && !h->stasis_opens &&
		    (maker_of(st, h->ns) || maker_of(st, h->holder_ns))) {
			pr_err("dump pid %d fd %d: a socket of family %d made in network namespace "
			       "net:[%llu] is held by this process of net:[%llu] alone: it would come back "
			       "in the holder's namespace (not supported yet)", h->pid, h->fd, h->family,
			       (unsigned long long)h->ns, (unsigned long long)h->holder_ns);
			return -ENOTSUP;
		}
	}
	return 0;
}

uint32_t net_nested_maker_of(const struct run_ctx *ctx, uint64_t ns_ino)
{
	return maker_of(state_of(ctx), ns_ino);
}

static int write_net_nested(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct net_nested_state *st = state_of(ctx);
	int err;

	(void)tr;
	if (!st->img)
		return 0;
	if ((err = check_held_sockets(st)))
		return err;
	return image_write(ctx->images_dir_fd, IMG_NET_NESTED, 0, &st->img->base);
}

/* Each socket that names the maker of its namespace names one net-nested.img holds. */
static int check_socket_makers(const struct net_nested_state *st, const struct restore_tree *rt)
{
	for (size_t i = 0; i < rt->nr_tasks; i++)
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			bool known = false;
			if (!e->has_netns_maker)
				continue;
			for (size_t n = 0; st->img && n < st->img->n_ns && !known; n++)
				known = st->img->ns[n]->maker == e->netns_maker;
			if (!known) {
				pr_err("image fds-%d.img: fd %u: its socket's network namespace is pid %u's, "
				       "which net-nested.img does not hold", rt->tasks[i].pid, e->fd,
				       e->netns_maker);
				return -EINVAL;
			}
		}
	return 0;
}

static int validate_net_nested(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct net_nested_state *st = state_of(ctx);
	int err;

	if ((err = nested_ns_image_read(ctx->images_dir_fd, rt->inv->net_nested, IMG_NET_NESTED,
					(ProtobufCMessage **)&st->img)) ||
	    (err = check_socket_makers(st, rt)) || !st->img)
		return err;
	if (!(st->views = xzalloc((st->img->n_ns + 1) * sizeof(*st->views))))
		return -ENOMEM;
	for (size_t i = 0; i < st->img->n_ns; i++) {
		const NestedNetNs *u = st->img->ns[i];
		st->views[i] = (struct nested_ns_view){ u->maker, u->pids, u->n_pids };
	}
	return nested_ns_validate(rt, "net-nested.img", st->views, st->img->n_ns);
}

int net_nested_make(const struct run_ctx *ctx, pid_t pid)
{
	struct net_nested_state *st = state_of(ctx);
	ssize_t i = st->img ? nested_ns_made_by(st->views, st->img->n_ns, pid) : -1;
	struct ifreq ifr = { .ifr_name = "lo" };

	if (i < 0)
		return 0;
	if (unshare(CLONE_NEWNET)) {
		pr_perror("restore pid %d: cannot make its own network namespace", pid);
		return -errno;
	}
	if (!st->img->ns[i]->lo_up)
		return 0;
	auto_close int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr))) {
		pr_perror("restore pid %d: cannot bring the loopback of its own network namespace up", pid);
		return -errno;
	}
	return 0;
}

static void free_net_nested(void *state)
{
	struct net_nested_state *st = state;

	if (st->img)
		image_free(&st->img->base);
	free(st->views);
	free(st->ids);
	free(st->held);
}

const struct tree_object_ops tree_net_nested = {
	.name = "nested network namespaces",
	.state_size = sizeof(struct net_nested_state),
	.free_state = free_net_nested,
	.collect = collect_net_nested,
	.write = write_net_nested,
	.validate = validate_net_nested,
};
