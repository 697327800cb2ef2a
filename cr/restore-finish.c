/*
 * Restore, stasis's side once the tree exists: it serves each restorer (private memory filled
 * through the new task's userfaultfd) until all have reported, then, as tracer, catches every
 * thread in the blob's last wait, puts the pidfds of threads in place (sent through the sockets
 * standing for them), removes the blob, sets the saved registers and signal mask,
 * runs the kinds' finish steps, gives the threads their syscall user dispatch (last: it could
 * send stasis's own system calls in them to their handler), and lets the whole tree go at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files/files.h"
#include "lazy-pages.h"
#include "log.h"
#include "mm.h"
#include "net-sysctls.h"
#include "pid-ns.h"
#include "proc-dead.h"
#include "regs.h"
#include "restore.h"
#include "run.h"
#include "restorer/restorer.h"
#include "seccomp.h"
#include "seize.h"
#include "task.h"
#include "util.h"

static const char *const step_names[] = {
	[RST_STEP_UNMAP] = "unmapping the engine",
	[RST_STEP_MOVE_SPECIAL] = "moving the vDSO block",
	[RST_STEP_MAP_VMA] = "mapping a saved mapping",
	[RST_STEP_MADVISE] = "giving a mapping its madvise() flags",
	[RST_STEP_READ_PAGES] = "reading saved pages",
	[RST_STEP_UFFD] = "filling private pages through userfaultfd (detail: the address)",
	[RST_STEP_THREADS] = "making a thread or queueing its pending signals (detail: the thread id)",
	[RST_STEP_MPROTECT] = "setting mapping protection",
	[RST_STEP_MLOCK] = "locking a mapping in memory (mlock)",
	[RST_STEP_MM_MAP] = "setting mm fields (prctl PR_SET_MM_MAP)",
	[RST_STEP_RSEQ] = "registering rseq",
	[RST_STEP_ROBUST_LIST] = "setting the robust futex list",
	[RST_STEP_ALTSTACK] = "setting the alternate signal stack",
	[RST_STEP_ITIMER] = "setting interval timers",
	[RST_STEP_CREDS] = "taking on the saved credentials (detail: the step)",
	[RST_STEP_POSIX_TIMER] = "creating a POSIX timer (detail: its id)",
	[RST_STEP_CLOSE] = "closing helper fds",
	[RST_STEP_SECCOMP] = "installing a seccomp filter or strict mode (detail: the filter)",
	[RST_STEP_AIO] = "making an AIO context again (detail: its ring)",
	[RST_STEP_GUARD] = "installing guard pages (detail: the first)",
	[RST_STEP_PRCTL] = "setting a prctl control (detail: the option: 26 TSC, 65 memory-deny-write-execute, 4114 CPUID faulting)",
	[RST_STEP_POSIX_LOCK] = "taking a POSIX lock again after closing the helper fds (detail: the fd)",
	[RST_STEP_THREAD_TABLES] = "giving a thread its own fd table, cwd or umask (detail: the thread)",
	[RST_STEP_SEAL] = "sealing a mapping (mseal)",
	[RST_STEP_MEMPOLICY] = "setting a NUMA memory policy (detail: the mapping's start, or the thread)",
	[RST_STEP_THREAD_CGROUP] = "moving a thread into its own cgroup (detail: the thread)",
	[RST_STEP_RING_FDS] = "registering an io_uring instance with a thread again (IORING_REGISTER_RING_FDS; "
			      "detail: the index)",
	[RST_STEP_RING_BUFFERS] = "registering an io_uring instance's buffers again (IORING_REGISTER_BUFFERS; "
				  "detail: its fd)",
};

static void report_rlimits(pid_t pid, uint32_t refused)
{
	for (int res = 0; res < 32; res++)
		if (refused & (1u << res))
			pr_warn("restore pid %d: rlimit %d could not be set (kept the current one)", pid,
				res);
}

static int report_failure(const struct rst_status *st)
{
	if (st->msg[0]) {
		pr_err("%.*s", (int)sizeof(st->msg), st->msg);
	} else if (st->step == RST_STEP_THREADS && st->err == -EEXIST) {
		pr_err("restore pid %d: thread %llu cannot be made again: another process of the host took "
		       "that id after the restore found it free (a tree restored in a PID namespace of its "
		       "own has its ids to itself)", st->pid, (unsigned long long)st->detail);
	} else {
		const char *step = st->step > 0 && st->step < (int)ARRAY_SIZE(step_names) &&
						   step_names[st->step]
					   ? step_names[st->step]
					   : "?";
		pr_err("restore pid %d: restorer failed %s at %#llx: %s", st->pid, step,
		       (unsigned long long)st->detail, strerror(-st->err));
	}
	return -EIO;
}

/*
 * A process of the tree that is gone or a zombie before it reported: the restore failed.
 * Until the root went on from its namespaces (root_only) it is the tree's only process: one
 * with another pid of the tree then is a short-lived helper of the root's (a peer pid of a
 * unix socket, a pidfd's reaped process), a zombie for a moment.
 */
