/*
 * stasis check, fds and local IPC: the kernel interfaces that dump and restore of files,
 * timers, message queues and sockets rely on. Each probe makes its own objects and removes
 * them; none is required for a process that holds no such thing.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "check.h"

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif
#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define RESTORE_IDS_GET 2

/* SysV messages read in place (CONFIG_CHECKPOINT_RESTORE): a private queue, one message. */
static bool probe_msg_copy(struct res *r)
{
	struct { long type; char text[8]; } m = { 1, "probe" }, got;
	int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	bool ok = q >= 0 && msgsnd(q, &m, 6, IPC_NOWAIT) == 0 &&
		  msgrcv(q, &got, sizeof(got.text), 0, MSG_COPY | IPC_NOWAIT) == 6 &&
		  msgrcv(q, &got, sizeof(got.text), 0, IPC_NOWAIT) == 6; /* still there: copied */
	int err = errno;

	if (q >= 0)
		msgctl(q, IPC_RMID, NULL);
	return ok ? set(r, true, "SysV queues read without taking messages")
		  : set(r, false, "%s: SysV message queues of a tree's IPC namespace cannot be saved",
			strerror(err));
}

static bool probe_timerfd_ticks(struct res *r)
{
	uint64_t ticks = 3;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	bool ok = fd >= 0 && ioctl(fd, TFD_IOC_SET_TICKS, &ticks) == 0;
	int err = errno;

	if (fd >= 0)
		close(fd);
	return ok ? set(r, true, "unread timerfd expirations can be put back")
		  : set(r, false, "%s: unread timerfd expirations are lost", strerror(err));
}

static bool probe_timer_ids(struct res *r)
{
	int mode = prctl(PR_TIMER_CREATE_RESTORE_IDS, RESTORE_IDS_GET, 0, 0, 0);

	return mode >= 0 ? set(r, true, "POSIX timers get their ids back")
			 : set(r, false, "%s: POSIX timers cannot be restored", strerror(errno));
}

/* A unix socket pair seen through NETLINK_SOCK_DIAG, with its peer. */
static bool probe_unix_diag(struct res *r)
{
	int sp[2] = { -1, -1 }, nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	struct stat st;
	struct {
		struct nlmsghdr h;
		struct unix_diag_req req;
	} q = { .h = { .nlmsg_len = sizeof(q), .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST },
		.req = { .sdiag_family = AF_UNIX, .udiag_states = -1, .udiag_show = UDIAG_SHOW_PEER } };
	char buf[8192];
	bool ok = false;

	if (nl >= 0 && !socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) && !fstat(sp[0], &st)) {
		q.req.udiag_ino = st.st_ino;
		q.req.udiag_cookie[0] = q.req.udiag_cookie[1] = -1;
		ssize_t n = send(nl, &q, sizeof(q), 0) == sizeof(q) ? recv(nl, buf, sizeof(buf), 0) : -1;
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		ok = n > (ssize_t)sizeof(*h) && h->nlmsg_type == SOCK_DIAG_BY_FAMILY;
	}
	for (int i = 0; i < 2; i++)
		if (sp[i] >= 0)
			close(sp[i]);
	if (nl >= 0)
		close(nl);
	return ok ? set(r, true, "unix sockets' peers, queues and shutdown state")
		  : set(r, false, "unix sockets other than plain files cannot be saved");
}

/* A file reopened from its handle (inotify watches, files deleted but linked elsewhere). */
static bool probe_file_handles(struct res *r)
{
	struct { struct file_handle fh; unsigned char bytes[128]; } h = { .fh = { .handle_bytes = 128 } };
	int mnt_id, root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd = -1;

	if (root >= 0 && !name_to_handle_at(AT_FDCWD, "/", &h.fh, &mnt_id, 0))
		fd = open_by_handle_at(root, &h.fh, O_PATH | O_CLOEXEC);
	int err = errno;
	if (fd >= 0)
		close(fd);
	if (root >= 0)
		close(root);
	return fd >= 0 ? set(r, true, "name_to_handle_at/open_by_handle_at")
		       : set(r, false, "%s: inotify watches cannot be restored", strerror(err));
}

void check_file_features(struct report *rep)
{
	struct res r;

	probe_msg_copy(&r);
	print_line(rep, "msgrcv MSG_COPY", false, &r);
	probe_timerfd_ticks(&r);
	print_line(rep, "timerfd TFD_IOC_SET_TICKS", false, &r);
	probe_timer_ids(&r);
	print_line(rep, "POSIX timer ids (PR_TIMER_CREATE_RESTORE_IDS)", false, &r);
	probe_unix_diag(&r);
	print_line(rep, "unix sock_diag", false, &r);
	probe_file_handles(&r);
	print_line(rep, "file handles", false, &r);
}
