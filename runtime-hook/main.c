/*
 * The command line: criu's verbs and options, so that engines and scripts can call this
 * binary as `criu`. Options come from criu's configuration files first (unless
 * --no-default-config), then --config, then the command line; they fill one options
 * struct, the run context is made from it, and the engine gets the context.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "faces.h"
#include "log.h"
#include "run.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: stasis dump -t PID -D DIR [--prev-images-dir DIR] [--track-mem] [options]\n"
		"       stasis pre-dump -t PID -D DIR [--prev-images-dir DIR] [--auto-dedup]\n"
		"       stasis page-server -D DIR --port N [--address A] [--daemon] [--status-fd FD]\n"
		"       stasis dump|pre-dump ... --page-server --address A --port N\n"
		"       stasis lazy-pages -D DIR [--page-server --address A --port N] [--daemon]\n"
		"       stasis restore -D DIR --lazy-pages [--page-server --address A --port N]\n"
		"       stasis restore -D DIR [-d] [options]\n"
		"       stasis show DIR|FILE...\n"
		"       stasis check [--feature NAME]\n"
		"       stasis swrk FD     (criu's RPC on a SOCK_SEQPACKET socket, for engines)\n"
		"       stasis --version\n"
		"Options are criu's (criu(8)); e.g. --leave-running, --shell-job, --file-locks,\n"
		"--ext-unix-sk, --inherit-fd fd[N]:KEY, --pidfile FILE, -o LOG, -v N, -W DIR.\n");
}

static int open_dir(const char *what, const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		fprintf(stderr, "stasis: %s %s: %m\n", what, dir);
	return fd;
}

static int setup_log(const struct stasis_opts *o, int work_dir_fd)
{
	char path[4096];

	if (!o->log_file)
		return log_init(o->verbosity, NULL);
	if (o->log_file[0] == '/' || !strcmp(o->log_file, "-"))
		return log_init(o->verbosity, o->log_file);
	/* Like criu: a relative log file lives in the work directory. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", work_dir_fd, o->log_file);
	return log_init(o->verbosity, path);
}

/* --action-script: every script at every notification point (the root's pid at restore). */
static int run_action_scripts(const struct run_ctx *ctx, const char *point, int pid, int fd)
{
	const bool *restore = ctx->face;

	(void)fd;
	return action_scripts_run(&ctx->opts->action_scripts, point, *restore ? pid : 0);
}

/* criu's order: default files, then --config, then the command line (applied again last). */
static int read_options(struct stasis_opts *o, int argc, char **argv, int *first_word)
{
	struct stasis_opts first;
	const char *env = getenv("CRIU_CONFIG_FILE"), *home = getenv("HOME");
	char home_conf[4096];
	int err;

	cli_opts_init(o);
	cli_opts_init(&first);
	err = cli_parse(&first, argc, argv, first_word);
	if (!err && !first.no_default_config) {
		err = cli_parse_config(o, "/etc/criu/default.conf", false);
		if (!err && home) {
			snprintf(home_conf, sizeof(home_conf), "%s/.criu/default.conf", home);
			err = cli_parse_config(o, home_conf, false);
		}
		if (!err && env)
			err = cli_parse_config(o, env, true);
	}
	if (!err && first.config_file)
		err = cli_parse_config(o, first.config_file, true);
	cli_opts_free(&first);
	return err ? err : cli_parse(o, argc, argv, first_word);
}

