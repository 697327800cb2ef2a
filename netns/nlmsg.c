/*
 * Netlink requests, answers and dumps, with no library. Sockets ask for extended
 * acknowledgements (the kernel says in words what it refused) without the request echoed
 * back (NETLINK_CAP_ACK), and have buffers large enough for a batch of thousands of set
 * elements or a dump of thousands of routes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/inet_diag.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nlmsg.h"
#include "task.h"
#include "util.h"

#define NL_RECV_BUF (1u << 20)
#define NL_SOCK_BUF (32 << 20)

void nl_buf_free(struct nl_buf *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

void *nl_room(struct nl_buf *b, size_t len)
{
	/* where the pieces of a failed buffer go: never read, so shared */
	static char sink[NLMSG_ALIGN(NLA_HDRLEN + 0xffff)] __attribute__((aligned(NLMSG_ALIGNTO)));
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
		return memset(sink, 0, NLMSG_ALIGN(len) < sizeof(sink) ? NLMSG_ALIGN(len) : sizeof(sink));
	void *p = b->buf + b->len;
	memset(p, 0, NLMSG_ALIGN(len));
	b->len = need;
	return p;
}

size_t nl_msg_begin(struct nl_buf *b, uint16_t type, uint16_t flags, const void *hdr,
		    size_t hdr_len)
{
	size_t at = b->len;
	struct nlmsghdr *h = nl_room(b, NLMSG_HDRLEN);

	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | flags;
	h->nlmsg_seq = ++b->seq;
	if (flags & NLM_F_ACK)
		b->nr_acks++;
	if (hdr_len)
		memcpy(nl_room(b, hdr_len), hdr, hdr_len);
	return at;
}

void nl_msg_end(struct nl_buf *b, size_t at)
{
	if (!b->failed)
		((struct nlmsghdr *)(b->buf + at))->nlmsg_len = b->len - at;
}

void nl_put(struct nl_buf *b, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = nl_room(b, NLA_HDRLEN + len);

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	if (len)
		memcpy((char *)a + NLA_HDRLEN, data, len);
}

void nl_put_u8(struct nl_buf *b, uint16_t type, uint8_t v)
{
	nl_put(b, type, &v, sizeof(v));
}

void nl_put_u16(struct nl_buf *b, uint16_t type, uint16_t v)
{
	nl_put(b, type, &v, sizeof(v));
}

void nl_put_u32(struct nl_buf *b, uint16_t type, uint32_t v)
{
	nl_put(b, type, &v, sizeof(v));
}

void nl_put_be32(struct nl_buf *b, uint16_t type, uint32_t host)
{
	nl_put_u32(b, type, htonl(host));
}

void nl_put_str(struct nl_buf *b, uint16_t type, const char *s)
{
	nl_put(b, type, s, strlen(s) + 1);
}

size_t nl_nest_begin(struct nl_buf *b, uint16_t type)
{
	size_t at = b->len;
	struct nlattr *a = nl_room(b, NLA_HDRLEN);

	a->nla_type = type | NLA_F_NESTED;
	return at;
}

void nl_nest_end(struct nl_buf *b, size_t at)
{
	if (!b->failed)
		((struct nlattr *)(b->buf + at))->nla_len = b->len - at;
}

