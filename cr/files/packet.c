/*
 * Packet sockets (AF_PACKET, SOCK_RAW and SOCK_DGRAM): their protocol, the interface and
 * protocol they are bound to (by ifindex: the tree's own namespace gets its interfaces back
 * with their indexes, netns/net-links.c; the name saved with it is checked), their SOL_PACKET
 * options that differ from a fresh socket's (PACKET_VERSION, _RESERVE, _AUXDATA, _ORIGDEV,
 * _VNET_HDR, _TIMESTAMP, ...), their memberships (PACKET_ADD_MEMBERSHIP: promiscuous,
 * all-multicast, multicast and unicast addresses, read with sock_diag, PACKET_SHOW_MCLIST)
 * and their fanout group (id, mode and flags; a group of a BPF mode fails the dump: its
 * program cannot be read). The classic BPF filter is every socket's (sockopts.c). Packets
 * waiting to be read are not kept (the dump says so).
 *
 * Rings (PACKET_RX_RING, PACKET_TX_RING, any TPACKET version): their parameters, from
 * sock_diag (PACKET_SHOW_RING_CFG), set again after the options (PACKET_VERSION and _RESERVE
 * first: the kernel refuses them once a ring exists) and before the bind. Their contents, the
 * frames in flight, are not kept (the dump says so): a restored ring is a fresh one, every
 * frame's status TP_STATUS_KERNEL, the kernel writing the next packet in its first frame.
 * A TPACKET_V3 receive ring's reader (libpcap: tcpdump) reads its blocks in turn from where it
 * was: that block is saved (PacketRing.user_block, read from the blocks' headers), and it and
 * those after it are handed to the reader empty at restore, so that it meets the kernel at the
 * first block (a V2 frame handed over empty would be a packet the program sees).
 * A mapping of the rings (cr/mm.c: a shared mapping of socket:[INO]) is saved as such, not as
 * memory: the whole rings at offset 0, mapped again by the blob from the socket's fd (the fd
 * of the process that holds it; if none does, the socket's state as sock_diag alone shows it is
 * saved with the mapping, a socket opened for the mapping alone). A mapping of a part of the
 * rings (a piece unmapped, split by mprotect, or moved away from the rest), one in a process
 * that shares its fd table (CLONE_FILES), and one of a socket no fd of the process holds that
 * another process holds or maps fail the dump naming the pid, the address and the socket; a
 * ring mapped twice is two whole mappings.
 *
 * SOCK_PACKET sockets (the obsolete kind, socket(AF_PACKET, SOCK_PACKET, protocol)): their
 * protocol (sock_diag's, getsockname does not show it) and the device they are bound to
 * (getsockname's spkt_device; bind by name); they have no SOL_PACKET option, ring, membership
 * or fanout group.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/packet_diag.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "nlmsg.h"
#include "proc.h"
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
	bool found, has_info, has_fanout, has_filter;
	uint8_t type;
	uint16_t num; /* its protocol, host order */
	struct packet_diag_info info;
	uint32_t fanout;
	struct sock_filter filter[BPF_MAXINSNS];
	size_t filter_len;
	bool has_ring[2]; /* RX, TX */
	struct packet_diag_ring ring[2];
	size_t n_mc, all_mc; /* memberships kept, memberships the socket has */
	struct packet_diag_mclist mc[64];
};

static void parse_diag(const struct nlmsghdr *h, struct packet_diag *d)
{
	const struct packet_diag_msg *m = NLMSG_DATA(h);
	const struct nlattr *a = (const struct nlattr *)(m + 1);
	int left = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));

	d->found = true;
	d->type = m->pdiag_type;
	d->num = m->pdiag_num;
	while (left >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= left) {
		size_t len = a->nla_len - sizeof(*a);
		const void *data = a + 1;
		if ((a->nla_type == PACKET_DIAG_RX_RING || a->nla_type == PACKET_DIAG_TX_RING) &&
		    len >= sizeof(d->ring[0])) {
			int k = a->nla_type == PACKET_DIAG_TX_RING;
			d->has_ring[k] = true;
			memcpy(&d->ring[k], data, sizeof(d->ring[k]));
		} else if (a->nla_type == PACKET_DIAG_INFO && len >= sizeof(d->info)) {
			d->has_info = true;
			memcpy(&d->info, data, sizeof(d->info));
		} else if (a->nla_type == PACKET_DIAG_FANOUT && len >= sizeof(uint32_t)) {
			d->has_fanout = true;
			memcpy(&d->fanout, data, sizeof(uint32_t));
		} else if (a->nla_type == PACKET_DIAG_FILTER && len) {
			d->has_filter = true;
			d->filter_len = len / sizeof(d->filter[0]) < BPF_MAXINSNS ? len / sizeof(d->filter[0])
										  : BPF_MAXINSNS;
			memcpy(d->filter, data, d->filter_len * sizeof(d->filter[0]));
		} else if (a->nla_type == PACKET_DIAG_MCLIST) {
			for (size_t k = 0; k < len / sizeof(d->mc[0]); k++, d->all_mc++)
				if (d->n_mc < ARRAY_SIZE(d->mc))
					memcpy(&d->mc[d->n_mc++], (const char *)data + k * sizeof(d->mc[0]),
					       sizeof(d->mc[0]));
		}
		int step = NLA_ALIGN(a->nla_len);
		left -= step;
		a = (const struct nlattr *)((const char *)a + step);
	}
}

