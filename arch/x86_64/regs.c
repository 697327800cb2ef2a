/*
 * Registers on x86_64: general purpose (with fs_base/gs_base) and the xsave area
 * (FPU/SSE/AVX/AVX-512). Dumped from the frozen task; put back by the tracer into the
 * restored task as the very last step, with the interrupted syscall rewound for restart.
 */
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <linux/futex.h>
#include <time.h>

#include "log.h"
#include "regs.h"
#include "task.h"

#define XSAVE_MAX (64 * 1024)

/* Kernel-internal restart codes seen in rax of a task stopped inside a syscall. */
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

#define REG_FIELDS(X)                                                                         \
	X(r15) X(r14) X(r13) X(r12) X(rbp) X(rbx) X(r11) X(r10) X(r9) X(r8) X(rax) X(rcx)    \
	X(rdx) X(rsi) X(rdi) X(orig_rax) X(rip) X(cs) X(eflags) X(rsp) X(ss) X(fs_base)      \
	X(gs_base) X(ds) X(es) X(fs) X(gs)

static void regs_to_image(const struct user_regs_struct *r, GpRegs *g)
{
#define TO(f) g->f = r->f;
	REG_FIELDS(TO)
#undef TO
}

static void regs_from_image(const GpRegs *g, struct user_regs_struct *r)
{
#define FROM(f) r->f = g->f;
	REG_FIELDS(FROM)
#undef FROM
}

/*
 * Waits that return a plain EINTR (not a restart code) when woken by anything, the freeze's
 * PTRACE_INTERRUPT included: without help the program would see EINTR that no signal caused.
 */
static bool eintr_from_freeze(long long nr)
{
	switch (nr) {
	case SYS_rt_sigtimedwait:
	case SYS_epoll_wait:
	case SYS_epoll_pwait:
	case SYS_epoll_pwait2:
	case SYS_semop:
	case SYS_semtimedop:
	case SYS_io_getevents:
	case SYS_io_pgetevents:
		return true;
	}
	return false;
}

/* A syscall stopped with ERESTART_RESTARTBLOCK that can be made again with the same arguments. */
static bool restartable_as_is(const struct user_regs_struct *r)
{
	int futex_op = r->rsi & FUTEX_CMD_MASK;

	switch (r->orig_rax) {
	case SYS_poll:
		return (int)r->rdx < 0; /* no timeout */
	case SYS_clock_nanosleep:
		return r->rsi & TIMER_ABSTIME;
	case SYS_futex:
		return futex_op == FUTEX_WAIT_BITSET; /* its timeout is absolute */
	}
	return false;
}

/*
 * A wait with a relative timeout stopped with ERESTART_RESTARTBLOCK (poll, FUTEX_WAIT): its
 * restart block held when the timeout ends, so at restore it is made again with the whole
 * timeout. A longer wait than asked, which a busy machine may always give, rather than an
 * EINTR no signal caused: tinyproxy and privoxy end a tunnel on it.
 */
static bool restartable_from_start(const struct user_regs_struct *r)
{
	return r->orig_rax == SYS_poll || (r->orig_rax == SYS_futex && (r->rsi & FUTEX_CMD_MASK) == FUTEX_WAIT);
}

/*
 * A relative sleep stopped with ERESTART_RESTARTBLOCK (nanosleep, clock_nanosleep without
 * TIMER_ABSTIME)? The kernel wrote what was left of it where the call asked (rem, if it did)
 * as the freeze stopped it.
 */
static bool relative_sleep(const struct user_regs_struct *r)
{
	return r->orig_rax == SYS_nanosleep ||
	       (r->orig_rax == SYS_clock_nanosleep && !(r->rsi & TIMER_ABSTIME));
}

/*
 * Relative sleep r, with rem, made to sleep what was left: rem becomes its request too. Only
 * the register that points at the request changes, which the libc wrappers do not read again;
 * the program's timespecs stay as they are.
 */
static bool relative_sleep_from_rem(struct user_regs_struct *r)
{
	unsigned long long *req = r->orig_rax == SYS_nanosleep ? &r->rdi : &r->rdx;
	unsigned long long rem = r->orig_rax == SYS_nanosleep ? r->rsi : r->r10;

	if (!relative_sleep(r) || !rem)
		return false;
	*req = rem;
	return true;
}

