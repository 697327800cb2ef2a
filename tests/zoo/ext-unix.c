/*
 * ext-unix: (dumped with --ext-unix-sk) fd 90 is a datagram socket connected to a "syslog"
 * outside the tree: a daemon (double fork, so not our descendant) bound to
 * $ZOO_TMPDIR/log.sock that appends every datagram to $ZOO_TMPDIR/log.txt.
 * After restore and SIGTERM: a datagram sent through fd 90 reaches the daemon.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

static char sock_path[108], log_path[4200], pid_path[4200];

static void daemon_main(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	setsid(); /* like a real daemon; staying in our session would keep our pid in use */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	unlink(sock_path);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)))
		_exit(1);
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", getpid());
	zoo_write_file(pid_path, pid, strlen(pid));
	for (int i = 0; i < 6000; i++) { /* at most ~60 s, then it goes by itself */
		char b[64];
		ssize_t n = recv(s, b, sizeof(b), MSG_DONTWAIT);
		if (n > 0) {
			int f = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
			if (f >= 0 && write(f, b, n) == n && write(f, "\n", 1) == 1)
				close(f);
		} else {
			zoo_sleep_ms(10);
		}
	}
	_exit(0);
}

static int logged(const char *word)
{
	char text[4096] = "";
	zoo_read_file(log_path, text, sizeof(text));
	return strstr(text, word) != NULL;
}

static void c_connect(ucontext_t *u)
{
	(void)u;
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	dup3(s, 90, O_CLOEXEC);
	close(s);
}
static const struct zoo_corruption corruptions[] = {
	{ "connect", c_connect, 0 },
};

int main(int argc, char **argv)
{
	const char *dir = getenv("ZOO_TMPDIR") ? getenv("ZOO_TMPDIR") : "/tmp";
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(sock_path, sizeof(sock_path), "%s/log.sock", dir);
	snprintf(log_path, sizeof(log_path), "%s/log.txt", dir);
	snprintf(pid_path, sizeof(pid_path), "%s/daemon.pid", dir);
	pid_t a = fork();
	if (a == 0) {
		if (fork() == 0)
			daemon_main();
		_exit(0);
	}
	waitpid(a, NULL, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int connected = -1;
	for (int i = 0; i < 500 && connected; i++) {
		connected = connect(s, (struct sockaddr *)&sa, sizeof(sa));
		if (connected)
			zoo_sleep_ms(2);
	}
	if (connected || dup3(s, 90, O_CLOEXEC) != 90 || send(90, "before", 6, 0) != 6)
		zoo_die("cannot reach the daemon: %s", strerror(errno));
	close(s);
	for (int i = 0; i < 500 && !logged("before"); i++)
		zoo_sleep_ms(2);
	zoo_ready();
	zoo_wait();

	ssize_t n = send(90, "after", 5, 0);
	for (int i = 0; i < 500 && !logged("after"); i++)
		zoo_sleep_ms(2);
	CHECK("connect", n == 5 && logged("after"), "the datagram sent after restore did not arrive (%s)",
	      n < 0 ? strerror(errno) : "sent");
	char pid[16] = "";
	zoo_read_file(pid_path, pid, sizeof(pid));
	if (atoi(pid) > 0)
		kill(atoi(pid), SIGKILL);
	return zoo_finish("1 socket to an outside peer");
}
