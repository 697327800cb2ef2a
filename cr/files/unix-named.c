/*
 * Unix sockets made again by name: a socket bound to a name and not connected (stream,
 * seqpacket, or a datagram receiver with what waits in it), a listener, a datagram socket
 * connected one way to a named socket of the tree, and one connected to a named socket
 * outside the tree (--ext-unix-sk). Dump: the type, options and name, where the name's file
 * is (a relative name: in which directory; gone: removed or replaced since) and its owner and
 * mode. Restore: stasis binds each before the tree (listening if it was) and connects the
 * one-way sockets to their peers' names once every name is bound; the tree inherits them.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mounts.h"
#include "unix.h"
#include "util.h"

/* A socket's type, options and flags; and a name (its own, or its peer's). */
static int set_socket(struct dump_task *t, const struct fd_probe *p, FdEntry *e,
		      const struct unix_info *named)
{
	int type, passcred;

	if (sock_options(t->pid, p->fd, &type, &passcred)) {
		pr_perror("dump pid %d fd %d: cannot look at its socket", t->pid, p->fd);
		return -errno;
	}
	e->has_sock_type = e->has_sock_passcred = e->has_flags = true;
	e->sock_type = type;
	e->sock_passcred = passcred;
	e->flags = p->flags;
	if (named && named->named) {
		e->has_sock_name = true;
		if (!(e->sock_name.data = xzalloc(named->name_len + 1)))
			return -ENOMEM;
		e->sock_name.len = named->name_len;
		memcpy(e->sock_name.data, named->name, named->name_len);
	}
	return 0;
}

/* Its own name: where its file is, and the file's owner and mode. */
static int set_own_name(struct dump_task *t, const struct fd_probe *p, FdEntry *e,
			const struct unix_info *named)
{
	struct stat st;
	bool gone;
	int err = set_socket(t, p, e, named);

	if (err || !named->named || !named->name[0])
		return err;
	/* (a socket in flight, held by stasis: looked for as the tree's root sees it) */
	if ((err = unix_name_place(t->pid == getpid() ? t->tree[0].pid : t->pid, t->tree[0].pid, named,
				   &gone, &e->sock_dir, &st, &e->sock_file_renamed)))
		return err;
	e->has_sock_file_gone = e->sock_file_gone = gone;
	char name[UNIX_NAME_MAX + 1];
	unix_name(named->name, named->name_len, name, sizeof(name));
	if (!gone && name[0] == '/' && t->pid != getpid() &&
	    !mount_tree_root_reaches(t->pid, t->tree[0].pid, name, &st)) {
		pr_err("dump pid %d fd %d: unix socket %s is bound to %s, on a mount of the mount "
		       "namespace the process is in, which the tree's first process does not reach it "
		       "through: not supported yet (stasis binds names before the tree runs, in its first "
		       "process's namespace)", t->pid, p->fd, p->link, name);
		return -ENOTSUP;
	}
	if (gone && named->name[0] != '/')
		pr_warn("dump pid %d fd %d: unix socket bound to the relative name %.*s, which leads to no "
			"file of its from its working directory (removed, or bound from another directory): "
			"restored with its name and no file, none can reach it by path", t->pid, p->fd,
			(int)named->name_len, named->name);
	if (!gone && named->has_vfs) {
		e->has_sock_file_mode = e->has_sock_file_uid = e->has_sock_file_gid = true;
		e->sock_file_mode = st.st_mode & 07777;
		e->sock_file_uid = st.st_uid;
		e->sock_file_gid = st.st_gid;
	}
	return 0;
}

/* The messages read at collect for the socket of this entry. */
static int take_queue(struct unix_state *ud, struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	struct unix_queue *q = unix_queue_of(ud, p->st.st_ino);

	if (!q || !q->read) {
		pr_err("dump pid %d fd %d: its socket's queue was not read", t->pid, p->fd);
		return -EIO;
	}
	FdEntry **more = xreallocarray(ud->borrowers, ud->nr_borrowers + 1, sizeof(*more));
	if (!more)
		return -ENOMEM;
	ud->borrowers = more;
	ud->borrowers[ud->nr_borrowers++] = e; /* (forgets them when the dump is over) */
	e->sock_messages = q->msgs;
	e->n_sock_messages = q->n;
	return 0;
}

