/*
 * files-unlinked: files held open after their name is gone, of every type, and paths that are
 * not regular files.
 *   fd 40: a directory (mode 0751, owner 1234:5678) removed while open;
 *   the cwd: a directory removed while the process is in it;
 *   fd 41, fd 42: P/C and P, both removed (C first): C's ".." is P;
 *   fd 43: a regular file Q/f, removed with its directory Q (content and offset 7);
 *   fd 44: a character device node (1:3, like /dev/null, mode 0640) removed while open;
 *   fd 45 (O_RDWR) and fd 46 (O_RDONLY|O_NONBLOCK): a FIFO removed while open, 6 bytes unread;
 *   fd 47: a symlink opened with O_PATH|O_NOFOLLOW (its target is "no/such/target");
 *   fd 48: O_PATH of a FIFO still named; fd 49: O_PATH of a unix socket's file (no socket);
 *   fd 50: O_PATH of a device node removed (1:5, like /dev/zero);
 *   fd 51: a symlink (target "../away/target", owner 4321:8765, mtime 1234567.89) opened with
 *   O_PATH|O_NOFOLLOW, then removed.
 * After restore and SIGTERM: each fd names the same path (with " (deleted)" for the removed
 * ones), has the same type, mode, owner and device number, no link left; C's ".." is P; the
 * file's content and offset; the FIFO's data is read through fd 46 and a write through fd 45
 * comes back through fd 46; the device behaves as /dev/null; the symlink's target; the cwd is
 * the removed directory; the removed symlink's target, owner, mtime and O_NOFOLLOW.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

static char dir[4000], d_open[4100], d_cwd[4100], d_p[4100], d_c[4100], d_q[4100], f_q[4200],
	dev_null[4100], fifo[4100], link_path[4100], fifo_kept[4100], sock_path[4100], dev_zero[4100],
	link_gone[4100];

struct expect {
	int fd;
	const char *path;
	int deleted;
	mode_t mode; /* type and permissions */
	dev_t rdev;
};
static struct expect want[] = {
	{ 40, d_open, 1, S_IFDIR | 0751, 0 },	{ 41, d_c, 1, S_IFDIR | 0700, 0 },
	{ 42, d_p, 1, S_IFDIR | 0755, 0 },	{ 43, f_q, 1, S_IFREG | 0600, 0 },
	{ 44, dev_null, 1, S_IFCHR | 0640, 0 }, { 45, fifo, 1, S_IFIFO | 0620, 0 },
	{ 46, fifo, 1, S_IFIFO | 0620, 0 },	{ 47, link_path, 0, S_IFLNK | 0777, 0 },
	{ 48, fifo_kept, 0, S_IFIFO | 0600, 0 }, { 49, sock_path, 0, S_IFSOCK | 0755, 0 },
	{ 50, dev_zero, 1, S_IFCHR | 0600, 0 },	{ 51, link_gone, 1, S_IFLNK | 0777, 0 },
};
#define NWANT (int)(sizeof(want) / sizeof(want[0]))

static void replace(int fd, const char *path, int flags)
{
	int n = open(path, flags);
	dup2(n, fd);
	close(n);
}
static void c_dir(ucontext_t *u) { (void)u; replace(40, "/", O_RDONLY | O_DIRECTORY); }
static void c_cwd(ucontext_t *u) { (void)u; if (chdir("/")) {} }
static void c_parent(ucontext_t *u)
{
	(void)u; /* P comes back as another directory: C's ".." is no longer it */
	replace(42, "/tmp", O_RDONLY | O_DIRECTORY);
}
static void c_file(ucontext_t *u) { (void)u; pwrite(43, "X", 1, 3); }
static void c_device(ucontext_t *u) { (void)u; replace(44, "/dev/zero", O_RDWR); }
static void c_fifo(ucontext_t *u) { (void)u; char b[8]; if (read(46, b, sizeof(b))) {} }
static void c_opath(ucontext_t *u) { (void)u; replace(47, "/", O_PATH); }
static void c_symlink(ucontext_t *u) { (void)u; replace(51, "/proc/self/exe", O_PATH | O_NOFOLLOW); }
static const struct zoo_corruption corruptions[] = {
	{ "dir", c_dir, 0 },	   { "cwd", c_cwd, 0 },	  { "parent", c_parent, 0 }, { "file", c_file, 0 },
	{ "device", c_device, 0 }, { "fifo", c_fifo, 0 }, { "opath", c_opath, 0 },
	{ "removed-symlink", c_symlink, 0 },
};

