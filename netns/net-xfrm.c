/*
 * The IPsec (xfrm) configuration of the tree's own network namespace (xfrm.img), over
 * NETLINK_XFRM: what `ip xfrm policy` shows and what strongSwan or Libreswan in a system
 * container install besides their keys.
 * - policies, main and sub: each as the kernel reports it (selector, lifetime limits,
 *   priority, index, direction, action, flags) with its templates, mark, security context and
 *   interface id; added again with the same index, which the kernel keeps;
 * - the default action of each direction (`ip xfrm policy setdefault`);
 * - the policy database's hash thresholds (`ip xfrm policy set hthresh4|hthresh6`).
 * A policy's current lifetime (use counts, add and use times) is the kernel's: it starts
 * again. Security associations (states, `ip xfrm state`) are not saved: one fails the dump,
 * naming it, as would a policy with an attribute stasis does not know (a hardware offload).
 * A socket's own policy (IP_XFRM_POLICY: an IKE daemon's bypass) fails the dump too: the
 * kernel lists it without its socket. Outside a namespace of the tree's own, neither is seen.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/xfrm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "net-ns.h"
#include "nlmsg.h"
#include "pstree.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

#define XFRM_TMPLS_MAX 6 /* (XFRM_MAX_DEPTH) */

static const struct nl_attr_rule policy_attrs[] = {
	{ XFRMA_TMPL, sizeof(struct xfrm_user_tmpl), XFRM_TMPLS_MAX * sizeof(struct xfrm_user_tmpl) },
	{ XFRMA_SEC_CTX, sizeof(struct xfrm_user_sec_ctx), 4096 },
	{ XFRMA_POLICY_TYPE, sizeof(struct xfrm_userpolicy_type), sizeof(struct xfrm_userpolicy_type) },
	{ XFRMA_MARK, sizeof(struct xfrm_mark), sizeof(struct xfrm_mark) },
	{ XFRMA_IF_ID, 4, 4 },
};

/* The SPD's answer carries its counts too: only the thresholds are set */
#define HTHRESH(lbits, rbits) ((uint32_t)(lbits) | (uint32_t)(rbits) << 8)

struct net_xfrm_state {
	NetXfrm *img;
};

static struct net_xfrm_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_net_xfrm);
}

static const char *selector_str(const struct xfrm_selector *sel, uint8_t dir, char *buf, size_t len)
{
	char src[INET6_ADDRSTRLEN] = "?", dst[INET6_ADDRSTRLEN] = "?";

	if (sel->family == AF_INET || sel->family == AF_INET6) {
		inet_ntop(sel->family, &sel->saddr, src, sizeof(src));
		inet_ntop(sel->family, &sel->daddr, dst, sizeof(dst));
	}
	snprintf(buf, len, "src %s/%u dst %s/%u dir %s", src, sel->prefixlen_s, dst, sel->prefixlen_d,
		 dir == XFRM_POLICY_IN ? "in" : dir == XFRM_POLICY_OUT ? "out" : dir == XFRM_POLICY_FWD ? "fwd" : "?");
	return buf;
}

/* ---- dump ---- */

/* A policy the kernel reported, copied to info: false if h is not one. */
static bool policy_of(const struct nlmsghdr *h, struct xfrm_userpolicy_info *info)
{
	if (h->nlmsg_type != XFRM_MSG_NEWPOLICY || h->nlmsg_len < NLMSG_LENGTH(sizeof(*info)))
		return false;
	memcpy(info, NLMSG_DATA(h), sizeof(*info));
	return true;
}

struct xfrm_dump {
	pid_t root;
	NetXfrm *img;
	int err;
};

