#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ipc-objects.h"
#include "log.h"
#include "task.h"
#include "util.h"

/*
 * The sysctls of an IPC namespace another user namespace owns are that one's root's to write
 * (the kernel gives no one else, not even host root, more than reading them): written as it,
 * the owner of the file.
 */
int ipc_write_sysctl(const char *name, const char *value)
{
	char path[96];
	size_t len = strlen(value);
	struct ipc_self self = { .switched = false };
	struct stat st;
	int err = 0;

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	if (access(path, W_OK) && errno == EACCES && !stat(path, &st) && st.st_uid != geteuid() &&
	    (err = ipc_as_creator(st.st_uid, st.st_gid, &self)))
		return err;
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, len) != (ssize_t)len) {
		err = fd < 0 ? -errno : -EINVAL;
		pr_perror("restore: cannot set sysctl %s to '%s'", name, value);
	}
	if (fd >= 0)
		close(fd);
	ipc_as_self(&self);
	return err;
}

int ipc_set_next_id(const char *kind, int id)
{
	char name[32], value[16];

	snprintf(name, sizeof(name), "kernel/%s_next_id", kind);
	snprintf(value, sizeof(value), "%d", id);
	return ipc_write_sysctl(name, value);
}

int ipc_as_creator(uint32_t uid, uint32_t gid, struct ipc_self *self)
{
	self->euid = geteuid();
	self->egid = getegid();
	self->switched = false;
	if (uid == self->euid && gid == self->egid)
		return 0;
	/* raw system calls: this thread only (glibc's wrappers would change every thread) */
	self->switched = true;
	if (syscall(SYS_setresgid, -1, gid, -1) || syscall(SYS_setresuid, -1, uid, -1)) {
		int err = -errno;
		pr_perror("restore: cannot act as uid %u gid %u to make a SysV object", uid, gid);
		ipc_as_self(self);
		return err;
	}
	return 0;
}

void ipc_as_self(struct ipc_self *self)
{
	if (!self->switched)
		return;
	self->switched = false;
	if (syscall(SYS_setresuid, -1, self->euid, -1) || syscall(SYS_setresgid, -1, self->egid, -1))
		pr_perror("restore: cannot act as uid %u gid %u again", self->euid, self->egid);
}

SysvPerm *ipc_perm_save(int id, const struct ipc_perm *ip)
{
	SysvPerm *p = xzalloc(sizeof(*p));

	if (!p)
		return NULL;
	sysv_perm__init(p);
	p->id = id;
	p->key = ip->__key;
	p->mode = ip->mode & 0777;
	p->uid = ip->uid;
	p->gid = ip->gid;
	p->cuid = ip->cuid;
	p->cgid = ip->cgid;
	return p;
}

bool ipc_perm_ok(const SysvPerm *p, const SysvPerm *const *prev, size_t n)
{
	if (p->id > INT_MAX || p->mode > 0777)
		return false;
	for (size_t j = 0; j < n; j++)
		if (prev[j]->id == p->id || (p->key && prev[j]->key == p->key))
			return false;
	return true;
}

int ipc_make_object(const SysvPerm *p, int nsems)
{
	const char *what = nsems ? "semaphore set" : "message queue";
	int flags = IPC_CREAT | IPC_EXCL | p->mode, got, err, saved_errno;
	struct ipc_self self;

	char next_id[48];

	/* /proc/sys read-only (a container's, for a namespace made inside it): the id the kernel
	 * gives, made in the same order into a namespace as new as it was, must be the one */
	snprintf(next_id, sizeof(next_id), "/proc/sys/kernel/%s_next_id", nsems ? "sem" : "msg");
	bool read_only = access(next_id, W_OK) != 0;
	if ((!read_only && (err = ipc_set_next_id(nsems ? "sem" : "msg", p->id))) ||
	    (err = ipc_as_creator(p->cuid, p->cgid, &self)))
		return err;
	got = nsems ? semget(p->key, nsems, flags) : msgget(p->key, flags);
	saved_errno = errno;
	ipc_as_self(&self);
	if (got == (int)p->id)
		return 0;
	if (got < 0) {
		errno = saved_errno;
		pr_perror("restore: cannot make SysV %s %u (key %#x)", what, p->id, p->key);
		return -saved_errno;
	}
	if (nsems)
		semctl(got, 0, IPC_RMID);
	else
		msgctl(got, IPC_RMID, NULL);
	pr_err("restore: SysV %s %u (key %#x) came back as %d%s", what, p->id, p->key, got,
	       read_only ? " (/proc/sys is read-only here: its id could not be asked for)" : "");
	return -EEXIST;
}