static void at(int fd, int got)
{
	if (got < 0)
		zoo_die("fd %d: %s", fd, strerror(errno));
	if (got != fd) {
		if (dup2(got, fd) != fd)
			zoo_die("dup2 %d: %s", fd, strerror(errno));
		close(got);
	}
}

static void check_fd(const struct expect *w)
{
	char proc[64], link[4300], expect[4300];
	struct stat st;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", w->fd);
	ssize_t n = readlink(proc, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	snprintf(expect, sizeof(expect), "%s%s", w->path, w->deleted ? " (deleted)" : "");
	const char *tag = w->fd == 40 ? "dir" : w->fd == 42 ? "parent" : w->fd == 43 ? "file" :
			  w->fd == 44 ? "device" : w->fd == 45 || w->fd == 46 ? "fifo" :
			  w->fd == 51 ? "removed-symlink" : "opath";
	CHECK(tag, !strcmp(link, expect), "fd %d is '%s', expected '%s'", w->fd, link, expect);
	if (fstat(w->fd, &st)) {
		zoo_failf(tag, "fd %d: fstat: %s", w->fd, strerror(errno));
		return;
	}
	CHECK(tag, st.st_mode == w->mode && (!w->deleted || st.st_nlink == 0) &&
			   (!S_ISCHR(w->mode) || st.st_rdev == w->rdev),
	      "fd %d: mode %o (expected %o), %lu links, rdev %u:%u", w->fd, st.st_mode, w->mode,
	      (unsigned long)st.st_nlink, major(st.st_rdev), minor(st.st_rdev));
	if (w->fd == 40)
		CHECK("dir", st.st_uid == 1234 && st.st_gid == 5678, "fd 40: owner %u:%u", st.st_uid, st.st_gid);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(dir, sizeof(dir), "%s", zoo_tmpdir());
	snprintf(d_open, sizeof(d_open), "%s/gone-dir", dir);
	snprintf(d_cwd, sizeof(d_cwd), "%s/gone-cwd", dir);
	snprintf(d_p, sizeof(d_p), "%s/P", dir);
	snprintf(d_c, sizeof(d_c), "%s/P/C", dir);
	snprintf(d_q, sizeof(d_q), "%s/Q", dir);
	snprintf(f_q, sizeof(f_q), "%s/Q/f", dir);
	snprintf(dev_null, sizeof(dev_null), "%s/null-node", dir);
	snprintf(fifo, sizeof(fifo), "%s/gone-fifo", dir);
	snprintf(link_path, sizeof(link_path), "%s/a-symlink", dir);
	snprintf(fifo_kept, sizeof(fifo_kept), "%s/kept-fifo", dir);
	snprintf(sock_path, sizeof(sock_path), "%s/a-socket", dir);
	snprintf(dev_zero, sizeof(dev_zero), "%s/zero-node", dir);
	snprintf(link_gone, sizeof(link_gone), "%s/gone-symlink", dir);
	want[4].rdev = makedev(1, 3);
	want[10].rdev = makedev(1, 5);
	umask(0);

	if (mkdir(d_open, 0751) || chown(d_open, 1234, 5678))
		zoo_die("mkdir %s: %s", d_open, strerror(errno));
	at(40, open(d_open, O_RDONLY | O_DIRECTORY));
	if (mkdir(d_cwd, 0700) || chdir(d_cwd))
		zoo_die("cwd %s: %s", d_cwd, strerror(errno));
	if (mkdir(d_p, 0755) || mkdir(d_c, 0700))
		zoo_die("mkdir %s: %s", d_c, strerror(errno));
	at(41, open(d_c, O_RDONLY | O_DIRECTORY));
	at(42, open(d_p, O_RDONLY | O_DIRECTORY));
	if (mkdir(d_q, 0700))
		zoo_die("mkdir %s: %s", d_q, strerror(errno));
	at(43, open(f_q, O_RDWR | O_CREAT | O_EXCL, 0600));
	if (write(43, "0123456789", 10) != 10 || lseek(43, 7, SEEK_SET) != 7)
		zoo_die("write %s: %s", f_q, strerror(errno));
	if (mknod(dev_null, S_IFCHR | 0640, makedev(1, 3)))
		zoo_die("mknod: %s", strerror(errno));
	at(44, open(dev_null, O_RDWR));
	if (mkfifo(fifo, 0620))
		zoo_die("mkfifo: %s", strerror(errno));
	at(45, open(fifo, O_RDWR));
	at(46, open(fifo, O_RDONLY | O_NONBLOCK));
	if (write(45, "queued", 6) != 6)
		zoo_die("fifo write: %s", strerror(errno));
	if (symlink("no/such/target", link_path))
		zoo_die("symlink: %s", strerror(errno));
	at(47, open(link_path, O_PATH | O_NOFOLLOW));
	if (mkfifo(fifo_kept, 0600))
		zoo_die("mkfifo: %s", strerror(errno));
	at(48, open(fifo_kept, O_PATH));
	umask(022);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(sock_path) >= sizeof(sa.sun_path))
		zoo_die("%s: too long for a socket", sock_path);
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	int sk = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(sk, (struct sockaddr *)&sa, sizeof(sa)))
		zoo_die("bind %s: %s", sock_path, strerror(errno));
	close(sk);
	at(49, open(sock_path, O_PATH));
	if (mknod(dev_zero, S_IFCHR | 0600, makedev(1, 5)))
		zoo_die("mknod: %s", strerror(errno));
	at(50, open(dev_zero, O_PATH));
	const struct timespec link_times[2] = { { 1111111, 0 }, { 1234567, 890000000 } };
	if (symlink("../away/target", link_gone) || lchown(link_gone, 4321, 8765) ||
	    utimensat(AT_FDCWD, link_gone, link_times, AT_SYMLINK_NOFOLLOW))
		zoo_die("symlink %s: %s", link_gone, strerror(errno));
	at(51, open(link_gone, O_PATH | O_NOFOLLOW));
	if (rmdir(d_open) || rmdir(d_cwd) || rmdir(d_c) || rmdir(d_p) || unlink(f_q) || rmdir(d_q) ||
	    unlink(dev_null) || unlink(fifo) || unlink(dev_zero) || unlink(link_gone))
		zoo_die("remove: %s", strerror(errno));
	zoo_ready();
	zoo_wait();

	for (int i = 0; i < NWANT; i++)
		check_fd(&want[i]);
	char link[4300], expect[4300];
	ssize_t n = readlink("/proc/self/cwd", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	snprintf(expect, sizeof(expect), "%s (deleted)", d_cwd);
	CHECK("cwd", !strcmp(link, expect), "the cwd is '%s', expected '%s'", link, expect);
	struct stat p, cp;
	CHECK("parent", fstat(42, &p) == 0 && fstatat(41, "..", &cp, 0) == 0 && p.st_ino == cp.st_ino &&
				p.st_dev == cp.st_dev,
	      "C's parent (inode %lu) is not P (inode %lu)", (unsigned long)cp.st_ino, (unsigned long)p.st_ino);
	char buf[16] = "";
	CHECK("file", lseek(43, 0, SEEK_CUR) == 7 && pread(43, buf, 16, 0) == 10 && !memcmp(buf, "0123456789", 10),
	      "the removed file's offset %ld or content '%.10s' differ", (long)lseek(43, 0, SEEK_CUR), buf);
	CHECK("device", write(44, "x", 1) == 1 && read(44, buf, 1) == 0, "fd 44 does not behave as /dev/null");
	memset(buf, 0, sizeof(buf));
	CHECK("fifo", read(46, buf, sizeof(buf)) == 6 && !memcmp(buf, "queued", 6), "the FIFO held '%.8s', expected 'queued'", buf);
	CHECK("fifo", write(45, "again", 5) == 5 && read(46, buf, sizeof(buf)) == 5 && !memcmp(buf, "again", 5),
	      "a write to fd 45 does not come out of fd 46");
	n = readlinkat(47, "", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	CHECK("opath", !strcmp(link, "no/such/target"), "the symlink at fd 47 reads '%s'", link);
	int fl = fcntl(47, F_GETFL);
	CHECK("opath", (fl & O_PATH) && (fl & O_NOFOLLOW), "fd 47 flags %#o", fl);
	n = readlinkat(51, "", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	CHECK("removed-symlink", !strcmp(link, "../away/target"), "the removed symlink at fd 51 reads '%s'", link);
	fl = fcntl(51, F_GETFL);
	CHECK("removed-symlink", (fl & O_PATH) && (fl & O_NOFOLLOW), "fd 51 flags %#o", fl);
	CHECK("removed-symlink", fstat(51, &p) == 0 && p.st_uid == 4321 && p.st_gid == 8765 &&
					 p.st_mtim.tv_sec == 1234567 && p.st_mtim.tv_nsec == 890000000,
	      "fd 51: owner %u:%u, mtime %ld.%09ld", p.st_uid, p.st_gid, (long)p.st_mtim.tv_sec, p.st_mtim.tv_nsec);
	return zoo_finish("12 fds of removed or non-regular files, a removed cwd");
}
