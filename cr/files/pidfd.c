/*
 * pidfds (pidfd_open, clone3 CLONE_PIDFD; Go keeps one per child it starts): the pid they
 * refer to, which must be a process of the tree (or a zombie of it). Restore opens one again
 * for that pid, waiting a little for it to exist if it is created later in the tree. A pidfd
 * whose process was already reaped ("Pid: -1") comes back as a pidfd of a process that exited
 * and was reaped, made before the tree's other processes, which inherit it: one such process
 * for each reaped process (pidfds of two of them keep two inodes, pidfds of one keep one), and
 * one open file for each open file the tree held. stasis makes them, or in a tree with its own
 * PID namespace its root as soon as it is in the new namespace, so that the reaped processes
 * are of the tree's namespace (the kernel refuses pidfd_send_signal and waitid through a pidfd
 * of a process the caller's namespace does not hold). Where the kernel tells how the reaped
 * process ended (PIDFD_INFO_EXIT, 6.15), its made process ends the same way: exits with its
 * code, or is killed by its signal, dumping a core (into a directory of its own, removed at
 * once) if it did. A pidfd of one thread (PIDFD_THREAD) is kept for a reaped thread and for a
 * thread group leader.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "files.h"
#include "log.h"
#include "pid-ns.h"
#include "pstree.h"
#include "tree-objects.h"
#include "util.h"

#define PIDFD_THREAD O_EXCL /* a pidfd of one thread (6.9+) */

static bool is_pidfd(const char *link)
{
	return !strcmp(link, "anon_inode:[pidfd]") || !strncmp(link, "pidfd:", 6);
}

/* Is pid the tree's root or below it (zombies included: /proc still has their parent)? 1, 0,
 * -ENOMEM. */
static int in_tree(pid_t pid, pid_t root)
{
	for (int depth = 0; pid > 1 && depth < 4096; depth++) {
		char path[64];
		uint64_t ppid;
		if (pid == root)
			return 1;
		snprintf(path, sizeof(path), "/proc/%d/status", pid);
		auto_free char *status = read_file_at(AT_FDCWD, path, NULL);
		if (!status && errno == ENOMEM)
			return -ENOMEM;
		if (!status || !fdinfo_u64(status, "PPid:", 10, &ppid))
			return 0;
		pid = ppid;
	}
	return 0;
}

/* Is pid a thread group leader? 1, 0, -ENOMEM. */
static int is_leader(pid_t pid)
{
	char path[64];
	uint64_t tgid;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	auto_free char *status = read_file_at(AT_FDCWD, path, NULL);
	if (!status && errno == ENOMEM)
		return -ENOMEM;
	return status && fdinfo_u64(status, "Tgid:", 10, &tgid) && tgid == (uint64_t)pid;
}

/* How the reaped process of pidfd p ended, where the kernel tells it (PIDFD_INFO_EXIT, 6.15):
 * 1 with its wait status in *status, 0 if it does not, or <0. */
static int reaped_status(struct dump_task *t, const struct fd_probe *p, int32_t *status)
{
	struct pidfd_info_v0 info = { .mask = PIDFD_INFO_EXIT };
	int fd = task_fd_copy(t->pid, p->fd), ret;

	if (fd < 0) {
		pr_err("dump pid %d fd %d: cannot copy its pidfd: %s", t->pid, p->fd, strerror(-fd));
		return fd;
	}
	ret = ioctl(fd, PIDFD_GET_INFO_V0, &info) ? -errno : 0;
	close(fd);
	if (ret == -ENOTTY || ret == -EINVAL || ret == -ESRCH)
		return 0; /* before 6.15 */
	if (ret) {
		pr_err("dump pid %d fd %d: PIDFD_GET_INFO: %s", t->pid, p->fd, strerror(-ret));
		return ret;
	}
	*status = info.exit_code;
	return !!(info.mask & PIDFD_INFO_EXIT);
}

static int dump_pidfd(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	const char *line = strstr(p->info, "\nPid:");
	int pid, err;

	if (!is_pidfd(p->link))
		return 0;
	if (!line || sscanf(line + 5, "%d", &pid) != 1 || pid == 0) {
		pr_err("dump pid %d fd %d: a pidfd of a process stasis cannot see (other pid namespace)",
		       t->pid, p->fd);
		return -ENOTSUP;
	}
	if (pid > 0 && (err = in_tree(pid, t->tree[0].pid)) < 0)
		return err;
	if (pid > 0 && !err) {
		pr_err("dump pid %d fd %d: a pidfd of pid %d, which is not in the tree", t->pid, p->fd, pid);
		return -ENOTSUP;
	}
	if (pid > 0 && (p->flags & PIDFD_THREAD) && (err = is_leader(pid)) <= 0) {
		if (!err)
			pr_err("dump pid %d fd %d: a pidfd of thread %d, not its process's first thread "
			       "(PIDFD_THREAD, not supported yet)", t->pid, p->fd, pid);
		return err ? err : -ENOTSUP;
	}
	e->has_flags = e->has_pidfd_pid = true;
	e->flags = p->flags;
	e->pidfd_pid = pid > 0 ? pid_ns_vpid(t->ctx, pid) : 0;
	if (pid < 0) {
		e->has_pidfd_ino = true;
		e->pidfd_ino = p->st.st_ino;
		if ((err = reaped_status(t, p, &e->pidfd_exit)) < 0)
			return err;
		e->has_pidfd_exit = err;
	}
	return 1;
}

