/*
 * unix-chroot: a unix listener bound by an absolute path, its holder chroot()ed since (lldpd's
 * unprivileged child lives in /run/lldpd; daemons that drop into a jail after binding).
 *   The child binds fd 40 to $ZOO_TMPDIR/before.sock and listens, then chroot()s into
 *   $ZOO_TMPDIR/jail and serves: each connection gets "pong" and the child's root as it sees
 *   it (a file "jail-mark" there is readable at "/jail-mark").
 * After restore and SIGTERM: the parent connects to $ZOO_TMPDIR/before.sock (the path as its
 * own root sees it) and reads "pong" and that the child is still in its jail; the child exits 0.
 * Blocks in: nanosleep (parent), accept via poll (child).
 */
#include "zoo.h"
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#define FD 40

static char sock_path[600], jail[600];
static pid_t kid;

static void c_name(ucontext_t *u)
{
	(void)u; /* what a restore that lost the socket's file would leave */
	unlink(sock_path);
}

static const struct zoo_corruption corruptions[] = {
	{ "name", c_name, 0 },
};

static volatile sig_atomic_t child_term;
static void on_term(int sig) { (void)sig; child_term = 1; }

static void serve(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	if (chroot(jail) || chdir("/"))
		_exit(2);
	while (!child_term) {
		struct pollfd p = { FD, POLLIN, 0 };
		if (poll(&p, 1, 10) != 1)
			continue;
		int c = accept(FD, NULL, NULL);
		if (c < 0)
			continue;
		char reply[32] = "pong ";
		/* in the jail, its mark is at the root */
		strcat(reply, access("/jail-mark", F_OK) == 0 ? "jailed" : "free");
		zoo_write_all(c, reply, strlen(reply));
		close(c);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(sock_path, sizeof(sock_path), "%s/before.sock", zoo_tmpdir());
	snprintf(jail, sizeof(jail), "%s/jail", zoo_tmpdir());
	char mark[700];
	snprintf(mark, sizeof(mark), "%s/jail-mark", jail);
	if ((mkdir(jail, 0755) && errno != EEXIST) || zoo_write_file(mark, "x", 1) < 0)
		zoo_die("%s: %s", jail, strerror(errno));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(sock_path) >= sizeof(sa.sun_path))
		zoo_die("%s: too long for a unix socket's name", sock_path);
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 8))
		zoo_die("bind %s: %s", sock_path, strerror(errno));
	zoo_place(s, FD, 0);
	int ready[2];
	if (pipe(ready))
		zoo_die("pipe: %s", strerror(errno));
	if ((kid = fork()) == 0) {
		close(ready[0]);
		close(ready[1]); /* the parent sees EOF once the child is on its way to the jail */
		serve();
	}
	close(ready[1]);
	char b;
	if (read(ready[0], &b, 1) < 0)
		zoo_die("read: %s", strerror(errno));
	close(ready[0]);
	close(FD);
	/* the child is in its jail once its root is not ours */
	char root[64], link[700];
	snprintf(root, sizeof(root), "/proc/%d/root", (int)zoo_proc_pid(kid));
	for (int i = 0; i < 500; i++) {
		ssize_t n = readlink(root, link, sizeof(link) - 1);
		if (n > 1)
			break;
		zoo_sleep_ms(2);
	}
	zoo_ready();
	zoo_wait();

	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	char reply[32] = "";
	if (CHECK("name", connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect to %s: %s", sock_path,
		  strerror(errno))) {
		ssize_t n = read(c, reply, sizeof(reply) - 1);
		reply[n > 0 ? n : 0] = 0;
		CHECK("name", !strcmp(reply, "pong jailed"), "the jailed listener replied '%s' (expected 'pong jailed')",
		      reply);
	}
	close(c);
	kill(kid, SIGTERM);
	int st = 0;
	waitpid(kid, &st, 0);
	CHECK("child", WIFEXITED(st) && WEXITSTATUS(st) == 0, "the jailed child ended with status %#x", st);
	unlink(sock_path);
	return zoo_finish("a listener bound by absolute path, served from a chroot jail");
}
