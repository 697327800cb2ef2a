/*
 * A thread's own fd table or filesystem context (cwd, umask): a thread made by clone without
 * CLONE_FILES or CLONE_FS, or that called unshare(). Its table began as a copy of the
 * process's and may have diverged since: each of its fds is saved as the process's fd that is
 * the same open file (kcmp); a file the process's table does not hold is refused, naming the
 * thread and the fd. Its cwd is saved by path (a removed one is refused), its umask as is; a
 * root of its own is refused.
 * Restore: the blob makes such a thread without CLONE_FILES (CLONE_FS), so that it starts with
 * a copy of the process's table (filesystem context) as restored; the thread itself then puts
 * the saved fds at their numbers, closes the rest, changes to its cwd (an fd stasis opened for
 * it) and sets its umask, before the process goes on (cr/restorer/restorer.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "files/files.h"
#include "log.h"
#include "restorer/restorer.h"
#include "task.h"
#include "threads.h"
#include "util.h"

#define MAX_THREAD_FD (1u << 20)

static bool shares_with_process(const struct dump_task *t, pid_t tid, int type)
{
	return syscall(SYS_kcmp, t->pid, tid, type, 0, 0) == 0;
}

static int dump_own_fds(struct dump_task *t, pid_t tid, ThreadCore *tc)
{
	auto_free int *fds = NULL;
	char sub[48];
	size_t n;
	unsigned logged = log_errors();
	int err;

	if (t->fds_owner) {
		pr_err("dump pid %d: its thread %d has an fd table of its own, and the process shares "
		       "its table with pid %d (not supported)", t->pid, tid, t->fds_owner->pid);
		return -ENOTSUP;
	}
	snprintf(sub, sizeof(sub), "task/%d/fd", tid);
	if ((err = proc_list_numbers(t->pid, sub, &fds, &n)))
		return log_unnamed(logged, err, "dump pid %d: cannot list the fds of its thread %d", t->pid, tid);
	if (!(tc->own_fds = xzalloc((n + 1) * sizeof(*tc->own_fds))))
		return -ENOMEM;
	tc->has_own_fd_table = tc->own_fd_table = true;
	for (size_t i = 0; i < n; i++) {
		struct fd_probe p;
		auto_free char *info = NULL;
		ThreadFd *f;

		if ((err = fd_probe(tid, fds[i], &p, &info)))
			return err;
		int of = fd_table_holder(t, &p, tid);
		if (of < 0) {
			pr_err("dump pid %d: its thread %d has an fd table of its own, whose fd %d (%s) the "
			       "process's table does not hold (not supported)", t->pid, tid, fds[i], p.link);
			return -ENOTSUP;
		}
		if (!(f = xzalloc(sizeof(*f))))
			return -ENOMEM;
		thread_fd__init(f);
		tc->own_fds[tc->n_own_fds++] = f;
		f->fd = fds[i];
		f->of = of;
		f->has_cloexec = f->cloexec = p.flags & O_CLOEXEC;
	}
	return 0;
}

static int dump_own_fs(struct dump_task *t, pid_t tid, ThreadCore *tc)
{
	char sub[48], cwd[4096], root[4096], proc_root[4096];
	uint64_t umask_val;
	int err;

	snprintf(sub, sizeof(sub), "task/%d/root", tid);
	if (proc_readlink(t->pid, sub, root, sizeof(root)) || proc_readlink(t->pid, "root", proc_root, sizeof(proc_root)) ||
	    (snprintf(sub, sizeof(sub), "task/%d/cwd", tid), proc_readlink(t->pid, sub, cwd, sizeof(cwd)))) {
		pr_perror("dump pid %d: cannot read the cwd and root of its thread %d", t->pid, tid);
		return -errno;
	}
	if (strcmp(root, proc_root) || ghost_path(cwd)) {
		pr_err("dump pid %d: its thread %d has %s (not supported)", t->pid, tid,
		       strcmp(root, proc_root) ? "a root of its own" : "a cwd of its own that was removed");
		return -ENOTSUP;
	}
	if ((err = proc_status_field(tid, "Umask", 8, &umask_val))) {
		if (err != -ENOMEM)
			pr_err("dump pid %d: cannot read the umask of its thread %d", t->pid, tid);
		return err;
	}
	if (!(tc->own_cwd = xstrdup(cwd)))
		return -ENOMEM;
	tc->has_own_umask = true;
	tc->own_umask = umask_val;
	return 0;
}

int thread_tables_dump(struct dump_task *t, pid_t tid, ThreadCore *tc)
{
	int err = 0;

	if (!shares_with_process(t, tid, KCMP_FILES) && (err = dump_own_fds(t, tid, tc)))
		return err;
	if (!shares_with_process(t, tid, KCMP_FS))
		err = dump_own_fs(t, tid, tc);
	return err;
}

static bool process_holds(const FdTable *tab, uint32_t fd)
{
	for (size_t i = 0; i < tab->n_fds; i++)
		if (tab->fds[i]->fd == fd)
			return true;
	return false;
}

bool thread_tables_valid(const struct restore_task *t, const ThreadCore *tc)
{
	if (tc->own_fd_table && t->fds->has_table_of)
		return false;
	for (size_t i = 0; i < tc->n_own_fds; i++) {
		const ThreadFd *f = tc->own_fds[i];
		if (!tc->own_fd_table || f->fd >= MAX_THREAD_FD || (i && f->fd <= tc->own_fds[i - 1]->fd) ||
		    !process_holds(t->fds, f->of))
			return false;
	}
	return !tc->own_cwd ? !tc->has_own_umask
			    : tc->has_own_umask && tc->own_umask <= 0777 && image_path_ok(tc->own_cwd);
}

size_t thread_tables_args_size(const ThreadCore *tc)
{
	return tc->n_own_fds * sizeof(struct rst_thread_fd) + 8;
}

/* In the new task: the thread's entry in the blob's table of threads. */
int thread_tables_restore(struct restore_task *t, const ThreadCore *tc, struct rst_thread *th)
{
	th->clone_flags = RST_CLONE_THREAD_FLAGS;
	th->cwd_fd = -1;
	if (tc->own_fd_table) {
		struct rst_thread_fd *out = restorer_args_alloc(t, tc->n_own_fds * sizeof(*out), &th->fds_off);
		if (!out)
			return -ENOMEM;
		th->clone_flags &= ~(uint64_t)RST_CLONE_FILES;
		th->nr_fds = tc->n_own_fds;
		for (size_t i = 0; i < tc->n_own_fds; i++) {
			out[i] = (struct rst_thread_fd){ tc->own_fds[i]->fd, tc->own_fds[i]->of,
							 tc->own_fds[i]->cloexec, -1 };
			if ((int32_t)tc->own_fds[i]->fd >= th->fds_above)
				th->fds_above = tc->own_fds[i]->fd + 1;
		}
	}
	if (tc->own_cwd) {
		th->clone_flags &= ~(uint64_t)RST_CLONE_FS;
		th->umask = tc->own_umask;
		if ((th->cwd_fd = restore_open_high(t, tc->own_cwd, O_PATH | O_DIRECTORY)) < 0) {
			pr_err("restore pid %d: cannot open the working directory %s of its thread %u: %s",
			       t->pid, tc->own_cwd, tc->tid, strerror(-th->cwd_fd));
			return th->cwd_fd;
		}
	}
	return 0;
}
