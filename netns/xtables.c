/*
 * Legacy iptables tables (x_tables: iptables-legacy, ip6tables-legacy, ufw and firewalld on
 * older systems, kube-proxy in legacy mode) of the tree's network namespace (xtables.img).
 * The kernel hands each table to a program as iptables-legacy reads it: one blob of entries
 * (rules with their matches, targets and counters; kernel-private parts zeroed), the hooks'
 * entry points and the table's underflows (IPT_SO_GET_INFO, IPT_SO_GET_ENTRIES). The blob is
 * saved as it is, and given back whole with IPT_SO_SET_REPLACE, the one call iptables-legacy
 * also commits a table with: the kernel checks every entry, match and target then, as it does
 * for iptables. The counters follow with IPT_SO_SET_ADD_COUNTERS (the replace starts them at
 * zero). The restore's own checks are those of the blob's frame (every entry inside it, the
 * count right, hooks and underflows at entries) and the table's name and hooks. IPv4 and IPv6;
 * ARP tables (arptables-legacy) fail the dump, naming them.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netfilter_ipv4/ip_tables.h>
#include <linux/netfilter_ipv6/ip6_tables.h>

#include "log.h"
#include "net-ns.h"
#include "pstree.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"
#include "xtables.h"

#define MAX_TABLES 16
#define MAX_BLOB (256u << 20)

/* ip6t_getinfo and ip6t_replace are ipt_getinfo and ipt_replace field for field */
_Static_assert(sizeof(struct ipt_getinfo) == sizeof(struct ip6t_getinfo), "getinfo layouts");
_Static_assert(sizeof(struct ipt_replace) == sizeof(struct ip6t_replace), "replace layouts");
_Static_assert(offsetof(struct ipt_replace, counters) == offsetof(struct ip6t_replace, counters), "replace");
_Static_assert(offsetof(struct ipt_get_entries, entrytable) == offsetof(struct ip6t_get_entries, entrytable),
	       "get_entries layouts");

/* What tells the two families apart: their sockets, calls and entries. */
static const struct xt_family {
	int family, level;
	const char *tool, *names;
	int get_info, get_entries, set_replace, add_counters;
	size_t entry_size, target_offset, next_offset, counters;
} families[] = {
	{ AF_INET, IPPROTO_IP, "iptables", "ip_tables_names", IPT_SO_GET_INFO, IPT_SO_GET_ENTRIES,
	  IPT_SO_SET_REPLACE, IPT_SO_SET_ADD_COUNTERS, sizeof(struct ipt_entry),
	  offsetof(struct ipt_entry, target_offset), offsetof(struct ipt_entry, next_offset),
	  offsetof(struct ipt_entry, counters) },
	{ AF_INET6, IPPROTO_IPV6, "ip6tables", "ip6_tables_names", IP6T_SO_GET_INFO, IP6T_SO_GET_ENTRIES,
	  IP6T_SO_SET_REPLACE, IP6T_SO_SET_ADD_COUNTERS, sizeof(struct ip6t_entry),
	  offsetof(struct ip6t_entry, target_offset), offsetof(struct ip6t_entry, next_offset),
	  offsetof(struct ip6t_entry, counters) },
};

struct xtables_state {
	Xtables *img;
};

static struct xtables_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_xtables);
}

static const struct xt_family *family_of(uint32_t family)
{
	for (size_t i = 0; i < ARRAY_SIZE(families); i++)
		if ((uint32_t)families[i].family == family)
			return &families[i];
	return NULL;
}

