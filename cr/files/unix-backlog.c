/*
 * Connections waiting in a listening unix socket's queue: a client connected, the server has
 * not accepted yet. NETLINK_SOCK_DIAG lists, for a listener, the client socket of each waiting
 * connection, oldest first (UNIX_DIAG_ICONS; 0 for a client that closed its socket since).
 * Both sides must be in the tree. The data a client already wrote sits in the not yet
 * accepted socket, which no fd reaches and only accept() can read (the client's send buffer
 * use, UNIX_DIAG_RQLEN, tells there is some; a client that closed its socket cannot be asked).
 * So the listener's queue, up to the last connection whose client wrote or closed, is
 * accepted by stasis from a copy of the listener (pidfd_getfd), in order (each checked to be
 * the connection of the client listed), and each one's queue peeked as any socket's is
 * (unix-queue.c), at the last step before sockets.img is written: every process is saved by
 * then, and only the rest of the images, their commit, the post-dump hook and the kill are
 * left. Those connections cannot be put back (their clients are the tree's sockets): a dump
 * that fails past that point (or a stasis killed then) leaves the tree running without them
 * (their clients read end-of-file). Files sent with the data (SCM_RIGHTS) are refused before
 * anything is taken (the listener's fdinfo counts them, scm_fds; without that line, once
 * taken). --leave-running refuses a client with data up front, and keeps closed
 * clients' connections reading end-of-file only (the dump warns). On restore stasis binds the
 * listener before the tree, connects a new client for each waiting connection in the saved
 * order, sends what the client wrote (packets keep their sizes), closes those of closed
 * clients, applies the clients' shutdowns, and every process inherits its sockets.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "unix.h"
#include "util.h"

int unix_dump_pending_client(struct unix_state *ud, struct dump_task *t, const struct fd_probe *p,
			     FdEntry *e, const struct unix_info *ui)
{
	uint64_t listener = 0;
	struct unix_info li;
	unsigned logged = log_errors();
	int type, passcred, err = unix_waiting_listener(ud, p->st.st_ino, &listener);
	char name[sizeof(li.name) + 1] = "?", what[sizeof(name) + 96];

	if (err < 0)
		log_unnamed(logged, err, "dump pid %d fd %d: cannot list the listening unix sockets", t->pid,
			    p->fd);
	if (err <= 0)
		return err; /* 0: not waiting to be accepted */
	if ((err = unix_tree_holds(ud, t, listener)) < 0)
		return err;
	if (unix_look(ud, listener, &li, false) == 0)
		unix_name(li.name, li.name_len, name, sizeof(name));
	if (!err) {
		snprintf(what, sizeof(what), "waiting to be accepted by %s (socket:[%llu]) outside the tree",
			 name, (unsigned long long)listener);
		return unix_dump_outside(t, p, e, what);
	}
	if (ui->named) {
		pr_err("dump pid %d fd %d: unix socket %s waiting to be accepted by %s is bound to a "
		       "name itself (not supported yet)",
		       t->pid, p->fd, p->link, name);
		return -ENOTSUP;
	}
	if (sock_options(t->pid, p->fd, &type, &passcred)) {
		pr_perror("dump pid %d fd %d: cannot look at its socket", t->pid, p->fd);
		return -errno;
	}
	e->kind = FD_KIND__FD_UNIX_PENDING;
	e->has_sock_ino = e->has_flags = e->has_sock_type = e->has_sock_passcred = true;
	e->sock_ino = p->st.st_ino;
	e->flags = p->flags;
	e->sock_type = type;
	e->sock_passcred = passcred;
	return 1;
}

