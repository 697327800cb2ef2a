/*
 * hugetlb: memory of 2 MiB huge pages from the kernel's pool (vm.nr_hugepages; the zoo's
 * runner makes sure there are free ones), in each of the forms a program gets it:
 *   - private anonymous, MAP_HUGETLB: 3 huge pages; the parent writes page 0 before a fork,
 *     the child writes page 1 after it (its own copy, copy-on-write), page 2 stays untouched;
 *   - shared anonymous, MAP_HUGETLB: 1 huge page shared with the child (fork);
 *   - a memfd made with MFD_HUGETLB ("zoo-huge", 1 huge page), held at fd 40 and mapped
 *     shared by the parent and the child, and mapped private by the parent, which writes its
 *     third 4 KiB there (its own copy of the huge page: the memfd's is unchanged);
 *   - a SysV segment made with SHM_HUGETLB (1 huge page, IPC_PRIVATE), attached by the
 *     parent (and by the child, inherited).
 * After restore and SIGTERM, each process checks the content of every form, that each is
 * still huge pages (its KernelPageSize in /proc/self/smaps is 2048 kB, the memfd's file is
 * on hugetlbfs with 2 MiB blocks) and, for the shared ones, the sharing itself: the parent
 * writes a token into each, the child must see it.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/statfs.h>
#include <sys/wait.h>

#define HUGE (2UL << 20)
#define FD 40
#define HUGETLBFS_MAGIC_ 0x958458f6
#define MFD_HUGETLB_ 0x0004U

static unsigned char *priv, *shared, *mfd, *mfd_priv, *sysv;
static int shm_id = -1;
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

/* KernelPageSize of the mapping at addr in /proc/self/smaps, in kB (0: not found). */
static long page_kb(const void *addr)
{
	static char buf[1 << 20]; /* (no allocation after zoo_ready) */
	char head[32];
	long kb = 0;

	if (zoo_read_file("/proc/self/smaps", buf, sizeof(buf)) < 0)
		return 0;
	snprintf(head, sizeof(head), "\n%lx-", (unsigned long)addr);
	char *at = strstr(buf, head);
	char *k = at ? strstr(at, "KernelPageSize:") : NULL;
	if (k)
		kb = strtol(k + strlen("KernelPageSize:"), NULL, 10);
	return kb;
}

/* Bits: 1 private content, 2 shared content, 4 memfd content or file, 8 SysV content,
 * 16 not huge pages. */
static int check_forms(int is_child)
{
	int bad = 0;
	struct statfs sfs;

	if (zoo_check_fill(priv, 4096, 81) >= 0 || zoo_check_fill(priv + HUGE - 4096, 4096, 82) >= 0)
		bad |= 1;
	if (is_child ? zoo_check_fill(priv + HUGE, 4096, 83) >= 0 : priv[HUGE + 9] != 0)
		bad |= 1;
	for (size_t off = 2 * HUGE; off < 3 * HUGE; off += 4096)
		if (priv[off + 11])
			bad |= 1;
	if (zoo_check_fill(shared, 4096, 84) >= 0)
		bad |= 2;
	if (zoo_check_fill(mfd, 4096, 85) >= 0 || fstatfs(FD, &sfs) ||
	    sfs.f_type != HUGETLBFS_MAGIC_ || sfs.f_bsize != (long)HUGE)
		bad |= 4;
	if (!is_child && (zoo_check_fill(mfd_priv + 8192, 4096, 87) >= 0 ||
			  zoo_check_fill(mfd_priv, 4096, 85) >= 0 || mfd[8192 + 5] != 0))
		bad |= 64;
	if (zoo_check_fill(sysv, 4096, 86) >= 0)
		bad |= 8;
	if (page_kb(priv) != 2048 || page_kb(shared) != 2048 || page_kb(mfd) != 2048 ||
	    page_kb(sysv) != 2048 || (!is_child && page_kb(mfd_priv) != 2048))
		bad |= 16;
	return bad;
}

struct tokens {
	volatile uint64_t shared, mfd, sysv;
};
#define TOKEN_AT (HUGE - 64)

static void child(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	zoo_fill(priv + HUGE, 4096, 83);
	while (!child_term)
		zoo_sleep_ms(10);
	int code = check_forms(1);
	for (int i = 0; i < 500; i++) {
		if (*(volatile uint64_t *)(shared + TOKEN_AT) == 0x5348 &&
		    *(volatile uint64_t *)(mfd + TOKEN_AT) == 0x4d46 &&
		    *(volatile uint64_t *)(sysv + TOKEN_AT) == 0x5359)
			break;
		zoo_sleep_ms(2);
	}
	if (*(volatile uint64_t *)(shared + TOKEN_AT) != 0x5348)
		code |= 32;
	if (*(volatile uint64_t *)(mfd + TOKEN_AT) != 0x4d46)
		code |= 64;
	if (*(volatile uint64_t *)(sysv + TOKEN_AT) != 0x5359)
		code |= 128;
	_exit(code);
}

