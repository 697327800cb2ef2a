/*
 * counter: the program of `make demo`.
 *
 *   counter LOGFILE
 *
 * Counts 1, 2, 3, ... one number every 0.2 s, appending "pid P count N" to
 * LOGFILE. The count lives only in this process's memory: if the process is
 * checkpointed and restored, the log goes on from where it was; if it were
 * simply restarted, it would begin again at 1.
 *
 * It makes itself a session leader and closes every inherited descriptor but
 * 0, 1 and 2, so it can be dumped without --shell-job: nothing ties it to the
 * shell (or make) that started it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s LOGFILE\n", argv[0]);
		return 2;
	}
	if (setsid() < 0)
		fprintf(stderr, "counter: setsid: %s (dump may need --shell-job)\n", strerror(errno));
	close_range(3, ~0u, 0);

	int fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "counter: open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}

	for (unsigned long count = 1;; count++) {
		char line[64];
		/* getpid() each time: the line shows the PID the process has now. */
		int len = snprintf(line, sizeof(line), "pid %d count %lu\n", (int)getpid(), count);

		if (write(fd, line, (size_t)len) != len) {
			fprintf(stderr, "counter: write %s: %s\n", argv[1], strerror(errno));
			return 1;
		}
		/* Interrupted (by a checkpoint, say)? Then just count a bit early. */
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 200 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}
