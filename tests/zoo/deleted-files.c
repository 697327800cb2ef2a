/*
 * deleted-files: files that were deleted while open or mapped.
 *   fd 30 and fd 31: two opens of one file (5000 bytes), deleted; offsets 123 and 77.
 *   A 3-page file mapped MAP_SHARED, deleted and its fd closed: only the mapping holds it.
 *   A 2-page file mapped MAP_PRIVATE with its first page modified, deleted.
 *   fd 32: a file deleted under the name it was opened by but hard-linked under another,
 *   offset 9, also mapped MAP_SHARED.
 *   fd 33: a file opened O_RDWR | O_NOFOLLOW (as Python's tempfile and multiprocessing's heap
 *   arenas open theirs), deleted, mapped MAP_SHARED.
 * After restore and SIGTERM: fd 30 and 31 still name "PATH (deleted)", have no link left,
 * the same inode, the content and their offsets; a write through fd 30 is read through fd 31;
 * both mappings still show "(deleted)" with their content (the modified private page too),
 * and the shared one still writes to its file. (Inode numbers change: the files are new.)
 * fd 32 and its mapping are the very inode of the other link (dev and inode equal, one link),
 * at offset 9; writes through the fd and the mapping are read through the link's path.
 * fd 33 still has O_NOFOLLOW among its flags, its content, and shares it with its mapping.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/stat.h>

static char path_a[4200], path_b[4200], path_c[4200], path_d[4200], path_d_link[4200], path_e[4200];
static unsigned char *shared_map, *private_map, *linked_map, *nofollow_map;

static int make_file(const char *path, size_t len, uint64_t seed)
{
	unsigned char *buf = malloc(len);
	zoo_fill(buf, len, seed);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		zoo_die("%s: %s", path, strerror(errno));
	free(buf);
	return fd;
}

static int map_has_deleted(const void *addr)
{
	char maps[65536], needle[64];
	zoo_read_file("/proc/self/maps", maps, sizeof(maps));
	snprintf(needle, sizeof(needle), "%lx-", (unsigned long)addr);
	char *l = strstr(maps, needle);
	char *eol = l ? strchr(l, '\n') : NULL;
	if (eol)
		*eol = 0;
	return l && strstr(l, " (deleted)");
}

static void c_content(ucontext_t *u) { (void)u; pwrite(30, "X", 1, 10); }
static void c_offset(ucontext_t *u) { (void)u; lseek(31, 0, SEEK_SET); }
static void c_identity(ucontext_t *u)
{
	(void)u;
	int fd = open("/dev/null", O_RDONLY);
	dup2(fd, 31);
	close(fd);
}
static void c_mapping(ucontext_t *u) { (void)u; private_map[100] ^= 1; }
static void c_linked(ucontext_t *u)
{
	(void)u;
	unlink(path_d_link); /* the fd's inode is no longer the link's */
	int fd = make_file(path_d_link, 4096, 105);
	close(fd);
}
static void c_nofollow(ucontext_t *u)
{
	(void)u;
	int fd = open(path_d_link, O_RDWR | O_CREAT, 0600); /* the same file, opened without it */
	dup2(fd, 33);
	close(fd);
}
static const struct zoo_corruption corruptions[] = {
	{ "content", c_content, 0 },
	{ "offset", c_offset, 0 },
	{ "identity", c_identity, 0 },
	{ "mapping", c_mapping, 0 },
	{ "linked", c_linked, 0 },
	{ "nofollow", c_nofollow, 0 },
};

