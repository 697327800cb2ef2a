/*
 * The kernel features the engine knows: each one's name, who needs it and which probe
 * answers it; every answer kept once probed (cr/kernel/features.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kernel/probe.h"
#include "log.h"

#define DUMP KF_NEEDED_BY_DUMP
#define RESTORE KF_NEEDED_BY_RESTORE

struct feature_desc {
	const char *name, *key;
	unsigned needed_by;
	bool info_only;       /* shown, never counted as missing */
	const char *why;      /* what a dump or restore without it could not do */
	probe_one_fn *one;    /* either this probe answers the feature alone, */
	probe_group_fn *group; /* or this one, along with every feature naming it */
};

static const struct feature_desc features[KF_NR] = {
	[KF_PTRACE_SEIZE] = { "ptrace seize/interrupt", "ptrace_seize", DUMP,
		.why = "the tree cannot be frozen", .group = probe_tracee },
	[KF_PTRACE_GET_RSEQ_CONF] = { "PTRACE_GET_RSEQ_CONFIGURATION", "get_rseq_conf", DUMP,
		.why = "the rseq areas every thread registers cannot be read", .group = probe_tracee },
	[KF_PTRACE_PEEKSIGINFO] = { "PTRACE_PEEKSIGINFO", "peeksiginfo", DUMP,
		.why = "pending signals cannot be read", .group = probe_tracee },
	[KF_PTRACE_XSTATE] = { "PTRACE_GETREGSET NT_X86_XSTATE", "xstate", DUMP,
		.why = "FPU/AVX registers cannot be read", .group = probe_tracee },
	[KF_PROCESS_VM_READV] = { "process_vm_readv", "process_vm_readv", DUMP,
		.why = "memory cannot be read", .group = probe_tracee },
	[KF_MAP_FILES] = { "/proc/PID/map_files", "map_files", DUMP,
		.why = "shared and file mappings cannot be opened", .group = probe_tracee },
	[KF_SECCOMP_GET_FILTER] = { "PTRACE_SECCOMP_GET_FILTER", "seccomp_get_filter", 0,
		.group = probe_tracee },
	[KF_SECCOMP_SUSPEND] = { "PTRACE_O_SUSPEND_SECCOMP", "seccomp_suspend", 0,
		.group = probe_tracee },

	[KF_PR_SET_MM_MAP] = { "prctl PR_SET_MM_MAP", "pr_set_mm_map", RESTORE,
		.why = "the mm layout (brk, arguments, environment, auxv) cannot be set",
		.one = probe_mm_map },
	[KF_CLONE3_SET_TID] = { "clone3 with set_tid", "clone3_set_tid", RESTORE,
		.why = "restored processes cannot get their pids back", .one = probe_clone3 },
	[KF_KCMP] = { "kcmp", "kcmp", DUMP,
		.why = "files shared between fds and processes cannot be told apart",
		.one = probe_kcmp },
	[KF_PIDFD_GETFD] = { "pidfd_open/pidfd_getfd", "pidfd_getfd", DUMP | RESTORE,
		.why = "the tree's fds cannot be copied", .one = probe_pidfd },
	[KF_TIME_NS] = { "time namespaces", "time_ns", 0, .one = probe_timens },
	[KF_VDSO_LAYOUT] = { "vDSO layout", "vdso", 0, .one = probe_vdso },
	[KF_CAPABILITIES] = { "capabilities", "capabilities", 0, .one = probe_caps },
	[KF_CGROUP_V2] = { "cgroup v2", "cgroup_v2", 0, .one = probe_cgroup2 },

	[KF_PAGEMAP_PFN] = { "pagemap with PFNs", "pagemap_pfn", DUMP,
		.why = "pages shared with a parent cannot be found", .one = probe_pagemap },
	[KF_USERFAULTFD] = { "userfaultfd", "userfaultfd", 0, .group = probe_write_tracking },
	[KF_UFFD_WP] = { "userfaultfd write-protect (UFFD_FEATURE_PAGEFAULT_FLAG_WP)", "uffd_wp", 0,
		.group = probe_write_tracking },
	[KF_UFFD_WP_UNPOPULATED] = {
		"userfaultfd WP of unpopulated pages (UFFD_FEATURE_WP_UNPOPULATED)",
		"uffd_wp_unpopulated", 0, .group = probe_write_tracking },
	[KF_UFFD_WP_ASYNC] = { "userfaultfd async write-protect (UFFD_FEATURE_WP_ASYNC)",
		"uffd_wp_async", 0, .group = probe_write_tracking },
	[KF_PAGEMAP_SCAN] = { "PAGEMAP_SCAN ioctl", "pagemap_scan", 0,
		.group = probe_write_tracking },
	[KF_DIRTY_TRACKING] = { "dirty page tracking (uffd-wp + PAGEMAP_SCAN)", "dirty_tracking", 0,
		.group = probe_write_tracking },
	/* Expected to be missing on this kernel generation, and not needed. */
	[KF_SOFT_DIRTY] = { "soft-dirty bits", "soft_dirty", 0, .info_only = true,
		.one = probe_soft_dirty },
	[KF_MEMFD_SECRET] = { "memfd_secret", "memfd_secret", 0, .one = probe_memfd_secret },
	[KF_MAP_DROPPABLE] = { "mmap MAP_DROPPABLE", "map_droppable", 0, .one = probe_map_droppable },
	[KF_PAGEMAP_SCAN_GUARD] = { "PAGEMAP_SCAN of guard pages (PAGE_IS_GUARD)", "pagemap_scan_guard", 0,
		.one = probe_pagemap_scan_guard },

	[KF_MSG_COPY] = { "msgrcv MSG_COPY", "msg_copy", 0, .one = probe_msg_copy },
	[KF_TIMERFD_SET_TICKS] = { "timerfd TFD_IOC_SET_TICKS", "timerfd_set_ticks", 0,
		.one = probe_timerfd_ticks },
	[KF_POSIX_TIMER_IDS] = { "POSIX timer ids (PR_TIMER_CREATE_RESTORE_IDS)", "posix_timer_ids",
		0, .one = probe_timer_ids },
	[KF_UNIX_DIAG] = { "unix sock_diag", "unix_diag", 0, .one = probe_unix_diag },
	[KF_FILE_HANDLES] = { "file handles", "file_handles", 0, .one = probe_file_handles },
	[KF_FDINFO_LOCKS] = { "file locks in fdinfo", "fdinfo_locks", 0, .one = probe_fdinfo_locks },
	[KF_OPENAT2] = { "openat2 with RESOLVE_IN_ROOT", "openat2", 0, .one = probe_openat2 },
	[KF_MOVE_MOUNT_SET_GROUP] = { "move_mount with MOVE_MOUNT_SET_GROUP", "move_mount_set_group",
		0, .one = probe_move_mount },
	[KF_TCP_REQUEUE] = { "TCP connections put back in an accept queue (TCX, bpf_sk_assign_tcp_reqsk)",
		"tcp_requeue", 0, .one = probe_tcp_requeue },
};

