/*
 * tree: a process tree with its links.
 *   root: PR_SET_CHILD_SUBREAPER; children:
 *     Z  exits at once with status 7 and is not reaped (a zombie named "zt-zombie");
 *     A  leads its own session (setsid);
 *     B  leads its own process group, has PR_SET_PDEATHSIG(SIGUSR2), a second thread with its own
 *        PR_SET_PDEATHSIG(SIGPWR) (the kernel keeps one per thread), and a child G in B's group;
 *     C  is stopped with SIGSTOP by root.
 *   After restore and SIGTERM: every child checks its own pid links and state and exits with a
 *   bit per failed check; root checks the zombie (name, then status 7 from waitpid), that C is
 *   still stopped, its own subreaper flag, and the children's exit codes.
 * Blocks in: nanosleep everywhere (zoo_wait and the children's loops); C in group stop.
 */
#include "zoo.h"
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static pid_t root, z, a, b, c;
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

static int corrupting(const char *tag) { return zoo_corr && !strcmp(zoo_corr->tag, tag); }

static void child_loop(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	while (!child_term)
		zoo_sleep_ms(10);
}

/* Exit codes: 0, or bits: 1 parent, 2 session, 4 group, 8 pdeathsig, 16 grandchild, 32 thread's
 * pdeathsig */
static void run_a(void)
{
	setsid();
	child_loop();
	_exit((getppid() != root) | (getsid(0) != getpid()) << 1);
}

static void run_g(pid_t leader)
{
	child_loop();
	if (corrupting("group"))
		setpgid(0, 0);
	_exit((getppid() != leader) | (getpgrp() != leader) << 2);
}

/* B's second thread: its own parent-death signal, read again once B is told to end. */
static void *b_thread(void *arg)
{
	int *sig = arg;
	prctl(PR_SET_PDEATHSIG, SIGPWR);
	while (!child_term)
		zoo_sleep_ms(10);
	if (corrupting("thread-pdeathsig"))
		prctl(PR_SET_PDEATHSIG, SIGUSR2); /* the main thread's, as a restore copying it leaves it */
	prctl(PR_GET_PDEATHSIG, sig);
	return NULL;
}

static void run_b(void)
{
	int sig = 0, thread_sig = 0, st = 0;
	pthread_t th;
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGUSR2);
	pid_t leader = getpid(), g = fork();
	if (g == 0)
		run_g(leader);
	if (pthread_create(&th, NULL, b_thread, &thread_sig))
		_exit(32);
	child_loop();
	if (corrupting("pdeathsig"))
		prctl(PR_SET_PDEATHSIG, 0);
	prctl(PR_GET_PDEATHSIG, &sig);
	pthread_join(th, NULL);
	kill(g, SIGTERM);
	waitpid(g, &st, 0);
	_exit((getppid() != root) | (getpgrp() != getpid()) << 2 | (sig != SIGUSR2) << 3 |
	      (!WIFEXITED(st) || WEXITSTATUS(st)) << 4 | (thread_sig != SIGPWR) << 5);
}

static void run_c(void)
{
	child_loop();
	_exit(getppid() != root);
}

/* The state letter of child pid (/proc/PID/stat with its pid as /proc names it). */
static char proc_state(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", zoo_proc_pid(pid));
	return zoo_stat_state(path);
}

static void c_zombie(ucontext_t *u) { (void)u; waitpid(z, NULL, 0); }
static void c_stopped(ucontext_t *u) { (void)u; kill(c, SIGCONT); zoo_sleep_ms(50); }
static void c_subreaper(ucontext_t *u) { (void)u; prctl(PR_SET_CHILD_SUBREAPER, 0); }
static void c_child(ucontext_t *u) { (void)u; }

static const struct zoo_corruption corruptions[] = {
	{ "zombie", c_zombie, 0 },
	{ "stopped", c_stopped, 0 },
	{ "subreaper", c_subreaper, 0 },
	{ "group", c_child, 0 },     /* G leaves B's group */
	{ "pdeathsig", c_child, 0 }, /* B clears its parent-death signal */
	{ "thread-pdeathsig", c_child, 0 }, /* B's thread takes B's main thread's */
};

static void check_child(const char *name, pid_t pid)
{
	int st = 0;
	kill(pid, SIGTERM);
	if (waitpid(pid, &st, 0) != pid) {
		zoo_failf("child", "%s (pid %d) could not be waited for", name, pid);
		return;
	}
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	CHECK("parent", !(code & 1), "%s has the wrong parent", name);
	CHECK("session", !(code & 2), "%s is not its session's leader", name);
	CHECK("group", !(code & (4 | 16)), "%s or its child is in the wrong group (code %d)", name, code);
	CHECK("pdeathsig", !(code & 8), "%s lost its parent-death signal", name);
	CHECK("thread-pdeathsig", !(code & 32), "%s's second thread lost its own parent-death signal",
	      name);
	CHECK("child", code != 255, "%s was killed (status %#x)", name, st);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	root = getpid();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if ((z = fork()) == 0) {
		prctl(PR_SET_NAME, "zt-zombie");
		_exit(7);
	}
	if ((a = fork()) == 0)
		run_a();
	if ((b = fork()) == 0)
		run_b();
	if ((c = fork()) == 0)
		run_c();
	if (z < 0 || a < 0 || b < 0 || c < 0)
		zoo_die("fork failed");
	kill(c, SIGSTOP);
	int st;
	if (waitpid(c, &st, WUNTRACED) != c || !WIFSTOPPED(st))
		zoo_die("child C did not stop");
	while (proc_state(z) != 'Z')
		zoo_sleep_ms(1);
	zoo_sleep_ms(50);
	zoo_ready();
	zoo_wait();

	int sub = 0;
	char comm[32] = "", path[64];
	prctl(PR_GET_CHILD_SUBREAPER, &sub);
	CHECK("subreaper", sub == 1, "PR_GET_CHILD_SUBREAPER gives %d", sub);
	snprintf(path, sizeof(path), "/proc/%d/comm", zoo_proc_pid(z));
	zoo_read_file(path, comm, sizeof(comm));
	comm[strcspn(comm, "\n")] = 0;
	CHECK("zombie", proc_state(z) == 'Z' && !strcmp(comm, "zt-zombie"),
	      "pid %d is in state %c named '%s', not a zombie named zt-zombie", z, proc_state(z), comm);
	st = 0;
	CHECK("zombie", waitpid(z, &st, WNOHANG) == z && WIFEXITED(st) && WEXITSTATUS(st) == 7,
	      "the zombie's exit status is %#x", st);
	CHECK("stopped", proc_state(c) == 'T', "child C is in state %c, not stopped", proc_state(c));
	kill(c, SIGCONT);
	check_child("A", a);
	check_child("B", b);
	check_child("C", c);
	return zoo_finish("4 children, 1 grandchild, 1 zombie");
}
