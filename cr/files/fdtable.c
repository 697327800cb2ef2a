/*
 * The fd table: numbers, close-on-exec, sharing of one open file description by several fds
 * (dup), and dispatch to the kind of file behind each fd. An fd of a kind stasis does not
 * know fails the dump, naming the fd, the task and what the fd points to.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "dirty-track.h"
#include "files.h"
#include "log.h"
#include "restorer/restorer.h"
#include "seize.h"
#include "task.h"
#include "util.h"

#define MAX_FD_NUMBER (1u << 20)

/*
 * Close-on-exec: fdinfo's flags are the file's flags with O_CLOEXEC added for a close-on-exec
 * fd. A message queue keeps the O_CLOEXEC of its mq_open in its own flags (no other kind of
 * file does, checked on 6.18): for one, the fd's own flag is asked inside the task.
 */
static int fd_cloexec(struct dump_task *t, const struct fd_probe *p, bool *cloexec)
{
	uint64_t args[6] = { p->fd, F_GETFD };
	char path[64];
	struct statfs sf;
	int64_t ret;

	*cloexec = p->flags & O_CLOEXEC;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", t->pid, p->fd);
	if (!*cloexec || statfs(path, &sf) || sf.f_type != MQUEUE_MAGIC)
		return 0;
	if (inject_syscall(&t->inj, SYS_fcntl, args, &ret) || ret < 0) {
		pr_err("dump pid %d fd %d: cannot read its close-on-exec flag", t->pid, p->fd);
		return -EIO;
	}
	*cloexec = ret & FD_CLOEXEC;
	return 0;
}

static int same_open_file(pid_t pid1, int fd1, pid_t pid2, int fd2)
{
	return syscall(SYS_kcmp, pid1, pid2, KCMP_FILE, fd1, fd2) == 0;
}

/*
 * The same open file (one offset, one set of flags) held by a process dumped before this one,
 * as fork leaves it: the entry refers to that process's fd, resolved to the first holder.
 */
static bool find_in_earlier_process(const struct dump_task *t, int fd, FdEntry *e)
{
	for (size_t k = 0; k < t->tree_pos; k++) {
		const struct dump_task *u = &t->tree[k];
		for (size_t j = 0; j < u->fds->n_fds; j++) {
			const FdEntry *o = u->fds->fds[j];
			if (o->kind == FD_KIND__FD_DUP || !same_open_file(u->pid, o->fd, t->pid, fd))
				continue;
			e->kind = FD_KIND__FD_SHARED;
			e->has_shared_pid = e->has_shared_fd = true;
			e->shared_pid = o->kind == FD_KIND__FD_SHARED ? o->shared_pid : u->vpid;
			e->shared_fd = o->kind == FD_KIND__FD_SHARED ? o->shared_fd : o->fd;
			return true;
		}
	}
	return false;
}

