/*
 * Network namespaces that processes of the tree made for themselves (net-nested.img;
 * cr/nested-ns.h), as systemd makes one for a service with PrivateNetwork=yes (its loopback
 * alone), or a program in a container with `ip netns add` and a veth pair into it. Each is saved
 * whole by the kinds of a namespace's configuration (tree_object_ops.per_net_ns: interfaces,
 * addresses, routes, nftables, ...), which run once more for it in a scope of its own (run.h),
 * stasis in the namespace, their images named by its maker (net-links-MAKER.img, ...). A veth
 * between two of the tree's namespaces is saved on both sides, each naming the other end's
 * namespace and index (net_nested_ns_of). Its unix sockets are listed for cr/files/unix-diag.c
 * (unix_diag_add_netns).
 * Restore: stasis makes each namespace before the tree's interfaces (owned by the tree's user
 * namespace if it has one), so that the tree's veths can be made with their other ends in
 * them; once the tree's own configuration is made, each one's is made in it, in image order
 * (the side of a veth pair made first makes the pair: net_nested_made_before). Its maker joins
 * it (setns) when created; the processes below it inherit it. Images of an older stasis, a
 * namespace with its loopback alone, get that loopback up again if it was.
 * Unix sockets come back in the tree's namespace (stasis makes most of them there):
 * nothing tells the two apart but an abstract name, which the dump refuses in a nested
 * namespace. Sockets of other families (inet, netlink, packet) come back where the restore
 * makes them: in their process if one holds them, in stasis (the tree's namespace) if several
 * do, but an inet, netlink or packet socket of a nested namespace that processes there alone
 * share is made by the namespace's maker (fd_entry.netns_maker, fd_netns_maker: the kinds'
 * opened_by_process), once it joined the namespace and before it forks them; one of the tree's
 * own namespace that a process of a nested one holds alone (made before it unshared: vsftpd's
 * session with its control connection) is made by stasis there and inherited
 * (fd_entry.made_in_tree_ns, cr/files/shared.c). The dump notes each (net_nested_note_socket)
 * and refuses one that would come back in another namespace than its own (check_held_sockets).
 * Not kept for a nested namespace: the network lock (netns/net-lock.c locks the tree's own) and
 * the connections waiting in its listeners' accept queues (netns/tcp-requeue.c).
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/nsfs.h>
#include <linux/sockios.h>

#include "files/unix.h"
#include "log.h"
#include "nested-ns.h"
#include "net-nested.h"
#include "net-ns.h"
#include "nlmsg.h"
#include "ns-helper.h"
#include "ns-make.h"
#include "tree-objects.h"
#include "task.h"
#include "util.h"

/* Dump: a socket (not unix) that a process holds, when the tree has nested namespaces. */
struct nested_held_socket {
	uint64_t ino, ns; /* the socket's inode, the namespace it was made in */
	uint64_t holder_ns;
	pid_t pid;
	int fd, family;
	bool maker_opens; /* pid's entry for it is the socket's own (not a sharer's), of a kind
			   * that the maker of its namespace can open (inet, netlink, packet) */
	bool stasis_opens; /* that, of the tree's namespace, pid's in one a process made */
};

/* A mount that binds a network namespace's file other than the tree's own (MOUNT_NSFS). */
struct nsfs_net_mount {
	const MountEntry *e;  /* nsfs_net: the namespace's inode at dump */
	uint32_t mnt_maker;   /* the maker (its pid in the images) of the nested mount namespace
			       * it is in (mounts/mount-nested.c), 0: the tree's own */
};

/* The ids of namespaces that only mounts hold, for their images: above any pid (net-nested.img). */
#define MOUNT_HELD_ID (1u << 30)

