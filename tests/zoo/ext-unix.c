/*
 * ext-unix: (dumped with --ext-unix-sk) sockets connected to a daemon outside the tree (double
 * fork, so not our descendant):
 *   fd 90 is a datagram socket connected to its "syslog", $ZOO_TMPDIR/log.sock, which appends
 *   every datagram to $ZOO_TMPDIR/log.txt;
 *   fd 88 (O_NONBLOCK) is a stream socket connected to its echo server,
 *   $ZOO_TMPDIR/stream.sock, which answers each message with "ok:" and the message. Its key,
 *   socket:[INODE], is in $ZOO_TMPDIR/ext-key.
 * After restore and SIGTERM: a datagram sent through fd 90 reaches the daemon, and a message
 * through fd 88 is answered.
 * `ext-unix --restore-wrapper DIR -- stasis restore ...` is the outside world at restore: it
 * connects a new socket to DIR/stream.sock and runs the command with it as fd 50 and
 * --inherit-fd fd[50]:KEY added (tests/run-zoo.sh); the new socket's key is then in ext-key
 * (the key of the restored program's next dump).
 * `ext-unix --daemon DIR` starts the daemon for DIR and returns once it serves; the program
 * then finds DIR/daemon.pid and uses that one. (The init of a PID namespace cannot start one
 * outside its tree: its orphans become its own children. tests/run-zoo.sh starts it so for
 * the container flavours.)
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#define MAX_CONNS 8

static char sock_path[108], stream_path[108], log_path[4200], pid_path[4200];

static void set_paths(const char *dir)
{
	snprintf(sock_path, sizeof(sock_path), "%s/log.sock", dir);
	snprintf(stream_path, sizeof(stream_path), "%s/stream.sock", dir);
	snprintf(log_path, sizeof(log_path), "%s/log.txt", dir);
	snprintf(pid_path, sizeof(pid_path), "%s/daemon.pid", dir);
}

static int bound(int type, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int s = socket(AF_UNIX, type | SOCK_NONBLOCK, 0);
	unlink(path);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) || (type == SOCK_STREAM && listen(s, 4)))
		_exit(1);
	return s;
}

static int connected(int type, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	for (int i = 0; i < 500 && s >= 0; i++) {
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return s;
		zoo_sleep_ms(2);
	}
	if (s >= 0)
		close(s);
	return -1;
}

/* The stream side of the daemon: answers every message on every connection. */
static void serve(int l, int *conns)
{
	char b[64] = "ok:";
	int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	for (int i = 0; c >= 0 && i < MAX_CONNS; i++)
		if (conns[i] < 0) {
			conns[i] = c;
			c = -1;
		}
	if (c >= 0)
		close(c);
	for (int i = 0; i < MAX_CONNS; i++) {
		ssize_t n = conns[i] < 0 ? -1 : recv(conns[i], b + 3, sizeof(b) - 3, 0);
		if (n > 0)
			send(conns[i], b, n + 3, MSG_NOSIGNAL);
		else if (n == 0) {
			close(conns[i]);
			conns[i] = -1;
		}
	}
}

static void daemon_main(void)
{
	int conns[MAX_CONNS];
	setsid(); /* like a real daemon; staying in our session would keep our pid in use */
	int s = bound(SOCK_DGRAM, sock_path), l = bound(SOCK_STREAM, stream_path);
	memset(conns, -1, sizeof(conns));
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
		}
		serve(l, conns);
		if (n <= 0)
			zoo_sleep_ms(10);
	}
	_exit(0);
}

