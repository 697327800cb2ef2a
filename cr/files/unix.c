/*
 * Unix sockets. Pairs: two connected unix sockets both held inside the tree (socketpair(),
 * or a connection whose both ends stayed in the tree). The peer and shutdown state come from
 * NETLINK_SOCK_DIAG; what waits in each receive queue is peeked (SO_PEEK_OFF + MSG_PEEK, on a
 * copy of the fd taken with pidfd_getfd) without being consumed. On restore stasis makes a
 * new pair before the tree, sends each end's queued data from the other end, applies the
 * shutdowns, and every process inherits its end. Sockets bound to a name and not connected
 * are bound again (listening ones with the connections waiting in their queue:
 * unix-backlog.c); a datagram socket connected to a named socket outside the tree is
 * connected to that name again; any other socket connected outside the tree is external
 * (--ext-unix-sk, restored from --inherit-fd: external.c). Anything else fails the dump,
 * naming it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stddef.h>
#include <sys/un.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "pstree.h"
#include "tree-objects.h"
#include "unix.h"
#include "util.h"

#define MAX_QUEUED (4u << 20)

/*
 * Everything waiting in the receive queue of the socket, without taking it; *named (if
 * given) counts the datagrams whose sender had a name.
 */
static int peek_queue_from(pid_t pid, int fd, int type, UnixEnd *end, size_t *named)
{
	auto_close int s = task_fd_copy(pid, fd);
	auto_free char *buf = malloc(MAX_QUEUED);
	int off = 0, own = -1; /* the program's own peek offset, given back after */
	socklen_t len = sizeof(own);
	size_t total = 0;

	if (s < 0)
		return s;
	if (!buf || getsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &own, &len) ||
	    setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)))
		return -errno;
	for (;;) {
		struct sockaddr_un from;
		struct iovec iov = { buf, MAX_QUEUED - total };
		struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n = recvmsg(s, &mh, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0 || (n == 0 && type == SOCK_STREAM))
			break; /* stream: 0 is end-of-file, nothing queued */
		if (named && mh.msg_namelen > offsetof(struct sockaddr_un, sun_path))
			(*named)++;
		total += n;
		end->queued = realloc(end->queued, (end->n_queued + 1) * sizeof(*end->queued));
		if (!end->queued)
			abort();
		end->queued[end->n_queued].data = xzalloc(n + 1);
		memcpy(end->queued[end->n_queued].data, buf, n);
		end->queued[end->n_queued++].len = n;
		if (total >= MAX_QUEUED)
			break;
	}
	setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &own, sizeof(own));
	return 0;
}

static int peek_queue(pid_t pid, int fd, int type, UnixEnd *end)
{
	return peek_queue_from(pid, fd, type, end, NULL);
}

static bool seen_end(struct unix_state *ud, uint64_t ino)
{
	for (size_t i = 0; i < ud->nr_seen; i++)
		if (ud->seen[i] == ino)
			return true;
	return false;
}

static struct unix_state *unix_state_of(const struct run_ctx *ctx)
{
	struct unix_state *ud = run_state(ctx, &tree_unix_sockets);

	if (!ud->tab_ready) {
		socket_table__init(&ud->tab);
		ud->tab_ready = true;
	}
	return ud;
}

/* What a socket restored by name needs: type, the name (its own or its peer's), options. */
static void set_named_socket(FdEntry *e, const struct fd_probe *p, int type, int passcred,
			     const struct unix_info *named)
{
	e->has_sock_type = e->has_sock_name = e->has_sock_passcred = e->has_flags = true;
	e->sock_type = type;
	e->sock_name.len = named->name_len;
	e->sock_name.data = xzalloc(named->name_len + 1);
	memcpy(e->sock_name.data, named->name, named->name_len);
	e->sock_passcred = passcred;
	e->flags = p->flags;
}