/* The answers, per process: probed[f] once res[f] holds the kernel's answer. */
static struct {
	pthread_mutex_t lock;
	bool probed[KF_NR];
	struct probe_result res[KF_NR];
	struct kernel_feature_report reports[KF_NR];
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void mark_probed(enum kernel_feature f)
{
	cache.probed[f] = !cache.res[f].error; /* could not tell: asked again next time */
	cache.reports[f] = (struct kernel_feature_report){
		.error = cache.res[f].error,
		.name = features[f].name,
		.key = features[f].key,
		.needed_by = features[f].needed_by,
		.counted = !features[f].info_only,
		.present = cache.res[f].ok,
		.detail = cache.res[f].detail,
	};
}

static void probe(enum kernel_feature f)
{
	const struct feature_desc *d = &features[f];

	for (unsigned i = 0; i < KF_NR; i++)
		if (i == f || (!d->one && features[i].group == d->group))
			cache.res[i].error = 0;
	if (d->one) {
		d->one(&cache.res[f]);
		mark_probed(f);
		return;
	}
	d->group(cache.res);
	for (unsigned i = 0; i < KF_NR; i++)
		if (features[i].group == d->group)
			mark_probed(i);
}

const struct kernel_feature_report *kernel_feature_report(enum kernel_feature f)
{
	pthread_mutex_lock(&cache.lock);
	if (!cache.probed[f])
		probe(f);
	pthread_mutex_unlock(&cache.lock);
	return &cache.reports[f];
}

bool kernel_has(enum kernel_feature f)
{
	return kernel_feature_report(f)->present;
}

void kernel_features_assume_present(void)
{
	pthread_mutex_lock(&cache.lock);
	for (unsigned f = 0; f < KF_NR; f++) {
		probe_set(&cache.res[f], true, "assumed, not probed");
		cache.res[f].error = 0;
		mark_probed(f);
	}
	pthread_mutex_unlock(&cache.lock);
}

/* STASIS_FAULT=kernel-lacks:KEY: a test's way to see the refusal on a kernel that has KEY. */
static bool pretend_missing(const struct run_ctx *ctx, enum kernel_feature f)
{
	char point[64];

	snprintf(point, sizeof(point), "kernel-lacks:%s", features[f].key);
	return run_fault(ctx, point);
}

int kernel_refuse_missing(const struct run_ctx *ctx, enum kernel_need need)
{
	const char *verb = need == KF_NEEDED_BY_DUMP ? "dump" : "restore";

	for (unsigned f = 0; f < KF_NR; f++) {
		if (!(features[f].needed_by & need))
			continue;
		bool faked = pretend_missing(ctx, f);
		const struct kernel_feature_report *rep = kernel_feature_report(f);
		if (rep->error)
			return rep->error;
		if (rep->present && !faked)
			continue;
		const char *detail = faked ? "STASIS_FAULT says so" : rep->detail;
		pr_err("%s: this kernel lacks %s: %s%s%s%s; nothing was %s", verb, rep->name,
		       features[f].why, detail[0] ? " (" : "", detail, detail[0] ? ")" : "",
		       need == KF_NEEDED_BY_DUMP ? "frozen" : "started");
		return -EOPNOTSUPP;
	}
	return 0;
}

int kernel_refuse_lacking(const struct run_ctx *ctx, enum kernel_feature f, const char *what)
{
	const struct kernel_feature_report *rep = kernel_feature_report(f);
	bool faked = pretend_missing(ctx, f);
	const char *detail = faked ? "STASIS_FAULT says so" : rep->detail;

	if (rep->present && !faked)
		return 0;
	pr_err("%s needs %s, which this kernel lacks%s%s%s; nothing was done", what, rep->name,
	       detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
	return -EOPNOTSUPP;
}
