/*
 * Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS), which fork shares between processes:
 * each object is saved once, and on restore every process maps the same object again.
 */
#ifndef STASIS_SHMEM_H
#define STASIS_SHMEM_H

#include <sys/shm.h>

#include "proc.h"
#include "task.h"

struct shmem_dump;

struct shmem_dump *shmem_dump_new(void);
/* "/SYSV0000abcd (deleted)" */
bool shmem_is_sysv_path(const char *path);
/* "/memfd:NAME (deleted)" */
bool shmem_is_memfd_path(const char *path);
/* Object ino (size bytes, named link in /proc), readable through read_path. */
int shmem_note(struct shmem_dump *sd, const char *read_path, const char *link, uint64_t ino,
	       uint64_t size);
/*
 * SysV segment shmid of the tree's own IPC namespace (cr/ipc-ns.c), readable through fd (kept
 * open). Once shmem_sysv_all_noted() says every segment of the namespace is noted, a mapping of
 * any other segment is an error.
 */
int shmem_note_sysv(struct shmem_dump *sd, int shmid, int fd, const struct shmid_ds *ds);
void shmem_sysv_all_noted(struct shmem_dump *sd);
/* Writes every noted object's pages to pages-0.img and the table to shmem.img (if any). */
int shmem_dump_all(struct shmem_dump *sd, int dirfd);

/* Restore, in stasis before the tree is created: check, create and fill every object. */
int shmem_restore_prepare(int dirfd, bool needed);
bool shmem_object_fits(uint64_t id, uint64_t end_offset);
/* Restore: is shmid a SysV segment of shmem.img (made by shmem_restore_prepare)? */
bool shmem_sysv_known(uint64_t shmid);
/* In a new process: a new open file of object id (above its fds), with open(2) flags. */
int shmem_open_object(struct restore_task *t, uint64_t id, int flags);

#endif
