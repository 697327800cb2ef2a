/*
 * cow: private anonymous memory inherited across fork (copy-on-write). The parent fills
 * 16 MiB and a 4 MiB region advised MADV_HUGEPAGE (transparent huge pages), then forks:
 * child A rewrites one page in 16, child B changes nothing and forks a grandchild G that
 * changes nothing either, child C drops 1 MiB of it (MADV_DONTNEED: zeroes), child D unmaps
 * 4 MiB in its middle. Pages still shared are saved once (see cow.after-dump).
 * A file in $ZOO_TMPDIR is mapped MAP_PRIVATE too (64 pages from its 16th): the parent writes
 * every 4th page (p % 4 == 1) before the forks, child A after them writes p % 4 == 2 and
 * rewrites p % 16 == 1; the other pages are never written.
 * After restore and SIGTERM, the parent reads every process's page frames
 * (/proc/PID/pagemap, as root; in a user namespace, where frames are hidden, the parent's Pss):
 * a page none of them changed must still be the one physical
 * page in each (shared copy-on-write, as before the dump), A's rewritten pages and C's
 * dropped ones not; its huge pages are still huge pages. In the file mapping likewise: a page
 * the parent wrote and the child did not is the parent's very page (anonymous, not the file's),
 * those A wrote are its own, and a page nobody wrote is still the file's (page cache), where
 * present. Then every process checks its content and that its file mapping is the same file
 * at the same offset, then that memory is still private: each child writes a byte the parent
 * must not see, and the file itself holds none of the writes.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define SIZE (16UL << 20)
#define THP_SIZE (4UL << 20)
#define PAGES (SIZE / 4096)
#define THP_PAGES (THP_SIZE / 4096)
#define DROP_FROM (1UL << 20) /* C's dropped range */
#define DROP_TO (2UL << 20)
#define HOLE_FROM (4UL << 20) /* D's unmapped range */
#define HOLE_TO (8UL << 20)
#define PM_PRESENT (1ULL << 63)
#define PM_FILE (1ULL << 61) /* a file's page (page cache) or shared memory */
#define PM_PFN ((1ULL << 55) - 1)
#define FILE_PAGES 64    /* the private file mapping */
#define FILE_SKIP 16     /* ... from this page of the file on */
#define ALL_PAGES (PAGES + THP_PAGES + FILE_PAGES) /* frames: mem, thp, then the file's */

enum kid { KID_A, KID_B, KID_G, KID_C, KID_D, NR_KIDS };
static const char kid_names[NR_KIDS] = { 'A', 'B', 'G', 'C', 'D' };

static unsigned char *mem, *thp, *fmem;
static char file_path[600];
static ino_t file_ino;
static volatile sig_atomic_t child_term;
static uint64_t frames[NR_KIDS + 1][ALL_PAGES]; /* the parent's last */

static void on_term(int sig) { (void)sig; child_term = 1; }

static int rewritten(enum kid k, size_t page) { return k == KID_A && page % 16 == 3; }
static int dropped(enum kid k, size_t off) { return k == KID_C && off >= DROP_FROM && off < DROP_TO; }
static int unmapped(enum kid k, size_t off) { return k == KID_D && off >= HOLE_FROM && off < HOLE_TO; }
/* pages of the file mapping written: by the parent before the forks, by kid k after */
static int file_parent_wrote(size_t p) { return p % 4 == 1; }
static int file_kid_wrote(enum kid k, size_t p) { return k == KID_A && (p % 4 == 2 || p % 16 == 1); }
static uint64_t file_seed(enum kid k, size_t p)
{
	return file_kid_wrote(k, p) ? 6100 + p : file_parent_wrote(p) ? 6000 + p : 5000 + FILE_SKIP + p;
}

/* The file mapping in /proc/self/maps: still that file (its inode, its path), at its offset. */
static int file_mapping_ok(void)
{
	static char maps[1 << 16];
	char head[32], path[600];
	unsigned long long off, ino;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	ssize_t n, got = 0;
	while (fd >= 0 && got < (ssize_t)sizeof(maps) - 1 && (n = read(fd, maps + got, sizeof(maps) - 1 - got)) > 0)
		got += n;
	if (fd >= 0)
		close(fd);
	maps[got > 0 ? got : 0] = 0;
	snprintf(head, sizeof(head), "%lx-", (unsigned long)(uintptr_t)fmem);
	char *l = strstr(maps, head);
	if (!l || (l != maps && l[-1] != '\n') ||
	    sscanf(l, "%*x-%*x %*s %llx %*s %llu %599s", &off, &ino, path) != 3)
		return 0;
	return off == FILE_SKIP * 4096ULL && ino == (unsigned long long)file_ino && !strcmp(path, file_path);
}

