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
 * restore leaves it for the next one). stasis touches no other table. --network-lock skip
 * turns the lock off (the engine locks the network itself, through the network-lock and
 * network-unlock notifications).
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
#include "net-lock.h"
#include "nft.h"
#include "pstree.h"
#include "tcp-repair.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

#define LOCK_TABLE "stasis-lock-"     /* + stasis's pid - the root's */
#define DUMPED_TABLE "stasis-dumped-" /* + the root's */

struct net_lock_state {
	int nl;               /* the nftables socket in the tree's namespace + 1 (0: none) */
	char table[64];       /* ours, while it exists */
	pid_t root;           /* the tree's root, as the images name it */
	const struct dump_task *root_task; /* dump: whose vpid is known once the dump is over */
	struct nft_conn *conns;
	size_t nr_conns;
	int *repaired;        /* dump: stasis's copies of the tree's sockets in repair mode */
	size_t nr_repaired;
};

static struct net_lock_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_net_lock);
}

static void add_conn(struct net_lock_state *st, const struct nft_conn *c)
{
	st->conns = realloc(st->conns, (st->nr_conns + 1) * sizeof(*st->conns));
	if (!st->conns)
		abort();
	st->conns[st->nr_conns++] = *c;
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

/* Every TCP connection the tree's processes hold an fd of, each once. */
static int tree_conns(struct net_lock_state *st, const struct dump_tree *tr)
{
	auto_free uint64_t *seen = NULL;
	size_t nr_seen = 0;

	for (size_t k = 0; k < tr->nr_tasks; k++) {
		pid_t pid = tr->tasks[k].pid;
		auto_free int *fds = NULL;
		size_t n;
		if (proc_list_numbers(pid, "fd", &fds, &n)) {
			pr_perror("dump pid %d: cannot list its fds", pid);
			return -errno;
		}
		for (size_t i = 0; i < n; i++) {
			char path[64];
			struct stat s;
			struct nft_conn c;
			bool dup = false;
			snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fds[i]);
			if (stat(path, &s) || !S_ISSOCK(s.st_mode))
				continue;
			for (size_t j = 0; j < nr_seen && !dup; j++)
				dup = seen[j] == s.st_ino;
			if (dup)
				continue;
			seen = realloc(seen, (nr_seen + 1) * sizeof(*seen));
			if (!seen)
				return -ENOMEM;
			seen[nr_seen++] = s.st_ino;
			auto_close int sk = task_fd_copy(pid, fds[i]);
			if (sk >= 0 && socket_conn(sk, &c))
				add_conn(st, &c);
		}
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

static int lock(struct net_lock_state *st, const char *what, pid_t root)
{
	snprintf(st->table, sizeof(st->table), LOCK_TABLE "%d-%d", getpid(), root);
	int err = nft_lock_table_add(st->nl - 1, st->table, true, st->conns, st->nr_conns);
	if (err) {
		pr_err("%s: cannot lock the network of the tree's %zu TCP connections (nftables table "
		       "%s): %s (--network-lock skip goes without)",
		       what, st->nr_conns, st->table, strerror(-err));
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

	st->root_task = &tr->tasks[0];
	if (ctx->opts->network_lock_skip || (err = tree_conns(st, tr)) || !st->nr_conns)
		return err;
	int nl = nft_socket_of(root);
	if (nl < 0) {
		pr_err("dump pid %d: cannot talk to nftables in its network namespace: %s", root,
		       strerror(-nl));
		return nl;
	}
	st->nl = nl + 1;
	return lock(st, "dump", root);
}

void net_lock_keep_repaired(struct run_ctx *ctx, int sk)
{
	struct net_lock_state *st = state_of(ctx);

	st->repaired = realloc(st->repaired, (st->nr_repaired + 1) * sizeof(*st->repaired));
	if (!st->repaired)
		abort();
	st->repaired[st->nr_repaired++] = sk;
}

void net_lock_dump_over(struct run_ctx *ctx, bool tree_goes_on)
{
	struct net_lock_state *st = state_of(ctx);
	char kept[64];
	int err;

	if (tree_goes_on) {
		unlock(st);
		for (size_t i = 0; i < st->nr_repaired; i++) {
			if (tcp_repair_set(st->repaired[i], false, true))
				pr_warn("dump: cannot turn repair mode off on a socket of the tree: %m");
			close(st->repaired[i]);
		}
		st->nr_repaired = 0;
		return;
	}
	if (!st->table[0])
		return;
	st->root = st->root_task->vpid;
	snprintf(kept, sizeof(kept), DUMPED_TABLE "%d", st->root);
	if ((err = nft_table_del(st->nl - 1, kept, true)) ||
	    (err = nft_lock_table_add(st->nl - 1, kept, false, st->conns, st->nr_conns)))
		pr_warn("dump: cannot keep the network locked for the restore (nftables table %s: %s): "
			"peers of the tree's connections may see resets",
			kept, strerror(-err));
	else
		pr_info("dump: the tree's connections stay locked until the restore (nftables table %s)",
			kept);
}

/* ---- restore ---- */

static void image_conn(const InetSocket *in, struct nft_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->family = in->family;
	memcpy(c->local, in->src_addr.data, in->src_addr.len);
	memcpy(c->remote, in->dst_addr.data, in->dst_addr.len);
	c->lport = htons(in->src_port);
	c->rport = htons(in->dst_port);
}

/* The connections the images hold (fd entries are checked by the inet kinds' validate). */
static int validate_lock(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct net_lock_state *st = state_of(ctx);
	struct nft_conn c;

	st->root = rt->inv->root_pid;
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			const InetSocket *in = e->inet;
			if (e->kind != FD_KIND__FD_INET || !in || in->protocol != IPPROTO_TCP ||
			    in->state != INET_STATE__INET_CONNECTED)
				continue;
			size_t alen = in->family == AF_INET ? 4 : 16;
			if (in->src_addr.len != alen || in->dst_addr.len != alen)
				continue; /* the kind's validate says what is wrong */
			image_conn(in, &c);
			add_conn(st, &c);
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
	char kept[64];
	int err;

	if (!st->nl)
		return 0;
	unlock(st);
	snprintf(kept, sizeof(kept), DUMPED_TABLE "%d", st->root);
	if ((err = nft_table_del(st->nl - 1, kept, true)))
		pr_warn("restore: cannot remove the dump's nftables table %s: %s", kept, strerror(-err));
	return 0;
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

	for (size_t i = 0; i < st->nr_repaired; i++)
		close(st->repaired[i]); /* in repair mode: closed without a packet */
	if (st->nl)
		close(st->nl - 1);
	free(st->repaired);
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
