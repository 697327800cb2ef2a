/*
 * Syscall injection on x86_64: run one system call inside a ptrace-stopped task, so that the
 * task survives the death of stasis at any instant (see struct inject_ctx in cr/seize.h).
 */
#include <elf.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "run.h"
#include "seize.h"
#include "util.h"

#define SCRATCH_LEN (4 * PAGE_SIZE)
#define STACK_RED_ZONE 128 /* bytes below the stack pointer a function may use (x86-64 ABI) */
#define THREAD_TABLE_MAX INJECT_THREAD_LOOP_MAX
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516
#define STALE_STUB_TRIES 100  /* a thread left in a stub runs this many times, */
#define STALE_STUB_RUN_US 200 /* this long each, to get out of it */

/*
 * The stub, position-independent: the injected syscall, then (only if stasis is gone) the
 * task puts itself back: the scratch mapping goes (the one the injected mmap just made, when
 * unmap_rax), then its own signal mask and registers from the data that follows, and a jump
 * to where it was. Two stubs sit side by side: the main thread's, in whose restore path it
 * rests between its syscalls, and one for the other threads (which rest with their own
 * registers: they have no scratch of their own to give back).
 */
struct stub_data {
	uint64_t scratch, scratch_len, unmap_rax, mask;
	uint64_t rflags, rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15, rsp,
		rip;
	/* the loop (inject_syscalls): the mask that lets only the signal that stops the task
	 * after the loop through */
	uint64_t loop_mask;
};

__asm__(".pushsection .rodata\n"
	".balign 16\n"
	"inject_stub_start:\n"
	"	syscall\n"
	"inject_stub_after:\n"
	"	movq inject_stub_data+0(%rip), %rdi\n" /* munmap(scratch or rax, scratch_len) */
	"	cmpq $0, inject_stub_data+16(%rip)\n"
	"	cmovne %rax, %rdi\n"
	"	movq inject_stub_data+8(%rip), %rsi\n"
	"	movl $11, %eax\n"
	"	syscall\n"
	"	movl $14, %eax\n" /* rt_sigprocmask(SIG_SETMASK, &mask, NULL, 8) */
	"	movl $2, %edi\n"
	"	leaq inject_stub_data+24(%rip), %rsi\n"
	"	xorl %edx, %edx\n"
	"	movl $8, %r10d\n"
	"	syscall\n"
	"	leaq inject_stub_data+32(%rip), %rsp\n"
	"	popfq\n"
	"	movq inject_stub_data+40(%rip), %rax\n"
	"	movq inject_stub_data+48(%rip), %rbx\n"
	"	movq inject_stub_data+56(%rip), %rcx\n"
	"	movq inject_stub_data+64(%rip), %rdx\n"
	"	movq inject_stub_data+72(%rip), %rsi\n"
	"	movq inject_stub_data+80(%rip), %rdi\n"
	"	movq inject_stub_data+88(%rip), %rbp\n"
	"	movq inject_stub_data+96(%rip), %r8\n"
	"	movq inject_stub_data+104(%rip), %r9\n"
	"	movq inject_stub_data+112(%rip), %r10\n"
	"	movq inject_stub_data+120(%rip), %r11\n"
	"	movq inject_stub_data+128(%rip), %r12\n"
	"	movq inject_stub_data+136(%rip), %r13\n"
	"	movq inject_stub_data+144(%rip), %r14\n"
	"	movq inject_stub_data+152(%rip), %r15\n"
	"	movq inject_stub_data+160(%rip), %rsp\n"
	"	jmp *inject_stub_data+168(%rip)\n"
	".balign 8\n"
	"inject_stub_data:\n"
	"	.fill 23, 8, 0\n"
	"inject_stub_base_end:\n"
	/*
	 * The loop: r12 syscalls from the table at r13 (in the scratch mapping), each entry its
	 * number and six arguments, its rax stored over its number; then only the stop signal
	 * unblocked (the task stops in its delivery, stasis catches it there); left alone, on as
	 * after one syscall.
	 */
	"inject_stub_loop:\n"
	"	movq 0(%r13), %rax\n"
	"	movq 8(%r13), %rdi\n"
	"	movq 16(%r13), %rsi\n"
	"	movq 24(%r13), %rdx\n"
	"	movq 32(%r13), %r10\n"
	"	movq 40(%r13), %r8\n"
	"	movq 48(%r13), %r9\n"
	"	syscall\n"
	"	movq %rax, 0(%r13)\n"
	"	addq $56, %r13\n"
	"	decq %r12\n"
	"	jnz inject_stub_loop\n"
	"	movl $14, %eax\n" /* rt_sigprocmask(SIG_SETMASK, &loop_mask, NULL, 8) */
	"	movl $2, %edi\n"
	"	leaq inject_stub_data+176(%rip), %rsi\n"
	"	xorl %edx, %edx\n"
	"	movl $8, %r10d\n"
	"	syscall\n"
	"	jmp inject_stub_after\n"
	"inject_stub_end:\n"
	".popsection\n");