static int find_dead_task(struct restore_tree *rt, const bool *done, bool root_only)
{
	for (size_t i = 0; i < (root_only ? 1 : rt->nr_tasks); i++) {
		struct restore_task *t = &rt->tasks[i];
		struct proc_stat st;
		char state;
		int err;
		if (done[i])
			continue;
		/* a process not found was not made yet (its parent, alive, will make it or report),
		 * unless it was seen before: the root always was */
		if ((err = pid_ns_find_host(rt->ctx, rt, t, &state)) == -ENOMEM)
			return err;
		if (err) {
			if (!t->seen && i != 0)
				continue;
			state = 'X';
		}
		t->seen = true;
		if (state != 'Z' && state != 'X')
			continue;
		if (state == 'Z' && !proc_read_stat(t->host_pid, &st) && WIFSIGNALED(st.exit_code))
			pr_err("restore pid %d: the new process was killed by signal %d (%s) before "
			       "reporting", t->pid, WTERMSIG(st.exit_code), strsignal(WTERMSIG(st.exit_code)));
		else
			pr_err("restore pid %d: the new process died before reporting", t->pid);
		return -ESRCH;
	}
	return 0;
}

int restore_collect_reports(struct restore_tree *rt, int status_fd)
{
	auto_free bool *done = xzalloc(rt->nr_tasks * sizeof(bool));
	size_t nr_done = 0;
	bool root_only = true; /* till the root went on from its namespaces */

	if (!done)
		return -ENOMEM;
	while (nr_done < rt->nr_tasks) {
		struct pollfd pfd = { .fd = status_fd, .events = POLLIN };
		struct rst_status st;
		int err;

		if (poll(&pfd, 1, 200) == 0) {
			if ((err = find_dead_task(rt, done, root_only)))
				return err;
			continue;
		}
		if (read_all(status_fd, &st, sizeof(st)) != (ssize_t)sizeof(st)) {
			if ((err = find_dead_task(rt, done, root_only)))
				return err;
			pr_err("restore: the new processes' reports broke off (%zu of %zu reported)",
			       nr_done, rt->nr_tasks);
			return -EIO;
		}
		run_fault_count(rt->ctx, "restore-report");
		struct restore_task *t = pstree_task(rt, st.pid);
		if (!t) {
			pr_err("restore: a report from pid %d, which is not a process of the tree", st.pid);
			return -EIO;
		}
		size_t idx = t - rt->tasks;
		if (!st.ok)
			return report_failure(&st);
		if (st.step == RST_STEP_NAMESPACES) {
			if ((err = proc_dead_enter_pid_ns(rt->ctx, t->host_pid)) ||
			    (err = unix_take_from_root(rt->ctx, t->host_pid)) ||
			    (err = run_notify(rt->ctx, "setup-namespaces", t->host_pid, -1)) ||
			    (err = run_notify(rt->ctx, "post-setup-namespaces", t->host_pid, -1)) ||
			    (err = net_sysctls_after_engine(rt->ctx, t->host_pid)))
				return err;
			if (write(rt->ctl_peer_fds[idx], "y", 1) != 1)
				return -EIO;
			root_only = false;
			continue;
		}
		if (st.step == RST_STEP_SECCOMP_READY) {
			if ((err = seccomp_suspend_for_restore(rt, t)))
				return err;
			if (write(rt->ctl_peer_fds[idx], "y", 1) != 1)
				return -EIO;
			continue;
		}
		if (st.step == RST_STEP_PAGES_HANDOFF) {
			char state;
			if ((err = pid_ns_find_host(rt->ctx, rt, t, &state))) {
				if (err != -ENOMEM)
					pr_err("restore pid %d: its process is gone", t->pid);
				return err;
			}
			err = lazy_pages_on(rt->ctx) ? lazy_pages_hand_off(rt->ctx, t, st.uffd)
						     : pages_copy_by_uffd(t, t->host_pid, st.uffd);
			if (err)
				return err;
			t->pages_copied = true;
			if (write(rt->ctl_peer_fds[idx], "y", 1) != 1) {
				pr_perror("restore pid %d: cannot tell it its pages are in", t->pid);
				return -EIO;
			}
			continue;
		}
		/* the blob filled its private pages alone: their checksums, before it goes on */
		if (!t->pages_copied && (err = pages_verify_runs(t, true)))
			return err;
		t->region_start = st.region_start;
		t->region_len = st.region_len;
		report_rlimits(t->pid, st.rlimits_refused);
		done[idx] = true;
		nr_done++;
	}
	return 0;
}

