/*
 * The network lock. From the freeze to the end of a dump, and from the start of a restore
 * until the tree runs, every packet of the tree's TCP connections is dropped by an nftables
 * table of stasis's own (netns/nft.c; no nft or iptables binary), in the tree's network
 * namespace: peers retransmit instead of meeting a reset, and the connections' state stays
 * still while it is read or made.
 *
 * The table is "stasis-lock-PID-ROOT" (stasis's pid, the tree's root) and is owned by
 * stasis's netlink socket (NFT_TABLE_F_OWNER): the kernel removes it when stasis exits or is
 * killed, whatever happened. Only a successful dump that kills the tree leaves a table
 * behind on purpose, "stasis-dumped-ROOT" with the same connections, so that the peers of the
 * killed tree see no reset until the restore, which removes it once the tree runs (a failed
 * restore leaves it for the next one). stasis touches no other table. The connections waiting
 * in the tree's listeners' accept queues that stasis takes (netns/tcp-requeue.c) are locked too,
 * as it takes them, and put back in their queues before the lock goes (a dump that fails or
 * leaves the tree running; the restore); segments stasis makes go through. --network-lock skip
 * turns the lock off (the engine locks the network itself, through the network-lock and
 * network-unlock notifications).
 *
 * A connection is in TCP repair mode only while the dump reads it (cr/files/inet-tcp.c), then
 * again from just before the tree is killed (closed in repair mode, it sends nothing): a dump
 * killed any time before that leaves no connection of the tree in repair mode, where the
 * program's next read or write would fail (EPERM) and its peer would meet a reset.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "net-links.h"
#include "net-lock.h"
#include "nft.h"
#include "pstree.h"
#include "tcp-repair.h"
#include "tcp-requeue.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

#define LOCK_TABLE "stasis-lock-"     /* + stasis's pid - the root's */
#define DUMPED_TABLE "stasis-dumped-" /* + the root's */

struct net_lock_state {
	int nl;               /* the nftables socket in the tree's namespace + 1 (0: none) */
	char table[64];       /* ours, while it exists */
	pid_t root;           /* the tree's root, as the images name it */
	const struct dump_tree *tree;      /* dump: the tree, frozen until the dump is over */
	const struct dump_task *root_task; /* dump: whose vpid is known once the dump is over */
	struct nft_conn *conns;
	size_t nr_conns;
	struct repaired {     /* dump: the tree's sockets read in repair mode, by their socket's inode
			       * and the fd they were found at (stasis keeps no copy: 10,000
			       * connections would be 10,000 fds) */
		uint64_t ino;
		pid_t pid;
		int fd;
		int reuse; /* its SO_REUSEADDR before repair mode */
	} *repaired;
	size_t nr_repaired, repaired_alloc;
	struct taken_error {  /* dump: the pending errors read (and so taken) from closed TCP
			       * sockets of the tree, which a tree that goes on has lost */
		pid_t pid;
		int fd;
		int error;
	} *errors_taken;
	size_t nr_errors_taken, errors_taken_alloc;
};

static struct net_lock_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_net_lock);
}

/* A connection of an IPv6 socket with IPv4-mapped addresses: its packets are IPv4. */
static void unmapped(struct nft_conn *c)
{
	static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };

	if (c->family != AF_INET6 || memcmp(c->local, prefix, 12) || memcmp(c->remote, prefix, 12))
		return;
	c->family = AF_INET;
	memmove(c->local, c->local + 12, 4);
	memmove(c->remote, c->remote + 12, 4);
	memset(c->local + 4, 0, 12);
	memset(c->remote + 4, 0, 12);
}

static int add_conn(struct net_lock_state *st, const struct nft_conn *conn)
{
	struct nft_conn unmapped_conn = *conn, *c = &unmapped_conn;

	unmapped(c);
	if (!(st->nr_conns & (st->nr_conns - 1))) { /* doubled at each power of two */
		struct nft_conn *more = xreallocarray(st->conns, st->nr_conns ? 2 * st->nr_conns : 1,
						      sizeof(*more));
		if (!more)
			return -ENOMEM;
		st->conns = more;
	}
	st->conns[st->nr_conns++] = *c;
	return 0;
}

