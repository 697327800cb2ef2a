/*
 * Process attributes: rlimits, cwd, umask, personality, comm, interval timers. (Session and
 * group are taken in cr/pstree.c; the root directory is applied last by the restore, after
 * every path is open.)
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "mounts.h"
#include "pid-ns.h"
#include "proc-dead.h"
#include "restorer/restorer.h"
#include "task.h"
#include "util.h"
#include "files/files.h"

#define NR_ITIMERS 3

/*
 * What only the task itself tells (another uid's limits need CAP_SYS_RESOURCE from outside;
 * prctl answers for the caller), asked in one list of injected syscalls: every rlimit, every
 * interval timer, two prctl values through a pointer, five returned.
 */
static const int by_pointer[2] = { PR_GET_PDEATHSIG, PR_GET_CHILD_SUBREAPER };
static const int returned[5] = { PR_GET_DUMPABLE, PR_GET_NO_NEW_PRIVS, PR_GET_THP_DISABLE,
				 PR_GET_TIMERSLACK, PR_GET_SECUREBITS };
enum {
	ASK_RLIMIT = 0,
	ASK_ITIMER = ASK_RLIMIT + RLIM_NLIMITS,
	ASK_BY_POINTER = ASK_ITIMER + NR_ITIMERS,
	ASK_RETURNED = ASK_BY_POINTER + 2,
	NR_ASKS = ASK_RETURNED + 5,
};
struct attr_answers {
	struct rlimit rlimits[RLIM_NLIMITS];
	struct itimerval itimers[NR_ITIMERS];
	int32_t by_pointer[2];
};

static int ask_attrs(struct dump_task *t, int64_t ret[NR_ASKS], struct attr_answers *a)
{
	struct inject_call calls[NR_ASKS];
	uint64_t at = t->inj.scratch;
	unsigned logged = log_errors();
	int err;

	for (int k = 0; k < RLIM_NLIMITS; k++)
		calls[ASK_RLIMIT + k] = (struct inject_call){
			SYS_prlimit64, { 0, k, 0, at + offsetof(struct attr_answers, rlimits[k]) } };
	for (int k = 0; k < NR_ITIMERS; k++)
		calls[ASK_ITIMER + k] = (struct inject_call){
			SYS_getitimer, { k, at + offsetof(struct attr_answers, itimers[k]) } };
	for (int k = 0; k < 2; k++)
		calls[ASK_BY_POINTER + k] = (struct inject_call){
			SYS_prctl, { by_pointer[k], at + offsetof(struct attr_answers, by_pointer[k]) } };
	for (size_t k = 0; k < ARRAY_SIZE(returned); k++)
		calls[ASK_RETURNED + k] = (struct inject_call){ SYS_prctl, { returned[k] } };
	if ((err = inject_syscalls(&t->inj, calls, NR_ASKS, ret, a, sizeof(*a))))
		return log_unnamed(logged, err, "dump pid %d: cannot run syscalls inside it", t->pid);
	for (int k = 0; k < NR_ASKS; k++) {
		bool failed = k < ASK_RETURNED ? ret[k] != 0 : ret[k] < 0;
		if (!failed)
			continue;
		err = inject_ret_err(ret[k]);
		if (k < ASK_ITIMER)
			pr_err("dump pid %d: cannot read rlimit %d: %s", t->pid, k - ASK_RLIMIT, strerror(-err));
		else if (k < ASK_BY_POINTER)
			pr_err("dump pid %d: cannot read interval timer %d: %s", t->pid, k - ASK_ITIMER,
			       strerror(-err));
		else
			pr_err("dump pid %d: cannot read prctl option %d: %s", t->pid,
			       k < ASK_RETURNED ? by_pointer[k - ASK_BY_POINTER] : returned[k - ASK_RETURNED],
			       strerror(-err));
		return err;
	}
	return 0;
}

