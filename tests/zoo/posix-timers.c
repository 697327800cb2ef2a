/*
 * posix-timers: timers made with timer_create.
 *   timer A: CLOCK_MONOTONIC, every 20 ms, SIGEV_SIGNAL SIGRTMIN with value 0x1234 (counted by
 *            a handler that checks the value);
 *   timer B: CLOCK_REALTIME, one shot 100 s ahead, SIGEV_SIGNAL SIGUSR2;
 *   timer C: CLOCK_MONOTONIC, SIGEV_NONE, 50 s ahead.
 *   timer D: CLOCK_MONOTONIC, every 20 ms, SIGEV_THREAD_ID SIGUSR1 to a worker thread (whose
 *            handler checks it runs on that thread);
 *   timer E: glibc SIGEV_THREAD every 20 ms (glibc's helper thread gets the signal through
 *            SIGEV_THREAD_ID and starts a thread per expiration for the callback);
 *   timer F: the process's CPU-time clock (CLOCK_PROCESS_CPUTIME_ID: clock id -6 in
 *            /proc/self/timers), SIGEV_NONE, 1000 s of CPU time ahead;
 *   timer G: the main thread's own CPU-time clock (pthread_getcpuclockid: ~tid << 3 | 6),
 *            every 5 ms of its CPU time, SIGEV_SIGNAL SIGRTMIN+1;
 *   timer H: the CPU-time clock of its child K (clock_getcpuclockid(K), as a supervisor limits
 *            a child's CPU time), SIGEV_NONE, 100 s of K's CPU time ahead (K waits in pause);
 *   timer I: CLOCK_MONOTONIC every 50 ms, SIGEV_SIGNAL SIGRTMIN+2, which is blocked (read with
 *            sigtimedwait, as timer loops do): its signal is pending, once (the kernel queues
 *            one per timer; later expirations are its overrun).
 *   One more timer is made and deleted first, so the IDs have a gap.
 * After restore and SIGTERM: each timer has its old ID (timer_gettime on it works, and
 * /proc/self/timers lists exactly those IDs), A keeps firing with its value, B and C have
 * 80-100 s and 30-50 s left, D keeps hitting its worker only, E keeps calling back, F has
 * 990-1000 s of CPU time left on the same clock id, G fires while the main thread spins, H is
 * on K's clock with 99-100 s left (100 s exactly when K reached pause() before H was set),
 * I's signal is pending once (not twice) and I goes on.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <pthread.h>
#include <time.h>

static timer_t a, b, c, d, e, f, g, h, ti;
static pid_t k;
static clockid_t k_clock;
static clockid_t g_clock;
static volatile sig_atomic_t ticks, bad_value, cpu_ticks;
static volatile pid_t worker_tid;
static volatile int worker_ticks, wrong_thread, callbacks;

static void on_worker_tick(int sig)
{
	(void)sig;
	if (gettid() == worker_tid)
		worker_ticks++;
	else
		wrong_thread++;
}

static void *worker(void *arg)
{
	(void)arg;
	worker_tid = gettid();
	for (;;)
		pause();
	return NULL;
}

static void on_callback(union sigval v)
{
	if (v.sival_int == 0x5678)
		__atomic_add_fetch(&callbacks, 1, __ATOMIC_SEQ_CST);
}

static void on_tick(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_value.sival_int != 0x1234)
		bad_value = 1;
	ticks++;
}

static void on_cpu_tick(int sig) { (void)sig; cpu_ticks++; }

static void c_delete(ucontext_t *u) { (void)u; timer_delete(b); }
static void c_cpu(ucontext_t *u)
{
	(void)u;
	timer_delete(f);
	timer_delete(g);
}
static void c_disarm(ucontext_t *u)
{
	(void)u;
	struct itimerspec off = { { 0, 0 }, { 0, 0 } };
	timer_settime(a, 0, &off, NULL);
}
static void c_disarm_d(ucontext_t *u)
{
	(void)u;
	struct itimerspec off = { { 0, 0 }, { 0, 0 } };
	timer_settime(d, 0, &off, NULL);
}
static void c_disarm_e(ucontext_t *u)
{
	(void)u;
	struct itimerspec off = { { 0, 0 }, { 0, 0 } };
	timer_settime(e, 0, &off, NULL);
}
/* H again, on the process's own CPU-time clock */
static void c_child_clock(ucontext_t *u)
{
	(void)u;
	struct sigevent none = { .sigev_notify = SIGEV_NONE };
	struct itimerspec in100 = { { 0, 0 }, { 100, 0 } };
	timer_delete(h);
	timer_create(CLOCK_PROCESS_CPUTIME_ID, &none, &h);
	timer_settime(h, 0, &in100, NULL);
}
/* I's signal twice, as a restore queueing it beside the restored timer's would leave it */
static void c_timer_signal(ucontext_t *u)
{
	(void)u;
	siginfo_t si = { .si_signo = SIGRTMIN + 2, .si_code = SI_TIMER };
	si.si_timerid = (int)(intptr_t)ti;
	syscall(SYS_rt_sigqueueinfo, getpid(), SIGRTMIN + 2, &si);
}
static const struct zoo_corruption corruptions[] = {
	{ "timer-signal", c_timer_signal, 0 },
	{ "child-clock", c_child_clock, 0 },
	{ "ids", c_delete, 0 },
	{ "firing", c_disarm, 0 },
	{ "thread-timer", c_disarm_d, 0 },
	{ "callback-timer", c_disarm_e, 0 },
	{ "cpu-clock", c_cpu, 0 },
};

