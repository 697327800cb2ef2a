/*
 * sched: each thread's scheduling.
 *   main thread: nice 5, CPU 0 only, I/O priority best-effort level 7;
 *   thread A: nice 10, SCHED_BATCH, CPU 1 only (the last CPU if there is one CPU), a time slice
 *   of 7 ms (sched_attr.sched_runtime of a fair thread, Linux 6.12; on a kernel that ignores
 *   it the verdict line says so and the slice is not checked);
 *   thread B: SCHED_FIFO priority 5 with SCHED_RESET_ON_FORK, I/O class idle;
 *   thread C: SCHED_IDLE;
 *   thread D: SCHED_DEADLINE, runtime 2 ms, deadline 30 ms, period 50 ms, SCHED_FLAG_DL_OVERRUN
 *   (where the kernel refuses it here, as in a container's cgroup or user namespace, the
 *   verdict line says so and D is not checked).
 * After restore and SIGTERM: every thread has its nice value, policy, priority, affinity,
 * deadline reservation and I/O priority again (read from outside, per tid).
 * Blocks in: nanosleep (zoo_wait loop); the threads in pause.
 */
#include "zoo.h"
#include <pthread.h>
#include <sched.h>
#include <linux/sched.h>
#include <sys/resource.h>

#define IOPRIO(class, level) (((class) << 13) | (level))

#define MS 1000000ull
#define NR_THREADS 5

/* sched_setattr's struct (linux/sched/types.h clashes with sched.h) */
struct sched_attr {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
};

struct want {
	volatile pid_t tid;
	int nice, policy, prio, cpu, ioprio;
	uint64_t runtime, deadline, period, flags; /* SCHED_DEADLINE; runtime: a fair thread's slice */
};
static struct want want[NR_THREADS] = {
	{ 0, 5, SCHED_OTHER, 0, 0, IOPRIO(2, 7), 0, 0, 0, 0 },
	{ 0, 10, SCHED_BATCH, 0, 1, 0, 7 * MS, 0, 0, 0 },
	{ 0, 0, SCHED_FIFO | SCHED_RESET_ON_FORK, 5, -1, IOPRIO(3, 0), 0, 0, 0, 0 },
	{ 0, 0, SCHED_IDLE, 0, -1, 0, 0, 0, 0, 0 },
	{ 0, 0, SCHED_DEADLINE, 0, -1, 0, 2 * MS, 30 * MS, 50 * MS, SCHED_FLAG_DL_OVERRUN },
};
static int ncpu;
static volatile int deadline_refused; /* errno of thread D's sched_setattr */
static volatile int slice_ignored;     /* the kernel keeps no slice of thread A's */

static uint64_t runtime_of(pid_t tid)
{
	struct sched_attr a = { 0 };
	syscall(SYS_sched_getattr, tid, &a, sizeof(a), 0);
	return a.sched_runtime;
}

