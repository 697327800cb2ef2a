/*
 * Restore: read and check every image first; then create the task with its old PID
 * (clone3 + set_tid). Inside it each kind of state restores itself, and the restorer blob
 * rebuilds the address space. Finally this process, as tracer, removes the blob and sets the
 * saved registers and signal mask. If anything fails the new task is killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include "compat/kernel-abi.h"
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mm.h"
#include "options.h"
#include "regs.h"
#include "restorer/restorer.h"
#include "sched-attrs.h"
#include "seize.h"
#include "task.h"
#include "pstree.h"
#include "shmem.h"
#include "files/files.h"
#include "ipc-ns.h"
#include "threads.h"
#include "util.h"

#define TASK_TOP 0x7ffffffff000ULL
#define REGION_SEARCH_FROM (1ULL << 30)
#define RSEQ_SIG_GLIBC 0x53053053
#define RSEQ_FLAG_UNREGISTER 1

extern const char restorer_blob_start[], restorer_blob_end[];
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

static struct rst_status *child_status;
static int child_status_fd = -1;

/* ---- in the new task ---- */

static __attribute__((noreturn, format(printf, 2, 3))) void child_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(child_status->msg, sizeof(child_status->msg), fmt, ap);
	va_end(ap);
	child_status->ok = 0;
	child_status->err = err;
	if (write(child_status_fd, child_status, sizeof(*child_status)) < 0)
		_exit(3);
	_exit(2);
}

int restore_move_high(struct restore_task *t, int fd)
{
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, t->next_high_fd);

	if (nfd < 0)
		return -errno;
	close(fd);
	t->next_high_fd = nfd + 1;
	return nfd;
}

int restore_open_high(struct restore_task *t, const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? -errno : restore_move_high(t, fd);
}

static int highest_open_fd(void)
{
	auto_free int *fds = NULL;
	size_t n;

	if (proc_list_numbers(getpid(), "fd", &fds, &n) || !n)
		return 1024; /* cannot tell: stay well above stdio and the usual few */
	return fds[n - 1];
}

/* glibc registered rseq in this thread; its area goes away with our memory. */
static void unregister_own_rseq(void)
{
	if (!&__rseq_offset || !&__rseq_size || !__rseq_size)
		return;
	char *area = (char *)__builtin_thread_pointer() + __rseq_offset;
	if (syscall(SYS_rseq, area, __rseq_size, RSEQ_FLAG_UNREGISTER, RSEQ_SIG_GLIBC))
		syscall(SYS_rseq, area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG_GLIBC);
}

static uint64_t find_region(const struct restore_task *t, uint64_t len)
{
	struct proc_vmas own;
	uint64_t addr = REGION_SEARCH_FROM;
	bool moved;

	if (proc_read_vmas(getpid(), &own))
		return 0;
	do {
		moved = false;
		for (size_t i = 0; i < t->mm->n_vmas; i++)
			if (addr < t->mm->vmas[i]->end && addr + len > t->mm->vmas[i]->start) {
				addr = PAGE_ALIGN(t->mm->vmas[i]->end);
				moved = true;
			}
		for (size_t i = 0; i < own.n; i++)
			if (addr < own.v[i].end && addr + len > own.v[i].start) {
				addr = PAGE_ALIGN(own.v[i].end);
				moved = true;
			}
	} while (moved && addr + len < TASK_TOP);
	proc_vmas_free(&own);
	return addr + len < TASK_TOP ? addr : 0;
}