static uint16_t u16_at(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * Calls fn on each entry of the blob (its offset) and says whether the blob is made of whole
 * entries, n of them, each big enough for its target.
 */
static bool walk_entries(const struct xt_family *f, const uint8_t *blob, size_t size, size_t n,
			 void (*fn)(const uint8_t *entry, size_t at, void *arg), void *arg)
{
	size_t at = 0, count = 0;

	while (at < size) {
		if (size - at < f->entry_size || at % __alignof__(struct xt_counters))
			return false;
		uint16_t next = u16_at(blob + at + f->next_offset), target = u16_at(blob + at + f->target_offset);
		if (next < f->entry_size || next > size - at || target < f->entry_size ||
		    target + sizeof(struct xt_entry_target) > next)
			return false;
		if (fn)
			fn(blob + at, at, arg);
		at += next;
		count++;
	}
	return count == n;
}

/* ---- dump ---- */

static int save_table(const struct xt_family *f, int sk, const char *name, pid_t root, Xtables *img)
{
	struct ipt_getinfo info = { 0 };
	socklen_t len = sizeof(info);
	size_t hdr = offsetof(struct ipt_get_entries, entrytable);

	snprintf(info.name, sizeof(info.name), "%s", name);
	if (getsockopt(sk, f->level, f->get_info, &info, &len)) {
		pr_perror("dump pid %d: cannot read legacy %s table %s of its network namespace", root,
			  f->tool, name);
		return -errno;
	}
	if (info.size > MAX_BLOB) {
		pr_err("dump pid %d: legacy %s table %s of its network namespace holds %u bytes of rules "
		       "(more than %u MiB): not supported", root, f->tool, name, info.size, MAX_BLOB >> 20);
		return -E2BIG;
	}
	auto_free struct ipt_get_entries *got = xzalloc(hdr + info.size);
	Xtable *t = xzalloc(sizeof(*t));
	if (!got || !t) {
		free(t);
		return -ENOMEM;
	}
	img->tables[img->n_tables++] = t;
	xtable__init(t);
	memcpy(got->name, info.name, sizeof(got->name));
	got->size = info.size;
	len = hdr + info.size;
	if (getsockopt(sk, f->level, f->get_entries, got, &len)) {
		pr_perror("dump pid %d: cannot read the rules of legacy %s table %s of its network "
			  "namespace", root, f->tool, name);
		return -errno;
	}
	if (len != hdr + info.size || !walk_entries(f, (const uint8_t *)got + hdr, info.size, info.num_entries, NULL, NULL)) {
		pr_err("dump pid %d: the rules of legacy %s table %s of its network namespace are not as "
		       "the kernel described them (%u entries, %u bytes)", root, f->tool, name,
		       info.num_entries, info.size);
		return -EIO;
	}
	t->family = f->family;
	t->valid_hooks = info.valid_hooks;
	t->num_entries = info.num_entries;
	if (!(t->name = xstrdup(name)) || !(t->hook_entry = xmemdup(info.hook_entry, sizeof(info.hook_entry))) ||
	    !(t->underflow = xmemdup(info.underflow, sizeof(info.underflow))) ||
	    !(t->entries.data = xmemdup((uint8_t *)got + hdr, info.size)))
		return -ENOMEM;
	t->n_hook_entry = t->n_underflow = NF_INET_NUMHOOKS;
	t->entries.len = info.size;
	pr_info("dump pid %d: legacy %s table %s: %u entries, %u bytes", root, f->tool, name,
		info.num_entries, info.size);
	return 0;
}

/* The tables of family f listed in the namespace (stasis is in it). */
static int save_family(const struct xt_family *f, pid_t root, Xtables *img)
{
	char path[64], name[XT_TABLE_MAXNAMELEN + 2];
	int err = 0;

	snprintf(path, sizeof(path), "/proc/thread-self/net/%s", f->names);
	FILE *list = fopen(path, "re");
	if (!list)
		return 0; /* (no such tables in this kernel) */
	auto_close int sk = socket(f->family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	while (!err && fgets(name, sizeof(name), list)) {
		name[strcspn(name, "\n")] = 0;
		if (sk < 0) {
			pr_perror("dump pid %d: cannot open a socket to read legacy %s table %s", root, f->tool, name);
			err = -errno;
		} else if (img->n_tables == MAX_TABLES || !name[0] || strlen(name) >= XT_TABLE_MAXNAMELEN) {
			pr_err("dump pid %d: legacy %s table '%s' of its network namespace: not supported "
			       "(more than %d tables, or a name of more than %d bytes)", root, f->tool, name,
			       MAX_TABLES, XT_TABLE_MAXNAMELEN - 1);
			err = -ENOTSUP;
		} else {
			err = save_table(f, sk, name, root, img);
		}
	}
	fclose(list);
	return err;
}

bool xtables_first(const char *names, char *name, size_t len)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/thread-self/net/%s", names);
	FILE *f = fopen(path, "re");
	bool any = f && fgets(name, len, f);
	if (f)
		fclose(f);
	if (any)
		name[strcspn(name, "\n")] = 0;
	return any;
}

/* ARP tables (arptables-legacy) are not saved: refused by name. */
static int refuse_arp_tables(pid_t root)
{
	char name[64];

	if (!xtables_first("arp_tables_names", name, sizeof(name)))
		return 0;
	pr_err("dump pid %d: its network namespace has legacy arptables table %s: not supported "
	       "(legacy iptables and ip6tables tables and nftables rulesets are)", root, name);
	return -ENOTSUP;
}

static int collect_xtables(struct run_ctx *ctx, struct dump_tree *tr)
{
	pid_t root = net_ns_holder(ctx, tr);
	Xtables img = XTABLES__INIT;
	int err;

	if (!net_ns_config(ctx))
		return 0;
	if ((err = refuse_arp_tables(root)))
		return err;
	if (!(img.tables = xzalloc(MAX_TABLES * sizeof(*img.tables))))
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(families) && !err; i++)
		err = save_family(&families[i], root, &img);
	if (!err)
		err = image_write(ctx->images_dir_fd, IMG_XTABLES, run_scope_id(ctx), &img.base);
	for (size_t i = 0; i < img.n_tables; i++)
		xtable__free_unpacked(img.tables[i], NULL);
	free(img.tables);
	return err;
}

