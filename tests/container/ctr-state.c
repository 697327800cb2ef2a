/*
 * ctr-state: a zoo program (tests/zoo/zoo.h protocol) that runs as the init of a container
 * made by ctr-run --netns --timens --seccomp --hostname NAME (tests/run-zoo.sh --container)
 * and checks, from the inside, that its container survives a checkpoint:
 *   seccomp   Seccomp: 2, the same number of filters, NoNewPrivs: 1; keyctl and
 *             socket(AF_VSOCK) fail with EPERM, clone3 with ENOSYS (the profile's answers),
 *             getppid still works
 *   timens    /proc/self/timens_offsets (monotonic 2 days, boottime 3 days ahead) less at most
 *             the host's time that passed (criu's rule: the clocks go on from where they stood
 *             when the tree was frozen, its time in the images does not count);
 *             CLOCK_MONOTONIC and CLOCK_BOOTTIME did not go back
 *   hostname  the same node name
 *   mounts    its /proc/self/mountinfo has the same mounts: mount point, root, fs type, mount
 *             and super options, propagation (without ids, device numbers, peer group numbers)
 *   tmpfs     /tmp/ctr (see ctr-run.c make_tmp) the same: type, mode, owner, link count,
 *             device number, size, content, symlink target, the xattr user.stasis
 *   files     fd 30 (/tmp/ctr/big, a tmpfs file) at offset 1000, fd 31 (its own binary, on a
 *             read-only bind mount) at offset 64, fd 32 (a file on /dev/shm) read back; its
 *             cwd is the same (a bind mount)
 *   netns     loopback is up
 *   sockets   in its own /tmp (a tmpfs: no such path on the host), under a directory whose path
 *             is near sun_path's length: fd 33 listens on SOCK_PATH, whose file is there and
 *             accepts a connection; fd 34, a datagram socket bound to GONE_PATH, whose file was
 *             removed, still has that name, gives back the datagram that waited in it, and its
 *             file stays removed
 *   cgroup    /proc/self/cgroup unchanged (every path "/": its cgroup namespace's root)
 * Corruptions change the real state: stack one more seccomp filter, enter a time namespace
 * without offsets, sethostname, mount a tmpfs, chmod a file, move fd 30's offset, take the
 * loopback down, join a child cgroup, remove the listener's socket file.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/xattr.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* 101 bytes: a stasis that bound them through the container's root on the host would need more */
#define SOCK_DIR "/tmp/ctr-sockets/a-directory-whose-path-is-close-to-the-limit-of-sun-path-xxxxxxxxxxxxxxxxxxxx"
#define SOCK_PATH SOCK_DIR "/listen"
#define GONE_PATH SOCK_DIR "/gone.s"

#define SNAP 32768
struct snap {
	char status[256], offsets[256], hostname[128], mounts[SNAP], tmpfs[SNAP], cgroup[2048],
		cwd[512];
	uint64_t mono, boot;
};
static struct snap before, after;
static char buf[SNAP];

/* "Seccomp: N", "Seccomp_filters: N" and "NoNewPrivs: N" of /proc/self/status */
static void read_status(char *out, size_t size)
{
	static const char *const keys[] = { "NoNewPrivs:", "Seccomp:", "Seccomp_filters:" };
	size_t len = 0;
	out[0] = 0;
	if (zoo_read_file("/proc/self/status", buf, sizeof(buf)) < 0)
		return;
	for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
		for (unsigned i = 0; i < 3; i++)
			if (!strncmp(l, keys[i], strlen(keys[i])) && len + strlen(l) + 2 < size)
				len += (size_t)snprintf(out + len, size - len, "%s ", l);
}

