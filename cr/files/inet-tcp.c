/*
 * TCP sockets. By state:
 * - neither bound nor connected: a new socket; bound and not listening: bound again;
 * - listening: bound and listening again with its backlog and options. Connections the
 *   kernel is still setting up for it (SYN_RECV) fail the dump, naming them, unless
 *   --skip-in-flight drops them (the restored listener knows nothing of them: a client that
 *   sends finds its connection reset). Connections waiting in its accept queue, only with
 *   --tcp-established: taken by stasis and read (netns/tcp-requeue.c), made again in its queue
 *   once it listens again;
 * - connecting (SYN_SENT): bound again and connecting again (non-blocking); a program blocked
 *   in connect() waits on in the restarted call;
 * - established and half-closed (ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK,
 *   CLOSING): only with --tcp-established; the socket is put in repair mode (its packets
 *   held back by the network lock, netns/net-lock.c) and its state read; on restore it is
 *   made again in repair mode (netns/tcp-repair.c) in the new process, and stasis fills its
 *   queues once every process is made (buffers beyond net.core.[rw]mem_max take CAP_NET_ADMIN
 *   over the host, which a process of a user namespace lacks) and turns repair off once the
 *   tree is about to run. Without --tcp-established the dump fails naming the connection;
 *   with --tcp-close (dump or restore) it comes back closed, as one that ended (below);
 * - closed: never connected (a new socket, bound or not), or a connection that ended (both
 *   FINs exchanged, or reset), whose peer the kernel still tells: made again in repair mode
 *   with the bytes not read and aborted (open_ended), so that it is closed with its
 *   addresses, gives those bytes then end-of-file, EPIPE and POLLHUP.
 * The bind of a restored socket forces the address's reuse (as TCP repair does): connections
 * of the dumped tree waiting out TIME_WAIT do not keep its port. A TIME_WAIT socket of the very
 * addresses and ports of a connection made again (an earlier restored copy of it, closed)
 * would still fail its connect: it is destroyed first (inet-timewait.c).
 * MPTCP sockets (IPPROTO_MPTCP; a Go program's listeners by default since Go 1.24) are kept
 * while they hold no connection: fresh, bound, or listening with nothing in the accept queue
 * (the connections a listener hands out are plain TCP sockets when their clients are, as most
 * are: the kernel falls back). The kernel cannot repair an MPTCP connection: one fails the dump.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inet.h"
#include "log.h"
#include "net-lock.h"
#include "nlmsg.h"
#include "kernel/features.h"
#include "tcp-repair.h"
#include "tcp-requeue.h"
#include "util.h"

static const char *const state_names[] = {
	[TCP_ESTABLISHED] = "ESTABLISHED", [TCP_SYN_SENT] = "SYN_SENT", [TCP_SYN_RECV] = "SYN_RECV",
	[TCP_FIN_WAIT1] = "FIN_WAIT1", [TCP_FIN_WAIT2] = "FIN_WAIT2", [TCP_TIME_WAIT] = "TIME_WAIT",
	[TCP_CLOSE] = "CLOSE", [TCP_CLOSE_WAIT] = "CLOSE_WAIT", [TCP_LAST_ACK] = "LAST_ACK",
	[TCP_LISTEN] = "LISTEN", [TCP_CLOSING] = "CLOSING",
};

static const char *state_name(unsigned state)
{
	return state < ARRAY_SIZE(state_names) && state_names[state] ? state_names[state] : "?";
}

/*
 * Every TCP socket of family in one of states (a bit mask) in stasis's network namespace
 * (the tree's, during a dump), each handed to fn until it returns nonzero.
 */
struct diag_visit {
	int (*fn)(const struct inet_diag_msg *m, void *arg);
	void *arg;
	int ret; /* fn's first nonzero result */
};

static int on_diag(const struct nlmsghdr *h, void *arg)
{
	struct diag_visit *v = arg;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		return 0;
	return v->ret = v->fn(NLMSG_DATA(h), v->arg);
}

static int diag_walk(int family, uint32_t states,
		     int (*fn)(const struct inet_diag_msg *m, void *arg), void *arg)
{
	struct inet_diag_req_v2 req = { .sdiag_family = family, .sdiag_protocol = IPPROTO_TCP,
					.idiag_states = states };
	struct diag_visit v = { fn, arg, 0 };
	int err = nl_sock_diag(&req, sizeof(req), on_diag, &v);

	return err ? err : v.ret;
}

struct find_ino {
	uint64_t ino;
	struct inet_diag_msg found;
};

static int match_ino(const struct inet_diag_msg *m, void *arg)
{
	struct find_ino *f = arg;

	if (m->idiag_inode != f->ino)
		return 0;
	f->found = *m;
	return 1;
}

