/*
 * mem-shared-readonly: MAP_SHARED mappings made from files opened read-only, which the kernel
 * never lets become writable.
 *   A copy of /bin/true, opened O_RDONLY, mapped MAP_SHARED PROT_READ;
 *   a memfd ("zoo-ro", 2 pages) mapped MAP_SHARED read-write from its fd (W) and, reopened
 *     O_RDONLY through /proc/self/fd, mapped MAP_SHARED PROT_READ (R);
 *   a memfd ("zoo-sealed", 1 page) sealed against writes (F_SEAL_WRITE), mapped MAP_SHARED
 *     PROT_READ.
 *   All fds closed. After restore: mprotect(PROT_WRITE) of each read-only mapping is refused
 *   (EACCES), the copy of /bin/true still runs (no writer holds it: exec would fail with
 *   ETXTBSY), W's writes show through R (one object), contents are kept.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define PG 4096ul

static char exe_path[600];
static char *exe_map, *w, *r, *sealed;
static size_t exe_len;

/* what a restore that maps them from files opened for writing would produce */
static void c_file(ucontext_t *u)
{
	(void)u;
	int fd = open(exe_path, O_RDWR);
	mmap(exe_map, exe_len, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
	close(fd);
}
static void c_memfd(ucontext_t *u)
{
	(void)u;
	char mf[96];
	snprintf(mf, sizeof(mf), "/proc/self/map_files/%lx-%lx", (unsigned long)w, (unsigned long)w + 2 * PG);
	int fd = open(mf, O_RDWR);
	mmap(r, 2 * PG, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
	close(fd);
}
/* R becomes a copy: W's writes no longer reach it */
static void c_sharing(ucontext_t *u)
{
	(void)u;
	void *copy = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memcpy(copy, r, 2 * PG);
	mprotect(copy, 2 * PG, PROT_READ);
	mremap(copy, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, r);
}

static const struct zoo_corruption corruptions[] = {
	{ "file", c_file, 0 },
	{ "memfd", c_memfd, 0 },
	{ "sharing", c_sharing, 0 },
};

static void check_read_only(const char *tag, const char *what, void *p, size_t len)
{
	int ret = mprotect(p, len, PROT_READ | PROT_WRITE), err = errno;
	CHECK(tag, ret < 0 && err == EACCES, "%s can be made writable (mprotect: %s)", what,
	      ret ? strerror(err) : "done");
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	static char buf[4 << 20];
	ssize_t n = zoo_read_file("/bin/true", buf, sizeof(buf));
	if (n <= 0)
		zoo_die("read /bin/true: %s", strerror(errno));
	exe_len = (size_t)n;
	snprintf(exe_path, sizeof(exe_path), "%s/true", zoo_tmpdir());
	int fd = open(exe_path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	if (fd < 0 || write(fd, buf, exe_len) != n || close(fd))
		zoo_die("write %s: %s", exe_path, strerror(errno));
	if ((fd = open(exe_path, O_RDONLY)) < 0 ||
	    (exe_map = mmap(NULL, exe_len, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED)
		zoo_die("map %s: %s", exe_path, strerror(errno));
	close(fd);

	char self[64];
	int m = memfd_create("zoo-ro", MFD_CLOEXEC);
	if (m < 0 || ftruncate(m, 2 * PG))
		zoo_die("memfd: %s", strerror(errno));
	if ((w = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0)) == MAP_FAILED)
		zoo_die("mmap W: %s", strerror(errno));
	snprintf(self, sizeof(self), "/proc/self/fd/%d", m);
	if ((fd = open(self, O_RDONLY)) < 0 || (r = mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED)
		zoo_die("mmap R: %s", strerror(errno));
	close(fd);
	close(m);
	zoo_fill(w, 2 * PG, 61);

	if ((m = memfd_create("zoo-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0 || ftruncate(m, PG))
		zoo_die("memfd: %s", strerror(errno));
	char page[PG];
	zoo_fill(page, PG, 62);
	if (pwrite(m, page, PG, 0) != PG || fcntl(m, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW) ||
	    (sealed = mmap(NULL, PG, PROT_READ, MAP_SHARED, m, 0)) == MAP_FAILED)
		zoo_die("sealed memfd: %s", strerror(errno));
	close(m);

	zoo_check_maps = 0; /* the corruptions change mappings on purpose */
	zoo_ready();
	zoo_wait();

	CHECK("file", !memcmp(exe_map, buf, exe_len), "the mapping of %s differs from /bin/true", exe_path);
	check_read_only("file", "the mapping of a file opened read-only", exe_map, exe_len);
	pid_t kid = fork();
	if (kid == 0) {
		execl(exe_path, "true", (char *)NULL);
		_exit(errno == ETXTBSY ? 3 : 4);
	}
	int st = 0;
	waitpid(kid, &st, 0);
	CHECK("file", WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s does not run (%s)", exe_path,
	      WIFEXITED(st) && WEXITSTATUS(st) == 3 ? "ETXTBSY: something holds it open for writing" : "exec failed");

	CHECK("content", zoo_check_fill(r, 2 * PG, 61) < 0, "memfd zoo-ro's content differs");
	check_read_only("memfd", "the mapping of memfd zoo-ro reopened read-only", r, 2 * PG);
	zoo_fill(w + PG, PG, 63);
	CHECK("sharing", zoo_check_fill(r + PG, PG, 63) < 0, "a write through memfd zoo-ro's writable mapping is not "
							     "seen through its read-only one");
	CHECK("content", zoo_check_fill(sealed, PG, 62) < 0, "memfd zoo-sealed's content differs");
	check_read_only("content", "the mapping of sealed memfd zoo-sealed", sealed, PG);
	return zoo_finish("3 read-only shared mappings (a file that still runs, a memfd reopened, a sealed memfd)");
}
