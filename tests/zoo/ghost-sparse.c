/*
 * ghost-sparse: deleted files with holes, and one made by O_TMPFILE.
 *   fd 30: a deleted file of 16 GiB whose data is three stretches (4 KiB at 0, 64 KiB at 1 GiB,
 *   8 KiB ending at 16 GiB); the rest are holes. Also mapped (MAP_SHARED) at its 1 GiB stretch.
 *   fd 31: an O_TMPFILE file (never named) holding 10000 bytes.
 *   fd 32: a deleted file of 1 MiB that is all a hole (ftruncate only); fd 33: a deleted file
 *   of 1 MiB whose space was allocated (fallocate) and never written: no data either.
 * After restore and SIGTERM: fd 30 has the same size, the same data stretches and holes
 * (SEEK_DATA/SEEK_HOLE), few blocks, its content, and the mapping writes to it; fds 32 and 33
 * are 1 MiB of zeroes (their size kept though no data was saved); fd 31 is still
 * "DIR/#INODE (deleted)" with its content and can still be linked into the directory (linkat).
 * Dumped with --ghost-limit 50000 it must fail (tests/failure-cases.sh): more data than that.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/mman.h>

#define GiB (1ull << 30)
static const struct { uint64_t off, len; } stretches[] = {
	{ 0, 4096 }, { GiB, 65536 }, { 16 * GiB - 8192, 8192 },
};
#define NSTRETCH 3
static unsigned char *map;
static char dir[4000];

static void c_holes(ucontext_t *u) { (void)u; pwrite(30, "h", 1, 8 * GiB); }
static void c_content(ucontext_t *u) { (void)u; pwrite(30, "c", 1, GiB + 10); }
static void c_empty(ucontext_t *u) { (void)u; ftruncate(33, 4096); }
static void c_linkable(ucontext_t *u)
{
	(void)u; /* once named and removed again, an O_TMPFILE file can no longer be linked */
	char self[64], name[4100];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", 31);
	snprintf(name, sizeof(name), "%s/linked-once", dir);
	linkat(AT_FDCWD, self, AT_FDCWD, name, AT_SYMLINK_FOLLOW);
	unlink(name);
}
static const struct zoo_corruption corruptions[] = {
	{ "holes", c_holes, 0 },
	{ "content", c_content, 0 },
	{ "linkable", c_linkable, 0 },
	{ "empty", c_empty, 0 },
};

/* A deleted file of 1 MiB with no data at fd at: all a hole, or allocated (fallocate) */
static void empty_file(const char *name, int at, int allocate)
{
	char path[4100];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || (allocate ? fallocate(fd, 0, 0, 1 << 20) : ftruncate(fd, 1 << 20)) || dup2(fd, at) != at)
		zoo_die("%s: %s", path, strerror(errno));
	close(fd);
	unlink(path);
}

/* Is the deleted file at fd 1 MiB of zeroes? */
static int empty_ok(int fd)
{
	static unsigned char buf[1 << 20];
	struct stat st;
	if (fstat(fd, &st) || st.st_size != 1 << 20 || st.st_nlink || pread(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
		return 0;
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i])
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	char path[4100];
	unsigned char buf[65536];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(dir, sizeof(dir), "%s", zoo_tmpdir());
	snprintf(path, sizeof(path), "%s/sparse", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || dup2(fd, 30) != 30)
		zoo_die("%s: %s", path, strerror(errno));
	close(fd);
	for (int i = 0; i < NSTRETCH; i++) {
		zoo_fill(buf, stretches[i].len, 40 + i);
		if (pwrite(30, buf, stretches[i].len, stretches[i].off) != (ssize_t)stretches[i].len)
			zoo_die("pwrite: %s", strerror(errno));
	}
	/* the filesystem must keep holes for the test to mean anything */
	if (lseek(30, 4096, SEEK_HOLE) != 4096)
		zoo_die("%s does not keep holes", dir);
	map = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, 30, GiB);
	if (map == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	unlink(path);
	fd = open(dir, O_TMPFILE | O_RDWR, 0640);
	if (fd < 0 || dup2(fd, 31) != 31)
		zoo_die("O_TMPFILE in %s: %s", dir, strerror(errno));
	close(fd);
	zoo_fill(buf, 10000, 50);
	if (write(31, buf, 10000) != 10000)
		zoo_die("write: %s", strerror(errno));
	empty_file("hole", 32, 0);
	empty_file("allocated", 33, 1);
	zoo_check_maps = 0; /* a deleted file comes back as a new file: same name, new inode number */
	zoo_check_fds = 0;  /* the O_TMPFILE file is named after its inode number */
	zoo_ready();
	zoo_wait();

	struct stat st;
	fstat(30, &st);
	CHECK("holes", st.st_size == (off_t)(16 * GiB) && st.st_nlink == 0, "size %lld, %lu links",
	      (long long)st.st_size, (unsigned long)st.st_nlink);
	off_t at = 0;
	for (int i = 0; i < NSTRETCH; i++) {
		off_t data = lseek(30, at, SEEK_DATA), hole = lseek(30, data, SEEK_HOLE);
		CHECK("holes", data == (off_t)stretches[i].off && hole == (off_t)(stretches[i].off + stretches[i].len),
		      "stretch %d at %lld-%lld, expected %llu-%llu", i, (long long)data, (long long)hole,
		      (unsigned long long)stretches[i].off, (unsigned long long)(stretches[i].off + stretches[i].len));
		at = hole;
		if (pread(30, buf, stretches[i].len, stretches[i].off) != (ssize_t)stretches[i].len ||
		    zoo_check_fill(buf, stretches[i].len, 40 + i) >= 0)
			zoo_failf("content", "stretch %d differs", i);
	}
	CHECK("holes", st.st_blocks * 512 < 4 * 1024 * 1024, "%lld blocks: the holes were filled",
	      (long long)st.st_blocks);
	memcpy(map + 100, "via-map", 7);
	msync(map, 65536, MS_SYNC);
	CHECK("content", pread(30, buf, 7, GiB + 100) == 7 && !memcmp(buf, "via-map", 7),
	      "a write through the mapping is not in the file");
	char link[4300];
	ssize_t n = readlink("/proc/self/fd/31", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	fstat(31, &st);
	char want[4300];
	snprintf(want, sizeof(want), "%s/#%lu (deleted)", dir, (unsigned long)st.st_ino);
	CHECK("content", !strcmp(link, want), "fd 31 is '%s', expected '%s'", link, want);
	CHECK("content", pread(31, buf, 10000, 0) == 10000 && zoo_check_fill(buf, 10000, 50) < 0 &&
				 st.st_size == 10000 && (st.st_mode & 0777) == 0640,
	      "the O_TMPFILE file's content, size %lld or mode %o differ", (long long)st.st_size, st.st_mode & 0777);
	char self[64], name[4100];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", 31);
	snprintf(name, sizeof(name), "%s/published", dir);
	int r = linkat(AT_FDCWD, self, AT_FDCWD, name, AT_SYMLINK_FOLLOW);
	CHECK("linkable", r == 0, "the O_TMPFILE file cannot be linked: %s", strerror(errno));
	unlink(name);
	CHECK("empty", empty_ok(32) && empty_ok(33), "the deleted files of 1 MiB without data (fds 32, 33) "
	      "are not 1 MiB of zeroes");
	return zoo_finish("a 16 GiB file with 3 stretches of data, an O_TMPFILE file, 2 files without data");
}