/* Bound to a name and not connected: a listening server socket, or a datagram receiver. */
static int dump_bound(struct dump_task *t, const struct fd_probe *p, FdEntry *e,
		      const struct unix_info *ui)
{
	int type, passcred, err;
	bool listening = ui->state == TCP_LISTEN_STATE;
	struct stat st;
	char name[sizeof(ui->name) + 1];

	if (sock_options(t->pid, p->fd, &type, &passcred)) {
		pr_perror("dump pid %d fd %d: cannot look at its socket", t->pid, p->fd);
		return -errno;
	}
	if (!listening && type == SOCK_STREAM) {
		pr_err("dump pid %d fd %d: unix socket %s is bound but not listening (not supported yet)",
		       t->pid, p->fd, unix_name(ui->name, ui->name_len, name, sizeof(name)));
		return -ENOTSUP;
	}
	if (listening && ui->rqueue && (err = unix_dump_listener_queue(unix_state_of(t->ctx), t, p, e, ui)))
		return err;
	if (!listening) {
		UnixEnd waiting = UNIX_END__INIT;
		size_t named = 0;
		if ((err = peek_queue_from(t->pid, p->fd, type, &waiting, &named))) {
			pr_err("dump pid %d fd %d: cannot read the datagrams waiting in %s: %s", t->pid, p->fd,
			       unix_name(ui->name, ui->name_len, name, sizeof(name)), strerror(-err));
			return err;
		}
		if (named)
			pr_warn("dump pid %d fd %d: %zu datagrams waiting in %s came from named sockets: they "
				"come back from an unnamed one", t->pid, p->fd, named,
				unix_name(ui->name, ui->name_len, name, sizeof(name)));
		e->sock_queued = waiting.queued;
		e->n_sock_queued = waiting.n_queued;
	}
	set_named_socket(e, p, type, passcred, ui);
	if (listening) {
		e->has_sock_backlog = true;
		e->sock_backlog = ui->wqueue;
	}
	if (ui->name[0] && stat(ui->name, &st) == 0 && S_ISSOCK(st.st_mode)) {
		e->has_sock_file_mode = e->has_sock_file_uid = e->has_sock_file_gid = true;
		e->sock_file_mode = st.st_mode & 07777;
		e->sock_file_uid = st.st_uid;
		e->sock_file_gid = st.st_gid;
	}
	return 1;
}

/*
 * A datagram socket connected to a named socket outside the tree (syslog's /dev/log, say):
 * with --ext-unix-sk it is connected to that name again on restore.
 */
static int dump_external(struct dump_task *t, const struct fd_probe *p, FdEntry *e,
			 const struct unix_info *peer)
{
	int type, passcred;
	char name[sizeof(peer->name) + 1], what[sizeof(name) + 64];

	if (sock_options(t->pid, p->fd, &type, &passcred)) {
		pr_perror("dump pid %d fd %d: cannot look at its socket", t->pid, p->fd);
		return -errno;
	}
	unix_name(peer->name, peer->name_len, name, sizeof(name));
	if (type != SOCK_DGRAM) {
		snprintf(what, sizeof(what), "connected to %s outside the tree", name);
		return unix_dump_outside(t, p, e, what);
	}
	if (!t->ctx->opts->ext_unix_sk) {
		pr_err("dump pid %d fd %d: unix socket connected to %s outside the tree (pass "
		       "--ext-unix-sk)",
		       t->pid, p->fd, name);
		return -ENOTSUP;
	}
	e->kind = FD_KIND__FD_UNIX_EXTERNAL;
	set_named_socket(e, p, type, passcred, peer);
	return 1;
}

