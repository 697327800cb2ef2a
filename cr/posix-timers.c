/*
 * POSIX timers (timer_create): read from /proc/PID/timers, with the time left and interval
 * from timer_gettime run inside the task. The restorer blob recreates each with its own ID
 * (PR_TIMER_CREATE_RESTORE_IDS) once every thread exists, since a timer may signal one thread
 * (SIGEV_THREAD_ID, as glibc's SIGEV_THREAD timers do), and arms it with the time it had left.
 * A timer whose thread has exited signals nobody any more: it comes back as SIGEV_NONE, armed
 * the same (timer_gettime, timer_settime, timer_delete work on it as before).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pid-ns.h"
#include "restorer/restorer.h"
#include "task.h"
#include "tree-objects.h"
#include "tree.h"
#include "util.h"

#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

/* One timer's notification, from the "signal:" and "notify:" lines. */
static int parse_notify(const char *block, PosixTimer *pt)
{
	const char *sig = strstr(block, "signal:"), *notify = strstr(block, "notify:");
	char how[16] = "", whom[16] = "";
	unsigned long long val;
	unsigned signo, who;

	if (!sig || !notify || sscanf(sig, "signal: %u/%llx", &signo, &val) != 2 ||
	    sscanf(notify, "notify: %15[a-z]/%15[a-z].%u", how, whom, &who) != 3)
		return -EINVAL;
	pt->signo = signo;
	pt->sigval = val;
	if (!strcmp(how, "none"))
		pt->notify = SIGEV_NONE;
	else if (!strcmp(whom, "tid")) {
		pt->notify = SIGEV_THREAD_ID;
		pt->has_notify_tid = true;
		pt->notify_tid = who;
	} else
		pt->notify = SIGEV_SIGNAL;
	return 0;
}

/* (An exited main thread is no thread of t's any more: it is neither t->pid nor in threads.) */
static bool is_live_thread(const struct dump_task *t, uint32_t tid)
{
	if (tid == (uint32_t)t->pid)
		return true;
	for (size_t i = 0; i < t->nr_threads; i++)
		if (tid == (uint32_t)t->threads[i].tid)
			return true;
	return false;
}

/* The pid (0: the caller's own) of a CPU-time clock (negative: ~pid << 3 | 4 if one thread's |
 * kind), -1 for another clock. */
static int64_t clock_pid(uint32_t clockid)
{
	int32_t id = (int32_t)clockid;

	return id < 0 ? (int64_t)~(uint32_t)(id >> 3) : -1; /* arithmetic shift: the bits of ~pid */
}

/* A process's own clocks, its threads' (checked at restore, against their numbers in its
 * namespace), and its children's (which exist when its timers are made again), numbered by
 * the tree's namespace. */
static bool clock_of_dump_valid(const struct dump_task *t, uint32_t clockid)
{
	int64_t pid = clock_pid(clockid);

	if (pid <= 0 || pid == t->vpid || ((int32_t)clockid & 4))
		return true;
	for (size_t i = 0; i < t->tree_size; i++)
		if (t->tree[i].parent == t && t->tree[i].vpid == pid)
			return true;
	return false;
}

/*
 * The kernel queues one signal per timer (expirations meanwhile count as its overrun): a
 * timer's signal pending at dump is not queued again as a pending signal, beside which the
 * restored timer would queue its own, but the timer is made to expire at once and queues it.
 * (Those of the process and of its main thread: cr/signals.c collected them before.)
 */
static void take_timer_signals(TaskCore *c)
{
	size_t kept = 0;

	for (size_t i = 0; i < c->n_pending; i++) {
		PendingSignal *p = c->pending[i];
		PosixTimer *pt = NULL;
		siginfo_t si;
		if (p->siginfo.len >= sizeof(si)) {
			memcpy(&si, p->siginfo.data, sizeof(si));
			for (size_t k = 0; si.si_code == SI_TIMER && !pt && k < c->n_posix_timers; k++)
				if (c->posix_timers[k]->id == (uint32_t)si.si_timerid &&
				    c->posix_timers[k]->notify != SIGEV_NONE)
					pt = c->posix_timers[k];
		}
		if (pt) {
			pt->has_signal_pending = pt->signal_pending = true;
			pending_signal__free_unpacked(p, NULL);
		} else {
			c->pending[kept++] = p;
		}
	}
	c->n_pending = kept;
}

