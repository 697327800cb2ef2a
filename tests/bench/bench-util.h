/* Small helpers shared by the benchmark programs (header-only). */
#ifndef STASIS_BENCH_UTIL_H
#define STASIS_BENCH_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Parse a positive decimal integer argument, or exit with a message. */
static inline unsigned long parse_ulong(const char *prog, const char *what, const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0) {
		fprintf(stderr, "%s: bad %s '%s' (want a positive integer)\n", prog, what, s);
		exit(2);
	}
	return v;
}

/*
 * The fill pattern: one 64-bit word per 8-byte slot, a function of the
 * slot's index and a seed. Every byte has its low bit set, so no byte,
 * and therefore no page, is ever zero.
 */
static inline uint64_t pattern_word(uint64_t index, uint64_t seed)
{
	uint64_t x = (index + seed) * 0x9e3779b97f4a7c15ull;

	x ^= x >> 29;
	return x | 0x0101010101010101ull;
}

#endif
