/*
 * sched: each thread's scheduling.
 *   main thread: nice 5, CPU 0 only, I/O priority best-effort level 7;
 *   thread A: nice 10, SCHED_BATCH, CPU 1 only (the last CPU if there is one CPU);
 *   thread B: SCHED_FIFO priority 5 with SCHED_RESET_ON_FORK, I/O class idle;
 *   thread C: SCHED_IDLE.
 * After restore and SIGTERM: every thread has its nice value, policy, priority, affinity and
 * I/O priority again (read from outside, per tid).
 * Blocks in: nanosleep (zoo_wait loop); the threads in pause.
 */
#include "zoo.h"
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#define IOPRIO(class, level) (((class) << 13) | (level))

struct want {
	volatile pid_t tid;
	int nice, policy, prio, cpu, ioprio;
};
static struct want want[4] = {
	{ 0, 5, SCHED_OTHER, 0, 0, IOPRIO(2, 7) },
	{ 0, 10, SCHED_BATCH, 0, 1, 0 },
	{ 0, 0, SCHED_FIFO | SCHED_RESET_ON_FORK, 5, -1, IOPRIO(3, 0) },
	{ 0, 0, SCHED_IDLE, 0, -1, 0 },
};
static int ncpu;

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
	if (setpriority(PRIO_PROCESS, 0, w->nice) || sched_setscheduler(0, w->policy, &sp) ||
	    (w->ioprio && syscall(SYS_ioprio_set, 1, 0, w->ioprio)))
		zoo_die("scheduling of tid %d: %s", w->tid, strerror(errno));
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
	buf[0] = 0;
	if (nice != w->nice || policy != w->policy || sp.sched_priority != w->prio || !cpu_ok ||
	    (w->ioprio && ioprio != w->ioprio))
		snprintf(buf, len, "tid %d: nice %d policy %#x prio %d cpus %d ioprio %#lx", w->tid, nice, policy,
			 sp.sched_priority, CPU_COUNT(&set), ioprio);
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
static const struct zoo_corruption corruptions[] = {
	{ "sched", c_nice, 0 },
	{ "sched", c_affinity, 0 },
	{ "sched", c_policy, 0 },
};

int main(int argc, char **argv)
{
	pthread_t th;
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	for (int i = 1; i < 4; i++)
		if (pthread_create(&th, NULL, thread_main, &want[i]))
			zoo_die("pthread_create");
	for (int i = 1; i < 4; i++)
		while (!want[i].tid)
			zoo_sleep_ms(1);
	zoo_sleep_ms(20);
	apply(&want[0]);
	zoo_ready();
	zoo_wait();

	for (int i = 0; i < 4; i++) {
		char buf[200];
		CHECK("sched", !differs(&want[i], buf, sizeof(buf))[0], "%s", buf);
	}
	return zoo_finish("4 threads' scheduling");
}
