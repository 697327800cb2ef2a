#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "tree-path.h"

int path_open_in_root(int root_fd, const char *path, int flags, mode_t mode)
{
	struct open_how how = { .flags = flags | O_CLOEXEC, .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
				.resolve = RESOLVE_IN_ROOT };
	int root = root_fd, fd;

	if (!path)
		return -EINVAL;
	/* no root given (or in the tree's own processes): "/" is the root, still no magic links */
	if (root < 0 && (root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	while (*path == '/')
		path++;
	fd = syscall(SYS_openat2, root, *path ? path : ".", &how, sizeof(how));
	if (fd < 0)
		fd = -errno;
	if (root != root_fd)
		close(root);
	return fd;
}

int path_stat_in_root(int root_fd, const char *path, struct stat *st, int flags)
{
	int fd, err = 0;

	fd = path_open_in_root(root_fd, path, O_PATH | ((flags & AT_SYMLINK_NOFOLLOW) ? O_NOFOLLOW : 0), 0);
	if (fd < 0)
		return fd;
	if (fstat(fd, st))
		err = -errno;
	close(fd);
	return err;
}

int tree_open(const struct run_ctx *ctx, const char *path, int flags, mode_t mode)
{
	return path_open_in_root(ctx->tree_root_fd, path, flags, mode);
}

int tree_stat(const struct run_ctx *ctx, const char *path, struct stat *st, int flags)
{
	return path_stat_in_root(ctx->tree_root_fd, path, st, flags);
}

/* unlinkat(2) of path as the tree sees it (flags: AT_REMOVEDIR for a directory), if still *was. */
static int remove_same(const struct run_ctx *ctx, const char *path, const struct stat *was, int flags)
{
	const char *slash = strrchr(path, '/');
	char parent[4200];
	struct stat st;
	int dir, err = 0;

	if (!slash)
		snprintf(parent, sizeof(parent), ".");
	else
		snprintf(parent, sizeof(parent), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if ((dir = tree_open(ctx, parent, O_PATH | O_DIRECTORY, 0)) < 0)
		return dir;
	const char *name = slash ? slash + 1 : path;
	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW))
		err = -errno;
	else if (st.st_dev != was->st_dev || st.st_ino != was->st_ino)
		err = -ESTALE; /* another file took its place */
	else if (unlinkat(dir, name, flags))
		err = -errno;
	close(dir);
	return err;
}

int tree_unlink(const struct run_ctx *ctx, const char *path, const struct stat *was)
{
	return remove_same(ctx, path, was, 0);
}

int tree_rmdir(const struct run_ctx *ctx, const char *path, const struct stat *was)
{
	return remove_same(ctx, path, was, AT_REMOVEDIR);
}

int tree_mkdir(const struct run_ctx *ctx, const char *path, mode_t mode, struct stat *made)
{
	const char *slash = strrchr(path, '/');
	char parent[4200];
	int dir, err = 0;

	if (!slash || !slash[1])
		return -EINVAL;
	snprintf(parent, sizeof(parent), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if ((dir = tree_open(ctx, parent, O_PATH | O_DIRECTORY, 0)) < 0)
		return dir;
	if (mkdirat(dir, slash + 1, mode) || fstatat(dir, slash + 1, made, AT_SYMLINK_NOFOLLOW))
		err = -errno;
	close(dir);
	return err;
}

int path_run_in_root(int root_fd, const char *dir, int (*fn)(void *arg), void *arg)
{
	int status = 0, said[2]; /* the child said what failed: a byte */
	char byte;
	pid_t child;

	if (pipe2(said, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	if ((child = fork()) < 0) {
		int err = -errno;
		close(said[0]);
		close(said[1]);
		return err;
	}
	if (child == 0) {
		unsigned logged = log_errors();
		if (root_fd >= 0 && (fchdir(root_fd) || chroot(".") || chdir("/")))
			_exit(errno);
		if (dir && chdir(dir))
			_exit(errno);
		int err = fn(arg);
		if (err && log_errors() != logged && write(said[1], "!", 1) != 1)
			_exit(EIO);
		_exit(err > -256 ? -err : EIO);
	}
	close(said[1]);
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (read(said[0], &byte, 1) == 1)
		log_said_by_helper();
	close(said[0]);
	return WIFEXITED(status) ? -WEXITSTATUS(status) : -EINTR;
}

int tree_run(const struct run_ctx *ctx, const char *dir, int (*fn)(void *arg), void *arg)
{
	return path_run_in_root(ctx->tree_root_fd, dir, fn, arg);
}
