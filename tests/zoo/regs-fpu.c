/*
 * regs-fpu: x87, SSE, AVX and AVX-512 register state.
 *   An assembly spin loop loads known values into the x87 stack st0-st7, the x87 control
 *   word (0x027f), MXCSR (0x7f80: round toward zero) and the vector registers - xmm0-15,
 *   or ymm0-15 when the CPU has AVX, or zmm0-31 and k0-k7 when it has AVX-512F - then on
 *   every iteration stores them all (fxsave64 for x87/MXCSR) and compares them with the
 *   table. The widest set the CPU supports is used; the PASS line says which were checked.
 * Blocks in: nothing - the task is running (spinning, with `pause`) at dump time.
 */
#include "zoo.h"
#include <cpuid.h>

#define BUF 2304
struct fpu_ctl {
	unsigned char expect[BUF];   /* 0 */
	unsigned char actual[BUF];   /* 2304 */
	unsigned char fxbuf[512];    /* 4608 */
	uint64_t iters;              /* 5120 */
	volatile sig_atomic_t *flag; /* 5128 */
	uint64_t len;                /* 5136 */
} __attribute__((aligned(64)));
_Static_assert(__builtin_offsetof(struct fpu_ctl, fxbuf) == 4608, "layout");
_Static_assert(__builtin_offsetof(struct fpu_ctl, iters) == 5120, "layout");
_Static_assert(__builtin_offsetof(struct fpu_ctl, flag) == 5128, "layout");
_Static_assert(__builtin_offsetof(struct fpu_ctl, len) == 5136, "layout");

/* layout of expect[] and actual[] */
#define OFF_FCW 0
#define OFF_MXCSR 8
#define OFF_ST 16   /* 8 slots of 16 bytes: 10 bytes value, 6 bytes zero */
#define OFF_VEC 144 /* xmm: 16 x 16, ymm: 16 x 32, zmm: 32 x 64 */
#define OFF_K (OFF_VEC + 32 * 64) /* k0-k7: 8 bytes each, 16 bits used */

int fpu_spin_sse(struct fpu_ctl *c);
int fpu_spin_avx(struct fpu_ctl *c);
int fpu_spin_avx512(struct fpu_ctl *c);

/* x87 / MXCSR part shared by the three loops (%r9 = ctl) */
__asm__(".macro X87_LOAD\n"
	"	fninit\n"
	"	fldcw 0(%r9)\n"
	"	ldmxcsr 8(%r9)\n"
	"	.irp n,7,6,5,4,3,2,1,0\n"
	"	fldt 16+16*\\n(%r9)\n"
	"	.endr\n"
	".endm\n"
	".macro X87_STORE\n"
	"	fxsave64 4608(%r9)\n"
	"	movzwl 4608(%r9), %eax\n"
	"	mov %rax, 2304+0(%r9)\n"
	"	movl 4608+24(%r9), %eax\n"
	"	mov %rax, 2304+8(%r9)\n"
	"	.irp n,0,1,2,3,4,5,6,7\n"
	"	mov 4608+32+16*\\n(%r9), %rax\n"
	"	mov %rax, 2304+16+16*\\n(%r9)\n"
	"	movzwl 4608+40+16*\\n(%r9), %eax\n"
	"	mov %rax, 2304+24+16*\\n(%r9)\n"
	"	.endr\n"
	".endm\n"
	/* the loop: read the flag, store, compare, count, until the flag was set */
	".macro SPIN_LOOP store\n"
	"1:	mov 5128(%r9), %rax\n"
	"	movl (%rax), %r10d\n"
	"	X87_STORE\n"
	"	\\store\n"
	"	lea 0(%r9), %rsi\n"
	"	lea 2304(%r9), %rdi\n"
	"	mov 5136(%r9), %rcx\n"
	"	repe cmpsb\n"
	"	jne 2f\n"
	"	incq 5120(%r9)\n"
	"	pause\n"
	"	test %r10d, %r10d\n"
	"	jz 1b\n"
	"	xor %r11d, %r11d\n"
	"	jmp 3f\n"
	"2:	mov $1, %r11d\n"
	"3:	fninit\n"
	"	movl $0x1f80, -8(%rsp)\n"
	"	ldmxcsr -8(%rsp)\n"
	"	mov %r11d, %eax\n"
	".endm\n"

	".macro SSE_STORE\n"
	"	.irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"	movdqu %xmm\\n, 2304+144+16*\\n(%r9)\n"
	"	.endr\n"
	".endm\n"
	".macro AVX_STORE\n"
	"	.irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"	vmovdqu %ymm\\n, 2304+144+32*\\n(%r9)\n"
	"	.endr\n"
	".endm\n"
	".macro AVX512_STORE\n"
	"	.irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	vmovdqu64 %zmm\\n, 2304+144+64*\\n(%r9)\n"
	"	.endr\n"
	"	.irp n,0,1,2,3,4,5,6,7\n"
	"	kmovw %k\\n, 2304+144+2048+8*\\n(%r9)\n"
	"	.endr\n"
	".endm\n"

	".text\n"
	".globl fpu_spin_sse\n"
	".type fpu_spin_sse,@function\n"
	"fpu_spin_sse:\n"
	"	mov %rdi, %r9\n"
	"	X87_LOAD\n"
	"	.irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"	movdqu 144+16*\\n(%r9), %xmm\\n\n"
	"	.endr\n"
	"	SPIN_LOOP SSE_STORE\n"
	"	ret\n"
	".size fpu_spin_sse, .-fpu_spin_sse\n"

	".globl fpu_spin_avx\n"
	".type fpu_spin_avx,@function\n"
	"fpu_spin_avx:\n"
	"	mov %rdi, %r9\n"
	"	X87_LOAD\n"
	"	.irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
	"	vmovdqu 144+32*\\n(%r9), %ymm\\n\n"
	"	.endr\n"
	"	SPIN_LOOP AVX_STORE\n"
	"	vzeroupper\n"
	"	ret\n"
	".size fpu_spin_avx, .-fpu_spin_avx\n"

	".globl fpu_spin_avx512\n"
	".type fpu_spin_avx512,@function\n"
	"fpu_spin_avx512:\n"
	"	mov %rdi, %r9\n"
	"	X87_LOAD\n"
	"	.irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	vmovdqu64 144+64*\\n(%r9), %zmm\\n\n"
	"	.endr\n"
	"	.irp n,0,1,2,3,4,5,6,7\n"
	"	kmovw 144+2048+8*\\n(%r9), %k\\n\n"
	"	.endr\n"
	"	SPIN_LOOP AVX512_STORE\n"
	"	vzeroupper\n"
	"	ret\n"
	".size fpu_spin_avx512, .-fpu_spin_avx512\n");