static int dump_rlimits(struct dump_task *t, const struct attr_answers *a)
{
	TaskCore *c = t->core;

	if (!(c->rlimits = xzalloc(RLIM_NLIMITS * sizeof(*c->rlimits))))
		return -ENOMEM;
	for (int res = 0; res < RLIM_NLIMITS; res++) {
		struct rlimit lim = a->rlimits[res];
		RlimitEntry *e = xzalloc(sizeof(*e));
		if (!e)
			return -ENOMEM;
		rlimit_entry__init(e);
		e->resource = res;
		e->cur = lim.rlim_cur;
		e->max = lim.rlim_max;
		c->rlimits[c->n_rlimits++] = e;
	}
	return 0;
}

static int dump_itimers(struct dump_task *t, const struct attr_answers *a)
{
	TaskCore *c = t->core;

	if (!(c->itimers = xzalloc(NR_ITIMERS * sizeof(*c->itimers))))
		return -ENOMEM;
	for (int which = 0; which < NR_ITIMERS; which++) {
		struct itimerval it = a->itimers[which];
		ItimerEntry *e = xzalloc(sizeof(*e));
		if (!e)
			return -ENOMEM;
		itimer_entry__init(e);
		e->which = which;
		e->interval_us = it.it_interval.tv_sec * 1000000ull + it.it_interval.tv_usec;
		e->value_us = it.it_value.tv_sec * 1000000ull + it.it_value.tv_usec;
		c->itimers[c->n_itimers++] = e;
	}
	return 0;
}

static void dump_prctl_flags(struct dump_task *t, const int64_t ret[NR_ASKS],
			     const struct attr_answers *a)
{
	TaskCore *c = t->core;

	c->has_pdeath_signal = c->has_child_subreaper = true;
	c->pdeath_signal = a->by_pointer[0];
	c->child_subreaper = a->by_pointer[1];
	c->has_dumpable = c->has_no_new_privs = c->has_thp_disable = c->has_timer_slack_ns = true;
	c->dumpable = ret[ASK_RETURNED + 0];
	c->no_new_privs = ret[ASK_RETURNED + 1];
	c->thp_disable = ret[ASK_RETURNED + 2];
	c->timer_slack_ns = ret[ASK_RETURNED + 3];
	c->has_securebits = true; /* restored with the credentials (cr/creds.c) */
	c->securebits = ret[ASK_RETURNED + 4];
}

