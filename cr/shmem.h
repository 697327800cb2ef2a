/*
 * Shared memory objects (MAP_SHARED|MAP_ANONYMOUS shared by fork, memfds, SysV segments): each
 * object is saved once, and on restore every process maps or opens the same object again. A
 * tree-wide kind (tree_shmem); its state lives in the run context.
 */
#ifndef STASIS_SHMEM_H
#define STASIS_SHMEM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/shm.h>

#include "run.h"
#include "task.h"

/* "/SYSV0000abcd (deleted)" */
bool shmem_is_sysv_path(const char *path);
/* "/memfd:NAME (deleted)" */
bool shmem_is_memfd_path(const char *path);
/* Dump: object ino (size bytes, named link in /proc), readable through read_path. */
int shmem_note(struct run_ctx *ctx, const char *read_path, const char *link, uint64_t ino,
	       uint64_t size);
/*
 * Dump: SysV segment shmid of the tree's own IPC namespace (cr/ipc-ns.c), readable through fd
 * (kept open). Once shmem_sysv_all_noted() says every segment of the namespace is noted, a
 * mapping of any other segment is an error.
 */
int shmem_note_sysv(struct run_ctx *ctx, int shmid, int fd, const struct shmid_ds *ds);
void shmem_sysv_all_noted(struct run_ctx *ctx);

/* Restore: shmem.img is needed whatever the tasks map (the IPC namespace's segments). */
void shmem_require(struct run_ctx *ctx);
/* Restore, once validated: is shmid a SysV segment of shmem.img? */
bool shmem_sysv_known(const struct run_ctx *ctx, uint64_t shmid);
/* In a new process: a new open file of object id (above its fds), with open(2) flags. */
int shmem_open_object(struct restore_task *t, uint64_t id, int flags);

#endif
