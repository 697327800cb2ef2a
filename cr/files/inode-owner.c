/*
 * The owner of an open file whose inode lives only while it is open: a pipe's (pipefs) and a
 * socket's (sockfs). The kernel gives such an inode its creator's fsuid and fsgid; fchown
 * changes them (a socket's owner is also its sk_uid, which routing and netfilter's owner
 * match read). Read from the dumped fd's inode; set by stasis on a copy of the restored
 * process's fd (the same file) once the tree exists, when the inode made again has another
 * owner. Ids are stasis's view, at dump and at restore.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "util.h"

/* A pipe made by pipe() or a socket: a FIFO's owner is its file's, kept with the file. */
static bool inode_lives_while_open(const struct fd_probe *p)
{
	return S_ISSOCK(p->st.st_mode) || (S_ISFIFO(p->st.st_mode) && !strncmp(p->link, "pipe:[", 6));
}

/* Not one from outside the tree (--shell-job, --inherit-fd): the restoring caller's own. */
static bool made_by_restore(const FdEntry *e)
{
	return e->kind != FD_KIND__FD_INHERITED && e->kind != FD_KIND__FD_EXTERNAL;
}

void inode_owner_dump(const struct fd_probe *p, FdEntry *e)
{
	if (!inode_lives_while_open(p) || !made_by_restore(e))
		return;
	e->has_inode_uid = e->has_inode_gid = true;
	e->inode_uid = p->st.st_uid;
	e->inode_gid = p->st.st_gid;
}

int inode_owner_restore(const struct restore_task *t, const FdEntry *e)
{
	struct stat st;

	if (!e->has_inode_uid || !e->has_inode_gid || !made_by_restore(e))
		return 0;
	auto_close int copy = task_fd_copy(t->host_pid, e->fd);
	if (copy < 0 || fstat(copy, &st)) {
		pr_err("restore pid %d fd %u: cannot reach it to give it its owner: %s", t->pid, e->fd,
		       strerror(copy < 0 ? -copy : errno));
		return copy < 0 ? copy : -errno;
	}
	if (st.st_uid == e->inode_uid && st.st_gid == e->inode_gid)
		return 0;
	if (fchown(copy, e->inode_uid, e->inode_gid)) {
		pr_perror("restore pid %d fd %u: cannot give its inode the owner %u:%u", t->pid, e->fd,
			  e->inode_uid, e->inode_gid);
		return -errno;
	}
	return 0;
}