static int dump_attrs(struct dump_task *t)
{
	TaskCore *c = t->core;
	char buf[4096];
	auto_free char *comm = NULL, *pers = NULL;
	uint64_t umask_val;
	int err = 0;

	snprintf(buf, sizeof(buf), "/proc/%d/comm", t->tgid); /* the main thread's, exited too */
	if (!(comm = read_file_at(AT_FDCWD, buf, NULL)) && errno == ENOMEM)
		return -ENOMEM;
	snprintf(buf, sizeof(buf), "/proc/%d/personality", t->pid);
	if (!(pers = read_file_at(AT_FDCWD, buf, NULL)) && errno == ENOMEM)
		return -ENOMEM;
	if (!comm || !pers || (err = proc_status_field(t->pid, "Umask", 8, &umask_val))) {
		if (err == -ENOMEM)
			return err;
		pr_err("dump pid %d: cannot read comm, personality or umask", t->pid);
		return -ESRCH;
	}
	comm[strcspn(comm, "\n")] = 0;
	if (!(c->comm = xstrdup(comm)))
		return -ENOMEM;
	c->personality = strtoul(pers, NULL, 16);
	c->umask = umask_val;
	c->ppid = pid_ns_vpid(t->ctx, t->stat.ppid);
	c->pgid = pid_ns_vpid(t->ctx, t->stat.pgid);
	c->sid = pid_ns_vpid(t->ctx, t->stat.sid);
	if (proc_readlink(t->pid, "cwd", buf, sizeof(buf))) {
		pr_perror("dump pid %d: cannot read cwd", t->pid);
		return -errno;
	}
	char magic[64];
	snprintf(magic, sizeof(magic), "/proc/%d/cwd", t->pid);
	struct stat cwd_st;
	bool outer, have_st = !stat(magic, &cwd_st);
	int dead = have_st ? proc_dead_dump(t, "cwd", buf, magic, &cwd_st, &c->cwd, &outer) : 0;
	if (dead < 0)
		return dead;
	if (dead) { /* in /proc/D of a process reaped since */
		c->has_cwd_proc_dead_pid = c->has_cwd_proc_dead_outer = true;
		c->cwd_proc_dead_pid = dead;
		c->cwd_proc_dead_outer = outer;
	} else if (!(c->cwd = xstrdup(buf))) {
		return -ENOMEM;
	} else if (ghost_path(buf)) { /* removed while the process is in it */
		int id = ghost_note(t->ctx, magic, c->cwd, t->pid, "cwd", true);
		if (id < 0)
			return id;
		c->has_cwd_ghost_id = true;
		c->cwd_ghost_id = id;
	}
	if (proc_readlink(t->pid, "root", buf, sizeof(buf))) {
		pr_perror("dump pid %d: cannot read root", t->pid);
		return -errno;
	}
	if (!(c->root = xstrdup(buf)))
		return -ENOMEM;
	if (ghost_path(buf)) {
		pr_err("dump pid %d: its root directory %s was removed (not supported)", t->pid, buf);
		return -ENOTSUP;
	}
	struct statx sx;
	if (!dead && have_st && !c->has_cwd_ghost_id && !mount_task_path_holds(t->pid, c->root, c->cwd, &cwd_st) &&
	    (err = detached_mount_note(t, magic, c->cwd, &cwd_st,
				       statx(AT_FDCWD, magic, 0, STATX_MNT_ID, &sx) ? 0 : sx.stx_mnt_id, "cwd",
				       &c->cwd_detached_mount)) < 0)
		return err;
	c->has_cwd_detached_mount = err == 1;
	if (!dead && have_st && !c->has_cwd_ghost_id && !c->has_cwd_detached_mount &&
	    (err = mount_refuse_hidden(t->pid, c->root, c->cwd, &cwd_st, ": its working directory")))
		return err;
	int64_t ret[NR_ASKS];
	struct attr_answers answers;
	if ((err = ask_attrs(t, ret, &answers)) || (err = dump_rlimits(t, &answers)) ||
	    (err = dump_itimers(t, &answers)))
		return err;
	dump_prctl_flags(t, ret, &answers);
	/* a controlling terminal that is a pty of the tree's own (or the engine's: orphan_pts_master) */
	int index = pty_ctty_index(t->stat.tty_nr), kept = 0;
	if (index >= 0 && (kept = pty_kept(t, index, NULL)) < 0)
		return kept;
	if (kept) {
		c->has_ctty_pty = true;
		c->ctty_pty = index;
	}
	return 0;
}