static __attribute__((noreturn)) void restore_child(struct restore_task *t, int status_fd, int ctl_fd)
{
	size_t blob_len = PAGE_ALIGN(restorer_blob_end - restorer_blob_start);
	size_t nr_thread_signals = threads_signal_count(t->core);
	size_t args_len = PAGE_ALIGN(sizeof(struct restorer_args) +
				     t->mm->n_vmas * sizeof(struct rst_vma) +
				     t->pagemap->n_runs * sizeof(struct rst_run) +
				     t->core->n_threads * sizeof(struct rst_thread) +
				     nr_thread_signals * sizeof(struct rst_thread_signal) +
				     t->core->n_posix_timers * sizeof(struct rst_posix_timer));
	size_t stacks_len = RST_STACK_SIZE + t->core->n_threads * RST_THREAD_STACK;
	size_t region_len = blob_len + args_len + stacks_len + RST_WINDOW_SIZE + PARK_AREA_SIZE;
	static struct rst_status early_status;
	struct restorer_args *a;
	uint64_t region;
	int err;

	child_status = &early_status;
	child_status_fd = status_fd;
	early_status.pid = t->pid;

	region = find_region(t, region_len);
	if (!region || mmap((void *)region, region_len, PROT_READ | PROT_WRITE | PROT_EXEC,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != (void *)region)
		child_fail(-ENOMEM, "no room for the restorer region (%zu bytes)", region_len);
	memcpy((void *)region, restorer_blob_start, restorer_blob_end - restorer_blob_start);
	a = (struct restorer_args *)(region + blob_len);
	a->region_start = region;
	a->region_len = region_len;
	a->vmas_off = sizeof(*a);
	a->runs_off = a->vmas_off + t->mm->n_vmas * sizeof(struct rst_vma);
	a->threads_off = a->runs_off + t->pagemap->n_runs * sizeof(struct rst_run);
	a->thread_signals_off = a->threads_off + t->core->n_threads * sizeof(struct rst_thread);
	a->posix_timers_off = a->thread_signals_off + nr_thread_signals * sizeof(struct rst_thread_signal);
	t->thread_stacks = region + blob_len + args_len + RST_STACK_SIZE;
	t->args = a;
	t->region_start = region;
	t->region_len = region_len;
	t->park_base = region + region_len - PARK_AREA_SIZE;
	a->window = t->park_base - RST_WINDOW_SIZE;

	/* Helper fds (images, mapped files) live above every fd number the task will use. */
	int high = highest_open_fd();
	if (high >= t->next_high_fd)
		t->next_high_fd = high + 1;
	a->close_from = t->next_high_fd;
	if ((a->status_fd = restore_move_high(t, status_fd)) < 0)
		child_fail(-EBADF, "cannot move the status fd above %d", a->close_from);
	child_status_fd = a->status_fd;
	if ((a->ctl_fd = restore_move_high(t, ctl_fd)) < 0 ||
	    (t->pages_fd = restore_move_high(t, t->pages_fd)) < 0 ||
	    (t->dirfd = restore_move_high(t, dup(t->dirfd))) < 0) /* for ancestors' pages */
		child_fail(-EBADF, "cannot move helper fds above %d", a->close_from);
	child_status_fd = a->status_fd;
	child_status = &a->status;
	a->status.pid = t->pid;

	for (unsigned i = 0; i < state_table_len; i++) {
		if (!state_table[i]->restore)
			continue;
		if ((err = state_table[i]->restore(t)))
			child_fail(err, "restore pid %d: %s: %s", t->pid, state_table[i]->name,
				   strerror(-err));
	}
	if (strcmp(t->core->root, "/") && chroot(t->core->root))
		child_fail(-errno, "restore pid %d: chroot %s: %m", t->pid, t->core->root);
	a->close_to = t->next_high_fd - 1;
	unregister_own_rseq();

	uint64_t stack_top = region + blob_len + args_len + RST_STACK_SIZE;
	__asm__ volatile("mov %0, %%rsp\n\t"
			 "mov %1, %%rdi\n\t"
			 "jmp *%2\n\t"
			 :
			 : "r"(stack_top), "r"(a), "r"(region)
			 : "memory");
	__builtin_unreachable();
}

/* ---- in stasis ---- */

static const char *const step_names[] = {
	[RST_STEP_UNMAP] = "unmapping the engine",
	[RST_STEP_MOVE_SPECIAL] = "moving the vDSO block",
	[RST_STEP_MAP_VMA] = "mapping a saved mapping",
	[RST_STEP_MADVISE] = "giving a mapping its madvise() flags",
	[RST_STEP_READ_PAGES] = "reading saved pages",
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
};

static int read_task_images(struct restore_task *t)
{
	int err;

	if ((err = image_read(t->dirfd, IMG_CORE, t->pid, (ProtobufCMessage **)&t->core)) ||
	    (err = image_read(t->dirfd, IMG_MM, t->pid, (ProtobufCMessage **)&t->mm)) ||
	    (err = image_read(t->dirfd, IMG_PAGEMAP, t->pid, (ProtobufCMessage **)&t->pagemap)) ||
	    (err = image_read(t->dirfd, IMG_FDS, t->pid, (ProtobufCMessage **)&t->fds)))
		return err;
	if (t->core->pid != (uint32_t)t->pid) {
		pr_err("image core-%d.img: holds pid %u", t->pid, t->core->pid);
		return -EINVAL;
	}
	for (unsigned i = 0; i < state_table_len; i++)
		if (state_table[i]->validate && (err = state_table[i]->validate(t)))
			return err;
	return 0;
}

static int read_inventory(int dirfd, Inventory **inv)
{
	struct utsname u;
	int err = image_read(dirfd, IMG_INVENTORY, 0, (ProtobufCMessage **)inv);

	if (err)
		return err;
	if ((*inv)->page_size != PAGE_SIZE || (*inv)->n_pids < 1 || (*inv)->n_pids > 65536 ||
	    (*inv)->pids[0] != (*inv)->root_pid || (*inv)->root_pid < 1 || (*inv)->n_tree < 1 ||
	    (*inv)->tree[0]->pid != (*inv)->root_pid) {
		pr_err("image inventory.img: unsupported content (page size %u, %zu processes)",
		       (*inv)->page_size, (*inv)->n_pids);
		return -EINVAL;
	}
	uname(&u);
	if (strcmp(u.release, (*inv)->kernel_release))
		pr_warn("images were made on kernel %s, this is %s", (*inv)->kernel_release,
			u.release);
	return 0;
}

/* A pid number also stays taken while it is the session or group id of a running process. */
static int check_ids_unused(const Inventory *inv)
{
	auto_free int *pids = NULL;
	size_t n;

	if (proc_list_pids(&pids, &n))
		return 0; /* cannot tell: clone3 will */
	for (size_t i = 0; i < n; i++) {
		struct proc_stat st;
		if (proc_read_stat(pids[i], &st))
			continue;
		for (size_t k = 0; k < inv->n_tree; k++) {
			uint32_t id = inv->tree[k]->pid;
			if ((uint32_t)st.sid == id || (uint32_t)st.pgid == id) {
				pr_err("restore pid %u: that pid is still the %s id of running process %d; "
				       "nothing was started",
				       id, (uint32_t)st.sid == id ? "session" : "group", pids[i]);
				return -EEXIST;
			}
		}
	}
	return 0;
}

/*
 * Every pid of the tree must be free. A pid still held by a zombie of the dumped tree frees
 * up once its parent (or init, for killed trees) reaps it: wait for that, up to 5 s in all.
 */
static int check_pids_free(const Inventory *inv)
{
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + 5000000000ull;

	for (size_t i = 0; i < inv->n_tree; i++) {
		pid_t pid = inv->tree[i]->pid;
		char path[32];
		struct proc_stat st;

		snprintf(path, sizeof(path), "/proc/%d", pid);
		while (access(path, F_OK) == 0 && now_ns(CLOCK_MONOTONIC) < deadline &&
		       proc_read_stat(pid, &st) == 0 && st.state == 'Z')
			usleep(10000);
		if (access(path, F_OK) == 0) {
			pr_err("restore pid %d: that pid is taken by a running process; nothing was "
			       "started",
			       pid);
			return -EEXIST;
		}
	}
	return check_ids_unused(inv);
}

static void raise_nofile_limit(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &r))
			pr_warn("cannot raise the open files limit: %m");
	}
}

