/*
 * The tree's unix sockets. The kernel tells each socket's peer, name, shutdown state and
 * queue lengths (NETLINK_SOCK_DIAG); stasis reads queues on copies of the fds (pidfd_getfd).
 *
 * Dump, first (the tree frozen, before any process's fds): the queue of every socket the tree
 * holds, unless it is connected outside the tree, is read with the files its messages carry;
 * a socket carried that way has its queue read in turn (unix-queue.c). Then each fd is one of:
 *   a listener, with the connections waiting in it (unix-backlog.c), or a socket bound to a
 *     name and not connected (stream, seqpacket, or datagram with what waits in it):
 *     FD_UNIX_BOUND;
 *   a datagram socket connected one way to a socket of the tree (itself too): FD_UNIX_BOUND +
 *     sock_peer;
 *   one end of a pair, its peer held, carried or closed: FD_UNIX_PAIR (unix-pair.c);
 *   a client waiting to be accepted by a listener of the tree: FD_UNIX_PENDING;
 *   neither bound nor connected: FD_UNIX_FRESH;
 *   connected outside the tree: a datagram socket to a named socket, connected to the name
 *     again (FD_UNIX_EXTERNAL, --ext-unix-sk), else external (unix-held.c).
 * The files carried in flight are saved in the same pass (unix-inflight.c; sockets here).
 *
 * Restore, before the tree: stasis binds every named socket and listener, makes every pair,
 * connects the one-way datagram sockets, queues the connections not accepted yet and makes
 * the files only messages hold (in the tree's network namespace; path names in the tree's
 * root, unix-socket.c); every process inherits what it holds. Once every process
 * exists (at the first of these fds to finish): the carried files processes hold are taken,
 * every queue is filled again, closed ends closed, shutdowns applied, and stasis lets go.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "pid-ns.h"
#include "pstree.h"
#include "tree-objects.h"
#include "unix.h"
#include "util.h"

/* A socket's family for the refusal of one no kind of stasis's takes ("an AF_VSOCK"); -1 unread */
static int socket_family(pid_t pid, int fd, const char **name)
{
	static const char *const names[] = {
		[AF_KEY] = "an AF_KEY (IPsec key management)", [AF_RDS] = "an AF_RDS",
		[AF_PPPOX] = "an AF_PPPOX (PPP over Ethernet or L2TP)", [AF_CAN] = "an AF_CAN",
		[AF_TIPC] = "an AF_TIPC", [AF_BLUETOOTH] = "an AF_BLUETOOTH",
		[AF_ALG] = "an AF_ALG (kernel crypto)", [AF_VSOCK] = "an AF_VSOCK (virtual machine)",
		[AF_KCM] = "an AF_KCM", [AF_QIPCRTR] = "an AF_QIPCRTR", [AF_SMC] = "an AF_SMC",
		[AF_XDP] = "an AF_XDP", [AF_MCTP] = "an AF_MCTP",
	};
	int family = -1;
	socklen_t len = sizeof(family);
	auto_close int s = task_fd_copy(pid, fd);

	if (s < 0 || getsockopt(s, SOL_SOCKET, SO_DOMAIN, &family, &len))
		family = -1;
	*name = family >= 0 && (size_t)family < ARRAY_SIZE(names) && names[family] ? names[family] : NULL;
	return family;
}

