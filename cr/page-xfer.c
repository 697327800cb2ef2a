/*
 * The page server protocol's common part (messages sent and received, checked), the client's
 * connection, and where a dump's pages go (cr/page-xfer.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "page-xfer.h"
#include "tree-objects.h"
#include "util.h"

#define PS_TIMEOUT_S 30 /* a peer silent for longer is taken for gone */

_Static_assert(sizeof(struct ps_hdr) == 16 && sizeof(struct ps_get) == 24 &&
		       sizeof(struct ps_close) == 16,
	       "page server messages: fixed layouts");

static const char *const type_names[] = {
	[PS_HELLO] = "HELLO", [PS_OK] = "OK",	   [PS_ERROR] = "ERROR", [PS_OPEN] = "OPEN",
	[PS_PAGES] = "PAGES", [PS_CLOSE] = "CLOSE", [PS_DONE] = "DONE",	 [PS_GET] = "GET",
	[PS_DATA] = "DATA",
};

const char *ps_type_name(uint32_t type)
{
	return type < ARRAY_SIZE(type_names) && type_names[type] ? type_names[type] : "unknown";
}

int ps_send(struct ps_conn *c, uint32_t type, const void *fixed, size_t fixed_len,
	    const void *data, size_t data_len)
{
	struct ps_hdr h = { PS_MAGIC, type, fixed_len + data_len };
	struct iovec iov[3] = { { &h, sizeof(h) }, { (void *)fixed, fixed_len }, { (void *)data, data_len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 3 };
	size_t left = sizeof(h) + fixed_len + data_len;

	while (left) {
		ssize_t n = sendmsg(c->sk, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		left -= n;
		while (n && mh.msg_iovlen) {
			size_t step = (size_t)n < mh.msg_iov->iov_len ? (size_t)n : mh.msg_iov->iov_len;
			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + step;
			mh.msg_iov->iov_len -= step;
			n -= step;
			if (!mh.msg_iov->iov_len) {
				mh.msg_iov++;
				mh.msg_iovlen--;
			}
		}
	}
	return 0;
}

int ps_send_error(struct ps_conn *c, const char *text)
{
	size_t len = strlen(text);

	return ps_send(c, PS_ERROR, text, len < PS_MAX_ERROR ? len : PS_MAX_ERROR, NULL, 0);
}

int ps_recv_payload(struct ps_conn *c, void *buf, size_t len, const char *who)
{
	ssize_t n = read_all(c->sk, buf, len);

	if (n == (ssize_t)len)
		return 0;
	pr_err("%s: the page server connection with %s %s", who, c->peer,
	       n < 0 ? "failed" : "ended in the middle of a message");
	return n < 0 ? -errno : -ECONNRESET;
}

/* The payload length a message of its type may have, at most and at least. */
static bool length_fits(uint32_t type, uint64_t len)
{
	switch (type) {
	case PS_HELLO:
	case PS_OK:
		return len == 8;
	case PS_OPEN:
		return len == sizeof(struct ps_open);
	case PS_CLOSE:
		return len == sizeof(struct ps_close);
	case PS_GET:
		return len == sizeof(struct ps_get);
	case PS_DONE:
		return len == 0;
	case PS_ERROR:
		return len > 0 && len <= PS_MAX_ERROR;
	case PS_PAGES:
	case PS_DATA:
		return len > 0 && len % PAGE_SIZE == 0 && len <= PS_MAX_PAGES * PAGE_SIZE;
	}
	return false;
}

int ps_recv_hdr(struct ps_conn *c, struct ps_hdr *h, const char *who)
{
	ssize_t n = read_all(c->sk, h, sizeof(*h));
	int err;

	if (n != sizeof(*h)) {
		pr_err("%s: the page server connection with %s %s", who, c->peer,
		       n < 0 ? strerror(errno) : n ? "ended in the middle of a message" : "was closed");
		return n < 0 ? -errno : -ECONNRESET;
	}
	if (h->magic != PS_MAGIC) {
		pr_err("%s: %s sent a bad message: magic %#x is not the page server's", who, c->peer,
		       h->magic);
		return -EBADMSG;
	}
	if (!length_fits(h->type, h->len)) {
		pr_err("%s: %s sent a bad message: %s (type %u) with a payload of %llu bytes", who,
		       c->peer, ps_type_name(h->type), h->type, (unsigned long long)h->len);
		return -EBADMSG;
	}
	if (h->type != PS_ERROR)
		return 0;
	char text[PS_MAX_ERROR + 1];
	if ((err = ps_recv_payload(c, text, h->len, who)))
		return err;
	for (size_t i = 0; i < h->len; i++)
		if (text[i] < ' ' || text[i] > '~')
			text[i] = '?';
	text[h->len] = 0;
	pr_err("%s: the page server session with %s failed there: %s", who, c->peer, text);
	return -ECONNABORTED;
}

int ps_expect_ok(struct ps_conn *c, uint64_t *value, const char *who)
{
	struct ps_hdr h;
	struct ps_ok ok;
	int err = ps_recv_hdr(c, &h, who);

	if (err)
		return err;
	if (h.type != PS_OK) {
		pr_err("%s: %s sent a bad message: %s where OK was due", who, c->peer,
		       ps_type_name(h.type));
		return -EBADMSG;
	}
	if ((err = ps_recv_payload(c, &ok, sizeof(ok), who)))
		return err;
	if (value)
		*value = ok.value;
	return 0;
}

static void set_timeouts(int sk)
{
	struct timeval tv = { PS_TIMEOUT_S, 0 };
	int one = 1;

	setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(sk, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(sk, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(sk, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

int ps_connect(struct ps_conn *c, const char *addr, int port, int fd, enum ps_role role,
	       const char *who)
{
	struct ps_hello hello = { PS_VERSION, role };
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char service[16];
	int err;

	c->sk = -1;
	if (fd >= 0) {
		c->sk = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		snprintf(c->peer, sizeof(c->peer), "the page server on fd %d", fd);
	} else {
		if (!addr || port <= 0 || port > 65535) {
			pr_err("%s: the page server needs --address and --port (1-65535)", who);
			return -EINVAL;
		}
		snprintf(c->peer, sizeof(c->peer), "%s%s%s:%d", strchr(addr, ':') ? "[" : "", addr,
			 strchr(addr, ':') ? "]" : "", port);
		snprintf(service, sizeof(service), "%d", port);
		if ((err = getaddrinfo(addr, service, &hints, &ai))) {
			pr_err("%s: page server %s: %s", who, c->peer, gai_strerror(err));
			return -EHOSTUNREACH;
		}
		c->sk = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->sk >= 0) {
			set_timeouts(c->sk);
			if (connect(c->sk, ai->ai_addr, ai->ai_addrlen)) {
				close(c->sk);
				c->sk = -1;
			}
		}
		freeaddrinfo(ai);
	}
	if (c->sk < 0) {
		pr_perror("%s: cannot reach the page server %s", who, c->peer);
		return -errno ? -errno : -ECONNREFUSED;
	}
	set_timeouts(c->sk);
	if ((err = ps_send(c, PS_HELLO, &hello, sizeof(hello), NULL, 0)) ||
	    (err = ps_expect_ok(c, NULL, who))) {
		if (err != -ECONNABORTED && err != -EBADMSG)
			pr_err("%s: the page server %s did not answer: %s", who, c->peer, strerror(-err));
		ps_close(c);
		return err;
	}
	return 0;
}

void ps_close(struct ps_conn *c)
{
	if (c->sk >= 0)
		close(c->sk);
	c->sk = -1;
}

/* ---- a dump's pages: here, or to the page server ---- */

struct xfer_state {
	bool on;
	struct ps_conn conn;
};

static struct xfer_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_page_xfer);
}

static int collect_xfer(struct run_ctx *ctx, struct dump_tree *tr)
{
	const struct stasis_opts *o = ctx->opts;
	struct xfer_state *st = state_of(ctx);
	int err;

	(void)tr;
	if (!o->page_server)
		return 0;
	if ((err = ps_connect(&st->conn, o->ps_address, o->ps_port, o->ps_socket, PS_ROLE_DUMP,
			      o->pre_dump ? "pre-dump" : "dump")))
		return err;
	st->on = true;
	return 0;
}

/* Every process's pages are there: the session ends, the server keeps what it wrote. */
static int write_xfer(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct xfer_state *st = state_of(ctx);
	const char *who = ctx->opts->pre_dump ? "pre-dump" : "dump";
	int err;

	(void)tr;
	if (!st->on)
		return 0;
	if ((err = ps_send(&st->conn, PS_DONE, NULL, 0, NULL, 0)) ||
	    (err = ps_expect_ok(&st->conn, NULL, who))) {
		if (err != -ECONNABORTED && err != -EBADMSG)
			pr_err("%s: the page server %s did not take the end of the session: %s", who,
			       st->conn.peer, strerror(-err));
		return err;
	}
	return 0;
}

static void xfer_dump_done(struct run_ctx *ctx)
{
	struct xfer_state *st = state_of(ctx);

	if (st->on)
		ps_close(&st->conn); /* (a session cut short: the server drops what it wrote) */
	st->on = false;
}

const struct tree_object_ops tree_page_xfer = {
	.name = "page server session",
	.state_size = sizeof(struct xfer_state),
	.collect = collect_xfer,
	.write = write_xfer,
	.dump_done = xfer_dump_done,
};

int pages_out_open(struct run_ctx *ctx, int dirfd, uint32_t vpid, const char *who,
		   struct pages_out *out)
{
	struct xfer_state *st = state_of(ctx);
	struct ps_open op = { vpid, 0, { 0 } };
	int err;

	*out = (struct pages_out){ .fd = -1, .pid = vpid, .who = who };
	if (!st->on) {
		out->fd = pages_image_create(dirfd, vpid);
		return out->fd < 0 ? out->fd : 0;
	}
	out->ps = &st->conn;
	image_dump_id(dirfd, op.dump_id);
	if ((err = ps_send(out->ps, PS_OPEN, &op, sizeof(op), NULL, 0)))
		pr_err("%s: cannot send its pages to the page server %s: %s", who, out->ps->peer,
		       strerror(-err));
	return err;
}

int pages_out_write(void *arg, const void *buf, size_t len)
{
	struct pages_out *out = arg;

	if (!out->ps)
		return write_all(out->fd, buf, len) ? -errno : 0;
	for (size_t done = 0; done < len;) {
		size_t n = len - done < PS_MAX_PAGES * PAGE_SIZE ? len - done : PS_MAX_PAGES * PAGE_SIZE;
		int err = ps_send(out->ps, PS_PAGES, NULL, 0, (const char *)buf + done, n);
		if (err)
			return err;
		done += n;
	}
	return 0;
}

int pages_out_finish(struct pages_out *out, uint64_t nr_pages, const struct page_sums *sums)
{
	struct ps_close cl = { out->pid, 0, nr_pages };
	uint64_t stored = 0;
	int err;

	if (!out->ps)
		return pages_image_finish(out->fd, out->pid, nr_pages, sums);
	if ((err = ps_send(out->ps, PS_CLOSE, &cl, sizeof(cl), NULL, 0)) ||
	    (err = ps_expect_ok(out->ps, &stored, out->who)))
		return err;
	if (stored != nr_pages) {
		pr_err("%s: the page server %s stored %llu of its %llu pages", out->who, out->ps->peer,
		       (unsigned long long)stored, (unsigned long long)nr_pages);
		return -EIO;
	}
	return 0;
}

void pages_out_close(struct pages_out *out)
{
	if (out->fd >= 0)
		close(out->fd);
	out->fd = -1;
}
