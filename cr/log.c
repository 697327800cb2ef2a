#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int current_level = LOG_WARN;
static FILE *log_file;

int log_init(int level, const char *path)
{
	current_level = level;
	if (path && strcmp(path, "-") != 0) {
		log_file = fopen(path, "a");
		if (!log_file) {
			fprintf(stderr, "stasis: cannot open log file %s: %m\n", path);
			return -errno;
		}
		setvbuf(log_file, NULL, _IOLBF, 0);
	}
	return 0;
}

void log_close(void)
{
	if (log_file)
		fclose(log_file);
	log_file = NULL;
}

int log_level(void)
{
	return current_level;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	int saved_errno = errno;
	static const char *prefix[] = { "", "Error: ", "Warn: ", "", "" };
	va_list ap;

	if (log_file) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		fprintf(log_file, "(%ld.%06ld) %d %s", (long)ts.tv_sec, ts.tv_nsec / 1000, (int)getpid(),
			prefix[lvl]);
		errno = saved_errno;
		va_start(ap, fmt);
		vfprintf(log_file, fmt, ap);
		va_end(ap);
	}
	if ((int)lvl <= current_level && (!log_file || lvl <= LOG_WARN)) {
		fprintf(stderr, "stasis: %s", prefix[lvl]);
		errno = saved_errno;
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	errno = saved_errno;
}
