/*
 * Kernel features for fds, local IPC and paths: what dump and restore of files, timers,
 * message queues, sockets and locks rely on, and how paths are resolved and mounts joined.
 * Each probe makes its own objects and removes them; none is required for a process that
 * holds no such thing.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/openat2.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "kernel/probe.h"
#include "tcp-requeue.h"
#include "util.h"

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif
#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif
#ifndef MOVE_MOUNT_SET_GROUP
#define MOVE_MOUNT_SET_GROUP 0x100
#endif
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define RESTORE_IDS_GET 2

/* SysV messages read in place (CONFIG_CHECKPOINT_RESTORE): a private queue, one message. */
bool probe_msg_copy(struct probe_result *r)
{
	struct { long type; char text[8]; } m = { 1, "probe" }, got;
	int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	bool ok = q >= 0 && msgsnd(q, &m, 6, IPC_NOWAIT) == 0 &&
		  msgrcv(q, &got, sizeof(got.text), 0, MSG_COPY | IPC_NOWAIT) == 6 &&
		  msgrcv(q, &got, sizeof(got.text), 0, IPC_NOWAIT) == 6; /* still there: copied */
	int err = errno;

	if (q >= 0)
		msgctl(q, IPC_RMID, NULL);
	return ok ? probe_set(r, true, "SysV queues read without taking messages")
		  : probe_set(r, false, "%s: SysV message queues of a tree's IPC namespace cannot be saved",
			      strerror(err));
}

bool probe_timerfd_ticks(struct probe_result *r)
{
	uint64_t ticks = 3;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	bool ok = fd >= 0 && ioctl(fd, TFD_IOC_SET_TICKS, &ticks) == 0;
	int err = errno;

	if (fd >= 0)
		close(fd);
	return ok ? probe_set(r, true, "unread timerfd expirations can be put back")
		  : probe_set(r, false, "%s: unread timerfd expirations are lost", strerror(err));
}

bool probe_timer_ids(struct probe_result *r)
{
	int mode = prctl(PR_TIMER_CREATE_RESTORE_IDS, RESTORE_IDS_GET, 0, 0, 0);

	return mode >= 0 ? probe_set(r, true, "POSIX timers get their ids back")
			 : probe_set(r, false, "%s: POSIX timers cannot be restored", strerror(errno));
}

/* A unix socket pair seen through NETLINK_SOCK_DIAG, with its peer. */
bool probe_unix_diag(struct probe_result *r)
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
	probe_close_pair(sp);
	if (nl >= 0)
		close(nl);
	return ok ? probe_set(r, true, "unix sockets' peers, queues and shutdown state")
		  : probe_set(r, false, "unix sockets other than plain files cannot be saved");
}

/* A file reopened from its handle (inotify watches, files deleted but linked elsewhere). */
bool probe_file_handles(struct probe_result *r)
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
	return fd >= 0 ? probe_set(r, true, "name_to_handle_at/open_by_handle_at")
		       : probe_set(r, false, "%s: inotify watches cannot be restored", strerror(err));
}

/* A lock on a memfd, as /proc/PID/fdinfo/N shows it ("lock:" lines; --file-locks reads them). */
bool probe_fdinfo_locks(struct probe_result *r)
{
	int fd = memfd_create("stasis-probe", MFD_CLOEXEC);
	char path[64];

	if (fd < 0)
		return probe_set(r, false, "memfd_create: %m");
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		probe_set(r, false, "flock: %m");
	} else {
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
		auto_free char *info = probe_read_file(r, path);
		if (!info)
			probe_set(r, false, "%s: %m", path);
		else if (!strstr(info, "lock:"))
			probe_set(r, false, "fdinfo shows no locks: file locks cannot be saved");
		else
			probe_set(r, true, "%s", "");
	}
	close(fd);
	return r->ok;
}

/* "/" opened with RESOLVE_IN_ROOT: paths of a restored tree resolved inside its root. */
bool probe_openat2(struct probe_result *r)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
	int fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));

	if (fd < 0)
		return probe_set(r, false, "%m%s", errno == ENOSYS ? " (kernel older than 5.6)" : "");
	close(fd);
	return probe_set(r, true, "%s", "");
}

/*
 * A mount joining another's peer group (shared mounts of a restored mount namespace). With
 * no mount given, a kernel that knows the flag fails on the paths; one that does not, on it.
 */
bool probe_move_mount(struct probe_result *r)
{
	if (syscall(SYS_move_mount, -1, "", -1, "", MOVE_MOUNT_SET_GROUP) == 0 || errno == ENOENT ||
	    errno == EBADF)
		return probe_set(r, true, "%s", "");
	if (errno == ENOSYS)
		return probe_set(r, false, "no move_mount (kernel older than 5.2)");
	if (errno == EINVAL)
		return probe_set(r, false, "MOVE_MOUNT_SET_GROUP unknown (kernel older than 5.15)");
	if (errno == EPERM)
		return probe_set(r, false, "cannot tell: needs CAP_SYS_ADMIN");
	return probe_set(r, false, "%m");
}

/*
 * Connections waiting in a TCP listener's accept queue made again (netns/tcp-requeue.c): its
 * TCX program loaded (the kfunc in the kernel's BTF, the verifier's yes) and attached to lo of
 * a network namespace of the probe's own.
 */
static bool tcp_requeue_in_child(struct probe_result *r)
{
	char why[PROBE_DETAIL_LEN] = "";

	if (unshare(CLONE_NEWNET))
		return probe_set(r, false, "cannot make a network namespace to try it in: %m");
	if (!tcp_requeue_supported(why, sizeof(why)))
		return probe_set(r, false, "%s: %m: connections waiting in a listener's accept queue "
				 "cannot be saved", why);
	return probe_set(r, true, "TCX ingress program with bpf_sk_assign_tcp_reqsk (Linux >= 6.9)");
}

bool probe_tcp_requeue(struct probe_result *r)
{
	return probe_in_child(tcp_requeue_in_child, r);
}
