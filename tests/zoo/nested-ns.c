/*
 * nested-ns: a child in mount and UTS namespaces of its own, as systemd makes them for a
 * service (ProtectHostname=, ProtectSystem=, PrivateTmp=, InaccessiblePaths=).
 *   parent: in a container's own mount namespace (its "/" is a bind, not the host's), it first
 *           binds W/shared (shared) and W/priv (private) on themselves; on the host it mounts
 *           nothing (the host's namespace is left alone).
 *   child:  unshare(CLONE_NEWNS | CLONE_NEWUTS), host name zoo-nested-child, every mount made
 *           a slave (MS_REC | MS_SLAVE on /), W/ro bound read-only over itself, a tmpfs on
 *           W/ptmp with a file, made shared and bound on W/pslave made its slave (a peer group
 *           of the namespace's own), the empty W/empty bound over the file W/secret, the
 *           directory W/gonedir (mode 1750) bound on W/dbind then removed (mountinfo shows its
 *           root "//deleted"), an unbindable tmpfs on W/utmp with a file,
 *           /dev/mqueue unmounted (if mounted), then a grandchild (in the same namespaces),
 *           chrooted into W.
 *   Before the dump, in a container: a tmpfs the parent mounts on W/shared/probe reaches the
 *   child, one on W/priv/probe does not (recorded, then unmounted).
 * After restore and SIGTERM: the child checks its host name; W/ro read-only; the tmpfs and its
 * file, and W/utmp's; W/secret empty; W/dbind a mount of an empty directory of mode 1750, W/gonedir absent; /dev/mqueue absent; its mount table below W (mount points, types,
 * ro/rw, slave, shared) as before; a tmpfs it mounts on W/ptmp/late reaches W/pslave; a tmpfs
 * the parent mounts now on W/shared/late reaches it as before and one on W/priv/late does not. The grandchild checks the host name, its root (W) and the
 * tmpfs file. The parent checks its own host name and mounts unchanged (none of the child's).
 * --setns-sibling: a second child joins the first one's mount namespace with setns() (it is
 * then in a nested namespace that its parent is not in: tests/failure-cases.sh expects the
 * dump to refuse it); it is ended before the checks.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <dirent.h>
#include <sys/wait.h>

#define CHILD_HOST "zoo-nested-child"
#define TMP_TEXT "private tmp of the child\n"
#define SECRET_TEXT "secret\n"
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

enum {
	B_HOST = 1, B_RO = 2, B_TMPFS = 4, B_BOUND = 8, B_UNMOUNTED = 16, B_TABLE = 32,
	B_PROPAGATION = 64, B_GRANDCHILD = 128,
};

static char w[512], parent_host[65];
static char table_before[8192], parent_table_before[8192];
static volatile sig_atomic_t child_term;
static int own_ns, unmounted_mqueue;
static int probe_shared = -1, probe_priv = -1; /* did the probes reach the child */

static void on_term(int sig) { (void)sig; child_term = 1; }

static int corrupting(const char *tag) { return zoo_corr && !strcmp(zoo_corr->tag, tag); }

static void child_wait(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	while (!child_term)
		zoo_sleep_ms(10);
}

static void path(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", w, rel);
}

/*
 * The mounts at or below W (and /, /dev/mqueue), one a line: mount point relative to W, type,
 * ro/rw, slave or not, shared or not; sorted (the order of a restored table is its own).
 */
