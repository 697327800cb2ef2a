/*
 * nftables over netlink: a batch (NFNL_MSG_BATCH_BEGIN ... END) is one transaction of the
 * kernel's; each message asks for an acknowledgement so that the first error is known.
 *
 * The lock table: two sets of connections, keyed by the concatenation local address . local
 * port . remote address . remote port (each part padded to 32 bits, as the kernel's registers
 * hold them), one per family; two base chains (input and output hooks, priority -300: before
 * conntrack) whose rules load the packet's fields into consecutive registers, look the key up
 * in the set and drop on a match. A set lookup costs the same for 10,000 connections as for
 * one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nft.h"
#include "util.h"

#define ELEMS_PER_MSG 512

struct batch {
	char *buf;
	size_t len, cap;
	uint32_t seq;
	unsigned nr_msgs; /* acknowledgements to wait for */
	bool failed;      /* out of memory (said): the batch is not sent */
	/* where the pieces go once it failed (no piece is larger) */
	char scratch[128] __attribute__((aligned(NLMSG_ALIGNTO)));
};

static void *room(struct batch *b, size_t len)
{
	size_t need = b->len + NLMSG_ALIGN(len);

	if (!b->failed && need > b->cap) {
		char *more = xreallocarray(b->buf, need * 2 + 4096, 1);
		if (more) {
			b->buf = more;
			b->cap = need * 2 + 4096;
		}
		b->failed = !more;
	}
	if (b->failed)
		return memset(b->scratch, 0, sizeof(b->scratch));
	void *p = b->buf + b->len;
	memset(p, 0, NLMSG_ALIGN(len));
	b->len = need;
	return p;
}

static size_t msg_begin(struct batch *b, uint16_t type, uint16_t flags, int family, uint16_t res_id)
{
	size_t at = b->len;
	struct nlmsghdr *h = room(b, NLMSG_HDRLEN);
	struct nfgenmsg *g = room(b, sizeof(*g));

	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | flags;
	h->nlmsg_seq = ++b->seq;
	g->nfgen_family = family;
	g->version = NFNETLINK_V0;
	g->res_id = htons(res_id);
	return at;
}

static void msg_end(struct batch *b, size_t at)
{
	if (!b->failed)
		((struct nlmsghdr *)(b->buf + at))->nlmsg_len = b->len - at;
}

/* An nftables message of the inet family, acknowledged. */
static size_t nft_msg(struct batch *b, int type, uint16_t flags)
{
	b->nr_msgs++;
	return msg_begin(b, (NFNL_SUBSYS_NFTABLES << 8) | type, flags | NLM_F_ACK, NFPROTO_INET, 0);
}

static void put(struct batch *b, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = room(b, NLA_HDRLEN + len);

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, data, len);
}

static void put_u32(struct batch *b, uint16_t type, uint32_t host)
{
	uint32_t be = htonl(host);

	put(b, type, &be, sizeof(be));
}

static void put_str(struct batch *b, uint16_t type, const char *s)
{
	put(b, type, s, strlen(s) + 1);
}

static size_t nest_begin(struct batch *b, uint16_t type)
{
	size_t at = b->len;
	struct nlattr *a = room(b, NLA_HDRLEN);

	a->nla_type = type | NLA_F_NESTED;
	return at;
}

static void nest_end(struct batch *b, size_t at)
{
	if (!b->failed)
		((struct nlattr *)(b->buf + at))->nla_len = b->len - at;
}

/* ---- expressions ---- */

static size_t expr_begin(struct batch *b, const char *name)
{
	size_t at = nest_begin(b, NFTA_LIST_ELEM);

	put_str(b, NFTA_EXPR_NAME, name);
	return at;
}

static void expr_meta(struct batch *b, uint32_t key, uint32_t dreg)
{
	size_t e = expr_begin(b, "meta"), d = nest_begin(b, NFTA_EXPR_DATA);

	put_u32(b, NFTA_META_KEY, key);
	put_u32(b, NFTA_META_DREG, dreg);
	nest_end(b, d);
	nest_end(b, e);
}

static void expr_cmp_eq(struct batch *b, uint32_t sreg, const void *data, size_t len)
{
	size_t e = expr_begin(b, "cmp"), d = nest_begin(b, NFTA_EXPR_DATA);

	put_u32(b, NFTA_CMP_SREG, sreg);
	put_u32(b, NFTA_CMP_OP, NFT_CMP_EQ);
	size_t v = nest_begin(b, NFTA_CMP_DATA);
	put(b, NFTA_DATA_VALUE, data, len);
	nest_end(b, v);
	nest_end(b, d);
	nest_end(b, e);
}