static int cmp_lines(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/*
 * mountinfo without mount ids, device numbers and peer group numbers, sorted:
 * "MOUNTPOINT ROOT FSTYPE SOURCE OPTS SUPER-OPTS PROPAGATION"
 */
static void read_mounts(char *out, size_t size)
{
	static char *lines[512];
	static char norm[512][1200];
	int n = 0;
	size_t len = 0;
	out[0] = 0;
	if (zoo_read_file("/proc/self/mountinfo", buf, sizeof(buf)) < 0)
		return;
	for (char *l = strtok(buf, "\n"); l && n < 512; l = strtok(NULL, "\n")) {
		char root[200], mnt[200], opts[200], prop[128] = "", type[32], src[200], sopts[200];
		char *dash = strstr(l, " - ");
		if (!dash || sscanf(l, "%*s %*s %*s %199s %199s %199s", root, mnt, opts) != 3 ||
		    sscanf(dash + 3, "%31s %199s %199s", type, src, sopts) != 3)
			continue;
		/* optional fields between the options and " - ": shared:N, master:N... */
		int pos = 0;
		sscanf(l, "%*s %*s %*s %*s %*s %*s %n", &pos);
		for (char *f = l + pos; f < dash;) {
			char word[64];
			int used = 0;
			if (sscanf(f, "%63s%n", word, &used) != 1)
				break;
			char *colon = strchr(word, ':');
			if (colon)
				*colon = 0;
			snprintf(prop + strlen(prop), sizeof(prop) - strlen(prop), "%s%s", *prop ? "," : "", word);
			f += used;
			while (*f == ' ')
				f++;
		}
		snprintf(norm[n], sizeof(norm[n]), "%s %s %s %s %s %s %s", mnt, root, type, src, opts, sopts,
			 *prop ? prop : "private");
		lines[n] = norm[n];
		n++;
	}
	qsort(lines, (size_t)n, sizeof(lines[0]), cmp_lines);
	for (int i = 0; i < n && len + strlen(lines[i]) + 2 < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s\n", lines[i]);
}

/* /tmp/ctr: one line per entry */
static void read_tmpfs(char *out, size_t size)
{
	static const char *const names[] = { "file", "hardlink", "dir", "dir/inner", "link",
					     "xattr", "fifo", "null", "big" };
	size_t len = 0;
	out[0] = 0;
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[64], extra[128] = "", x[16] = "";
		struct stat st;
		snprintf(path, sizeof(path), "/tmp/ctr/%s", names[i]);
		if (lstat(path, &st) < 0) {
			len += (size_t)snprintf(out + len, size - len, "%s: %s\n", names[i], strerror(errno));
			continue;
		}
		if (S_ISREG(st.st_mode)) {
			uint64_t h = 1469598103934665603ull;
			ssize_t n = zoo_read_file(path, buf, sizeof(buf));
			for (ssize_t k = 0; k < n; k++)
				h = (h ^ (unsigned char)buf[k]) * 1099511628211ull;
			snprintf(extra, sizeof(extra), "read %zd fnv %016llx", n, (unsigned long long)h);
		} else if (S_ISLNK(st.st_mode)) {
			ssize_t n = readlink(path, extra, sizeof(extra) - 1);
			extra[n > 0 ? n : 0] = 0;
		}
		ssize_t xl = lgetxattr(path, "user.stasis", x, sizeof(x) - 1);
		x[xl > 0 ? xl : 0] = 0;
		len += (size_t)snprintf(out + len, size - len,
					"%s mode %o uid %u gid %u nlink %lu rdev %u:%u size %lld %s xattr '%s'\n",
					names[i], st.st_mode, st.st_uid, st.st_gid, (unsigned long)st.st_nlink,
					major(st.st_rdev), minor(st.st_rdev), (long long)st.st_size, extra, x);
		if (len >= size)
			len = size - 1;
	}
}

static int lo_up(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), up;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	up = s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP);
	if (s >= 0)
		close(s);
	return up;
}

static void snapshot(struct snap *s)
{
	struct utsname u;
	read_status(s->status, sizeof(s->status));
	zoo_read_file("/proc/self/timens_offsets", s->offsets, sizeof(s->offsets));
	uname(&u);
	snprintf(s->hostname, sizeof(s->hostname), "%s", u.nodename);
	read_mounts(s->mounts, sizeof(s->mounts));
	read_tmpfs(s->tmpfs, sizeof(s->tmpfs));
	zoo_read_file("/proc/self/cgroup", s->cgroup, sizeof(s->cgroup));
	if (!getcwd(s->cwd, sizeof(s->cwd)))
		snprintf(s->cwd, sizeof(s->cwd), "getcwd: %s", strerror(errno));
	s->mono = zoo_now_ns(CLOCK_MONOTONIC);
	s->boot = zoo_now_ns(CLOCK_BOOTTIME);
}