static int content_ok(enum kid k)
{
	static const unsigned char zero[4096];
	for (size_t off = 0; off < SIZE; off += 4096) {
		size_t page = off / 4096;
		if (unmapped(k, off))
			continue;
		if (dropped(k, off) ? memcmp(mem + off, zero, 4096) != 0
				    : zoo_check_fill(mem + off, 4096, rewritten(k, page) ? 92 + page : 91 + page) >= 0)
			return 0;
	}
	for (size_t off = 0; off < THP_SIZE; off += 4096)
		if (zoo_check_fill(thp + off, 4096, 7000 + off / 4096) >= 0)
			return 0;
	for (size_t p = 0; p < FILE_PAGES; p++)
		if (zoo_check_fill(fmem + p * 4096, 4096, file_seed(k, p)) >= 0)
			return 0;
	return file_mapping_ok();
}

/* Exit code: 0, or 1 content, 2 grandchild failed */
static void wait_term_and_check(enum kid k, pid_t kid)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	while (!child_term)
		zoo_sleep_ms(10);
	int code = content_ok(k) ? 0 : 1;
	mem[SIZE - 1] = 0x5a; /* private: nobody else sees it */
	fmem[FILE_PAGES * 4096 - 1] = 0x5a;
	if (kid > 0) {
		int st = 0;
		kill(kid, SIGTERM);
		waitpid(kid, &st, 0);
		code |= !WIFEXITED(st) || WEXITSTATUS(st) ? 2 : 0;
	}
	_exit(code);
}

/* The page frame entries of mem, thp, then fmem, of process hpid (as /proc names it, 0: self): 0, or -1. */
static int read_frames(pid_t hpid, uint64_t *out)
{
	char path[64];
	if (hpid)
		snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)hpid);
	else
		snprintf(path, sizeof(path), "/proc/self/pagemap");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int ok = pread(fd, out, PAGES * 8, (uintptr_t)mem / 4096 * 8) == (ssize_t)(PAGES * 8) &&
		 pread(fd, out + PAGES, THP_PAGES * 8, (uintptr_t)thp / 4096 * 8) == (ssize_t)(THP_PAGES * 8) &&
		 pread(fd, out + PAGES + THP_PAGES, FILE_PAGES * 8, (uintptr_t)fmem / 4096 * 8) ==
			 (ssize_t)(FILE_PAGES * 8);
	close(fd);
	return ok ? 0 : -1;
}

static size_t read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t n = 1;
	while (fd >= 0 && got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += n; /* (/proc gives a page or so at a time) */
	if (fd >= 0)
		close(fd);
	buf[got] = 0;
	return got;
}

/*
 * The pid /proc names (its mount may be of an outer PID namespace) of the child of the
 * process /proc calls parent (0: self) that has pid in our namespace (NSpid's last), or 0.
 */
static pid_t proc_pid_of_child(pid_t parent, pid_t pid)
{
	static char list[4096], status[4096];
	char path[96];
	if (parent)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)parent, (int)parent);
	else
		snprintf(path, sizeof(path), "/proc/thread-self/children");
	read_text(path, list, sizeof(list));
	for (char *p = list, *end; *p; p = end) {
		long hp = strtol(p, &end, 10);
		if (end == p)
			break;
		snprintf(path, sizeof(path), "/proc/%ld/status", hp);
		read_text(path, status, sizeof(status));
		char *ns = strstr(status, "NSpid:");
		char *eol = ns ? strchr(ns, '\n') : NULL;
		if (!ns || !eol)
			continue;
		while (eol > ns && eol[-1] >= '0' && eol[-1] <= '9')
			eol--;
		if (parent && strtol(eol, NULL, 10) > 0)
			return (pid_t)hp; /* (a grandchild: B's only child) */
		if (strtol(eol, NULL, 10) == pid)
			return (pid_t)hp;
	}
	return 0;
}

