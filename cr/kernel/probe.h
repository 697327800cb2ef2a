/*
 * What the kernel feature probes share: how an answer is recorded, how a probe runs in a
 * throwaway child (cr/kernel/probe-run.c), and the entry point of each probe
 * (cr/kernel/probes-*.c) that cr/kernel/features.c lists.
 */
#ifndef STASIS_KERNEL_PROBE_H
#define STASIS_KERNEL_PROBE_H

#include <stdbool.h>
#include <sys/types.h>

#include "kernel/features.h"

#define PROBE_DETAIL_LEN 200

/* The answer of one probe: yes or no, and words on why. */
struct probe_result {
	bool ok;
	char detail[PROBE_DETAIL_LEN];
	int error; /* <0: the probe could not tell (out of memory, said); not kept */
};

/* Records ok with a detail (printf-style; "%s", "" for none); returns ok. */
__attribute__((format(printf, 3, 4))) bool probe_set(struct probe_result *r, bool ok,
						      const char *fmt, ...);
/*
 * Runs fn in a forked child (killed after a few seconds): fn writes its words into r and
 * returns whether the feature is there; the child's answer and detail come back in r.
 */
bool probe_in_child(bool (*fn)(struct probe_result *r), struct probe_result *r);
/* Waits for pid, retrying on EINTR; the wait status, or -1. */
int probe_reap(pid_t pid);
void probe_close_pair(int p[2]);
/* read_file_at(AT_FDCWD, path): NULL if unreadable; running out of memory sets r->error. */
char *probe_read_file(struct probe_result *r, const char *path);

/* A probe of one feature: fills r, returns r->ok. */
typedef bool probe_one_fn(struct probe_result *r);
/* A probe of several features at once: fills res[f] for each feature f it owns. */
typedef void probe_group_fn(struct probe_result res[KF_NR]);

/* cr/kernel/probes-ptrace.c: every KF_PTRACE_*, process_vm_readv, map_files, seccomp's two */
probe_group_fn probe_tracee;

/* cr/kernel/probes-process.c */
probe_one_fn probe_mm_map, probe_clone3, probe_kcmp, probe_pidfd, probe_timens, probe_vdso,
	probe_caps, probe_cgroup2;

/* cr/kernel/probes-memory.c: userfaultfd and its write-protect modes, PAGEMAP_SCAN, both;
 * pagemap PFNs, soft-dirty, memfd_secret() */
probe_group_fn probe_write_tracking;
probe_one_fn probe_pagemap, probe_soft_dirty, probe_memfd_secret, probe_map_droppable,
	probe_pagemap_scan_guard;

/* cr/kernel/probes-files.c */
probe_one_fn probe_msg_copy, probe_timerfd_ticks, probe_timer_ids, probe_unix_diag,
	probe_file_handles, probe_fdinfo_locks, probe_openat2, probe_move_mount, probe_tcp_requeue;

#endif
