/*
 * Traffic control of the tree's interfaces (net-qdiscs.img): the queueing disciplines tc
 * added (a default one, which the kernel gives every interface, has handle 0 and is left to
 * it) and the classes of the classful ones, each as the kernel reports it: interface, handle,
 * parent, kind, and its options (TCA_OPTIONS) given back as they were read. Kinds kept: tbf,
 * htb (with its classes), pfifo, bfifo, pfifo_fast, ingress and clsact; another kind, and any
 * filter (tc filter) on them, fail the dump, naming the interface and what tc calls them. On
 * restore, once the interfaces are made and up, each is added again once its parent is there:
 * the roots and ingress, then classes under their qdisc or class, then qdiscs under a class.
 */
#include <errno.h>
#include <stddef.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "net-links.h"
#include "net-ns.h"
#include "nlmsg.h"
#include "pstree.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

#define MAX_OPTIONS 4096
#define MAX_ENTRIES 65536

/* The kinds kept; classful ones have classes of their own kind ("tbf" has one of the kernel's). */
static const struct qdisc_kind {
	const char *name;
	bool classes;  /* its classes are saved */
	bool options;  /* it has TCA_OPTIONS */
} kinds[] = {
	{ "tbf", false, true },  { "htb", true, true },       { "pfifo", false, true },
	{ "bfifo", false, true }, { "pfifo_fast", false, true }, { "ingress", false, false },
	{ "clsact", false, false },
};

struct qdiscs_state {
	NetQdiscs *img;
};

static struct qdiscs_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_net_qdiscs);
}

static const struct qdisc_kind *kind_of(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(kinds); i++)
		if (!strcmp(kinds[i].name, name))
			return &kinds[i];
	return NULL;
}

/* "qdisc htb 1: on va", "class htb 1:10 on va" */
static const char *entry_str(const struct run_ctx *ctx, const NetQdisc *q, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s %x:%x on %s", q->cls ? "class" : "qdisc", q->kind, q->handle >> 16,
		 q->handle & 0xffff, net_links_name_of(ctx, q->ifindex) ?: "an interface not saved");
	return buf;
}

/* ---- dump ---- */

struct tc_dump {
	struct run_ctx *ctx;
	pid_t root;
	NetQdiscs *img;
	int type;       /* RTM_NEWQDISC, RTM_NEWTCLASS: what is collected */
	int err;
};

/*
 * An htb qdisc reports its version whole (3.17: 0x30011) but takes only its major
 * (TC_HTB_PROTOVER):
 * written so in the copy of its options (TCA_HTB_INIT's struct tc_htb_glob).
 */
static void htb_version_to_give(NetQdisc *q)
{
	const struct nlattr *tb[TCA_HTB_MAX + 1];
	uint32_t major = TC_HTB_PROTOVER;

	nl_parse(q->options.data, q->options.len, tb, TCA_HTB_MAX);
	if (tb[TCA_HTB_INIT] && nl_len(tb[TCA_HTB_INIT]) >= sizeof(struct tc_htb_glob))
		memcpy((void *)nl_data(tb[TCA_HTB_INIT]) + offsetof(struct tc_htb_glob, version), &major,
		       sizeof(major));
}

static int add_entry(struct tc_dump *d, const struct tcmsg *t, const char *kind, const struct nlattr *opts)
{
	char buf[96];
	NetQdisc *q = xzalloc(sizeof(*q)), **more;

	if (!q || d->img->n_qdiscs == MAX_ENTRIES ||
	    !(more = xreallocarray(d->img->qdiscs, d->img->n_qdiscs + 1, sizeof(*more)))) {
		free(q);
		if (d->img->n_qdiscs < MAX_ENTRIES)
			return -ENOMEM;
		pr_err("dump pid %d: more than %d queueing disciplines and classes", d->root, MAX_ENTRIES);
		d->err = -E2BIG;
		return 1;
	}
	d->img->qdiscs = more;
	d->img->qdiscs[d->img->n_qdiscs++] = q;
	net_qdisc__init(q);
	q->ifindex = t->tcm_ifindex;
	q->handle = t->tcm_handle;
	q->parent = t->tcm_parent;
	q->has_cls = q->cls = d->type == RTM_NEWTCLASS;
	if (!(q->kind = xstrdup(kind)))
		return -ENOMEM;
	if (opts) {
		if (nl_len(opts) > MAX_OPTIONS) {
			pr_err("dump pid %d: %s: its options take %zu bytes (more than %d)", d->root,
			       entry_str(d->ctx, q, buf, sizeof(buf)), nl_len(opts), MAX_OPTIONS);
			d->err = -E2BIG;
			return 1;
		}
		q->has_options = true;
		if (nl_bytes(&q->options, nl_data(opts), nl_len(opts)))
			return -ENOMEM;
		if (!strcmp(kind, "htb") && !q->cls)
			htb_version_to_give(q);
	}
	return 0;
}

