/*
 * prctl-controls: prctl settings of a process.
 *   The program: PR_SET_TSC PR_TSC_SIGSEGV (reading the time stamp counter faults),
 *   PR_SET_MCE_KILL early, and, where the kernel lets the process choose, store bypass and
 *   indirect branch speculation disabled (PR_SET_SPECULATION_CTRL).
 *   A child: PR_SET_MDWE PR_MDWE_REFUSE_EXEC_GAIN (memory-deny-write-execute; it cannot be
 *   taken back, so it lives in a child that the corruption replaces); it waits on a pipe.
 * After restore and SIGTERM: PR_GET_TSC says SIGSEGV and rdtsc raises SIGSEGV (if it did before the
 * dump: some virtual machines never trap it); PR_MCE_KILL_GET
 * says early; the speculation controls read disabled; the child, asked through the pipe, has
 * MDWE and is refused a writable+executable mapping and making a writable one executable
 * (its exit status).
 * Blocks in: nanosleep (zoo_wait loop); the child in read(2).
 */
#include "zoo.h"
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif

static int ask[2];
static pid_t child;
static int spec_ok[2]; /* which speculation controls the kernel lets the process set */
static int tsc_enforced; /* rdtsc faulted before the dump (some virtual machines never trap it) */
static sigjmp_buf tsc_jump;

static void on_segv(int sig) { (void)sig; siglongjmp(tsc_jump, 1); }

/* 1: rdtsc faulted */
static int tsc_faults(void)
{
	struct sigaction sa = { .sa_handler = on_segv }, old;
	int faulted = 0;
	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(tsc_jump, 1))
		faulted = 1;
	else {
		unsigned lo, hi;
		__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	}
	sigaction(SIGSEGV, &old, NULL);
	return faulted;
}

static pid_t start_child(int mdwe)
{
	pid_t pid = fork();
	if (pid)
		return pid;
	close(ask[1]);
	if (mdwe && prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0))
		_exit(9);
	char c;
	while (read(ask[0], &c, 1) < 0 && errno == EINTR)
		;
	int ok = prctl(PR_GET_MDWE, 0, 0, 0, 0) == PR_MDWE_REFUSE_EXEC_GAIN;
	void *wx = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ok &= wx == MAP_FAILED;
	void *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ok &= w != MAP_FAILED && mprotect(w, 4096, PROT_READ | PROT_EXEC) != 0;
	_exit(ok ? 0 : 1);
}

static void c_tsc(ucontext_t *u) { (void)u; prctl(PR_SET_TSC, PR_TSC_ENABLE, 0, 0, 0); }
static void c_mce(ucontext_t *u) { (void)u; prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_LATE, 0, 0); }
static void c_spec(ucontext_t *u)
{
	(void)u;
	for (int which = 0; which < 2; which++)
		prctl(PR_SET_SPECULATION_CTRL, which, PR_SPEC_ENABLE, 0, 0);
	if (!spec_ok[0] && !spec_ok[1])
		spec_ok[0] = -1; /* nothing to undo: the check then fails on purpose */
}
static void c_mdwe(ucontext_t *u)
{
	(void)u;
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	child = start_child(0);
}
static const struct zoo_corruption corruptions[] = {
	{ "tsc", c_tsc, 0 },
	{ "mce", c_mce, 0 },
	{ "spec", c_spec, 0 },
	{ "mdwe", c_mdwe, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (pipe2(ask, O_CLOEXEC))
		zoo_die("pipe: %s", strerror(errno));
	child = start_child(1);
	if (prctl(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0) || prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0))
		zoo_die("prctl TSC or MCE kill: %s", strerror(errno));
	tsc_enforced = tsc_faults();
	for (int which = 0; which < 2; which++)
		spec_ok[which] = (prctl(PR_GET_SPECULATION_CTRL, which, 0, 0, 0) & PR_SPEC_PRCTL) &&
				 prctl(PR_SET_SPECULATION_CTRL, which, PR_SPEC_DISABLE, 0, 0) == 0;
	zoo_ready();
	zoo_wait();

	int tsc = -1;
	prctl(PR_GET_TSC, &tsc, 0, 0, 0);
	int faults = tsc_faults();
	CHECK("tsc", tsc == PR_TSC_SIGSEGV && faults == tsc_enforced, "PR_GET_TSC %d (expected %d), rdtsc %s "
	      "(before the dump it %s)", tsc, PR_TSC_SIGSEGV, faults ? "faults" : "does not fault",
	      tsc_enforced ? "faulted" : "did not either: this machine does not trap it");
	int mce = prctl(PR_MCE_KILL_GET, 0, 0, 0, 0);
	CHECK("mce", mce == PR_MCE_KILL_EARLY, "PR_MCE_KILL_GET %d, expected early (%d)", mce, PR_MCE_KILL_EARLY);
	CHECK("spec", spec_ok[0] >= 0, "no speculation control to check");
	for (int which = 0; which < 2; which++) {
		int v = prctl(PR_GET_SPECULATION_CTRL, which, 0, 0, 0);
		if (spec_ok[which] > 0)
			CHECK("spec", v == (PR_SPEC_PRCTL | PR_SPEC_DISABLE), "speculation control %d is %#x, expected "
			      "%#x", which, v, (int)(PR_SPEC_PRCTL | PR_SPEC_DISABLE));
	}
	int st = -1;
	if (write(ask[1], "?", 1) != 1 || waitpid(child, &st, 0) != child)
		zoo_failf("mdwe", "cannot ask the child: %s", strerror(errno));
	else
		CHECK("mdwe", WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child has no memory-deny-write-execute "
		      "(status %#x)", st);
	return zoo_finish(!tsc_enforced ? "TSC (its value only: this machine never traps rdtsc), MCE kill, MDWE"
			  : spec_ok[0] || spec_ok[1] ? "TSC, MCE kill, MDWE, speculation"
			  : "TSC, MCE kill, MDWE (no speculation control to set)");
}