/* Attaches to a thread of the new task and stops it in the blob's final pause(). */
static int catch_in_pause(pid_t tid, struct user_regs_struct *r)
{
	int status, err = 0;

	if (ptrace(PTRACE_SEIZE, tid, 0, (void *)PTRACE_O_TRACESYSGOOD)) {
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
			return 0;
		if (tries > 1000 || ptrace(PTRACE_CONT, tid, 0, 0)) {
			pr_err("restore tid %d: the restorer did not reach its final wait", tid);
			return -EIO;
		}
		usleep(100);
	}
}

/* Runs munmap of the restorer region in the stopped main thread, through the blob's syscall. */
static int unmap_restorer_region(const struct restore_task *t, struct user_regs_struct r)
{
	int status, err;

	/* rip is just past the syscall instruction of the pause loop: reuse it for munmap. */
	r.rip -= 2;
	r.rax = SYS_munmap;
	r.orig_rax = -1;
	r.rdi = t->region_start;
	r.rsi = t->region_len;
	if (ptrace(PTRACE_SETREGS, t->pid, 0, &r))
		return -errno;
	for (int step = 0; step < 2; step++) {
		if (ptrace(PTRACE_SYSCALL, t->pid, 0, 0) || (err = task_wait_stop(t->pid, &status)) ||
		    WSTOPSIG(status) != (SIGTRAP | 0x80)) {
			pr_err("restore pid %d: removing the restorer region failed (status 0x%x)",
			       t->pid, status);
			return -EIO;
		}
	}
	if (ptrace(PTRACE_GETREGS, t->pid, 0, &r) || r.rax) {
		pr_err("restore pid %d: munmap of the restorer region returned %lld", t->pid,
		       (long long)r.rax);
		return -EIO;
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

static void write_pidfile(pid_t pid)
{
	FILE *f;

	if (!opts.pidfile)
		return;
	f = fopen(opts.pidfile, "w");
	if (!f || fprintf(f, "%d", pid) < 0)
		pr_perror("cannot write pidfile %s", opts.pidfile);
	if (f)
		fclose(f);
}

/* In a new process of the tree, from clone3: its links first, then its own state. */
static __attribute__((noreturn)) void restore_process(struct restore_tree *rt, struct restore_task *t)
{
	static struct rst_status early_status;
	size_t idx = t - rt->tasks;
	uint64_t all = ~0ull;
	int err;

	/* the raw call: glibc's sigprocmask leaves its own signals (32, 33) open */
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, sizeof(all));
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* if its parent dies mid-restore, so does it */
	child_status = &early_status;
	child_status_fd = rt->status_fd;
	early_status.pid = t->pid;
	if ((err = pstree_restore_links(rt, t, restore_process)))
		child_fail(err, "restore pid %d: cannot recreate its session, group or children: %s",
			   t->pid, strerror(-err));
	if (idx == rt->nr_tasks - 1 && rt->nr_tasks > 1 && fault_injected("restore-child"))
		child_fail(-EIO, "restore pid %d: injected failure restore-child", t->pid);
	/* Its children have taken their own control pipes with them. */
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		close(rt->ctl_peer_fds[i]);
		if (i != idx)
			close(rt->ctl_fds[i]);
	}
	restore_child(t, rt->status_fd, rt->ctl_fds[idx]);
}

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
		pr_err("%s", st->msg);
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

