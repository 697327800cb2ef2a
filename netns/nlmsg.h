/*
 * Netlink without a library (netns/nlmsg.c): requests made in a buffer, sent, answered;
 * dumps read; attributes parsed; and the attributes that images keep as the kernel gave
 * them (NlAttr), checked and given back. rtnetlink (links, addresses, routes, rules,
 * neighbours) and nftables (the ruleset, the network lock) both speak through it.
 */
#ifndef STASIS_NLMSG_H
#define STASIS_NLMSG_H

#include <linux/netlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"

/* Netlink messages being made: one request, or a batch of them. */
struct nl_buf {
	char *buf;
	size_t len, cap;
	uint32_t seq;
	unsigned nr_acks; /* messages that ask for an answer */
	uint32_t err_seq; /* nl_talk: the sequence number of the message refused */
	bool failed;      /* out of memory (said): nothing is sent, nl_talk... say -ENOMEM */
};

void nl_buf_free(struct nl_buf *b);
/*
 * A message of type (NLM_F_REQUEST is added; NLM_F_ACK makes nl_talk wait for its answer)
 * with its family's header (hdr_len bytes, copied); its offset, for nl_msg_end.
 */
size_t nl_msg_begin(struct nl_buf *b, uint16_t type, uint16_t flags, const void *hdr,
		    size_t hdr_len);
void nl_msg_end(struct nl_buf *b, size_t at);
/* len zeroed bytes at the end (aligned), for a header inside an attribute. Out of memory, the
 * buffer is failed and the pieces go nowhere (a piece fits in an attribute: at most 64 KiB). */
void *nl_room(struct nl_buf *b, size_t len);
void nl_put(struct nl_buf *b, uint16_t type, const void *data, size_t len);
void nl_put_u8(struct nl_buf *b, uint16_t type, uint8_t v);
void nl_put_u16(struct nl_buf *b, uint16_t type, uint16_t v);
void nl_put_u32(struct nl_buf *b, uint16_t type, uint32_t v);
void nl_put_be32(struct nl_buf *b, uint16_t type, uint32_t host);
void nl_put_str(struct nl_buf *b, uint16_t type, const char *s);
/* A nested attribute: its offset, for nl_nest_end. */
size_t nl_nest_begin(struct nl_buf *b, uint16_t type);
void nl_nest_end(struct nl_buf *b, size_t at);

/* A netlink socket of protocol in the calling thread's network namespace: fd, or <0. */
int nl_open(int protocol);
/* ... in the network namespace nsfd (the calling thread goes there and back). */
int nl_open_in(int nsfd, int protocol);
/* The id that the namespace rtnetlink socket nl talks in gives the namespace of nsfd (RTM_GETNSID),
 * -1 if none; -ENOMEM. */
int nl_nsid(int nl, int nsfd);
/*
 * Sends b and reads the answer to each message that asked for one: 0, or the first error,
 * with the kernel's own words in why (empty if it said none) and the message refused in
 * b->err_seq (messages are numbered from 1 in the order they were begun).
 */
int nl_talk(int nl, struct nl_buf *b, char *why, size_t why_len);
/* Sends the dump request b and hands every answer to fn; a nonzero fn result ends it (<0: an error).
 * (nl_talk, nl_dump, nl_get: -ENOMEM, nothing sent, if b failed or no room for the answers.) */
int nl_dump(int nl, const struct nl_buf *b, int (*fn)(const struct nlmsghdr *h, void *arg),
	    void *arg);

/* Asks for a dump of every object of one kind (type, e.g. RTM_GETADDR, with its family header
 * hdr of len bytes) and hands each to fn, as nl_dump does (nl < 0: returned as it is). */
int nl_dump_all(int nl, uint16_t type, const void *hdr, size_t len,
		int (*fn)(const struct nlmsghdr *h, void *arg), void *arg);

/* The inode of the calling thread's network namespace (what a listing of sockets is of): 0,
 * or -errno. */