/* What sock_diag knows of the packet socket ino of this network namespace (stasis's: the
 * tree's during a dump): its type, protocol, options, memberships, fanout group, filter and
 * rings. */
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
				       .pdiag_show = PACKET_SHOW_INFO | PACKET_SHOW_MCLIST |
						     PACKET_SHOW_RING_CFG | PACKET_SHOW_FANOUT |
						     PACKET_SHOW_FILTER };
	struct packet_find f = { ino, d };

	memset(d, 0, sizeof(*d));
	int err = nl_sock_diag(&req, sizeof(req), on_packet, &f);
	return err ? err : d->found ? 0 : -ENOENT;
}

/* The bytes a ring takes in the mapping: its blocks. */
static uint64_t ring_bytes(const PacketRing *r)
{
	return r ? (uint64_t)r->block_size * r->block_nr : 0;
}

/* What mmap() of the socket must map: its rings, RX first. */
static uint64_t rings_bytes(const PacketSocket *ps)
{
	return ring_bytes(ps->rx_ring) + ring_bytes(ps->tx_ring);
}

/* A ring as setsockopt() takes it, from what sock_diag shows (the sizes asked for: the kernel
 * keeps the block size in pages, which setsockopt wants page-aligned). NULL: out of memory,
 * or *bad says why it cannot be made again. */
static PacketRing *ring_of(const struct packet_diag_ring *dr, bool v3, const char **bad)
{
	*bad = NULL;
	if (!dr->pdr_block_nr || !dr->pdr_frame_size || !dr->pdr_block_size ||
	    (uint64_t)dr->pdr_block_size / dr->pdr_frame_size * dr->pdr_block_nr != dr->pdr_frame_nr) {
		*bad = "its sizes are not consistent";
		return NULL;
	}
	PacketRing *r = xzalloc(sizeof(*r));
	if (!r)
		return NULL;
	packet_ring__init(r);
	r->block_size = dr->pdr_block_size;
	r->block_nr = dr->pdr_block_nr;
	r->frame_size = dr->pdr_frame_size;
	r->frame_nr = dr->pdr_frame_nr;
	if (v3) {
		r->has_retire_tmo = r->has_sizeof_priv = r->has_features = true;
		r->retire_tmo = dr->pdr_retire_tmo;
		r->sizeof_priv = dr->pdr_sizeof_priv;
		r->features = dr->pdr_features;
	}
	return r;
}

/* The socket's rings into ps (version: its PACKET_VERSION); what says whose, for the log; say:
 * log that their frames in flight are not kept. */
static int dump_rings(PacketSocket *ps, const struct packet_diag *d, int version, const char *what, bool say)
{
	PacketRing **slot[2] = { &ps->rx_ring, &ps->tx_ring };
	static const char *const names[2] = { "PACKET_RX_RING", "PACKET_TX_RING" };

	for (int k = 0; k < 2; k++) {
		const char *bad;
		if (!d->has_ring[k])
			continue;
		if (!(*slot[k] = ring_of(&d->ring[k], version == TPACKET_V3, &bad))) {
			if (!bad)
				return -ENOMEM;
			pr_err("%s: %s (blocks of %u bytes x %u, frames of %u bytes x %u): %s: not "
			       "supported", what, names[k], d->ring[k].pdr_block_size,
			       d->ring[k].pdr_block_nr, d->ring[k].pdr_frame_size, d->ring[k].pdr_frame_nr,
			       bad);
			return -ENOTSUP;
		}
	}
	if (say && (ps->rx_ring || ps->tx_ring))
		pr_info("%s: its rings' frames in flight are not kept: every frame is the kernel's "
			"(TP_STATUS_KERNEL) after the restore", what);
	return 0;
}

/*
 * A TPACKET_V3 receive ring's reader: the block it reads next, from the blocks' headers
 * (through a mapping of the rings of sk, the socket's copy): its oldest retired block
 * (TP_STATUS_USER, the least sequence number), else the one the kernel fills (the greatest:
 * the kernel numbers the blocks it opens). Left unset when the ring cannot be read (warned).
 */
