/*
 * proc-dead: files of /proc of processes that exited and were reaped while they were open.
 *   A, B: children, killed and reaped once the files below are open.
 *   fd 30: /proc/A/status, 16 bytes read; fd 31: the /proc/A directory; fd 32: /proc/A/task
 *   with O_PATH; fd 33: /proc/B/stat, which its child K (forked after it was opened) shares;
 *   fd 34: /proc/A/stat, never read; its cwd: /proc/A ("/proc/A (deleted)"); K's cwd: /proc/B.
 * After restore and SIGTERM: each fd and cwd names what it named before (readlink), fd 30 is at
 * offset 16, fd 32 is O_PATH, fd 31 is a directory of mode 0555 (fstat), fd 33 is K's open
 * file (kcmp); every call fails as it failed before the dump: read(34), getdents(31),
 * openat(31, "status"), openat(32, "1"), read(33), getcwd(), open("status") in the cwd; and
 * reading fd 30 on ends at the end of the file (the kernel kept the rest of its one record
 * when the 16 bytes were read; that rest is not compared: after a restore it is the rest of
 * the status of the process that had the pid for a moment, not of A).
 * Pids as /proc names them (zoo_proc_pid): /proc may be of another PID namespace than the
 * program's (tests/run-zoo.sh --container=pidns).
 * Blocks in: nanosleep (zoo_wait loop; K's sleep loop).
 */
#include "zoo.h"
#include <linux/kcmp.h>
#include <sys/prctl.h>
#include <sys/wait.h>

enum { N_LINKS = 7, N_CALLS = 7 };
static const char *const link_names[N_LINKS] = { "fd 30", "fd 31", "fd 32", "fd 33", "fd 34", "cwd",
						 "K's cwd" };
static const char *const call_names[N_CALLS] = { "read(34)", "getdents(31)", "openat(31, status)",
						 "openat(32, 1)", "read(33)", "getcwd()",
						 "open(status) in its cwd" };
static char links_before[N_LINKS][128], links_after[N_LINKS][128];
static int errs_before[N_CALLS], errs_after[N_CALLS];
static pid_t k;

static void to(int fd, int got)
{
	if (got < 0 || (got != fd && (dup2(got, fd) != fd || close(got))))
		zoo_die("fd %d: %s", fd, strerror(errno));
}

static void c_status(ucontext_t *u) { (void)u; to(30, open("/proc/self/status", O_RDONLY)); }
static void c_offset(ucontext_t *u) { (void)u; lseek(30, 0, SEEK_SET); }
static void c_unread(ucontext_t *u) { (void)u; to(34, open("/proc/self/stat", O_RDONLY)); }
static void c_dir(ucontext_t *u) { (void)u; to(31, open("/proc/self", O_RDONLY | O_DIRECTORY)); }
static void c_opath(ucontext_t *u) { (void)u; to(32, open("/proc/self/task", O_RDONLY | O_DIRECTORY)); }
static void c_shared(ucontext_t *u) { (void)u; to(33, open("/proc/self/stat", O_RDONLY)); }
static void c_cwd(ucontext_t *u) { (void)u; if (chdir("/")) { /* seen by the check */ } }
static void c_child_cwd(ucontext_t *u) { (void)u; kill(k, SIGUSR1); zoo_sleep_ms(200); }
static const struct zoo_corruption corruptions[] = {
	{ "status", c_status, 0 },   { "offset", c_offset, 0 }, { "dir", c_dir, 0 },
	{ "opath", c_opath, 0 },     { "shared", c_shared, 0 }, { "cwd", c_cwd, 0 },
	{ "child-cwd", c_child_cwd, 0 }, { "unread", c_unread, 0 },
};

static void k_leave(int sig) { (void)sig; if (chdir("/")) { /* seen by the check */ } }

static void fd_link(int fd, char *out, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, out, len - 1);
	out[n > 0 ? n : 0] = 0;
}

