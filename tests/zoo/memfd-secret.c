/*
 * memfd-secret: memfd_secret() memory, whose pages nothing outside the process can read.
 *   A: a secret file of 5 pages at fd 40, mapped MAP_SHARED twice (A1, A2 at other addresses:
 *      the same pages), pages 0, 1, 2 and 4 written with a pattern, page 3 never touched;
 *   B: a secret file of 3 pages mapped, its fd closed (the mapping alone holds it), written;
 *   C: a secret file of 2 pages at fd 41, mapped, written, unmapped (its content lives only
 *      in the file);
 *   D: a secret file of 4 pages, its fd closed, mapped in two pieces apart (D1: pages 0-1,
 *      D2: pages 2-3 at offset 2 pages, below D1), each written (the dump reads each piece
 *      on its own and puts them together);
 *   a child (fork) inherits A1 and the fds.
 * With --in-flight: also a secret file of 1 page, written, carried in a message waiting in
 * a unix socket pair (fds 42, 43) and held by no fd: the dump must fail naming it
 * (tests/failure-cases.sh), and the process goes on unchanged.
 * After restore and SIGTERM (the generic checks first: stasis left no fd and no mapping), the
 * parent checks: A's page 3 is still no page of the file (mincore), the content of A through
 * A1 and A2 (page 3 zero), a write through A2 seen through A1, B's content, C mapped again
 * (its content, size and name), D through both pieces, fd 40 and A1 one file ("/secretmem (deleted)", same inode,
 * 5 pages); then it writes a token into A1, which the child must read through its A1.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define PAGE 4096
#define FD_A 40
#define FD_C 41
#define A_PAGES 5
#define HOLE 3 /* A's page never touched */
#define B_PAGES 3
#define C_PAGES 2
#define D_PAGES 4
#define TOKEN 0x7365637265742121ull
#define TOKEN_AT (2 * PAGE + 64)
#define ALIAS_AT (4 * PAGE + 128)

static unsigned char *a1, *a2, *b, *d1, *d2;
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

static int secret_file(size_t size)
{
	int fd = syscall(SYS_memfd_secret, O_CLOEXEC);
	if (fd < 0 || ftruncate(fd, size))
		zoo_die("memfd_secret: %s", strerror(errno));
	return fd;
}

static unsigned char *map_file(int fd, size_t size, void *at)
{
	unsigned char *m = mmap(at, size, PROT_READ | PROT_WRITE, MAP_SHARED | (at ? MAP_FIXED : 0),
				fd, 0);
	if (m == MAP_FAILED)
		zoo_die("mmap of a secret file: %s", strerror(errno));
	return m;
}

/* A's pattern: pages 0-2 and 4 filled (seed 81 + page), page 3 untouched */
static int a_content_ok(const unsigned char *m)
{
	for (int p = 0; p < A_PAGES; p++) {
		if (p == HOLE) {
			for (int i = 0; i < PAGE; i++)
				if (m[p * PAGE + i])
					return 0;
		} else if (zoo_check_fill(m + p * PAGE, PAGE, 81 + p) >= 0) {
			return 0;
		}
	}
	return 1;
}

static void child(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	while (!child_term)
		zoo_sleep_ms(10);
	uint64_t token = 0;
	for (int i = 0; i < 1000 && token != TOKEN; i++) {
		memcpy(&token, (const void *)(a1 + TOKEN_AT), 8);
		zoo_sleep_ms(2);
	}
	_exit(token == TOKEN ? 0 : 1);
}

static void c_content(ucontext_t *u) { (void)u; a1[4 * PAGE + 10] ^= 1; }
static void c_hole(ucontext_t *u) { (void)u; a1[HOLE * PAGE] = 0; /* the page now exists */ }
/* A2 becomes a mapping of another secret file with the same content */
static void c_alias(ucontext_t *u)
{
	(void)u;
	int fd = secret_file(A_PAGES * PAGE);
	unsigned char *m = map_file(fd, A_PAGES * PAGE, NULL);
	for (int p = 0; p < A_PAGES; p++)
		if (p != HOLE)
			memcpy(m + p * PAGE, a1 + p * PAGE, PAGE);
	mremap(m, A_PAGES * PAGE, A_PAGES * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, a2);
	close(fd);
}
static void c_closed(ucontext_t *u) { (void)u; b[PAGE + 5] ^= 1; }
static void c_pieces(ucontext_t *u) { (void)u; d2[PAGE + 7] ^= 1; }
/* fd 41 becomes another secret file of the same size, empty */
static void c_fd_only(ucontext_t *u)
{
	(void)u;
	int fd = secret_file(C_PAGES * PAGE);
	dup3(fd, FD_C, O_CLOEXEC);
	close(fd);
}
/* fd 40 becomes another secret file of the same size */
static void c_identity(ucontext_t *u)
{
	(void)u;
	int fd = secret_file(A_PAGES * PAGE);
	dup3(fd, FD_A, O_CLOEXEC);
	close(fd);
}
static int no_token;
static void c_sharing(ucontext_t *u) { (void)u; no_token = 1; }

static const struct zoo_corruption corruptions[] = {
	{ "content", c_content, 0 },
	{ "hole", c_hole, 0 },
	{ "alias", c_alias, 0 },
	{ "closed", c_closed, 0 },
	{ "pieces", c_pieces, 0 },
	{ "fd-only", c_fd_only, 0 },
	{ "identity", c_identity, 0 },
	{ "sharing", c_sharing, 0 },
};

/* A secret file written, sent through fd 42 of a socket pair to 43, closed: only the
 * message holds it. */
