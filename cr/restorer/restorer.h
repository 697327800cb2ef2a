/*
 * The contract between stasis and the restorer blob: an args block placed in the restorer
 * region, read by the blob after the engine's own memory is gone. Plain fixed-layout data,
 * no pointers except addresses inside the region or the restored address space.
 */
#ifndef STASIS_RESTORER_H
#define STASIS_RESTORER_H

#include <stdint.h>

#define RST_MAX_MOVES 4
#define RST_NR_RESERVES 2 /* ranges stasis maps for the tree before making it (cr/free-range.c) */
#define RST_MAX_RLIMITS 16
#define RST_MAX_AUXV 128
#define RST_STACK_SIZE (64 * 1024)
#define RST_WINDOW_SIZE (64UL << 20) /* where slices of the pages image are mapped to copy from */
#define RST_THREAD_STACK (16 * 1024)
#define RST_MAX_THREADS 4096
#define RST_CLONE_FS 0x00000200UL
#define RST_CLONE_FILES 0x00000400UL
#define RST_CLONE_THREAD_FLAGS 0x00050f00UL /* VM|FS|FILES|SIGHAND|THREAD|SYSVSEM */

/* A thread other than the main one, recreated by the blob with its old tid. */
#define RST_MAX_GROUPS 65536 /* NGROUPS_MAX */

/* A thread's credentials, taken on by the thread itself as the blob's last step. */
struct rst_creds {
	uint32_t set;         /* 0: keep the engine's (an image without them) */
	uint32_t keep_groups; /* the groups it has (setgroups denied in its user namespace) */
	uint32_t uids[4], gids[4]; /* real, effective, saved, filesystem */
	uint32_t nr_groups;
	uint64_t groups_off;  /* nr_groups gids from the restorer_args */
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	uint32_t cap_last;    /* the highest capability number of this kernel */
	uint32_t securebits;  /* PR_SET_SECUREBITS, once its uids and capabilities are set */
};

/*
 * A thread's seccomp, taken on by the thread itself before its credentials (installing a
 * filter needs CAP_SYS_ADMIN or no_new_privs), while stasis traces it with seccomp suspended
 * (so that nothing the blob and stasis still do is filtered; enforced from the detach on).
 */
struct rst_seccomp {
	uint32_t mode;        /* 0, 1 (SECCOMP_MODE_STRICT) or 2 (SECCOMP_MODE_FILTER) */
	uint32_t first, nr;   /* mode 2: the filters it installs itself, oldest first */
};

/* One seccomp filter to install: len BPF instructions at insns_off from the restorer_args. */
struct rst_seccomp_filter {
	uint64_t insns_off;
	uint32_t len;
	uint32_t flags;       /* SECCOMP_FILTER_FLAG_* it is installed with */
};

/* A NUMA memory policy: set_mempolicy / mbind of mode (MPOL_* | MPOL_F_*) and nodes. */
#define RST_NODE_WORDS 16 /* node masks of up to 1024 nodes (x86-64's largest MAX_NUMNODES) */
struct rst_mempolicy {
	uint32_t mode;
	uint32_t nr_words;    /* of nodes */
	uint64_t nodes[RST_NODE_WORDS];
};

struct rst_thread {
	uint64_t tid;         /* the clone3 set_tid array (one level) */
	uint64_t rseq_addr;
	uint32_t rseq_len, rseq_sig;
	uint64_t robust_list, robust_len, clear_child_tid;
	uint64_t timer_slack_ns; /* its own, 0: the process's, which it inherits */
	uint32_t no_new_privs;   /* its own PR_SET_NO_NEW_PRIVS (the main thread's comes after it) */
	uint32_t pdeath_signal;  /* its own PR_SET_PDEATHSIG */
	uint64_t altstack_sp, altstack_size;
	int32_t altstack_flags;
	char comm[16];
	uint64_t stack_top;
	uint64_t args;        /* back pointer to the restorer_args */
	struct rst_creds creds;
	struct rst_seccomp seccomp;
	uint64_t clone_flags; /* RST_CLONE_THREAD_FLAGS, less CLONE_FILES / CLONE_FS for a thread
			       * with an fd table / a cwd and umask of its own (cr/thread-tables.c) */
	uint64_t fds_off;     /* its own table: nr_fds struct rst_thread_fd from the restorer_args */
	uint32_t nr_fds;
	int32_t fds_above;    /* every number of its own table is below */
	int32_t cwd_fd;       /* its own cwd (O_PATH, a helper fd of the process), -1 */
	uint32_t umask;       /* with cwd_fd */
	struct rst_mempolicy mempolicy; /* its own, set when the args' mempolicy_threads is */
	uint32_t cpuid_faulting; /* its own: set when not the main thread's, which it inherits */
	uint32_t tsc;            /* its own PR_SET_TSC, set when not the one it inherits; 0: leave */
};

