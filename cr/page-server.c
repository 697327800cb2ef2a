/*
 * stasis page-server: one session of the page server protocol (cr/page-xfer.h) on a TCP
 * port. A dump (or pre-dump) sends its processes' pages, written here as pages-PID.img in the
 * images directory, exactly as the dump would have written them; a lazy restore fetches pages
 * of the images here, or of their parents (DIR/parent/...). Everything a peer sends is
 * checked before it is acted on; the first bad message ends the session with an error naming
 * it, sent to the peer too. A dump's session that ends before its DONE leaves nothing: the
 * files it made are removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image-chain.h"
#include "log.h"
#include "page-xfer.h"
#include "run.h"
#include "util.h"

struct server {
	struct run_ctx *ctx;
	struct ps_conn c;
	int dirfd;
	/* dump role */
	uint32_t *made;      /* pids whose pages-PID.img this session made */
	size_t nr_made;
	int out_fd;          /* the one being written, or -1 */
	uint32_t out_pid;
	uint64_t out_pages;
	struct page_sums sums; /* of the pages written to it, summed as they come */
	char *buf;           /* PS_MAX_PAGES pages */
	/* fetch role: pages images opened so far */
	struct served { uint32_t depth, pid; uint64_t nr_pages; int fd; } *open;
	size_t nr_open;
	uint64_t served_pages, stored_pages;
};

#define WHO "page server"

/* A bad message: said here and to the peer, and the session ends. */
static __attribute__((format(printf, 2, 3))) int refuse(struct server *s, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pr_err(WHO ": %s sent a bad message: %s; the session ends", s->c.peer, text);
	ps_send_error(&s->c, text);
	return -EBADMSG;
}

static int reply_ok(struct server *s, uint64_t value)
{
	struct ps_ok ok = { value };

	return ps_send(&s->c, PS_OK, &ok, sizeof(ok), NULL, 0);
}

/* ---- a dump's pages ---- */

static int open_pages(struct server *s, const struct ps_open *op)
{
	if (s->out_fd >= 0)
		return refuse(s, "OPEN of pid %u while pages-%u.img is open", op->pid, s->out_pid);
	if (!op->pid || op->pid >= PS_MAX_PID)
		return refuse(s, "OPEN of pid %u, not a pid", op->pid);
	for (size_t i = 0; i < s->nr_made; i++)
		if (s->made[i] == op->pid)
			return refuse(s, "OPEN of pid %u a second time", op->pid);
	uint32_t *more = xreallocarray(s->made, s->nr_made + 1, sizeof(*more));
	if (!more)
		return -ENOMEM;
	s->made = more;
	/* an earlier session's file of that name is replaced (a link there still fails the create) */
	char name[64];
	struct stat st;
	image_filename(name, sizeof(name), IMG_PAGES, op->pid);
	if (!fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) && S_ISREG(st.st_mode))
		unlinkat(s->dirfd, name, 0);
	if ((s->out_fd = pages_image_create_as(s->dirfd, op->pid, op->dump_id)) < 0)
		return s->out_fd;
	page_sums_free(&s->sums);
	s->made[s->nr_made++] = op->pid;
	s->out_pid = op->pid;
	s->out_pages = 0;
	return 0;
}

static int store_pages(struct server *s, uint64_t len)
{
	int err;

	if (s->out_fd < 0)
		return refuse(s, "PAGES with no pages image open");
	if ((err = ps_recv_payload(&s->c, s->buf, len, WHO)))
		return err;
	page_sums_add(&s->sums, s->buf, len);
	if (write_all(s->out_fd, s->buf, len)) {
		pr_perror(WHO ": cannot write pages-%u.img", s->out_pid);
		ps_send_error(&s->c, "the page server cannot write its images");
		return -EIO;
	}
	s->out_pages += len / PAGE_SIZE;
	if (run_fault(s->ctx, "page-server-after-pages")) {
		pr_err(WHO ": injected failure page-server-after-pages");
		return -EIO;
	}
	return 0;
}

static int close_pages(struct server *s, const struct ps_close *cl)
{
	int err;

	if (s->out_fd < 0 || cl->pid != s->out_pid)
		return refuse(s, "CLOSE of pid %u, which is not open", cl->pid);
	if (cl->nr_pages != s->out_pages)
		return refuse(s, "CLOSE of pid %u with %llu pages, %llu were sent", cl->pid,
			      (unsigned long long)cl->nr_pages, (unsigned long long)s->out_pages);
	err = pages_image_finish(s->out_fd, s->out_pid, s->out_pages, &s->sums);
	page_sums_free(&s->sums);
	close(s->out_fd);
	s->out_fd = -1;
	s->stored_pages += s->out_pages;
	return err ? err : reply_ok(s, s->out_pages);
}

