/*
 * syscall-sigmask: threads frozen in system calls that wait with a signal mask of their own
 * for the wait (ppoll, pselect6, epoll_pwait, epoll_pwait2, and the main thread in
 * sigsuspend) keep both masks: the one in effect while they wait, and the one the kernel
 * puts back when the call returns (the thread's own, saved aside meanwhile). A restore that
 * took the mask of the wait for the thread's own, or the other way round, shows here.
 *   Every thread blocks SIGTERM, SIGUSR1 and SIGUSR2. Waiter k waits with SIGUSR1 unblocked
 *   and SIGRTMIN+k blocked; the main thread waits in sigsuspend with SIGTERM unblocked and
 *   SIGRTMIN+5 blocked. After SIGTERM the main thread reads each waiter's SigBlk from
 *   /proc/self/task/TID/status (still waiting: the wait's mask), then sends each a SIGUSR1.
 * Checks: "during": each waiter's mask while it still waits is its wait's; "ended": each call
 *   returned once, -1 EINTR, after its thread's SIGUSR1 handler ran once (main: after
 *   SIGTERM); "mask": each thread's mask after the call is its own again.
 * Blocks in: rt_sigsuspend (syscall 130), the waiters in ppoll (271), pselect6 (270),
 *   epoll_pwait (281), epoll_pwait2 (441).
 */
#include "zoo.h"
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/select.h>

enum { PPOLL, PSELECT, EPOLL_PWAIT, EPOLL_PWAIT2, NR_WAITERS };
static const char *const call_name[NR_WAITERS] = { "ppoll", "pselect6", "epoll_pwait", "epoll_pwait2" };
static const long call_nr[NR_WAITERS] = { SYS_ppoll, SYS_pselect6, SYS_epoll_pwait, SYS_epoll_pwait2 };

struct waiter {
	pthread_t thread;
	volatile pid_t tid;
	int epfd;
	int ret, err;
	volatile int returned;
	unsigned handled; /* SIGUSR1 handler runs in this thread */
	sigset_t after;   /* the thread's mask once the call returned */
	uint64_t during;  /* SigBlk read while it waited */
};
static struct waiter waiters[NR_WAITERS];
static sigset_t own_mask;
static volatile int may_exit;
static volatile int corrupt_waiters; /* "mask" corruption: the waiters' handlers drop SIGUSR2 */

static __thread struct waiter *self;

static void on_usr1(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	(void)sig, (void)si;
	if (self)
		self->handled++;
	if (corrupt_waiters) /* the mask put back on return: as if the restore lost SIGUSR2 */
		sigdelset(&uc->uc_sigmask, SIGUSR2);
}

/* The mask of waiter k's wait, or of the main thread's (k = NR_WAITERS + 1). */
static void wait_mask(int k, sigset_t *m)
{
	*m = own_mask;
	sigdelset(m, k <= NR_WAITERS ? SIGUSR1 : SIGTERM);
	sigaddset(m, SIGRTMIN + k);
}

static uint64_t mask_bits(const sigset_t *m)
{
	uint64_t bits = 0;
	for (int s = 1; s <= 64; s++)
		if (sigismember(m, s) == 1)
			bits |= 1ULL << (s - 1);
	return bits;
}

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	int k = (int)(w - waiters);
	sigset_t m;
	struct epoll_event ev;

	self = w;
	wait_mask(k + 1, &m);
	w->tid = (pid_t)syscall(SYS_gettid);
	switch (k) {
	case PPOLL:
		w->ret = ppoll(NULL, 0, NULL, &m);
		break;
	case PSELECT:
		w->ret = pselect(0, NULL, NULL, NULL, NULL, &m);
		break;
	case EPOLL_PWAIT:
		w->ret = epoll_pwait(w->epfd, &ev, 1, -1, &m);
		break;
	case EPOLL_PWAIT2:
		w->ret = (int)syscall(SYS_epoll_pwait2, w->epfd, &ev, 1, NULL, &m, (size_t)8);
		break;
	}
	w->err = errno;
	pthread_sigmask(SIG_SETMASK, NULL, &w->after);
	w->returned = 1;
	while (!may_exit) /* (its status is read until then) */
		usleep(1000);
	return NULL;
}

/* SigBlk of thread tid, from its status file (no allocation). */
static int read_sigblk(pid_t tid, uint64_t *out)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	char *p = zoo_read_file(path, buf, sizeof(buf)) > 0 ? strstr(buf, "\nSigBlk:") : NULL;
	if (!p)
		return -1;
	*out = strtoull(p + 8, NULL, 16);
	return 0;
}

