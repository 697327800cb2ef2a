/*
 * Restore, inside each new process of the tree (from clone3): its session, group and children
 * first, then every kind of per-task state in the state table's order, then a jump into the
 * restorer blob, which rebuilds the address space and reports to stasis.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cow-share.h"
#include "files/files.h"
#include "log.h"
#include "mm.h"
#include "nested-ns.h"
#include "pstree.h"
#include "restore.h"
#include "restore-watchdog.h"
#include "restorer/restorer.h"
#include "task.h"
#include "threads.h"
#include "time-ns.h"
#include "tree-objects.h"
#include "tree-plan.h"
#include "util.h"

#define TASK_TOP 0x7ffffffff000ULL
#define REGION_SEARCH_FROM (1ULL << 30)
#define RSEQ_SIG_GLIBC 0x53053053
#define RSEQ_FLAG_UNREGISTER 1

extern const char restorer_blob_start[], restorer_blob_end[];
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

/* This new process's report to stasis (it lives only in the new process, for its failure). */
static struct rst_status *child_status;
static int child_status_fd = -1;

/*
 * Reports the failure and exits. The message is the error the failing kind logged (errors
 * are named once, where they happen), else the one given here.
 */
static __attribute__((noreturn, format(printf, 2, 3))) void child_fail(int err, const char *fmt, ...)
{
	const char *logged = log_captured_error();
	va_list ap;

	if (logged && logged[0]) {
		snprintf(child_status->msg, sizeof(child_status->msg), "%s", logged);
	} else {
		va_start(ap, fmt);
		vsnprintf(child_status->msg, sizeof(child_status->msg), fmt, ap);
		va_end(ap);
	}
	child_status->ok = 0;
	child_status->err = err;
	if (write(child_status_fd, child_status, sizeof(*child_status)) < 0)
		_exit(3);
	_exit(2);
}

