/* Between the parts of stasis swrk: the server (swrk.c) and the options of a request
 * (swrk-opts.c). */
#ifndef STASIS_SWRK_H
#define STASIS_SWRK_H

#include <stdbool.h>
#include <stddef.h>

#include "options.h"
#include "rpc.pb-c.h"

/* What one request allocated for its options: freed with it, nothing left for the next. */
struct swrk_allocs {
	void **v;
	size_t n;
};

/* A copy of the formatted string owned by a (NULL if out of memory). */
char *swrk_strdup_printf(struct swrk_allocs *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * The criu_opts of a request into o (filled by cli_opts_init and the default configuration
 * files before): each field mapped onto the option with criu's meaning, or refused. Strings
 * point into ro, which must outlive o. Returns 0, or a negative errno with msg saying which
 * field is refused and why ("stasis: lazy_pages: lazy restore is not supported yet").
 */
int swrk_opts_map(const CriuOpts *ro, struct stasis_opts *o, struct swrk_allocs *a, char *msg,
		  size_t len);

#endif
