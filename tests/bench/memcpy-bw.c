/*
 * memcpy-bw: this machine's memcpy bandwidth, the reference for restore speed.
 *
 *   memcpy-bw [MIB [RUNS]]        (default 512 MiB, best of 7)
 *
 * Copies a MIB MiB buffer into another, already faulted-in buffer with
 * memcpy(), RUNS times, and reports the best run. Last line, for scripts:
 *   memcpy_gbps=N.NNN             (GB/s, 1 GB = 1e9 bytes copied)
 */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#include "bench-util.h"

int main(int argc, char **argv)
{
	unsigned long mib = argc > 1 ? parse_ulong(argv[0], "size in MiB", argv[1]) : 512;
	unsigned long runs = argc > 2 ? parse_ulong(argv[0], "run count", argv[2]) : 7;
	size_t len = (size_t)mib << 20;

	unsigned char *src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED || dst == MAP_FAILED) {
		perror("memcpy-bw: mmap");
		return 1;
	}

	/* Fault both buffers in; the source gets non-zero data. */
	uint64_t *s64 = (uint64_t *)src;
	for (size_t i = 0; i < len / sizeof(uint64_t); i++)
		s64[i] = pattern_word(i, 1);
	memset(dst, 0xa5, len);

	uint64_t best = UINT64_MAX;
	volatile unsigned sink = 0;

	for (unsigned long r = 0; r < runs; r++) {
		uint64_t t0 = now_ns();

		memcpy(dst, src, len);
		__asm__ __volatile__("" : : "r"(dst) : "memory");
		uint64_t dt = now_ns() - t0;

		if (dt < best)
			best = dt;
		sink += dst[(r * 4099) % len];
	}
	if (memcmp(src, dst, len)) {
		fprintf(stderr, "memcpy-bw: copy mismatch\n");
		return 1;
	}

	double gbps = (double)len / (double)best;	/* bytes per ns == GB/s */
	printf("memcpy %lu MiB into a faulted-in buffer, best of %lu: %.1f ms, %.2f GB/s\n",
	       mib, runs, (double)best / 1e6, gbps);
	printf("memcpy_gbps=%.3f\n", gbps);
	(void)sink;
	return 0;
}
