/*
 * mem-file: file-backed mappings.
 *   private.dat (8 pages) mapped MAP_PRIVATE read-write: pages 1 and 5 modified in memory
 *     (the file keeps its content), the other pages only read;
 *   shared.dat (4 pages) mapped MAP_SHARED: written through the mapping before the dump.
 *   After restore: modified private pages keep the modification, clean private pages show the
 *   file, the file itself is untouched; the shared mapping shows the file, a write through
 *   the mapping reaches the file (msync + pread) and a pwrite to the file is seen through the
 *   mapping. No fd stays open on either file.
 * Files live in $ZOO_TMPDIR and must still be there at restore time.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/mman.h>

#define PG 4096ul
#define PRIV_PAGES 8
#define SHARED_PAGES 4

static char *priv, *shared;
static char priv_path[600], shared_path[600];

static int priv_modified(int i) { return i == 1 || i == 5; }

static void c_private(ucontext_t *u) { (void)u; priv[5 * PG + 77] ^= 1; }
static void c_private_clean(ucontext_t *u) { (void)u; priv[2 * PG + 3] ^= 1; }
static void c_shared(ucontext_t *u) { (void)u; shared[2 * PG + 9] ^= 1; }
/* what an engine that restores a shared file mapping as a private copy would produce */
static void c_shared_write(ucontext_t *u)
{
	(void)u;
	int fd = open(shared_path, O_RDWR);
	mmap(shared, SHARED_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);
	close(fd);
}
static void c_file(ucontext_t *u)
{
	(void)u;
	int fd = open(priv_path, O_WRONLY);
	if (pwrite(fd, "x", 1, 6 * PG + 1) != 1)
		zoo_die("pwrite");
	close(fd);
}

static const struct zoo_corruption corruptions[] = {
	{ "private", c_private, 0 },	  { "private-clean", c_private_clean, 0 },
	{ "shared", c_shared, 0 },	  { "shared-write", c_shared_write, 0 },
	{ "file", c_file, 0 },
};

static void *map_file(const char *path, size_t len, int flags, uint64_t seed)
{
	char *buf = malloc(len);
	zoo_fill(buf, len, seed);
	if (zoo_write_file(path, buf, len) < 0)
		zoo_die("write %s: %s", path, strerror(errno));
	free(buf);
	int fd = open(path, O_RDWR);
	if (fd < 0)
		zoo_die("open %s: %s", path, strerror(errno));
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (p == MAP_FAILED)
		zoo_die("mmap %s: %s", path, strerror(errno));
	close(fd);
	return p;
}

/* expected content of page i of the private mapping */
static void priv_expect(int i, char *out)
{
	char *file = malloc(PRIV_PAGES * PG);
	zoo_fill(file, PRIV_PAGES * PG, 11);
	memcpy(out, file + i * PG, PG);
	free(file);
	if (priv_modified(i))
		zoo_fill(out, PG, 100 + i);
}

int main(int argc, char **argv)
{
	static char page[PG], expect[PG];
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));

	snprintf(priv_path, sizeof(priv_path), "%s/private.dat", zoo_tmpdir());
	snprintf(shared_path, sizeof(shared_path), "%s/shared.dat", zoo_tmpdir());

	priv = map_file(priv_path, PRIV_PAGES * PG, MAP_PRIVATE, 11);
	volatile char sink = 0;
	for (int i = 0; i < PRIV_PAGES; i++) {
		if (priv_modified(i))
			zoo_fill(priv + i * PG, PG, 100 + i);
		else
			sink ^= priv[i * PG]; /* read: the page is mapped from the page cache */
	}
	(void)sink;

	shared = map_file(shared_path, SHARED_PAGES * PG, MAP_SHARED, 21);
	zoo_fill(shared, SHARED_PAGES * PG, 22); /* through the mapping, not msync'ed */

	zoo_ready();
	zoo_wait();

	/* private mapping */
	for (int i = 0; i < PRIV_PAGES; i++) {
		priv_expect(i, expect);
		if (memcmp(priv + i * PG, expect, PG)) {
			zoo_failf(priv_modified(i) ? "private" : "private-clean", "page %d of the private mapping (%s) differs",
				  i, priv_modified(i) ? "modified" : "clean");
			break;
		}
	}
	int fd = open(priv_path, O_RDONLY);
	if (CHECK("file", fd >= 0, "open %s: %s", priv_path, strerror(errno))) {
		char *file = malloc(PRIV_PAGES * PG);
		CHECK("file", pread(fd, file, PRIV_PAGES * PG, 0) == PRIV_PAGES * PG, "short read of %s", priv_path);
		long bad = zoo_check_fill(file, PRIV_PAGES * PG, 11);
		CHECK("file", bad < 0, "the file under the private mapping changed at offset %ld", bad);
		free(file);
		close(fd);
	}

	/* shared mapping: memory == expected == file */
	long bad = zoo_check_fill(shared, SHARED_PAGES * PG, 22);
	CHECK("shared", bad < 0, "shared mapping differs at offset %ld", bad);
	fd = open(shared_path, O_RDWR);
	if (!CHECK("shared", fd >= 0, "open %s: %s", shared_path, strerror(errno)))
		return zoo_finish(NULL);
	char *file = malloc(SHARED_PAGES * PG);
	if (pread(fd, file, SHARED_PAGES * PG, 0) != (ssize_t)(SHARED_PAGES * PG))
		zoo_failf("shared", "short read of %s", shared_path);
	CHECK("shared", !memcmp(file, shared, SHARED_PAGES * PG), "shared mapping and file differ");

	/* memory -> file */
	zoo_fill(shared + PG, PG, 23);
	CHECK("shared-write", msync(shared, SHARED_PAGES * PG, MS_SYNC) == 0, "msync: %s", strerror(errno));
	if (pread(fd, page, PG, PG) != (ssize_t)PG)
		zoo_failf("shared-write", "short read of %s", shared_path);
	CHECK("shared-write", zoo_check_fill(page, PG, 23) < 0, "a write to the shared mapping did not reach the file");

	/* file -> memory */
	zoo_fill(page, PG, 24);
	if (pwrite(fd, page, PG, 3 * PG) != (ssize_t)PG)
		zoo_failf("shared-write", "pwrite %s: %s", shared_path, strerror(errno));
	CHECK("shared-write", zoo_check_fill(shared + 3 * PG, PG, 24) < 0,
	      "a write to the file is not seen through the shared mapping");
	close(fd);
	free(file);

	if (!getenv("ZOO_TMPDIR")) {
		unlink(priv_path);
		unlink(shared_path);
		rmdir(zoo_tmpdir());
	}
	return zoo_finish(NULL);
}