static int validate_attrs(struct restore_task *t)
{
	TaskCore *c = t->core;

	if (c->dumpable > 2) {
		pr_err("image core-%d.img: dumpable %u is not 0, 1 or 2", t->pid, c->dumpable);
		return -EINVAL;
	}
	if (c->n_rlimits > RST_MAX_RLIMITS || c->n_itimers > NR_ITIMERS) {
		pr_err("image core-%d.img: %zu rlimits, %zu itimers: too many", t->pid, c->n_rlimits,
		       c->n_itimers);
		return -EINVAL;
	}
	for (size_t i = 0; i < c->n_rlimits; i++) {
		if (c->rlimits[i]->resource >= RLIM_NLIMITS) {
			pr_err("image core-%d.img: unknown rlimit %u", t->pid, c->rlimits[i]->resource);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < c->n_itimers; i++) {
		if (c->itimers[i]->which >= NR_ITIMERS) {
			pr_err("image core-%d.img: unknown interval timer %u", t->pid,
			       c->itimers[i]->which);
			return -EINVAL;
		}
	}
	if (!image_path_ok(c->cwd) || !image_path_ok(c->root)) {
		pr_err("image core-%d.img: cwd '%s' or root '%s' is not an absolute path free of '..'",
		       t->pid, c->cwd, c->root);
		return -EINVAL;
	}
	return 0;
}

/*
 * A periodic ITIMER_REAL that expired while the task was frozen reads as 0 left: the kernel
 * re-arms it only when its SIGALRM (saved as pending) is taken. Set with 0 left it would be
 * disarmed for good: it gets a whole interval instead.
 */
static void itimer_to_args(const ItimerEntry *e, struct rst_itimer *it)
{
	uint64_t value_us = e->value_us ? e->value_us : e->interval_us;

	it->interval.sec = e->interval_us / 1000000;
	it->interval.usec = e->interval_us % 1000000;
	it->value.sec = value_us / 1000000;
	it->value.usec = value_us % 1000000;
}

/* In the new task. */
static int restore_attrs(struct restore_task *t)
{
	TaskCore *c = t->core;
	struct restorer_args *a = t->args;

	umask(c->umask);
	if (personality(c->personality) < 0) {
		pr_perror("restore pid %d: cannot set personality %#x", t->pid, c->personality);
		return -errno;
	}
	if (prctl(PR_SET_NAME, c->comm, 0, 0, 0)) {
		pr_perror("restore pid %d: cannot set its name %s", t->pid, c->comm);
		return -errno;
	}
	/* (child_subreaper: taken back at the very end, cr/restore-finish.c) */
	if ((c->has_thp_disable && prctl(PR_SET_THP_DISABLE, c->thp_disable, 0, 0, 0)) ||
	    (c->has_timer_slack_ns && c->timer_slack_ns && prctl(PR_SET_TIMERSLACK, c->timer_slack_ns, 0, 0, 0))) {
		pr_perror("restore pid %d: cannot set THP disable %u or timer slack %llu ns", t->pid,
			  c->thp_disable, (unsigned long long)c->timer_slack_ns);
		return -errno;
	}
	/* set by the blob after the credentials (dumpable 2, as for setuid programs, is the kernel's) */
	a->dumpable = c->has_dumpable && c->dumpable <= 1 ? (int)c->dumpable : -1;
	/* by the blob once the threads exist: each has its own (cr/threads.c) */
	a->no_new_privs = c->no_new_privs;
	if (c->pdeath_signal > 64) {
		pr_err("image core-%d.img: parent-death signal %u is out of range", t->pid,
		       c->pdeath_signal);
		return -EINVAL;
	}
	/* Set last by the restorer. The root's parent was outside the tree: not for it. */
	a->pdeath_signal = t->is_root ? 0 : c->pdeath_signal;
	if (c->has_cwd_ghost_id) {
		int cwd = ghost_open(t->ctx, c->cwd_ghost_id, O_PATH | O_DIRECTORY);
		int err = cwd < 0 ? cwd : fchdir(cwd) ? -errno : 0;
		if (cwd >= 0)
			close(cwd);
		if (err)
			return err;
	} else if (c->has_cwd_detached_mount) {
		int cwd = detached_mount_open(t->ctx, c->cwd_detached_mount, c->cwd, O_PATH | O_DIRECTORY, t->pid, "cwd");
		int err = cwd < 0 ? cwd : fchdir(cwd) ? -errno : 0;
		if (cwd >= 0)
			close(cwd);
		if (err)
			return err;
	} else if (chdir(c->cwd)) {
		pr_perror("restore pid %d: cannot change to its working directory %s", t->pid, c->cwd);
		return -errno;
	}
	for (size_t i = 0; i < c->n_itimers; i++)
		itimer_to_args(c->itimers[i], &a->itimers[c->itimers[i]->which]);
	a->nr_rlimits = c->n_rlimits;
	for (size_t i = 0; i < c->n_rlimits; i++) {
		a->rlimits[i].resource = c->rlimits[i]->resource;
		a->rlimits[i].cur = c->rlimits[i]->cur;
		a->rlimits[i].max = c->rlimits[i]->max;
	}
	return 0;
}

const struct state_ops state_attrs = {
	.name = "process attributes",
	.dump = dump_attrs,
	.validate = validate_attrs,
	.restore = restore_attrs,
};
