/*
 * shared-tables: processes that share what clone() lets them share besides threads, and a
 * thread with a table of its own, which the engine refuses (the dump fails naming them and the
 * program runs on unharmed: tests/failure-cases.sh).
 *   default (--files): a grandchild shares the program's fd table, but its parent does not:
 *   the child, made by clone(CLONE_FILES), makes it by clone(CLONE_FILES), then leaves the
 *   table (unshare(CLONE_FILES)) (processes sharing a table are restored, not this shape);
 *   --vm: a child made by clone(CLONE_VM) on a stack of its own shares its memory and counts
 *   in it (raw system calls only);
 *   --fs: a child made by clone(CLONE_FS) shares its cwd, root and umask;
 *   --thread: a second thread has an fd table of its own (unshare(CLONE_FILES)), with fd 91
 *   open in it only, a file (/dev/null, opened after the unshare) that the program's
 *   table does not hold (threads with tables of their own are restored, this not);
 *   --vfork: a child is in vfork(): its vforked child (sharing its memory) neither execs nor
 *   exits, it waits in raw nanosleep for the program's word (no process can be frozen then).
 * After SIGTERM: --files: fd 90, opened by the program, is in the grandchild's table
 * (/proc/GRANDCHILD/fd/90); --vm: the child's count goes on in the program's memory; --fs: the
 * program's chdir moves the child too (/proc/CHILD/cwd); --thread: the thread's table holds
 * fd 91 and the program's does not; --vfork: on the program's word the vforked child exits 0
 * and the child, back from vfork(), reports that exit. Corruption "unshared": the program
 * takes an fd table or fs context of its own (--files, --fs), stops the child (--vm), opens
 * fd 91 itself (--thread), or kills the vforked child (--vfork) first.
 * Blocks in: nanosleep (zoo_wait loop); the children in pause() or nanosleep, the thread in
 * nanosleep.
 */
#include "zoo.h"
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>

enum { FILES, VM, FS, THREAD, VFORK } mode = FILES;
static pid_t child;
static pid_t *grandchild; /* --files: in memory the child shares (MAP_SHARED) */
static volatile pid_t thread_tid;
static volatile long count; /* --vm: the child's */
/* --vfork, in memory shared with the child: the vforked child's pid, the word to exit, then
 * its wait status as the child saw it (+1) */
static volatile int *vfork_words;
static char child_stack[64 << 10] __attribute__((aligned(16)));

static void c_unshared(ucontext_t *u)
{
	(void)u;
	if (mode == THREAD)
		dup2(0, 91);
	else if (mode == VM)
		kill(child, SIGSTOP);
	else if (mode == VFORK)
		kill(vfork_words[0], SIGKILL);
	else
		unshare(mode == FILES ? CLONE_FILES : CLONE_FS);
}
static const struct zoo_corruption corruptions[] = {
	{ "unshared", c_unshared, 0 },
};

static void *own_table(void *arg)
{
	(void)arg;
	int null = unshare(CLONE_FILES) ? -1 : open("/dev/null", O_RDONLY);
	if (null < 0 || dup2(null, 91) != 91 || close(null))
		zoo_die("thread: unshare(CLONE_FILES): %s", strerror(errno));
	thread_tid = syscall(SYS_gettid);
	for (;;)
		zoo_sleep_ms(100);
	return NULL;
}

/* The CLONE_VM child: it shares the program's memory, its TLS too; raw system calls only. */
static int vm_child(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec ts = { 0, 1000000 };
		__atomic_add_fetch(&count, 1, __ATOMIC_RELAXED);
		syscall(SYS_nanosleep, &ts, NULL);
	}
	return 0;
}

/* --vfork: the child; its vforked child shares its memory and stack: raw system calls only */
static void vfork_child(void)
{
	pid_t g = vfork();
	if (g == 0) {
		vfork_words[0] = syscall(SYS_getpid);
		while (!__atomic_load_n(&vfork_words[1], __ATOMIC_ACQUIRE)) {
			struct timespec ts = { 0, 1000000 };
			syscall(SYS_nanosleep, &ts, NULL);
		}
		syscall(SYS_exit, 0);
	}
	int st = -1;
	if (g < 0 || waitpid(g, &st, 0) != g)
		st = -2;
	__atomic_store_n(&vfork_words[2], st + 1, __ATOMIC_RELEASE);
	for (;;)
		pause();
}

static int has_fd(pid_t tid, int fd)
{
	char path[96];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/fd/%d", zoo_proc_pid(getpid()), tid, fd);
	return stat(path, &st) == 0;
}