static void read_links(char links[N_LINKS][128])
{
	char path[64];
	for (int i = 0; i < 5; i++)
		fd_link(30 + i, links[i], sizeof(links[i]));
	ssize_t n = readlink("/proc/self/cwd", links[5], sizeof(links[5]) - 1);
	links[5][n > 0 ? n : 0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/cwd", zoo_proc_pid(k));
	n = readlink(path, links[6], sizeof(links[6]) - 1);
	links[6][n > 0 ? n : 0] = 0;
}

/* The errno of each call on the dead process's files (0: it worked). */
static void try_calls(int errs[N_CALLS])
{
	char buf[4096];
	int fd;

	errno = 0;
	errs[0] = read(34, buf, sizeof(buf)) < 0 ? errno : 0;
	errs[1] = syscall(SYS_getdents64, 31, buf, sizeof(buf)) < 0 ? errno : 0;
	errs[2] = (fd = openat(31, "status", O_RDONLY)) < 0 ? errno : (close(fd), 0);
	errs[3] = (fd = openat(32, "1", O_RDONLY)) < 0 ? errno : (close(fd), 0);
	errs[4] = read(33, buf, sizeof(buf)) < 0 ? errno : 0;
	errs[5] = getcwd(buf, sizeof(buf)) ? 0 : errno;
	errs[6] = (fd = open("status", O_RDONLY)) < 0 ? errno : (close(fd), 0);
}

int main(int argc, char **argv)
{
	char path[64], buf[16];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	pid_t a = zoo_waiting_child(), b = zoo_waiting_child();
	pid_t pa = zoo_proc_pid(a), pb = zoo_proc_pid(b);
	if (pa < 0 || pb < 0)
		zoo_die("pids of the children in /proc: %s", strerror(errno));
	snprintf(path, sizeof(path), "/proc/%d/status", pa);
	to(30, open(path, O_RDONLY));
	if (read(30, buf, sizeof(buf)) != sizeof(buf))
		zoo_die("read %s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "/proc/%d", pa);
	to(31, open(path, O_RDONLY | O_DIRECTORY));
	snprintf(path, sizeof(path), "/proc/%d/task", pa);
	to(32, open(path, O_PATH | O_DIRECTORY));
	snprintf(path, sizeof(path), "/proc/%d/stat", pb);
	to(33, open(path, O_RDONLY));
	snprintf(path, sizeof(path), "/proc/%d/stat", pa);
	to(34, open(path, O_RDONLY));

	int ready[2];
	if (pipe(ready))
		zoo_die("pipe: %s", strerror(errno));
	k = fork();
	if (k == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGUSR1, k_leave);
		snprintf(path, sizeof(path), "/proc/%d", pb);
		if (chdir(path) || write(ready[1], "y", 1) != 1)
			_exit(1);
		close(ready[0]);
		close(ready[1]);
		for (;;)
			zoo_sleep_ms(100);
	}
	close(ready[1]);
	if (k < 0 || read(ready[0], buf, 1) != 1)
		zoo_die("child K: %s", strerror(errno));
	close(ready[0]);
	snprintf(path, sizeof(path), "/proc/%d", pa);
	if (chdir(path))
		zoo_die("chdir %s: %s", path, strerror(errno));
	kill(a, SIGKILL);
	kill(b, SIGKILL);
	if (waitpid(a, NULL, 0) != a || waitpid(b, NULL, 0) != b)
		zoo_die("waitpid: %s", strerror(errno));
	read_links(links_before);
	try_calls(errs_before);
	for (int i = 0; i < N_CALLS; i++)
		if (!errs_before[i])
			zoo_die("%s on files of a reaped process worked", call_names[i]);

	zoo_ready();
	zoo_wait();

	read_links(links_after);
	try_calls(errs_after);
	static const char *const tags[N_LINKS] = { "status", "dir", "opath", "shared", "unread", "cwd",
						   "child-cwd" };
	for (int i = 0; i < N_LINKS; i++)
		CHECK(tags[i], !strcmp(links_before[i], links_after[i]), "%s is %s, was %s", link_names[i],
		      links_after[i], links_before[i]);
	static const char *const call_tags[N_CALLS] = { "unread", "dir", "dir", "opath", "shared", "cwd", "cwd" };
	for (int i = 0; i < N_CALLS; i++)
		CHECK(call_tags[i], errs_before[i] == errs_after[i], "%s: %s, was %s", call_names[i],
		      errs_after[i] ? strerror(errs_after[i]) : "it worked", strerror(errs_before[i]));
	CHECK("offset", lseek(30, 0, SEEK_CUR) == (off_t)sizeof(buf), "fd 30 at offset %lld, not %zu",
	      (long long)lseek(30, 0, SEEK_CUR), sizeof(buf));
	char rest[4096];
	ssize_t got;
	for (int i = 0; i < 64 && (got = read(30, rest, sizeof(rest))) > 0; i++)
		;
	CHECK("status", got == 0, "reading fd 30 on ended with %s, not the end of the file",
	      got < 0 ? strerror(errno) : "data");
	CHECK("opath", (fcntl(32, F_GETFL) & O_PATH) == O_PATH, "fd 32 flags %#o: not O_PATH", fcntl(32, F_GETFL));
	struct stat st;
	CHECK("dir", !fstat(31, &st) && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0555,
	      "fstat(31): %s, mode %o", strerror(errno), st.st_mode);
	pid_t me = getpid();
	CHECK("shared", syscall(SYS_kcmp, me, k, KCMP_FILE, 33, 33) == 0,
	      "fd 33 is not the open file of K's fd 33");
	kill(k, SIGKILL);
	waitpid(k, NULL, 0);
	return zoo_finish("5 fds and 2 cwds in /proc of 2 reaped processes");
}
