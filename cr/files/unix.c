/*
 * Unix socket pairs: two connected unix sockets both held inside the tree (socketpair(), or a
 * connection whose both ends stayed in the tree). The peer and shutdown state come from
 * NETLINK_SOCK_DIAG; what waits in each receive queue is peeked (SO_PEEK_OFF + MSG_PEEK, on a
 * copy of the fd taken with pidfd_getfd) without being consumed. On restore stasis makes a
 * new pair before the tree, sends each end's queued data from the other end, applies the
 * shutdowns, and every process inherits its end. Any other unix socket (bound, listening,
 * peer outside the tree) fails the dump, naming it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <stddef.h>
#include <sys/un.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "options.h"
#include "util.h"

#define MAX_QUEUED (4u << 20)

struct unix_info {
	uint64_t peer;
	uint32_t shutdown;
	bool named;
	uint32_t state;
	char name[sizeof(((struct sockaddr_un *)0)->sun_path)];
	size_t name_len;
	uint32_t rqueue, wqueue; /* listening: connections waiting, backlog */
};

/* Asks the kernel about one unix socket: its peer, shutdown state, bound name. */
static int sock_diag_unix(uint64_t ino, struct unix_info *ui)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req req;
	} msg = {
		.nlh = { .nlmsg_len = sizeof(msg), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST },
		.req = { .sdiag_family = AF_UNIX, .udiag_states = -1, .udiag_ino = ino,
			 .udiag_show = UDIAG_SHOW_PEER | UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN,
			 .udiag_cookie = { -1U, -1U } },
	};
	char buf[8192];
	auto_close int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	memset(ui, 0, sizeof(*ui));
	if (nl < 0 || send(nl, &msg, sizeof(msg), 0) != sizeof(msg))
		return -errno;
	ssize_t n = recv(nl, buf, sizeof(buf), 0);
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	if (n < (ssize_t)sizeof(*h) || !NLMSG_OK(h, (size_t)n) || h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
		return -ENOENT;
	struct unix_diag_msg *m = NLMSG_DATA(h);
	ui->state = m->udiag_state;
	struct nlattr *a = (struct nlattr *)(m + 1);
	int left = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	while (left >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= left) {
		void *data = a + 1;
		if (a->nla_type == UNIX_DIAG_PEER)
			ui->peer = *(uint32_t *)data;
		else if (a->nla_type == UNIX_DIAG_NAME) {
			ui->named = true;
			ui->name_len = a->nla_len - sizeof(*a) < sizeof(ui->name) ? a->nla_len - sizeof(*a)
										: sizeof(ui->name);
			memcpy(ui->name, data, ui->name_len);
		} else if (a->nla_type == UNIX_DIAG_RQLEN) {
			ui->rqueue = ((struct unix_diag_rqlen *)data)->udiag_rqueue;
			ui->wqueue = ((struct unix_diag_rqlen *)data)->udiag_wqueue;
		}
		else if (a->nla_type == UNIX_DIAG_SHUTDOWN)
			ui->shutdown = *(uint8_t *)data;
		int step = NLA_ALIGN(a->nla_len);
		left -= step;
		a = (struct nlattr *)((char *)a + step);
	}
	return 0;
}

/* Everything waiting in the receive queue of the socket, without taking it. */
static int peek_queue(pid_t pid, int fd, int type, UnixEnd *end)
{
	auto_close int pidfd = syscall(SYS_pidfd_open, pid, 0);
	auto_close int s = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	auto_free char *buf = malloc(MAX_QUEUED);
	int off = 0, none = -1;
	size_t total = 0;

	if (s < 0 || !buf || setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)))
		return -errno;
	for (;;) {
		ssize_t n = recv(s, buf, MAX_QUEUED - total, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0 || (n == 0 && type == SOCK_STREAM))
			break; /* stream: 0 is end-of-file, nothing queued */
		total += n;
		end->queued = realloc(end->queued, (end->n_queued + 1) * sizeof(*end->queued));
		end->queued[end->n_queued].data = xzalloc(n + 1);
		memcpy(end->queued[end->n_queued].data, buf, n);
		end->queued[end->n_queued++].len = n;
		if (total >= MAX_QUEUED)
			break;
	}
	setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &none, sizeof(none));
	return 0;
}

struct unix_dump {
	SocketTable tab;
	uint64_t *seen; /* ends met in the tree (their queues are peeked then) */
	size_t nr_seen;
};

static bool seen_end(struct unix_dump *ud, uint64_t ino)
{
	for (size_t i = 0; i < ud->nr_seen; i++)
		if (ud->seen[i] == ino)
			return true;
	return false;
}

struct unix_dump *unix_dump_new(void)
{
	struct unix_dump *ud = xzalloc(sizeof(*ud));
	socket_table__init(&ud->tab);
	return ud;
}

#define TCP_LISTEN_STATE 10