/* An fd of a thread's own table: a copy of the process's fd `of`. */
struct rst_thread_fd {
	int32_t fd, of, cloexec;
	int32_t tmp; /* the thread's, while it moves them */
};

/* A thread in a cgroup other than its process's: it writes "0" to fd (tasks, cgroup.threads). */
struct rst_thread_cgroup {
	uint32_t tid;
	int32_t fd;
};

/* A signal pending for one thread only: the thread queues it to itself. */
struct rst_thread_signal {
	uint32_t tid, sig;
	uint8_t info[128];
};

/* An io_uring instance that thread tid registered with itself (IORING_REGISTER_RING_FDS): the
 * thread registers the process's fd at that index again (cr/files/io-uring-ring-fds.c). */
struct rst_ring_fd {
	uint32_t tid, index;
	int32_t fd, pad;
};

/* An io_uring instance's registered buffers (IORING_REGISTER_BUFFERS), registered again by the
 * blob once the pages are in (cr/files/io-uring-buffers.c): nr struct rst_iovec at iovecs_off. */
struct rst_ring_buffers {
	int32_t fd;
	uint32_t nr;
	uint64_t iovecs_off;
};

struct rst_iovec {
	uint64_t base, len;
};

/* A POSIX timer, created by the blob once every thread exists (it may signal one of them). */
struct rst_posix_timer {
	int32_t id, clockid;
	struct { /* the kernel's struct sigevent */
		uint64_t value;
		int32_t signo, notify, tid, pad[11];
	} sev;
	struct { int64_t interval_sec, interval_nsec, value_sec, value_nsec; } its;
};

/*
 * A POSIX record lock the process holds, taken again by the blob once it has closed its helper
 * fds: closing any fd of a file drops the process's POSIX locks on it, and the helper fds
 * include those of its mapped files (a mapped database file with locks: sqlite's -shm).
 */
struct rst_posix_lock {
	int32_t fd;
	int32_t pad;
	struct { /* the kernel's struct flock */
		int16_t type, whence;
		int32_t pad;
		int64_t start, len;
		int32_t pid, pad2;
	} fl;
};

/* map_flags of a SysV attach: the blob calls shmat(fd = shmid) at start instead of mmap. */
#define RST_MAP_SYSV_SHM 0x80000000u

/*
 * An AIO ring made again (io_setup of nr_req) and moved to start (its context id); its tail
 * brought to tail by writes to aio_fd that complete at once, then its events and head put back.
 */
struct rst_aio {
	uint64_t start, len;
	uint32_t nr_req, nr, head, tail;
	uint64_t events_off; /* nr struct io_event from the restorer_args' start */
};

/* An address range. */
struct rst_range {
	uint64_t start, len;
};

/* One saved mapping to recreate at its old address. */
struct rst_vma {
	uint64_t start, end, pgoff;
	uint32_t prot, map_flags;
	int32_t fd;           /* -1 for anonymous */
	uint32_t need_write;  /* mapped writable first, for its pages, then mprotect'ed */
	uint32_t by_uffd;     /* its pages come through userfaultfd */
	uint32_t advice;      /* VMA_ADVICE_* bits: madvise() once mapped */
	uint32_t mempolicy;   /* mbind() once mapped: 1 + its index in mempolicies_off; 0: none */
	uint64_t moved_from;  /* private memory a forker filled (cr/cow-share.c), shared memory
			       * stasis kept as a mapping (cr/shmem.c): moved from there with
			       * mremap, its pages in place; 0: mapped anew */
	uint64_t moved_len;   /* mremap's old length: 0 copies a shared mapping; one shorter
			       * than the mapping grows it (past its shared object's end) */
};

