/*
 * syscall-sigwait: sigwaitinfo() interrupted by the freeze continues transparently.
 *   The program blocks in sigwaitinfo({SIGUSR1}) with SIGUSR1 blocked and never sent. Only
 *   SIGTERM may end the wait (EINTR with the flag set). A return while the flag is not set
 *   (EINTR from the freeze, or a leaked kernel restart code) is a FAIL.
 *   NOTE for engines: on this kernel a mere PTRACE_INTERRUPT makes rt_sigtimedwait return
 *   -EINTR (not -ERESTART*): at the stop, rax = -4 and orig_rax = 128. To be transparent the
 *   engine has to rewind it itself (rip -= 2, rax = orig_rax) - on restore and also when it
 *   detaches after --leave-running or a failed dump.
 * Blocks in: rt_sigtimedwait (syscall 128), no timeout.
 */
#include "zoo.h"

static char first_bad[200];
static unsigned long returns;

/* A broken restart: the kernel's internal -ERESTARTSYS leaks into user space. */
static void c_restart(ucontext_t *uc) { uc->uc_mcontext.gregs[REG_RAX] = -512; }
static const struct zoo_corruption corruptions[] = {
	{ "restart", c_restart, 1 },
};

int main(int argc, char **argv)
{
	sigset_t set;
	siginfo_t si;

	zoo_init(argc, argv, corruptions, 1);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);

	zoo_ready();
	for (;;) {
		int r = sigwaitinfo(&set, &si);
		int e = errno;
		returns++;
		if (r == -1 && e == EINTR && zoo_term)
			break; /* SIGTERM: the normal end */
		if (!first_bad[0])
			snprintf(first_bad, sizeof(first_bad), "sigwaitinfo returned %d errno %d (%s), term=%d", r,
				 r < 0 ? e : 0, r < 0 && strerrorname_np(e) ? strerrorname_np(e) : "-", (int)zoo_term);
		if (zoo_term)
			break;
	}
	zoo_begin_verify();
	CHECK("restart", !first_bad[0], "%s", first_bad);
	CHECK("restart", returns == 1, "sigwaitinfo returned %lu times, expected once", returns);
	return zoo_finish(NULL);
}
