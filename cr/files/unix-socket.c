/*
 * One unix socket, either side: its type and SO_PASSCRED read on a copy of a task's fd, and
 * where its path name's socket file is; made again with the saved type, flags and options,
 * bound to its saved name (listening if it was), connected to a name, or fresh; its shutdown
 * applied; and a duplicate of a socket stasis holds, for a new task.
 *
 * A name is what bind() was given, kept by the socket even when its file is gone. A relative
 * name is bound again in the directory its file was found in (the holder's working
 * directory); a name whose file was removed since is bound at its path and the file removed
 * once restore is done with it (senders address it), or, if another file took its place, bound
 * inside a scratch root in a child process (chroot) that is removed at once: either way the
 * socket has its name and no file has.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
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

int unix_addr(const void *name, size_t len, struct sockaddr_un *sa, socklen_t *salen)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if (len == 0 || len > sizeof(sa->sun_path))
		return -EINVAL;
	memcpy(sa->sun_path, name, len);
	*salen = offsetof(struct sockaddr_un, sun_path) + len;
	return 0;
}

int unix_saved_addr(const FdEntry *e, struct sockaddr_un *sa, socklen_t *len)
{
	return unix_addr(e->sock_name.data, e->sock_name.len, sa, len);
}

static bool same_file(const char *path, const struct unix_info *ui)
{
	struct stat st;

	/* the kernel's own dev_t: major above bit 20 */
	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (uint32_t)st.st_ino == ui->vfs_ino &&
	       st.st_dev == makedev(ui->vfs_dev >> 20, ui->vfs_dev & 0xfffff);
}

void unix_name_place(pid_t pid, const struct unix_info *ui, bool *gone, char **dir)
{
	char path[UNIX_NAME_MAX + 1], at[UNIX_NAME_MAX + 64], link[64], cwd[PATH_MAX];

	*gone = false;
	*dir = NULL;
	if (!ui->named || !ui->name_len || !ui->name[0] || !ui->has_vfs)
		return; /* abstract, or no file to look for */
	snprintf(path, sizeof(path), "%.*s", (int)ui->name_len, ui->name);
	if (path[0] == '/') {
		*gone = !same_file(path, ui);
		return;
	}
	snprintf(at, sizeof(at), "/proc/%d/cwd/%s", pid, path);
	snprintf(link, sizeof(link), "/proc/%d/cwd", pid);
	ssize_t n = pid > 0 && same_file(at, ui) ? readlink(link, cwd, sizeof(cwd) - 1) : -1;
	if (n <= 0 || cwd[0] != '/') {
		*gone = true;
		return;
	}
	cwd[n] = 0;
	*dir = xstrdup(cwd);
}

