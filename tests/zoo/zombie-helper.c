/*
 * zombie-helper: a zombie whose parent is gone and whose session leader is gone. The root
 * (PR_SET_CHILD_SUBREAPER) forks H; H starts a session (setsid) and forks Z, which exits
 * with status 5 ("zh-zombie"); H waits for Z without reaping it (WNOWAIT) and exits; the
 * root reaps H. Z is then the root's zombie (reparented), in H's session and group, with no
 * process H left.
 * After restore and SIGTERM: Z is still a zombie named zh-zombie whose parent is the root,
 * in session and group H, no process has pid H, and waitpid(Z) gives status 5.
 * Blocks in: nanosleep.
 */
#include "zoo.h"
#include <sys/prctl.h>
#include <sys/wait.h>

static pid_t z, h;

/* Field n (1: pid) of pid's /proc stat, the state letter as its character; -1 if none. */
static long stat_field(pid_t pid, int n)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", zoo_proc_pid(pid));
	if (zoo_read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	char *p = strrchr(buf, ')');
	if (!p || n < 3)
		return -1;
	p += 2;
	if (n == 3)
		return *p;
	for (int f = 3; f < n; f++)
		if (!(p = strchr(p, ' ')))
			return -1;
		else
			p++;
	return strtol(p, NULL, 10);
}

static void c_zombie(ucontext_t *u) { (void)u; waitpid(z, NULL, 0); }
/* another zombie of the root with the same name and status, in the root's session */
static void c_session(ucontext_t *u)
{
	(void)u;
	waitpid(z, NULL, 0);
	if ((z = fork()) == 0) {
		prctl(PR_SET_NAME, "zh-zombie");
		_exit(5);
	}
	while (stat_field(z, 3) != 'Z')
		zoo_sleep_ms(1);
}
static const struct zoo_corruption corruptions[] = {
	{ "zombie", c_zombie, 0 },
	{ "session", c_session, 0 },
};

int main(int argc, char **argv)
{
	int p[2];
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (pipe(p))
		zoo_die("pipe: %s", strerror(errno));
	if ((h = fork()) == 0) {
		siginfo_t si;
		setsid();
		if ((z = fork()) == 0) {
			prctl(PR_SET_NAME, "zh-zombie");
			_exit(5);
		}
		if (z < 0 || waitid(P_PID, z, &si, WEXITED | WNOWAIT) || write(p[1], &z, sizeof(z)) != sizeof(z))
			_exit(1);
		_exit(0);
	}
	int st = 0;
	close(p[1]);
	if (h < 0 || read(p[0], &z, sizeof(z)) != sizeof(z) || waitpid(h, &st, 0) != h || st)
		zoo_die("the helper failed (status %#x)", st);
	close(p[0]);
	while (stat_field(z, 4) != getpid()) /* reparented */
		zoo_sleep_ms(1);
	zoo_ready();
	zoo_wait();

	char comm[32] = "", path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", zoo_proc_pid(z));
	zoo_read_file(path, comm, sizeof(comm));
	comm[strcspn(comm, "\n")] = 0;
	CHECK("zombie", stat_field(z, 3) == 'Z' && !strcmp(comm, "zh-zombie") && stat_field(z, 4) == getpid(),
	      "pid %d is in state %c named '%s' with parent %ld, not a zombie zh-zombie of %d", z,
	      (char)stat_field(z, 3), comm, stat_field(z, 4), getpid());
	long sid = stat_field(z, 6), pgrp = stat_field(z, 5);
	CHECK("session", sid == h && pgrp == h && kill(h, 0) && errno == ESRCH,
	      "the zombie is in session %ld group %ld, was %d (which %s)", sid, pgrp, h,
	      kill(h, 0) == 0 ? "runs" : "is gone");
	st = 0;
	CHECK("zombie", waitpid(z, &st, WNOHANG) == z && WIFEXITED(st) && WEXITSTATUS(st) == 5,
	      "the zombie's exit status is %#x", st);
	return zoo_finish("a zombie left by a helper session");
}