static int dump_unix(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	struct unix_state *ud = unix_state_of(t->ctx);
	struct unix_info ui, pi = { 0 };
	int type, passcred, err;

	if (!S_ISSOCK(p->st.st_mode))
		return 0;
	uint64_t ino = p->st.st_ino;
	if (sock_diag_unix(ino, &ui, false)) {
		pr_err("dump pid %d fd %d: %s is not a unix socket (not supported yet)", t->pid, p->fd,
		       p->link);
		return -ENOTSUP;
	}
	if (ui.has_peer && !ui.peer && ui.state == TCP_ESTABLISHED_STATE &&
	    (err = unix_dump_pending_client(ud, t, p, e, &ui)))
		return err; /* connected, not accepted yet (or failed) */
	if (ui.peer && !ui.named && sock_diag_unix(ui.peer, &pi, false) == 0 && pi.named && pi.peer != ino) {
		/* connected to a named socket that is not connected back: a server outside */
		return dump_external(t, p, e, &pi);
	}
	if (ui.peer && (err = unix_tree_holds(ud, t, ui.peer)) <= 0) {
		char what[sizeof(pi.name) + 64], name[sizeof(pi.name) + 1] = "";
		if (err < 0)
			return err;
		if (sock_diag_unix(ui.peer, &pi, false) == 0 && pi.named)
			unix_name(pi.name, pi.name_len, name, sizeof(name));
		snprintf(what, sizeof(what), "connected to socket:[%llu]%s%s outside the tree",
			 (unsigned long long)ui.peer, name[0] ? " " : "", name);
		return unix_dump_outside(t, p, e, what);
	}
	if (!ui.named && !ui.has_peer && ui.state != TCP_LISTEN_STATE) {
		/* made and not bound nor connected yet (a client before connect, sendto only) */
		if (sock_options(t->pid, p->fd, &type, &passcred)) {
			pr_perror("dump pid %d fd %d: cannot look at its socket", t->pid, p->fd);
			return -errno;
		}
		e->kind = FD_KIND__FD_UNIX_FRESH;
		e->has_sock_type = e->has_flags = true;
		e->sock_type = type;
		e->flags = p->flags;
		return 1;
	}
	if (!ui.peer || ui.named || sock_diag_unix(ui.peer, &pi, false) || pi.named || pi.peer != ino) {
		pr_err("dump pid %d fd %d: %s is a unix socket %s (not supported yet)", t->pid, p->fd,
		       p->link,
		       ui.named || pi.named ? "bound to a name"
		       : ui.has_peer	    ? "whose peer is closed"
					    : "without a peer");
		return -ENOTSUP;
	}
	e->has_pair_id = e->has_sock_ino = e->has_flags = true;
	e->pair_id = ino < ui.peer ? ino : ui.peer;
	e->sock_ino = ino;
	e->flags = p->flags;
	if (seen_end(ud, ino))
		return 1; /* another fd of this end */
	ud->seen = realloc(ud->seen, (ud->nr_seen + 1) * sizeof(*ud->seen));
	if (!ud->seen)
		return -ENOMEM;
	ud->seen[ud->nr_seen++] = ino;
	for (size_t i = 0; i < ud->tab.n_pairs; i++) {
		UnixPair *pair = ud->tab.pairs[i];
		if (pair->id != e->pair_id)
			continue;
		/* the other end, met first: now this end's queue */
		err = peek_queue(t->pid, p->fd, pair->type, pair->b);
		if (err)
			pr_perror("dump pid %d fd %d: cannot read its socket's queue", t->pid, p->fd);
		return err ? err : 1;
	}
	if (sock_options(t->pid, p->fd, &type, &passcred)) {
		pr_perror("dump pid %d fd %d: cannot look at its socket", t->pid, p->fd);
		return -errno;
	}
	UnixPair *pair = xzalloc(sizeof(*pair));
	unix_pair__init(pair);
	pair->id = e->pair_id;
	pair->type = type;
	pair->a = xzalloc(sizeof(UnixEnd));
	pair->b = xzalloc(sizeof(UnixEnd));
	unix_end__init(pair->a);
	unix_end__init(pair->b);
	pair->a->ino = ino;
	pair->a->shutdown = ui.shutdown;
	pair->b->ino = ui.peer;
	pair->b->shutdown = pi.shutdown;
	err = peek_queue(t->pid, p->fd, type, pair->a);
	if (err) {
		pr_perror("dump pid %d fd %d: cannot read its socket's queue", t->pid, p->fd);
		return err;
	}
	/* the peer's queue is peeked when its own fd is met */
	ud->tab.pairs = realloc(ud->tab.pairs, (ud->tab.n_pairs + 1) * sizeof(*ud->tab.pairs));
	if (!ud->tab.pairs)
		return -ENOMEM;
	ud->tab.pairs[ud->tab.n_pairs++] = pair;
	return 1;
}

static int write_sockets(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct unix_state *ud = unix_state_of(ctx);

	(void)tr;
	return ud->tab.n_pairs || ud->tab.n_pending
		       ? image_write(ctx->images_dir_fd, IMG_SOCKETS, 0, &ud->tab.base)
		       : 0;
}

/* ---- restore ---- */

static int refill(int from, const UnixEnd *to_end, uint64_t id)
{
	for (size_t k = 0; k < to_end->n_queued; k++) {
		if (send(from, to_end->queued[k].data, to_end->queued[k].len, MSG_DONTWAIT | MSG_NOSIGNAL) !=
		    (ssize_t)to_end->queued[k].len) {
			pr_perror("restore: cannot refill unix socket pair %llu", (unsigned long long)id);
			return -EIO;
		}
	}
	return 0;
}

