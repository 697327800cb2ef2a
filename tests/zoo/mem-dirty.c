/*
 * mem-dirty: memory that keeps changing while it is pre-dumped (tests/run-zoo.sh --predump N),
 * in the patterns that stress write tracking; every byte is checked against the program's
 * own record of what it wrote, which lives in the same memory.
 *   - a 16 MiB mapping: one page rewritten at every step (the same page many times), one
 *     random page per step; the step that last wrote each page is kept in a heap array;
 *   - a 3-page mapping written at its first and last byte (the edges of a mapping);
 *   - 8 slots of small mappings: every 40 steps one is unmapped and mapped anew (new
 *     mappings), every 60 steps one is moved with mremap(MREMAP_FIXED) and grown by a page
 *     that is written, its old pages not (a moved mapping is no longer tracked);
 *   - a word of the stack written at every step;
 *   - a child forked once (after the first pre-dump round: when $ZOO_TMPDIR/round-1 appears,
 *     if $ZOO_TMPDIR/fork-after exists at start; else 100 ms after READY) that goes on
 *     writing its own copy; the parent asks it to check itself through a pipe.
 * A step every 200 us, until SIGTERM.
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define PG 4096ul
#define A_PAGES 4096ul
#define NR_SLOTS 8
#define SLOT_MAX 24

struct slot {
	char *addr;
	size_t pages, ext; /* pages filled with seed, then ext pages added by mremap */
	uint64_t seed;
	int used;
};

static char *A, *B;
static uint64_t *ver; /* the step that last wrote each page of A (0: the first fill) */
static uint8_t b_last;
static char b_edges[2]; /* what the fill put at the edges first */
static struct slot slots[NR_SLOTS];
static uint64_t step;
static pid_t child;
static int to_child[2];
static int is_child, corrupt_child;
static char fork_after[600], round1[600];

static uint64_t seed_of(uint64_t page, uint64_t v) { return page * 1000003 + v * 7919 + 12345; }
static uint64_t ext_seed(const struct slot *s, size_t j) { return s->seed ^ ((j + 1) * 0x9e3779b9ull); }

static void c_mmap(ucontext_t *u) { (void)u; A[(A_PAGES / 2) * PG + 17] ^= 1; }
static void c_edges(ucontext_t *u) { (void)u; B[3 * PG - 1] ^= 1; }
static void c_churn(ucontext_t *u)
{
	(void)u;
	for (int k = 0; k < NR_SLOTS; k++)
		if (slots[k].used) {
			slots[k].addr[slots[k].pages * PG - 1] ^= 1;
			return;
		}
}
static void c_stack(ucontext_t *u) { (void)u; step++; }
static void c_child(ucontext_t *u) { (void)u; corrupt_child = 1; }

static const struct zoo_corruption corruptions[] = {
	{ "mmap", c_mmap, 0 }, { "edges", c_edges, 0 }, { "churn", c_churn, 0 },
	{ "stack", c_stack, 0 }, { "child", c_child, 0 },
};

static void *map(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		zoo_die("mmap %zu: %s", len, strerror(errno));
	return p;
}

static void slot_new(struct slot *s)
{
	if (s->used)
		munmap(s->addr, (s->pages + s->ext) * PG);
	s->pages = 1 + step % 13;
	s->ext = 0;
	s->seed = step * 31 + 7;
	s->addr = map(s->pages * PG, PROT_READ | PROT_WRITE);
	zoo_fill(s->addr, s->pages * PG, s->seed);
	s->used = 1;
}

