/*
 * The kernel's view of unix sockets (NETLINK_SOCK_DIAG): one socket's peer, shutdown state,
 * bound name (and the file bound to it) and queue lengths; the listener a connection not accepted yet waits on; and
 * socket names written for messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

#include "log.h"
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
static int sock_diag_unix(uint64_t ino, struct unix_info *ui, bool with_icons)
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
	if (n < (ssize_t)sizeof(*h) || !NLMSG_OK(h, (size_t)n))
		return -EIO;
	if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct nlmsgerr)))
		return ((const struct nlmsgerr *)NLMSG_DATA(h))->error ?: -EIO;
	return h->nlmsg_type == SOCK_DIAG_BY_FAMILY ? unix_diag_parse(h, ui) : -EIO;
}

static int on_socket(const struct nlmsghdr *h, void *arg)
{
	struct unix_snapshot *snap = arg;

	if (xgrow(&snap->socks, &snap->cap, snap->n, sizeof(*snap->socks)))
		return -ENOMEM;
	int err = unix_diag_parse(h, &snap->socks[snap->n]);
	if (!err)
		snap->nr_waiting += snap->socks[snap->n++].n_icons;
	return err;
}

static int by_ino(const void *a, const void *b)
{
	uint64_t x = ((const struct unix_info *)a)->ino, y = ((const struct unix_info *)b)->ino;
	return (x > y) - (x < y);
}

static int by_client(const void *a, const void *b)
{
	uint64_t x = ((const struct unix_waiting *)a)->client, y = ((const struct unix_waiting *)b)->client;
	return (x > y) - (x < y);
}

void unix_snapshot_free(struct unix_snapshot *snap)
{
	for (size_t i = 0; i < snap->n; i++)
		free(snap->socks[i].icons);
	free(snap->socks);
	free(snap->waiting);
	*snap = (struct unix_snapshot){ 0 };
}

int unix_snapshot_of_netns(struct unix_snapshot *snap, uint64_t netns, int nsfd)
{
	struct unix_diag_req req = { .sdiag_family = AF_UNIX, .udiag_states = -1,
				     .udiag_show = UDIAG_SHOW_PEER | UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN |
						   UDIAG_SHOW_VFS | UDIAG_SHOW_ICONS };
	int err;

	unix_snapshot_free(snap);
	if ((err = nl_sock_diag_in(nsfd, &req, sizeof(req), on_socket, snap)))
		goto fail;
	err = -ENOMEM;
	if (snap->nr_waiting && !(snap->waiting = xreallocarray(NULL, snap->nr_waiting, sizeof(*snap->waiting))))
		goto fail;
	snap->nr_waiting = 0;
	for (size_t i = 0; i < snap->n; i++)
		for (size_t k = 0; k < snap->socks[i].n_icons; k++)
			if (snap->socks[i].icons[k]) /* (0: a client closed since) */
				snap->waiting[snap->nr_waiting++] =
					(struct unix_waiting){ snap->socks[i].icons[k], snap->socks[i].ino };
	if (snap->n)
		qsort(snap->socks, snap->n, sizeof(*snap->socks), by_ino);
	if (snap->nr_waiting)
		qsort(snap->waiting, snap->nr_waiting, sizeof(*snap->waiting), by_client);
	snap->netns = netns;
	return 0;
fail:
	unix_snapshot_free(snap);
	return err;
}

/* The snapshot of the calling thread's network namespace, taken if need be. */
static int snapshot_here(struct unix_snapshot *snap)
{
	uint64_t netns;
	int err = nl_netns_ino(&netns);

	return err ? err : snap->netns == netns ? 0 : unix_snapshot_of_netns(snap, netns, -1);
}

/* One more listing, of network namespace netns (nsfd: a file of it), after the thread's. */
static int list_netns(struct unix_state *ud, uint64_t netns, int nsfd, bool foreign)
{
	struct unix_snapshot *more = xreallocarray(ud->nested, ud->nr_nested + 1, sizeof(*more));

	if (!more)
		return -ENOMEM;
	ud->nested = more;
	more[ud->nr_nested] = (struct unix_snapshot){ 0 };
	int err = unix_snapshot_of_netns(&more[ud->nr_nested], netns, nsfd);
	if (err)
		return err;
	more[ud->nr_nested++].foreign = foreign; /* (after: unix_snapshot_of_netns starts from nothing) */
	return 0;
}