static int dump_posix_timers(struct dump_task *t)
{
	char path[64];
	auto_free char *text = NULL;

	snprintf(path, sizeof(path), "/proc/%d/timers", t->pid);
	text = read_file_at(AT_FDCWD, path, NULL);
	if (!text)
		return errno == ENOMEM ? -ENOMEM : 0; /* no timers file: no timers */
	for (char *b = text; b && *b; b = strchr(b, '\n') ? strchr(b, '\n') + 1 : NULL) {
		if (strncmp(b, "ID:", 3)) /* each timer's block starts with its "ID:" line */
			continue;
		PosixTimer *pt = xzalloc(sizeof(*pt)), **more;
		const char *clk = strstr(b, "ClockID:");
		struct itimerspec its;
		int64_t ret;

		if (!pt || !(more = xreallocarray(t->core->posix_timers, t->core->n_posix_timers + 1,
						   sizeof(*more)))) {
			free(pt);
			return -ENOMEM;
		}
		t->core->posix_timers = more;
		t->core->posix_timers[t->core->n_posix_timers++] = pt; /* freed with the image */
		posix_timer__init(pt);
		pt->id = strtoul(b + 3, NULL, 10);
		if (!clk || parse_notify(b, pt)) {
			pr_err("dump pid %d: cannot parse POSIX timer %u in %s", t->pid, pt->id, path);
			return -EINVAL;
		}
		/* a CPU-time clock is negative (~pid << 3 | kind): kept as its 32 bits */
		pt->clockid = (uint32_t)(int32_t)strtol(clk + 8, NULL, 10);
		if (!clock_of_dump_valid(t, pt->clockid)) {
			pr_err("dump pid %d: POSIX timer %u counts the CPU time of %s %u, which is neither "
			       "the process, one of its threads nor one of its children: not supported",
			       t->pid, pt->id, (int32_t)pt->clockid & 4 ? "thread" : "process",
			       (unsigned)clock_pid(pt->clockid));
			return -ENOTSUP;
		}
		if (pt->has_notify_tid && !is_live_thread(t, pt->notify_tid)) {
			pr_debug("dump pid %d: POSIX timer %u signals thread %u, which has exited", t->pid,
				 pt->id, pt->notify_tid);
			pt->has_notify_tid = false;
			pt->notify_tid = 0;
			pt->has_target_exited = pt->target_exited = true;
		}
		if (pt->has_notify_tid) {
			uint32_t vtid;
			int err = pid_ns_vtid(t->ctx, t->pid, pt->notify_tid, &vtid);
			if (err)
				return err;
			pt->notify_tid = vtid;
		}
		uint64_t get_args[6] = { pt->id, t->inj.scratch }, overrun_args[6] = { pt->id };
		unsigned logged = log_errors();
		int err;
		if ((err = inject_syscall_out(&t->inj, SYS_timer_gettime, get_args, &its, sizeof(its))) ||
		    (err = inject_syscall(&t->inj, SYS_timer_getoverrun, overrun_args, &ret)) ||
		    (err = ret < 0 ? ret : 0))
			return log_unnamed(logged, err, "dump pid %d: cannot read POSIX timer %u", t->pid,
					   pt->id);
		pt->overrun = ret;
		pt->value_ns = its.it_value.tv_sec * 1000000000ull + its.it_value.tv_nsec;
		pt->interval_ns = its.it_interval.tv_sec * 1000000000ull + its.it_interval.tv_nsec;
	}
	take_timer_signals(t->core);
	return 0;
}

static bool is_thread_of(const TaskCore *c, uint32_t tid)
{
	if (tid == c->pid)
		return true;
	for (size_t i = 0; i < c->n_threads; i++)
		if (c->threads[i]->tid == tid)
			return true;
	return false;
}

/*
 * A clock a timer can have: a clock id of the kernel's (CLOCK_REALTIME, ...: it judges), or a
 * CPU-time clock (timer_create with CLOCK_PROCESS_CPUTIME_ID, clock_getcpuclockid(),
 * pthread_getcpuclockid()): negative, ~pid << 3 | 4 if one thread's | kind (0 profiling, 1
 * virtual, 2 scheduler), pid 0 for the caller's own; a pid here is the process, one of its
 * threads or one of its children (made before its timers), as its namespace numbers them (the
 * restored ones have the same numbers).
 */