static int highest_open_fd(void)
{
	auto_free int *fds = NULL;
	size_t n;
	int err = proc_list_numbers(PROC_SELF, "fd", &fds, &n);

	if (err == -ENOMEM)
		return err;
	if (err || !n)
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

	if (proc_read_layout(PROC_SELF, &own)) /* (maps: smaps would walk every page) */
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

/* The restorer's arguments: its header, then what every kind reserved (args_size). */
static size_t args_length(const struct restore_task *t)
{
	size_t len = sizeof(struct restorer_args);

	for (unsigned i = 0; i < state_table_len; i++)
		if (state_table[i]->args_size)
			len += state_table[i]->args_size(t) + 8; /* each starts 8-aligned */
	return PAGE_ALIGN(len);
}

static __attribute__((noreturn)) void restore_child(struct restore_task *t, int status_fd, int ctl_fd)
{
	size_t blob_len = PAGE_ALIGN(restorer_blob_end - restorer_blob_start);
	size_t args_len = args_length(t);
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
		child_fail(-ENOMEM, "restore pid %d: no room for the restorer region (%zu bytes)", t->pid,
			   region_len);
	memcpy((void *)region, restorer_blob_start, restorer_blob_end - restorer_blob_start);
	a = (struct restorer_args *)(region + blob_len);
	a->region_start = region;
	a->region_len = region_len;
	t->args = a;
	t->args_used = sizeof(*a);
	t->args_len = args_len;
	t->thread_stacks = region + blob_len + args_len + RST_STACK_SIZE;
	t->region_start = region;
	t->region_len = region_len;
	t->park_base = region + region_len - PARK_AREA_SIZE;
	a->window = t->park_base - RST_WINDOW_SIZE;

	/* Helper fds (images, mapped files) live where the task will have no fd. */
	int high = highest_open_fd();
	if (high < 0)
		child_fail(high, "restore pid %d: out of memory", t->pid);
	if ((err = restore_place_helper_fds(t, high)))
		child_fail(err, "restore pid %d: no room for stasis's fds", t->pid);
	a->close_from = t->next_high_fd;
	/* a sharer of its parent's fd table leaves stasis's fds there, for the processes after it */
	if ((a->status_fd = restore_copy_high(t, status_fd, !t->fds_owner)) < 0)
		child_fail(-EBADF, "restore pid %d: cannot move the status fd above %d", t->pid,
			   a->close_from);
	child_status_fd = a->status_fd;
	a->fds_done_fd = -1;
	if ((a->ctl_fd = restore_copy_high(t, ctl_fd, !t->fds_owner)) < 0 ||
	    (t->fds_owner && (a->fds_done_fd = restore_move_high(t, t->fds_done_fd)) < 0) ||
	    (t->pages_fd = restore_move_high(t, t->pages_fd)) < 0 || pages_sources_move_high(t))
		child_fail(-EBADF, "restore pid %d: cannot move helper fds above %d", t->pid,
			   a->close_from);
	child_status = &a->status;
	a->status.pid = t->pid;

	for (unsigned i = 0; i < state_table_len; i++) {
		if (!state_table[i]->restore)
			continue;
		log_captured_reset();
		if ((err = state_table[i]->restore(t)))
			child_fail(err, "restore pid %d: %s: %s", t->pid, state_table[i]->name,
				   strerror(-err));
	}
	if (strcmp(t->core->root, "/") && chroot(t->core->root))
		child_fail(-errno, "restore pid %d: chroot %s: %m", t->pid, t->core->root);
	a->close_to = (t->high_fd_top > t->next_high_fd ? t->high_fd_top : t->next_high_fd) - 1;
	a->fds_low = a->status_fd < t->sharers_low ? a->status_fd : t->sharers_low;
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

/*
 * The root, just made in its new namespaces: every tree-wide kind sets up what must be done
 * from inside them, then stasis is told (its setup-namespaces notification) and waited for.
 */
static void enter_namespaces(struct restore_tree *rt, struct restore_task *t)
{
	size_t idx = t - rt->tasks;
	char go;
	int err;

	for (unsigned i = 0; i < tree_objects_len; i++) {
		if (!tree_objects[i]->enter)
			continue;
		log_captured_reset();
		if ((err = tree_objects[i]->enter(t->ctx, rt)))
			child_fail(err, "restore pid %d: %s: %s", t->pid, tree_objects[i]->name,
				   strerror(-err));
	}
	t->ctx->tree_root_fd = -1; /* from here on, paths resolve in the tree's own root */
	child_status->ok = 1;
	child_status->step = RST_STEP_NAMESPACES;
	if (write(child_status_fd, child_status, sizeof(*child_status)) != sizeof(*child_status) ||
	    read(rt->ctl_fds[idx], &go, 1) != 1)
		child_fail(-EIO, "restore pid %d: stasis did not let the tree go on", t->pid);
}

/* Its parent is not the one that made it any more (it died and someone adopted it). */
static bool parent_gone(const struct restore_tree *rt, const struct restore_task *t)
{
	const TreeEntry *e = NULL, *parent = NULL;
	pid_t ppid = getppid();

	if (t->is_root)
		return rt->root_parent && ppid != rt->root_parent;
	if (tree_plan_lifted(rt, t->pid))
		return false; /* forked by a helper, to be its parent's orphan: it checks that later */
	for (size_t i = 0; !e && i < rt->inv->n_tree; i++)
		if (rt->inv->tree[i]->pid == (uint32_t)t->pid)
			e = rt->inv->tree[i];
	for (size_t i = 0; e && !parent && i < rt->inv->n_tree; i++)
		if (rt->inv->tree[i]->pid == e->ppid)
			parent = rt->inv->tree[i];
	/* the init of a PID namespace of its own sees no parent at all */
	if (!e || !parent || e->n_nested_pids > parent->n_nested_pids)
		return false;
	return ppid != pstree_pid_seen_by(rt->inv, e, e->ppid);
}

void restore_process(struct restore_tree *rt, struct restore_task *t)
{
	static struct rst_status early_status;
	size_t idx = t - rt->tasks;
	uint64_t all = ~0ull;
	int err;

	/* the raw call: glibc's sigprocmask leaves its own signals (32, 33) open */
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, sizeof(all));
	if (!tree_plan_lifted(rt, t->pid))
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* if its parent dies mid-restore, so does it */
	if (parent_gone(rt, t))
		_exit(1); /* ... or died already, before it could say so */
	/* A sharer of its parent's fd table (it holds no copy of its own) closes none of these. */
	if (!t->fds_owner)
		close(rt->watchdog->sock); /* only stasis holds it: its closing says stasis died */
	watchdog_register(rt->watchdog->reg_fd);
	log_capture_errors(); /* its errors reach the user once, through stasis */
	child_status = &early_status;
	child_status_fd = rt->status_fd;
	early_status.pid = t->pid;
	/* (a namespace it makes keeps off the socket's number, which its children close) */
	if ((err = time_ns_join(t->ctx, t, rt->watchdog->sock + 1)))
		child_fail(err, "restore pid %d: time namespace: %s", t->pid, strerror(-err));
	if (t->is_root)
		enter_namespaces(rt, t);
	/* a maker of namespaces of its own makes them before it forks (its children inherit them);
	 * the network one before the shared files it opens, which may be sockets made there */
	if (!t->is_root && (err = net_nested_make(t->ctx, t->pid)))
		child_fail(err, "restore pid %d: cannot make its own network namespace: %s", t->pid,
			   strerror(-err));
	if ((err = shared_files_open_later(rt, t, false)))
		child_fail(err, "restore pid %d: cannot open the shared files of reaped processes, of "
			   "its own /proc or of its network namespace: %s", t->pid, strerror(-err));
	/* (cgroup and IPC namespaces before the mounts: a cgroup or mqueue filesystem mounted is
	 * the namespace's the process is in) */
	if (!t->is_root &&
	    ((err = cgroup_nested_make(t->ctx, t->pid)) || (err = ipc_nested_make(t->ctx, t->pid)) ||
	     (err = mount_nested_make(t->ctx, t->pid)) || (err = uts_nested_make(t->ctx, t->pid))))
		child_fail(err, "restore pid %d: cannot make its own namespaces: %s", t->pid, strerror(-err));
	if ((err = shared_files_open_later(rt, t, true)))
		child_fail(err, "restore pid %d: cannot open the shared files of its own mount namespace: %s",
			   t->pid, strerror(-err));
	/* memory that what it forks shares with it, in place before it forks */
	if ((err = cow_share_fill(t->ctx, t)))
		child_fail(err, "restore pid %d: cannot fill the memory it shares with what it forks: %s",
			   t->pid, strerror(-err));
	if ((err = pstree_restore_links(rt, t, restore_process)))
		child_fail(err, "restore pid %d: cannot recreate its session, group or children: %s",
			   t->pid, strerror(-err));
	if (idx == rt->nr_tasks - 1 && rt->nr_tasks > 1 && run_fault(t->ctx, "restore-child"))
		child_fail(-EIO, "restore pid %d: injected failure restore-child", t->pid);
	/* Its children have taken their own control pipes (and the watchdog's socket) with them. */
	for (size_t i = 0; !t->fds_owner && i < rt->nr_tasks; i++) {
		close(rt->ctl_peer_fds[i]);
		if (i != idx)
			close(rt->ctl_fds[i]);
	}
	if (!t->fds_owner)
		close(rt->watchdog->reg_fd);
	restore_child(t, rt->status_fd, rt->ctl_fds[idx]);
}
