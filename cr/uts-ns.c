/*
 * The tree's own UTS namespace (uts-ns.img): its host and domain names, read by a helper
 * inside it; the restored root gets a new one (CLONE_NEWUTS) and sets them first thing.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "log.h"
#include "ns-helper.h"
#include "pstree.h"
#include "tree-objects.h"
#include "task.h"
#include "util.h"

struct uts_ns_state {
	UtsNs *uts;
};

static struct uts_ns_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_uts_ns);
}

static int read_names(void *out, size_t len)
{
	(void)len;
	return uname(out) ? -errno : 0;
}

static int collect_uts_ns(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct uts_ns_state *st = state_of(ctx);
	pid_t root = tr->tasks[0].pid;
	struct utsname u;
	int err;

	if (!ns_is_own(root, "uts", NULL))
		return 0;
	if ((err = ns_helper_run(root, CLONE_NEWUTS, read_names, &u, sizeof(u))))
		return err;
	if (!(st->uts = xzalloc(sizeof(*st->uts))))
		return -ENOMEM;
	uts_ns__init(st->uts);
	if (!(st->uts->hostname = xstrdup(u.nodename)) || !(st->uts->domainname = xstrdup(u.domainname)))
		return -ENOMEM;
	tr->inv.has_uts_ns = tr->inv.uts_ns = true;
	return image_write(ctx->images_dir_fd, IMG_UTS_NS, 0, &st->uts->base);
}

static int validate_uts_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct uts_ns_state *st = state_of(ctx);
	int err;

	if (!rt->inv->uts_ns)
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_UTS_NS, 0, (ProtobufCMessage **)&st->uts)))
		return err;
	if (strlen(st->uts->hostname) > 64 || strlen(st->uts->domainname) > 64) {
		pr_err("image uts-ns.img: a name is longer than 64 bytes");
		return -EINVAL;
	}
	rt->clone_flags |= CLONE_NEWUTS;
	return 0;
}

static int enter_uts_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	const UtsNs *u = state_of(ctx)->uts;

	(void)rt;
	if (!u)
		return 0;
	if (sethostname(u->hostname, strlen(u->hostname)) ||
	    setdomainname(u->domainname, strlen(u->domainname))) {
		pr_perror("restore: cannot set the host name %s", u->hostname);
		return -errno;
	}
	return 0;
}

static void free_uts_ns(void *state)
{
	struct uts_ns_state *st = state;

	if (st->uts)
		image_free(&st->uts->base);
}

const struct tree_object_ops tree_uts_ns = {
	.name = "UTS namespace",
	.state_size = sizeof(struct uts_ns_state),
	.free_state = free_uts_ns,
	.collect = collect_uts_ns,
	.validate = validate_uts_ns,
	.enter = enter_uts_ns,
};