/* The offset of clock ("monotonic", "boottime") in timens_offsets text, in ns (0: none). */
static int64_t offset_of(const char *offsets, const char *clock)
{
	const char *l = strstr(offsets, clock);
	long long sec = 0, nsec = 0;
	if (l)
		sscanf(l + strlen(clock), "%lld %lld", &sec, &nsec);
	return sec * 1000000000LL + nsec;
}

/*
 * The offset of clock shrank by at least 0 and at most the host's time that passed between
 * the snapshots (the clock less its offset).
 */
static void check_offset(const char *clock, int64_t now_before, int64_t now_after)
{
	int64_t off_before = offset_of(before.offsets, clock), off_after = offset_of(after.offsets, clock);
	int64_t host_passed = (now_after - off_after) - (now_before - off_before);
	CHECK("timens", off_after <= off_before && off_before - off_after <= host_passed,
	      "the %s offset was %.3f s, is %.3f s, with %.3f s passed on the host", clock,
	      off_before / 1e9, off_after / 1e9, host_passed / 1e9);
}

/* The first line where a and b differ, for the message */
static void first_diff(const char *a, const char *b, char *out, size_t size)
{
	size_t i = 0;
	while (a[i] && a[i] == b[i])
		i++;
	while (i > 0 && a[i - 1] != '\n') /* back to the start of the line */
		i--;
	a += i, b += i;
	snprintf(out, size, "was '%.*s', is '%.*s'", (int)strcspn(a, "\n"), a, (int)strcspn(b, "\n"), b);
}

/* ---- corruptions ---------------------------------------------------------------------- */

static void c_seccomp(ucontext_t *u)
{
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { 1, &allow };
	(void)u;
	prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}
/* a new time namespace (it starts with our offsets) set to the host's clocks, entered */
static void c_timens(ucontext_t *u)
{
	(void)u;
	if (unshare(CLONE_NEWTIME) == 0) {
		int fd = open("/proc/self/timens_offsets", O_WRONLY);
		if (fd >= 0 && write(fd, "monotonic 0 0\nboottime 0 0\n", 28) < 0)
			zoo_failf("corrupt", "timens_offsets: %s", strerror(errno));
		close(fd);
		fd = open("/proc/self/ns/time_for_children", O_RDONLY);
		setns(fd, CLONE_NEWTIME);
		close(fd);
	}
}
static void c_hostname(ucontext_t *u) { (void)u; sethostname("corrupted", 9); }
static void c_mounts(ucontext_t *u)
{
	(void)u;
	mkdir("/tmp/corrupt", 0755);
	mount("tmpfs", "/tmp/corrupt", "tmpfs", 0, "size=4k");
}
static void c_tmpfs(ucontext_t *u) { (void)u; chmod("/tmp/ctr/file", 0600); }
static void c_files(ucontext_t *u) { (void)u; lseek(30, 0, SEEK_SET); }
static void c_netns(ucontext_t *u)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	(void)u;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags &= ~IFF_UP;
		ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	if (s >= 0)
		close(s);
}
/* a child cgroup of its own, in a hierarchy mounted inside the container */
static void c_cgroup(ucontext_t *u)
{
	(void)u;
	mkdir("/tmp/cg", 0755);
	if (mount("none", "/tmp/cg", "cgroup2", 0, NULL) < 0 && mount("none", "/tmp/cg", "cgroup", 0, "pids") < 0)
		return;
	mkdir("/tmp/cg/corrupt", 0755);
	int fd = open("/tmp/cg/corrupt/cgroup.procs", O_WRONLY);
	if (fd >= 0 && write(fd, "0\n", 2) < 0)
		close(fd);
	else if (fd >= 0)
		close(fd);
	umount2("/tmp/cg", MNT_DETACH);
}

