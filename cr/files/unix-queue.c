/*
 * Receive queues of unix sockets. Dump: every message is peeked on stasis's copy of the
 * socket (SO_PEEK_OFF + MSG_PEEK, nothing is taken; the program's peek offset and SO_PASSCRED
 * are given back), with its credentials and the files it carries: a peek hands stasis a
 * duplicate of each (the messages keep theirs), saved as files in flight (unix-inflight.c).
 * SO_PASSCRED is on while peeking: every message then comes with credentials, which tells a
 * packet of 0 bytes from the end of a closed seqpacket stream; they are kept if the receiver
 * asked for them. A stream glues its writes: a peek stops after the first write that carries
 * files, but where that write began cannot be seen (a peek of any byte before it gives its
 * files too): the files come back with the last byte of the run, so that a reader gets them
 * with the read that ends that write, as before, and never earlier. An error waiting to be
 * read (a peer closed with data unread: ECONNRESET) shows as POLLERR; a stream gives its data
 * before it and is peeked to its known length only (one peek more would take the error);
 * a packet or datagram socket would give it first, so one with data is refused. Urgent data
 * (MSG_OOB) is refused.
 * Credentials name their sender as the tree's PID namespace sees it (0: a process it does not
 * see, or one gone that was not the tree's).
 * Restore: the messages are sent again in order, from the socket's peer, or for a named
 * receiver from a socket bearing each datagram's sender name (the tree's own, else one bound
 * to that name for the moment, else an unnamed one, said), with their files and credentials
 * (the sender's host pid, which the receiver reads as its pid in the tree's namespace; one
 * not in the tree: stasis's, which it reads as 0 there). Datagrams to a named receiver are
 * sent by a child in the tree's root and network namespace: its name, and its senders' names,
 * are the tree's.
 */
#include <errno.h>
#include <sched.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "log.h"
#include "pid-ns.h"
#include "tree-path.h"
#include "unix.h"
#include "util.h"

#define SCM_MAX_FD 253                  /* files one message carries at most (the kernel's) */
#define QUEUE_MAX (16u << 20)           /* bytes of one socket's queue saved at most */
#define MSG_MAX (4u << 20)              /* bytes of one datagram or packet */
#define CTL_LEN (CMSG_SPACE(SCM_MAX_FD * sizeof(int)) + CMSG_SPACE(sizeof(struct ucred)) + 256)

struct peeked {
	size_t n;
	int fds[SCM_MAX_FD];
	size_t nr_fds;
	bool has_cred;
	struct ucred cred;
	struct sockaddr_un from;
	socklen_t from_len;
	bool truncated;
};

static void close_fds(struct peeked *pk)
{
	for (size_t i = 0; i < pk->nr_fds; i++)
		close(pk->fds[i]);
	pk->nr_fds = 0;
}

/* One peek at byte off of the queue, len bytes at most: 1 a message, 0 none left, <0 failed. */
static int peek_at(int s, int type, int off, char *buf, size_t len, struct peeked *pk)
{
	union {
		char buf[CTL_LEN];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_name = &pk->from, .msg_namelen = sizeof(pk->from), .msg_iov = &iov,
			     .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl) };
	int flags = MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC | (type == SOCK_STREAM ? 0 : MSG_TRUNC);

	memset(pk, 0, sizeof(*pk));
	if (setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)))
		return -errno;
	ssize_t n = recvmsg(s, &mh, flags);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
			pk->has_cred = true;
			memcpy(&pk->cred, CMSG_DATA(c), sizeof(pk->cred));
			continue;
		}
		/* SCM_RIGHTS; any other carries one fd (SCM_PIDFD), closed at once */
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (c->cmsg_type == SCM_RIGHTS && pk->nr_fds < SCM_MAX_FD)
				pk->fds[pk->nr_fds++] = fd;
			else
				close(fd);
		}
	}
	pk->n = n;
	pk->from_len = type == SOCK_STREAM ? 0 : mh.msg_namelen; /* a stream's sender is its peer */
	pk->truncated = (size_t)n > len || (mh.msg_flags & MSG_CTRUNC);
	if (!pk->has_cred) { /* no message, the end of a closed stream (SO_PASSCRED is on) */
		close_fds(pk);
		return 0;
	}
	return 1;
}

