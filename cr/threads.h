#ifndef STASIS_THREADS_H
#define STASIS_THREADS_H

#include "task.h"

/* Freeze every thread of t besides the main one (already frozen). */
int threads_seize(struct dump_task *t);
/* Let them go on as before (a failed dump or --leave-running). */
void threads_release(struct dump_task *t);
/* After SIGKILL of the process: collect each thread's exit as its tracer. */
size_t threads_signal_count(const TaskCore *c);

#endif
