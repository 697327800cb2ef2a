#ifndef STASIS_REGS_H
#define STASIS_REGS_H

#include <sys/types.h>
#include "image.h"

/* Tracer side of restore: the saved registers and xsave area into the stopped task. */
int regs_apply(pid_t pid, const TaskCore *core);

#endif
