/*
 * Open files that stasis opens itself before creating the tree: those of kinds that need it
 * (named pipes), and those shared by several processes of the tree (fork hands the same open file to the
 * child: one offset, one set of flags). stasis opens each such file once, before creating the
 * tree, with the first holder's kind and state; every new process inherits that fd and puts a
 * duplicate at its own fd number, so they share one open file again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

struct shared_file {
	pid_t pid;
	uint32_t fd;
	int held; /* stasis' fd */
};

static struct shared_file *shared;
static size_t nr_shared;

int shared_file_fd(pid_t pid, uint32_t fd)
{
	for (size_t i = 0; i < nr_shared; i++)
		if (shared[i].pid == pid && shared[i].fd == fd)
			return shared[i].held;
	return -1;
}

static const FdEntry *find_fd(const struct restore_task *t, uint32_t fd)
{
	for (size_t i = 0; i < t->fds->n_fds; i++)
		if (t->fds->fds[i]->fd == fd)
			return t->fds->fds[i];
	return NULL;
}

static int hold(pid_t pid, uint32_t fd, int held)
{
	shared = realloc(shared, (nr_shared + 1) * sizeof(*shared));
	if (!shared)
		return -ENOMEM;
	shared[nr_shared++] = (struct shared_file){ pid, fd, held };
	return 0;
}

int shared_files_prepare(struct restore_task *tasks, size_t nr_tasks)
{
	int err;

	/* kinds that stasis itself must open (named pipes) */
	for (size_t i = 0; i < nr_tasks; i++) {
		for (size_t k = 0; k < tasks[i].fds->n_fds; k++) {
			const FdEntry *e = tasks[i].fds->fds[k];
			const struct fd_kind_ops *ops = fd_kind_of(e->kind);
			if (!ops || !ops->open_in_stasis)
				continue;
			int held = ops->open(&tasks[i], e);
			if (held < 0) {
				pr_err("restore pid %d fd %u: cannot open %s: %s", tasks[i].pid, e->fd,
				       e->path ? e->path : ops->name, strerror(-held));
				return held;
			}
			if ((err = hold(tasks[i].pid, e->fd, held)))
				return err;
		}
	}
	for (size_t i = 0; i < nr_tasks; i++) {
		const FdTable *tab = tasks[i].fds;
		for (size_t k = 0; k < tab->n_fds; k++) {
			const FdEntry *e = tab->fds[k];
			struct restore_task *owner = NULL;
			if (e->kind != FD_KIND__FD_SHARED || shared_file_fd(e->shared_pid, e->shared_fd) >= 0)
				continue;
			for (size_t j = 0; j < nr_tasks; j++)
				if (tasks[j].pid == (pid_t)e->shared_pid)
					owner = &tasks[j];
			const FdEntry *o = owner ? find_fd(owner, e->shared_fd) : NULL;
			const struct fd_kind_ops *ops = o ? fd_kind_of(o->kind) : NULL;
			if (!ops) {
				pr_err("image fds-%d.img: fd %u is shared with fd %u of pid %u, which the "
				       "images do not hold",
				       tasks[i].pid, e->fd, e->shared_fd, e->shared_pid);
				return -EINVAL;
			}
			int held = ops->open(owner, o);
			if (held < 0) {
				pr_err("restore pid %u fd %u: cannot open %s: %s", e->shared_pid, e->shared_fd,
				       o->path ? o->path : ops->name, strerror(-held));
				return held;
			}
			if ((err = hold(e->shared_pid, e->shared_fd, held)))
				return err;
		}
	}
	return 0;
}

void shared_files_close_all(void)
{
	for (size_t i = 0; i < nr_shared; i++)
		close(shared[i].held);
	nr_shared = 0;
}