/* Bound to a name and not connected: a listener, or a receiver (stream, seqpacket, datagram). */
int unix_dump_bound(struct unix_state *ud, struct dump_task *t, const struct fd_probe *p, FdEntry *e,
		      const struct unix_info *ui)
{
	int err;

	e->kind = FD_KIND__FD_UNIX_BOUND;
	e->has_sock_ino = true;
	e->sock_ino = p->st.st_ino;
	if ((err = set_own_name(t, p, e, ui)))
		return err;
	if (ui->state == TCP_LISTEN_STATE) {
		struct unix_cred c;
		auto_close int s = task_fd_copy(t->pid, p->fd);
		if (s >= 0 && unix_cred_read(t->ctx, s, &c))
			unix_listener_cred_set(e, &c);
		e->has_sock_backlog = true;
		e->sock_backlog = ui->wqueue;
		return ui->rqueue && (err = unix_dump_listener_queue(ud, t, p, e, ui)) ? err : 1;
	}
	return take_queue(ud, t, p, e) ?: 1;
}

/* A datagram socket connected to a named socket of the tree that is not connected back. */
int unix_dump_one_way(struct unix_state *ud, struct dump_task *t, const struct fd_probe *p,
			FdEntry *e, const struct unix_info *ui, const struct unix_info *pi)
{
	char name[UNIX_NAME_MAX + 1];
	int err;

	unix_name(pi->name, pi->name_len, name, sizeof(name));
	if (!pi->named) {
		pr_err("dump pid %d fd %d: unix socket %s is connected to socket:[%llu], which has no name "
		       "and is connected elsewhere (not supported)",
		       t->pid, p->fd, p->link, (unsigned long long)ui->peer);
		return -ENOTSUP;
	}
	if ((err = set_own_name(t, p, e, ui)))
		return err;
	e->kind = FD_KIND__FD_UNIX_BOUND;
	e->has_sock_ino = e->has_sock_peer = true;
	e->sock_ino = p->st.st_ino;
	e->sock_peer = ui->peer;
	if (e->sock_type != SOCK_DGRAM) {
		pr_err("dump pid %d fd %d: unix socket %s of type %u is connected to %s, which is not "
		       "connected back (not supported)", t->pid, p->fd, p->link, e->sock_type, name);
		return -ENOTSUP;
	}
	if ((err = take_queue(ud, t, p, e)))
		return err;
	for (size_t i = 0; i < e->n_sock_messages; i++) {
		const UnixMsg *m = e->sock_messages[i];
		if (m->sender.len != pi->name_len || memcmp(m->sender.data, pi->name, pi->name_len)) {
			pr_err("dump pid %d fd %d: unix socket %s, connected to %s, holds datagrams from "
			       "another sender, queued before it connected (not supported)",
			       t->pid, p->fd, p->link, name);
			return -ENOTSUP;
		}
	}
	return 1;
}

/*
 * The name by which the process reaches peer's socket file, into seen: the peer bound it in its
 * own view (a server on the host), which a container may show elsewhere (a host directory bound
 * at another path): found through the process's mounts. Kept as it is if the process sees no
 * file there (said: the restore connects to that name).
 */
static int seen_name(struct dump_task *t, const struct fd_probe *p, const struct unix_info *peer,
		     struct unix_info *seen)
{
	char name[UNIX_NAME_MAX + 1];
	struct stat st;