int main(int argc, char **argv)
{
	const char *dir = getenv("ZOO_TMPDIR") ? getenv("ZOO_TMPDIR") : "/tmp";
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(path_a, sizeof(path_a), "%s/ghost-a", dir);
	snprintf(path_b, sizeof(path_b), "%s/ghost-b", dir);
	snprintf(path_c, sizeof(path_c), "%s/ghost-c", dir);
	snprintf(path_d, sizeof(path_d), "%s/ghost-d", dir);
	snprintf(path_d_link, sizeof(path_d_link), "%s/ghost-d-link", dir);
	snprintf(path_e, sizeof(path_e), "%s/ghost-e", dir);
	int fd = make_file(path_a, 5000, 101);
	if (dup3(fd, 30, O_CLOEXEC) != 30)
		zoo_die("dup3");
	close(fd);
	fd = open(path_a, O_RDONLY);
	if (dup3(fd, 31, 0) != 31)
		zoo_die("dup3");
	close(fd);
	if (fchown(30, 1234, 5678))
		zoo_die("fchown: %s", strerror(errno));
	lseek(30, 123, SEEK_SET);
	lseek(31, 77, SEEK_SET);
	fd = make_file(path_b, 3 * 4096, 102);
	shared_map = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	fd = make_file(path_c, 2 * 4096, 103);
	private_map = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (shared_map == MAP_FAILED || private_map == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	zoo_fill(private_map, 4096, 104);
	fd = make_file(path_d, 4096, 105);
	unlink(path_d_link);
	if (dup2(fd, 32) != 32 || link(path_d, path_d_link) || lseek(32, 9, SEEK_SET) != 9)
		zoo_die("fd 32: %s", strerror(errno));
	linked_map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (linked_map == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	close(fd);
	fd = make_file(path_e, 4096, 106);
	close(fd);
	if ((fd = open(path_e, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) < 0 || dup3(fd, 33, O_CLOEXEC) != 33)
		zoo_die("fd 33: %s", strerror(errno));
	close(fd);
	nofollow_map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, 33, 0);
	if (nofollow_map == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	unlink(path_e);
	unlink(path_d);
	unlink(path_a);
	unlink(path_b);
	unlink(path_c);
	zoo_check_maps = 0; /* a deleted file comes back as a new file: same name, new inode number */
	zoo_ready();
	zoo_wait();

	char link[4300], want[4300];
	struct stat a, b;
	ssize_t n = readlink("/proc/self/fd/30", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	snprintf(want, sizeof(want), "%s (deleted)", path_a);
	CHECK("identity", !strcmp(link, want), "fd 30 is '%s', expected '%s'", link, want);
	CHECK("identity", fstat(30, &a) == 0 && fstat(31, &b) == 0 && a.st_ino == b.st_ino &&
			  a.st_nlink == 0 && a.st_size == 5000 && (a.st_mode & 0777) == 0640 && a.st_uid == 1234 &&
			  a.st_gid == 5678,
	      "fd 30/31: inodes %lu/%lu, %lu links, %ld bytes, mode %o, owner %u:%u", (unsigned long)a.st_ino,
	      (unsigned long)b.st_ino, (unsigned long)a.st_nlink, (long)a.st_size, a.st_mode & 0777, a.st_uid,
	      a.st_gid);
	CHECK("offset", lseek(30, 0, SEEK_CUR) == 123 && lseek(31, 0, SEEK_CUR) == 77,
	      "offsets %ld and %ld, expected 123 and 77", (long)lseek(30, 0, SEEK_CUR), (long)lseek(31, 0, SEEK_CUR));
	unsigned char buf[5000];
	CHECK("content", pread(30, buf, 5000, 0) == 5000 && zoo_check_fill(buf, 5000, 101) < 0,
	      "the deleted file's content differs");
	pwrite(30, "ghost!", 6, 4000);
	char back[7] = "";
	CHECK("identity", pread(31, back, 6, 4000) == 6 && !memcmp(back, "ghost!", 6),
	      "a write through fd 30 is not read through fd 31");
	CHECK("mapping", map_has_deleted(shared_map) && map_has_deleted(private_map),
	      "the mappings no longer show a deleted file");
	unsigned char second[4096];
	memcpy(second, private_map + 4096, 4096);
	unsigned char file_c[2 * 4096];
	zoo_fill(file_c, sizeof(file_c), 103);
	CHECK("mapping", zoo_check_fill(shared_map, 3 * 4096, 102) < 0 &&
			 zoo_check_fill(private_map, 4096, 104) < 0 && !memcmp(second, file_c + 4096, 4096),
	      "mapped content differs");
	struct stat d, dl;
	CHECK("linked", fstat(32, &d) == 0 && stat(path_d_link, &dl) == 0 && d.st_dev == dl.st_dev &&
			d.st_ino == dl.st_ino && d.st_nlink == 1,
	      "fd 32: inode %lu with %lu links, the other link's inode %lu", (unsigned long)d.st_ino,
	      (unsigned long)d.st_nlink, (unsigned long)dl.st_ino);
	CHECK("linked", lseek(32, 0, SEEK_CUR) == 9, "fd 32 at offset %ld, expected 9", (long)lseek(32, 0, SEEK_CUR));
	pwrite(32, "via-fd", 6, 100);
	memcpy(linked_map + 200, "via-map", 7);
	msync(linked_map, 4096, MS_SYNC);
	char got[16] = "";
	int lf = open(path_d_link, O_RDONLY);
	CHECK("linked", pread(lf, got, 6, 100) == 6 && !memcmp(got, "via-fd", 6) &&
			pread(lf, got, 7, 200) == 7 && !memcmp(got, "via-map", 7),
	      "writes through fd 32 and its mapping are not in %s", path_d_link);
	close(lf);
	int fl = fcntl(33, F_GETFL);
	unsigned char e[4096];
	CHECK("nofollow", fl >= 0 && (fl & O_NOFOLLOW) && (fl & O_ACCMODE) == O_RDWR,
	      "fd 33's flags are %#x, expected O_RDWR | O_NOFOLLOW", fl);
	CHECK("nofollow", pread(33, e, 4096, 0) == 4096 && zoo_check_fill(e, 4096, 106) < 0,
	      "fd 33's deleted file's content differs");
	pwrite(33, "nofollow", 8, 300);
	CHECK("nofollow", !memcmp(nofollow_map + 300, "nofollow", 8), "fd 33's mapping is not its file");
	unlink(path_d_link);
	return zoo_finish("4 fds and 4 mappings of deleted files");
}
