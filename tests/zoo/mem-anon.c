/*
 * mem-anon: private anonymous memory of every common shape.
 *   heap (small, medium and an mmap-backed malloc chunk), the stack of main(), a 64 MiB mmap
 *   with written, never-touched and MADV_DONTNEED pages, brk moved with sbrk(), a guard page
 *   (PROT_NONE between two RW pages), a PROT_NONE region that holds data, a read-only region.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <setjmp.h>
#include <sys/mman.h>

#define PG 4096ul
#define BIG_PAGES (64ul << 20) / PG

static char *heap_small, *heap_med, *heap_big, *stack_arr, *big, *brk_area, *brk_end;
static char *guard, *pnone, *ronly;
static const size_t SMALL = 1000, MED = 100000, BIGM = 3u << 20, STACK = 64 * 1024, BRK = (1u << 20) + 123;

static sigjmp_buf probe_jb;
static void segv_handler(int sig)
{
	(void)sig;
	siglongjmp(probe_jb, 1);
}

/* 1 if the access faults. */
static int faults(volatile char *p, int write)
{
	if (sigsetjmp(probe_jb, 1))
		return 1;
	if (write)
		*p = *p;
	else
		(void)*p;
	return 0;
}

static int big_page_written(size_t i) { return i % 7 == 0; }
static const size_t DONTNEED_PAGE = 3 * 7;

static void c_heap(ucontext_t *u) { (void)u; heap_med[5000] ^= 1; }
static void c_stack(ucontext_t *u) { (void)u; stack_arr[100] ^= 1; }
static void c_mmap(ucontext_t *u) { (void)u; big[14 * PG + 100] ^= 1; }
static void c_zero(ucontext_t *u) { (void)u; big[1 * PG + 7] = 1; }
static void c_brk(ucontext_t *u) { (void)u; sbrk(4096); }
static void c_guard(ucontext_t *u) { (void)u; mprotect(guard + PG, PG, PROT_READ | PROT_WRITE); }
static void c_protnone(ucontext_t *u)
{
	(void)u;
	mprotect(pnone, 4 * PG, PROT_READ | PROT_WRITE);
	pnone[PG + 1] ^= 1;
	mprotect(pnone, 4 * PG, PROT_NONE);
}
static void c_readonly(ucontext_t *u)
{
	(void)u;
	mprotect(ronly, 2 * PG, PROT_READ | PROT_WRITE);
	ronly[10] ^= 1;
	mprotect(ronly, 2 * PG, PROT_READ);
}
static void c_maps(ucontext_t *u) { (void)u; mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); }

static const struct zoo_corruption corruptions[] = {
	{ "heap", c_heap, 0 },	     { "stack", c_stack, 0 },	    { "mmap", c_mmap, 0 },
	{ "zero", c_zero, 0 },	     { "brk", c_brk, 0 },	    { "guard", c_guard, 0 },
	{ "protnone", c_protnone, 0 }, { "readonly", c_readonly, 0 }, { "maps", c_maps, 0 },
};

static void *map(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		zoo_die("mmap %zu: %s", len, strerror(errno));
	return p;
}

static void check_fill(const char *tag, const char *what, const void *p, size_t len, uint64_t seed)
{
	long bad = zoo_check_fill(p, len, seed);
	CHECK(tag, bad < 0, "%s differs at offset %ld (%p)", what, bad, (const char *)p + (bad < 0 ? 0 : bad));
}

int main(int argc, char **argv)
{
	char stack_local[64 * 1024];
	struct sigaction sa;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = segv_handler;
	sigaction(SIGSEGV, &sa, NULL);

	heap_small = malloc(SMALL);
	heap_med = malloc(MED);
	heap_big = malloc(BIGM);
	if (!heap_small || !heap_med || !heap_big)
		zoo_die("malloc");
	zoo_fill(heap_small, SMALL, 1);
	zoo_fill(heap_med, MED, 2);
	zoo_fill(heap_big, BIGM, 3);

	stack_arr = stack_local;
	zoo_fill(stack_arr, STACK, 4);

	big = map(BIG_PAGES * PG, PROT_READ | PROT_WRITE);
	for (size_t i = 0; i < BIG_PAGES; i++)
		if (big_page_written(i))
			zoo_fill(big + i * PG, PG, 1000 + i);
	madvise(big + DONTNEED_PAGE * PG, PG, MADV_DONTNEED);
	memset(big + 2 * PG, 0, PG); /* touched, but zero */

	brk_area = sbrk(0);
	if (sbrk(BRK) == (void *)-1)
		zoo_die("sbrk: %s", strerror(errno));
	brk_end = sbrk(0);
	zoo_fill(brk_area, BRK, 5);

	guard = map(3 * PG, PROT_READ | PROT_WRITE);
	zoo_fill(guard, PG, 6);
	zoo_fill(guard + 2 * PG, PG, 7);
	mprotect(guard + PG, PG, PROT_NONE);

	pnone = map(4 * PG, PROT_READ | PROT_WRITE);
	zoo_fill(pnone, 4 * PG, 8);
	mprotect(pnone, 4 * PG, PROT_NONE);

	ronly = map(2 * PG, PROT_READ | PROT_WRITE);
	zoo_fill(ronly, 2 * PG, 9);
	mprotect(ronly, 2 * PG, PROT_READ);

	zoo_ready();
	zoo_wait();

	check_fill("heap", "small malloc", heap_small, SMALL, 1);
	check_fill("heap", "medium malloc", heap_med, MED, 2);
	check_fill("heap", "mmap'ed malloc", heap_big, BIGM, 3);
	check_fill("stack", "stack array", stack_arr, STACK, 4);

	for (size_t i = 0; i < BIG_PAGES; i++) {
		const char *pg = big + i * PG;
		if (big_page_written(i) && i != DONTNEED_PAGE) {
			long bad = zoo_check_fill(pg, PG, 1000 + i);
			if (!CHECK("mmap", bad < 0, "page %zu of the 64 MiB mapping differs at byte %ld", i, bad))
				break;
		} else {
			size_t k = 0;
			while (k < PG && pg[k] == 0)
				k++;
			if (!CHECK("zero", k == PG, "page %zu of the 64 MiB mapping should be zero, byte %zu is %#x", i,
				   k, (unsigned char)pg[k]))
				break;
		}
	}

	CHECK("brk", sbrk(0) == brk_end, "brk is %p, expected %p", sbrk(0), (void *)brk_end);
	check_fill("brk", "sbrk area", brk_area, BRK, 5);

	check_fill("guard", "page below the guard", guard, PG, 6);
	check_fill("guard", "page above the guard", guard + 2 * PG, PG, 7);
	CHECK("guard", faults(guard + PG, 0), "the guard page is readable");

	CHECK("protnone", faults(pnone, 0), "PROT_NONE region is readable");
	CHECK("protnone", faults(pnone + 3 * PG, 0), "PROT_NONE region is readable at its last page");
	if (mprotect(pnone, 4 * PG, PROT_READ) == 0)
		check_fill("protnone", "PROT_NONE region's data", pnone, 4 * PG, 8);
	else
		zoo_failf("protnone", "mprotect: %s", strerror(errno));

	check_fill("readonly", "read-only region", ronly, 2 * PG, 9);
	CHECK("readonly", faults(ronly + PG, 1), "read-only region is writable");

	return zoo_finish(NULL);
}
