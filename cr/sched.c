/*
 * Scheduling of each thread: nice value, policy (with SCHED_RESET_ON_FORK) and real-time
 * priority, a SCHED_DEADLINE reservation (runtime, deadline, period, flags), CPU affinity, I/O
 * priority. All are read from outside the task and set again by stasis on every thread just
 * before the tree resumes (after every fork: a deadline task cannot fork). A setting this host
 * refuses (an affinity to CPUs it lacks, a reservation over its bandwidth) is a warning: the
 * program still runs.
 */
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "task.h"
#include "util.h"

#define IOPRIO_WHO_PROCESS 1
#define AFFINITY_MAX_BYTES 1024 /* 8192 CPUs */
#define DL_FLAGS (SCHED_FLAG_RECLAIM | SCHED_FLAG_DL_OVERRUN)
#define DL_MIN_NS 1024 /* the kernel's smallest runtime */
#define SLICE_MIN_NS 100000ull    /* the bounds the kernel clamps a fair thread's slice to */
#define SLICE_MAX_NS 100000000ull

/* sched_getattr's and sched_setattr's struct (linux/sched/types.h, which clashes with sched.h). */
struct sched_attr {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
};

static bool fair_policy(uint32_t policy)
{
	policy &= ~SCHED_RESET_ON_FORK;
	return policy == SCHED_OTHER || policy == SCHED_BATCH;
}

/*
 * A SCHED_DEADLINE thread's reservation; a fair thread's time slice if it is not
 * default_slice, the slice of stasis's own thread, which asked for none (the kernel tells no
 * flag; a custom slice equal to the default is the default's equal, but does not follow a
 * change of the kernel's base slice).
 */
static int attr_read(pid_t tid, uint64_t default_slice, SchedAttrs *s)
{
	struct sched_attr a = { 0 };

	if (syscall(SYS_sched_getattr, tid, &a, sizeof(a), 0)) {
		pr_perror("dump tid %d: cannot read its scheduling attributes", tid);
		return -EIO;
	}
	if ((s->policy & ~SCHED_RESET_ON_FORK) == SCHED_DEADLINE) {
		s->has_dl_runtime = s->has_dl_deadline = s->has_dl_period = s->has_dl_flags = true;
		s->dl_runtime = a.sched_runtime;
		s->dl_deadline = a.sched_deadline;
		s->dl_period = a.sched_period;
		s->dl_flags = a.sched_flags & DL_FLAGS;
	} else if (fair_policy(s->policy) && a.sched_runtime && a.sched_runtime != default_slice) {
		s->has_fair_slice = true;
		s->fair_slice = a.sched_runtime;
	}
	return 0;
}

static int sched_read(pid_t tid, uint64_t default_slice, SchedAttrs **out)
{
	SchedAttrs *s = xzalloc(sizeof(*s));
	struct sched_param sp;
	unsigned char mask[AFFINITY_MAX_BYTES];
	long len;

	if (!s)
		return -ENOMEM;
	sched_attrs__init(s);
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, tid);
	int policy = sched_getscheduler(tid);
	long ioprio = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid);
	if ((nice == -1 && errno) || policy < 0 || sched_getparam(tid, &sp) || ioprio < 0 ||
	    (len = syscall(SYS_sched_getaffinity, tid, sizeof(mask), mask)) <= 0) {
		pr_perror("dump tid %d: cannot read its scheduling", tid);
		free(s);
		return -EIO;
	}
	s->nice = nice;
	s->policy = policy;
	s->priority = sp.sched_priority;
	s->ioprio = ioprio;
	if (attr_read(tid, default_slice, s)) {
		free(s);
		return -EIO;
	}
	if (!(s->affinity.data = xzalloc(len))) {
		free(s);
		return -ENOMEM;
	}
	s->affinity.len = len;
	memcpy(s->affinity.data, mask, len);
	*out = s;
	return 0;
}

static int dump_sched(struct dump_task *t)
{
	TaskCore *c = t->core;
	struct sched_attr own = { 0 };
	int err;

	if (syscall(SYS_sched_getattr, 0, &own, sizeof(own), 0)) {
		pr_perror("dump pid %d: cannot read stasis's own scheduling attributes", t->pid);
		return -EIO;
	}
	if ((err = sched_read(t->pid, own.sched_runtime, &c->sched)))
		return err;
	for (size_t i = 0; i < c->n_threads; i++) /* (the host tid) */
		if ((err = sched_read(t->threads[i].tid, own.sched_runtime, &c->threads[i]->sched)))
			return err;
	return 0;
}