/* The connections in the listener's accept queue (no file yet: inode 0): same local port, its
 * address or any; up to 4 of their clients named in names. */
struct waiting_conns {
	const InetSocket *listener;
	struct nft_conn *conns;
	unsigned n;
	char names[200];
};

static int find_waiting(const struct inet_diag_msg *m, void *arg)
{
	struct waiting_conns *w = arg;
	const InetSocket *l = w->listener;
	size_t alen = l->family == AF_INET ? 4 : 16;
	ProtobufCBinaryData peer = { alen, (uint8_t *)m->id.idiag_dst };
	char name[80];
	size_t at = strlen(w->names);

	if (m->idiag_inode || !inet_listener_has(l, ntohs(m->id.idiag_sport), (const uint8_t *)m->id.idiag_src))
		return 0;
	struct nft_conn *more = xreallocarray(w->conns, w->n + 1, sizeof(*more));
	if (!more)
		return -ENOMEM;
	w->conns = more;
	struct nft_conn *c = &w->conns[w->n];
	*c = (struct nft_conn){ .family = l->family, .lport = m->id.idiag_sport, .rport = m->id.idiag_dport };
	memcpy(c->local, m->id.idiag_src, alen);
	memcpy(c->remote, m->id.idiag_dst, alen);
	if (w->n++ < 4) {
		inet_addr_str(l->family, &peer, ntohs(m->id.idiag_dport), name, sizeof(name));
		snprintf(w->names + at, sizeof(w->names) - at, "%s%s", at ? ", " : "", name);
	}
	return 0;
}

static bool among(const struct waiting_conns *w, const struct nft_conn *c)
{
	for (unsigned i = 0; i < w->n; i++)
		if (!memcmp(&w->conns[i], c, sizeof(*c)))
			return true;
	return false;
}

/*
 * The connections waiting in the listener's accept queue (--tcp-established): all locked, then
 * each taken and read (netns/tcp-requeue.c) into in->waiting, in the queue's order.
 */
static int dump_waiting(struct dump_task *t, const struct fd_probe *p, int sk, const char *self,
			unsigned n, InetSocket *in)
{
	struct waiting_conns w = { .listener = in };
	char why[160] = "", peer[80], what[400];
	unsigned logged = log_errors();
	struct nft_conn c;
	int err = diag_walk(in->family, (1u << TCP_ESTABLISHED) | (1u << TCP_CLOSE_WAIT), find_waiting, &w);

	auto_free struct nft_conn *conns = w.conns;
	if (err == -ENOMEM)
		return err;
	snprintf(what, sizeof(what), "dump pid %d fd %d: TCP listener %s has %u connections waiting to be "
		 "accepted (from %s%s)", t->pid, p->fd, self, n, w.names[0] ? w.names : "?",
		 w.n > 4 ? ", ..." : "");
	if (!t->ctx->opts->tcp_established) {
		pr_err("%s: pass --tcp-established to keep them in its accept queue", what);
		return -ENOTSUP;
	}
	if ((err = kernel_refuse_lacking(t->ctx, KF_TCP_REQUEUE, what)))
		return err;
	for (unsigned i = 0; i < w.n; i++)
		if ((err = net_lock_add(t->ctx, &conns[i])))
			return log_unnamed(logged, err, "%s: cannot lock them", what);
	for (unsigned taken = 0;; taken++) {
		int c_sk = tcp_requeue_accept(t->ctx, sk, in, &c);
		if (c_sk == -EAGAIN) {
			pr_debug("dump pid %d fd %d: TCP listener %s: %u connections waiting to be accepted "
				 "taken", t->pid, p->fd, self, taken);
			return 1;
		}
		if (c_sk < 0)
			return log_unnamed(logged, c_sk, "dump pid %d fd %d: TCP listener %s: cannot take the "
					   "connections waiting to be accepted: %s", t->pid, p->fd, self,
					   strerror(-c_sk));
		ProtobufCBinaryData remote = { c.family == AF_INET ? 4 : 16, c.remote };
		inet_addr_str(c.family, &remote, ntohs(c.rport), peer, sizeof(peer));
		/* (one that came since the queue was listed is locked now) */
		if (!among(&w, &c) && (err = net_lock_add(t->ctx, &c))) {
			close(c_sk);
			pr_err("dump pid %d fd %d: TCP listener %s: connection from %s waiting to be accepted: "
			       "cannot lock it: %s (it is lost)", t->pid, p->fd, self, peer, strerror(-err));
			return err;
		}
		err = tcp_requeue_take(t->ctx, c_sk, in, why, sizeof(why));
		if (err == -ECONNRESET) {
			pr_warn("dump pid %d fd %d: TCP listener %s: connection from %s waiting to be accepted: "
				"%s: dropped", t->pid, p->fd, self, peer, why);
			continue;
		}
		if (err) { /* (said even after an out-of-memory message: it cannot go back) */
			pr_err("dump pid %d fd %d: TCP listener %s: connection from %s waiting to be accepted: "
			       "%s: %s (it is lost)", t->pid, p->fd, self, peer, why[0] ? why : "cannot read it",
			       strerror(-err));
			return err;
		}
	}
}

