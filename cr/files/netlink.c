/*
 * Netlink sockets (audit, uevents, route monitors ...): protocol, type, the port id and the
 * multicast groups they are bound to, the peer they are connected to, and their boolean
 * options (extended acks and strict checks, as iproute2 and systemd set them, ...). Multicast
 * messages waiting in one are not kept (the dump warns): they are the kernel's news, read again
 * from the source. A socket in the middle of a conversation (a reply to the program's own
 * request not read yet, or a dump request the kernel is still answering) cannot be given back:
 * the program would wait for the rest for ever. Such a conversation lasts a moment, so the dump
 * lets the tree go and seizes it again (netlink_tree_talking); one still going on then is
 * refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "util.h"

#define MAX_GROUP_WORDS 64 /* 2048 groups */

/* the boolean options of SOL_NETLINK, saved as 1 << option */
static const int flag_opts[] = { NETLINK_PKTINFO, NETLINK_BROADCAST_ERROR, NETLINK_NO_ENOBUFS,
				 NETLINK_LISTEN_ALL_NSID, NETLINK_CAP_ACK, NETLINK_EXT_ACK,
				 NETLINK_GET_STRICT_CHK };

static uint32_t flags_known(void)
{
	uint32_t all = 0;

	for (size_t i = 0; i < ARRAY_SIZE(flag_opts); i++)
		all |= 1u << flag_opts[i];
	return all;
}

/* A netlink socket of a network namespace with something going on (/proc/PID/net/netlink). */
struct nl_busy {
	unsigned long ino;
	bool queued;  /* bytes waiting to be read */
	bool dumping; /* the kernel is answering a dump request of it ("Dump": its callback runs) */
};
#define MAX_BUSY 256 /* (more are not looked at) */

/* The netlink sockets of pid's network namespace with bytes queued or a dump being answered. */
static int busy_sockets(pid_t pid, struct nl_busy *busy, size_t *n)
{
	char path[64], line[256];

	*n = 0;
	snprintf(path, sizeof(path), "/proc/%d/net/netlink", pid);
	FILE *f = fopen(path, "re");
	if (!f) {
		pr_perror("dump pid %d: cannot read %s", pid, path);
		return -errno;
	}
	while (fgets(line, sizeof(line), f) && *n < MAX_BUSY) {
		int rmem, dump;
		unsigned long ino;
		/* sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode (the header does not match) */
		if (sscanf(line, "%*x %*d %*u %*x %d %*d %d %*d %*u %lu", &rmem, &dump, &ino) == 3 &&
		    (rmem > 0 || dump))
			busy[(*n)++] = (struct nl_busy){ ino, rmem > 0, dump != 0 };
	}
	fclose(f);
	return 0;
}

static const struct nl_busy *find_busy(const struct nl_busy *busy, size_t n, unsigned long ino)
{
	for (size_t i = 0; i < n; i++)
		if (busy[i].ino == ino)
			return &busy[i];
	return NULL;
}

/* What netlink socket s is in the middle of (NULL: of nothing a restore loses). */
static const char *talking(int s, bool dumping)
{
	struct sockaddr_nl from = { 0 };
	char byte;
	struct iovec iov = { &byte, 1 };
	struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1 };

	if (dumping)
		return "a dump request the kernel is still answering";
	/* a message sent to this socket alone (no multicast group) answers a request the program
	 * made */
	if (recvmsg(s, &m, MSG_PEEK | MSG_DONTWAIT) >= 0 && !from.nl_groups)
		return "an unread reply to a request of its own";
	return NULL;
}

/* (fd_each_socket: a socket of the busy ones in the middle of a conversation, said: 1) */
struct busy_list {
	const struct nl_busy *busy;
	size_t n;
};

static int talking_socket(uint64_t ino, pid_t pid, int fd, void *arg)
{
	const struct busy_list *l = arg;
	const struct nl_busy *b = find_busy(l->busy, l->n, ino);
	auto_close int s = b ? task_fd_copy(pid, fd) : -1;
	const char *what = s >= 0 ? talking(s, b->dumping) : NULL;

	if (!what)
		return 0;
	pr_info("dump pid %d fd %d: netlink socket socket:[%llu] holds %s: the tree runs on for a "
		"moment", pid, fd, (unsigned long long)ino, what);
	return 1;
}

int netlink_tree_talking(const struct dump_task *tasks, size_t n)
{
	struct nl_busy busy[MAX_BUSY];
	struct busy_list list = { busy, 0 };
	ino_t netns = 0;

	for (size_t i = 0; i < n; i++) {
		pid_t pid = tasks[i].pid;
		char path[64];
		struct stat ns;

		snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
		if (stat(path, &ns))
			continue; /* (said by the dump itself) */
		if (ns.st_ino != netns) {
			netns = ns.st_ino;
			if (busy_sockets(pid, busy, &list.n))
				list.n = 0;
		}
		if (list.n && fd_each_socket(pid, talking_socket, &list) == 1)
			return 1;
	}
	return 0;
}

