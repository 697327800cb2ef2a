/*
 * fown: files that send signals when they become readable (O_ASYNC, F_SETOWN_EX, F_SETSIG).
 *   fd 30: the read end of a pipe (write end fd 31), O_ASYNC, owned by this process, signal
 *   SIGRTMIN+1 (so its siginfo names fd 30);
 *   fd 32: a socket of a pair (other end fd 33), O_ASYNC, owned by the child C (plain SIGIO),
 *   which counts its SIGIOs and exits with the count;
 *   fd 34: the read end of a second pipe (fd 35), O_ASYNC, owned by this process group, SIGUSR2.
 * After restore and SIGTERM: each fd's owner (type and pid), signal and O_ASYNC are as set; a
 * write to fd 31 brings SIGRTMIN+1 with si_fd 30, a write to fd 35 brings SIGUSR2, a write to
 * fd 33 brings C a SIGIO.
 * Blocks in: nanosleep (zoo_wait loop; C's pause loop).
 */
#include "zoo.h"
#include <sys/socket.h>
#include <sys/wait.h>

static pid_t child;
static volatile sig_atomic_t rt_fd = -1, usr2s, child_sigios;

static void on_rt(int sig, siginfo_t *si, void *uc) { (void)sig; (void)uc; rt_fd = si->si_fd; }
static void on_usr2(int sig) { (void)sig; usr2s++; }
static void on_child_io(int sig) { (void)sig; child_sigios++; }
static void on_child_term(int sig) { (void)sig; _exit(child_sigios); }

static void c_owner(ucontext_t *u) { (void)u; fcntl(30, F_SETOWN, 0); }
static void c_async(ucontext_t *u) { (void)u; fcntl(34, F_SETFL, fcntl(34, F_GETFL) & ~O_ASYNC); }
static void c_child(ucontext_t *u) { (void)u; fcntl(32, F_SETOWN, 0); }
static const struct zoo_corruption corruptions[] = {
	{ "owner", c_owner, 0 },
	{ "async", c_async, 0 },
	{ "child", c_child, 0 },
};

static void own(int fd, int type, pid_t pid, int sig)
{
	struct f_owner_ex ex = { .type = type, .pid = pid };
	if (fcntl(fd, F_SETOWN_EX, &ex) || fcntl(fd, F_SETSIG, sig) ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC | O_NONBLOCK))
		zoo_die("fd %d: %s", fd, strerror(errno));
}

static int owner_is(int fd, int type, pid_t pid, int sig)
{
	struct f_owner_ex ex;
	return !fcntl(fd, F_GETOWN_EX, &ex) && (int)ex.type == type && ex.pid == pid && fcntl(fd, F_GETSIG) == sig &&
	       (fcntl(fd, F_GETFL) & O_ASYNC);
}

int main(int argc, char **argv)
{
	int p[2], s[2];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	struct sigaction sa = { .sa_sigaction = on_rt, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigaction(SIGRTMIN + 1, &sa, NULL);
	signal(SIGUSR2, on_usr2);
	if (pipe(p) || dup2(p[0], 30) != 30 || dup2(p[1], 31) != 31 || socketpair(AF_UNIX, SOCK_STREAM, 0, s) ||
	    dup2(s[0], 32) != 32 || dup2(s[1], 33) != 33)
		zoo_die("pipe/socketpair: %s", strerror(errno));
	close(p[0]), close(p[1]), close(s[0]), close(s[1]);
	if (pipe(p) || dup2(p[0], 34) != 34 || dup2(p[1], 35) != 35)
		zoo_die("pipe: %s", strerror(errno));
	close(p[0]), close(p[1]);
	child = fork();
	if (child == 0) {
		signal(SIGIO, on_child_io);
		signal(SIGTERM, on_child_term);
		for (;;)
			pause();
	}
	own(30, F_OWNER_PID, getpid(), SIGRTMIN + 1);
	own(32, F_OWNER_PID, child, 0);
	own(34, F_OWNER_PGRP, getpgrp(), SIGUSR2);
	zoo_ready();
	zoo_wait();

	CHECK("owner", owner_is(30, F_OWNER_PID, getpid(), SIGRTMIN + 1), "fd 30 lost its owner, signal or O_ASYNC");
	CHECK("child", owner_is(32, F_OWNER_PID, child, 0), "fd 32 lost its owner or O_ASYNC");
	CHECK("async", owner_is(34, F_OWNER_PGRP, getpgrp(), SIGUSR2), "fd 34 lost its owner, signal or O_ASYNC");
	if (write(31, "x", 1) != 1 || write(35, "y", 1) != 1 || write(33, "z", 1) != 1)
		zoo_die("write: %s", strerror(errno));
	for (int i = 0; i < 100 && (rt_fd < 0 || !usr2s); i++)
		zoo_sleep_ms(10);
	CHECK("owner", rt_fd == 30, "a write to fd 31 brought no SIGRTMIN+1 naming fd 30 (si_fd %d)", (int)rt_fd);
	CHECK("async", usr2s == 1, "a write to fd 35 brought %d SIGUSR2", (int)usr2s);
	zoo_sleep_ms(50);
	kill(child, SIGTERM);
	int st = 0;
	waitpid(child, &st, 0);
	CHECK("child", WIFEXITED(st) && WEXITSTATUS(st) == 1, "the child got %d SIGIO (status %#x), expected 1",
	      WIFEXITED(st) ? WEXITSTATUS(st) : -1, st);
	return zoo_finish("3 files sending signals to a process, a child, a group");
}
