/*
 * Paths as the tree sees them. In stasis during a restore, the tree's root may be another
 * directory (--root, with the tree's mounts below it): paths from the images resolve inside
 * it, never out of it (openat2 RESOLVE_IN_ROOT: "..", absolute symlinks stay inside, magic
 * links such as /proc/PID/root are not followed). Without --root, and in the tree's own
 * processes after they moved into their root, the same calls resolve in "/" the same way.
 * At dump, a process's paths resolve the same way in its root (/proc/PID/root as root_fd).
 */
#ifndef STASIS_TREE_PATH_H
#define STASIS_TREE_PATH_H

#include <sys/stat.h>
#include <sys/types.h>

#include "run.h"

/* open(2) of path with root_fd as "/" (root_fd < 0: the caller's own "/"); -errno (not said). */
int path_open_in_root(int root_fd, const char *path, int flags, mode_t mode);
/* stat(2) (lstat with AT_SYMLINK_NOFOLLOW in flags) of path with root_fd as "/"; -errno. */
int path_stat_in_root(int root_fd, const char *path, struct stat *st, int flags);

/* open(2) of path as the tree sees it; -errno on failure (not said). */
int tree_open(const struct run_ctx *ctx, const char *path, int flags, mode_t mode);
/* stat(2) (lstat with AT_SYMLINK_NOFOLLOW in flags) of path as the tree sees it; -errno. */
int tree_stat(const struct run_ctx *ctx, const char *path, struct stat *st, int flags);
/* unlink(2) of path as the tree sees it, if it is still the file *was (dev and inode); -errno. */
int tree_unlink(const struct run_ctx *ctx, const char *path, const struct stat *was);
/* rmdir(2) of path as the tree sees it, if it is still the directory *was; -errno. */
int tree_rmdir(const struct run_ctx *ctx, const char *path, const struct stat *was);
/* mkdir(2) of an absolute path as the tree sees it (its parent there); *made: the new directory. */
int tree_mkdir(const struct run_ctx *ctx, const char *path, mode_t mode, struct stat *made);

/*
 * Runs fn(arg) in a child process whose root is the tree's and whose working directory is
 * dir (a path as the tree sees it; NULL: its root), for the calls that resolve a path
 * themselves and name what they made by it (bind, connect and sendto of unix sockets: a
 * socket's name is the path it was bound with, whatever the root). fn returns 0 or a
 * negative errno, which tree_run returns (not said: fn says its own failures, which count as
 * said here).
 */
int tree_run(const struct run_ctx *ctx, const char *dir, int (*fn)(void *arg), void *arg);
/* The same with root_fd as the child's root (root_fd < 0: the caller's own). */
int path_run_in_root(int root_fd, const char *dir, int (*fn)(void *arg), void *arg);

#endif