/*
 * A thread the freeze found in restart_syscall: a wait of the kernel's restart block (poll,
 * nanosleep, clock_nanosleep, a futex wait) that a stop interrupted before (job control, or a
 * dump that let it go on) and the kernel continues. Its registers still hold that wait's
 * arguments, but not its number, and a new task has no restart block: without its number the
 * restore could only end it with EINTR. The number is read where the call was made, from the
 * `mov $NR, %eax` just before the `syscall` instruction, as libc wrappers and Go's runtime
 * have it; one of those waits is taken for it, or nothing.
 */
static void restart_syscall_origin(pid_t tid, struct user_regs_struct *r)
{
	union {
		long word;
		unsigned char b[8];
	} code;

	if (r->orig_rax != SYS_restart_syscall || (long long)r->rax != -ERESTART_RESTARTBLOCK)
		return;
	errno = 0;
	code.word = ptrace(PTRACE_PEEKTEXT, tid, r->rip - 8, 0);
	if (errno || code.b[1] != 0xb8 || code.b[6] != 0x0f || code.b[7] != 0x05)
		return;
	struct user_regs_struct was = *r;
	uint32_t nr;
	memcpy(&nr, &code.b[2], sizeof(nr));
	was.orig_rax = nr;
	if (!restartable_as_is(&was) && !restartable_from_start(&was) && !relative_sleep(&was))
		return;
	pr_info("dump tid %d: it is in restart_syscall, continuing syscall %u a stop interrupted: "
		"saved as in that syscall", tid, nr);
	r->orig_rax = nr;
}

int regs_collect(pid_t tid, const struct user_regs_struct *frozen, GpRegs **regs,
		 ProtobufCBinaryData *xsave_out)
{
	struct user_regs_struct as_saved = *frozen, *r = &as_saved;
	static unsigned char xsave[XSAVE_MAX] __attribute__((aligned(64)));
	struct iovec iov = { xsave, sizeof(xsave) };
	GpRegs *g = xzalloc(sizeof(*g));

	if (!g)
		return -ENOMEM;
	gp_regs__init(g);
	restart_syscall_origin(tid, r);
	regs_to_image(r, g);
	*regs = g;
	if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov)) {
		pr_perror("dump tid %d: cannot read the xsave area", tid);
		return -errno;
	}
	if (!(xsave_out->data = xzalloc(iov.iov_len)))
		return -ENOMEM;
	xsave_out->len = iov.iov_len;
	memcpy(xsave_out->data, xsave, iov.iov_len);
	pr_debug("dump tid %d: rip %#llx rsp %#llx orig_rax %lld rax %lld, xsave %zu bytes", tid,
		 r->rip, r->rsp, (long long)r->orig_rax, (long long)r->rax, iov.iov_len);
	return 0;
}

#define USER_CS 0x33   /* the kernel's code segment for 64-bit user code */
#define USER32_CS 0x23 /* and for 32-bit (i386) user code */

int regs_refuse_compat(pid_t pid, pid_t tid, const struct user_regs_struct *r)
{
	char who[48], what[64];

	if (r->cs == USER_CS)
		return 0;
	snprintf(who, sizeof(who), tid == pid ? "pid %d" : "pid %d thread %d", pid, tid);
	if (r->cs == USER32_CS)
		snprintf(what, sizeof(what), "32-bit (i386) code");
	else
		snprintf(what, sizeof(what), "code of segment %#llx (of its LDT)", (unsigned long long)r->cs);
	pr_err("dump %s: it runs %s: not supported", who, what);
	return -ENOTSUP;
}

static int dump_regs(struct dump_task *t)
{
	return regs_collect(t->pid, &t->regs, &t->core->regs, &t->core->xsave);
}

bool regs_image_valid(const GpRegs *regs, const ProtobufCBinaryData *xsave)
{
	return regs && xsave->len >= 576 && xsave->len <= XSAVE_MAX;
}