static void mount_summary(char *out, size_t len)
{
	static char buf[256 * 1024];
	ssize_t n = zoo_read_file("/proc/self/mountinfo", buf, sizeof(buf) - 1);
	size_t wl = strlen(w), used = 0;

	out[0] = 0;
	if (n <= 0)
		return;
	buf[n] = 0;
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char mp[512], opts[256], fstype[64];
		if (sscanf(line, "%*u %*u %*s %*s %511s %255s", mp, opts) != 2)
			continue;
		char *dash = strstr(line, " - ");
		if (!dash || sscanf(dash + 3, "%63s", fstype) != 1)
			continue;
		const char *rel = NULL;
		if (!strncmp(mp, w, wl) && (mp[wl] == '/' || !mp[wl]))
			rel = mp[wl] ? mp + wl : "W";
		else if (!strcmp(mp, "/") || !strcmp(mp, "/dev/mqueue"))
			rel = mp;
		size_t ml = strlen(mp);
		if (!rel || (ml > 5 && !strcmp(mp + ml - 5, "/late")))
			continue; /* (the parent's late mounts come after the summary) */
		/* optional fields lie between the options and " - " */
		char *fields = strstr(line, opts) + strlen(opts);
		*dash = 0;
		used += snprintf(out + used, used < len ? len - used : 0, "%s %s %s %s %s %s\n", rel, fstype,
				 strncmp(opts, "ro", 2) ? "rw" : "ro",
				 strstr(fields, "master:") ? "slave" : "-",
				 strstr(fields, "shared:") ? "shared" : "-",
				 strstr(fields, "unbindable") ? "unbindable" : "-");
	}
	if (used < len)
		zoo_sort_lines(out);
}

static int is_mount_of(const char *p, long magic)
{
	struct statfs sf;
	return !statfs(p, &sf) && sf.f_type == magic;
}

