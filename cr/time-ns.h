/* The tree's time namespaces (cr/time-ns.c): what each restored process does about them. */
#ifndef STASIS_TIME_NS_H
#define STASIS_TIME_NS_H

#include <stdbool.h>
#include <stdint.h>

#include "run.h"
#include "task.h"

/*
 * In each restored process right after it is forked, single-threaded, before it forks its
 * children: it enters its own time namespace if it is not in it yet and, if it is the maker
 * of the one its children go to, makes that one (unshare, offsets) and keeps an fd of it for
 * its descendants, numbered fd_floor or above (a number below may be one they close). Says
 * what failed.
 */
int time_ns_join(struct run_ctx *ctx, const struct restore_task *t, int fd_floor);

/*
 * Dump: is id stasis's own time namespace, or one of the tree's that t can reach when restored
 * (not one a process makes, unless t is that process or its descendant)? False while the
 * tree has none of its own.
 */
bool time_ns_reachable(const struct dump_task *t, uint64_t id);

/* Restore, in process pid: a new fd of time namespace id (made by now), or a negative errno. */
int time_ns_fd(const struct run_ctx *ctx, pid_t pid, uint64_t id);

#endif
