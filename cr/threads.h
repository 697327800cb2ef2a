#ifndef STASIS_THREADS_H
#define STASIS_THREADS_H

#include "task.h"

/* Freeze every thread of t besides the main one (already frozen). */
int threads_seize(struct dump_task *t);
/* Puts back each thread's registers as they were before the freeze (an interrupted syscall's
 * return value and restart), before threads_release. */
void threads_undo_freeze_eintr(struct dump_task *t);
/* Let them go on as before (a failed dump or --leave-running). */
void threads_release(struct dump_task *t);
/* How many signals core's threads have pending, in all. */
size_t threads_signal_count(const TaskCore *c);

struct rst_thread;
/* A thread's own fd table and cwd/umask (cr/thread-tables.c): saved, checked, handed to the blob. */
int thread_tables_dump(struct dump_task *t, pid_t tid, ThreadCore *tc);
bool thread_tables_valid(const struct restore_task *t, const ThreadCore *tc);
size_t thread_tables_args_size(const ThreadCore *tc);
int thread_tables_restore(struct restore_task *t, const ThreadCore *tc, struct rst_thread *th);

#endif
