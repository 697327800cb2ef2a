/* The per-task state carried through a dump and through a restore. */
#ifndef STASIS_TASK_H
#define STASIS_TASK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "image.h"
#include "proc.h"
#include "run.h"
#include "seize.h"
#include "util.h" /* xzalloc, xstrdup: the images are built and read in allocated memory */

struct frozen_thread {
	pid_t tid;
	struct user_regs_struct regs; /* as frozen */
	uint32_t cg_set;              /* its cgroups when not its process's (cr/cgroups.c), else 0 */
};

/* Where each private anonymous page of a process was saved, by address (cr/pages.c). */
struct saved_page {
	uint64_t vaddr, pfn, file_off;
	pid_t in_pid; /* whose pages image holds it */
	uint32_t depth; /* how many links up the chain of dumps (0: this dump) */
};

/*
 * The tree's open files, each once, at its first holder in tree order (cr/files/open-files.c):
 * grouped by the device and inode of their files (two fds can be one open file only if they
 * name the same inode), each group sorted in kcmp's order of open files. Which open file an fd
 * is costs a hash and a binary search of kcmp calls, however many processes hold it and however
 * many open files share its inode (every eventfd is one anonymous inode; a file opened again
 * and again is one inode too).
 */
struct open_file {
	pid_t pid;          /* its first holder (the host's pid: kcmp's) */
	int fd;             /* and that holder's fd */
	uint32_t vpid;      /* the first holder as the images name it */
	size_t last_pos;    /* the last process (tree position) that holds it */
	int last_fd;        /* that process's first fd of it */
	signed char mqueue; /* a POSIX message queue: 1, 0, -1 not asked yet */
};
struct open_file_group {
	uint64_t dev, ino;
	struct open_file *files; /* kcmp's order */
	size_t n, cap;
};
struct open_files {
	struct open_file_group *groups; /* open addressing; ino == 0 && !files: free */
	size_t mask, used;              /* slots - 1 (a power of two); groups in use */
};
void open_files_free(struct open_files *x);

struct task_tracking;
struct task_ns;

struct dump_task {
	pid_t pid;                    /* the host's: the thread every /proc file, ptrace call and
					 injected syscall of the process goes through; tgid unless
					 the main thread has exited, then a live thread of it */
	pid_t tgid;                   /* the host's pid of the process */
	uint32_t vpid;                /* in the tree's PID namespace: the images' name for it */
	struct run_ctx *ctx;          /* the run: options, and every tree-wide kind's tables */
	struct dump_task *parent;     /* in the tree, NULL for the root */
	struct saved_page *saved;     /* sorted by vaddr */
	size_t nr_saved, saved_alloc;
	struct frozen_thread *threads; /* every thread but the main one */
	size_t nr_threads;
	int stop_sig;                 /* in group stop by this signal when frozen, 0: not */
	bool hit_uprobes;             /* a [uprobes] area (--allow-uprobes): cr/pages.c takes the
					 probes' breakpoints out of its code */
	bool stop_collected;          /* and its parent has collected that stop (cr/job-stop.c) */
	bool killed_alone;            /* after the dump, before the others (pstree_kill_one) */
	struct user_regs_struct regs; /* as frozen */
	struct inject_ctx inj;
	bool inj_active;
	struct proc_stat stat;
	struct proc_vmas vmas;
	uint64_t vdso_start, vdso_end;
	int dirfd;
	struct dump_task *tree;   /* every process of the tree; those before this one are dumped */
	size_t tree_pos, tree_size;

	TaskCore *core;
	Mm *mm;
	Pagemap *pagemap;
	FdTable *fds;
	struct open_files open_files; /* the root's: the tree's open files (cr/files/open-files.c) */
	struct dump_task *fds_owner; /* it shares the fd table of this earlier process (CLONE_FILES),
					which dumps it (cr/shared-tables.c); NULL: its own */

