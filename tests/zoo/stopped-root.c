/*
 * stopped-root: the tree's root stopped by SIGTSTP (a terminal stop signal, which the kernel
 * drops in an orphaned process group).
 *   The root R leads its session (the harness's setsid for a checkpoint). A child C leads a group of its own;
 *   C's child G joins R's group: G's parent is in another group of the same session, so R's
 *   group is not orphaned. After zoo_ready() R stops itself with SIGTSTP.
 * After restore and SIGTERM: C, which watches R, sees the SIGTERM pending in the stopped R, asks
 * the kernel which signal stopped R (PTRACE_SEIZE + PTRACE_INTERRUPT: the group stop's signal),
 * lets go of it and continues it (SIGCONT). R checks that it was stopped, by SIGTSTP (corruption
 * "stopsig": C first continues R and stops it again with SIGSTOP).
 * Blocks in: group stop (R), nanosleep (C, G).
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

struct shared {
	volatile pid_t g;
	volatile int seen_sig;   /* the signal R was stopped by, as C saw it; -1: could not tell */
	volatile int corrupt;
};
static struct shared *sh;
static pid_t root, c_pid;

static char state_of(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	return zoo_stat_state(path);
}

static int sigterm_pending(pid_t pid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (zoo_read_file(path, buf, sizeof(buf)) < 0)
		return 0;
	char *p = strstr(buf, "ShdPnd:");
	return p && (strtoull(p + 7, NULL, 16) & (1ull << (SIGTERM - 1)));
}

static void wait_state(pid_t pid, int stopped)
{
	for (int ms = 0; ms < 5000 && (state_of(pid) == 'T') != stopped; ms++)
		zoo_sleep_ms(1);
}

/* The signal of the group stop pid is in, or -1. */
static int stop_signal_of(pid_t pid)
{
	int st = 0, sig = -1;
	if (ptrace(PTRACE_SEIZE, pid, 0, 0))
		return -1;
	if (!ptrace(PTRACE_INTERRUPT, pid, 0, 0) && waitpid(pid, &st, __WALL) == pid && WIFSTOPPED(st) &&
	    (st >> 16) == PTRACE_EVENT_STOP)
		sig = WSTOPSIG(st);
	ptrace(PTRACE_DETACH, pid, 0, 0);
	return sig;
}

static __attribute__((noreturn)) void watcher(void)
{
	setpgid(0, 0);
	pid_t g = fork();
	if (g == 0) {
		setpgid(0, root);
		for (;;)
			zoo_sleep_ms(100);
	}
	setpgid(g, root);
	sh->g = g;
	for (;;) {
		zoo_sleep_ms(10);
		if (state_of(root) != 'T' || !sigterm_pending(root))
			continue;
		if (sh->corrupt) {
			kill(root, SIGCONT);
			wait_state(root, 0);
			kill(root, SIGSTOP);
			wait_state(root, 1);
		}
		sh->seen_sig = stop_signal_of(root);
		kill(root, SIGCONT);
		for (;;)
			zoo_sleep_ms(100);
	}
}

static void c_stopsig(ucontext_t *u) { (void)u; } /* applied by C once the SIGTERM is there */
static const struct zoo_corruption corruptions[] = {
	{ "stopsig", c_stopsig, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	sh->corrupt = zoo_corr != NULL;
	root = getpid();
	c_pid = fork();
	if (c_pid == 0)
		watcher();
	setpgid(c_pid, c_pid);
	for (int ms = 0; ms < 5000 && (!sh->g || getpgid(sh->g) != root || getpgid(c_pid) != c_pid); ms++)
		zoo_sleep_ms(1);
	if (!sh->g || getpgid(sh->g) != root)
		zoo_die("G did not join the root's group");
	zoo_ready();
	kill(root, SIGTSTP);
	zoo_wait();

	CHECK("stopsig", sh->seen_sig == SIGTSTP, "the root was stopped by signal %d, expected SIGTSTP (%d)",
	      sh->seen_sig, SIGTSTP);
	kill(sh->g, SIGKILL);
	kill(c_pid, SIGKILL);
	waitpid(c_pid, NULL, 0);
	return zoo_finish("the root stopped by SIGTSTP in a group that is not orphaned");
}