/* A dump's session that did not end with DONE: nothing of it stays. */
static void drop_pages(struct server *s)
{
	char name[64];

	if (s->out_fd >= 0)
		close(s->out_fd);
	s->out_fd = -1;
	for (size_t i = 0; i < s->nr_made; i++) {
		image_filename(name, sizeof(name), IMG_PAGES, s->made[i]);
		unlinkat(s->dirfd, name, 0);
	}
	if (s->nr_made)
		pr_err(WHO ": the pages images of that session (%zu) are removed", s->nr_made);
	s->nr_made = 0;
}

/* ---- a lazy restore's pages ---- */

static const struct served *served_image(struct server *s, uint32_t depth, uint32_t pid)
{
	for (size_t i = 0; i < s->nr_open; i++)
		if (s->open[i].depth == depth && s->open[i].pid == pid)
			return &s->open[i];
	struct served *more = xreallocarray(s->open, s->nr_open + 1, sizeof(*more));
	uint64_t nr = 0;
	if (!more)
		return NULL;
	s->open = more;
	int fd = depth ? chain_pages_open(s->dirfd, depth, pid, &nr)
		       : pages_image_open_counted(s->dirfd, pid, &nr);
	if (fd < 0)
		return NULL;
	s->open[s->nr_open] = (struct served){ depth, pid, nr, fd };
	return &s->open[s->nr_open++];
}

static int serve_get(struct server *s, const struct ps_get *g)
{
	char name[CHAIN_MAX_DEPTH * 7 + 32];
	const struct served *img;

	if (!g->pid || g->pid >= PS_MAX_PID || g->depth > CHAIN_MAX_DEPTH || !g->nr ||
	    g->nr > PS_MAX_PAGES || g->off % PAGE_SIZE || g->off < PAGES_HEADER_SIZE)
		return refuse(s, "GET of %u pages at %llu of pid %u, %u links up: out of range", g->nr,
			      (unsigned long long)g->off, g->pid, g->depth);
	chain_pages_name(name, sizeof(name), g->depth, g->pid);
	if (!(img = served_image(s, g->depth, g->pid)))
		return refuse(s, "GET of %s, which the page server does not have", name);
	if (g->off + (uint64_t)g->nr * PAGE_SIZE > PAGES_HEADER_SIZE + img->nr_pages * PAGE_SIZE)
		return refuse(s, "GET of %u pages at %llu of %s, which holds %llu", g->nr,
			      (unsigned long long)g->off, name, (unsigned long long)img->nr_pages);
	if (pread(img->fd, s->buf, g->nr * PAGE_SIZE, g->off) != (ssize_t)(g->nr * PAGE_SIZE)) {
		pr_perror(WHO ": cannot read %s", name);
		ps_send_error(&s->c, "the page server cannot read its images");
		return -EIO;
	}
	/* served only if they match their checksums (the fetcher gets no checksums) */
	if (raw_image_verify(img->fd, IMG_PAGES, g->pid, (g->off - PAGES_HEADER_SIZE) / PAGE_SIZE, g->nr,
			     s->buf)) {
		pr_err(WHO ": %s is corrupted (above); not served", name);
		ps_send_error(&s->c, "the page server's images are corrupted");
		return -EIO;
	}
	s->served_pages += g->nr;
	int err = ps_send(&s->c, PS_DATA, NULL, 0, s->buf, g->nr * PAGE_SIZE);
	if (!err && run_fault(s->ctx, "page-server-after-get")) {
		pr_err(WHO ": injected failure page-server-after-get");
		return -EIO;
	}
	return err;
}

/* ---- the session ---- */