/* Is p a mount point (another device than its parent directory, or in mountinfo)? */
static int is_mountpoint(const char *p)
{
	static char buf[256 * 1024];
	char needle[600];
	ssize_t n = zoo_read_file("/proc/self/mountinfo", buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	snprintf(needle, sizeof(needle), " %s ", p);
	return strstr(buf, needle) != NULL;
}

/* chrooted into W (a chroot inside the namespace: made again by its path) */
static void run_grandchild(void)
{
	char host[65] = "";
	if (chroot(w) || chdir("/"))
		_exit(1);
	child_wait();
	gethostname(host, sizeof(host));
	_exit(strcmp(host, CHILD_HOST) || !zoo_file_is("/ptmp/file", TMP_TEXT) || !access(w, F_OK));
}

static void child_setup(void)
{
	char ro[600], ptmp[600], pslave[600], f[600], secret[600], empty[600];

	path(ro, sizeof(ro), "ro");
	path(ptmp, sizeof(ptmp), "ptmp");
	path(pslave, sizeof(pslave), "pslave");
	path(f, sizeof(f), "ptmp/file");
	path(secret, sizeof(secret), "secret");
	path(empty, sizeof(empty), "empty");
	if (unshare(CLONE_NEWNS | CLONE_NEWUTS) || sethostname(CHILD_HOST, strlen(CHILD_HOST)) ||
	    mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL))
		zoo_die("child: unshare / hostname / slave: %s", strerror(errno));
	if (mount(ro, ro, NULL, MS_BIND, NULL) ||
	    mount(NULL, ro, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL))
		zoo_die("child: read-only bind of %s: %s", ro, strerror(errno));
	if (mount("tmpfs", ptmp, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=1m") ||
	    zoo_write_file(f, TMP_TEXT, strlen(TMP_TEXT)))
		zoo_die("child: tmpfs on %s: %s", ptmp, strerror(errno));
	if (mount(NULL, ptmp, NULL, MS_SHARED, NULL) || mount(ptmp, pslave, NULL, MS_BIND, NULL) ||
	    mount(NULL, pslave, NULL, MS_SLAVE, NULL))
		zoo_die("child: slave bind of %s on %s: %s", ptmp, pslave, strerror(errno));
	if (mount(empty, secret, NULL, MS_BIND, NULL) ||
	    mount(NULL, secret, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL))
		zoo_die("child: bind over %s: %s", secret, strerror(errno));
	char utmp[600], uf[600];
	path(utmp, sizeof(utmp), "utmp");
	path(uf, sizeof(uf), "utmp/file");
	if (mount("tmpfs", utmp, "tmpfs", 0, "size=1m") || zoo_write_file(uf, TMP_TEXT, strlen(TMP_TEXT)) ||
	    mount(NULL, utmp, NULL, MS_UNBINDABLE, NULL))
		zoo_die("child: unbindable tmpfs on %s: %s", utmp, strerror(errno));
	char gonedir[600], dbind[600];
	path(gonedir, sizeof(gonedir), "gonedir");
	path(dbind, sizeof(dbind), "dbind");
	if (mkdir(gonedir, 0700) || chmod(gonedir, 01750) || mount(gonedir, dbind, NULL, MS_BIND, NULL) ||
	    rmdir(gonedir))
		zoo_die("child: bind of the removed %s on %s: %s", gonedir, dbind, strerror(errno));
	if (is_mountpoint("/dev/mqueue")) {
		if (umount2("/dev/mqueue", MNT_DETACH))
			zoo_die("child: cannot unmount /dev/mqueue: %s", strerror(errno));
		unmounted_mqueue = 1;
	}
}

static int child_checks(pid_t gc)
{
	char host[65] = "", ro[600], probe[600], f[600], secret[600], now[8192];
	struct statvfs sv;
	struct stat st;
	int bits = 0, gst = 0;

	path(ro, sizeof(ro), "ro");
	path(f, sizeof(f), "ptmp/file");
	path(secret, sizeof(secret), "secret");
	if (corrupting("hostname"))
		sethostname("zoo-other", 9);
	if (corrupting("ro"))
		mount(NULL, ro, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV, NULL);
	if (corrupting("tmpfs"))
		zoo_write_file(f, "changed\n", 8);
	char dbind[600], gonedir[600];
	path(dbind, sizeof(dbind), "dbind");
	path(gonedir, sizeof(gonedir), "gonedir");
	if (corrupting("bound-file"))
		umount2(dbind, MNT_DETACH);
	path(probe, sizeof(probe), "pslave");
	if (corrupting("propagation"))
		mount(NULL, probe, NULL, MS_PRIVATE, NULL);
	gethostname(host, sizeof(host));
	bits |= strcmp(host, CHILD_HOST) ? B_HOST : 0;
	bits |= statvfs(ro, &sv) || !(sv.f_flag & ST_RDONLY) ? B_RO : 0;
	path(probe, sizeof(probe), "ptmp");
	bits |= !is_mount_of(probe, TMPFS_MAGIC) || !zoo_file_is(f, TMP_TEXT) ? B_TMPFS : 0;
	path(probe, sizeof(probe), "utmp/file");
	bits |= !zoo_file_is(probe, TMP_TEXT) ? B_TMPFS : 0;
	bits |= stat(secret, &st) || st.st_size != 0 ? B_BOUND : 0;
	DIR *dbind_dir = opendir(dbind);
	int entries = 0;
	for (struct dirent *de; dbind_dir && (de = readdir(dbind_dir));)
		entries += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	if (dbind_dir)
		closedir(dbind_dir);
	bits |= !is_mountpoint(dbind) || stat(dbind, &st) || (st.st_mode & 07777) != 01750 || entries ||
			!access(gonedir, F_OK) ? B_BOUND : 0;
	bits |= unmounted_mqueue && is_mountpoint("/dev/mqueue") ? B_UNMOUNTED : 0;
	/* the late mounts of the parent are not in the summary (they came after it) */
	mount_summary(now, sizeof(now));
	bits |= strcmp(now, table_before) ? B_TABLE : 0;
	/* its own peer group: W/ptmp's new mount reaches its slave W/pslave */
	char late[600];
	path(late, sizeof(late), "ptmp/late");
	if (mkdir(late, 0755) || mount("tmpfs", late, "tmpfs", 0, "size=64k"))
		bits |= B_PROPAGATION;
	path(late, sizeof(late), "pslave/late");
	bits |= is_mountpoint(late) ? 0 : B_PROPAGATION;
	if (own_ns) {
		path(late, sizeof(late), "shared/late");
		int got_shared = is_mountpoint(late);
		path(late, sizeof(late), "priv/late");
		int got_priv = is_mountpoint(late);
		bits |= got_shared != probe_shared || got_priv != probe_priv || probe_shared != 1 ||
				probe_priv != 0 ? B_PROPAGATION : 0;
	}
	kill(gc, SIGTERM);
	bits |= waitpid(gc, &gst, 0) != gc || !WIFEXITED(gst) || WEXITSTATUS(gst) ? B_GRANDCHILD : 0;
	return bits;
}

/* W/shared/probe and W/priv/probe mounted in the parent: did each reach the child? */
static int probe_mount(const char *rel, int mount_it)
{
	char p[600];
	path(p, sizeof(p), rel);
	if (mount_it)
		return mount("tmpfs", p, "tmpfs", 0, "size=64k") ? -1 : 0;
	return umount2(p, MNT_DETACH) ? -1 : 0;
}

static void c_child(ucontext_t *u) { (void)u; }

static const struct zoo_corruption corruptions[] = {
	{ "hostname", c_child, 0 }, /* the child changes its host name */
	{ "ro", c_child, 0 },       /* the child makes its read-only bind writable */
	{ "tmpfs", c_child, 0 },    /* the child changes the file of its tmpfs */
	{ "propagation", c_child, 0 }, /* the child makes W/pslave private */
	{ "bound-file", c_child, 0 }, /* the child unmounts W/dbind */
};

/* Is this process in a container's own mount namespace (its "/" a bind of a directory)? */
static int in_own_mount_ns(void)
{
	static char buf[256 * 1024];
	ssize_t n = zoo_read_file("/proc/self/mountinfo", buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		char root[512], mp[512];
		if (sscanf(line, "%*u %*u %*s %511s %511s", root, mp) == 2 && !strcmp(mp, "/"))
			return strcmp(root, "/") != 0 && getpid() == 1;
	}
	return 0;
}

static void make_dir(const char *rel)
{
	char p[600];
	path(p, sizeof(p), rel);
	if (mkdir(p, 0755) && errno != EEXIST)
		zoo_die("mkdir %s: %s", p, strerror(errno));
}

int main(int argc, char **argv)
{
	char p[600], q[600];
	int ready[2], go[2];
	pid_t child;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(w, sizeof(w), "%s", zoo_tmpdir());
	own_ns = in_own_mount_ns();
	gethostname(parent_host, sizeof(parent_host));
	make_dir("ro");
	make_dir("ptmp");
	make_dir("pslave");
	make_dir("dbind");
	make_dir("utmp");
	make_dir("shared");
	make_dir("priv");
	make_dir("shared/probe");
	make_dir("shared/late");
	make_dir("priv/probe");
	make_dir("priv/late");
	path(p, sizeof(p), "ro/file");
	path(q, sizeof(q), "secret");
	if (zoo_write_file(p, "ro\n", 3) || zoo_write_file(q, SECRET_TEXT, strlen(SECRET_TEXT)))
		zoo_die("cannot write the files");
	path(p, sizeof(p), "empty");
	if (zoo_write_file(p, "", 0))
		zoo_die("cannot write %s", p);
	if (own_ns) {
		path(p, sizeof(p), "shared");
		path(q, sizeof(q), "priv");
		if (mount(p, p, NULL, MS_BIND, NULL) || mount(NULL, p, NULL, MS_SHARED, NULL) ||
		    mount(q, q, NULL, MS_BIND, NULL) || mount(NULL, q, NULL, MS_PRIVATE, NULL))
			zoo_die("cannot make the shared and private binds: %s", strerror(errno));
	}
	if (pipe(ready) || pipe(go))
		zoo_die("pipe");
	if ((child = fork()) == 0) {
		char c = 0;
		close(ready[0]);
		close(go[1]);
		child_setup();
		pid_t gc = fork();
		if (gc == 0)
			run_grandchild();
		if (gc < 0 || write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(255);
		if (own_ns) { /* the parent's probes are mounted now */
			path(p, sizeof(p), "shared/probe");
			probe_shared = is_mountpoint(p);
			path(p, sizeof(p), "priv/probe");
			probe_priv = is_mountpoint(p);
		}
		if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(255);
		mount_summary(table_before, sizeof(table_before));
		close(ready[1]);
		close(go[0]);
		child_wait();
		_exit(child_checks(gc));
	}
	char c = 0;
	close(ready[1]);
	close(go[0]);
	if (child < 0 || read(ready[0], &c, 1) != 1)
		zoo_die("the child did not set up its namespaces");
	if (own_ns && (probe_mount("shared/probe", 1) || probe_mount("priv/probe", 1)))
		zoo_die("cannot mount the probes: %s", strerror(errno));
	if (write(go[1], &c, 1) != 1 || read(ready[0], &c, 1) != 1)
		zoo_die("the child did not look at the probes");
	if (own_ns && (probe_mount("shared/probe", 0) || probe_mount("priv/probe", 0)))
		zoo_die("cannot unmount the probes: %s", strerror(errno));
	if (write(go[1], &c, 1) != 1)
		zoo_die("the child is gone");
	close(ready[0]);
	close(go[1]);
	pid_t sibling = -1;
	if (argc > 1 && !strcmp(argv[argc - 1], "--setns-sibling")) {
		snprintf(p, sizeof(p), "/proc/%d/ns/mnt", zoo_proc_pid(child));
		int nsfd = open(p, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0 || (sibling = fork()) < 0)
			zoo_die("cannot open %s or fork", p);
		if (sibling == 0) {
			if (setns(nsfd, CLONE_NEWNS))
				_exit(1);
			child_wait();
			_exit(0);
		}
		close(nsfd);
	}
	mount_summary(parent_table_before, sizeof(parent_table_before));
	zoo_sleep_ms(100); /* (the child has read its table) */
	zoo_ready();
	zoo_wait();

	if (sibling > 0) {
		kill(sibling, SIGTERM);
		waitpid(sibling, NULL, 0);
	}
	char host[65] = "", now[8192];
	gethostname(host, sizeof(host));
	CHECK("parent", !strcmp(host, parent_host), "the parent's host name is %s, was %s", host,
	      parent_host);
	mount_summary(now, sizeof(now));
	CHECK("parent", !strcmp(now, parent_table_before), "the parent's mounts changed:\n%s\nwere:\n%s",
	      now, parent_table_before);
	path(p, sizeof(p), "secret");
	CHECK("parent", zoo_file_is(p, SECRET_TEXT), "the parent's %s is not its own file", p);
	path(p, sizeof(p), "ptmp");
	CHECK("parent", !is_mountpoint(p), "the child's tmpfs %s is in the parent's namespace", p);
	if (own_ns && (probe_mount("shared/late", 1) || probe_mount("priv/late", 1)))
		zoo_failf("parent", "cannot mount the late tmpfs mounts: %s", strerror(errno));
	int st;
	int bits = zoo_child_bits(child, &st);
	if (own_ns) {
		probe_mount("shared/late", 0);
		probe_mount("priv/late", 0);
	}
	CHECK("child", bits != 255, "the child was killed or failed (status %#x)", st);
	if (bits != 255) {
		CHECK("hostname", !(bits & B_HOST), "the child's host name is not %s", CHILD_HOST);
		CHECK("ro", !(bits & B_RO), "the child's bind of W/ro is not read-only");
		CHECK("tmpfs", !(bits & B_TMPFS), "the child's tmpfs on W/ptmp or W/utmp or their files differ");
		CHECK("bound-file", !(bits & B_BOUND), "W/secret is not the empty file in the child, or "
		      "W/dbind not a mount of the removed empty directory of mode 1750");
		CHECK("unmounted", !(bits & B_UNMOUNTED), "/dev/mqueue is mounted again in the child");
		CHECK("mountinfo", !(bits & B_TABLE), "the child's mount table below W differs");
		CHECK("propagation", !(bits & B_PROPAGATION),
		      "a mount of the parent reaches the child otherwise than before (shared %d priv %d "
		      "before), or one on the child's W/ptmp does not reach its slave W/pslave",
		      probe_shared, probe_priv);
		CHECK("grandchild", !(bits & B_GRANDCHILD), "the grandchild's namespaces differ");
	}
	return zoo_finish(own_ns ? "own mount namespace" : "host's mount namespace");
}