static int dump_netlink(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	int domain = 0, type = 0, proto = 0;
	socklen_t len = sizeof(int);
	struct sockaddr_nl self = { 0 }, peer = { 0 };
	uint32_t groups[MAX_GROUP_WORDS] = { 0 };

	if (!S_ISSOCK(p->st.st_mode))
		return 0;
	auto_close int s = task_fd_copy(t->pid, p->fd);
	if (s < 0 || getsockopt(s, SOL_SOCKET, SO_DOMAIN, &domain, &len) || domain != AF_NETLINK)
		return 0;
	len = sizeof(int);
	socklen_t slen = sizeof(self), plen = sizeof(peer), glen = sizeof(groups);
	if (getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &len) ||
	    getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &proto, &len) ||
	    getsockname(s, (struct sockaddr *)&self, &slen) ||
	    getsockopt(s, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &glen)) {
		pr_perror("dump pid %d fd %d: cannot read netlink socket %s", t->pid, p->fd, p->link);
		return -errno;
	}
	if (glen > sizeof(groups)) {
		pr_err("dump pid %d fd %d: netlink socket in more than %d multicast groups", t->pid, p->fd,
		       MAX_GROUP_WORDS * 32);
		return -ENOTSUP;
	}
	struct nl_busy busy[MAX_BUSY];
	size_t nr_busy = 0;
	int err = busy_sockets(t->pid, busy, &nr_busy);
	if (err)
		return err;
	const struct nl_busy *b = find_busy(busy, nr_busy, p->st.st_ino);
	const char *what = NULL;
	if (b && (what = talking(s, b->dumping))) {
		pr_err("dump pid %d fd %d: netlink socket %s holds %s, which a restore cannot give "
		       "back (a running tree is let go a few times to end such a conversation; this one "
		       "did not end)", t->pid, p->fd, p->link, what);
		return -ENOTSUP;
	}
	if (b && b->queued)
		pr_warn("dump pid %d fd %d: multicast messages waiting in netlink socket %s are not "
			"kept", t->pid, p->fd, p->link);
	e->kind = FD_KIND__FD_NETLINK;
	e->has_sock_type = e->has_sock_protocol = e->has_flags = e->has_nl_portid = true;
	e->sock_type = type;
	e->sock_protocol = proto;
	e->flags = p->flags;
	e->nl_portid = self.nl_pid;
	if (!(e->nl_groups = xzalloc((glen / sizeof(uint32_t) + 1) * sizeof(uint32_t))))
		return -ENOMEM;
	e->n_nl_groups = glen / sizeof(uint32_t);
	memcpy(e->nl_groups, groups, glen);
	for (size_t i = 0; i < ARRAY_SIZE(flag_opts); i++) {
		int on = 0;
		len = sizeof(on);
		if (!getsockopt(s, SOL_NETLINK, flag_opts[i], &on, &len) && on)
			e->nl_flags |= 1u << flag_opts[i];
	}
	e->has_nl_flags = e->nl_flags != 0;
	if (!getpeername(s, (struct sockaddr *)&peer, &plen) && (peer.nl_pid || peer.nl_groups)) {
		e->has_nl_peer_portid = e->has_nl_peer_groups = true;
		e->nl_peer_portid = peer.nl_pid;
		e->nl_peer_groups = peer.nl_groups;
	}
	return 1;
}

/* A new socket of the protocol, on its old port id if free, in its groups, to its peer. */
static int open_netlink(struct restore_task *t, const FdEntry *e)
{
	struct sockaddr_nl self = { .nl_family = AF_NETLINK, .nl_pid = e->nl_portid };
	int s = socket(AF_NETLINK, e->sock_type | SOCK_CLOEXEC | (e->flags & O_NONBLOCK ? SOCK_NONBLOCK : 0),
		       e->sock_protocol);

	if (s < 0)
		return -errno;
	if (e->nl_portid && bind(s, (struct sockaddr *)&self, sizeof(self))) {
		pr_warn("restore pid %d fd %u: netlink port id %u is taken (%m): the kernel picks another",
			t->pid, e->fd, e->nl_portid);
		self.nl_pid = 0;
		if (bind(s, (struct sockaddr *)&self, sizeof(self)))
			goto fail;
	}
	for (size_t i = 0; i < ARRAY_SIZE(flag_opts); i++) {
		int on = 1;
		if ((e->nl_flags & (1u << flag_opts[i])) &&
		    setsockopt(s, SOL_NETLINK, flag_opts[i], &on, sizeof(on)))
			goto fail;
	}
	for (size_t w = 0; w < e->n_nl_groups; w++)
		for (int b = 0; b < 32; b++) {
			int group = w * 32 + b + 1;
			if ((e->nl_groups[w] & (1u << b)) &&
			    setsockopt(s, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)))
				goto fail;
		}
	if (e->has_nl_peer_portid) {
		struct sockaddr_nl peer = { .nl_family = AF_NETLINK, .nl_pid = e->nl_peer_portid,
					    .nl_groups = e->nl_peer_groups };
		if (connect(s, (struct sockaddr *)&peer, sizeof(peer)))
			goto fail;
	}
	return s;
fail:;
	int err = -errno;
	close(s);
	return err;
}

static int validate_netlink(const struct restore_task *t, const FdEntry *e)
{
	if (e->nl_flags & ~flags_known()) {
		pr_err("image fds-%d.img: fd %u: netlink options %#x are not ones stasis saves", t->pid,
		       e->fd, e->nl_flags & ~flags_known());
		return -EINVAL;
	}
	return 0;
}

const struct fd_kind_ops fd_kind_netlink = {
	.name = "netlink socket",
	.dump = dump_netlink,
	.validate = validate_netlink,
	.open = open_netlink,
	.opened_by_process = fd_netns_maker,
	.kind = FD_KIND__FD_NETLINK,
};
