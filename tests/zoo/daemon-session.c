/*
 * daemon-session: the root of the dumped tree is a daemon, made the way daemons make
 * themselves (a double fork), that leads neither its session nor its process group; both
 * leaders are outside the tree: the session's is gone, the group's is a zombie.
 * The launcher L (a subreaper; the runner starts it with setsid) forks B; B makes a session
 * (setsid) and forks G; G makes a group (setpgid) and forks C, the daemon, then exits; B
 * waits until G has exited without reaping it and exits too. C goes to L (the subreaper),
 * G's zombie too; L reaps B: session B has no process left, group G only a zombie outside the
 * tree. C (whose pid the runner dumps) forks D, in its session and group (dnsmasq's child
 * per TCP connection); D forks E, which leads a group of its own in that session; C forks Z,
 * which exits with status 7: C's zombie, in its session and group. B also forks H, which leads a
 * group of its own in B's session and lives until C is done (outside the tree: L's once B is
 * gone); C forks K, which joins H's group.
 * L reaps C, D, E and Z once the dump has killed them (their pids are free for the restore),
 * keeps G's zombie until C is done, then reaps it and exits.
 * After restore and SIGTERM (C, the root, restored in the caller's session and group): C
 * leads neither its session nor its group, D is still C's child, in C's session and group,
 * E in C's session and the leader of its own group, Z still C's zombie, in C's group, and
 * reaped it gives status 7; K is C's child in C's session, in H's group if it is in C's
 * session (run without C/R), else in C's.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/prctl.h>
#include <sys/wait.h>

static pid_t d_pid, e_pid, z_pid, h_pid, k_pid;
static volatile sig_atomic_t d_term;

static void d_on_term(int sig) { (void)sig; d_term = 1; }
static void d_on_usr1(int sig) { (void)sig; setsid(); }

/* D: in C's session and group until SIGTERM; SIGUSR1 makes it leave them (a corruption) */
static void run_d(int report)
{
	struct sigaction st = { .sa_handler = d_on_term }, su = { .sa_handler = d_on_usr1 };
	sigaction(SIGTERM, &st, NULL);
	sigaction(SIGUSR1, &su, NULL);
	pid_t e = fork();
	if (e == 0) {
		setpgid(0, 0);
		for (;;)
			zoo_sleep_ms(1000);
	}
	setpgid(e, e); /* (either of the two calls makes E's group first) */
	if (write(report, &e, sizeof(e)) != sizeof(e))
		_exit(1);
	close(report);
	while (!d_term)
		zoo_sleep_ms(5);
	kill(e, SIGKILL);
	waitpid(e, NULL, 0);
	_exit(0);
}

/* L: reaps what the dump killed (C, D, E, Z, K come to it), keeps G's zombie until C is done. */
static void run_launcher(int from_c, pid_t b, const char *dir, const char *done)
{
	pid_t pids[7]; /* C, D, E, Z, K, G, H */

	waitpid(b, NULL, 0);
	if (read(from_c, pids, sizeof(pids)) != sizeof(pids))
		_exit(1);
	close(from_c);
	for (int i = 0; i < 120 * 100 && access(done, F_OK) != 0 && access(dir, F_OK) == 0; i++) {
		for (int k = 0; k < 5; k++)
			waitpid(pids[k], NULL, WNOHANG);
		zoo_sleep_ms(10);
	}
	for (int k = 0; k < 6; k++)
		waitpid(pids[k], NULL, WNOHANG);
	waitpid(pids[6], NULL, 0); /* H ends once C is done */
	_exit(0);
}

static void c_group(ucontext_t *u) { (void)u; setpgid(d_pid, d_pid); }
static void c_session(ucontext_t *u)
{
	(void)u;
	kill(d_pid, SIGUSR1);
	for (int i = 0; i < 200 && getsid(d_pid) != d_pid; i++)
		zoo_sleep_ms(5);
}
static void c_outside(ucontext_t *u) { (void)u; setpgid(k_pid, k_pid); }
static void c_root(ucontext_t *u) { (void)u; setsid(); }
static void c_zombie(ucontext_t *u) { (void)u; waitpid(z_pid, NULL, 0); }
static const struct zoo_corruption corruptions[] = {
	{ "group", c_group, 0 },
	{ "session", c_session, 0 },
	{ "root", c_root, 0 },
	{ "zombie", c_zombie, 0 },
	{ "outside", c_outside, 0 },
};

