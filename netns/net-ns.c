/*
 * The tree's network namespace (net-ns.img): one of its own is made again with its loopback up
 * if it was, and its configuration is saved and made again by the kinds that follow it in
 * the table (netns/net-links.c, net-addrs.c, net-routes.c, net-rules.c, net-neigh.c,
 * net-sysctls.c, nft-ruleset.c). A namespace that belongs to the engine (--external
 * net[INODE]:KEY on dump) is left to it: on restore the tree joins the one given
 * (--inherit-fd fd[N]:KEY, or --join-ns net:PATH), or, with --empty-ns net (the RPC's
 * empty_ns), gets a new empty one with lo up. The interfaces the tree made in the engine's
 * namespace (tun/tap devices: a VPN in a container; bridges, inner veth pairs) are saved all
 * the same, with their addresses, routes and sysctls, and made again in the one the restore is
 * given (`devices`; the engine's own interfaces, routes, rules and nftables stay the
 * engine's), also from a namespace saved whole when the restore is given one. On restore
 * stasis itself moves into the tree's namespace before anything of the tree is made (the
 * sockets it makes for the tree, and the network lock, belong there; the root inherits it)
 * and goes back once the root exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "join-ns.h"
#include "log.h"
#include "net-ns.h"
#include "ns-helper.h"
#include "ns-make.h"
#include "pstree.h"
#include "tree-objects.h"
#include "task.h"
#include "util.h"

struct net_ns_state {
	int own_ns;           /* dump: stasis's own namespace (fd + 1) while it is in the tree's */
	bool config;          /* dump: its configuration is saved; restore: made again */
	bool devices;         /* the engine's, the interfaces the tree made in it saved / made again */
	NetNs *net;           /* restore: net-ns.img */
	const char *join;     /* restore: a path of the namespace to join (--join-ns net:PATH) */
	char join_path[4096]; /* (where join points) */
	int join_fd;          /* restore: or the caller's fd of it (--inherit-fd), -1 */
	bool empty;           /* restore: a new empty namespace, lo up (--empty-ns net) */
	int home;             /* restore: stasis's own namespace (fd + 1) while it is in the tree's */
	pid_t holder;         /* a nested namespace's scope: its maker (dump: its pid) */
};

static struct net_ns_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_net_ns);
}

bool net_ns_config(const struct run_ctx *ctx)
{
	return state_of(ctx)->config;
}

bool net_ns_devices(const struct run_ctx *ctx)
{
	return state_of(ctx)->devices;
}

bool net_ns_empty(const struct run_ctx *ctx)
{
	return state_of(ctx)->empty;
}

bool net_ns_interfaces(const struct run_ctx *ctx)
{
	return state_of(ctx)->config || state_of(ctx)->devices;
}

int net_ns_home(const struct run_ctx *ctx)
{
	const struct net_ns_state *st = state_of(ctx);

	return (st->own_ns ?: st->home) - 1;
}

void net_ns_scope_nested(struct run_ctx *ctx, int home, pid_t maker)
{
	struct net_ns_state *st = state_of(ctx);

	st->config = true;
	st->own_ns = home + 1; /* (the scope's state: never closed, never gone home from) */
	st->holder = maker;
}

pid_t net_ns_holder(const struct run_ctx *ctx, const struct dump_tree *tr)
{
	return state_of(ctx)->holder ?: tr->tasks[0].pid;
}

bool net_ns_lo_is_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	auto_close int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	return s >= 0 && !ioctl(s, SIOCGIFFLAGS, &ifr) && (ifr.ifr_flags & IFF_UP);
}

/*
 * For the rest of the dump stasis's main thread is in the tree's network namespace: the
 * sockets it makes to ask the kernel about the tree's (sock_diag) see the tree's.
 */
static int enter_tree_ns(struct run_ctx *ctx, pid_t root)
{
	struct net_ns_state *st = state_of(ctx);
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/net", root);
	auto_close int tree = open(path, O_RDONLY | O_CLOEXEC);
	if (tree < 0 || ns_enter_from_home(tree, CLONE_NEWNET, &st->own_ns)) {
		pr_perror("dump pid %d: cannot enter its network namespace", root);
		return -errno;
	}
	return 0;
}

static void dump_done_net_ns(struct run_ctx *ctx)
{
	/* (config and devices stay: the tree's namespace is known to go with it) */
	ns_go_home(&state_of(ctx)->own_ns, CLONE_NEWNET, "dump");
}

