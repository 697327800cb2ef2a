/*
 * unix-renamed: a unix stream listener bound to a temporary name and its socket file renamed
 * over the final name, as haproxy makes its stats socket (bind NAME.PID.tmp, listen, rename to
 * NAME; the file at NAME before was a stale one, a socket file no socket is bound to any
 * more), with a client connected through the final name, accepted, a message waiting unread in
 * the accepted end.
 * After restore and SIGTERM: the file at the final name is a socket file, none is at the
 * temporary name; the listener's own name (getsockname) is still the temporary one; the
 * accepted end reads its message and answers the client; a new client connects through the
 * final name, is accepted and answered.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static char tmp_name[600], final_name[600];
static int lsn, cli, acc;

static int unix_addr(struct sockaddr_un *sa, const char *path)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", path);
	return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa;
	int len = unix_addr(&sa, path), s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s >= 0 && connect(s, (struct sockaddr *)&sa, len)) {
		close(s);
		return -1;
	}
	return s;
}

static int listen_on(const char *path)
{
	struct sockaddr_un sa;
	int len = unix_addr(&sa, path), s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, len) || listen(s, 8))
		zoo_die("listener at %s: %s", path, strerror(errno));
	return s;
}

static void c_file(ucontext_t *u) { (void)u; unlink(final_name); }
static void c_name(ucontext_t *u) /* a listener bound to the final name in its place */
{
	(void)u;
	unlink(final_name);
	dup2(listen_on(final_name), lsn);
}
static void c_accepted(ucontext_t *u)
{
	(void)u;
	char buf[16];
	if (recv(acc, buf, sizeof(buf), MSG_DONTWAIT) < 0)
		zoo_die("recv: %s", strerror(errno));
}
static const struct zoo_corruption corruptions[] = {
	{ "file", c_file, 0 },
	{ "name", c_name, 0 },
	{ "accepted", c_accepted, 0 },
};

/* One message from a to b and one back; 1 if both came. */
static int round_trip(int a, int b, const char *msg)
{
	char buf[64];
	ssize_t n;
	if (send(a, msg, strlen(msg), 0) != (ssize_t)strlen(msg))
		return 0;
	n = recv(b, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	if (n != (ssize_t)strlen(msg) || memcmp(buf, msg, n))
		return 0;
	return send(b, "ok", 2, 0) == 2 && recv(a, buf, sizeof(buf), MSG_DONTWAIT) == 2 && !memcmp(buf, "ok", 2);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	const char *dir = zoo_tmpdir();
	snprintf(final_name, sizeof(final_name), "%s/admin.sock", dir);
	snprintf(tmp_name, sizeof(tmp_name), "%s/admin.sock.%d.tmp", dir, (int)getpid());
	if (strlen(tmp_name) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		zoo_die("%s is too long for a unix socket name", tmp_name);
	close(listen_on(final_name)); /* the stale file a previous run left */
	lsn = listen_on(tmp_name);
	if (rename(tmp_name, final_name))
		zoo_die("rename: %s", strerror(errno));
	if ((cli = connect_to(final_name)) < 0 || (acc = accept4(lsn, NULL, NULL, SOCK_CLOEXEC)) < 0)
		zoo_die("connect/accept: %s", strerror(errno));
	if (send(cli, "ping", 4, 0) != 4)
		zoo_die("send: %s", strerror(errno));

	zoo_ready();
	zoo_wait();

	struct stat st;
	CHECK("file", !stat(final_name, &st) && S_ISSOCK(st.st_mode), "no socket file at %s", final_name);
	CHECK("file", stat(tmp_name, &st) && errno == ENOENT, "a file at the temporary name %s", tmp_name);
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	CHECK("name", !getsockname(lsn, (struct sockaddr *)&sa, &len) && !strcmp(sa.sun_path, tmp_name),
	      "the listener's name is '%s', was %s", sa.sun_path, tmp_name);
	char buf[16] = "";
	ssize_t n = recv(acc, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	CHECK("accepted", n == 4 && !memcmp(buf, "ping", 4), "the accepted end read %zd bytes '%s'", n, buf);
	CHECK("accepted", round_trip(cli, acc, "again"), "the accepted connection does not carry messages");
	int c2 = connect_to(final_name), a2 = -1;
	CHECK("file", c2 >= 0, "connect to %s: %s", final_name, strerror(errno));
	if (c2 >= 0) {
		a2 = accept4(lsn, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		CHECK("file", a2 >= 0 && round_trip(c2, a2, "new"), "a new client through %s not answered",
		      final_name);
	}
	return zoo_finish("(listener renamed over a stale file: reached through its new name)");
}
