/*
 * fork-churn: processes are born and die all the time, also while the dump freezes the tree.
 * 2 forker processes each fork short-lived children in a loop (each child adds itself to a
 * shared counter and exits) and reap them; the freeze therefore meets children being born,
 * running, and exited but not reaped (zombies). After restore and SIGTERM: forking went on
 * after the restore, and for each forker the children it forked = the children it reaped
 * with status 0 = the children that ran.
 * Blocks in: wait4 and clone, all the time.
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define FORKERS 2

struct counts {
	uint64_t forked, reaped, ran, bad;
};

static struct counts *counts; /* shared with the forkers */
static volatile sig_atomic_t term;
static uint64_t at_ready;

static void on_term(int sig) { (void)sig; term = 1; }

static void forker(int i)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	while (!term) {
		pid_t c = fork();
		if (c == 0) {
			__atomic_add_fetch(&counts[i].ran, 1, __ATOMIC_SEQ_CST);
			_exit(0);
		}
		if (c < 0)
			continue;
		counts[i].forked++;
		int st;
		while (waitpid(c, &st, 0) < 0 && errno == EINTR)
			;
		counts[i].reaped++;
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			counts[i].bad++;
	}
	_exit(0);
}

static uint64_t total_reaped(void)
{
	uint64_t n = 0;
	for (int i = 0; i < FORKERS; i++)
		n += __atomic_load_n(&counts[i].reaped, __ATOMIC_SEQ_CST);
	return n;
}

static void c_counts(ucontext_t *u) { (void)u; counts[1].ran += 1; }
static void c_progress(ucontext_t *u) { (void)u; at_ready = UINT64_MAX / 2; }
static const struct zoo_corruption corruptions[] = {
	{ "counts", c_counts, 0 },
	{ "progress", c_progress, 0 },
};

int main(int argc, char **argv)
{
	pid_t kids[FORKERS];
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	counts = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	for (int i = 0; i < FORKERS; i++)
		if ((kids[i] = fork()) == 0)
			forker(i);
	while (total_reaped() < 200)
		zoo_sleep_ms(1);
	at_ready = total_reaped();
	zoo_ready();
	zoo_wait();

	uint64_t at_term = total_reaped();
	for (int i = 0; i < FORKERS; i++) {
		int st = 0;
		kill(kids[i], SIGTERM);
		waitpid(kids[i], &st, 0);
		CHECK("forker", WIFEXITED(st) && WEXITSTATUS(st) == 0, "forker %d ended with %#x", i, st);
	}
	CHECK("progress", at_term > at_ready, "no process was forked after READY (%lu, then %lu)",
	      (unsigned long)at_ready, (unsigned long)at_term);
	for (int i = 0; i < FORKERS; i++)
		CHECK("counts", counts[i].forked == counts[i].reaped && counts[i].reaped == counts[i].ran &&
				!counts[i].bad,
		      "forker %d: forked %lu, reaped %lu, ran %lu, bad status %lu", i,
		      (unsigned long)counts[i].forked, (unsigned long)counts[i].reaped,
		      (unsigned long)counts[i].ran, (unsigned long)counts[i].bad);
	char info[64];
	snprintf(info, sizeof(info), "%lu processes made", (unsigned long)total_reaped());
	return zoo_finish(info);
}