static int dump_unix(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	struct unix_state *ud = unix_state_of(t->ctx);
	struct unix_info ui, pi = { 0 };
	int err;

	if (!S_ISSOCK(p->st.st_mode))
		return 0;
	/* (not in the listings of the tree's namespaces: perhaps in its own, given from outside) */
	if (unix_look(ud, p->st.st_ino, &ui, false) &&
	    ((err = unix_diag_add_own_netns(ud, t->pid, p->fd)) || unix_look(ud, p->st.st_ino, &ui, false))) {
		if (err && err != -ENOENT) {
			pr_err("dump pid %d fd %d: %s is in no network namespace of the tree, and its own "
			       "cannot be listed: %s", t->pid, p->fd, p->link, strerror(-err));
			return err;
		}
		const char *name;
		int family = socket_family(t->pid, p->fd, &name);
		if (family == AF_UNIX)
			pr_err("dump pid %d fd %d: unix socket %s is in no listing of the tree's network "
			       "namespaces (not supported yet)", t->pid, p->fd, p->link);
		else if (name)
			pr_err("dump pid %d fd %d: %s is %s socket (not supported yet)", t->pid, p->fd, p->link, name);
		else
			pr_err("dump pid %d fd %d: %s is a socket of family %d (not supported yet)", t->pid, p->fd,
			       p->link, family);
		return -ENOTSUP;
	}
	if (ui.nested && ui.named && ui.name_len && !ui.name[0]) {
		char name[UNIX_NAME_MAX + 2];
		pr_err("dump pid %d fd %d: unix socket %s is bound to abstract name %s in a network "
		       "namespace a process of the tree made: not supported yet (it would come back in "
		       "the tree's)", t->pid, p->fd, p->link, unix_name(ui.name, ui.name_len, name, sizeof(name)));
		return -ENOTSUP;
	}
	if (ui.state == TCP_LISTEN_STATE)
		return unix_dump_bound(ud, t, p, e, &ui);
	if (ui.has_peer && !ui.peer) {
		if (ui.state == TCP_ESTABLISHED_STATE && (err = unix_dump_pending_client(ud, t, p, e, &ui)))
			return err; /* connected, not accepted yet (or failed) */
		return unix_dump_pair(ud, t, p, e, &ui, NULL); /* its peer was closed */
	}
	if (ui.peer) {
		bool pi_ok = unix_look(ud, ui.peer, &pi, false) == 0;
		if ((err = unix_tree_holds(ud, t, ui.peer)) <= 0)
			return err ? err : unix_dump_peer_outside(t, p, e, &ui, &pi, pi_ok);
		if (pi_ok && pi.peer == ui.ino && ui.peer != ui.ino) /* (not a datagram socket connected to itself) */
			return unix_dump_pair(ud, t, p, e, &ui, &pi);
		return unix_dump_one_way(ud, t, p, e, &ui, &pi);
	}
	if (ui.named)
		return unix_dump_bound(ud, t, p, e, &ui);
	if (ui.rqueue) {
		pr_err("dump pid %d fd %d: unix socket %s has %u bytes waiting but neither a name nor a "
		       "peer (not supported)", t->pid, p->fd, p->link, ui.rqueue);
		return -ENOTSUP;
	}
	/* made and not bound nor connected yet (a client before connect, sendto only) */
	return unix_dump_fresh(t, p, e);
}

/* ---- dump: the queues, and the files carried in flight ---- */

/* Read its queue now? Once; not for listeners, nor for sockets connected outside the tree. */
static int wants_queue(struct unix_state *ud, struct dump_task *t, uint64_t ino, struct unix_info *ui)
{
	if (unix_queue_of(ud, ino))
		return 0;
	int err = unix_look(ud, ino, ui, false);
	if (err == -ENOMEM)
		return err;
	if (err || ui->state == TCP_LISTEN_STATE)
		return 0; /* (not a unix socket: another family's) */
	return ui->peer ? unix_tree_holds(ud, t, ui->peer) : 1;
}

static int read_queue(struct unix_state *ud, uint64_t ino, pid_t pid, int fd, int s,
		      const struct unix_info *ui)
{
	int err = xgrow(&ud->queues, &ud->cap_queues, ud->nr_queues, sizeof(*ud->queues));

	if (err || (err = ino_map_add(&ud->queue_by_ino, ino, ud->nr_queues)) < 0)
		return err;
	ud->queues[ud->nr_queues] = (struct unix_queue){ .ino = ino, .pid = pid, .fd = fd };
	return unix_queue_read(ud, s, ui, &ud->queues[ud->nr_queues++]);
}

/*
 * Every queue that may be restored, read until no more appear: a socket connected to one
 * that a message carries is no longer outside the tree.
 */