static int dump_listener(struct dump_task *t, const struct fd_probe *p, int sk, const struct tcp_info *ti,
			 InetSocket *in)
{
	unsigned logged = log_errors(), syns;
	char self[80];
	int err;

	inet_addr_str(in->family, &in->src_addr, in->src_port, self, sizeof(self));
	in->state = INET_STATE__INET_LISTEN;
	in->has_backlog = true;
	in->backlog = ti->tcpi_sacked; /* a listener's: the backlog listen() was given */
	/* (an MPTCP listener's queue is its first subflow's, which TCP_INFO does not count) */
	struct pollfd readable = { .fd = sk, .events = POLLIN };
	if (in->protocol == IPPROTO_MPTCP && poll(&readable, 1, 0) > 0) {
		pr_err("dump pid %d fd %d: MPTCP listener %s has connections waiting to be accepted: not "
		       "supported (an MPTCP listener's queue cannot be put back)", t->pid, p->fd, self);
		return -ENOTSUP;
	}
	if ((err = inet_syn_recv_count(t->ctx, sk, in, &syns)))
		return log_unnamed(logged, err,
				   "dump pid %d fd %d: cannot list the connections being set up for TCP listener %s",
				   t->pid, p->fd, self);
	if (syns && !t->ctx->opts->skip_in_flight) {
		pr_err("dump pid %d fd %d: TCP listener %s has %u connections being set up (SYN_RECV): "
		       "pass --skip-in-flight to drop them (their clients find those connections reset)",
		       t->pid, p->fd, self, syns);
		return -ENOTSUP;
	}
	if (syns)
		pr_warn("dump pid %d fd %d: %u connections being set up for TCP listener %s are dropped "
			"(--skip-in-flight)", t->pid, p->fd, syns, self);
	return ti->tcpi_unacked ? dump_waiting(t, p, sk, self, ti->tcpi_unacked, in) : 1;
}

/* SYN_SENT: the kernel gives no peer name yet; sock_diag has it. */
static int dump_connecting(struct dump_task *t, const struct fd_probe *p, InetSocket *in)
{
	struct find_ino f = { .ino = p->st.st_ino };
	struct sockaddr_storage sa = { .ss_family = in->family };
	int err = diag_walk(in->family, 1u << TCP_SYN_SENT, match_ino, &f);

	if (err == -ENOMEM)
		return err;
	if (err <= 0) {
		pr_err("dump pid %d fd %d: cannot find the address TCP socket %s connects to: %s",
		       t->pid, p->fd, p->link, err ? strerror(-err) : "not in sock_diag");
		return err ? err : -ENOENT;
	}
	if (in->family == AF_INET) {
		memcpy(&((struct sockaddr_in *)&sa)->sin_addr, f.found.id.idiag_dst, 4);
		((struct sockaddr_in *)&sa)->sin_port = f.found.id.idiag_dport;
	} else {
		memcpy(&((struct sockaddr_in6 *)&sa)->sin6_addr, f.found.id.idiag_dst, 16);
		((struct sockaddr_in6 *)&sa)->sin6_port = f.found.id.idiag_dport;
	}
	if ((err = inet_from_sockaddr(&sa, &in->dst_addr, &in->dst_port)) < 0)
		return err;
	in->has_dst_addr = in->has_dst_port = true;
	in->state = INET_STATE__INET_CONNECTING;
	return 1;
}

/* What a program has not read of a connection that ended or is restored closed: in->tcp. */
static int dump_unread(struct dump_task *t, const struct fd_probe *p, int sk, InetSocket *in)
{
	char why[160] = "";
	unsigned logged = log_errors();
	int err;

	if (!(in->tcp = xzalloc(sizeof(*in->tcp))))
		return -ENOMEM;
	tcp_conn__init(in->tcp);
	if ((err = tcp_unread_read(sk, in->tcp, why, sizeof(why))))
		return log_unnamed(logged, err, "dump pid %d fd %d: TCP socket %s: %s", t->pid, p->fd,
				   p->link, why);
	return 1;
}

