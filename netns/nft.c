/*
 * nftables over netlink: a batch (NFNL_MSG_BATCH_BEGIN ... END) is one transaction of the
 * kernel's; each message asks for an acknowledgement so that the first error is known.
 *
 * The lock table: two sets of connections, keyed by the concatenation local address . local
 * port . remote address . remote port (each part padded to 32 bits, as the kernel's registers
 * hold them), one per family; two base chains (input and output hooks, priority -300: before
 * conntrack) whose rules load the packet's fields into consecutive registers, look the key up
 * in the set and drop on a match, unless the packet has the mark of the segments stasis makes
 * (netns/tcp-segment.h), which conntrack leaves alone (a notrack rule first in the output
 * chain). A set lookup costs the same for 10,000 connections as for
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
#include "nlmsg.h"
#include "tcp-segment.h"
#include "util.h"

#define ELEMS_PER_MSG 512

/* An nftables message of the inet family, acknowledged. */
static size_t nft_msg(struct nl_buf *b, int type, uint16_t flags)
{
	struct nfgenmsg g = { .nfgen_family = NFPROTO_INET, .version = NFNETLINK_V0 };

	return nl_msg_begin(b, (NFNL_SUBSYS_NFTABLES << 8) | type, flags | NLM_F_ACK, &g, sizeof(g));
}

/* ---- expressions ---- */

static size_t expr_begin(struct nl_buf *b, const char *name)
{
	size_t at = nl_nest_begin(b, NFTA_LIST_ELEM);

	nl_put_str(b, NFTA_EXPR_NAME, name);
	return at;
}

static void expr_meta(struct nl_buf *b, uint32_t key, uint32_t dreg)
{
	size_t e = expr_begin(b, "meta"), d = nl_nest_begin(b, NFTA_EXPR_DATA);

	nl_put_be32(b, NFTA_META_KEY, key);
	nl_put_be32(b, NFTA_META_DREG, dreg);
	nl_nest_end(b, d);
	nl_nest_end(b, e);
}

static void expr_cmp(struct nl_buf *b, uint32_t sreg, uint32_t op, const void *data, size_t len)
{
	size_t e = expr_begin(b, "cmp"), d = nl_nest_begin(b, NFTA_EXPR_DATA);

	nl_put_be32(b, NFTA_CMP_SREG, sreg);
	nl_put_be32(b, NFTA_CMP_OP, op);
	size_t v = nl_nest_begin(b, NFTA_CMP_DATA);
	nl_put(b, NFTA_DATA_VALUE, data, len);
	nl_nest_end(b, v);
	nl_nest_end(b, d);
	nl_nest_end(b, e);
}

static void expr_payload(struct nl_buf *b, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg)
{
	size_t e = expr_begin(b, "payload"), d = nl_nest_begin(b, NFTA_EXPR_DATA);

	nl_put_be32(b, NFTA_PAYLOAD_DREG, dreg);
	nl_put_be32(b, NFTA_PAYLOAD_BASE, base);
	nl_put_be32(b, NFTA_PAYLOAD_OFFSET, off);
	nl_put_be32(b, NFTA_PAYLOAD_LEN, len);
	nl_nest_end(b, d);
	nl_nest_end(b, e);
}

static void expr_lookup(struct nl_buf *b, const char *set, uint32_t set_id, uint32_t sreg)
{
	size_t e = expr_begin(b, "lookup"), d = nl_nest_begin(b, NFTA_EXPR_DATA);

	nl_put_str(b, NFTA_LOOKUP_SET, set);
	nl_put_be32(b, NFTA_LOOKUP_SET_ID, set_id);
	nl_put_be32(b, NFTA_LOOKUP_SREG, sreg);
	nl_nest_end(b, d);
	nl_nest_end(b, e);
}