static bool timer_clock_valid(const TaskCore *c, uint32_t clockid)
{
	int32_t id = (int32_t)clockid;
	int64_t pid = clock_pid(clockid);

	if (id >= 0)
		return true;
	/* another process's: one of its children, checked with the whole tree (below) */
	return (id & 3) != 3 && (pid == 0 || !(id & 4) || is_thread_of(c, pid));
}

static int validate_posix_timers(struct restore_task *t)
{
	for (size_t i = 0; i < t->core->n_posix_timers; i++) {
		PosixTimer *pt = t->core->posix_timers[i];
		if (pt->signo > 64 || pt->id > INT32_MAX || !timer_clock_valid(t->core, pt->clockid) ||
		    (pt->notify != SIGEV_SIGNAL && pt->notify != SIGEV_NONE && pt->notify != SIGEV_THREAD_ID) ||
		    (pt->notify == SIGEV_THREAD_ID &&
		     !(pt->target_exited ? !pt->has_notify_tid
					 : pt->has_notify_tid && is_thread_of(t->core, pt->notify_tid))) ||
		    (pt->target_exited && pt->notify != SIGEV_THREAD_ID)) {
			pr_err("image core-%d.img: POSIX timer %zu is invalid", t->pid, i);
			return -EINVAL;
		}
	}
	return 0;
}

/* Every timer on another process's CPU-time clock counts a child's, whose pid the tree has. */
static int validate_timer_clocks(struct run_ctx *ctx, struct restore_tree *rt)
{
	(void)ctx;
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const TaskCore *c = rt->tasks[i].core;
		for (size_t k = 0; k < c->n_posix_timers; k++) {
			uint32_t clockid = c->posix_timers[k]->clockid;
			int64_t pid = clock_pid(clockid);
			bool child = pid <= 0 || pid == c->pid || ((int32_t)clockid & 4);
			for (size_t j = 0; !child && j < rt->nr_tasks; j++)
				child = rt->tasks[j].pid == pid && rt->tasks[j].core->ppid == c->pid;
			if (!child) {
				pr_err("image core-%d.img: POSIX timer %zu counts the CPU time of pid %lld, "
				       "which is no child of it in the tree", rt->tasks[i].pid, k, (long long)pid);
				return -EINVAL;
			}
		}
	}
	return 0;
}

const struct tree_object_ops tree_posix_timer_clocks = {
	.name = "POSIX timers on children's CPU-time clocks",
	.validate = validate_timer_clocks,
};

static size_t posix_timers_args_size(const struct restore_task *t)
{
	return t->core->n_posix_timers * sizeof(struct rst_posix_timer);
}

/* The timers go to the blob, which creates them once every thread exists. */
static int restore_posix_timers(struct restore_task *t)
{
	struct restorer_args *a = t->args;
	struct rst_posix_timer *out =
		restorer_args_alloc(t, t->core->n_posix_timers * sizeof(*out), &a->posix_timers_off);

	if (!out)
		return -ENOMEM;

	a->nr_posix_timers = t->core->n_posix_timers;
	for (size_t i = 0; i < t->core->n_posix_timers; i++) {
		PosixTimer *pt = t->core->posix_timers[i];
		bool to_thread = pt->notify == SIGEV_THREAD_ID && !pt->target_exited;
		out[i] = (struct rst_posix_timer){
			.id = pt->id,
			.clockid = (int32_t)pt->clockid,
			.sev = { .value = pt->sigval, .signo = pt->signo,
				 .notify = pt->target_exited ? SIGEV_NONE : pt->notify,
				 .tid = to_thread ? (int32_t)pt->notify_tid : 0 },
			.its = { pt->interval_ns / 1000000000, pt->interval_ns % 1000000000,
				 pt->value_ns / 1000000000, pt->value_ns % 1000000000 },
		};
		if (pt->signal_pending) { /* it expires at once, queueing its signal (above) */
			out[i].its.value_sec = 0;
			out[i].its.value_nsec = 1;
		}
	}
	return 0;
}
const struct state_ops state_posix_timers = {
	.name = "POSIX timers",
	.dump = dump_posix_timers,
	.validate = validate_posix_timers,
	.args_size = posix_timers_args_size,
	.restore = restore_posix_timers,
};