/* Moved to a place of its own (a placeholder replaced) and grown by one written page. */
static void slot_move(struct slot *s)
{
	size_t len = (s->pages + s->ext) * PG;
	char *to = map(len + PG, PROT_NONE);
	char *moved = mremap(s->addr, len, len + PG, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (moved == MAP_FAILED)
		zoo_die("mremap: %s", strerror(errno));
	s->addr = moved;
	zoo_fill(moved + len, PG, ext_seed(s, s->ext));
	s->ext++;
}

static void one_step(char *stack_word)
{
	uint64_t r = (step * 2654435761ull) % A_PAGES;

	step++;
	zoo_fill(A, PG, seed_of(0, step)); /* the same page, every time */
	ver[0] = step;
	zoo_fill(A + r * PG, PG, seed_of(r, step));
	ver[r] = step;
	b_last = (uint8_t)step;
	B[0] = B[3 * PG - 1] = (char)b_last;
	memcpy(stack_word, &step, sizeof(step));
	if (step % 40 == 0)
		slot_new(&slots[(step / 40) % NR_SLOTS]);
	if (step % 60 == 0) {
		struct slot *s = &slots[(step / 60 + 3) % NR_SLOTS];
		if (s->used && s->pages + s->ext < SLOT_MAX)
			slot_move(s);
	}
}

/* Every byte against the record; 0 if all is as written. */
static int verify(const char *who, const char *stack_word)
{
	uint64_t sw;

	for (size_t i = 0; i < A_PAGES; i++) {
		long bad = zoo_check_fill(A + i * PG, PG, seed_of(i, ver[i]));
		if (!CHECK("mmap", bad < 0, "%s: page %zu of the 16 MiB mapping differs at byte %ld "
			   "(last written at step %llu of %llu)", who, i, bad,
			   (unsigned long long)ver[i], (unsigned long long)step))
			break;
	}
	CHECK("edges", B[0] == (char)b_last && B[3 * PG - 1] == (char)b_last,
	      "%s: the edges of the 3-page mapping are %#x/%#x, expected %#x", who,
	      (unsigned char)B[0], (unsigned char)B[3 * PG - 1], b_last);
	static char inside[3 * PG];
	memcpy(inside, B, sizeof(inside));
	inside[0] = b_edges[0];
	inside[3 * PG - 1] = b_edges[1];
	long bad = zoo_check_fill(inside, sizeof(inside), 77);
	CHECK("edges", bad < 0, "%s: the inside of the 3-page mapping differs at byte %ld", who, bad);
	for (int k = 0; k < NR_SLOTS; k++) {
		const struct slot *s = &slots[k];
		if (!s->used)
			continue;
		bad = zoo_check_fill(s->addr, s->pages * PG, s->seed);
		for (size_t j = 0; bad < 0 && j < s->ext; j++)
			if (zoo_check_fill(s->addr + (s->pages + j) * PG, PG, ext_seed(s, j)) >= 0)
				bad = (s->pages + j) * PG;
		CHECK("churn", bad < 0, "%s: slot %d (%zu+%zu pages at %p) differs at byte %ld", who, k,
		      s->pages, s->ext, (void *)s->addr, bad);
	}
	memcpy(&sw, stack_word, sizeof(sw));
	CHECK("stack", sw == step, "%s: the stack word is %llu, the step %llu", who,
	      (unsigned long long)sw, (unsigned long long)step);
	return zoo_nfail;
}

static void child_main(char *stack_word)
{
	struct timespec ts = { 0, 200000 };
	char cmd = 0;

	is_child = 1;
	for (;;) {
		if (read(to_child[0], &cmd, 1) == 1)
			break;
		one_step(stack_word);
		nanosleep(&ts, NULL);
	}
	if (cmd == 'c')
		A[7 * PG] ^= 1;
	int fails = verify("child", stack_word);
	if (fails)
		zoo_write_all(2, zoo_failbuf, zoo_faillen);
	_exit(fails ? 1 : 0);
}

static int time_to_fork(uint64_t ready_ns)
{
	if (child)
		return 0;
	if (fork_after[0] && access(fork_after, F_OK) == 0)
		return access(round1, F_OK) == 0;
	return zoo_now_ns(CLOCK_MONOTONIC) - ready_ns > 100000000ull;
}

int main(int argc, char **argv)
{
	char stack_area[16384];
	struct timespec ts = { 0, 200000 };
	const char *dir = getenv("ZOO_TMPDIR");

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	zoo_check_maps = 0; /* the program maps, unmaps and moves memory all the time */
	if (dir) {
		snprintf(fork_after, sizeof(fork_after), "%s/fork-after", dir);
		snprintf(round1, sizeof(round1), "%s/round-1", dir);
	}
	if (pipe(to_child) || fcntl(to_child[0], F_SETFL, O_NONBLOCK))
		zoo_die("pipe: %s", strerror(errno));
	A = map(A_PAGES * PG, PROT_READ | PROT_WRITE);
	B = map(3 * PG, PROT_READ | PROT_WRITE);
	ver = calloc(A_PAGES, sizeof(*ver));
	if (!ver)
		zoo_die("calloc");
	for (size_t i = 0; i < A_PAGES; i++)
		zoo_fill(A + i * PG, PG, seed_of(i, 0));
	zoo_fill(B, 3 * PG, 77);
	b_edges[0] = B[0];
	b_edges[1] = B[3 * PG - 1];
	b_last = (uint8_t)B[0];
	B[3 * PG - 1] = (char)b_last;
	memset(stack_area, 0, sizeof(stack_area));
	for (int k = 0; k < NR_SLOTS; k++)
		slot_new(&slots[k]);

	zoo_ready();
	uint64_t ready = zoo_now_ns(CLOCK_MONOTONIC);
	while (!zoo_term) {
		one_step(stack_area + 8192);
		if (time_to_fork(ready)) {
			child = fork();
			if (child < 0)
				zoo_die("fork: %s", strerror(errno));
			if (child == 0)
				child_main(stack_area + 8192);
		}
		nanosleep(&ts, NULL);
	}

	zoo_begin_verify();
	if (CHECK("child", child > 0, "no child was forked")) {
		int status = 0;
		char cmd = corrupt_child ? 'c' : 'v';
		if (write(to_child[1], &cmd, 1) != 1 || waitpid(child, &status, 0) != child)
			zoo_failf("child", "cannot ask the child to check itself: %s", strerror(errno));
		else
			CHECK("child", WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "the child's own check failed (status %#x; its stderr says why)", status);
	}
	verify("parent", stack_area + 8192);
	return zoo_finish(NULL);
}