/* The connection of a TCP socket (stasis's copy): 1 if it has one, 0 if not. */
static int socket_conn(int sk, struct nft_conn *c)
{
	struct sockaddr_storage l, r;
	socklen_t llen = sizeof(l), rlen = sizeof(r), len = sizeof(int);
	struct tcp_info ti;
	int proto = 0;

	memset(c, 0, sizeof(*c));
	if (getsockopt(sk, SOL_SOCKET, SO_PROTOCOL, &proto, &len) || proto != IPPROTO_TCP)
		return 0;
	len = sizeof(ti);
	if (getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &len) || ti.tcpi_state == TCP_LISTEN ||
	    ti.tcpi_state == TCP_CLOSE || getsockname(sk, (struct sockaddr *)&l, &llen) ||
	    getpeername(sk, (struct sockaddr *)&r, &rlen) || l.ss_family != r.ss_family)
		return 0;
	c->family = l.ss_family;
	if (c->family == AF_INET) {
		const struct sockaddr_in *a = (void *)&l, *b = (void *)&r;
		memcpy(c->local, &a->sin_addr, 4);
		memcpy(c->remote, &b->sin_addr, 4);
		c->lport = a->sin_port;
		c->rport = b->sin_port;
	} else if (c->family == AF_INET6) {
		const struct sockaddr_in6 *a = (void *)&l, *b = (void *)&r;
		memcpy(c->local, &a->sin6_addr, 16);
		memcpy(c->remote, &b->sin6_addr, 16);
		c->lport = a->sin6_port;
		c->rport = b->sin6_port;
	} else {
		return 0;
	}
	return 1;
}

struct held_socket {
	uint64_t ino;
	pid_t pid;
	int fd;
};

static int by_ino(const void *a, const void *b)
{
	const struct held_socket *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Every TCP connection the tree's processes hold an fd of, each once. */
static int tree_conns(struct net_lock_state *st, const struct dump_tree *tr)
{
	auto_free struct held_socket *held = NULL;
	size_t nr_held = 0;

	for (size_t k = 0; k < tr->nr_tasks; k++) {
		pid_t pid = tr->tasks[k].pid;
		auto_free int *fds = NULL;
		size_t n;
		unsigned logged = log_errors();
		int err = proc_list_numbers(pid, "fd", &fds, &n);
		if (err)
			return log_unnamed(logged, err, "dump pid %d: cannot list its fds", pid);
		struct held_socket *more = xreallocarray(held, nr_held + n + 1, sizeof(*held));
		if (!more)
			return -ENOMEM;
		held = more;
		for (size_t i = 0; i < n; i++) {
			char path[64];
			struct stat s;
			snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fds[i]);
			if (!stat(path, &s) && S_ISSOCK(s.st_mode))
				held[nr_held++] = (struct held_socket){ s.st_ino, pid, fds[i] };
		}
	}
	/* a socket several fds hold (dup, fork) once */
	qsort(held, nr_held, sizeof(*held), by_ino);
	for (size_t i = 0; i < nr_held; i++) {
		struct nft_conn c;
		if (i && held[i].ino == held[i - 1].ino)
			continue;
		auto_close int sk = task_fd_copy(held[i].pid, held[i].fd);
		int err;
		if (sk >= 0 && socket_conn(sk, &c) && (err = add_conn(st, &c)))
			return err;
	}
	return 0;
}

/* An nftables socket in pid's network namespace (stasis goes there and back), or <0. */
static int nft_socket_of(pid_t pid)
{
	char path[64];
	struct stat own_st, tree_st;
	int nl, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	auto_close int own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	auto_close int tree = open(path, O_RDONLY | O_CLOEXEC);
	if (own < 0 || tree < 0 || fstat(own, &own_st) || fstat(tree, &tree_st))
		return -errno;
	if (own_st.st_ino == tree_st.st_ino)
		return nft_socket();
	if (setns(tree, CLONE_NEWNET))
		return -errno;
	nl = nft_socket();
	if (setns(own, CLONE_NEWNET))
		err = -errno;
	if (err && nl >= 0)
		close(nl);
	return err ? err : nl;
}

