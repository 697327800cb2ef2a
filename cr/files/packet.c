/*
 * Packet sockets (AF_PACKET, SOCK_RAW and SOCK_DGRAM): their protocol, the interface and
 * protocol they are bound to (by ifindex: the tree's own namespace gets its interfaces back
 * with their indexes, netns/net-links.c; the name saved with it is checked), their SOL_PACKET
 * options that differ from a fresh socket's (PACKET_VERSION, _RESERVE, _AUXDATA, _ORIGDEV,
 * _VNET_HDR, _TIMESTAMP, ...), their memberships (PACKET_ADD_MEMBERSHIP: promiscuous,
 * all-multicast, multicast and unicast addresses, read with sock_diag, PACKET_SHOW_MCLIST)
 * and their fanout group (id, mode and flags; a group of a BPF mode fails the dump: its
 * program cannot be read). The classic BPF filter is every socket's (sockopts.c). Packets
 * waiting to be read are not kept (the dump says so). Sockets with rings to be mapped
 * (PACKET_RX_RING, PACKET_TX_RING) fail the dump, naming them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/packet_diag.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "nlmsg.h"
#include "util.h"

#define MREQ_ADDR_MAX 8 /* packet_mreq's mr_address */

static const struct {
	int name;
	const char *what;
} packet_opts[] = {
	{ PACKET_VERSION, "PACKET_VERSION" },
	{ PACKET_RESERVE, "PACKET_RESERVE" },
	{ PACKET_AUXDATA, "PACKET_AUXDATA" },
	{ PACKET_ORIGDEV, "PACKET_ORIGDEV" },
	{ PACKET_VNET_HDR, "PACKET_VNET_HDR" },
	{ PACKET_TIMESTAMP, "PACKET_TIMESTAMP" },
	{ PACKET_LOSS, "PACKET_LOSS" },
	{ PACKET_QDISC_BYPASS, "PACKET_QDISC_BYPASS" },
	{ PACKET_TX_HAS_OFF, "PACKET_TX_HAS_OFF" },
	{ PACKET_IGNORE_OUTGOING, "PACKET_IGNORE_OUTGOING" },
};

/* ---- dump ---- */

struct packet_diag {
	bool found, rings;
	size_t n_mc, all_mc; /* memberships kept, memberships the socket has */
	struct packet_diag_mclist mc[64];
};

static void parse_diag(const struct nlmsghdr *h, struct packet_diag *d)
{
	const struct packet_diag_msg *m = NLMSG_DATA(h);
	const struct nlattr *a = (const struct nlattr *)(m + 1);
	int left = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));

	d->found = true;
	while (left >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= left) {
		size_t len = a->nla_len - sizeof(*a);
		if (a->nla_type == PACKET_DIAG_RX_RING || a->nla_type == PACKET_DIAG_TX_RING)
			d->rings = true;
		else if (a->nla_type == PACKET_DIAG_MCLIST)
			for (size_t k = 0; k < len / sizeof(d->mc[0]); k++, d->all_mc++)
				if (d->n_mc < ARRAY_SIZE(d->mc))
					memcpy(&d->mc[d->n_mc++], (const char *)(a + 1) + k * sizeof(d->mc[0]),
					       sizeof(d->mc[0]));
		int step = NLA_ALIGN(a->nla_len);
		left -= step;
		a = (const struct nlattr *)((const char *)a + step);
	}
}

/* What sock_diag knows of the packet socket ino of this network namespace (stasis's: the
 * tree's during a dump): its memberships and whether it has rings. */
struct packet_find {
	uint64_t ino;
	struct packet_diag *d;
};

static int on_packet(const struct nlmsghdr *h, void *arg)
{
	const struct packet_find *f = arg;
	const struct packet_diag_msg *m = NLMSG_DATA(h);

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) || m->pdiag_ino != f->ino)
		return 0;
	parse_diag(h, f->d);
	return 1;
}

static int packet_diag_of(uint64_t ino, struct packet_diag *d)
{
	struct packet_diag_req req = { .sdiag_family = AF_PACKET,
				       .pdiag_show = PACKET_SHOW_MCLIST | PACKET_SHOW_RING_CFG };
	struct packet_find f = { ino, d };

	memset(d, 0, sizeof(*d));
	int err = nl_sock_diag(&req, sizeof(req), on_packet, &f);
	return err ? err : d->found ? 0 : -ENOENT;
}

