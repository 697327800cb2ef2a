/*
 * mount-ns-pivot: a child in a mount namespace with a root of its own, made as bubblewrap makes
 * a sandbox: unshare(CLONE_NEWNS), every mount a slave, a tmpfs on W/base with the new root in
 * its directory "newroot" (bound on itself: the root mount shows "/newroot" of the tmpfs), and
 * in it:
 *   /etc/hello        a file of the new root (fd kept open); /lib64 a symlink "usr/lib64"
 *   /usr              /usr bound read-only (a bind of the namespace it was made from)
 *   /proc             a proc of its own (nosuid, nodev, noexec)
 *   /dev              a tmpfs, /dev/null bound from the /dev/null outside
 *   /tmp              a tmpfs with a file, shared, bound again on /tmp2 (a peer group of its own)
 *   /w                W/shared bound (a directory of the outer filesystem)
 *   /cov/x            W/cov bound, then covered by a tmpfs mounted on /cov
 *   /etc/data         a bind of a file of W/base outside the new root (mode 0640), the file
 *                     then removed (bubblewrap's --ro-bind-data: mountinfo shows "//deleted")
 *   the directory of the program, bound at its own path (the program runs from it)
 * then pivot_root into it, the old root detached (the tmpfs on W/base with it); it opens
 * /tmp/shared (its own tmpfs) and forks a grandchild, which shares that open file.
 * After restore and SIGTERM: the parent writes W/shared/late; the child checks / is that tmpfs,
 * /etc/hello (by path and by its fd), the symlink, /usr the same directory and read-only,
 * /proc its own (its pid there), /dev/null the device, /tmp's file, /w/late there (the same
 * directory as W/shared), /etc/data's data, mode and "//deleted" root, its mount table (mount
 * points, types, ro/rw, shared/slave, sorted) as before with the covered /cov/x in it, and a
 * tmpfs it mounts on /tmp/late reaching /tmp2/late; W (the old root) not reachable; it writes
 * "b" to /tmp/shared, then the grandchild "c": the file reads "abc" (one offset). The parent
 * checks its own mounts unchanged (none of the child's).
 * --chroot: the child chroots into the new root instead of pivot_root (tests/failure-cases.sh
 * expects the dump to refuse it); --big-data: /etc/data is 2 MiB (more than a removed file
 * bound there may be: refused too); --covered-tmpfs: a tmpfs with a file on /cov2, another
 * tmpfs mounted over it (the first one's files cannot be read: refused too).
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <libgen.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#define HELLO "hello from the new root\n"
#define DATA "data of a removed file\n"
#define TMP_TEXT "the sandbox's tmp\n"
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif
#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

/* (the child's exit status: 8 bits) */
enum {
	B_ROOT = 1, B_SYSTEM = 2, B_SHARED = 4, B_TMP = 16, B_OUTER = 32, B_DATA = 64, B_TABLE = 128,
};

static char w[512];
static char table_before[8192], parent_table_before[8192];
static volatile sig_atomic_t child_term;
static struct stat usr_before;
static int hello_fd = -1, shared_fd = -1, chrooted, big_data, covered_tmpfs;
static pid_t grandchild;

static void on_term(int sig) { (void)sig; child_term = 1; }

static int corrupting(const char *tag) { return zoo_corr && !strcmp(zoo_corr->tag, tag); }

static void at(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", w, rel);
}

static int fs_is(const char *p, long magic)
{
	struct statfs sf;
	return !statfs(p, &sf) && sf.f_type == magic;
}

/* Every mount: mount point, type, ro/rw, slave, shared; sorted. late: with mounts named "late". */
static void mount_summary(char *out, size_t len, int late)
{
	static char buf[256 * 1024];
	ssize_t n = zoo_read_file("/proc/self/mountinfo", buf, sizeof(buf) - 1);
	size_t used = 0;

	out[0] = 0;
	if (n <= 0)
		return;
	buf[n] = 0;
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char mp[512], opts[256], fstype[64];
		char *dash = strstr(line, " - ");
		if (sscanf(line, "%*u %*u %*s %*s %511s %255s", mp, opts) != 2 || !dash ||
		    sscanf(dash + 3, "%63s", fstype) != 1 || (!late && strstr(mp, "/late")))
			continue;
		char *fields = strstr(line, opts) + strlen(opts);
		*dash = 0;
		used += snprintf(out + used, used < len ? len - used : 0, "%s %s %s %s %s\n", mp, fstype,
				 strncmp(opts, "ro", 2) ? "rw" : "ro", strstr(fields, "master:") ? "slave" : "-",
				 strstr(fields, "shared:") ? "shared" : "-");
	}
	if (used < len)
		zoo_sort_lines(out);
}