/* A process of the tree that is gone or a zombie before it reported: the restore failed. */
static int find_dead_task(const struct restore_tree *rt, const bool *done)
{
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		struct proc_stat st;
		if (done[i])
			continue;
		if (proc_read_stat(rt->tasks[i].pid, &st) || st.state == 'Z') {
			if (st.state == 'Z' && WIFSIGNALED(st.exit_code))
				pr_err("restore pid %d: the new process was killed by signal %d (%s) before "
				       "reporting", rt->tasks[i].pid, WTERMSIG(st.exit_code),
				       strsignal(WTERMSIG(st.exit_code)));
			else
				pr_err("restore pid %d: the new process died before reporting", rt->tasks[i].pid);
			return -ESRCH;
		}
	}
	return 0;
}

/* Serves every process's restorer until each one has reported that it is done. */
static int collect_reports(struct restore_tree *rt, int status_fd)
{
	auto_free bool *done = xzalloc(rt->nr_tasks * sizeof(bool));
	size_t nr_done = 0;

	while (nr_done < rt->nr_tasks) {
		struct pollfd pfd = { .fd = status_fd, .events = POLLIN };
		struct rst_status st;
		int err;

		if (poll(&pfd, 1, 200) == 0) {
			if ((err = find_dead_task(rt, done)))
				return err;
			continue;
		}
		if (read_all(status_fd, &st, sizeof(st)) != (ssize_t)sizeof(st))
			return find_dead_task(rt, done) ?: -EIO;
		struct restore_task *t = pstree_task(rt, st.pid);
		if (!t)
			return -EIO;
		size_t idx = t - rt->tasks;
		if (!st.ok)
			return report_failure(&st);
		if (st.step == RST_STEP_PAGES_HANDOFF) {
			if ((err = pages_copy_by_uffd(t, t->pid, st.uffd)))
				return err;
			if (write(rt->ctl_peer_fds[idx], "y", 1) != 1)
				return -EIO;
			continue;
		}
		t->region_start = st.region_start;
		t->region_len = st.region_len;
		report_rlimits(t->pid, st.rlimits_refused);
		done[idx] = true;
		nr_done++;
	}
	return 0;
}

