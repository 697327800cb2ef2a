/*
 * libcriu-client: a C program using criu's library interface, linked against stasis's
 * libcriu.so.2, for tests/rpc/run-rpc.sh. The service binary is stasis (given first).
 *
 *   libcriu-client STASIS version             "version N" (criu_get_version), and
 *                                             criu_check_version(31500) / (99999999)
 *   libcriu-client STASIS check               "check 0" (criu_check)
 *   libcriu-client STASIS features            criu_feature_check of all three
 *   libcriu-client STASIS dump DIR PID        criu_dump with a notify callback: prints each
 *                                             notification, then "dump 0"
 *   libcriu-client STASIS restore DIR         criu_restore_child: "restore PID"; the restored
 *                                             root is this program's child: it waits for it
 *                                             and prints "child exit N" (the test SIGTERMs it)
 *   libcriu-client STASIS refused DIR PID     criu_dump with exec_cmd asked: "refused RET
 *                                             errno=N msg=..."
 * Exit code 0 when the call did what the line says, 1 otherwise.
 */
#define _GNU_SOURCE
#include <criu/criu.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int on_notify(char *action, criu_notify_arg_t na)
{
	printf("notify %s pid=%d\n", action, criu_notify_pid(na));
	fflush(stdout);
	return 0;
}

static int open_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);

	if (fd < 0) {
		perror(path);
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	int ret;

	if (argc < 3) {
		fprintf(stderr, "usage: libcriu-client STASIS version|check|features|dump|restore|refused ...\n");
		return 1;
	}
	if (criu_init_opts() || criu_set_service_binary(argv[1]))
		return 1;
	if (!strcmp(argv[2], "version")) {
		ret = criu_get_version();
		printf("version %d check_version(31500)=%d check_version(99999999)=%d\n", ret,
		       criu_check_version(31500), criu_check_version(99999999));
		return ret == 31700 ? 0 : 1;
	}
	if (!strcmp(argv[2], "check")) {
		ret = criu_check();
		printf("check %d\n", ret);
		return ret ? 1 : 0;
	}
	if (!strcmp(argv[2], "features")) {
		struct criu_feature_check f = { .mem_track = true, .lazy_pages = true, .pidfd_store = true };
		ret = criu_feature_check(&f, sizeof(f));
		printf("features %d mem_track=%d lazy_pages=%d pidfd_store=%d\n", ret, f.mem_track,
		       f.lazy_pages, f.pidfd_store);
		return ret ? 1 : 0;
	}
	if (argc < 4)
		return 1;
	criu_set_images_dir_fd(open_dir(argv[3]));
	criu_set_log_level(4);
	if (!strcmp(argv[2], "dump") || !strcmp(argv[2], "refused")) {
		if (argc < 5)
			return 1;
		criu_set_pid(atoi(argv[4]));
		criu_set_log_file("dump.log");
		criu_set_notify_cb(on_notify);
		if (!strcmp(argv[2], "refused")) {
			criu_set_log_file("refused.log");
			char *cmd[] = { "true" };
			criu_set_exec_cmd(1, cmd);
			ret = criu_dump();
			printf("refused %d errno=%d msg=%s\n", ret, errno,
			       criu_get_last_errmsg() ? criu_get_last_errmsg() : "(none)");
			return ret == -EBADE ? 0 : 1;
		}
		ret = criu_dump();
		printf("dump %d%s%s\n", ret, ret ? " " : "", ret ? criu_get_last_errmsg() : "");
		return ret ? 1 : 0;
	}
	if (!strcmp(argv[2], "restore")) {
		int status;
		criu_set_log_file("restore.log");
		ret = criu_restore_child();
		printf("restore %d%s%s\n", ret, ret < 0 ? " " : "",
		       ret < 0 && criu_get_last_errmsg() ? criu_get_last_errmsg() : "");
		fflush(stdout);
		if (ret <= 0)
			return 1;
		if (waitpid(ret, &status, 0) != ret) {
			printf("child %d: waitpid: %s\n", ret, strerror(errno));
			return 1;
		}
		printf("child exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		return 0;
	}
	return 1;
}