static void expr_payload(struct batch *b, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg)
{
	size_t e = expr_begin(b, "payload"), d = nest_begin(b, NFTA_EXPR_DATA);

	put_u32(b, NFTA_PAYLOAD_DREG, dreg);
	put_u32(b, NFTA_PAYLOAD_BASE, base);
	put_u32(b, NFTA_PAYLOAD_OFFSET, off);
	put_u32(b, NFTA_PAYLOAD_LEN, len);
	nest_end(b, d);
	nest_end(b, e);
}

static void expr_lookup(struct batch *b, const char *set, uint32_t set_id, uint32_t sreg)
{
	size_t e = expr_begin(b, "lookup"), d = nest_begin(b, NFTA_EXPR_DATA);

	put_str(b, NFTA_LOOKUP_SET, set);
	put_u32(b, NFTA_LOOKUP_SET_ID, set_id);
	put_u32(b, NFTA_LOOKUP_SREG, sreg);
	nest_end(b, d);
	nest_end(b, e);
}

static void expr_drop(struct batch *b)
{
	size_t e = expr_begin(b, "immediate"), d = nest_begin(b, NFTA_EXPR_DATA);

	put_u32(b, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
	size_t v = nest_begin(b, NFTA_IMMEDIATE_DATA), vv = nest_begin(b, NFTA_DATA_VERDICT);
	put_u32(b, NFTA_VERDICT_CODE, NF_DROP);
	nest_end(b, vv);
	nest_end(b, v);
	nest_end(b, d);
	nest_end(b, e);
}

/* Where each family keeps its addresses: offsets in the network header, and their size. */
struct family_layout {
	int af;
	uint8_t nfproto;
	uint32_t saddr, daddr, alen;
	const char *set;
	uint32_t set_id;
};

static const struct family_layout layouts[] = {
	{ AF_INET, NFPROTO_IPV4, 12, 16, 4, "conns4", 1 },
	{ AF_INET6, NFPROTO_IPV6, 8, 24, 16, "conns6", 2 },
};

/* Key length: each address and port takes whole 32-bit registers. */
static uint32_t key_len(const struct family_layout *l)
{
	return 2 * (l->alen + 4);
}

/* One rule of chain: this family's TCP packets of a connection in its set are dropped. */
static void add_rule(struct batch *b, const char *table, const char *chain,
		     const struct family_layout *l, bool input)
{
	size_t m = nft_msg(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
	uint8_t tcp = IPPROTO_TCP;
	/* local first: on input the packet's destination, on output its source */
	uint32_t local = input ? l->daddr : l->saddr, remote = input ? l->saddr : l->daddr;
	uint32_t lport = input ? 2 : 0, rport = input ? 0 : 2;
	uint32_t reg = NFT_REG32_00, alen_regs = l->alen / 4;

	put_str(b, NFTA_RULE_TABLE, table);
	put_str(b, NFTA_RULE_CHAIN, chain);
	size_t exprs = nest_begin(b, NFTA_RULE_EXPRESSIONS);
	expr_meta(b, NFT_META_NFPROTO, NFT_REG_1);
	expr_cmp_eq(b, NFT_REG_1, &l->nfproto, 1);
	expr_meta(b, NFT_META_L4PROTO, NFT_REG_1);
	expr_cmp_eq(b, NFT_REG_1, &tcp, 1);
	expr_payload(b, NFT_PAYLOAD_NETWORK_HEADER, local, l->alen, reg);
	expr_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, lport, 2, reg + alen_regs);
	expr_payload(b, NFT_PAYLOAD_NETWORK_HEADER, remote, l->alen, reg + alen_regs + 1);
	expr_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, rport, 2, reg + 2 * alen_regs + 1);
	expr_lookup(b, l->set, l->set_id, reg);
	expr_drop(b);
	nest_end(b, exprs);
	msg_end(b, m);
}

static void add_chain(struct batch *b, const char *table, const char *chain, uint32_t hook)
{
	size_t m = nft_msg(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE);

	put_str(b, NFTA_CHAIN_TABLE, table);
	put_str(b, NFTA_CHAIN_NAME, chain);
	size_t h = nest_begin(b, NFTA_CHAIN_HOOK);
	put_u32(b, NFTA_HOOK_HOOKNUM, hook);
	put_u32(b, NFTA_HOOK_PRIORITY, (uint32_t)-300);
	nest_end(b, h);
	put_str(b, NFTA_CHAIN_TYPE, "filter");
	put_u32(b, NFTA_CHAIN_POLICY, NF_ACCEPT);
	msg_end(b, m);
}

static void add_set(struct batch *b, const char *table, const struct family_layout *l)
{
	size_t m = nft_msg(b, NFT_MSG_NEWSET, NLM_F_CREATE);

	put_str(b, NFTA_SET_TABLE, table);
	put_str(b, NFTA_SET_NAME, l->set);
	put_u32(b, NFTA_SET_KEY_LEN, key_len(l));
	put_u32(b, NFTA_SET_ID, l->set_id);
	put_u32(b, NFTA_SET_FLAGS, 0);
	msg_end(b, m);
}