static const char *where(const struct unix_queue *q, char *buf, size_t len)
{
	if (q->pid)
		snprintf(buf, len, "dump pid %d fd %d: unix socket socket:[%llu]", q->pid, q->fd,
			 (unsigned long long)q->ino);
	else
		snprintf(buf, len, "dump: unix socket socket:[%llu] (carried in flight, file %d)",
			 (unsigned long long)q->ino, q->fd);
	return buf;
}

/* A message of len bytes of buf, with the peek's files (taken) and credentials. */
static int add_msg(struct unix_state *ud, struct unix_queue *q, const char *buf, size_t len,
		   struct peeked *pk, bool with_files, bool keep_cred)
{
	UnixMsg *m = xzalloc(sizeof(*m)), **more;

	if (!m || !(more = xreallocarray(q->msgs, q->n + 1, sizeof(*more)))) {
		free(m);
		return -ENOMEM;
	}
	q->msgs = more;
	q->msgs[q->n++] = m;
	unix_msg__init(m);
	if (!(m->data.data = xzalloc(len + 1)))
		return -ENOMEM;
	m->data.len = len;
	memcpy(m->data.data, buf, len);
	if (keep_cred && pk->has_cred && pk->cred.pid) {
		m->has_cred_pid = m->has_cred_uid = m->has_cred_gid = true;
		m->cred_pid = pid_ns_vpid(ud->ctx, pk->cred.pid); /* 0: none the tree sees */
		m->cred_uid = pk->cred.uid;
		m->cred_gid = pk->cred.gid;
	}
	if (pk->from_len > offsetof(struct sockaddr_un, sun_path)) {
		m->has_sender = true;
		m->sender.len = pk->from_len - offsetof(struct sockaddr_un, sun_path);
		if (!(m->sender.data = xzalloc(m->sender.len + 1)))
			return -ENOMEM;
		memcpy(m->sender.data, pk->from.sun_path, m->sender.len);
	}
	if (with_files && pk->nr_fds) {
		if (!(m->files = xzalloc(pk->nr_fds * sizeof(*m->files))))
			return -ENOMEM;
		for (size_t i = 0; i < pk->nr_fds; i++) {
			int id = unix_carried_note(ud, pk->fds[i], q->pid, q->fd);
			pk->fds[i] = -1;
			if (id < 0) {
				for (size_t k = i + 1; k < pk->nr_fds; k++)
					close(pk->fds[k]);
				pk->nr_fds = 0;
				return id;
			}
			m->files[m->n_files++] = id;
		}
		pk->nr_fds = 0;
	}
	return 0;
}

static int read_stream(struct unix_state *ud, int s, struct unix_queue *q, size_t bytes, char *buf,
		       bool keep_cred)
{
	struct peeked pk = { .nr_fds = 0 };
	int err = 0;

	for (size_t off = 0; off < bytes && !err;) {
		size_t want = bytes - off < MSG_MAX ? bytes - off : MSG_MAX;
		int r = peek_at(s, SOCK_STREAM, off, buf, want, &pk);
		if (r <= 0)
			return r;
		size_t last = pk.nr_fds && pk.n > 1 ? pk.n - 1 : 0; /* files with the last byte */
		if (last)
			err = add_msg(ud, q, buf, last, &pk, false, keep_cred);
		if (!err)
			err = add_msg(ud, q, buf + last, pk.n - last, &pk, true, keep_cred);
		off += pk.n;
	}
	close_fds(&pk);
	return err;
}

static int read_packets(struct unix_state *ud, int s, int type, struct unix_queue *q, char *buf,
			bool keep_cred)
{
	struct peeked pk;
	size_t off = 0;
	int r, err = 0;
	char what[160];

	while (!err && (r = peek_at(s, type, off, buf, MSG_MAX, &pk)) > 0) {
		if (pk.truncated || off + pk.n > QUEUE_MAX) {
			pr_err("%s: %zu bytes wait in its queue, more than the %u stasis keeps",
			       where(q, what, sizeof(what)), off + pk.n, QUEUE_MAX);
			close_fds(&pk);
			return -EFBIG;
		}
		err = add_msg(ud, q, buf, pk.n, &pk, true, keep_cred);
		off += pk.n;
	}
	close_fds(&pk); /* those of a message that could not be kept */
	return err ? err : r;
}

