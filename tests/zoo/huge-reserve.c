/*
 * huge-reserve: a language runtime's address space reservation (GHC's RTS reserves 1 TiB
 * PROT_NONE for its heap and commits pieces of it as it grows): 4 TiB mapped PROT_NONE,
 * MAP_NORESERVE, private anonymous, with windows committed read-write (mprotect) at its start
 * (1 MiB), in its middle (64 KiB) and at its end (64 KiB), each holding a pattern, and one
 * window written and then made PROT_NONE again (data nobody may touch, as a collector's
 * barrier leaves it). A child forked after that (every page shared copy-on-write with it)
 * rewrites one page of the start window.
 * After restore and SIGTERM: every window holds its pattern (the PROT_NONE one read after an
 * mprotect), the child's page its own in the child only, the whole reservation is still
 * mapped with the same protections, and a new window (in the middle of nowhere) can be
 * committed and written. The verdict line gives the longest pause the main loop saw
 * (CLOCK_REALTIME, read every 10 ms: the dump, the restore and what lies between), not checked
 * (times are make bench's): the restore once walked every page of the child's inherited
 * reservation to drop its forker's pages (2^30 lookups: 28 s), and the dump read the pagemap's
 * 8 bytes for every page of such a reservation (2^30 pages, 8 GiB, per process: GHC's tree
 * took 3.7 s for 1 TiB), as the cow-sharing walk of a process with a parent or children needs
 * each page's frame.
 * Next to it a 1 GiB read-write private mapping (small enough for write tracking) with 3 pages
 * written: while the process runs its RssAnon (read every 10 ms) must never grow by 64 MiB
 * (under --predump: the dump once read the uffd-wp markers tracking leaves in every hole as
 * swapped pages, faulting a page of zeroes in for each: the mapping's whole size).
 * Next to it V8's pointer cage as Chromium's zygote has it: 1 TiB PROT_NONE, private anonymous
 * WITHOUT MAP_NORESERVE (the kernel charges no commit for a mapping that cannot be written),
 * a 64 KiB window committed read-write at its start and one written and made PROT_NONE again
 * (a decommitted page), shared with the child: the restore once mapped the child's inherited
 * copy read-write to fill it (1 TiB charged at once: ENOMEM under the default overcommit
 * heuristic, the restore failed). After restore: both windows hold their patterns (in the
 * child too), the rest is still ---p, and a new window commits.
 * Blocks in: nanosleep (its own loop, as zoo_wait's; the child's own loop).
 */
#include "zoo.h"
#include <sys/mman.h>

#define RESERVE (4ULL << 40)
#define START_LEN (1UL << 20)
#define WIN_LEN (64UL << 10)
#define MID_OFF (RESERVE / 2)
#define HIDDEN_OFF (RESERVE / 4)
#define END_OFF (RESERVE - WIN_LEN)
#define NEW_OFF (RESERVE / 4 * 3)
#define KID_PAGE 5 /* the page of the start window the child rewrites */
#define SPARSE (1UL << 30)
#define RSS_GROWTH_KB (64L << 10)
#define CAGE (1ULL << 40)
#define CAGE_HIDDEN_OFF (CAGE / 2)
#define CAGE_NEW_OFF (CAGE / 4)

static unsigned char *res, *sparse, *cage;
static pid_t kid;
static volatile sig_atomic_t kid_term;

static void c_pattern(ucontext_t *u) { (void)u; res[MID_OFF + 100] ^= 1; }
static void c_hidden(ucontext_t *u)
{
	(void)u;
	mprotect(res + HIDDEN_OFF, WIN_LEN, PROT_READ | PROT_WRITE);
	res[HIDDEN_OFF + 7] ^= 1;
	mprotect(res + HIDDEN_OFF, WIN_LEN, PROT_NONE);
}
static void c_reserve(ucontext_t *u) { (void)u; munmap(res + RESERVE / 8, 1UL << 30); }
static void c_cage(ucontext_t *u) { (void)u; cage[WIN_LEN - 1] ^= 1; }
static void c_child(ucontext_t *u) { (void)u; kill(kid, SIGKILL); }
static void c_rss(ucontext_t *u)
{
	(void)u;
	for (size_t off = 4096; off <= 128UL << 20; off += 4096) /* past the page holding the pattern's 2 */
		sparse[SPARSE / 2 + off] = 1;
}
static const struct zoo_corruption corruptions[] = {
	{ "pattern", c_pattern, 0 },
	{ "hidden", c_hidden, 0 },
	{ "reserve", c_reserve, 0 },
	{ "cage", c_cage, 0 },
	{ "child", c_child, 0 },
	{ "rss", c_rss, 1 },
};