/* ---- restore ---- */

#define CORE_DUMPED 0x80 /* in a wait status, with the signal that killed it */

/* Does sig, left to its default action, end a process? Does it dump core then? */
static bool kills(int sig)
{
	return sig >= 1 && sig <= 64 && sig != SIGCHLD && sig != SIGCONT && sig != SIGURG &&
	       sig != SIGWINCH && sig != SIGSTOP && sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU;
}

static bool dumps_core(int sig)
{
	return sig == SIGQUIT || sig == SIGILL || sig == SIGTRAP || sig == SIGABRT || sig == SIGBUS ||
	       sig == SIGFPE || sig == SIGSEGV || sig == SIGXCPU || sig == SIGXFSZ || sig == SIGSYS;
}

/* A wait status a process can end with: an exit code << 8, or a signal that ends it (with
 * CORE_DUMPED if it dumps core). */
static bool status_valid(int32_t status)
{
	int sig = status & 0x7f;

	if (status & ~0xffff)
		return false;
	if (!sig)
		return !(status & 0xff);
	return !(status & 0xff00) && kills(sig) && (!(status & CORE_DUMPED) || dumps_core(sig));
}

/* How the reaped process of e ended: its wait status, or -1 if the image does not say. */
static int32_t status_of(const FdEntry *e)
{
	return e->has_pidfd_exit ? e->pidfd_exit : -1;
}

static int32_t status_from(const siginfo_t *si)
{
	if (si->si_code == CLD_EXITED)
		return (si->si_status & 0xff) << 8;
	return si->si_status | (si->si_code == CLD_DUMPED ? CORE_DUMPED : 0);
}

/* A pidfd of a reaped process made for fd of pid (its own open file). */
struct reaped_pidfd {
	pid_t pid;
	uint32_t fd;
	int held; /* stasis's */
};

/* The run's pidfds of processes that exited and were reaped (made if some fd needs one). */
struct pidfd_state {
	struct reaped_pidfd *made;
	size_t n;
	char core_dir_name[48]; /* in the work directory, where made processes dump core ("": none) */
	int core_dir;
};

static struct pidfd_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_pidfds);
}

static bool is_reaped(const FdEntry *e)
{
	return e->kind == FD_KIND__FD_PIDFD && !e->pidfd_pid;
}

static uint64_t reaped_ino(const FdEntry *e)
{
	return e->has_pidfd_ino ? e->pidfd_ino : 0;
}

/* Every reaped process's status can be, and its pidfds agree on it. */
static int validate_pidfds(struct run_ctx *ctx, struct restore_tree *rt)
{
	(void)ctx;
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			if (!is_reaped(e))
				continue;
			if (e->has_pidfd_exit && !status_valid(e->pidfd_exit)) {
				pr_err("image fds-%d.img: fd %u: a pidfd of a reaped process that ended with "
				       "wait status %#x, which no process can", rt->tasks[i].pid, e->fd, e->pidfd_exit);
				return -EINVAL;
			}
			for (size_t j = 0; j <= i; j++) {
				for (size_t m = 0; m < rt->tasks[j].fds->n_fds; m++) {
					const FdEntry *f = rt->tasks[j].fds->fds[m];
					if (f == e)
						break;
					if (is_reaped(f) && reaped_ino(f) == reaped_ino(e) &&
					    status_of(f) != status_of(e)) {
						pr_err("image fds-%d.img: fd %u: a pidfd of a reaped process that ended "
						       "with wait status %#x; fd %u of pid %d, of the same process, says %#x",
						       rt->tasks[i].pid, e->fd, status_of(e), f->fd, rt->tasks[j].pid,
						       status_of(f));
						return -EINVAL;
					}
				}
			}
		}
	}
	return 0;
}

/*
 * A directory of stasis's own for the cores of made processes that must dump one, if
 * core_pattern writes cores into the dumping process's working directory (else they do not
 * dump core: a pipe or a path would hand the core to the system).
 */