	unix_name(peer->name, peer->name_len, name, sizeof(name));
	/* (a peer in another network namespace is known by its name alone: the socket file there) */
	if (name[0] != '/' || stat(name, &st) || !S_ISSOCK(st.st_mode) ||
	    (peer->has_vfs && !unix_is_its_file(&st, peer)))
		return 0;
	auto_free char *there = mount_path_seen_by(t->pid, name, st.st_dev, st.st_ino);
	if (!there) {
		if (errno == ENOMEM)
			return -ENOMEM;
		pr_warn("dump pid %d fd %d: unix socket connected to %s outside the tree: the process "
			"reaches no such socket file by its mounts; the restore connects to that name",
			t->pid, p->fd, name);
		return 0;
	}
	if (!strcmp(there, name) || strlen(there) > sizeof(seen->name))
		return 0;
	pr_info("dump pid %d fd %d: unix socket connected to %s outside the tree, which the process "
		"reaches as %s", t->pid, p->fd, name, there);
	seen->name_len = strlen(there);
	memcpy(seen->name, there, seen->name_len);
	return 0;
}

/*
 * A datagram socket connected to a named socket outside the tree (syslog's /dev/log, say):
 * with --ext-unix-sk it is connected to that name again on restore.
 */
static int dump_external(struct dump_task *t, const struct fd_probe *p, FdEntry *e,
			 const struct unix_info *peer)
{
	char name[UNIX_NAME_MAX + 1], what[sizeof(name) + 64];
	int type, passcred;

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
	struct unix_info seen = *peer;
	if (seen_name(t, p, peer, &seen) == -ENOMEM)
		return -ENOMEM;
	return set_socket(t, p, e, &seen) ?: 1;
}

/*
 * The peer's name as the socket reads it (getpeername), for a peer that sock_diag does not show
 * (in another network namespace: a server outside a container); its peer is not known.
 */
static bool peer_name(pid_t pid, int fd, struct unix_info *pi)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	auto_close int s = task_fd_copy(pid, fd);

	memset(pi, 0, sizeof(*pi));
	if (s < 0 || getpeername(s, (struct sockaddr *)&sa, &len) || len <= offsetof(struct sockaddr_un, sun_path) ||
	    len > sizeof(sa))
		return false;
	pi->named = true;
	pi->name_len = len - offsetof(struct sockaddr_un, sun_path);
	memcpy(pi->name, sa.sun_path, pi->name_len);
	return true;
}

/* Connected to a peer no process of the tree holds nor any message carries. */
int unix_dump_peer_outside(struct dump_task *t, const struct fd_probe *p, FdEntry *e,
			     const struct unix_info *ui, const struct unix_info *pi, bool pi_ok)
{
	char what[UNIX_NAME_MAX + 64], name[UNIX_NAME_MAX + 1] = "";
	struct unix_info named;

	if (!pi_ok && peer_name(t->pid, p->fd, &named)) {
		pi = &named;
		pi_ok = true;
	}

	if (pi_ok && !ui->named && pi->named && pi->peer != ui->ino)
		return dump_external(t, p, e, pi); /* a server outside */
	if (pi_ok && pi->named)
		unix_name(pi->name, pi->name_len, name, sizeof(name));
	snprintf(what, sizeof(what), "connected to socket:[%llu]%s%s outside the tree",
		 (unsigned long long)ui->peer, name[0] ? " " : "", name);
	return unix_dump_outside(t, p, e, what);
}

int unix_dump_fresh(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	e->kind = FD_KIND__FD_UNIX_FRESH;
	return set_socket(t, p, e, NULL) ?: 1;
}

/* ---- restore ---- */

bool unix_bound_valid(const FdEntry *e, size_t n_carried)
{
	return e->has_sock_type && e->has_flags && e->sock_name.len <= UNIX_NAME_MAX &&
	       (e->sock_name.len || e->has_sock_peer) && !e->n_sock_queued &&
	       (!e->sock_dir || e->sock_dir[0] == '/') && (!e->has_sock_backlog || !e->has_sock_peer) &&
	       (e->sock_name.len || !e->n_sock_messages) && unix_renamed_valid(e) &&
	       unix_msgs_valid(e->sock_messages, e->n_sock_messages, n_carried, e->sock_type);
}