_Static_assert(offsetof(struct stub_data, loop_mask) == 176 && sizeof(struct stub_data) == 23 * 8 &&
		       sizeof(struct inject_call) == 56,
	       "the stub's code reads its data at these offsets");
extern const char inject_stub_start[], inject_stub_data[], inject_stub_base_end[],
	inject_stub_loop[], inject_stub_end[];

/* A stub with its loop, or (a vDSO with less room) without: the loop is not used then. */
#define STUB_LEN ((size_t)(inject_stub_end - inject_stub_start))
#define STUB_BASE_LEN ((size_t)(inject_stub_base_end - inject_stub_start))
#define STUB_DATA_OFF ((size_t)(inject_stub_data - inject_stub_start))
#define STUB_LOOP_OFF ((size_t)(inject_stub_loop - inject_stub_start))

/* Where the vDSO's ELF image ends in its mapping (code holds its bytes); 0 if unknown. */
static size_t vdso_image_end(const unsigned char *code, size_t len)
{
	const Elf64_Ehdr *e = (const Elf64_Ehdr *)code;
	size_t end;

	if (len < sizeof(*e) || memcmp(e->e_ident, ELFMAG, SELFMAG) || e->e_ident[EI_CLASS] != ELFCLASS64 ||
	    e->e_phoff > len || e->e_phnum > (len - e->e_phoff) / sizeof(Elf64_Phdr))
		return 0;
	end = e->e_shoff + (size_t)e->e_shnum * e->e_shentsize;
	for (int i = 0; i < e->e_phnum; i++) {
		const Elf64_Phdr *p = (const Elf64_Phdr *)(code + e->e_phoff) + i;
		if (p->p_offset + p->p_filesz > end)
			end = p->p_offset + p->p_filesz;
	}
	return end <= len ? end : 0;
}

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

	if (err)
		return err == -ENOMEM ? err : -ENOENT;
	for (size_t i = 0; i < vmas.n; i++) {
		if (!(vmas.v[i].prot & PROT_EXEC) || vmas.v[i].start >= 0x7ffffffff000ULL)
			continue; /* ([vsyscall] traps when executed) */
		err = find_gadget(pid, vmas.v[i].start, vmas.v[i].end, gadget);
		if (!err || err == -ENOMEM) {
			proc_vmas_free(&vmas);
			return err;
		}
	}
	proc_vmas_free(&vmas);
	return -ENOENT;
}

/* Room for both stubs after the vDSO's ELF image, in [start, end) of the task (*room: else 0;
 * *stub_len: each one's length, with its loop if there is room for it); -ENOMEM. */
static int find_stub_room(pid_t pid, uint64_t start, uint64_t end, uint64_t *room, size_t *stub_len)
{
	size_t len = end - start, image_end;

	*room = 0;
	*stub_len = 0;
	if (len > (1u << 20))
		return 0;
	auto_free unsigned char *code = xmalloc(len);
	if (!code)
		return -ENOMEM;
	if (task_mem_read(pid, start, code, len))
		return 0;
	image_end = (vdso_image_end(code, len) + 15) & ~(size_t)15;
	if (!image_end)
		return 0;
	*stub_len = image_end + 2 * STUB_LEN <= len	   ? STUB_LEN
		    : image_end + 2 * STUB_BASE_LEN <= len ? STUB_BASE_LEN
							   : 0;
	*room = *stub_len ? start + image_end : 0;
	return 0;
}