static void c_sockets(ucontext_t *u) { (void)u; unlink(SOCK_PATH); }

static const struct zoo_corruption corruptions[] = {
	{ "seccomp", c_seccomp, 0 }, { "timens", c_timens, 0 }, { "hostname", c_hostname, 0 },
	{ "mounts", c_mounts, 0 },   { "tmpfs", c_tmpfs, 0 },   { "files", c_files, 0 },
	{ "netns", c_netns, 0 },     { "cgroup", c_cgroup, 0 }, { "sockets", c_sockets, 0 },
};

/* ---- the program ---------------------------------------------------------------------- */

static void put_fd(int fd, int at)
{
	if (fd < 0 || dup2(fd, at) != at)
		zoo_die("fd %d: %s", at, strerror(errno));
	close(fd);
}

static struct sockaddr_un sock_addr(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	return sa;
}

/* fd 33 listening on SOCK_PATH; fd 34 bound to GONE_PATH, its file removed, a datagram in it */
static void make_sockets(void)
{
	struct sockaddr_un listen_sa = sock_addr(SOCK_PATH), gone_sa = sock_addr(GONE_PATH);
	int tx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (strlen(SOCK_PATH) + 1 > sizeof(listen_sa.sun_path) || mkdir("/tmp/ctr-sockets", 0755) ||
	    mkdir(SOCK_DIR, 0755))
		zoo_die("%s: %s", SOCK_DIR, strerror(errno));
	put_fd(socket(AF_UNIX, SOCK_STREAM, 0), 33);
	put_fd(socket(AF_UNIX, SOCK_DGRAM, 0), 34);
	if (bind(33, (struct sockaddr *)&listen_sa, sizeof(listen_sa)) || listen(33, 4) ||
	    bind(34, (struct sockaddr *)&gone_sa, sizeof(gone_sa)) ||
	    sendto(tx, "waits", 5, 0, (struct sockaddr *)&gone_sa, sizeof(gone_sa)) != 5 || unlink(GONE_PATH))
		zoo_die("sockets in %s: %s", SOCK_DIR, strerror(errno));
	close(tx);
}

/* Its name read back (getsockname) is path. */
static int named(int fd, const char *path)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	return !getsockname(fd, (struct sockaddr *)&sa, &len) && len > sizeof(sa_family_t) &&
	       !strcmp(sa.sun_path, path);
}

