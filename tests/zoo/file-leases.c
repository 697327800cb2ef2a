/*
 * file-leases: leases (fcntl F_SETLEASE), dumped with --file-locks, active and being broken.
 *   fd 30: a read lease on file A; fd 31: a write lease on B with F_SETSIG SIGUSR1 (active).
 *   Being broken by an open refused with EWOULDBLOCK (that opener does not wait):
 *   fd 32: a read lease on C, by a writer: it goes to F_UNLCK;
 *   fd 33: a write lease on D (fd read-write), by a reader: it goes to F_RDLCK;
 *   fd 34: a write lease on E (fd read-write), by a writer: it goes to F_UNLCK (no read lease
 *          can be taken through an fd open for writing);
 *   fd 35: a write lease on F through a read-only fd, by a writer: to F_UNLCK;
 *   fd 36 and the child's fd 37: two read leases on G (two open files, two processes), both
 *          broken by one writer;
 *   fd 39: a write lease on I (fd write-only) with F_SETSIG SIGUSR2, by a reader, SIGUSR2
 *          blocked: the lease-break signal is still pending at the dump.
 *   Being broken by an opener that waits: fd 38, a read lease on H, which the child is blocked
 *   opening for writing (/proc/locks: its BREAKER entry).
 * The breaks' SIGIOs (one each, fds 32-36 and 38) are counted.
 * After restore and SIGTERM: F_GETLEASE and /proc/PID/fdinfo show every lease as it was
 * (ACTIVE, or BREAKING and the type it goes to); B's signal is SIGUSR1; no new SIGIO came;
 * SIGUSR2 is still pending and, unblocked, comes once with si_fd 39; the child still waits in
 * its open and goes on once H's lease is given up; each lease can be given up; a new lease
 * on A is broken by a writer again.
 * Blocks in: nanosleep (zoo_wait loop); the child in openat (waiting for a lease to go).
 */
#include "zoo.h"
#include <sys/wait.h>

enum { A, B, C, D, E, F, G, H, I, NFILES };
static char path[NFILES][4100];
static volatile sig_atomic_t sigios, usr2s, usr2_fd = -1;
static pid_t kid;
static char locks[1 << 20]; /* /proc/locks, with every lock of the machine */

static void on_sigio(int sig) { (void)sig; sigios++; }
static void on_usr1(int sig) { (void)sig; }
static void on_usr2(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	usr2s++;
	usr2_fd = si->si_fd;
}

static void c_read(ucontext_t *u) { (void)u; fcntl(30, F_SETLEASE, F_UNLCK); }
static void c_write(ucontext_t *u) { (void)u; fcntl(31, F_SETSIG, 0); }
static void c_breaking(ucontext_t *u) { (void)u; fcntl(32, F_SETLEASE, F_UNLCK); fcntl(33, F_SETLEASE, F_UNLCK); }
static void c_breaking_write(ucontext_t *u) { (void)u; fcntl(34, F_SETLEASE, F_UNLCK); fcntl(35, F_SETLEASE, F_UNLCK); }
static void c_two(ucontext_t *u) { (void)u; fcntl(36, F_SETLEASE, F_UNLCK); }
static void c_waiter(ucontext_t *u) { (void)u; kill(kid, SIGKILL); zoo_sleep_ms(100); }
static void c_ghost(ucontext_t *u) { (void)u; raise(SIGIO); }
static void c_pending(ucontext_t *u) { (void)u; signal(SIGUSR2, SIG_IGN); } /* drops it */
static const struct zoo_corruption corruptions[] = {
	{ "read", c_read, 0 },
	{ "write", c_write, 0 },
	{ "breaking", c_breaking, 0 },
	{ "breaking-write", c_breaking_write, 0 },
	{ "two-leases", c_two, 0 },
	{ "waiter", c_waiter, 0 },
	{ "ghost", c_ghost, 0 },
	{ "pending", c_pending, 0 },
};

