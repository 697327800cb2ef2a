/* The tree's mount namespace, for other kinds (mounts/mount-ns.c, tree_mount_ns). */
#ifndef STASIS_MOUNT_NS_H
#define STASIS_MOUNT_NS_H

#include <stdbool.h>
#include <stdint.h>

#include "run.h"

/* Dump: is mount mnt_id (fdinfo's mnt_id) one of the tree's? True if it has no namespace. */
bool mount_ns_holds(const struct run_ctx *ctx, uint64_t mnt_id);

#endif
