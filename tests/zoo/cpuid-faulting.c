/*
 * cpuid-faulting: CPUID made to trap (arch_prctl ARCH_SET_CPUID 0, as rr and sandboxes do to show
 * a program other CPU features), a setting of each thread. The main thread traps; a second thread,
 * made after that (it inherits the setting), turned it back off; a third kept it.
 *   Checks, in each thread after the restore: ARCH_GET_CPUID's answer, and whether executing CPUID
 *   raises SIGSEGV (caught, the instruction skipped) or gives the vendor string.
 * Corruptions: main (the main thread's CPUID no longer traps), second (the second thread's traps),
 * third (the third thread's no longer traps).
 * Blocks in: zoo_wait (main), read on a pipe (the two threads).
 */
#include "zoo.h"
#include <asm/prctl.h>
#include <pthread.h>

static __thread volatile int trapped;
static volatile int corrupt_second, corrupt_third, threads_set;
static int wake[2];
static char verdicts[2][200];

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	uint8_t *ip = (uint8_t *)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
	if (ip[0] != 0x0f || ip[1] != 0xa2) /* not CPUID: a real fault */
		abort();
	trapped = 1;
	((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP] += 2;
}

static int cpuid_traps(void)
{
	unsigned a = 0, b = 0, c = 0, d = 0;
	trapped = 0;
	__asm__ volatile("cpuid" : "+a"(a), "+b"(b), "+c"(c), "+d"(d));
	return trapped;
}

static int set_cpuid(int enabled)
{
	return syscall(SYS_arch_prctl, ARCH_SET_CPUID, enabled);
}

/* "" when this thread's ARCH_GET_CPUID and CPUID's behaviour say it traps (or not, as want). */
static void check_self(int want_trap, char *out, size_t len)
{
	long got = syscall(SYS_arch_prctl, ARCH_GET_CPUID, 0);
	int traps = cpuid_traps();
	if (got != !want_trap || traps != want_trap)
		snprintf(out, len, "ARCH_GET_CPUID %ld and CPUID %s, want %d and %s", got,
			 traps ? "trapping" : "running", !want_trap, want_trap ? "trapping" : "running");
	else
		out[0] = 0;
}

static void *thread_main(void *arg)
{
	long which = (long)arg; /* 0: the second (traps no more), 1: the third (traps) */
	char c;
	if (which == 0 && set_cpuid(1))
		zoo_die("ARCH_SET_CPUID 1: %s", strerror(errno));
	if (cpuid_traps() != which)
		zoo_die("thread %ld: CPUID %s before the dump", which + 2, which ? "runs" : "traps");
	__atomic_add_fetch(&threads_set, 1, __ATOMIC_SEQ_CST);
	while (read(wake[0], &c, 1) < 0 && errno == EINTR)
		;
	if (which == 0 && corrupt_second)
		set_cpuid(0);
	if (which == 1 && corrupt_third)
		set_cpuid(1);
	check_self(which, verdicts[which], sizeof(verdicts[which]));
	return NULL;
}

static void c_main(ucontext_t *u)
{
	(void)u;
	set_cpuid(1);
}
static void c_second(ucontext_t *u)
{
	(void)u;
	corrupt_second = 1;
}
static void c_third(ucontext_t *u)
{
	(void)u;
	corrupt_third = 1;
}
static const struct zoo_corruption corruptions[] = {
	{ "main", c_main, 0 },
	{ "second", c_second, 0 },
	{ "third", c_third, 0 },
};

int main(int argc, char **argv)
{
	pthread_t t[2];
	char verdict[200];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };
	if (sigaction(SIGSEGV, &sa, NULL) || pipe(wake))
		zoo_die("sigaction/pipe: %s", strerror(errno));
	if (set_cpuid(0))
		zoo_die("ARCH_SET_CPUID 0 (this CPU cannot make CPUID trap?): %s", strerror(errno));
	if (!cpuid_traps())
		zoo_die("CPUID does not trap before the dump");
	for (long i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, thread_main, (void *)i))
			zoo_die("pthread_create");
	while (__atomic_load_n(&threads_set, __ATOMIC_SEQ_CST) < 2)
		usleep(1000);
	zoo_ready();
	zoo_wait();

	check_self(1, verdict, sizeof(verdict));
	CHECK("main", !verdict[0], "main thread: %s", verdict);
	if (write(wake[1], "ww", 2) != 2 || pthread_join(t[0], NULL) || pthread_join(t[1], NULL))
		zoo_die("waking the threads");
	CHECK("second", !verdicts[0][0], "second thread: %s", verdicts[0]);
	CHECK("third", !verdicts[1][0], "third thread: %s", verdicts[1]);
	return zoo_finish("CPUID trapping in the main thread and a third, not in a second");
}