static int dump_fds(struct dump_task *t)
{
	auto_free int *fds = NULL;
	size_t n;
	FdTable *tab = t->fds;
	int err = proc_list_numbers(t->pid, "fd", &fds, &n);

	if (err) {
		pr_perror("dump pid %d: cannot list its fds", t->pid);
		return err;
	}
	tab->fds = xzalloc(n * sizeof(*tab->fds));
	for (size_t i = 0; i < n; i++) {
		struct fd_probe p;
		FdEntry *e;
		auto_free char *info = NULL;

		if (dirty_track_owns_fd(t, fds[i]))
			continue; /* stasis's own, not the program's */
		e = xzalloc(sizeof(*e));
		fd_entry__init(e);
		if ((err = fd_probe(t->pid, fds[i], &p, &info)))
			return err;
		e->fd = fds[i];
		bool cloexec;
		if ((err = fd_cloexec(t, &p, &cloexec)))
			return err;
		e->cloexec = cloexec;
		tab->fds[tab->n_fds++] = e;
		for (size_t j = 0; j < i; j++) {
			FdEntry *prev = tab->fds[j];
			if (prev->kind != FD_KIND__FD_DUP && same_open_file(t->pid, prev->fd, t->pid, e->fd)) {
				e->kind = FD_KIND__FD_DUP;
				e->has_dup_of = true;
				e->dup_of = prev->fd;
				break;
			}
		}
		if (e->kind == FD_KIND__FD_DUP)
			continue;
		if (find_in_earlier_process(t, e->fd, e)) {
			if ((err = locks_dump_fd(t, &p, e, true)))
				return err;
			continue;
		}
		if (S_ISSOCK(p.st.st_mode) && (err = sockopts_dump(t->pid, e->fd, e))) {
			pr_err("dump pid %d fd %d: cannot read the options of %s: %s", t->pid, e->fd, p.link,
			       strerror(-err));
			return err;
		}
		int claimed = 0;
		for (size_t k = 0; k < fd_kinds_len && !claimed; k++) {
			if (!fd_kinds[k]->dump)
				continue; /* restore-only: claimed by a sibling kind's dump */
			e->kind = fd_kinds[k]->kind; /* the dump may refine it */
			claimed = fd_kinds[k]->dump(t, &p, e);
			if (claimed < 0)
				return claimed;
		}
		if (!claimed) {
			char what[320];
			pr_err("dump pid %d fd %d: %s is not supported yet (fdinfo: %s)", t->pid, e->fd, p.link,
			       fdinfo_one_line(info, what, sizeof(what)));
			return -ENOTSUP;
		}
		if ((err = locks_dump_fd(t, &p, e, false)))
			return err;
	}
	return 0;
}

static int validate_fds(struct restore_task *t)
{
	FdTable *tab = t->fds;

	for (size_t i = 0; i < tab->n_fds; i++) {
		FdEntry *e = tab->fds[i];
		bool ok = e->fd < MAX_FD_NUMBER && (i == 0 || e->fd > tab->fds[i - 1]->fd);
		if (e->kind == FD_KIND__FD_DUP) {
			ok = ok && e->has_dup_of && e->dup_of < e->fd;
			for (size_t j = 0; ok && j < i; j++)
				if (tab->fds[j]->fd == e->dup_of)
					goto next;
			ok = false;
		} else if (e->kind == FD_KIND__FD_SHARED) {
			ok = ok && e->has_shared_pid && e->has_shared_fd && e->shared_pid != (uint32_t)t->pid;
		} else {
			ok = ok && fd_kind_of(e->kind);
			ok = ok && (e->kind != FD_KIND__FD_PIPE || (e->has_pipe_id && e->has_flags));
			ok = ok && (e->kind != FD_KIND__FD_UNIX_PAIR || (e->has_pair_id && e->has_sock_ino));
			ok = ok && (e->kind != FD_KIND__FD_UNIX_PENDING || e->has_sock_ino);
			ok = ok && sockopts_valid(e);
		}
		if (!ok) {
			pr_err("image fds-%d.img: entry %zu (fd %u) is invalid", t->pid, i, e->fd);
			return -EINVAL;
		}
		const struct fd_kind_ops *ops = fd_kind_of(e->kind);
		int err = ops && ops->validate ? ops->validate(t, e) : 0;
		if (err)
			return err;
next:;
	}
	if (tab->n_fds)
		t->next_high_fd = tab->fds[tab->n_fds - 1]->fd + 1;
	return 0;
}

static const char *fd_what(const FdEntry *e)
{
	const struct fd_kind_ops *ops = fd_kind_of(e->kind);

	if (e->path)
		return e->path;
	if (e->ext_key)
		return e->ext_key;
	return ops ? ops->name : "file";
}