int nl_open(int protocol)
{
	int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol), one = 1, big = NL_SOCK_BUF;

	if (nl < 0)
		return -errno;
	setsockopt(nl, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	setsockopt(nl, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(nl, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof(one));
	setsockopt(nl, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	setsockopt(nl, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	return nl;
}

int nl_open_in(int nsfd, int protocol)
{
	auto_close int own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int nl, err = 0;

	if (own < 0 || setns(nsfd, CLONE_NEWNET))
		return -errno;
	nl = nl_open(protocol);
	if (setns(own, CLONE_NEWNET))
		err = -errno;
	if (err && nl >= 0)
		close(nl);
	return err ? err : nl;
}

/* The kernel's words in an extended acknowledgement (NLMSGERR_ATTR_MSG). */
static void ack_words(const struct nlmsghdr *h, char *why, size_t why_len)
{
	size_t off = NLMSG_HDRLEN + sizeof(struct nlmsgerr);
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];

	if (!why_len || !(h->nlmsg_flags & NLM_F_ACK_TLVS) || h->nlmsg_len <= off)
		return;
	nl_parse((const char *)h + off, h->nlmsg_len - off, tb, NLMSGERR_ATTR_MAX);
	if (nl_str(tb[NLMSGERR_ATTR_MSG]))
		snprintf(why, why_len, "%s", nl_str(tb[NLMSGERR_ATTR_MSG]));
}

static int send_all(int nl, const struct nl_buf *b)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

	if (sendto(nl, b->buf, b->len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) !=
	    (ssize_t)b->len)
		return -errno ?: -EIO;
	return 0;
}

int nl_talk(int nl, struct nl_buf *b, char *why, size_t why_len)
{
	int err = 0;

	if (why_len)
		why[0] = 0;
	/* room for the answers before anything goes: nothing done that is not seen */
	auto_free char *buf = b->failed ? NULL : xmalloc(NL_RECV_BUF);
	if (!buf)
		return -ENOMEM;
	if ((err = send_all(nl, b)))
		return err;
	for (unsigned acked = 0; acked < b->nr_acks;) {
		ssize_t got = recv(nl, buf, NL_RECV_BUF, 0);
		if (got < 0)
			return -errno;
		size_t n = got;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			acked++;
			const struct nlmsgerr *e = NLMSG_DATA(h);
			if (e->error && !err) {
				err = e->error;
				b->err_seq = h->nlmsg_seq;
				ack_words(h, why, why_len);
			}
		}
	}
	return err;
}

int nl_dump(int nl, const struct nl_buf *b, int (*fn)(const struct nlmsghdr *h, void *arg),
	    void *arg)
{
	int ret = 0, err;

	auto_free char *buf = b->failed ? NULL : xmalloc(NL_RECV_BUF);
	if (!buf)
		return -ENOMEM;
	if ((err = send_all(nl, b)))
		return err;
	for (;;) {
		ssize_t got = recv(nl, buf, NL_RECV_BUF, 0);
		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		size_t n = got;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return ret < 0 ? ret : 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
				if (err)
					return err;
				continue;
			}
			if (!ret)
				ret = fn(h, arg); /* after a stop, the rest is read and dropped */
		}
	}
}

int nl_dump_all(int nl, uint16_t type, const void *hdr, size_t len,
		int (*fn)(const struct nlmsghdr *h, void *arg), void *arg)
{
	struct nl_buf b = { 0 };

	if (nl < 0)
		return nl;
	nl_msg_end(&b, nl_msg_begin(&b, type, NLM_F_DUMP, hdr, len));
	int err = nl_dump(nl, &b, fn, arg);
	nl_buf_free(&b);
	return err;
}

/*
 * The kernel makes a dump's first buffer before any recv() has told it how much the reader
 * takes: about a page, too small for the entry of a unix listener with a thousand connections
 * waiting, and an entry that does not fit ends the dump there, with no error. One exchange
 * read with a big buffer first makes it size the dump's buffers as the reader's (up to 32 KiB).
 */
static void nl_size_dumps(int nl)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req req; /* inode 0: answered at once with an error */
	} msg = { .h = { .nlmsg_len = sizeof(msg), .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST },
		  .req = { .sdiag_family = AF_UNIX } };
	char buf[32768]; /* (the kernel sizes no dump buffer above that) */

	if (send(nl, &msg, sizeof(msg), 0) == sizeof(msg))
		(void)!recv(nl, buf, sizeof(buf), 0);
}

int nl_netns_ino(uint64_t *ino)
{
	struct stat ns;

	if (stat("/proc/thread-self/ns/net", &ns))
		return -errno;
	*ino = ns.st_ino;
	return 0;
}