int inject_leave_stale_stub(pid_t tid, uint64_t vdso_start, uint64_t vdso_end, bool stopped,
			    struct user_regs_struct *regs)
{
	uint64_t room;
	size_t stub_len;
	int err, status;

	if (regs->rip < vdso_start || regs->rip >= vdso_end)
		return 0;
	if ((err = find_stub_room(tid, vdso_start, vdso_end, &room, &stub_len)) || !room || regs->rip < room)
		return err; /* (the vDSO's own code) */
	for (int i = 0; !stopped && i < STALE_STUB_TRIES && regs->rip >= room && regs->rip < vdso_end;
	     i++) {
		int sig = 0;
		do { /* (a signal that comes meanwhile is delivered, as it would have been) */
			if (ptrace(PTRACE_CONT, tid, 0, (void *)(long)sig) ||
			    (usleep(STALE_STUB_RUN_US), ptrace(PTRACE_INTERRUPT, tid, 0, 0))) {
				pr_perror("thread %d: cannot let it run out of a stub", tid);
				return -errno;
			}
			if ((err = task_wait_stop(tid, &status)))
				return err;
			sig = (status >> 16) == PTRACE_EVENT_STOP ? 0 : WSTOPSIG(status);
		} while (sig);
		if (ptrace(PTRACE_GETREGS, tid, 0, regs)) {
			pr_perror("thread %d: cannot read registers", tid);
			return -errno;
		}
	}
	if (regs->rip >= room && regs->rip < vdso_end) {
		pr_err("thread %d: still in the stub that a stasis killed during an earlier dump left it "
		       "in (at %#llx; a process stopped or frozen since goes through it once it runs "
		       "again: dump it then)", tid, (unsigned long long)regs->rip);
		return -EBUSY;
	}
	pr_debug("thread %d: ran out of the stub that a stasis killed during an earlier dump left it in",
		 tid);
	return 0;
}

/* Tests kill stasis at a step (STASIS_FAULT=kill-at:inject-STEP:N). */
static void fault_point(struct inject_ctx *ctx, const char *step)
{
	if (ctx->run)
		run_fault_count(ctx->run, step);
}

/*
 * Where the task goes on from if nobody resumes it: its registers with the syscall the freeze
 * interrupted set to be made again, as the kernel would have (no handler runs here).
 */
static void resume_data(const struct inject_ctx *ctx, uint64_t mask, bool unmap_rax,
			struct stub_data *d)
{
	const struct user_regs_struct *r = &ctx->saved;

	*d = (struct stub_data){ ctx->scratch, ctx->scratch_len, unmap_rax, mask, r->eflags, r->rax,
				 r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rbp, r->r8, r->r9, r->r10,
				 r->r11, r->r12, r->r13, r->r14, r->r15, r->rsp, r->rip, 0 };
	/*
	 * Only the main thread's stub gives the scratch back (it rests in its stub while another
	 * thread's syscalls run): another thread's munmap, later, could hit what the program
	 * mapped there since (munmap of length 0 fails, and does nothing).
	 */
	if (ctx->pid != ctx->owner)
		d->scratch_len = 0;
	if ((long long)r->orig_rax < 0)
		return;
	switch (-(long long)r->rax) {
	case ERESTARTSYS:
	case ERESTARTNOINTR:
	case ERESTARTNOHAND:
		d->rax = r->orig_rax;
		d->rip -= 2;
		break;
	case ERESTART_RESTARTBLOCK:
		d->rax = SYS_restart_syscall;
		d->rip -= 2;
		break;
	}
}

/*
 * Resumes to syscall entry, then to syscall exit. Every signal is blocked but SIGSTOP (and
 * SIGKILL): one that comes meanwhile is let through, and the task enters a group stop, which
 * it keeps (ctx->group_stop_sig); a task in group stop reports that stop again once resumed:
 * resume it past it. Stop signals are not queued twice, so a task has at most eight pending
 * (four kinds, its own and its process's), each a signal stop and a group stop or two:
 * MAX_GROUP_STOPS bounds a loop that would not end.
 */
#define MAX_GROUP_STOPS 32
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
		if ((status >> 16) == PTRACE_EVENT_STOP && group_stops++ < MAX_GROUP_STOPS) {
			step--;
			continue;
		}
		if ((status >> 16) == 0 && is_stop_signal(WSTOPSIG(status)) && group_stops++ < MAX_GROUP_STOPS) {
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
		fault_point(ctx, step ? "inject-exit" : "inject-entry");
	}
	return 0;
}

