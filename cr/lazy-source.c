/*
 * A lazy restore's page source (cr/lazy-pages.h): the tree's images read for their pages
 * only (the inventory, each process's mappings and page table, checked as a restore checks
 * them), and each page's data: in the pages images of the directory (or up the chain of
 * dumps), mapped, or on the page server the dump sent them to, fetched a message at a time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image-chain.h"
#include "lazy-pages.h"
#include "log.h"
#include "mm.h"
#include "page-xfer.h"
#include "task.h"
#include "util.h"

#define FAULT_AFTER_PAGES 256 /* STASIS_FAULT=lazy-source-fail: the source fails after these */

/* The mappings as the images say: in order, apart, page aligned (vma_of searches them). */
static int check_mappings(const struct restore_task *t)
{
	uint64_t prev_end = 0;

	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *v = t->mm->vmas[i];
		if (v->start < prev_end || v->start >= v->end || (v->start | v->end) % PAGE_SIZE) {
			pr_err("image mm-%d.img: mapping %zu (%#llx-%#llx) is invalid", t->pid, i,
			       (unsigned long long)v->start, (unsigned long long)v->end);
			return -EINVAL;
		}
		prev_end = v->end;
	}
	return 0;
}

static int read_task(struct lazy_source *s, struct restore_task *t)
{
	int err;

	if ((err = image_read(t->dirfd, IMG_MM, t->pid, (ProtobufCMessage **)&t->mm)) ||
	    (err = image_read(t->dirfd, IMG_PAGEMAP, t->pid, (ProtobufCMessage **)&t->pagemap)) ||
	    (err = check_mappings(t)) || (err = pages_check_runs(t)))
		return err;
	return s->remote ? 0 : pages_check_references(t);
}

int lazy_source_open(struct run_ctx *ctx, struct lazy_source *s)
{
	const struct stasis_opts *o = ctx->opts;
	Inventory *inv = NULL;
	int err;

	*s = (struct lazy_source){ .ctx = ctx, .remote = o->page_server, .ps.sk = -1 };
	if ((err = image_read(ctx->images_dir_fd, IMG_INVENTORY, 0, (ProtobufCMessage **)&inv)))
		return err;
	if ((inv->has_pre_dump && inv->pre_dump) || !inv->n_pids || inv->n_pids > 65536) {
		pr_err("image inventory.img: %s", inv->pre_dump ? "a pre-dump: nothing to restore"
							     : "no processes");
		image_free(&inv->base);
		return -EINVAL;
	}
	s->n = inv->n_pids;
	s->tasks = xzalloc(s->n * sizeof(*s->tasks));
	s->plans = xzalloc(s->n * sizeof(*s->plans));
	if (!s->tasks || !s->plans) {
		image_free(&inv->base);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->n; i++)
		s->tasks[i] = (struct restore_task){ .pid = inv->pids[i], .ctx = ctx,
						     .dirfd = ctx->images_dir_fd, .pages_fd = -1,
						     .tree = s->tasks, .tree_size = s->n };
	image_free(&inv->base);
	for (size_t i = 0; i < s->n; i++) {
		if ((err = read_task(s, &s->tasks[i])) ||
		    (err = pages_uffd_plan(&s->tasks[i], !s->remote, &s->plans[i])))
			return err;
	}
	if (s->remote) {
		s->buf = xzalloc(PS_MAX_PAGES * PAGE_SIZE);
		if ((err = ps_connect(&s->ps, o->ps_address, o->ps_port, o->ps_socket, PS_ROLE_FETCH,
				      "lazy-pages")))
			return err;
		snprintf(s->what, sizeof(s->what), "the page server %s", s->ps.peer);
	} else {
		snprintf(s->what, sizeof(s->what), "the images in %s", o->images_dir ? o->images_dir : ".");
	}
	s->fault_after = run_fault(ctx, "lazy-source-fail") ? FAULT_AFTER_PAGES : UINT64_MAX;
	return 0;
}

const struct uffd_plan *lazy_source_plan(const struct lazy_source *s, uint32_t vpid)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->tasks[i].pid == (pid_t)vpid)
			return &s->plans[i];
	return NULL;
}

/* A GET answered by the DATA it asked for, checked. */
static int fetch(struct lazy_source *s, const struct uffd_segment *seg, uint32_t nr)
{
	struct ps_get g = { seg->pid, seg->depth, seg->off, nr, 0 };
	struct ps_hdr h;
	int err;

	if ((err = ps_send(&s->ps, PS_GET, &g, sizeof(g), NULL, 0)) ||
	    (err = ps_recv_hdr(&s->ps, &h, "lazy-pages")))
		return err;
	if (h.type != PS_DATA || h.len != (uint64_t)nr * PAGE_SIZE) {
		pr_err("lazy-pages: %s sent a bad message: %s of %llu bytes for a GET of %u pages",
		       s->ps.peer, ps_type_name(h.type), (unsigned long long)h.len, nr);
		return -EBADMSG;
	}
	return ps_recv_payload(&s->ps, s->buf, h.len, "lazy-pages");
}

int lazy_source_read(struct lazy_source *s, const struct uffd_segment *seg, uint64_t len,
		     const char **data)
{
	char name[CHAIN_MAX_DEPTH * 7 + 32];
	uint64_t nr = len / PAGE_SIZE;
	int err = 0;

	chain_pages_name(name, sizeof(name), seg->depth, seg->pid);
	if (s->read_pages + nr > s->fault_after) {
		pr_err("lazy-pages: reading %s (for %#llx) from %s: injected failure lazy-source-fail",
		       name, (unsigned long long)seg->dst, s->what);
		return -EIO;
	}
	if (!s->remote) {
		/* checked just before it is copied, as the restore's own copier does */
		if ((err = pages_check_segment(seg, 0, len)))
			return err;
		*data = seg->src;
	} else if (nr > PS_MAX_PAGES) {
		err = -EINVAL;
	} else if (!(err = fetch(s, seg, nr))) {
		*data = s->buf;
	}
	if (err) {
		pr_err("lazy-pages: cannot read %s (for %#llx) from %s: %s", name,
		       (unsigned long long)seg->dst, s->what, strerror(-err));
		return err;
	}
	s->read_pages += nr;
	return 0;
}

void lazy_source_close(struct lazy_source *s)
{
	if (s->remote && s->ps.sk >= 0) {
		if (!ps_send(&s->ps, PS_DONE, NULL, 0, NULL, 0))
			ps_expect_ok(&s->ps, NULL, "lazy-pages");
		ps_close(&s->ps);
	}
	for (size_t i = 0; s->plans && i < s->n; i++)
		pages_uffd_plan_free(&s->plans[i]);
	for (size_t i = 0; s->tasks && i < s->n; i++) {
		struct restore_task *t = &s->tasks[i];
		image_free(t->mm ? &t->mm->base : NULL);
		image_free(t->pagemap ? &t->pagemap->base : NULL);
		if (t->pages_fd >= 0)
			close(t->pages_fd);
		pages_sources_free(t);
	}
	free(s->plans);
	free(s->tasks);
	free(s->buf);
	s->plans = NULL;
	s->tasks = NULL;
}
