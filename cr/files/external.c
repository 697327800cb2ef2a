/*
 * Objects outside the tree (criu's --inherit-fd): a dump saves only a key for them, like
 * "socket:[INODE]" for a unix socket whose peer is outside the tree; the restoring caller
 * opens a replacement and names it with --inherit-fd fd[N]:KEY, and each process that held
 * the object gets a duplicate of fd N at the same fd number with the saved file flags.
 * Without a matching --inherit-fd the restore refuses before starting anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

#define SETFL_FLAGS (O_NONBLOCK | O_APPEND)

/* The file type a key's prefix promises: socket:[...], pipe:[...]; 0: any. */
static mode_t key_type(const char *key)
{
	if (!strncmp(key, "socket:[", 8))
		return S_IFSOCK;
	if (!strncmp(key, "pipe:[", 6))
		return S_IFIFO;
	return 0;
}

int inherit_fd_get(const struct run_ctx *ctx, const char *key)
{
	const struct stasis_opts *opts = ctx->opts;
	struct stat st;
	mode_t type = key_type(key);

	for (size_t i = 0; i < opts->nr_inherit_fds; i++) {
		const struct inherit_fd *in = &opts->inherit_fds[i];
		if (strcmp(in->key, key))
			continue;
		if (fstat(in->fd, &st)) {
			pr_perror("--inherit-fd fd[%d]:%s: fd %d", in->fd, key, in->fd);
			return -EBADF;
		}
		if (type && (st.st_mode & S_IFMT) != type) {
			pr_err("--inherit-fd fd[%d]:%s: fd %d is not a %s", in->fd, key, in->fd,
			       type == S_IFSOCK ? "socket" : "pipe");
			return -EINVAL;
		}
		return in->fd;
	}
	return -ENOENT;
}

static int validate_external(const struct restore_task *t, const FdEntry *e)
{
	if (!e->ext_key) {
		pr_err("image fds-%d.img: fd %u is external without a key", t->pid, e->fd);
		return -EINVAL;
	}
	int fd = inherit_fd_get(t->ctx, e->ext_key);
	if (fd == -ENOENT)
		pr_err("restore pid %d fd %u: was %s, outside the tree; restore with "
		       "--inherit-fd fd[N]:%s, N an fd of the caller holding its replacement; nothing "
		       "was started",
		       t->pid, e->fd, e->ext_key, e->ext_key);
	return fd < 0 ? fd : 0;
}

static int open_external(struct restore_task *t, const FdEntry *e)
{
	int in = inherit_fd_get(t->ctx, e->ext_key), fd, fl;

	if (in < 0)
		return in;
	fd = fcntl(in, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, (fl & ~SETFL_FLAGS) | (e->flags & SETFL_FLAGS))) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

const struct fd_kind_ops fd_kind_external = {
	.name = "object outside the tree (--inherit-fd)",
	.validate = validate_external,
	.open = open_external,
	.kind = FD_KIND__FD_EXTERNAL,
};