/* ---- restore ---- */

struct entry_starts {
	const Xtable *t;
	size_t matched; /* hooks whose entry point or underflow is at an entry */
};

static void match_hooks(const uint8_t *entry, size_t at, void *arg)
{
	struct entry_starts *s = arg;

	(void)entry;
	for (unsigned h = 0; h < NF_INET_NUMHOOKS; h++) {
		if (!(s->t->valid_hooks & (1u << h)))
			continue;
		s->matched += s->t->hook_entry[h] == at;
		s->matched += s->t->underflow[h] == at;
	}
}

static bool table_valid(const Xtable *t)
{
	const struct xt_family *f = family_of(t->family);
	struct entry_starts s = { t, 0 };

	if (!f || !t->name[0] || strlen(t->name) >= XT_TABLE_MAXNAMELEN || t->n_hook_entry != NF_INET_NUMHOOKS ||
	    t->n_underflow != NF_INET_NUMHOOKS || !t->valid_hooks || t->valid_hooks >> NF_INET_NUMHOOKS ||
	    t->entries.len > MAX_BLOB || !t->num_entries || t->num_entries > t->entries.len / f->entry_size)
		return false;
	if (!walk_entries(f, t->entries.data, t->entries.len, t->num_entries, match_hooks, &s))
		return false;
	return s.matched == 2u * (unsigned)__builtin_popcount(t->valid_hooks);
}

static int validate_xtables(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct xtables_state *st = state_of(ctx);
	int err;

	(void)rt;
	if (!net_ns_config(ctx))
		return 0;
	if ((err = image_read_optional(ctx->images_dir_fd, IMG_XTABLES, run_scope_id(ctx), (ProtobufCMessage **)&st->img)))
		return err;
	for (size_t i = 0; st->img && i < st->img->n_tables; i++) {
		const Xtable *t = st->img->tables[i];
		if (i >= MAX_TABLES || !table_valid(t)) {
			pr_err("image xtables.img: table %zu (%.32s) is invalid", i, t->name);
			return -EINVAL;
		}
		for (size_t k = 0; k < i; k++) {
			if (st->img->tables[k]->family == t->family && !strcmp(st->img->tables[k]->name, t->name)) {
				pr_err("image xtables.img: table %s is there twice", t->name);
				return -EINVAL;
			}
		}
	}
	return 0;
}

struct counters_fill {
	const struct xt_family *f;
	struct xt_counters *v;
	size_t n;
};

