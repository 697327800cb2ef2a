/*
 * unix-accepted: connections accepted from listeners of the tree, both ends in the tree.
 *   fd 60 SOCK_STREAM listening on $ZOO_TMPDIR/acc.sock;
 *   fd 61 a client connected to it, fd 62 the connection accepted; "to-62" waits in 62,
 *         "to-61" in 61;
 *   fd 63 a client bound to an abstract name, connected to acc.sock; its accepted end is fd 80
 *         of a child process, with "to-80" waiting;
 *   fd 64 a SOCK_SEQPACKET client of a listener on an abstract name that was closed since;
 *         fd 65 its accepted end.
 * After restore and SIGTERM: each end reads its own name and its peer's as before (accepted
 * ends bear their listener's name, 61 none, 63 its own), the data waits where it waited and
 * both directions carry more; the child's end too; acc.sock accepts a new connection, the
 * closed listener's name refuses one.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

static struct sockaddr_un acc_sa, c2_sa, l2_sa, none_sa = { .sun_family = AF_UNIX };
static socklen_t c2_len, l2_len;
static pid_t kid;
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

static int client(int type, const struct sockaddr_un *own, socklen_t own_len, const struct sockaddr_un *to,
		  socklen_t to_len)
{
	int s = socket(AF_UNIX, type, 0);
	if (s < 0 || (own && bind(s, (const struct sockaddr *)own, own_len)) ||
	    connect(s, (const struct sockaddr *)to, to_len))
		return -1;
	return s;
}

static int same_addr(const struct sockaddr_un *got, socklen_t got_len, const struct sockaddr_un *sa, socklen_t len)
{
	if (sa->sun_path[0])
		return got_len > offsetof(struct sockaddr_un, sun_path) && !strcmp(got->sun_path, sa->sun_path);
	return got_len == len && !memcmp(got, sa, len);
}

/* fd's own name and its peer's, as getsockname/getpeername give them. */
static int names(int fd, const struct sockaddr_un *own, socklen_t own_len, const struct sockaddr_un *peer,
		 socklen_t peer_len)
{
	struct sockaddr_un a, b;
	socklen_t al = sizeof(a), bl = sizeof(b);
	return !getsockname(fd, (struct sockaddr *)&a, &al) && !getpeername(fd, (struct sockaddr *)&b, &bl) &&
	       same_addr(&a, al, own, own_len) && same_addr(&b, bl, peer, peer_len);
}

static int got(int fd, const char *want)
{
	char b[16] = "";
	size_t n = strlen(want);
	return recv(fd, b, n, MSG_DONTWAIT) == (ssize_t)n && !memcmp(b, want, n);
}

static int both_ways(int a, int b)
{
	return send(a, "ab", 2, MSG_NOSIGNAL) == 2 && got(b, "ab") && send(b, "ba", 2, MSG_NOSIGNAL) == 2 && got(a, "ba");
}

/* Exit code 0: its end bears the listener's name, 63's as its peer, and carries data. */
static void child(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	for (int fd = 60; fd <= 65; fd++)
		close(fd);
	while (!child_term)
		zoo_sleep_ms(10);
	_exit(names(80, &acc_sa, sizeof(acc_sa), &c2_sa, c2_len) && got(80, "to-80") && send(80, "from-80", 7, MSG_NOSIGNAL) == 7 ? 0 : 1);
}