/* Our nftables socket in the namespace of root (once). */
static int open_nft(struct net_lock_state *st, pid_t root)
{
	if (st->nl)
		return 0;
	int nl = nft_socket_of(root);
	if (nl < 0) {
		pr_err("dump pid %d: cannot talk to nftables in its network namespace: %s", root,
		       strerror(-nl));
		return nl;
	}
	st->nl = nl + 1;
	return 0;
}

static int lock(struct net_lock_state *st, const char *what, pid_t root)
{
	snprintf(st->table, sizeof(st->table), LOCK_TABLE "%d-%d", getpid(), root);
	unsigned logged = log_errors();
	int err = nft_lock_table_add(st->nl - 1, st->table, true, st->conns, st->nr_conns);
	if (err) {
		log_unnamed(logged, err, "%s: cannot lock the network of the tree's %zu TCP connections "
			    "(nftables table %s) (--network-lock skip goes without)",
			    what, st->nr_conns, st->table);
		st->table[0] = 0;
		return err;
	}
	pr_info("%s: %zu TCP connections locked (nftables table %s)", what, st->nr_conns, st->table);
	return 0;
}

static void unlock(struct net_lock_state *st)
{
	int err;

	if (!st->table[0])
		return;
	if ((err = nft_table_del(st->nl - 1, st->table, false)))
		pr_warn("cannot remove nftables table %s: %s (it goes when stasis exits)", st->table,
			strerror(-err));
	st->table[0] = 0;
}

bool net_lock_table(const char *name)
{
	return !strncmp(name, LOCK_TABLE, strlen(LOCK_TABLE)) ||
	       !strncmp(name, DUMPED_TABLE, strlen(DUMPED_TABLE));
}

int net_lock_dump(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct net_lock_state *st = state_of(ctx);
	pid_t root = tr->tasks[0].pid;
	int err = 0;

	st->tree = tr;
	st->root_task = &tr->tasks[0];
	if (ctx->opts->network_lock_skip || (err = tree_conns(st, tr)) || !st->nr_conns ||
	    (err = open_nft(st, root)))
		return err;
	return lock(st, "dump", root);
}

int net_lock_add(struct run_ctx *ctx, const struct nft_conn *c)
{
	struct net_lock_state *st = state_of(ctx);
	unsigned logged = log_errors();
	pid_t root;
	int err;

	if (ctx->opts->network_lock_skip)
		return 0;
	if ((err = add_conn(st, c)))
		return err;
	root = st->tree->tasks[0].pid;
	if ((err = open_nft(st, root)))
		return err;
	if (!st->table[0])
		return lock(st, "dump", root);
	if ((err = nft_lock_table_add_conns(st->nl - 1, st->table, &st->conns[st->nr_conns - 1], 1)))
		return log_unnamed(logged, err, "dump: cannot lock one more TCP connection (nftables table %s)",
				   st->table);
	return 0;
}

int net_lock_note_repaired(struct run_ctx *ctx, pid_t pid, int fd, uint64_t ino, int reuse)
{
	struct net_lock_state *st = state_of(ctx);

	if (st->nr_repaired == st->repaired_alloc) {
		size_t n = st->repaired_alloc ? 2 * st->repaired_alloc : 64;
		struct repaired *more = xreallocarray(st->repaired, n, sizeof(*more));
		if (!more)
			return -ENOMEM;
		st->repaired = more;
		st->repaired_alloc = n;
	}
	st->repaired[st->nr_repaired++] = (struct repaired){ ino, pid, fd, reuse };
	return 0;
}

int net_lock_note_error_taken(struct run_ctx *ctx, pid_t pid, int fd, int error)
{
	struct net_lock_state *st = state_of(ctx);

	if (st->nr_errors_taken == st->errors_taken_alloc) {
		size_t n = st->errors_taken_alloc ? 2 * st->errors_taken_alloc : 16;
		struct taken_error *more = xreallocarray(st->errors_taken, n, sizeof(*more));
		if (!more)
			return -ENOMEM;
		st->errors_taken = more;
		st->errors_taken_alloc = n;
	}
	st->errors_taken[st->nr_errors_taken++] = (struct taken_error){ pid, fd, error };
	return 0;
}