static void take_counters(const uint8_t *entry, size_t at, void *arg)
{
	struct counters_fill *c = arg;

	(void)at;
	memcpy(&c->v[c->n++], entry + c->f->counters, sizeof(*c->v));
}

/* The saved counters added to the new table's (zero). */
static int add_counters(const struct xt_family *f, int sk, const Xtable *t)
{
	size_t len = sizeof(struct xt_counters_info) + t->num_entries * sizeof(struct xt_counters);
	auto_free struct xt_counters_info *info = xzalloc(len);

	if (!info)
		return -ENOMEM;
	struct counters_fill c = { f, info->counters, 0 };
	snprintf(info->name, sizeof(info->name), "%s", t->name);
	info->num_counters = t->num_entries;
	walk_entries(f, t->entries.data, t->entries.len, t->num_entries, take_counters, &c);
	return setsockopt(sk, f->level, f->add_counters, info, len) ? -errno : 0;
}

/* Table t of the new namespace (made by the first look at it) replaced by the saved one. */
static int make_table(const struct xt_family *f, int sk, const Xtable *t)
{
	struct ipt_getinfo now = { 0 };
	socklen_t len = sizeof(now);
	size_t hdr = offsetof(struct ipt_replace, entries);

	snprintf(now.name, sizeof(now.name), "%s", t->name);
	if (getsockopt(sk, f->level, f->get_info, &now, &len)) {
		pr_perror("restore: this kernel has no legacy %s table %s for the tree's network namespace",
			  f->tool, t->name);
		return -errno;
	}
	if (now.valid_hooks != t->valid_hooks) {
		pr_err("restore: legacy %s table %s hooks %#x here, %#x in the image", f->tool, t->name,
		       now.valid_hooks, t->valid_hooks);
		return -EINVAL;
	}
	auto_free struct ipt_replace *r = xzalloc(hdr + t->entries.len);
	auto_free struct xt_counters *old = xzalloc((now.num_entries + 1) * sizeof(*old));
	if (!r || !old)
		return -ENOMEM;
	snprintf(r->name, sizeof(r->name), "%s", t->name);
	r->valid_hooks = t->valid_hooks;
	r->num_entries = t->num_entries;
	r->size = t->entries.len;
	memcpy(r->hook_entry, t->hook_entry, sizeof(r->hook_entry));
	memcpy(r->underflow, t->underflow, sizeof(r->underflow));
	r->num_counters = now.num_entries;
	r->counters = old;
	memcpy(r->entries, t->entries.data, t->entries.len);
	if (setsockopt(sk, f->level, f->set_replace, r, hdr + t->entries.len)) {
		pr_perror("restore: legacy %s table %s (%u entries) cannot be made again in the tree's "
			  "network namespace (the kernel refused its rules)", f->tool, t->name, t->num_entries);
		return -errno;
	}
	int err = add_counters(f, sk, t);
	if (err)
		pr_err("restore: cannot set the counters of legacy %s table %s: %s", f->tool, t->name,
		       strerror(-err));
	return err;
}

static int prepare_xtables(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct xtables_state *st = state_of(ctx);
	int err = 0;

	(void)rt;
	/* last first: the kernel lists a namespace's tables newest first */
	for (size_t i = st->img ? st->img->n_tables : 0; i-- > 0 && !err;) {
		const Xtable *t = st->img->tables[i];
		const struct xt_family *f = family_of(t->family);
		auto_close int sk = socket(f->family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
		if (sk < 0) {
			pr_perror("restore: cannot open a socket to make legacy %s table %s", f->tool, t->name);
			return -errno;
		}
		if (!(err = make_table(f, sk, t)))
			pr_info("restore: legacy %s table %s: %u entries", f->tool, t->name, t->num_entries);
	}
	return err;
}

static void free_xtables(void *state)
{
	struct xtables_state *st = state;

	if (st->img)
		image_free(&st->img->base);
}

const struct tree_object_ops tree_xtables = {
	.name = "legacy iptables tables",
	.per_net_ns = true,
	.state_size = sizeof(struct xtables_state),
	.free_state = free_xtables,
	.collect = collect_xtables,
	.validate = validate_xtables,
	.prepare = prepare_xtables,
};