int main(int argc, char **argv)
{
	char done[600];
	int to_l[2], from_d[2];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	const char *dir = zoo_tmpdir();
	snprintf(done, sizeof(done), "%s/daemon-session.done", dir);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (pipe(to_l) || pipe(from_d))
		zoo_die("pipe: %s", strerror(errno));
	pid_t b = fork();
	if (b < 0)
		zoo_die("fork: %s", strerror(errno));
	if (b > 0) {
		close(to_l[1]);
		close(from_d[0]);
		close(from_d[1]);
		run_launcher(to_l[0], b, dir, done);
	}
	close(to_l[0]);
	/* B */
	setsid();
	if ((h_pid = fork()) == 0) {
		setpgid(0, 0);
		for (int i = 0; i < 120 * 100 && access(done, F_OK) != 0 && access(dir, F_OK) == 0; i++)
			zoo_sleep_ms(10);
		_exit(0);
	}
	setpgid(h_pid, h_pid);
	pid_t g = fork();
	if (g > 0) {
		siginfo_t si;
		waitid(P_PID, g, &si, WEXITED | WNOWAIT); /* G stays a zombie: L's, once B is gone */
		_exit(0);
	}
	/* G */
	setpgid(0, 0);
	if (fork() > 0)
		_exit(0);
	/* C: wait until G has exited and B is gone (C is L's child then) */
	while (getppid() == getpgrp() || getsid(0) == getppid())
		zoo_sleep_ms(1);
	for (int i = 0; i < 1000 && kill(getsid(0), 0) == 0; i++)
		zoo_sleep_ms(2);
	if (kill(getsid(0), 0) == 0)
		zoo_die("session leader %d still there", getsid(0));
	d_pid = fork();
	if (d_pid == 0) {
		close(from_d[0]);
		close(to_l[1]);
		run_d(from_d[1]);
	}
	close(from_d[1]);
	if (read(from_d[0], &e_pid, sizeof(e_pid)) != sizeof(e_pid))
		zoo_die("D did not start E");
	close(from_d[0]);
	for (int i = 0; i < 1000 && getpgid(e_pid) != e_pid; i++)
		zoo_sleep_ms(1);
	if ((z_pid = fork()) == 0)
		_exit(7);
	siginfo_t zi;
	waitid(P_PID, z_pid, &zi, WEXITED | WNOWAIT); /* a zombie from now on */
	if ((k_pid = fork()) == 0)
		for (;;)
			zoo_sleep_ms(1000);
	if (setpgid(k_pid, h_pid))
		zoo_die("K cannot join H's group %d: %s", h_pid, strerror(errno));
	pid_t pids[7] = { getpid(), d_pid, e_pid, z_pid, k_pid, getpgrp(), h_pid };
	if (write(to_l[1], pids, sizeof(pids)) != sizeof(pids))
		zoo_die("cannot tell the launcher our pids");
	close(to_l[1]);
	pid_t sid = getsid(0), pgid = getpgrp();
	if (sid == getpid() || pgid == getpid() || sid == pgid || kill(pgid, 0) != 0)
		zoo_die("not set up: session %d, group %d", sid, pgid);
	zoo_ready();
	zoo_wait();

	pid_t me = getpid();
	sid = getsid(0);
	pgid = getpgrp();
	CHECK("root", sid != me && pgid != me, "the daemon %d leads its session (%d) or group (%d)", me,
	      sid, pgid);
	siginfo_t si = { 0 };
	CHECK("parent", waitid(P_PID, d_pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && !si.si_pid,
	      "D (pid %d) is not our live child", d_pid);
	CHECK("session", getsid(d_pid) == sid, "D (pid %d) is in session %d, we are in %d", d_pid,
	      getsid(d_pid), sid);
	CHECK("session", getsid(e_pid) == sid, "E (pid %d) is in session %d, we are in %d", e_pid,
	      getsid(e_pid), sid);
	CHECK("group", getpgid(d_pid) == pgid, "D (pid %d) is in group %d, we are in %d", d_pid,
	      getpgid(d_pid), pgid);
	CHECK("group", getpgid(e_pid) == e_pid, "E (pid %d) is in group %d, not its own", e_pid,
	      getpgid(e_pid));
	siginfo_t zs = { 0 };
	int zst = 0;
	CHECK("zombie", waitid(P_PID, z_pid, &zs, WEXITED | WNOHANG | WNOWAIT) == 0 && zs.si_pid == z_pid,
	      "Z (pid %d) is not our zombie", z_pid);
	CHECK("zombie", getpgid(z_pid) == pgid, "Z (pid %d) is in group %d, we are in %d", z_pid,
	      getpgid(z_pid), pgid);
	CHECK("zombie", waitpid(z_pid, &zst, WNOHANG) == z_pid && WIFEXITED(zst) && WEXITSTATUS(zst) == 7,
	      "Z (pid %d) reaped: status %#x, expected exit 7", z_pid, zst);
	CHECK("outside", waitid(P_PID, k_pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && !si.si_pid,
	      "K (pid %d) is not our live child", k_pid);
	pid_t k_group = getsid(h_pid) == sid ? h_pid : pgid; /* H's if still in our session */
	CHECK("outside", getsid(k_pid) == sid && getpgid(k_pid) == k_group,
	      "K (pid %d) is in session %d and group %d, expected %d and %d", k_pid, getsid(k_pid),
	      getpgid(k_pid), sid, k_group);
	kill(k_pid, SIGKILL);
	waitpid(k_pid, NULL, 0);
	kill(d_pid, SIGTERM);
	waitpid(d_pid, NULL, 0);
	close(open(done, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	return zoo_finish("a daemon (double fork) and its children, its session's and group's leaders outside the tree");
}
