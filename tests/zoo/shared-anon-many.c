/*
 * shared-anon-many: more objects of shared anonymous memory than the hard limit of open files
 * (stress-ng's mlock: 55,000), shared by a parent and its child, and objects mapped in shapes
 * that a restore taking each mapping from one copy of the object must keep apart.
 *   N = the hard RLIMIT_NOFILE + 2000 objects of one page each (MAP_SHARED|MAP_ANONYMOUS), made
 *   before the fork: the parent wrote i at offset 0 of object i, the child i * 3 at offset 8.
 *   Shapes, in both processes: A, 3 pages with the middle one unmapped (two mappings of one
 *   object); B, 2 pages mapped whole and its second page mapped again elsewhere (mremap with an
 *   old size of 0: two mappings overlapping in the object); C, 1 page whose mapping was grown to
 *   2 pages (the second lies past the object's end); D, 1 page made read-only with mprotect.
 * After restore and SIGTERM: the parent writes a token into every object and the shapes, the
 * child checks them and answers into every object; each sees the other's writes (one object,
 * not copies), the contents from before the dump are there, B's two mappings are one page, and
 * D can be made writable again.
 * Blocks in: nanosleep (parent's zoo_wait, child's loop).
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096UL

static long n;
static uint64_t **obj;
static uint64_t *a0, *a2, *b, *b2, *c, *d;
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

static uint64_t *shared(size_t len)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	return m;
}

/* The child's checks of the parent's tokens: bit 1 content from before, bit 2 sharing. */
static void child(void)
{
	signal(SIGTERM, on_term);
	for (long i = 0; i < n; i++)
		obj[i][1] = (uint64_t)i * 3;
	while (!child_term)
		zoo_sleep_ms(5);
	int bits = 0;
	for (long i = 0; i < n; i++) {
		if (obj[i][0] != (uint64_t)i || obj[i][1] != (uint64_t)i * 3)
			bits |= 1;
		if (obj[i][2] != ((uint64_t)i ^ 0x5a5a))
			bits |= 2;
		obj[i][3] = (uint64_t)i + 7;
	}
	if (a0[2] != 0xa0 || a2[2] != 0xa2 || b2[2] != 0xb1 || c[2] != 0xc0 || d[2] != 0xd0)
		bits |= 2;
	a2[3] = 0xa2a2;
	_exit(bits);
}

static void c_content(ucontext_t *u) { (void)u; obj[n / 2][0] ^= 1; }
/* a private copy in the parent: its writes reach the child no more */
static void private_copy(uint64_t *at)
{
	uint64_t keep[PAGE / 8];
	memcpy(keep, at, PAGE);
	if (mmap(at, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == at)
		memcpy(at, keep, PAGE);
}
static void c_sharing(ucontext_t *u) { (void)u; private_copy(obj[n - 1]); }
static void c_overlap(ucontext_t *u) { (void)u; private_copy(b2); }
static const struct zoo_corruption corruptions[] = {
	{ "content", c_content, 0 },
	{ "sharing", c_sharing, 0 },
	{ "overlap", c_overlap, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	n = zoo_nofile_raised() + 2000;
	if (!(obj = calloc(n, sizeof(*obj))))
		zoo_die("calloc");
	for (long i = 0; i < n; i++) {
		obj[i] = shared(PAGE);
		obj[i][0] = i;
	}
	a0 = shared(3 * PAGE);
	a2 = a0 + 2 * PAGE / 8;
	munmap(a0 + PAGE / 8, PAGE);
	b = shared(2 * PAGE);
	b[PAGE / 8] = 0xb0b0;
	if ((b2 = mremap(b + PAGE / 8, 0, PAGE, MREMAP_MAYMOVE)) == MAP_FAILED)
		zoo_die("mremap (copy): %s", strerror(errno));
	c = shared(PAGE);
	c[0] = 0xcc;
	if ((c = mremap(c, PAGE, 2 * PAGE, MREMAP_MAYMOVE)) == MAP_FAILED)
		zoo_die("mremap (grow): %s", strerror(errno));
	d = shared(PAGE);
	d[0] = 0xdd;
	if (mprotect(d, PAGE, PROT_READ))
		zoo_die("mprotect: %s", strerror(errno));
	a0[0] = 0xa;
	a2[0] = 0xaa;

	pid_t pid = fork();
	if (pid < 0)
		zoo_die("fork: %s", strerror(errno));
	if (pid == 0)
		child();
	while (obj[n - 1][1] != (uint64_t)(n - 1) * 3) /* the child wrote them all */
		zoo_sleep_ms(5);

	zoo_ready();
	zoo_wait();

	long bad = 0;
	for (long i = 0; i < n; i++) {
		bad += obj[i][0] != (uint64_t)i || obj[i][1] != (uint64_t)i * 3;
		obj[i][2] = (uint64_t)i ^ 0x5a5a;
	}
	CHECK("content", !bad, "%ld of %ld objects lost what the parent and the child wrote", bad, n);
	CHECK("content", a0[0] == 0xa && a2[0] == 0xaa && b[PAGE / 8] == 0xb0b0 && c[0] == 0xcc && d[0] == 0xdd,
	      "the shapes lost their contents");
	b[PAGE / 8 + 2] = 0xb1;
	CHECK("overlap", b2[0] == 0xb0b0 && b2[2] == 0xb1, "B's two mappings are not one page (%#llx %#llx)",
	      (unsigned long long)b2[0], (unsigned long long)b2[2]);
	CHECK("readonly", !mprotect(d, PAGE, PROT_READ | PROT_WRITE), "D cannot be made writable: %s",
	      strerror(errno));
	a0[2] = 0xa0;
	a2[2] = 0xa2;
	c[2] = 0xc0;
	d[2] = 0xd0;
	int status, bits = zoo_child_bits(pid, &status);
	CHECK("child", bits != 255, "the child ended with status %#x", status);
	CHECK("content", bits == 255 || !(bits & 1), "the child found its objects' contents changed");
	CHECK("sharing", bits == 255 || !(bits & 2), "the child did not see the parent's writes");
	long unseen = 0;
	for (long i = 0; i < n; i++)
		unseen += obj[i][3] != (uint64_t)i + 7;
	CHECK("sharing", !unseen && a2[3] == 0xa2a2, "the parent did not see the child's writes in %ld objects%s",
	      unseen, a2[3] == 0xa2a2 ? "" : " nor in A");
	char info[64];
	snprintf(info, sizeof(info), "%ld objects shared", n);
	return zoo_finish(info);
}
