/*
 * sessions: sessions and process groups that restore cannot make in plain tree order.
 * The root R leads its session (the runner starts it with setsid). Its children:
 *   A   forks A1 (which stays in R's session), then leads a session of its own (setsid) and
 *       forks A2 there: a process that left its session after forking;
 *   B   leads a session, forks B1 and B2 as siblings (CLONE_PARENT: they are R's children),
 *       B2 leads its own group in B's session; B exits and R reaps it: a session and a group
 *       whose leader is gone;
 *   C   leads a session and forks C1 as a sibling; C stays: a CLONE_PARENT child of a session
 *       leader, in its session but not its child;
 *   E   (forked before D) forks E1, which joins the group D1 leads: D1 is D's child, a
 *       process of another branch made after E's on restore;
 *   D   forks D1, which leads its own group;
 *   F   makes a group of its own, forks F1 in it, then leaves it for R's group: a group whose
 *       leader is alive and elsewhere;
 *   G   leads a session, forks G1 as a sibling, then exits unreaped: a zombie session leader;
 *   K   a subreaper, forks L; L forks M, which leads a session, forks N1 (its child) and N2
 *       (as its sibling: L's child), and exits; L reaps it and N1 goes to K: a session whose
 *       leader is gone, with members under two parents (restore forks N1 below L, as the
 *       orphan of a helper).
 * Each process writes what it expects (parent, session, group) to a shared table at setup;
 * after restore and SIGTERM, each checks itself and writes what it finds there; R checks its
 * own ids, the zombie, and every answer.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

enum { R, A, A1, A2, B1, B2, C, C1, D, D1, E, E1, F, F1, G1, K, L, N1, N2, NPROC };
static const char *const names[NPROC] = { "R", "A", "A1", "A2", "B1", "B2", "C", "C1",
					  "D", "D1", "E", "E1", "F", "F1", "G1", "K", "L",
					  "N1", "N2" };

struct proc {
	pid_t pid, ppid, sid, pgid;      /* as set up */
	pid_t got_ppid, got_sid, got_pgid; /* as found after restore */
	int recorded, answered;
};

static struct {
	struct proc p[NPROC];
	int corrupt;       /* set by a corruption the children carry out */
	pid_t leader_m;
	int record;        /* the tree is made: each process records what it is */
} *tab;

static pid_t zombie_g, leader_b;

static int corrupting(const char *tag) { return zoo_corr && !strcmp(zoo_corr->tag, tag); }

/* A sibling: a child of our parent (the kernel's CLONE_PARENT), with fork's semantics. */
static pid_t fork_sibling(void)
{
	return syscall(SYS_clone, CLONE_PARENT, 0, NULL, NULL, 0);
}

/* Says it is process i, then lives until SIGTERM, checks itself, answers and waits. */
static __attribute__((noreturn)) void live(int i)
{
	struct proc *p = &tab->p[i];

	__atomic_store_n(&p->pid, getpid(), __ATOMIC_RELEASE);
	while (!__atomic_load_n(&tab->record, __ATOMIC_ACQUIRE))
		zoo_sleep_ms(1);
	p->ppid = getppid(); /* (as it is once the tree is made: N1 has gone to K) */
	p->sid = getsid(0);
	p->pgid = getpgrp();
	__atomic_store_n(&p->recorded, 1, __ATOMIC_RELEASE);
	while (!zoo_term)
		zoo_sleep_ms(10);
	if (i == C1 && tab->corrupt && corrupting("session"))
		setsid();
	if (i == E1 && tab->corrupt && corrupting("group"))
		setpgid(0, 0);
	p->got_ppid = getppid();
	p->got_sid = getsid(0);
	p->got_pgid = getpgrp();
	__atomic_store_n(&p->answered, 1, __ATOMIC_RELEASE);
	for (;;)
		pause();
}

static void wait_pid_set(int i)
{
	for (int n = 0; !__atomic_load_n(&tab->p[i].pid, __ATOMIC_ACQUIRE) && n < 5000; n++)
		zoo_sleep_ms(1);
	if (!tab->p[i].pid)
		zoo_die("%s did not start", names[i]);
}