	uint64_t nr_pages_written;
	uint64_t nr_shared_pages; /* saved by an ancestor, referenced */
	uint64_t nr_parent_pages; /* unchanged since the parent dump, referenced */
	struct task_tracking *track; /* writes since the parent dump (cr/dirty-track.c) */
	struct task_ns *ns;          /* its and its threads' namespaces, read once (cr/namespaces.c) */
	uint64_t page_sums_ns;    /* spent on the pages' checksums (dump stats) */
};

struct restorer_args;

/* Per-thread kernel registrations (cr/kernel-task.c) and signal state (cr/signals.c). */
struct thread_kstate {
	RseqConfig *rseq;
	SyscallDispatch *sud; /* NULL: off */
	uint64_t robust_list, robust_list_len, clear_child_tid;
};
struct thread_altstack {
	uint64_t sp, size;
	uint32_t flags;
};
/*
 * What only the thread itself can tell is asked inside it, in one list of injected syscalls
 * (cr/threads.c, and each kind's own for the main thread): the *_ask functions make the call,
 * its result to land at scratch address at (the sizes below); the collect functions take its
 * rax (ret) and those bytes (answer).
 */
#define KERNEL_TASK_ANSWER_SIZE 8  /* clear_child_tid */
#define SIGNALS_ANSWER_SIZE 24     /* the alternate signal stack (stack_t) */
void kernel_task_ask(struct inject_call *call, uint64_t at);
int kernel_task_collect(pid_t tid, GpRegs *regs, struct thread_kstate *ks, int64_t ret,
			const void *answer);
int kernel_task_leave_rseq_section(pid_t tid, struct user_regs_struct *regs);
/*
 * Each frozen thread of t, before anything is injected into it or its registers are saved:
 * refused if its syscall user dispatch would catch injected syscalls, out of a stale injection
 * stub, and out of an rseq critical section (to its abort handler). regs: the thread's.
 */
int kernel_task_prepare_frozen(const struct dump_task *t, pid_t tid, struct user_regs_struct *regs);
/* Before any system call is injected into the frozen thread: -ENOTSUP (said) if its syscall user
 * dispatch would send them to its SIGSYS handler (they run from the vDSO's page). */
int kernel_task_refuse_dispatch(pid_t tid, uint64_t vdso_start, uint64_t vdso_end);
/* The same question, asked of a thread of pid just seized: true when its selector blocks them
 * now (a moment's state; one without a selector blocks them for ever: false). */
bool kernel_task_dispatch_blocks(pid_t pid, pid_t tid);
/* By stasis, once no system call of its own is to run in t's threads: their syscall user dispatch. */
struct restore_task;
int kernel_task_dispatch_restore(const struct restore_task *t);
/* get_mempolicy (cr/mempolicy.c): the thread's (addr 0) or its mapping's at addr, a mask of
 * words words; collect: its result, NULL for the default. */
void mempolicy_ask(struct inject_call *call, uint64_t at_mode, uint64_t at_nodes, unsigned words,
		   uint64_t addr);
int mempolicy_collect(int64_t ret, int32_t mode, const uint64_t *nodes, unsigned words, Mempolicy **out);
struct rst_thread;
void mempolicy_thread_args(struct rst_thread *th, const Mempolicy *p);
void signals_ask_altstack(struct inject_call *call, uint64_t at);
int signals_collect_thread(pid_t tid, uint64_t *mask, struct thread_altstack *as, int64_t ret,
			   const void *answer);
int signals_collect_pending(pid_t tid, bool shared, PendingSignal ***list, size_t *n);

/*
 * A private anonymous mapping of a new process whose pages a process that forked it filled
 * (cr/cow-share.c): still shared copy-on-write, the blob moves it from temp to start.
 */
struct cow_use {
	uint64_t start, end; /* the mapping */
	uint64_t temp;       /* where it lies until the blob moves it (set at prepare) */
	uint32_t region;     /* which of the tree's regions (cr/cow-share.c) */
	bool fills;          /* it maps the region and fills it with its pages (its first owner) */
};

