/*
 * mem-kinds: mappings in states the other memory programs do not set up.
 *   G: a MAP_GROWSDOWN mapping of 4 pages (with room below it to grow: 16 free pages, then a
 *   PROT_NONE reservation), holding a pattern;
 *   F: 4 pages given MADV_FREE, then written again (their data must stay); 
 *   D: a private file mapping whose changed pages were dropped with MADV_DONTNEED (they read
 *   the file again);
 *   R: a memfd mapped shared, with a page punched out (MADV_REMOVE: zeroes, a hole);
 *   P: the same memfd mapped MAP_PRIVATE by a child C, which changed its first page;
 *   N: 2 anonymous pages named with PR_SET_VMA_ANON_NAME ("[anon:zoo-named]"), and a
 *   shared anonymous page named "[anon_shmem:zoo-shared]".
 * After restore and SIGTERM: G still grows down (VmFlags gd, a touch below it maps a page),
 * F, D and R hold their data (R's hole reads zeroes and is still a hole); C's first page is its
 * own and its others follow what the parent writes to the memfd; the names are kept (generic
 * maps check).
 * Blocks in: nanosleep (zoo_wait loop; C's sleep loop).
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define PAGE 4096
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif
static unsigned char *g, *f, *d, *r, *n, *ns;
static int memfd, named;
static pid_t child;
static int to_child[2], from_child[2];

static void c_grows(ucontext_t *u) { (void)u; g[5] ^= 1; }
static void c_free(ucontext_t *u) { (void)u; madvise(f, 4 * PAGE, MADV_DONTNEED); }
static void c_hole(ucontext_t *u) { (void)u; r[PAGE + 1] = 1; }
static void c_private(ucontext_t *u) { (void)u; if (write(to_child[1], "c", 1)) {} }
static const struct zoo_corruption corruptions[] = {
	{ "grows", c_grows, 0 },
	{ "free", c_free, 0 },
	{ "hole", c_hole, 0 },
	{ "private", c_private, 0 },
};

/* C: maps the memfd privately, changes page 0; on each request reports its pages 0..2. */
static void run_child(void)
{
	unsigned char *p = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, memfd, 0);
	char cmd;
	close(to_child[1]);
	close(from_child[0]);
	if (p == MAP_FAILED)
		_exit(2);
	p[0] = 'c';
	if (write(from_child[1], "r", 1) != 1)
		_exit(2);
	while (read(to_child[0], &cmd, 1) == 1) {
		if (cmd == 'c') { /* the corruption: C's page 2 becomes its own too */
			p[2 * PAGE] = 'x';
			continue;
		}
		char rep[3] = { (char)p[0], (char)p[PAGE], (char)p[2 * PAGE] };
		if (write(from_child[1], rep, 3) != 3)
			_exit(2);
	}
	_exit(0);
}

static int has_flag(const void *addr, const char *flag)
{
	static char smaps[1 << 20];
	char head[32], want[8];
	zoo_read_file("/proc/self/smaps", smaps, sizeof(smaps));
	snprintf(head, sizeof(head), "%lx-", (unsigned long)addr);
	char *at = strstr(smaps, head), *vf = at ? strstr(at, "VmFlags:") : NULL;
	if (!vf)
		return 0;
	char *eol = strchr(vf, '\n');
	if (eol)
		*eol = 0;
	snprintf(want, sizeof(want), " %s", flag);
	return strstr(vf, want) != NULL;
}

