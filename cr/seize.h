/* Freezing a task with ptrace, and running system calls inside it while it is frozen. */
#ifndef STASIS_SEIZE_H
#define STASIS_SEIZE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

/* --timeout when not given (0): seconds to freeze the tree, and to wait for one task's stop */
#define FREEZE_TIMEOUT_DEFAULT_S 10

/*
 * PTRACE_SEIZE + PTRACE_INTERRUPT, waits for the stop, at most timeout_s seconds (--timeout;
 * 0: FREEZE_TIMEOUT_DEFAULT_S; a task deep in one system call, as mmap populating gigabytes, stops only after it).
 * *stop_sig: the job control signal of the group stop it was in before (SIGSTOP, SIGTSTP,
 * SIGTTIN, SIGTTOU), 0 if none.
 */
int task_seize(pid_t pid, int *stop_sig, int timeout_s);
/* Detach, leaving the task running as before (or stopped, if it was). */
int task_release(pid_t pid, int stop_sig);
/* SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU: a signal whose default action is a group stop. */
bool is_stop_signal(int sig);
/* Waits (as their tracer) until the killed tids are gone, at most timeout_ms in all;
 * -ETIMEDOUT, each one left said. Zeroes tids as they go. */
int tasks_wait_gone(pid_t *tids, size_t n, int timeout_ms);
/* Wait for the tracee's next stop, bounded; returns the wait status or negative errno. */
int task_wait_stop(pid_t pid, int *status);

struct run_ctx;

/*
 * Running system calls inside a frozen task, safe against the death of stasis at any
 * instant. Between two syscalls the task rests with its own registers and signal mask. A
 * syscall runs from a small stub written into the unused tail of the task's vDSO page (past
 * the end of the vDSO's ELF image, where no code goes): `syscall`, then code that puts back
 * the task's signal mask and registers (with its interrupted syscall set to be made again)
 * and jumps to where it was. stasis catches the task between the two; if stasis is gone, the
 * kernel lets the task go on through the stub by itself. Plus a scratch mapping inside the
 * task for syscalls that write results to memory (left behind, harmless, if stasis dies).
 * A loop in the stub runs a list of syscalls with no stop between them (inject_syscalls,
 * below).
 */
struct inject_ctx {
	pid_t pid;        /* the thread the syscalls run in */
	pid_t owner;      /* the main thread: its context owns the stub and the scratch mapping */
	struct user_regs_struct saved; /* the task's registers at the freeze */
	uint64_t gadget;  /* the stub's syscall (else, without room in the vDSO, the vDSO's own) */
	uint64_t stub;    /* the stub in the vDSO, 0 if none */
	size_t stub_len;  /* each of the two stubs' length (without the loop when the room is short) */
	int mem_fd;       /* /proc/PID/mem, for the stub's data */
	void *stub_saved; /* what the stub's bytes replaced */
	uint64_t scratch;
	size_t scratch_len;
	int group_stop_sig; /* a stop signal (SIGSTOP) came while a syscall ran: it is stopped now */
	bool rests_in_signal_path; /* the last injection was a loop: stopped in its signal's delivery */
	struct run_ctx *run; /* for fault points (tests kill stasis at a step) */
};

int inject_begin(struct inject_ctx *ctx, struct run_ctx *run, pid_t pid,
		 const struct user_regs_struct *regs, uint64_t vdso_start, uint64_t vdso_end);
/* Runs syscall nr with args inside the task; *ret gets rax (a negative errno on failure). */
int inject_syscall(struct inject_ctx *ctx, long nr, const uint64_t args[6], int64_t *ret);
/* An injected syscall's nonzero rax as an error: its -errno, else -EIO. */
static inline int inject_ret_err(int64_t ret)
{
	return ret < 0 && ret > -4096 ? (int)ret : -EIO;
}
/*
 * For syscalls that write their result to memory (args point into ctx->scratch): runs it,
 * and on success copies len bytes of the scratch page to out. Returns 0 or a negative errno
 * (the syscall's own, or one of running it).
 */
int inject_syscall_out(struct inject_ctx *ctx, long nr, const uint64_t args[6], void *out,
		       size_t len);
/*
 * Runs the n syscalls of a list in one go, from a loop in the stub (no ptrace round trip per
 * syscall): ret[k] gets the k-th's rax; then len bytes from the scratch's start go to out
 * (arguments that point to results point there). The list itself takes the scratch's last
 * n * sizeof(struct inject_call) bytes (another thread's: a place under its own stack, which
 * the main thread's stub cannot unmap under it if stasis dies). The task is stopped after the loop by a signal that
 * stasis sends it beforehand, one that it ignores: if stasis dies meanwhile, the loop ends and
 * the task goes on as after one syscall, the signal dropped. Only for syscalls that change
 * nothing (reads). Where there is no loop (no stub or no room in the vDSO, or no signal fit to
 * stop it) they run one at a time, to the same effect. Returns 0 (each syscall's own result in
 * ret) or a negative errno of running them.
 */
struct inject_call {
	uint64_t nr;
	uint64_t args[6];
};
/* At most this many in one loop for a thread other than the main one (the list goes under its
 * stack pointer: 3.5 KiB of its stack, written back after); a longer list runs one at a time. */
#define INJECT_THREAD_LOOP_MAX 64
int inject_syscalls(struct inject_ctx *ctx, const struct inject_call *calls, unsigned n,
		    int64_t *ret, void *out, size_t len);
/*
 * A thread (tid, its registers at the freeze in regs) that a stasis killed during an earlier
 * dump left inside a stub it had not gone through yet (a thread waits long for the CPU when
 * others spin): it runs alone, the rest of the tree frozen, until it is out, as it would have
 * by itself; regs read again. Without this the dump would take the stub for its own place and
 * send it back there for ever. One that must not or cannot run (its process stopped by job
 * control, stopped set, or frozen since) is refused: the kernel lets a stopped task that was
 * seized before it stopped again run, and it would run its own code while stopped. 0 (also when
 * it was not in one) or <0, said.
 */
int inject_leave_stale_stub(pid_t tid, uint64_t vdso_start, uint64_t vdso_end, bool stopped,
			    struct user_regs_struct *regs);
/*
 * Unmaps the scratch page, takes the stub out (the main thread's context) and puts the
 * registers back as they were at the freeze.
 */
int inject_end(struct inject_ctx *ctx);

/* Copies between the task's memory and ours (/proc/PID/mem: reading breaks no page it shares). */
int task_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len);
int task_mem_write(pid_t pid, uint64_t addr, const void *buf, size_t len);
/* The same through one open /proc/PID/mem, for many reads: an fd, or a negative errno. */
int task_mem_open(pid_t pid);
int task_mem_read_fd(int fd, uint64_t addr, void *buf, size_t len);

#endif
