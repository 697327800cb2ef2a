/*
 * vfork-exec: a process that vforks all the time, its child running for a while before it
 * execs. A forker process loops: vfork(); the child spins for 500 ms (its parent waits in
 * vfork() all that time), then execs this program again as "vfork-exec --exec-exit", which
 * exits 42 at once; the forker reaps it. A freeze therefore nearly always meets a parent in
 * vfork() and its child before its exec: the dump must wait for, or let run, that exec
 * (under --freeze-cgroup the freezer has caught the child too). After restore and SIGTERM:
 * vforking went on after the restore, and the children vforked = reaped = exited 42.
 * Blocks in: vfork (the forker), a busy loop (its child), nanosleep (the program).
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define SPIN_NS (500 * 1000000ull)
#define EXEC_EXIT 42

struct counts {
	uint64_t vforked, reaped, exited_42;
};

static struct counts *counts; /* shared with the forker */
static uint64_t at_ready;

static volatile sig_atomic_t term;

static void on_term(int sig) { (void)sig; term = 1; }

static void forker(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	while (!term) {
		pid_t c = vfork();
		if (c == 0) {
			uint64_t start = zoo_now_ns(CLOCK_MONOTONIC);
			while (zoo_now_ns(CLOCK_MONOTONIC) - start < SPIN_NS)
				;
			execl("/proc/self/exe", "vfork-exec", "--exec-exit", (char *)NULL);
			_exit(127);
		}
		if (c < 0)
			continue;
		counts->vforked++;
		int st;
		while (waitpid(c, &st, 0) < 0 && errno == EINTR)
			;
		counts->reaped++;
		counts->exited_42 += WIFEXITED(st) && WEXITSTATUS(st) == EXEC_EXIT;
	}
	_exit(0);
}

static void c_counts(ucontext_t *u) { (void)u; counts->exited_42 += 1; }
static void c_progress(ucontext_t *u) { (void)u; at_ready = UINT64_MAX / 2; }
static const struct zoo_corruption corruptions[] = {
	{ "counts", c_counts, 0 },
	{ "progress", c_progress, 0 },
};

static uint64_t reaped(void) { return __atomic_load_n(&counts->reaped, __ATOMIC_SEQ_CST); }

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--exec-exit"))
		_exit(EXEC_EXIT);
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	counts = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (counts == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	pid_t kid = fork();
	if (kid == 0)
		forker();
	while (reaped() < 1)
		zoo_sleep_ms(1);
	at_ready = reaped();
	zoo_ready();
	zoo_wait();

	/* the child vforked last is reaped before the forker takes SIGTERM */
	uint64_t deadline = zoo_now_ns(CLOCK_MONOTONIC) + 5 * SPIN_NS;
	while (reaped() <= at_ready && zoo_now_ns(CLOCK_MONOTONIC) < deadline)
		zoo_sleep_ms(10);
	uint64_t at_term = reaped();
	int st = 0;
	kill(kid, SIGTERM);
	waitpid(kid, &st, 0);
	CHECK("forker", WIFEXITED(st) && WEXITSTATUS(st) == 0, "the forker ended with %#x", st);
	CHECK("progress", at_term > at_ready, "no child was vforked and reaped after READY (%lu, then %lu)",
	      (unsigned long)at_ready, (unsigned long)at_term);
	CHECK("counts", counts->vforked == counts->reaped && counts->reaped == counts->exited_42,
	      "vforked %lu, reaped %lu, exited %d after exec %lu", (unsigned long)counts->vforked,
	      (unsigned long)counts->reaped, EXEC_EXIT, (unsigned long)counts->exited_42);
	char info[64];
	snprintf(info, sizeof(info), "%lu children vforked, each exec'd", (unsigned long)reaped());
	return zoo_finish(info);
}
