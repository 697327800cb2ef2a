/* Syscall injection on x86_64: run one system call inside a ptrace-stopped task. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "log.h"
#include "proc.h"
#include "seize.h"
#include "util.h"

#define SCRATCH_LEN (4 * PAGE_SIZE)

#define GADGET_CHUNK (64 * 1024)

/* A `syscall` instruction (0f 05) in [start, end) of the task, read a chunk at a time. */
static int find_gadget(pid_t pid, uint64_t start, uint64_t end, uint64_t *gadget)
{
	auto_free unsigned char *code = xmalloc(GADGET_CHUNK + 1);

	if (!code)
		return -ENOMEM;
	for (uint64_t at = start; at + 1 < end; at += GADGET_CHUNK) {
		size_t len = end - at > GADGET_CHUNK + 1 ? GADGET_CHUNK + 1 : end - at; /* +1: across chunks */
		if (task_mem_read(pid, at, code, len))
			return -EIO;
		for (size_t i = 0; i + 1 < len; i++) {
			if (code[i] == 0x0f && code[i + 1] == 0x05) {
				*gadget = at + i;
				return 0;
			}
		}
	}
	return -ENOENT;
}

/* A program that unmapped its vDSO: a `syscall` instruction in another executable mapping. */
static int find_gadget_elsewhere(pid_t pid, uint64_t *gadget)
{
	struct proc_vmas vmas;
	int err = proc_read_vmas(pid, &vmas);

	for (size_t i = 0; !err && i < vmas.n; i++) {
		if (!(vmas.v[i].prot & PROT_EXEC) || vmas.v[i].start >= 0x7ffffffff000ULL)
			continue; /* ([vsyscall] traps when executed) */
		if (!find_gadget(pid, vmas.v[i].start, vmas.v[i].end, gadget)) {
			proc_vmas_free(&vmas);
			return 0;
		}
	}
	if (!err)
		proc_vmas_free(&vmas);
	return -ENOENT;
}

static int run_injected(struct inject_ctx *ctx, struct user_regs_struct *rp, long nr,
			const uint64_t args[6], int64_t *ret);

/*
 * Resumes to syscall entry, then to syscall exit. Every signal is blocked but SIGSTOP (and
 * SIGKILL): one that comes meanwhile is let through, and the task enters a group stop, which
 * it keeps (ctx->group_stop_sig); a task in group stop reports that stop again once resumed:
 * resume it past it.
 */
static int run_to_syscall_exit(struct inject_ctx *ctx, long nr)
{
	pid_t pid = ctx->pid;
	int pass_sig = 0;

	for (int step = 0, group_stops = 0; step < 2; step++) {
		int status, ret;
		if (ptrace(PTRACE_SYSCALL, pid, 0, (void *)(long)pass_sig)) {
			pr_perror("pid %d: cannot resume it into injected syscall %ld", pid, nr);
			return -errno;
		}
		pass_sig = 0;
		ret = task_wait_stop(pid, &status);
		if (ret) {
			pr_err("pid %d: %s while running injected syscall %ld", pid,
			       ret == -ESRCH ? "exited" : "did not stop", nr);
			return ret;
		}
		if ((status >> 16) == PTRACE_EVENT_STOP && group_stops++ < 4) {
			step--;
			continue;
		}
		if ((status >> 16) == 0 && is_stop_signal(WSTOPSIG(status)) && group_stops++ < 4) {
			pr_debug("pid %d: stopped by signal %d while running an injected syscall", pid,
				 WSTOPSIG(status));
			ctx->group_stop_sig = pass_sig = WSTOPSIG(status);
			step--;
			continue;
		}
		if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {
			pr_err("pid %d: unexpected stop 0x%x while running injected syscall %ld", pid,
			       status, nr);
			return -EIO;
		}
	}
	return 0;
}

int inject_syscall(struct inject_ctx *ctx, long nr, const uint64_t args[6], int64_t *ret)
{
	struct user_regs_struct r = ctx->saved;
	uint64_t mask, all = ~0ull;
	int err;

	/* Pending signals (a child's SIGCHLD...) stay pending while we run the syscall. */
	if (ptrace(PTRACE_GETSIGMASK, ctx->pid, sizeof(mask), &mask) ||
	    ptrace(PTRACE_SETSIGMASK, ctx->pid, sizeof(all), &all)) {
		pr_perror("pid %d: cannot block signals for an injected syscall", ctx->pid);
		return -errno;
	}
	err = run_injected(ctx, &r, nr, args, ret);
	if (ptrace(PTRACE_SETSIGMASK, ctx->pid, sizeof(mask), &mask)) {
		pr_perror("pid %d: cannot restore its signal mask", ctx->pid);
		return -errno;
	}
	return err;
}

