/*
 * fds: regular file descriptors. Files live in $ZOO_TMPDIR.
 *   fd 17   append.log  O_WRONLY|O_APPEND, 3 bytes written (offset 3)
 *   fd 20   data.bin    O_RDONLY, offset 12345, FD_CLOEXEC
 *   fd 21   rw.bin      O_RDWR, offset 100
 *   fd 22   shared.bin  O_RDWR, offset 777, and fd 23 = dup(22) (one open file description,
 *                       one offset), 23 with FD_CLOEXEC and 22 without
 *   fd 24   shared.bin  opened again: O_RDONLY|O_NONBLOCK, offset 5, its own offset
 *   fd 25   /dev/null   O_WRONLY
 *   fd 26   /dev/zero   O_RDONLY
 *   fd 27   $ZOO_TMPDIR O_RDONLY|O_DIRECTORY, FD_CLOEXEC
 *   fd 28   rw.bin      O_PATH (no I/O; fstat and /proc/self/fd reopen work)
 *   fd 1000 data.bin    O_RDONLY, offset 1
 *   fds 0-2: stdin /dev/null, stdout/stderr regular files (stdout at offset 6 after "READY\n").
 * After restore the generic fdset check compares numbers, paths, fd flags and status flags of
 * every fd; this program checks offsets, access modes, append, sharing (kcmp and a moving
 * offset), device identity, the directory, and that reads/writes go where they should.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <linux/kcmp.h>
#include <sys/sysmacros.h>

static char dir[600], path_append[700], path_data[700], path_rw[700], path_shared[700];
static struct stat dir_st;

static void put_fd(int fd, int want)
{
	if (fd < 0)
		zoo_die("open: %s", strerror(errno));
	if (fd != want) {
		int cloexec = fcntl(fd, F_GETFD) & FD_CLOEXEC;
		if (dup3(fd, want, cloexec ? O_CLOEXEC : 0) != want)
			zoo_die("dup2 %d -> %d: %s", fd, want, strerror(errno));
		close(fd);
	}
}
static void make_file(const char *path, size_t len, uint64_t seed)
{
	char buf[65536];
	zoo_fill(buf, len, seed);
	if (zoo_write_file(path, buf, len) < 0)
		zoo_die("write %s: %s", path, strerror(errno));
}
static off_t pos(int fd) { return lseek(fd, 0, SEEK_CUR); }
static int kcmp_file(int a, int b) { return (int)syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, a, b); }

static void c_append(ucontext_t *u) { (void)u; fcntl(17, F_SETFL, fcntl(17, F_GETFL) & ~O_APPEND); }
static void c_offset(ucontext_t *u) { (void)u; lseek(20, 12346, SEEK_SET); }
static void c_rdwr(ucontext_t *u)
{
	(void)u;
	put_fd(open(path_rw, O_RDONLY), 21);
	lseek(21, 100, SEEK_SET);
}
static void c_shared(ucontext_t *u)
{
	(void)u;
	put_fd(open(path_shared, O_RDWR | O_CLOEXEC), 23);
	lseek(23, 777, SEEK_SET);
}
static void c_devnull(ucontext_t *u) { (void)u; put_fd(open("/dev/zero", O_WRONLY), 25); }
static void c_dir(ucontext_t *u) { (void)u; put_fd(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC), 27); }
static void c_opath(ucontext_t *u) { (void)u; put_fd(open(path_rw, O_RDONLY), 28); }
static void c_cloexec(ucontext_t *u) { (void)u; fcntl(21, F_SETFD, FD_CLOEXEC); }
static void c_stdout(ucontext_t *u) { (void)u; lseek(1, -1, SEEK_CUR); }
static const struct zoo_corruption corruptions[] = {
	{ "append", c_append, 0 },   { "offset", c_offset, 0 }, { "rdwr", c_rdwr, 0 },
	{ "shared", c_shared, 0 },   { "devnull", c_devnull, 0 }, { "dir", c_dir, 0 },
	{ "opath", c_opath, 0 },
	{ "cloexec", c_cloexec, 0 }, { "stdout", c_stdout, 0 },
};

static void check_cloexec(int fd, int want)
{
	int f = fcntl(fd, F_GETFD);
	CHECK("cloexec", f >= 0 && !!(f & FD_CLOEXEC) == want, "fd %d FD_CLOEXEC is %d, expected %d", fd,
	      f < 0 ? -1 : !!(f & FD_CLOEXEC), want);
}

int main(int argc, char **argv)
{
	char buf[4096];
	int f;
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));

	snprintf(dir, sizeof(dir), "%s/fds", zoo_tmpdir());
	mkdir(dir, 0755);
	if (stat(dir, &dir_st) < 0)
		zoo_die("stat %s: %s", dir, strerror(errno));
	snprintf(path_append, sizeof(path_append), "%s/append.log", dir);
	snprintf(path_data, sizeof(path_data), "%s/data.bin", dir);
	snprintf(path_rw, sizeof(path_rw), "%s/rw.bin", dir);
	snprintf(path_shared, sizeof(path_shared), "%s/shared.bin", dir);
	make_file(path_data, 65536, 41);
	make_file(path_rw, 8192, 42);
	make_file(path_shared, 8192, 43);

	put_fd(open(path_append, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644), 17);
	if (write(17, "abc", 3) != 3)
		zoo_die("write fd 17");
	put_fd(open(path_data, O_RDONLY | O_CLOEXEC), 20);
	lseek(20, 12345, SEEK_SET);
	put_fd(open(path_rw, O_RDWR), 21);
	lseek(21, 100, SEEK_SET);
	put_fd(open(path_shared, O_RDWR), 22);
	if (dup3(22, 23, O_CLOEXEC) != 23)
		zoo_die("dup3: %s", strerror(errno));
	lseek(22, 777, SEEK_SET);
	put_fd(open(path_shared, O_RDONLY | O_NONBLOCK), 24);
	lseek(24, 5, SEEK_SET);
	put_fd(open("/dev/null", O_WRONLY), 25);
	put_fd(open("/dev/zero", O_RDONLY), 26);
	put_fd(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), 27);
	put_fd(open(path_rw, O_PATH), 28);
	put_fd(open(path_data, O_RDONLY), 1000);
	lseek(1000, 1, SEEK_SET);

	zoo_ready();
	zoo_wait();

	/* fd 17: O_APPEND */
	int fl = fcntl(17, F_GETFL);
	CHECK("append", fl >= 0 && (fl & O_ACCMODE) == O_WRONLY && (fl & O_APPEND), "fd 17 flags %#o", fl);
	CHECK("append", pos(17) == 3, "fd 17 offset %ld, expected 3", (long)pos(17));
	lseek(17, 0, SEEK_SET);
	CHECK("append", write(17, "def", 3) == 3, "write fd 17: %s", strerror(errno));
	ssize_t n = zoo_read_file(path_append, buf, sizeof(buf));
	CHECK("append", n == 6 && !memcmp(buf, "abcdef", 6), "append.log is '%.*s', expected 'abcdef'",
	      (int)(n > 0 ? n : 0), buf);

	/* fd 20: offset 12345, read only */
	CHECK("offset", pos(20) == 12345, "fd 20 offset %ld, expected 12345", (long)pos(20));
	CHECK("offset", pos(1000) == 1, "fd 1000 offset %ld, expected 1", (long)pos(1000));
	char exp[65536];
	zoo_fill(exp, sizeof(exp), 41);
	CHECK("offset", read(20, buf, 16) == 16 && !memcmp(buf, exp + pos(20) - 16, 16), "fd 20 reads wrong data");
	CHECK("offset", write(20, "x", 1) < 0 && errno == EBADF, "fd 20 is writable");

	/* fd 21: read-write */
	fl = fcntl(21, F_GETFL);
	CHECK("rdwr", fl >= 0 && (fl & O_ACCMODE) == O_RDWR, "fd 21 flags %#o", fl);
	CHECK("rdwr", pos(21) == 100, "fd 21 offset %ld", (long)pos(21));
	CHECK("rdwr", write(21, "XYZ", 3) == 3, "write fd 21: %s", strerror(errno));
	f = open(path_rw, O_RDONLY | O_CLOEXEC);
	CHECK("rdwr", f >= 0 && pread(f, buf, 3, 100) == 3 && !memcmp(buf, "XYZ", 3),
	      "write to fd 21 did not land at offset 100");
	if (f >= 0)
		close(f);
	CHECK("rdwr", pread(21, buf, 3, 100) == 3 && !memcmp(buf, "XYZ", 3), "fd 21 cannot read back");

	/* fds 22/23: one open file description */
	CHECK("shared", pos(22) == 777 && pos(23) == 777, "offsets fd 22 %ld fd 23 %ld, expected 777", (long)pos(22),
	      (long)pos(23));
	lseek(22, 1000, SEEK_SET);
	CHECK("shared", pos(23) == 1000, "fd 23 does not share fd 22's offset (%ld)", (long)pos(23));
	int k = kcmp_file(22, 23);
	CHECK("shared", k == 0 || (k < 0 && errno == ENOSYS), "kcmp(22, 23) = %d: not the same file", k);
	k = kcmp_file(22, 24);
	CHECK("shared", k != 0, "fd 24 became the same file description as fd 22");
	CHECK("shared", pos(24) == 5, "fd 24 offset %ld, expected 5", (long)pos(24));
	fl = fcntl(24, F_GETFL);
	CHECK("shared", fl >= 0 && (fl & O_ACCMODE) == O_RDONLY && (fl & O_NONBLOCK), "fd 24 flags %#o", fl);

	/* devices */
	struct stat st;
	CHECK("devnull", fstat(25, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3),
	      "fd 25 is not /dev/null");
	CHECK("devnull", write(25, "zzz", 3) == 3, "write to /dev/null failed");
	CHECK("devnull", fstat(26, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 5),
	      "fd 26 is not /dev/zero");
	memset(buf, 1, 64);
	CHECK("devnull", read(26, buf, 64) == 64 && buf[0] == 0 && buf[63] == 0, "/dev/zero does not read zeros");

	/* directory */
	CHECK("dir", fstat(27, &st) == 0 && S_ISDIR(st.st_mode) && st.st_dev == dir_st.st_dev && st.st_ino == dir_st.st_ino,
	      "fd 27 is not the directory %s", dir);
	f = openat(27, "data.bin", O_RDONLY | O_CLOEXEC);
	CHECK("dir", f >= 0, "openat(27, data.bin): %s", strerror(errno));
	if (f >= 0)
		close(f);

	/* fd 28: O_PATH */
	fl = fcntl(28, F_GETFL);
	struct stat rw_st;
	CHECK("opath", fl >= 0 && (fl & O_PATH) && fstat(28, &st) == 0 && stat(path_rw, &rw_st) == 0 &&
			       st.st_ino == rw_st.st_ino && read(28, buf, 1) < 0 && errno == EBADF,
	      "fd 28 flags %#o: not an O_PATH fd on rw.bin", fl);

	/* close-on-exec is per fd */
	check_cloexec(17, 0);
	check_cloexec(20, 1);
	check_cloexec(21, 0);
	check_cloexec(22, 0);
	check_cloexec(23, 1);
	check_cloexec(27, 1);

	/* stdout (a fresh regular file from the runner) is at the end of "READY\n" */
	if (fstat(1, &st) == 0 && S_ISREG(st.st_mode))
		CHECK("stdout", pos(1) == 6, "stdout offset %ld, expected 6", (long)pos(1));
	return zoo_finish(NULL);
}