int unix_dump_listener_queue(struct unix_state *ud, struct dump_task *t, const struct fd_probe *p,
			     FdEntry *e, const struct unix_info *ui)
{
	SocketTable *tab = &ud->tab;
	struct unix_info li;
	char name[sizeof(li.name) + 1];
	unsigned logged = log_errors();
	int err = unix_look(ud, p->st.st_ino, &li, true);

	unix_name(ui->name, ui->name_len, name, sizeof(name));
	if (err)
		return log_unnamed(logged, err, "dump pid %d fd %d: cannot list the connections waiting on %s",
				   t->pid, p->fd, name);
	bool leave_running = t->ctx->opts->leave_running;
	size_t first = tab->n_pending, to_accept = 0; /* a prefix of the queue, up to the last with data */

	for (size_t i = 0; i < li.n_icons && !err; i++) {
		uint64_t client = li.icons[i];
		struct unix_info ci;
		UnixPending *u = xzalloc(sizeof(*u)), **more;
		if (!u || !(more = xreallocarray(tab->pending, tab->n_pending + 1, sizeof(*more)))) {
			free(u);
			err = -ENOMEM;
			break;
		}
		tab->pending = more;
		tab->pending[tab->n_pending++] = u;
		unix_pending__init(u);
		u->listener = p->st.st_ino;
		u->order = i;
		if (!client && leave_running) {
			pr_warn("dump pid %d fd %d: the client of connection %zu waiting on %s closed its "
				"socket: restored reading end-of-file; data it wrote before closing is "
				"not kept (--leave-running: reading it would take the connection)",
				t->pid, p->fd, i + 1, name);
		} else if (!client) {
			to_accept = i + 1; /* what it wrote, if anything, is read at the write */
		} else if ((err = unix_tree_holds(ud, t, client)) <= 0) {
			if (!err)
				pr_err("dump pid %d fd %d: unix socket %s has a connection waiting to be "
				       "accepted from socket:[%llu] outside the tree (not supported)",
				       t->pid, p->fd, name, (unsigned long long)client);
			err = err ? err : -ENOTSUP;
		} else if ((err = unix_look(ud, client, &ci, false))) {
			pr_err("dump pid %d fd %d: cannot look at socket:[%llu] waiting on %s: %s", t->pid,
			       p->fd, (unsigned long long)client, name, strerror(-err));
		} else if (ci.wqueue && leave_running) {
			pr_err("dump pid %d fd %d: unix socket %s has a connection waiting to be accepted "
			       "with unread data: %u bytes of buffer sent by its client socket:[%llu] "
			       "(only accept() could read them, which --leave-running cannot undo; not "
			       "supported)",
			       t->pid, p->fd, name, ci.wqueue, (unsigned long long)client);
			err = -ENOTSUP;
		} else {
			u->has_client = true;
			u->client = client;
			u->client_shutdown = ci.shutdown;
			if (ci.wqueue)
				to_accept = i + 1;
		}
	}
	/* Files sent with the data would be found only once taken: the listener's scm_fds (the
	 * files in flight in all its waiting connections) refuses them before anything is. */
	uint64_t files_in_flight = 0;
	if (!err && to_accept && fdinfo_u64(p->info, "scm_fds:", 10, &files_in_flight) &&
	    files_in_flight) {
		pr_err("dump pid %d fd %d: unix socket %s has connections waiting to be accepted whose "
		       "clients sent %llu files (SCM_RIGHTS) with their data (only accept() could read "
		       "them; not supported)",
		       t->pid, p->fd, name, (unsigned long long)files_in_flight);
		err = -ENOTSUP;
	}
	if (!err && to_accept) {
		struct unix_accept_later *more =
			xreallocarray(ud->to_accept, ud->nr_to_accept + 1, sizeof(*more));
		if (!more)
			err = -ENOMEM;
		else {
			ud->to_accept = more;
			more[ud->nr_to_accept++] = (struct unix_accept_later){
				.listener = p->st.st_ino, .pid = t->pid, .fd = p->fd, .first = first,
				.n = to_accept };
		}
	}
	if (li.n_icons) { /* the restore makes this listener before the tree, for its clients */
		e->has_sock_ino = true;
		e->sock_ino = p->st.st_ino;
	}
	free(li.icons);
	return err;
}

