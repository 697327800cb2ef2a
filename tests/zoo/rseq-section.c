/*
 * rseq-section: the main thread spins inside an rseq critical section (on glibc's registered
 * area) until SIGTERM, so the dump freezes it there. Inside, it checks on every turn that the
 * area's rseq_cs still names the section: the kernel clears it only when the thread is
 * outside, and sends a thread it interrupts inside to the abort handler. A restore that
 * resumes the thread inside the section with rseq_cs cleared (the section gone unseen) makes
 * it run on as if never interrupted.
 *   Checks: rseq_cs was never found cleared inside the section.
 * Blocks in: a busy loop inside the critical section (x86_64 assembly).
 */
#include "zoo.h"
#include <sys/rseq.h>

struct section_desc {
	uint32_t version, flags;
	uint64_t start_ip, post_commit_offset, abort_ip;
};
extern struct section_desc zoo_section_desc; /* in the assembly below */

static volatile struct rseq *rs;

/* 0: left at SIGTERM, 1: found rseq_cs cleared inside, 2: aborted by the kernel */
static __attribute__((noinline)) int run_section(void)
{
	asm goto(".pushsection .data.zoo_section, \"aw\"\n\t"
		 ".balign 32\n\t"
		 ".globl zoo_section_desc\n"
		 "zoo_section_desc:\n\t"
		 ".long 0, 0\n\t"
		 ".quad 1f, (2f - 1f), 4f\n\t"
		 ".popsection\n\t"
		 "leaq zoo_section_desc(%%rip), %%rax\n\t"
		 "movq %%rax, (%[cs])\n"
		 "1:\n\t"
		 "cmpq %%rax, (%[cs])\n\t"
		 "jne %l[cleared]\n\t"
		 "cmpl $0, (%[term])\n\t"
		 "je 1b\n"
		 "2:\n\t"
		 ".pushsection .text.zoo_section_abort, \"ax\"\n\t"
		 ".byte 0x0f, 0xb9, 0x3d\n\t" /* the signature, as an undefined instruction */
		 ".long 0x53053053\n"
		 "4:\n\t"
		 "jmp %l[aborted]\n\t"
		 ".popsection\n\t"
		 :
		 : [cs] "r"(&rs->rseq_cs), [term] "r"(&zoo_term)
		 : "rax", "memory", "cc"
		 : cleared, aborted);
	return 0;
cleared:
	return 1;
aborted:
	return 2;
}

/* back into the section with rseq_cs cleared, as a restore that missed the section does */
static void c_section(ucontext_t *u)
{
	uint64_t ip = (uint64_t)u->uc_mcontext.gregs[REG_RIP];
	const struct section_desc *d = &zoo_section_desc;

	/* only from the section (the kernel sent the thread to its abort handler) */
	if (ip != d->abort_ip && (ip < d->start_ip || ip >= d->start_ip + d->post_commit_offset))
		return;
	rs->rseq_cs = 0;
	u->uc_mcontext.gregs[REG_RIP] = (greg_t)zoo_section_desc.start_ip;
	u->uc_mcontext.gregs[REG_RAX] = (greg_t)&zoo_section_desc;
}
static const struct zoo_corruption corruptions[] = {
	{ "section", c_section, 1 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (__rseq_size == 0)
		zoo_die("glibc did not register rseq (GLIBC_TUNABLES=glibc.pthread.rseq=0?)");
	rs = (volatile struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
	zoo_ready();

	unsigned cleared = 0, aborts = 0, turns = 0;
	while (!zoo_term) {
		int r = run_section();
		cleared += r == 1;
		aborts += r == 2;
		turns++;
	}
	rs->rseq_cs = 0;

	zoo_begin_verify();
	CHECK("section", cleared == 0, "rseq_cs found cleared %u times inside the section (no abort)",
	      cleared);
	char info[64];
	snprintf(info, sizeof(info), "(%u sections, %u aborted)", turns, aborts);
	return zoo_finish(info);
}
