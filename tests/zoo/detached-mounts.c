/*
 * detached-mounts: files open on mounts that no mount namespace holds any more.
 *   fd 30: "data" (3000 bytes, mode 0640, offset 7) on a tmpfs mounted at DIR/t and detached
 *   since (umount -l), mode 0751; fd 31: its directory "sub" (O_RDONLY), holding "inner" and a
 *   symbolic link "ln" to it, and ".." leading to that tmpfs's root; "inner" is also mapped
 *   shared; a child's working directory is "sub".
 *   fd 32: a tmpfs made by fsopen/fsmount and never attached (its mount fd); fd 33: "made" on
 *   it, O_RDWR at offset 5.
 *   fd 34: DIR/src/file, opened through a bind of DIR/src at DIR/bind detached since; the
 *   working directory: that bind too.
 *   fd 35: a clone of DIR/src made by open_tree(OPEN_TREE_CLONE), made read-only
 *   (mount_setattr), never attached.
 * After restore and SIGTERM: the files' data, modes, offsets and links are there (a write
 * through the mapping reaches "inner"); fds 30 and
 * 31 share one tmpfs, fds 32 and 33 another, none of them shown by a mount; fd 34 is
 * DIR/src/file itself (same inode), the working directory is DIR/src through a detached mount
 * (the child's: sub on the detached tmpfs);
 * fd 35 is still a mount fd: move_mount attaches it at DIR/attach, where DIR/src/file is,
 * read-only.
 * Dumps that must fail (tests/failure-cases.sh): --removed (t/data removed before the
 * tmpfs is detached), --ramfs (fd 36: a file on a detached ramfs, not a tmpfs), --big (fd 36:
 * a file of 2 MiB on the detached tmpfs, dumped with --ghost-limit 1000000).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <linux/mount.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

static char dir[4000];
static char *map; /* t/sub/inner, shared */
static pid_t child;
static int child_corrupt;

static void c_tmpfs(ucontext_t *u) { (void)u; pwrite(30, "X", 1, 100); }
static void c_fsmount(ucontext_t *u) { (void)u; lseek(33, 0, SEEK_SET); }
static void c_clone(ucontext_t *u)
{
	(void)u;
	char path[4100];
	snprintf(path, sizeof(path), "%s/src/file", dir);
	unlink(path);
	close(open(path, O_CREAT | O_WRONLY, 0644));
}
static void c_mountfd(ucontext_t *u)
{
	(void)u; /* an O_PATH fd of the same directory, not a mount of its own */
	char path[4100];
	snprintf(path, sizeof(path), "%s/src", dir);
	int fd = open(path, O_PATH | O_DIRECTORY);
	dup2(fd, 35);
	close(fd);
}
static void c_cwd(ucontext_t *u) { (void)u; chdir("/"); }
static void c_mapped(ucontext_t *u) { (void)u; map[0] = 'X'; }
static void c_child_cwd(ucontext_t *u) { (void)u; }
static void c_readonly(ucontext_t *u)
{
	(void)u;
	struct mount_attr a = { .attr_clr = MOUNT_ATTR_RDONLY };
	syscall(SYS_mount_setattr, 35, "", AT_EMPTY_PATH, &a, sizeof(a));
}
static const struct zoo_corruption corruptions[] = {
	{ "tmpfs", c_tmpfs, 0 },
	{ "fsmount", c_fsmount, 0 },
	{ "clone", c_clone, 0 },
	{ "mountfd", c_mountfd, 0 },
	{ "readonly", c_readonly, 0 },
	{ "cwd", c_cwd, 0 },
	{ "mapped", c_mapped, 0 },
	{ "child-cwd", c_child_cwd, 0 },
};

static void path_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static void put(int at, const char *name, int fd)
{
	if (fd < 0 || dup2(fd, at) != at)
		zoo_die("%s: %s", name, strerror(errno));
	close(fd);
}

static void write_at(int dirfd, const char *name, const char *text, mode_t mode)
{
	int fd = openat(dirfd, name, O_CREAT | O_WRONLY | O_EXCL, mode);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		zoo_die("%s: %s", name, strerror(errno));
	close(fd);
}

/* Whether mount id of fd's file is one /proc/self/mountinfo lists. */
static int mount_listed(int fd)
{
	char path[64], line[8192];
	unsigned long long id = 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		sscanf(line, "mnt_id: %llu", &id);
	if (f)
		fclose(f);
	f = fopen("/proc/self/mountinfo", "r");
	int found = 0;
	while (f && !found && fgets(line, sizeof(line), f))
		found = strtoull(line, NULL, 10) == id;
	if (f)
		fclose(f);
	return found;
}

