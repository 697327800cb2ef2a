/*
 * What the faces share: the criu dialect they speak, the notification scripts
 * (--action-script), the stats files engines read, and the RPC server (stasis swrk).
 */
#ifndef STASIS_FACES_H
#define STASIS_FACES_H

#include <stdbool.h>

#include "run.h"

/* The criu version stasis answers as: engines gate features on it (Podman needs 3.11, crun
 * 3.15, runc 3.16 for cgroup v2). */
#define CRIU_DIALECT "3.17"
#define CRIU_DIALECT_MAJOR 3
#define CRIU_DIALECT_MINOR 17
#define CRIU_DIALECT_SUBLEVEL 0

/*
 * Why criu's option name (its command-line spelling: "skip-mnt"; "tls" covers every --tls*)
 * is refused: a feature not built yet. NULL if it is not one of those.
 */
const char *criu_option_not_built(const char *name);

/*
 * Runs every script of the list at a notification point, as criu does: `sh -c SCRIPT` with
 * CRTOOLS_SCRIPT_ACTION=point (and CRTOOLS_INIT_PID=init_pid when init_pid > 0) in its
 * environment. 0, or -ECANCELED once a script failed (said, naming it).
 */
int action_scripts_run(const struct opt_list *scripts, const char *point, int init_pid);

/*
 * stats-dump (restore: stats-restore) in the run's work directory, in criu's format, from
 * ctx->stats; with --display-stats also on stdout. A failure is a warning: the run is done.
 */
void stats_file_write(const struct run_ctx *ctx, bool restore);

/*
 * runtime-hook/serve.c: serve(ctx, ready, arg) in the foreground, or with --daemon in the
 * background (this returns once it listens, its pid in --pidfile). The exit code.
 */
int serve_maybe_daemon(struct run_ctx *ctx,
		       int (*serve)(struct run_ctx *, void (*)(void *, int), void *));

/* stasis swrk FD (argv[0] is "swrk"): serves criu RPC requests on FD until the engine
 * closes it. The exit code: 0 if the last request succeeded. */
int cmd_swrk(int argc, char **argv);

#endif