static int read_queues(struct unix_state *ud, struct dump_task *t)
{
	bool more = true;
	int err;

	if ((err = unix_read_tree_sockets(ud, t)))
		return err;
	while (more) {
		more = false;
		for (size_t i = 0; i < ud->nr_held; i++) {
			struct unix_info ui;
			int want = wants_queue(ud, t, ud->held[i].ino, &ui);
			if (want <= 0) {
				if (want < 0)
					return want;
				continue;
			}
			int s = task_fd_copy(ud->held[i].pid, ud->held[i].fd);
			if (s < 0)
				return s;
			err = read_queue(ud, ud->held[i].ino, ud->held[i].pid, ud->held[i].fd, s, &ui);
			close(s);
			if (err)
				return err;
			more = true;
		}
		for (size_t i = 0; i < ud->nr_carried; i++) {
			struct unix_info ui;
			int want = ud->carried[i].is_socket ? wants_queue(ud, t, ud->carried[i].ino, &ui) : 0;
			if (want < 0)
				return want;
			if (want && (err = read_queue(ud, ud->carried[i].ino, 0, i, ud->carried[i].fd, &ui)))
				return err;
			more |= want;
		}
	}
	return 0;
}

/* A carried unix socket no process holds: saved as the fds of processes are. */
static int dump_carried_socket(struct unix_state *ud, struct dump_task *t, uint32_t id, FdEntry *e)
{
	struct fd_probe p;
	struct unix_info ui;
	auto_free char *info = NULL;
	int err = fd_probe(getpid(), ud->carried[id].fd, &p, &info);

	if (err || (err = sockopts_dump(getpid(), p.fd, e)))
		return err;
	if (unix_look(ud, p.st.st_ino, &ui, false)) {
		pr_err("dump pid %d fd %d: a message waiting in its unix socket carries %s, a socket "
		       "of another family that no process holds (not supported)",
		       ud->carried[id].pid, ud->carried[id].via_fd, p.link);
		return -ENOTSUP;
	}
	p.flags &= ~O_CLOEXEC;
	e->kind = FD_KIND__FD_UNIX_PAIR; /* as the fd table would: the dump may refine it */
	err = dump_unix(t, &p, e);
	return err < 0 ? err : 0;
}

static int save_carried(struct unix_state *ud, struct dump_task *t)
{
	int err;

	for (size_t id = 0; id < ud->nr_carried; id++) { /* the table grows with epolls' targets */
		/* in the table (freed with it) before it is filled, which may fail half way */
		FdEntry **more = xreallocarray(ud->tab.in_flight, id + 1, sizeof(*more));
		if (!more)
			return -ENOMEM;
		ud->tab.in_flight = more;
		FdEntry *e = xzalloc(sizeof(*e));
		if (!e)
			return -ENOMEM;
		fd_entry__init(e);
		ud->tab.in_flight[ud->tab.n_in_flight++] = e;
		e->fd = id;
		if ((err = unix_carried_held_by_tree(ud, t, id, e)) < 0)
			return err;
		if (!err && (err = ud->carried[id].is_socket ? dump_carried_socket(ud, t, id, e)
							      : unix_carried_dump_file(ud, t, id, e)))
			return err;
		ud->carried[id].e = e;
	}
	return 0;
}

static int collect_sockets(struct run_ctx *ctx, struct dump_tree *tr)
{
	static TaskCore own_core = TASK_CORE__INIT;
	struct unix_state *ud = unix_state_of(ctx);
	/* the carrier of files in flight: stasis itself, holding them (the paths it reads of
	 * them are seen from its own root) */
	struct dump_task carrier = { .pid = getpid(), .tgid = getpid(), .ctx = ctx, .tree = tr->tasks,
				     .tree_size = tr->nr_tasks, .core = &own_core };

	own_core.root = "/";
	int err = read_queues(ud, &carrier);

	return err ? err : save_carried(ud, &carrier);
}

static bool needs_sockets_img(const FdEntry *e)
{
	return e->kind == FD_KIND__FD_UNIX_PAIR || e->kind == FD_KIND__FD_UNIX_PENDING ||
	       (e->kind == FD_KIND__FD_UNIX_BOUND && e->has_sock_ino);
}