static int prepare_finish(struct restore_task *t)
{
	struct user_regs_struct r;
	TaskCore *c = t->core;
	int err;

	for (size_t i = 0; i < c->n_threads; i++)
		if ((err = catch_in_pause(c->threads[i]->tid, &r)))
			return err;
	if ((err = catch_in_pause(t->pid, &r)) || (err = unmap_restorer_region(t, r)))
		return err;
	for (size_t i = 0; i < c->n_threads; i++) {
		ThreadCore *tc = c->threads[i];
		if ((err = set_final_thread_state(tc->tid, tc->regs, &tc->xsave, tc->sigmask)))
			return err;
		sched_restore(tc->tid, tc->sched);
	}
	sched_restore(t->pid, c->sched);
	return set_final_thread_state(t->pid, c->regs, &c->xsave, c->sigmask);
}

static int release_task(struct restore_task *t)
{
	int err;

	for (size_t i = 0; i < t->core->n_threads; i++)
		if ((err = task_release(t->core->threads[i]->tid, false)))
			return err;
	return task_release(t->pid, t->core->stopped);
}

/* Every process is prepared before any is let go, so that the tree resumes together. */
static int finish_tree(struct restore_tree *rt)
{
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++)
		if ((err = inotify_drop_restore_events(rt->tasks[i].pid, rt->tasks[i].fds)) ||
		    (err = prepare_finish(&rt->tasks[i])))
			return err;
	for (size_t i = rt->nr_tasks; i-- > 0;)
		if ((err = release_task(&rt->tasks[i])))
			return err;
	return 0;
}

static int read_tree_images(struct restore_tree *rt)
{
	int err;

	rt->nr_tasks = rt->inv->n_pids;
	rt->tasks = xzalloc(rt->nr_tasks * sizeof(*rt->tasks));
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		struct restore_task *t = &rt->tasks[i];
		t->dirfd = opts.images_dir_fd;
		t->pages_fd = t->exe_fd = -1;
		t->pid = rt->inv->pids[i];
		t->is_root = i == 0;
		t->tree = rt->tasks;
		t->tree_size = rt->nr_tasks;
		if ((err = read_task_images(t)))
			return err;
		if (t->is_root && t->core->pdeath_signal)
			pr_warn("restore pid %d: its parent-death signal %u is not restored (its parent "
				"was outside the tree)",
				t->pid, t->core->pdeath_signal);
		for (size_t k = 0; k < t->fds->n_fds; k++) {
			if (t->fds->fds[k]->kind == FD_KIND__FD_INHERITED && !opts.shell_job) {
				pr_err("restore pid %d fd %u: was the caller's %s; restore with --shell-job",
				       t->pid, t->fds->fds[k]->fd, t->fds->fds[k]->path);
				return -EINVAL;
			}
		}
	}
	for (size_t i = 0; i < rt->nr_tasks; i++)
		if ((err = pages_check_references(&rt->tasks[i])))
			return err;
	return pstree_validate(rt);
}

/* Deleted files still open or mapped: recreated here (and unlinked), inherited. */
static int prepare_ghosts(struct restore_tree *rt)
{
	bool needed = false;
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++)
			needed |= rt->tasks[i].fds->fds[k]->has_ghost_id;
		for (size_t k = 0; k < rt->tasks[i].mm->n_files; k++)
			needed |= rt->tasks[i].mm->files[k]->has_ghost_id;
	}
	if ((err = ghosts_restore_prepare(opts.images_dir_fd, needed)))
		return err;
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		bool ok = true;
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++)
			ok &= !rt->tasks[i].fds->fds[k]->has_ghost_id ||
			      ghost_known(rt->tasks[i].fds->fds[k]->ghost_id);
		for (size_t k = 0; k < rt->tasks[i].mm->n_files; k++)
			ok &= !rt->tasks[i].mm->files[k]->has_ghost_id ||
			      ghost_known(rt->tasks[i].mm->files[k]->ghost_id);
		if (!ok) {
			pr_err("image fds-%d.img or mm-%d.img: refers to a deleted file that ghosts.img "
			       "does not hold",
			       rt->tasks[i].pid, rt->tasks[i].pid);
			return -EINVAL;
		}
	}
	return 0;
}