static int dump_connection(struct dump_task *t, const struct fd_probe *p, int sk, int state,
			   InetSocket *in)
{
	const struct stasis_opts *o = t->ctx->opts;
	char self[80], peer[80], why[160] = "";
	unsigned logged = log_errors();
	int err;

	inet_addr_str(in->family, &in->src_addr, in->src_port, self, sizeof(self));
	inet_addr_str(in->family, &in->dst_addr, in->dst_port, peer, sizeof(peer));
	if (!o->tcp_established) {
		if (o->tcp_close) {
			in->state = INET_STATE__INET_CLOSED;
			pr_info("dump pid %d fd %d: TCP connection %s -> %s (%s) is restored closed "
				"(--tcp-close)", t->pid, p->fd, self, peer, state_name(state));
			return dump_unread(t, p, sk, in);
		}
		pr_err("dump pid %d fd %d: TCP connection %s -> %s is %s: pass --tcp-established to keep "
		       "it, or --tcp-close to restore it closed",
		       t->pid, p->fd, self, peer, state_name(state));
		return -ENOTSUP;
	}
	int reuse = 0; /* (repair mode forces reuse, and its end clears it) */
	socklen_t reuse_len = sizeof(reuse);
	getsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &reuse, &reuse_len);
	if ((err = tcp_repair_set(sk, true, false))) {
		pr_perror("dump pid %d fd %d: cannot put TCP connection %s -> %s in repair mode", t->pid,
			  p->fd, self, peer);
		return -errno;
	}
	if ((err = net_lock_note_repaired(t->ctx, t->pid, p->fd, p->st.st_ino, reuse))) {
		tcp_repair_leave(sk, true, reuse);
		return err;
	}
	if (!(in->tcp = xzalloc(sizeof(*in->tcp))))
		return -ENOMEM;
	tcp_conn__init(in->tcp);
	err = tcp_repair_read(sk, state, in->tcp, why, sizeof(why));
	/* out of repair mode until the tree is killed (netns/net-lock.c): the network is locked */
	tcp_repair_set(sk, false, false);
	if (err)
		return log_unnamed(logged, err, "dump pid %d fd %d: TCP connection %s -> %s (%s): %s", t->pid,
				   p->fd, self, peer, state_name(state), why);
	in->state = INET_STATE__INET_CONNECTED;
	if ((err = inet_shutdown_dump(t->ctx, sk, in))) {
		pr_err("dump pid %d fd %d: cannot find TCP connection %s -> %s in the kernel's listing: %s",
		       t->pid, p->fd, self, peer, strerror(-err));
		return err;
	}
	pr_debug("dump pid %d fd %d: TCP connection %s -> %s (%s): %zu bytes to send, %zu to read",
		 t->pid, p->fd, self, peer, state_name(state), in->tcp->out_queue.len,
		 in->tcp->in_queue.len);
	return 1;
}

/*
 * The error a connection that ended has pending (sk_err: ECONNRESET when its peer reset it),
 * which the program's next read or write gets once, before end-of-file or EPIPE. The kernel
 * tells it only through SO_ERROR, which takes it off the socket (sock_diag has no attribute
 * of it, and a closed socket is in no table sock_diag walks); poll's POLLERR tells without
 * taking that there is one. So it is read only when the tree does not run on: with
 * --leave-running such a socket is refused, before anything is taken. (A dump that fails
 * after this point leaves the program that socket without its error, which the network lock
 * warns of: a closed socket cannot be given one again.)
 */
static int dump_pending_error(struct dump_task *t, const struct fd_probe *p, int sk, InetSocket *in)
{
	struct pollfd pfd = { .fd = sk, .events = 0 };
	char self[80], peer[80];
	int error = 0;
	socklen_t len = sizeof(error);

	if (poll(&pfd, 1, 0) < 0)
		return -errno;
	if (!(pfd.revents & POLLERR))
		return 0;
	inet_addr_str(in->family, &in->src_addr, in->src_port, self, sizeof(self));
	inet_addr_str(in->family, &in->dst_addr, in->dst_port, peer, sizeof(peer));
	if (t->ctx->opts->leave_running) {
		pr_err("dump pid %d fd %d: a TCP socket with a pending error (%s -> %s, closed, reset "
		       "by its peer or failed): the kernel gives the error only by taking it from the "
		       "socket, which --leave-running keeps running: not supported", t->pid, p->fd,
		       self, peer);
		return -ENOTSUP;
	}
	if (getsockopt(sk, SOL_SOCKET, SO_ERROR, &error, &len))
		return -errno;
	if (!error)
		return 0; /* POLLERR of its error queue only (timestamps): nothing to keep */
	if (net_lock_note_error_taken(t->ctx, t->pid, p->fd, error))
		return -ENOMEM;
	in->has_error = true;
	in->error = error;
	pr_debug("dump pid %d fd %d: TCP connection %s -> %s ended with error %d (%s) pending", t->pid,
		 p->fd, self, peer, error, strerror(error));
	return 0;
}

