/*
 * Connected pairs: two unix sockets connected to each other, each held by a process of the
 * tree or carried in flight (socketpair(), a connection accepted, two datagram sockets
 * connected to each other); or one of them whose peer its process closed. Each end keeps its
 * queue (unix-queue.c), shutdown state and name: a client may have bound one, and an
 * accepted connection bears its listener's.
 * Restore, before the tree: an end bearing the name of a listener stasis made is accepted
 * from it again (its client bound to its own name first, if it had one); other pairs are made
 * with socketpair() and each end bound to its name. A datagram end's name is its own: bound
 * as a listener's would be (its socket file made again if it was there). A stream or
 * seqpacket end's is bound where no file stays: an accepted end's file is its listener's,
 * maybe outside the tree, and the name alone is what getsockname() and getpeername() read.
 * Once the tree exists: each end's queue is sent again from the other end; a closed end is
 * closed then, after leaving a byte unread if its survivor had an ECONNRESET waiting (the
 * kernel sets it when a peer closes with data unread); the shutdowns are applied last.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "unix.h"
#include "util.h"

/* The end's peer credentials, read on a copy of the socket (held, or carried in flight). */
static void fill_end_cred(struct unix_state *ud, UnixEnd *end, const struct unix_queue *q)
{
	struct unix_cred c;
	int s = q->pid ? task_fd_copy(q->pid, q->fd)
		       : q->fd >= 0 && (size_t)q->fd < ud->nr_carried ? ud->carried[q->fd].fd : -1;

	if (s >= 0 && unix_cred_read(ud->ctx, s, &c))
		unix_end_cred_set(end, &c);
	if (q->pid && s >= 0)
		close(s);
}

/* One end's state: shutdown, name, peer credentials, queue read at collect (root: the tree's root process). */
static int fill_end(struct unix_state *ud, UnixEnd *end, uint64_t ino, const struct unix_info *ui,
		    int type, pid_t root)
{
	const struct unix_queue *q = unix_queue_of(ud, ino);
	struct stat file;
	bool gone = true;

	end->ino = ino;
	end->shutdown = ui->shutdown;
	if (!q || !q->read) {
		pr_err("dump: unix socket socket:[%llu]: its queue was not read", (unsigned long long)ino);
		return -EIO;
	}
	if (ui->named) {
		int err;
		end->has_name = true;
		if (!(end->name.data = xzalloc(ui->name_len + 1)))
			return -ENOMEM;
		end->name.len = ui->name_len;
		memcpy(end->name.data, ui->name, ui->name_len);
		if (type == SOCK_DGRAM && /* its own bind */
		    (err = unix_name_place(q->pid ? q->pid : root, root, ui, &gone, &end->name_dir, &file, NULL)))
			return err;
		end->has_name_file_gone = end->name_file_gone = gone;
		if (!gone && ui->has_vfs) {
			end->has_name_file_mode = end->has_name_file_uid = end->has_name_file_gid = true;
			end->name_file_mode = file.st_mode & 07777;
			end->name_file_uid = file.st_uid;
			end->name_file_gid = file.st_gid;
		}
	}
	fill_end_cred(ud, end, q);
	end->messages = q->msgs;
	end->n_messages = q->n;
	end->has_reset = q->reset;
	end->reset = q->reset;
	return 0;
}