static int on_tc(const struct nlmsghdr *h, void *arg)
{
	struct tc_dump *d = arg;
	const struct tcmsg *t = NLMSG_DATA(h);
	const struct nlattr *tb[TCA_MAX + 1];

	if (h->nlmsg_type != d->type || !net_links_saved(d->ctx, t->tcm_ifindex))
		return 0;
	nl_parse_msg(h, sizeof(*t), tb, TCA_MAX);
	const char *kind = nl_str(tb[TCA_KIND]);
	const struct qdisc_kind *k = kind_of(kind);
	if (d->type == RTM_NEWQDISC && !t->tcm_handle)
		return 0; /* the kernel's default */
	if (d->type == RTM_NEWTCLASS && (!k || !k->classes))
		return 0; /* a class of the kernel's (tbf's, clsact's) */
	if (!k) {
		pr_err("dump pid %d: interface %s has queueing discipline %s %x:: not supported (tbf, htb, "
		       "pfifo, bfifo, pfifo_fast, ingress and clsact are)", d->root,
		       net_links_name_of(d->ctx, t->tcm_ifindex), kind ?: "of no kind", t->tcm_handle >> 16);
		d->err = -ENOTSUP;
		return 1;
	}
	return add_entry(d, t, kind, k->options ? tb[TCA_OPTIONS] : NULL);
}

static int on_filter(const struct nlmsghdr *h, void *arg)
{
	struct tc_dump *d = arg;
	const struct tcmsg *t = NLMSG_DATA(h);
	const struct nlattr *tb[TCA_MAX + 1];

	if (h->nlmsg_type != RTM_NEWTFILTER)
		return 0;
	nl_parse_msg(h, sizeof(*t), tb, TCA_MAX);
	pr_err("dump pid %d: interface %s has a tc filter (%s, parent %x:%x): not supported", d->root,
	       net_links_name_of(d->ctx, t->tcm_ifindex), nl_str(tb[TCA_KIND]) ?: "of no kind",
	       t->tcm_parent >> 16, t->tcm_parent & 0xffff);
	d->err = -ENOTSUP;
	return 1;
}

/* Filters under parent of interface ifindex refuse the dump (d->err). */
static int refuse_filters(int nl, struct tc_dump *d, uint32_t ifindex, uint32_t parent)
{
	struct tcmsg t = { .tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex, .tcm_parent = parent };
	int err = nl_dump_all(nl, RTM_GETTFILTER, &t, sizeof(t), on_filter, d);

	return d->err ?: err;
}

/* The classes of every htb qdisc saved, and filters under any of them refused. */
static int classes_and_filters(int nl, struct tc_dump *d)
{
	size_t nqdiscs = d->img->n_qdiscs;
	int err = 0;

	d->type = RTM_NEWTCLASS;
	for (size_t i = 0; i < nqdiscs && !err && !d->err; i++) {
		const NetQdisc *q = d->img->qdiscs[i];
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++)
			seen = d->img->qdiscs[k]->ifindex == q->ifindex && kind_of(d->img->qdiscs[k]->kind)->classes;
		if (kind_of(q->kind)->classes && !seen) {
			struct tcmsg t = { .tcm_family = AF_UNSPEC, .tcm_ifindex = q->ifindex };
			err = nl_dump_all(nl, RTM_GETTCLASS, &t, sizeof(t), on_tc, d);
		}
	}
	for (size_t i = 0; i < d->img->n_qdiscs && !err && !d->err; i++) {
		const NetQdisc *q = d->img->qdiscs[i];
		if (!q->cls && q->parent == TC_H_INGRESS) { /* ingress, clsact: their two blocks */
			err = refuse_filters(nl, d, q->ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS));
			if (!err && !strcmp(q->kind, "clsact"))
				err = refuse_filters(nl, d, q->ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS));
		} else if (q->cls || kind_of(q->kind)->classes) {
			err = refuse_filters(nl, d, q->ifindex, q->handle);
		}
	}
	return d->err ?: err;
}