static int run_injected(struct inject_ctx *ctx, struct user_regs_struct *rp, long nr,
			const uint64_t args[6], int64_t *ret)
{
	struct user_regs_struct r = *rp;
	int err;

	r.rip = ctx->gadget;
	r.rax = nr;
	r.orig_rax = -1; /* no restart processing of the frozen syscall on this resume */
	r.rdi = args[0];
	r.rsi = args[1];
	r.rdx = args[2];
	r.r10 = args[3];
	r.r8 = args[4];
	r.r9 = args[5];
	if (ptrace(PTRACE_SETREGS, ctx->pid, 0, &r)) {
		pr_perror("pid %d: cannot set registers for injected syscall %ld", ctx->pid, nr);
		return -errno;
	}
	if ((err = run_to_syscall_exit(ctx, nr)))
		return err;
	if (ptrace(PTRACE_GETREGS, ctx->pid, 0, &r)) {
		pr_perror("pid %d: cannot read injected syscall result", ctx->pid);
		return -errno;
	}
	*ret = (int64_t)r.rax;
	return 0;
}

int inject_syscall_out(struct inject_ctx *ctx, long nr, const uint64_t args[6], void *out,
		       size_t len)
{
	int64_t ret;
	int err = inject_syscall(ctx, nr, args, &ret);

	if (err)
		return err;
	if (ret)
		return ret < 0 && ret > -4096 ? (int)ret : -EIO;
	return task_mem_read(ctx->pid, ctx->scratch, out, len);
}

int inject_begin(struct inject_ctx *ctx, pid_t pid, const struct user_regs_struct *regs,
		 uint64_t vdso_start, uint64_t vdso_end)
{
	uint64_t args[6] = { 0, SCRATCH_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			     (uint64_t)-1, 0 };
	int64_t ret;
	int err;

	memset(ctx, 0, sizeof(*ctx));
	ctx->pid = pid;
	ctx->saved = *regs;
	if ((!vdso_start || find_gadget(pid, vdso_start, vdso_end, &ctx->gadget)) &&
	    find_gadget_elsewhere(pid, &ctx->gadget)) {
		pr_err("pid %d: no syscall instruction found in its vDSO or any executable mapping", pid);
		return -ENOENT;
	}
	err = inject_syscall(ctx, SYS_mmap, args, &ret);
	if (err == 0 && (ret < 0 && ret > -4096)) {
		pr_err("pid %d: injected mmap of a scratch page failed: %s", pid, strerror(-ret));
		err = -EIO;
	}
	if (err) {
		inject_end(ctx);
		return err;
	}
	ctx->scratch = ret;
	ctx->scratch_len = SCRATCH_LEN;
	return 0;
}

int inject_end(struct inject_ctx *ctx)
{
	int status, ret = 0;

	if (ctx->scratch) {
		uint64_t args[6] = { ctx->scratch, ctx->scratch_len };
		int64_t r;
		if (inject_syscall(ctx, SYS_munmap, args, &r)) {
			ret = -EIO;
		} else if (r) {
			pr_err("pid %d: injected munmap of the scratch page returned %lld", ctx->pid,
			       (long long)r);
			ret = -EIO;
		}
		ctx->scratch = 0;
	}
	if (ptrace(PTRACE_SETREGS, ctx->pid, 0, &ctx->saved)) {
		pr_perror("pid %d: cannot restore registers after injection", ctx->pid);
		return -errno;
	}
	/*
	 * The task sits in a syscall-exit stop now, where the kernel would not restart the
	 * syscall that the freeze interrupted. Queue an interrupt before resuming: the task stops
	 * again in the signal path, from where any later resume restarts that syscall properly.
	 */
	if (ptrace(PTRACE_INTERRUPT, ctx->pid, 0, 0) || ptrace(PTRACE_CONT, ctx->pid, 0, 0)) {
		pr_perror("pid %d: cannot return to the frozen state", ctx->pid);
		return -errno;
	}
	if (task_wait_stop(ctx->pid, &status) || (status >> 16) != PTRACE_EVENT_STOP) {
		pr_err("pid %d: did not stop again after syscall injection (status 0x%x)", ctx->pid,
		       status);
		return -EIO;
	}
	return ret;
}