static void check_sockets(void)
{
	struct sockaddr_un listen_sa = sock_addr(SOCK_PATH);
	struct stat st;
	char b[8] = "";
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), a = -1;
	CHECK("sockets", named(33, SOCK_PATH) && named(34, GONE_PATH), "fd 33 or 34 lost its name");
	CHECK("sockets", stat(SOCK_PATH, &st) == 0 && S_ISSOCK(st.st_mode), "%s: %s", SOCK_PATH,
	      strerror(errno));
	CHECK("sockets", c >= 0 && connect(c, (struct sockaddr *)&listen_sa, sizeof(listen_sa)) == 0 &&
				 (a = accept4(33, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0,
	      "no connection through %s: %s", SOCK_PATH, strerror(errno));
	ssize_t n = recv(34, b, sizeof(b), MSG_DONTWAIT);
	CHECK("sockets", n == 5 && !memcmp(b, "waits", 5), "fd 34 gave %zd bytes '%.*s'", n, n > 0 ? (int)n : 0, b);
	CHECK("sockets", stat(GONE_PATH, &st) && errno == ENOENT, "%s, removed, exists again", GONE_PATH);
	if (a >= 0)
		close(a);
	if (c >= 0)
		close(c);
}

int main(int argc, char **argv)
{
	char d[600];
	zoo_init(argc, argv, corruptions, (int)(sizeof(corruptions) / sizeof(corruptions[0])));
	if (getpid() != 1)
		zoo_die("not pid 1 of a PID namespace: run it as the init of ctr-run");
	snapshot(&before);
	if (!strstr(before.status, "Seccomp:\t2") || !strstr(before.offsets, "monotonic") ||
	    strstr(before.offsets, "monotonic 0 ") || !lo_up() || access("/tmp/ctr/file", F_OK))
		zoo_die("run under ctr-run --seccomp --timens --netns (status '%s', timens_offsets '%s')",
			before.status, before.offsets);

	put_fd(open("/tmp/ctr/big", O_RDONLY), 30);
	if (lseek(30, 1000, SEEK_SET) != 1000)
		zoo_die("lseek: %s", strerror(errno));
	put_fd(open("/proc/self/exe", O_RDONLY), 31);
	lseek(31, 64, SEEK_SET);
	put_fd(open("/dev/shm/ctr-state", O_RDWR | O_CREAT | O_TRUNC, 0600), 32);
	if (write(32, "in /dev/shm\n", 12) != 12)
		zoo_die("write /dev/shm/ctr-state: %s", strerror(errno));
	make_sockets();

	zoo_ready();
	zoo_wait();

	snapshot(&after);
	CHECK("seccomp", !strcmp(before.status, after.status), "status was '%s', is '%s'", before.status,
	      after.status);
	errno = 0;
	long r = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0);
	CHECK("seccomp", r < 0 && errno == EPERM, "keyctl returned %ld (%s), not EPERM", r, strerror(errno));
	errno = 0;
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	CHECK("seccomp", s < 0 && errno == EPERM, "socket(AF_VSOCK) returned %d (%s), not EPERM", s,
	      strerror(errno));
	errno = 0;
	r = syscall(SYS_clone3, NULL, 0);
	CHECK("seccomp", r < 0 && errno == ENOSYS, "clone3 returned %ld (%s), not ENOSYS", r, strerror(errno));
	CHECK("seccomp", getppid() == 0, "getppid() = %d", getppid());

	check_offset("monotonic", (int64_t)before.mono, (int64_t)after.mono);
	check_offset("boottime", (int64_t)before.boot, (int64_t)after.boot);
	CHECK("timens", after.mono >= before.mono && after.boot >= before.boot,
	      "clocks went back: monotonic %.3f s -> %.3f s, boottime %.3f s -> %.3f s", before.mono / 1e9,
	      after.mono / 1e9, before.boot / 1e9, after.boot / 1e9);

	CHECK("hostname", !strcmp(before.hostname, after.hostname), "was '%s', is '%s'", before.hostname,
	      after.hostname);
	if (strcmp(before.mounts, after.mounts)) {
		first_diff(before.mounts, after.mounts, d, sizeof(d));
		zoo_failf("mounts", "/proc/self/mountinfo differs: %s", d);
	}
	if (strcmp(before.tmpfs, after.tmpfs)) {
		first_diff(before.tmpfs, after.tmpfs, d, sizeof(d));
		zoo_failf("tmpfs", "/tmp/ctr differs: %s", d);
	}

	off_t off = lseek(30, 0, SEEK_CUR);
	unsigned char c;
	CHECK("files", off == 1000 && pread(30, &c, 1, 1000) == 1 &&
			       c == (unsigned char)(1000u * 2654435761u >> 13),
	      "fd 30 (/tmp/ctr/big) at offset %lld, or its byte 1000 changed", (long long)off);
	CHECK("files", lseek(31, 0, SEEK_CUR) == 64 && pread(31, d, 4, 0) == 4 && !memcmp(d, "\177ELF", 4),
	      "fd 31 (its binary) is not at offset 64 or does not read ELF");
	CHECK("files", pread(32, d, 12, 0) == 12 && !memcmp(d, "in /dev/shm\n", 12),
	      "fd 32 (/dev/shm/ctr-state) does not read back");
	CHECK("files", !strcmp(before.cwd, after.cwd), "cwd was '%s', is '%s'", before.cwd, after.cwd);
	CHECK("netns", lo_up(), "loopback is down");
	check_sockets();
	CHECK("cgroup", !strcmp(before.cgroup, after.cgroup), "/proc/self/cgroup was '%s', is '%s'",
	      before.cgroup, after.cgroup);
	unlink("/dev/shm/ctr-state");
	return zoo_finish("");
}
