/*
 * zombie-status: zombies that ended every way a process can, core dumps included, in a
 * directory of their own (the program's working directory: $ZOO_TMPDIR).
 *   Z1 exits with status 3; Z2 is killed by SIGTERM; Z3 dies of SIGABRT with an unlimited
 *   core size (it dumps core where core_pattern says: with this machine's "core" pattern, in
 *   the working directory; its status has the core bit); Z4 dies of SIGSEGV with a core size
 *   of 0 and Z5 of SIGQUIT while not dumpable (neither dumps core: no core bit).
 *   Their wait statuses are read (WNOWAIT) before the dump, then any core file is removed.
 * After restore and SIGTERM: each is still a zombie whose wait status (WNOWAIT, then
 * waitpid) is exactly what it was, core bit included, and no core file appeared in the
 * working directory (a zombie made again must not dump a core that is not its own, nor one
 * anywhere but where the engine can take it away).
 * Blocks in: nanosleep.
 */
#include "zoo.h"
#include <dirent.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define NZ 5
static pid_t z[NZ];
static int want[NZ];

static int status_of(pid_t pid, int flags)
{
	siginfo_t si = { 0 };
	if (waitid(P_PID, pid, &si, WEXITED | flags) || si.si_pid != pid)
		return -1;
	if (si.si_code == CLD_EXITED)
		return (si.si_status & 0xff) << 8;
	return si.si_status | (si.si_code == CLD_DUMPED ? 0x80 : 0);
}

/* Zombie i, made again: it ends as number i does. */
static pid_t make_zombie(int i, bool core)
{
	pid_t pid = fork();
	if (pid)
		return pid;
	struct rlimit lim = { core ? RLIM_INFINITY : 0, core ? RLIM_INFINITY : 0 };
	setrlimit(RLIMIT_CORE, &lim);
	switch (i) {
	case 0: _exit(3);
	case 1: raise(SIGTERM); break;
	case 2: abort();
	case 3: raise(SIGSEGV); break;
	case 4: prctl(PR_SET_DUMPABLE, 0); raise(SIGQUIT); break;
	}
	_exit(99);
}

/* Core files (names starting "core") in the working directory: removed with remove. */
static int cores_here(bool remove)
{
	DIR *d = opendir(".");
	int n = 0;
	for (struct dirent *de; d && (de = readdir(d));)
		if (!strncmp(de->d_name, "core", 4)) {
			n++;
			if (remove)
				unlink(de->d_name);
		}
	if (d)
		closedir(d);
	return n;
}

static void remake(int i, bool core)
{
	waitpid(z[i], NULL, 0);
	z[i] = make_zombie(i, core);
	status_of(z[i], WNOWAIT);
}
/* Z1 exits with another status */
static void c_status(ucontext_t *u) { (void)u; waitpid(z[0], NULL, 0); if (!(z[0] = fork())) _exit(4); status_of(z[0], WNOWAIT); }
/* Z3 dies of the same signal without its core (or Z4 with one where Z3 could not dump) */
static void c_core(ucontext_t *u) { (void)u; if (want[2] & 0x80) remake(2, false); else remake(3, true); }
static void c_corefile(ucontext_t *u) { (void)u; close(open("core", O_CREAT | O_WRONLY, 0600)); }
static void c_zombie(ucontext_t *u) { (void)u; waitpid(z[1], NULL, 0); }

static const struct zoo_corruption corruptions[] = {
	{ "status", c_status, 0 },
	{ "core", c_core, 0 },
	{ "corefile", c_corefile, 0 },
	{ "zombie", c_zombie, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (chdir(zoo_tmpdir()))
		zoo_die("chdir %s: %s", zoo_tmpdir(), strerror(errno));
	for (int i = 0; i < NZ; i++) {
		if ((z[i] = make_zombie(i, i == 2)) < 0 || (want[i] = status_of(z[i], WNOWAIT)) < 0)
			zoo_die("zombie %d: %s", i + 1, strerror(errno));
	}
	cores_here(true);
	zoo_ready();
	zoo_wait();

	for (int i = 0; i < NZ; i++) {
		int now = status_of(z[i], WNOWAIT);
		CHECK(i == 1 ? "zombie" : i == 0 ? "status" : "core", now == want[i],
		      "zombie %d (pid %d): wait status %#x, was %#x", i + 1, z[i], now, want[i]);
	}
	int n = cores_here(true);
	CHECK("corefile", n == 0, "%d core file(s) appeared in %s", n, zoo_tmpdir());
	for (int i = 0; i < NZ; i++) {
		int st = -1;
		if (waitpid(z[i], &st, WNOHANG) == z[i])
			CHECK("status", st == want[i], "zombie %d: waitpid says %#x, was %#x", i + 1, st, want[i]);
	}
	return zoo_finish(want[2] & 0x80 ? "5 zombies (exit 3, SIGTERM, SIGABRT with core, SIGSEGV and SIGQUIT without)"
					 : "5 zombies (exit 3, SIGTERM, SIGABRT, SIGSEGV, SIGQUIT; core_pattern let none dump core)");
}