/* What madvise() set on a mapping, as smaps' VmFlags show it (the bits of vma_entry.advice). */
enum vma_advice {
	VMA_ADVICE_DONTFORK = 1 << 0,   /* dc */
	VMA_ADVICE_WIPEONFORK = 1 << 1, /* wf */
	VMA_ADVICE_HUGEPAGE = 1 << 2,   /* hg */
	VMA_ADVICE_NOHUGEPAGE = 1 << 3, /* nh */
	VMA_ADVICE_DONTDUMP = 1 << 4,   /* dd */
	VMA_ADVICE_MERGEABLE = 1 << 5,  /* mg */
	VMA_ADVICE_LOCKED = 1 << 6,     /* lo: mlock() */
	VMA_ADVICE_LOCKONFAULT = 1 << 7, /* lf: mlock2(MLOCK_ONFAULT) */
	VMA_ADVICE_SEQUENTIAL = 1 << 8, /* sr */
	VMA_ADVICE_RANDOM = 1 << 9,     /* rr */
	VMA_ADVICE_NORESERVE = 1 << 10, /* nr: mapped MAP_NORESERVE (no swap accounted) */
	VMA_ADVICE_DROPPABLE = 1 << 11, /* dp: mapped MAP_DROPPABLE (private anonymous memory the
					 * kernel may free at any time: its pages are not saved) */
	VMA_ADVICE_SEALED = 1 << 12,    /* sl: mseal() (Linux 6.10), set last */
	VMA_ADVICE_ALL = (1 << 13) - 1,
};

/*
 * Saved pages: len bytes at vaddr come from offset off of the pages image. Runs in private
 * anonymous memory are filled with UFFDIO_COPY (no zeroing of pages that are overwritten
 * anyway); the others with pread.
 */
struct rst_run {
	uint64_t vaddr, len, off;
	uint32_t by_uffd;
	int32_t fd;           /* the pages image holding them (the process's own or an ancestor's) */
};

/* A special mapping ([vvar], [vvar_vclock], [vdso]) moved as a whole: from -> park -> to. */
struct rst_move {
	uint64_t from, len, park, to;
};

/* The kernel's struct prctl_mm_map. */
struct rst_mm_map {
	uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint64_t auxv; /* pointer */
	uint32_t auxv_size;
	uint32_t exe_fd;
};

struct rst_timeval {
	int64_t sec, usec;
};

struct rst_itimer {
	struct rst_timeval interval, value;
};

struct rst_rlimit {
	uint32_t resource;
	uint64_t cur, max;
};

struct rst_stack {
	uint64_t sp;
	int32_t flags;
	uint64_t size;
};

enum rst_step {
	RST_STEP_NONE,
	RST_STEP_UNMAP,
	RST_STEP_MOVE_SPECIAL,
	RST_STEP_MAP_VMA,
	RST_STEP_MADVISE,
	RST_STEP_READ_PAGES,
	RST_STEP_UFFD,
	RST_STEP_PAGES_HANDOFF, /* not a failure: the uffd is ready for the tracer's copies */
	RST_STEP_MPROTECT,
	RST_STEP_MLOCK,
	RST_STEP_MM_MAP,
	RST_STEP_RSEQ,
	RST_STEP_ROBUST_LIST,
	RST_STEP_ALTSTACK,
	RST_STEP_ITIMER,
	RST_STEP_THREADS,
	RST_STEP_CREDS,
	RST_STEP_POSIX_TIMER,
	RST_STEP_CLOSE,
	RST_STEP_DONE,
	RST_STEP_NAMESPACES, /* not a failure: the root's namespaces are made; it waits for stasis */
	RST_STEP_SECCOMP_READY, /* not a failure: threads exist; stasis attaches, seccomp suspended */
	RST_STEP_SECCOMP,
	RST_STEP_AIO,
	RST_STEP_GUARD,
	RST_STEP_PRCTL,
	RST_STEP_POSIX_LOCK,
	RST_STEP_THREAD_TABLES,
	RST_STEP_SEAL,
	RST_STEP_MEMPOLICY,
	RST_STEP_THREAD_CGROUP,
	RST_STEP_RING_FDS,
	RST_STEP_RING_BUFFERS,
};

/* Written by the new task to the status pipe: once, on success or failure. */
struct rst_status {
	int32_t pid;       /* which process of the tree reports */
	int32_t ok;
	int32_t step;      /* enum rst_step, or a negative step of the C phase */
	int32_t err;       /* negative errno */
	uint32_t rlimits_refused; /* bit per resource whose setrlimit was refused */
	uint64_t detail;   /* address of the VMA or run concerned */
	uint64_t region_start, region_len; /* for the tracer to remove after the restorer */
	int32_t uffd;      /* RST_STEP_PAGES_HANDOFF: the fd number of the userfaultfd */
	int32_t pad;
	char msg[256];     /* set by the C phase */
};

struct restorer_args {
	uint64_t region_start, region_len;
	uint64_t window;      /* RST_WINDOW_SIZE bytes inside the region */

