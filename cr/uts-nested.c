/*
 * UTS namespaces that processes of the tree made (uts-nested.img; cr/nested-ns.h): a systemd
 * service's own (ProtectHostname=). Dump: per namespace its host and domain names, read by a
 * helper inside it. Restore: its maker, when created, unshares CLONE_NEWUTS and sets them;
 * the processes below it inherit it.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "log.h"
#include "nested-ns.h"
#include "ns-helper.h"
#include "tree-objects.h"
#include "task.h"
#include "util.h"

struct uts_nested_state {
	UtsNested *img;
	struct nested_ns_view *views;
};

static struct uts_nested_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_uts_nested);
}

static int read_names(void *out, size_t len)
{
	(void)len;
	return uname(out) ? -errno : 0;
}

static int collect_uts_nested(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct uts_nested_state *st = state_of(ctx);
	struct nested_ns *v;
	size_t n;
	int err;

	if ((err = nested_ns_find(tr, "uts", &v, &n)) || !n)
		return err;
	if (!(st->img = xzalloc(sizeof(*st->img))) ||
	    (uts_nested__init(st->img), !(st->img->ns = xzalloc(n * sizeof(*st->img->ns))))) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		NestedUtsNs *u = xzalloc(sizeof(*u));
		struct utsname names;
		pid_t maker = tr->tasks[v[i].members[0]].pid;
		if (!u || (nested_uts_ns__init(u), !(u->pids = xzalloc(v[i].n * sizeof(*u->pids))))) {
			free(u);
			err = -ENOMEM;
			goto out;
		}
		st->img->ns[st->img->n_ns++] = u;
		u->ns_id = v[i].id;
		u->maker = tr->tasks[v[i].members[0]].vpid;
		for (size_t m = 0; m < v[i].n; m++)
			u->pids[u->n_pids++] = tr->tasks[v[i].members[m]].vpid;
		if ((err = ns_helper_run(maker, CLONE_NEWUTS, read_names, &names, sizeof(names)))) {
			pr_err("dump pid %u: cannot read the names of its UTS namespace uts:[%llu]", u->maker,
			       (unsigned long long)v[i].id);
			goto out;
		}
		if (!(u->hostname = xstrdup(names.nodename)) || !(u->domainname = xstrdup(names.domainname))) {
			err = -ENOMEM;
			goto out;
		}
		pr_info("dump pid %u: its own UTS namespace uts:[%llu] (%s), %zu processes", u->maker,
			(unsigned long long)u->ns_id, u->hostname, u->n_pids);
	}
	tr->inv.has_uts_nested = tr->inv.uts_nested = true;
out:
	nested_ns_free(v, n);
	return err;
}

static int write_uts_nested(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct uts_nested_state *st = state_of(ctx);

	(void)tr;
	return st->img ? image_write(ctx->images_dir_fd, IMG_UTS_NESTED, 0, &st->img->base) : 0;
}

static int validate_uts_nested(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct uts_nested_state *st = state_of(ctx);
	int err;

	if ((err = nested_ns_image_read(ctx->images_dir_fd, rt->inv->uts_nested, IMG_UTS_NESTED,
					(ProtobufCMessage **)&st->img)) || !st->img)
		return err;
	if (!(st->views = xzalloc((st->img->n_ns + 1) * sizeof(*st->views))))
		return -ENOMEM;
	for (size_t i = 0; i < st->img->n_ns; i++) {
		const NestedUtsNs *u = st->img->ns[i];
		if (strlen(u->hostname) > 64 || strlen(u->domainname) > 64) {
			pr_err("image uts-nested.img: namespace %zu: a name is longer than 64 bytes", i);
			return -EINVAL;
		}
		st->views[i] = (struct nested_ns_view){ u->maker, u->pids, u->n_pids };
	}
	return nested_ns_validate(rt, "uts-nested.img", st->views, st->img->n_ns);
}

int uts_nested_make(const struct run_ctx *ctx, pid_t pid)
{
	struct uts_nested_state *st = state_of(ctx);
	ssize_t i = st->img ? nested_ns_made_by(st->views, st->img->n_ns, pid) : -1;
	const NestedUtsNs *u;

	if (i < 0)
		return 0;
	u = st->img->ns[i];
	if (unshare(CLONE_NEWUTS) || sethostname(u->hostname, strlen(u->hostname)) ||
	    setdomainname(u->domainname, strlen(u->domainname))) {
		pr_perror("restore pid %d: cannot make its own UTS namespace (host name %s)", pid,
			  u->hostname);
		return -errno;
	}
	return 0;
}

static void free_uts_nested(void *state)
{
	struct uts_nested_state *st = state;

	if (st->img)
		image_free(&st->img->base);
	free(st->views);
}

const struct tree_object_ops tree_uts_nested = {
	.name = "nested UTS namespaces",
	.state_size = sizeof(struct uts_nested_state),
	.free_state = free_uts_nested,
	.collect = collect_uts_nested,
	.write = write_uts_nested,
	.validate = validate_uts_nested,
};
