/*
 * mem-sparse: private anonymous mappings whose written pages are each alone (every other page
 * written), so that each is a region of its own for the page scans of dump and write tracking
 * (PAGEMAP_SCAN returns up to 1024 regions a call): mappings of 1023, 1024, 1025, 2048 and
 * 3000 such pages, and one of 300 pages a MiB apart in 300 MiB (untouched pages between).
 * After restore and SIGTERM: each written page holds its own pattern, every page between
 * reads zero, and none of those is present in memory (/proc/self/pagemap): the dump neither
 * lost, repeated nor filled in a page.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/mman.h>

#define PG 4096ul

static const size_t counts[] = { 1023, 1024, 1025, 2048, 3000 };
#define NR_MAPS (sizeof(counts) / sizeof(counts[0]))
#define FAR_PAGES 300ul
#define FAR_STEP 256ul /* pages: one MiB */
static char *maps[NR_MAPS], *far;

static void c_lost(ucontext_t *u) { (void)u; madvise(maps[1] + 1022 * 2 * PG, PG, MADV_DONTNEED); }
static void c_filled(ucontext_t *u) { (void)u; maps[3][(2 * 1500 + 1) * PG] = 0; }
static void c_far(ucontext_t *u) { (void)u; far[299 * FAR_STEP * PG + 5] ^= 1; }
static const struct zoo_corruption corruptions[] = {
	{ "pages", c_lost, 0 },
	{ "gaps", c_filled, 0 },
	{ "far", c_far, 0 },
};

/* 1 if the page at p is in memory (pagemap bit 63) */
static int present(const void *p)
{
	static int fd = -1;
	uint64_t e = 0;
	if (fd < 0 && (fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) < 0)
		zoo_die("open pagemap: %s", strerror(errno));
	if (pread(fd, &e, sizeof(e), (off_t)((uintptr_t)p / PG * sizeof(e))) != sizeof(e))
		zoo_die("read pagemap: %s", strerror(errno));
	return (int)(e >> 63);
}

static int all_zero(const char *p)
{
	for (size_t i = 0; i < PG; i++)
		if (p[i])
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	for (size_t m = 0; m < NR_MAPS; m++) {
		maps[m] = mmap(NULL, 2 * counts[m] * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (maps[m] == MAP_FAILED)
			zoo_die("mmap: %s", strerror(errno));
		for (size_t i = 0; i < counts[m]; i++)
			zoo_fill(maps[m] + 2 * i * PG, PG, 100 * m + i);
	}
	far = mmap(NULL, FAR_PAGES * FAR_STEP * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (far == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	for (size_t i = 0; i < FAR_PAGES; i++)
		zoo_fill(far + i * FAR_STEP * PG, PG, 7000 + i);

	zoo_ready();
	zoo_wait();

	for (size_t m = 0; m < NR_MAPS; m++) {
		size_t bad_page = 0, bad_gap = 0, first_page = 0, first_gap = 0;
		for (size_t i = 0; i < counts[m]; i++) {
			if (zoo_check_fill(maps[m] + 2 * i * PG, PG, 100 * m + i) >= 0 && !bad_page++)
				first_page = i;
			if ((present(maps[m] + (2 * i + 1) * PG) || !all_zero(maps[m] + (2 * i + 1) * PG)) && !bad_gap++)
				first_gap = i;
		}
		CHECK("pages", !bad_page, "%zu of the %zu written pages of mapping %zu differ (the first: %zu)", bad_page,
		      counts[m], m, first_page);
		CHECK("gaps", !bad_gap, "%zu of the pages between the written ones of mapping %zu are present or not zero "
		      "(the first after page %zu)", bad_gap, m, first_gap);
	}
	size_t bad = 0;
	for (size_t i = 0; i < FAR_PAGES; i++)
		bad += zoo_check_fill(far + i * FAR_STEP * PG, PG, 7000 + i) >= 0 ||
		       present(far + (i * FAR_STEP + 1) * PG);
	CHECK("far", !bad, "%zu of the %lu pages a MiB apart differ, or a page after one is present", bad, FAR_PAGES);
	return zoo_finish("1023, 1024, 1025, 2048 and 3000 pages alone, 300 a MiB apart");
}