struct restore_task {
	pid_t pid;          /* in the tree's PID namespace, as the images name it */
	pid_t host_pid;     /* the host's, once it exists (cr/pid-ns.c) */
	pid_t *host_tids;   /* the host's tid of each thread of core, once they exist */
	bool seen;          /* stasis has seen its process exist (restore-finish.c) */
	bool traced;        /* stasis is already the tracer of its threads (cr/seccomp.c) */
	bool pages_copied;  /* stasis copied (and checked) its private pages (cr/pages.c) */
	struct run_ctx *ctx;
	bool is_root;       /* its parent is stasis, not a restored process */
	bool leader_exited; /* its main thread had exited: it exits again (SYS_exit with
			       leader_exit_code) before the tree is let go; core's threads go on */
	int leader_exit_code;
	struct restore_task *tree; /* every process of the tree (pages shared with ancestors) */
	size_t tree_size;
	int dirfd;
	TaskCore *core;
	Mm *mm;
	Pagemap *pagemap;
	FdTable *fds;
	struct restore_task *fds_owner; /* it shares this process's fd table (fds->table_of): its
					   parent makes it with CLONE_FILES, the owner restores the fds */
	int pages_fd;
	struct page_sources *page_sources; /* the pages images its runs read besides its own (an
					      ancestor's, up the chain), opened by stasis (cr/pages.c) */

	/* In the new task, before the restorer runs. */
	struct restorer_args *args;
	size_t args_used, args_len; /* the kinds' arrays after *args (restorer_args_alloc) */
	int *mapped_file_fds; /* per mm->files[i] */
	int exe_fd;
	/* io_uring instances whose rings are mapped: the memfd holding their memory, a helper fd
	 * made for the mappings by cr/mm.c, used by the fd's open (cr/files/io-uring.c) */
	struct io_uring_memory {
		uint32_t ring_fd; /* the instance's fd number (its entry's, not a dup's) */
		int memfd;
	} *io_uring_mems;
	size_t n_io_uring_mems;
	int next_high_fd;     /* helper fds are placed from here up (the lowest free number: a
				 helper closed gives its number back) */
	int high_fd_end;      /* ... and below this number (0: no end but the limit) */
	int high_fd_top;      /* one past the highest helper number taken so far */
	/* Processes sharing one fd table are restored one after the other, its sharers (made with
	 * CLONE_FILES) before the process that made them goes on (cr/pstree.c): */
	int fds_done_fd;      /* a sharer: its parent waits for the lowest helper fd number still
				 open (the blob writes it here once it has closed the others), -1 */
	int sharers_low;      /* the lowest helper fd of its sharers (they close it themselves:
				 its own closing of leftovers stops below), INT_MAX: none */
	uint64_t region_start, region_len, park_base; /* the restorer's region */
	uint64_t thread_stacks; /* RST_THREAD_STACK per thread, inside the region */
	/* Mappings taken from a region filled before the fork (cr/cow-share.c), by start: */
	const struct cow_use *cow_uses;
	size_t nr_cow_uses;
	uint64_t cow_reserve_start, cow_reserve_len; /* every region's range: the blob unmaps it */
};

/* The task of t's tree with pid (as the images name it), or NULL. */
static inline const struct restore_task *restore_tree_task(const struct restore_task *t, uint32_t pid)
{
	for (size_t i = 0; i < t->tree_size; i++)
		if ((uint32_t)t->tree[i].pid == pid)
			return &t->tree[i];
	return NULL;
}

/* The mapping of t taken from a region that holds addr, or NULL. */
static inline const struct cow_use *cow_use_at(const struct restore_task *t, uint64_t addr)
{
	size_t lo = 0, hi = t->nr_cow_uses;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (addr < t->cow_uses[mid].start)
			hi = mid;
		else if (addr >= t->cow_uses[mid].end)
			lo = mid + 1;
		else
			return &t->cow_uses[mid];
	}
	return NULL;
}

