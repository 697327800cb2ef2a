/*
 * Open files that stasis opens itself before creating the tree: those of kinds that need it
 * (named pipes), and those shared by several processes of the tree (fork hands the same open file to the
 * child: one offset, one set of flags). stasis opens each such file once, before creating the
 * tree, with the first holder's kind and state; every new process inherits that fd and puts a
 * duplicate at its own fd number, so they share one open file again. So too the files that an
 * epoll watches and only other processes hold (cr/files/epoll.c registers them from here).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "pstree.h"
#include "tree-objects.h"
#include "tree-plan.h"

struct shared_file {
	pid_t pid;
	uint32_t fd;
	int held;   /* stasis' fd */
	bool later; /* held is /dev/null: the root opens the file there (shared_files_open_later) */
	pid_t opener; /* later, by this process of the tree rather than the root: its /proc file */
};

/* The run's open files that stasis opens itself, inherited by every new process; found by
 * (pid, fd) through a hash (each fd of a tree of 235 processes x 700 inherited fds asks). */
struct shared_state {
	struct shared_file *files;
	size_t n;
	int *slots;  /* index into files, -1: free; at most half full */
	size_t mask; /* slots - 1 (a power of two) */
};

static struct shared_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_shared_files);
}

static size_t slot_of(const struct shared_state *st, pid_t pid, uint32_t fd)
{
	return ((((uint64_t)(uint32_t)pid << 32) | fd) * 0x9e3779b97f4a7c15ull >> 24) & st->mask;
}

/* The slot of (pid, fd): its file's, or the free one where it goes. */
static size_t find_slot(const struct shared_state *st, pid_t pid, uint32_t fd)
{
	size_t s = slot_of(st, pid, fd);

	while (st->slots[s] >= 0 &&
	       (st->files[st->slots[s]].pid != pid || st->files[st->slots[s]].fd != fd))
		s = (s + 1) & st->mask;
	return s;
}

int shared_file_fd(const struct run_ctx *ctx, pid_t pid, uint32_t fd)
{
	const struct shared_state *st = state_of(ctx);
	size_t s;

	if (!st->slots)
		return -1;
	s = find_slot(st, pid, fd);
	return st->slots[s] >= 0 ? st->files[st->slots[s]].held : -1;
}