/* A copy of the socket of inode ino if fd of pid holds it now, else -1. */
static int socket_at(pid_t pid, int fd, uint64_t ino)
{
	struct stat s;
	int sk = task_fd_copy(pid, fd);

	if (sk >= 0 && !fstat(sk, &s) && S_ISSOCK(s.st_mode) && s.st_ino == ino)
		return sk;
	if (sk >= 0)
		close(sk);
	return -1;
}

/*
 * A copy of the socket r names, through the fd it was found at; if that fd no longer holds it
 * (the tree is frozen, but something outside it may have killed its holder, or closed the fd
 * of a table it shares), through any fd of the tree's processes that does. -1: none does,
 * the socket is gone with its last fd (in repair mode: closed without a packet).
 */
static int repaired_socket(const struct net_lock_state *st, const struct repaired *r)
{
	int sk = socket_at(r->pid, r->fd, r->ino);

	for (size_t k = 0; sk < 0 && st->tree && k < st->tree->nr_tasks; k++) {
		pid_t pid = st->tree->tasks[k].pid;
		auto_free int *fds = NULL;
		size_t n;
		if (proc_list_numbers(pid, "fd", &fds, &n))
			continue;
		for (size_t i = 0; sk < 0 && i < n; i++) {
			char path[64];
			struct stat s;
			snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fds[i]);
			if (!stat(path, &s) && S_ISSOCK(s.st_mode) && s.st_ino == r->ino)
				sk = socket_at(pid, fds[i], r->ino);
		}
	}
	return sk;
}

/*
 * Every socket the dump read in repair mode: in it again (on: the tree is about to be killed,
 * its connections close without a packet), or out of it with a window probe (the tree goes
 * on: the probe wakes a peer that waited on a closed window).
 */
static void repair_mode(struct net_lock_state *st, bool on)
{
	for (size_t i = 0; i < st->nr_repaired; i++) {
		const struct repaired *r = &st->repaired[i];
		int sk = repaired_socket(st, r);
		if (sk < 0 && !on)
			pr_warn("dump pid %d fd %d: its TCP socket (inode %llu) is held by no process of "
				"the tree any more", r->pid, r->fd, (unsigned long long)r->ino);
		else if (sk >= 0 && (on ? tcp_repair_set(sk, true, false) : tcp_repair_leave(sk, true, r->reuse)))
			pr_warn("dump pid %d fd %d: cannot turn repair mode %s on its TCP socket: %m",
				r->pid, r->fd, on ? "on" : "off");
		if (sk >= 0)
			close(sk);
	}
	if (!on) /* (on: the dump may still fail, and then takes them all out of it again) */
		st->nr_repaired = 0;
}

int net_lock_dump_over(struct run_ctx *ctx, bool tree_goes_on)
{
	struct net_lock_state *st = state_of(ctx);
	unsigned logged = log_errors();
	char kept[64];
	int err;

	if (tree_goes_on) {
		tcp_requeue_dump_over(ctx, true);
		unlock(st);
		repair_mode(st, false);
		for (size_t i = 0; i < st->nr_errors_taken; i++)
			pr_warn("dump pid %d fd %d: its closed TCP socket goes on without the error it had "
				"pending (%s): reading it took it, and the kernel gives a closed socket no "
				"error again", st->errors_taken[i].pid, st->errors_taken[i].fd,
				strerror(st->errors_taken[i].error));
		st->nr_errors_taken = 0;
		return 0;
	}
	tcp_requeue_dump_over(ctx, false);
	repair_mode(st, true);
	if (st->table[0]) {
		st->root = st->root_task->vpid;
		snprintf(kept, sizeof(kept), DUMPED_TABLE "%d", st->root);
		if ((err = nft_table_del(st->nl - 1, kept, true)) ||
		    (err = nft_lock_table_add(st->nl - 1, kept, false, st->conns, st->nr_conns))) {
			if (log_errors() != logged)
				return err; /* out of memory: the dump fails */
			pr_warn("dump: cannot keep the network locked for the restore (nftables table %s: "
				"%s): peers of the tree's connections may see resets", kept, strerror(-err));
		} else {
			pr_info("dump: the tree's connections stay locked until the restore (nftables table "
				"%s)", kept);
		}
	}
	if (st->tree) /* (its veths' outer ends and its macvlans' MACs free for a restore at once) */
		net_links_down(ctx, st->tree->tasks[0].pid);
	return 0;
}