int nl_sock_diag_in(int nsfd, const void *req, size_t len,
		    int (*fn)(const struct nlmsghdr *h, void *arg), void *arg)
{
	auto_close int nl = nsfd < 0 ? nl_open(NETLINK_SOCK_DIAG) : nl_open_in(nsfd, NETLINK_SOCK_DIAG);

	if (nl >= 0)
		nl_size_dumps(nl);
	return nl_dump_all(nl, SOCK_DIAG_BY_FAMILY, req, len, fn, arg);
}

int nl_sock_diag(const void *req, size_t len, int (*fn)(const struct nlmsghdr *h, void *arg),
		 void *arg)
{
	return nl_sock_diag_in(-1, req, len, fn, arg);
}

int nl_get(int nl, const struct nl_buf *b, int (*fn)(const struct nlmsghdr *h, void *arg), void *arg)
{
	int err;

	auto_free char *buf = b->failed ? NULL : xmalloc(NL_RECV_BUF);
	if (!buf)
		return -ENOMEM;
	if ((err = send_all(nl, b)))
		return err;
	for (;;) {
		ssize_t got = recv(nl, buf, NL_RECV_BUF, 0);
		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		size_t n = got;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != b->seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
				if (err)
					return err;
				continue;
			}
			return fn(h, arg);
		}
	}
}

const struct nlattr *nl_first(const void *data, size_t len, size_t *rest)
{
	const struct nlattr *a = data;

	*rest = len;
	return len >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= len ? a : NULL;
}

const struct nlattr *nl_next(const struct nlattr *a, size_t *rest)
{
	size_t step = NLA_ALIGN(a->nla_len);

	return step >= *rest ? NULL : nl_first((const char *)a + step, *rest - step, rest);
}

void nl_parse(const void *data, size_t len, const struct nlattr **tb, unsigned max)
{
	size_t rest;

	memset(tb, 0, (max + 1) * sizeof(*tb));
	for (const struct nlattr *a = nl_first(data, len, &rest); a; a = nl_next(a, &rest))
		if ((a->nla_type & NLA_TYPE_MASK) <= max)
			tb[a->nla_type & NLA_TYPE_MASK] = a;
}

void nl_parse_msg(const struct nlmsghdr *h, size_t hdr_len, const struct nlattr **tb, unsigned max)
{
	size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(hdr_len);

	if (h->nlmsg_len < off) {
		memset(tb, 0, (max + 1) * sizeof(*tb));
		return;
	}
	nl_parse((const char *)h + off, h->nlmsg_len - off, tb, max);
}

uint32_t nl_uint(const struct nlattr *a, uint32_t dflt)
{
	if (!a)
		return dflt;
	switch (nl_len(a)) {
	case 1:
		return *(const uint8_t *)nl_data(a);
	case 2:
		return *(const uint16_t *)nl_data(a);
	case 4:
		return *(const uint32_t *)nl_data(a);
	default:
		return dflt;
	}
}

const char *nl_str(const struct nlattr *a)
{
	if (!a || !nl_len(a) || ((const char *)nl_data(a))[nl_len(a) - 1])
		return NULL;
	return nl_data(a);
}

/* ---- attributes kept in images ---- */

int nl_bytes(ProtobufCBinaryData *b, const void *data, size_t len)
{
	if (!(b->data = xzalloc(len + 1)))
		return -ENOMEM;
	memcpy(b->data, data, len);
	b->len = len;
	return 0;
}

int nl_attr_keep(NlAttr ***v, size_t *n, const struct nlattr *a)
{
	NlAttr *k = xzalloc(sizeof(*k)), **more;

	if (!k || !(more = xreallocarray(*v, *n + 1, sizeof(*more)))) {
		free(k);
		return -ENOMEM;
	}
	*v = more;
	(*v)[(*n)++] = k;
	nl_attr__init(k);
	k->type = a->nla_type; /* NLA_F_NESTED kept: the kernel's strict parsers want it back */
	return nl_bytes(&k->value, nl_data(a), nl_len(a));
}