static void v3_reader_block(int sk, PacketSocket *ps, const char *what)
{
	PacketRing *rx = ps->rx_ring;
	size_t bytes = rings_bytes(ps); /* (mmap takes both rings or nothing, the receive one first) */
	uint8_t *ring = mmap(NULL, bytes, PROT_READ, MAP_SHARED, sk, 0);
	uint64_t oldest_user = UINT64_MAX, newest = 0;
	uint32_t user = 0, filling = 0;

	if (ring == MAP_FAILED) {
		pr_warn("%s: cannot read its TPACKET_V3 ring (%m): it is read from its first block "
			"after the restore", what);
		return;
	}
	for (uint32_t b = 0; b < rx->block_nr; b++) {
		const struct tpacket_block_desc *bd = (const void *)(ring + (size_t)b * rx->block_size);
		uint64_t seq = bd->hdr.bh1.seq_num;
		if ((bd->hdr.bh1.block_status & TP_STATUS_USER) && seq < oldest_user) {
			oldest_user = seq;
			user = b;
		}
		if (seq > newest) {
			newest = seq;
			filling = b;
		}
	}
	munmap(ring, bytes);
	rx->has_user_block = true;
	rx->user_block = oldest_user != UINT64_MAX ? user : filling;
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

/* What a SOCK_PACKET socket has: its protocol (sock_diag's) and the device it is bound to
 * (getsockname's name, sock_diag's index). */
static int dump_spkt(int sk, PacketSocket *ps, const struct packet_diag *d)
{
	struct sockaddr sa = { 0 };
	socklen_t len = sizeof(sa);
	char name[sizeof(sa.sa_data) + 1] = "";

	if (getsockname(sk, &sa, &len))
		return -errno;
	memcpy(name, sa.sa_data, sizeof(sa.sa_data));
	ps->protocol = htons(d->num);
	if (d->has_info && d->info.pdi_index > 0) {
		ps->has_ifindex = true;
		ps->ifindex = d->info.pdi_index;
		if (name[0] && !(ps->ifname = xstrdup(name)))
			return -ENOMEM;
	}
	return 0;
}

static int dump_packet(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	int family = 0, type = 0, fanout = 0, version = TPACKET_V1, err;
	socklen_t len = sizeof(int);
	struct sockaddr_ll sll = { 0 };
	socklen_t slen = sizeof(sll);
	struct packet_diag d;
	char name[IF_NAMESIZE] = "", what[64];

	if (!S_ISSOCK(p->st.st_mode))
		return 0;
	auto_close int sk = task_fd_copy(t->pid, p->fd);
	if (sk < 0 || getsockopt(sk, SOL_SOCKET, SO_DOMAIN, &family, &len) || family != AF_PACKET)
		return 0;
	if (getsockopt(sk, SOL_SOCKET, SO_TYPE, &type, &len)) {
		pr_perror("dump pid %d fd %d: cannot look at packet socket %s", t->pid, p->fd, p->link);
		return -errno;
	}
	if (type != SOCK_RAW && type != SOCK_DGRAM && type != SOCK_PACKET) {
		pr_err("dump pid %d fd %d: %s is a packet socket of unknown type %d: not supported",
		       t->pid, p->fd, p->link, type);
		return -ENOTSUP;
	}
	if ((err = packet_diag_of(p->st.st_ino, &d))) {
		pr_err("dump pid %d fd %d: cannot ask sock_diag about packet socket %s: %s", t->pid, p->fd,
		       p->link, strerror(-err));
		return err;
	}
	if (type != SOCK_PACKET &&
	    (getsockname(sk, (struct sockaddr *)&sll, &slen) ||
	     getsockopt(sk, SOL_PACKET, PACKET_FANOUT, &fanout, &len) ||
	     getsockopt(sk, SOL_PACKET, PACKET_VERSION, &version, &len))) {
		pr_perror("dump pid %d fd %d: cannot look at packet socket %s", t->pid, p->fd, p->link);
		return -errno;
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
	if (type == SOCK_PACKET) {
		if ((err = dump_spkt(sk, ps, &d)))
			return log_unnamed(logged, err, "dump pid %d fd %d: cannot read the name of SOCK_PACKET "
					   "socket %s", t->pid, p->fd, p->link);
		goto queue;
	}
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
	snprintf(what, sizeof(what), "dump pid %d fd %d", t->pid, p->fd);
	if ((err = dump_opts(sk, ps)) || (err = dump_mreqs(ps, &d)) ||
	    (err = dump_rings(ps, &d, version, what, true)))
		return log_unnamed(logged, err, "dump pid %d fd %d: cannot read the options of packet socket %s",
				   t->pid, p->fd, p->link);
	if (ps->rx_ring && version == TPACKET_V3)
		v3_reader_block(sk, ps, what);
queue:;
	char byte;
	if (recv(sk, &byte, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
		pr_warn("dump pid %d fd %d: packets waiting in packet socket %s are not kept (the "
			"program may see them as lost)", t->pid, p->fd, p->link);
	return 1;
}

/*
 * A packet socket that no fd holds, its rings mapped: what sock_diag shows of it (d), its
 * classic BPF filter included. Its socket options (SO_*, SO_LOCK_FILTER among them),
 * PACKET_QDISC_BYPASS, _IGNORE_OUTGOING and _TX_HAS_OFF need an fd to be read: a fresh
 * socket's are taken (said).
 */
static int spare_socket_of(const struct packet_diag *d, uint64_t ino, const char *what, PacketSocket **out)
{
	char name[IF_NAMESIZE] = "";
	int err;

	if (d->type != SOCK_RAW && d->type != SOCK_DGRAM) {
		pr_err("%s: packet socket socket:[%llu] of type %u: not supported", what,
		       (unsigned long long)ino, d->type);
		return -ENOTSUP;
	}
	if (!d->has_info || d->all_mc > d->n_mc) {
		pr_err("%s: sock_diag does not show all of packet socket socket:[%llu] (its options, "
		       "or more than %zu memberships): not supported", what, (unsigned long long)ino, d->n_mc);
		return -ENOTSUP;
	}
	unsigned mode = (d->fanout >> 16) & 0xff;
	if (d->has_fanout && (mode == PACKET_FANOUT_CBPF || mode == PACKET_FANOUT_EBPF)) {
		pr_err("%s: packet socket socket:[%llu] is in fanout group %u of a BPF mode (%u): not "
		       "supported", what, (unsigned long long)ino, d->fanout & 0xffff, mode);
		return -ENOTSUP;
	}
	PacketSocket *ps = *out = xzalloc(sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	packet_socket__init(ps);
	ps->has_ino = true;
	ps->ino = ino;
	ps->type = d->type;
	ps->protocol = htons(d->num);
	if (d->info.pdi_index > 0) {
		ps->has_ifindex = true;
		ps->ifindex = d->info.pdi_index;
		if (if_indextoname(d->info.pdi_index, name) && !(ps->ifname = xstrdup(name)))
			return -ENOMEM;
	}
	if (d->has_fanout) {
		ps->has_fanout = true;
		ps->fanout = d->fanout;
	}
	if (d->has_filter) {
		ps->has_filter = true;
		ps->filter.len = d->filter_len * sizeof(d->filter[0]);
		if (!(ps->filter.data = xzalloc(ps->filter.len + 1)))
			return -ENOMEM;
		memcpy(ps->filter.data, d->filter, ps->filter.len);
	}
	const struct { int name; bool set; int value; } opts[] = {
		{ PACKET_VERSION, d->info.pdi_version != TPACKET_V1, d->info.pdi_version },
		{ PACKET_RESERVE, d->info.pdi_reserve != 0, d->info.pdi_reserve },
		{ PACKET_AUXDATA, d->info.pdi_flags & PDI_AUXDATA, 1 },
		{ PACKET_ORIGDEV, d->info.pdi_flags & PDI_ORIGDEV, 1 },
		{ PACKET_VNET_HDR, d->info.pdi_flags & PDI_VNETHDR, 1 },
		{ PACKET_LOSS, d->info.pdi_flags & PDI_LOSS, 1 },
		{ PACKET_TIMESTAMP, d->info.pdi_tstamp != 0, d->info.pdi_tstamp },
	};
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		if (opts[i].set && (err = add_opt(ps, opts[i].name, opts[i].value)))
			return err;
	if ((err = dump_mreqs(ps, d)) || (err = dump_rings(ps, d, d->info.pdi_version, what, false)))
		return err;
	pr_warn("%s: packet socket socket:[%llu] is held by no fd: its socket options (SO_*, "
		"whether its filter is locked), PACKET_QDISC_BYPASS, _IGNORE_OUTGOING and _TX_HAS_OFF "
		"cannot be read, a fresh socket's are taken", what, (unsigned long long)ino);
	return 0;
}

/* Another process of the tree that holds socket ino (an fd) or maps it: its pid; 0: none. A
 * socket no fd of t holds is made again for t's mappings alone, which must then be its only
 * user. */
static pid_t other_user(const struct dump_task *t, uint64_t ino)
{
	char want[48];

	snprintf(want, sizeof(want), "socket:[%llu]", (unsigned long long)ino);
	for (size_t i = 0; i < t->tree_size; i++) {
		const struct dump_task *u = &t->tree[i];
		char path[64];
		if (u->tgid == t->tgid)
			continue;
		if (fd_holding_socket(u, ino) >= 0)
			return u->pid;
		snprintf(path, sizeof(path), "/proc/%d/maps", u->pid);
		auto_free char *maps = read_file_at(AT_FDCWD, path, NULL);
		if (maps && strstr(maps, want))
			return u->pid;
	}
	return 0;
}

int packet_ring_vma_dump(struct dump_task *t, const struct proc_vma *pv, uint64_t ino, VmaEntry *e)
{
	struct packet_diag d;
	char what[96];
	int err;

	snprintf(what, sizeof(what), "dump pid %d: mapping %#llx-%#llx", t->pid,
		 (unsigned long long)pv->start, (unsigned long long)pv->end);
	if ((err = packet_diag_of(ino, &d)) == -ENOENT || (!err && !d.has_ring[0] && !d.has_ring[1])) {
		pr_err("%s is memory of socket:[%llu], which is no packet socket with rings (a TCP "
		       "zero-copy receive area, an AF_XDP socket's rings, ...): not supported", what,
		       (unsigned long long)ino);
		return -ENOTSUP;
	}
	if (err) {
		pr_err("%s: cannot ask sock_diag about socket:[%llu]: %s", what, (unsigned long long)ino,
		       strerror(-err));
		return err;
	}
	if (t->fds_owner) {
		pr_err("%s is the rings of packet socket socket:[%llu] in a process that shares the fd "
		       "table of pid %d (CLONE_FILES): not supported", what, (unsigned long long)ino,
		       t->fds_owner->pid);
		return -ENOTSUP;
	}
	/* the sizes as the socket's are saved, to compare the mapping with */
	PacketSocket sizes = PACKET_SOCKET__INIT;
	if ((err = dump_rings(&sizes, &d, d.has_info ? d.info.pdi_version : TPACKET_V1, what, false)) == 0) {
		uint64_t bytes = rings_bytes(&sizes);
		if (pv->pgoff || pv->end - pv->start != bytes) {
			pr_err("%s maps %llu bytes at offset %llu of the rings of packet socket "
			       "socket:[%llu], which take %llu bytes: only a mapping of the whole rings is "
			       "supported (a piece unmapped, split by mprotect or moved?)", what,
			       (unsigned long long)(pv->end - pv->start), (unsigned long long)pv->pgoff,
			       (unsigned long long)ino, (unsigned long long)bytes);
			err = -ENOTSUP;
		}
	}
	packet_ring__free_unpacked(sizes.rx_ring, NULL);
	packet_ring__free_unpacked(sizes.tx_ring, NULL);
	if (err)
		return err;
	e->kind = VMA_KIND__VMA_PACKET_RING;
	e->has_socket_ino = true;
	e->socket_ino = ino;
	int fd = fd_holding_socket(t, ino);
	if (fd >= 0) {
		e->has_ring_fd = true;
		e->ring_fd = fd;
		pr_info("%s: the rings of packet socket fd %d (not saved as memory: their frames in "
			"flight are not kept)", what, fd);
		return 0;
	}
	if (fd != -ENOENT)
		return fd;
	Mm *mm = t->mm;
	for (size_t i = 0; i < mm->n_ring_sockets; i++)
		if (mm->ring_sockets[i]->ino == ino) {
			e->has_ring_socket = true;
			e->ring_socket = i;
			return 0;
		}
	pid_t other = other_user(t, ino);
	if (other) {
		pr_err("%s is the rings of packet socket socket:[%llu], which no fd of the process holds "
		       "but pid %d holds or maps too: not supported", what, (unsigned long long)ino, other);
		return -ENOTSUP;
	}
	PacketSocket **more = xreallocarray(mm->ring_sockets, mm->n_ring_sockets + 1, sizeof(*more));
	if (!more)
		return -ENOMEM;
	mm->ring_sockets = more;
	PacketSocket *ps = NULL;
	err = spare_socket_of(&d, ino, what, &ps);
	if (ps) /* the image's from here, whole or not */
		mm->ring_sockets[mm->n_ring_sockets++] = ps;
	if (err)
		return err;
	e->has_ring_socket = true;
	e->ring_socket = mm->n_ring_sockets - 1;
	pr_info("%s: the rings of packet socket socket:[%llu], which no fd holds (not saved as "
		"memory: their frames in flight are not kept)", what, (unsigned long long)ino);
	return 0;
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

static bool ring_valid(const PacketRing *r, bool tx)
{
	if (!r)
		return true;
	uint64_t per_block = r->frame_size ? r->block_size / r->frame_size : 0;
	return r->block_size && r->block_size % PAGE_SIZE == 0 && r->block_size <= (1u << 30) &&
	       r->block_nr && r->block_nr <= (1u << 20) && r->frame_size >= 16 && per_block &&
	       per_block * r->block_nr == r->frame_nr &&
	       (!tx || (!r->retire_tmo && !r->sizeof_priv && !r->features && !r->has_user_block)) &&
	       (!r->has_user_block || r->user_block < r->block_nr);
}

/* Whether ps is a packet socket this kind can make (its fields in range). */
static bool socket_valid(const PacketSocket *ps)
{
	bool spkt = ps && ps->type == SOCK_PACKET;
	bool ok = ps && (ps->type == SOCK_RAW || ps->type == SOCK_DGRAM || spkt) && ps->protocol <= 0xffff &&
		  (!ps->has_ifindex || (ps->ifindex && ps->ifindex <= INT32_MAX)) &&
		  (!ps->ifname || strlen(ps->ifname) < (spkt ? sizeof(((struct sockaddr *)0)->sa_data) + 1 : IF_NAMESIZE)) &&
		  ring_valid(ps->rx_ring, false) && ring_valid(ps->tx_ring, true);

	/* a SOCK_PACKET socket has nothing but its protocol and device */
	ok = ok && (!spkt || (!ps->n_opts && !ps->n_mreqs && !ps->has_fanout && !ps->rx_ring && !ps->tx_ring));
	for (size_t i = 0; ok && i < ps->n_opts; i++)
		ok = opt_known(ps->opts[i]);
	for (size_t i = 0; ok && i < ps->n_mreqs; i++)
		ok = ps->mreqs[i]->addr.len <= MREQ_ADDR_MAX && ps->mreqs[i]->ifindex <= INT32_MAX &&
		     ps->mreqs[i]->type <= 0xffff && ps->mreqs[i]->count >= 1 && ps->mreqs[i]->count <= 1024;
	ok = ok && (!ps->has_filter || (ps->filter.len && ps->filter.len % sizeof(struct sock_filter) == 0 &&
				       ps->filter.len / sizeof(struct sock_filter) <= BPF_MAXINSNS));
	unsigned mode = (ps && ps->has_fanout) ? (ps->fanout >> 16) & 0xff : 0;
	return ok && mode != PACKET_FANOUT_CBPF && mode != PACKET_FANOUT_EBPF;
}

static int validate_packet(const struct restore_task *t, const FdEntry *e)
{
	if (!socket_valid(e->packet)) {
		pr_err("image fds-%d.img: fd %u: packet socket is invalid", t->pid, e->fd);
		return -EINVAL;
	}
	return 0;
}

/* The interface the socket was bound to: its index if its name is the same (or was not
 * known), else the index of an interface of that name. who: "restore pid 7 fd 3", for the log. */
static int bound_ifindex(const PacketSocket *ps, const char *who)
{
	char now[IF_NAMESIZE];
	unsigned idx;

	if (!ps->has_ifindex)
		return 0;
	if (!ps->ifname || (if_indextoname(ps->ifindex, now) && !strcmp(now, ps->ifname)))
		return ps->ifindex;
	if ((idx = if_nametoindex(ps->ifname))) {
		pr_warn("%s: packet socket's interface %s has index %u now (was %u)", who, ps->ifname,
			idx, ps->ifindex);
		return idx;
	}
	pr_err("%s: packet socket was bound to interface %s (index %u): no such interface", who,
	       ps->ifname, ps->ifindex);
	return -ENODEV;
}

static int join(const PacketSocket *ps, int sk, const char *who)
{
	for (size_t i = 0; i < ps->n_mreqs; i++) {
		const PacketMreq *r = ps->mreqs[i];
		struct packet_mreq mr = { .mr_ifindex = r->ifindex, .mr_type = r->type,
					  .mr_alen = r->addr.len };
		if (r->addr.len)
			memcpy(mr.mr_address, r->addr.data, r->addr.len);
		for (uint32_t k = 0; k < r->count; k++)
			if (setsockopt(sk, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr))) {
				pr_perror("%s: cannot add membership of type %u on interface %u", who,
					  r->type, r->ifindex);
				return -errno;
			}
	}
	return 0;
}

/*
 * A TPACKET_V3 receive ring made again: the kernel fills its first block, while its reader
 * reads block user_block next, as at the dump. That block and those after it are handed to the
 * reader retired and empty (TP_STATUS_USER, no packet): it hands them back and meets the kernel
 * at the first block (else it waited at its block while the kernel filled the others: packets
 * came late, or were dropped once the ring was full).
 */
static int v3_meet_reader(int sk, const PacketSocket *ps, const char *who)
{
	const PacketRing *rx = ps->rx_ring;
	size_t bytes = rings_bytes(ps);
	uint32_t hdr = (sizeof(struct tpacket_block_desc) + 7) & ~7u, first = hdr + ((rx->sizeof_priv + 7) & ~7u);

	if (!rx->has_user_block || !rx->user_block)
		return 0;
	uint8_t *ring = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, sk, 0);
	if (ring == MAP_FAILED) {
		pr_perror("%s: cannot map its TPACKET_V3 ring", who);
		return -errno;
	}
	for (uint32_t b = rx->user_block; b < rx->block_nr; b++) {
		struct tpacket_block_desc *bd = (void *)(ring + (size_t)b * rx->block_size);
		bd->offset_to_priv = hdr;
		bd->hdr.bh1.num_pkts = 0;
		bd->hdr.bh1.offset_to_first_pkt = bd->hdr.bh1.blk_len = first;
		__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_USER, __ATOMIC_RELEASE);
	}
	munmap(ring, bytes);
	pr_debug("%s: its TPACKET_V3 reader reads block %u next: blocks %u-%u handed to it empty", who,
		 rx->user_block, rx->user_block, rx->block_nr - 1);
	return 0;
}

/* The socket's rings again, as they were asked for (tpacket_req3 for TPACKET_V3). */
static int set_rings(const PacketSocket *ps, int sk, const char *who)
{
	const PacketRing *rings[2] = { ps->rx_ring, ps->tx_ring };
	static const int opts[2] = { PACKET_RX_RING, PACKET_TX_RING };
	int version = TPACKET_V1;
	socklen_t vlen = sizeof(version);

	if ((ps->rx_ring || ps->tx_ring) && getsockopt(sk, SOL_PACKET, PACKET_VERSION, &version, &vlen))
		return -errno;
	for (int k = 0; k < 2; k++) {
		const PacketRing *r = rings[k];
		if (!r)
			continue;
		struct tpacket_req3 req = { .tp_block_size = r->block_size, .tp_block_nr = r->block_nr,
					    .tp_frame_size = r->frame_size, .tp_frame_nr = r->frame_nr,
					    .tp_retire_blk_tov = r->retire_tmo,
					    .tp_sizeof_priv = r->sizeof_priv,
					    .tp_feature_req_word = r->features };
		socklen_t len = version == TPACKET_V3 ? sizeof(req) : sizeof(struct tpacket_req);
		if (setsockopt(sk, SOL_PACKET, opts[k], &req, len)) {
			pr_perror("%s: cannot make its %s ring again (TPACKET_V%d, blocks of %u bytes x %u, "
				  "frames of %u bytes x %u)", who, k ? "transmit" : "receive", version + 1,
				  r->block_size, r->block_nr, r->frame_size, r->frame_nr);
			return -errno;
		}
	}
	return ps->rx_ring && version == TPACKET_V3 ? v3_meet_reader(sk, ps, who) : 0;
}

/* SOCK_PACKET: made with its protocol (bind cannot give one), its fd's socket options (e),
 * bound by device name; what came in from another interface before the bind is dropped. */
static int open_spkt(const PacketSocket *ps, const FdEntry *e, const char *who)
{
	int ifindex = bound_ifindex(ps, who);
	auto_close int sk = socket(AF_PACKET, SOCK_PACKET | SOCK_CLOEXEC, ps->protocol);
	struct sockaddr sa = { .sa_family = AF_PACKET };
	char name[IF_NAMESIZE] = "", byte;
	int err;

	if (ifindex < 0)
		return ifindex;
	if (sk < 0)
		return -errno;
	if (e && (err = sockopts_restore(sk, e)))
		return err;
	if (ifindex) {
		if (!if_indextoname(ifindex, name) || strlen(name) > sizeof(sa.sa_data)) {
			pr_err("%s: SOCK_PACKET socket's interface %d has no name a bind can take", who, ifindex);
			return -ENODEV;
		}
		memcpy(sa.sa_data, name, strlen(name));
		if (bind(sk, &sa, sizeof(sa))) {
			pr_perror("%s: cannot bind SOCK_PACKET socket to %s", who, name);
			return -errno;
		}
		for (int k = 0; k < 4096 && recv(sk, &byte, 1, MSG_DONTWAIT | MSG_TRUNC) >= 0; k++)
			; /* (bounded: a busy interface may never let it be empty) */
	}
	int fd = sk;
	sk = -1;
	return fd;
}

/* A packet socket as ps says: options, rings, filter (its fd's socket options e, or a filter
 * of ps), bind, memberships, fanout group; nothing comes in before the filter is there. */
static int open_socket(const PacketSocket *ps, const FdEntry *e, const char *who)
{
	if (ps->type == SOCK_PACKET)
		return open_spkt(ps, e, who);
	int ifindex = bound_ifindex(ps, who), err = 0;
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
			pr_perror("%s: cannot set %s to %d", who, opt_name(ps->opts[i]->name), v);
			return -errno;
		}
	}
	if ((err = set_rings(ps, sk, who)))
		return err;
	/* the filter of a socket no fd holds (an fd's is set with its socket options) */
	struct sock_fprog prog = { ps->filter.len / sizeof(struct sock_filter), (struct sock_filter *)ps->filter.data };
	if (ps->has_filter && setsockopt(sk, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog))) {
		pr_perror("%s: cannot attach its filter of %u instructions", who, prog.len);
		return -errno;
	}
	if (e && (err = sockopts_restore(sk, e)))
		return err;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = ps->protocol,
				   .sll_ifindex = ifindex };
	if ((ifindex || ps->protocol) && bind(sk, (struct sockaddr *)&sll, sizeof(sll))) {
		pr_perror("%s: cannot bind packet socket to interface %d, protocol 0x%04x", who, ifindex,
			  ntohs(ps->protocol));
		return -errno;
	}
	if ((err = join(ps, sk, who)))
		return err;
	/* the same group again (the kernel picked a unique id at dump: it is given now) */
	int fanout = ps->fanout & ~(PACKET_FANOUT_FLAG_UNIQUEID << 16);
	if (ps->has_fanout && setsockopt(sk, SOL_PACKET, PACKET_FANOUT, &fanout, sizeof(fanout))) {
		pr_perror("%s: cannot join fanout group %u (mode %u)", who, ps->fanout & 0xffff,
			  (ps->fanout >> 16) & 0xff);
		return -errno;
	}
	int fd = sk;
	sk = -1;
	return fd;
}