/* Refusals: waiting states a peek would change or cannot see. */
static int check_readable(int s, int type, const struct unix_info *ui, struct unix_queue *q)
{
	struct pollfd pfd = { .fd = s, .events = POLLIN };
	char what[160], urgent;

	if (poll(&pfd, 1, 0) < 0)
		return -errno;
	q->reset = pfd.revents & POLLERR;
	if (q->reset && (type == SOCK_DGRAM || (type == SOCK_SEQPACKET && ui->rqueue))) {
		pr_err("%s: an error (ECONNRESET) waits to be read%s: reading its queue would take it "
		       "(not supported)",
		       where(q, what, sizeof(what)), type == SOCK_DGRAM ? "" : " before its data");
		return -ENOTSUP;
	}
	if (type == SOCK_STREAM && recv(s, &urgent, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT) == 1) {
		pr_err("%s: urgent data (MSG_OOB) waits to be read (not supported)",
		       where(q, what, sizeof(what)));
		return -ENOTSUP;
	}
	if (ui->rqueue > QUEUE_MAX) {
		pr_err("%s: %u bytes wait in its queue, more than the %u stasis keeps",
		       where(q, what, sizeof(what)), ui->rqueue, QUEUE_MAX);
		return -EFBIG;
	}
	return 0;
}

int unix_queue_read(struct unix_state *ud, int s, const struct unix_info *ui, struct unix_queue *q)
{
	int type = 0, passcred = 0, passpidfd = 0, on = 1, own_off = -1, err;
	socklen_t l1 = sizeof(type), l2 = sizeof(passcred), l3 = sizeof(own_off), l4 = sizeof(passpidfd);
	char what[160];

	q->read = true;
	if (getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &l1) ||
	    getsockopt(s, SOL_SOCKET, SO_PASSCRED, &passcred, &l2) ||
	    getsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &own_off, &l3))
		return -errno;
	if (type != SOCK_DGRAM && !ui->has_peer)
		return 0; /* never connected: nothing can wait in it */
	/* (a receiver of pidfds gets its senders' too: SO_PASSPIDFD, Linux >= 6.5) */
	if (getsockopt(s, SOL_SOCKET, SO_PASSPIDFD, &passpidfd, &l4))
		passpidfd = 0;
	if ((err = check_readable(s, type, ui, q)))
		return err;
	if (type == SOCK_SEQPACKET && q->reset)
		return 0; /* empty (checked): the error is all there is */
	if (!ud->peek_buf && !(ud->peek_buf = xmalloc(MSG_MAX)))
		return -ENOMEM;
	char *buf = ud->peek_buf;
	if (setsockopt(s, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)))
		return -errno;
	err = type == SOCK_STREAM ? read_stream(ud, s, q, ui->rqueue, buf, passcred || passpidfd)
				  : read_packets(ud, s, type, q, buf, passcred || passpidfd);
	setsockopt(s, SOL_SOCKET, SO_PASSCRED, &passcred, sizeof(passcred));
	setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &own_off, sizeof(own_off));
	if (err && err != -ENOMEM && err != -EFBIG && err != -ENOTSUP)
		pr_err("%s: cannot read its queue: %s", where(q, what, sizeof(what)), strerror(-err));
	return err;
}

struct unix_queue *unix_queue_of(struct unix_state *ud, uint64_t ino)
{
	size_t i;

	return ino_map_get(&ud->queue_by_ino, ino, &i) ? &ud->queues[i] : NULL;
}

/* ---- restore ---- */

bool unix_msgs_valid(UnixMsg *const *msgs, size_t n, size_t n_carried, int type)
{
	size_t total = 0;

	for (size_t i = 0; i < n; i++) {
		const UnixMsg *m = msgs[i];
		total += m->data.len;
		if (m->data.len > (type == SOCK_STREAM ? QUEUE_MAX : MSG_MAX) || total > QUEUE_MAX ||
		    m->n_files > SCM_MAX_FD || m->sender.len > UNIX_NAME_MAX ||
		    (m->has_sender && !m->sender.len) ||
		    m->has_cred_pid != m->has_cred_uid || m->has_cred_pid != m->has_cred_gid ||
		    (m->has_cred_pid && m->cred_pid > (1u << 22)))
			return false;
		for (size_t k = 0; k < m->n_files; k++)
			if (m->files[k] >= n_carried)
				return false;
	}
	return true;
}

/* The host's pid to send a message's credentials with: its sender's, else stasis's own;
 * -ENOMEM. */