const struct nl_attr_rule *nl_attr_rule(uint16_t type, const struct nl_attr_rule *rules,
					size_t nr)
{
	for (size_t i = 0; i < nr; i++)
		if (rules[i].type == type)
			return &rules[i];
	return NULL;
}

size_t nl_attrs_check(NlAttr *const *v, size_t n, const struct nl_attr_rule *rules, size_t nr)
{
	for (size_t i = 0; i < n; i++) {
		const struct nl_attr_rule *r =
			v[i]->type <= 0xffff ? nl_attr_rule(v[i]->type & NLA_TYPE_MASK, rules, nr) : NULL;
		if (!r || v[i]->value.len < r->min || v[i]->value.len > r->max)
			return i + 1;
	}
	return 0;
}

const NlAttr *nl_attrs_find(NlAttr *const *v, size_t n, uint16_t type)
{
	for (size_t i = 0; i < n; i++)
		if ((v[i]->type & NLA_TYPE_MASK) == type)
			return v[i];
	return NULL;
}

void nl_put_attrs(struct nl_buf *b, NlAttr *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		nl_put(b, v[i]->type, v[i]->value.data, v[i]->value.len);
}

int nl_attrs_keep_msg(const struct nlmsghdr *h, size_t hdr_len, const struct nl_attr_rule *keep,
		      size_t nr_keep, const uint16_t *drop, size_t nr_drop, NlAttr ***v, size_t *n)
{
	size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(hdr_len);
	size_t rest;

	for (const struct nlattr *a = nl_first((const char *)h + off, h->nlmsg_len > off ? h->nlmsg_len - off : 0, &rest);
	     a; a = nl_next(a, &rest)) {
		uint16_t type = a->nla_type & NLA_TYPE_MASK;
		const struct nl_attr_rule *r = nl_attr_rule(type, keep, nr_keep);
		bool dropped = false;
		for (size_t i = 0; i < nr_drop && !dropped; i++)
			dropped = drop[i] == type;
		int err;
		if (r && nl_len(a) >= r->min && nl_len(a) <= r->max) {
			if ((err = nl_attr_keep(v, n, a)))
				return err;
		} else if (!dropped) {
			return type ?: 0xffff;
		}
	}
	return 0;
}

int nl_diag_one(int nl, const void *req, size_t len, struct inet_diag_msg *m)
{
	char buf[4096] __attribute__((aligned(NLMSG_ALIGNTO)));
	const struct nlmsghdr *h = (const void *)buf;

	if (send(nl, req, len, 0) != (ssize_t)len)
		return -errno;
	ssize_t n = recv(nl, buf, sizeof(buf), 0);
	if (n < 0)
		return -errno;
	if (!NLMSG_OK(h, (size_t)n))
		return -EIO;
	if (h->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(h);
		return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) ? e->error : -EIO;
	}
	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return -EIO;
	memcpy(m, NLMSG_DATA(h), sizeof(*m));
	return 1;
}

static int on_nsid(const struct nlmsghdr *h, void *arg)
{
	const struct nlattr *tb[NETNSA_MAX + 1];

	nl_parse_msg(h, sizeof(struct rtgenmsg), tb, NETNSA_MAX);
	*(int *)arg = (int)nl_uint(tb[NETNSA_NSID], -1);
	return 0;
}

int nl_nsid(int nl, int nsfd)
{
	struct rtgenmsg g = { .rtgen_family = AF_UNSPEC };
	struct nl_buf b = { 0 };
	int id = -1;

	size_t m = nl_msg_begin(&b, RTM_GETNSID, 0, &g, sizeof(g));
	nl_put_u32(&b, NETNSA_FD, nsfd);
	nl_msg_end(&b, m);
	int err = nl_get(nl, &b, on_nsid, &id);
	nl_buf_free(&b);
	return err == -ENOMEM ? err : err ? -1 : id;
}
