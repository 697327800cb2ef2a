/*
 * fds-spread: a program that opened files up to its fd limit and closed some of them, as
 * stress-ng's `open` does: no wide run of free numbers is left anywhere, so stasis's own fds
 * during the restore must go into a narrow gap below thousands of the program's.
 *   With H the hard limit (soft raised to it): fds 1000, 1002, ... up to H-2, and H-1, each its
 *   own open of one file (its offset the fd's number), and fd 3 (offset 3). The widest gap
 *   is 4..999, with about 9,500 fds above it.
 * After restore and SIGTERM: the generic fdset check (no other fd is open), each fd is the
 * file at its own offset (each its own open file: moving one moves no other).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/resource.h>

static int top; /* the hard limit */

static void c_offset(ucontext_t *u) { (void)u; lseek(top - 2, 1, SEEK_CUR); }
static void c_shared(ucontext_t *u) { (void)u; dup2(1000, 1002); }
static const struct zoo_corruption corruptions[] = {
	{ "offset", c_offset, 0 },
	{ "shared", c_shared, 0 },
};

static int want(int fd) { return fd == 3 || fd == top - 1 || (fd >= 1000 && fd < top - 1 && fd % 2 == 0); }

int main(int argc, char **argv)
{
	struct rlimit r;
	char path[700];
	struct stat st, s;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (getrlimit(RLIMIT_NOFILE, &r) || r.rlim_max < 2048 || r.rlim_max > (1 << 16))
		zoo_die("RLIMIT_NOFILE hard limit %llu: not usable here", (unsigned long long)r.rlim_max);
	top = (int)r.rlim_max;
	r.rlim_cur = r.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &r))
		zoo_die("setrlimit: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/fds-spread", zoo_tmpdir());
	if (zoo_write_file(path, "x", 1) < 0 || stat(path, &st))
		zoo_die("write %s: %s", path, strerror(errno));
	int n = 0;
	for (int fd = 3; fd < top; fd++) {
		if (!want(fd))
			continue;
		int f = open(path, O_RDONLY);
		if (f < 0 || (f != fd && (dup2(f, fd) != fd || close(f))))
			zoo_die("open %s as fd %d: %s", path, fd, strerror(errno));
		if (lseek(fd, fd, SEEK_SET) != fd)
			zoo_die("lseek fd %d: %s", fd, strerror(errno));
		n++;
	}

	zoo_ready();
	zoo_wait();

	int bad = 0, first = -1;
	for (int fd = 3; fd < top; fd++) {
		if (!want(fd))
			continue;
		if (fstat(fd, &s) || s.st_ino != st.st_ino || s.st_dev != st.st_dev ||
		    lseek(fd, 0, SEEK_CUR) != fd) {
			bad++;
			first = first < 0 ? fd : first;
		}
	}
	CHECK("offset", !bad, "%d of %d fds are not the file at their own offset (first: fd %d)", bad, n, first);
	CHECK("shared", lseek(1000, 7, SEEK_SET) == 7 && lseek(1002, 0, SEEK_CUR) == 1002,
	      "fds 1000 and 1002 share one offset");
	char info[64];
	snprintf(info, sizeof(info), "%d fds up to %d", n, top - 1);
	return zoo_finish(info);
}