int unix_dump_pair(struct unix_state *ud, struct dump_task *t, const struct fd_probe *p, FdEntry *e,
		   const struct unix_info *ui, const struct unix_info *pi)
{
	uint64_t ino = p->st.st_ino;
	int type, passcred, err;

	e->has_pair_id = e->has_sock_ino = e->has_flags = true;
	e->pair_id = pi && ui->peer < ino ? ui->peer : ino;
	e->sock_ino = ino;
	e->flags = p->flags;
	if (ino_map_get(&ud->pair_by_id, e->pair_id, NULL))
		return 1; /* made when its other end was met */
	if (sock_options(t->pid, p->fd, &type, &passcred)) {
		pr_perror("dump pid %d fd %d: cannot look at its socket", t->pid, p->fd);
		return -errno;
	}
	/* in the table before it is filled: the run's teardown frees it and gives back the
	 * messages its ends borrow, also when what follows fails */
	UnixPair *pair;
	if ((err = xgrow(&ud->tab.pairs, &ud->cap_pairs, ud->tab.n_pairs, sizeof(*ud->tab.pairs))) ||
	    (err = ino_map_add(&ud->pair_by_id, e->pair_id, ud->tab.n_pairs)) < 0)
		return err;
	if (!(pair = xzalloc(sizeof(*pair))))
		return -ENOMEM;
	unix_pair__init(pair);
	ud->tab.pairs[ud->tab.n_pairs++] = pair;
	pair->id = e->pair_id;
	pair->type = type;
	if (!(pair->a = xzalloc(sizeof(UnixEnd))))
		return -ENOMEM;
	unix_end__init(pair->a);
	if (!(pair->b = xzalloc(sizeof(UnixEnd))))
		return -ENOMEM;
	unix_end__init(pair->b);
	if ((err = fill_end(ud, pair->a, ino, ui, type, t->tree[0].pid)))
		return err;
	if (pi)
		return (err = fill_end(ud, pair->b, ui->peer, pi, type, t->tree[0].pid)) ? err : 1;
	pair->b->has_closed = pair->b->closed = true;
	return 1;
}

/* ---- restore ---- */

static bool end_valid(const UnixEnd *end, bool closed, size_t n_carried, int type)
{
	return !end->n_queued && end->shutdown <= 3 && end->name.len <= UNIX_NAME_MAX &&
	       end->has_name == (end->name.len > 0) && (!end->name_dir || end->name_dir[0] == '/') &&
	       (type == SOCK_DGRAM || !end->has_name || end->name_file_gone) && closed == (end->ino == 0) &&
	       (!closed || (!end->n_messages && !end->has_name)) &&
	       unix_msgs_valid(end->messages, end->n_messages, n_carried, type);
}

bool unix_pairs_valid(const SocketTable *tab, size_t n_carried)
{
	for (size_t i = 0; i < tab->n_pairs; i++) {
		const UnixPair *u = tab->pairs[i];
		if ((u->type != SOCK_STREAM && u->type != SOCK_DGRAM && u->type != SOCK_SEQPACKET) ||
		    u->a->closed || !end_valid(u->a, false, n_carried, u->type) ||
		    !end_valid(u->b, u->b->closed, n_carried, u->type)) {
			pr_err("image sockets.img: pair %zu (id %llu) is invalid%s", i, (unsigned long long)u->id,
			       u->a->n_queued || u->b->n_queued ? " (written by an earlier stasis: dump again)"
								 : "");
			return false;
		}
	}
	return true;
}