/* RssAnon of /proc/self/status, kB (-1: unreadable) */
static long rss_anon_kb(void)
{
	static char buf[4096];
	long kb = -1;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	char *p = strstr(buf, "RssAnon:");
	if (p)
		sscanf(p + 8, "%ld", &kb);
	return kb;
}

static void commit(size_t off, size_t len, uint64_t seed)
{
	if (mprotect(res + off, len, PROT_READ | PROT_WRITE))
		zoo_die("mprotect a window: %s", strerror(errno));
	zoo_fill(res + off, len, seed);
}

/* The start window as process is_kid sees it */
static int start_ok(int is_kid)
{
	for (size_t p = 0; p < START_LEN / 4096; p++)
		if (zoo_check_fill(res + p * 4096, 4096, (is_kid && p == KID_PAGE ? 900 : 100) + p) >= 0)
			return 0;
	return 1;
}

static void on_kid_term(int sig) { (void)sig; kid_term = 1; }

/* Which mapping holds addr: its protections ("---p"...), or "" */
static const char *perms_at(unsigned long addr, unsigned long *start, unsigned long *end)
{
	static char perms[8];
	if (zoo_map_of(addr, start, end, perms))
		perms[0] = 0;
	return perms;
}

/* The reservation mapped from end to end with the protections it was given */
static int reservation_ok(void)
{
	unsigned long base = (unsigned long)res, a = base, s = 0, e = 0;
	while (a < base + RESERVE) {
		const char *p = perms_at(a, &s, &e);
		size_t off = a - base;
		int rw = off < START_LEN || (off >= MID_OFF && off < MID_OFF + WIN_LEN) || off >= END_OFF;
		if (!CHECK("reserve", !strcmp(p, rw ? "rw-p" : "---p"), "at offset %#zx: mapping '%s' (%#lx-%#lx)", off, p,
			   s, e))
			return 0;
		a = e;
	}
	return 1;
}

