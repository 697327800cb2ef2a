/*
 * A container workload that checks its own memory: memcheck MIB fills MIB MiB of anonymous
 * memory with a pattern derived from a seed, says "filled", then prints "tick N" once a second.
 * On SIGTERM (docker stop, podman stop) it reads every word back and prints
 * "PASS memcheck: ..." and exits 0, or "FAIL memcheck: ..." naming the first wrong word and
 * exits 1. Checkpointed in between, the ticks go on from where they were and the memory is
 * the same after the restore. Built static: the image is a busybox tree.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t word(uint64_t seed, size_t i)
{
	uint64_t x = seed ^ (i * 0x9e3779b97f4a7c15ull);

	x ^= x >> 31;
	return x * 0xbf58476d1ce4e5b9ull;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	size_t n = mib << 17; /* 8-byte words */
	struct timespec ts;
	uint64_t *mem, seed, ticks = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	seed = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
	mem = mmap(NULL, n * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		printf("FAIL memcheck: cannot map %zu MiB\n", mib);
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		mem[i] = word(seed, i);
	signal(SIGTERM, on_term);
	printf("filled %zu MiB\n", mib);
	while (!stop) {
		struct timespec one = { 1, 0 };
		if (nanosleep(&one, NULL) == 0)
			printf("tick %llu\n", (unsigned long long)++ticks);
	}
	for (size_t i = 0; i < n; i++) {
		if (mem[i] != word(seed, i)) {
			printf("FAIL memcheck: word %zu of %zu (byte offset %zu) differs\n", i, n, i * 8);
			return 1;
		}
	}
	printf("PASS memcheck: %zu MiB intact after %llu ticks\n", mib, (unsigned long long)ticks);
	return 0;
}