static int same_file(int a, int b)
{
	struct stat x, y;
	return !fstat(a, &x) && !fstat(b, &y) && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

int main(int argc, char **argv)
{
	char path[4100], path2[4100], buf[4000];
	const char *mode = argc > 1 ? argv[argc - 1] : "";

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	child_corrupt = zoo_corr && !strcmp(zoo_corr->tag, "child-cwd"); /* (the child leaves sub) */
	snprintf(dir, sizeof(dir), "%s", zoo_tmpdir());
	/* a tmpfs detached with files open on it */
	path_of(path, sizeof(path), "t");
	if (mkdir(path, 0755) || mount("zoo", path, "tmpfs", 0, "mode=0751"))
		zoo_die("tmpfs at %s: %s", path, strerror(errno));
	int t = open(path, O_PATH | O_DIRECTORY);
	zoo_fill((unsigned char *)buf, 3000, 60);
	if (t < 0 || mkdirat(t, "sub", 0750))
		zoo_die("%s/sub: %s", path, strerror(errno));
	put(30, "t/data", openat(t, "data", O_CREAT | O_RDWR | O_EXCL, 0640));
	if (write(30, buf, 3000) != 3000 || lseek(30, 7, SEEK_SET) != 7)
		zoo_die("t/data: %s", strerror(errno));
	put(31, "t/sub", openat(t, "sub", O_RDONLY | O_DIRECTORY));
	write_at(31, "inner", "inner-text", 0600);
	int inner = openat(31, "inner", O_RDWR);
	map = inner < 0 ? MAP_FAILED : mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, inner, 0);
	if (map == MAP_FAILED)
		zoo_die("mapping t/sub/inner: %s", strerror(errno));
	close(inner);
	if (symlinkat("inner", 31, "ln"))
		zoo_die("t/sub/ln: %s", strerror(errno));
	if (!strcmp(mode, "--removed") && unlinkat(t, "data", 0))
		zoo_die("t/data: %s", strerror(errno));
	if (!strcmp(mode, "--big")) {
		put(36, "t/big", openat(t, "big", O_CREAT | O_RDWR | O_EXCL, 0600));
		for (int i = 0; i < 700; i++) /* (2.1 MB) */
			if (write(36, buf, 3000) != 3000)
				zoo_die("t/big: %s", strerror(errno));
	}
	close(t);
	/* a child whose working directory is t/sub (its checks: bits of its exit status) */
	int ready[2];
	if (pipe(ready) || (child = fork()) < 0)
		zoo_die("fork: %s", strerror(errno));
	if (child == 0) {
		struct stat here, sub;
		char c = 0;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fchdir(31) || write(ready[1], &c, 1) != 1)
			_exit(255);
		sigset_t term;
		sigemptyset(&term);
		sigaddset(&term, SIGTERM);
		sigprocmask(SIG_BLOCK, &term, NULL);
		int sig;
		sigwait(&term, &sig);
		if (child_corrupt && chdir("/"))
			_exit(255);
		int in = open("inner", O_RDONLY);
		_exit(stat(".", &here) || fstat(31, &sub) || here.st_ino != sub.st_ino || here.st_dev != sub.st_dev ||
		      in < 0 ? 1 : 0);
	}
	char c;
	if (read(ready[0], &c, 1) != 1)
		zoo_die("the child did not start");
	close(ready[0]);
	close(ready[1]);
	if (umount2(path, MNT_DETACH))
		zoo_die("umount -l %s: %s", path, strerror(errno));
	if (!strcmp(mode, "--ramfs")) {
		path_of(path, sizeof(path), "r");
		if (mkdir(path, 0755) || mount("zoo", path, "ramfs", 0, NULL))
			zoo_die("ramfs at %s: %s", path, strerror(errno));
		path_of(path2, sizeof(path2), "r/file");
		put(36, "r/file", open(path2, O_CREAT | O_RDWR | O_EXCL, 0600));
		if (umount2(path, MNT_DETACH))
			zoo_die("umount -l %s: %s", path, strerror(errno));
	}
	/* a tmpfs never attached */
	int fs = syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0 || syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0))
		zoo_die("fsopen tmpfs: %s", strerror(errno));
	put(32, "fsmount", syscall(SYS_fsmount, fs, 0, 0));
	close(fs);
	put(33, "made", openat(32, "made", O_CREAT | O_RDWR | O_EXCL, 0604));
	if (write(33, "made-here", 9) != 9 || lseek(33, 5, SEEK_SET) != 5)
		zoo_die("made: %s", strerror(errno));
	/* a bind detached, its filesystem still mounted (DIR's) */
	path_of(path, sizeof(path), "src");
	path_of(path2, sizeof(path2), "bind");
	if (mkdir(path, 0755) || mkdir(path2, 0755) || mount(path, path2, NULL, MS_BIND, NULL))
		zoo_die("bind %s at %s: %s", path, path2, strerror(errno));
	path_of(path, sizeof(path), "bind/file");
	put(34, "bind/file", open(path, O_CREAT | O_RDWR | O_EXCL, 0644));
	if (write(34, "through-bind", 12) != 12 || chdir(path2) || umount2(path2, MNT_DETACH))
		zoo_die("bind/file: %s", strerror(errno));
	/* a clone of DIR/src, read-only, never attached */
	path_of(path, sizeof(path), "src");
	put(35, "open_tree", syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE));
	struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY };
	if (syscall(SYS_mount_setattr, 35, "", AT_EMPTY_PATH, &ro, sizeof(ro)))
		zoo_die("mount_setattr: %s", strerror(errno));
	zoo_check_fds = 0; /* (mount fds, and files on mounts made again: other mount ids) */
	zoo_check_maps = 0; /* (a tmpfs made again: other inode numbers) */
	zoo_ready();
	zoo_wait();

	struct stat st;
	struct statfs sf;
	char got[4000];
	fstat(30, &st);
	CHECK("tmpfs", pread(30, got, 3000, 0) == 3000 && !memcmp(got, buf, 3000) && st.st_size == 3000 &&
			       (st.st_mode & 07777) == 0640 && lseek(30, 0, SEEK_CUR) == 7,
	      "t/data: content, size %lld, mode %o or offset differ", (long long)st.st_size, st.st_mode & 07777);
	int in = openat(31, "inner", O_RDONLY);
	ssize_t n = in < 0 ? -1 : read(in, got, sizeof(got));
	CHECK("tmpfs", n == 10 && !memcmp(got, "inner-text", 10), "t/sub/inner: %s",
	      in < 0 ? strerror(errno) : "other content");
	if (in >= 0)
		close(in);
	CHECK("mapped", !memcmp(map, "inner-text", 10), "the shared mapping of t/sub/inner reads '%.10s'", map);
	memcpy(map, "mapped", 6);
	in = openat(31, "inner", O_RDONLY);
	CHECK("mapped", in >= 0 && pread(in, got, 6, 0) == 6 && !memcmp(got, "mapped", 6),
	      "a write through the mapping is not in t/sub/inner");
	if (in >= 0)
		close(in);
	n = readlinkat(31, "ln", got, sizeof(got));
	CHECK("tmpfs", n == 5 && !memcmp(got, "inner", 5), "t/sub/ln is not a link to inner");
	CHECK("tmpfs", !fstat(31, &st) && (st.st_mode & 07777) == 0750, "t/sub has mode %o", st.st_mode & 07777);
	CHECK("tmpfs", !fstatat(31, "..", &st, 0) && (st.st_mode & 07777) == 0751,
	      "t (t/sub/..) has mode %o, not 0751", st.st_mode & 07777);
	struct stat a, b;
	CHECK("tmpfs", !fstat(30, &a) && !fstat(31, &b) && a.st_dev == b.st_dev && !fstatfs(30, &sf) &&
			       sf.f_type == TMPFS_MAGIC && !mount_listed(30),
	      "fds 30 and 31 are not on one tmpfs that no mount shows");
	int made = openat(32, "made", O_RDONLY);
	CHECK("fsmount", made >= 0 && same_file(made, 33) && lseek(33, 0, SEEK_CUR) == 5 &&
				 pread(33, got, 9, 0) == 9 && !memcmp(got, "made-here", 9) && !mount_listed(33),
	      "fd 33 is not 'made' of the fsmount tmpfs at fd 32, at offset 5");
	if (made >= 0)
		close(made);
	path_of(path, sizeof(path), "src/file");
	int src = open(path, O_RDONLY);
	CHECK("clone", src >= 0 && same_file(src, 34) && !mount_listed(34) &&
			       pread(34, got, 12, 0) == 12 && !memcmp(got, "through-bind", 12),
	      "fd 34 is not %s through a detached mount", path);
	struct stat here;
	path_of(path, sizeof(path), "src");
	int cwd_file = open("file", O_RDONLY);
	CHECK("cwd", !stat(".", &here) && !stat(path, &a) && here.st_ino == a.st_ino && here.st_dev == a.st_dev &&
			     cwd_file >= 0 && src >= 0 && same_file(cwd_file, src) && !mount_listed(cwd_file),
	      "the working directory is not DIR/src through a detached mount");
	if (cwd_file >= 0)
		close(cwd_file);
	path_of(path2, sizeof(path2), "attach");
	mkdir(path2, 0755);
	int moved = !syscall(SYS_move_mount, 35, "", AT_FDCWD, path2, MOVE_MOUNT_F_EMPTY_PATH);
	CHECK("mountfd", moved, "move_mount of fd 35 at %s: %s", path2, strerror(errno));
	if (moved) {
		path_of(path, sizeof(path), "attach/file");
		int at = open(path, O_RDONLY);
		CHECK("mountfd", at >= 0 && src >= 0 && same_file(at, src), "%s is not DIR/src/file", path);
		if (at >= 0)
			close(at);
		at = open(path, O_WRONLY);
		CHECK("readonly", at < 0 && errno == EROFS, "%s opens for writing: the clone is not read-only", path);
		if (at >= 0)
			close(at);
		umount2(path2, MNT_DETACH);
	}
	if (src >= 0)
		close(src);
	int status, bits = zoo_child_bits(child, &status);
	CHECK("child-cwd", bits == 0, "the child in t/sub: its working directory is not fd 31's directory on the "
				      "detached tmpfs (exit status %#x)", status);
	return zoo_finish("a tmpfs detached with a file and a directory open, a tmpfs never attached, a bind detached, a read-only open_tree clone");
}
