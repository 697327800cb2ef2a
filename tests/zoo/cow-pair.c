/*
 * cow-pair: one parent and one child sharing 8 MiB of private anonymous memory copy-on-write
 * since the fork, neither having written it since: every page is mapped by exactly two
 * processes. (Reading a shared page with process_vm_readv pins it, and a read-only pin of an
 * anonymous page two processes share makes the kernel copy it for the process read, since
 * Linux 5.19: a dump reading that way broke every such page of the parent, and then saw the
 * child's page as its own.)
 * After restore and SIGTERM: the parent reads both processes' page frames
 * (/proc/PID/pagemap, as root; in a user namespace, where frames are hidden, its own Pss): each
 * page is still one physical page in both; the contents are intact in both; the memory is
 * still private (the child's write is not seen by the parent). After a lazy restore
 * (tests/run-zoo.sh --lazy: memory comes in on demand, each process its own) pages are not
 * shared: only the contents and privacy are checked, and the PASS line says so.
 * Blocks in: nanosleep (both).
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define SIZE (8UL << 20)
#define PAGES (SIZE / 4096)
#define PM_PRESENT (1ULL << 63)
#define PM_PFN ((1ULL << 55) - 1)

static unsigned char *mem;
static pid_t child;
static int ask[2], answer[2];
static volatile sig_atomic_t child_term;

static void on_child_term(int sig) { (void)sig; child_term = 1; }

static void c_shared(ucontext_t *u)
{
	(void)u;
	volatile unsigned char *m = mem;
	for (size_t p = 0; p < PAGES; p += 2)
		m[p * 4096] = m[p * 4096]; /* a write: the parent's own copy */
}
static const struct zoo_corruption corruptions[] = { { "shared", c_shared, 0 } };

/* The page frame of each page of mem in pid (0: not present); -1 if frames are hidden. */
static int read_frames(pid_t pid, uint64_t *pfn)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, pfn, PAGES * 8, (off_t)((uintptr_t)mem / 4096 * 8));
	close(fd);
	if (n != (ssize_t)(PAGES * 8))
		return -1;
	int any = 0;
	for (size_t p = 0; p < PAGES; p++) {
		pfn[p] = pfn[p] & PM_PRESENT ? pfn[p] & PM_PFN : 0;
		any |= pfn[p] != 0;
	}
	return any ? 0 : -1;
}

/* Pss of mem in this process, in kB (-1 if not found). */
static long own_pss(void)
{
	char buf[1 << 16], head[64];
	ssize_t n = zoo_read_file("/proc/self/smaps", buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	snprintf(head, sizeof(head), "%lx-", (unsigned long)mem);
	char *at = strstr(buf, head), *pss = at ? strstr(at, "\nPss:") : NULL;
	return pss ? strtol(pss + 5, NULL, 10) : -1;
}

static void child_main(void)
{
	struct sigaction sa = { .sa_handler = on_child_term };
	sigaction(SIGTERM, &sa, NULL);
	close(ask[1]);
	close(answer[0]);
	char c;
	while (read(ask[0], &c, 1) < 0 && errno == EINTR)
		;
	/* asked: its content, then a write of its own */
	char verdict = zoo_check_fill(mem, SIZE, 7) < 0 ? 'y' : 'n';
	mem[4096 * 5] ^= 0xff;
	if (write(answer[1], &verdict, 1) != 1)
		_exit(3);
	while (!child_term)
		zoo_sleep_ms(10);
	_exit(0);
}

int main(int argc, char **argv)
{
	static uint64_t mine[PAGES], theirs[PAGES];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || pipe(ask) || pipe(answer))
		zoo_die("setup: %s", strerror(errno));
	madvise(mem, SIZE, MADV_NOHUGEPAGE); /* one frame a page, whatever the THP setting */
	zoo_fill(mem, SIZE, 7);
	if ((child = fork()) < 0)
		zoo_die("fork: %s", strerror(errno));
	if (!child)
		child_main();
	close(ask[0]);
	close(answer[1]);

	zoo_ready();
	zoo_wait();

	int lazy = zoo_restored_lazily();
	if (lazy) {
		/* nothing shared to check (a known limit of lazy restores) */
	} else if (read_frames(getpid(), mine) == 0) {
		int got = read_frames(child, theirs);
		size_t differ = 0, first = PAGES;
		for (size_t p = 0; got == 0 && p < PAGES; p++)
			if (!mine[p] || mine[p] != theirs[p]) {
				differ++;
				if (first == PAGES)
					first = p;
			}
		CHECK("shared", got == 0 && !differ, "%zu of %zu pages are no longer shared with the child "
		      "(the first: page %zu)%s", differ, (size_t)PAGES, first, got ? "; its frames unreadable" : "");
	} else {
		long pss = own_pss(); /* shared by two: half of 8 MiB */
		CHECK("shared", pss >= 0 && pss <= (long)(SIZE / 1024) * 3 / 4, "Pss of the region %ld kB, expected "
		      "about %lu kB (shared with the child)", pss, SIZE / 1024 / 2);
	}
	long bad = zoo_check_fill(mem, SIZE, 7);
	CHECK("content", bad < 0, "the parent's memory differs at byte %ld", bad);
	char verdict = 0;
	if (write(ask[1], "?", 1) != 1 || read(answer[0], &verdict, 1) != 1)
		zoo_failf("content", "cannot ask the child: %s", strerror(errno));
	else
		CHECK("content", verdict == 'y', "the child's memory differs");
	CHECK("private", mem[4096 * 5] == (unsigned char)zoo_pattern(4096 * 5, 7),
	      "the child's write is seen by the parent");
	kill(child, SIGTERM);
	int st;
	waitpid(child, &st, 0);
	return zoo_finish(lazy ? "8 MiB of one parent and one child: contents and privacy (restored lazily: not shared)"
			       : "8 MiB shared by one parent and one child, every page still one frame");
}