static int on_policy(const struct nlmsghdr *h, void *arg)
{
	struct xfrm_dump *d = arg;
	struct xfrm_userpolicy_info info;
	char buf[160];

	if (!policy_of(h, &info))
		return 0;
	if (info.dir >= XFRM_POLICY_MAX) {
		pr_err("dump pid %d: a socket in its network namespace has an IPsec policy of its own "
		       "(IP_XFRM_POLICY, %s, as an IKE daemon sets on its sockets): not supported", d->root,
		       selector_str(&info.sel, info.dir - XFRM_POLICY_MAX, buf, sizeof(buf)));
		d->err = -ENOTSUP;
		return 1;
	}
	memset(&info.curlft, 0, sizeof(info.curlft)); /* (the kernel's) */
	XfrmPolicy *p = xzalloc(sizeof(*p)), **more;
	if (!p || !(more = xreallocarray(d->img->policies, d->img->n_policies + 1, sizeof(*more)))) {
		free(p);
		return -ENOMEM;
	}
	d->img->policies = more;
	d->img->policies[d->img->n_policies++] = p;
	xfrm_policy__init(p);
	if (nl_bytes(&p->info, &info, sizeof(info)))
		return -ENOMEM;
	int bad = nl_attrs_keep_msg(h, sizeof(info), policy_attrs, ARRAY_SIZE(policy_attrs), NULL, 0, &p->attrs,
				    &p->n_attrs);
	if (bad < 0)
		return bad;
	if (bad) {
		pr_err("dump pid %d: IPsec policy %s (index %u) of its network namespace has attribute %d%s: "
		       "not supported", d->root, selector_str(&info.sel, info.dir, buf, sizeof(buf)), info.index, bad,
		       bad == XFRMA_OFFLOAD_DEV ? " (offloaded to a device)" : "");
		d->err = -ENOTSUP;
		return 1;
	}
	return 0;
}

static int on_state(const struct nlmsghdr *h, void *arg)
{
	struct xfrm_dump *d = arg;
	struct xfrm_usersa_info sa;
	char dst[INET6_ADDRSTRLEN] = "?";

	if (h->nlmsg_type != XFRM_MSG_NEWSA || h->nlmsg_len < NLMSG_LENGTH(sizeof(sa)))
		return 0;
	memcpy(&sa, NLMSG_DATA(h), sizeof(sa));
	if (sa.family == AF_INET || sa.family == AF_INET6)
		inet_ntop(sa.family, &sa.id.daddr, dst, sizeof(dst));
	pr_err("dump pid %d: its network namespace has IPsec state (SA) spi %#x proto %u to %s: not supported "
	       "(the IPsec daemon's keys are not saved)", d->root, ntohl(sa.id.spi), sa.id.proto, dst);
	d->err = -ENOTSUP;
	return 1;
}

static int on_default(const struct nlmsghdr *h, void *arg)
{
	NetXfrm *img = arg;
	struct xfrm_userpolicy_default def;

	if (h->nlmsg_type != XFRM_MSG_GETDEFAULT || h->nlmsg_len < NLMSG_LENGTH(sizeof(def)))
		return -EPROTO;
	memcpy(&def, NLMSG_DATA(h), sizeof(def));
	img->default_in = def.in;
	img->default_fwd = def.fwd;
	img->default_out = def.out;
	return 0;
}

static uint32_t hthresh_of(const struct nlattr *a, uint32_t dflt)
{
	struct xfrmu_spdhthresh t;

	if (!a || nl_len(a) != sizeof(t))
		return dflt;
	memcpy(&t, nl_data(a), sizeof(t));
	return HTHRESH(t.lbits, t.rbits);
}

static int on_spdinfo(const struct nlmsghdr *h, void *arg)
{
	NetXfrm *img = arg;
	const struct nlattr *tb[XFRMA_SPD_MAX + 1];

	if (h->nlmsg_type != XFRM_MSG_NEWSPDINFO)
		return -EPROTO;
	nl_parse_msg(h, sizeof(uint32_t), tb, XFRMA_SPD_MAX);
	img->hthresh4 = hthresh_of(tb[XFRMA_SPD_IPV4_HTHRESH], HTHRESH(32, 32));
	img->hthresh6 = hthresh_of(tb[XFRMA_SPD_IPV6_HTHRESH], HTHRESH(128, 128));
	return 0;
}