/* The lease on fd's file in /proc/PID/fdinfo/FD: "ACTIVE", "BREAKING" or "none". */
static const char *lease_state_of(pid_t pid, int fd)
{
	static char info[2048];
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/fdinfo/%d", pid, fd);
	zoo_read_file(p, info, sizeof(info));
	char *l = strstr(info, "LEASE");
	return !l ? "none" : strstr(l, "BREAKING") && strstr(l, "BREAKING") < strchr(l, '\n') ? "BREAKING" : "ACTIVE";
}
static const char *lease_state(int fd) { return lease_state_of(getpid(), fd); }

/* A lease BREAKER entry of pid in /proc/locks: an opener waiting for a lease to go. */
static int breaker_of(pid_t pid)
{
	zoo_read_file("/proc/locks", locks, sizeof(locks));
	for (char *l = locks; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		int who;
		if (sscanf(l, "%*d: -> LEASE BREAKER %*s %d", &who) == 1 && who == pid)
			return 1;
	}
	return 0;
}

/* Breaks a lease with an open that does not wait: 0 if refused with EWOULDBLOCK. */
static int break_lease(int file, int flags)
{
	int fd = open(path[file], flags | O_NONBLOCK);
	if (fd >= 0)
		close(fd);
	return fd >= 0 || errno != EWOULDBLOCK ? -1 : 0;
}

static void take_lease(int file, int flags, int fd, int type)
{
	int f = open(path[file], flags);
	if (f < 0 || dup2(f, fd) != fd || close(f) || fcntl(fd, F_SETLEASE, type))
		zoo_die("lease on %s: %s", path[file], strerror(errno));
}