static int open_packet(struct restore_task *t, const FdEntry *e)
{
	char who[48];

	snprintf(who, sizeof(who), "restore pid %d fd %u", t->pid, e->fd);
	auto_close int sk = open_socket(e->packet, e, who);
	if (sk < 0)
		return sk;
	if (fcntl(sk, F_SETFL, e->flags & O_NONBLOCK))
		return -errno;
	int fd = sk;
	sk = -1;
	return fd;
}

/* ---- mappings of rings (cr/mm.c) ---- */

bool packet_ring_socket_valid(const PacketSocket *ps)
{
	return socket_valid(ps) && ps->type != SOCK_PACKET && (ps->rx_ring || ps->tx_ring);
}

int packet_ring_vma_check(const struct restore_task *t, const VmaEntry *v)
{
	char whose[48];
	const PacketSocket *ps;

	if (v->has_ring_socket) {
		ps = t->mm->ring_sockets[v->ring_socket];
		snprintf(whose, sizeof(whose), "socket:[%llu], which no fd holds", (unsigned long long)ps->ino);
	} else {
		const FdEntry *e = fd_entry_at(t, v->ring_fd);
		if (e && e->kind == FD_KIND__FD_SHARED)
			return 0; /* another process's entry: mmap() checks the size */
		if (!e && t->fds->has_table_of) {
			pr_err("restore pid %d: mapping %#llx-%#llx is the rings of its fd %u, but it shares "
			       "the fd table of pid %u, which is made after it", t->pid,
			       (unsigned long long)v->start, (unsigned long long)v->end, v->ring_fd,
			       t->fds->table_of);
			return -EINVAL;
		}
		ps = e && e->kind == FD_KIND__FD_PACKET ? e->packet : NULL;
		snprintf(whose, sizeof(whose), "fd %u", v->ring_fd);
	}
	if (!ps || rings_bytes(ps) != v->end - v->start) {
		pr_err("restore pid %d: mapping %#llx-%#llx is the rings of packet socket %s, which %s",
		       t->pid, (unsigned long long)v->start, (unsigned long long)v->end, whose,
		       ps ? "take another size" : "is no packet socket");
		return -EINVAL;
	}
	return 0;
}

int packet_ring_socket_open(struct restore_task *t, const PacketSocket *ps)
{
	char who[64];

	snprintf(who, sizeof(who), "restore pid %d: packet socket socket:[%llu]", t->pid,
		 (unsigned long long)ps->ino);
	int fd = open_socket(ps, NULL, who);
	return fd < 0 ? fd : restore_move_high(t, fd);
}

const struct fd_kind_ops fd_kind_packet = {
	.name = "packet socket",
	.dump = dump_packet,
	.validate = validate_packet,
	.open = open_packet,
	.opened_by_process = fd_netns_maker,
	.kind = FD_KIND__FD_PACKET,
};