/* The accepted end again: a client (bound to its own name, if any) connects, the listener accepts. */
static int accept_again(const struct unix_state *st, int listener, const FdEntry *l, const UnixEnd *accepted,
			const UnixEnd *client, int end[2], struct unix_file *made)
{
	struct unix_cred as, client_cred, own;
	int err = 0;

	end[0] = end[1] = -1;
	/* the client's peer credentials are its listener's at connect: those of a listen() again */
	if (unix_end_cred(client, &client_cred) &&
	    (err = unix_listen_as(st->ctx, listener, l->sock_backlog, &client_cred)))
		return err;
	if ((end[1] = socket(AF_UNIX, l->sock_type | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (client->has_name)
		err = unix_bind_name(st->ctx, end[1], client->name.data, client->name.len,
				     client->name_file_gone, client->name_dir, made);
	if (!err)
		err = unix_connect_name(st->ctx, end[1], l->sock_name.data, l->sock_name.len, l->sock_dir,
					unix_held_scratch(st, l->sock_ino), unix_end_cred(accepted, &as));
	if (!err && (end[0] = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) < 0)
		err = -errno;
	if (!err && client->has_peer_pid) /* the listener's own again */
		err = unix_listen_as(st->ctx, listener, l->sock_backlog, unix_listener_cred(l, &own));
	return err;
}

struct by_socketpair {
	int type;
	int end[2];
};

static int socketpair_here(void *arg)
{
	struct by_socketpair *sp = arg;

	return socketpair(AF_UNIX, sp->type | SOCK_CLOEXEC, 0, sp->end) ? -errno : 0;
}

/* A pair by socketpair() (premade: its ends made already, taken), each end bound to its name. */
static int pair_by_name(const struct unix_state *st, const UnixPair *u, int end[2], struct unix_file made[2],
			int *premade)
{
	const UnixEnd *ends[2] = { u->a, u->b };
	char name[UNIX_NAME_MAX + 2];
	struct unix_cred as;
	struct by_socketpair sp = { u->type, { -1, -1 } };
	int err;

	/* socketpair() gives both ends its caller's credentials: those of one end, both if the same */
	if (premade) {
		sp.end[0] = premade[0];
		sp.end[1] = premade[1];
		premade[0] = premade[1] = -1;
	} else if ((err = unix_end_cred(u->a, &as) ? unix_run_as(st->ctx, &as, -1, NULL, socketpair_here, &sp, sizeof(sp))
						     : socketpair_here(&sp))) {
		end[0] = end[1] = -1;
		return err;
	}
	end[0] = sp.end[0];
	end[1] = sp.end[1];
	for (int i = 0; i < 2 && !err; i++) {
		if (!ends[i]->has_name)
			continue;
		const UnixEnd *n = ends[i];
		err = unix_bind_name(st->ctx, end[i], n->name.data, n->name.len, n->name_file_gone, n->name_dir,
				     &made[i]);
		if (!err && !n->name_file_gone)
			err = unix_name_file_set(st->ctx, n->name_dir, &n->name,
						 &(struct unix_file_attrs){ n->has_name_file_uid, n->name_file_uid,
									    n->name_file_gid, n->has_name_file_mode,
									    n->name_file_mode });
		if (err == -EADDRINUSE) { /* an accepted connection whose listener is not the tree's */
			pr_warn("restore: unix socket %llu comes back without its name %s (taken)",
				(unsigned long long)ends[i]->ino,
				unix_name((const char *)ends[i]->name.data, ends[i]->name.len, name, sizeof(name)));
			err = 0;
		}
	}
	return err;
}

/* The held listener that accepted one end of the pair (*b_accepted: end b), or -1. */
static int pair_listener(const struct unix_state *st, const UnixPair *u, const FdEntry **l, bool *b_accepted)
{
	int ls = -1;

	*l = NULL;
	*b_accepted = false;
	if (u->type != SOCK_DGRAM && u->a->has_name)
		ls = unix_held_listener(st, u->type, u->a->name.data, u->a->name.len, l);
	if (ls < 0 && u->type != SOCK_DGRAM && u->b->has_name) {
		ls = unix_held_listener(st, u->type, u->b->name.data, u->b->name.len, l);
		*b_accepted = ls >= 0;
	}
	return ls;
}

/*
 * The pairs that socketpair() makes (no listener accepted an end) with the credentials of the
 * same maker: made together, in one run of a helper with the maker's pid and ids (unix_run_as
 * forks one per run; one per pair made a process of thousands of pairs slow to restore).
 * premade[2 * i], [2 * i + 1]: pair i's ends, -1 where it is made by itself.
 */
struct pair_batch {
	size_t n;
	struct {
		int type, end[2];
	} p[];
};

static int socketpairs_here(void *arg)
{
	struct pair_batch *b = arg;

	for (size_t k = 0; k < b->n; k++)
		if (socketpair(AF_UNIX, b->p[k].type | SOCK_CLOEXEC, 0, b->p[k].end))
			return -errno;
	return 0;
}

static bool premade_cred(void *arg, size_t j, struct unix_cred *c)
{
	struct unix_state *st = arg;
	const UnixPair *u = st->rst->pairs[j];
	const FdEntry *l;
	bool b_accepted;

	return !unix_pair_by_root(st, u) && pair_listener(st, u, &l, &b_accepted) < 0 && unix_end_cred(u->a, c);
}

static int premake_pairs(struct unix_state *st, int *premade)
{
	size_t n = st->rst->n_pairs;
	auto_free bool *taken = xzalloc(n + 1);
	auto_free size_t *at = xreallocarray(NULL, n + 1, sizeof(*at));

	if (!taken || !at)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct unix_cred as;
		size_t k = unix_cred_group(n, i, taken, premade_cred, st, at, &as);
		if (!k)
			continue;
		size_t size = sizeof(struct pair_batch) + k * sizeof(((struct pair_batch *)0)->p[0]);
		auto_free struct pair_batch *b = xzalloc(size);
		if (!b)
			return -ENOMEM;
		b->n = k;
		for (size_t j = 0; j < k; j++) {
			b->p[j].type = (int)st->rst->pairs[at[j]]->type;
			b->p[j].end[0] = b->p[j].end[1] = -1;
		}
		int err = unix_run_as(st->ctx, &as, -1, NULL, socketpairs_here, b, size);
		for (size_t j = 0; j < k; j++) { /* (the caller closes them if this failed) */
			premade[2 * at[j]] = b->p[j].end[0];
			premade[2 * at[j] + 1] = b->p[j].end[1];
		}
		if (err)
			return err;
	}
	return 0;
}

/* One pair's two ends made (*made: files made for their names; premade: its ends, or NULL). */
static int pair_ends(struct unix_state *st, const UnixPair *u, int end[2], struct unix_file made[2], int *premade)
{
	const FdEntry *l;
	bool b_accepted;
	int err, ls = pair_listener(st, u, &l, &b_accepted);

	if (ls < 0)
		return pair_by_name(st, u, end, made, premade);
	if (!b_accepted)
		return accept_again(st, ls, l, u->a, u->b, end, &made[1]);
	int swapped[2];
	err = accept_again(st, ls, l, u->b, u->a, swapped, &made[0]);
	end[0] = swapped[1];
	end[1] = swapped[0];
	return err;
}

static void ends_undo(const struct unix_state *st, int end[2], struct unix_file made[2])
{
	for (int k = 0; k < 2; k++) {
		unix_file_remove(st->ctx, &made[k]); /* made by this bind */
		if (end[k] >= 0)
			close(end[k]);
	}
}

/* One pair again, both ends held (premade: its ends made already, or NULL). */
static int make_pair(struct unix_state *st, const UnixPair *u, int *premade)
{
	struct unix_file made[2] = { { 0 }, { 0 } };
	int end[2], err;

	if (unix_pair_by_root(st, u)) /* its ends stand in until the root has made them */
		return unix_hold_stand_in(st, u->a->ino, u->id, u->type) ?:
		       unix_hold_stand_in(st, u->b->ino, u->id, u->type);
	err = pair_ends(st, u, end, made, premade);
	if (!err) {
		err = unix_hold(st, u->a->ino, u->id, end[0], NULL);
		end[0] = -1; /* held, or closed by unix_hold */
	}
	if (!err) {
		if (!(err = unix_hold(st, u->b->ino, u->id, end[1], NULL))) {
			/* files made for names: kept while stasis holds the ends (one-way sockets connect) */
			unix_held_unlink_later(st, u->a->ino, &made[0]);
			unix_held_unlink_later(st, u->b->ino, &made[1]);
			return 0;
		}
		end[1] = -1; /* closed by unix_hold */
	}
	ends_undo(st, end, made);
	return err;
}

/* A path name whose file was gone: bound again, a file is made for it that stasis removes. */
static bool file_made_for(const UnixEnd *end)
{
	return end->name_file_gone && end->name.len && end->name.data[0];
}

bool unix_pair_by_root(const struct unix_state *st, const UnixPair *u)
{
	const FdEntry *l;
	bool b_accepted;

	if (!st->root_connects || !((u->a->has_peer_pid && u->a->peer_pid) || (u->b->has_peer_pid && u->b->peer_pid)) ||
	    (u->type == SOCK_DGRAM && (u->a->has_name || u->b->has_name)) || /* one-way ones connect to those */
	    file_made_for(u->a) || file_made_for(u->b))
		return false;
	/* accepted: where its listener's connections are made (one queue, in order) */
	return pair_listener(st, u, &l, &b_accepted) < 0 || unix_connects_in_root(st, l);
}

int unix_remake_pairs(struct unix_state *st)
{
	for (size_t i = 0; i < st->rst->n_pairs; i++) {
		const UnixPair *u = st->rst->pairs[i];
		struct unix_file made[2] = { { 0 }, { 0 } };
		int end[2] = { -1, -1 }, err;

		if (!unix_pair_by_root(st, u))
			continue;
		if (!(err = pair_ends(st, u, end, made, NULL)) &&
		    !(err = unix_held_replace(st, u->id, u->a->ino, &end[0])))
			err = unix_held_replace(st, u->id, u->b->ino, &end[1]);
		if (err) {
			ends_undo(st, end, made);
			pr_err("restore: cannot make unix socket pair %llu again in the tree's PID namespace: %s",
			       (unsigned long long)u->id, strerror(-err));
			return err;
		}
	}
	return 0;
}

int unix_make_pairs(struct unix_state *st)
{
	size_t n = st->rst->n_pairs;
	auto_free int *premade = xreallocarray(NULL, 2 * n + 1, sizeof(*premade));
	int err;

	if (!premade)
		return -ENOMEM;
	memset(premade, -1, (2 * n + 1) * sizeof(*premade));
	unsigned logged = log_errors();
	if ((err = premake_pairs(st, premade)))
		log_unnamed(logged, err, "restore: cannot make unix socket pairs again");
	for (size_t i = 0; i < n && !err; i++) {
		logged = log_errors();
		if ((err = make_pair(st, st->rst->pairs[i], premade[2 * i] >= 0 ? &premade[2 * i] : NULL)))
			log_unnamed(logged, err, "restore: cannot make unix socket pair %llu again",
				    (unsigned long long)st->rst->pairs[i]->id);
	}
	for (size_t k = 0; k < 2 * n; k++) /* (those of pairs not reached) */
		if (premade[k] >= 0)
			close(premade[k]);
	return err;
}

/* A byte its survivor does not read: closing it then sets ECONNRESET there (stream, seqpacket). */
static int leave_unread(int survivor)
{
	return send(survivor, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

/* One pair's queues filled, its closed end closed, its shutdowns applied. */
static int fill_pair(struct unix_state *st, const UnixPair *u)
{
	int a = unix_held_end(st, u->id, u->a->ino), b = unix_held_end(st, u->id, u->b->ino), err;

	if (a < 0 || b < 0)
		return -ENOENT;
	if ((err = unix_queue_send(st, b, NULL, 0, u->a->messages, u->a->n_messages)) ||
	    (err = unix_queue_send(st, a, NULL, 0, u->b->messages, u->b->n_messages)))
		return err;
	if (u->b->closed) {
		if (u->a->reset && u->type != SOCK_DGRAM && (err = leave_unread(a)))
			return err;
		unix_held_drop(st, b);
		if (u->type != SOCK_DGRAM)
			return 0; /* its peer's close shut it down both ways */
	} else if ((err = unix_apply_shutdown(b, u->b->shutdown))) {
		return err;
	}
	return unix_apply_shutdown(a, u->a->shutdown);
}

int unix_fill_pairs(struct unix_state *st)
{
	for (size_t i = 0; i < st->rst->n_pairs; i++) {
		int err = fill_pair(st, st->rst->pairs[i]);
		if (err) {
			pr_err("restore: cannot fill unix socket pair %llu again: %s",
			       (unsigned long long)st->rst->pairs[i]->id, strerror(-err));
			return err;
		}
	}
	return 0;
}