/* A field (kB) of our own mapping at start in /proc/self/smaps, -1 if not found. */
static long smaps_kb(const void *start, const char *field)
{
	static char smaps[1 << 16];
	char head[32], name[32];
	long kb;
	read_text("/proc/self/smaps", smaps, sizeof(smaps));
	snprintf(head, sizeof(head), "\n%lx-", (unsigned long)(uintptr_t)start);
	snprintf(name, sizeof(name), "\n%s:", field);
	char *p = strstr(smaps, head), *q; /* (its fields come before the next mapping's) */
	if (!p || !(q = strstr(p, name)) || sscanf(q + strlen(name), "%ld", &kb) != 1)
		return -1;
	return kb;
}

/*
 * Page frames are hidden in a user namespace: then the parent's proportional share of its
 * pages (smaps' Pss of mem and thp) must show them shared, under half of what it has.
 */
static void check_pss(void)
{
	long rss = smaps_kb(mem, "Rss") + smaps_kb(thp, "Rss"), pss = smaps_kb(mem, "Pss") + smaps_kb(thp, "Pss");
	CHECK("shared", rss > 0 && pss * 2 < rss,
	      "page frames hidden (user namespace): the parent's Pss is %ld kB of an Rss of %ld kB", pss, rss);
}

/*
 * Which pages of kid k are the parent's very page, and which must not be. After a lazy restore
 * (tests/run-zoo.sh --lazy) no page is shared: only that its own are not is checked.
 */
static void check_shared(enum kid k, pid_t pid, int lazy)
{
	const uint64_t *mine = frames[NR_KIDS], *its = frames[k];
	size_t same = 0, differ = 0, first_bad = SIZE_MAX;

	if (pid <= 0 || read_frames(pid, frames[k])) {
		zoo_failf("shared", "cannot read the page frames of child %c (pid %d)", kid_names[k], (int)pid);
		return;
	}
	for (size_t i = 0; i < PAGES + THP_PAGES; i++) {
		size_t off = i * 4096;
		int own = i < PAGES && (rewritten(k, i) || dropped(k, off));
		if (i < PAGES && unmapped(k, off)) {
			if (its[i] & PM_PRESENT && first_bad == SIZE_MAX)
				first_bad = i;
			continue;
		}
		int one = (mine[i] & PM_PRESENT) && (its[i] & PM_PRESENT) &&
			  (mine[i] & PM_PFN) == (its[i] & PM_PFN);
		same += one;
		differ += !one;
		if (one == own && (one || !lazy) && first_bad == SIZE_MAX)
			first_bad = i;
	}
	CHECK("shared", first_bad == SIZE_MAX,
	      "child %c: page %zu (%s) %s the parent's page frame (%zu pages shared, %zu not)",
	      kid_names[k], first_bad, first_bad < PAGES ? "16 MiB" : "THP",
	      first_bad < PAGES && (rewritten(k, first_bad) || dropped(k, first_bad * 4096)) ? "is" : "is not",
	      same, differ);
}

/*
 * The file mapping of kid k (NR_KIDS: the parent itself, its frames read already): a page the
 * parent wrote and k did not is the parent's page (unless lazy), one k wrote is its own, both
 * anonymous (a copy of the file's page); one nobody wrote is the file's where present (the
 * parent's are: it read them all). Page frames hidden: only the last.
 */
static void check_file(enum kid k, int hidden, int lazy)
{
	const uint64_t *mine = frames[NR_KIDS] + PAGES + THP_PAGES, *its = frames[k] + PAGES + THP_PAGES;
	const char *tag = NULL, *why = "";
	size_t p;

	for (p = 0; p < FILE_PAGES && !tag; p++) {
		int written = file_parent_wrote(p) || file_kid_wrote(k, p);
		int present = (its[p] & PM_PRESENT) != 0, file = (its[p] & PM_FILE) != 0;
		int one = present && (mine[p] & PM_PRESENT) && (mine[p] & PM_PFN) == (its[p] & PM_PFN);
		if (!written && (present ? !file : k == NR_KIDS))
			tag = "file-backed", why = "was never written, yet is not the file's page";
		else if (written && (!present || file))
			tag = "file-backed", why = "was written, yet is not an anonymous copy of the file's";
		else if (!written || hidden || k == NR_KIDS)
			continue;
		else if (file_kid_wrote(k, p) && one)
			tag = "file-shared", why = "was written by the child, yet is the parent's page frame";
		else if (!file_kid_wrote(k, p) && !one && !lazy)
			tag = "file-shared", why = "was written by the parent only, yet is not the parent's page frame";
	}
	if (!tag)
		return;
	if (k == NR_KIDS)
		zoo_failf(tag, "the parent's page %zu of its private file mapping %s", p - 1, why);
	else
		zoo_failf(tag, "child %c: page %zu of its private file mapping %s", kid_names[k], p - 1, why);
}

