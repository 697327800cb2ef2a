/*
 * syscall-nanosleep: sleeps interrupted by the freeze go on after restore.
 *   The main thread sleeps 1000 s in nanosleep (glibc: clock_nanosleep, syscall 230; at the
 *   stop rax = -ERESTART_RESTARTBLOCK, what is left written to rem). Two threads sleep 1000 s
 *   too: one in the raw nanosleep syscall (35) without rem, made as Go's runtime makes it
 *   (`mov $35, %eax; syscall`), one in glibc's nanosleep with rem; before READY the process
 *   was stopped and continued (SIGSTOP, SIGCONT, as job control does: ^Z, bg), so that these
 *   two are in restart_syscall, which goes on with the kernel's restart block of their sleep
 *   (checked: /proc/self/task/TID/syscall reads 219; not as the init of a PID namespace,
 *   which a SIGSTOP from inside does not stop: the info says so). After restore all sleep on (what was
 *   left, or the whole time again) until SIGTERM (main) and a SIGUSR1 the main thread then
 *   sends (the threads). Not allowed: returning 0 early, any errno other than EINTR (e.g. a
 *   leaked 516), a remaining time (when written) larger than requested ("restart"), or an
 *   EINTR before the signal (as CRIU gives: "early").
 * Blocks in: clock_nanosleep (syscall 230), CLOCK_REALTIME, relative, 1000 s; the threads in
 *   restart_syscall (219).
 */
#include "zoo.h"
#include <pthread.h>

static char first_bad[200];
static unsigned long eintr_early;

enum { RAW, GLIBC, NR_SLEEPERS };
static const char *const sleeper_name[NR_SLEEPERS] = { "raw nanosleep without rem", "nanosleep with rem" };
static struct sleeper {
	pthread_t thread;
	volatile pid_t tid;
	unsigned long early, returns;
} sleepers[NR_SLEEPERS];
static volatile int sleepers_end;

/* A broken restart: -ERESTART_RESTARTBLOCK leaks into user space. */
static void c_restart(ucontext_t *uc) { uc->uc_mcontext.gregs[REG_RAX] = -516; }
/* As if the raw sleep had returned EINTR once before its signal (a restore that gives EINTR). */
static void c_early(ucontext_t *uc) { (void)uc; sleepers[RAW].early++; }
static const struct zoo_corruption corruptions[] = {
	{ "restart", c_restart, 1 },
	{ "early", c_early, 0 },
};

static void on_usr1(int sig) { (void)sig; }

/* nanosleep(req, NULL) as Go's runtime makes it: the number moved into eax just before */
static long raw_nanosleep(const struct timespec *req)
{
	long ret;
	__asm__ volatile("mov $35, %%eax\n\tsyscall"
			 : "=a"(ret)
			 : "D"(req), "S"(0L)
			 : "rcx", "r11", "memory");
	return ret;
}

static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;
	s->tid = (pid_t)syscall(SYS_gettid);
	while (!sleepers_end) {
		struct timespec req = { 1000, 0 }, rem;
		if (s == &sleepers[RAW])
			raw_nanosleep(&req);
		else
			nanosleep(&req, &rem);
		s->returns++;
		if (!sleepers_end)
			s->early++;
	}
	return NULL;
}

/* Is thread tid of process pid stopped (state T)? */
static int task_stopped(pid_t pid, pid_t tid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	return zoo_stat_state(path) == 'T';
}

/* Sleeper k in syscall nr (after it started), waited for up to 5 s. */
static void sleeper_in(int k, long nr, const char *when)
{
	while (!sleepers[k].tid)
		usleep(1000);
	if (zoo_thread_in_syscall(sleepers[k].tid, nr))
		zoo_die("the %s thread is not in syscall %ld %s", sleeper_name[k], nr, when);
}

/* Stopped and continued, as by job control: a child sends both and is waited for. */
static void stop_and_continue(void)
{
	pid_t parent = getpid(), kid = fork();
	if (kid < 0)
		zoo_die("fork: %s", strerror(errno));
	if (!kid) {
		kill(parent, SIGSTOP);
		for (int k = 0; k < NR_SLEEPERS; k++) /* (a SIGCONT before they stop cancels it) */
			for (int tries = 0; !task_stopped(parent, sleepers[k].tid) && tries < 5000; tries++)
				usleep(1000);
		kill(parent, SIGCONT);
		_exit(0);
	}
	while (waitpid(kid, NULL, 0) < 0 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, 2);
	signal(SIGUSR1, on_usr1);
	for (int k = 0; k < NR_SLEEPERS; k++)
		if (pthread_create(&sleepers[k].thread, NULL, sleeper_main, &sleepers[k]))
			zoo_die("pthread_create failed");
	sleeper_in(RAW, SYS_nanosleep, "before the stop");
	sleeper_in(GLIBC, SYS_clock_nanosleep, "before the stop"); /* (glibc's nanosleep) */
	if (getpid() != 1) { /* (the init of a PID namespace ignores a SIGSTOP from inside it) */
		stop_and_continue();
		for (int k = 0; k < NR_SLEEPERS; k++)
			sleeper_in(k, SYS_restart_syscall, "after SIGSTOP and SIGCONT");
	}
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
	sleepers_end = 1;
	for (int k = 0; k < NR_SLEEPERS; k++)
		while (sleepers[k].returns == 0 || pthread_tryjoin_np(sleepers[k].thread, NULL)) {
			pthread_kill(sleepers[k].thread, SIGUSR1);
			usleep(1000);
		}
	zoo_begin_verify();
	CHECK("restart", !first_bad[0], "%s", first_bad);
	CHECK("early", !eintr_early, "the main thread's nanosleep returned %lu times before SIGTERM",
	      eintr_early);
	for (int k = 0; k < NR_SLEEPERS; k++)
		CHECK("early", !sleepers[k].early, "the %s thread's sleep returned %lu times before its signal",
		      sleeper_name[k], sleepers[k].early);
	return zoo_finish(getpid() == 1 ? "3 sleeps (init of a PID namespace: not stopped before)"
				       : "3 sleeps, 2 in restart_syscall");
}
