/*
 * One run of the engine (a dump or a restore): what a face asked for, where the images are,
 * and the state every kind of tree-wide object keeps for this run only. A face (the command
 * line, the RPC server) fills one and hands it to cr_dump() or cr_restore(); two runs in one
 * process share nothing.
 */
#ifndef STASIS_RUN_H
#define STASIS_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "options.h"

struct tree_object_ops;
struct run_ctx;

struct run_slot {
	const struct tree_object_ops *kind;
	void *state;
};

/*
 * A second set of states for some kinds, while they run once more for another object of the
 * tree than the one they serve in the run itself: the network configuration kinds for each
 * network namespace a process of the tree made (netns/net-nested.c). While ctx->scope is set,
 * run_state gives a kind of the scope the scope's state, and the kinds name their images
 * with the scope's id (run_scope_id).
 */
struct run_scope {
	struct run_slot *slots;
	size_t nr_slots;
	uint32_t image_id; /* not 0 */
};

/*
 * A face's hook at criu's notification points ("pre-dump", "network-lock", "post-dump",
 * "network-unlock", "pre-restore", "setup-namespaces", "post-setup-namespaces",
 * "post-restore", "pre-resume", "post-resume", "orphan-pts-master", "status-ready": a lazy
 * dump serves its pages): pid is the tree's root where one exists (else 0), fd one to hand
 * over (else -1). Returns 0 to go on, or a negative errno, having said why, to fail the run.
 */
typedef int (*run_notify_fn)(const struct run_ctx *ctx, const char *point, int pid, int fd);

/*
 * What a run measured, for the faces' stats-dump / stats-restore files (times in
 * microseconds). A dump reads each task's memory and writes its pages in one pipeline:
 * memdump covers the collection with those pages, memwrite the images written after it.
 */
struct run_stats {
	uint64_t freezing_us, frozen_us, memdump_us, memwrite_us;
	uint64_t exit_wait_us; /* from the kill after a dump to the tree's exit (not frozen time) */
	uint64_t pages_scanned, pages_written, pages_skipped_parent;
	uint64_t forking_us, restore_us;
	uint64_t pages_restored;
};

struct run_ctx {
	const struct stasis_opts *opts;
	int images_dir_fd; /* images are read and written here */
	int images_dest_fd; /* (pre-)dump: the images directory the new image set moves into once
			     * complete (images_dir_fd is the set's own directory); else -1 */
	int work_dir_fd;   /* the log, stats and pidfile: -W, else the images directory */
	int tree_root_fd;  /* restore: the tree's root, where its paths resolve in stasis (-1: /) */
	run_notify_fn notify; /* the face's, or NULL */
	void *face;        /* the face's own data, for notify */
	struct run_slot *slots; /* every tree-wide kind's state (run_states_make) */
	size_t nr_slots;
	const struct run_scope *scope; /* while some kinds run again for another object, or NULL */
	unsigned fault_hits; /* STASIS_FAULT=kill-at:POINT:N: times POINT was passed */
	struct run_stats stats; /* filled by cr_dump / cr_restore */
	int restored_pid;  /* restore: the tree's root, once it runs */
};

/* A context for opts; the caller owns the directory fds. */
void run_ctx_init(struct run_ctx *ctx, const struct stasis_opts *opts, int images_dir_fd,
		  int work_dir_fd);
/* A zeroed state of kind->state_size for each of n kinds, before any kind runs; -ENOMEM. */
int run_states_make(struct run_ctx *ctx, const struct tree_object_ops *const *kinds, size_t n);
/* This run's state of kind (made by run_states_make), or the scope's while one is set. */
void *run_state(const struct run_ctx *ctx, const struct tree_object_ops *kind);
/* A scope's zeroed states for the kinds of the table for which want() is true; -ENOMEM. */
int run_scope_make(struct run_scope *scope, uint32_t image_id,
		   bool (*want)(const struct tree_object_ops *kind));
void run_scope_free(struct run_scope *scope);
/* The id of the images the kinds write and read now: the scope's, else 0. */
uint32_t run_scope_id(const struct run_ctx *ctx);
/* Frees every kind's state (with its free_state). */
void run_ctx_fini(struct run_ctx *ctx);

/* The face's hook at a notification point (0 if it has none). */
int run_notify(const struct run_ctx *ctx, const char *point, int pid, int fd);

/*
 * Nonzero when STASIS_FAULT names this point (tests inject failures); STASIS_FAULT=kill-at:POINT
 * makes stasis SIGKILL itself there instead.
 */
bool run_fault(const struct run_ctx *ctx, const char *point);
/* For points passed many times: STASIS_FAULT=kill-at:POINT:N kills stasis the Nth time. */
void run_fault_count(struct run_ctx *ctx, const char *point);

int cr_dump(struct run_ctx *ctx);
/* Memory only, the tree left running and its writes tracked for the next dump of the chain. */
int cr_pre_dump(struct run_ctx *ctx);
/* One page server session (cr/page-server.c); ready(arg, port) once it listens. */
int cr_page_server(struct run_ctx *ctx, void (*ready)(void *arg, int port), void *arg);
/* stasis lazy-pages (cr/lazy-restore.c): serves one lazy restore; ready(arg, -1) once it
 * listens (lazy-pages.socket in the work directory). */
int cr_lazy_pages(struct run_ctx *ctx, void (*ready)(void *arg, int port), void *arg);
/* 0 (detached), the restored root's exit code, or a negative errno. */
int cr_restore(struct run_ctx *ctx);
/* The restore's first step alone: every image of the images directory read and checked
 * (each kind's validate), nothing made, no process started (the fuzz targets). */
int cr_restore_check_images(struct run_ctx *ctx);

#endif
