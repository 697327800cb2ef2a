/*
 * A unix connection from outside the tree that lasts a moment: a client outside connected to a
 * listener of the tree and waits to be accepted, or a connection a listener of the tree accepted
 * from a client outside is being answered (a host's web server asking a container's FastCGI
 * server through a socket file bound into it). Neither can be
 * saved: unix-backlog.c refuses the first, unix-named.c the second (saved as external with
 * --ext-unix-sk). But a server answers within a moment and its client goes: the dump lets the
 * tree run on and seizes it again (dump.c's seize_settled), as for an exec into the container.
 *
 * Cheap, from two sock_diag listings, that of the tree's network namespace and that of stasis's
 * (the host's); the tree's fds are read (links only) only when one of these is seen, to tell
 * whether the listener, and a client of its namespace, are the tree's:
 * - a client waiting in a listener's queue is listed with it (UNIX_DIAG_ICONS);
 * - the kernel makes the socket a connection is accepted on in the network namespace of the
 *   client that connected, with the listener's file (UNIX_DIAG_VFS): a connected socket of the
 *   host's namespace with the file of a listener of the tree's namespace is one it accepted
 *   from a client of the host's, waiting or being answered;
 * - a connection accepted from a client of the tree's own namespace (a host's process talking
 *   to a server of the host's network, or of a container run with the host's) has the
 *   listener's file, or abstract name, and a peer listed there that the tree does not hold.
 * Clients from a third namespace (another container's) are not looked for: the dump refuses
 * their connections as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "nlmsg.h"
#include "unix.h"
#include "util.h"

/* The sockets the tree holds an fd of, read on first need, once per look: a listener's many
 * connections are each a lookup, not each a walk of every fd of the tree. */
struct tree_sockets {
	const struct dump_task *tasks;
	size_t n;
	bool read;
	struct ino_map inos;
};

static int note_socket(uint64_t ino, pid_t pid, int fd, void *inos)
{
	(void)pid, (void)fd;
	int added = ino_map_add(inos, ino, 0);
	return added < 0 ? added : 0;
}

/* Does an fd of the tree hold socket ino? (A listing that fails is said by the dump itself.) */
static bool tree_holds(struct tree_sockets *ts, uint64_t ino)
{
	for (size_t i = 0; !ts->read && i < ts->n; i++)
		if (fd_each_socket(ts->tasks[i].pid, note_socket, &ts->inos) == -ENOMEM)
			break;
	ts->read = true;
	return ino_map_get(&ts->inos, ino, NULL);
}

/* A client waiting in listener s of the tree that is not the tree's: said, true. */
static bool client_waiting(const struct unix_snapshot *tree_net, const struct unix_info *s,
			   const char *name, struct tree_sockets *ts)
{
	bool listener_held = false;

	for (size_t k = 0; k < s->n_icons; k++) {
		uint64_t client = s->icons[k];
		if (!client) /* (closed since) */
			continue;
		if (!listener_held && !(listener_held = tree_holds(ts, s->ino)))
			return false;
		/* (a client in another namespace is not the tree's) */
		if (unix_snapshot_find(tree_net, client) && tree_holds(ts, client))
			continue;
		pr_info("dump: unix socket %s has a connection from socket:[%llu], outside the tree, "
			"waiting to be accepted: the tree runs on for a moment",
			name, (unsigned long long)client);
		return true;
	}
	return false;
}

/* A connected socket of the host's namespace that listener s of the tree accepted (it has its
 * file): said, true. */
static bool accepted_from_host(const struct unix_snapshot *host_net, const struct unix_info *s,
			       const char *name, struct tree_sockets *ts)
{
	for (size_t i = 0; s->has_vfs && i < host_net->n; i++) {
		const struct unix_info *h = &host_net->socks[i];
		if (h->state != TCP_ESTABLISHED_STATE || !h->has_vfs || h->vfs_ino != s->vfs_ino ||
		    h->vfs_dev != s->vfs_dev)
			continue;
		if (!tree_holds(ts, s->ino))
			return false;
		pr_info("dump: unix socket %s serves a connection from socket:[%llu] of the host's "
			"network namespace (a client outside the tree): the tree runs on for a moment",
			name, (unsigned long long)h->peer);
		return true;
	}
	return false;
}

/* Is c a connection listener s accepted? It has the listener's file, or its abstract name. */
static bool accepted_by(const struct unix_info *c, const struct unix_info *s)
{
	if (c->ino == s->ino || c->state != TCP_ESTABLISHED_STATE || !c->has_peer || !c->peer)
		return false;
	if (s->has_vfs)
		return c->has_vfs && c->vfs_ino == s->vfs_ino && c->vfs_dev == s->vfs_dev;
	return s->name_len && c->name_len == s->name_len && !memcmp(c->name, s->name, s->name_len);
}

/* A connection listener s of the tree accepted from a client of the same namespace that is not
 * the tree's (and is there: a closed one is not listed), being answered: said, true. */
static bool accepted_from_outsider(const struct unix_snapshot *net, const struct unix_info *s,
				   const char *name, struct tree_sockets *ts)
{
	bool listener_held = false;

	for (size_t i = 0; i < net->n; i++) {
		const struct unix_info *c = &net->socks[i];
		if (!accepted_by(c, s) || !unix_snapshot_find(net, c->peer))
			continue;
		if (!listener_held && !(listener_held = tree_holds(ts, s->ino)))
			return false;
		if (tree_holds(ts, c->peer) || !tree_holds(ts, c->ino))
			continue;
		pr_info("dump: unix socket %s serves a connection from socket:[%llu], outside the "
			"tree: the tree runs on for a moment", name, (unsigned long long)c->peer);
		return true;
	}
	return false;
}

int unix_tree_outside_moment(const struct dump_task *tasks, size_t n)
{
	struct unix_snapshot tree_net = { 0 }, host_net = { 0 };
	uint64_t host_ino;
	bool host_listed = false;
	char path[64];
	struct stat ns;
	bool found = false;
	struct tree_sockets ts = { tasks, n, false, { 0 } };

	/* (a listing that fails is said by the dump itself, which lists them again) */
	snprintf(path, sizeof(path), "/proc/%d/ns/net", tasks[0].pid);
	auto_close int nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || fstat(nsfd, &ns) || nl_netns_ino(&host_ino) ||
	    unix_snapshot_of_netns(&tree_net, ns.st_ino, nsfd))
		return 0;
	bool across = !tasks[0].ctx->opts->ext_unix_sk && host_ino != ns.st_ino;
	for (size_t i = 0; i < tree_net.n && !found; i++) {
		const struct unix_info *s = &tree_net.socks[i];
		char name[UNIX_NAME_MAX + 1] = "";
		if (s->state != TCP_LISTEN_STATE)
			continue;
		if (!unix_name(s->name, s->name_len, name, sizeof(name))[0])
			snprintf(name, sizeof(name), "socket:[%llu]", (unsigned long long)s->ino);
		found = client_waiting(&tree_net, s, name, &ts);
		if (!found && !tasks[0].ctx->opts->ext_unix_sk)
			found = accepted_from_outsider(&tree_net, s, name, &ts);
		if (found || !across || !s->has_vfs)
			continue;
		if (!host_listed && unix_snapshot_of_netns(&host_net, host_ino, -1))
			break;
		host_listed = true;
		found = accepted_from_host(&host_net, s, name, &ts);
	}
	unix_snapshot_free(&tree_net);
	unix_snapshot_free(&host_net);
	ino_map_free(&ts.inos);
	return found;
}