/*
 * Attaches to a thread of the new task (unless stasis traces it already) and stops it in the
 * blob's final pause(). From here until the tree is let go, the death of stasis kills it
 * (PTRACE_O_EXITKILL): it never runs on with half its state.
 */
static int catch_in_pause(pid_t tid, bool traced, struct user_regs_struct *r)
{
	long options = PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL |
		       (traced ? PTRACE_O_SUSPEND_SECCOMP : 0); /* (seccomp.c traced it so) */
	int status, err = 0;

	if (!traced && ptrace(PTRACE_SEIZE, tid, 0, (void *)options)) {
		pr_perror("restore tid %d: cannot attach to the new task", tid);
		return -errno;
	}
	/* It reported before entering pause(): catch it there, not on the way. */
	for (int tries = 0;; tries++) {
		if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) || (err = task_wait_stop(tid, &status)) ||
		    ptrace(PTRACE_GETREGS, tid, 0, r)) {
			pr_err("restore tid %d: cannot stop the new task", tid);
			return err ? err : -errno;
		}
		if (r->orig_rax == SYS_pause)
			return traced && ptrace(PTRACE_SETOPTIONS, tid, 0, (void *)options) ? -errno : 0;
		if (tries > 1000 || ptrace(PTRACE_CONT, tid, 0, 0)) {
			pr_err("restore tid %d: the restorer did not reach its final wait", tid);
			return -EIO;
		}
		usleep(100);
	}
}

/*
 * Runs system call nr in a stopped thread of t through the blob's pause loop (r: as caught
 * there; rip is just past its syscall instruction). *ret: what it returned.
 */
static int pause_loop_syscall(const struct restore_task *t, pid_t tid, struct user_regs_struct r,
			      long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, long long *ret)
{
	int status = 0, err;

	r.rip -= 2;
	r.rax = nr;
	r.orig_rax = -1;
	r.rdi = a0;
	r.rsi = a1;
	r.rdx = a2;
	r.r10 = a3;
	if (ptrace(PTRACE_SETREGS, tid, 0, &r)) {
		pr_perror("restore pid %d: cannot set registers for system call %ld in the task", t->pid, nr);
		return -errno;
	}
	for (int step = 0; step < 2; step++) {
		if (ptrace(PTRACE_SYSCALL, tid, 0, 0) || (err = task_wait_stop(tid, &status)) ||
		    WSTOPSIG(status) != (SIGTRAP | 0x80)) {
			pr_err("restore pid %d: system call %ld in the task did not run (status 0x%x)",
			       t->pid, nr, status);
			return -EIO;
		}
	}
	if (ptrace(PTRACE_GETREGS, tid, 0, &r))
		return -errno;
	*ret = (long long)r.rax;
	return 0;
}

static int unmap_restorer_region(const struct restore_task *t, pid_t tid, struct user_regs_struct r)
{
	long long ret;
	int err = pause_loop_syscall(t, tid, r, SYS_munmap, t->region_start, t->region_len, 0, 0, &ret);

	if (!err && ret) {
		pr_err("restore pid %d: munmap of the restorer region returned %lld", t->pid, ret);
		return -EIO;
	}
	return err;
}

/*
 * A child subreaper takes its flag back only here, the whole tree made and every lift done:
 * set with its other attributes, it could take an orphan that a helper or zombie dying below
 * it later was to give to a parent above it (cr/pstree.c).
 */