static bool sched_valid(const SchedAttrs *s)
{
	if (!s)
		return true; /* (images without it: nothing to set) */
	int policy = s->policy & ~SCHED_RESET_ON_FORK;
	bool deadline_ok = policy != SCHED_DEADLINE ||
			   (s->has_dl_runtime && s->has_dl_deadline && s->has_dl_period && s->has_dl_flags &&
			    s->dl_runtime >= DL_MIN_NS && s->dl_runtime <= s->dl_deadline &&
			    (!s->dl_period || s->dl_deadline <= s->dl_period) && !(s->dl_flags & ~DL_FLAGS));
	bool slice_ok = !s->has_fair_slice ||
			(fair_policy(policy) && s->fair_slice >= SLICE_MIN_NS && s->fair_slice <= SLICE_MAX_NS);
	return (s->nice >= -20 && s->nice <= 19 && s->priority <= 99 && slice_ok &&
		      (policy == SCHED_OTHER || policy == SCHED_BATCH || policy == SCHED_IDLE ||
		       policy == SCHED_FIFO || policy == SCHED_RR || policy == SCHED_DEADLINE) &&
		      deadline_ok && s->affinity.len >= 1 && s->affinity.len <= AFFINITY_MAX_BYTES);
}

static int validate_sched(struct restore_task *t)
{
	bool ok = sched_valid(t->core->sched);
	for (size_t i = 0; ok && i < t->core->n_threads; i++)
		ok = sched_valid(t->core->threads[i]->sched);
	if (!ok) {
		pr_err("image core-%d.img: a thread's scheduling is invalid", t->pid);
		return -EINVAL;
	}
	return 0;
}

static void sched_set(pid_t tid, const SchedAttrs *s)
{
	struct sched_param sp = { .sched_priority = s ? (int)s->priority : 0 };

	if (!s)
		return;
	if (setpriority(PRIO_PROCESS, tid, s->nice))
		pr_warn("restore tid %d: cannot set nice %d: %m", tid, s->nice);
	/* (the affinity first: a deadline task's must not be narrowed after) */
	if (syscall(SYS_sched_setaffinity, tid, s->affinity.len, s->affinity.data))
		pr_warn("restore tid %d: cannot set its CPU affinity (CPUs this host lacks?): %m", tid);
	bool deadline = (s->policy & ~SCHED_RESET_ON_FORK) == SCHED_DEADLINE;
	if (deadline || s->has_fair_slice) { /* (a fair thread's runtime is its slice) */
		struct sched_attr a = {
			.size = sizeof(a), .sched_policy = s->policy & ~SCHED_RESET_ON_FORK, .sched_nice = s->nice,
			.sched_flags = (deadline ? s->dl_flags : 0) |
				       (s->policy & SCHED_RESET_ON_FORK ? SCHED_FLAG_RESET_ON_FORK : 0),
			.sched_runtime = deadline ? s->dl_runtime : s->fair_slice,
			.sched_deadline = s->dl_deadline, .sched_period = s->dl_period,
		};
		if (syscall(SYS_sched_setattr, tid, &a, 0))
			pr_warn("restore tid %d: cannot set policy %#x with runtime %llu ns, deadline %llu, "
				"period %llu: %m",
				tid, s->policy, (unsigned long long)a.sched_runtime,
				(unsigned long long)a.sched_deadline, (unsigned long long)a.sched_period);
	} else if (sched_setscheduler(tid, s->policy, &sp)) {
		pr_warn("restore tid %d: cannot set scheduling policy %#x priority %u: %m", tid, s->policy,
			s->priority);
	}
	if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, s->ioprio))
		pr_warn("restore tid %d: cannot set I/O priority %#x: %m", tid, s->ioprio);
}

/* By stasis just before the tree resumes: every thread's scheduling. */
static int finish_sched(struct restore_task *t)
{
	for (size_t i = 0; i < t->core->n_threads; i++)
		sched_set(t->host_tids[i], t->core->threads[i]->sched);
	sched_set(t->host_pid, t->core->sched);
	return 0;
}

const struct state_ops state_sched = {
	.name = "scheduling",
	.dump = dump_sched,
	.validate = validate_sched,
	.finish = finish_sched,
};
