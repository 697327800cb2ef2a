/*
 * A process stopped by job control: the signal that stopped it (SIGSTOP, SIGTSTP, SIGTTIN,
 * SIGTTOU; the seize reports it, cr/seize.c) and whether its parent has collected that stop
 * already (waitpid WUNTRACED): the kernel reports a stop to the parent once. The parent is
 * asked at dump, with waitid(WSTOPPED|WNOHANG|WNOWAIT) injected into it, which collects
 * nothing. A SIGSTOP that comes while the dump runs syscalls in the task stops it (cr/seize.c,
 * arch/x86_64/inject.c): it is saved stopped, its stop not collected. At restore, stasis lets
 * the process go with its own stop signal, stopped ones first (children before parents), and
 * a parent that had collected the stop collects it again (cr/restore-finish.c), before it is
 * let go itself; the SIGCHLD the new stop sends the parent is taken back from its pending set
 * unless one was pending at the dump. What stays different: a terminal stop signal cannot stop
 * a process whose group is orphaned at restore (it stops with SIGSTOP, said), and the root's
 * stop is reported to its new parent.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "task.h"
#include "util.h"

#ifndef __WALL
#define __WALL 0x40000000
#endif

/* Asks t whether it has collected the stop of each stopped child of the tree. */
static int dump_children_stops(struct dump_task *t)
{
	for (size_t i = t->tree_pos + 1; i < t->tree_size; i++) {
		struct dump_task *c = &t->tree[i];
		uint64_t args[6] = { P_PID, c->vpid, t->inj.scratch, WSTOPPED | WNOHANG | WNOWAIT | __WALL };
		siginfo_t si;
		int err;

		if (c->parent != t || !c->stop_sig)
			continue;
		memset(&si, 0, sizeof(si));
		if ((err = inject_syscall_out(&t->inj, SYS_waitid, args, &si, sizeof(si)))) {
			pr_err("dump pid %d: waitid for its stopped child %d in the task failed: %s", t->pid,
			       c->pid, strerror(-err));
			return -EIO;
		}
		c->stop_collected = si.si_pid == 0;
		pr_debug("dump pid %d: its child %d's stop (signal %d) is %s", t->pid, c->pid, c->stop_sig,
			 c->stop_collected ? "collected" : "not collected yet");
	}
	return 0;
}

/* Last of the kinds that run syscalls in the task: a stop that came meanwhile is seen. */
static int dump_job_stop(struct dump_task *t)
{
	TaskCore *c = t->core;
	int err = dump_children_stops(t);

	if (err)
		return err;
	if (!t->stop_sig && t->inj.group_stop_sig) {
		t->stop_sig = t->inj.group_stop_sig;
		t->stop_collected = false;
	}
	c->has_stopped = true;
	c->stopped = t->stop_sig != 0;
	if (t->stop_sig) { /* whether its parent, dumped before it, has collected the stop */
		c->has_stop_signo = c->has_stop_collected = true;
		c->stop_signo = t->stop_sig;
		c->stop_collected = t->stop_collected;
	}
	return 0;
}

static int validate_job_stop(struct restore_task *t)
{
	const TaskCore *c = t->core;

	if ((c->has_stop_signo || c->stop_collected) && !c->stopped) {
		pr_err("image core-%d.img: a stop signal or collected stop, but the process is not stopped", t->pid);
		return -EINVAL;
	}
	if (c->has_stop_signo && !is_stop_signal(c->stop_signo)) {
		pr_err("image core-%d.img: stop signal %u is not one of job control", t->pid, c->stop_signo);
		return -EINVAL;
	}
	return 0;
}

int job_stop_signal(const TaskCore *c)
{
	return !c->stopped ? 0 : c->has_stop_signo ? (int)c->stop_signo : SIGSTOP;
}

/* Whether the saved process had signal sig pending: shared (or, with main_too, its main thread's). */
static bool saved_pending(const TaskCore *c, uint32_t sig, bool main_too)
{
	for (size_t i = 0; i < c->n_pending; i++)
		if (c->pending[i]->sig == sig && (c->pending[i]->shared || main_too))
			return true;
	return false;
}

/* Whether a stop of its children sends it SIGCHLD (not ignored, no SA_NOCLDSTOP). */
static bool stops_notify(const TaskCore *c)
{
	for (size_t i = 0; i < c->n_sigactions; i++)
		if (c->sigactions[i]->sig == SIGCHLD)
			return c->sigactions[i]->handler != (uint64_t)SIG_IGN && !(c->sigactions[i]->flags & SA_NOCLDSTOP);
	return true; /* SIG_DFL: ignored, but queued while stasis traces it */
}

int job_stop_extra_sigchld(const TaskCore *c, pid_t host_pid, pid_t pid)
{
	if (!stops_notify(c) || saved_pending(c, SIGCHLD, false))
		return 0;
	if (saved_pending(c, SIGCHLD, true)) {
		pr_warn("restore pid %d: its main thread had a SIGCHLD of its own pending; the one its stopped "
			"children sent now stays pending too", pid);
		return 0;
	}
	for (int tries = 0; tries < 1000; tries++) {
		uint64_t set;
		int err = proc_status_field(host_pid, "ShdPnd", 16, &set);
		if (err) {
			if (err != -ENOMEM)
				pr_err("restore pid %d: cannot read its pending signals (host pid %d)", pid, host_pid);
			return err == -ENOMEM ? err : -ESRCH;
		}
		if (set & (1ull << (SIGCHLD - 1)))
			return 1;
		usleep(1000);
	}
	pr_warn("restore pid %d: the SIGCHLD of its children's stops did not come (yet)", pid);
	return 0;
}

/*
 * The kernel's test before a terminal stop (SIGTSTP, SIGTTIN, SIGTTOU): the group is orphaned
 * unless some member's parent is in another group of the same session (a parent that is
 * init does not count). Read from /proc, host pids: every process of pid's group.
 */
int job_stop_group_orphaned(pid_t pid)
{
	struct proc_stat st, parent;
	auto_free int *pids = NULL;
	size_t n;
	int err;

	if ((err = proc_read_stat(pid, &st)) || (err = proc_list_pids(&pids, &n)))
		return err;
	for (size_t i = 0; i < n; i++) {
		struct proc_stat m;
		if (proc_read_stat(pids[i], &m) || m.pgid != st.pgid || m.ppid <= 1 || m.state == 'Z')
			continue; /* (gone meanwhile, another group, a parent that is init or outside) */
		if (!proc_read_stat(m.ppid, &parent) && parent.pgid != st.pgid && parent.sid == m.sid)
			return 0;
	}
	return 1;
}

const struct state_ops state_job_stop = {
	.name = "job control stop",
	.dump = dump_job_stop,
	.validate = validate_job_stop,
};