static void expr_drop(struct nl_buf *b)
{
	size_t e = expr_begin(b, "immediate"), d = nl_nest_begin(b, NFTA_EXPR_DATA);

	nl_put_be32(b, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
	size_t v = nl_nest_begin(b, NFTA_IMMEDIATE_DATA), vv = nl_nest_begin(b, NFTA_DATA_VERDICT);
	nl_put_be32(b, NFTA_VERDICT_CODE, NF_DROP);
	nl_nest_end(b, vv);
	nl_nest_end(b, v);
	nl_nest_end(b, d);
	nl_nest_end(b, e);
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

/* One rule of chain: this family's TCP packets of a connection in its set are dropped, but for
 * stasis's own segments (netns/tcp-segment.h). */
static void add_rule(struct nl_buf *b, const char *table, const char *chain,
		     const struct family_layout *l, bool input)
{
	size_t m = nft_msg(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
	uint8_t tcp = IPPROTO_TCP;
	uint32_t mark = TCP_SEGMENT_MARK; /* (host order: the register holds the mark so) */
	/* local first: on input the packet's destination, on output its source */
	uint32_t local = input ? l->daddr : l->saddr, remote = input ? l->saddr : l->daddr;
	uint32_t lport = input ? 2 : 0, rport = input ? 0 : 2;
	uint32_t reg = NFT_REG32_00, alen_regs = l->alen / 4;

	nl_put_str(b, NFTA_RULE_TABLE, table);
	nl_put_str(b, NFTA_RULE_CHAIN, chain);
	size_t exprs = nl_nest_begin(b, NFTA_RULE_EXPRESSIONS);
	expr_meta(b, NFT_META_NFPROTO, NFT_REG_1);
	expr_cmp(b, NFT_REG_1, NFT_CMP_EQ, &l->nfproto, 1);
	expr_meta(b, NFT_META_L4PROTO, NFT_REG_1);
	expr_cmp(b, NFT_REG_1, NFT_CMP_EQ, &tcp, 1);
	expr_meta(b, NFT_META_MARK, NFT_REG_1);
	expr_cmp(b, NFT_REG_1, NFT_CMP_NEQ, &mark, 4);
	expr_payload(b, NFT_PAYLOAD_NETWORK_HEADER, local, l->alen, reg);
	expr_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, lport, 2, reg + alen_regs);
	expr_payload(b, NFT_PAYLOAD_NETWORK_HEADER, remote, l->alen, reg + alen_regs + 1);
	expr_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, rport, 2, reg + 2 * alen_regs + 1);
	expr_lookup(b, l->set, l->set_id, reg);
	expr_drop(b);
	nl_nest_end(b, exprs);
	nl_msg_end(b, m);
}

/* stasis's own segments (sent through lo) are left alone by conntrack: its NAT would take
 * from them the request socket the TCX program gave them (netns/tcp-requeue.c). */
static void add_notrack_rule(struct nl_buf *b, const char *table, const char *chain)
{
	size_t m = nft_msg(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
	uint32_t mark = TCP_SEGMENT_MARK;

	nl_put_str(b, NFTA_RULE_TABLE, table);
	nl_put_str(b, NFTA_RULE_CHAIN, chain);
	size_t exprs = nl_nest_begin(b, NFTA_RULE_EXPRESSIONS);
	expr_meta(b, NFT_META_MARK, NFT_REG_1);
	expr_cmp(b, NFT_REG_1, NFT_CMP_EQ, &mark, 4);
	nl_nest_end(b, expr_begin(b, "notrack"));
	nl_nest_end(b, exprs);
	nl_msg_end(b, m);
}

static void add_chain(struct nl_buf *b, const char *table, const char *chain, uint32_t hook)
{
	size_t m = nft_msg(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE);

	nl_put_str(b, NFTA_CHAIN_TABLE, table);
	nl_put_str(b, NFTA_CHAIN_NAME, chain);
	size_t h = nl_nest_begin(b, NFTA_CHAIN_HOOK);
	nl_put_be32(b, NFTA_HOOK_HOOKNUM, hook);
	nl_put_be32(b, NFTA_HOOK_PRIORITY, (uint32_t)-300);
	nl_nest_end(b, h);
	nl_put_str(b, NFTA_CHAIN_TYPE, "filter");
	nl_put_be32(b, NFTA_CHAIN_POLICY, NF_ACCEPT);
	nl_msg_end(b, m);
}

static void add_set(struct nl_buf *b, const char *table, const struct family_layout *l)
{
	size_t m = nft_msg(b, NFT_MSG_NEWSET, NLM_F_CREATE);

	nl_put_str(b, NFTA_SET_TABLE, table);
	nl_put_str(b, NFTA_SET_NAME, l->set);
	nl_put_be32(b, NFTA_SET_KEY_LEN, key_len(l));
	nl_put_be32(b, NFTA_SET_ID, l->set_id);
	nl_put_be32(b, NFTA_SET_FLAGS, 0);
	nl_msg_end(b, m);
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

static void add_elements(struct nl_buf *b, const char *table, const struct family_layout *l,
			 const struct nft_conn *conns, size_t n)
{
	size_t i = 0, left = 0;
	uint8_t key[64];

	for (size_t k = 0; k < n; k++)
		left += conns[k].family == l->af;
	while (left) {
		size_t m = nft_msg(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE);
		nl_put_str(b, NFTA_SET_ELEM_LIST_TABLE, table);
		nl_put_str(b, NFTA_SET_ELEM_LIST_SET, l->set);
		nl_put_be32(b, NFTA_SET_ELEM_LIST_SET_ID, l->set_id);
		size_t list = nl_nest_begin(b, NFTA_SET_ELEM_LIST_ELEMENTS);
		for (unsigned k = 0; i < n && k < ELEMS_PER_MSG; i++) {
			if (conns[i].family != l->af)
				continue;
			conn_key(&conns[i], l, key);
			size_t el = nl_nest_begin(b, NFTA_LIST_ELEM), kn = nl_nest_begin(b, NFTA_SET_ELEM_KEY);
			nl_put(b, NFTA_DATA_VALUE, key, key_len(l));
			nl_nest_end(b, kn);
			nl_nest_end(b, el);
			k++;
			left--;
		}
		nl_nest_end(b, list);
		nl_msg_end(b, m);
	}
}

static void batch_mark(struct nl_buf *b, uint16_t type)
{
	struct nfgenmsg g = { .nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0,
			      .res_id = htons(NFNL_SUBSYS_NFTABLES) };

	nl_msg_end(b, nl_msg_begin(b, type, 0, &g, sizeof(g)));
}

void nft_batch_begin(struct nl_buf *b)
{
	memset(b, 0, sizeof(*b));
	batch_mark(b, NFNL_MSG_BATCH_BEGIN);
}

int nft_batch_run(int nl, struct nl_buf *b, char *why, size_t why_len)
{
	batch_mark(b, NFNL_MSG_BATCH_END);
	return nl_talk(nl, b, why, why_len);
}

int nft_socket(void)
{
	return nl_open(NETLINK_NETFILTER);
}

int nft_lock_table_add(int nl, const char *name, bool owner, const struct nft_conn *conns,
		       size_t n)
{
	struct nl_buf b;
	int err;

	nft_batch_begin(&b);
	size_t m = nft_msg(&b, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL);
	nl_put_str(&b, NFTA_TABLE_NAME, name);
	nl_put_be32(&b, NFTA_TABLE_FLAGS, owner ? NFT_TABLE_F_OWNER : 0);
	nl_msg_end(&b, m);
	for (size_t i = 0; i < ARRAY_SIZE(layouts); i++)
		add_set(&b, name, &layouts[i]);
	add_chain(&b, name, "in", NF_INET_LOCAL_IN);
	add_chain(&b, name, "out", NF_INET_LOCAL_OUT);
	add_notrack_rule(&b, name, "out");
	for (size_t i = 0; i < ARRAY_SIZE(layouts); i++) {
		add_rule(&b, name, "in", &layouts[i], true);
		add_rule(&b, name, "out", &layouts[i], false);
		add_elements(&b, name, &layouts[i], conns, n);
	}
	err = nft_batch_run(nl, &b, NULL, 0);
	nl_buf_free(&b);
	return err;
}

int nft_lock_table_add_conns(int nl, const char *name, const struct nft_conn *conns, size_t n)
{
	struct nl_buf b;
	int err;

	nft_batch_begin(&b);
	for (size_t i = 0; i < ARRAY_SIZE(layouts); i++)
		add_elements(&b, name, &layouts[i], conns, n);
	err = nft_batch_run(nl, &b, NULL, 0);
	nl_buf_free(&b);
	return err;
}

static int table_answered(const struct nlmsghdr *h, void *arg)
{
	(void)h;
	(void)arg;
	return 1;
}

/* Is there a table of that name? 1, 0, or -errno. A plain request: no transaction (a batch
 * deleting a missing table costs its abort, about 17 ms of a restore's 19 here). */
static int table_exists(int nl, const char *name)
{
	struct nfgenmsg g = { .nfgen_family = NFPROTO_INET, .version = NFNETLINK_V0 };
	struct nl_buf b = { 0 };

	size_t m = nl_msg_begin(&b, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE, 0, &g, sizeof(g));
	nl_put_str(&b, NFTA_TABLE_NAME, name);
	nl_msg_end(&b, m);
	int found = nl_get(nl, &b, table_answered, NULL);
	nl_buf_free(&b);
	return found == -ENOENT ? 0 : found;
}

int nft_table_del(int nl, const char *name, bool missing_ok)
{
	struct nl_buf b;
	int err;

	if (missing_ok && (err = table_exists(nl, name)) <= 0)
		return err;
	nft_batch_begin(&b);
	size_t m = nft_msg(&b, NFT_MSG_DELTABLE, 0);
	nl_put_str(&b, NFTA_TABLE_NAME, name);
	nl_msg_end(&b, m);
	err = nft_batch_run(nl, &b, NULL, 0);
	nl_buf_free(&b);
	return err == -ENOENT && missing_ok ? 0 : err;
}