/* A stale socket file at the path (no socket bound to it any more) is in the way of bind. */
static void remove_stale(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* In a child: bind in dir, or (gone) inside a scratch root with the name's directories. */
static void bind_in_child(int s, struct sockaddr_un *sa, socklen_t len, const char *root,
			  const char *dir)
{
	if (root) {
		if (chroot(root) || chdir("/"))
			_exit(errno);
		for (char *slash = strchr(sa->sun_path + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
			*slash = 0;
			if (mkdir(sa->sun_path, 0700) && errno != EEXIST)
				_exit(errno);
			*slash = '/';
		}
	} else {
		if (chdir(dir))
			_exit(errno);
		remove_stale(sa->sun_path);
	}
	_exit(bind(s, (struct sockaddr *)sa, len) ? errno : 0);
}

int unix_bind_name(int s, const void *name, size_t len, bool gone, const char *dir,
		   char **unlink_later)
{
	struct sockaddr_un sa;
	socklen_t salen;
	char root[] = "/tmp/stasis-unix-XXXXXX";
	int status = 0, err = 0;
	struct stat st;

	if (unix_addr(name, len, &sa, &salen))
		return -EINVAL;
	if (gone && sa.sun_path[0] == '/' && lstat(sa.sun_path, &st) && errno == ENOENT) {
		if (bind(s, (struct sockaddr *)&sa, salen))
			return -errno;
		*unlink_later = xstrdup(sa.sun_path);
		return 0;
	}
	if (!sa.sun_path[0] || (!gone && !dir)) {
		if (sa.sun_path[0])
			remove_stale(sa.sun_path);
		return bind(s, (struct sockaddr *)&sa, salen) ? -errno : 0;
	}
	if (gone && !mkdtemp(root))
		return -errno;
	pid_t child = fork();
	if (child == 0)
		bind_in_child(s, &sa, salen, gone ? root : NULL, dir);
	if (child < 0 || waitpid(child, &status, 0) != child)
		err = -errno;
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		err = WIFEXITED(status) ? -WEXITSTATUS(status) : -EINTR;
	if (gone)
		nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return err;
}

void unix_remove_file(int s, const char *path)
{
	struct stat st, file;
	struct unix_info ui;

	if (!fstat(s, &st) && !sock_diag_unix(st.st_ino, &ui, false) && ui.has_vfs && !lstat(path, &file) &&
	    (uint32_t)file.st_ino == ui.vfs_ino)
		unlink(path);
}

static int saved_socket(const FdEntry *e)
{
	int passcred = e->sock_passcred;

	if (e->sock_type != SOCK_STREAM && e->sock_type != SOCK_DGRAM && e->sock_type != SOCK_SEQPACKET)
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

/* The socket file's owner and mode, as saved (a path name whose file is there). */
static int set_file_attrs(const FdEntry *e)
{
	char path[PATH_MAX];
	const char *name = (const char *)e->sock_name.data;

	if (!name[0] || e->sock_file_gone)
		return 0;
	snprintf(path, sizeof(path), "%s%s%.*s", e->sock_dir ? e->sock_dir : "", e->sock_dir ? "/" : "",
		 (int)e->sock_name.len, name);
	if ((e->has_sock_file_uid && lchown(path, e->sock_file_uid, e->sock_file_gid)) ||
	    (e->has_sock_file_mode && chmod(path, e->sock_file_mode)))
		return -errno;
	return 0;
}

int unix_bind_saved(const FdEntry *e, char **unlink_later)
{
	int s = saved_socket(e), err;

	if (s < 0)
		return s;
	if ((err = unix_bind_name(s, e->sock_name.data, e->sock_name.len, e->sock_file_gone, e->sock_dir,
				  unlink_later)) ||
	    (err = set_file_attrs(e)) || (e->has_sock_backlog && listen(s, e->sock_backlog) && (err = -errno))) {
		close(s);
		return err;
	}
	return s;
}

int unix_reach_addr(const FdEntry *e, struct sockaddr_un *sa, socklen_t *len)
{
	char path[2 * UNIX_NAME_MAX + 2];
	const char *name = (const char *)e->sock_name.data;

	if (!e->sock_dir || !e->sock_name.len || !name[0] || name[0] == '/')
		return unix_saved_addr(e, sa, len);
	int n = snprintf(path, sizeof(path), "%s/%.*s", e->sock_dir, (int)e->sock_name.len, name);
	return unix_addr(path, n + 1, sa, len);
}

int unix_connect_saved(const FdEntry *e)
{
	struct sockaddr_un sa;
	socklen_t len;
	int s, err;

	if (unix_saved_addr(e, &sa, &len))
		return -EINVAL;
	if ((s = saved_socket(e)) < 0)
		return s;
	if (connect(s, (struct sockaddr *)&sa, len)) {
		err = -errno;
		close(s);
		return err;
	}
	return s;
}

int unix_fresh_socket(const FdEntry *e)
{
	if (e->sock_type != SOCK_STREAM && e->sock_type != SOCK_DGRAM && e->sock_type != SOCK_SEQPACKET)
		return -EINVAL;
	int s = socket(AF_UNIX, e->sock_type | SOCK_CLOEXEC | (e->flags & O_NONBLOCK ? SOCK_NONBLOCK : 0), 0);
	return s < 0 ? -errno : s;
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
