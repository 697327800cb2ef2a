/*
 * memfd-many: memfds in numbers, as a program keeping a buffer per client in one does. With H
 * the hard fd limit (at most 65536 counted), 4/10 of H memfds at fds from 3 up, each named
 * "zoo-mf-I", sized 1 to 3 pages, its first and last byte written with I's pattern; every 16th
 * is also mapped MAP_SHARED. Stasis holds every memfd while it restores (the new processes
 * inherit them) and moves each into place through a helper fd: the numbers those take must
 * come back to it, or the room between the task's fds and the limit runs out.
 * After restore and SIGTERM: every fd is still a memfd of its name and size with its two
 * bytes, and each mapping still shares the file (a byte written through the fd is read
 * through the mapping).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/mman.h>

#define MAPPED_EVERY 16

static int nr_memfds;
static char **maps;

static size_t size_of(int i) { return (size_t)(1 + i % 3) * 4096; }

static void c_data(ucontext_t *u) { (void)u; pwrite(3, "?", 1, 0); }
static void c_size(ucontext_t *u) { (void)u; ftruncate(4, 8192 * 4); }
static void c_mapping(ucontext_t *u)
{
	(void)u;
	mmap(maps[0], 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}
static const struct zoo_corruption corruptions[] = {
	{ "data", c_data, 0 },
	{ "size", c_size, 0 },
	{ "mapping", c_mapping, 0 },
};

/* What is wrong with memfd i: 1 its name or kind, 2 its size, 4 its bytes. */
static int memfd_wrong(int i)
{
	int fd = 3 + i;
	char want[48], link[64], path[32], a = 0, b = 0;
	struct stat st;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	snprintf(want, sizeof(want), "/memfd:zoo-mf-%d (deleted)", i);
	if ((n = readlink(path, link, sizeof(link) - 1)) < 0 || fstat(fd, &st))
		return 7;
	link[n] = 0;
	return (strcmp(link, want) ? 1 : 0) | ((size_t)st.st_size != size_of(i) ? 2 : 0) |
	       (pread(fd, &a, 1, 0) != 1 || pread(fd, &b, 1, (off_t)size_of(i) - 1) != 1 || a != (char)i ||
			b != (char)(i * 5) ? 4 : 0);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	long h = zoo_nofile_raised();
	nr_memfds = (int)(h * 4 / 10);
	if (!(maps = calloc(nr_memfds, sizeof(*maps))))
		zoo_die("out of memory");
	for (int i = 0; i < nr_memfds; i++) {
		char name[32], a = (char)i, b = (char)(i * 5);
		snprintf(name, sizeof(name), "zoo-mf-%d", i);
		int fd = memfd_create(name, MFD_CLOEXEC);
		if (fd != 3 + i || ftruncate(fd, (off_t)size_of(i)) || pwrite(fd, &a, 1, 0) != 1 ||
		    pwrite(fd, &b, 1, (off_t)size_of(i) - 1) != 1)
			zoo_die("memfd %d (fd %d): %s", i, fd, strerror(errno));
		if (i % MAPPED_EVERY == 0 &&
		    (maps[i] = mmap(NULL, size_of(i), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
			zoo_die("mmap memfd %d: %s", i, strerror(errno));
	}

	zoo_ready();
	zoo_wait();

	int bad = 0, first_bad = -1, bad_sizes = 0, first_size = -1, bad_maps = 0;
	for (int i = 0; i < nr_memfds; i++) {
		int wrong = memfd_wrong(i);
		if ((wrong & 5) && !bad++)
			first_bad = 3 + i;
		if ((wrong & 2) && !bad_sizes++)
			first_size = 3 + i;
		if (maps[i]) {
			char c = (char)(i + 1);
			bad_maps += pwrite(3 + i, &c, 1, 1) != 1 || maps[i][1] != c;
		}
	}
	CHECK("data", !bad, "%d of %d memfds not of their name or bytes (the first at fd %d)", bad, nr_memfds,
	      first_bad);
	CHECK("size", !bad_sizes, "%d of %d memfds not of their size (the first at fd %d)", bad_sizes, nr_memfds,
	      first_size);
	CHECK("mapping", !bad_maps, "%d mappings do not share their memfd any more", bad_maps);
	char what[96];
	snprintf(what, sizeof(what), "%d memfds with their names, sizes and bytes", nr_memfds);
	return zoo_finish(what);
}