/* The waiting connection u, accepted (a): its queue read into u's messages (no files). */
static int read_accepted(struct unix_state *ud, const struct unix_accept_later *w, int a,
			 UnixPending *u, const char *name)
{
	struct stat st;
	struct unix_info ai;
	struct unix_queue q = { .pid = w->pid, .fd = w->fd };
	int err;

	if (fstat(a, &st))
		return -errno;
	if ((err = unix_look(ud, st.st_ino, &ai, false))) {
		pr_err("dump pid %d fd %d: cannot look at the connection accepted from %s: %s", w->pid,
		       w->fd, name, strerror(-err));
		return err;
	}
	if (!ai.has_peer || ai.peer != (u->has_client ? u->client : 0)) {
		pr_err("dump pid %d fd %d: connection %u waiting on %s is not the one listed: its client "
		       "is socket:[%llu], not socket:[%llu]",
		       w->pid, w->fd, u->order + 1, name, (unsigned long long)ai.peer,
		       (unsigned long long)(u->has_client ? u->client : 0));
		return -EAGAIN;
	}
	q.ino = st.st_ino;
	err = unix_queue_read(ud, a, &ai, &q);
	for (size_t k = 0; !err && k < q.n; k++)
		if (q.msgs[k]->n_files) {
			pr_err("dump pid %d fd %d: the client of connection %u waiting on %s sent files "
			       "(SCM_RIGHTS) with its data (not supported)",
			       w->pid, w->fd, u->order + 1, name);
			err = -ENOTSUP;
		}
	if (!err && q.reset) {
		pr_err("dump pid %d fd %d: connection %u waiting on %s has an error (ECONNRESET) to "
		       "read (not supported)", w->pid, w->fd, u->order + 1, name);
		err = -ENOTSUP;
	}
	if (err) {
		for (size_t k = 0; k < q.n; k++)
			unix_msg__free_unpacked(q.msgs[k], NULL);
		free(q.msgs);
		return err;
	}
	u->messages = q.msgs; /* (freed with the table) */
	u->n_messages = q.n;
	return 0;
}

int unix_read_waiting_data(struct unix_state *ud)
{
	SocketTable *tab = &ud->tab;

	for (size_t i = 0; i < ud->nr_to_accept; i++) {
		const struct unix_accept_later *w = &ud->to_accept[i];
		struct unix_info li;
		char name[sizeof(li.name) + 1] = "?";
		int err = 0, l = task_fd_copy(w->pid, w->fd);

		if (unix_look(ud, w->listener, &li, false) == 0)
			unix_name(li.name, li.name_len, name, sizeof(name));
		if (l < 0) {
			pr_err("dump pid %d fd %d: cannot take a copy of unix socket %s: %s", w->pid, w->fd,
			       name, strerror(-l));
			return l;
		}
		for (size_t k = 0; !err && k < w->n; k++) {
			struct pollfd pfd = { .fd = l, .events = POLLIN };
			int a = -1;
			if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN)) {
				pr_err("dump pid %d fd %d: unix socket %s: connection %zu of its queue is "
				       "gone", w->pid, w->fd, name, k + 1);
				err = -EAGAIN;
			} else if ((a = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0) {
				err = -errno;
				pr_perror("dump pid %d fd %d: cannot accept connection %zu waiting on %s",
					  w->pid, w->fd, k + 1, name);
			} else {
				err = read_accepted(ud, w, a, tab->pending[w->first + k], name);
				close(a);
			}
		}
		close(l);
		if (err)
			return err;
		pr_info("dump pid %d fd %d: %zu connections waiting on %s accepted to read what their "
			"clients wrote", w->pid, w->fd, w->n, name);
	}
	return 0;
}

/* ---- restore ---- */

/* The listener stasis made for the entry of socket ino, if it is one. */
static int held_listener(const struct unix_state *st, uint64_t ino, const FdEntry **l)
{
	for (size_t i = 0; i < st->nr_made; i++) {
		const FdEntry *e = st->made[i].e;
		if (st->made[i].ino == ino && e && e->has_sock_backlog &&
		    (e->sock_type == SOCK_STREAM || e->sock_type == SOCK_SEQPACKET)) {
			*l = e;
			return st->made[i].fd;
		}
	}
	return -1;
}