static int take_subreaper_flag(const struct restore_task *t, pid_t tid, struct user_regs_struct r)
{
	long long ret;
	int err = pause_loop_syscall(t, tid, r, SYS_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, &ret);

	if (!err && ret) {
		pr_err("restore pid %d: cannot make it a child subreaper again: %s", t->pid,
		       strerror((int)-ret));
		return (int)ret;
	}
	return err;
}

static bool is_parent_of(const struct restore_tree *rt, const struct restore_task *t,
			 const struct restore_task *c)
{
	for (size_t i = 0; i < rt->inv->n_tree; i++)
		if (rt->inv->tree[i]->pid == (uint32_t)c->pid)
			return rt->inv->tree[i]->ppid == (uint32_t)t->pid;
	return false;
}

/*
 * Its children whose job control stop it had collected (cr/job-stop.c), stopped again and let
 * go already: it collects each stop again (wait4 WUNTRACED), so that it is not reported twice.
 */
static int collect_child_stops(const struct restore_tree *rt, const struct restore_task *t,
			       pid_t tid, struct user_regs_struct r)
{
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const struct restore_task *c = &rt->tasks[i];
		long long ret;
		int err;

		if (!job_stop_signal(c->core) || !c->core->stop_collected || !is_parent_of(rt, t, c))
			continue;
		if ((err = pause_loop_syscall(t, tid, r, SYS_wait4, c->pid, 0, WUNTRACED | __WALL | WNOHANG, 0, &ret)))
			return err;
		if (ret != c->pid) {
			pr_err("restore pid %d: collecting the stop of its child %d again returned %lld", t->pid,
			       c->pid, ret);
			return -EIO;
		}
	}
	return 0;
}

/*
 * Its children let go into their stops notified it with a SIGCHLD the saved process never
 * got (it had had that of the original stop, or its parent collected the stop): unless one
 * was pending at the dump (the new one then merged into it), that SIGCHLD is taken from its
 * pending set (rt_sigtimedwait, no wait, its arguments on the blob's stack).
 */
static int drop_stop_notification(const struct restore_tree *rt, const struct restore_task *t,
				  pid_t tid, struct user_regs_struct r)
{
	bool stopped_child = false;

	for (size_t i = 0; i < rt->nr_tasks && !stopped_child; i++)
		stopped_child = job_stop_signal(rt->tasks[i].core) && is_parent_of(rt, t, &rt->tasks[i]);
	int extra = stopped_child ? job_stop_extra_sigchld(t->core, t->host_pid, t->pid) : 0;
	if (extra <= 0)
		return extra;
	uint64_t set = 1ull << (SIGCHLD - 1), at = (r.rsp - 256) & ~15ull; /* below the blob's stack top */
	uint64_t words[3] = { set, 0, 0 }; /* the set, then struct timespec { 0, 0 } */
	for (int i = 0; i < 3; i++)
		if (ptrace(PTRACE_POKEDATA, tid, at + 8 * i, words[i])) {
			pr_perror("restore pid %d: cannot write the arguments of rt_sigtimedwait", t->pid);
			return -errno;
		}
	long long ret;
	int err = pause_loop_syscall(t, tid, r, SYS_rt_sigtimedwait, at, 0, at + 8, 8, &ret);
	if (!err && ret != SIGCHLD) {
		pr_err("restore pid %d: taking back the SIGCHLD of its children's stops returned %lld", t->pid, ret);
		return -EIO;
	}
	return err;
}

/*
 * A pidfd of a thread (cr/files/pidfd.c) at fd of thread tid of t (r as caught in the pause
 * loop), now that every thread exists: stasis sends it through the socket standing at fd,
 * and the thread receives it and puts it at fd in the socket's place.
 */
