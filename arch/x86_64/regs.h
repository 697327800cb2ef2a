#ifndef STASIS_REGS_H
#define STASIS_REGS_H

#include <sys/types.h>
#include <sys/user.h>

#include "image.h"

/* Tracer side of restore: the saved registers and xsave area into the stopped task. */
int regs_apply(pid_t pid, const TaskCore *core);
/* Before letting a frozen task go on: redo a wait that the freeze made return EINTR. */
int regs_undo_freeze_eintr(pid_t pid, const struct user_regs_struct *frozen);

#endif
