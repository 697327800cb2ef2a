/*
 * One unix socket, either side: its type and SO_PASSCRED read on a copy of a task's fd; made
 * again with the saved type, flags and options, bound to its saved name (listening if it
 * was); its shutdown applied; and a duplicate of a socket stasis holds, for a new task.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "unix.h"
#include "util.h"

int sock_options(pid_t pid, int fd, int *type, int *passcred)
{
	auto_close int s = task_fd_copy(pid, fd);
	socklen_t len = sizeof(int);

	if (s < 0)
		return s;
	if (getsockopt(s, SOL_SOCKET, SO_TYPE, type, &len))
		return -errno;
	len = sizeof(int);
	if (getsockopt(s, SOL_SOCKET, SO_PASSCRED, passcred, &len))
		return -errno;
	return 0;
}

int unix_saved_addr(const FdEntry *e, struct sockaddr_un *sa, socklen_t *len)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if (e->sock_name.len == 0 || e->sock_name.len > sizeof(sa->sun_path))
		return -EINVAL;
	memcpy(sa->sun_path, e->sock_name.data, e->sock_name.len);
	*len = offsetof(struct sockaddr_un, sun_path) + e->sock_name.len;
	return 0;
}

int unix_named_socket(const FdEntry *e, struct sockaddr_un *sa, socklen_t *len)
{
	int passcred = e->sock_passcred;

	if (unix_saved_addr(e, sa, len))
		return -EINVAL;
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
int unix_bind_saved(const FdEntry *e)
{
	struct sockaddr_un sa;
	socklen_t len;
	struct stat st;
	int s = unix_named_socket(e, &sa, &len);

	if (s < 0)
		return s;
	if (sa.sun_path[0] && stat(sa.sun_path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(sa.sun_path);
	if (bind(s, (struct sockaddr *)&sa, len) ||
	    (e->has_sock_file_uid && lchown(sa.sun_path, e->sock_file_uid, e->sock_file_gid)) ||
	    (e->has_sock_file_mode && chmod(sa.sun_path, e->sock_file_mode)) ||
	    (e->has_sock_backlog && listen(s, e->sock_backlog))) {
		int err = -errno;
		close(s);
		return err;
	}
	return s;
}

int unix_apply_shutdown(int s, uint32_t bits)
{
	if ((bits & 2) && shutdown(s, SHUT_WR))
		return -errno;
	if ((bits & 1) && shutdown(s, SHUT_RD))
		return -errno;
	return 0;
}

int unix_dup_held(int fd, unsigned flags)
{
	if (fcntl(fd, F_SETFL, flags & O_NONBLOCK))
		return -errno;
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	return fd < 0 ? -errno : fd;
}
