/*
 * regs-gp: general purpose registers.
 *   An assembly spin loop holds known 64-bit values in rax, rbx, rdx, rsi, rbp and r8-r15
 *   and compares every one of them with the expected table on each iteration; the dump
 *   freezes it somewhere inside the loop (running, not in a system call). The loop ends when
 *   the SIGTERM handler sets the flag; the registers are compared once more after the flag
 *   was read, so a change made by the handler (the --corrupt case) is seen.
 * Blocks in: nothing - the task is running (spinning, with `pause`) at dump time.
 */
#include "zoo.h"

#define NREG 13
static const char *const regname[NREG] = { "rax", "rbx", "rdx", "rsi", "rbp", "r8",  "r9",
					   "r10", "r11", "r12", "r13", "r14", "r15" };
static const int ucreg[NREG] = { REG_RAX, REG_RBX, REG_RDX, REG_RSI, REG_RBP, REG_R8,  REG_R9,
				 REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15 };

struct gp_ctl {
	uint64_t expect[NREG];        /* offset 0 */
	uint64_t actual[NREG];        /* offset 104 */
	uint64_t iters;               /* offset 208 */
	volatile sig_atomic_t *flag;  /* offset 216 */
};
_Static_assert(__builtin_offsetof(struct gp_ctl, actual) == 104, "layout");
_Static_assert(__builtin_offsetof(struct gp_ctl, iters) == 208, "layout");
_Static_assert(__builtin_offsetof(struct gp_ctl, flag) == 216, "layout");

/* int gp_spin(struct gp_ctl *c): 0 when stopped by the flag with all registers intact. */
int gp_spin(struct gp_ctl *c);
__asm__(".text\n"
	".globl gp_spin\n"
	".type gp_spin,@function\n"
	"gp_spin:\n"
	"	push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
	"	mov 0(%rdi), %rax\n mov 8(%rdi), %rbx\n mov 16(%rdi), %rdx\n mov 24(%rdi), %rsi\n"
	"	mov 32(%rdi), %rbp\n mov 40(%rdi), %r8\n mov 48(%rdi), %r9\n mov 56(%rdi), %r10\n"
	"	mov 64(%rdi), %r11\n mov 72(%rdi), %r12\n mov 80(%rdi), %r13\n mov 88(%rdi), %r14\n"
	"	mov 96(%rdi), %r15\n"
	"1:	mov 216(%rdi), %rcx\n"
	"	movl (%rcx), %ecx\n" /* read the flag first, check the registers after */
	"	cmp 0(%rdi), %rax\n jne 2f\n cmp 8(%rdi), %rbx\n jne 2f\n cmp 16(%rdi), %rdx\n jne 2f\n"
	"	cmp 24(%rdi), %rsi\n jne 2f\n cmp 32(%rdi), %rbp\n jne 2f\n cmp 40(%rdi), %r8\n jne 2f\n"
	"	cmp 48(%rdi), %r9\n jne 2f\n cmp 56(%rdi), %r10\n jne 2f\n cmp 64(%rdi), %r11\n jne 2f\n"
	"	cmp 72(%rdi), %r12\n jne 2f\n cmp 80(%rdi), %r13\n jne 2f\n cmp 88(%rdi), %r14\n jne 2f\n"
	"	cmp 96(%rdi), %r15\n jne 2f\n"
	"	incq 208(%rdi)\n"
	"	pause\n"
	"	test %ecx, %ecx\n"
	"	jz 1b\n"
	"	mov $0, %ecx\n"
	"	jmp 3f\n"
	"2:	mov $1, %ecx\n"
	"3:	mov %rax, 104(%rdi)\n mov %rbx, 112(%rdi)\n mov %rdx, 120(%rdi)\n mov %rsi, 128(%rdi)\n"
	"	mov %rbp, 136(%rdi)\n mov %r8, 144(%rdi)\n mov %r9, 152(%rdi)\n mov %r10, 160(%rdi)\n"
	"	mov %r11, 168(%rdi)\n mov %r12, 176(%rdi)\n mov %r13, 184(%rdi)\n mov %r14, 192(%rdi)\n"
	"	mov %r15, 200(%rdi)\n"
	"	mov %ecx, %eax\n"
	"	pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
	"	ret\n"
	".size gp_spin, .-gp_spin\n");

static void corrupt_reg(ucontext_t *uc, int i) { uc->uc_mcontext.gregs[ucreg[i]] ^= 0x100; }
static void c_rax(ucontext_t *uc) { corrupt_reg(uc, 0); }
static void c_rbp(ucontext_t *uc) { corrupt_reg(uc, 4); }
static void c_r13(ucontext_t *uc) { corrupt_reg(uc, 10); }
static void c_r8(ucontext_t *uc) { corrupt_reg(uc, 5); }
static const struct zoo_corruption corruptions[] = {
	{ "r13", c_r13, 1 },
	{ "rbp", c_rbp, 1 },
	{ "rax", c_rax, 1 },
	{ "r8", c_r8, 1 },
};

static struct gp_ctl ctl;

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	for (int i = 0; i < NREG; i++)
		ctl.expect[i] = zoo_pattern((uint64_t)i, 0x6770) | 1;
	ctl.flag = &zoo_term;

	zoo_ready();
	int r = gp_spin(&ctl);
	while (!zoo_term) /* a register went wrong: still answer only after SIGTERM */
		zoo_sleep_ms(10);
	zoo_begin_verify();

	int bad = 0;
	for (int i = 0; i < NREG; i++)
		if (ctl.actual[i] != ctl.expect[i]) {
			bad++;
			zoo_failf(regname[i], "%s is %#lx, expected %#lx (after %lu iterations)", regname[i],
				  (unsigned long)ctl.actual[i], (unsigned long)ctl.expect[i], (unsigned long)ctl.iters);
		}
	CHECK("regs", r == 0 || bad, "the spin loop failed but all registers match");
	CHECK("regs", ctl.iters > 0, "the spin loop never completed an iteration");
	return zoo_finish(NULL);
}