/* One request of type with its payload (len bytes), its answer to fn. */
static int xfrm_get(int nl, uint16_t type, const void *payload, size_t len,
		    int (*fn)(const struct nlmsghdr *h, void *arg), void *arg)
{
	struct nl_buf b = { 0 };

	nl_msg_end(&b, nl_msg_begin(&b, type, 0, payload, len));
	int err = nl_get(nl, &b, fn, arg);
	nl_buf_free(&b);
	return err;
}

static int collect_xfrm(struct run_ctx *ctx, struct dump_tree *tr)
{
	NetXfrm img = NET_XFRM__INIT;
	struct xfrm_dump d = { .root = net_ns_holder(ctx, tr), .img = &img };
	struct xfrm_userpolicy_default def = { 0 };
	uint32_t spd = 0xffffffff;
	unsigned logged = log_errors();
	int err;

	if (!net_ns_config(ctx))
		return 0;
	auto_close int nl = nl_open(NETLINK_XFRM);
	if (nl == -EPROTONOSUPPORT)
		return 0; /* (a kernel without it: nothing to save) */
	/* (a dump's request has no header: what follows is read as filters) */
	if (!(err = nl_dump_all(nl, XFRM_MSG_GETSA, NULL, 0, on_state, &d)) && !d.err &&
	    !(err = nl_dump_all(nl, XFRM_MSG_GETPOLICY, NULL, 0, on_policy, &d)) && !d.err &&
	    !(err = xfrm_get(nl, XFRM_MSG_GETDEFAULT, &def, sizeof(def), on_default, &img)))
		err = xfrm_get(nl, XFRM_MSG_GETSPDINFO, &spd, sizeof(spd), on_spdinfo, &img);
	if (d.err)
		err = d.err;
	else if (err)
		log_unnamed(logged, err, "dump pid %d: cannot read the IPsec configuration of its network namespace",
			    d.root);
	else
		err = image_write(ctx->images_dir_fd, IMG_XFRM, run_scope_id(ctx), &img.base);
	for (size_t i = 0; i < img.n_policies; i++)
		xfrm_policy__free_unpacked(img.policies[i], NULL);
	free(img.policies);
	return err;
}

/* ---- restore ---- */

static bool policy_valid(const XfrmPolicy *p)
{
	struct xfrm_userpolicy_info info;

	if (p->info.len != sizeof(info))
		return false;
	memcpy(&info, p->info.data, sizeof(info));
	return info.dir < XFRM_POLICY_MAX && info.action <= XFRM_POLICY_BLOCK &&
	       !nl_attrs_check(p->attrs, p->n_attrs, policy_attrs, ARRAY_SIZE(policy_attrs));
}

static bool default_valid(uint32_t v)
{
	return v == XFRM_USERPOLICY_UNSPEC || v == XFRM_USERPOLICY_BLOCK || v == XFRM_USERPOLICY_ACCEPT;
}

static int validate_xfrm(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct net_xfrm_state *st = state_of(ctx);
	int err;

	(void)rt;
	if (!net_ns_config(ctx))
		return 0;
	if ((err = image_read_optional(ctx->images_dir_fd, IMG_XFRM, run_scope_id(ctx), (ProtobufCMessage **)&st->img)) || !st->img)
		return err;
	for (size_t i = 0; i < st->img->n_policies; i++) {
		if (!policy_valid(st->img->policies[i])) {
			pr_err("image xfrm.img: IPsec policy %zu is invalid", i);
			return -EINVAL;
		}
	}
	if (!default_valid(st->img->default_in) || !default_valid(st->img->default_fwd) ||
	    !default_valid(st->img->default_out) || st->img->hthresh4 > HTHRESH(32, 32) ||
	    st->img->hthresh6 > HTHRESH(128, 128)) {
		pr_err("image xfrm.img: the default policies or hash thresholds are invalid");
		return -EINVAL;
	}
	return 0;
}