static int collect_qdiscs(struct run_ctx *ctx, struct dump_tree *tr)
{
	NetQdiscs img = NET_QDISCS__INIT;
	struct tc_dump d = { ctx, net_ns_holder(ctx, tr), &img, RTM_NEWQDISC, 0 };
	struct tcmsg t = { .tcm_family = AF_UNSPEC };
	unsigned logged = log_errors();
	int err;

	if (!net_ns_interfaces(ctx))
		return 0;
	auto_close int nl = nl_open(NETLINK_ROUTE);
	if (nl < 0)
		err = nl;
	else if (!(err = nl_dump_all(nl, RTM_GETQDISC, &t, sizeof(t), on_tc, &d)) && !d.err)
		err = classes_and_filters(nl, &d);
	if (d.err)
		err = d.err; /* (said) */
	else if (err)
		log_unnamed(logged, err, "dump pid %d: cannot list the queueing disciplines of its network "
			    "namespace", d.root);
	else
		err = image_write(ctx->images_dir_fd, IMG_NET_QDISCS, run_scope_id(ctx), &img.base);
	for (size_t i = 0; i < img.n_qdiscs; i++)
		net_qdisc__free_unpacked(img.qdiscs[i], NULL);
	free(img.qdiscs);
	return err;
}

/* ---- restore ---- */

/*
 * The index in img of the entry (other than q) that is q's parent: its class, or the qdisc of
 * that major (a class at the top of its qdisc says TC_H_ROOT: its own major's); -1 if none.
 */
static ssize_t parent_of(const NetQdiscs *img, const NetQdisc *q)
{
	uint32_t parent = q->cls && q->parent == TC_H_ROOT ? (q->handle & TC_H_MAJ_MASK) : q->parent;
	ssize_t qdisc = -1;

	for (size_t i = 0; i < img->n_qdiscs; i++) {
		const NetQdisc *p = img->qdiscs[i];
		if (p == q || p->ifindex != q->ifindex)
			continue;
		if (p->cls && p->handle == parent)
			return i;
		if (!p->cls && p->handle == (parent & TC_H_MAJ_MASK))
			qdisc = i;
	}
	return qdisc;
}

static bool entry_valid(const struct run_ctx *ctx, const NetQdiscs *img, const NetQdisc *q)
{
	const struct qdisc_kind *k = kind_of(q->kind);
	ssize_t pi = parent_of(img, q);
	const NetQdisc *p = pi < 0 ? NULL : img->qdiscs[pi];
	bool ingress = k && (!strcmp(q->kind, "ingress") || !strcmp(q->kind, "clsact"));

	if (!k || !net_links_saved(ctx, q->ifindex) || q->has_options != k->options ||
	    (q->has_options && q->options.len > MAX_OPTIONS) || !(q->handle & TC_H_MAJ_MASK))
		return false;
	if (q->cls) /* a class of an htb qdisc, or of a class of it */
		return k->classes && (q->handle & TC_H_MIN_MASK) && p && !strcmp(p->kind, q->kind) &&
		       (p->handle & TC_H_MAJ_MASK) == (q->handle & TC_H_MAJ_MASK);
	if (q->handle & TC_H_MIN_MASK)
		return false;
	if (ingress)
		return q->parent == TC_H_INGRESS && q->handle == TC_H_MAKE(TC_H_INGRESS, 0);
	/* a root, or a qdisc under a class (or under tbf's own) */
	return q->parent == TC_H_ROOT || (p && (p->cls || !strcmp(p->kind, "tbf")));
}

