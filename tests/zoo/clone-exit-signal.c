/*
 * clone-exit-signal: children made with clone() and an exit signal other than SIGCHLD, as
 * thread libraries and supervisors of "clone children" do:
 *   child A: exit signal SIGUSR2 (the parent counts SIGUSR2 in a handler);
 *   child B: exit signal 0 (its parent is told nothing).
 * Both wait in pause.
 * After restore and SIGTERM: /proc says A's exit signal is SIGUSR2 and B's 0 (field 38 of
 * stat); A killed, the parent gets SIGUSR2 and no SIGCHLD, and waitpid(__WCLONE) reaps it
 * (a plain waitpid() does not see it); B killed, waitpid(__WCLONE) reaps it.
 * Blocks in: nanosleep (zoo_wait loop); the children in pause.
 */
#include "zoo.h"
#include <sched.h>

static pid_t a, b;
static volatile sig_atomic_t usr2, chld;

static void on_usr2(int sig) { (void)sig; usr2++; }
static void on_chld(int sig) { (void)sig; chld++; }

/* A child telling its parent of its exit with sig, waiting in pause. */
static pid_t clone_child(int sig)
{
	pid_t pid = syscall(SYS_clone, (unsigned long)sig, 0, 0, 0, 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	if (pid < 0)
		zoo_die("clone with exit signal %d: %s", sig, strerror(errno));
	return pid;
}

/* Field 38 of pid's stat: its exit signal. */
static int exit_signal_of(pid_t pid)
{
	char path[64], text[2048] = "";
	/* (the init of a PID namespace may have the host's /proc) */
	snprintf(path, sizeof(path), "/proc/%d/stat", zoo_proc_pid(pid));
	if (zoo_read_file(path, text, sizeof(text)) <= 0)
		return -1;
	char *p = strrchr(text, ')');
	for (int field = 2; p && field < 38; field++)
		p = strchr(p + 1, ' ');
	return p ? atoi(p + 1) : -1;
}

/* A made again by fork: its exit signal SIGCHLD */
static void c_exit_signal(ucontext_t *u)
{
	(void)u;
	kill(a, SIGKILL);
	waitpid(a, NULL, __WCLONE);
	usr2 = 0;
	a = fork();
	if (a == 0) {
		for (;;)
			pause();
	}
}
static const struct zoo_corruption corruptions[] = {
	{ "exit-signal", c_exit_signal, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	signal(SIGUSR2, on_usr2);
	signal(SIGCHLD, on_chld);
	a = clone_child(SIGUSR2);
	b = clone_child(0);
	if (exit_signal_of(a) != SIGUSR2 || exit_signal_of(b) != 0)
		zoo_die("exit signals %d and %d, not %d and 0", exit_signal_of(a), exit_signal_of(b), SIGUSR2);
	zoo_ready();
	zoo_wait();

	int sa = exit_signal_of(a), sb = exit_signal_of(b);
	CHECK("exit-signal", sa == SIGUSR2 && sb == 0, "exit signals %d and %d, not %d and 0", sa, sb, SIGUSR2);
	usr2 = chld = 0;
	kill(a, SIGKILL);
	for (int i = 0; i < 500 && !usr2 && !chld; i++)
		zoo_sleep_ms(2);
	pid_t plain = waitpid(a, NULL, WNOHANG), clone_kind = waitpid(a, NULL, __WCLONE);
	CHECK("exit-signal", usr2 == 1 && chld == 0 && plain < 0 && clone_kind == a,
	      "A's exit: %d SIGUSR2, %d SIGCHLD, waitpid %d, with __WCLONE %d", (int)usr2, (int)chld, plain,
	      clone_kind);
	kill(b, SIGKILL);
	pid_t got = waitpid(b, NULL, __WCLONE);
	CHECK("exit-signal", got == b && chld == 0, "B's exit: waitpid(__WCLONE) %d, %d SIGCHLD", got, (int)chld);
	return zoo_finish("clone children with exit signals SIGUSR2 and 0");
}