static void c_content(ucontext_t *u) { (void)u; priv[100] ^= 1; }
/* the same content in ordinary pages, at the same address */
static void c_huge(ucontext_t *u)
{
	(void)u;
	void *copy = mmap(NULL, 3 * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memcpy(copy, priv, 3 * HUGE);
	munmap(priv, 3 * HUGE);
	mremap(copy, 3 * HUGE, 3 * HUGE, MREMAP_MAYMOVE | MREMAP_FIXED, priv);
}
/* the parent's view of the shared page becomes a private copy: the child no longer sees it */
static void c_shared(ucontext_t *u)
{
	(void)u;
	void *copy = mmap(NULL, HUGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (copy == MAP_FAILED)
		return;
	memcpy(copy, shared, HUGE);
	munmap(shared, HUGE);
	mremap(copy, HUGE, HUGE, MREMAP_MAYMOVE | MREMAP_FIXED, shared);
}
static void c_memfd(ucontext_t *u) { (void)u; mfd[200] ^= 1; }
static void c_memfd_private(ucontext_t *u) { (void)u; mfd_priv[8192 + 300] ^= 1; }
static void c_sysv(ucontext_t *u) { (void)u; sysv[300] ^= 1; }

static const struct zoo_corruption corruptions[] = {
	{ "content", c_content, 0 },
	{ "huge", c_huge, 0 },
	{ "sharing", c_shared, 0 },
	{ "memfd", c_memfd, 0 },
	{ "memfd-private", c_memfd_private, 0 },
	{ "sysv", c_sysv, 0 },
};

static void *map_or_die(void *m, const char *what)
{
	if (m == MAP_FAILED)
		zoo_die("%s: %s (free huge pages in vm.nr_hugepages?)", what, strerror(errno));
	return m;
}

static void end_segment(void)
{
	if (shm_id >= 0)
		shmctl(shm_id, IPC_RMID, NULL);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	priv = map_or_die(mmap(NULL, 3 * HUGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0),
			  "mmap MAP_PRIVATE|MAP_HUGETLB");
	shared = map_or_die(mmap(NULL, HUGE, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0),
			    "mmap MAP_SHARED|MAP_HUGETLB");
	int fd = memfd_create("zoo-huge", MFD_HUGETLB_);
	if (fd < 0 || ftruncate(fd, HUGE))
		zoo_die("memfd_create MFD_HUGETLB: %s", strerror(errno));
	zoo_place(fd, FD, 0);
	mfd = map_or_die(mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_SHARED, FD, 0), "mmap memfd");
	mfd_priv = map_or_die(mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, FD, 0),
			      "mmap memfd private");
	if ((shm_id = shmget(IPC_PRIVATE, HUGE, IPC_CREAT | SHM_HUGETLB | 0600)) < 0)
		zoo_die("shmget SHM_HUGETLB: %s", strerror(errno));
	sysv = shmat(shm_id, NULL, 0);
	if (sysv == (void *)-1)
		zoo_die("shmat: %s", strerror(errno));
	shmctl(shm_id, IPC_RMID, NULL); /* goes with its last attach */
	shm_id = -1;
	atexit(end_segment);

	zoo_fill(priv, 4096, 81);
	zoo_fill(priv + HUGE - 4096, 4096, 82);
	zoo_fill(shared, 4096, 84);
	zoo_fill(mfd, 4096, 85);
	zoo_fill(mfd_priv + 8192, 4096, 87); /* (after the memfd's page 0: copied with it) */
	zoo_fill(sysv, 4096, 86);
	pid_t kid = fork();
	if (kid < 0)
		zoo_die("fork: %s", strerror(errno));
	if (kid == 0)
		child();
	zoo_sleep_ms(50); /* the child's copy of private page 1 */
	zoo_check_maps = 0; /* the corruptions replace mappings on purpose */
	zoo_ready();
	zoo_wait();

	int bad = check_forms(0);
	CHECK("content", !(bad & 1), "the private huge pages' content differs");
	CHECK("sharing", !(bad & 2), "the shared huge page's content differs");
	CHECK("memfd", !(bad & 4), "the hugetlb memfd's content differs, or it is not on hugetlbfs");
	CHECK("sysv", !(bad & 8), "the SHM_HUGETLB segment's content differs");
	CHECK("memfd-private", !(bad & 64),
	      "the private mapping of the memfd does not hold its own copy over the memfd's");
	CHECK("huge", !(bad & 16), "a mapping is not of 2 MiB pages (KernelPageSize: %ld, %ld, %ld, %ld kB)",
	      page_kb(priv), page_kb(shared), page_kb(mfd), page_kb(sysv));
	*(volatile uint64_t *)(shared + TOKEN_AT) = 0x5348;
	*(volatile uint64_t *)(mfd + TOKEN_AT) = 0x4d46;
	*(volatile uint64_t *)(sysv + TOKEN_AT) = 0x5359;
	kill(kid, SIGTERM);
	int st = 0;
	if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st)) {
		zoo_failf("sharing", "the child did not exit (status %#x)", st);
	} else {
		int c = WEXITSTATUS(st);
		CHECK("content", !(c & 1), "the child's private huge pages differ");
		CHECK("sharing", !(c & (2 | 32)), "the child does not share the huge page (%#x)", c);
		CHECK("memfd", !(c & (4 | 64)), "the child does not share the hugetlb memfd (%#x)", c);
		CHECK("sysv", !(c & (8 | 128)), "the child does not share the SysV segment (%#x)", c);
		CHECK("huge", !(c & 16), "a mapping of the child is not of 2 MiB pages");
	}
	return zoo_finish(NULL);
}