static int put_thread_pidfd(const struct restore_task *t, pid_t tid, struct user_regs_struct r,
			    uint32_t fd, bool cloexec, const struct thread_pidfd_use *use)
{
	/* a struct msghdr, its iovec, room for one SCM_RIGHTS fd, the byte: below the blob's stack top */
	uint64_t at = (r.rsp - 512) & ~15ull, iov = at + 56, control = iov + 16, byte = control + 24;
	uint64_t words[] = { 0, 0, iov, 1, control, 24, 0, byte, 1, 0, 0, 0, 0 };
	long long ret;
	int err;

	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (ptrace(PTRACE_POKEDATA, tid, at + 8 * i, words[i])) {
			pr_perror("restore pid %d fd %u: cannot write the arguments of recvmsg", t->pid, fd);
			return -errno;
		}
	if ((err = send_with_fd(use->channel, "p", 1, use->file))) {
		pr_err("restore pid %d fd %u: cannot send it its pidfd: %s", t->pid, fd, strerror(-err));
		return err;
	}
	if ((err = pause_loop_syscall(t, tid, r, SYS_recvmsg, fd, at, MSG_CMSG_CLOEXEC, 0, &ret)))
		return err;
	/* struct cmsghdr: its length, then SOL_SOCKET and SCM_RIGHTS (ints), then the fd */
	long level_type = ptrace(PTRACE_PEEKDATA, tid, control + 8, 0);
	int got = (int)(ptrace(PTRACE_PEEKDATA, tid, control + 16, 0) & 0xffffffff);
	if (ret != 1 || level_type != ((long)SCM_RIGHTS << 32 | SOL_SOCKET)) {
		pr_err("restore pid %d fd %u: receiving its pidfd returned %lld", t->pid, fd, ret);
		return -EIO;
	}
	if ((err = pause_loop_syscall(t, tid, r, SYS_dup3, got, fd, cloexec ? O_CLOEXEC : 0, 0, &ret)))
		return err;
	if (ret != fd) {
		pr_err("restore pid %d fd %u: cannot put its pidfd there: dup3 returned %lld", t->pid, fd, ret);
		return -EIO;
	}
	return pause_loop_syscall(t, tid, r, SYS_close, got, 0, 0, 0, &ret);
}

/* Every pidfd of a thread in t's table (thread tc: in its own table, if it has one). */
static int put_thread_pidfds(struct restore_tree *rt, const struct restore_task *t, const ThreadCore *tc,
			     pid_t tid, struct user_regs_struct r)
{
	size_t n = tc ? tc->n_own_fds : t->fds->n_fds;
	struct thread_pidfd_use use;
	int found;

	for (size_t i = 0; i < n; i++) {
		uint32_t fd = tc ? tc->own_fds[i]->fd : t->fds->fds[i]->fd;
		bool cloexec = tc ? tc->own_fds[i]->cloexec : t->fds->fds[i]->cloexec;
		if ((found = pidfd_thread_at(rt, t, tc ? tc->own_fds[i]->of : fd, &use)) < 0 ||
		    (found && (found = put_thread_pidfd(t, tid, r, fd, cloexec, &use))))
			return found;
	}
	return 0;
}

static int set_final_thread_state(pid_t tid, const GpRegs *regs, const ProtobufCBinaryData *xsave,
				  uint64_t mask)
{
	int err = regs_apply(tid, regs, xsave);

	if (err)
		return err;
	if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(mask), &mask)) {
		pr_perror("restore tid %d: cannot set the blocked signal mask", tid);
		return -errno;
	}
	return 0;
}

/* Every kind's ready (or finish) step for t, in table order. */
static int run_state_steps(struct restore_task *t, bool ready)
{
	for (unsigned i = 0; i < state_table_len; i++) {
		int (*step)(struct restore_task *) = ready ? state_table[i]->ready : state_table[i]->finish;
		unsigned logged = log_errors();
		int err;
		if (step && (err = step(t)))
			return log_unnamed(logged, err, "restore pid %d: %s", t->pid, state_table[i]->name);
	}
	return 0;
}

int restore_ready_tree(struct restore_tree *rt)
{
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++)
		if ((err = run_state_steps(&rt->tasks[i], true)))
			return err;
	return 0;
}

static int run_finish_steps(struct restore_task *t)
{
	if (t == &t->tree[t->tree_size - 1] && run_fault(t->ctx, "restore-finish")) {
		pr_err("restore pid %d: injected failure restore-finish", t->pid);
		return -EIO;
	}
	return run_state_steps(t, false);
}

#define LEADER_EXIT_WAIT_MS 5000

/*
 * Its main thread had exited: it exits again (SYS_exit from the blob's pause loop, r as caught
 * there), let go for that alone; the process lives on in its other threads, still held.
 */