static int level; /* 1 sse, 2 avx, 3 avx512 */
static struct fpu_ctl ctl;

/* ---- corruptions, through the signal frame ------------------------------------------ */

#ifndef FP_XSTATE_MAGIC1
#define FP_XSTATE_MAGIC1 0x46505853u
#endif
/* Byte `off` of xsave component `comp` in the standard-format frame, or NULL. */
static unsigned char *xsave_comp(ucontext_t *uc, unsigned comp, unsigned off)
{
	unsigned char *fp = (unsigned char *)uc->uc_mcontext.fpregs;
	unsigned a, b, c, d;
	uint32_t magic;
	memcpy(&magic, fp + 464, 4);
	if (magic != FP_XSTATE_MAGIC1 || !__get_cpuid_count(0xd, comp, &a, &b, &c, &d) || !b)
		return NULL;
	uint64_t bv;
	memcpy(&bv, fp + 512, 8);
	bv |= 1ull << comp;
	memcpy(fp + 512, &bv, 8);
	return fp + b + off;
}
static void c_x87(ucontext_t *uc) { uc->uc_mcontext.fpregs->_st[2].significand[0] ^= 1; }
static void c_fcw(ucontext_t *uc) { uc->uc_mcontext.fpregs->cwd ^= 0x0c00; }
static void c_mxcsr(ucontext_t *uc) { uc->uc_mcontext.fpregs->mxcsr ^= 0x6000; }
static void c_sse(ucontext_t *uc) { uc->uc_mcontext.fpregs->_xmm[3].element[0] ^= 1; }
static void c_avx(ucontext_t *uc)
{
	unsigned char *p = xsave_comp(uc, 2, 16 * 5); /* YMM_Hi128 of ymm5 */
	if (p)
		*p ^= 1;
}
static void c_avx512(ucontext_t *uc)
{
	unsigned char *p = xsave_comp(uc, 6, 32 * 7); /* ZMM_Hi256 of zmm7 */
	if (p)
		*p ^= 1;
}
static void c_zmm_hi16(ucontext_t *uc)
{
	unsigned char *p = xsave_comp(uc, 7, 64 * 4 + 40); /* Hi16_ZMM: zmm20 */
	if (p)
		*p ^= 1;
}
static void c_opmask(ucontext_t *uc)
{
	unsigned char *p = xsave_comp(uc, 5, 8 * 3); /* k3 */
	if (p)
		*p ^= 1;
}
static const struct zoo_corruption all_corruptions[] = {
	{ "x87", c_x87, 1 },	   { "fcw", c_fcw, 1 },	      { "mxcsr", c_mxcsr, 1 },
	{ "sse", c_sse, 1 },	   { "avx", c_avx, 1 },	      { "avx512", c_avx512, 1 },
	{ "zmm16-31", c_zmm_hi16, 1 }, { "opmask", c_opmask, 1 },
};