static pid_t sender_pid(const struct unix_state *st, uint32_t vpid)
{
	pid_t host = vpid ? pid_ns_host_of(st->ctx, st->rt, vpid) : 0;

	if (host)
		return host;
	if (vpid)
		pr_warn("restore: a message sent by pid %u, which is not in the tree, comes with stasis's "
			"pid (the kernel gives only a live process's)", vpid);
	return getpid();
}

static int send_msg(const struct unix_state *st, int from, const struct sockaddr_un *to,
		    socklen_t to_len, const UnixMsg *m)
{
	union {
		char buf[CTL_LEN];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { m->data.data, m->data.len };
	struct msghdr mh = { .msg_name = (void *)to, .msg_namelen = to ? to_len : 0, .msg_iov = &iov,
			     .msg_iovlen = 1, .msg_control = ctl.buf };
	struct ucred cred = { m->has_cred_pid ? sender_pid(st, m->cred_pid) : 0, m->cred_uid, m->cred_gid };
	struct cmsghdr *c;
	size_t sent = 0;

	if (cred.pid < 0)
		return cred.pid;

	memset(&ctl, 0, sizeof(ctl));
	mh.msg_controllen = (m->n_files ? CMSG_SPACE(m->n_files * sizeof(int)) : 0) +
			    (m->has_cred_pid ? CMSG_SPACE(sizeof(cred)) : 0);
	c = mh.msg_controllen ? CMSG_FIRSTHDR(&mh) : NULL;
	if (m->n_files) {
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(m->n_files * sizeof(int));
		for (size_t k = 0; k < m->n_files; k++)
			memcpy(CMSG_DATA(c) + k * sizeof(int), &st->carried[m->files[k]].fd, sizeof(int));
		c = CMSG_NXTHDR(&mh, c);
	}
	if (m->has_cred_pid) {
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(sizeof(cred));
	}
	for (;;) {
		if (mh.msg_controllen && m->has_cred_pid)
			memcpy(CMSG_DATA(c), &cred, sizeof(cred));
		iov = (struct iovec){ (char *)m->data.data + sent, m->data.len - sent };
		ssize_t n = sendmsg(from, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == ESRCH && m->has_cred_pid && cred.pid != getpid()) {
			pr_warn("restore: a message sent by pid %u, which is gone, comes with stasis's pid "
				"(the kernel gives only a live process's)", m->cred_pid);
			cred.pid = getpid();
			continue;
		}
		if (n < 0)
			return -errno;
		sent += n;
		if (sent >= m->data.len)
			return 0;
		mh.msg_control = NULL; /* a stream sent in parts: files and credentials go once */
		mh.msg_controllen = 0;
	}
}

/*
 * What a sender has queued counts against its send buffer: a queue its peer stopped reading
 * can hold more than the buffer took in one send (the last write that filled it went whole).
 * The sender's buffer is made room for the queue while it is sent again (sock_buf_room), then
 * has its own size and locks (SO_BUF_LOCK, which setting a size sets) back: the queue above it
 * again, as it was.
 */
struct sndbuf_saved {
	int size, locks; /* size 0: left as it was */
};

static int sndbuf_grow(int from, size_t bytes, struct sndbuf_saved *had)
{
	socklen_t len = sizeof(int), len2 = sizeof(int);
	int err;

	if (getsockopt(from, SOL_SOCKET, SO_SNDBUF, &had->size, &len) ||
	    getsockopt(from, SOL_SOCKET, SO_BUF_LOCK, &had->locks, &len2))
		err = -errno;
	else
		err = sock_buf_room(from, SO_SNDBUF, SO_SNDBUFFORCE, bytes + (64 << 10));
	if (err)
		had->size = 0;
	return err;
}

static int sndbuf_put_back(int from, const struct sndbuf_saved *had)
{
	int half = had->size / 2; /* (the kernel doubles what it is given) */

	if (!had->size)
		return 0;
	if ((setsockopt(from, SOL_SOCKET, SO_SNDBUFFORCE, &half, sizeof(half)) &&
	     (errno != EPERM || setsockopt(from, SOL_SOCKET, SO_SNDBUF, &half, sizeof(half)))) ||
	    setsockopt(from, SOL_SOCKET, SO_BUF_LOCK, &had->locks, sizeof(had->locks))) {
		pr_perror("restore: cannot give the sender its send buffer of %d bytes back", had->size);
		return -errno;
	}
	return 0;
}

int unix_queue_send(const struct unix_state *st, int from, const struct sockaddr_un *to,
		    socklen_t to_len, UnixMsg *const *msgs, size_t n)
{
	struct sndbuf_saved had = { 0, 0 };
	size_t bytes = 0;
	int err;

	for (size_t i = 0; i < n; i++)
		bytes += msgs[i]->data.len;
	if (bytes && (err = sndbuf_grow(from, bytes, &had)))
		pr_warn("restore: cannot make room for %zu queued bytes in the sender's buffer: %s", bytes,
			strerror(-err));
	err = 0;
	for (size_t i = 0; i < n && !err; i++) {
		unsigned logged = log_errors();
		if ((err = send_msg(st, from, to, to_len, msgs[i])))
			log_unnamed(logged, err, "restore: cannot queue message %zu of %zu (%zu bytes, %zu "
				    "files) again", i + 1, n, msgs[i]->data.len, msgs[i]->n_files);
	}
	int put_back = sndbuf_put_back(from, &had);
	return err ? err : put_back;
}

/* A socket bearing the sender's name: the tree's own, else one bound to it for now (in a scratch
 * root: its directories made there too), else none (-1); -ENOMEM. */
static int sender_socket(const struct unix_state *st, int type, const UnixMsg *m, bool in_scratch,
			 int *temp, char **made_file)
{
	struct sockaddr_un sa;
	socklen_t len;
	char name[UNIX_NAME_MAX + 2];

	*temp = -1;
	if (!m->has_sender || unix_addr(m->sender.data, m->sender.len, &sa, &len))
		return -1;
	int held = unix_held_by_name(st, type, &sa, len);
	if (held >= 0)
		return held;
	*temp = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (*temp >= 0 && sa.sun_path[0] && !(*made_file = xstrdup(sa.sun_path)))
		return -ENOMEM; /* (the file to remove is noted before it is made) */
	if (*temp >= 0 && (!in_scratch || !sa.sun_path[0] || !unix_scratch_dirs(sa.sun_path)) &&
	    bind(*temp, (struct sockaddr *)&sa, len) == 0)
		return *temp;
	free(*made_file); /* not ours */
	*made_file = NULL;
	pr_warn("restore: a datagram from %s comes back from an unnamed socket (that name is taken)",
		unix_name((const char *)m->sender.data, m->sender.len, name, sizeof(name)));
	return -1;
}

struct named_receiver {
	const struct unix_state *st;
	const FdEntry *e;
	int net_ns; /* the tree's network namespace: abstract names are its */
	bool in_scratch; /* the child's root is the scratch root the receiver was bound in */
};

/* In tree_run's child (the tree's root; in the receiver's directory), or in the receiver's
 * scratch root: each datagram sent. */
static int send_named_here(void *arg)
{
	const struct named_receiver *r = arg;
	const struct unix_state *st = r->st;
	const FdEntry *e = r->e;
	struct sockaddr_un to;
	socklen_t to_len;
	int err = setns(r->net_ns, CLONE_NEWNET) ? -errno : unix_saved_addr(e, &to, &to_len);

	if (err)
		return err;
	auto_close int unnamed = socket(AF_UNIX, e->sock_type | SOCK_CLOEXEC, 0);
	if (unnamed < 0)
		return -errno;
	for (size_t i = 0; i < e->n_sock_messages && !err; i++) {
		char *made_file = NULL;
		int temp, from = sender_socket(st, e->sock_type, e->sock_messages[i], r->in_scratch, &temp,
					     &made_file);
		err = from == -ENOMEM ? from
				      : unix_queue_send(st, from >= 0 ? from : unnamed, &to, to_len,
							&e->sock_messages[i], 1);
		if (temp >= 0)
			close(temp);
		if (made_file)
			unlink(made_file);
		free(made_file);
	}
	return err;
}

int unix_queue_send_named(const struct unix_state *st, const FdEntry *e, int net_ns)
{
	const char *name = (const char *)e->sock_name.data, *scratch = unix_held_scratch(st, e->sock_ino);
	struct named_receiver r = { st, e, net_ns, scratch != NULL };

	return unix_run_at(st->ctx, scratch, name[0] == '/' ? NULL : e->sock_dir, send_named_here, &r);
}
