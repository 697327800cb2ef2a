/*
 * Processes made only to end the way one of the tree's ended (a zombie of the tree, the reaped
 * process a pidfd refers to): cr/end-as.c.
 */
#ifndef STASIS_END_AS_H
#define STASIS_END_AS_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "run.h"

#define CORE_DUMPED 0x80 /* in a wait status, with the signal that killed it */

/* A wait status a process can end with: an exit code << 8, or a signal that ends it (with
 * CORE_DUMPED if that signal dumps core). */
bool wait_status_valid(int32_t status);

/* The wait status a waitid() answer stands for. */
int32_t wait_status_from(const siginfo_t *si);

/*
 * Restore, in stasis before the tree is made: a process made later ends with a status that
 * says it dumped core; its core goes to a directory of stasis's own (made now, if core_pattern
 * writes cores into the dumping process's working directory), never where the system would
 * take it. Idempotent.
 */
void end_as_need_cores(struct run_ctx *ctx);

/* Removes the cores made processes dumped so far. */
void end_as_remove_cores(const struct run_ctx *ctx);

/*
 * In a made process: ends with wait status `status` (wait_status_valid), dumping core into
 * stasis's core directory only if the status says so, else not dumping any. Raw system
 * calls: the caller may share memory with threads.
 */
_Noreturn void end_as(const struct run_ctx *ctx, int32_t status);

extern const struct tree_object_ops tree_core_dir;

#endif
