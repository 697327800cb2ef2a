#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tree-path.h"

int tree_open(const struct run_ctx *ctx, const char *path, int flags, mode_t mode)
{
	struct open_how how = { .flags = flags | O_CLOEXEC, .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
				.resolve = RESOLVE_IN_ROOT };
	int root = ctx->tree_root_fd, fd;

	if (!path)
		return -EINVAL;
	/* no --root (or in the tree's own processes): "/" is the root, still no magic links */
	if (root < 0 && (root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	while (*path == '/')
		path++;
	fd = syscall(SYS_openat2, root, *path ? path : ".", &how, sizeof(how));
	if (fd < 0)
		fd = -errno;
	if (root != ctx->tree_root_fd)
		close(root);
	return fd;
}

int tree_stat(const struct run_ctx *ctx, const char *path, struct stat *st, int flags)
{
	int fd, err = 0;

	fd = tree_open(ctx, path, O_PATH | ((flags & AT_SYMLINK_NOFOLLOW) ? O_NOFOLLOW : 0), 0);
	if (fd < 0)
		return fd;
	if (fstat(fd, st))
		err = -errno;
	close(fd);
	return err;
}
