/*
 * file-locks: (dumped with --file-locks) a POSIX write lock on bytes 10-29 of file A, a
 * flock() shared lock on file B, an OFD read lock on all of file C, and a POSIX read lock on
 * bytes 0-4 of file A taken by a child through the same (fork-shared) open file; file D mapped
 * MAP_SHARED, with POSIX locks as sqlite takes them on its -shm file (a write lock on byte 120,
 * a read lock on byte 128): closing any fd of a file drops its POSIX locks, and restoring a
 * mapping opens and closes one.
 * After restore and SIGTERM a checker process (forked then) tests each lock from outside:
 * F_GETLK shows the parent's write lock on A (pid and range) and the child's read lock,
 * flock(LOCK_EX|LOCK_NB) on B is refused, F_OFD_GETLK on C shows the read lock, F_GETLK on D
 * shows both of the parent's locks, and the mapping of D still writes the file.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>

static char pa[4200], pb[4200], pc[4200], pd[4200];
static int fa, fb, fc, fd_d;
static char *map_d;
static pid_t kid;
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

/* Exit code bits: 1 posix (parent's), 2 flock, 4 ofd, 8 posix (child's), 16 mapped */
static void checker(void)
{
	int code = 0;
	int a = open(pa, O_RDWR), b = open(pb, O_RDWR), c = open(pc, O_RDWR), d = open(pd, O_RDWR);
	struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 5 };
	if (fcntl(a, F_GETLK, &q) || q.l_type != F_RDLCK || q.l_pid != kid || q.l_start != 0 || q.l_len != 5)
		code |= 8;
	struct flock q2 = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 95 };
	if (fcntl(a, F_GETLK, &q2) || q2.l_type != F_WRLCK || q2.l_pid != getppid() || q2.l_start != 10 ||
	    q2.l_len != 20)
		code |= 1;
	if (flock(b, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		code |= 2;
	struct flock q3 = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0, .l_pid = 0 };
	if (fcntl(c, F_OFD_GETLK, &q3) || q3.l_type != F_RDLCK)
		code |= 4;
	struct flock q4 = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 120, .l_len = 1 };
	struct flock q5 = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 128, .l_len = 1 };
	if (fcntl(d, F_GETLK, &q4) || q4.l_type != F_WRLCK || q4.l_pid != getppid() ||
	    fcntl(d, F_GETLK, &q5) || q5.l_type != F_RDLCK || q5.l_pid != getppid())
		code |= 16;
	char byte = 0;
	if (pread(d, &byte, 1, 200) != 1 || byte != 'm')
		code |= 16;
	_exit(code);
}

static void c_posix(ucontext_t *u)
{
	(void)u;
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 20 };
	fcntl(fa, F_SETLK, &fl);
}
static void c_flock(ucontext_t *u) { (void)u; flock(fb, LOCK_UN); }
static void c_ofd(ucontext_t *u)
{
	(void)u;
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
	fcntl(fc, F_OFD_SETLK, &fl);
}
static void c_mapped(ucontext_t *u)
{
	(void)u;
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 120, .l_len = 1 };
	fcntl(fd_d, F_SETLK, &fl);
}
static const struct zoo_corruption corruptions[] = {
	{ "posix", c_posix, 0 },
	{ "mapped", c_mapped, 0 },
	{ "flock", c_flock, 0 },
	{ "ofd", c_ofd, 0 },
};

int main(int argc, char **argv)
{
	const char *dir = getenv("ZOO_TMPDIR") ? getenv("ZOO_TMPDIR") : "/tmp";
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(pa, sizeof(pa), "%s/lock-a", dir);
	snprintf(pb, sizeof(pb), "%s/lock-b", dir);
	snprintf(pc, sizeof(pc), "%s/lock-c", dir);
	snprintf(pd, sizeof(pd), "%s/lock-d", dir);
	fd_d = open(pd, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd_d < 0 || ftruncate(fd_d, 4096) ||
	    (map_d = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd_d, 0)) == MAP_FAILED)
		zoo_die("file D: %s", strerror(errno));
	struct flock dw = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 120, .l_len = 1 };
	struct flock dr = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 128, .l_len = 1 };
	if (fcntl(fd_d, F_SETLK, &dw) || fcntl(fd_d, F_SETLK, &dr))
		zoo_die("locks on D: %s", strerror(errno));
	fa = open(pa, O_RDWR | O_CREAT, 0600);
	fb = open(pb, O_RDWR | O_CREAT, 0600);
	fc = open(pc, O_RDWR | O_CREAT, 0600);
	struct flock w = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 20 };
	struct flock r = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	if (fa < 0 || fb < 0 || fc < 0 || fcntl(fa, F_SETLK, &w) || flock(fb, LOCK_SH) ||
	    fcntl(fc, F_OFD_SETLK, &r))
		zoo_die("locks: %s", strerror(errno));
	if ((kid = fork()) == 0) {
		struct sigaction sa = { .sa_handler = on_term };
		struct flock cr = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 5 };
		sigaction(SIGTERM, &sa, NULL);
		if (fcntl(fa, F_SETLK, &cr))
			_exit(1);
		while (!child_term)
			zoo_sleep_ms(10);
		_exit(0);
	}
	zoo_sleep_ms(50);
	zoo_ready();
	zoo_wait();

	map_d[200] = 'm'; /* through the mapping, after the restore */
	pid_t ck = fork();
	if (ck == 0)
		checker();
	int st = 0;
	waitpid(ck, &st, 0);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	CHECK("posix", code != 255 && !(code & 9), "POSIX locks on A are not as they were (%d)", code);
	CHECK("flock", code == 255 || !(code & 2), "the flock on B is gone");
	CHECK("ofd", code == 255 || !(code & 4), "the OFD lock on C is gone");
	CHECK("mapped", code == 255 || !(code & 16), "the POSIX locks on the mapped file D are not as they were");
	kill(kid, SIGTERM);
	waitpid(kid, &st, 0);
	CHECK("posix", WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child ended with %#x", st);
	return zoo_finish("POSIX x2, flock, OFD, POSIX on a mapped file");
}
