/*
 * Processes made only to end the way one of the tree's ended: a zombie of the tree (made by
 * its parent, cr/pstree.c), the reaped process a pidfd refers to (cr/files/pidfd.c). They end
 * with its wait status, core-dump bit included. A core must never go where core_pattern sends
 * the system's cores (a crash report of the host, a file named core in the tree's working
 * directory): a made process dumps core only when the status says the original did, and then
 * into a directory of stasis's own in the work directory, emptied once the process is a zombie
 * and removed at the end of the restore. Where core_pattern does not write into the dumping
 * process's working directory (a pipe, a path), made processes dump no core: their status
 * lacks the bit, which their makers say.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "end-as.h"
#include "log.h"
#include "tree-objects.h"
#include "tree.h"
#include "util.h"

struct core_dir {
	char name[48]; /* in the work directory ("": none) */
	int fd;
	bool tried;
};

static struct core_dir *core_dir_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_core_dir);
}

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

bool wait_status_valid(int32_t status)
{
	int sig = status & 0x7f;

	if (status & ~0xffff)
		return false;
	if (!sig)
		return !(status & 0xff);
	return !(status & 0xff00) && kills(sig) && (!(status & CORE_DUMPED) || dumps_core(sig));
}

int32_t wait_status_from(const siginfo_t *si)
{
	if (si->si_code == CLD_EXITED)
		return (si->si_status & 0xff) << 8;
	return si->si_status | (si->si_code == CLD_DUMPED ? CORE_DUMPED : 0);
}

void end_as_need_cores(struct run_ctx *ctx)
{
	struct core_dir *cd = core_dir_of(ctx);
	auto_free char *pattern = NULL;

	if (cd->tried)
		return;
	cd->tried = true;
	cd->fd = -1;
	pattern = read_file_at(AT_FDCWD, "/proc/sys/kernel/core_pattern", NULL);
	if (!pattern || pattern[0] == '|' || pattern[0] == '@' || strchr(pattern, '/'))
		return;
	snprintf(cd->name, sizeof(cd->name), ".stasis-cores.%d", getpid());
	if (mkdirat(ctx->work_dir_fd, cd->name, 0700) ||
	    (cd->fd = openat(ctx->work_dir_fd, cd->name, O_RDONLY | O_DIRECTORY)) < 0) {
		pr_debug("restore: no directory for the cores of made processes: %m");
		unlinkat(ctx->work_dir_fd, cd->name, AT_REMOVEDIR);
		cd->name[0] = 0;
	}
}

void end_as_remove_cores(const struct run_ctx *ctx)
{
	const struct core_dir *cd = core_dir_of(ctx);
	int fd = cd->name[0] ? dup(cd->fd) : -1;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (fd >= 0 && !d)
		close(fd);
	if (d)
		rewinddir(d); /* the copy shares its offset with cd->fd, at the end of a last walk */
	for (struct dirent *de; d && (de = readdir(d));)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(cd->fd, de->d_name, 0);
	if (d)
		closedir(d);
}

_Noreturn void end_as(const struct run_ctx *ctx, int32_t status)
{
	const struct core_dir *cd = core_dir_of(ctx);
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		uint64_t mask;
	} dfl = { SIG_DFL, 0, NULL, 0 };
	int sig = status & 0x7f;

	if (!sig)
		syscall(SYS_exit_group, (status >> 8) & 0xff);
	uint64_t set = 1ULL << (sig - 1);
	if ((status & CORE_DUMPED) && cd->name[0]) {
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
		if (fchdir(cd->fd))
			prctl(PR_SET_DUMPABLE, 0);
	} else {
		prctl(PR_SET_DUMPABLE, 0); /* no core, wherever core_pattern would send it */
	}
	syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
	syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, NULL, 8);
	syscall(SYS_kill, syscall(SYS_getpid), sig);
	syscall(SYS_exit_group, 127);
	__builtin_unreachable();
}

/* The tree's zombies that dumped core are made at its creation: the directory must exist first. */
static int prepare_core_dir(struct run_ctx *ctx, struct restore_tree *rt)
{
	for (size_t i = 0; i < rt->inv->n_tree; i++)
		if (rt->inv->tree[i]->zombie && (rt->inv->tree[i]->exit_status & CORE_DUMPED))
			end_as_need_cores(ctx);
	return 0;
}

/* Every made process is dead by now (or killed with the tree): its core and the directory go. */
static void undo_core_dir(struct run_ctx *ctx, bool restored)
{
	struct core_dir *cd = core_dir_of(ctx);

	(void)restored;
	if (!cd->name[0])
		return;
	end_as_remove_cores(ctx);
	unlinkat(ctx->work_dir_fd, cd->name, AT_REMOVEDIR);
	close(cd->fd);
	cd->name[0] = 0;
}

const struct tree_object_ops tree_core_dir = {
	.name = "the cores of processes made to end",
	.state_size = sizeof(struct core_dir),
	.prepare = prepare_core_dir,
	.undo = undo_core_dir,
};
