/*
 * shared-anon: MAP_SHARED|MAP_ANONYMOUS memory shared by a parent and two children (fork).
 *   4 MiB: the first MiB filled by the parent before fork, one page written only by child 1
 *   after fork, the rest never touched (holes). After restore and SIGTERM: each process checks
 *   the content, then the sharing itself: the parent writes a token that each child must see,
 *   and each child answers with a token that the parent must see.
 * The parent also reaches a second object of 4 pages (pages 0-2 written) as a file: an fd
 *   opened through /proc/self/map_files, a MAP_PRIVATE mapping of that fd from page 1 (4 pages:
 *   the last past the object's end; its first page changed, the process's own copy) and a
 *   MAP_SHARED one from page 2 (also past the end), then truncated to end inside its last
 *   page. After restore: the private copy is kept,
 *   the untouched private pages still show the object, and writes through the fd and the
 *   first mapping are seen by all the others (one object, not copies). Not where map_files
 *   cannot be opened (a user namespace: CAP_CHECKPOINT_RESTORE of the host is needed).
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define SIZE (4UL << 20)
#define FILLED (1UL << 20)
#define CHILD_PAGE (2UL << 20)

struct mailbox {
	volatile uint64_t ping, pong[2];
};

static unsigned char *mem;
/* the object reached as a file: its first mapping, the fd, the private and shared remaps */
#define FD_OBJ_PAGES 4
#define FD_OBJ_SIZE (3 * 4096 + 100) /* truncated through the fd */
static unsigned char *fobj, *fpriv, *fshared;
static int fobj_fd;
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

static int content_ok(void)
{
	if (zoo_check_fill(mem, FILLED, 51) >= 0 || zoo_check_fill(mem + CHILD_PAGE, 4096, 52) >= 0)
		return 0;
	for (size_t i = FILLED; i < SIZE - 4096; i += 4096) /* holes read as zero */
		if (i != CHILD_PAGE && mem[i + 7])
			return 0;
	return 1;
}

/* Exit code: 0, or 1 content, 2 no ping seen from the parent. */
static void child(int n)
{
	struct sigaction sa = { .sa_handler = on_term };
	struct mailbox *mb = (struct mailbox *)(mem + SIZE - 4096);
	sigaction(SIGTERM, &sa, NULL);
	if (n == 1)
		zoo_fill(mem + CHILD_PAGE, 4096, 52);
	while (!child_term)
		zoo_sleep_ms(10);
	int code = content_ok() ? 0 : 1;
	for (int i = 0; i < 500 && mb->ping != 0x70696e67; i++)
		zoo_sleep_ms(2);
	if (mb->ping != 0x70696e67)
		code |= 2;
	mb->pong[n - 1] = 0x706f6e67 + n;
	_exit(code);
}

static void c_content(ucontext_t *u) { (void)u; mem[1000] ^= 1; }
static void c_shared(ucontext_t *u)
{
	(void)u; /* replace the parent's view by a private copy: writes no longer reach children */
	void *copy = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memcpy(copy, mem, SIZE);
	mremap(copy, SIZE, SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, mem);
}

/* the fd becomes a file of another object with the same content */
static void c_fd_object(ucontext_t *u)
{
	(void)u;
	if (fobj_fd < 0)
		return;
	unsigned char *other = mmap(NULL, FD_OBJ_PAGES * 4096, PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char path[96];
	memcpy(other, fobj, FD_OBJ_PAGES * 4096);
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)other,
		 (unsigned long)other + FD_OBJ_PAGES * 4096);
	int fd = open(path, O_RDWR);
	dup2(fd, fobj_fd);
	close(fd);
}
/* the private mapping becomes a private copy: untouched pages no longer show the object */
static void c_fd_private(ucontext_t *u)
{
	(void)u;
	if (fobj_fd < 0)
		return;
	void *copy = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memcpy(copy, fpriv, 3 * 4096);
	mremap(copy, 3 * 4096, 3 * 4096, MREMAP_MAYMOVE | MREMAP_FIXED, fpriv);
}
static void c_fd_private_copy(ucontext_t *u) { (void)u; if (fobj_fd >= 0) fpriv[100] ^= 1; }

static const struct zoo_corruption corruptions[] = {
	{ "content", c_content, 0 },
	{ "sharing", c_shared, 0 },
	{ "fd-object", c_fd_object, 0 },
	{ "fd-private", c_fd_private, 0 },
	{ "fd-private-copy", c_fd_private_copy, 0 },
};