int main(int argc, char **argv)
{
	pthread_t th;
	char cwd[4096] = "";

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	for (int i = 1; i < argc; i++) {
		mode = !strcmp(argv[i], "--vm") ? VM : !strcmp(argv[i], "--fs") ? FS : mode;
		mode = !strcmp(argv[i], "--thread") ? THREAD : !strcmp(argv[i], "--vfork") ? VFORK : mode;
	}
	if (mode == THREAD) {
		if (pthread_create(&th, NULL, own_table, NULL))
			zoo_die("pthread_create");
		for (int ms = 0; !thread_tid && ms < 5000; ms++)
			zoo_sleep_ms(1);
		if (!thread_tid)
			zoo_die("the thread did not start");
	} else if (mode == VM) {
		child = clone(vm_child, child_stack + sizeof(child_stack), CLONE_VM | SIGCHLD, NULL);
	} else if (mode == VFORK) {
		vfork_words = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (vfork_words == MAP_FAILED)
			zoo_die("mmap: %s", strerror(errno));
		if ((child = fork()) == 0)
			vfork_child();
		for (int ms = 0; child > 0 && !vfork_words[0] && ms < 5000; ms++)
			zoo_sleep_ms(1);
		if (child > 0 && !vfork_words[0])
			zoo_die("the vforked child did not start");
	} else {
		grandchild = mmap(NULL, sizeof(*grandchild), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (grandchild == MAP_FAILED)
			zoo_die("mmap: %s", strerror(errno));
		child = syscall(SYS_clone, (mode == FILES ? CLONE_FILES : CLONE_FS) | SIGCHLD, 0, NULL, NULL, 0);
		if (child == 0 && mode == FILES) {
			pid_t g = syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, NULL, NULL, 0);
			if (g == 0)
				for (;;)
					pause();
			if (g > 0 && !unshare(CLONE_FILES))
				*grandchild = g;
			else
				*grandchild = -1;
		}
		if (child == 0)
			for (;;)
				pause();
		for (int ms = 0; mode == FILES && !*grandchild && ms < 5000; ms++)
			zoo_sleep_ms(1);
		if (mode == FILES && *grandchild <= 0)
			zoo_die("the grandchild sharing the fd table did not start");
	}
	if (child < 0)
		zoo_die("clone: %s", strerror(errno));
	if (mode == FS && !getcwd(cwd, sizeof(cwd)))
		zoo_die("getcwd: %s", strerror(errno));
	zoo_ready();
	zoo_wait();

	char path[96];
	struct stat st;
	if (mode == THREAD) {
		CHECK("unshared", has_fd(thread_tid, 91) && !has_fd(getpid(), 91),
		      "fd 91 is %sin the thread's table and %sin the program's", has_fd(thread_tid, 91) ? "" : "not ",
		      has_fd(getpid(), 91) ? "" : "not ");
	} else if (mode == FILES) {
		int fd = dup2(0, 90);
		snprintf(path, sizeof(path), "/proc/%d/fd/90", zoo_proc_pid(*grandchild));
		CHECK("unshared", fd == 90 && stat(path, &st) == 0, "fd 90, opened by the program, is not in its grandchild's "
		      "table: %s", strerror(errno));
		close(90);
	} else if (mode == VFORK) {
		__atomic_store_n(&vfork_words[1], 1, __ATOMIC_RELEASE);
		for (int ms = 0; !__atomic_load_n(&vfork_words[2], __ATOMIC_ACQUIRE) && ms < 5000; ms++)
			zoo_sleep_ms(1);
		int st = vfork_words[2] - 1;
		CHECK("unshared", st == 0, "the vforked child %d ended with %#x (%s), not by exiting 0", vfork_words[0],
		      st, st == -1 ? "the child did not come back from vfork()" : "wait status");
	} else if (mode == VM) {
		long before = count;
		zoo_sleep_ms(100);
		CHECK("unshared", count > before, "the child's count stood still at %ld in the program's memory", before);
	} else {
		char seen[4096] = "";
		snprintf(path, sizeof(path), "/proc/%d/cwd", zoo_proc_pid(child));
		int moved = !chdir("/") && readlink(path, seen, sizeof(seen) - 1) > 0 && !strcmp(seen, "/");
		CHECK("unshared", moved, "the program's chdir(\"/\") did not move its child (its cwd: %s)", seen);
		if (chdir(cwd))
			zoo_failf("unshared", "chdir %s: %s", cwd, strerror(errno));
	}
	if (mode == FILES)
		kill(*grandchild, SIGKILL);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	static const char *what[] = { "a grandchild sharing the fd table", "a child sharing the memory",
				      "a child sharing cwd, root and umask", "a thread with its own fd table",
				      "a child in vfork()" };
	return zoo_finish(what[mode]);
}