int nl_netns_ino(uint64_t *ino);
/* A sock_diag dump in stasis's network namespace: req (the family's request, e.g. struct
 * inet_diag_req_v2, of len bytes) sent as SOCK_DIAG_BY_FAMILY, each socket's answer to fn as
 * nl_dump hands them. */
int nl_sock_diag(const void *req, size_t len, int (*fn)(const struct nlmsghdr *h, void *arg),
		 void *arg);
/* ... in the network namespace nsfd (-1: stasis's; its socket opened with nl_open_in). */
int nl_sock_diag_in(int nsfd, const void *req, size_t len,
		    int (*fn)(const struct nlmsghdr *h, void *arg), void *arg);

/* Sends the request b (one message, no dump) and hands its answer to fn: fn's result, or the
 * kernel's error. */
struct inet_diag_msg;
/* One sock_diag request (the whole message, len bytes) sent on nl and its one reply: 1, the
 * socket found copied to m; 0, an ack; < 0, the kernel's error (-ENOENT: no such socket). */
int nl_diag_one(int nl, const void *req, size_t len, struct inet_diag_msg *m);
int nl_get(int nl, const struct nl_buf *b, int (*fn)(const struct nlmsghdr *h, void *arg), void *arg);

/* Attributes in data: tb[type] (0..max) the last of each type, NULL if absent. */
void nl_parse(const void *data, size_t len, const struct nlattr **tb, unsigned max);
/* The attributes after a message's family header of hdr_len bytes. */
void nl_parse_msg(const struct nlmsghdr *h, size_t hdr_len, const struct nlattr **tb, unsigned max);
static inline const void *nl_data(const struct nlattr *a)
{
	return (const char *)a + NLA_HDRLEN;
}
static inline size_t nl_len(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}
/*
 * The attributes in (data, len) one by one, each whole inside:
 *   for (const struct nlattr *a = nl_first(data, len, &rest); a; a = nl_next(a, &rest))
 */
const struct nlattr *nl_first(const void *data, size_t len, size_t *rest);
const struct nlattr *nl_next(const struct nlattr *a, size_t *rest);
/* Its value if it has 1, 2 or 4 bytes (host order), else dflt. */
uint32_t nl_uint(const struct nlattr *a, uint32_t dflt);
/* A string attribute, NULL if absent or not terminated. */
const char *nl_str(const struct nlattr *a);

/* ---- attributes kept in images ---- */

/* len bytes the kernel gave (an attribute's value) copied into an image's bytes field, with a
 * zero byte past them; -ENOMEM. */
int nl_bytes(ProtobufCBinaryData *b, const void *data, size_t len);

/* An attribute type a kind keeps, and the sizes its value may have. */
struct nl_attr_rule {
	uint16_t type;
	uint16_t min, max;
};

/* a appended to the image's list (*v, *n), its type with its flags (NLA_F_NESTED); -ENOMEM. */
int nl_attr_keep(NlAttr ***v, size_t *n, const struct nlattr *a);
/* Every attribute of an image is of a known type and size: 0, or the index of the first
 * that is not, plus one. */
size_t nl_attrs_check(NlAttr *const *v, size_t n, const struct nl_attr_rule *rules, size_t nr);
/*
 * The attributes of message h (after its family header of hdr_len bytes) appended to
 * (*v, *n) if a rule keeps them; those of a type in drop are left out. 0, or the type of the
 * first attribute that is neither (or whose size its rule does not allow); -ENOMEM.
 */
int nl_attrs_keep_msg(const struct nlmsghdr *h, size_t hdr_len, const struct nl_attr_rule *keep,
		      size_t nr_keep, const uint16_t *drop, size_t nr_drop, NlAttr ***v, size_t *n);
/* The rule of type, NULL if none. */
const struct nl_attr_rule *nl_attr_rule(uint16_t type, const struct nl_attr_rule *rules,
					size_t nr);
void nl_put_attrs(struct nl_buf *b, NlAttr *const *v, size_t n);
/* The first of v of type (flags aside), NULL if none. */
const NlAttr *nl_attrs_find(NlAttr *const *v, size_t n, uint16_t type);

#endif