/* A socket's SO_TYPE and SO_PASSCRED, read on a copy of the task's fd. */
static int sock_options(pid_t pid, int fd, int *type, int *passcred)
{
	auto_close int pidfd = syscall(SYS_pidfd_open, pid, 0);
	auto_close int s = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	socklen_t len = sizeof(int);

	if (s < 0 || getsockopt(s, SOL_SOCKET, SO_TYPE, type, &len))
		return -errno;
	len = sizeof(int);
	if (getsockopt(s, SOL_SOCKET, SO_PASSCRED, passcred, &len))
		return -errno;
	return 0;
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
	int type, passcred;
	bool listening = ui->state == TCP_LISTEN_STATE;
	struct stat st;

	if (sock_options(t->pid, p->fd, &type, &passcred)) {
		pr_perror("dump pid %d fd %d: cannot look at its socket", t->pid, p->fd);
		return -errno;
	}
	if ((listening && ui->rqueue) || (!listening && type == SOCK_STREAM)) {
		pr_err("dump pid %d fd %d: unix socket %.*s %s (not supported yet)", t->pid, p->fd,
		       (int)ui->name_len, ui->name[0] ? ui->name : ui->name + 1,
		       listening ? "has connections waiting to be accepted" : "is bound but not listening");
		return -ENOTSUP;
	}
	if (!listening) {
		UnixEnd probe = UNIX_END__INIT;
		int err = peek_queue(t->pid, p->fd, type, &probe);
		if (err || probe.n_queued) {
			pr_err("dump pid %d fd %d: bound datagram socket %.*s has %zu datagrams waiting "
			       "(not supported yet)",
			       t->pid, p->fd, (int)ui->name_len, ui->name[0] ? ui->name : ui->name + 1,
			       probe.n_queued);
			return -ENOTSUP;
		}
	}
	set_named_socket(e, p, type, passcred, ui);
	if (listening) {
		e->has_sock_backlog = true;
		e->sock_backlog = ui->wqueue;
	}
	if (ui->name[0] && stat(ui->name, &st) == 0 && S_ISSOCK(st.st_mode)) {
		e->has_sock_file_mode = true;
		e->sock_file_mode = st.st_mode & 07777;
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

	if (sock_options(t->pid, p->fd, &type, &passcred)) {
		pr_perror("dump pid %d fd %d: cannot look at its socket", t->pid, p->fd);
		return -errno;
	}
	if (!opts.ext_unix_sk || type != SOCK_DGRAM) {
		pr_err("dump pid %d fd %d: unix socket connected to %.*s outside the tree (%s)", t->pid,
		       p->fd, (int)peer->name_len, peer->name[0] ? peer->name : peer->name + 1,
		       type == SOCK_DGRAM ? "pass --ext-unix-sk" : "not supported for stream sockets");
		return -ENOTSUP;
	}
	e->kind = FD_KIND__FD_UNIX_EXTERNAL;
	set_named_socket(e, p, type, passcred, peer);
	return 1;
}

static int dump_unix(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	struct unix_dump *ud = t->sockets;
	struct unix_info ui, pi = { 0 };
	int type;
	socklen_t len = sizeof(type);
	char path[64];
	auto_close int pidfd = -1, s = -1;

	if (!S_ISSOCK(p->st.st_mode))
		return 0;
	uint64_t ino = p->st.st_ino;
	if (sock_diag_unix(ino, &ui)) {
		pr_err("dump pid %d fd %d: %s is not a unix socket (not supported yet)", t->pid, p->fd,
		       p->link);
		return -ENOTSUP;
	}
	if (ui.peer && !ui.named && sock_diag_unix(ui.peer, &pi) == 0 && pi.named && pi.peer != ino) {
		/* connected to a named socket that is not connected back: a server outside */
		return dump_external(t, p, e, &pi);
	}
	if (!ui.peer || ui.named || sock_diag_unix(ui.peer, &pi) || pi.named || pi.peer != ino) {
		pr_err("dump pid %d fd %d: %s is a unix socket %s (not supported yet)",
		       t->pid, p->fd, p->link,
		       ui.named || pi.named ? "bound to a name" : ui.peer ? "with a peer outside the tree"
								   : "without a peer");
		return -ENOTSUP;
	}
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", t->pid, p->fd);
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
		int err = peek_queue(t->pid, p->fd, pair->type, pair->b);
		if (err)
			pr_perror("dump pid %d fd %d: cannot read its socket's queue", t->pid, p->fd);
		return err ? err : 1;
	}
	pidfd = syscall(SYS_pidfd_open, t->pid, 0);
	s = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, p->fd, 0);
	if (s < 0 || getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &len)) {
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
	int err = peek_queue(t->pid, p->fd, type, pair->a);
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

int unix_dump_all(struct unix_dump *ud, int dirfd)
{
	for (size_t i = 0; i < ud->tab.n_pairs; i++) {
		if (!seen_end(ud, ud->tab.pairs[i]->b->ino)) {
			pr_err("dump: unix socket %llu has its peer %llu outside the tree (not supported "
			       "yet)",
			       (unsigned long long)ud->tab.pairs[i]->a->ino,
			       (unsigned long long)ud->tab.pairs[i]->b->ino);
			return -ENOTSUP;
		}
	}
	return ud->tab.n_pairs ? image_write(dirfd, IMG_SOCKETS, 0, &ud->tab.base) : 0;
}

/* ---- restore ---- */

struct restored_pair {
	uint64_t id, ino[2];
	int end[2]; /* stasis' own, inherited by every new process */
};

static struct restored_pair *pairs;
static size_t nr_pairs;

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

static int apply_shutdown(int s, uint32_t bits)
{
	if ((bits & 2) && shutdown(s, SHUT_WR))
		return -errno;
	if ((bits & 1) && shutdown(s, SHUT_RD))
		return -errno;
	return 0;
}

int unix_restore_prepare(int dirfd, bool needed)
{
	SocketTable *tab = NULL;
	int err;

	if (!needed)
		return 0;
	if ((err = image_read(dirfd, IMG_SOCKETS, 0, (ProtobufCMessage **)&tab)))
		return err;
	pairs = xzalloc((tab->n_pairs + 1) * sizeof(*pairs));
	for (size_t i = 0; i < tab->n_pairs; i++) {
		UnixPair *u = tab->pairs[i];
		struct restored_pair *rp = &pairs[nr_pairs];
		if (u->type != SOCK_STREAM && u->type != SOCK_DGRAM && u->type != SOCK_SEQPACKET) {
			pr_err("image sockets.img: pair %zu has type %u", i, u->type);
			return -EINVAL;
		}
		if (socketpair(AF_UNIX, u->type | SOCK_CLOEXEC, 0, rp->end)) {
			pr_perror("restore: socketpair");
			return -errno;
		}
		nr_pairs++;
		rp->id = u->id;
		rp->ino[0] = u->a->ino;
		rp->ino[1] = u->b->ino;
		if ((err = refill(rp->end[1], u->a, u->id)) || (err = refill(rp->end[0], u->b, u->id)) ||
		    (err = apply_shutdown(rp->end[0], u->a->shutdown)) ||
		    (err = apply_shutdown(rp->end[1], u->b->shutdown)))
			return err;
	}
	image_free(&tab->base);
	return 0;
}

bool unix_pair_known(uint64_t id, uint64_t ino)
{
	for (size_t i = 0; i < nr_pairs; i++)
		if (pairs[i].id == id && (pairs[i].ino[0] == ino || pairs[i].ino[1] == ino))
			return true;
	return false;
}

void unix_close_all(void)
{
	for (size_t i = 0; i < nr_pairs; i++) {
		close(pairs[i].end[0]);
		close(pairs[i].end[1]);
	}
	nr_pairs = 0;
}

static int open_unix(struct restore_task *t, const FdEntry *e)
{
	(void)t;
	for (size_t i = 0; i < nr_pairs; i++) {
		if (pairs[i].id != e->pair_id)
			continue;
		int end = pairs[i].end[pairs[i].ino[0] == e->sock_ino ? 0 : 1];
		if (fcntl(end, F_SETFL, e->flags & O_NONBLOCK))
			return -errno;
		int fd = fcntl(end, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? -errno : fd;
	}
	return -ENOENT;
}

/* Claims the unix sockets bound to a name without a peer. */
static int dump_unix_bound(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	struct unix_info ui;

	if (!S_ISSOCK(p->st.st_mode) || sock_diag_unix(p->st.st_ino, &ui) || !ui.named || ui.peer)
		return 0;
	return dump_bound(t, p, e, &ui);
}

/* A new socket of the saved type, flags and SO_PASSCRED, and the saved name as an address. */
static int named_socket(const FdEntry *e, struct sockaddr_un *sa, socklen_t *len)
{
	int passcred = e->sock_passcred;

	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if (e->sock_name.len == 0 || e->sock_name.len > sizeof(sa->sun_path))
		return -EINVAL;
	memcpy(sa->sun_path, e->sock_name.data, e->sock_name.len);
	*len = offsetof(struct sockaddr_un, sun_path) + e->sock_name.len;
	int s = socket(AF_UNIX, e->sock_type | SOCK_CLOEXEC | (e->flags & O_NONBLOCK ? SOCK_NONBLOCK : 0), 0);
	if (s < 0)
		return -errno;
	if (setsockopt(s, SOL_SOCKET, SO_PASSCRED, &passcred, sizeof(passcred))) {
		int err = -errno;
		close(s);
		return err;
	}
	return s;
}

/* A bound socket again: a stale socket file of the old one is replaced. */
static int open_bound(struct restore_task *t, const FdEntry *e)
{
	struct sockaddr_un sa;
	socklen_t len;
	struct stat st;
	int s = named_socket(e, &sa, &len);
	(void)t;

	if (s < 0)
		return s;
	if (sa.sun_path[0] && stat(sa.sun_path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(sa.sun_path);
	if (bind(s, (struct sockaddr *)&sa, len) ||
	    (e->has_sock_file_mode && chmod(sa.sun_path, e->sock_file_mode)) ||
	    (e->has_sock_backlog && listen(s, e->sock_backlog))) {
		int err = -errno;
		close(s);
		return err;
	}
	return s;
}

/* Connected again to the outside peer's name. */
static int open_external(struct restore_task *t, const FdEntry *e)
{
	struct sockaddr_un sa;
	socklen_t len;
	int s = named_socket(e, &sa, &len);
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
