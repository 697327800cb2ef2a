/*
 * syscall-nanosleep: a nanosleep interrupted by the freeze.
 *   The program sleeps 1000 s in nanosleep (glibc: clock_nanosleep, syscall 230; at the stop
 *   rax = -ERESTART_RESTARTBLOCK). After restore the call may return EINTR (like CRIU) or go
 *   on sleeping; either way the program sleeps again. Not allowed: returning 0 early, any
 *   errno other than EINTR (e.g. a leaked 516), or a remaining time (when written) larger
 *   than requested.
 * Blocks in: clock_nanosleep (syscall 230), CLOCK_REALTIME, relative, 1000 s.
 */
#include "zoo.h"

static char first_bad[200];
static unsigned long eintr_early;

/* A broken restart: -ERESTART_RESTARTBLOCK leaks into user space. */
static void c_restart(ucontext_t *uc) { uc->uc_mcontext.gregs[REG_RAX] = -516; }
static const struct zoo_corruption corruptions[] = {
	{ "restart", c_restart, 1 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, 1);
	zoo_ready();
	while (!zoo_term) {
		struct timespec req = { 1000, 0 }, rem = { 123456, 0 };
		int r = nanosleep(&req, &rem);
		int e = errno;
		if (r == 0) {
			snprintf(first_bad, sizeof(first_bad), "nanosleep(1000 s) returned 0");
			continue;
		}
		if (e != EINTR) {
			if (!first_bad[0])
				snprintf(first_bad, sizeof(first_bad), "nanosleep failed with errno %d (%s)", e, strerrorname_np(e) ? strerrorname_np(e) : "?");
			continue;
		}
		if (rem.tv_sec != 123456 && (rem.tv_sec > 1000 || (rem.tv_sec == 1000 && rem.tv_nsec > 0) || rem.tv_sec < 0))
			if (!first_bad[0])
				snprintf(first_bad, sizeof(first_bad), "remaining time %lld.%09ld > requested 1000 s",
					 (long long)rem.tv_sec, rem.tv_nsec);
		if (!zoo_term)
			eintr_early++;
	}
	zoo_begin_verify();
	CHECK("restart", !first_bad[0], "%s", first_bad);
	char info[64];
	snprintf(info, sizeof(info), "(%lu EINTR before SIGTERM)", eintr_early);
	return zoo_finish(info);
}