static int add_opt(PacketSocket *ps, int name, int value)
{
	InetOpt *o = xzalloc(sizeof(*o)), **more;

	if (!o || !(more = xreallocarray(ps->opts, ps->n_opts + 1, sizeof(*more)))) {
		free(o);
		return -ENOMEM;
	}
	ps->opts = more;
	ps->opts[ps->n_opts++] = o;
	inet_opt__init(o);
	o->level = SOL_PACKET;
	o->name = name;
	if (!(o->value.data = xzalloc(sizeof(int))))
		return -ENOMEM;
	o->value.len = sizeof(int);
	memcpy(o->value.data, &value, sizeof(int));
	return 0;
}

static int dump_opts(int sk, PacketSocket *ps)
{
	auto_close int fresh = socket(AF_PACKET, ps->type | SOCK_CLOEXEC, 0);
	int err;

	if (fresh < 0)
		return -errno;
	for (size_t i = 0; i < ARRAY_SIZE(packet_opts); i++) {
		int now = 0, dflt = 0;
		socklen_t len = sizeof(now), dlen = sizeof(dflt);
		if (getsockopt(sk, SOL_PACKET, packet_opts[i].name, &now, &len) || len != sizeof(now))
			continue;
		if (!getsockopt(fresh, SOL_PACKET, packet_opts[i].name, &dflt, &dlen) && now == dflt)
			continue;
		if ((err = add_opt(ps, packet_opts[i].name, now)))
			return err;
	}
	return 0;
}

static int dump_mreqs(PacketSocket *ps, const struct packet_diag *d)
{
	if (!(ps->mreqs = xzalloc((d->n_mc + 1) * sizeof(*ps->mreqs))))
		return -ENOMEM;
	for (size_t i = 0; i < d->n_mc; i++) {
		PacketMreq *r = xzalloc(sizeof(*r));
		size_t alen = d->mc[i].pdmc_alen < MREQ_ADDR_MAX ? d->mc[i].pdmc_alen : MREQ_ADDR_MAX;
		if (!r)
			return -ENOMEM;
		ps->mreqs[ps->n_mreqs++] = r;
		packet_mreq__init(r);
		r->ifindex = d->mc[i].pdmc_index;
		r->type = d->mc[i].pdmc_type;
		r->count = d->mc[i].pdmc_count;
		if (!(r->addr.data = xzalloc(alen + 1)))
			return -ENOMEM;
		r->addr.len = alen;
		memcpy(r->addr.data, d->mc[i].pdmc_addr, alen);
	}
	return 0;
}