int unix_diag_add_netns(struct run_ctx *ctx, pid_t member)
{
	char path[64];
	struct stat ns;
	int err;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", member);
	auto_close int nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || fstat(nsfd, &ns)) {
		pr_perror("dump pid %d: cannot open its network namespace (%s)", member, path);
		return -errno;
	}
	if ((err = list_netns(unix_state_of(ctx), ns.st_ino, nsfd, false)))
		pr_err("dump pid %d: cannot list the unix sockets of its network namespace net:[%llu]: %s",
		       member, (unsigned long long)ns.st_ino, strerror(-err));
	return err;
}

int unix_diag_add_own_netns(struct unix_state *ud, pid_t pid, int fd)
{
	auto_close int sk = task_fd_copy(pid, fd);
	if (sk < 0)
		return sk;
	auto_close int nsfd = ioctl(sk, SIOCGSKNS);
	struct stat ns;
	if (nsfd < 0 || fstat(nsfd, &ns))
		return -errno;
	bool listed_yet = ud->snap.netns == ns.st_ino;
	for (size_t i = 0; !listed_yet && i < ud->nr_nested; i++)
		listed_yet = ud->nested[i].netns == ns.st_ino;
	return listed_yet ? -ENOENT : list_netns(ud, ns.st_ino, nsfd, true);
}

const struct unix_info *unix_snapshot_find(const struct unix_snapshot *snap, uint64_t ino)
{
	struct unix_info key = { .ino = ino };

	return snap->n ? bsearch(&key, snap->socks, snap->n, sizeof(key), by_ino) : NULL;
}

/* The socket ino in the listing of the thread's namespace, else of a nested or foreign one
 * (NULL). */
static const struct unix_info *listed(const struct unix_state *ud, uint64_t ino, bool *nested)
{
	const struct unix_info *found = unix_snapshot_find(&ud->snap, ino);

	*nested = false;
	for (size_t i = 0; !found && i < ud->nr_nested; i++) {
		found = unix_snapshot_find(&ud->nested[i], ino);
		*nested = found && !ud->nested[i].foreign;
	}
	return found;
}

int unix_look(struct unix_state *ud, uint64_t ino, struct unix_info *ui, bool with_icons)
{
	int err = snapshot_here(&ud->snap);
	bool nested;

	if (err)
		return err;
	const struct unix_info *found = listed(ud, ino, &nested);
	if (!found)
		return sock_diag_unix(ino, ui, with_icons); /* (one the listing missed) */
	*ui = *found;
	ui->nested = nested;
	ui->icons = NULL;
	ui->n_icons = 0;
	if (with_icons && found->n_icons) {
		if (!(ui->icons = xreallocarray(NULL, found->n_icons, sizeof(*ui->icons))))
			return -ENOMEM;
		memcpy(ui->icons, found->icons, found->n_icons * sizeof(*ui->icons));
		ui->n_icons = found->n_icons;
	}
	return 0;
}

int unix_waiting_listener(struct unix_state *ud, uint64_t client, uint64_t *listener)
{
	struct unix_waiting key = { .client = client };
	int err = snapshot_here(&ud->snap);

	if (err)
		return err;
	const struct unix_waiting *w =
		ud->snap.nr_waiting ? bsearch(&key, ud->snap.waiting, ud->snap.nr_waiting, sizeof(key), by_client) : NULL;
	for (size_t i = 0; !w && i < ud->nr_nested; i++) {
		const struct unix_snapshot *s = &ud->nested[i];
		w = s->nr_waiting ? bsearch(&key, s->waiting, s->nr_waiting, sizeof(key), by_client) : NULL;
	}
	if (w)
		*listener = w->listener;
	return !!w;
}

const char *unix_name(const char *name, size_t name_len, char *buf, size_t len)
{
	bool abstract = name_len && !name[0];

	snprintf(buf, len, "%s%.*s", abstract ? "@" : "", (int)(name_len - abstract), name + abstract);
	return buf;
}
