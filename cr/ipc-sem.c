/*
 * SysV semaphore sets of the tree's own IPC namespace (cr/ipc-ns.c runs these): every value
 * read with GETALL; made again with the same id, key, mode, owner and creator, values set
 * with SETALL. SEM_UNDO adjustments cannot be read from user space: what the dump's kill gave
 * back of them cr/ipc-host-sem.c saves, and their processes take again.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/sem.h>

#include "ipc-objects.h"
#include "log.h"
#include "task.h"
#include "util.h"

#define SEMVMX 32767

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *__buf;
};

int ipc_sem_save_all(IpcNs *ns)
{
	struct seminfo info;
	int max = semctl(0, 0, SEM_INFO, (union semun){ .__buf = &info });

	if (max < 0) {
		pr_perror("dump: cannot list SysV semaphore sets");
		return -errno;
	}
	if (!(ns->sem_sets = xzalloc((max + 1) * sizeof(*ns->sem_sets))))
		return -ENOMEM;
	for (int idx = 0; idx <= max; idx++) {
		struct semid_ds ds;
		int id = semctl(idx, 0, SEM_STAT_ANY, (union semun){ .buf = &ds });
		if (id < 0 && errno == EINVAL)
			continue;
		if (id < 0) {
			pr_perror("dump: cannot read SysV semaphore set at index %d", idx);
			return -errno;
		}
		auto_free unsigned short *vals = xzalloc(ds.sem_nsems * sizeof(*vals));
		if (!vals)
			return -ENOMEM;
		if (semctl(id, 0, GETALL, (union semun){ .array = vals })) {
			pr_perror("dump: cannot read the values of SysV semaphore set %d", id);
			return -errno;
		}
		SysvSemSet *s = xzalloc(sizeof(*s));
		if (!s)
			return -ENOMEM;
		sysv_sem_set__init(s);
		ns->sem_sets[ns->n_sem_sets++] = s; /* freed with the image, whole or not */
		if (!(s->perm = ipc_perm_save(id, &ds.sem_perm)) ||
		    !(s->values = xzalloc(ds.sem_nsems * sizeof(*s->values))))
			return -ENOMEM;
		for (size_t k = 0; k < ds.sem_nsems; k++)
			s->values[s->n_values++] = vals[k];
	}
	return 0;
}

int ipc_sem_validate(const char *image, const IpcNs *ns)
{
	auto_free const SysvPerm **perms = xzalloc((ns->n_sem_sets + 1) * sizeof(*perms));

	if (!perms)
		return -ENOMEM;
	for (size_t i = 0; i < ns->n_sem_sets; i++) {
		const SysvSemSet *s = ns->sem_sets[i];
		bool ok = ipc_perm_ok(s->perm, perms, i) && s->n_values >= 1 && s->n_values <= INT_MAX;
		for (size_t k = 0; ok && k < s->n_values; k++)
			ok = s->values[k] <= SEMVMX;
		if (!ok) {
			pr_err("image %s: semaphore set %zu (id %u) is invalid", image, i, s->perm->id);
			return -EINVAL;
		}
		perms[i] = s->perm;
	}
	return 0;
}

int ipc_sem_restore_one(const SysvSemSet *s)
{
	int id = s->perm->id, err;
	struct semid_ds ds;
	auto_free unsigned short *vals = xzalloc(s->n_values * sizeof(*vals));

	if (!vals)
		return -ENOMEM;
	if ((err = ipc_make_object(s->perm, s->n_values)))
		return err;
	for (size_t k = 0; k < s->n_values; k++)
		vals[k] = s->values[k];
	if (semctl(id, 0, IPC_STAT, (union semun){ .buf = &ds }) == 0) {
		ds.sem_perm.uid = s->perm->uid;
		ds.sem_perm.gid = s->perm->gid;
		ds.sem_perm.mode = s->perm->mode;
		if (semctl(id, 0, IPC_SET, (union semun){ .buf = &ds }) == 0 &&
		    semctl(id, 0, SETALL, (union semun){ .array = vals }) == 0)
			return 0;
	}
	pr_perror("restore: cannot set the owner, mode and values of SysV semaphore set %d", id);
	return -errno;
}

int ipc_sem_restore_all(const IpcNs *ns)
{
	int err;

	for (size_t i = 0; i < ns->n_sem_sets; i++)
		if ((err = ipc_sem_restore_one(ns->sem_sets[i])))
			return err;
	return 0;
}

int ipc_sem_key(int id, key_t *key)
{
	struct semid_ds ds;

	if (semctl(id, 0, IPC_STAT, (union semun){ .buf = &ds }))
		return -errno;
	*key = ds.sem_perm.__key;
	return 0;
}