static int write_sockets(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct unix_state *ud = unix_state_of(ctx);
	bool needed = ud->tab.n_in_flight;
	int err;

	for (size_t i = 0; i < tr->nr_tasks; i++)
		for (size_t k = 0; k < tr->tasks[i].fds->n_fds; k++)
			needed |= needs_sockets_img(tr->tasks[i].fds->fds[k]);
	if ((err = unix_carried_check(ud, tr->tasks, tr->nr_tasks)) || (err = unix_read_waiting_data(ud)))
		return err;
	return needed ? image_write(ctx->images_dir_fd, IMG_SOCKETS, 0, &ud->tab.base) : 0;
}

/* ---- restore ---- */

/* The fd's socket is one sockets.img makes: an end of its pair, or of a pending connection. */
static bool fd_in_table(const SocketTable *tab, const FdEntry *e)
{
	if (e->kind == FD_KIND__FD_UNIX_BOUND)
		return true; /* made from its entry */
	for (size_t i = 0; i < tab->n_pairs; i++) {
		const UnixPair *u = tab->pairs[i];
		if (e->kind == FD_KIND__FD_UNIX_PAIR && u->id == e->pair_id && e->sock_ino &&
		    (u->a->ino == e->sock_ino || u->b->ino == e->sock_ino))
			return true;
	}
	for (size_t i = 0; i < tab->n_pending; i++) {
		const UnixPending *u = tab->pending[i];
		if (e->kind == FD_KIND__FD_UNIX_PENDING && u->has_client && u->client == e->sock_ino)
			return true;
	}
	return false;
}

/* One fd (a process's, or in flight) that needs sockets.img. */
static int check_entry(struct unix_state *st, const FdEntry *e, pid_t pid)
{
	bool ok = fd_in_table(st->rst, e);

	if (ok && e->kind == FD_KIND__FD_UNIX_BOUND) {
		ok = unix_bound_valid(e, st->nr_carried);
		const FdEntry **more = xreallocarray(st->bound, st->nr_bound + 1, sizeof(*more));
		if (!more)
			return -ENOMEM;
		st->bound = more;
		st->bound[st->nr_bound++] = e;
	}
	if (!ok) {
		if (pid)
			pr_err("image fds-%d.img: fd %u is unix socket %llu, which sockets.img does not hold "
			       "or that is invalid", pid, e->fd, (unsigned long long)e->sock_ino);
		else
			pr_err("image sockets.img: file in flight %u is unix socket %llu, which sockets.img "
			       "does not hold or that is invalid", e->fd, (unsigned long long)e->sock_ino);
		return -EINVAL;
	}
	return 0;
}

/* sockets.img, if some fd of the tree needs it, checked with every such fd. */
static int validate_sockets(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct unix_state *st = unix_state_of(ctx);
	bool needed = false;
	int err;

	st->rt = rt;
	for (size_t i = 0; i < rt->nr_tasks; i++)
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++)
			needed |= needs_sockets_img(rt->tasks[i].fds->fds[k]);
	if (!needed)
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_SOCKETS, 0, (ProtobufCMessage **)&st->rst)) ||
	    (err = unix_carried_validate(st, rt->tasks, rt->nr_tasks)))
		return err;
	if (!unix_pairs_valid(st->rst, st->nr_carried))
		return -EINVAL;
	for (size_t i = 0; i < rt->nr_tasks; i++)
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++)
			if (needs_sockets_img(rt->tasks[i].fds->fds[k]) &&
			    (err = check_entry(st, rt->tasks[i].fds->fds[k], rt->tasks[i].pid)))
				return err;
	for (size_t i = 0; i < st->rst->n_in_flight; i++)
		if (needs_sockets_img(st->rst->in_flight[i]) && (err = check_entry(st, st->rst->in_flight[i], 0)))
			return err;
	return 0;
}