/* The open file of entry i, opened by its kind or inherited from stasis (shared files). */
static int open_entry(struct restore_task *t, const FdEntry *e)
{
	/* held by several processes: stasis opened it once, every process inherited it */
	int held = e->kind == FD_KIND__FD_SHARED ? shared_file_fd(t->ctx, e->shared_pid, e->shared_fd)
						  : shared_file_fd(t->ctx, t->pid, e->fd);
	int fd = held >= 0 ? fcntl(held, F_DUPFD_CLOEXEC, 0)
		 : e->kind == FD_KIND__FD_SHARED ? -ENOENT : fd_kind_of(e->kind)->open(t, e);
	int err;

	if (held >= 0 && fd < 0)
		fd = -errno;
	if (fd < 0) {
		if (e->kind == FD_KIND__FD_SHARED)
			pr_err("restore pid %d fd %u: the file it shares with pid %u fd %u is not open: %s",
			       t->pid, e->fd, e->shared_pid, e->shared_fd, strerror(-fd));
		else
			pr_err("restore pid %d fd %u: cannot open %s (%s): %s", t->pid, e->fd, fd_what(e),
			       fd_kind_of(e->kind)->name, strerror(-fd));
		return fd;
	}
	if (e->n_sockopts && e->kind != FD_KIND__FD_EXTERNAL && (err = sockopts_restore(fd, e))) {
		pr_err("restore pid %d fd %u: cannot set the socket options of %s: %s", t->pid, e->fd,
		       fd_what(e), strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

/*
 * In the new task: open every file above all numbers in use, drop the engine's own fds below
 * that, then move each file to its number, and let the kinds that need every number settle.
 */
static int restore_fds(struct restore_task *t)
{
	FdTable *tab = t->fds;
	auto_free int *tmp = calloc(tab->n_fds + 1, sizeof(int));
	int low_end = t->args->close_from; /* first helper fd: everything below is the task's */
	int err;

	if (!tmp)
		return -ENOMEM;
	for (size_t i = 0; i < tab->n_fds; i++) {
		FdEntry *e = tab->fds[i];
		if (e->kind == FD_KIND__FD_DUP)
			continue;
		int fd = open_entry(t, e);
		if (fd < 0)
			return fd;
		tmp[i] = restore_move_high(t, fd);
		if (tmp[i] < 0) {
			pr_err("restore pid %d fd %u: cannot move it above fd %d: %s", t->pid, e->fd,
			       t->next_high_fd, strerror(-tmp[i]));
			return tmp[i];
		}
	}
	if (low_end > 0 && syscall(SYS_close_range, 0, low_end - 1, 0)) {
		pr_perror("restore pid %d: cannot close fds below %d", t->pid, low_end);
		return -errno;
	}
	for (size_t i = 0; i < tab->n_fds; i++) {
		FdEntry *e = tab->fds[i];
		int src = e->kind == FD_KIND__FD_DUP ? (int)e->dup_of : tmp[i];
		if (dup3(src, e->fd, e->cloexec ? O_CLOEXEC : 0) < 0) {
			pr_perror("restore pid %d fd %u: cannot put %s at its number", t->pid, e->fd,
				  fd_what(e));
			return -errno;
		}
		if (e->kind != FD_KIND__FD_DUP)
			close(tmp[i]);
	}
	if ((err = locks_restore(tab)))
		return err;
	for (size_t i = 0; i < tab->n_fds; i++) {
		const struct fd_kind_ops *ops = fd_kind_of(tab->fds[i]->kind);
		if (ops && ops->settle && (err = ops->settle(t, tab->fds[i])))
			return err;
	}
	return 0;
}

/* Once the tree's mounts exist: each kind's files are still there. */
static int check_fds(struct restore_task *t)
{
	int err;

	for (size_t i = 0; i < t->fds->n_fds; i++) {
		const struct fd_kind_ops *ops = fd_kind_of(t->fds->fds[i]->kind);
		if (ops && ops->check && (err = ops->check(t, t->fds->fds[i])))
			return err;
	}
	return 0;
}

/* By stasis, the task stopped: the kinds' last word before the tree runs. */
static int finish_fds(struct restore_task *t)
{
	int err;

	for (size_t i = 0; i < t->fds->n_fds; i++) {
		const struct fd_kind_ops *ops = fd_kind_of(t->fds->fds[i]->kind);
		if (ops && ops->finish && (err = ops->finish(t, t->fds->fds[i])))
			return err;
	}
	return 0;
}

const struct state_ops state_fds = {
	.name = "file descriptors",
	.dump = dump_fds,
	.validate = validate_fds,
	.check = check_fds,
	.restore = restore_fds,
	.finish = finish_fds,
};