/*
 * One kind of per-task state: how it is dumped from a frozen task, checked before any
 * restore starts, restored inside the new task before the restorer blob takes over, and
 * finished by stasis (the tracer) once the blob is done, before the tree is let go.
 */
struct state_ops {
	const char *name;
	int (*dump)(struct dump_task *t);
	int (*validate)(struct restore_task *t);
	/*
	 * Optional, before anything is started but once the tree's mounts exist (paths resolve
	 * with tree_open/tree_stat): the files the task needs are still there, unchanged.
	 */
	int (*check)(struct restore_task *t);
	/* Bytes of the restorer's arguments its restore() takes with restorer_args_alloc(). */
	size_t (*args_size)(const struct restore_task *t);
	int (*restore)(struct restore_task *t);
	/*
	 * Optional, by stasis once every process of the tree has reported (the network still
	 * locked), before any is finished: what needs the state of every process made first (a TCP
	 * connection's queues: its peer in the tree acks them once out of repair mode).
	 */
	int (*ready)(struct restore_task *t);
	int (*finish)(struct restore_task *t);
};

extern const struct state_ops state_cgroups, state_namespaces, state_regs, state_signals,
	state_attrs, state_kernel_task, state_mm, state_pages, state_fds, state_threads,
	state_posix_timers, state_sched, state_creds, state_seccomp, state_aio, state_knobs,
	state_membarrier, state_job_stop, state_dirty_track, state_controls, state_host_sems, state_lsm,
	state_ldt, state_mempolicy, state_io_uring_ring_fds, state_io_uring_buffers,
	state_io_uring_files, state_keyrings;

/*
 * Every process and thread of the frozen tree (n, the root first) in namespaces the restore
 * makes again, before anything is collected (cr/namespaces.c); else said, -ENOTSUP.
 */
int namespaces_judge_tree(struct dump_task *tasks, size_t n);
void namespaces_free(struct task_ns *ns);
/* The namespaces of process t as namespaces_judge_tree read them. */
const NsIds *namespaces_of(const struct dump_task *t);

/* The job control signal that a stopped process is let go with (cr/job-stop.c), 0: running. */
int job_stop_signal(const TaskCore *c);
/* Whether the process group of host pid pid is orphaned (a terminal stop signal is then
 * dropped): 1, 0, or <0 (-ENOMEM said, else its process is gone). */
int job_stop_group_orphaned(pid_t pid);
/* Whether the stops of its children, let go, sent the process of core c (host pid host_pid) a
 * SIGCHLD it did not have: 1 (it is pending now), 0 (ignored, SA_NOCLDSTOP, merged into one
 * pending at the dump), or <0 (its process is gone, -ENOMEM). */
int job_stop_extra_sigchld(const TaskCore *c, pid_t host_pid, pid_t pid);

/* In dump and restore order. */
extern const struct state_ops *const state_table[];
extern const unsigned state_table_len;

/* In the new task: where its helper fds go (next_high_fd, high_fd_end), above the fds it
 * inherited (up to inherited_high) and every fd number it will use, or in the widest gap between
 * them when the top is too near its limit; -EMFILE (logged) if there is no room. */
int restore_place_helper_fds(struct restore_task *t, int inherited_high);
/* In the new task: opens path, or moves fd, into the helpers' room (-errno; a failure to move is
 * logged, a failure to open is the caller's to name; restore_dup_high logs nothing). */
int restore_open_high(struct restore_task *t, const char *path, int flags);
int restore_dup_high(struct restore_task *t, int fd);
int restore_move_high(struct restore_task *t, int fd);
int restore_copy_high(struct restore_task *t, int fd, bool close_it);
/*
 * In the new task: len bytes of the restorer's arguments (reserved by the kind's args_size),
 * whose offset from the arguments' start goes to *off for the blob. NULL (logged) if over the
 * reserve.
 */
void *restorer_args_alloc(struct restore_task *t, size_t len, uint64_t *off);

#endif