static void c_content(ucontext_t *u) { (void)u; mem[12345] ^= 1; }
/* the page at p copied in place: its data the same, its page a copy of the process's own */
static void copy_in_place(unsigned char *p)
{
	static unsigned char page[4096];
	memcpy(page, p, 4096);
	memcpy(p, page, 4096);
}

/* one page copied in place */
static void c_shared(ucontext_t *u) { (void)u; copy_in_place(mem + 5 * 4096); }
/* a huge page split: its first 4 KiB page dropped */
static void c_thp(ucontext_t *u)
{
	(void)u;
	madvise(thp, 4096, MADV_DONTNEED);
}
/* a page of the file mapping the parent wrote copied in place: its own now, the children's not */
static void c_file_shared(ucontext_t *u) { (void)u; copy_in_place(fmem + 5 * 4096); }
/* a page nobody wrote copied in place: an anonymous copy now, no longer the file's */
static void c_file_backed(ucontext_t *u) { (void)u; copy_in_place(fmem + 8 * 4096); }
static const struct zoo_corruption corruptions[] = {
	{ "content", c_content, 0 },
	{ "shared", c_shared, 0 },
	{ "thp", c_thp, 0 },
	{ "file-shared", c_file_shared, 0 },
	{ "file-backed", c_file_backed, 0 },
};