static int collect_net_ns(struct run_ctx *ctx, struct dump_tree *tr)
{
	pid_t root = tr->tasks[0].pid;
	const char *key;
	uint64_t ino;
	int err;

	if (!ns_is_own(root, "net", &ino))
		return 0;
	if ((err = enter_tree_ns(ctx, root)))
		return err;
	NetNs n = NET_NS__INIT;
	tr->inv.has_net_ns = tr->inv.net_ns = true;
	if ((key = external_ns_key(ctx->opts, "net", ino))) {
		if (!(n.ext_key = xstrdup(key)))
			return -ENOMEM;
		pr_info("dump pid %d: its network namespace net:[%llu] is the engine's (%s): only the "
			"interfaces the tree made in it are saved", root, (unsigned long long)ino, key);
		n.has_devices = n.devices = state_of(ctx)->devices = true;
	} else {
		n.has_lo_up = n.has_config = true;
		n.lo_up = net_ns_lo_is_up();
		n.config = state_of(ctx)->config = true;
	}
	err = image_write(ctx->images_dir_fd, IMG_NET_NS, 0, &n.base);
	free(n.ext_key);
	return err;
}

/* --join-ns net:PATH, or the caller's fd named by the key (--inherit-fd fd[N]:KEY). */
static int engine_namespace(const struct run_ctx *ctx, struct net_ns_state *st, const char *key)
{
	const struct stasis_opts *o = ctx->opts;

	st->join = join_ns_path(o, "net", st->join_path, sizeof(st->join_path));
	for (size_t i = 0; key && i < o->nr_inherit_fds; i++)
		if (!strcmp(o->inherit_fds[i].key, key))
			st->join_fd = o->inherit_fds[i].fd;
	st->empty = o->empty_ns & CLONE_NEWNET;
	return st->join || st->join_fd >= 0 || st->empty;
}

static int validate_net_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct net_ns_state *st = state_of(ctx);
	int err;

	(void)rt;
	st->join_fd = -1;
	if (!rt->inv->net_ns)
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_NET_NS, 0, (ProtobufCMessage **)&st->net)))
		return err;
	if (engine_namespace(ctx, st, st->net->ext_key)) {
		if (st->join && access(st->join, R_OK)) {
			pr_perror("restore: --join-ns net:%s", st->join);
			return -ENOENT;
		}
		/* the tree's devices are made in the namespace given, from what was saved of them
		 * (a namespace saved whole: its tun/tap devices) */
		st->devices = st->net->devices || st->net->config;
		return 0;
	}
	if (st->net->ext_key) {
		pr_err("restore: the tree's network namespace was the engine's (%s): pass --inherit-fd "
		       "fd[N]:%s with an fd of the namespace, --join-ns net:PATH, or --empty-ns net",
		       st->net->ext_key, st->net->ext_key);
		return -EINVAL;
	}
	st->config = st->net->config; /* the namespace stasis makes gets it */
	return 0;
}

int net_ns_lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	auto_close int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr))
		return -errno;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	return ioctl(s, SIOCSIFFLAGS, &ifr) ? -errno : 0;
}

/* stasis back in its own network namespace (it was in the tree's since prepare). */
static void go_home(struct net_ns_state *st)
{
	ns_go_home(&st->home, CLONE_NEWNET, "restore");
}

/*
 * stasis moves into the tree's network namespace (the engine's, or a new one with its
 * loopback up) before anything of the tree is made: sockets it makes for the tree (shared
 * ones, listeners, locks) belong there, and the root inherits it when it is created.
 */
static int prepare_net_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct net_ns_state *st = state_of(ctx);
	int home, err;

	(void)rt;
	if (!st->net)
		return 0;
	if ((home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) {
		pr_perror("restore: cannot open stasis's own network namespace");
		return -errno;
	}
	st->home = home + 1;
	if (st->join || st->join_fd >= 0) {
		int fd = st->join ? open(st->join, O_RDONLY | O_CLOEXEC) : st->join_fd;
		err = fd < 0 || setns(fd, CLONE_NEWNET) ? -errno : 0;
		if (st->join && fd >= 0)
			close(fd);
		if (err)
			pr_perror("restore: cannot join the network namespace given for the tree");
		return err;
	}
	if ((err = ns_make(ctx, CLONE_NEWNET)))
		return err;

	/* a loopback that was up comes back up; in an empty namespace the engine's too */
	if ((st->net->lo_up || st->empty) && (err = net_ns_lo_up())) {
		pr_err("restore: cannot bring the loopback up: %s", strerror(-err));
		return err;
	}
	return 0;
}

static void close_net_ns(struct run_ctx *ctx)
{
	go_home(state_of(ctx));
	state_of(ctx)->config = state_of(ctx)->devices = false;
}

static void undo_net_ns(struct run_ctx *ctx, bool restored)
{
	(void)restored;
	close_net_ns(ctx);
}

static void free_net_ns(void *state)
{
	struct net_ns_state *st = state;

	if (st->net)
		image_free(&st->net->base);
}

const struct tree_object_ops tree_net_ns = {
	.name = "network namespace",
	.state_size = sizeof(struct net_ns_state),
	.free_state = free_net_ns,
	.collect = collect_net_ns,
	.dump_done = dump_done_net_ns,
	.validate = validate_net_ns,
	.prepare = prepare_net_ns,
	.close = close_net_ns,
	.undo = undo_net_ns,
};