static int exit_main_thread(const struct restore_task *t, struct user_regs_struct r)
{
	r.rip -= 2;
	r.rax = SYS_exit;
	r.orig_rax = -1;
	r.rdi = t->leader_exit_code;
	if (ptrace(PTRACE_SETREGS, t->host_pid, 0, &r) || ptrace(PTRACE_DETACH, t->host_pid, 0, 0)) {
		pr_perror("restore pid %d: cannot let its main thread exit again", t->pid);
		return -errno;
	}
	for (int ms = 0; ms < LEADER_EXIT_WAIT_MS; ms++) {
		struct proc_stat st;
		int err = proc_read_stat(t->host_pid, &st);
		if (err == -ENOMEM)
			return err;
		if (!err && st.state == 'Z')
			return 0;
		usleep(1000);
	}
	pr_err("restore pid %d: its main thread did not exit within %d ms", t->pid, LEADER_EXIT_WAIT_MS);
	return -ETIMEDOUT;
}

static int prepare_finish(struct restore_tree *rt, struct restore_task *t)
{
	struct user_regs_struct r, main_r, first_r;
	TaskCore *c = t->core;
	unsigned logged = log_errors();
	char state;
	int err;

	if ((err = pid_ns_find_host(rt->ctx, rt, t, &state)) || (err = pid_ns_host_tids(rt->ctx, t)))
		return log_unnamed(logged, err, "restore pid %d: cannot find its process or threads on the host",
				   t->pid);
	for (size_t i = 0; i < c->n_threads; i++) {
		if ((err = catch_in_pause(t->host_tids[i], t->traced, &r)) ||
		    (c->threads[i]->own_fd_table &&
		     (err = put_thread_pidfds(rt, t, c->threads[i], t->host_tids[i], r))))
			return err;
		if (i == 0)
			first_r = r;
	}
	if ((err = catch_in_pause(t->host_pid, t->traced, &main_r)))
		return err;
	/* the process's system calls run in its main thread, or, that one exiting, its first other */
	pid_t via = t->leader_exited ? t->host_tids[0] : t->host_pid;
	r = t->leader_exited ? first_r : main_r;
	/* (its main thread, even one to exit again, holds the process's fd table) */
	if ((err = collect_child_stops(rt, t, via, r)) || (err = drop_stop_notification(rt, t, via, r)) ||
	    (err = put_thread_pidfds(rt, t, NULL, t->host_pid, main_r)))
		return err;
	/* the finish steps may read its main thread's /proc files: before it exits */
	if (t->leader_exited &&
	    ((err = run_finish_steps(t)) || (err = exit_main_thread(t, main_r))))
		return err;
	if ((c->child_subreaper && (err = take_subreaper_flag(t, via, r))) ||
	    (err = unmap_restorer_region(t, via, r)))
		return err;
	for (size_t i = 0; i < c->n_threads; i++) {
		ThreadCore *tc = c->threads[i];
		if ((err = set_final_thread_state(t->host_tids[i], tc->regs, &tc->xsave, tc->sigmask)))
			return err;
	}
	if (!t->leader_exited &&
	    ((err = set_final_thread_state(t->host_pid, c->regs, &c->xsave, c->sigmask)) ||
	     (err = run_finish_steps(t))))
		return err;
	return kernel_task_dispatch_restore(t); /* last: no system call of stasis's runs in it after */
}

static int release_task(struct restore_task *t)
{
	int err;

	for (size_t i = 0; i < t->core->n_threads; i++)
		if ((err = task_release(t->host_tids[i], 0)))
			return err;
	return t->leader_exited ? 0 : task_release(t->host_pid, 0); /* (it exited, let go already) */
}

/* Its main thread (all: every thread of t) in group stop (state T), within about a second?
 * 1: yes, 0: no, -ENOMEM. (Its main thread exited: its first other thread stands for it.) */
static int wait_group_stop(const struct restore_task *t, bool all)
{
	size_t first = t->leader_exited, n = all ? t->core->n_threads + 1 : first + 1;

	for (int tries = 0; tries < 1000; tries++) {
		struct proc_stat st;
		size_t stopped = 0;

		for (size_t i = first; i < n; i++) {
			int err = proc_read_stat(i ? t->host_tids[i - 1] : t->host_pid, &st);
			if (err == -ENOMEM)
				return err;
			stopped += !err && st.state == 'T';
		}
		if (stopped == n - first)
			return 1;
		usleep(1000);
	}
	return 0;
}