/* A syscall's arguments in its registers. */
static void syscall_args_set(struct user_regs_struct *r, const uint64_t args[6])
{
	r->rdi = args[0];
	r->rsi = args[1];
	r->rdx = args[2];
	r->r10 = args[3];
	r->r8 = args[4];
	r->r9 = args[5];
}

static int stub_data_write(const struct inject_ctx *ctx, uint64_t stub, const struct stub_data *d)
{
	if (pwrite(ctx->mem_fd, d, sizeof(*d), stub + STUB_DATA_OFF) != sizeof(*d)) {
		pr_perror("pid %d: cannot write the injection stub's data", ctx->pid);
		return -EIO;
	}
	return 0;
}

/*
 * After injected syscalls (err: how they went, returned unless this fails): the task's signal
 * mask back, and, unless it rests in its stub's restore path (in_stub: the main thread's stub
 * puts them back itself), its own registers.
 */
static int injection_leave(struct inject_ctx *ctx, long nr, uint64_t mask, bool in_stub, int err)
{
	/* the mask before the registers: the stub (rip still there) would put it back too */
	if (ptrace(PTRACE_SETSIGMASK, ctx->pid, sizeof(mask), &mask)) {
		pr_perror("pid %d: cannot restore its signal mask", ctx->pid);
		return -errno;
	}
	fault_point(ctx, "inject-unmask");
	if (in_stub)
		return err;
	/*
	 * Its own registers again, in this syscall-exit (or signal-delivery) stop: if stasis dies
	 * now, the kernel lets it go with a signal check on the way out, which makes its
	 * interrupted syscall again as any resume from the freeze would.
	 */
	if (ptrace(PTRACE_SETREGS, ctx->pid, 0, &ctx->saved)) {
		pr_perror("pid %d: cannot put its registers back after injected syscall %ld", ctx->pid,
			  nr);
		return -errno;
	}
	fault_point(ctx, "inject-done");
	return err;
}

/*
 * The injected syscall itself. The main thread rests in its stub's restore path afterwards;
 * another thread rests with its own registers again.
 */
static int run_injected(struct inject_ctx *ctx, long nr, const uint64_t args[6], uint64_t mask,
			int64_t *ret)
{
	struct user_regs_struct r = ctx->saved;
	bool main_thread = ctx->pid == ctx->owner;
	uint64_t all = ~0ull, stub = ctx->stub ? ctx->stub + (main_thread ? 0 : ctx->stub_len) : 0;
	int err;

	if (stub) {
		struct stub_data d;
		resume_data(ctx, mask, nr == SYS_mmap && !ctx->scratch, &d);
		if ((err = stub_data_write(ctx, stub, &d)))
			return err;
	}
	r.rip = stub ? stub : ctx->gadget;
	r.rax = nr;
	r.orig_rax = -1; /* no restart processing of the frozen syscall on this resume */
	syscall_args_set(&r, args);
	/* registers first: from here a task left alone runs the stub, which puts its mask back */
	if (ptrace(PTRACE_SETREGS, ctx->pid, 0, &r)) {
		pr_perror("pid %d: cannot set registers for injected syscall %ld", ctx->pid, nr);
		return -errno;
	}
	ctx->rests_in_signal_path = false;
	fault_point(ctx, "inject-regs");
	/* pending signals (a child's SIGCHLD...) stay pending while the syscall runs */
	if (ptrace(PTRACE_SETSIGMASK, ctx->pid, sizeof(all), &all)) {
		pr_perror("pid %d: cannot block signals for an injected syscall", ctx->pid);
		err = -errno;
		goto back;
	}
	fault_point(ctx, "inject-mask");
	if ((err = run_to_syscall_exit(ctx, nr)))
		return err;
	if (ptrace(PTRACE_GETREGS, ctx->pid, 0, &r)) {
		pr_perror("pid %d: cannot read injected syscall result", ctx->pid);
		return -errno;
	}
	*ret = (int64_t)r.rax;
back:
	return injection_leave(ctx, nr, mask, stub && main_thread, err);
}

