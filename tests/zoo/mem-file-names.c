/*
 * mem-file-names: files mapped under names /proc/PID/maps does not show as they are.
 *   "odd\nname.dat": a newline in the name (maps shows it as \012), mapped MAP_PRIVATE, its
 *     page 1 modified in memory;
 *   "back\\012slash.dat": a backslash followed by "012" in the name (maps shows the same
 *     text as for the newline), mapped MAP_SHARED;
 *   "live (deleted)": a file that is not deleted, its name ending as maps marks deleted
 *     files, mapped MAP_SHARED;
 *   a file at the end of eight nested directories of 200-character names (a path of more
 *     than 1600 characters, longer than the lines of maps other tools read), mapped
 *     MAP_PRIVATE with page 0 modified, and MAP_SHARED.
 *   All fds are closed. After restore: /proc/self/map_files of each mapping links to the same
 *   path (the same file, not one named like it), the content is right (modified private pages
 *   kept, clean ones the file's), a write through each shared mapping reaches its file.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/mman.h>

#define PG 4096ul
#define PAGES 3
#define DEPTH 8

enum { NEWLINE, BACKSLASH, LIVE, LONG_PRIVATE, LONG_SHARED, N_MAPS };

static struct {
	const char *what;
	int shared;
	char path[2048];
	char *map;
} maps[N_MAPS] = {
	[NEWLINE] = { "the file with a newline in its name", 0, "", NULL },
	[BACKSLASH] = { "the file with \\012 in its name", 1, "", NULL },
	[LIVE] = { "the live file named '... (deleted)'", 1, "", NULL },
	[LONG_PRIVATE] = { "the file of a long path (private)", 0, "", NULL },
	[LONG_SHARED] = { "the file of a long path (shared)", 1, "", NULL },
};
static char plain_path[600];

static uint64_t seed_of(int i) { return 40 + (uint64_t)i; }
/* the private mappings' modified page: 1 for the newline file, 0 for the long path */
static int modified_page(int i) { return i == NEWLINE ? 1 : i == LONG_PRIVATE ? 0 : -1; }

/* a file named like no other at the address of mapping i, with the same content */
static void remap_plain(int i)
{
	int fd = open(plain_path, O_RDWR);
	mmap(maps[i].map, PAGES * PG, PROT_READ | PROT_WRITE, (maps[i].shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED,
	     fd, 0);
	close(fd);
}
static void c_newline(ucontext_t *u) { (void)u; remap_plain(NEWLINE); }
static void c_long(ucontext_t *u) { (void)u; remap_plain(LONG_SHARED); }
static void c_content(ucontext_t *u) { (void)u; maps[LONG_PRIVATE].map[PG + 5] ^= 1; }

static const struct zoo_corruption corruptions[] = {
	{ "newline", c_newline, 0 },
	{ "long", c_long, 0 },
	{ "content", c_content, 0 },
};

static void make_file(const char *path, uint64_t seed)
{
	char buf[PAGES * PG];
	zoo_fill(buf, sizeof(buf), seed);
	if (zoo_write_file(path, buf, sizeof(buf)) < 0)
		zoo_die("write %s: %s", path, strerror(errno));
}

static char *map_file(const char *path, int shared)
{
	int fd = open(path, O_RDWR);
	if (fd < 0)
		zoo_die("open %s: %s", path, strerror(errno));
	char *p = mmap(NULL, PAGES * PG, PROT_READ | PROT_WRITE, shared ? MAP_SHARED : MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		zoo_die("mmap %s: %s", path, strerror(errno));
	close(fd);
	return p;
}

static void check(int i)
{
	static char link[PATH_MAX + 1], page[PG];
	char mf[96];
	snprintf(mf, sizeof(mf), "/proc/self/map_files/%lx-%lx", (unsigned long)maps[i].map,
		 (unsigned long)maps[i].map + PAGES * PG);
	ssize_t n = readlink(mf, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	const char *tag = i == NEWLINE ? "newline" : i == LONG_SHARED ? "long" : "names";
	if (!CHECK(tag, n > 0 && !strcmp(link, maps[i].path), "%s: mapped file is '%.300s' (%zd bytes), not '%.300s'",
		   maps[i].what, link, n, maps[i].path))
		return;
	char *file = malloc(PAGES * PG);
	zoo_fill(file, PAGES * PG, seed_of(i));
	for (int p = 0; p < PAGES; p++) {
		char *want = file + p * PG;
		if (p == modified_page(i)) {
			zoo_fill(page, PG, 90 + i);
			want = page;
		}
		CHECK("content", !memcmp(maps[i].map + p * PG, want, PG), "%s: page %d differs", maps[i].what, p);
	}
	free(file);
	if (!maps[i].shared)
		return;
	zoo_fill(page, PG, 95 + i);
	memcpy(maps[i].map + PG, page, PG);
	int fd = open(maps[i].path, O_RDONLY);
	char got[PG];
	CHECK("content", fd >= 0 && msync(maps[i].map, PAGES * PG, MS_SYNC) == 0 && pread(fd, got, PG, PG) == PG &&
				 !memcmp(got, page, PG),
	      "%s: a write through the shared mapping did not reach the file", maps[i].what);
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	const char *dir = zoo_tmpdir();
	char name[201];
	memset(name, 'n', 200);
	name[200] = 0;

	snprintf(maps[NEWLINE].path, sizeof(maps[0].path), "%s/odd\nname.dat", dir);
	snprintf(maps[BACKSLASH].path, sizeof(maps[0].path), "%s/back\\012slash.dat", dir);
	snprintf(maps[LIVE].path, sizeof(maps[0].path), "%s/live (deleted)", dir);
	int len = snprintf(maps[LONG_PRIVATE].path, sizeof(maps[0].path), "%s", dir);
	for (int d = 0; d < DEPTH; d++) {
		len += snprintf(maps[LONG_PRIVATE].path + len, sizeof(maps[0].path) - len, "/%s", name);
		if (mkdir(maps[LONG_PRIVATE].path, 0755) && errno != EEXIST)
			zoo_die("mkdir: %s", strerror(errno));
	}
	strcpy(maps[LONG_SHARED].path, maps[LONG_PRIVATE].path);
	strcat(maps[LONG_PRIVATE].path, "/private.dat");
	strcat(maps[LONG_SHARED].path, "/shared.dat");
	snprintf(plain_path, sizeof(plain_path), "%s/plain.dat", dir);

	for (int i = 0; i < N_MAPS; i++) {
		make_file(maps[i].path, seed_of(i));
		maps[i].map = map_file(maps[i].path, maps[i].shared);
		if (modified_page(i) >= 0)
			zoo_fill(maps[i].map + modified_page(i) * PG, PG, 90 + i);
	}
	make_file(plain_path, seed_of(LONG_SHARED));

	zoo_check_maps = 0; /* the corruptions change mappings on purpose; the checks below see it */
	zoo_ready();
	zoo_wait();

	for (int i = 0; i < N_MAPS; i++)
		check(i);
	return zoo_finish("5 mappings of files named with a newline, \\012, '(deleted)', a path of 1600+ chars");
}
