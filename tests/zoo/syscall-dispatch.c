/*
 * syscall-dispatch: syscall user dispatch (PR_SET_SYSCALL_USER_DISPATCH, as Wine uses it) in two
 * threads. The main thread: system calls made outside a gate (a syscall instruction in a section
 * of its own) are sent to its SIGSYS handler while its selector byte says BLOCK. A second thread:
 * an inclusive region, no selector (those made inside a second gate always are), or, on a kernel
 * without inclusive regions, one like the main thread's with a selector of its own. The main
 * thread goes on as Wine's threads do: in a loop, 1 ms of work with its selector saying BLOCK (no
 * system call can run in it then; a dump caught there lets the tree run on and seizes it again),
 * then 3 ms of sleep with it saying ALLOW. The second thread's selector says ALLOW while the dump
 * runs.
 *   Checks, in each thread after the restore, its selector set to BLOCK: getppid() through libc is
 *   dispatched (main; the second thread with a selector) or not (inclusive); through the gate it
 *   is not (main) or is (inclusive).
 * Corruptions: main (the main thread's dispatch turned off), thread (the second thread's).
 * --spin-blocked: the main thread spins with its selector saying BLOCK until SIGTERM (no system
 * call can run in it: a dump must be refused, the program left running).
 * Blocks in: nanosleep or spinning, a quarter of the time (main), read on a pipe (second thread).
 */
#include "zoo.h"
#include <pthread.h>
#include <sys/prctl.h>

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#define SYSCALL_DISPATCH_FILTER_ALLOW 0
#define SYSCALL_DISPATCH_FILTER_BLOCK 1
#endif
#define PR_SYS_DISPATCH_INCLUSIVE 2

/* gate(nr): a syscall instruction of its own (two copies, each in a region of its own) */
extern char zoo_gate_a[], zoo_gate_a_end[], zoo_gate_b[], zoo_gate_b_end[];
asm(".pushsection .text.zoo_gates, \"ax\"\n"
    ".globl zoo_gate_a, zoo_gate_a_end, zoo_gate_b, zoo_gate_b_end\n"
    "zoo_gate_a:\n\tmov %rdi, %rax\n\tsyscall\n\tret\nzoo_gate_a_end:\n"
    ".balign 64\n"
    "zoo_gate_b:\n\tmov %rdi, %rax\n\tsyscall\n\tret\nzoo_gate_b_end:\n"
    ".popsection\n");
typedef long (*gate_fn)(long nr);

static volatile char sel_main = SYSCALL_DISPATCH_FILTER_ALLOW, sel_thread = SYSCALL_DISPATCH_FILTER_ALLOW;
static __thread volatile char *my_sel;
static __thread volatile int dispatched;
static volatile int corrupt_thread, spin_blocked, inclusive;
static int wake[2];
static char thread_verdict[256];

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	dispatched++;
	if (my_sel) /* its return (libc's sigreturn, outside the gate) must not be dispatched */
		*my_sel = SYSCALL_DISPATCH_FILTER_ALLOW;
	((ucontext_t *)uc)->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
}

/* Whether getppid() through libc, then through gate, was dispatched: "LG" letters for yes. */
static void try_calls(volatile char *sel, gate_fn gate, char out[3])
{
	int before = dispatched;
	if (sel)
		*sel = SYSCALL_DISPATCH_FILTER_BLOCK;
	syscall(SYS_getppid);
	out[0] = dispatched > before ? 'L' : '-';
	before = dispatched;
	if (sel)
		*sel = SYSCALL_DISPATCH_FILTER_BLOCK;
	gate(SYS_getppid);
	if (sel)
		*sel = SYSCALL_DISPATCH_FILTER_ALLOW;
	out[1] = dispatched > before ? 'G' : '-';
	out[2] = 0;
}

static void *second(void *arg)
{
	(void)arg;
	char got[3], want[3] = "-G", c;
	gate_fn gate = (gate_fn)(void *)zoo_gate_b;
	size_t len = zoo_gate_b_end - zoo_gate_b;

	if (!prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_INCLUSIVE, (unsigned long)zoo_gate_b, len, 0)) {
		inclusive = 1;
	} else {
		my_sel = &sel_thread;
		strcpy(want, "L-");
		if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, (unsigned long)zoo_gate_b, len, &sel_thread))
			zoo_die("prctl SYSCALL_USER_DISPATCH (thread): %s", strerror(errno));
	}
	try_calls(my_sel, gate, got);
	if (strcmp(got, want))
		zoo_die("the second thread's dispatch does not work before the dump (%s, not %s)", got, want);
	while (read(wake[0], &c, 1) < 0 && errno == EINTR)
		;
	if (corrupt_thread)
		prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
	try_calls(my_sel, gate, got);
	if (strcmp(got, want))
		snprintf(thread_verdict, sizeof(thread_verdict), "the second thread's calls: %s, not %s (%s)",
			 got, want, inclusive ? "inclusive region" : "exclusive region, own selector");
	return NULL;
}

static void c_main(ucontext_t *u)
{
	(void)u;
	prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
}
static void c_thread(ucontext_t *u)
{
	(void)u;
	corrupt_thread = 1;
}
static const struct zoo_corruption corruptions[] = {
	{ "main", c_main, 0 },
	{ "thread", c_thread, 0 },
};

static void allow_on_term(void)
{
	sel_main = SYSCALL_DISPATCH_FILTER_ALLOW; /* (the handler's return is a system call) */
}

int main(int argc, char **argv)
{
	pthread_t t;
	char got[3];
	gate_fn gate = (gate_fn)(void *)zoo_gate_a;

	for (int i = 1; i < argc; i++)
		spin_blocked |= !strcmp(argv[i], "--spin-blocked");
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
	if (sigaction(SIGSYS, &sa, NULL) || pipe(wake))
		zoo_die("sigaction/pipe: %s", strerror(errno));
	if (pthread_create(&t, NULL, second, NULL))
		zoo_die("pthread_create");
	my_sel = &sel_main;
	if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, (unsigned long)zoo_gate_a,
		  zoo_gate_a_end - zoo_gate_a, &sel_main))
		zoo_die("prctl SYSCALL_USER_DISPATCH: %s", strerror(errno));
	try_calls(&sel_main, gate, got);
	if (strcmp(got, "L-"))
		zoo_die("the main thread's dispatch does not work before the dump (%s)", got);
	zoo_term_hook = allow_on_term;
	zoo_ready();
	if (spin_blocked) {
		sel_main = SYSCALL_DISPATCH_FILTER_BLOCK;
		while (!zoo_term)
			;
	}
	while (!zoo_term) {
		uint64_t until = zoo_now_ns(CLOCK_MONOTONIC) + 1000000; /* (the vDSO's: no system call) */
		sel_main = SYSCALL_DISPATCH_FILTER_BLOCK;
		while (!zoo_term && zoo_now_ns(CLOCK_MONOTONIC) < until)
			;
		sel_main = SYSCALL_DISPATCH_FILTER_ALLOW;
		zoo_sleep_ms(3);
	}
	zoo_wait();

	try_calls(&sel_main, gate, got);
	CHECK("main", !strcmp(got, "L-"), "the main thread's calls: %s, not L- (libc dispatched, gate not)", got);
	if (write(wake[1], "w", 1) != 1 || pthread_join(t, NULL))
		zoo_die("waking the second thread");
	CHECK("thread", !thread_verdict[0], "%s", thread_verdict);
	return zoo_finish(inclusive ? "(second thread: inclusive region)"
				    : "(second thread: own selector; no inclusive regions here)");
}