static int dump_packet(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	int family = 0, type = 0, fanout = 0, err;
	socklen_t len = sizeof(int);
	struct sockaddr_ll sll = { 0 };
	socklen_t slen = sizeof(sll);
	struct packet_diag d;
	char name[IF_NAMESIZE] = "";

	if (!S_ISSOCK(p->st.st_mode))
		return 0;
	auto_close int sk = task_fd_copy(t->pid, p->fd);
	if (sk < 0 || getsockopt(sk, SOL_SOCKET, SO_DOMAIN, &family, &len) || family != AF_PACKET)
		return 0;
	if (getsockopt(sk, SOL_SOCKET, SO_TYPE, &type, &len)) {
		pr_perror("dump pid %d fd %d: cannot look at packet socket %s", t->pid, p->fd, p->link);
		return -errno;
	}
	if (type != SOCK_RAW && type != SOCK_DGRAM) {
		pr_err("dump pid %d fd %d: %s is a packet socket of type %d (%s): not supported",
		       t->pid, p->fd, p->link, type, type == SOCK_PACKET ? "SOCK_PACKET, the obsolete kind" : "unknown");
		return -ENOTSUP;
	}
	if (getsockname(sk, (struct sockaddr *)&sll, &slen) ||
	    getsockopt(sk, SOL_PACKET, PACKET_FANOUT, &fanout, &len)) {
		pr_perror("dump pid %d fd %d: cannot look at packet socket %s", t->pid, p->fd, p->link);
		return -errno;
	}
	if ((err = packet_diag_of(p->st.st_ino, &d))) {
		pr_err("dump pid %d fd %d: cannot ask sock_diag about packet socket %s: %s", t->pid, p->fd,
		       p->link, strerror(-err));
		return err;
	}
	if (d.rings) {
		pr_err("dump pid %d fd %d: packet socket %s has a ring to be mapped (PACKET_RX_RING "
		       "or PACKET_TX_RING): not supported", t->pid, p->fd, p->link);
		return -ENOTSUP;
	}
	if (d.all_mc > d.n_mc) {
		pr_err("dump pid %d fd %d: packet socket %s has %zu memberships (PACKET_ADD_MEMBERSHIP): "
		       "more than %zu are not supported", t->pid, p->fd, p->link, d.all_mc, d.n_mc);
		return -ENOTSUP;
	}
	unsigned mode = (fanout >> 16) & 0xff;
	if (fanout && (mode == PACKET_FANOUT_CBPF || mode == PACKET_FANOUT_EBPF)) {
		pr_err("dump pid %d fd %d: packet socket %s is in fanout group %u of a BPF mode (%u): its "
		       "program cannot be read: not supported", t->pid, p->fd, p->link, fanout & 0xffff, mode);
		return -ENOTSUP;
	}
	PacketSocket *ps = xzalloc(sizeof(*ps));
	unsigned logged = log_errors();
	if (!ps)
		return -ENOMEM;
	packet_socket__init(ps);
	e->packet = ps;
	e->kind = FD_KIND__FD_PACKET;
	e->has_flags = true;
	e->flags = p->flags;
	ps->type = type;
	ps->protocol = sll.sll_protocol;
	if (sll.sll_ifindex > 0) {
		ps->has_ifindex = true;
		ps->ifindex = sll.sll_ifindex;
		if (if_indextoname(sll.sll_ifindex, name) && !(ps->ifname = xstrdup(name)))
			return -ENOMEM;
	}
	if (fanout) {
		ps->has_fanout = true;
		ps->fanout = fanout;
	}
	if ((err = dump_opts(sk, ps)) || (err = dump_mreqs(ps, &d)))
		return log_unnamed(logged, err, "dump pid %d fd %d: cannot read the options of packet socket %s",
				   t->pid, p->fd, p->link);
	char byte;
	if (recv(sk, &byte, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
		pr_warn("dump pid %d fd %d: packets waiting in packet socket %s are not kept (the "
			"program may see them as lost)", t->pid, p->fd, p->link);
	return 1;
}

/* ---- restore ---- */

static const char *opt_name(uint32_t name)
{
	for (size_t i = 0; i < ARRAY_SIZE(packet_opts); i++)
		if ((int)name == packet_opts[i].name)
			return packet_opts[i].what;
	return NULL;
}

static bool opt_known(const InetOpt *o)
{
	return o->level == SOL_PACKET && opt_name(o->name) && o->value.len == sizeof(int);
}

static int validate_packet(const struct restore_task *t, const FdEntry *e)
{
	const PacketSocket *ps = e->packet;
	bool ok = ps && (ps->type == SOCK_RAW || ps->type == SOCK_DGRAM) && ps->protocol <= 0xffff &&
		  (!ps->has_ifindex || (ps->ifindex && ps->ifindex <= INT32_MAX)) &&
		  (!ps->ifname || strlen(ps->ifname) < IF_NAMESIZE);

	for (size_t i = 0; ok && i < ps->n_opts; i++)
		ok = opt_known(ps->opts[i]);
	for (size_t i = 0; ok && i < ps->n_mreqs; i++)
		ok = ps->mreqs[i]->addr.len <= MREQ_ADDR_MAX && ps->mreqs[i]->ifindex <= INT32_MAX &&
		     ps->mreqs[i]->type <= 0xffff && ps->mreqs[i]->count >= 1 && ps->mreqs[i]->count <= 1024;
	unsigned mode = (ps && ps->has_fanout) ? (ps->fanout >> 16) & 0xff : 0;
	ok = ok && mode != PACKET_FANOUT_CBPF && mode != PACKET_FANOUT_EBPF;
	if (!ok) {
		pr_err("image fds-%d.img: fd %u: packet socket is invalid", t->pid, e->fd);
		return -EINVAL;
	}
	return 0;
}

/* The interface the socket was bound to: its index if its name is the same (or was not
 * known), else the index of an interface of that name. */
static int bound_ifindex(const struct restore_task *t, const FdEntry *e)
{
	const PacketSocket *ps = e->packet;
	char now[IF_NAMESIZE];
	unsigned idx;

	if (!ps->has_ifindex)
		return 0;
	if (!ps->ifname || (if_indextoname(ps->ifindex, now) && !strcmp(now, ps->ifname)))
		return ps->ifindex;
	if ((idx = if_nametoindex(ps->ifname))) {
		pr_warn("restore pid %d fd %u: packet socket's interface %s has index %u now (was %u)",
			t->pid, e->fd, ps->ifname, idx, ps->ifindex);
		return idx;
	}
	pr_err("restore pid %d fd %u: packet socket was bound to interface %s (index %u): no such "
	       "interface", t->pid, e->fd, ps->ifname, ps->ifindex);
	return -ENODEV;
}

static int join(const struct restore_task *t, const FdEntry *e, int sk)
{
	const PacketSocket *ps = e->packet;

	for (size_t i = 0; i < ps->n_mreqs; i++) {
		const PacketMreq *r = ps->mreqs[i];
		struct packet_mreq mr = { .mr_ifindex = r->ifindex, .mr_type = r->type,
					  .mr_alen = r->addr.len };
		if (r->addr.len)
			memcpy(mr.mr_address, r->addr.data, r->addr.len);
		for (uint32_t k = 0; k < r->count; k++)
			if (setsockopt(sk, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr))) {
				pr_perror("restore pid %d fd %u: cannot add membership of type %u on "
					  "interface %u", t->pid, e->fd, r->type, r->ifindex);
				return -errno;
			}
	}
	return 0;
}

static int open_packet(struct restore_task *t, const FdEntry *e)
{
	const PacketSocket *ps = e->packet;
	int ifindex = bound_ifindex(t, e), err = 0;
	/* made with no protocol: no packet comes in before the bind gives it its own */
	auto_close int sk = socket(AF_PACKET, ps->type | SOCK_CLOEXEC, 0);

	if (ifindex < 0)
		return ifindex;
	if (sk < 0)
		return -errno;
	for (size_t i = 0; i < ps->n_opts; i++) {
		int v;
		memcpy(&v, ps->opts[i]->value.data, sizeof(v));
		if (setsockopt(sk, SOL_PACKET, ps->opts[i]->name, &v, sizeof(v))) {
			pr_perror("restore pid %d fd %u: cannot set %s to %d", t->pid, e->fd,
				  opt_name(ps->opts[i]->name), v);
			return -errno;
		}
	}
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = ps->protocol,
				   .sll_ifindex = ifindex };
	if ((ifindex || ps->protocol) && bind(sk, (struct sockaddr *)&sll, sizeof(sll))) {
		pr_perror("restore pid %d fd %u: cannot bind packet socket to interface %d, protocol 0x%04x",
			  t->pid, e->fd, ifindex, ntohs(ps->protocol));
		return -errno;
	}
	if ((err = join(t, e, sk)) || (err = sockopts_restore(sk, e)))
		return err;
	/* the same group again (the kernel picked a unique id at dump: it is given now) */
	int fanout = ps->fanout & ~(PACKET_FANOUT_FLAG_UNIQUEID << 16);
	if (ps->has_fanout && setsockopt(sk, SOL_PACKET, PACKET_FANOUT, &fanout, sizeof(fanout))) {
		pr_perror("restore pid %d fd %u: cannot join fanout group %u (mode %u)", t->pid, e->fd,
			  ps->fanout & 0xffff, (ps->fanout >> 16) & 0xff);
		return -errno;
	}
	if (fcntl(sk, F_SETFL, e->flags & O_NONBLOCK))
		return -errno;
	int fd = sk;
	sk = -1;
	return fd;
}

const struct fd_kind_ops fd_kind_packet = {
	.name = "packet socket",
	.dump = dump_packet,
	.validate = validate_packet,
	.open = open_packet,
	.kind = FD_KIND__FD_PACKET,
};