/*
 * Lets a stopped process go into its group stop with its own signal: the main thread first
 * (it sends itself the signal on its way out of the syscall stop), the other threads join that
 * stop once let go. A terminal stop signal is dropped in a process group that is orphaned
 * (the root's, when its new parent is not in its session, or one whose parent outside the
 * tree is gone): such a process stops with SIGSTOP instead, said.
 */
static int release_stopped_task(struct restore_task *t)
{
	int sig = job_stop_signal(t->core), err;

	if (sig != SIGSTOP) {
		int orphaned = job_stop_group_orphaned(t->host_pid);
		if (orphaned < 0)
			return orphaned == -ENOMEM ? orphaned : -ESRCH;
		if (orphaned) {
			pr_warn("restore pid %d: its process group is orphaned now: stopped by SIGSTOP, not by "
				"signal %d (the kernel drops that one)", t->pid, sig);
			sig = SIGSTOP;
		}
	}
	if ((err = task_release(t->leader_exited ? t->host_tids[0] : t->host_pid, sig)))
		return err;
	int stopped = wait_group_stop(t, false);
	if (stopped < 0)
		return stopped;
	if (!stopped && sig != SIGSTOP) { /* (only the main thread is let go yet) */
		pr_warn("restore pid %d: did not stop with signal %d; stopped by SIGSTOP instead", t->pid, sig);
		kill(t->host_pid, SIGSTOP);
	}
	for (size_t i = t->leader_exited; i < t->core->n_threads; i++)
		if ((err = task_release(t->host_tids[i], 0)))
			return err;
	if ((stopped = wait_group_stop(t, true)) <= 0) {
		if (!stopped)
			pr_err("restore pid %d: did not stop with signal %d", t->pid, sig);
		return stopped ? stopped : -EIO;
	}
	return 0;
}

/* Its threads' death no longer follows stasis's: if stasis dies now, they go on as they are. */
static int stop_exitkill(struct restore_task *t)
{
	long options = PTRACE_O_TRACESYSGOOD | (t->traced ? PTRACE_O_SUSPEND_SECCOMP : 0);

	for (size_t i = 0; i < t->core->n_threads + !t->leader_exited; i++) {
		pid_t tid = i < t->core->n_threads ? t->host_tids[i] : t->host_pid;
		if (ptrace(PTRACE_SETOPTIONS, tid, 0, (void *)options)) {
			pr_perror("restore pid %d: thread %d", t->pid, tid);
			return -errno;
		}
	}
	return 0;
}

/*
 * Stopped processes first, children before parents: each is let go into its stop before its
 * parent, which may collect that stop again, is finished (until the watchdog is told "done",
 * it kills them too if stasis dies). Then the others, ready to go on but still held.
 */
int restore_finish_tree(struct restore_tree *rt)
{
	int err;

	for (size_t i = rt->nr_tasks; i-- > 0;) {
		if (!job_stop_signal(rt->tasks[i].core))
			continue;
		if ((err = prepare_finish(rt, &rt->tasks[i])) || (err = release_stopped_task(&rt->tasks[i])))
			return err;
		run_fault_count(rt->ctx, "restore-prepared");
	}
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		if (job_stop_signal(rt->tasks[i].core))
			continue;
		if ((err = prepare_finish(rt, &rt->tasks[i])))
			return err;
		run_fault_count(rt->ctx, "restore-prepared");
	}
	/*
	 * Every process is ready to go on. Children first, the root last: while the root still
	 * dies with stasis, so does the rest (the watchdog sees to those already set free).
	 */
	for (size_t i = rt->nr_tasks; i-- > 0;) {
		if (job_stop_signal(rt->tasks[i].core))
			continue;
		if ((err = stop_exitkill(&rt->tasks[i])))
			return err;
		run_fault_count(rt->ctx, "restore-exitkill-off");
	}
	return 0;
}

int restore_release_tree(struct restore_tree *rt)
{
	int err;

	for (size_t i = rt->nr_tasks; i-- > 0;) {
		if (job_stop_signal(rt->tasks[i].core))
			continue; /* let go into its stop already */
		if ((err = release_task(&rt->tasks[i])))
			return err;
		run_fault_count(rt->ctx, "restore-released");
	}
	inherited_tty_resized(rt);
	return 0;
}