int inject_syscall(struct inject_ctx *ctx, long nr, const uint64_t args[6], int64_t *ret)
{
	uint64_t mask;

	if (ptrace(PTRACE_GETSIGMASK, ctx->pid, sizeof(mask), &mask)) {
		pr_perror("pid %d: cannot read its signal mask", ctx->pid);
		return -errno;
	}
	return run_injected(ctx, nr, args, mask, ret);
}

/* Bytes of the scratch mapping, from off (through the stub's /proc/PID/mem if open). */
static int scratch_read(const struct inject_ctx *ctx, size_t off, void *out, size_t len)
{
	if (ctx->mem_fd < 0)
		return task_mem_read(ctx->pid, ctx->scratch + off, out, len);
	return pread(ctx->mem_fd, out, len, ctx->scratch + off) == (ssize_t)len ? 0 : -EIO;
}

int inject_syscall_out(struct inject_ctx *ctx, long nr, const uint64_t args[6], void *out,
		       size_t len)
{
	int64_t ret;
	int err = inject_syscall(ctx, nr, args, &ret);

	if (err)
		return err;
	if (ret)
		return inject_ret_err(ret);
	return scratch_read(ctx, 0, out, len);
}

/*
 * The signal that stops the task after a loop: one whose delivery does nothing to it, if
 * stasis is gone before it stops (default action ignore and no handler, or ignored), neither
 * blocked by the thread (mask) nor pending already (it would be taken with ours); 0 if none.
 * *tgid: the thread's process (ctx->owner is the thread standing for it if its leader exited).
 */
static int loop_stop_signal(const struct inject_ctx *ctx, uint64_t mask, pid_t *tgid)
{
	static const int candidates[] = { SIGURG, SIGWINCH, SIGCHLD };
	static const char *const fields[] = { "SigPnd:", "ShdPnd:", "SigCgt:" };
	uint64_t busy = mask;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", ctx->owner, ctx->pid);
	auto_free char *status = read_proc_record(path);
	if (!status)
		return errno == ENOMEM ? -ENOMEM : 0; /* (out of memory is no reason to go on slower) */
	const char *tgid_at = strstr(status, "\nTgid:");
	if (!tgid_at || (*tgid = strtol(tgid_at + 6, NULL, 10)) <= 0)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		const char *at = strstr(status, fields[i]);
		if (!at)
			return 0;
		busy |= strtoull(at + strlen(fields[i]), NULL, 16);
	}
	for (size_t i = 0; i < ARRAY_SIZE(candidates); i++)
		if (!(busy & (1ull << (candidates[i] - 1))))
			return candidates[i];
	return 0;
}

/*
 * Runs the loop from the stub's registers r (set up by the caller) until the task stops in the
 * delivery of sig. Stop signals that come meanwhile are let through as in run_to_syscall_exit.
 */
static int run_loop(struct inject_ctx *ctx, long nr, int sig)
{
	pid_t pid = ctx->pid;
	int pass_sig = 0;

	for (int group_stops = 0;;) {
		int status, ret;
		if (ptrace(PTRACE_CONT, pid, 0, (void *)(long)pass_sig)) {
			pr_perror("pid %d: cannot resume it into injected syscalls %ld", pid, nr);
			return -errno;
		}
		pass_sig = 0;
		if ((ret = task_wait_stop(pid, &status))) {
			pr_err("pid %d: %s while running injected syscalls %ld", pid,
			       ret == -ESRCH ? "exited" : "did not stop", nr);
			return ret;
		}
		if ((status >> 16) == PTRACE_EVENT_STOP && group_stops++ < MAX_GROUP_STOPS)
			continue;
		if ((status >> 16) == 0 && WSTOPSIG(status) == sig)
			return 0;
		if ((status >> 16) == 0 && is_stop_signal(WSTOPSIG(status)) && group_stops++ < MAX_GROUP_STOPS) {
			pr_debug("pid %d: stopped by signal %d while running injected syscalls", pid,
				 WSTOPSIG(status));
			ctx->group_stop_sig = pass_sig = WSTOPSIG(status);
			continue;
		}
		pr_err("pid %d: unexpected stop 0x%x while running injected syscalls %ld", pid, status, nr);
		return -EIO;
	}
}