/* The second object, reached as a file (see the top). */
static void setup_fd_object(void)
{
	char path[96];
	size_t len = FD_OBJ_PAGES * 4096;

	fobj = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (fobj == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	for (int p = 0; p < 3; p++)
		zoo_fill(fobj + p * 4096, 4096, 60 + p);
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)fobj,
		 (unsigned long)fobj + len);
	/* map_files needs CAP_CHECKPOINT_RESTORE of the host (not so in a user namespace) */
	if ((fobj_fd = open(path, O_RDWR)) < 0 && errno == EPERM)
		return;
	if (fobj_fd < 0)
		zoo_die("open %s: %s", path, strerror(errno));
	fpriv = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fobj_fd, 4096);
	fshared = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fobj_fd, 2 * 4096);
	if (fpriv == MAP_FAILED || fshared == MAP_FAILED)
		zoo_die("mmap of %s: %s", path, strerror(errno));
	zoo_fill(fpriv, 4096, 70); /* the process's own copy of object page 1 */
	if (ftruncate(fobj_fd, FD_OBJ_SIZE)) /* its last page now ends inside */
		zoo_die("ftruncate: %s", strerror(errno));
}

static void check_fd_object(void)
{
	uint64_t token = 0x66646f626a;
	struct stat st;

	if (fobj_fd < 0)
		return;

	CHECK("fd-object", !fstat(fobj_fd, &st) && st.st_size == FD_OBJ_SIZE,
	      "the object's size is %lld, not %d", (long long)st.st_size, FD_OBJ_SIZE);

	CHECK("fd-private-copy", zoo_check_fill(fpriv, 4096, 70) < 0,
	      "the private mapping's changed page differs");
	CHECK("fd-private-copy", zoo_check_fill(fobj + 4096, 4096, 61) < 0,
	      "the object's page under the private copy differs");
	CHECK("fd-private", zoo_check_fill(fpriv + 4096, 4096, 62) < 0,
	      "the private mapping's untouched page differs from the object");
	CHECK("fd-object", zoo_check_fill(fshared, 4096, 62) < 0,
	      "the shared remap's first page differs from the object");
	/* object page 3 (never written): through the fd, seen by every mapping of it */
	CHECK("fd-object", pwrite(fobj_fd, &token, sizeof(token), 3 * 4096) == sizeof(token),
	      "cannot write through the fd: %s", strerror(errno));
	CHECK("fd-object", *(volatile uint64_t *)(fobj + 3 * 4096) == token,
	      "a write through the fd does not reach the first mapping");
	CHECK("fd-object", *(volatile uint64_t *)(fshared + 4096) == token,
	      "a write through the fd does not reach the shared remap");
	CHECK("fd-private", *(volatile uint64_t *)(fpriv + 2 * 4096) == token,
	      "a write through the fd does not reach the private mapping's untouched page");
	fobj[2 * 4096 + 8] ^= 0xff; /* object page 2: the shared remap's first page */
	CHECK("fd-object", fshared[8] == fobj[2 * 4096 + 8],
	      "a write to the first mapping does not reach the shared remap");
	fobj[4096 + 8] ^= 0xff; /* under the private copy: not seen there */
	CHECK("fd-private-copy", zoo_check_fill(fpriv, 4096, 70) < 0,
	      "a write to the object reaches the private mapping's own page");
}

int main(int argc, char **argv)
{
	pid_t kids[2];
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	zoo_fill(mem, FILLED, 51);
	for (int n = 1; n <= 2; n++)
		if ((kids[n - 1] = fork()) == 0)
			child(n);
	while (zoo_check_fill(mem + CHILD_PAGE, 4096, 52) >= 0)
		zoo_sleep_ms(1);
	setup_fd_object();
	zoo_check_maps = 0; /* the sharing corruption replaces a mapping on purpose */
	zoo_ready();
	zoo_wait();
	check_fd_object();

	struct mailbox *mb = (struct mailbox *)(mem + SIZE - 4096);
	CHECK("content", content_ok(), "shared memory content differs in the parent");
	for (int n = 0; n < 2; n++)
		kill(kids[n], SIGTERM);
	mb->ping = 0x70696e67;
	for (int n = 0; n < 2; n++) {
		int st = 0;
		waitpid(kids[n], &st, 0);
		int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
		CHECK("content", !(code & 1) && code != 255, "child %d: content differs (code %d)", n + 1, code);
		CHECK("sharing", !(code & 2), "child %d did not see the parent's write", n + 1);
		CHECK("sharing", mb->pong[n] == 0x706f6e67u + n + 1, "the parent did not see child %d's write",
		      n + 1);
	}
	return zoo_finish(fobj_fd < 0 ? "3 processes, 4 MiB shared (no map_files here: no object as fd)"
				      : "3 processes, 4 MiB shared; an object as fd, private and shared remaps");
}
