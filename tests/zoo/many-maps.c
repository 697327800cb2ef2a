/*
 * many-maps: a process with 20000 mappings (ZOO_NR_MAPS sets another number).
 *   ZOO_NR_MAPS anonymous pages, every other one read-only (so each is a mapping of its own),
 *   each holding a pattern of its own; 1000 private mappings of one file, each of one page at
 *   its own offset, every tenth one with its page changed; 1000 pages of shared anonymous
 *   memory, each its own object.
 * After restore and SIGTERM: every page holds its pattern, every file page its content or
 * change, and the process has as many mappings as before (the cost must stay linear in the
 * number of mappings: 20000 once took minutes to dump).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/mman.h>

#define PAGE 4096
#define NR_FILE_MAPS 1000
static long nr_maps = 20000;
static unsigned char *anon;
static unsigned char *file_maps[NR_FILE_MAPS], *shared_maps[NR_FILE_MAPS];

static void c_pattern(ucontext_t *u) { (void)u; mprotect(anon, PAGE, PROT_READ | PROT_WRITE); anon[7] ^= 1; }
static void c_count(ucontext_t *u) { (void)u; munmap(file_maps[500], PAGE); file_maps[500] = NULL; }
static const struct zoo_corruption corruptions[] = {
	{ "pattern", c_pattern, 0 },
	{ "count", c_count, 0 },
};

static long count_maps(void)
{
	static char buf[1 << 16];
	long n = 0;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	for (ssize_t r; (r = read(fd, buf, sizeof(buf))) > 0;)
		for (ssize_t i = 0; i < r; i++)
			n += buf[i] == '\n';
	close(fd);
	return n;
}

int main(int argc, char **argv)
{
	char path[4200];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (getenv("ZOO_NR_MAPS"))
		nr_maps = atol(getenv("ZOO_NR_MAPS"));
	anon = mmap(NULL, nr_maps * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	for (long i = 0; i < nr_maps; i++)
		zoo_fill(anon + i * PAGE, 64, i);
	for (long i = 1; i < nr_maps; i += 2)
		if (mprotect(anon + i * PAGE, PAGE, PROT_READ))
			zoo_die("mprotect: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/mapped", zoo_tmpdir());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	unsigned char page[PAGE];
	for (int i = 0; i < NR_FILE_MAPS; i++) {
		zoo_fill(page, PAGE, 100000 + i);
		if (write(fd, page, PAGE) != PAGE)
			zoo_die("write %s: %s", path, strerror(errno));
	}
	for (int i = 0; i < NR_FILE_MAPS; i++) {
		/* leave a hole after each so that neighbours do not merge */
		file_maps[i] = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, (off_t)i * PAGE);
		if (file_maps[i] == MAP_FAILED)
			zoo_die("mmap %s: %s", path, strerror(errno));
		munmap(file_maps[i] + PAGE, PAGE);
		if (i % 10 == 0)
			file_maps[i][5] ^= 0xff;
	}
	close(fd);
	for (int i = 0; i < NR_FILE_MAPS; i++) {
		shared_maps[i] = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (shared_maps[i] == MAP_FAILED)
			zoo_die("mmap: %s", strerror(errno));
		zoo_fill(shared_maps[i], 64, 200000 + i);
	}
	long before = count_maps();
	zoo_check_maps = 0; /* more than its snapshot holds: counted here instead */
	zoo_ready();
	zoo_wait();

	long bad = -1;
	for (long i = 0; i < nr_maps && bad < 0; i++)
		if (zoo_check_fill(anon + i * PAGE, 64, i) >= 0)
			bad = i;
	CHECK("pattern", bad < 0, "anonymous page %ld differs", bad);
	bad = -1;
	for (int i = 0; i < NR_FILE_MAPS && bad < 0; i++) {
		zoo_fill(page, PAGE, 100000 + i);
		if (i % 10 == 0)
			page[5] ^= 0xff;
		if (!file_maps[i] || memcmp(file_maps[i], page, PAGE))
			bad = i;
	}
	CHECK("count", bad < 0, "file mapping %ld differs or is gone", bad);
	bad = -1;
	for (int i = 0; i < NR_FILE_MAPS && bad < 0; i++)
		if (zoo_check_fill(shared_maps[i], 64, 200000 + i) >= 0)
			bad = i;
	CHECK("pattern", bad < 0, "shared page %ld differs", bad);
	long after = count_maps();
	CHECK("count", after == before, "%ld mappings, was %ld", after, before);
	char info[64];
	snprintf(info, sizeof(info), "%ld mappings", before);
	return zoo_finish(info);
}
