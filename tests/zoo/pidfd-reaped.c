/*
 * pidfd-reaped: pidfds of processes that exited and were reaped.
 *   A and B: children that exited and were reaped.
 *   fd 30: a pidfd of A; fd 31: another pidfd of A (a second pidfd_open: its own open file);
 *   fd 32: a dup of fd 30; fd 33: a pidfd of B, PIDFD_NONBLOCK.
 *   H: a child that holds at fd 34 a pidfd of C, its own child that exited and was reaped (a
 *   process other than the root holding one: in a PID namespace of its own, the root makes them).
 * After restore and SIGTERM: fds 30, 31, 32 have one inode and fd 33 another (pidfs gives
 * each process its own); 30 and 32 are one open file, 31 is another (kcmp), 33 is non-blocking;
 * each refers to a reaped process (pidfd_send_signal fails with ESRCH); H finds the same of fd 34.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <linux/kcmp.h>
#include <sys/wait.h>

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

static void c_inode(ucontext_t *u) { (void)u; dup2(31, 33); }
static void c_shared(ucontext_t *u) { (void)u; dup2(31, 32); }
static void c_holder(ucontext_t *u) { (void)u; } /* H closes its pidfd itself */
static const struct zoo_corruption corruptions[] = {
	{ "holder", c_holder, 0 },
	{ "inode", c_inode, 0 },
	{ "shared", c_shared, 0 },
};

static int reaped_child(int *pidfd, int *second, int flags)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(7);
	*pidfd = syscall(SYS_pidfd_open, pid, flags);
	if (second)
		*second = syscall(SYS_pidfd_open, pid, 0);
	siginfo_t si;
	if (*pidfd < 0 || (second && *second < 0) || waitid(P_PID, pid, &si, WEXITED))
		zoo_die("pidfd: %s", strerror(errno));
	return pid;
}

static volatile sig_atomic_t holder_term;
static void on_holder_term(int sig) { (void)sig; holder_term = 1; }

/* H: exit 0 if fd 34 still is a pidfd of a reaped process after SIGTERM, else 1 */
static pid_t start_holder(void)
{
	int ready[2];
	char c = 0;
	if (pipe(ready))
		zoo_die("pipe");
	pid_t h = fork();
	if (h == 0) {
		struct sigaction sa = { .sa_handler = on_holder_term };
		int c_fd;
		sigaction(SIGTERM, &sa, NULL);
		reaped_child(&c_fd, NULL, 0);
		if (dup2(c_fd, 34) != 34)
			_exit(2);
		close(c_fd);
		if (write(ready[1], &c, 1) != 1)
			_exit(2);
		while (!holder_term)
			zoo_sleep_ms(5);
		if (zoo_corr && !strcmp(zoo_corr->tag, "holder"))
			close(34);
		errno = 0;
		_exit(!(syscall(SYS_pidfd_send_signal, 34, 0, NULL, 0) < 0 && errno == ESRCH));
	}
	if (h < 0 || read(ready[0], &c, 1) != 1)
		zoo_die("the holder did not start");
	close(ready[0]);
	close(ready[1]);
	return h;
}

static int same_file(int a, int b)
{
	pid_t me = getpid();
	return syscall(SYS_kcmp, me, me, KCMP_FILE, a, b) == 0;
}

int main(int argc, char **argv)
{
	int a, a2, b;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	reaped_child(&a, &a2, 0);
	reaped_child(&b, NULL, PIDFD_NONBLOCK);
	if (dup2(a, 30) != 30 || dup2(a2, 31) != 31 || dup2(a, 32) != 32 || dup2(b, 33) != 33)
		zoo_die("dup2: %s", strerror(errno));
	close(a), close(a2), close(b);
	pid_t holder = start_holder();
	zoo_ready();
	zoo_wait();

	struct stat s[4];
	for (int i = 0; i < 4; i++)
		fstat(30 + i, &s[i]);
	CHECK("inode", s[0].st_ino == s[1].st_ino && s[0].st_ino == s[2].st_ino && s[3].st_ino != s[0].st_ino,
	      "inodes %lu %lu %lu %lu: A's three, then B's", (unsigned long)s[0].st_ino, (unsigned long)s[1].st_ino,
	      (unsigned long)s[2].st_ino, (unsigned long)s[3].st_ino);
	CHECK("shared", same_file(30, 32) && !same_file(30, 31) && !same_file(31, 32),
	      "fd 32 is %s fd 30's open file, fd 31 %s", same_file(30, 32) ? "" : "not", same_file(30, 31) ? "is too" : "is not");
	CHECK("inode", (fcntl(33, F_GETFL) & O_NONBLOCK) && !(fcntl(31, F_GETFL) & O_NONBLOCK),
	      "fd 33 flags %#o, fd 31 %#o", fcntl(33, F_GETFL), fcntl(31, F_GETFL));
	for (int i = 0; i < 4; i++)
		CHECK("inode", syscall(SYS_pidfd_send_signal, 30 + i, 0, NULL, 0) < 0 && errno == ESRCH,
		      "fd %d does not refer to a reaped process", 30 + i);
	int st;
	CHECK("holder", zoo_child_bits(holder, &st) == 0,
	      "the child %d's fd 34 is no pidfd of a reaped process (status %#x)", holder, st);
	return zoo_finish("5 pidfds of 3 reaped processes, one held by a child");
}