/* The root of the mount at mount point p in mountinfo ("" if none). */
static void mount_root_of(const char *p, char *root, size_t len)
{
	static char buf[256 * 1024];
	ssize_t n = zoo_read_file("/proc/self/mountinfo", buf, sizeof(buf) - 1);

	root[0] = 0;
	if (n <= 0)
		return;
	buf[n] = 0;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		char r[512], mp[512];
		if (sscanf(line, "%*u %*u %*s %511s %511s", r, mp) == 2 && !strcmp(mp, p))
			snprintf(root, len, "%s", r);
	}
}

static void must(int ok, const char *what)
{
	if (!ok)
		zoo_die("child: %s: %s", what, strerror(errno));
}

static void make_dirs(const char *root, const char *rel)
{
	char p[1280];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')); *s++ = '/') {
		*s = 0;
		must(!mkdir(p, 0755) || errno == EEXIST, p);
	}
	must(!mkdir(p, 0755) || errno == EEXIST, p);
}

static void child_setup(void)
{
	char base[600], nr[600], p[1280], q[1280], exe[512], exedir[512];

	at(base, sizeof(base), "base");
	at(nr, sizeof(nr), "base/newroot");
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	must(n > 0, "readlink /proc/self/exe");
	exe[n] = 0;
	snprintf(exedir, sizeof(exedir), "%s", exe);
	dirname(exedir);
	must(!unshare(CLONE_NEWNS) && !mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL), "unshare");
	must(!mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m"), "tmpfs on W/base");
	for (const char *d = "newroot/etc\0newroot/usr\0newroot/proc\0newroot/dev\0newroot/tmp\0"
			     "newroot/tmp2\0newroot/w\0newroot/cov/x\0"; *d; d += strlen(d) + 1)
		make_dirs(base, d);
	make_dirs(nr, exedir + 1);
	snprintf(p, sizeof(p), "%s/etc/hello", nr);
	must(!zoo_write_file(p, HELLO, strlen(HELLO)), p);
	snprintf(p, sizeof(p), "%s/lib64", nr);
	must(!symlink("usr/lib64", p), p);
	must(!mount(nr, nr, NULL, MS_BIND, NULL), "bind of the new root");
	snprintf(p, sizeof(p), "%s/usr", nr);
	must(!mount("/usr", p, NULL, MS_BIND | MS_REC, NULL) &&
	     !mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL), "/usr");
	snprintf(p, sizeof(p), "%s/proc", nr);
	must(!mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), "proc");
	snprintf(p, sizeof(p), "%s/dev", nr);
	must(!mount("tmpfs", p, "tmpfs", MS_NOSUID, "mode=755,size=64k"), "tmpfs on /dev");
	snprintf(p, sizeof(p), "%s/dev/null", nr);
	must(!zoo_write_file(p, "", 0) && !mount("/dev/null", p, NULL, MS_BIND, NULL), "/dev/null");
	snprintf(p, sizeof(p), "%s/tmp", nr);
	snprintf(q, sizeof(q), "%s/tmp/file", nr);
	must(!mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m") &&
	     !zoo_write_file(q, TMP_TEXT, strlen(TMP_TEXT)) && !mount(NULL, p, NULL, MS_SHARED, NULL), "/tmp");
	snprintf(q, sizeof(q), "%s/tmp2", nr);
	must(!mount(p, q, NULL, MS_BIND, NULL), "/tmp2");
	at(p, sizeof(p), "shared");
	snprintf(q, sizeof(q), "%s/w", nr);
	must(!mount(p, q, NULL, MS_BIND, NULL), "/w");
	at(p, sizeof(p), "cov");
	snprintf(q, sizeof(q), "%s/cov/x", nr);
	must(!mount(p, q, NULL, MS_BIND, NULL), "/cov/x");
	snprintf(q, sizeof(q), "%s/cov", nr);
	must(!mount("tmpfs", q, "tmpfs", 0, "size=64k"), "tmpfs over /cov");
	if (covered_tmpfs) {
		snprintf(p, sizeof(p), "%s/cov2", nr);
		snprintf(q, sizeof(q), "%s/cov2/file", nr);
		must(!mkdir(p, 0755) && !mount("tmpfs", p, "tmpfs", 0, "size=64k") &&
		     !zoo_write_file(q, "under\n", 6) && !mount("tmpfs", p, "tmpfs", 0, "size=64k"),
		     "covered tmpfs");
	}
	snprintf(p, sizeof(p), "%s/datafile", base);
	snprintf(q, sizeof(q), "%s/etc/data", nr);
	must(!zoo_write_file(p, DATA, strlen(DATA)) && (!big_data || !truncate(p, 2 << 20)) && !chmod(p, 0640) &&
	     !zoo_write_file(q, "", 0) &&
	     !mount(p, q, NULL, MS_BIND, NULL) && !unlink(p), "/etc/data");
	snprintf(p, sizeof(p), "%s%s", nr, exedir);
	must(!mount(exedir, p, NULL, MS_BIND, NULL), "the program's directory");
	if (chrooted)
		must(!chdir(nr) && !chroot(".") && !chdir("/"), "chroot");
	else
		must(!chdir(nr) && !syscall(SYS_pivot_root, ".", ".") && !umount2(".", MNT_DETACH) && !chdir("/"),
		     "pivot_root");
	must(stat("/usr", &usr_before) == 0, "/usr");
	must((hello_fd = open("/etc/hello", O_RDONLY)) >= 0, "/etc/hello");
	/* a file of its own /tmp whose open file (one offset) it shares with the grandchild */
	must((shared_fd = open("/tmp/shared", O_RDWR | O_CREAT | O_TRUNC, 0600)) >= 0 &&
	     write(shared_fd, "a", 1) == 1, "/tmp/shared");
	if ((grandchild = fork()) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		while (!child_term)
			zoo_sleep_ms(10);
		_exit(write(shared_fd, "c", 1) != 1);
	}
	must(grandchild > 0, "fork");
}