/* A one-way socket connected to its peer, a socket of the tree, by the peer's name. */
static int connect_peer(const struct unix_state *st, int s, uint64_t peer)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);

	for (size_t i = 0; i < st->nr_bound; i++)
		if (st->bound[i]->sock_ino == peer && st->bound[i]->sock_name.len)
			return unix_connect_name(st->ctx, s, st->bound[i]->sock_name.data,
						 st->bound[i]->sock_name.len, st->bound[i]->sock_dir,
						 unix_held_scratch(st, peer), NULL);
	int fd = unix_held_fd(st, peer);
	if (fd < 0)
		return -ENOENT;
	if (getsockname(fd, (struct sockaddr *)&sa, &len))
		return -errno;
	if (len <= offsetof(struct sockaddr_un, sun_path))
		return -ENOENT;
	return unix_connect_name(st->ctx, s, sa.sun_path, len - offsetof(struct sockaddr_un, sun_path), NULL,
				 unix_held_scratch(st, peer), NULL);
}

/* A listener unix_make_listeners makes with others: its name's file was there (or abstract),
 * its listen()'s credentials in *as. */
static bool batched_listener(void *arg, size_t j, struct unix_cred *as)
{
	const FdEntry *e = ((const struct unix_state *)arg)->bound[j];

	return !e->has_sock_peer && e->sock_name.len && !e->sock_file_gone && e->has_sock_backlog &&
	       unix_listener_cred(e, as);
}

int unix_make_listeners(struct unix_state *st, bool *made)
{
	size_t n = st->nr_bound, k;
	const FdEntry **group = xreallocarray(NULL, n ? n : 1, sizeof(*group));
	size_t *at = xreallocarray(NULL, n ? n : 1, sizeof(*at));
	int *s = xreallocarray(NULL, n ? n : 1, sizeof(*s));
	bool *tried = calloc(n ? n : 1, sizeof(*tried)); /* (in a group: not again) */
	int err = group && at && s && tried ? 0 : -ENOMEM;
	struct unix_cred as;

	for (size_t i = 0; i < n && !err; i++) {
		if (made[i] || (k = unix_cred_group(n, i, tried, batched_listener, st, at, &as)) < 2)
			continue; /* alone: unix_make_bound's */
		for (size_t m = 0; m < k; m++)
			group[m] = st->bound[at[m]];
		if (unix_bind_listen_all(st->ctx, group, k, &as, s)) /* (none made: unix_make_bound's) */
			continue;
		for (size_t m = 0; m < k; m++) {
			if (s[m] < 0)
				continue; /* failed: unix_make_bound makes it again, and says why */
			if (err)
				close(s[m]);
			else if (!(err = unix_hold(st, group[m]->sock_ino, 0, s[m], group[m])))
				made[at[m]] = true;
		}
	}
	free(group);
	free(at);
	free(s);
	free(tried);
	return err;
}

/* A bound socket, or (second round) a one-way datagram socket connected to its peer. */
int unix_make_bound(struct unix_state *st, const FdEntry *e)
{
	struct unix_file made = { 0 };
	char name[UNIX_NAME_MAX + 1];
	unsigned logged = log_errors();
	int err = 0, s = e->sock_name.len ? unix_bind_saved(st->ctx, e, &made) : unix_fresh_socket(e);

	if (s < 0)
		err = s;
	else if (e->has_sock_peer)
		err = connect_peer(st, s, e->sock_peer);
	if (err)
		log_unnamed(logged, err, "restore: cannot make unix socket %llu (%s) again",
			    (unsigned long long)e->sock_ino,
			    unix_name((const char *)e->sock_name.data, e->sock_name.len, name, sizeof(name)));
	if (s >= 0 && err)
		close(s);
	if (!err && (err = unix_hold(st, e->sock_ino, 0, s, e)) == 0) {
		unix_held_unlink_later(st, e->sock_ino, &made);
		return 0;
	}
	unix_file_remove(st->ctx, &made); /* made by this bind */
	return err;
}