/* ---- restore ---- */

static void image_conn(uint32_t family, const ProtobufCBinaryData *local, uint32_t lport,
		       const ProtobufCBinaryData *remote, uint32_t rport, struct nft_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->family = family;
	memcpy(c->local, local->data, local->len);
	memcpy(c->remote, remote->data, remote->len);
	c->lport = htons(lport);
	c->rport = htons(rport);
}

/* The connections the images hold (fd entries are checked by the inet kinds' validate). */
static int validate_lock(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct net_lock_state *st = state_of(ctx);
	struct nft_conn c;
	int err;

	st->root = rt->inv->root_pid;
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			const InetSocket *in = e->inet;
			if (e->kind != FD_KIND__FD_INET || !in || in->protocol != IPPROTO_TCP)
				continue;
			size_t alen = in->family == AF_INET ? 4 : 16;
			for (size_t w = 0; in->state == INET_STATE__INET_LISTEN && w < in->n_waiting; w++) {
				const TcpWaiting *tw = in->waiting[w];
				if (tw->local_addr.len != alen || tw->peer_addr.len != alen)
					continue; /* (the kind's validate says what is wrong) */
				image_conn(in->family, &tw->local_addr, in->src_port, &tw->peer_addr,
					   tw->peer_port, &c);
				if ((err = add_conn(st, &c)))
					return err;
			}
			if (in->state != INET_STATE__INET_CONNECTED || in->src_addr.len != alen ||
			    in->dst_addr.len != alen)
				continue; /* (the kind's validate says what is wrong) */
			image_conn(in->family, &in->src_addr, in->src_port, &in->dst_addr, in->dst_port, &c);
			if ((err = add_conn(st, &c)))
				return err;
		}
	}
	return 0;
}

/* In stasis, now in the tree's network namespace: the connections locked before any is made. */
static int prepare_lock(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct net_lock_state *st = state_of(ctx);
	int nl;

	(void)rt;
	if (ctx->opts->network_lock_skip)
		return 0;
	if ((nl = nft_socket()) < 0) {
		if (!st->nr_conns)
			return 0;
		pr_err("restore: cannot talk to nftables in the tree's network namespace: %s",
		       strerror(-nl));
		return nl;
	}
	st->nl = nl + 1;
	return st->nr_conns ? lock(st, "restore", st->root) : 0;
}

int net_lock_restore_over(struct run_ctx *ctx)
{
	struct net_lock_state *st = state_of(ctx);
	unsigned logged = log_errors();
	char kept[64];
	int err;

	if ((err = tcp_requeue_restore(ctx)))
		return err;
	if (!st->nl)
		return 0;
	unlock(st);
	snprintf(kept, sizeof(kept), DUMPED_TABLE "%d", st->root);
	if ((err = nft_table_del(st->nl - 1, kept, true)))
		pr_warn("restore: cannot remove the dump's nftables table %s: %s", kept, strerror(-err));
	/* out of memory: the dump's table stays, and the restore fails (the next one removes it) */
	return log_errors() != logged ? -ENOMEM : 0;
}

static void undo_lock(struct run_ctx *ctx, bool restored)
{
	struct net_lock_state *st = state_of(ctx);

	(void)restored;
	if (!st->nl)
		return;
	unlock(st);
	close(st->nl - 1);
	st->nl = 0;
}

static void free_lock(void *state)
{
	struct net_lock_state *st = state;

	if (st->nl)
		close(st->nl - 1);
	free(st->repaired);
	free(st->errors_taken);
	free(st->conns);
}

const struct tree_object_ops tree_net_lock = {
	.name = "network lock",
	.state_size = sizeof(struct net_lock_state),
	.free_state = free_lock,
	.validate = validate_lock,
	.prepare = prepare_lock,
	.undo = undo_lock,
};