static int validate_qdiscs(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct qdiscs_state *st = state_of(ctx);
	char buf[96];
	int err;

	(void)rt;
	if (!net_ns_interfaces(ctx))
		return 0;
	if ((err = image_read_optional(ctx->images_dir_fd, IMG_NET_QDISCS, run_scope_id(ctx), (ProtobufCMessage **)&st->img)))
		return err;
	for (size_t i = 0; st->img && i < st->img->n_qdiscs; i++) {
		const NetQdisc *q = st->img->qdiscs[i];
		bool twice = false;
		for (size_t k = 0; k < i && !twice; k++)
			twice = st->img->qdiscs[k]->ifindex == q->ifindex && st->img->qdiscs[k]->handle == q->handle &&
				st->img->qdiscs[k]->cls == q->cls;
		if (i >= MAX_ENTRIES || twice || !entry_valid(ctx, st->img, q)) {
			pr_err("image net-qdiscs.img: entry %zu (%s) is invalid", i, entry_str(ctx, q, buf, sizeof(buf)));
			return -EINVAL;
		}
	}
	return 0;
}

static int add_tc(const struct run_ctx *ctx, int nl, const NetQdisc *q, char *why, size_t len)
{
	struct tcmsg t = { .tcm_family = AF_UNSPEC, .tcm_ifindex = net_links_index_now(ctx, q->ifindex),
			   .tcm_handle = q->handle, .tcm_parent = q->parent };
	struct nl_buf b = { 0 };

	size_t m = nl_msg_begin(&b, q->cls ? RTM_NEWTCLASS : RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
				&t, sizeof(t));
	nl_put_str(&b, TCA_KIND, q->kind);
	if (q->has_options)
		nl_put(&b, TCA_OPTIONS, q->options.data, q->options.len);
	nl_msg_end(&b, m);
	int err = nl_talk(nl, &b, why, len);
	nl_buf_free(&b);
	return err;
}

static int prepare_qdiscs(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct qdiscs_state *st = state_of(ctx);
	char why[256] = "", buf[96];
	int err = 0;

	(void)rt;
	if (!st->img || !st->img->n_qdiscs)
		return 0;
	size_t n = st->img->n_qdiscs;
	auto_free bool *made = xzalloc(n);
	auto_close int nl = nl_open(NETLINK_ROUTE);
	if (!made)
		return -ENOMEM;
	if (nl < 0) {
		pr_err("restore: cannot talk rtnetlink to add the tree's queueing disciplines: %s", strerror(-nl));
		return nl;
	}
	/* in rounds: each once its parent is there (a root or ingress at once) */
	for (bool progress = true; progress && !err;) {
		progress = false;
		for (size_t i = 0; i < n && !err; i++) {
			const NetQdisc *q = st->img->qdiscs[i];
			ssize_t pi = parent_of(st->img, q);
			if (made[i] || (pi >= 0 && !made[pi]))
				continue;
			if ((err = add_tc(ctx, nl, q, why, sizeof(why))))
				pr_err("restore: cannot add %s again: %s%s%s", entry_str(ctx, q, buf, sizeof(buf)),
				       strerror(-err), why[0] ? ": " : "", why);
			made[i] = progress = true;
		}
	}
	for (size_t i = 0; i < n && !err; i++) {
		if (!made[i]) { /* (parents in a circle) */
			pr_err("restore: %s: its parent %x:%x is never made",
			       entry_str(ctx, st->img->qdiscs[i], buf, sizeof(buf)), st->img->qdiscs[i]->parent >> 16,
			       st->img->qdiscs[i]->parent & 0xffff);
			err = -EINVAL;
		}
	}
	return err;
}

static void free_qdiscs(void *state)
{
	struct qdiscs_state *st = state;

	if (st->img)
		image_free(&st->img->base);
}

const struct tree_object_ops tree_net_qdiscs = {
	.name = "queueing disciplines",
	.per_net_ns = true,
	.state_size = sizeof(struct qdiscs_state),
	.free_state = free_qdiscs,
	.collect = collect_qdiscs,
	.validate = validate_qdiscs,
	.prepare = prepare_qdiscs,
};
