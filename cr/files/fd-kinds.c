/*
 * The registry of fd kinds: each kind of file lives in a file of its own with its dump,
 * validate and open steps (struct fd_kind_ops); this table is the one place that lists them,
 * in the order each is offered an fd at dump.
 */
#include "files.h"
#include "util.h"

const struct fd_kind_ops *const fd_kinds[] = {
	&fd_kind_inherited, /* first: with --shell-job, the caller's stdio ttys and pipes */
	&fd_kind_nsfile, /* before regular files: a namespace file is a regular file of nsfs */
	&fd_kind_memfd, /* before regular files: a memfd is a regular file named "/memfd:..." */
	&fd_kind_mqueue, /* before regular files too: a queue is a regular file of mqueue fs */
	&fd_kind_regular,
	&fd_kind_pipe,
	&fd_kind_eventfd,
	&fd_kind_signalfd,
	&fd_kind_timerfd,
	&fd_kind_epoll,
	&fd_kind_netlink, /* before the unix kinds: sockets of another family */
	&fd_kind_inet, /* before the unix kinds too: IPv4/IPv6, raw sockets too */
	&fd_kind_packet,
	&fd_kind_unix_bound, /* before pairs: bound and not connected */
	&fd_kind_unix, /* claims external peers and connections not accepted yet too */
	&fd_kind_unix_external,
	&fd_kind_unix_pending, /* claimed by fd_kind_unix's dump */
	&fd_kind_external, /* claimed by fd_kind_unix's dump: peers outside the tree */
	&fd_kind_inotify,
	&fd_kind_fanotify,
	&fd_kind_pty_master, /* claims slaves too */
	&fd_kind_pty_slave,
	&fd_kind_pidfd,
	&fd_kind_bpf_map,
	&fd_kind_tun,
	&fd_kind_io_uring,
	&fd_kind_unix_fresh, /* claimed by fd_kind_unix's dump */
};
const unsigned fd_kinds_len = ARRAY_SIZE(fd_kinds);

const struct fd_kind_ops *fd_kind_of(FdKind kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(fd_kinds); i++)
		if (fd_kinds[i]->kind == kind)
			return fd_kinds[i];
	return NULL;
}