/* --restore-wrapper DIR -- CMD...: CMD with a new connection to DIR's echo server as fd 50. */
static int restore_wrapper(int argc, char **argv)
{
	char path[108], key_path[4200], key[64] = "", arg[80];
	char **cmd = calloc(argc + 2, sizeof(*cmd));
	if (argc < 5 || strcmp(argv[3], "--") || !cmd)
		return 2;
	snprintf(path, sizeof(path), "%s/stream.sock", argv[2]);
	snprintf(key_path, sizeof(key_path), "%s/ext-key", argv[2]);
	int s = connected(SOCK_STREAM, path);
	if (zoo_read_file(key_path, key, sizeof(key)) <= 0 || s < 0 || dup2(s, 50) != 50) {
		fprintf(stderr, "ext-unix --restore-wrapper: no key in %s or no server at %s\n", key_path, path);
		return 2;
	}
	snprintf(arg, sizeof(arg), "fd[50]:%s", key);
	/* the restored program holds this connection: the key of its next dump */
	struct stat st;
	snprintf(key, sizeof(key), "socket:[%lu]", fstat(s, &st) ? 0 : (unsigned long)st.st_ino);
	zoo_write_file(key_path, key, strlen(key));
	int n = 0;
	for (int i = 4; i < argc; i++)
		cmd[n++] = argv[i];
	cmd[n++] = "--inherit-fd";
	cmd[n++] = arg;
	execvp(cmd[0], cmd);
	fprintf(stderr, "ext-unix --restore-wrapper: %s: %s\n", cmd[0], strerror(errno));
	return 2;
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
static void c_stream(ucontext_t *u)
{
	(void)u;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	dup3(s, 88, O_CLOEXEC);
	close(s);
}
static const struct zoo_corruption corruptions[] = {
	{ "connect", c_connect, 0 },
	{ "stream", c_stream, 0 },
};

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--restore-wrapper"))
		return restore_wrapper(argc, argv);
	if (argc == 3 && !strcmp(argv[1], "--daemon")) {
		set_paths(argv[2]);
		zoo_start_daemon(daemon_main, pid_path);
		return access(pid_path, F_OK) ? 1 : 0;
	}
	const char *dir = getenv("ZOO_TMPDIR") ? getenv("ZOO_TMPDIR") : "/tmp";
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	set_paths(dir);
	if (access(pid_path, F_OK)) /* else started by --daemon */
		zoo_start_daemon(daemon_main, pid_path);
	int s = connected(SOCK_DGRAM, sock_path), t = connected(SOCK_STREAM, stream_path);
	if (s < 0 || dup3(s, 90, O_CLOEXEC) != 90 || send(90, "before", 6, 0) != 6 || t < 0 ||
	    dup3(t, 88, O_CLOEXEC) != 88 || fcntl(88, F_SETFL, O_NONBLOCK))
		zoo_die("cannot reach the daemon: %s", strerror(errno));
	close(s);
	close(t);
	struct stat st;
	char key[64], key_path[4200];
	snprintf(key_path, sizeof(key_path), "%s/ext-key", dir);
	snprintf(key, sizeof(key), "socket:[%lu]", fstat(88, &st) ? 0 : (unsigned long)st.st_ino);
	zoo_write_file(key_path, key, strlen(key));
	for (int i = 0; i < 500 && !logged("before"); i++)
		zoo_sleep_ms(2);
	zoo_ready();
	zoo_wait();

	ssize_t n = send(90, "after", 5, 0);
	for (int i = 0; i < 500 && !logged("after"); i++)
		zoo_sleep_ms(2);
	CHECK("connect", n == 5 && logged("after"), "the datagram sent after restore did not arrive (%s)",
	      n < 0 ? strerror(errno) : "sent");
	char answer[16] = "";
	struct pollfd p = { .fd = 88, .events = POLLIN };
	n = send(88, "ping", 4, MSG_NOSIGNAL);
	CHECK("stream", n == 4 && poll(&p, 1, 3000) == 1 && recv(88, answer, sizeof(answer), 0) == 7 &&
				!memcmp(answer, "ok:ping", 7),
	      "no answer through fd 88 (%s, got '%.7s')", n < 0 ? strerror(errno) : "sent", answer);
	char pid[16] = "";
	zoo_read_file(pid_path, pid, sizeof(pid));
	if (atoi(pid) > 0)
		kill(atoi(pid), SIGKILL);
	return zoo_finish("2 sockets to an outside peer");
}
