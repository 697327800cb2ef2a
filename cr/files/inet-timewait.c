/*
 * A TCP connection's address pair held by TIME_WAIT. A socket in repair mode binds past the
 * port's users, but its connect() still meets the established table: a TIME_WAIT socket of
 * the same four addresses and ports (an earlier restored copy of the connection, closed less
 * than a minute ago) makes it fail with EADDRNOTAVAIL unless that socket saw timestamps, and
 * tcp_tw_reuse does not help a socket that is bound already. So before the connection is
 * made again, a TIME_WAIT socket of exactly its addresses is found with sock_diag (in the
 * tree's network namespace: the new task's) and destroyed (SOCK_DESTROY, by its cookie: what
 * is destroyed is that TIME_WAIT socket and nothing that took its place).
 *
 * The same destroys a connection made again in repair mode to be one that ended (inet-tcp.c):
 * the kernel aborts it (closed, its addresses kept, its unread bytes still to read).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "inet.h"
#include "nlmsg.h"
#include "util.h"

#define TW_STATE 6 /* TCP_TIME_WAIT */

struct diag_msg {
	struct nlmsghdr nlh;
	struct inet_diag_req_v2 req;
};

/* The socket of in's addresses and ports in state (a TCP_* number) destroyed: 1, or 0 if
 * there is none in that state. */
static int destroy_in_state(const InetSocket *in, unsigned state)
{
	struct diag_msg msg = {
		.nlh = { .nlmsg_len = sizeof(msg), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST },
		.req = { .sdiag_family = in->family, .sdiag_protocol = IPPROTO_TCP,
			 .idiag_states = 1u << state,
			 .id = { .idiag_sport = htons(in->src_port), .idiag_dport = htons(in->dst_port),
				 .idiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE } } },
	};
	struct inet_diag_msg m;
	int err;

	memcpy(msg.req.id.idiag_src, in->src_addr.data, in->src_addr.len);
	memcpy(msg.req.id.idiag_dst, in->dst_addr.data, in->dst_addr.len);
	auto_close int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -errno;
	if ((err = nl_diag_one(nl, &msg, sizeof(msg), &m)) <= 0)
		return err == -ENOENT ? 0 : err; /* nothing of these addresses */
	if (m.idiag_state != state)
		return 0; /* another socket: whoever needs these addresses says what it thinks */
	msg.nlh.nlmsg_type = SOCK_DESTROY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	memcpy(msg.req.id.idiag_cookie, m.id.idiag_cookie, sizeof(m.id.idiag_cookie));
	err = nl_diag_one(nl, &msg, sizeof(msg), &m);
	return err < 0 ? err : 1;
}

int inet_timewait_clear(const InetSocket *in)
{
	return destroy_in_state(in, TW_STATE);
}

int inet_ended_abort(const InetSocket *in)
{
	int err = destroy_in_state(in, TCP_ESTABLISHED);

	return err < 0 ? err : err ? 0 : -ENOENT;
}