static int session(struct server *s)
{
	struct ps_hdr h;
	union {
		struct ps_hello hello;
		struct ps_open open;
		struct ps_close close;
		struct ps_get get;
	} m;
	int err;

	if ((err = ps_recv_hdr(&s->c, &h, WHO)))
		return err;
	if (h.type != PS_HELLO)
		return refuse(s, "%s before HELLO", ps_type_name(h.type));
	if ((err = ps_recv_payload(&s->c, &m.hello, sizeof(m.hello), WHO)))
		return err;
	if (m.hello.version != PS_VERSION ||
	    (m.hello.role != PS_ROLE_DUMP && m.hello.role != PS_ROLE_FETCH))
		return refuse(s, "HELLO of version %u, role %u (this is version %u: roles 1, 2)",
			      m.hello.version, m.hello.role, PS_VERSION);
	uint32_t role = m.hello.role;
	pr_info(WHO ": %s %s", s->c.peer, role == PS_ROLE_DUMP ? "sends pages" : "fetches pages");
	if ((err = reply_ok(s, 0)))
		return err;
	for (;;) {
		if ((err = ps_recv_hdr(&s->c, &h, WHO)))
			return err;
		bool dump = role == PS_ROLE_DUMP;
		switch (h.type) {
		case PS_OPEN:
			if (!dump)
				break;
			if ((err = ps_recv_payload(&s->c, &m.open, sizeof(m.open), WHO)) ||
			    (err = open_pages(s, &m.open)))
				return err;
			continue;
		case PS_PAGES:
			if (!dump)
				break;
			if ((err = store_pages(s, h.len)))
				return err;
			continue;
		case PS_CLOSE:
			if (!dump)
				break;
			if ((err = ps_recv_payload(&s->c, &m.close, sizeof(m.close), WHO)) ||
			    (err = close_pages(s, &m.close)))
				return err;
			continue;
		case PS_GET:
			if (dump)
				break;
			if ((err = ps_recv_payload(&s->c, &m.get, sizeof(m.get), WHO)) ||
			    (err = serve_get(s, &m.get)))
				return err;
			continue;
		case PS_DONE:
			if (s->out_fd >= 0)
				return refuse(s, "DONE while pages-%u.img is open", s->out_pid);
			return reply_ok(s, 0);
		}
		return refuse(s, "%s in a session that %s", ps_type_name(h.type),
			      dump ? "sends pages" : "fetches pages");
	}
}

static int listen_on(const struct stasis_opts *o, int *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE },
			*ai = NULL;
	char service[16];
	int sk, one = 1, err;

	if (o->ps_port < 0 || o->ps_port > 65535) {
		pr_err(WHO ": --port %d: not a port", o->ps_port);
		return -EINVAL;
	}
	snprintf(service, sizeof(service), "%d", o->ps_port);
	if ((err = getaddrinfo(o->ps_address, service, &hints, &ai))) {
		pr_err(WHO ": --address %s: %s", o->ps_address ? o->ps_address : "(any)", gai_strerror(err));
		return -EINVAL;
	}
	sk = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sk < 0 || setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(sk, ai->ai_addr, ai->ai_addrlen) || listen(sk, 1)) {
		pr_perror(WHO ": cannot listen on %s port %d", o->ps_address ? o->ps_address : "any address",
			  o->ps_port);
		err = -errno;
		if (sk >= 0)
			close(sk);
		freeaddrinfo(ai);
		return err;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	getsockname(sk, (struct sockaddr *)&ss, &len);
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					       : ((struct sockaddr_in *)&ss)->sin_port);
	return sk;
}

static int accept_one(int lsk, struct ps_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[64] = "?", serv[16] = "?";
	int one = 1;

	while ((c->sk = accept4(lsk, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (c->sk < 0) {
		pr_perror(WHO ": accept");
		return -errno;
	}
	getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), serv, sizeof(serv),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(c->peer, sizeof(c->peer), "%s%s%s:%s", ss.ss_family == AF_INET6 ? "[" : "", host,
		 ss.ss_family == AF_INET6 ? "]" : "", serv);
	setsockopt(c->sk, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

int cr_page_server(struct run_ctx *ctx, void (*ready)(void *arg, int port), void *arg)
{
	struct server s = { .ctx = ctx, .dirfd = ctx->images_dir_fd, .out_fd = -1 };
	const char *prev = ctx->opts->prev_images_dir;
	int lsk, port = 0, err;

	if (prev && (err = chain_make_link(ctx->images_dir_fd, ctx->opts->images_dir, prev)))
		return err;
	if (!(s.buf = xmalloc(PS_MAX_PAGES * PAGE_SIZE)))
		return -ENOMEM;
	if ((lsk = listen_on(ctx->opts, &port)) < 0) {
		free(s.buf);
		return lsk;
	}
	pr_info(WHO ": listening on port %d, images in %s", port, ctx->opts->images_dir);
	if (ready)
		ready(arg, port);
	err = accept_one(lsk, &s.c);
	close(lsk);
	if (!err)
		err = session(&s);
	if (err)
		drop_pages(&s);
	else
		pr_info(WHO ": session with %s done: %llu pages stored, %llu served", s.c.peer,
			(unsigned long long)s.stored_pages, (unsigned long long)s.served_pages);
	ctx->stats.pages_written = s.stored_pages;
	ps_close(&s.c);
	for (size_t i = 0; i < s.nr_open; i++)
		close(s.open[i].fd);
	free(s.open);
	free(s.made);
	free(s.buf);
	page_sums_free(&s.sums);
	return err;
}
