/*
 * rseq-section: the main thread and a second one spin inside an rseq critical section (each
 * on glibc's area registered for it) until SIGTERM, so the dump freezes them there. Inside, it checks on every turn that the
 * area's rseq_cs still names the section: the kernel clears it only when the thread is
 * outside, and sends a thread it interrupts inside to the abort handler. A restore that
 * resumes the thread inside the section with rseq_cs cleared (the section gone unseen) makes
 * it run on as if never interrupted.
 *   Checks: rseq_cs was never found cleared inside the section, in either thread.
 * Blocks in: a busy loop inside the critical section (x86_64 assembly), in both threads.
 */
#include "zoo.h"
#include <pthread.h>
#include <sys/rseq.h>

struct section_desc {
	uint32_t version, flags;
	uint64_t start_ip, post_commit_offset, abort_ip;
};
extern struct section_desc zoo_section_desc; /* in the assembly below */

static volatile struct rseq *rs, *second_rs; /* the main thread's, the second one's */
static volatile sig_atomic_t second_stop;

/* 0: left once *stop is set, 1: found rseq_cs cleared inside, 2: aborted by the kernel */
static __attribute__((noinline)) int run_section(volatile struct rseq *rs,
						 volatile sig_atomic_t *stop)
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
		 : [cs] "r"(&rs->rseq_cs), [term] "r"(stop)
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
/* the second thread's area cleared under it, inside the section (it spins on until told) */
static void c_thread(ucontext_t *u)
{
	(void)u;
	second_rs->rseq_cs = 0;
	zoo_sleep_ms(20);
}
static const struct zoo_corruption corruptions[] = {
	{ "section", c_section, 1 },
	{ "thread", c_thread, 0 },
};

struct section_counts {
	unsigned cleared, aborts, turns;
};

static void run_sections(volatile struct rseq *own, volatile sig_atomic_t *stop,
			 struct section_counts *n)
{
	while (!*stop) {
		int r = run_section(own, stop);
		n->cleared += r == 1;
		n->aborts += r == 2;
		n->turns++;
	}
	own->rseq_cs = 0;
}

static void *second_thread(void *arg)
{
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM); /* (the corruption runs in the main thread's handler) */
	pthread_sigmask(SIG_BLOCK, &term, NULL);
	second_rs = (volatile struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
	run_sections(second_rs, &second_stop, arg);
	return NULL;
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (__rseq_size == 0)
		zoo_die("glibc did not register rseq (GLIBC_TUNABLES=glibc.pthread.rseq=0?)");
	rs = (volatile struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
	struct section_counts mine = { 0 }, second = { 0 };
	pthread_t th;
	if ((errno = pthread_create(&th, NULL, second_thread, &second)))
		zoo_die("pthread_create: %s", strerror(errno));
	while (!__atomic_load_n(&second_rs, __ATOMIC_ACQUIRE))
		zoo_sleep_ms(1);
	zoo_ready();

	run_sections(rs, &zoo_term, &mine);
	zoo_begin_verify();
	second_stop = 1;
	pthread_join(th, NULL);

	CHECK("section", mine.cleared == 0, "rseq_cs found cleared %u times inside the section (no "
	      "abort)", mine.cleared);
	CHECK("thread", second.cleared == 0, "second thread: rseq_cs found cleared %u times inside "
	      "the section (no abort)", second.cleared);
	char info[96];
	snprintf(info, sizeof(info), "(%u and %u sections, %u and %u aborted)", mine.turns,
		 second.turns, mine.aborts, second.aborts);
	return zoo_finish(info);
}