/*
 * TCP_CLOSE: never connected (bound or not), or a connection that ended, whose peer the
 * kernel still tells (SO_PEERNAME; getpeername says ENOTCONN): that one is kept as it is,
 * with the error it has pending.
 */
static int dump_closed(struct dump_task *t, const struct fd_probe *p, int sk, InetSocket *in)
{
	struct sockaddr_storage sa = { 0 };
	/* (the kernel takes no room larger than the address) */
	socklen_t len = in->family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int err;

	in->state = in->src_port ? INET_STATE__INET_BOUND : INET_STATE__INET_FRESH;
	if (getsockopt(sk, SOL_SOCKET, SO_PEERNAME, &sa, &len) ||
	    (err = inet_from_sockaddr(&sa, &in->dst_addr, &in->dst_port)) == 0 || !in->dst_port)
		return 1;
	if (err < 0)
		return err;
	in->has_dst_addr = in->has_dst_port = true;
	in->state = INET_STATE__INET_CLOSED;
	if ((err = dump_unread(t, p, sk, in)) < 0 || (err = dump_pending_error(t, p, sk, in)) < 0)
		return err;
	return 1;
}

/* An MPTCP socket: listening, or closed and never connected; else refused. */
static int dump_mptcp(struct dump_task *t, const struct fd_probe *p, int sk, const struct tcp_info *ti,
		      InetSocket *in)
{
	char self[80], peer[80];
	int err;

	if (ti->tcpi_state == TCP_LISTEN)
		return dump_listener(t, p, sk, ti, in);
	if (ti->tcpi_state == TCP_CLOSE && in->state != INET_STATE__INET_CONNECTED &&
	    ((err = dump_closed(t, p, sk, in)) < 0 || !in->has_dst_port))
		return err;
	inet_addr_str(in->family, &in->src_addr, in->src_port, self, sizeof(self));
	inet_addr_str(in->family, &in->dst_addr, in->dst_port, peer, sizeof(peer));
	pr_err("dump pid %d fd %d: %s is an MPTCP connection %s -> %s (%s): not supported, the kernel "
	       "cannot repair one (a Go program makes its listeners MPTCP by default since Go 1.24: "
	       "GODEBUG=multipathtcp=0 in its environment makes them plain TCP)", t->pid, p->fd, p->link,
	       self, peer, state_name(ti->tcpi_state));
	return -ENOTSUP;
}

int inet_tcp_dump(struct dump_task *t, const struct fd_probe *p, int sk, InetSocket *in)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &len)) {
		pr_perror("dump pid %d fd %d: cannot read the state of TCP socket %s", t->pid, p->fd,
			  p->link);
		return -errno;
	}
	if (in->protocol == IPPROTO_MPTCP)
		return dump_mptcp(t, p, sk, &ti, in);
	/* (a socket in the kernel's listing, one bound at least: its keys) */
	int err = ti.tcpi_state == TCP_CLOSE ? 0 : inet_md5_keys_dump(t->ctx, sk, in);
	if (err) {
		pr_err("dump pid %d fd %d: cannot find TCP socket %s in the kernel's listing: %s", t->pid,
		       p->fd, p->link, strerror(-err));
		return err;
	}
	switch (ti.tcpi_state) {
	case TCP_LISTEN:
		return dump_listener(t, p, sk, &ti, in);
	case TCP_CLOSE:
		return dump_closed(t, p, sk, in);
	case TCP_SYN_SENT:
		return dump_connecting(t, p, in);
	case TCP_ESTABLISHED:
	case TCP_FIN_WAIT1:
	case TCP_FIN_WAIT2:
	case TCP_CLOSE_WAIT:
	case TCP_LAST_ACK:
	case TCP_CLOSING:
		return dump_connection(t, p, sk, ti.tcpi_state, in);
	default:
		pr_err("dump pid %d fd %d: TCP socket %s is in state %s: not supported", t->pid, p->fd,
		       p->link, state_name(ti.tcpi_state));
		return -ENOTSUP;
	}
}

/* ---- restore ---- */

