/* Logging: the first failure is logged once, where it happens, naming its object. */
#ifndef STASIS_LOG_H
#define STASIS_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERR = 1, LOG_WARN = 2, LOG_INFO = 3, LOG_DEBUG = 4 };

/* level: messages above it go only nowhere; errors reach stderr too (see log_stderr). */
int log_init(int level, const char *path);
void log_close(void);
/* Whether messages also reach stderr (yes by default): the RPC face turns it off while it runs
 * a request for an engine, whose stderr may be the container's own. */
void log_stderr(bool on);
int log_level(void);
/*
 * In a process that reports its failure through stasis (a new task of a restore): errors go
 * to the log file only, the last one is kept for the report instead of going to stderr.
 */
void log_capture_errors(void);
const char *log_captured_error(void); /* NULL if none since log_captured_reset() */
void log_captured_reset(void);
/* The first and the last error logged since log_errors_reset(), for a face's report (NULL if
 * none): the first names the cause, the last what failed as a whole. */
void log_errors_reset(void);
const char *log_first_error(void);
const char *log_last_error(void);
/*
 * Errors logged by this process so far. A caller that dispatches to a kind (and so cannot
 * know whether the kind said what failed) compares it before and after, and names the
 * failure itself only when the kind did not: each failure is told once.
 */
unsigned log_errors(void);
/* Returns err; logs "fmt: strerror(-err)" unless an error was logged since log_errors() said logged. */
int log_unnamed(unsigned logged, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A helper process said what failed (in the same log): counted as an error said here. */
void log_said_by_helper(void);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pr_err(fmt, ...) log_msg(LOG_ERR, fmt "\n", ##__VA_ARGS__)
#define pr_warn(fmt, ...) log_msg(LOG_WARN, fmt "\n", ##__VA_ARGS__)
#define pr_info(fmt, ...) log_msg(LOG_INFO, fmt "\n", ##__VA_ARGS__)
#define pr_debug(fmt, ...) log_msg(LOG_DEBUG, fmt "\n", ##__VA_ARGS__)
/* Same, with ": strerror(errno)" appended. */
#define pr_perror(fmt, ...) log_msg(LOG_ERR, fmt ": %m\n", ##__VA_ARGS__)

#endif
