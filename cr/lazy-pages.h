/*
 * Lazy restore (restore --lazy-pages): the restored tree starts before its private anonymous
 * memory is in. Each process's blob registers those mappings with a userfaultfd (missing
 * pages, and the events of a program that forks, moves, unmaps or drops memory meanwhile) and
 * hands it over; a lazy-pages server then fills a page at its first touch (with the pages
 * around it), and all the others in the background in address order, until every page is
 * in and it lets go. The server is `stasis lazy-pages` if one listens in the work directory
 * (lazy-pages.socket, criu's way), else a process the restore starts for itself. Its pages
 * come from the images, or (--page-server --address --port) from the page server that holds
 * them. If the page source fails, or the server dies, the restored tree is killed: it never
 * runs on with a page it lacks.
 */
#ifndef STASIS_LAZY_PAGES_H
#define STASIS_LAZY_PAGES_H

#include <stdbool.h>
#include <stdint.h>

#include "mm.h"
#include "page-xfer.h"
#include "run.h"
#include "task.h"

/*
 * Between the restore and the server (SOCK_SEQPACKET): the server says READY once its page
 * source is open (the restore starts nothing before), then the restore hands each process
 * over (LAZY_TASK, its uffd riding along) and says END once the tree runs.
 */
enum lazy_msg_type { LAZY_TASK = 1, LAZY_END, LAZY_READY };
struct lazy_msg {
	uint32_t type;
	uint32_t vpid;     /* LAZY_TASK: its pid in the images */
	int32_t host_pid;  /* its pid here */
	uint32_t pad;
};

/* cr/lazy-source.c: where each process's pages come from. */
struct lazy_source {
	struct run_ctx *ctx;
	struct restore_task *tasks; /* what the images say, read for the pages alone */
	struct uffd_plan *plans;    /* per task */
	size_t n;
	bool remote;                /* the page server, else the images here (mapped) */
	struct ps_conn ps;
	char *buf;                  /* the last fetch */
	char what[128];             /* "the page server 10.0.0.2:2727", for messages */
	uint64_t read_pages, fault_after;
};
int lazy_source_open(struct run_ctx *ctx, struct lazy_source *s);
const struct uffd_plan *lazy_source_plan(const struct lazy_source *s, uint32_t vpid);
/* The first len bytes of seg (at most PS_MAX_PAGES pages): *data, valid until the next read. */
int lazy_source_read(struct lazy_source *s, const struct uffd_segment *seg, uint64_t len,
		     const char **data);
void lazy_source_close(struct lazy_source *s);

/* cr/lazy-pages.c: serves one restore on its connection sk until every page is in; 0, or
 * a negative errno (said) once the tree was killed. */
int lazy_pages_serve(struct run_ctx *ctx, int sk);

/* cr/lazy-restore.c: the restore's side (a tree-wide kind: the server found or started at
 * prepare, told at undo that the restore is over) and stasis lazy-pages' listening socket. */
extern const struct tree_object_ops tree_lazy_pages;
/* Whether this restore is lazy. */
bool lazy_pages_on(const struct run_ctx *ctx);
/* The process's userfaultfd (fd uffd in it) to the server. */
int lazy_pages_hand_off(const struct run_ctx *ctx, const struct restore_task *t, int uffd);

#endif
