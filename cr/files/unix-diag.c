/*
 * The kernel's view of unix sockets (NETLINK_SOCK_DIAG): one socket's peer, shutdown state,
 * bound name (and the file bound to it) and queue lengths; the listener a connection not accepted yet waits on; and
 * socket names written for messages.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "nlmsg.h"
#include "unix.h"
#include "util.h"

int unix_diag_parse(const struct nlmsghdr *h, struct unix_info *ui)
{
	const struct unix_diag_msg *m = NLMSG_DATA(h);
	const struct nlattr *a = (const struct nlattr *)(m + 1);
	int left = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));

	memset(ui, 0, sizeof(*ui));
	ui->ino = m->udiag_ino;
	ui->state = m->udiag_state;
	while (left >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= left) {
		const void *data = a + 1;
		size_t len = a->nla_len - sizeof(*a);
		if (a->nla_type == UNIX_DIAG_PEER && len >= sizeof(uint32_t)) {
			ui->has_peer = true;
			ui->peer = *(const uint32_t *)data;
		} else if (a->nla_type == UNIX_DIAG_NAME) {
			ui->named = true;
			ui->name_len = len < sizeof(ui->name) ? len : sizeof(ui->name);
			memcpy(ui->name, data, ui->name_len);
		} else if (a->nla_type == UNIX_DIAG_RQLEN && len >= sizeof(struct unix_diag_rqlen)) {
			ui->rqueue = ((const struct unix_diag_rqlen *)data)->udiag_rqueue;
			ui->wqueue = ((const struct unix_diag_rqlen *)data)->udiag_wqueue;
		} else if (a->nla_type == UNIX_DIAG_VFS && len >= sizeof(struct unix_diag_vfs)) {
			ui->has_vfs = true;
			ui->vfs_ino = ((const struct unix_diag_vfs *)data)->udiag_vfs_ino;
			ui->vfs_dev = ((const struct unix_diag_vfs *)data)->udiag_vfs_dev;
		} else if (a->nla_type == UNIX_DIAG_SHUTDOWN && len >= 1) {
			ui->shutdown = *(const uint8_t *)data;
		} else if (a->nla_type == UNIX_DIAG_ICONS && len / sizeof(uint32_t) && !ui->icons) {
			ui->icons = xmalloc(len);
			if (!ui->icons)
				return -ENOMEM;
			memcpy(ui->icons, data, len);
			ui->n_icons = len / sizeof(uint32_t);
		}
		int step = NLA_ALIGN(a->nla_len);
		left -= step;
		a = (const struct nlattr *)((const char *)a + step);
	}
	return 0;
}

/* Asks the kernel about one unix socket: its peer, shutdown state, bound name, queues (with
 * no icons it allocates nothing: cleanups use it too). */
int sock_diag_unix(uint64_t ino, struct unix_info *ui, bool with_icons)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req req;
	} msg = {
		.nlh = { .nlmsg_len = sizeof(msg), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST },
		.req = { .sdiag_family = AF_UNIX, .udiag_states = -1, .udiag_ino = ino,
			 .udiag_show = UDIAG_SHOW_PEER | UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN |
				       UDIAG_SHOW_VFS | (with_icons ? UDIAG_SHOW_ICONS : 0),
			 .udiag_cookie = { -1U, -1U } },
	};
	char buf[UNIX_DIAG_BUF] __attribute__((aligned(NLMSG_ALIGNTO)));
	auto_close int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	memset(ui, 0, sizeof(*ui));
	if (nl < 0 || send(nl, &msg, sizeof(msg), 0) != sizeof(msg))
		return -errno;
	ssize_t n = recv(nl, buf, UNIX_DIAG_BUF, 0);
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	if (n < (ssize_t)sizeof(*h) || !NLMSG_OK(h, (size_t)n) || h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
		return -ENOENT;
	return unix_diag_parse(h, ui);
}

/* Looks for the listener in whose queue the client waits (every listener of this network
 * namespace, the tree's or not). 1: found, 0: none, <0: failed. */
struct listener_find {
	uint64_t client, *listener;
	int found;
};

static int on_listener(const struct nlmsghdr *h, void *arg)
{
	struct listener_find *f = arg;
	struct unix_info li;

	if (unix_diag_parse(h, &li))
		return -ENOMEM;
	for (size_t i = 0; i < li.n_icons && !f->found; i++) {
		if (li.icons[i] == f->client) {
			*f->listener = li.ino;
			f->found = 1;
		}
	}
	free(li.icons);
	return f->found;
}

int unix_find_listener(uint64_t client, uint64_t *listener)
{
	struct unix_diag_req req = { .sdiag_family = AF_UNIX, .udiag_states = 1 << TCP_LISTEN_STATE,
				     .udiag_show = UDIAG_SHOW_ICONS };
	struct listener_find f = { client, listener, 0 };
	int err = nl_sock_diag(&req, sizeof(req), on_listener, &f);

	return err ? err : f.found;
}

const char *unix_name(const char *name, size_t name_len, char *buf, size_t len)
{
	bool abstract = name_len && !name[0];

	snprintf(buf, len, "%s%.*s", abstract ? "@" : "", (int)(name_len - abstract), name + abstract);
	return buf;
}