static void run_a(void)
{
	if (fork() == 0)
		live(A1);
	wait_pid_set(A1);
	setsid();
	if (fork() == 0)
		live(A2);
	live(A);
}

static void run_b(void)
{
	setsid();
	if (fork_sibling() == 0)
		live(B1);
	if (fork_sibling() == 0) {
		setpgid(0, 0);
		live(B2);
	}
	wait_pid_set(B1);
	wait_pid_set(B2);
	_exit(0);
}

static void run_c(void)
{
	setsid();
	if (fork_sibling() == 0)
		live(C1);
	live(C);
}

static void run_d(void)
{
	if (fork() == 0) {
		setpgid(0, 0);
		live(D1);
	}
	live(D);
}

static void run_e(void)
{
	wait_pid_set(D1);
	while (getpgid(tab->p[D1].pid) != tab->p[D1].pid)
		zoo_sleep_ms(1);
	if (fork() == 0) {
		if (setpgid(0, tab->p[D1].pid))
			zoo_die("E1 cannot join D1's group: %s", strerror(errno));
		live(E1);
	}
	live(E);
}

static void run_f(pid_t root)
{
	setpgid(0, 0);
	if (fork() == 0)
		live(F1);
	wait_pid_set(F1);
	if (setpgid(0, root))
		zoo_die("F cannot join R's group: %s", strerror(errno));
	live(F);
}

static void run_g(void)
{
	setsid();
	if (fork_sibling() == 0)
		live(G1);
	wait_pid_set(G1);
	_exit(3);
}

static void run_m(void)
{
	setsid();
	if (fork() == 0)
		live(N1);
	if (fork_sibling() == 0)
		live(N2);
	wait_pid_set(N1);
	wait_pid_set(N2);
	_exit(0);
}

static void run_l(void)
{
	pid_t m = fork();
	if (m == 0)
		run_m();
	__atomic_store_n(&tab->leader_m, m, __ATOMIC_RELEASE);
	if (waitpid(m, NULL, 0) != m)
		zoo_die("L cannot reap M");
	live(L);
}

static void run_k(void)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (fork() == 0)
		run_l();
	live(K);
}

static char proc_state(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", zoo_proc_pid(pid));
	return zoo_stat_state(path);
}

static void c_parent(ucontext_t *u) { (void)u; kill(tab->p[A].pid, SIGKILL); waitpid(tab->p[A].pid, NULL, 0); }
static void c_zombie(ucontext_t *u) { (void)u; waitpid(zombie_g, NULL, 0); }
static void c_child(ucontext_t *u) { (void)u; tab->corrupt = 1; }

static const struct zoo_corruption corruptions[] = {
	{ "parent", c_parent, 0 },  /* A dies: A1 goes to another parent */
	{ "session", c_child, 0 },  /* C1 leaves its session */
	{ "group", c_child, 0 },    /* E1 leaves D1's group */
	{ "zombie", c_zombie, 0 },  /* R reaps G */
};