static int validate_regs(struct restore_task *t)
{
	if (!regs_image_valid(t->core->regs, &t->core->xsave)) {
		pr_err("image core-%d.img: register set missing or xsave size %zu out of range",
		       t->pid, t->core->xsave.len);
		return -EINVAL;
	}
	return 0;
}

/*
 * The restored task resumes from a syscall-exit stop, where the kernel does no restart
 * processing: do what it would have done for the syscall the freeze interrupted.
 */
static void rewind_interrupted_syscall(pid_t pid, struct user_regs_struct *r)
{
	if ((long long)r->orig_rax < 0)
		return;
	if ((long long)r->rax == -EINTR && eintr_from_freeze(r->orig_rax)) {
		r->rax = r->orig_rax;
		r->rip -= 2;
		pr_debug("restore pid %d: wait syscall %lld will be restarted", pid, r->orig_rax);
	}
	switch (-(long long)r->rax) {
	case ERESTARTSYS:
	case ERESTARTNOINTR:
	case ERESTARTNOHAND:
		r->rax = r->orig_rax;
		r->rip -= 2;
		pr_debug("restore pid %d: syscall %lld will be restarted", pid, r->orig_rax);
		break;
	case ERESTART_RESTARTBLOCK:
		/*
		 * Its restart block lives only in the old kernel task. A wait whose arguments
		 * still say all there is to say is made again (poll without a timeout, which
		 * programs like tail do not expect to fail; a sleep or futex wait until an
		 * absolute time), so is a poll or futex wait with a relative timeout (from its
		 * start) and a relative sleep (what was left of it, or without rem from its
		 * start); the others see EINTR.
		 */
		if (restartable_as_is(r) || restartable_from_start(r) || relative_sleep_from_rem(r) ||
		    relative_sleep(r)) {
			r->rax = r->orig_rax;
			r->rip -= 2;
			pr_debug("restore pid %d: syscall %lld will be made again", pid, r->orig_rax);
			break;
		}
		r->rax = -EINTR;
		pr_info("restore pid %d: interrupted syscall %lld returns EINTR", pid, r->orig_rax);
		break;
	}
	r->orig_rax = -1;
}

int regs_undo_freeze_eintr(pid_t pid, const struct user_regs_struct *frozen)
{
	struct user_regs_struct r = *frozen;

	/* a wait the kernel would turn into restart_syscall, with its restart block, is made
	 * again as it was (a relative sleep with rem: for what was left), so that a later dump
	 * (after a pre-dump, --leave-running) can tell what it is; restart_syscall can not be
	 * told from its registers, and the restore would end it with EINTR */
	bool same_again = (long long)r.rax == -ERESTART_RESTARTBLOCK &&
			  (restartable_as_is(&r) || relative_sleep_from_rem(&r));

	if ((long long)r.orig_rax < 0 ||
	    (!same_again && ((long long)r.rax != -EINTR || !eintr_from_freeze(r.orig_rax))))
		return 0;
	r.rax = r.orig_rax;
	r.rip -= 2;
	r.orig_rax = -1;
	if (ptrace(PTRACE_SETREGS, pid, 0, &r)) {
		pr_perror("pid %d: cannot rewind syscall %lld", pid, frozen->orig_rax);
		return -errno;
	}
	return 0;
}

int regs_apply(pid_t pid, const GpRegs *regs, const ProtobufCBinaryData *xsave)
{
	struct user_regs_struct r;
	struct iovec iov = { xsave->data, xsave->len };

	regs_from_image(regs, &r);
	rewind_interrupted_syscall(pid, &r);
	if (ptrace(PTRACE_SETREGSET, pid, NT_X86_XSTATE, &iov)) {
		pr_perror("restore pid %d: cannot set the xsave area (%zu bytes; other CPU?)", pid,
			  xsave->len);
		return -errno;
	}
	if (ptrace(PTRACE_SETREGS, pid, 0, &r)) {
		pr_perror("restore pid %d: cannot set registers", pid);
		return -errno;
	}
	return 0;
}

const struct state_ops state_regs = {
	.name = "registers",
	.dump = dump_regs,
	.validate = validate_regs,
};
