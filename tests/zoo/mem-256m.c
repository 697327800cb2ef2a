/*
 * mem-256m: 256 MiB of private anonymous memory, every 8-byte word holding a pattern that
 * depends on its offset; every byte is verified after restore.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/mman.h>

#define SIZE (256ul << 20)
static uint64_t *mem;

static void c_pattern(ucontext_t *u)
{
	(void)u;
	((unsigned char *)mem)[SIZE / 2 + 12345] ^= 0x10;
}
static void c_last(ucontext_t *u)
{
	(void)u;
	((unsigned char *)mem)[SIZE - 1] ^= 0x01;
}
static const struct zoo_corruption corruptions[] = {
	{ "pattern", c_pattern, 0 },
	{ "last", c_last, 0 },
};

static inline uint64_t word(uint64_t i)
{
	/* cheap, position dependent, never zero: every page is a real page to dump */
	return (i * 0x9E3779B97F4A7C15ull) ^ (i >> 7) ^ 0x5a5a5a5a00000001ull;
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		zoo_die("mmap 256 MiB: %s", strerror(errno));
	for (uint64_t i = 0; i < SIZE / 8; i++)
		mem[i] = word(i);

	zoo_ready();
	zoo_wait();

	for (uint64_t i = 0; i < SIZE / 8; i++) {
		if (mem[i] != word(i)) {
			uint64_t w = mem[i], e = word(i);
			int b = 0;
			while (((w ^ e) >> (8 * b) & 0xff) == 0)
				b++;
			const char *tag = i == SIZE / 8 - 1 ? "last" : "pattern";
			zoo_failf(tag, "byte at offset %#lx (page %lu) is %#x, expected %#x", (unsigned long)(i * 8 + b),
				  (unsigned long)(i * 8 / 4096), (unsigned)(w >> (8 * b) & 0xff),
				  (unsigned)(e >> (8 * b) & 0xff));
			break;
		}
	}
	return zoo_finish(NULL);
}
