/*
 * cpu-traps: instructions made to trap, settings of each thread: CPUID (arch_prctl
 * ARCH_SET_CPUID 0, as rr and sandboxes do to show a program other CPU features) and RDTSC
 * (PR_SET_TSC PR_TSC_SIGSEGV). The main thread traps CPUID; a second thread, made after that
 * (it inherits the setting), turned it back off and traps RDTSC instead; a third kept the main
 * thread's.
 *   Checks, in each thread after the restore: ARCH_GET_CPUID's and PR_GET_TSC's answers, and
 *   whether executing CPUID and RDTSC raises SIGSEGV (caught, the instruction skipped). (RDTSC's
 *   trap is checked only where it trapped before the dump: some virtual machines never trap it.)
 * Corruptions: main (its CPUID no longer traps), second (its CPUID traps), second-tsc (its RDTSC
 * no longer traps), third (its CPUID no longer traps).
 * A CPU without CPUID faulting (no cpuid_fault flag: ARCH_SET_CPUID fails with ENODEV, as on some
 * virtual machines) cannot make CPUID trap: there every thread's CPUID runs (ARCH_GET_CPUID 1 is
 * still checked), only RDTSC's settings are tested, second-tsc is the only corruption listed, and
 * the PASS line says so.
 * Blocks in: zoo_wait (main), read on a pipe (the two threads).
 */
#include "zoo.h"
#include <asm/prctl.h>
#include <pthread.h>
#include <sys/prctl.h>

struct want {
	int cpuid_traps, tsc_traps;
};
static struct want wants[3] = { { 1, 0 }, { 0, 1 }, { 1, 0 } }; /* main, second, third */
static int cpuid_faulting; /* this CPU can make CPUID trap */

static __thread volatile int trapped;
static volatile int corrupt[3], corrupt_tsc, threads_set, tsc_enforced;
static int wake[2];
static char verdicts[3][240];

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	uint8_t *ip = (uint8_t *)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
	if (ip[0] != 0x0f || (ip[1] != 0xa2 && ip[1] != 0x31)) /* neither CPUID nor RDTSC: a real fault */
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

static int rdtsc_traps(void)
{
	unsigned lo = 0, hi = 0;
	trapped = 0;
	__asm__ volatile("rdtsc" : "+a"(lo), "+d"(hi));
	return trapped;
}

static int set_cpuid(int enabled)
{
	return syscall(SYS_arch_prctl, ARCH_SET_CPUID, enabled);
}

/* "" when this thread's settings and its instructions' behaviour are as want says. */
static void check_self(const struct want *w, char *out, size_t len)
{
	long cpuid = syscall(SYS_arch_prctl, ARCH_GET_CPUID, 0);
	int tsc = -1, cpuid_trap = cpuid_traps(), tsc_trap = rdtsc_traps();
	int want_tsc = w->tsc_traps ? PR_TSC_SIGSEGV : PR_TSC_ENABLE;
	prctl(PR_GET_TSC, &tsc, 0, 0, 0);
	out[0] = 0;
	if (cpuid != !w->cpuid_traps || cpuid_trap != w->cpuid_traps)
		snprintf(out, len, "ARCH_GET_CPUID %ld and CPUID %s, want %d and %s", cpuid,
			 cpuid_trap ? "trapping" : "running", !w->cpuid_traps, w->cpuid_traps ? "trapping" : "running");
	else if (tsc != want_tsc || (tsc_enforced && tsc_trap != w->tsc_traps))
		snprintf(out, len, "PR_GET_TSC %d and RDTSC %s, want %d and %s", tsc, tsc_trap ? "trapping" : "running",
			 want_tsc, w->tsc_traps ? "trapping" : "running");
}

