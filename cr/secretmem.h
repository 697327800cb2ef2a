/*
 * memfd_secret() memory at dump: read by the frozen process itself through injected syscalls
 * (nothing outside it can), into the object cr/shmem.c saves. Both need the task's injection
 * context (t->inj_active: the memory layout and fd steps of the dump).
 */
#ifndef STASIS_SECRETMEM_H
#define STASIS_SECRETMEM_H

#include <stdint.h>

#include "task.h"

/* A MAP_SHARED mapping [start, end) of secret file ino (size bytes) at byte offset pgoff. */
int secretmem_dump_mapping(struct dump_task *t, uint64_t start, uint64_t end, uint64_t pgoff,
			   uint64_t ino, uint64_t size);
/* fd of the task, a secret file ino of size bytes: its whole content (mapped for the copy). */
int secretmem_dump_fd(struct dump_task *t, int fd, uint64_t ino, uint64_t size);

#endif