static int add_policy(int nl, const XfrmPolicy *p, char *why, size_t len)
{
	struct nl_buf b = { 0 };

	size_t m = nl_msg_begin(&b, XFRM_MSG_NEWPOLICY, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, p->info.data, p->info.len);
	nl_put_attrs(&b, p->attrs, p->n_attrs);
	nl_msg_end(&b, m);
	int err = nl_talk(nl, &b, why, len);
	nl_buf_free(&b);
	return err;
}

/* The default actions and the hash thresholds. */
static int set_spd(int nl, const NetXfrm *img, char *why, size_t len)
{
	struct xfrm_userpolicy_default def = { .in = img->default_in, .fwd = img->default_fwd, .out = img->default_out };
	struct xfrmu_spdhthresh t4 = { img->hthresh4 & 0xff, img->hthresh4 >> 8 };
	struct xfrmu_spdhthresh t6 = { img->hthresh6 & 0xff, img->hthresh6 >> 8 };
	uint32_t flags = 0xffffffff;
	struct nl_buf b = { 0 };

	nl_msg_end(&b, nl_msg_begin(&b, XFRM_MSG_SETDEFAULT, NLM_F_ACK, &def, sizeof(def)));
	size_t m = nl_msg_begin(&b, XFRM_MSG_NEWSPDINFO, NLM_F_ACK, &flags, sizeof(flags));
	nl_put(&b, XFRMA_SPD_IPV4_HTHRESH, &t4, sizeof(t4));
	nl_put(&b, XFRMA_SPD_IPV6_HTHRESH, &t6, sizeof(t6));
	nl_msg_end(&b, m);
	int err = nl_talk(nl, &b, why, len);
	nl_buf_free(&b);
	return err;
}

/* Nothing a new namespace has not: no need to talk NETLINK_XFRM (the kernel may lack it). */
static bool spd_as_new(const NetXfrm *img)
{
	return img->default_in != XFRM_USERPOLICY_BLOCK && img->default_fwd != XFRM_USERPOLICY_BLOCK &&
	       img->default_out != XFRM_USERPOLICY_BLOCK && img->hthresh4 == HTHRESH(32, 32) &&
	       img->hthresh6 == HTHRESH(128, 128);
}

static int prepare_xfrm(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct net_xfrm_state *st = state_of(ctx);
	char why[256] = "", buf[160];
	int err = 0;

	(void)rt;
	if (!st->img || (!st->img->n_policies && spd_as_new(st->img)))
		return 0;
	auto_close int nl = nl_open(NETLINK_XFRM);
	if (nl < 0) {
		pr_err("restore: cannot talk NETLINK_XFRM to give the tree's namespace its IPsec policies: %s",
		       strerror(-nl));
		return nl;
	}
	/* in the order they were added (the dump lists the newest first): the kernel breaks ties
	 * between policies of the same priority by that order */
	for (size_t i = st->img->n_policies; i-- > 0 && !err;) {
		const XfrmPolicy *p = st->img->policies[i];
		struct xfrm_userpolicy_info info;
		memcpy(&info, p->info.data, sizeof(info));
		if ((err = add_policy(nl, p, why, sizeof(why))))
			pr_err("restore: cannot add IPsec policy %s (index %u): %s%s%s",
			       selector_str(&info.sel, info.dir, buf, sizeof(buf)), info.index, strerror(-err),
			       why[0] ? ": " : "", why);
	}
	if (!err && (err = set_spd(nl, st->img, why, sizeof(why))))
		pr_err("restore: cannot set the default IPsec policies and hash thresholds: %s%s%s", strerror(-err),
		       why[0] ? ": " : "", why);
	return err;
}

static void free_xfrm(void *state)
{
	struct net_xfrm_state *st = state;

	if (st->img)
		image_free(&st->img->base);
}

const struct tree_object_ops tree_net_xfrm = {
	.name = "IPsec policies",
	.per_net_ns = true,
	.state_size = sizeof(struct net_xfrm_state),
	.free_state = free_xfrm,
	.collect = collect_xfrm,
	.validate = validate_xfrm,
	.prepare = prepare_xfrm,
};