/* Pipes and open files held by several processes: created or opened here, inherited. */
static int prepare_shared_files(struct restore_tree *rt)
{
	bool needed = false;
	int err;

	bool needed_sockets = false, needed_ptys = false, needed_mqueues = false, needed_reaped = false;
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			FdKind kind = rt->tasks[i].fds->fds[k]->kind;
			needed |= kind == FD_KIND__FD_PIPE;
			needed_sockets |= kind == FD_KIND__FD_UNIX_PAIR || kind == FD_KIND__FD_UNIX_PENDING ||
					  (kind == FD_KIND__FD_UNIX_BOUND && rt->tasks[i].fds->fds[k]->has_sock_ino);
			needed_mqueues |= kind == FD_KIND__FD_MQUEUE;
			needed_reaped |= kind == FD_KIND__FD_PIDFD && !rt->tasks[i].fds->fds[k]->pidfd_pid;
			needed_ptys |= kind == FD_KIND__FD_PTY_MASTER || kind == FD_KIND__FD_PTY_SLAVE;
		}
		needed_ptys |= rt->tasks[i].core->has_ctty_pty;
	}
	if ((err = pipes_restore_prepare(opts.images_dir_fd, needed)) ||
	    (err = unix_restore_prepare(opts.images_dir_fd, needed_sockets, rt->tasks, rt->nr_tasks)) ||
	    (err = ptys_restore_prepare(opts.images_dir_fd, needed_ptys)) ||
	    (err = mqueues_restore_prepare(opts.images_dir_fd, needed_mqueues)) ||
	    (err = pidfds_restore_prepare(needed_reaped)))
		return err;
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			FdEntry *e = rt->tasks[i].fds->fds[k];
			bool pty = e->kind == FD_KIND__FD_PTY_MASTER || e->kind == FD_KIND__FD_PTY_SLAVE;
			if ((e->kind == FD_KIND__FD_PIPE && !pipe_known(e->pipe_id)) ||
			    !unix_fd_known(e) ||
			    (pty && (!e->has_pty_index || !pty_known(e->pty_index))) ||
			    (e->kind == FD_KIND__FD_MQUEUE && !(e->has_mqueue_id && mqueue_known(e->mqueue_id)))) {
				pr_err("image fds-%d.img: fd %u is a pipe, socket, pty or message queue that "
				       "pipes.img, sockets.img, ttys.img or mqueues.img does not hold",
				       rt->tasks[i].pid, e->fd);
				return -EINVAL;
			}
		}
	}
	return shared_files_prepare(rt->tasks, rt->nr_tasks);
}

