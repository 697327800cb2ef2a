#include "task.h"
#include "util.h"

/* Dump order is this order; restore runs each ->restore in this order too. */
const struct state_ops *const state_table[] = {
	&state_cgroups,    /* cr/cgroups.c: first, a new process moves into its cgroups */
	&state_namespaces, /* cr/namespaces.c: to refuse a tree in namespaces not restored */
	&state_lsm,     /* cr/lsm.c: dump only, to refuse a thread under another security label */
	&state_regs,    /* arch/x86_64/regs.c */
	&state_kernel_task, /* cr/kernel-task.c: rseq, robust list, tid address */
	&state_signals, /* cr/signals.c */
	&state_attrs,   /* cr/proc-attrs.c */
	&state_knobs,   /* cr/proc-knobs.c: oom_score_adj, loginuid, coredump_filter */
	&state_controls, /* cr/proc-controls.c: prctl TSC, MCE kill, MDWE, speculation, ... */
	&state_posix_timers, /* cr/posix-timers.c */
	&state_mm,      /* cr/mm.c */
	&state_mempolicy, /* cr/mempolicy.c (its mappings' policies: after the layout) */
	&state_aio,     /* cr/aio.c (after the layout: its rings are mappings) */
	&state_membarrier, /* cr/membarrier.c (registrations of the memory) */
	&state_keyrings, /* cr/keyrings.c (refused: the process's and main thread's own keys) */
	&state_ldt,     /* arch/x86_64/ldt.c (the memory's descriptor table; before dirty-track) */
	&state_dirty_track, /* cr/dirty-track.c: after the mappings, before fds (skips its own) */
	&state_fds,     /* cr/files/fdtable.c */
	&state_io_uring_ring_fds, /* cr/files/io-uring-ring-fds.c (the fds' instances, by thread) */
	&state_io_uring_buffers, /* cr/files/io-uring-buffers.c (restore only: the fds' buffers, for the blob) */
	&state_io_uring_files, /* cr/files/io-uring-files.c (restore only: once the fds are in place) */
	&state_threads, /* cr/threads.c (while the scratch page for injection still exists) */
	&state_sched,   /* cr/sched.c (after threads: every thread's) */
	&state_host_sems, /* cr/ipc-host-sem.c: SEM_UNDO taken again (before its credentials) */
	&state_creds,   /* cr/creds.c (after threads: their table in the blob's arguments) */
	&state_seccomp, /* cr/seccomp.c (after threads: their table in the blob's arguments) */
	&state_job_stop, /* cr/job-stop.c (the last to run syscalls in the task: a stop meanwhile) */
	&state_pages,   /* cr/pages.c (last: the task is frozen longest for it) */
};
const unsigned state_table_len = ARRAY_SIZE(state_table);
