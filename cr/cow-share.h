/* Private memory shared copy-on-write with forked processes again (cr/cow-share.c). */
#ifndef STASIS_COW_SHARE_H
#define STASIS_COW_SHARE_H

#include "run.h"
#include "task.h"

/*
 * In the new process t, before it forks: the regions it fills first mapped and filled, those
 * it took from its forker made its own (its pages written, the forker's it has not dropped).
 */
int cow_share_fill(const struct run_ctx *ctx, struct restore_task *t);

#endif