static void *thread_main(void *arg)
{
	long which = (long)arg; /* 1: the second, 2: the third */
	char c;
	if (which == 1 && ((cpuid_faulting && set_cpuid(1)) || prctl(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0)))
		zoo_die("thread 2: ARCH_SET_CPUID 1 or PR_SET_TSC: %s", strerror(errno));
	if (cpuid_traps() != wants[which].cpuid_traps)
		zoo_die("thread %ld: CPUID %s before the dump", which + 1, wants[which].cpuid_traps ? "runs" : "traps");
	__atomic_add_fetch(&threads_set, 1, __ATOMIC_SEQ_CST);
	while (read(wake[0], &c, 1) < 0 && errno == EINTR)
		;
	if (corrupt[which])
		set_cpuid(wants[which].cpuid_traps);
	if (which == 1 && corrupt_tsc)
		prctl(PR_SET_TSC, PR_TSC_ENABLE, 0, 0, 0);
	check_self(&wants[which], verdicts[which], sizeof(verdicts[which]));
	return NULL;
}

static void c_main(ucontext_t *u) { (void)u; corrupt[0] = 1; }
static void c_second(ucontext_t *u) { (void)u; corrupt[1] = 1; }
static void c_second_tsc(ucontext_t *u) { (void)u; corrupt_tsc = 1; }
static void c_third(ucontext_t *u) { (void)u; corrupt[2] = 1; }
static const struct zoo_corruption corruptions[] = {
	{ "main", c_main, 0 },
	{ "second", c_second, 0 },
	{ "second-tsc", c_second_tsc, 0 },
	{ "third", c_third, 0 },
};

int main(int argc, char **argv)
{
	pthread_t t[2];

	cpuid_faulting = !set_cpuid(1);
	if (!cpuid_faulting && errno != ENODEV)
		zoo_die("ARCH_SET_CPUID 1: %s", strerror(errno));
	if (cpuid_faulting)
		zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	else
		zoo_init(argc, argv, corruptions + 2, 1); /* second-tsc */
	for (int i = 0; !cpuid_faulting && i < 3; i++)
		wants[i].cpuid_traps = 0;
	struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };
	if (sigaction(SIGSEGV, &sa, NULL) || pipe(wake))
		zoo_die("sigaction/pipe: %s", strerror(errno));
	if (cpuid_faulting && set_cpuid(0))
		zoo_die("ARCH_SET_CPUID 0: %s", strerror(errno));
	if (cpuid_traps() != cpuid_faulting)
		zoo_die("CPUID %s before the dump", cpuid_faulting ? "does not trap" : "traps");
	for (long i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, thread_main, (void *)(i + 1)))
			zoo_die("pthread_create");
	while (__atomic_load_n(&threads_set, __ATOMIC_SEQ_CST) < 2)
		usleep(1000);
	if (!prctl(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0)) { /* does RDTSC trap on this machine? */
		tsc_enforced = rdtsc_traps();
		prctl(PR_SET_TSC, PR_TSC_ENABLE, 0, 0, 0);
	}
	zoo_ready();
	zoo_wait();

	if (corrupt[0])
		set_cpuid(1);
	check_self(&wants[0], verdicts[0], sizeof(verdicts[0]));
	if (write(wake[1], "ww", 2) != 2 || pthread_join(t[0], NULL) || pthread_join(t[1], NULL))
		zoo_die("waking the threads");
	CHECK("main", !verdicts[0][0], "main thread: %s", verdicts[0]);
	CHECK("second", !verdicts[1][0] || strstr(verdicts[1], "RDTSC"), "second thread: %s", verdicts[1]);
	CHECK("second-tsc", !strstr(verdicts[1], "RDTSC"), "second thread: %s", verdicts[1]);
	CHECK("third", !verdicts[2][0], "third thread: %s", verdicts[2]);
	return zoo_finish(!cpuid_faulting ? (tsc_enforced ? "RDTSC trapping in a second thread (this CPU has no CPUID faulting: CPUID not tested)"
							   : "PR_SET_TSC in a second thread (this CPU has no CPUID faulting and RDTSC never traps here: neither trap tested)")
			  : tsc_enforced ? "CPUID trapping in the main thread and a third, RDTSC in a second"
					 : "CPUID trapping in the main thread and a third, PR_SET_TSC in a second (RDTSC never traps here)");
}
