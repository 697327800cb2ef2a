/*
 * memfd fds. The object itself (name, size, content) is a shared memory object of
 * cr/shmem.c, saved once however many fds and mappings refer to it; the fd keeps its flags
 * and offset. The file memfd_create() made is that file again (the one stasis made the
 * object with): it holds no write access on the memfd, so the memfd can still be executed
 * (execveat, fexecve). Any other open file of it was reopened through /proc and is again.
 * A memfd_secret() file's fd too: its pages are copied out by the process (cr/secretmem.c);
 * restored, it is stasis's one open file of the object (it cannot be reopened), with its
 * status flags.
 * The file behind MAP_SHARED|MAP_ANONYMOUS memory too ("/dev/zero (deleted)", opened through
 * /proc/PID/map_files): an fd of that shared object, reopened like any memfd file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "secretmem.h"
#include "shmem.h"

#define REOPEN_DROP (O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC)
/* what F_SETFL changes (O_ASYNC: armed by cr/files/fown.c) */
#define STATUS_FLAGS (O_APPEND | O_NONBLOCK | O_NOATIME | O_DIRECT)

static int dump_memfd(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	bool secret = shmem_is_secret_path(p->link);
	struct stat own;
	char path[64];

	if (!S_ISREG(p->st.st_mode) ||
	    (!shmem_is_memfd_path(p->link) && !secret && !shmem_is_anon_file(p->link, &p->st)))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", t->pid, p->fd);
	/* a secret file is copied out by the task through its own fd: not one carried in flight
	 * (stasis's copy of it, no task to run syscalls in) */
	if (secret && (!t->inj_active || stat(path, &own) || own.st_dev != p->st.st_dev ||
		       own.st_ino != p->st.st_ino))
		return 0;
	e->has_shmem_id = e->has_flags = e->has_pos = true;
	e->shmem_id = p->st.st_ino;
	e->flags = p->flags;
	e->pos = p->pos;
	if (!(e->path = xstrdup(p->link)))
		return -ENOMEM;
	if (secret) {
		int err = secretmem_dump_fd(t, p->fd, p->st.st_ino, p->st.st_size);
		return err ? err : 1;
	}
	int err = shmem_note(t->ctx, path, p->link, p->st.st_ino, p->st.st_size);
	if (err)
		return err;
	shmem_note_memfd_file(t->ctx, p->st.st_ino, t->vpid, p->fd, p->flags);
	return 1;
}

static int open_memfd(struct restore_task *t, const FdEntry *e)
{
	bool created = shmem_memfd_created_at(t->ctx, e->shmem_id, t->pid, e->fd) ||
		       shmem_is_secret(t->ctx, e->shmem_id);
	int fd = created ? shmem_object_file(t, e->shmem_id)
			 : shmem_open_object(t, e->shmem_id, e->flags & ~REOPEN_DROP);

	if (fd >= 0 && ((created && fcntl(fd, F_SETFL, e->flags & STATUS_FLAGS)) ||
			(e->pos && lseek(fd, e->pos, SEEK_SET) < 0))) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

const struct fd_kind_ops fd_kind_memfd = {
	.name = "memfd",
	.dump = dump_memfd,
	.open = open_memfd,
	.kind = FD_KIND__FD_SHMEM,
};
