/*
 * What the SysV IPC kinds share: an object's identity (id, key, mode, owner, creator) saved
 * and made again, the namespace's sysctls, and the calls between cr/ipc-ns.c and the kinds of
 * object it holds (cr/ipc-msg.c, cr/ipc-sem.c; shm segments go through cr/shmem.c).
 */
#ifndef STASIS_IPC_OBJECTS_H
#define STASIS_IPC_OBJECTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/ipc.h>
#include <sys/types.h>

#include "image.h"

/* Writes value to /proc/sys/NAME (name like "kernel/msgmax"); says what failed. */
int ipc_write_sysctl(const char *name, const char *value);
/* An IPC namespace's sysctls as text (cr/ipc-ns.c), "" for one the kernel does not have. */
#define IPC_SYSCTL_VALUE_MAX 128
#define IPC_SYSCTLS_MAX 16
struct ipc_sysctl_values {
	char value[IPC_SYSCTLS_MAX][IPC_SYSCTL_VALUE_MAX + 1];
};
/* Dump: read in the calling thread's namespace (a helper inside it). */
void ipc_sysctls_read(struct ipc_sysctl_values *v);
/* Dump: v as the image keeps them, into *out (n of them, *n 0 at first). */
int ipc_sysctls_fill(const struct ipc_sysctl_values *v, IpcSysctl ***out, size_t *n);
/* Restore: those of image (its name for messages) known, each once, numbers. */
int ipc_sysctls_validate(const char *image, IpcSysctl *const *sysctls, size_t n);
/* Restore: written in the calling thread's namespace (next ids of -1 left alone). */
int ipc_sysctls_write(IpcSysctl *const *sysctls, size_t n);
/* Restore: kernel.KIND_next_id (KIND "msg", "sem", "shm"), so the next object gets id. */
int ipc_set_next_id(const char *kind, int id);

/* The calling thread's effective ids while it makes objects as their creator. */
struct ipc_self {
	uid_t euid;
	gid_t egid;
	bool switched;
};
/* The calling thread makes SysV objects as creator uid/gid until ipc_as_self(self). */
int ipc_as_creator(uint32_t uid, uint32_t gid, struct ipc_self *self);
void ipc_as_self(struct ipc_self *self);

/* An object's id, key, mode, owner and creator, as the image keeps them (NULL: out of memory). */
SysvPerm *ipc_perm_save(int id, const struct ipc_perm *ip);
/* p is in range, and no other object of its kind before it (n of prev) has its id or key. */
bool ipc_perm_ok(const SysvPerm *p, const SysvPerm *const *prev, size_t n);
/* Object p made again (a queue, or a set of nsems), by its creator, with its id and key. */
int ipc_make_object(const SysvPerm *p, int nsems);

static inline unsigned long long ipc_max(unsigned long long a, unsigned long long b)
{
	return a > b ? a : b;
}

/* A namespace's sysctls, message queues and semaphore sets (not its shm segments: cr/shmem.c):
 * saved in the calling thread's namespace (a helper inside it); checked as read from image;
 * made again in the calling thread's new namespace (the limits raised first as the objects
 * need, the sysctls as saved last). */
int ipc_ns_save_objects(IpcNs *ns);
int ipc_ns_validate_objects(const char *image, const IpcNs *ns);
int ipc_ns_make_objects(const IpcNs *ns);
/* Has pid a SEM_UNDO list (cr/ipc-host-sem.c)? Cannot tell: yes. */
bool ipc_has_undo_list(pid_t pid);

/* In the namespace (the dump's helper): every object of the kind into ns. */
int ipc_msg_save_all(IpcNs *ns);
int ipc_sem_save_all(IpcNs *ns);
/* Restore: every object of the kind in ns checked, then made again. */
int ipc_msg_validate(const char *image, const IpcNs *ns);
int ipc_sem_validate(const char *image, const IpcNs *ns);
int ipc_msg_restore_all(const IpcNs *ns);
int ipc_sem_restore_all(const IpcNs *ns);
/* One object made again (its id and key free in the calling thread's namespace). */
int ipc_msg_restore_one(const SysvMsgQueue *q);
int ipc_sem_restore_one(const SysvSemSet *s);
/* The key of the object of that id in the calling thread's namespace: 0, or -errno. */
int ipc_msg_key(int id, key_t *key);
int ipc_sem_key(int id, key_t *key);
/* The largest message and the most bytes a queue holds while it is refilled (raised only). */
void ipc_msg_needs(const IpcNs *ns, unsigned long long *largest, unsigned long long *room);

#endif