/* The listener's name, for messages. */
static const char *entry_name(const FdEntry *l, char *buf, size_t len)
{
	return unix_name((const char *)l->sock_name.data, l->sock_name.len, buf, len);
}

/* New clients for pending connections [from, to) of one listener, connected in order (one
 * helper process for them all), each with its saved shutdown; held, or closed for a closed
 * client (accept() reads end-of-file, as before). */
static int connect_clients(struct unix_state *st, const FdEntry *l, size_t from, size_t to)
{
	const SocketTable *tab = st->rst;
	auto_free int *c = xreallocarray(NULL, to - from, sizeof(*c));
	char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	size_t n = 0;
	int err = c ? 0 : -ENOMEM;

	if (st->in_root && !unix_connects_in_root(st, l))
		return 0; /* connected by stasis */
	if (unix_connects_in_root(st, l) && !st->in_root) { /* they stand in until the root connects them */
		for (size_t k = from; !err && k < to; k++)
			if (tab->pending[k]->has_client)
				err = unix_hold_stand_in(st, tab->pending[k]->client, 0, l->sock_type);
		return err;
	}
	while (!err && n < to - from)
		if ((c[n] = socket(AF_UNIX, l->sock_type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
			err = -errno;
		else
			n++;
	if (!err)
		err = unix_connect_all(st->ctx, c, n, l->sock_name.data, l->sock_name.len, l->sock_dir,
				       unix_held_scratch(st, l->sock_ino));
	for (size_t k = 0; !err && k < n; k++) /* what it wrote, then its shutdown */
		if (!(err = unix_queue_send(st, c[k], NULL, 0, tab->pending[from + k]->messages,
					    tab->pending[from + k]->n_messages)))
			err = unix_apply_shutdown(c[k], tab->pending[from + k]->client_shutdown);
	if (err) {
		pr_err("restore: cannot connect the %zu connections waiting on unix socket %s (backlog %u): %s",
		       to - from, entry_name(l, name, sizeof(name)), l->sock_backlog, strerror(-err));
		for (size_t k = 0; k < n; k++)
			close(c[k]);
		return err;
	}
	for (size_t k = 0; k < n; k++) {
		const UnixPending *u = tab->pending[from + k];
		if (!u->has_client)
			close(c[k]);
		else if ((err = st->in_root ? unix_held_replace(st, 0, u->client, &c[k])
					    : unix_hold(st, u->client, 0, c[k], NULL))) {
			while (++k < n)
				close(c[k]);
			return err;
		}
	}
	return 0;
}

bool unix_connects_in_root(const struct unix_state *st, const FdEntry *l)
{
	return st->root_connects && !unix_held_scratch(st, l->sock_ino);
}

int unix_restore_pending(struct unix_state *st)
{
	const SocketTable *tab = st->rst;
	int err;

	for (size_t i = 0, from = 0; i < tab->n_pending; i++) {
		const UnixPending *u = tab->pending[i];
		const FdEntry *l = NULL;
		if (u->order == 0)
			from = i;
		if (held_listener(st, u->listener, &l) < 0 || u->order != i - from ||
		    tab->pending[from]->listener != u->listener || u->client_shutdown > 3 ||
		    !unix_msgs_valid(u->messages, u->n_messages, 0, l->sock_type)) {
			pr_err("image sockets.img: pending connection %zu (to socket %llu, place %u in its "
			       "queue) is not to a listening socket of the images, out of order, or its "
			       "data is invalid",
			       i, (unsigned long long)u->listener, u->order);
			return -EINVAL;
		}
		/* the last of its listener's queue: the queue is connected */
		if ((i + 1 == tab->n_pending || tab->pending[i + 1]->order == 0) &&
		    (err = connect_clients(st, l, from, i + 1)))
			return err;
	}
	return 0;
}