/* Every socket made, in stasis: named ones, pairs, one-way ones, pending connections. */
static int prepare_sockets(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct unix_state *st = unix_state_of(ctx);
	int err;

	(void)rt;
	if (!st->rst)
		return 0;
	/* the tree's PID namespace is made after these: its root connects again what must read a
	 * pid of it (not those messages carry: stasis dups them now) */
	st->root_connects = pid_ns_is_own(ctx);
	for (size_t i = 0; i < st->rst->n_in_flight; i++)
		if (st->rst->in_flight[i]->kind == FD_KIND__FD_UNIX_PAIR ||
		    st->rst->in_flight[i]->kind == FD_KIND__FD_UNIX_PENDING)
			st->root_connects = false;
	bool *made = calloc(st->nr_bound ? st->nr_bound : 1, sizeof(*made));
	if (!made)
		return -ENOMEM;
	err = unix_make_listeners(st, made);
	for (size_t i = 0; i < st->nr_bound && !err; i++)
		if (!made[i] && !st->bound[i]->has_sock_peer)
			err = unix_make_bound(st, st->bound[i]);
	free(made);
	if (err)
		return err;
	if ((err = unix_make_pairs(st)))
		return err;
	for (size_t i = 0; i < st->nr_bound; i++)
		if (st->bound[i]->has_sock_peer && (err = unix_make_bound(st, st->bound[i])))
			return err;
	if ((err = unix_restore_pending(st)) || (err = unix_carried_open(st, ctx)))
		return err;
	return 0;
}

/* A listener that listens again in the tree's root (held, as a pid of it had listened):
 * its listen()'s credentials. */
static bool relistener(void *arg, size_t j, struct unix_cred *as)
{
	struct unix_state *st = arg;
	const FdEntry *e = st->bound[j];

	return e->has_sock_ino && unix_held_fd(st, e->sock_ino) >= 0 && e->has_sock_backlog &&
	       unix_listener_cred(e, as) && as->pid;
}

/* The listeners listen again as who had listened: one helper for those of one pid and ids. */
static int relisten_in_root(struct unix_state *st)
{
	size_t n = st->nr_bound, k, failed;
	int *fd = calloc(n ? n : 1, sizeof(*fd)), *backlog = calloc(n ? n : 1, sizeof(*backlog));
	size_t *at = calloc(n ? n : 1, sizeof(*at));
	bool *done = calloc(n ? n : 1, sizeof(*done));
	int err = fd && backlog && at && done ? 0 : -ENOMEM;
	struct unix_cred as;

	for (size_t i = 0; i < n && !err; i++) {
		if (!(k = unix_cred_group(n, i, done, relistener, st, at, &as)))
			continue;
		for (size_t m = 0; m < k; m++) {
			fd[m] = unix_held_fd(st, st->bound[at[m]]->sock_ino);
			backlog[m] = (int)st->bound[at[m]]->sock_backlog;
		}
		if ((err = unix_listen_all_as(st->ctx, fd, backlog, k, &as, &failed)))
			pr_err("restore: cannot listen on unix socket %llu again as pid %u: %s",
			       (unsigned long long)st->bound[at[failed < k ? failed : 0]]->sock_ino, as.pid,
			       strerror(-err));
	}
	free(fd);
	free(backlog);
	free(at);
	free(done);
	return err;
}

/*
 * In the root of a tree with a PID namespace of its own, before it makes any other process:
 * the listeners listen again as the process that had listened (a pid of the namespace now),
 * the pairs and waiting connections whose stand-ins stasis holds are made at their numbers
 * (unix_run_as: helpers with their makers' pids, in the namespace). stasis takes them once the
 * root reports (unix_take_from_root).
 */
static int enter_sockets(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct unix_state *st = unix_state_of(ctx);
	int err = 0;

	(void)rt;
	if (!st->rst || !st->root_connects)
		return 0;
	st->in_root = true;
	err = relisten_in_root(st);
	if (!err && !(err = unix_remake_pairs(st)))
		err = unix_restore_pending(st);
	st->in_root = false; /* (the root's copy: its processes make nothing more this way) */
	return err;
}

static bool made_in_tree_ns(const struct run_ctx *ctx, const FdEntry *e)
{
	const struct unix_state *st = unix_state_of(ctx);

	if ((e->kind != FD_KIND__FD_UNIX_PAIR && e->kind != FD_KIND__FD_UNIX_PENDING) || !e->has_sock_ino)
		return false;
	for (size_t i = 0; i < st->nr_made; i++)
		if (st->made[i].ino == e->sock_ino)
			return st->made[i].stand_in;
	return false;
}