static bool needs_sockets_img(const FdEntry *e)
{
	return e->kind == FD_KIND__FD_UNIX_PAIR || e->kind == FD_KIND__FD_UNIX_PENDING ||
	       (e->kind == FD_KIND__FD_UNIX_BOUND && e->has_sock_ino);
}

/* The fd's socket is one sockets.img makes: an end of its pair, or of a pending connection. */
static bool fd_in_table(const SocketTable *tab, const FdEntry *e)
{
	for (size_t i = 0; i < tab->n_pairs; i++) {
		const UnixPair *u = tab->pairs[i];
		if (e->kind == FD_KIND__FD_UNIX_PAIR && u->id == e->pair_id &&
		    (u->a->ino == e->sock_ino || u->b->ino == e->sock_ino))
			return true;
	}
	for (size_t i = 0; i < tab->n_pending; i++) {
		const UnixPending *u = tab->pending[i];
		if ((e->kind == FD_KIND__FD_UNIX_PENDING && u->has_client && u->client == e->sock_ino) ||
		    (e->kind == FD_KIND__FD_UNIX_BOUND && u->listener == e->sock_ino))
			return true;
	}
	return false;
}

/* sockets.img, if some fd of the tree needs it, checked with every such fd. */
static int validate_sockets(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct unix_state *st = unix_state_of(ctx);
	bool needed = false;
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++)
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++)
			needed |= needs_sockets_img(rt->tasks[i].fds->fds[k]);
	if (!needed)
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_SOCKETS, 0, (ProtobufCMessage **)&st->rst)))
		return err;
	for (size_t i = 0; i < st->rst->n_pairs; i++) {
		const UnixPair *u = st->rst->pairs[i];
		if (u->type != SOCK_STREAM && u->type != SOCK_DGRAM && u->type != SOCK_SEQPACKET) {
			pr_err("image sockets.img: pair %zu has type %u", i, u->type);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			if (needs_sockets_img(e) && !fd_in_table(st->rst, e)) {
				pr_err("image fds-%d.img: fd %u is unix socket %llu, which sockets.img does "
				       "not hold", rt->tasks[i].pid, e->fd, (unsigned long long)e->sock_ino);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* Every pair made and refilled, every pending connection made again, in stasis. */
static int prepare_sockets(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct unix_state *st = unix_state_of(ctx);
	SocketTable *tab = st->rst;
	int err;

	if (!tab)
		return 0;
	for (size_t i = 0; i < tab->n_pairs; i++) {
		UnixPair *u = tab->pairs[i];
		int end[2];
		if (socketpair(AF_UNIX, u->type | SOCK_CLOEXEC, 0, end)) {
			pr_perror("restore: socketpair");
			return -errno;
		}
		if ((err = unix_hold(st, u->a->ino, u->id, end[0])))
			close(end[1]);
		if (err || (err = unix_hold(st, u->b->ino, u->id, end[1])))
			return err;
		if ((err = refill(end[1], u->a, u->id)) || (err = refill(end[0], u->b, u->id)) ||
		    (err = unix_apply_shutdown(end[0], u->a->shutdown)) ||
		    (err = unix_apply_shutdown(end[1], u->b->shutdown)))
			return err;
	}
	return unix_restore_pending(st, rt->tasks, rt->nr_tasks);
}

static void close_sockets(struct run_ctx *ctx)
{
	struct unix_state *st = unix_state_of(ctx);

	for (size_t i = 0; i < st->nr_made; i++)
		close(st->made[i].fd);
	st->nr_made = 0;
}

static void undo_sockets(struct run_ctx *ctx, bool restored)
{
	(void)restored;
	close_sockets(ctx);
}

static void free_sockets(void *state)
{
	struct unix_state *st = state;

	if (st->rst)
		image_free(&st->rst->base);
	free(st->made);
	free(st->seen);
	free(st->held);
}

const struct tree_object_ops tree_unix_sockets = {
	.name = "unix sockets",
	.state_size = sizeof(struct unix_state),
	.free_state = free_sockets,
	.write = write_sockets,
	.validate = validate_sockets,
	.prepare = prepare_sockets,
	.close = close_sockets,
	.undo = undo_sockets,
};

static int open_unix(struct restore_task *t, const FdEntry *e)
{
	int fd = unix_held_fd(unix_state_of(t->ctx), e->sock_ino);
	return fd < 0 ? -ENOENT : unix_dup_held(fd, e->flags);
}

/* Claims the unix sockets bound to a name and not connected. */
static int dump_unix_bound(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	struct unix_info ui;

	if (!S_ISSOCK(p->st.st_mode) || sock_diag_unix(p->st.st_ino, &ui, false) || !ui.named || ui.has_peer)
		return 0;
	return dump_bound(t, p, e, &ui);
}

/* The datagrams that waited in a bound receiver, sent to it again in order, unnamed. */
static int refill_receiver(int s, const FdEntry *e)
{
	struct sockaddr_un sa;
	socklen_t len;
	int err = sockopts_restore(s, e); /* its buffer size first: they must fit as before */

	if (err || !e->n_sock_queued)
		return err;
	auto_close int from = socket(AF_UNIX, e->sock_type | SOCK_CLOEXEC, 0);
	if (from < 0 || unix_saved_addr(e, &sa, &len))
		return from < 0 ? -errno : -EINVAL;
	for (size_t k = 0; k < e->n_sock_queued; k++)
		if (sendto(from, e->sock_queued[k].data, e->sock_queued[k].len, MSG_DONTWAIT | MSG_NOSIGNAL,
			   (struct sockaddr *)&sa, len) != (ssize_t)e->sock_queued[k].len) {
			pr_perror("restore: cannot queue datagram %zu of %zu again in fd %u", k + 1,
				  e->n_sock_queued, e->fd);
			return -EIO;
		}
	return 0;
}

/* Bound again, or (with connections waiting) the listener stasis made before the tree. */
static int open_bound(struct restore_task *t, const FdEntry *e)
{
	if (!e->has_sock_ino) {
		int s = unix_bind_saved(e), err;
		if (s >= 0 && (err = refill_receiver(s, e))) {
			close(s);
			return err;
		}
		return s;
	}
	int fd = unix_held_fd(unix_state_of(t->ctx), e->sock_ino);
	return fd < 0 ? -ENOENT : unix_dup_held(fd, e->flags);
}

/* Connected again to the outside peer's name. */
static int open_external(struct restore_task *t, const FdEntry *e)
{
	struct sockaddr_un sa;
	socklen_t len;
	int s = unix_named_socket(e, &sa, &len);
	(void)t;

	if (s < 0)
		return s;
	if (connect(s, (struct sockaddr *)&sa, len)) {
		int err = -errno;
		close(s);
		return err;
	}
	return s;
}

/* A new socket of its type: it was neither bound nor connected. */
static int open_fresh(struct restore_task *t, const FdEntry *e)
{
	(void)t;
	if (e->sock_type != SOCK_STREAM && e->sock_type != SOCK_DGRAM && e->sock_type != SOCK_SEQPACKET)
		return -EINVAL;
	int s = socket(AF_UNIX, e->sock_type | SOCK_CLOEXEC | (e->flags & O_NONBLOCK ? SOCK_NONBLOCK : 0), 0);
	return s < 0 ? -errno : s;
}

/* A connection not accepted yet: its client, made by stasis (cr/files/unix-backlog.c). */
const struct fd_kind_ops fd_kind_unix_pending = {
	.name = "unix socket waiting to be accepted",
	.open = open_unix,
	.kind = FD_KIND__FD_UNIX_PENDING,
};

const struct fd_kind_ops fd_kind_unix_fresh = {
	.name = "unix socket neither bound nor connected",
	.open = open_fresh,
	.kind = FD_KIND__FD_UNIX_FRESH,
};

const struct fd_kind_ops fd_kind_unix_external = {
	.name = "unix socket connected outside the tree",
	.open = open_external,
	.kind = FD_KIND__FD_UNIX_EXTERNAL,
};

const struct fd_kind_ops fd_kind_unix_bound = {
	.name = "bound unix socket",
	.dump = dump_unix_bound,
	.open = open_bound,
	.kind = FD_KIND__FD_UNIX_BOUND,
};

const struct fd_kind_ops fd_kind_unix = {
	.name = "unix socket pair",
	.dump = dump_unix,
	.open = open_unix,
	.kind = FD_KIND__FD_UNIX_PAIR,
};