/* inject_syscalls from the stub's loop; -EOPNOTSUPP (nothing done) without one. */
static int calls_in_loop(struct inject_ctx *ctx, const struct inject_call *calls, unsigned n,
			 int64_t *ret, void *out, size_t len)
{
	struct user_regs_struct r = ctx->saved;
	bool main_thread = ctx->pid == ctx->owner;
	uint64_t all = ~0ull, mask, stub, table;
	size_t table_len = n * sizeof(*calls);
	auto_free struct inject_call *done = NULL;
	unsigned char under_stack[THREAD_TABLE_MAX * sizeof(*calls)];
	struct stub_data d;
	pid_t tgid;
	int sig, err = 0;

	if (ctx->stub_len != STUB_LEN || !ctx->scratch || !n || ctx->mem_fd < 0 ||
	    n > ctx->scratch_len / sizeof(*calls) || table_len + len > ctx->scratch_len)
		return -EOPNOTSUPP;
	if (ptrace(PTRACE_GETSIGMASK, ctx->pid, sizeof(mask), &mask)) {
		pr_perror("pid %d: cannot read its signal mask", ctx->pid);
		return -errno;
	}
	/*
	 * Another thread's list goes on its own stack, below the red zone (where a signal's frame
	 * would go), its bytes there put back afterwards; not into the scratch: if stasis dies, the
	 * main thread, let go at once too, unmaps the scratch, maybe before this thread's loop has
	 * read its list. Written with process_vm_writev, which (unlike /proc/PID/mem) writes only
	 * where the thread itself could; else one syscall at a time.
	 */
	if (main_thread)
		table = ctx->scratch + ctx->scratch_len - table_len;
	else if (table_len > sizeof(under_stack))
		return -EOPNOTSUPP;
	else
		table = (ctx->saved.rsp - STACK_RED_ZONE - table_len) & ~15ull;
	if ((sig = loop_stop_signal(ctx, mask, &tgid)) <= 0) {
		if (sig < 0)
			return sig;
		pr_debug("pid %d: no signal to stop injected syscalls by: one at a time", ctx->pid);
		return -EOPNOTSUPP;
	}
	if (!(done = xmalloc(table_len)))
		return -ENOMEM;
	stub = ctx->stub + (main_thread ? 0 : ctx->stub_len);
	if (main_thread) {
		if (pwrite(ctx->mem_fd, calls, table_len, table) != (ssize_t)table_len) {
			pr_perror("pid %d: cannot write the table of injected syscalls", ctx->pid);
			return -EIO;
		}
	} else {
		struct iovec local = { (void *)calls, table_len }, remote = { (void *)table, table_len };
		if (pread(ctx->mem_fd, under_stack, table_len, table) != (ssize_t)table_len ||
		    process_vm_writev(ctx->pid, &local, 1, &remote, 1, 0) != (ssize_t)table_len) {
			pr_debug("pid %d: no room for injected syscalls under its stack: one at a time", ctx->pid);
			return -EOPNOTSUPP;
		}
	}
	resume_data(ctx, mask, false, &d);
	d.loop_mask = ~(1ull << (sig - 1));
	if ((err = stub_data_write(ctx, stub, &d)))
		return err;
	r.rip = stub + STUB_LOOP_OFF;
	r.orig_rax = -1;
	r.r12 = n;
	r.r13 = table;
	/* as one syscall's (run_injected): from here a task left alone loops, then goes on */
	if (ptrace(PTRACE_SETREGS, ctx->pid, 0, &r)) {
		pr_perror("pid %d: cannot set registers for injected syscalls %ld...", ctx->pid,
			  (long)calls[0].nr);
		return -errno;
	}
	ctx->rests_in_signal_path = false;
	fault_point(ctx, "inject-regs");
	if (ptrace(PTRACE_SETSIGMASK, ctx->pid, sizeof(all), &all)) {
		pr_perror("pid %d: cannot block signals for injected syscalls", ctx->pid);
		err = -errno;
		goto back;
	}
	fault_point(ctx, "inject-mask");
	/* pending (blocked) until the loop is over; delivered alone it does nothing */
	if (syscall(SYS_tgkill, tgid, ctx->pid, sig)) {
		pr_perror("pid %d: cannot send it the signal that ends injected syscalls", ctx->pid);
		err = -errno;
		goto back;
	}
	fault_point(ctx, "inject-entry");
	if ((err = run_loop(ctx, calls[0].nr, sig)))
		return err;
	fault_point(ctx, "inject-exit");
	/*
	 * It stops in the signal's delivery, in the signal path (the next resume, with no
	 * signal, drops it): with its own registers back, a resume from here (stasis gone, or
	 * its release) makes its interrupted syscall again, as from the freeze.
	 */
	ctx->rests_in_signal_path = true;
back:
	if ((err = injection_leave(ctx, calls[0].nr, mask, main_thread, err)))
		return err;
	if (pread(ctx->mem_fd, done, table_len, table) != (ssize_t)table_len ||
	    (!main_thread && pwrite(ctx->mem_fd, under_stack, table_len, table) != (ssize_t)table_len))
		return -EIO;
	for (unsigned k = 0; k < n; k++)
		ret[k] = done[k].nr;
	return len ? scratch_read(ctx, 0, out, len) : 0;
}