static timer_t make(clockid_t clk, int notify, int sig, int value)
{
	struct sigevent sev = { .sigev_notify = notify, .sigev_signo = sig };
	timer_t t;
	sev.sigev_value.sival_int = value;
	if (timer_create(clk, &sev, &t))
		zoo_die("timer_create: %s", strerror(errno));
	return t;
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	sigset_t rt2; /* (blocked in every thread: they inherit the mask) */
	sigemptyset(&rt2);
	sigaddset(&rt2, SIGRTMIN + 2);
	sigprocmask(SIG_BLOCK, &rt2, NULL);
	struct sigaction sa = { .sa_sigaction = on_tick, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigaction(SIGRTMIN, &sa, NULL);
	signal(SIGUSR2, SIG_IGN);
	timer_t gone = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0);
	a = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN, 0x1234);
	timer_delete(gone);
	b = make(CLOCK_REALTIME, SIGEV_SIGNAL, SIGUSR2, 7);
	c = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0);
	struct itimerspec every = { { 0, 20000000 }, { 0, 20000000 } }, in100 = { { 0, 0 }, { 100, 0 } },
			  in50 = { { 0, 0 }, { 50, 0 } };
	timer_settime(a, 0, &every, NULL);
	timer_settime(b, 0, &in100, NULL);
	timer_settime(c, 0, &in50, NULL);

	pthread_t th;
	signal(SIGUSR1, on_worker_tick);
	if (pthread_create(&th, NULL, worker, NULL))
		zoo_die("pthread_create failed");
	while (!worker_tid)
		zoo_sleep_ms(1);
	struct sigevent to_worker = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR1 };
	to_worker._sigev_un._tid = worker_tid;
	if (timer_create(CLOCK_MONOTONIC, &to_worker, &d))
		zoo_die("timer_create SIGEV_THREAD_ID: %s", strerror(errno));
	struct sigevent callback = { .sigev_notify = SIGEV_THREAD, .sigev_notify_function = on_callback };
	callback.sigev_value.sival_int = 0x5678;
	if (timer_create(CLOCK_MONOTONIC, &callback, &e))
		zoo_die("timer_create SIGEV_THREAD: %s", strerror(errno));
	timer_settime(d, 0, &every, NULL);
	timer_settime(e, 0, &every, NULL);
	f = make(CLOCK_PROCESS_CPUTIME_ID, SIGEV_NONE, 0, 0);
	struct itimerspec in1000 = { { 0, 0 }, { 1000, 0 } }, every5 = { { 0, 5000000 }, { 0, 5000000 } };
	timer_settime(f, 0, &in1000, NULL);
	signal(SIGRTMIN + 1, on_cpu_tick);
	if (pthread_getcpuclockid(pthread_self(), &g_clock))
		zoo_die("pthread_getcpuclockid failed");
	g = make(g_clock, SIGEV_SIGNAL, SIGRTMIN + 1, 0);
	timer_settime(g, 0, &every5, NULL);
	if ((k = fork()) == 0) {
		for (;;)
			pause();
	}
	if (k < 0 || clock_getcpuclockid(k, &k_clock))
		zoo_die("a child and its CPU-time clock: %s", strerror(errno));
	h = make(k_clock, SIGEV_NONE, 0, 0);
	struct itimerspec in100k = { { 0, 0 }, { 100, 0 } };
	timer_settime(h, 0, &in100k, NULL);
	ti = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 2, 0x77);
	struct itimerspec every50 = { { 0, 50000000 }, { 0, 50000000 } };
	timer_settime(ti, 0, &every50, NULL);
	zoo_sleep_ms(100);
	/* glibc starts a thread (a stack and its guard page) per SIGEV_THREAD expiration, at any
	 * moment: the mappings change by themselves, with or without a checkpoint */
	zoo_check_maps = 0;
	zoo_ready();
	zoo_wait();

	int before = ticks, worker_before = worker_ticks, callbacks_before = callbacks;
	zoo_sleep_ms(100);
	CHECK("thread-timer", worker_ticks > worker_before && !wrong_thread,
	      "timer D hit its worker %d times in 100 ms, another thread %d times",
	      worker_ticks - worker_before, wrong_thread);
	/* (a callback thread glibc started before a disarm may still run: one call is not enough) */
	CHECK("callback-timer", callbacks - callbacks_before >= 2, "timer E called back %d times in 100 ms",
	      callbacks - callbacks_before);
	CHECK("firing", ticks > before && !bad_value, "timer A fired %d times in 100 ms (value ok: %d)",
	      ticks - before, !bad_value);
	struct itimerspec left;
	CHECK("ids", timer_gettime(b, &left) == 0 && left.it_value.tv_sec >= 80 && left.it_value.tv_sec < 100,
	      "timer B: %s, %ld s left", strerror(errno), (long)left.it_value.tv_sec);
	CHECK("ids", timer_gettime(c, &left) == 0 && left.it_value.tv_sec >= 30 && left.it_value.tv_sec < 50,
	      "timer C: %ld s left", (long)left.it_value.tv_sec);
	CHECK("cpu-clock", timer_gettime(f, &left) == 0 && left.it_value.tv_sec >= 990 && left.it_value.tv_sec < 1000,
	      "timer F (process CPU time): %s, %ld s left", strerror(errno), (long)left.it_value.tv_sec);
	int cpu_before = cpu_ticks;
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do /* spin: 100 ms of wall time, most of it this thread's CPU time */
		clock_gettime(CLOCK_MONOTONIC, &now);
	while ((now.tv_sec - t0.tv_sec) * 1000000000L + now.tv_nsec - t0.tv_nsec < 100000000L);
	CHECK("cpu-clock", cpu_ticks > cpu_before, "timer G (thread CPU time) fired %d times while spinning 100 ms",
	      cpu_ticks - cpu_before);
	char text[4096] = "", want[128];
	zoo_read_file("/proc/self/timers", text, sizeof(text));
	snprintf(want, sizeof(want), "ID: %ld", (long)(intptr_t)a);
	CHECK("ids", strstr(text, want) != NULL, "timer A (%s) missing from /proc/self/timers", want);
	CHECK("cpu-clock", strstr(text, "ClockID: -6") != NULL, "timer F's clock id -6 missing from /proc/self/timers");
	snprintf(want, sizeof(want), "ClockID: %d", (int)g_clock);
	CHECK("cpu-clock", strstr(text, want) != NULL, "timer G's clock id (%s) missing from /proc/self/timers", want);
	/* (all 100 s when K had reached pause() before H was set: under load it may run first) */
	int h_ok = timer_gettime(h, &left) == 0;
	CHECK("child-clock", h_ok && left.it_value.tv_sec >= 99 && (left.it_value.tv_sec < 100 || !left.it_value.tv_nsec),
	      "timer H (child K's CPU time): %s, %ld.%09ld s left", h_ok ? "set" : strerror(errno),
	      (long)left.it_value.tv_sec, (long)left.it_value.tv_nsec);
	snprintf(want, sizeof(want), "ClockID: %d", (int)k_clock);
	CHECK("child-clock", strstr(text, want) != NULL, "timer H's clock id (%s) missing from /proc/self/timers", want);
	struct timespec none = { 0, 0 }, wait1 = { 0, 100000000 };
	siginfo_t s1, s2, s3;
	int r1 = sigtimedwait(&rt2, &s1, &none), r2 = sigtimedwait(&rt2, &s2, &none);
	CHECK("timer-signal", r1 == SIGRTMIN + 2 && s1.si_code == SI_TIMER && s1.si_timerid == (int)(intptr_t)ti &&
				      s1.si_value.sival_int == 0x77 && r2 < 0,
	      "timer I's pending signals: %d (code %d, timer %d, value %#x), then %d (code %d)", r1, s1.si_code,
	      s1.si_timerid, s1.si_value.sival_int, r2, r2 > 0 ? s2.si_code : 0);
	int r3 = -1; /* (timer A's handler interrupts the wait) */
	for (int i = 0; i < 50 && r3 < 0; i++)
		r3 = sigtimedwait(&rt2, &s3, &wait1);
	CHECK("timer-signal", r3 == SIGRTMIN + 2 && s3.si_timerid == (int)(intptr_t)ti, "timer I does not fire again (%d)",
	      r3);
	kill(k, SIGKILL);
	waitpid(k, NULL, 0);
	return zoo_finish("9 timers, 3 on CPU-time clocks (one a child's), one with its signal pending");
}
