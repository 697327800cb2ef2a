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
#include <sys/stat.h>

#include "run.h"
#include "task.h"

/* "/SYSV0000abcd (deleted)" */
bool shmem_is_sysv_path(const char *path);
/* "/memfd:NAME (deleted)" */
bool shmem_is_memfd_path(const char *path);
/* "/secretmem (deleted)": a memfd_secret() file */
bool shmem_is_secret_path(const char *path);
/*
 * The file behind MAP_SHARED|MAP_ANONYMOUS memory ("/dev/zero (deleted)", a regular file of the
 * kernel's internal shmem mount, where memfds live too) as an fd or a mapping names it, with
 * st its stat: reached through /proc/PID/map_files, it can be held as an fd or mapped again,
 * MAP_PRIVATE too, and is that same object.
 */
bool shmem_is_anon_file(const char *path, const struct stat *st);
/* Dump: object ino (size bytes, named link in /proc), readable through read_path. */
int shmem_note(struct run_ctx *ctx, const char *read_path, const char *link, uint64_t ino,
	       uint64_t size);
/*
 * Dump: an open file of memfd ino (noted already) that fd of pid (the restored pid) holds, its
 * own entry (neither a dup nor shared), with its open(2) flags: shmem.img says which one is
 * the file memfd_create() made, if it is still open.
 */
void shmem_note_memfd_file(struct run_ctx *ctx, uint64_t ino, pid_t pid, int fd, unsigned flags);
/*
 * Dump: SysV segment shmid of the tree's own IPC namespace (cr/ipc-ns.c), readable through fd
 * (kept open). Once shmem_sysv_all_noted() says every segment of the namespace is noted, a
 * mapping of any other segment is an error.
 */
int shmem_note_sysv(struct run_ctx *ctx, int shmid, int fd, const struct shmid_ds *ds);
void shmem_sysv_all_noted(struct run_ctx *ctx);
/*
 * Dump: memfd_secret() file ino of size bytes, whose pages only the tree's processes can read
 * (cr/secretmem.c has them copy the pages out). 1 if its range [off, end) was read already
 * (or lies past its size), 0 if the caller is to read it and hand it to shmem_secret_add(), <0.
 */
int shmem_note_secret(struct run_ctx *ctx, uint64_t ino, uint64_t size, uint64_t off,
		      uint64_t end);
/* Dump: copy, a memfd holding the pages of [off, end) of secret file ino at their offsets,
 * taken (always closed): its data go into the object's content. 0 or <0 (said). */
int shmem_secret_add(struct run_ctx *ctx, uint64_t ino, uint64_t off, uint64_t end, int copy);

/* Restore: shmem.img is needed whatever the tasks map (the IPC namespace's segments). */
void shmem_require(struct run_ctx *ctx);
/* Restore into an IPC namespace the tree joins: a SysV segment that is there already is used as
 * it is (its content is live: the namespace's other processes use it), not filled. */
void shmem_sysv_keep_live(struct run_ctx *ctx);
/* Restore, once validated: is shmid a SysV segment of shmem.img? */
bool shmem_sysv_known(const struct run_ctx *ctx, uint64_t shmid);
/* In a new process: a new open file of object id (above its fds), with open(2) flags. */
int shmem_open_object(struct restore_task *t, uint64_t id, int flags);
/*
 * In a new process: stasis's own open file of object id (above its fds), which every process
 * shares: for a memfd the file memfd_create() made, which holds no write access on it (a file
 * reopened for writing does: exec of the memfd then fails with ETXTBSY).
 */
int shmem_object_file(struct restore_task *t, uint64_t id);
/*
 * In a new process: where stasis keeps object id as a mapping of the whole object, which the
 * process inherited (its blob takes its mappings of the object from there with mremap), and its
 * length in *len; 0 if the object is an fd of stasis's instead.
 */
uint64_t shmem_kept_mapping(const struct run_ctx *ctx, uint64_t id, uint64_t *len);
/* In a new process: the range of those mappings (cr/free-range.c), for its blob to unmap once its
 * own are taken; *len 0: none. */
void shmem_kept_reserve(const struct run_ctx *ctx, uint64_t *start, uint64_t *len);
/*
 * Restore, by stasis once every process's mappings exist: the seals of the memfds sealed
 * against future writes (writable shared mappings of them made before the seal could not be
 * made after it). 0, or <0 having said which memfd.
 */
int shmem_seal_late(const struct run_ctx *ctx);
/* Restore, once validated: is object id a memfd_secret() file (only stasis's file of it)? */
bool shmem_is_secret(const struct run_ctx *ctx, uint64_t id);
/* Restore, once validated: the huge pages the objects need from the pool, added to need[N] for
 * pages of 2^N bytes (a SysV segment that is still there is not made again). */
void shmem_huge_pages_count(const struct run_ctx *ctx, uint64_t need[64]);
/* Restore, once validated: the size of the huge pages of object id (0: not of huge pages). */
uint64_t shmem_huge_page_size(const struct run_ctx *ctx, uint64_t id);
/* Is fd of pid the file memfd_create() made for memfd id (shmem_object_file's)? */
bool shmem_memfd_created_at(const struct run_ctx *ctx, uint64_t id, pid_t pid, uint32_t fd);

#endif
