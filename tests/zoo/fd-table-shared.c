/*
 * fd-table-shared: processes that share one fd table (clone with CLONE_FILES, not CLONE_VM),
 * in two tables of the tree.
 *   table 1, held by four: the program (its owner, first in the tree); A, made by it with
 *   CLONE_FILES; A2, made by A with CLONE_FILES (a sharer whose parent is not the owner); C,
 *   made by the program with CLONE_FILES after B (a later sibling), leads a session of its own
 *   (setsid). A also forks A3, which
 *   gets a copy (a table of its own) and opens fd 61 in it.
 *   table 2: B, forked by the program (a copy of table 1 as it was then), opens fd 60 in it and
 *   makes B1 with CLONE_FILES.
 *   In table 1: a pipe (40, 41; 42 a dup of 40), fd 43 /dev/null close-on-exec, fd 45 a pipe
 *   end with O_ASYNC owned by A (F_SETOWN), fd 500 far above the others.
 * After SIGTERM (the program's checks, each process acting on a signal):
 *   root-open: the program opens fd 70: /proc of A, A2 and C shows it, of B, B1 and A3 not;
 *   sharer-open: A2 opens fd 71 (SIGUSR1): the program finds it open in its own table;
 *   sharer-close: C closes fd 43 (SIGUSR1): the program finds it closed;
 *   second-table: B1 opens fd 72 (SIGUSR1): B's table shows it, the program's does not;
 *   own-copy: A3's fd 61 and B's fd 60 are theirs only (not in table 1), fd 60 is B1's too;
 *   owner: fd 45 is still owned by A (F_GETOWN), O_ASYNC set;
 *   pipe: bytes A writes into fd 41 come out of the program's fd 42;
 *   session: C still leads its own session.
 * Corruptions: root-open: the program leaves table 1 first (unshare); sharer-open: A2 leaves
 * it (SIGUSR2) first; sharer-close: C leaves it; second-table: B1 leaves B's table; owner: the
 * program makes itself the owner of fd 45; pipe: the program drains a byte after A's write.
 * Blocks in: nanosleep (zoo_wait loop); the children in pause().
 */
#include "zoo.h"
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>

enum { A, A2, A3, B, B1, C, NR_KIDS };
static const char *const kid_name[NR_KIDS] = { "A", "A2", "A3", "B", "B1", "C" };

/* Shared memory (MAP_SHARED): the children's pids and what they did. */
static struct board {
	pid_t pid[NR_KIDS];
	volatile int acted[NR_KIDS];
} *board;
static int me = -1; /* this process's index, -1: the program */

static int corrupting(const char *tag) { return zoo_corr && !strcmp(zoo_corr->tag, tag); }

static int fd_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static int proc_has_fd(pid_t pid, int fd)
{
	char path[96];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", zoo_proc_pid(pid), fd);
	return stat(path, &st) == 0;
}

/* SIGUSR1: the child's own step after the restore. */
static void on_usr1(int sig)
{
	(void)sig;
	if (me == A2)
		dup2(1, 71);
	else if (me == C)
		close(43);
	else if (me == B1)
		dup2(1, 72);
	else if (me == A)
		(void)!write(41, "xyz", 3);
	board->acted[me] = 1;
}

/* SIGUSR2: a corruption, the child leaves the table it shares. */
static void on_usr2(int sig)
{
	(void)sig;
	unshare(CLONE_FILES);
	board->acted[me] = 2;
}

static __attribute__((noreturn)) void kid_loop(int idx)
{
	me = idx;
	board->pid[idx] = getpid();
	for (;;)
		pause();
}

static pid_t make_kid(int files, void (*body)(void))
{
	pid_t pid = (pid_t)syscall(SYS_clone, (files ? CLONE_FILES : 0) | SIGCHLD, 0, NULL, NULL, 0);
	if (pid < 0)
		zoo_die("clone: %s", strerror(errno));
	if (pid == 0)
		body();
	return pid;
}

static void wait_kid(int idx)
{
	for (int ms = 0; !board->pid[idx] && ms < 5000; ms++)
		zoo_sleep_ms(1);
	if (!board->pid[idx])
		zoo_die("child %s did not start", kid_name[idx]);
}

static void body_a2(void) { kid_loop(A2); }
static void body_b1(void) { kid_loop(B1); }
static void body_c(void)
{
	setsid();
	kid_loop(C);
}

static void body_a3(void)
{
	if (dup2(0, 61) != 61)
		zoo_die("A3: dup2: %s", strerror(errno));
	kid_loop(A3);
}

static void body_a(void)
{
	me = A;
	make_kid(1, body_a2);
	wait_kid(A2);
	make_kid(0, body_a3);
	wait_kid(A3);
	kid_loop(A);
}

static void body_b(void)
{
	me = B;
	if (dup2(0, 60) != 60)
		zoo_die("B: dup2: %s", strerror(errno));
	make_kid(1, body_b1);
	wait_kid(B1);
	kid_loop(B);
}

/* Sends sig to child idx and waits (2 s at most) until it says it acted. */
static int poke(int idx, int sig)
{
	board->acted[idx] = 0;
	if (kill(board->pid[idx], sig))
		return 0;
	for (int ms = 0; !board->acted[idx] && ms < 2000; ms++)
		zoo_sleep_ms(1);
	return board->acted[idx];
}

