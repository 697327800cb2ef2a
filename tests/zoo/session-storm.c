/*
 * session-storm: a tree grown by random steps, each process's own from a fixed seed (the
 * order they interleave in is the scheduler's): fork, setsid, a group of its own, the child
 * subreaper flag on or off, exit (a zombie, or reaped by whoever its parent is by then), reap
 * its exited children. Up to 64 processes; orphans go up to subreapers out of sessions they
 * are not in, and zombies and exited leaders keep session and group ids in use: the shapes a
 * restore has to fork again in order, with helpers standing in for the dead.
 * Once every process has done its steps, each live one writes its parent, session, group and
 * flag to a shared table. After restore and SIGTERM each compares, root counts the verdicts,
 * then ends them all and reaps (it is a subreaper: everything comes up to it).
 * --seed N: another tree (default 1).
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define MAX_PROCS 64
#define STEPS 8

struct slot {
	pid_t pid, ppid, sid, pgid;
	int subreaper, recorded; /* alive once all steps were done */
	int exiting;
	int verdict; /* after restore: 1 same, else 2 and 4 parent, 8 session, 16 group, 32 flag */
};

struct board {
	int made, busy, alive; /* slots taken; processes still doing steps; processes not exited */
	int recorded;
	struct slot slots[MAX_PROCS];
};

static struct board *board;
static unsigned seed = 1;
static volatile sig_atomic_t term;

static void on_term(int sig) { (void)sig; term = 1; }

static unsigned next_random(unsigned *state)
{
	*state = *state * 1103515245u + 12345u;
	return (*state >> 16) & 0x7fff;
}

/* After restore: the same parent, session, group and flag as recorded? */
static __attribute__((noreturn)) void check_self(int me)
{
	struct slot *s = &board->slots[me];
	int sub = 0;
	if (zoo_corr && !strcmp(zoo_corr->tag, "tree"))
		prctl(PR_SET_CHILD_SUBREAPER, !s->subreaper);
	prctl(PR_GET_CHILD_SUBREAPER, &sub);
	int differ = (getppid() != s->ppid) << 2 | (getsid(0) != s->sid) << 3 |
		     (getpgrp() != s->pgid) << 4 | (!!sub != !!s->subreaper) << 5;
	__atomic_store_n(&s->verdict, differ ? 2 | differ : 1, __ATOMIC_RELEASE);
	for (;;)
		pause();
}

/* Is pid a process of the board that has chosen to exit? */
static int exiting(pid_t pid)
{
	for (int i = 1; i < MAX_PROCS; i++)
		if (board->slots[i].pid == pid)
			return __atomic_load_n(&board->slots[i].exiting, __ATOMIC_ACQUIRE);
	return 0;
}

static void run(int me)
{
	unsigned state = seed * 7919u + (unsigned)me * 104729u;
	struct sigaction sa = { .sa_handler = on_term };

	if (me) /* (root keeps zoo's handler) */
		sigaction(SIGTERM, &sa, NULL);
	for (int step = 0; step < STEPS; step++) {
		unsigned r = next_random(&state) % 100;
		if (r < 45) {
			int slot = __atomic_fetch_add(&board->made, 1, __ATOMIC_ACQ_REL);
			if (slot >= MAX_PROCS)
				continue;
			__atomic_fetch_add(&board->busy, 1, __ATOMIC_ACQ_REL);
			__atomic_fetch_add(&board->alive, 1, __ATOMIC_ACQ_REL);
			pid_t c = fork();
			if (c == 0) {
				__atomic_store_n(&board->slots[slot].pid, getpid(), __ATOMIC_RELEASE);
				run(slot);
				_exit(0);
			}
			if (c < 0)
				zoo_die("fork: %s", strerror(errno));
		} else if (r < 50) {
			setsid();
		} else if (r < 60) {
			setpgid(0, 0);
		} else if (r < 75 && me) { /* root stays one: no orphan leaves the tree */
			prctl(PR_SET_CHILD_SUBREAPER, next_random(&state) & 1);
		} else if (r < 87 && me) {
			__atomic_store_n(&board->slots[me].exiting, 1, __ATOMIC_RELEASE);
			__atomic_fetch_sub(&board->alive, 1, __ATOMIC_ACQ_REL);
			__atomic_fetch_sub(&board->busy, 1, __ATOMIC_ACQ_REL);
			_exit(me);
		} else {
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
		}
		zoo_sleep_ms(1);
	}
	__atomic_fetch_sub(&board->busy, 1, __ATOMIC_ACQ_REL);
	/* (and until a parent that exits has: its children come up to their new one) */
	while (__atomic_load_n(&board->busy, __ATOMIC_ACQUIRE) || exiting(getppid()))
		zoo_sleep_ms(1);
	struct slot *s = &board->slots[me];
	s->ppid = getppid();
	s->sid = getsid(0);
	s->pgid = getpgrp();
	prctl(PR_GET_CHILD_SUBREAPER, &s->subreaper);
	s->recorded = 1;
	__atomic_fetch_add(&board->recorded, 1, __ATOMIC_ACQ_REL);
	if (me == 0)
		return;
	while (!term)
		zoo_sleep_ms(5);
	check_self(me);
}

static void c_tree(ucontext_t *u) { (void)u; } /* each process turns its flag over itself */
static const struct zoo_corruption corruptions[] = {
	{ "tree", c_tree, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (argc > 2 && !strcmp(argv[1], "--seed"))
		seed = (unsigned)atoi(argv[2]);
	board = mmap(NULL, sizeof(*board), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (board == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	board->made = board->busy = board->alive = 1;
	board->slots[0].pid = getpid();
	/* root's own steps: it forks, and leaves its flag as it is (everything ends up with it) */
	run(0);
	while (__atomic_load_n(&board->recorded, __ATOMIC_ACQUIRE) < __atomic_load_n(&board->alive, __ATOMIC_ACQUIRE))
		zoo_sleep_ms(2);
	zoo_ready();
	zoo_wait();

	int live = 0, same = 0, sessions = 0, first = 0, made = board->made < MAX_PROCS ? board->made : MAX_PROCS;
	for (int i = 1; i < made; i++)
		if (board->slots[i].recorded) {
			live++;
			sessions += board->slots[i].sid == board->slots[i].pid;
			kill(board->slots[i].pid, SIGTERM);
		}
	for (int tries = 0; tries < 2000; tries++) {
		same = 0;
		int done = 0;
		for (int i = 1; i < made; i++) {
			int v = __atomic_load_n(&board->slots[i].verdict, __ATOMIC_ACQUIRE);
			done += v != 0;
			same += v == 1;
			first = !first && v > 1 ? i : first;
		}
		if (done == live)
			break;
		zoo_sleep_ms(2);
	}
	for (int i = 1; i < made; i++)
		if (board->slots[i].recorded)
			kill(board->slots[i].pid, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	struct slot *f = &board->slots[first];
	CHECK("tree", same == live, "%d of %d processes with the same parent, session, group and "
	      "subreaper flag; pid %d not (%#x: 4 parent %d, 8 session %d, 16 group %d, 32 flag %d)",
	      same, live, f->pid, f->verdict, f->ppid, f->sid, f->pgid, f->subreaper);
	CHECK("root", getsid(0) == board->slots[0].sid && getpgrp() == board->slots[0].pgid,
	      "root: session or group changed");
	static char what[128];
	snprintf(what, sizeof(what), "a random tree: %d processes made, %d alive, %d of them leading "
		 "sessions", made, live + 1, sessions);
	return zoo_finish(what);
}
