#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* The process's log: its sink is set by the face for each run (log_init, log_close). */
static int current_level = LOG_WARN;
static FILE *log_file;
static bool capturing, to_stderr = true;
static char captured[512];
static char first_error[512], last_error[512];
static unsigned nr_errors;

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

void log_stderr(bool on)
{
	to_stderr = on;
}

int log_level(void)
{
	return current_level;
}

void log_capture_errors(void)
{
	capturing = true;
	captured[0] = 0;
}

const char *log_captured_error(void)
{
	return captured[0] ? captured : NULL;
}

void log_captured_reset(void)
{
	captured[0] = 0;
}

void log_errors_reset(void)
{
	first_error[0] = last_error[0] = 0;
}

const char *log_first_error(void)
{
	return first_error[0] ? first_error : NULL;
}

const char *log_last_error(void)
{
	return last_error[0] ? last_error : NULL;
}

unsigned log_errors(void)
{
	return nr_errors;
}

void log_said_by_helper(void)
{
	nr_errors++;
}

int log_unnamed(unsigned logged, int err, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	if (nr_errors != logged)
		return err;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	log_msg(LOG_ERR, "%s: %s\n", what, strerror(-err));
	return err;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	int saved_errno = errno;
	static const char *prefix[] = { "", "Error: ", "Warn: ", "", "" };
	va_list ap;

	if (lvl == LOG_ERR)
		nr_errors++;
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
	if (lvl == LOG_ERR) {
		errno = saved_errno;
		va_start(ap, fmt);
		vsnprintf(last_error, sizeof(last_error), fmt, ap);
		va_end(ap);
		last_error[strcspn(last_error, "\n")] = 0;
		if (!first_error[0])
			memcpy(first_error, last_error, sizeof(first_error));
	}
	if (capturing && lvl == LOG_ERR) {
		memcpy(captured, last_error, sizeof(captured));
	} else if (to_stderr && (int)lvl <= current_level && (!log_file || lvl <= LOG_WARN)) {
		fprintf(stderr, "stasis: %s", prefix[lvl]);
		errno = saved_errno;
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	errno = saved_errno;
}