static void make_core_dir(struct run_ctx *ctx, struct pidfd_state *st)
{
	auto_free char *pattern = read_file_at(AT_FDCWD, "/proc/sys/kernel/core_pattern", NULL);

	st->core_dir = -1;
	if (!pattern || pattern[0] == '|' || pattern[0] == '@' || strchr(pattern, '/'))
		return;
	snprintf(st->core_dir_name, sizeof(st->core_dir_name), ".stasis-pidfd-cores.%d", getpid());
	if (mkdirat(ctx->work_dir_fd, st->core_dir_name, 0700) ||
	    (st->core_dir = openat(ctx->work_dir_fd, st->core_dir_name, O_RDONLY | O_DIRECTORY)) < 0) {
		pr_debug("restore: no directory for cores of reaped processes: %m");
		unlinkat(ctx->work_dir_fd, st->core_dir_name, AT_REMOVEDIR);
		st->core_dir_name[0] = 0;
	}
}

/* Removes what made processes dumped into the core directory. */
static void remove_cores(const struct pidfd_state *st)
{
	int fd = st->core_dir_name[0] ? dup(st->core_dir) : -1;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (fd >= 0 && !d)
		close(fd);
	if (d)
		rewinddir(d); /* the copy shares its offset with core_dir, at the end of a last walk */
	for (struct dirent *de; d && (de = readdir(d));)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(st->core_dir, de->d_name, 0);
	if (d)
		closedir(d);
}

static void remove_core_dir(struct run_ctx *ctx, struct pidfd_state *st)
{
	if (!st->core_dir_name[0])
		return;
	remove_cores(st);
	unlinkat(ctx->work_dir_fd, st->core_dir_name, AT_REMOVEDIR);
	close(st->core_dir);
	st->core_dir_name[0] = 0;
}

/* In a made process: ends with wait status status (status_valid), dumping core, into the
 * core directory, only if status says so. Raw system calls: stasis may have threads. */
static _Noreturn void end_as(const struct pidfd_state *st, int32_t status)
{
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		uint64_t mask;
	} dfl = { SIG_DFL, 0, NULL, 0 };
	int sig = status & 0x7f;

	if (!sig)
		_exit(status >> 8);
	uint64_t set = 1ULL << (sig - 1);
	if ((status & CORE_DUMPED) && st->core_dir_name[0]) {
		struct rlimit core = { RLIM_INFINITY, RLIM_INFINITY };
		int filter = open("/proc/self/coredump_filter", O_WRONLY);
		if (setrlimit(RLIMIT_CORE, &core) && !getrlimit(RLIMIT_CORE, &core)) {
			core.rlim_cur = core.rlim_max;
			setrlimit(RLIMIT_CORE, &core);
		}
		if (filter >= 0 && write(filter, "0", 1) != 1) {
			/* memory in the core, not only that it was dumped: removed all the same */
		}
		prctl(PR_SET_DUMPABLE, 1);
		if (fchdir(st->core_dir))
			prctl(PR_SET_DUMPABLE, 0);
	} else {
		prctl(PR_SET_DUMPABLE, 0); /* no core, wherever core_pattern would send it */
	}
	syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
	syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, NULL, 8);
	syscall(SYS_kill, syscall(SYS_getpid), sig);
	_exit(127);
}

/*
 * A child of the caller, in its PID namespace, that ends as the reaped process of fd of pid
 * (first) did; every fd of the tree of that reaped process gets a pidfd of it. No exit signal
 * (in the root, every signal is blocked: it would stay pending).
 */
static int make_reaped(struct pidfd_state *st, struct restore_tree *rt, pid_t pid, const FdEntry *first)
{
	struct clone_args ca = { 0 };
	int32_t status = first->has_pidfd_exit ? first->pidfd_exit : 0;
	pid_t child = syscall(SYS_clone3, &ca, sizeof(ca));
	int err = 0;

	if (child == 0)
		end_as(st, status);
	if (child < 0) {
		pr_perror("restore pid %d fd %u: cannot make a process for its pidfd of a reaped process",
			  pid, first->fd);
		return -errno;
	}
	siginfo_t si;
	/* a zombie: pidfds can still be opened */
	while (waitid(P_PID, child, &si, WEXITED | WNOWAIT | __WALL) < 0 && errno == EINTR)
		;
	if (status_from(&si) == (status & ~CORE_DUMPED) && status != status_from(&si))
		pr_warn("restore pid %d fd %u: its pidfd's reaped process dumped core; the one made again "
			"could not (core_pattern, or the core size limit): the pidfd says it did not",
			pid, first->fd);
	else if (status_from(&si) != status) {
		pr_err("restore pid %d fd %u: the process made for its pidfd of a reaped process ended with "
		       "wait status %#x, not %#x", pid, first->fd, status_from(&si), status);
		err = -EIO;
	}
	for (size_t i = 0; i < rt->nr_tasks && !err; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds && !err; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			if (!is_reaped(e) || reaped_ino(e) != reaped_ino(first))
				continue;
			int fd = syscall(SYS_pidfd_open, child, e->flags & PIDFD_THREAD);
			if (fd < 0) {
				err = -errno;
				pr_perror("restore pid %d fd %u: cannot make a pidfd of a reaped process",
					  rt->tasks[i].pid, e->fd);
				break;
			}
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			st->made[st->n++] = (struct reaped_pidfd){ rt->tasks[i].pid, e->fd, fd };
		}
	}
	while (waitpid(child, NULL, __WALL) < 0 && errno == EINTR)
		;
	remove_cores(st);
	return err;
}

