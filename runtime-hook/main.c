/*
 * The command line: criu's verbs and option spellings, so that engines can call this binary
 * as `criu`. Parses into the one options struct and dispatches.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "log.h"
#include "options.h"

struct stasis_opts opts = { .images_dir_fd = -1, .verbosity = LOG_WARN };

enum { OPT_SHELL_JOB = 1000, OPT_LEAVE_RUNNING, OPT_PIDFILE, OPT_FILE_LOCKS, OPT_EXT_UNIX_SK,
       OPT_INHERIT_FD };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: stasis dump -t PID -D DIR [--leave-running] [--shell-job] [--file-locks] [--ext-unix-sk] [-o LOG] [-v N]\n"
		"       stasis restore -D DIR [-d] [--shell-job] [--pidfile FILE] [--inherit-fd fd[N]:KEY]... [-o LOG] [-v N]\n"
		"       stasis show DIR|FILE...\n"
		"       stasis check\n"
		"       stasis --version\n");
}

/* --inherit-fd fd[N]:KEY (criu's spelling): the caller's fd N replaces the outside object KEY. */
static int add_inherit_fd(const char *arg)
{
	int fd, len = -1;

	if (sscanf(arg, "fd[%d]:%n", &fd, &len) != 1 || len < 0 || fd < 0 || !arg[len]) {
		fprintf(stderr, "stasis: --inherit-fd %s: expected fd[N]:KEY, e.g. fd[3]:socket:[12345]\n", arg);
		return -1;
	}
	if (fcntl(fd, F_GETFD) < 0) {
		fprintf(stderr, "stasis: --inherit-fd %s: fd %d is not open\n", arg, fd);
		return -1;
	}
	opts.inherit_fds = realloc(opts.inherit_fds, (opts.nr_inherit_fds + 1) * sizeof(*opts.inherit_fds));
	if (!opts.inherit_fds)
		return -1;
	opts.inherit_fds[opts.nr_inherit_fds++] = (struct inherit_fd){ fd, arg + len };
	return 0;
}

static int open_images_dir(void)
{
	const char *dir = opts.images_dir ? opts.images_dir : ".";

	opts.images_dir = dir;
	opts.images_dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (opts.images_dir_fd < 0) {
		fprintf(stderr, "stasis: images directory %s: %m\n", dir);
		return -1;
	}
	return 0;
}

static int setup_log(void)
{
	char path[4096];

	if (!opts.log_file)
		return log_init(opts.verbosity, NULL);
	if (opts.log_file[0] == '/' || !strcmp(opts.log_file, "-"))
		return log_init(opts.verbosity, opts.log_file);
	/* Like criu: a relative log file lives in the images (work) directory. */
	snprintf(path, sizeof(path), "%s/%s", opts.images_dir, opts.log_file);
	return log_init(opts.verbosity, path);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "tree", required_argument, NULL, 't' },
		{ "images-dir", required_argument, NULL, 'D' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "verbosity", optional_argument, NULL, 'v' },
		{ "shell-job", no_argument, NULL, OPT_SHELL_JOB },
		{ "leave-running", no_argument, NULL, OPT_LEAVE_RUNNING },
		{ "restore-detached", no_argument, NULL, 'd' },
		{ "pidfile", required_argument, NULL, OPT_PIDFILE },
		{ "file-locks", no_argument, NULL, OPT_FILE_LOCKS },
		{ "ext-unix-sk", optional_argument, NULL, OPT_EXT_UNIX_SK },
		{ "inherit-fd", required_argument, NULL, OPT_INHERIT_FD },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *cmd;
	int c, ret;

	if (argc >= 2 && (!strcmp(argv[1], "show") || !strcmp(argv[1], "check")))
		return !strcmp(argv[1], "show") ? cmd_show(argc - 1, argv + 1)
						: cmd_check(argc - 1, argv + 1);

	while ((c = getopt_long(argc, argv, "t:D:o:v::jRdlx::Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			opts.pid = atoi(optarg);
			if (opts.pid <= 0) {
				fprintf(stderr, "stasis: -t %s: not a pid\n", optarg);
				return 1;
			}
			break;
		case 'D': opts.images_dir = optarg; break;
		case 'o': opts.log_file = optarg; break;
		case 'v':
			if (!optarg)
				opts.verbosity++;
			else if (optarg[0] == 'v') /* -vvv */
				opts.verbosity += 1 + strspn(optarg, "v");
			else
				opts.verbosity = atoi(optarg);
			break;
		case 'j':
		case OPT_SHELL_JOB: opts.shell_job = true; break;
		case 'R':
		case OPT_LEAVE_RUNNING: opts.leave_running = true; break;
		case 'd': opts.restore_detached = true; break;
		case OPT_PIDFILE: opts.pidfile = optarg; break;
		case 'l':
		case OPT_FILE_LOCKS: opts.file_locks = true; break;
		case 'x':
		case OPT_EXT_UNIX_SK: opts.ext_unix_sk = true; break;
		case OPT_INHERIT_FD:
			if (add_inherit_fd(optarg))
				return 1;
			break;
		case 'V': printf("Version: %s\n", STASIS_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	cmd = argv[optind];
	opts.fault_inject = getenv("STASIS_FAULT");
	if (!strcmp(cmd, "show") || !strcmp(cmd, "check"))
		return !strcmp(cmd, "show") ? cmd_show(argc - optind, argv + optind)
					    : cmd_check(argc - optind, argv + optind);
	if (strcmp(cmd, "dump") && strcmp(cmd, "restore")) {
		fprintf(stderr, "stasis: unknown command '%s'\n", cmd);
		usage(stderr);
		return 1;
	}
	if (open_images_dir() || setup_log())
		return 1;
	ret = !strcmp(cmd, "dump") ? cr_dump() : cr_restore();
	log_close();
	if (ret < 0)
		return 1;
	return ret; /* restore without -d: the restored task's exit code */
}