int unix_take_from_root(struct run_ctx *ctx, pid_t root)
{
	struct unix_state *st = unix_state_of(ctx);

	for (size_t i = 0; i < st->nr_made; i++) {
		struct held_socket *h = &st->made[i];
		if (!h->stand_in)
			continue;
		int fd = task_fd_copy(root, h->fd);
		if (fd < 0 || dup3(fd, h->fd, O_CLOEXEC) < 0) {
			int err = fd < 0 ? fd : -errno;
			pr_err("restore: cannot take unix socket %llu from the tree's root (pid %d, fd %d): %s",
			       (unsigned long long)h->ino, root, h->fd, strerror(-err));
			if (fd >= 0)
				close(fd);
			return err;
		}
		close(fd);
		h->stand_in = false;
	}
	return 0;
}

/* The tree's network namespace, where its abstract names are (its root exists). */
static int open_tree_net_ns(const struct restore_task *t)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/net", t->tree[0].host_pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		pr_perror("restore: cannot open the tree's network namespace (%s)", path);
	return fd < 0 ? -errno : fd;
}

/* Once every process exists: files in flight taken, queues filled, stasis lets go. */
static int fill_sockets(const struct restore_task *t, const FdEntry *e)
{
	struct unix_state *st = unix_state_of(t->ctx);
	int err, net_ns = -1;

	(void)e;
	if (!st->rst || st->filled)
		return 0;
	st->filled = true;
	err = unix_carried_take(st);
	if (!err)
		err = unix_fill_pairs(st);
	for (size_t i = 0; i < st->nr_bound && !err; i++) {
		if (!st->bound[i]->n_sock_messages)
			continue;
		if (net_ns < 0 && (err = net_ns = open_tree_net_ns(t)) < 0)
			break;
		unsigned logged = log_errors();
		if ((err = unix_queue_send_named(st, st->bound[i], net_ns)))
			log_unnamed(logged, err, "restore: cannot fill unix socket %llu again",
				    (unsigned long long)st->bound[i]->sock_ino);
	}
	if (net_ns >= 0)
		close(net_ns);
	for (size_t i = 0; i < st->nr_bound && !err; i++)
		err = unix_name_file_rename(st->ctx, st->bound[i]); /* every connection made */
	unix_carried_close(st);
	unix_close_held(st);
	return err;
}

static void undo_sockets(struct run_ctx *ctx, bool restored)
{
	struct unix_state *st = unix_state_of(ctx);

	(void)restored;
	unix_carried_close(st);
	unix_close_held(st);
}

/* The images are written: the messages go back to their queues, the only owners. */
static void sockets_dump_done(struct run_ctx *ctx)
{
	struct unix_state *st = unix_state_of(ctx);

	for (size_t i = 0; i < st->nr_borrowers; i++) {
		st->borrowers[i]->sock_messages = NULL;
		st->borrowers[i]->n_sock_messages = 0;
	}
	st->nr_borrowers = 0;
	for (size_t i = 0; i < st->tab.n_pairs; i++) {
		UnixPair *pair = st->tab.pairs[i];
		UnixEnd *ends[2] = { pair->a, pair->b };
		for (int k = 0; k < 2; k++)
			if (ends[k]) {
				ends[k]->messages = NULL;
				ends[k]->n_messages = 0;
			}
	}
}

static void free_sockets(void *state)
{
	struct unix_state *st = state;

	if (st->rst)
		image_free(&st->rst->base);
	for (size_t i = 0; i < st->nr_carried; i++)
		if (st->carried[i].fd >= 0)
			close(st->carried[i].fd); /* dump: the duplicates the peeks gave */
	free(st->made);
	free(st->held);
	ino_map_free(&st->held_by_ino);
	ino_map_free(&st->queue_by_ino);
	ino_map_free(&st->pair_by_id);
	free(st->peek_buf);
	unix_snapshot_free(&st->snap);
	for (size_t i = 0; i < st->nr_nested; i++)
		unix_snapshot_free(&st->nested[i]);
	free(st->nested);
	for (size_t i = 0; i < st->nr_queues; i++) {
		for (size_t k = 0; k < st->queues[i].n; k++)
			unix_msg__free_unpacked(st->queues[i].msgs[k], NULL);
		free(st->queues[i].msgs);
	}
	free(st->queues);
	free(st->borrowers);
	free(st->to_accept);
	if (st->tab_ready)
		image_free_fields(&st->tab.base); /* (carried[].e are its in_flight entries) */
	free(st->carried);
	free(st->bound);
}