static void conn_key(const struct nft_conn *c, const struct family_layout *l, uint8_t *key)
{
	size_t at = 0;

	memset(key, 0, key_len(l));
	memcpy(key, c->local, l->alen);
	at += l->alen;
	memcpy(key + at, &c->lport, 2);
	at += 4;
	memcpy(key + at, c->remote, l->alen);
	at += l->alen;
	memcpy(key + at, &c->rport, 2);
}

static void add_elements(struct batch *b, const char *table, const struct family_layout *l,
			 const struct nft_conn *conns, size_t n)
{
	size_t i = 0, left = 0;
	uint8_t key[64];

	for (size_t k = 0; k < n; k++)
		left += conns[k].family == l->af;
	while (left) {
		size_t m = nft_msg(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE);
		put_str(b, NFTA_SET_ELEM_LIST_TABLE, table);
		put_str(b, NFTA_SET_ELEM_LIST_SET, l->set);
		put_u32(b, NFTA_SET_ELEM_LIST_SET_ID, l->set_id);
		size_t list = nest_begin(b, NFTA_SET_ELEM_LIST_ELEMENTS);
		for (unsigned k = 0; i < n && k < ELEMS_PER_MSG; i++) {
			if (conns[i].family != l->af)
				continue;
			conn_key(&conns[i], l, key);
			size_t el = nest_begin(b, NFTA_LIST_ELEM), kn = nest_begin(b, NFTA_SET_ELEM_KEY);
			put(b, NFTA_DATA_VALUE, key, key_len(l));
			nest_end(b, kn);
			nest_end(b, el);
			k++;
			left--;
		}
		nest_end(b, list);
		msg_end(b, m);
	}
}

/* Sends the batch and reads every acknowledgement: 0, or the first error. */
static int run_batch(int nl, struct batch *b)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	size_t end = msg_begin(b, NFNL_MSG_BATCH_END, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
	int err = 0;

	msg_end(b, end);
	/* room for the acknowledgements before the batch goes: nothing done that is not seen */
	auto_free char *buf = b->failed ? NULL : xmalloc(1 << 16);
	if (!buf)
		return -ENOMEM;
	if (sendto(nl, b->buf, b->len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) != (ssize_t)b->len)
		return -errno;
	for (unsigned acked = 0; acked < b->nr_msgs && !err;) {
		ssize_t got = recv(nl, buf, 1 << 16, 0);
		if (got < 0)
			return -errno;
		size_t n = got;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			acked++;
			const struct nlmsgerr *e = NLMSG_DATA(h);
			if (e->error && !err)
				err = e->error;
		}
	}
	return err;
}

static void batch_begin(struct batch *b)
{
	memset(b, 0, sizeof(*b));
	msg_end(b, msg_begin(b, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES));
}

int nft_socket(void)
{
	int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER), one = 1, big = 32 << 20;

	if (nl < 0)
		return -errno;
	setsockopt(nl, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	setsockopt(nl, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	return nl;
}

int nft_lock_table_add(int nl, const char *name, bool owner, const struct nft_conn *conns,
		       size_t n)
{
	struct batch b;
	int err;

	batch_begin(&b);
	size_t m = nft_msg(&b, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL);
	put_str(&b, NFTA_TABLE_NAME, name);
	put_u32(&b, NFTA_TABLE_FLAGS, owner ? NFT_TABLE_F_OWNER : 0);
	msg_end(&b, m);
	for (size_t i = 0; i < ARRAY_SIZE(layouts); i++)
		add_set(&b, name, &layouts[i]);
	add_chain(&b, name, "in", NF_INET_LOCAL_IN);
	add_chain(&b, name, "out", NF_INET_LOCAL_OUT);
	for (size_t i = 0; i < ARRAY_SIZE(layouts); i++) {
		add_rule(&b, name, "in", &layouts[i], true);
		add_rule(&b, name, "out", &layouts[i], false);
		add_elements(&b, name, &layouts[i], conns, n);
	}
	err = run_batch(nl, &b);
	free(b.buf);
	return err;
}

int nft_table_del(int nl, const char *name, bool missing_ok)
{
	struct batch b;
	int err;

	batch_begin(&b);
	size_t m = nft_msg(&b, NFT_MSG_DELTABLE, 0);
	put_str(&b, NFTA_TABLE_NAME, name);
	msg_end(&b, m);
	err = run_batch(nl, &b);
	free(b.buf);
	return err == -ENOENT && missing_ok ? 0 : err;
}
