/*
 * The tree's own IPC namespace: its SysV message queues, semaphore sets and sysctls
 * (ipc-ns.img). Its SysV shm segments go to shmem.img through cr/shmem.c.
 */
#ifndef STASIS_IPC_NS_H
#define STASIS_IPC_NS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/ipc.h>

#include "image.h"

struct dump_tree;
struct shmem_dump;

/*
 * Dump, with the tree frozen: every task must be in the root's IPC namespace. If that is not
 * stasis's own, writes ipc-ns.img and notes every shm segment of the namespace in shmem;
 * *own says which. In the host's namespace only warns about queues and sets the tree uses.
 */
int ipc_ns_dump(const struct dump_tree *tr, struct shmem_dump *shmem, int dirfd, bool *own);

/*
 * Restore, in stasis's main thread before any SysV object is made and before the tree:
 * reads and checks ipc-ns.img (if the inventory says there is one), then moves stasis into a
 * new IPC namespace and raises its limits as far as the saved objects need.
 */
int ipc_ns_restore_prepare(int dirfd, const Inventory *inv);
/* How many shm segments of the namespace shmem.img must hold (0 without ipc-ns.img). */
size_t ipc_ns_shm_count(void);
/*
 * After shmem.img's objects are made: checks that its segments are there, makes the queues
 * and semaphore sets, sets the sysctls as saved.
 */
int ipc_ns_restore_objects(void);

/* Restore: kernel.KIND_next_id (KIND "msg", "sem", "shm"), so the next object gets id. */
int ipc_set_next_id(const char *kind, int id);
/* The calling thread makes SysV objects as creator uid/gid until ipc_as_self(). */
int ipc_as_creator(uint32_t uid, uint32_t gid);
void ipc_as_self(void);

/* ---- between cr/ipc-ns.c and its kinds of object (cr/ipc-msg.c, cr/ipc-sem.c) ---- */

/* An object's id, key, mode, owner and creator, as the image keeps them. */
SysvPerm *ipc_perm_save(int id, const struct ipc_perm *ip);
/* p is in range, and no other object of its kind before it (n of prev) has its id or key. */
bool ipc_perm_ok(const SysvPerm *p, const SysvPerm *const *prev, size_t n);
/* Object p made again (a queue, or a set of nsems), by its creator, with its id and key. */
int ipc_make_object(const SysvPerm *p, int nsems);

static inline unsigned long long ipc_max(unsigned long long a, unsigned long long b)
{
	return a > b ? a : b;
}

/* In the namespace (the dump's helper): every object of the kind into ns. */
int ipc_msg_save_all(IpcNs *ns);
int ipc_sem_save_all(IpcNs *ns);
/* Restore: every object of the kind in ns checked, then made again. */
int ipc_msg_validate(const IpcNs *ns);
int ipc_sem_validate(const IpcNs *ns);
int ipc_msg_restore_all(const IpcNs *ns);
int ipc_sem_restore_all(const IpcNs *ns);
/* The largest message and the most bytes a queue holds while it is refilled (raised only). */
void ipc_msg_needs(const IpcNs *ns, unsigned long long *largest, unsigned long long *room);

#endif
