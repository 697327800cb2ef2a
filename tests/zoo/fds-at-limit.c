/*
 * fds-at-limit: fds at the very top of the fd limit, as valgrind keeps its own (just below its
 * hard RLIMIT_NOFILE, the soft limit lowered under them for the program it runs).
 *   With H the hard limit: fds H-8 .. H-1 are all taken: H-1 a file (offset 4321), H-2 its
 *   dup, H-3/H-4 a pipe's read and write ends with 5 bytes in it, H-5 /dev/null, H-6 the
 *   directory, H-7 a second file O_RDONLY, H-8 an eventfd (count 7). Four files are mapped
 *   (their fds closed: the restore needs an fd of its own for each), fds 3 and 900 are files too.
 *   The soft limit is then lowered to H-64.
 * After restore and SIGTERM: the generic fdset check (no other fd is open: stasis's own fds,
 * which it had to put between the program's, are all gone), each fd is its file (inode, offset,
 * sharing), the pipe holds its bytes, the eventfd its count, the mappings their contents, the
 * soft limit H-64 and the hard one H.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>

#define NMAPS 4
#define MAP_LEN 16384

static int top; /* the hard limit */
static char dir[600], path_a[700], path_b[700];
static struct stat st_a, st_b;
static char *maps[NMAPS];

static void put_fd(int fd, int want)
{
	if (fd < 0)
		zoo_die("open: %s", strerror(errno));
	if (fd != want) {
		if (dup2(fd, want) != want)
			zoo_die("dup2 %d -> %d: %s", fd, want, strerror(errno));
		close(fd);
	}
}

static void c_fdset(ucontext_t *u) { (void)u; close(top - 5); }
static void c_file(ucontext_t *u) { (void)u; lseek(top - 1, 1, SEEK_SET); }
static void c_pipe(ucontext_t *u)
{
	(void)u;
	char c;
	if (read(top - 3, &c, 1) != 1)
		return;
}
static void c_limit(ucontext_t *u)
{
	(void)u;
	struct rlimit r = { (rlim_t)top - 65, (rlim_t)top };
	setrlimit(RLIMIT_NOFILE, &r);
}
static void c_mapping(ucontext_t *u) { (void)u; maps[2][100] ^= 1; }
static const struct zoo_corruption corruptions[] = {
	{ "fdset", c_fdset, 0 }, { "file", c_file, 0 },       { "pipe", c_pipe, 0 },
	{ "limit", c_limit, 0 }, { "mapping", c_mapping, 0 },
};