/* One process per reaped process: the first fd of each inode not made yet makes it. */
static int make_all_reaped(struct run_ctx *ctx, struct pidfd_state *st, struct restore_tree *rt)
{
	int err = 0;

	for (size_t i = 0; i < rt->nr_tasks && !err; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds && !err; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			bool done = false;
			for (size_t m = 0; m < st->n && is_reaped(e); m++)
				done |= st->made[m].pid == rt->tasks[i].pid && st->made[m].fd == e->fd;
			if (is_reaped(e) && !done)
				err = make_reaped(st, rt, rt->tasks[i].pid, e);
		}
	}
	remove_core_dir(ctx, st);
	return err;
}

/* Room for every pidfd of a reaped process; they are made here unless the tree has its own
 * PID namespace. */
static int prepare_pidfds(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct pidfd_state *st = state_of(ctx);
	bool cores = false;
	size_t nr = 0;

	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			nr += is_reaped(e);
			cores |= is_reaped(e) && e->has_pidfd_exit && (e->pidfd_exit & CORE_DUMPED);
		}
	}
	if (!nr)
		return 0;
	if (!(st->made = xzalloc(nr * sizeof(*st->made))))
		return -ENOMEM;
	if (cores)
		make_core_dir(ctx, st);
	return pid_ns_is_own(ctx) ? 0 : make_all_reaped(ctx, st, rt);
}

/* In the root, in the tree's new PID namespace, before it makes any other process. */
static int enter_pidfds(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct pidfd_state *st = state_of(ctx);

	return st->made && pid_ns_is_own(ctx) ? make_all_reaped(ctx, st, rt) : 0;
}

static void close_pidfds(struct run_ctx *ctx)
{
	struct pidfd_state *st = state_of(ctx);

	for (size_t i = 0; i < st->n; i++)
		close(st->made[i].held);
	st->n = 0;
}

/* The root made them (own PID namespace): the core directory goes once it is done or dead. */
static void undo_pidfds(struct run_ctx *ctx, bool restored)
{
	(void)restored;
	close_pidfds(ctx);
	remove_core_dir(ctx, state_of(ctx));
}

static void free_pidfds(void *state)
{
	free(((struct pidfd_state *)state)->made);
}

const struct tree_object_ops tree_pidfds = {
	.name = "pidfds of reaped processes",
	.state_size = sizeof(struct pidfd_state),
	.free_state = free_pidfds,
	.validate = validate_pidfds,
	.prepare = prepare_pidfds,
	.enter = enter_pidfds,
	.close = close_pidfds,
	.undo = undo_pidfds,
};

static int open_pidfd(struct restore_task *t, const FdEntry *e)
{
	int fd = -1;

	if (!e->has_pidfd_pid || e->pidfd_pid > INT32_MAX)
		return -EINVAL;
	if (!e->pidfd_pid) {
		const struct pidfd_state *st = state_of(t->ctx);
		for (size_t i = 0; i < st->n && fd < 0; i++)
			if (st->made[i].pid == t->pid && st->made[i].fd == e->fd)
				fd = fcntl(st->made[i].held, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return -EBADF;
	}
	/* the process may be one of the tree created after this one: wait for it (2 s at most) */
	for (int tries = 0; fd < 0 && tries < 1000; tries++) {
		fd = syscall(SYS_pidfd_open, e->pidfd_pid, e->flags & (O_NONBLOCK | PIDFD_THREAD));
		if (fd < 0 && errno != ESRCH)
			return -errno;
		if (fd < 0)
			usleep(2000);
	}
	if (fd < 0) {
		pr_err("restore pid %d fd %u: pid %u of its pidfd never appeared", t->pid, e->fd, e->pidfd_pid);
		return -ESRCH;
	}
	if (fcntl(fd, F_SETFL, e->flags & O_NONBLOCK)) {
		close(fd);
		return -errno;
	}
	return fd;
}

const struct fd_kind_ops fd_kind_pidfd = {
	.name = "pidfd",
	.dump = dump_pidfd,
	.open = open_pidfd,
	.kind = FD_KIND__FD_PIDFD,
};