/* The cage: its windows hold their patterns, the rest is ---p from end to end */
static int cage_ok(void)
{
	unsigned long base = (unsigned long)cage, a = base, s = 0, e = 0;
	if (mprotect(cage + CAGE_HIDDEN_OFF, WIN_LEN, PROT_READ))
		return 0;
	int ok = zoo_check_fill(cage, WIN_LEN, 600) < 0 && zoo_check_fill(cage + CAGE_HIDDEN_OFF, WIN_LEN, 700) < 0;
	if (mprotect(cage + CAGE_HIDDEN_OFF, WIN_LEN, PROT_NONE))
		return 0;
	while (ok && a < base + CAGE) {
		const char *p = perms_at(a, &s, &e);
		ok = !strcmp(p, a - base < WIN_LEN ? "rw-p" : "---p");
		a = e;
	}
	return ok;
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	res = mmap(NULL, RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		zoo_die("mmap 4 TiB PROT_NONE: %s", strerror(errno));
	for (size_t p = 0; p < START_LEN / 4096; p++)
		commit(p * 4096, 4096, 100 + p);
	commit(MID_OFF, WIN_LEN, 200);
	commit(END_OFF, WIN_LEN, 300);
	commit(HIDDEN_OFF, WIN_LEN, 400);
	if (mprotect(res + HIDDEN_OFF, WIN_LEN, PROT_NONE))
		zoo_die("mprotect PROT_NONE: %s", strerror(errno));

	cage = mmap(NULL, CAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (cage == MAP_FAILED)
		zoo_die("mmap 1 TiB PROT_NONE: %s", strerror(errno));
	if (mprotect(cage, WIN_LEN, PROT_READ | PROT_WRITE) ||
	    mprotect(cage + CAGE_HIDDEN_OFF, WIN_LEN, PROT_READ | PROT_WRITE))
		zoo_die("mprotect the cage's windows: %s", strerror(errno));
	zoo_fill(cage, WIN_LEN, 600);
	zoo_fill(cage + CAGE_HIDDEN_OFF, WIN_LEN, 700);
	if (mprotect(cage + CAGE_HIDDEN_OFF, WIN_LEN, PROT_NONE))
		zoo_die("mprotect PROT_NONE: %s", strerror(errno));

	sparse = mmap(NULL, SPARSE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sparse == MAP_FAILED)
		zoo_die("mmap 1 GiB: %s", strerror(errno));
	sparse[0] = 1;
	sparse[SPARSE / 2] = 2;
	sparse[SPARSE - 1] = 3;

	kid = fork();
	if (kid < 0)
		zoo_die("fork: %s", strerror(errno));
	if (kid == 0) {
		struct sigaction sa = { .sa_handler = on_kid_term };
		sigaction(SIGTERM, &sa, NULL);
		zoo_fill(res + KID_PAGE * 4096, 4096, 900 + KID_PAGE);
		while (!kid_term)
			zoo_sleep_ms(10);
		int ok = start_ok(1) && zoo_check_fill(res + MID_OFF, WIN_LEN, 200) < 0 &&
			 zoo_check_fill(res + END_OFF, WIN_LEN, 300) < 0 && cage_ok();
		_exit(ok ? 0 : 1);
	}
	zoo_sleep_ms(100); /* the child's page written */
	zoo_ready();
	uint64_t last = zoo_now_ns(CLOCK_REALTIME), longest = 0;
	long rss_start = rss_anon_kb(), rss_max = rss_start;
	for (;;) {
		zoo_sleep_ms(10);
		long rss = rss_anon_kb();
		if (rss > rss_max)
			rss_max = rss;
		uint64_t now = zoo_now_ns(CLOCK_REALTIME);
		if (now > last && now - last > longest)
			longest = now - last;
		last = now;
		if (zoo_term)
			break;
	}
	long rss_end = rss_anon_kb(); /* SIGTERM may have come after the loop's last reading */
	if (rss_end > rss_max)
		rss_max = rss_end;
	zoo_begin_verify();

	int st = -1;
	kill(kid, SIGTERM);
	waitpid(kid, &st, 0);
	CHECK("child", WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child found its windows changed (status %#x)", st);
	CHECK("pattern", start_ok(0), "the start window differs (or shows the child's page)");
	CHECK("pattern", zoo_check_fill(res + MID_OFF, WIN_LEN, 200) < 0, "the middle window differs");
	CHECK("pattern", zoo_check_fill(res + END_OFF, WIN_LEN, 300) < 0, "the end window differs");
	reservation_ok();
	if (CHECK("hidden", !mprotect(res + HIDDEN_OFF, WIN_LEN, PROT_READ), "mprotect: %s", strerror(errno)))
		CHECK("hidden", zoo_check_fill(res + HIDDEN_OFF, WIN_LEN, 400) < 0,
		      "the window made PROT_NONE lost its data");
	if (CHECK("reserve", !mprotect(res + NEW_OFF, WIN_LEN, PROT_READ | PROT_WRITE), "commit a new window: %s",
		  strerror(errno))) {
		zoo_fill(res + NEW_OFF, WIN_LEN, 500);
		CHECK("reserve", zoo_check_fill(res + NEW_OFF, WIN_LEN, 500) < 0, "a new window does not hold what was written");
	}
	CHECK("cage", cage_ok(), "the 1 TiB PROT_NONE cage's windows or protections differ");
	if (CHECK("cage", !mprotect(cage + CAGE_NEW_OFF, WIN_LEN, PROT_READ | PROT_WRITE), "commit a new window: %s",
		  strerror(errno))) {
		zoo_fill(cage + CAGE_NEW_OFF, WIN_LEN, 800);
		CHECK("cage", zoo_check_fill(cage + CAGE_NEW_OFF, WIN_LEN, 800) < 0, "a new window does not hold what was written");
	}
	CHECK("rss", rss_start >= 0 && rss_max - rss_start < RSS_GROWTH_KB, "RssAnon grew from %ld kB to %ld kB",
	      rss_start, rss_max);
	CHECK("pattern", sparse[0] == 1 && sparse[SPARSE / 2] == 2 && sparse[SPARSE - 1] == 3,
	      "the 1 GiB mapping's pages differ");
	static char info[120];
	snprintf(info, sizeof(info), "4 TiB reservation, 1 TiB cage, their windows and the child's page intact (longest "
		 "pause %llu ms)", (unsigned long long)(longest / 1000000));
	return zoo_finish(info);
}
