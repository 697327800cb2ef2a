/*
 * fd-table-shared: fd tables that are not one per process, which the engine refuses (the
 * dump fails naming them and the program runs on unharmed: tests/failure-cases.sh).
 *   default: a child made by clone(CLONE_FILES) shares the program's fd table; it sleeps.
 *   --thread: a second thread has an fd table of its own (unshare(CLONE_FILES)), with fd 91
 *   open in it only.
 * After SIGTERM: the program opens fd 90, which its child's table shows too
 * (/proc/CHILD/fd/90); with --thread, the thread's table holds fd 91 and the program's does
 * not. Corruption "unshared": the program takes a table of its own (default) or opens fd 91
 * itself (--thread) first.
 * Blocks in: nanosleep (zoo_wait loop); the child in pause(), the thread in nanosleep.
 */
#include "zoo.h"
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>

static int thread_mode;
static volatile pid_t thread_tid;

static void c_unshared(ucontext_t *u)
{
	(void)u;
	if (thread_mode)
		dup2(0, 91);
	else
		unshare(CLONE_FILES);
}
static const struct zoo_corruption corruptions[] = {
	{ "unshared", c_unshared, 0 },
};

static void *own_table(void *arg)
{
	(void)arg;
	if (unshare(CLONE_FILES) || dup2(0, 91) != 91)
		zoo_die("thread: unshare(CLONE_FILES): %s", strerror(errno));
	thread_tid = syscall(SYS_gettid);
	for (;;)
		zoo_sleep_ms(100);
	return NULL;
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
	pid_t child = 0;
	pthread_t th;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	for (int i = 1; i < argc; i++)
		thread_mode |= !strcmp(argv[i], "--thread");
	if (thread_mode) {
		if (pthread_create(&th, NULL, own_table, NULL))
			zoo_die("pthread_create");
		for (int ms = 0; !thread_tid && ms < 5000; ms++)
			zoo_sleep_ms(1);
		if (!thread_tid)
			zoo_die("the thread did not start");
	} else {
		child = syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, NULL, NULL, 0);
		if (child < 0)
			zoo_die("clone(CLONE_FILES): %s", strerror(errno));
		if (child == 0)
			for (;;)
				pause();
	}
	zoo_ready();
	zoo_wait();

	if (thread_mode) {
		CHECK("unshared", has_fd(thread_tid, 91) && !has_fd(getpid(), 91),
		      "fd 91 is %sin the thread's table and %sin the program's", has_fd(thread_tid, 91) ? "" : "not ",
		      has_fd(getpid(), 91) ? "" : "not ");
	} else {
		char path[96];
		struct stat st;
		int fd = dup2(0, 90);
		snprintf(path, sizeof(path), "/proc/%d/fd/90", zoo_proc_pid(child));
		CHECK("unshared", fd == 90 && stat(path, &st) == 0, "fd 90, opened by the program, is not in its child's "
		      "table: %s", strerror(errno));
		close(90);
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	return zoo_finish(thread_mode ? "a thread with its own fd table" : "a child sharing the fd table");
}