int inet_tcp_validate(const struct restore_task *t, const FdEntry *e)
{
	const InetSocket *in = e->inet;

	if (in->state == INET_STATE__INET_CONNECTED && (!in->tcp || !tcp_conn_valid(in->tcp))) {
		pr_err("image fds-%d.img: fd %u: TCP connection without a valid state", t->pid, e->fd);
		return -EINVAL;
	}
	for (size_t i = 0; i < in->n_waiting; i++) {
		if (in->state != INET_STATE__INET_LISTEN || !tcp_waiting_valid(in, in->waiting[i])) {
			pr_err("image fds-%d.img: fd %u: connection %zu waiting to be accepted: not a "
			       "TCP listener's, or without a valid state", t->pid, e->fd, i);
			return -EINVAL;
		}
	}
	char what[160];
	snprintf(what, sizeof(what), "image fds-%d.img: fd %u: TCP listener with %zu connections waiting "
		 "to be accepted", t->pid, e->fd, in->n_waiting);
	if (in->n_waiting && kernel_refuse_lacking(t->ctx, KF_TCP_REQUEUE, what))
		return -ENOTSUP;
	if (in->state == INET_STATE__INET_CLOSED && in->tcp &&
	    (!in->has_dst_port || !in->has_src_port || !tcp_ended_valid(in->tcp))) {
		pr_err("image fds-%d.img: fd %u: TCP connection that ended without a valid state", t->pid,
		       e->fd);
		return -EINVAL;
	}
	if (in->has_error && (in->state != INET_STATE__INET_CLOSED || !in->error || in->error > 4095)) {
		pr_err("image fds-%d.img: fd %u: TCP socket with a pending error %u: not an errno of a "
		       "connection that ended", t->pid, e->fd, in->error);
		return -EINVAL;
	}
	return 0;
}

/* Restored as a connection (not closed by --tcp-close on restore). */
static bool repaired(const struct run_ctx *ctx, const InetSocket *in)
{
	return in->state == INET_STATE__INET_CONNECTED && !ctx->opts->tcp_close;
}

/* The connection's addresses freed of a TIME_WAIT socket left by an earlier copy of it (if
 * that cannot be done, the connect says what stands in its way). */
static void clear_timewait(const struct restore_task *t, const FdEntry *e)
{
	const InetSocket *in = e->inet;
	char self[80], peer[80];
	int err = inet_timewait_clear(in);

	inet_addr_str(in->family, &in->src_addr, in->src_port, self, sizeof(self));
	inet_addr_str(in->family, &in->dst_addr, in->dst_port, peer, sizeof(peer));
	if (err > 0)
		pr_info("restore pid %d fd %u: %s -> %s was in TIME_WAIT (an earlier copy of the "
			"connection, closed): that TIME_WAIT socket is destroyed", t->pid, e->fd, self, peer);
	else if (err < 0)
		pr_warn("restore pid %d fd %u: cannot look for a TIME_WAIT socket of %s -> %s: %s", t->pid,
			e->fd, self, peer, strerror(-err));
}

/*
 * A connection that ended, or is restored closed (--tcp-close): made in repair mode with
 * what the program had not read, then aborted. It is closed (TCP_CLOSE), knows its addresses
 * (getsockname; its peer: SO_PEERNAME), gives its unread bytes and then end-of-file, EPIPE to
 * a write, POLLHUP, and no pending error; it holds its port (bound). One that had an error
 * pending at dump gets it again: ECONNRESET by a reset from its peer's address instead of the
 * abort, ECONNABORTED by the abort's own; others are not made (a warning says so).
 */
static int open_ended(struct restore_task *t, const FdEntry *e, int sk)
{
	const InetSocket *in = e->inet;
	struct sockaddr_storage src, dst;
	socklen_t src_len, dst_len;
	char self[80], peer[80], why[160] = "";
	int err;

	inet_addr_str(in->family, &in->src_addr, in->src_port, self, sizeof(self));
	inet_addr_str(in->family, &in->dst_addr, in->dst_port, peer, sizeof(peer));
	if (!inet_sockaddr(in->family, &in->src_addr, in->src_port, &src, &src_len) ||
	    !inet_sockaddr(in->family, &in->dst_addr, in->dst_port, &dst, &dst_len))
		return -EINVAL;
	clear_timewait(t, e);
	if (!(err = sockopts_restore(sk, e)))
		err = tcp_repair_make_ended(sk, in->tcp, (struct sockaddr *)&src, src_len,
					    (struct sockaddr *)&dst, dst_len, why, sizeof(why));
	/* a socket of these addresses lives on (the dumped connection itself, closed without
	 * TCP repair: --tcp-close at dump): closed without them, as a new socket shut down */
	if (err == -EADDRNOTAVAIL && !tcp_repair_set(sk, false, false) &&
	    (!shutdown(sk, SHUT_RDWR) || errno == ENOTCONN) && !inet_reuse_restore(sk, in)) {
		pr_warn("restore pid %d fd %u: TCP connection %s -> %s: %s (%s): restored closed without "
			"its peer's address%s", t->pid, e->fd, self, peer, why, strerror(EADDRNOTAVAIL),
			in->tcp && in->tcp->in_queue.len ? " nor its unread bytes" : "");
		return 0;
	}
	if (err) {
		pr_err("restore pid %d fd %u: TCP connection %s -> %s that ended: %s: %s", t->pid, e->fd,
		       self, peer, why[0] ? why : "cannot set its socket options", strerror(-err));
		return err;
	}
	int error = in->has_error ? (int)in->error : 0;
	if (error && error != ECONNRESET && error != ECONNABORTED)
		pr_warn("restore pid %d fd %u: TCP connection %s -> %s that ended: restored without the "
			"error it had pending (%s): only ECONNRESET and ECONNABORTED can be given again",
			t->pid, e->fd, self, peer, strerror(error));
	if ((err = error == ECONNRESET ? tcp_ended_reset(sk) : inet_ended_abort(in)) ||
	    (err = tcp_ended_settle(sk, error == ECONNRESET || error == ECONNABORTED)) ||
	    (err = inet_reuse_restore(sk, in)) || (err = sockopts_buffers_restore(sk, e))) {
		pr_err("restore pid %d fd %u: cannot close TCP connection %s -> %s again: %s", t->pid,
		       e->fd, self, peer, strerror(-err));
		return err;
	}
	return 0;
}

