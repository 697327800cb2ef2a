/*
 * The tree's own UTS namespace (uts-ns.img): its host and domain names, read by a helper
 * inside it; the restored root gets a new one (CLONE_NEWUTS) and sets them first thing. Asked
 * to join one (--join-ns uts:PATH: a pod's, shared with its sandbox), stasis's main thread
 * enters it before the root is made, which inherits it, and its names are left as they are.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "join-ns.h"
#include "log.h"
#include "ns-helper.h"
#include "pstree.h"
#include "tree-objects.h"
#include "task.h"
#include "util.h"

struct uts_ns_state {
	UtsNs *uts;
	int join;  /* restore: an fd of the namespace to join, +1 (0: none) */
	int own;   /* restore: stasis's own while its main thread is in the joined one, +1 */
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
	int err, fd;

	if ((err = join_ns_open(ctx->opts, "uts", &fd)) < 0)
		return err;
	if (err) {
		st->join = fd + 1;
		return 0; /* (uts-ns.img, if any, is not read: the names are the namespace's) */
	}
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

/* Joining: stasis's main thread enters the namespace (this thread only: the root, made from it,
 * inherits it). */
static int prepare_uts_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct uts_ns_state *st = state_of(ctx);
	int err;

	(void)rt;
	if (st->join && (err = ns_enter_from_home(st->join - 1, CLONE_NEWUTS, &st->own))) {
		pr_perror("restore: cannot join the UTS namespace given (--join-ns uts)");
		return err;
	}
	return 0;
}

/* Once the tree holds the namespace (or the restore failed): stasis goes back to its own. */
static void undo_uts_ns(struct run_ctx *ctx, bool restored)
{
	(void)restored;
	ns_go_home(&state_of(ctx)->own, CLONE_NEWUTS, "restore");
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
	if (st->join)
		close(st->join - 1);
	if (st->own)
		close(st->own - 1);
}

const struct tree_object_ops tree_uts_ns = {
	.name = "UTS namespace",
	.state_size = sizeof(struct uts_ns_state),
	.free_state = free_uts_ns,
	.collect = collect_uts_ns,
	.validate = validate_uts_ns,
	.prepare = prepare_uts_ns,
	.undo = undo_uts_ns,
	.enter = enter_uts_ns,
};
