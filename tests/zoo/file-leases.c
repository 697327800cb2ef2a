/*
 * file-leases: leases (fcntl F_SETLEASE), dumped with --file-locks.
 *   fd 30: a read lease on file A; fd 31: a write lease on file B, with F_SETSIG SIGUSR1;
 *   fd 32: a read lease on file C being broken (an open for writing was refused with
 *   EWOULDBLOCK: the lease goes to F_UNLCK within the break time); fd 33: a write lease on D
 *   being broken by a reader (it goes to F_RDLCK). SIGIO and SIGUSR1 are counted.
 * After restore and SIGTERM: F_GETLEASE reads F_RDLCK, F_WRLCK, F_UNLCK and F_RDLCK (what a
 * lease being broken goes to), /proc/locks shows C's and D's leases BREAKING and A's and B's
 * ACTIVE, B's signal is SIGUSR1; each lease can be given up; an open for writing of A breaks
 * its lease again.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"

static char path[4][4100];
static volatile sig_atomic_t sigios, sigusr1s;

static void on_sigio(int sig) { (void)sig; sigios++; }
static void on_usr1(int sig) { (void)sig; sigusr1s++; }

static void c_read(ucontext_t *u) { (void)u; fcntl(30, F_SETLEASE, F_UNLCK); }
static void c_write(ucontext_t *u) { (void)u; fcntl(31, F_SETSIG, 0); }
static void c_breaking(ucontext_t *u) { (void)u; fcntl(32, F_SETLEASE, F_UNLCK); fcntl(33, F_SETLEASE, F_UNLCK); }
static const struct zoo_corruption corruptions[] = {
	{ "read", c_read, 0 },
	{ "write", c_write, 0 },
	{ "breaking", c_breaking, 0 },
};

/* The state of the lease on fd's file in /proc/self/fdinfo/FD ("ACTIVE", "BREAKING", "none"). */
static const char *lease_state(int fd)
{
	static char info[2048];
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	zoo_read_file(p, info, sizeof(info));
	char *l = strstr(info, "LEASE");
	return !l ? "none" : strstr(l, "BREAKING") && strstr(l, "BREAKING") < strchr(l, '\n') ? "BREAKING" : "ACTIVE";
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	signal(SIGIO, on_sigio);
	signal(SIGUSR1, on_usr1);
	const char *dir = zoo_tmpdir();
	for (int i = 0; i < 4; i++) {
		snprintf(path[i], sizeof(path[i]), "%s/lease-%c", dir, 'A' + i);
		if (zoo_write_file(path[i], "x", 1))
			zoo_die("%s: %s", path[i], strerror(errno));
	}
	static const int open_flags[4] = { O_RDONLY, O_RDWR, O_RDONLY, O_RDWR };
	static const int type[4] = { F_RDLCK, F_WRLCK, F_RDLCK, F_WRLCK };
	for (int i = 0; i < 4; i++) {
		int fd = open(path[i], open_flags[i]);
		if (fd < 0 || dup2(fd, 30 + i) != 30 + i || close(fd) || fcntl(30 + i, F_SETLEASE, type[i]))
			zoo_die("lease on %s: %s", path[i], strerror(errno));
	}
	if (fcntl(31, F_SETSIG, SIGUSR1))
		zoo_die("F_SETSIG: %s", strerror(errno));
	if (open(path[2], O_WRONLY | O_NONBLOCK) >= 0 || errno != EWOULDBLOCK ||
	    open(path[3], O_RDONLY | O_NONBLOCK) >= 0 || errno != EWOULDBLOCK)
		zoo_die("the leases were not broken: %s", strerror(errno));
	zoo_ready();
	zoo_wait();

	CHECK("read", fcntl(30, F_GETLEASE) == F_RDLCK && !strcmp(lease_state(30), "ACTIVE"),
	      "fd 30: lease %d, %s", fcntl(30, F_GETLEASE), lease_state(30));
	CHECK("write", fcntl(31, F_GETLEASE) == F_WRLCK && !strcmp(lease_state(31), "ACTIVE") &&
			       fcntl(31, F_GETSIG) == SIGUSR1,
	      "fd 31: lease %d, %s, signal %d", fcntl(31, F_GETLEASE), lease_state(31), fcntl(31, F_GETSIG));
	CHECK("breaking", fcntl(32, F_GETLEASE) == F_UNLCK && !strcmp(lease_state(32), "BREAKING"),
	      "fd 32: lease %d, %s", fcntl(32, F_GETLEASE), lease_state(32));
	CHECK("breaking", fcntl(33, F_GETLEASE) == F_RDLCK && !strcmp(lease_state(33), "BREAKING"),
	      "fd 33: lease %d, %s", fcntl(33, F_GETLEASE), lease_state(33));
	for (int i = 0; i < 4; i++)
		CHECK("read", fcntl(30 + i, F_SETLEASE, F_UNLCK) == 0, "fd %d: cannot give up its lease: %s", 30 + i,
		      strerror(errno));
	CHECK("read", fcntl(30, F_SETLEASE, F_RDLCK) == 0 && open(path[0], O_WRONLY | O_NONBLOCK) < 0 &&
			      errno == EWOULDBLOCK && !strcmp(lease_state(30), "BREAKING"),
	      "a new lease on A is not broken by a writer");
	return zoo_finish("4 leases, 2 being broken");
}
