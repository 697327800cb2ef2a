/*
 * thread-own-tables: threads with an fd table or a cwd and umask of their own.
 *   T1: unshare(CLONE_FILES): its table, a copy of the program's, then diverges: it closes
 *   fd 41 (the program keeps it), puts the program's pipe end fd 40 at fd 93 too, close-on-exec
 *   (one open file, one offset); the program then opens fd 94 in its own table only.
 *   T2: unshare(CLONE_FS): chdir to a directory of its own, umask 027 (the program's: 022).
 *   T3: made by a raw clone(CLONE_THREAD | CLONE_VM | CLONE_SIGHAND), without CLONE_FILES and
 *   CLONE_FS: a table and a filesystem context of its own, copies (made before fd 94).
 * After SIGTERM (the program asks each thread to act, through memory):
 *   own-fds: T1's table holds 93 (the program's fd 40's open file: bytes written to fd 41 are
 *   read from T1's 93), not 41 nor 94; the program's holds 40, 41, 94, not 93;
 *   cloexec: T1's fd 93 is close-on-exec, the program's fd 40 is not;
 *   separate: T1 opens fd 95: the program's table does not show it; the program opens 96:
 *   T1's does not;
 *   own-cwd: T2's cwd (/proc/self/task/T2/cwd) is its directory, its umask 027; the
 *   program's cwd and umask are as they were;
 *   separate-fs: T2 changes to "/": the program's cwd stays;
 *   copy: T3's table holds 40 and 41, not 94; kcmp says T3's fd table and filesystem context
 *   are not the program's.
 * Corruptions: own-fds: T1 closes its fd 93 first; cloexec: T1 clears 93's close-on-exec;
 * separate: the program opens fd 95 itself; own-cwd: T2 changes to "/" first; separate-fs: the
 * program changes to T2's directory; copy: T3 closes its fd 40 first.
 * Blocks in: nanosleep (zoo_wait loop and the threads' loops).
 */
#include "zoo.h"
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <linux/kcmp.h>

enum { NONE, CLOSE93, CLEAR_CLOEXEC, OPEN95, READ93, CHDIR_ROOT, DONE = 100 };
static volatile int cmd[2], result[2];
static volatile pid_t tid[2];
static char own_dir[600], prog_cwd[4096];
static volatile int t3_cmd, t3_tid;
static char t3_stack[64 << 10] __attribute__((aligned(16)));

/* T3, raw system calls only (no libc: its TLS is the program's). */
static int t3_main(void *arg)
{
	(void)arg;
	t3_tid = (int)syscall(SYS_gettid);
	for (;;) {
		struct timespec ts = { 0, 1000000 };
		if (t3_cmd == 1) {
			syscall(SYS_close, 40);
			t3_cmd = DONE;
		}
		syscall(SYS_nanosleep, &ts, NULL);
	}
	return 0;
}

static void *t1_main(void *arg)
{
	(void)arg;
	if (unshare(CLONE_FILES) || close(41) || dup3(40, 93, O_CLOEXEC) != 93)
		zoo_die("T1: unshare/close/dup3: %s", strerror(errno));
	tid[0] = (pid_t)syscall(SYS_gettid);
	for (;;) {
		int c = cmd[0], r = 0;
		char buf[8];
		if (c == NONE || c == DONE) {
			zoo_sleep_ms(1);
			continue;
		}
		if (c == CLOSE93)
			r = close(93);
		else if (c == CLEAR_CLOEXEC)
			r = fcntl(93, F_SETFD, 0);
		else if (c == OPEN95)
			r = dup2(0, 95) == 95 ? 0 : -1;
		else if (c == READ93)
			r = (int)read(93, buf, sizeof(buf));
		result[0] = r;
		cmd[0] = DONE;
	}
	return NULL;
}

static void *t2_main(void *arg)
{
	(void)arg;
	if (unshare(CLONE_FS) || chdir(own_dir))
		zoo_die("T2: unshare/chdir: %s", strerror(errno));
	umask(027);
	tid[1] = (pid_t)syscall(SYS_gettid);
	for (;;) {
		int c = cmd[1];
		if (c == CHDIR_ROOT) {
			result[1] = chdir("/");
			cmd[1] = DONE;
		}
		zoo_sleep_ms(1);
	}
	return NULL;
}

/* Asks thread k to do c; its result, or -1000 if it did not answer within 2 s. */
static int ask(int k, int c)
{
	cmd[k] = c;
	for (int ms = 0; cmd[k] != DONE && ms < 2000; ms++)
		zoo_sleep_ms(1);
	return cmd[k] == DONE ? result[k] : -1000;
}

static int in_table(int k, int fd)
{
	char path[96];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/self/task/%d/fd/%d", zoo_proc_tid(k == 2 ? t3_tid : tid[k]), fd);
	return stat(path, &st) == 0;
}

static int own_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static unsigned long fd_flags(int k, int fd)
{
	char path[96], text[512];
	snprintf(path, sizeof(path), "/proc/self/task/%d/fdinfo/%d", zoo_proc_tid(tid[k]), fd);
	if (zoo_read_file(path, text, sizeof(text)) <= 0)
		return ~0ul;
	const char *f = strstr(text, "flags:");
	return f ? strtoul(f + 6, NULL, 8) : ~0ul;
}

static int task_umask(int k)
{
	char path[96], text[4096];
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", zoo_proc_tid(tid[k]));
	if (zoo_read_file(path, text, sizeof(text)) <= 0)
		return -1;
	const char *u = strstr(text, "Umask:");
	return u ? (int)strtol(u + 6, NULL, 8) : -1;
}

