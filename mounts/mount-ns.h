/* The tree's mount namespace, for other kinds (mounts/mount-ns.c, tree_mount_ns). */
#ifndef STASIS_MOUNT_NS_H
#define STASIS_MOUNT_NS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "run.h"

/* Dump: is mount mnt_id (fdinfo's mnt_id) one of the tree's? True if it has no namespace. */
bool mount_ns_holds(const struct run_ctx *ctx, uint64_t mnt_id);
/* Dump: is the tree in stasis's own mount namespace (no mount table of its own)? */
bool mount_ns_is_stasis(const struct run_ctx *ctx);
/*
 * Dump: a file open on a mount outside the tree's namespace, link its path there (relative to
 * that mount): the path in the tree (below one of its mount points) that reaches the very same
 * file (device and inode, looked up through pid's root), into path; -ENOENT if none does. A
 * restored container's files that stasis opened once for several processes are on its own
 * copy of the container's mounts, as files of another copy (a bind) would be.
 */
int mount_ns_path_of(const struct run_ctx *ctx, pid_t pid, const char *link, const struct stat *st,
		     char *path, size_t len);

/*
 * Restore: does path (as the tree sees it) lie on a mount that the tree's root makes itself
 * (proc, sysfs, mqueue, cgroup mounts and what lies on them), which is not there before the
 * tree starts? False without a mount namespace of the tree.
 */
bool mount_ns_made_by_root(const struct run_ctx *ctx, const char *path);

/*
 * Mount namespaces nested in the tree's (mounts/mount-nested.c). Dump: is mount mnt_id one of
 * theirs? Restore: is process pid (as the images name it) in one (its files are opened there)?
 */
bool mount_nested_holds(const struct run_ctx *ctx, uint64_t mnt_id);
bool mount_nested_in(const struct run_ctx *ctx, pid_t pid);
/* The maker of the nested mount namespace process vpid is in (0: none). */
uint32_t mount_nested_maker(const struct run_ctx *ctx, pid_t vpid);

#endif