/* Room in the hash for n files. */
static int slots_reserve(struct shared_state *st, size_t n)
{
	size_t size = st->slots ? st->mask + 1 : 0;

	if (2 * n <= size)
		return 0;
	size = size ? size : 64;
	while (2 * n > size)
		size <<= 1;
	int *slots = xmalloc(size * sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	memset(slots, -1, size * sizeof(*slots));
	free(st->slots);
	st->slots = slots;
	st->mask = size - 1;
	for (size_t i = 0; i < st->n; i++)
		st->slots[find_slot(st, st->files[i].pid, st->files[i].fd)] = (int)i;
	return 0;
}

static const FdEntry *find_fd(const struct restore_task *t, uint32_t fd)
{
	for (size_t i = 0; i < t->fds->n_fds; i++)
		if (t->fds->fds[i]->fd == fd)
			return t->fds->fds[i];
	return NULL;
}

static int hold(struct shared_state *st, pid_t pid, uint32_t fd, int held, bool later, pid_t opener)
{
	struct shared_file *more = slots_reserve(st, st->n + 1) ? NULL
				   : xreallocarray(st->files, st->n + 1, sizeof(*st->files));

	if (!more) {
		close(held);
		return -ENOMEM;
	}
	st->files = more;
	st->files[st->n] = (struct shared_file){ pid, fd, held, later, opener };
	st->slots[find_slot(st, pid, fd)] = (int)st->n;
	st->n++;
	return 0;
}

/*
 * Whether pid is top, or is forked at restore by top or by a process forked below it (the
 * plan's creators, not the images' parents: an orphan is forked by a helper, a sibling by
 * CLONE_PARENT): then it inherits what top opened before it forked.
 */
static bool forked_below(const struct restore_tree *rt, pid_t pid, pid_t top)
{
	ssize_t k = tree_entry_index(rt->inv, pid), anc = tree_entry_index(rt->inv, top);

	for (size_t steps = 0; k >= 0 && anc >= 0 && steps <= rt->inv->n_tree; steps++) {
		if (k == anc)
			return true;
		if (k == 0)
			return false;
		k = tree_entry_index(rt->inv, rt->plan[k].creator);
	}
	return false;
}

/*
 * stasis holds the file of fd of pid (that process's own entry: neither a dup nor shared),
 * which fd user_fd of user_pid uses (shares it, or an epoll of it watches it).
 */
static int hold_entry(struct run_ctx *ctx, struct restore_tree *rt, pid_t pid, uint32_t fd,
		      pid_t user_pid, uint32_t user_fd)
{
	struct shared_state *st = state_of(ctx);
	struct restore_task *owner = NULL;
	size_t s = st->slots ? find_slot(st, pid, fd) : 0;

	if (st->slots && st->slots[s] >= 0) { /* held already: is user_pid below its opener? */
		const struct shared_file *f = &st->files[st->slots[s]];
		if (!f->opener || forked_below(rt, user_pid, f->opener))
			return 0;
		pr_err("restore pid %d fd %u: the file of pid %d fd %u can only be opened once pid %d "
		       "runs, which did not fork pid %d (not supported); nothing was started",
		       user_pid, user_fd, pid, fd, f->opener, user_pid);
		return -ENOTSUP;
	}
	for (size_t j = 0; j < rt->nr_tasks; j++)
		if (rt->tasks[j].pid == pid)
			owner = &rt->tasks[j];
	const FdEntry *o = owner ? find_fd(owner, fd) : NULL;
	const struct fd_kind_ops *ops = o ? fd_kind_of(o->kind) : NULL;
	if (!ops) {
		pr_err("image fds-%d.img: fd %u uses fd %u of pid %d, which the images do not hold",
		       user_pid, user_fd, fd, pid);
		return -EINVAL;
	}
	/* a file of /proc/P of a process P of the tree: P opens it before it forks its sharers */
	pid_t opener = ops->opened_by_process ? ops->opened_by_process(owner, o) : 0;
	if (opener > 0 && (!forked_below(rt, pid, opener) || !forked_below(rt, user_pid, opener))) {
		pr_err("restore pid %d fd %u: %s, shared with pid %d fd %u, can only be opened once pid "
		       "%d runs, and not both are it or forked below it (not supported); nothing was "
		       "started", pid, fd, o->path ? o->path : ops->name, user_pid, user_fd, opener);
		return -ENOTSUP;
	}
	unsigned logged = log_errors();
	/* a file of a reaped process of the tree's own namespace, a socket whose peer pid is one of
	 * it: there once the root is in it; a file of /proc of a process of the tree: once it runs */
	bool later = opener > 0 || (ops->opens_in_tree_ns && ops->opens_in_tree_ns(ctx, o));
	int held = later ? open("/dev/null", O_RDONLY | O_CLOEXEC) : ops->open(owner, o);
	if (held < 0 && later)
		held = -errno;
	if (held < 0)
		return log_unnamed(logged, held, "restore pid %d fd %u: cannot open %s", pid, fd,
				   o->path ? o->path : ops->name);
	return hold(st, pid, fd, held, later, opener);
}

pid_t fd_netns_maker(const struct restore_task *t, const FdEntry *e)
{
	(void)t;
	return e->has_netns_maker ? (pid_t)e->netns_maker : 0;
}

int shared_files_open_later(struct restore_tree *rt, const struct restore_task *self, bool own_mounts)
{
	struct shared_state *st = state_of(rt->ctx);

	for (size_t i = 0; i < st->n; i++) {
		if (!st->files[i].later ||
		    (st->files[i].opener ? st->files[i].opener != self->pid : !self->is_root))
			continue;
		struct restore_task *owner = pstree_task(rt, st->files[i].pid);
		const FdEntry *o = find_fd(owner, st->files[i].fd);
		if ((o->has_mntns_maker && st->files[i].opener == (pid_t)o->mntns_maker) != own_mounts)
			continue;
		unsigned logged = log_errors();
		int fd = fd_kind_of(o->kind)->open(owner, o);
		if (fd < 0)
			return log_unnamed(logged, fd, "restore pid %d fd %u: cannot open %s", owner->pid,
					   o->fd, o->path ? o->path : fd_kind_of(o->kind)->name);
		int err = dup2(fd, st->files[i].held) < 0 ? -errno : 0;
		close(fd);
		if (err) {
			pr_err("restore pid %d fd %u: cannot put %s at fd %d: %s", owner->pid, o->fd,
			       o->path ? o->path : fd_kind_of(o->kind)->name, st->files[i].held, strerror(-err));
			return err;
		}
	}
	return 0;
}

static int prepare_shared_files(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct shared_state *st = state_of(ctx);
	struct restore_task *tasks = rt->tasks;
	size_t nr_tasks = rt->nr_tasks;
	int err;

	/* kinds that stasis itself must open (named pipes), and sockets of the tree's network
	 * namespace that a process of a nested one holds (netns/net-nested.c) */
	for (size_t i = 0; i < nr_tasks; i++) {
		for (size_t k = 0; k < tasks[i].fds->n_fds; k++) {
			const FdEntry *e = tasks[i].fds->fds[k];
			const struct fd_kind_ops *ops = fd_kind_of(e->kind);
			if (!ops || !(ops->open_in_stasis || e->made_in_tree_ns))
				continue;
			unsigned logged = log_errors();
			int held = ops->open(&tasks[i], e);
			if (held < 0)
				return log_unnamed(logged, held, "restore pid %d fd %u: cannot open %s",
						   tasks[i].pid, e->fd, e->path ? e->path : ops->name);
			if ((err = hold(st, tasks[i].pid, e->fd, held, false, 0)))
				return err;
		}
	}
	/* files epolls watch that only other processes hold: before the epolls (shared too) */
	for (size_t i = 0; i < nr_tasks; i++)
		for (size_t k = 0; k < tasks[i].fds->n_fds; k++) {
			const FdEntry *e = tasks[i].fds->fds[k];
			for (size_t j = 0; e->kind == FD_KIND__FD_EPOLL && j < e->n_targets; j++)
				if (e->targets[j]->has_file_pid &&
				    (err = hold_entry(ctx, rt, e->targets[j]->file_pid, e->targets[j]->file_fd,
						      tasks[i].pid, e->fd)))
					return err;
		}
	for (size_t i = 0; i < nr_tasks; i++) {
		const FdTable *tab = tasks[i].fds;
		for (size_t k = 0; k < tab->n_fds; k++) {
			const FdEntry *e = tab->fds[k];
			if (e->kind == FD_KIND__FD_SHARED &&
			    (err = hold_entry(ctx, rt, e->shared_pid, e->shared_fd, tasks[i].pid, e->fd)))
				return err;
		}
	}
	return 0;
}

static void close_shared_files(struct run_ctx *ctx)
{
	struct shared_state *st = state_of(ctx);

	for (size_t i = 0; i < st->n; i++)
		close(st->files[i].held);
	st->n = 0;
	if (st->slots)
		memset(st->slots, -1, (st->mask + 1) * sizeof(*st->slots));
}

static void undo_shared_files(struct run_ctx *ctx, bool restored)
{
	(void)restored;
	close_shared_files(ctx);
}

static void free_shared_files(void *state)
{
	free(((struct shared_state *)state)->files);
	free(((struct shared_state *)state)->slots);
}

const struct tree_object_ops tree_shared_files = {
	.name = "open files shared by several processes",
	.state_size = sizeof(struct shared_state),
	.free_state = free_shared_files,
	.prepare = prepare_shared_files,
	.close = close_shared_files,
	.undo = undo_shared_files,
};