	/* Everything outside these ranges is unmapped first (the region, the special maps, the
	 * reserves). */
	uint32_t nr_keep;
	struct { uint64_t start, end; } keep[RST_MAX_MOVES + 1 + RST_NR_RESERVES];
	/* Ranges stasis mapped before the tree was made (cr/free-range.c): where forkers filled
	 * private memory before forking (cr/cow-share.c), the shared memory objects stasis keeps
	 * as mappings (cr/shmem.c). Kept until the mappings taken from them are moved or copied,
	 * then unmapped (len 0: none). */
	struct { uint64_t start, len; } reserves[RST_NR_RESERVES];

	uint32_t nr_moves;
	struct rst_move moves[RST_MAX_MOVES];

	uint64_t nr_vmas, vmas_off; /* offsets from the start of this struct */
	uint64_t nr_mempolicies, mempolicies_off; /* struct rst_mempolicy, the mappings' */
	uint32_t mempolicy_threads; /* each thread sets its NUMA policy (some thread has one) */
	uint32_t pad_mempolicy;
	uint64_t nr_runs, runs_off;
	uint64_t nr_threads, threads_off;
	uint64_t nr_thread_signals, thread_signals_off;
	uint64_t nr_thread_cgroups, thread_cgroups_off;
	uint64_t nr_ring_fds, ring_fds_off; /* struct rst_ring_fd, of every thread */
	uint64_t nr_ring_buffers, ring_buffers_off; /* struct rst_ring_buffers */
	uint32_t threads_ready; /* futex word: threads that finished their own setup */
	uint32_t threads_done;  /* futex word: threads that took on their seccomp and credentials */
	uint64_t nr_posix_timers, posix_timers_off;
	uint64_t nr_posix_locks, posix_locks_off;
	uint64_t nr_aios, aios_off;
	uint64_t nr_guards, guards_off; /* struct rst_range: guard pages installed again */
	uint32_t mlock_future;  /* mlockall() flags once every mapping is made (MCL_FUTURE...) */
	int32_t aio_fd;     /* a memfd the AIO rings' filler writes go to */

	int32_t pages_fd;
	int32_t status_fd;
	int32_t ctl_fd;     /* stasis writes one byte here when it has copied the uffd runs */
	uint32_t lazy;      /* --lazy-pages: the uffd runs come later, on first touch or in the
			     * background (cr/lazy-pages.c): registered they stay */
	int32_t close_from, close_to; /* helper fds to close at the end (inclusive range) */
	int32_t fds_done_fd; /* a sharer of its parent's fd table: once the helpers are closed,
			      * fds_low goes here (the parent goes on with the table), -1 */
	int32_t fds_low;     /* its lowest helper fd still open then (status_fd, its sharers') */

	struct rst_mm_map mm_map;
	uint64_t auxv[RST_MAX_AUXV];

	uint64_t rseq_addr;
	uint32_t rseq_len, rseq_sig;

	uint64_t robust_list, robust_len, clear_child_tid;
	uint32_t pdeath_signal;
	struct rst_stack altstack;
	struct rst_itimer itimers[3];
	/*
	 * seccomp: when some thread has it, stasis attaches to every thread (RST_STEP_SECCOMP_READY)
	 * before any installs a filter. filters[0, seccomp_shared) are every thread's (inherited
	 * or synchronised): the main thread installs them with TSYNC, so that they stay one
	 * filter shared by all; each thread then takes on the rest of its own (seccomp_go).
	 */
	uint32_t seccomp_sync;
	uint32_t seccomp_shared;
	uint32_t seccomp_go;    /* futex word: the shared filters are in place */
	uint64_t nr_seccomp_filters, seccomp_filters_off;
	struct rst_seccomp seccomp; /* the main thread's */
	struct rst_creds creds; /* the main thread's */
	uint32_t tsc;           /* PR_SET_TSC before the threads are made (they inherit it); 0: leave */
	uint32_t mdwe;          /* PR_SET_MDWE once every mapping has its protection; 0: none */
	uint32_t cpuid_faulting; /* ARCH_SET_CPUID 0 before the threads are made (they inherit it) */
	int32_t dumpable;       /* PR_SET_DUMPABLE after the credentials (changing them resets it); -1: leave */
	uint32_t no_new_privs;  /* the main thread's PR_SET_NO_NEW_PRIVS, once its threads exist (each
				 * sets its own) */
	uint32_t nr_rlimits;
	struct rst_rlimit rlimits[RST_MAX_RLIMITS];

	struct rst_status status;
};

/* Offset of the entry point in the blob: 0 (see arch/x86_64/restorer.lds). */
void restorer_entry(struct restorer_args *args);

#endif