int inject_syscalls(struct inject_ctx *ctx, const struct inject_call *calls, unsigned n,
		    int64_t *ret, void *out, size_t len)
{
	int err = calls_in_loop(ctx, calls, n, ret, out, len);

	if (err != -EOPNOTSUPP)
		return err;
	if (len > ctx->scratch_len)
		return -EINVAL;
	for (unsigned k = 0; k < n; k++) /* one at a time */
		if ((err = inject_syscall(ctx, calls[k].nr, calls[k].args, &ret[k])))
			return err;
	return len ? scratch_read(ctx, 0, out, len) : 0;
}

/* The stub into the vDSO's tail, its bytes there kept to be put back; 0 or -errno. */
static int write_stub(struct inject_ctx *ctx)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/mem", ctx->pid);
	if ((ctx->mem_fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
		pr_perror("pid %d: cannot open %s for the injection stub", ctx->pid, path);
		return -errno;
	}
	if (!(ctx->stub_saved = xmalloc(2 * ctx->stub_len)))
		return -ENOMEM;
	if (pread(ctx->mem_fd, ctx->stub_saved, 2 * ctx->stub_len, ctx->stub) != (ssize_t)(2 * ctx->stub_len)) {
		pr_perror("pid %d: cannot read its vDSO's tail for the injection stub", ctx->pid);
		free(ctx->stub_saved);
		ctx->stub_saved = NULL; /* nothing to put back */
		return -EIO;
	}
	if (pwrite(ctx->mem_fd, inject_stub_start, ctx->stub_len, ctx->stub) != (ssize_t)ctx->stub_len ||
	    pwrite(ctx->mem_fd, inject_stub_start, ctx->stub_len, ctx->stub + ctx->stub_len) !=
		    (ssize_t)ctx->stub_len) {
		pr_perror("pid %d: cannot write the injection stub", ctx->pid);
		return -EIO;
	}
	ctx->gadget = ctx->stub;
	return 0;
}

/* The vDSO's tail as it was (the main thread's context, once no thread runs the stub). */
static int remove_stub(struct inject_ctx *ctx)
{
	int err = 0;

	if (ctx->stub_saved &&
	    pwrite(ctx->mem_fd, ctx->stub_saved, 2 * ctx->stub_len, ctx->stub) != (ssize_t)(2 * ctx->stub_len)) {
		pr_perror("pid %d: cannot take the injection stub out of its vDSO", ctx->pid);
		err = -EIO;
	}
	free(ctx->stub_saved);
	ctx->stub_saved = NULL;
	if (ctx->mem_fd >= 0)
		close(ctx->mem_fd);
	ctx->mem_fd = -1;
	return err;
}

/* Registers as at the freeze, the task stopped where the freeze stopped it. */
static int back_to_frozen(struct inject_ctx *ctx)
{
	int status;

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
	return 0;
}

/*
 * The scratch mapping, made inside the task. A process whose address-space or data limit
 * (RLIMIT_AS, RLIMIT_DATA) it has reached has room for it once their soft values are raised
 * to the hard ones: raised for this mmap alone, then put back (stasis needs the same user
 * as the task, or CAP_SYS_RESOURCE, to change them).
 */
