/* stasis check: what its probes (runtime-hook/check*.c) share. */
#ifndef STASIS_CHECK_H
#define STASIS_CHECK_H

#include <stdbool.h>

#define DETAIL_LEN 200

/* The result of one probe: yes or no, and words on why. */
struct res {
	bool ok;
	char detail[DETAIL_LEN];
};

/* What is missing, over all lines. */
struct report {
	int missing_required;
	char missing[512];
	char missing_optional[512];
};

__attribute__((format(printf, 3, 4))) bool set(struct res *r, bool ok, const char *fmt, ...);
/* One "name: yes (detail)" line; a missing feature is counted, required or not. */
void print_line(struct report *rep, const char *name, bool required, const struct res *r);

/* runtime-hook/check-files.c: fds and local IPC (message queues, timers, sockets, handles). */
void check_file_features(struct report *rep);

#endif