static void c_names(ucontext_t *u) { (void)u; zoo_place(client(SOCK_STREAM, NULL, 0, &acc_sa, sizeof(acc_sa)), 62, O_CLOEXEC); }
static void c_data(ucontext_t *u) { (void)u; char b[8]; recv(62, b, sizeof(b), MSG_DONTWAIT); }
static void c_listener(ucontext_t *u) { (void)u; close(60); }
static void c_child(ucontext_t *u) { (void)u; kill(kid, SIGKILL); }
static const struct zoo_corruption corruptions[] = {
	{ "names", c_names, 0 },
	{ "data", c_data, 0 },
	{ "listener", c_listener, 0 },
	{ "child", c_child, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	const char *dir = zoo_tmpdir(); /* (after --list-corruptions, which makes none) */
	acc_sa.sun_family = c2_sa.sun_family = l2_sa.sun_family = AF_UNIX;
	if (snprintf(acc_sa.sun_path, sizeof(acc_sa.sun_path), "%.90s/acc.sock", dir) >= 100)
		zoo_die("%s: too long a directory", dir);
	c2_len = offsetof(struct sockaddr_un, sun_path) + 1 +
		 snprintf(c2_sa.sun_path + 1, sizeof(c2_sa.sun_path) - 1, "zoo-acc-c2-%d", getpid());
	l2_len = offsetof(struct sockaddr_un, sun_path) + 1 +
		 snprintf(l2_sa.sun_path + 1, sizeof(l2_sa.sun_path) - 1, "zoo-acc-l2-%d", getpid());
	unlink(acc_sa.sun_path);
	int l = socket(AF_UNIX, SOCK_STREAM, 0), l2 = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&acc_sa, sizeof(acc_sa)) || listen(l, 8) ||
	    bind(l2, (struct sockaddr *)&l2_sa, l2_len) || listen(l2, 8))
		zoo_die("listen: %s", strerror(errno));
	zoo_place(l, 60, O_CLOEXEC);
	zoo_place(client(SOCK_STREAM, NULL, 0, &acc_sa, sizeof(acc_sa)), 61, O_CLOEXEC);
	zoo_place(accept(60, NULL, NULL), 62, O_CLOEXEC);
	zoo_place(client(SOCK_STREAM, &c2_sa, c2_len, &acc_sa, sizeof(acc_sa)), 63, O_CLOEXEC);
	zoo_place(accept(60, NULL, NULL), 80, O_CLOEXEC);
	zoo_place(client(SOCK_SEQPACKET, NULL, 0, &l2_sa, l2_len), 64, O_CLOEXEC);
	zoo_place(accept(l2, NULL, NULL), 65, O_CLOEXEC);
	close(l2);
	if (send(61, "to-62", 5, 0) != 5 || send(62, "to-61", 5, 0) != 5 || send(63, "to-80", 5, 0) != 5)
		zoo_die("send: %s", strerror(errno));
	kid = fork();
	if (kid == 0)
		child();
	close(80);
	zoo_ready();
	zoo_wait();

	socklen_t none_len = offsetof(struct sockaddr_un, sun_path);
	CHECK("names", names(62, &acc_sa, sizeof(acc_sa), &none_sa, none_len) &&
			       names(61, &none_sa, none_len, &acc_sa, sizeof(acc_sa)),
	      "fds 61/62 do not read their names");
	CHECK("names", names(63, &c2_sa, c2_len, &acc_sa, sizeof(acc_sa)), "fd 63 does not read its names");
	CHECK("names", names(65, &l2_sa, l2_len, &none_sa, none_len) && names(64, &none_sa, none_len, &l2_sa, l2_len),
	      "fds 64/65 do not read their names");
	CHECK("data", got(62, "to-62") && got(61, "to-61"), "the data waiting in 61/62 is gone");
	CHECK("data", both_ways(61, 62) && both_ways(64, 65), "the connections do not carry data both ways");
	int c = client(SOCK_STREAM | SOCK_CLOEXEC, NULL, 0, &acc_sa, sizeof(acc_sa)), s = -1;
	CHECK("listener", c >= 0 && (s = accept4(60, NULL, NULL, SOCK_CLOEXEC)) >= 0 && both_ways(c, s),
	      "acc.sock does not accept: %s", strerror(errno));
	int refused = client(SOCK_SEQPACKET | SOCK_CLOEXEC, NULL, 0, &l2_sa, l2_len);
	CHECK("listener", refused < 0 && errno == ECONNREFUSED, "the closed listener's name answers");
	kill(kid, SIGTERM);
	int st = 0;
	waitpid(kid, &st, 0);
	CHECK("child", WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's accepted end is wrong (%#x)", st);
	CHECK("child", got(63, "from-80"), "63 did not hear from the child");
	unlink(acc_sa.sun_path);
	return zoo_finish("3 accepted connections, one in a child, one of a closed listener");
}
