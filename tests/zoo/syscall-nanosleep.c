/*
 * syscall-nanosleep: sleeps interrupted by the freeze go on after restore.
 *   The main thread sleeps 1000 s in nanosleep (glibc: clock_nanosleep, syscall 230; at the
 *   stop rax = -ERESTART_RESTARTBLOCK, what is left written to rem); a second thread sleeps
 *   1000 s in the raw nanosleep syscall (35) without rem, as Go's runtime does. After restore
 *   both sleep on (what was left, or the whole time again) until SIGTERM (main) and a SIGUSR1
 *   the main thread then sends (the other). Not allowed: returning 0 early, any errno other
 *   than EINTR (e.g. a leaked 516), a remaining time (when written) larger than requested
 *   ("restart"), or an EINTR before the signal (as CRIU gives: "early").
 * Blocks in: clock_nanosleep (syscall 230), CLOCK_REALTIME, relative, 1000 s; the thread in
 *   nanosleep (35).
 */
#include "zoo.h"
#include <pthread.h>

static char first_bad[200];
static unsigned long eintr_early;

static unsigned long raw_early, raw_returns;
static volatile int raw_end;
static pthread_t raw_thread;

/* A broken restart: -ERESTART_RESTARTBLOCK leaks into user space. */
static void c_restart(ucontext_t *uc) { uc->uc_mcontext.gregs[REG_RAX] = -516; }
/* As if the raw sleep had returned EINTR once before its signal (a restore that gives EINTR). */
static void c_early(ucontext_t *uc) { (void)uc; raw_early++; }
static const struct zoo_corruption corruptions[] = {
	{ "restart", c_restart, 1 },
	{ "early", c_early, 0 },
};

static void on_usr1(int sig) { (void)sig; }

static void *raw_sleeper(void *arg)
{
	(void)arg;
	while (!raw_end) {
		struct timespec req = { 1000, 0 };
		syscall(SYS_nanosleep, &req, NULL);
		raw_returns++;
		if (!raw_end)
			raw_early++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, 2);
	signal(SIGUSR1, on_usr1);
	if (pthread_create(&raw_thread, NULL, raw_sleeper, NULL))
		zoo_die("pthread_create failed");
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
	raw_end = 1;
	while (raw_returns == 0 || pthread_tryjoin_np(raw_thread, NULL)) {
		pthread_kill(raw_thread, SIGUSR1);
		usleep(1000);
	}
	zoo_begin_verify();
	CHECK("restart", !first_bad[0], "%s", first_bad);
	CHECK("early", !eintr_early && !raw_early,
	      "the sleeps returned before their signal: nanosleep %lu times, the raw one %lu",
	      eintr_early, raw_early);
	char info[64];
	snprintf(info, sizeof(info), "(%lu EINTR before SIGTERM)", eintr_early);
	return zoo_finish(info);
}