/* which tag a difference at byte `off` of the buffers belongs to */
static const char *tag_of(size_t off, char *what, size_t len)
{
	if (off < OFF_MXCSR) {
		snprintf(what, len, "x87 control word");
		return "fcw";
	}
	if (off < OFF_ST) {
		snprintf(what, len, "MXCSR");
		return "mxcsr";
	}
	if (off < OFF_VEC) {
		snprintf(what, len, "st%zu", (off - OFF_ST) / 16);
		return "x87";
	}
	if (off < OFF_K || level < 3) {
		size_t w = level == 1 ? 16 : level == 2 ? 32 : 64, r = (off - OFF_VEC) / w, b = (off - OFF_VEC) % w;
		snprintf(what, len, "%s%zu byte %zu", level == 1 ? "xmm" : level == 2 ? "ymm" : "zmm", r, b);
		if (level == 3 && r >= 16)
			return "zmm16-31";
		return b < 16 ? "sse" : b < 32 ? "avx" : "avx512";
	}
	snprintf(what, len, "k%zu", (off - OFF_K) / 8);
	return "opmask";
}

int main(int argc, char **argv)
{
	__builtin_cpu_init();
	level = __builtin_cpu_supports("avx512f") ? 3 : __builtin_cpu_supports("avx") ? 2 : 1;
	const char *force = getenv("ZOO_FPU_LEVEL"); /* to test the narrower loops */
	if (force && atoi(force) >= 1 && atoi(force) < level)
		level = atoi(force);
	int ncorr = level == 3 ? 8 : level == 2 ? 5 : 4;
	zoo_init(argc, argv, all_corruptions, ncorr);

	uint16_t fcw = 0x027f;
	uint32_t mxcsr = 0x7f80;
	memcpy(ctl.expect + OFF_FCW, &fcw, 2);
	memcpy(ctl.expect + OFF_MXCSR, &mxcsr, 4);
	for (int i = 0; i < 8; i++) {
		long double v = (i + 1) * 1.375L + i / 3.0L;
		memcpy(ctl.expect + OFF_ST + 16 * i, &v, 10);
	}
	size_t vec = level == 1 ? 16 * 16 : level == 2 ? 16 * 32 : 32 * 64;
	zoo_fill(ctl.expect + OFF_VEC, vec, 0xf00);
	if (level == 3)
		for (int i = 0; i < 8; i++) {
			uint16_t k = (uint16_t)(0x1357 * (i + 3));
			memcpy(ctl.expect + OFF_K + 8 * i, &k, 2);
		}
	ctl.len = level == 3 ? OFF_K + 64 : OFF_VEC + vec;
	ctl.flag = &zoo_term;

	zoo_ready();
	int r = level == 3 ? fpu_spin_avx512(&ctl) : level == 2 ? fpu_spin_avx(&ctl) : fpu_spin_sse(&ctl);
	while (!zoo_term) /* a register went wrong: still answer only after SIGTERM */
		zoo_sleep_ms(10);
	zoo_begin_verify();

	for (size_t off = 0; off < ctl.len; off++)
		if (ctl.actual[off] != ctl.expect[off]) {
			char what[64];
			const char *tag = tag_of(off, what, sizeof(what));
			zoo_failf(tag, "%s is %#04x, expected %#04x (after %lu iterations)", what, ctl.actual[off],
				  ctl.expect[off], (unsigned long)ctl.iters);
			/* next register */
			if (off >= OFF_VEC && (off < OFF_K || level < 3)) {
				size_t w = level == 1 ? 16 : level == 2 ? 32 : 64;
				off = OFF_VEC + ((off - OFF_VEC) / w + 1) * w - 1;
			} else if (off >= OFF_ST && off < OFF_VEC) {
				off |= 15;
			} else {
				off |= 7;
			}
		}
	CHECK("regs", r == 0 || zoo_nfail, "the spin loop failed but all registers match");
	CHECK("regs", ctl.iters > 0, "the spin loop never completed an iteration");
	return zoo_finish(level == 3   ? "x87 mxcsr sse avx avx512 (st0-7 xmm/ymm/zmm0-31 k0-7)"
			  : level == 2 ? "x87 mxcsr sse avx (st0-7 ymm0-15; no avx512 on this cpu)"
				       : "x87 mxcsr sse (st0-7 xmm0-15; no avx on this cpu)");
}