static void c_copy(ucontext_t *u)
{
	(void)u;
	t3_cmd = 1;
	for (int ms = 0; t3_cmd != DONE && ms < 2000; ms++)
		zoo_sleep_ms(1);
}
static void c_own_fds(ucontext_t *u) { (void)u; ask(0, CLOSE93); }
static void c_cloexec(ucontext_t *u) { (void)u; ask(0, CLEAR_CLOEXEC); }
static void c_separate(ucontext_t *u) { (void)u; dup2(0, 95); }
static void c_own_cwd(ucontext_t *u) { (void)u; ask(1, CHDIR_ROOT); }
static void c_separate_fs(ucontext_t *u) { (void)u; (void)!chdir(own_dir); }
static const struct zoo_corruption corruptions[] = {
	{ "own-fds", c_own_fds, 0 },
	{ "cloexec", c_cloexec, 0 },
	{ "separate", c_separate, 0 },
	{ "own-cwd", c_own_cwd, 0 },
	{ "separate-fs", c_separate_fs, 0 },
	{ "copy", c_copy, 0 },
};

int main(int argc, char **argv)
{
	pthread_t th[2];
	int p[2];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(own_dir, sizeof(own_dir), "%s/t2-dir", zoo_tmpdir());
	if (mkdir(own_dir, 0755) || !getcwd(prog_cwd, sizeof(prog_cwd)))
		zoo_die("mkdir/getcwd: %s", strerror(errno));
	umask(022);
	if (pipe(p) || dup2(p[0], 40) != 40 || dup2(p[1], 41) != 41)
		zoo_die("pipe: %s", strerror(errno));
	close(p[0]);
	close(p[1]);
	if (pthread_create(&th[0], NULL, t1_main, NULL) || pthread_create(&th[1], NULL, t2_main, NULL))
		zoo_die("pthread_create");
	for (int ms = 0; (!tid[0] || !tid[1]) && ms < 5000; ms++)
		zoo_sleep_ms(1);
	if (!tid[0] || !tid[1])
		zoo_die("the threads did not start");
	if (clone(t3_main, t3_stack + sizeof(t3_stack), CLONE_THREAD | CLONE_VM | CLONE_SIGHAND, NULL) < 0)
		zoo_die("clone: %s", strerror(errno));
	for (int ms = 0; !t3_tid && ms < 5000; ms++)
		zoo_sleep_ms(1);
	if (!t3_tid)
		zoo_die("T3 did not start");
	if (dup2(0, 94) != 94)
		zoo_die("dup2: %s", strerror(errno));
	zoo_ready();
	zoo_wait();

	/* own-fds */
	CHECK("own-fds", in_table(0, 93) && !in_table(0, 41) && !in_table(0, 94),
	      "T1's table: fd 93 %s, fd 41 %s, fd 94 %s", in_table(0, 93) ? "open" : "missing",
	      in_table(0, 41) ? "open" : "closed", in_table(0, 94) ? "open" : "closed");
	CHECK("own-fds", own_open(40) && own_open(41) && own_open(94) && !own_open(93),
	      "the program's table: 40, 41, 94 must be open, 93 not");
	int w = (int)write(41, "abc", 3), r = ask(0, READ93);
	CHECK("own-fds", w == 3 && r == 3, "3 bytes written to the program's fd 41: T1's fd 93 read %d", r);
	/* cloexec */
	unsigned long f93 = fd_flags(0, 93), f40 = fcntl(40, F_GETFD);
	CHECK("cloexec", f93 != ~0ul && (f93 & O_CLOEXEC) && f40 == 0,
	      "T1's fd 93 flags %#lo (close-on-exec wanted), the program's fd 40 FD_CLOEXEC %lu", f93, f40);
	/* separate */
	int opened = ask(0, OPEN95);
	CHECK("separate", opened == 0 && in_table(0, 95) && !own_open(95),
	      "fd 95, opened by T1, is %sin the program's table", own_open(95) ? "" : "not ");
	CHECK("separate", dup2(0, 96) == 96 && !in_table(0, 96), "fd 96, opened by the program, is in T1's table");
	/* own-cwd */
	char path[96], seen[4096] = "", now[4096] = "";
	snprintf(path, sizeof(path), "/proc/self/task/%d/cwd", zoo_proc_tid(tid[1]));
	ssize_t n = readlink(path, seen, sizeof(seen) - 1);
	CHECK("own-cwd", n > 0 && !strcmp(seen, own_dir), "T2's cwd is %s, not %s", seen, own_dir);
	CHECK("own-cwd", task_umask(1) == 027, "T2's umask is %03o, not 027", task_umask(1));
	mode_t mine = umask(022);
	CHECK("own-cwd", mine == 022, "the program's umask is %03o, not 022", (unsigned)mine);
	/* separate-fs */
	CHECK("separate-fs", ask(1, CHDIR_ROOT) == 0 && getcwd(now, sizeof(now)) && !strcmp(now, prog_cwd),
	      "the program's cwd is %s after T2 changed to /, not %s", now, prog_cwd);
	/* copy */
	CHECK("copy", in_table(2, 40) && in_table(2, 41) && !in_table(2, 94),
	      "T3's table: fd 40 %s, 41 %s, 94 %s", in_table(2, 40) ? "open" : "missing",
	      in_table(2, 41) ? "open" : "missing", in_table(2, 94) ? "open" : "closed");
	pid_t me = (pid_t)syscall(SYS_gettid);
	CHECK("copy", syscall(SYS_kcmp, me, t3_tid, KCMP_FILES, 0, 0) != 0 &&
	      syscall(SYS_kcmp, me, t3_tid, KCMP_FS, 0, 0) != 0, "T3 shares the program's fd table or cwd");
	return zoo_finish("a thread with its own fd table, one with its own cwd and umask");
}