/* The ids each process must have, from what the others are. */
static void expect(pid_t root)
{
	struct proc *p = tab->p;
	__atomic_store_n(&tab->record, 1, __ATOMIC_RELEASE);
	for (int i = A; i < NPROC; i++)
		for (int n = 0; !__atomic_load_n(&p[i].recorded, __ATOMIC_ACQUIRE); n++)
			if (n > 5000)
				zoo_die("%s did not record itself", names[i]);
			else
				zoo_sleep_ms(1);
	const pid_t m = tab->leader_m, want[NPROC][3] = {
		[A] = { root, p[A].pid, p[A].pid },       [A1] = { p[A].pid, root, root },
		[A2] = { p[A].pid, p[A].pid, p[A].pid }, [B1] = { root, leader_b, leader_b },
		[B2] = { root, leader_b, p[B2].pid },    [C] = { root, p[C].pid, p[C].pid },
		[C1] = { root, p[C].pid, p[C].pid },     [D] = { root, root, root },
		[D1] = { p[D].pid, root, p[D1].pid },    [E] = { root, root, root },
		[E1] = { p[E].pid, root, p[D1].pid },    [F] = { root, root, root },
		[F1] = { p[F].pid, root, p[F].pid },     [G1] = { root, zombie_g, zombie_g },
		[K] = { root, root, root },              [L] = { p[K].pid, root, root },
		[N1] = { p[K].pid, m, m },               [N2] = { p[L].pid, m, m },
	};
	for (int i = A; i < NPROC; i++)
		if (p[i].ppid != want[i][0] || p[i].sid != want[i][1] || p[i].pgid != want[i][2])
			zoo_die("set up: %s has parent %d session %d group %d, not %d %d %d", names[i],
				p[i].ppid, p[i].sid, p[i].pgid, want[i][0], want[i][1], want[i][2]);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	pid_t root = getpid();
	if (getsid(0) != root && setsid() < 0)
		zoo_die("cannot lead a session: %s", strerror(errno));
	tab = mmap(NULL, sizeof(*tab), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (tab == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	pid_t e, c;
	if ((leader_b = fork()) == 0)
		run_b();
	if (waitpid(leader_b, NULL, 0) != leader_b)
		zoo_die("B could not be reaped");
	if (fork() == 0)
		run_a();
	if ((c = fork()) == 0)
		run_c();
	if ((e = fork()) == 0) /* before D: its child joins the group of D's child */
		run_e();
	if (fork() == 0)
		run_d();
	if (fork() == 0)
		run_f(root);
	if ((zombie_g = fork()) == 0)
		run_g();
	if (fork() == 0)
		run_k();
	(void)c;
	(void)e;
	for (int i = A; i < NPROC; i++)
		wait_pid_set(i);
	while (!__atomic_load_n(&tab->leader_m, __ATOMIC_ACQUIRE) || kill(tab->leader_m, 0) == 0)
		zoo_sleep_ms(1); /* L has reaped M: N1 is K's */
	while (proc_state(zombie_g) != 'Z')
		zoo_sleep_ms(1);
	zoo_sleep_ms(20); /* every process sits in its loop */
	expect(root);
	zoo_ready();
	zoo_wait();

	CHECK("session", getsid(0) == root && getpgrp() == root, "R has session %d group %d",
	      getsid(0), getpgrp());
	siginfo_t si = { 0 };
	CHECK("zombie", proc_state(zombie_g) == 'Z', "G (pid %d) is in state %c, not a zombie",
	      zombie_g, proc_state(zombie_g));
	CHECK("zombie", !waitid(P_PID, zombie_g, &si, WEXITED | WNOHANG | WNOWAIT) &&
	      si.si_pid == zombie_g && si.si_code == CLD_EXITED && si.si_status == 3,
	      "G's exit is not status 3 (pid %d code %d status %d)", si.si_pid, si.si_code,
	      si.si_status);
	for (int i = A; i < NPROC; i++)
		kill(tab->p[i].pid, SIGTERM);
	for (int i = A; i < NPROC; i++) {
		struct proc *p = &tab->p[i];
		for (int n = 0; !__atomic_load_n(&p->answered, __ATOMIC_ACQUIRE) && n < 500; n++)
			zoo_sleep_ms(10);
		if (!p->answered) {
			CHECK("parent", i == A && corrupting("parent"), "%s (pid %d) did not answer",
			      names[i], p->pid);
			continue;
		}
		CHECK("parent", p->got_ppid == p->ppid, "%s has parent %d, not %d", names[i],
		      p->got_ppid, p->ppid);
		CHECK("session", p->got_sid == p->sid, "%s is in session %d, not %d", names[i],
		      p->got_sid, p->sid);
		CHECK("group", p->got_pgid == p->pgid, "%s is in group %d, not %d", names[i],
		      p->got_pgid, p->pgid);
	}
	for (int i = A; i < NPROC; i++)
		kill(tab->p[i].pid, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0)
		;
	return zoo_finish("8 sessions, 18 processes, 1 zombie session leader");
}
