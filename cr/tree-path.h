/*
 * Paths as the tree sees them. In stasis during a restore, the tree's root may be another
 * directory (--root, with the tree's mounts below it): paths from the images resolve inside
 * it, never out of it (openat2 RESOLVE_IN_ROOT: "..", absolute symlinks stay inside, magic
 * links such as /proc/PID/root are not followed). Without --root, and in the tree's own
 * processes after they moved into their root, the same calls resolve in "/" the same way.
 */
#ifndef STASIS_TREE_PATH_H
#define STASIS_TREE_PATH_H

#include <sys/stat.h>
#include <sys/types.h>

#include "run.h"

/* open(2) of path as the tree sees it; -errno on failure (not said). */
int tree_open(const struct run_ctx *ctx, const char *path, int flags, mode_t mode);
/* stat(2) (lstat with AT_SYMLINK_NOFOLLOW in flags) of path as the tree sees it; -errno. */
int tree_stat(const struct run_ctx *ctx, const char *path, struct stat *st, int flags);

#endif