/* The file, 80 pages of a pattern, mapped MAP_PRIVATE writable from its page FILE_SKIP. */
static void map_file(void)
{
	static unsigned char page[4096];
	struct stat st;
	snprintf(file_path, sizeof(file_path), "%s/cow-private.dat", zoo_tmpdir());
	int fd = open(file_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		zoo_die("cannot create %s", file_path);
	for (size_t p = 0; p < FILE_SKIP + FILE_PAGES; p++) {
		zoo_fill(page, 4096, 5000 + p);
		if (write(fd, page, 4096) != 4096)
			zoo_die("cannot write %s", file_path);
	}
	fmem = mmap(NULL, FILE_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, FILE_SKIP * 4096);
	if (fmem == MAP_FAILED || fstat(fd, &st))
		zoo_die("cannot map %s", file_path);
	file_ino = st.st_ino;
	close(fd);
	for (size_t p = 0; p < FILE_PAGES; p++)
		if (file_parent_wrote(p))
			zoo_fill(fmem + p * 4096, 4096, 6000 + p);
}

/* The file itself holds none of the writes to its private mapping: 0, else the page that differs + 1. */
static size_t file_untouched(void)
{
	static unsigned char page[4096];
	int fd = open(file_path, O_RDONLY | O_CLOEXEC);
	size_t bad = 0;
	for (size_t p = 0; fd >= 0 && !bad && p < FILE_SKIP + FILE_PAGES; p++)
		if (pread(fd, page, 4096, p * 4096) != 4096 || zoo_check_fill(page, 4096, 5000 + p) >= 0)
			bad = p + 1;
	if (fd >= 0)
		close(fd);
	return fd < 0 ? 1 : bad;
}

int main(int argc, char **argv)
{
	pid_t kids[NR_KIDS];
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* a 2 MiB aligned region, huge pages asked for */
	unsigned char *raw = mmap(NULL, THP_SIZE + (2UL << 20), PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	thp = (unsigned char *)(((uintptr_t)raw + (2UL << 20) - 1) & ~((2UL << 20) - 1));
	if (thp > raw)
		munmap(raw, thp - raw);
	munmap(thp + THP_SIZE, raw + (2UL << 20) - thp);
	madvise(thp, THP_SIZE, MADV_HUGEPAGE);
	map_file();
	for (size_t off = 0; off < SIZE; off += 4096)
		zoo_fill(mem + off, 4096, 91 + off / 4096);
	for (size_t off = 0; off < THP_SIZE; off += 4096)
		zoo_fill(thp + off, 4096, 7000 + off / 4096);
	if ((kids[KID_A] = fork()) == 0) {
		for (size_t off = 3 * 4096; off < SIZE; off += 16 * 4096)
			zoo_fill(mem + off, 4096, 92 + off / 4096);
		for (size_t p = 0; p < FILE_PAGES; p++)
			if (file_kid_wrote(KID_A, p))
				zoo_fill(fmem + p * 4096, 4096, 6100 + p);
		wait_term_and_check(KID_A, 0);
	}
	if ((kids[KID_B] = fork()) == 0) {
		pid_t g = fork();
		if (g == 0)
			wait_term_and_check(KID_G, 0);
		wait_term_and_check(KID_B, g);
	}
	if ((kids[KID_C] = fork()) == 0) {
		madvise(mem + DROP_FROM, DROP_TO - DROP_FROM, MADV_DONTNEED);
		wait_term_and_check(KID_C, 0);
	}
	if ((kids[KID_D] = fork()) == 0) {
		munmap(mem + HOLE_FROM, HOLE_TO - HOLE_FROM);
		wait_term_and_check(KID_D, 0);
	}
	zoo_sleep_ms(100);
	long thp_kb = smaps_kb(thp, "AnonHugePages"); /* (0: the kernel gave none) */
	zoo_ready();
	zoo_wait();

	int lazy = zoo_restored_lazily();
	long thp_now = smaps_kb(thp, "AnonHugePages");
	/* (a lazy restore fills memory a small page at a time, on demand: no huge page) */
	CHECK("thp", thp_now == thp_kb || lazy, "its region advised MADV_HUGEPAGE has %ld kB of huge pages, had %ld",
	      thp_now, thp_kb);
	CHECK("content", content_ok(NR_KIDS) /* (the parent: none of the kids' changes) */, "the parent's memory differs");
	pid_t proc_pids[NR_KIDS];
	for (enum kid k = 0; k < NR_KIDS; k++)
		proc_pids[k] = k == KID_G ? 0 : proc_pid_of_child(0, kids[k]);
	proc_pids[KID_G] = proc_pids[KID_B] ? proc_pid_of_child(proc_pids[KID_B], 0) : 0;
	int hidden = 1;
	if (CHECK("shared", read_frames(0, frames[NR_KIDS]) == 0, "cannot read its own page frames")) {
		for (size_t i = 0; i < PAGES + THP_PAGES; i++)
			hidden &= !(frames[NR_KIDS][i] & PM_PFN);
		if (hidden && !lazy)
			check_pss();
		for (enum kid k = 0; k < NR_KIDS && !hidden; k++)
			check_shared(k, proc_pids[k], lazy);
		check_file(NR_KIDS, hidden, lazy);
		for (enum kid k = 0; k < NR_KIDS; k++)
			if (hidden && (proc_pids[k] <= 0 || read_frames(proc_pids[k], frames[k])))
				zoo_failf("file-shared", "cannot read the page frames of child %c", kid_names[k]);
			else
				check_file(k, hidden, lazy);
	}
	static const enum kid order[] = { KID_A, KID_B, KID_C, KID_D }; /* (G: B's) */
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		int st = 0;
		kill(kids[order[i]], SIGTERM);
		waitpid(kids[order[i]], &st, 0);
		CHECK("content", WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %c%s: %#x", kid_names[order[i]],
		      order[i] == KID_B ? " or its child" : "", st);
	}
	CHECK("private", mem[SIZE - 1] != 0x5a && fmem[FILE_PAGES * 4096 - 1] != 0x5a,
	      "a child's write reached the parent");
	size_t bad = file_untouched();
	CHECK("private", !bad, "the mapped file differs at page %zu: a write to its private mapping reached it", bad - 1);
	return zoo_finish(lazy ? "6 processes, 16 MiB + 4 MiB THP (lazy: pages neither shared nor huge after restore, not checked)"
			       : "6 processes share 16 MiB + 4 MiB THP copy-on-write, also after restore");
}
