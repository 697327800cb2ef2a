/* cr/sched.c: each thread's scheduling, set again by stasis just before the tree resumes. */
#ifndef STASIS_SCHED_ATTRS_H
#define STASIS_SCHED_ATTRS_H

#include <sys/types.h>

#include "image.pb-c.h"

void sched_restore(pid_t tid, const SchedAttrs *s);

#endif
