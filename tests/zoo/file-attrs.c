/*
 * file-attrs: what the dump and the restore must not change about files (owner, mode, times),
 * and what they must put back.
 *   R: a file (mode 0604, owner 1234:5678, accessed two days ago, modified three days ago)
 *   open at fd 30 (offset 3), mapped MAP_SHARED and MAP_PRIVATE|PROT_EXEC; in directory A,
 *   which also holds a file deleted while open (fd 34); A was accessed and modified a day ago.
 *   fd 31: a pty slave given mode 0600 and owner 1234:5 (fd 32 its master);
 *   fd 33: a memfd given mode 0640, owner 1234:5678, modified two days ago.
 * After restore and SIGTERM: R's owner, mode, atime, mtime and ctime are as before; A's atime
 * and mtime; the pty slave's mode and owner; the memfd's mode, owner and mtime.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/mman.h>

#define DAY (24 * 3600)
static char dir[4100], r_path[4200], g_path[4200];
static struct stat r_before, a_before, m_before;
static char slave[64];

static void c_times(ucontext_t *u) { (void)u; utimensat(AT_FDCWD, r_path, NULL, 0); }
static void c_mode(ucontext_t *u) { (void)u; chmod(r_path, 0644); }
static void c_dir(ucontext_t *u)
{
	(void)u;
	struct timespec t[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };
	utimensat(AT_FDCWD, dir, t, 0);
}
static void c_pty(ucontext_t *u) { (void)u; fchmod(31, 0620); }
static void c_memfd(ucontext_t *u) { (void)u; fchmod(33, 0600); }
static const struct zoo_corruption corruptions[] = {
	{ "times", c_times, 0 }, { "mode", c_mode, 0 }, { "dir", c_dir, 0 },
	{ "pty", c_pty, 0 },	 { "memfd", c_memfd, 0 },
};

static int same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static void age(const char *path, int fd, long atime_ago, long mtime_ago)
{
	struct timespec now, t[2];
	clock_gettime(CLOCK_REALTIME, &now);
	t[0] = (struct timespec){ now.tv_sec - atime_ago, 123456789 };
	t[1] = (struct timespec){ now.tv_sec - mtime_ago, 500000000 };
	if (path ? utimensat(AT_FDCWD, path, t, 0) : futimens(fd, t))
		zoo_die("times of %s: %s", path ? path : "fd", strerror(errno));
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(dir, sizeof(dir), "%s/A", zoo_tmpdir());
	snprintf(r_path, sizeof(r_path), "%s/R", dir);
	snprintf(g_path, sizeof(g_path), "%s/G", dir);
	if (mkdir(dir, 0755))
		zoo_die("mkdir %s: %s", dir, strerror(errno));
	int fd = open(r_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || dup2(fd, 30) != 30 || ftruncate(30, 8192) || pwrite(30, "content", 7, 0) != 7 ||
	    lseek(30, 3, SEEK_SET) != 3)
		zoo_die("%s: %s", r_path, strerror(errno));
	close(fd);
	void *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, 30, 0);
	void *priv = mmap(NULL, 8192, PROT_READ | PROT_EXEC, MAP_PRIVATE, 30, 0);
	if (shared == MAP_FAILED || priv == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	fd = open(g_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || dup2(fd, 34) != 34 || write(34, "ghost", 5) != 5 || unlink(g_path))
		zoo_die("%s: %s", g_path, strerror(errno));
	close(fd);
	if (fchown(30, 1234, 5678) || fchmod(30, 0604))
		zoo_die("owner of %s: %s", r_path, strerror(errno));
	age(r_path, -1, 2 * DAY, 3 * DAY);
	age(dir, -1, DAY, DAY);
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m) || ptsname_r(m, slave, sizeof(slave)) || dup2(m, 32) != 32)
		zoo_die("pty: %s", strerror(errno));
	close(m);
	fd = open(slave, O_RDWR | O_NOCTTY);
	if (fd < 0 || dup2(fd, 31) != 31 || fchmod(31, 0600) || fchown(31, 1234, 5))
		zoo_die("%s: %s", slave, strerror(errno));
	close(fd);
	fd = memfd_create("attrs", 0);
	if (fd < 0 || dup2(fd, 33) != 33 || write(33, "memfd", 5) != 5 || fchmod(33, 0640) || fchown(33, 1234, 5678))
		zoo_die("memfd: %s", strerror(errno));
	close(fd);
	age(NULL, 33, 2 * DAY, 2 * DAY);
	zoo_sleep_ms(20); /* the ctime of R must be older than whatever the restore would do */
	if (stat(r_path, &r_before) || stat(dir, &a_before) || fstat(33, &m_before))
		zoo_die("stat: %s", strerror(errno));
	zoo_ready();
	zoo_wait();

	struct stat r, a, s, mf;
	stat(r_path, &r);
	stat(dir, &a);
	fstat(31, &s);
	fstat(33, &mf);
	CHECK("mode", r.st_mode == r_before.st_mode && r.st_uid == 1234 && r.st_gid == 5678,
	      "R: mode %o owner %u:%u, was %o 1234:5678", r.st_mode, r.st_uid, r.st_gid, r_before.st_mode);
	CHECK("times", same_time(&r.st_atim, &r_before.st_atim) && same_time(&r.st_mtim, &r_before.st_mtim),
	      "R: atime %ld.%09ld mtime %ld.%09ld, were %ld.%09ld and %ld.%09ld", (long)r.st_atim.tv_sec,
	      r.st_atim.tv_nsec, (long)r.st_mtim.tv_sec, r.st_mtim.tv_nsec, (long)r_before.st_atim.tv_sec,
	      r_before.st_atim.tv_nsec, (long)r_before.st_mtim.tv_sec, r_before.st_mtim.tv_nsec);
	CHECK("mode", same_time(&r.st_ctim, &r_before.st_ctim), "R: ctime %ld.%09ld, was %ld.%09ld",
	      (long)r.st_ctim.tv_sec, r.st_ctim.tv_nsec, (long)r_before.st_ctim.tv_sec, r_before.st_ctim.tv_nsec);
	CHECK("dir", same_time(&a.st_atim, &a_before.st_atim) && same_time(&a.st_mtim, &a_before.st_mtim),
	      "A: atime %ld mtime %ld, were %ld and %ld", (long)a.st_atim.tv_sec, (long)a.st_mtim.tv_sec,
	      (long)a_before.st_atim.tv_sec, (long)a_before.st_mtim.tv_sec);
	CHECK("pty", (s.st_mode & 07777) == 0600 && s.st_uid == 1234 && s.st_gid == 5,
	      "%s: mode %o owner %u:%u, expected 600 1234:5", slave, s.st_mode & 07777, s.st_uid, s.st_gid);
	CHECK("memfd", (mf.st_mode & 07777) == 0640 && mf.st_uid == 1234 && mf.st_gid == 5678 &&
			       same_time(&mf.st_mtim, &m_before.st_mtim),
	      "memfd: mode %o owner %u:%u mtime %ld, expected 640 1234:5678 %ld", mf.st_mode & 07777, mf.st_uid,
	      mf.st_gid, (long)mf.st_mtim.tv_sec, (long)m_before.st_mtim.tv_sec);
	return zoo_finish("a file, its directory, a pty slave and a memfd");
}