struct net_nested_state {
	NetNested *img;
	struct nested_ns_view *views; /* restore: the namespaces processes are in */
	size_t *view_ns;              /* restore: per view, its namespace's index */
	size_t n_views;
	struct nested_held_socket *held; /* dump */
	size_t n_held;
	uint64_t tree_ns;             /* dump: the tree's own (its root's) namespace's inode */
	struct run_scope *scopes;     /* per namespace: its configuration's kinds' states */
	int *fds;                     /* per namespace: an fd of it, + 1 (restore: the makers'
				       * copies are theirs to join) */
	int tree_fd;                  /* an fd of the tree's own namespace, + 1 */
	int home_fd;                  /* an fd of stasis's own namespace, + 1 */
	pid_t *maker_pids;            /* dump: per namespace its maker's pid */
	struct nsfs_net_mount *mounts; /* noted by the mount kinds (net_nested_note_mount) */
	size_t n_mounts;
};

static struct net_nested_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_net_nested);
}

static bool of_net_ns(const struct tree_object_ops *kind)
{
	return kind->per_net_ns || kind == &tree_net_ns;
}

/* The kinds of a namespace's configuration, step by step, in namespace i's scope (stasis is in
 * it). */
enum scope_step { SCOPE_COLLECT, SCOPE_VALIDATE, SCOPE_PREPARE, SCOPE_UNDO };

static int in_scope(struct run_ctx *ctx, size_t i, enum scope_step step, void *tree, bool restored)
{
	struct net_nested_state *st = state_of(ctx);
	pid_t maker = st->maker_pids ? st->maker_pids[i] : (pid_t)st->img->ns[i]->maker;
	int err = 0;

	ctx->scope = &st->scopes[i];
	net_ns_scope_nested(ctx, st->home_fd - 1, maker);
	for (unsigned k = 0; k < tree_objects_len && !err; k++) {
		const struct tree_object_ops *o = tree_objects[step == SCOPE_UNDO ? tree_objects_len - 1 - k : k];
		if (!o->per_net_ns)
			continue;
		if (step == SCOPE_COLLECT && o->collect)
			err = o->collect(ctx, tree);
		else if (step == SCOPE_VALIDATE && o->validate)
			err = o->validate(ctx, tree);
		else if (step == SCOPE_PREPARE && o->prepare)
			err = o->prepare(ctx, tree);
		else if (step == SCOPE_UNDO && o->undo)
			o->undo(ctx, restored);
	}
	ctx->scope = NULL;
	return err;
}

/* in_scope with stasis in namespace i, then back where it was. */
static int in_ns(struct run_ctx *ctx, size_t i, enum scope_step step, void *tree, bool restored)
{
	int back = 0, err;

	if (ns_enter_from_home(state_of(ctx)->fds[i] - 1, CLONE_NEWNET, &back)) {
		pr_perror("%s: cannot enter the network namespace pid %u made", step == SCOPE_COLLECT ? "dump" : "restore",
			  state_of(ctx)->img->ns[i]->maker);
		return -errno;
	}
	err = in_scope(ctx, i, step, tree, restored);
	ns_go_home(&back, CLONE_NEWNET, step == SCOPE_COLLECT ? "dump" : "restore");
	return err;
}

/* An fd of the calling thread's network namespace, + 1, or -errno (said). */
static int own_ns_fd(const char *who)
{
	int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		pr_perror("%s: cannot open stasis's network namespace", who);
	return fd < 0 ? -errno : fd + 1;
}

/* stasis's own namespace: the one it left for the tree's (net-ns.c), else the one it is in. */
static int home_ns_fd(const struct run_ctx *ctx, const char *who)
{
	int home = net_ns_home(ctx), fd;

	if (home < 0)
		return own_ns_fd(who);
	if ((fd = fcntl(home, F_DUPFD_CLOEXEC, 0)) < 0)
		pr_perror("%s: cannot keep stasis's network namespace", who);
	return fd < 0 ? -errno : fd + 1;
}

