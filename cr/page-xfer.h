/*
 * Pages over the network: stasis's page server protocol, and where a dump's pages go.
 *
 * Every message is a 16-byte header (magic "SPG1", type, payload length; little-endian, the
 * byte order of every host stasis runs on) followed by its payload. A session starts with
 * HELLO (the client's role) answered by OK, and is one of:
 *   dump:  (OPEN pid, PAGES..., CLOSE pid count -> OK)..., DONE -> OK
 *          the server writes pages-PID.img in its directory, the dump writes the rest of its
 *          images where it always does;
 *   fetch: (GET pid depth offset count -> DATA)..., DONE -> OK
 *          the server reads the pages images in its directory, or depth parent links up
 *          (a lazy restore's page source, cr/lazy-pages.c).
 * Either side may send ERROR (a text) instead of its next message and end the session.
 * Both sides check everything they receive: the magic, the type for the role and the state,
 * exact payload lengths, counts and offsets against their bounds; the first bad message
 * ends the connection with an error naming it and the peer.
 */
#ifndef STASIS_PAGE_XFER_H
#define STASIS_PAGE_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "run.h"

#define PS_MAGIC 0x31475053u /* "SPG1" */
#define PS_VERSION 2 /* 2: OPEN carries the dump id */
#define PS_MAX_PAGES 1024    /* pages in one PAGES or DATA message */
#define PS_MAX_ERROR 1024    /* bytes of an ERROR text */
#define PS_MAX_PID (1u << 22) /* the kernel's PID_MAX_LIMIT */

enum ps_type { PS_HELLO = 1, PS_OK, PS_ERROR, PS_OPEN, PS_PAGES, PS_CLOSE, PS_DONE, PS_GET, PS_DATA };
enum ps_role { PS_ROLE_DUMP = 1, PS_ROLE_FETCH = 2 };

struct ps_hdr {
	uint32_t magic, type;
	uint64_t len;
};
struct ps_hello {
	uint32_t version, role;
};
struct ps_ok {
	uint64_t value; /* CLOSE: the pages stored; otherwise 0 */
};
struct ps_open {
	uint32_t pid, pad;
	uint8_t dump_id[DUMP_ID_LEN]; /* the dump's (its images' headers): the pages image gets it */
};
struct ps_close {
	uint32_t pid, pad;
	uint64_t nr_pages;
};
struct ps_get {
	uint32_t pid, depth;
	uint64_t off;        /* byte offset in the pages image, page aligned, past its header */
	uint32_t nr, pad;    /* 1..PS_MAX_PAGES */
};

/* One end of a session; peer names the other end in messages ("10.0.0.2:2727"). */
struct ps_conn {
	int sk;
	char peer[80];
};

const char *ps_type_name(uint32_t type);
/* A header and its payload (data after the fixed part: the pages), in one go. */
int ps_send(struct ps_conn *c, uint32_t type, const void *fixed, size_t fixed_len,
	    const void *data, size_t data_len);
int ps_send_error(struct ps_conn *c, const char *text);
/*
 * The next header, checked (magic, type, length within max for its type); an ERROR is read
 * whole, said (naming the peer) and returned as -ECONNABORTED. who names this side.
 */
int ps_recv_hdr(struct ps_conn *c, struct ps_hdr *h, const char *who);
/* Exactly len bytes of payload. */
int ps_recv_payload(struct ps_conn *c, void *buf, size_t len, const char *who);
/* The OK answering what was just sent; *value its value (NULL: not wanted). */
int ps_expect_ok(struct ps_conn *c, uint64_t *value, const char *who);

/* A session with the page server at addr:port (or on the connected socket fd, if >= 0). */
int ps_connect(struct ps_conn *c, const char *addr, int port, int fd, enum ps_role role,
	       const char *who);
void ps_close(struct ps_conn *c);

/*
 * A dump's page destination (the tree-wide kind: the page server session of a dump with
 * --page-server, opened at collect, DONE at write). Per process, pages_out_* write its pages
 * image here or send it there.
 */
extern const struct tree_object_ops tree_page_xfer;

struct pages_out {
	int fd;               /* pages-PID.img, or -1 */
	struct ps_conn *ps;   /* or the page server */
	uint32_t pid;
	const char *who;      /* "dump pid 42" */
};
int pages_out_open(struct run_ctx *ctx, int dirfd, uint32_t vpid, const char *who,
		   struct pages_out *out);
/* page-queue's writer: len bytes of whole pages, in order. */
int pages_out_write(void *out, const void *buf, size_t len);
/* sums: the pages' checksums (a local pages image gets them; a page server sums what it got). */
int pages_out_finish(struct pages_out *out, uint64_t nr_pages, const struct page_sums *sums);
void pages_out_close(struct pages_out *out);

#endif
