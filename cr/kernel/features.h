/*
 * What this kernel offers the engine, found out by using each interface once (never by the
 * kernel version). Each feature is probed on its first use and the answer kept for the rest
 * of the process: the kernel does not change under a run, so this is the one table that
 * lives outside a run context. Probes that need a child (a tracee, clone3, changes to the
 * mm) fork it, reap it and release every fd and mapping before they return.
 *
 * dump and restore call kernel_refuse_missing() before they touch anything; `stasis check`
 * prints every feature (kernel_feature_report); cr/kernel/criu-features.h answers criu's
 * `check --feature NAME`.
 */
#ifndef STASIS_KERNEL_FEATURES_H
#define STASIS_KERNEL_FEATURES_H

#include <stdbool.h>

#include "run.h"

/* In the order `stasis check` prints them. */
enum kernel_feature {
	/* ptrace, on a stopped child (cr/kernel/probes-ptrace.c) */
	KF_PTRACE_SEIZE,
	KF_PTRACE_GET_RSEQ_CONF,
	KF_PTRACE_PEEKSIGINFO,
	KF_PTRACE_XSTATE,
	KF_PROCESS_VM_READV,
	KF_MAP_FILES,
	KF_SECCOMP_GET_FILTER,
	KF_SECCOMP_SUSPEND,
	/* processes (cr/kernel/probes-process.c) */
	KF_PR_SET_MM_MAP,
	KF_CLONE3_SET_TID,
	KF_KCMP,
	KF_PIDFD_GETFD,
	KF_TIME_NS,
	KF_VDSO_LAYOUT,
	KF_CAPABILITIES,
	KF_CGROUP_V2,
	/* memory (cr/kernel/probes-memory.c) */
	KF_PAGEMAP_PFN,
	KF_USERFAULTFD,
	KF_UFFD_WP,
	KF_UFFD_WP_UNPOPULATED,
	KF_UFFD_WP_ASYNC,
	KF_PAGEMAP_SCAN,
	KF_DIRTY_TRACKING, /* async uffd-wp + PAGEMAP_SCAN: writes since the last scan */
	KF_SOFT_DIRTY,
	KF_MEMFD_SECRET, /* memfd_secret(): restoring secret memory makes it again */
	KF_MAP_DROPPABLE, /* mmap(MAP_DROPPABLE): restoring such memory maps it so again */
	KF_PAGEMAP_SCAN_GUARD, /* PAGEMAP_SCAN's PAGE_IS_GUARD (6.15): guard pages are seen */
	/* fds, IPC, paths (cr/kernel/probes-files.c) */
	KF_MSG_COPY,
	KF_TIMERFD_SET_TICKS,
	KF_POSIX_TIMER_IDS,
	KF_UNIX_DIAG,
	KF_FILE_HANDLES,
	KF_FDINFO_LOCKS,
	KF_OPENAT2,
	KF_MOVE_MOUNT_SET_GROUP,
	KF_TCP_REQUEUE, /* connections put back in a TCP listener's accept queue (TCX + kfunc) */
	KF_NR
};

/* What a dump or a restore of any process cannot do without. */
enum kernel_need { KF_NEEDED_BY_DUMP = 1, KF_NEEDED_BY_RESTORE = 2 };

/* One feature as `stasis check` shows it. */
struct kernel_feature_report {
	const char *name;   /* "clone3 with set_tid" */
	const char *key;    /* "clone3_set_tid": STASIS_FAULT=kernel-lacks:KEY pretends it is missing */
	unsigned needed_by; /* enum kernel_need bits; 0: optional */
	bool counted;       /* false: shown for information, never counted as missing */
	bool present;
	const char *detail; /* what was found, or why not; "" if nothing to add */
	int error;          /* <0: the probe could not tell (said); present is false */
};

/* Probes f (and the features probed along with it) on the first call. */
bool kernel_has(enum kernel_feature f);
const struct kernel_feature_report *kernel_feature_report(enum kernel_feature f);
/* Every feature answered present without a probe (the fuzz targets: no probe's child starts). */
void kernel_features_assume_present(void);

/*
 * Before a dump (need KF_NEEDED_BY_DUMP) or a restore: 0 if this kernel has every feature
 * that work needs; else logs which one is missing and why it is needed, and returns
 * -EOPNOTSUPP. Nothing has been touched when it refuses.
 */
int kernel_refuse_missing(const struct run_ctx *ctx, enum kernel_need need);
/* The same for one optional feature that what ("pre-dump", "lazy restore") cannot do without. */
int kernel_refuse_lacking(const struct run_ctx *ctx, enum kernel_feature f, const char *what);

#endif