static void c_root_open(ucontext_t *u) { (void)u; unshare(CLONE_FILES); }
static void c_sharer_open(ucontext_t *u) { (void)u; poke(A2, SIGUSR2); }
static void c_sharer_close(ucontext_t *u) { (void)u; poke(C, SIGUSR2); }
static void c_second_table(ucontext_t *u) { (void)u; poke(B1, SIGUSR2); }
static void c_owner(ucontext_t *u) { (void)u; fcntl(45, F_SETOWN, getpid()); }
static void c_pipe(ucontext_t *u) { (void)u; }
static const struct zoo_corruption corruptions[] = {
	{ "root-open", c_root_open, 0 },
	{ "sharer-open", c_sharer_open, 0 },
	{ "sharer-close", c_sharer_close, 0 },
	{ "second-table", c_second_table, 0 },
	{ "owner", c_owner, 0 },
	{ "pipe", c_pipe, 0 },
};

int main(int argc, char **argv)
{
	int p[2], q[2];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	board = mmap(NULL, sizeof(*board), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (board == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (pipe(p) || pipe(q) || dup2(p[0], 40) != 40 || dup2(p[1], 41) != 41 || dup2(40, 42) != 42 ||
	    null < 0 || dup3(null, 43, O_CLOEXEC) != 43 || dup2(q[0], 45) != 45 || dup2(0, 500) != 500)
		zoo_die("setting up fds: %s", strerror(errno));
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(null);
	fcntl(40, F_SETFL, O_NONBLOCK);
	/* q[1] stays open: fd 45's pipe keeps a writer */

	make_kid(1, body_a);
	wait_kid(A);
	wait_kid(A2);
	wait_kid(A3);
	make_kid(0, body_b);
	wait_kid(B);
	wait_kid(B1);
	make_kid(1, body_c);
	wait_kid(C);
	if (fcntl(45, F_SETOWN, board->pid[A]) || fcntl(45, F_SETFL, O_ASYNC))
		zoo_die("fd 45: F_SETOWN/O_ASYNC: %s", strerror(errno));
	zoo_ready();
	zoo_wait();

	/* root-open */
	CHECK("root-open", dup2(0, 70) == 70, "dup2 to fd 70: %s", strerror(errno));
	for (int k = 0; k < NR_KIDS; k++) {
		int want = k == A || k == A2 || k == C, seen = proc_has_fd(board->pid[k], 70);
		CHECK("root-open", seen == want, "fd 70, opened by the program, is %sin %s's table",
			    seen ? "" : "not ", kid_name[k]);
	}
	close(70);
	/* sharer-open */
	CHECK("sharer-open", poke(A2, SIGUSR1) && fd_open(71), "fd 71, opened by A2, is not in the "
	      "program's table");
	close(71);
	/* sharer-close */
	CHECK("sharer-close", fd_open(43), "fd 43 was closed before C closed it");
	CHECK("sharer-close", poke(C, SIGUSR1) && !fd_open(43), "fd 43, closed by C, is still open "
	      "in the program's table");
	/* second-table */
	int b1_acted = poke(B1, SIGUSR1);
	CHECK("second-table", b1_acted && proc_has_fd(board->pid[B], 72) && !fd_open(72),
	      "fd 72, opened by B1, is %sin B's table and %sin the program's",
	      proc_has_fd(board->pid[B], 72) ? "" : "not ", fd_open(72) ? "" : "not ");
	/* own-copy */
	CHECK("own-copy", proc_has_fd(board->pid[A3], 61) && !fd_open(61) && !proc_has_fd(board->pid[A], 61),
	      "fd 61 of A3 is not its own");
	CHECK("own-copy", proc_has_fd(board->pid[B], 60) && proc_has_fd(board->pid[B1], 60) && !fd_open(60),
	      "fd 60 is not in B's and B1's table only");
	/* owner */
	int owner = fcntl(45, F_GETOWN), fl = fcntl(45, F_GETFL);
	CHECK("owner", owner == board->pid[A] && fl >= 0 && (fl & O_ASYNC),
	      "fd 45: owner %d (A is %d), flags %#x", owner, board->pid[A], fl);
	/* pipe */
	char buf[8] = "";
	int got = poke(A, SIGUSR1) ? (int)read(42, buf, sizeof(buf)) : -1;
	if (corrupting("pipe") && got > 0)
		memmove(buf, buf + 1, (size_t)got--);
	CHECK("pipe", got == 3 && !memcmp(buf, "xyz", 3), "fd 42 read %d bytes (%.3s) of A's \"xyz\"", got, buf);
	/* session */
	CHECK("session", getsid(board->pid[C]) == board->pid[C], "C's session is %d, not its own (%d)",
	      getsid(board->pid[C]), board->pid[C]);
	for (int k = NR_KIDS; k-- > 0;)
		kill(board->pid[k], SIGKILL);
	waitpid(board->pid[A], NULL, 0);
	waitpid(board->pid[B], NULL, 0);
	waitpid(board->pid[C], NULL, 0);
	return zoo_finish("an fd table shared by four processes, and another by two");
}