static int child_checks(void)
{
	char buf[128], root[512], now[8192];
	struct stat st;
	struct statvfs sv;
	int bits = 0;

	if (corrupting("root"))
		zoo_write_file("/etc/hello", "changed\n", 8);
	if (corrupting("outer"))
		umount2("/w", MNT_DETACH);
	if (corrupting("data"))
		chmod("/etc/data", 0600);
	if (corrupting("propagation"))
		mount(NULL, "/tmp2", NULL, MS_PRIVATE, NULL);
	if (corrupting("mountinfo"))
		umount2("/cov", MNT_DETACH);
	if (corrupting("shared"))
		lseek(shared_fd, 0, SEEK_SET);
	ssize_t n = pread(hello_fd, buf, sizeof(buf) - 1, 0);
	bits |= !fs_is("/", TMPFS_MAGIC) || !zoo_file_is("/etc/hello", HELLO) || n != (ssize_t)strlen(HELLO) ||
			memcmp(buf, HELLO, n) || readlink("/lib64", buf, sizeof(buf)) != 9 ||
			memcmp(buf, "usr/lib64", 9) ? B_ROOT : 0;
	bits |= stat("/usr", &st) || st.st_dev != usr_before.st_dev || st.st_ino != usr_before.st_ino ||
			statvfs("/usr", &sv) || !(sv.f_flag & ST_RDONLY) ? B_SYSTEM : 0;
	n = zoo_read_file("/proc/self/stat", buf, sizeof(buf) - 1);
	bits |= !fs_is("/proc", PROC_SUPER_MAGIC) || n <= 0 || atoi(buf) != getpid() ? B_SYSTEM : 0;
	bits |= stat("/dev/null", &st) || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3) ||
			zoo_write_file("/dev/null", "x", 1) ? B_SYSTEM : 0;
	bits |= !fs_is("/tmp", TMPFS_MAGIC) || !zoo_file_is("/tmp/file", TMP_TEXT) || !zoo_file_is("/tmp2/file", TMP_TEXT)
			? B_TMP : 0;
	bits |= !zoo_file_is("/w/late", "late\n") || !access(w, F_OK) ? B_OUTER : 0;
	mount_root_of("/etc/data", root, sizeof(root));
	size_t rl = strlen(root);
	char head[sizeof(DATA)];
	bits |= zoo_read_file("/etc/data", head, sizeof(head)) != (ssize_t)strlen(DATA) || strcmp(head, DATA) ||
			stat("/etc/data", &st) || st.st_size != (big_data ? 2 << 20 : (off_t)strlen(DATA)) ||
			(st.st_mode & 07777) != 0640 ||
			rl < 9 || strcmp(root + rl - 9, "//deleted") ? B_DATA : 0;
	mount_summary(now, sizeof(now), 0);
	bits |= strcmp(now, table_before) ? B_TABLE : 0;
	if (mkdir("/tmp/late", 0755) || mount("tmpfs", "/tmp/late", "tmpfs", 0, "size=64k"))
		bits |= B_TMP;
	mount_summary(now, sizeof(now), 1);
	bits |= strstr(now, "/tmp2/late tmpfs") ? 0 : B_TMP;
	/* it writes at the shared offset, then the grandchild does: "abc" */
	int gst = 0;
	bits |= write(shared_fd, "b", 1) != 1 || kill(grandchild, SIGTERM) || waitpid(grandchild, &gst, 0) != grandchild ||
			!WIFEXITED(gst) || WEXITSTATUS(gst) || pread(shared_fd, buf, 8, 0) != 3 || memcmp(buf, "abc", 3)
			? B_SHARED : 0;
	if (bits & B_TABLE)
		fprintf(stderr, "child: mounts now:\n%swere:\n%s", now, table_before);
	return bits;
}