static int make_scopes(struct net_nested_state *st)
{
	size_t n = st->img->n_ns;

	if ((!st->fds && !(st->fds = xzalloc((n + 1) * sizeof(int)))) ||
	    !(st->scopes = xzalloc((n + 1) * sizeof(*st->scopes))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (run_scope_make(&st->scopes[i], st->img->ns[i]->maker, of_net_ns))
			return -ENOMEM;
	return 0;
}

/* One namespace: its image entry, an fd of it. */
static int collect_one(struct run_ctx *ctx, const struct dump_tree *tr, const struct nested_ns *v, NestedNetNs **out,
		       int *fd)
{
	NestedNetNs *u = xzalloc(sizeof(*u));
	char path[64];

	if (!u)
		return -ENOMEM;
	nested_net_ns__init(u);
	*out = u;
	if (!(u->pids = xzalloc(v->n * sizeof(*u->pids))))
		return -ENOMEM;
	u->ns_id = v->id;
	u->maker = tr->tasks[v->members[0]].vpid;
	for (size_t m = 0; m < v->n; m++)
		u->pids[u->n_pids++] = tr->tasks[v->members[m]].vpid;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", tr->tasks[v->members[0]].pid);
	if ((*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		pr_perror("dump pid %d: cannot open its network namespace net:[%llu]", tr->tasks[v->members[0]].pid,
			  (unsigned long long)v->id);
		return -errno;
	}
	(*fd)++;
	return unix_diag_add_netns(ctx, tr->tasks[v->members[0]].pid);
}

/* Namespace i saved in its scope: its configuration. */
static int save_one(struct run_ctx *ctx, struct dump_tree *tr, size_t i)
{
	struct net_nested_state *st = state_of(ctx);
	NestedNetNs *u = st->img->ns[i];
	int back = 0, err;

	if (ns_enter_from_home(st->fds[i] - 1, CLONE_NEWNET, &back)) {
		pr_perror("dump pid %d: cannot enter its network namespace net:[%llu]", st->maker_pids[i],
			  (unsigned long long)u->ns_id);
		return -errno;
	}
	u->lo_up = net_ns_lo_is_up();
	err = in_scope(ctx, i, SCOPE_COLLECT, tr, false);
	ns_go_home(&back, CLONE_NEWNET, "dump");
	if (err) {
		pr_err("dump pid %d: the network namespace it made, net:[%llu], cannot be saved", st->maker_pids[i],
		       (unsigned long long)u->ns_id);
		return err;
	}
	u->has_config = u->config = true;
	if (u->mount_held)
		pr_info("dump pid %d: the network namespace net:[%llu] its mount holds saved (net-links-%u.img, "
			"...)", st->maker_pids[i], (unsigned long long)u->ns_id, u->maker);
	else
		pr_info("dump pid %d: its own network namespace net:[%llu] saved (net-links-%u.img, ...), %zu "
			"processes", st->maker_pids[i], (unsigned long long)u->ns_id, u->maker, u->n_pids);
	return 0;
}

/* The index of the namespace whose inode at dump was ns_ino, -1 if none. */
static ssize_t index_of_ns(const struct net_nested_state *st, uint64_t ns_ino)
{
	for (size_t i = 0; st->img && i < st->img->n_ns; i++)
		if (st->img->ns[i]->ns_id == ns_ino)
			return i;
	return -1;
}

/* The maker of network namespace ns_ino if it is one a process of the tree made, else 0. */
static uint32_t maker_of(const struct net_nested_state *st, uint64_t ns_ino)
{
	ssize_t i = index_of_ns(st, ns_ino);

	return i < 0 ? 0 : st->img->ns[i]->maker;
}

int net_nested_note_socket(const struct run_ctx *ctx, pid_t pid, FdEntry *e)
{
	struct net_nested_state *st = state_of(ctx);
	bool maker_opens = e->kind == FD_KIND__FD_INET || e->kind == FD_KIND__FD_NETLINK ||
			   e->kind == FD_KIND__FD_PACKET;
	int fd = e->fd, family = 0;
	socklen_t len = sizeof(family);
	struct stat sock, ns, holder;
	char path[64];

	if (!st->img)
		return 0;
	auto_close int sk = task_fd_copy(pid, fd);
	if (sk < 0 || fstat(sk, &sock) || getsockopt(sk, SOL_SOCKET, SO_DOMAIN, &family, &len) ||
	    family == AF_UNIX)
		return 0; /* (the kinds say what they cannot read; unix sockets: cr/files/unix-diag.c) */
	auto_close int nsfd = ioctl(sk, SIOCGSKNS);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	if (nsfd < 0 || fstat(nsfd, &ns) || stat(path, &holder)) {
		pr_perror("dump pid %d fd %d: cannot tell which network namespace its socket is of", pid, fd);
		return -errno;
	}
	if (st->n_held % 64 == 0) {
		struct nested_held_socket *more = xreallocarray(st->held, st->n_held + 64, sizeof(*more));
		if (!more)
			return -ENOMEM;
		st->held = more;
	}
	bool stasis_opens = maker_opens && ns.st_ino == st->tree_ns && holder.st_ino != ns.st_ino &&
			    maker_of(st, holder.st_ino);
	st->held[st->n_held++] = (struct nested_held_socket){ sock.st_ino, ns.st_ino, holder.st_ino,
							      pid, fd, family, maker_opens, stasis_opens };
	/* (its entry is written before the tree's objects: marked now, judged in the write) */
	if (maker_opens && (e->netns_maker = maker_of(st, ns.st_ino)))
		e->has_netns_maker = true;
	if (stasis_opens) /* (made before its holder unshared: vsftpd's sessions' connections) */
		e->has_made_in_tree_ns = e->made_in_tree_ns = true;
	return 0;
}

static int by_socket(const void *a, const void *b)
{
	const struct nested_held_socket *x = a, *y = b;
	return (x->ino > y->ino) - (x->ino < y->ino);
}

/*
 * The restore makes a socket that one process holds in that process; one that several hold in
 * stasis, in the tree's namespace, unless it is an inet, netlink or packet socket of a nested
 * namespace that only processes there hold: that namespace's maker opens it then (netns_maker),
 * before it forks them. A socket that would come back in another namespace than its own is
 * refused, naming a holder.
 */
static int check_held_sockets(struct net_nested_state *st)
{
	if (st->n_held)
		qsort(st->held, st->n_held, sizeof(*st->held), by_socket);
	for (size_t i = 0, j; i < st->n_held; i = j) {
		const struct nested_held_socket *h = &st->held[i], *other = NULL, *outside = NULL;
		bool maker_opens = false;
		for (j = i; j < st->n_held && st->held[j].ino == h->ino; j++) {
			if (st->held[j].pid != h->pid)
				other = &st->held[j];
			if (st->held[j].holder_ns != h->ns)
				outside = &st->held[j];
			maker_opens |= st->held[j].maker_opens;
		}
		if (other && maker_of(st, h->ns) && maker_opens && !outside)
			continue; /* (netns_maker) */
		if (other && maker_of(st, h->ns)) {
			const struct nested_held_socket *x = outside ? outside : other;
			pr_err("dump pid %d fd %d: a socket of family %d made in network namespace "
			       "net:[%llu], the one pid %u made, is held by pid %d%s too: a socket held by "
			       "several processes comes back in the tree's namespace unless it is an inet, "
			       "netlink or packet socket that processes of its own namespace alone hold (not "
			       "supported yet)",
			       h->pid, h->fd, h->family, (unsigned long long)h->ns, maker_of(st, h->ns),
			       x->pid, outside ? ", of another namespace," : "");
			return -ENOTSUP;
		}
		if (!other && h->ns != h->holder_ns && !h->stasis_opens &&
		    (maker_of(st, h->ns) || maker_of(st, h->holder_ns))) {
			pr_err("dump pid %d fd %d: a socket of family %d made in network namespace "
			       "net:[%llu] is held by this process of net:[%llu] alone: it would come back "
			       "in the holder's namespace (not supported yet)", h->pid, h->fd, h->family,
			       (unsigned long long)h->ns, (unsigned long long)h->holder_ns);
			return -ENOTSUP;
		}
	}
	return 0;
}

/*
 * A namespace no process is in that a mount of the tree binds (`ip netns add`), opened
 * through that mount: its image entry (an id above any pid for its images), an fd of it.
 */
static int collect_mount_held(const struct dump_tree *tr, const struct nsfs_net_mount *held, uint32_t id,
			      NestedNetNs **out, int *fd)
{
	const MountEntry *m = held->e;
	pid_t via = tr->tasks[0].pid;
	NestedNetNs *u = xzalloc(sizeof(*u));
	char path[PATH_MAX + 64];
	struct stat sb;

	if (!u)
		return -ENOMEM;
	nested_net_ns__init(u);
	*out = u;
	u->ns_id = m->nsfs_net;
	u->maker = id;
	u->has_mount_held = u->mount_held = true;
	for (size_t i = 0; held->mnt_maker && i < tr->nr_tasks; i++) /* (a nested mount namespace's) */
		if (tr->tasks[i].vpid == held->mnt_maker)
			via = tr->tasks[i].pid;
	snprintf(path, sizeof(path), "/proc/%d/root%s", via, m->mountpoint);
	if ((*fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(*fd, &sb) ||
	    sb.st_ino != m->nsfs_net || ioctl(*fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
		pr_perror("dump pid %d: cannot open the network namespace net:[%llu] that its mount %s binds",
			  via, (unsigned long long)m->nsfs_net, m->mountpoint);
		return errno ? -errno : -EIO;
	}
	(*fd)++;
	pr_info("dump pid %d: network namespace net:[%llu], which no process is in, held by its mount %s",
		via, (unsigned long long)m->nsfs_net, m->mountpoint);
	return 0;
}

static int collect_net_nested(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct net_nested_state *st = state_of(ctx);
	const struct nsfs_net_mount *held = st->mounts;
	struct nested_ns *v = NULL;
	size_t n = 0, n_held = st->n_mounts;
	int err;

	if ((err = nested_ns_find(tr, "net", &v, &n)) || (!n && !n_held))
		goto out;
	char path[64];
	struct stat root_ns;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", tr->tasks[0].pid);
	if (stat(path, &root_ns) || (st->tree_fd = open(path, O_RDONLY | O_CLOEXEC) + 1) <= 0) {
		pr_perror("dump pid %d: cannot tell its network namespace", tr->tasks[0].pid);
		err = -errno;
		goto out;
	}
	st->tree_ns = root_ns.st_ino;
	size_t all = n + n_held;
	if (!(st->img = xzalloc(sizeof(*st->img))) ||
	    (net_nested__init(st->img), !(st->img->ns = xzalloc(all * sizeof(*st->img->ns)))) ||
	    !(st->fds = xzalloc((all + 1) * sizeof(int))) ||
	    !(st->maker_pids = xzalloc(all * sizeof(pid_t)))) {
		err = -ENOMEM;
		goto out;
	}
	/* (every namespace's fd first: a veth's other end may be in a later one) */
	for (size_t i = 0; i < n && !err; i++) {
		st->maker_pids[i] = tr->tasks[v[i].members[0]].pid;
		err = collect_one(ctx, tr, &v[i], &st->img->ns[st->img->n_ns++], &st->fds[i]);
	}
	for (size_t k = 0; k < n_held && !err; k++) {
		size_t i = st->img->n_ns;
		if (maker_of(st, held[k].e->nsfs_net))
			continue; /* (a process's, or bound twice) */
		st->maker_pids[i] = tr->tasks[0].pid;
		err = collect_mount_held(tr, &held[k], MOUNT_HELD_ID + (uint32_t)(i - n), &st->img->ns[st->img->n_ns++],
					 &st->fds[i]);
	}
	if (err || (err = make_scopes(st)) || (err = st->home_fd = home_ns_fd(ctx, "dump")) < 0)
		goto out;
	err = 0;
	for (size_t i = 0; i < st->img->n_ns && !err; i++)
		err = save_one(ctx, tr, i);
	if (!err)
		tr->inv.has_net_nested = tr->inv.net_nested = true;
out:
	nested_ns_free(v, n);
	return err;
}

uint32_t net_nested_maker_of(const struct run_ctx *ctx, uint64_t ns_ino)
{
	return maker_of(state_of(ctx), ns_ino);
}

/* The scope i's index, or -1 for the tree's own namespace (no scope). */
static ssize_t current(const struct net_nested_state *st, const struct run_ctx *ctx)
{
	for (size_t i = 0; ctx->scope && st->scopes && i < st->img->n_ns; i++)
		if (ctx->scope == &st->scopes[i])
			return i;
	return -1;
}

/* The index of the namespace pid id made, -1 for the tree's own (id 0), -2 if none. */
static ssize_t by_id(const struct net_nested_state *st, uint32_t id)
{
	if (!id)
		return -1;
	for (size_t i = 0; st->img && i < st->img->n_ns; i++)
		if (st->img->ns[i]->maker == id)
			return i;
	return -2;
}

int net_nested_ns_of(const struct run_ctx *ctx, int nl, int nsid, uint32_t *id, int *fd)
{
	const struct net_nested_state *st = state_of(ctx);
	ssize_t here = current(st, ctx);

	if (!st->img || nsid < 0)
		return -ENOENT;
	for (ssize_t i = -1; i < (ssize_t)st->img->n_ns; i++) {
		int ns = i < 0 ? st->tree_fd - 1 : st->fds[i] - 1, there;
		if (i == here || ns < 0)
			continue;
		if ((there = nl_nsid(nl, ns)) == -ENOMEM)
			return -ENOMEM;
		if (there == nsid) {
			*id = i < 0 ? 0 : st->img->ns[i]->maker;
			*fd = ns;
			return 0;
		}
	}
	return -ENOENT;
}

bool net_nested_scope_of(const struct run_ctx *ctx, uint32_t id, struct run_ctx *view)
{
	const struct net_nested_state *st = state_of(ctx);
	ssize_t i = by_id(st, id);

	if (i == -2 || i == current(st, ctx) || (i >= 0 && !st->img->ns[i]->config))
		return false;
	*view = *ctx;
	view->scope = i < 0 ? NULL : &st->scopes[i];
	return true;
}

int net_nested_fd_of(const struct run_ctx *ctx, uint64_t ns_ino)
{
	const struct net_nested_state *st = state_of(ctx);
	ssize_t i = index_of_ns(st, ns_ino);

	return i < 0 || !st->fds ? -1 : st->fds[i] - 1;
}

int net_nested_fd(const struct run_ctx *ctx, uint32_t id)
{
	const struct net_nested_state *st = state_of(ctx);
	ssize_t i = by_id(st, id);

	return i == -2 ? -1 : i < 0 ? st->tree_fd - 1 : st->fds[i] - 1;
}

bool net_nested_made_before(const struct run_ctx *ctx, uint32_t id)
{
	const struct net_nested_state *st = state_of(ctx);

	return by_id(st, id) < current(st, ctx);
}

static int write_net_nested(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct net_nested_state *st = state_of(ctx);
	int err;

	(void)tr;
	if (!st->img)
		return 0;
	if ((err = check_held_sockets(st)))
		return err;
	return image_write(ctx->images_dir_fd, IMG_NET_NESTED, 0, &st->img->base);
}

/* Each socket that names the maker of its namespace names one net-nested.img holds. */
static int check_socket_makers(const struct net_nested_state *st, const struct restore_tree *rt)
{
	for (size_t i = 0; i < rt->nr_tasks; i++)
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			bool known = false;
			if (!e->has_netns_maker)
				continue;
			for (size_t n = 0; st->img && n < st->img->n_ns && !known; n++)
				known = st->img->ns[n]->maker == e->netns_maker;
			if (!known) {
				pr_err("image fds-%d.img: fd %u: its socket's network namespace is pid %u's, "
				       "which net-nested.img does not hold", rt->tasks[i].pid, e->fd,
				       e->netns_maker);
				return -EINVAL;
			}
		}
	return 0;
}

int net_nested_note_mount(const struct run_ctx *ctx, const MountEntry *e, uint32_t mnt_maker)
{
	struct net_nested_state *st = state_of(ctx);
	struct nsfs_net_mount *more = xreallocarray(st->mounts, st->n_mounts + 1, sizeof(*more));

	if (!more)
		return -ENOMEM;
	st->mounts = more;
	st->mounts[st->n_mounts++] = (struct nsfs_net_mount){ e, mnt_maker };
	return 0;
}

/* Each network namespace the tree's mounts bind, but its own, is one of net-nested.img. */
static int check_mounts(const struct net_nested_state *st)
{
	const struct nsfs_net_mount *held = st->mounts;
	int err = 0;

	for (size_t k = 0; !err && k < st->n_mounts; k++)
		if (index_of_ns(st, held[k].e->nsfs_net) < 0) {
			pr_err("image %s: mount %s binds network namespace net:[%llu], which net-nested.img "
			       "does not hold", held[k].mnt_maker ? "mount-nested.img" : "mount-ns.img",
			       held[k].e->mountpoint, (unsigned long long)held[k].e->nsfs_net);
			err = -EINVAL;
		}
	return err;
}

static int validate_net_nested(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct net_nested_state *st = state_of(ctx);
	int err;

	if ((err = nested_ns_image_read(ctx->images_dir_fd, rt->inv->net_nested, IMG_NET_NESTED,
					(ProtobufCMessage **)&st->img)) ||
	    (err = check_socket_makers(st, rt)) || !st->img)
		return err ?: check_mounts(st);
	if (!(st->views = xzalloc((st->img->n_ns + 1) * sizeof(*st->views))) ||
	    !(st->view_ns = xzalloc((st->img->n_ns + 1) * sizeof(*st->view_ns))))
		return -ENOMEM;
	for (size_t i = 0; i < st->img->n_ns; i++) {
		const NestedNetNs *u = st->img->ns[i];
		if (u->mount_held != (u->maker >= MOUNT_HELD_ID) || (u->mount_held && u->n_pids)) {
			pr_err("image net-nested.img: namespace %zu (%u) is invalid", i, u->maker);
			return -EINVAL;
		}
		for (size_t k = 0; k < i; k++)
			if (st->img->ns[k]->ns_id == u->ns_id || st->img->ns[k]->maker == u->maker) {
				pr_err("image net-nested.img: namespace net:[%llu] (%u) is there twice",
				       (unsigned long long)u->ns_id, u->maker);
				return -EINVAL;
			}
		if (u->mount_held)
			continue;
		st->view_ns[st->n_views] = i;
		st->views[st->n_views++] = (struct nested_ns_view){ u->maker, u->pids, u->n_pids };
	}
	if ((err = check_mounts(st)) || (err = nested_ns_validate(rt, "net-nested.img", st->views, st->n_views)) ||
	    (err = make_scopes(st)) || (err = st->home_fd = home_ns_fd(ctx, "restore")) < 0)
		return err;
	for (size_t i = 0; i < st->img->n_ns; i++) {
		if (st->img->ns[i]->config && (err = in_scope(ctx, i, SCOPE_VALIDATE, rt, false))) {
			pr_err("restore: the images of the network namespace pid %u made (net-links-%u.img, "
			       "...) are refused", st->img->ns[i]->maker, st->img->ns[i]->maker);
			return err;
		}
	}
	return 0;
}

/*
 * Every namespace made, empty, before the tree's interfaces (a veth of the tree's has its
 * other end made in one), stasis back in the tree's; an old image's loopback alone up again.
 */
static int prepare_net_nested(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct net_nested_state *st = state_of(ctx);
	int err = 0;

	(void)rt;
	if (!st->img)
		return 0;
	if ((st->tree_fd = own_ns_fd("restore")) < 0)
		return st->tree_fd;
	for (size_t i = 0; i < st->img->n_ns && !err; i++) {
		const NestedNetNs *u = st->img->ns[i];
		if ((err = ns_make_nested(ctx, CLONE_NEWNET)))
			break;
		if ((err = st->fds[i] = own_ns_fd("restore")) > 0)
			err = 0;
		if (!err && !u->config && u->lo_up && (err = net_ns_lo_up()))
			pr_err("restore pid %u: cannot bring the loopback of its own network namespace up: %s",
			       u->maker, strerror(-err));
		if (setns(st->tree_fd - 1, CLONE_NEWNET)) {
			pr_perror("restore: cannot go back to the tree's network namespace");
			err = err ?: -errno;
		}
	}
	return err;
}

/* Once the tree's namespace is configured: each nested one's configuration, in image order. */
static int prepare_net_nested_config(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct net_nested_state *st = state_of(ctx);
	int err = 0;

	for (size_t i = 0; st->img && i < st->img->n_ns && !err; i++)
		if (st->img->ns[i]->config && (err = in_ns(ctx, i, SCOPE_PREPARE, rt, false)))
			pr_err("restore pid %u: cannot configure its own network namespace again",
			       st->img->ns[i]->maker);
	return err;
}

static void undo_net_nested_config(struct run_ctx *ctx, bool restored)
{
	struct net_nested_state *st = state_of(ctx);

	for (size_t i = st->scopes ? st->img->n_ns : 0; i-- > 0;)
		if (st->img->ns[i]->config)
			in_scope(ctx, i, SCOPE_UNDO, NULL, restored);
}

int net_nested_make(const struct run_ctx *ctx, pid_t pid)
{
	struct net_nested_state *st = state_of(ctx);
	ssize_t v = st->img ? nested_ns_made_by(st->views, st->n_views, pid) : -1;

	if (v < 0)
		return 0;
	if (setns(st->fds[st->view_ns[v]] - 1, CLONE_NEWNET)) {
		pr_perror("restore pid %d: cannot join its own network namespace", pid);
		return -errno;
	}
	return 0;
}

static void close_fds(struct net_nested_state *st)
{
	for (size_t i = 0; st->fds && st->img && i < st->img->n_ns; i++)
		if (st->fds[i])
			close(st->fds[i] - 1);
	if (st->tree_fd)
		close(st->tree_fd - 1);
	if (st->home_fd > 0)
		close(st->home_fd - 1);
	st->tree_fd = st->home_fd = 0;
	free(st->fds);
	st->fds = NULL;
}

/* The root holds copies of the namespaces' fds (their makers join them): stasis's go. */
static void close_net_nested(struct run_ctx *ctx)
{
	close_fds(state_of(ctx));
}

static void undo_net_nested(struct run_ctx *ctx, bool restored)
{
	(void)restored;
	close_fds(state_of(ctx));
}

static void free_net_nested(void *state)
{
	struct net_nested_state *st = state;

	for (size_t i = 0; st->scopes && i < st->img->n_ns; i++)
		run_scope_free(&st->scopes[i]);
	free(st->scopes);
	close_fds(st);
	if (st->img)
		image_free(&st->img->base);
	free(st->views);
	free(st->view_ns);
	free(st->mounts);
	free(st->maker_pids);
	free(st->held);
}

const struct tree_object_ops tree_net_nested = {
	.name = "nested network namespaces",
	.state_size = sizeof(struct net_nested_state),
	.free_state = free_net_nested,
	.collect = collect_net_nested,
	.write = write_net_nested,
	.validate = validate_net_nested,
	.prepare = prepare_net_nested,
	.close = close_net_nested,
	.undo = undo_net_nested,
};

/* Nested namespaces' configurations, made once the tree's own is (tree-objects.c). */
const struct tree_object_ops tree_net_nested_config = {
	.name = "nested network namespaces' configurations",
	.prepare = prepare_net_nested_config,
	.undo = undo_net_nested_config,
};