static void c_mask(ucontext_t *uc)
{
	/* the main thread's mask put back after sigsuspend, and the waiters': SIGUSR2 lost */
	sigdelset(&uc->uc_sigmask, SIGUSR2);
	corrupt_waiters = 1;
}

static void c_during(ucontext_t *uc)
{
	/* a waiter woken before its mask is read: it reads its own again, not the wait's */
	(void)uc;
	syscall(SYS_tgkill, getpid(), waiters[PPOLL].tid, SIGRTMIN + 7);
	for (long spins = 0; !waiters[PPOLL].returned && spins < 2000000000L; spins++)
		;
}

static void c_ended(ucontext_t *uc)
{
	/* the epoll_pwait thread's handler as if it had run three times */
	(void)uc;
	waiters[EPOLL_PWAIT].handled += 2;
}

static const struct zoo_corruption corruptions[] = {
	{ "mask", c_mask, 1 },
	{ "during", c_during, 1 },
	{ "ended", c_ended, 1 },
};

static void on_rt7(int sig) { (void)sig; }

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO };
	sigset_t main_wait, after;
	char what[160];
	int main_ret, main_err;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGRTMIN + 7, on_rt7);
	sigemptyset(&own_mask);
	sigaddset(&own_mask, SIGTERM);
	sigaddset(&own_mask, SIGUSR1);
	sigaddset(&own_mask, SIGUSR2);
	sigprocmask(SIG_SETMASK, &own_mask, NULL);

	for (int k = 0; k < NR_WAITERS; k++) {
		waiters[k].epfd = epoll_create1(EPOLL_CLOEXEC);
		if (waiters[k].epfd < 0 || pthread_create(&waiters[k].thread, NULL, waiter_main, &waiters[k]))
			zoo_die("waiter %s: %s", call_name[k], strerror(errno));
	}
	for (int k = 0; k < NR_WAITERS; k++) {
		while (!waiters[k].tid)
			usleep(1000);
		if (zoo_thread_in_syscall(waiters[k].tid, call_nr[k]))
			zoo_die("waiter %s never blocked in its call", call_name[k]);
	}
	wait_mask(NR_WAITERS + 1, &main_wait);

	zoo_ready();
	main_ret = sigsuspend(&main_wait);
	main_err = errno;
	sigprocmask(SIG_SETMASK, NULL, &after);

	for (int k = 0; k < NR_WAITERS; k++)
		if (read_sigblk(waiters[k].tid, &waiters[k].during))
			waiters[k].during = ~0ULL;
	may_exit = 1;
	for (int k = 0; k < NR_WAITERS; k++) {
		syscall(SYS_tgkill, getpid(), waiters[k].tid, SIGUSR1);
		pthread_join(waiters[k].thread, NULL);
	}

	zoo_begin_verify();
	CHECK("ended", main_ret == -1 && main_err == EINTR && zoo_term,
	      "sigsuspend returned %d errno %d, SIGTERM %s", main_ret, main_err, zoo_term ? "seen" : "not seen");
	CHECK("mask", mask_bits(&after) == mask_bits(&own_mask),
	      "main thread's mask after sigsuspend %#llx, its own was %#llx",
	      (unsigned long long)mask_bits(&after), (unsigned long long)mask_bits(&own_mask));
	for (int k = 0; k < NR_WAITERS; k++) {
		struct waiter *w = &waiters[k];
		sigset_t m;
		wait_mask(k + 1, &m);
		CHECK("during", w->during == mask_bits(&m), "%s thread's mask while it waited %#llx, not %#llx",
		      call_name[k], (unsigned long long)w->during, (unsigned long long)mask_bits(&m));
		snprintf(what, sizeof(what), "%s returned %d errno %d after %u SIGUSR1 handler runs",
			 call_name[k], w->ret, w->err, w->handled);
		CHECK("ended", w->ret == -1 && w->err == EINTR && w->handled == 1, "%s", what);
		CHECK("mask", mask_bits(&w->after) == mask_bits(&own_mask),
		      "%s thread's mask after the call %#llx, its own was %#llx", call_name[k],
		      (unsigned long long)mask_bits(&w->after), (unsigned long long)mask_bits(&own_mask));
	}
	return zoo_finish("5 waits with masks of their own");
}