/* TCP_MD5SIG keys of in set again on sk (a key's ifindex is not saved: it holds on any). */
static int md5_keys_restore(const struct restore_task *t, const FdEntry *e, int sk)
{
	const InetSocket *in = e->inet;

	for (size_t i = 0; i < in->n_md5_keys; i++) {
		const TcpMd5Key *k = in->md5_keys[i];
		struct tcp_md5sig m = { .tcpm_flags = TCP_MD5SIG_FLAG_PREFIX, .tcpm_prefixlen = k->prefixlen,
					.tcpm_keylen = k->key.len };
		socklen_t len;
		inet_sockaddr(k->family, &k->addr, 0, (struct sockaddr_storage *)&m.tcpm_addr, &len);
		memcpy(m.tcpm_key, k->key.data, k->key.len);
		if (setsockopt(sk, IPPROTO_TCP, TCP_MD5SIG_EXT, &m, sizeof(m))) {
			pr_perror("restore pid %d fd %u: cannot set its TCP_MD5SIG key %zu", t->pid, e->fd, i);
			return -errno;
		}
	}
	return 0;
}

bool inet_md5_keys_valid(const InetSocket *in)
{
	for (size_t i = 0; i < in->n_md5_keys; i++) {
		const TcpMd5Key *k = in->md5_keys[i];
		size_t alen = k->family == AF_INET ? 4 : k->family == AF_INET6 ? 16 : 0;
		if (in->protocol != IPPROTO_TCP || !alen || k->addr.len != alen || k->prefixlen > alen * 8 ||
		    !k->key.len || k->key.len > TCP_MD5SIG_MAXKEYLEN)
			return false;
	}
	return true;
}

int inet_tcp_open(struct restore_task *t, const FdEntry *e, int sk)
{
	const InetSocket *in = e->inet;
	struct sockaddr_storage src, dst;
	socklen_t src_len, dst_len;
	char self[80], peer[80], why[160] = "";
	int err = 0;

	inet_addr_str(in->family, &in->src_addr, in->src_port, self, sizeof(self));
	inet_addr_str(in->family, &in->dst_addr, in->dst_port, peer, sizeof(peer));
	if ((err = md5_keys_restore(t, e, sk)))
		return err;
	switch (in->state) {
	case INET_STATE__INET_BOUND:
	case INET_STATE__INET_LISTEN:
	case INET_STATE__INET_CONNECTING:
		if ((err = inet_bind_saved(sk, in, t->pid, e->fd))) {
			pr_err("restore pid %d fd %u: cannot bind TCP socket to %s: %s", t->pid, e->fd,
			       self, strerror(-err));
			return err;
		}
		if (in->state == INET_STATE__INET_LISTEN && listen(sk, in->backlog)) {
			pr_perror("restore pid %d fd %u: cannot listen on %s", t->pid, e->fd, self);
			return -errno;
		}
		return 0; /* a connecting one connects once the tree is made (connect_again) */
	case INET_STATE__INET_CLOSED:
		return in->has_dst_port ? open_ended(t, e, sk) : 0; /* without its peer: a new socket */
	case INET_STATE__INET_CONNECTED:
		if (!repaired(t->ctx, in))
			return open_ended(t, e, sk);
		if (!inet_sockaddr(in->family, &in->src_addr, in->src_port, &src, &src_len) ||
		    !inet_sockaddr(in->family, &in->dst_addr, in->dst_port, &dst, &dst_len))
			return -EINVAL;
		clear_timewait(t, e);
		if ((err = sockopts_restore(sk, e)) ||
		    (err = tcp_repair_make(sk, in->tcp, (struct sockaddr *)&src, src_len,
					   (struct sockaddr *)&dst, dst_len, why, sizeof(why)))) {
			pr_err("restore pid %d fd %u: TCP connection %s -> %s: %s: %s", t->pid, e->fd, self,
			       peer, why[0] ? why : "cannot set its socket options", strerror(-err));
			return err;
		}
		return 0;
	default:
		return 0; /* a new socket */
	}
}

