/*
 * Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS), which fork shares between processes:
 * each object is saved once, and on restore every process maps the same object again.
 */
#ifndef STASIS_SHMEM_H
#define STASIS_SHMEM_H

#include "proc.h"
#include "task.h"

struct shmem_dump;

struct shmem_dump *shmem_dump_new(void);
/* A mapping of object ino (of size bytes) seen in pid. */
int shmem_note_mapping(struct shmem_dump *sd, pid_t pid, const struct proc_vma *pv, uint64_t ino,
		       uint64_t size);
/* Writes every noted object's pages to pages-0.img and the table to shmem.img (if any). */
int shmem_dump_all(struct shmem_dump *sd, int dirfd);

/* Restore, in stasis before the tree is created: check, create and fill every object. */
int shmem_restore_prepare(int dirfd, bool needed);
bool shmem_object_fits(uint64_t id, uint64_t end_offset);
/* In a new process: an fd (above its fds) for object id, checking that the mapping fits. */
int shmem_open_object(struct restore_task *t, uint64_t id, uint64_t end_offset);

#endif