/* The child: a read lease on G (fd 37), then, told to, opens H for writing and waits. */
static void child(int ready, int go)
{
	char c;
	signal(SIGIO, SIG_IGN); /* its lease's break */
	take_lease(G, O_RDONLY, 37, F_RDLCK);
	if (write(ready, "1", 1) != 1 || read(go, &c, 1) != 1)
		_exit(3);
	int fd = open(path[H], O_WRONLY);
	_exit(fd >= 0 ? 0 : 2);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	signal(SIGIO, on_sigio);
	signal(SIGUSR1, on_usr1);
	struct sigaction sa = { .sa_sigaction = on_usr2, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigset_t usr2;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	if (sigaction(SIGUSR2, &sa, NULL) || sigprocmask(SIG_BLOCK, &usr2, NULL))
		zoo_die("SIGUSR2: %s", strerror(errno));
	const char *dir = zoo_tmpdir();
	for (int i = 0; i < NFILES; i++) {
		snprintf(path[i], sizeof(path[i]), "%s/lease-%c", dir, 'A' + i);
		if (zoo_write_file(path[i], "x", 1))
			zoo_die("%s: %s", path[i], strerror(errno));
	}
	int ready[2], go[2];
	char c;
	if (pipe(ready) || pipe(go) || (kid = fork()) < 0)
		zoo_die("child: %s", strerror(errno));
	if (!kid)
		child(ready[1], go[0]);
	if (read(ready[0], &c, 1) != 1)
		zoo_die("the child did not take its lease");
	take_lease(A, O_RDONLY, 30, F_RDLCK);
	take_lease(B, O_RDWR, 31, F_WRLCK);
	take_lease(C, O_RDONLY, 32, F_RDLCK);
	take_lease(D, O_RDWR, 33, F_WRLCK);
	take_lease(E, O_RDWR, 34, F_WRLCK);
	take_lease(F, O_RDONLY, 35, F_WRLCK);
	take_lease(G, O_RDONLY, 36, F_RDLCK);
	take_lease(H, O_RDONLY, 38, F_RDLCK);
	take_lease(I, O_WRONLY, 39, F_WRLCK);
	if (fcntl(31, F_SETSIG, SIGUSR1) || fcntl(39, F_SETSIG, SIGUSR2))
		zoo_die("F_SETSIG: %s", strerror(errno));
	if (break_lease(C, O_WRONLY) || break_lease(D, O_RDONLY) || break_lease(E, O_WRONLY) ||
	    break_lease(F, O_WRONLY) || break_lease(G, O_WRONLY) || break_lease(I, O_RDONLY))
		zoo_die("the leases were not broken: %s", strerror(errno));
	if (write(go[1], "1", 1) != 1)
		zoo_die("the child is gone");
	for (int i = 0; i < 500 && (sigios < 6 || !breaker_of(kid)); i++)
		zoo_sleep_ms(10);
	if (sigios != 6 || !breaker_of(kid))
		zoo_die("the child does not wait for H's lease (%d SIGIOs)", (int)sigios);
	close(ready[0]), close(ready[1]), close(go[0]), close(go[1]);
	zoo_ready();
	zoo_wait();

	CHECK("read", fcntl(30, F_GETLEASE) == F_RDLCK && !strcmp(lease_state(30), "ACTIVE"),
	      "fd 30: lease %d, %s", fcntl(30, F_GETLEASE), lease_state(30));
	CHECK("write", fcntl(31, F_GETLEASE) == F_WRLCK && !strcmp(lease_state(31), "ACTIVE") &&
			       fcntl(31, F_GETSIG) == SIGUSR1,
	      "fd 31: lease %d, %s, signal %d", fcntl(31, F_GETLEASE), lease_state(31), fcntl(31, F_GETSIG));
	static const struct { const char *tag; int fd, to; } breaking[] = {
		{ "breaking", 32, F_UNLCK }, { "breaking", 33, F_RDLCK },   { "breaking-write", 34, F_UNLCK },
		{ "breaking-write", 35, F_UNLCK }, { "two-leases", 36, F_UNLCK }, { "waiter", 38, F_UNLCK },
		{ "pending", 39, F_RDLCK },
	};
	for (size_t i = 0; i < sizeof(breaking) / sizeof(breaking[0]); i++) {
		int fd = breaking[i].fd;
		CHECK(breaking[i].tag, fcntl(fd, F_GETLEASE) == breaking[i].to && !strcmp(lease_state(fd), "BREAKING"),
		      "fd %d: lease %d (want %d), %s", fd, fcntl(fd, F_GETLEASE), breaking[i].to, lease_state(fd));
	}
	CHECK("two-leases", !strcmp(lease_state_of(kid, 37), "BREAKING"), "the child's fd 37: %s",
	      lease_state_of(kid, 37));
	CHECK("waiter", breaker_of(kid), "the child %d does not wait in its open of H", kid);
	CHECK("ghost", sigios == 6, "%d SIGIOs, not the 6 of the breaks", (int)sigios);
	sigset_t pending;
	CHECK("pending", !sigpending(&pending) && sigismember(&pending, SIGUSR2) && !usr2s,
	      "SIGUSR2 is not pending (%d came)", (int)usr2s);
	sigprocmask(SIG_UNBLOCK, &usr2, NULL);
	CHECK("pending", usr2s == 1 && usr2_fd == 39, "%d SIGUSR2 came, si_fd %d", (int)usr2s, (int)usr2_fd);
	for (int fd = 30; fd <= 39; fd++)
		CHECK("read", fd == 37 || fcntl(fd, F_SETLEASE, F_UNLCK) == 0, "fd %d: cannot give up its lease: %s",
		      fd, strerror(errno));
	int st = -1;
	for (int i = 0; i < 300 && waitpid(kid, &st, WNOHANG) == 0; i++)
		zoo_sleep_ms(10);
	CHECK("waiter", WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child ended with %#x", st);
	CHECK("read", fcntl(30, F_SETLEASE, F_RDLCK) == 0 && break_lease(A, O_WRONLY) == 0 &&
			      !strcmp(lease_state(30), "BREAKING"),
	      "a new lease on A is not broken by a writer");
	return zoo_finish("10 leases, 8 being broken, one opener waiting");
}