/* By stasis, every process of the tree made (the network locked): the queues filled. */
int inet_tcp_ready(const struct restore_task *t, const FdEntry *e)
{
	const InetSocket *in = e->inet;
	char why[160] = "", self[80], peer[80];
	int err;

	if (!repaired(t->ctx, in))
		return 0;
	auto_close int sk = task_fd_copy(t->host_pid, e->fd);
	if (sk < 0 || (err = tcp_repair_fill(sk, in->tcp, why, sizeof(why)))) {
		err = sk < 0 ? sk : err;
		inet_addr_str(in->family, &in->src_addr, in->src_port, self, sizeof(self));
		inet_addr_str(in->family, &in->dst_addr, in->dst_port, peer, sizeof(peer));
		pr_err("restore pid %d fd %u: TCP connection %s -> %s: %s: %s", t->pid, e->fd, self, peer,
		       why[0] ? why : "cannot take its socket", strerror(-err));
	}
	return err;
}

/*
 * A connect that was under way made again, by stasis once the tree is made and the connections
 * that waited in its listeners' queues are back there: before, its SYN could take a full
 * queue's place that one of them had. Made without blocking (the file's flags put back).
 */
static int connect_again(const struct restore_task *t, const FdEntry *e)
{
	const InetSocket *in = e->inet;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	char self[80], peer[80];
	int flags = -1, err = 0;

	clear_timewait(t, e);
	inet_sockaddr(in->family, &in->dst_addr, in->dst_port, &dst, &dst_len);
	auto_close int sk = task_fd_copy(t->host_pid, e->fd);
	if (sk < 0 || (flags = fcntl(sk, F_GETFL)) < 0 || fcntl(sk, F_SETFL, flags | O_NONBLOCK))
		err = sk < 0 ? sk : -errno;
	else if (connect(sk, (struct sockaddr *)&dst, dst_len) && errno != EINPROGRESS)
		err = -errno;
	if (flags >= 0 && fcntl(sk, F_SETFL, flags) && !err)
		err = -errno;
	if (err) {
		inet_addr_str(in->family, &in->src_addr, in->src_port, self, sizeof(self));
		inet_addr_str(in->family, &in->dst_addr, in->dst_port, peer, sizeof(peer));
		pr_err("restore pid %d fd %u: cannot connect %s to %s again: %s", t->pid, e->fd, self,
		       peer, strerror(-err));
	}
	return err;
}

/* By stasis, the tree about to run (the network unlocked): repair mode off; connects made again. */
int inet_tcp_finish(const struct restore_task *t, const FdEntry *e)
{
	const InetSocket *in = e->inet;
	int err;

	if (in->state == INET_STATE__INET_CONNECTING)
		return connect_again(t, e);

	if (!repaired(t->ctx, in))
		return 0;
	int sk = task_fd_copy(t->host_pid, e->fd);
	if (sk < 0 || (err = tcp_repair_resume(sk, in->tcp)) || (err = inet_reuse_restore(sk, in)) ||
	    (err = sockopts_buffers_restore(sk, e)) ||
	    (in->has_shutdown && shutdown(sk, SHUT_RD) && (err = -errno))) {
		err = sk < 0 ? sk : err;
		pr_err("restore pid %d fd %u: cannot let its TCP connection go (repair mode off): %s",
		       t->pid, e->fd, strerror(-err));
		/* the peer's FIN is a segment from the peer's address, through the netns's firewall */
		if (err == -ETIMEDOUT && in->tcp->fin_received) {
			char self[80];
			inet_addr_str(in->family, &in->src_addr, in->src_port, self, sizeof(self));
			pr_err("restore pid %d fd %u: the socket did not take the peer's FIN that stasis "
			       "sent it from the peer's address: are packets to %s dropped (a firewall "
			       "rule)?",
			       t->pid, e->fd, self);
		}
	}
	if (sk >= 0)
		close(sk);
	return err;
}