static void send_in_flight(void)
{
	int sv[2], fd = secret_file(PAGE);
	unsigned char *m = map_file(fd, PAGE, NULL);
	char byte = 's', cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &byte, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };

	zoo_fill(m, PAGE, 84);
	munmap(m, PAGE);
	memset(cbuf, 0, sizeof(cbuf));
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) || dup3(sv[0], 42, O_CLOEXEC) != 42 ||
	    dup3(sv[1], 43, O_CLOEXEC) != 43 || sendmsg(42, &mh, 0) != 1)
		zoo_die("a secret file in flight: %s", strerror(errno));
	close(sv[0]);
	close(sv[1]);
	close(fd);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	int fd = secret_file(A_PAGES * PAGE);
	if (dup3(fd, FD_A, O_CLOEXEC) != FD_A)
		zoo_die("dup3: %s", strerror(errno));
	close(fd);
	a1 = map_file(FD_A, A_PAGES * PAGE, NULL);
	/* A2 apart from A1: a page of nothing between them */
	unsigned char *room = mmap(NULL, (2 * A_PAGES + 1) * PAGE, PROT_NONE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (room == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	a2 = map_file(FD_A, A_PAGES * PAGE, room);
	munmap(room + A_PAGES * PAGE, (A_PAGES + 1) * PAGE);
	for (int p = 0; p < A_PAGES; p++)
		if (p != HOLE)
			zoo_fill(a1 + p * PAGE, PAGE, 81 + p);

	fd = secret_file(B_PAGES * PAGE);
	b = map_file(fd, B_PAGES * PAGE, NULL);
	close(fd);
	zoo_fill(b, B_PAGES * PAGE, 82);

	/* D2 below D1, a page of nothing between: two mappings the kernel cannot merge */
	fd = secret_file(D_PAGES * PAGE);
	room = mmap(NULL, (D_PAGES + 1) * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (room == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	d2 = mmap(room, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 2 * PAGE);
	d1 = mmap(room + 3 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	if (d1 == MAP_FAILED || d2 == MAP_FAILED)
		zoo_die("mmap of D's pieces: %s", strerror(errno));
	munmap(room + 2 * PAGE, PAGE);
	close(fd);
	unsigned char whole[D_PAGES * PAGE];
	zoo_fill(whole, sizeof(whole), 85);
	memcpy(d1, whole, 2 * PAGE);
	memcpy(d2, whole + 2 * PAGE, 2 * PAGE);

	fd = secret_file(C_PAGES * PAGE);
	if (dup3(fd, FD_C, O_CLOEXEC) != FD_C)
		zoo_die("dup3: %s", strerror(errno));
	close(fd);
	unsigned char *c = map_file(FD_C, C_PAGES * PAGE, NULL);
	zoo_fill(c, C_PAGES * PAGE, 83);
	munmap(c, C_PAGES * PAGE);

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--in-flight"))
			send_in_flight();

	pid_t kid = fork();
	if (kid < 0)
		zoo_die("fork: %s", strerror(errno));
	if (kid == 0)
		child();
	zoo_ready();
	zoo_wait();

	unsigned char vec[A_PAGES];
	CHECK("hole", !mincore(a1, A_PAGES * PAGE, vec) && !(vec[HOLE] & 1) && (vec[0] & 1),
	      "A's page %d exists (was never touched) or page 0 does not (mincore: %s)", HOLE,
	      strerror(errno));
	CHECK("content", a_content_ok(a1), "A's content through its first mapping differs");
	CHECK("alias", a_content_ok(a2), "A's content through its second mapping differs");
	a2[ALIAS_AT] ^= 0xff;
	CHECK("alias", a1[ALIAS_AT] == a2[ALIAS_AT], "a write through A's second mapping is not "
	      "seen through its first");
	a2[ALIAS_AT] ^= 0xff;
	CHECK("closed", zoo_check_fill(b, B_PAGES * PAGE, 82) < 0,
	      "B's content (a secret file whose fd was closed) differs");

	CHECK("pieces", !memcmp(d1, whole, 2 * PAGE) && !memcmp(d2, whole + 2 * PAGE, 2 * PAGE),
	      "D's content through its two pieces differs");

	struct stat st, mst;
	char link[64] = "", mf[96];
	c = mmap(NULL, C_PAGES * PAGE, PROT_READ, MAP_SHARED, FD_C, 0);
	ssize_t n = readlink("/proc/self/fd/41", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	CHECK("fd-only", c != MAP_FAILED && zoo_check_fill(c, C_PAGES * PAGE, 83) < 0 &&
				 !fstat(FD_C, &st) && st.st_size == C_PAGES * PAGE &&
				 !strcmp(link, "/secretmem (deleted)"),
	      "C (fd 41 alone) mapped again: content, size or name '%s' differs", link);
	if (c != MAP_FAILED)
		munmap(c, C_PAGES * PAGE);

	n = readlink("/proc/self/fd/40", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	snprintf(mf, sizeof(mf), "/proc/self/map_files/%lx-%lx", (unsigned long)a1,
		 (unsigned long)a1 + A_PAGES * PAGE);
	CHECK("identity", !strcmp(link, "/secretmem (deleted)") && !fstat(FD_A, &st) &&
				  st.st_size == A_PAGES * PAGE && !stat(mf, &mst) && mst.st_ino == st.st_ino,
	      "fd 40 ('%s') is not the file A's mapping maps, or its size differs", link);

	int status = 0;
	if (!no_token) {
		uint64_t token = TOKEN;
		memcpy(a1 + TOKEN_AT, &token, 8);
	}
	kill(kid, SIGTERM);
	waitpid(kid, &status, 0);
	CHECK("sharing", WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the child did not see the parent's write into A after the restore (status %#x)", status);
	return zoo_finish("4 secret files: two mappings of one, a mapping alone, one in two pieces, an "
			  "fd alone; 2 processes");
}
