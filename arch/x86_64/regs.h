#ifndef STASIS_REGS_H
#define STASIS_REGS_H

#include <sys/types.h>
#include <sys/user.h>

#include <stdbool.h>

#include "image.h"

/* Dump: registers as frozen plus the xsave area of thread tid. */
int regs_collect(pid_t tid, const struct user_regs_struct *r, GpRegs **regs,
		 ProtobufCBinaryData *xsave);
bool regs_image_valid(const GpRegs *regs, const ProtobufCBinaryData *xsave);
/* Tracer side of restore: the saved registers and xsave area into the stopped thread. */
int regs_apply(pid_t tid, const GpRegs *regs, const ProtobufCBinaryData *xsave);
/* Refused (said, -ENOTSUP): thread tid of process pid runs 32-bit (i386) code, or code of a
 * segment of its own, which stasis's 64-bit syscall injection and restorer cannot handle. */
int regs_refuse_compat(pid_t pid, pid_t tid, const struct user_regs_struct *r);
/* Before letting a frozen task go on: redo a wait that the freeze made return EINTR. */
int regs_undo_freeze_eintr(pid_t pid, const struct user_regs_struct *frozen);

#endif