static void c_child(ucontext_t *u) { (void)u; }

static const struct zoo_corruption corruptions[] = {
	{ "root", c_child, 0 },        /* the child changes /etc/hello */
	{ "outer", c_child, 0 },       /* the child unmounts /w */
	{ "data", c_child, 0 },        /* the child changes /etc/data's mode */
	{ "propagation", c_child, 0 }, /* the child makes /tmp2 private */
	{ "mountinfo", c_child, 0 },   /* the child unmounts the tmpfs over /cov */
	{ "shared", c_child, 0 },      /* the child moves the shared offset back to 0 */
};

int main(int argc, char **argv)
{
	char p[600];
	int ready[2];
	pid_t child;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(w, sizeof(w), "%s", zoo_tmpdir());
	chrooted = argc > 1 && !strcmp(argv[argc - 1], "--chroot");
	big_data = argc > 1 && !strcmp(argv[argc - 1], "--big-data");
	covered_tmpfs = argc > 1 && !strcmp(argv[argc - 1], "--covered-tmpfs");
	for (const char *d = "base\0shared\0cov\0"; *d; d += strlen(d) + 1) {
		at(p, sizeof(p), d);
		if (mkdir(p, 0755))
			zoo_die("mkdir %s: %s", p, strerror(errno));
	}
	if (pipe(ready))
		zoo_die("pipe");
	if ((child = fork()) == 0) {
		struct sigaction sa = { .sa_handler = on_term };
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* (a failed run leaves nothing) */
		close(ready[0]);
		sigaction(SIGTERM, &sa, NULL);
		child_setup();
		mount_summary(table_before, sizeof(table_before), 0);
		if (write(ready[1], "", 1) != 1)
			_exit(255);
		close(ready[1]);
		while (!child_term)
			zoo_sleep_ms(10);
		_exit(child_checks());
	}
	char c;
	close(ready[1]);
	if (child < 0 || read(ready[0], &c, 1) != 1)
		zoo_die("the child did not make its root");
	close(ready[0]);
	mount_summary(parent_table_before, sizeof(parent_table_before), 0);
	zoo_ready();
	zoo_wait();

	char now[8192];
	mount_summary(now, sizeof(now), 0);
	CHECK("parent", !strcmp(now, parent_table_before), "the parent's mounts changed:\n%s\nwere:\n%s",
	      now, parent_table_before);
	at(p, sizeof(p), "shared/late");
	if (zoo_write_file(p, "late\n", 5))
		zoo_failf("parent", "cannot write %s", p);
	int st;
	int bits = zoo_child_bits(child, &st);
	CHECK("child", bits != 255, "the child was killed or failed (status %#x)", st);
	if (bits != 255) {
		CHECK("root", !(bits & B_ROOT), "the child's root is not its tmpfs with /etc/hello and /lib64");
		CHECK("system", !(bits & B_SYSTEM), "the child's /usr is not the same directory, read-only, "
		      "or its /proc not a proc showing its pid, or its /dev/null not the device");
		CHECK("propagation", !(bits & B_TMP),
		      "the child's /tmp or /tmp2 is not its tmpfs, or a mount on /tmp does not reach /tmp2");
		CHECK("outer", !(bits & B_OUTER), "the child's /w is not W/shared, or W is reachable");
		CHECK("data", !(bits & B_DATA), "the child's /etc/data is not the removed file (data, mode 0640)");
		CHECK("mountinfo", !(bits & B_TABLE), "the child's mount table differs");
		CHECK("shared", !(bits & B_SHARED), "the child's /tmp/shared is not one open file (one "
		      "offset) with its grandchild's");
	}
	return zoo_finish("a child pivoted into a root of its own (bubblewrap's way)");
}