int main(int argc, char **argv)
{
	char path[4200];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	/*
	 * G: room below it. Growing by a page needs no accessible mapping within the stack guard
	 * gap (256 pages) below its new start, but mmap only keeps the gap below its present
	 * start free: a later mapping may end just there. So 16 pages below G are left free (in
	 * the gap, where mmap puts nothing) and below them a PROT_NONE reservation holds the rest
	 * of the room (it keeps other mappings away and, not accessible, does not stop a growth).
	 */
	unsigned char *room = mmap(NULL, 1024 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (room == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	munmap(room + 1004 * PAGE, 20 * PAGE);
	g = mmap(room + 1020 * PAGE, 4 * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED_NOREPLACE, -1, 0);
	if (g == MAP_FAILED)
		zoo_die("MAP_GROWSDOWN: %s", strerror(errno));
	zoo_fill(g, 4 * PAGE, 1);
	f = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	zoo_fill(f, 4 * PAGE, 2);
	if (madvise(f, 4 * PAGE, MADV_FREE))
		zoo_die("MADV_FREE: %s", strerror(errno));
	zoo_fill(f, 4 * PAGE, 3);
	snprintf(path, sizeof(path), "%s/file", zoo_tmpdir());
	unsigned char page[2 * PAGE];
	zoo_fill(page, sizeof(page), 4);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, page, sizeof(page)) != (ssize_t)sizeof(page))
		zoo_die("%s: %s", path, strerror(errno));
	d = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	memset(d, 0x55, 2 * PAGE);
	if (madvise(d, 2 * PAGE, MADV_DONTNEED))
		zoo_die("MADV_DONTNEED: %s", strerror(errno));
	memfd = memfd_create("zoo-kinds", 0);
	if (memfd < 0 || ftruncate(memfd, 3 * PAGE))
		zoo_die("memfd: %s", strerror(errno));
	r = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	memset(r, 'p', 3 * PAGE);
	if (madvise(r + PAGE, PAGE, MADV_REMOVE))
		zoo_die("MADV_REMOVE: %s", strerror(errno));
	n = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ns = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	named = !prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, n, 2 * PAGE, "zoo-named") &&
		!prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, ns, PAGE, "zoo-shared");
	n[0] = ns[0] = 1;
	char c;
	if (pipe(to_child) || pipe(from_child))
		zoo_die("pipe: %s", strerror(errno));
	child = fork();
	if (child == 0)
		run_child();
	if (read(from_child[0], &c, 1) != 1)
		zoo_die("the child did not start");
	zoo_ready();
	zoo_wait();

	CHECK("grows", zoo_check_fill(g, 4 * PAGE, 1) < 0, "G's pattern differs");
	CHECK("grows", has_flag(g, "gd"), "G lost MAP_GROWSDOWN (no 'gd' in VmFlags)");
	g[-1] = 7; /* grows */
	unsigned long s = 0, e = 0;
	CHECK("grows", zoo_map_of((unsigned long)g, &s, &e, NULL) == 0 && s == (unsigned long)g - PAGE,
	      "G did not grow down: it starts at %#lx, expected %#lx", s, (unsigned long)g - PAGE);
	CHECK("free", zoo_check_fill(f, 4 * PAGE, 3) < 0, "F lost its data (written after MADV_FREE)");
	CHECK("free", !memcmp(d, page, 2 * PAGE), "D does not read its file again");
	unsigned char zero[PAGE] = { 0 };
	off_t hole = lseek(memfd, 0, SEEK_HOLE); /* before reading it maps a page there */
	CHECK("hole", r[0] == 'p' && r[2 * PAGE] == 'p' && !memcmp(r + PAGE, zero, PAGE) && hole == PAGE,
	      "R: the punched page is not a hole of zeroes (hole at %ld)", (long)hole);
	r[2 * PAGE] = 'q'; /* C's untouched page follows the memfd */
	char rep[3] = { 0 };
	CHECK("private", write(to_child[1], "?", 1) == 1 && read(from_child[0], rep, 3) == 3 && rep[0] == 'c' &&
				 rep[1] == 0 && rep[2] == 'q',
	      "C reads '%c' '%c' '%c', expected its own 'c', a hole and the parent's 'q'", rep[0] ? rep[0] : '0',
	      rep[1] ? rep[1] : '0', rep[2] ? rep[2] : '0');
	close(to_child[1]);
	waitpid(child, NULL, 0);
	return zoo_finish(named ? "7 kinds of mappings, 2 named" : "6 kinds of mappings");
}