static void apply(struct want *w)
{
	struct sched_param sp = { .sched_priority = w->prio };
	w->tid = gettid();
	if (w->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(w->cpu < ncpu ? w->cpu : ncpu - 1, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			zoo_die("affinity: %s", strerror(errno));
	}
	if (w->policy == SCHED_DEADLINE) {
		struct sched_attr a = { .size = sizeof(a), .sched_policy = SCHED_DEADLINE, .sched_flags = w->flags,
					.sched_runtime = w->runtime, .sched_deadline = w->deadline,
					.sched_period = w->period };
		if (syscall(SYS_sched_setattr, 0, &a, 0))
			deadline_refused = errno;
		return;
	}
	if (w->runtime) { /* a fair thread's slice */
		struct sched_attr a = { .size = sizeof(a), .sched_policy = w->policy, .sched_nice = w->nice,
					.sched_runtime = w->runtime };
		if (syscall(SYS_sched_setattr, 0, &a, 0))
			zoo_die("sched_setattr slice of tid %d: %s", w->tid, strerror(errno));
		slice_ignored = runtime_of(0) != w->runtime;
	} else if (setpriority(PRIO_PROCESS, 0, w->nice) || sched_setscheduler(0, w->policy, &sp)) {
		zoo_die("scheduling of tid %d: %s", w->tid, strerror(errno));
	}
	if (w->ioprio && syscall(SYS_ioprio_set, 1, 0, w->ioprio))
		zoo_die("I/O priority of tid %d: %s", w->tid, strerror(errno));
}

static void *thread_main(void *arg)
{
	apply(arg);
	for (;;)
		pause();
	return NULL;
}

/* Does thread w have what it was given? "" if so, else what differs. */
static const char *differs(const struct want *w, char *buf, size_t len)
{
	struct sched_param sp;
	cpu_set_t set;
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, w->tid), policy = sched_getscheduler(w->tid);
	long ioprio = syscall(SYS_ioprio_get, 1, w->tid);
	sched_getparam(w->tid, &sp);
	sched_getaffinity(w->tid, sizeof(set), &set);
	int cpu_ok = w->cpu < 0 ? CPU_COUNT(&set) == ncpu
				 : CPU_COUNT(&set) == 1 && CPU_ISSET(w->cpu < ncpu ? w->cpu : ncpu - 1, &set);
	struct sched_attr a = { 0 };
	syscall(SYS_sched_getattr, w->tid, &a, sizeof(a), 0);
	buf[0] = 0;
	if (nice != w->nice || policy != w->policy || sp.sched_priority != w->prio || !cpu_ok ||
	    (w->ioprio && ioprio != w->ioprio) ||
	    (w->policy != SCHED_DEADLINE && w->runtime && !slice_ignored && a.sched_runtime != w->runtime) ||
	    (w->policy == SCHED_DEADLINE &&
	     (a.sched_runtime != w->runtime || a.sched_deadline != w->deadline || a.sched_period != w->period ||
	      (a.sched_flags & ~(uint64_t)SCHED_FLAG_RESET_ON_FORK) != w->flags)))
		snprintf(buf, len, "tid %d: nice %d policy %#x prio %d cpus %d ioprio %#lx runtime/deadline/period %llu/%llu/%llu ns flags %#llx",
			 w->tid, nice, policy, sp.sched_priority, CPU_COUNT(&set), ioprio,
			 (unsigned long long)a.sched_runtime, (unsigned long long)a.sched_deadline,
			 (unsigned long long)a.sched_period, (unsigned long long)a.sched_flags);
	return buf;
}

static void c_nice(ucontext_t *u) { (void)u; setpriority(PRIO_PROCESS, want[1].tid, 0); }
static void c_affinity(ucontext_t *u)
{
	(void)u;
	cpu_set_t set;
	CPU_ZERO(&set);
	for (int i = 0; i < ncpu; i++)
		CPU_SET(i, &set);
	sched_setaffinity(want[0].tid, sizeof(set), &set);
}
static void c_policy(ucontext_t *u)
{
	(void)u;
	struct sched_param sp = { 0 };
	sched_setscheduler(want[2].tid, SCHED_OTHER, &sp);
}
static void c_deadline(ucontext_t *u)
{
	(void)u;
	struct sched_attr a = { .size = sizeof(a), .sched_policy = SCHED_DEADLINE, .sched_runtime = 3 * MS,
				.sched_deadline = 30 * MS, .sched_period = 50 * MS };
	syscall(SYS_sched_setattr, want[4].tid, &a, 0);
}
static void c_slice(ucontext_t *u)
{
	(void)u;
	struct sched_attr a = { .size = sizeof(a), .sched_policy = SCHED_BATCH, .sched_nice = 10 };
	syscall(SYS_sched_setattr, want[1].tid, &a, 0); /* (runtime 0: the default slice) */
}
static const struct zoo_corruption corruptions[] = {
	{ "sched", c_slice, 0 },
	{ "sched", c_nice, 0 },
	{ "sched", c_deadline, 0 },
	{ "sched", c_affinity, 0 },
	{ "sched", c_policy, 0 },
};

int main(int argc, char **argv)
{
	pthread_t th;
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	for (int i = 1; i < NR_THREADS; i++)
		if (pthread_create(&th, NULL, thread_main, &want[i]))
			zoo_die("pthread_create");
	for (int i = 1; i < NR_THREADS; i++)
		while (!want[i].tid)
			zoo_sleep_ms(1);
	zoo_sleep_ms(20);
	apply(&want[0]);
	zoo_ready();
	zoo_wait();

	for (int i = 0; i < NR_THREADS - !!deadline_refused; i++) {
		char buf[300];
		CHECK("sched", !differs(&want[i], buf, sizeof(buf))[0], "%s", buf);
	}
	static char info[200];
	snprintf(info, sizeof(info), "%s threads' scheduling (SCHED_DEADLINE %s%s, a fair thread's slice %s)",
		 deadline_refused ? "4" : "5", deadline_refused ? "refused here: " : "kept",
		 deadline_refused ? strerror(deadline_refused) : "", slice_ignored ? "ignored by this kernel" : "kept");
	return zoo_finish(info);
}