static int run_verb(const struct stasis_opts *o, const char *verb)
{
	const char *images = o->images_dir ? o->images_dir : ".";
	bool restore = !strcmp(verb, "restore");
	struct run_ctx ctx;
	int images_fd, work_fd, ret;

	if ((images_fd = open_dir("images directory", images)) < 0)
		return 1;
	work_fd = o->work_dir ? open_dir("work directory", o->work_dir) : dup(images_fd);
	if (work_fd < 0 || setup_log(o, work_fd)) {
		close(images_fd);
		return 1;
	}
	run_ctx_init(&ctx, o, images_fd, work_fd);
	if (o->action_scripts.n) {
		ctx.notify = run_action_scripts;
		ctx.face = &restore;
	}
	if (!strcmp(verb, "page-server") || !strcmp(verb, "lazy-pages")) {
		ret = serve_maybe_daemon(&ctx, verb[0] == 'p' ? cr_page_server : cr_lazy_pages) ? -EIO : 0;
	} else {
		ret = restore ? cr_restore(&ctx) : o->pre_dump ? cr_pre_dump(&ctx) : cr_dump(&ctx);
		if (ret >= 0)
			stats_file_write(&ctx, restore);
	}
	run_ctx_fini(&ctx);
	log_close();
	close(work_fd);
	close(images_fd);
	if (ret < 0)
		return 1;
	return ret; /* restore without -d: the restored task's exit code */
}

/* The verb at argv[first] with opts (read from the command line). */
static int run_command(struct stasis_opts *o, int argc, char **argv, int first)
{
	static const char *const not_built[][2] = {
		{ "service", "the RPC service is not supported yet" },
		{ "dedup", "page deduplication of incremental images is not supported yet" },
		{ "cpuinfo", "cpuinfo images are not supported: stasis checks the xsave layout instead" },
		{ "exec", "exec is deprecated in criu and not supported" },
	};
	const char *verb;

	if (o->show_version) {
		printf("Version: %s\nstasis %s, a checkpoint/restore engine speaking criu %s\n",
		       CRIU_DIALECT, STASIS_VERSION, CRIU_DIALECT);
		return 0;
	}
	if (o->show_help) {
		usage(stdout);
		return 0;
	}
	if (first >= argc) {
		fprintf(stderr, "stasis: no command given (dump, restore, check, show)\n");
		return 1;
	}
	verb = argv[first];
	o->fault_inject = getenv("STASIS_FAULT");
	if (o->fault_inject && !strncmp(o->fault_inject, "alloc-", 6)) {
		char *end;
		unsigned long n = strtoul(o->fault_inject + 6, &end, 10);
		if (*end || !n) {
			fprintf(stderr, "stasis: STASIS_FAULT=%s: expected alloc-N, N >= 1\n",
				o->fault_inject);
			return 1;
		}
		alloc_fail_at(n); /* the Nth allocation of this process (and of each it forks) fails */
	}
	if (!strcmp(verb, "show"))
		return cmd_show(argc - first, argv + first);
	if (!strcmp(verb, "check"))
		return cmd_check(o);
	for (size_t i = 0; i < sizeof(not_built) / sizeof(not_built[0]); i++) {
		if (!strcmp(verb, not_built[i][0])) {
			fprintf(stderr, "stasis: %s: %s\n", verb, not_built[i][1]);
			return 1;
		}
	}
	if (strcmp(verb, "dump") && strcmp(verb, "restore") && strcmp(verb, "pre-dump") &&
	    strcmp(verb, "page-server") && strcmp(verb, "lazy-pages")) {
		fprintf(stderr, "stasis: unknown command '%s' (dump, pre-dump, restore, page-server, "
				"lazy-pages, check, show)\n", verb);
		return 1;
	}
	o->pre_dump = !strcmp(verb, "pre-dump");
	if (first + 1 < argc) {
		fprintf(stderr, "stasis: %s: unexpected argument '%s'\n", verb, argv[first + 1]);
		return 1;
	}
	return run_verb(o, verb);
}

int main(int argc, char **argv)
{
	struct stasis_opts opts;
	int first, rc;

	/* a SIGCHLD its caller ignored (SIG_IGN survives exec) reaps stasis's children before it
	 * waits for them (its kernel probes said "missing", restores failed) */
	signal(SIGCHLD, SIG_DFL);
	if (argc >= 2 && !strcmp(argv[1], "show"))
		return cmd_show(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "swrk"))
		return cmd_swrk(argc - 1, argv + 1);
	if (read_options(&opts, argc, argv, &first))
		rc = 1;
	else
		rc = run_command(&opts, argc, argv, first);
	cli_opts_free(&opts);
	return rc;
}