const struct tree_object_ops tree_unix_sockets = {
	.name = "unix sockets",
	.state_size = sizeof(struct unix_state),
	.free_state = free_sockets,
	.collect = collect_sockets,
	.dump_done = sockets_dump_done,
	.write = write_sockets,
	.validate = validate_sockets,
	.prepare = prepare_sockets,
	.enter = enter_sockets,
	.undo = undo_sockets,
};

/*
 * The socket stasis made: in a new task, its inherited fd taken as it is (the task holds it
 * once: its other fds of it are dups), so that the task does not hold it twice while its fds
 * are put in place; in stasis (a socket several processes share, cr/files/shared.c), a copy.
 */
static int open_held(struct restore_task *t, const FdEntry *e)
{
	int fd = unix_held_fd(unix_state_of(t->ctx), e->sock_ino);
	if (fd < 0)
		return -ENOENT;
	if (!t->args) /* (stasis itself: its restorer's arguments are the new task's) */
		return unix_dup_held(fd, e->flags);
	return fcntl(fd, F_SETFL, e->flags & O_NONBLOCK) || fcntl(fd, F_SETFD, FD_CLOEXEC) ? -errno : fd;
}

/* Made by stasis before the tree; or, from an image without sock_ino, bound here. */
static int open_bound(struct restore_task *t, const FdEntry *e)
{
	struct unix_file made;

	if (e->has_sock_ino)
		return open_held(t, e);
	if (e->n_sock_queued) {
		pr_err("restore pid %d fd %u: datagrams waiting in it were saved by an earlier stasis: "
		       "dump again", t->pid, e->fd);
		return -EINVAL;
	}
	int s = unix_bind_saved(t->ctx, e, &made);
	unix_file_remove(t->ctx, &made);
	return s;
}

static int open_external(struct restore_task *t, const FdEntry *e)
{
	int s = unix_connect_saved(t->ctx, e);
	char name[160];

	if (s < 0 && s != -ENOMEM)
		pr_err("restore pid %d fd %u: cannot connect to %s, the name it was connected to "
		       "outside the tree (as the restored process sees it): %s", t->pid, e->fd,
		       unix_name((const char *)e->sock_name.data, e->sock_name.len, name, sizeof(name)),
		       strerror(-s));
	return s;
}

static int open_fresh(struct restore_task *t, const FdEntry *e)
{
	(void)t;
	return unix_fresh_socket(e);
}

const struct fd_kind_ops fd_kind_unix_fresh = {
	.name = "unix socket neither bound nor connected",
	.open = open_fresh,
	.finish = fill_sockets,
	.kind = FD_KIND__FD_UNIX_FRESH,
};

const struct fd_kind_ops fd_kind_unix_external = {
	.name = "unix socket connected outside the tree",
	.open = open_external,
	.finish = fill_sockets,
	.kind = FD_KIND__FD_UNIX_EXTERNAL,
};

/* Claimed by fd_kind_unix's dump. */
const struct fd_kind_ops fd_kind_unix_bound = {
	.name = "unix socket made by name",
	.open = open_bound,
	.settle = unix_relisten_in_task,
	.finish = fill_sockets,
	.kind = FD_KIND__FD_UNIX_BOUND,
};

/* A connection not accepted yet: its client, made by stasis (cr/files/unix-backlog.c). */
const struct fd_kind_ops fd_kind_unix_pending = {
	.name = "unix socket waiting to be accepted",
	.open = open_held,
	.finish = fill_sockets,
	.opens_in_tree_ns = made_in_tree_ns,
	.kind = FD_KIND__FD_UNIX_PENDING,
};

const struct fd_kind_ops fd_kind_unix = {
	.name = "unix socket pair",
	.dump = dump_unix,
	.open = open_held,
	.finish = fill_sockets,
	.opens_in_tree_ns = made_in_tree_ns,
	.kind = FD_KIND__FD_UNIX_PAIR,
};