int main(int argc, char **argv)
{
	struct rlimit r;
	char buf[MAP_LEN], path[760];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (getrlimit(RLIMIT_NOFILE, &r) || r.rlim_max < 256 || r.rlim_max > (1 << 22))
		zoo_die("RLIMIT_NOFILE hard limit %llu: not usable here", (unsigned long long)r.rlim_max);
	top = (int)r.rlim_max;
	r.rlim_cur = r.rlim_max; /* to place fds up there */
	if (setrlimit(RLIMIT_NOFILE, &r))
		zoo_die("setrlimit: %s", strerror(errno));

	snprintf(dir, sizeof(dir), "%s/fds-at-limit", zoo_tmpdir());
	mkdir(dir, 0755);
	snprintf(path_a, sizeof(path_a), "%s/a", dir);
	snprintf(path_b, sizeof(path_b), "%s/b", dir);
	zoo_fill(buf, sizeof(buf), 5);
	if (zoo_write_file(path_a, buf, sizeof(buf)) < 0 || zoo_write_file(path_b, buf, 100) < 0)
		zoo_die("write %s: %s", dir, strerror(errno));
	for (int i = 0; i < NMAPS; i++) {
		snprintf(path, sizeof(path), "%s/map%d", dir, i);
		zoo_fill(buf, sizeof(buf), 100 + i);
		if (zoo_write_file(path, buf, sizeof(buf)) < 0)
			zoo_die("write %s: %s", path, strerror(errno));
		int fd = open(path, O_RDWR);
		maps[i] = fd < 0 ? MAP_FAILED : mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE,
						     i % 2 ? MAP_SHARED : MAP_PRIVATE, fd, 0);
		if (maps[i] == MAP_FAILED)
			zoo_die("map %s: %s", path, strerror(errno));
		close(fd);
	}
	maps[2][100] ^= 0x5a; /* a private mapping's page of its own */

	put_fd(open(path_a, O_RDWR), top - 1);
	lseek(top - 1, 4321, SEEK_SET);
	if (dup2(top - 1, top - 2) != top - 2)
		zoo_die("dup2: %s", strerror(errno));
	int p[2];
	if (pipe(p))
		zoo_die("pipe: %s", strerror(errno));
	put_fd(p[0], top - 3);
	put_fd(p[1], top - 4);
	if (write(top - 4, "12345", 5) != 5)
		zoo_die("write pipe: %s", strerror(errno));
	put_fd(open("/dev/null", O_WRONLY), top - 5);
	put_fd(open(dir, O_RDONLY | O_DIRECTORY), top - 6);
	put_fd(open(path_b, O_RDONLY), top - 7);
	put_fd(eventfd(7, EFD_NONBLOCK), top - 8);
	put_fd(open(path_b, O_RDONLY), 3);
	put_fd(open(path_a, O_RDONLY), 900);
	if (stat(path_a, &st_a) || stat(path_b, &st_b))
		zoo_die("stat: %s", strerror(errno));
	r.rlim_cur = (rlim_t)top - 64; /* as valgrind shows the program it runs */
	if (setrlimit(RLIMIT_NOFILE, &r))
		zoo_die("setrlimit: %s", strerror(errno));

	zoo_ready();
	zoo_wait();

	struct stat s;
	int fa[] = { top - 1, top - 2, 900 }, fb[] = { top - 7, 3 };
	for (unsigned i = 0; i < 3; i++)
		CHECK("file", !fstat(fa[i], &s) && s.st_ino == st_a.st_ino && s.st_dev == st_a.st_dev,
		      "fd %d is not file a", fa[i]);
	for (unsigned i = 0; i < 2; i++)
		CHECK("file", !fstat(fb[i], &s) && s.st_ino == st_b.st_ino && s.st_dev == st_b.st_dev,
		      "fd %d is not file b", fb[i]);
	off_t off = lseek(top - 2, 0, SEEK_CUR);
	CHECK("file", off == 4321, "fd %d (a dup of %d) at offset %lld, expected 4321", top - 2, top - 1,
	      (long long)off);
	CHECK("file", lseek(top - 1, 10, SEEK_SET) == 10 && lseek(top - 2, 0, SEEK_CUR) == 10,
	      "fds %d and %d do not share one offset", top - 1, top - 2);
	char got[8] = { 0 };
	ssize_t n = read(top - 3, got, sizeof(got));
	CHECK("pipe", n == 5 && !memcmp(got, "12345", 5), "the pipe at fds %d/%d held %zd bytes '%.*s'",
	      top - 3, top - 4, n, n > 0 ? (int)n : 0, got);
	CHECK("pipe", write(top - 4, "x", 1) == 1 && read(top - 3, got, 1) == 1 && got[0] == 'x',
	      "fd %d does not write into fd %d", top - 4, top - 3);
	uint64_t count = 0;
	CHECK("eventfd", read(top - 8, &count, sizeof(count)) == sizeof(count) && count == 7,
	      "eventfd %d count %llu, expected 7", top - 8, (unsigned long long)count);
	CHECK("file", !fstat(top - 6, &s) && S_ISDIR(s.st_mode), "fd %d is not the directory", top - 6);
	for (int i = 0; i < NMAPS; i++) {
		zoo_fill(buf, sizeof(buf), 100 + i);
		if (i == 2)
			buf[100] ^= 0x5a;
		CHECK("mapping", !memcmp(maps[i], buf, MAP_LEN), "mapping %d lost its contents", i);
	}
	CHECK("limit", !getrlimit(RLIMIT_NOFILE, &r) && r.rlim_cur == (rlim_t)top - 64 && r.rlim_max == (rlim_t)top,
	      "RLIMIT_NOFILE %llu/%llu, expected %d/%d", (unsigned long long)r.rlim_cur,
	      (unsigned long long)r.rlim_max, top - 64, top);
	return zoo_finish("8 fds up to the hard limit, 4 mapped files");
}