/* The shared anonymous objects: created and filled here, checked against every mapping. */
static int prepare_shared_memory(struct restore_tree *rt)
{
	bool needed = ipc_ns_shm_count() > 0;
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].mm->n_vmas; k++)
			needed |= rt->tasks[i].mm->vmas[k]->kind == VMA_KIND__VMA_ANON_SHARED ||
				  rt->tasks[i].mm->vmas[k]->kind == VMA_KIND__VMA_SHMEM_PRIVATE ||
				  rt->tasks[i].mm->vmas[k]->kind == VMA_KIND__VMA_SYSV_SHM;
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++)
			needed |= rt->tasks[i].fds->fds[k]->kind == FD_KIND__FD_SHMEM;
	}
	if ((err = shmem_restore_prepare(opts.images_dir_fd, needed)))
		return err;
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		struct restore_task *t = &rt->tasks[i];
		for (size_t k = 0; k < t->mm->n_vmas; k++) {
			VmaEntry *v = t->mm->vmas[k];
			if ((v->kind == VMA_KIND__VMA_ANON_SHARED || v->kind == VMA_KIND__VMA_SHMEM_PRIVATE ||
			     v->kind == VMA_KIND__VMA_SYSV_SHM) &&
			    !shmem_object_fits(v->shmem_id, v->pgoff + v->end - v->start)) {
				pr_err("image mm-%d.img: mapping %#llx-%#llx refers to a shared object "
				       "that shmem.img does not hold",
				       t->pid, (unsigned long long)v->start, (unsigned long long)v->end);
				return -EINVAL;
			}
		}
		for (size_t k = 0; k < t->fds->n_fds; k++) {
			FdEntry *e = t->fds->fds[k];
			if (e->kind == FD_KIND__FD_SHMEM && !shmem_object_fits(e->shmem_id, 0)) {
				pr_err("image fds-%d.img: fd %u refers to a memfd that shmem.img does not "
				       "hold",
				       t->pid, e->fd);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int make_pipes(struct restore_tree *rt, int status[2])
{
	rt->ctl_fds = xzalloc(rt->nr_tasks * sizeof(int));
	rt->ctl_peer_fds = xzalloc(rt->nr_tasks * sizeof(int));
	if (pipe2(status, O_CLOEXEC)) {
		pr_perror("restore: pipe");
		return -errno;
	}
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		int ctl[2];
		if (pipe2(ctl, O_CLOEXEC)) {
			pr_perror("restore: pipe");
			return -errno;
		}
		rt->ctl_fds[i] = ctl[0];
		rt->ctl_peer_fds[i] = ctl[1];
	}
	rt->status_fd = status[1];
	return 0;
}

static void kill_tree(struct restore_tree *rt, pid_t root)
{
	int wstatus;

	/* Every pid of the tree was free when we started: whatever holds one now is ours. */
	for (size_t i = 0; i < rt->nr_tasks; i++)
		kill(rt->tasks[i].pid, SIGKILL);
	waitpid(root, &wstatus, __WALL);
}

int cr_restore(void)
{
	struct restore_tree rt = { 0 };
	uint64_t start = now_ns(CLOCK_MONOTONIC), pages = 0;
	int status[2], err, wstatus;
	pid_t root;

	pr_debug("restore: start");
	/* ipc-ns.img checked; the tree's IPC namespace made, for every SysV object below */
	if ((err = read_inventory(opts.images_dir_fd, &rt.inv)) || (err = read_tree_images(&rt)) ||
	    (err = ipc_ns_restore_prepare(opts.images_dir_fd, rt.inv)))
		return err;
	/* Waiting for the dumped tree's zombies to be reaped is not restore work: timed apart.
	 * Checked before anything is made (a listener bound again would take over its name). */
	uint64_t wait_start = now_ns(CLOCK_MONOTONIC);
	if ((err = check_pids_free(rt.inv)))
		return err;
	uint64_t pid_wait = now_ns(CLOCK_MONOTONIC) - wait_start;
	if ((err = prepare_shared_memory(&rt)) || (err = ipc_ns_restore_objects()) ||
	    (err = prepare_ghosts(&rt)) || (err = prepare_shared_files(&rt)))
		goto made_nothing;
	pr_debug("restore: images checked, pids free");
	raise_nofile_limit();
	if ((err = make_pipes(&rt, status)))
		goto made_nothing;
	fflush(NULL);
	root = clone_with_pid(rt.inv->root_pid);
	if (root < 0) {
		err = -errno;
		if (errno == EEXIST)
			pr_err("restore pid %d: that pid is taken (by a process, or as the session or group "
			       "id of a process still running); nothing was started",
			       rt.inv->root_pid);
		else
			pr_perror("restore pid %d: clone3 with set_tid failed", rt.inv->root_pid);
		goto made_nothing;
	}
	if (root == 0)
		restore_process(&rt, &rt.tasks[0]);
	close(status[1]);
	for (size_t i = 0; i < rt.nr_tasks; i++)
		close(rt.ctl_fds[i]);
	pipes_close_all();
	shared_files_close_all();
	ghosts_close_all();
	unix_close_all();
	ptys_close_all();
	mqueues_close_all();
	pidfds_close_all();
	err = collect_reports(&rt, status[0]);
	mqueues_unlink_restored();
	pr_debug("restore pid %d: every restorer done", root);
	if (!err)
		err = finish_tree(&rt);
	if (err) {
		kill_tree(&rt, root);
		pr_err("restore pid %d failed; nothing from the images is running", root);
		return err;
	}
	write_pidfile(root);
	for (size_t i = 0; i < rt.nr_tasks; i++)
		pages += rt.tasks[i].pagemap->nr_pages;
	pr_info("restore stats: total_ms=%.1f pid_wait_ms=%.1f processes=%zu pages=%llu",
		(now_ns(CLOCK_MONOTONIC) - start - pid_wait) / 1e6, pid_wait / 1e6, rt.nr_tasks,
		(unsigned long long)pages);
	if (opts.restore_detached)
		return 0;
	while (waitpid(root, &wstatus, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);

made_nothing: /* no process was started: what was made for the tree goes (its own objects die with it) */
	mqueues_unlink_restored();
	return err;
}