static int map_scratch(struct inject_ctx *ctx, uint64_t *args, int64_t *ret)
{
	static const int limits[] = { RLIMIT_AS, RLIMIT_DATA };
	struct rlimit was[2];
	bool raised[2] = { false, false }, any = false;
	int err = inject_syscall(ctx, SYS_mmap, args, ret);

	if (err || *ret != -ENOMEM)
		return err;
	for (int i = 0; i < 2; i++) {
		if (prlimit(ctx->pid, limits[i], NULL, &was[i]) || was[i].rlim_cur >= was[i].rlim_max)
			continue;
		struct rlimit up = { was[i].rlim_max, was[i].rlim_max };
		any |= raised[i] = !prlimit(ctx->pid, limits[i], &up, NULL);
	}
	if (any)
		err = inject_syscall(ctx, SYS_mmap, args, ret);
	for (int i = 0; i < 2; i++)
		if (raised[i] && prlimit(ctx->pid, limits[i], &was[i], NULL))
			pr_warn("pid %d: cannot put its %s limit back to %llu: %m", ctx->pid,
				limits[i] == RLIMIT_AS ? "address space" : "data", (unsigned long long)was[i].rlim_cur);
	if (!err && *ret == -ENOMEM)
		pr_err("pid %d: its address space or data limit (RLIMIT_AS, RLIMIT_DATA, hard limits "
		       "too) leaves no room for stasis's scratch page", ctx->pid);
	return err;
}

int inject_begin(struct inject_ctx *ctx, struct run_ctx *run, pid_t pid,
		 const struct user_regs_struct *regs, uint64_t vdso_start, uint64_t vdso_end)
{
	uint64_t args[6] = { 0, SCRATCH_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			     (uint64_t)-1, 0 };
	int64_t ret;
	int err;

	memset(ctx, 0, sizeof(*ctx));
	ctx->pid = ctx->owner = pid;
	ctx->saved = *regs;
	ctx->run = run;
	ctx->mem_fd = -1;
	if (vdso_start && (err = find_stub_room(pid, vdso_start, vdso_end, &ctx->stub, &ctx->stub_len)))
		return err;
	err = vdso_start ? find_gadget(pid, vdso_start, vdso_end, &ctx->gadget) : -ENOENT;
	if (err && err != -ENOMEM)
		err = find_gadget_elsewhere(pid, &ctx->gadget);
	if (err) {
		if (err != -ENOMEM)
			pr_err("pid %d: no syscall instruction found in its vDSO or any executable mapping", pid);
		return err == -ENOMEM ? err : -ENOENT;
	}
	if (!ctx->stub)
		pr_warn("pid %d: no vDSO, or no room for the injection stub in it: if stasis is killed "
			"while it runs a syscall inside the task, the task dies", pid);
	else if ((err = write_stub(ctx)))
		goto fail;
	ctx->scratch_len = SCRATCH_LEN;
	err = map_scratch(ctx, args, &ret);
	if (err == 0 && (ret < 0 && ret > -4096)) {
		pr_err("pid %d: injected mmap of a scratch page failed: %s", pid, strerror(-ret));
		err = -EIO;
	}
	if (err)
		goto fail;
	ctx->scratch = ret;
	return 0;
fail:
	back_to_frozen(ctx);
	remove_stub(ctx);
	return err;
}

int inject_end(struct inject_ctx *ctx)
{
	int err = 0;

	if (ctx->pid != ctx->owner) { /* another thread's: it rests with its own registers */
		/* (after a loop, in the signal path already: resumed from there, as from the freeze) */
		return ctx->rests_in_signal_path ? 0 : back_to_frozen(ctx);
	}
	if (ctx->scratch) {
		uint64_t args[6] = { ctx->scratch, ctx->scratch_len };
		int64_t r;
		if (inject_syscall(ctx, SYS_munmap, args, &r)) {
			err = -EIO;
		} else if (r) {
			pr_err("pid %d: injected munmap of the scratch page returned %lld", ctx->pid,
			       (long long)r);
			err = -EIO;
		}
		ctx->scratch = 0;
	}
	/* its own registers, then the stubs go: no thread is in them any more */
	if ((err = back_to_frozen(ctx) ?: err))
		return err;
	return remove_stub(ctx);
}
