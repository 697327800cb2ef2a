/*
 * tcp-accept-queue: (dumped with --tcp-established) TCP listeners whose connections from
 * clients outside the tree wait in their accept queues, never accepted before the dump:
 *   fd 60 listens on 127.0.0.1, fd 61 on [::1], fd 62 on [::] (dual stack); backlog 16;
 *   its daemon, a peer outside the tree (double fork), connected in this order:
 *     0 to fd 60 and wrote 3000 bytes, 1 to fd 60 and wrote 100000 (more than the 64 KiB a
 *     window starts with), 2 to fd 60 and wrote nothing, 3 to fd 61 and wrote 70000, 4 to fd 61
 *     and wrote nothing, 5 over IPv4 to fd 62 (a v4-mapped client) and wrote 500;
 *   the daemon waited until every byte was in our receive queues, and wrote its clients' ports
 *   in $ZOO_TMPDIR/clients.
 * After restore and SIGTERM: each listener accepts its connections in that order, from those
 * addresses and ports, each gives exactly the bytes its client wrote and nothing more; then
 * each sends its client 80000 bytes, gets 20000 more from it, and closes. The daemon checks
 * every byte it gets, that it met no reset and that each connection ends with end-of-file,
 * and writes its verdict in $ZOO_TMPDIR/peer-result.
 * `tcp-accept-queue --daemon DIR` starts the daemon for DIR and returns (the init of a PID
 * namespace cannot start one outside its tree; tests/run-zoo.sh does it for the pidns flavour);
 * the daemon connects once the program has written DIR/ports, and goes by itself after 120 s.
 * The program starts one of its own unless one waits for it (DIR/daemon-waiting).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/sockios.h>

#define NR_CLIENTS 6
#define REPLY 80000
#define MORE 20000
#define DAEMON_SECONDS 120

static const struct client {
	int listener; /* fd */
	int family;   /* of the client's socket */
	size_t len;   /* what it writes before the dump */
} clients[NR_CLIENTS] = {
	{ 60, AF_INET, 3000 }, { 60, AF_INET, 100000 }, { 60, AF_INET, 0 },
	{ 61, AF_INET6, 70000 }, { 61, AF_INET6, 0 }, { 62, AF_INET, 500 },
};

static char waiting_path[4200], ports_path[4200], clients_path[4200], connected_path[4200], result_path[4200],
	pid_path[4200];

static void set_paths(const char *dir)
{
	snprintf(waiting_path, sizeof(waiting_path), "%s/daemon-waiting", dir);
	snprintf(ports_path, sizeof(ports_path), "%s/ports", dir);
	snprintf(clients_path, sizeof(clients_path), "%s/clients", dir);
	snprintf(connected_path, sizeof(connected_path), "%s/connected", dir);
	snprintf(result_path, sizeof(result_path), "%s/peer-result", dir);
	snprintf(pid_path, sizeof(pid_path), "%s/daemon.pid", dir);
}

/* Writes whole (blocking): 1 if every byte went. */
static int send_pattern(int fd, size_t len, uint64_t seed)
{
	char buf[4096];
	for (size_t done = 0; done < len;) {
		size_t n = len - done < sizeof(buf) ? len - done : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)zoo_pattern(done + i, seed);
		ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
		if (w <= 0)
			return 0;
		done += (size_t)w;
	}
	return 1;
}

/* Reads len bytes (up to ms for each piece, -1: no end): 1 if they are the pattern of seed;
 * *why if not. */
static int take(int fd, size_t len, uint64_t seed, int ms, const char **why)
{
	char buf[4096];
	size_t got = 0;
	while (got < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, ms) <= 0)
			return *why = "timeout", 0;
		ssize_t n = recv(fd, buf, len - got < sizeof(buf) ? len - got : sizeof(buf), 0);
		if (n <= 0)
			return *why = n ? strerror(errno) : "end of file", 0;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != (char)zoo_pattern(got + (size_t)i, seed))
				return *why = "wrong bytes", 0;
		got += (size_t)n;
	}
	return 1;
}

static void loopback(int family, uint16_t port, struct sockaddr_storage *sa, socklen_t *len)
{
	memset(sa, 0, sizeof(*sa));
	sa->ss_family = family;
	if (family == AF_INET) {
		((struct sockaddr_in *)sa)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		((struct sockaddr_in *)sa)->sin_port = htons(port);
		*len = sizeof(struct sockaddr_in);
	} else {
		((struct sockaddr_in6 *)sa)->sin6_addr = in6addr_loopback;
		((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
		*len = sizeof(struct sockaddr_in6);
	}
}

/* ---- the daemon: the clients, outside the tree ---- */

static void daemon_fail(int i, const char *what, const char *why)
{
	char b[256];
	int n = snprintf(b, sizeof(b), "client %d: %s: %s\n", i, what, why);
	zoo_write_file(result_path, b, (size_t)n);
	_exit(1);
}

static void daemon_main(void)
{
	char text[128] = "", pid[16];
	int s[NR_CLIENTS], ports[3];
	setsid();
	if (chdir("/")) /* like a daemon: not counted among the program's processes */
		_exit(1);
	for (int fd = 60; fd <= 62; fd++) /* the listeners are the tree's alone */
		close(fd);
	zoo_write_file(waiting_path, "", 0);
	snprintf(pid, sizeof(pid), "%d", getpid());
	zoo_write_file(pid_path, pid, strlen(pid));
	alarm(DAEMON_SECONDS); /* it goes by itself */
	while (zoo_read_file(ports_path, text, sizeof(text)) <= 0 ||
	       sscanf(text, "%d %d %d", &ports[0], &ports[1], &ports[2]) != 3)
		zoo_sleep_ms(10);
	unlink(waiting_path);
	size_t at = 0;
	char list[256] = "";
	for (int i = 0; i < NR_CLIENTS; i++) {
		const struct client *c = &clients[i];
		struct sockaddr_storage sa, me;
		socklen_t len, mlen = sizeof(me);
		loopback(c->family, ports[c->listener - 60], &sa, &len);
		s[i] = socket(c->family, SOCK_STREAM, 0);
		if (s[i] < 0 || connect(s[i], (struct sockaddr *)&sa, len) || getsockname(s[i], (struct sockaddr *)&me, &mlen))
			daemon_fail(i, "connect", strerror(errno));
		if (!send_pattern(s[i], c->len, 1000 + i))
			daemon_fail(i, "write", strerror(errno));
		int outq = 1;
		for (int k = 0; k < 500 && outq; k++) { /* every byte in the listener's queue */
			ioctl(s[i], SIOCOUTQ, &outq);
			if (outq)
				zoo_sleep_ms(10);
		}
		if (outq)
			daemon_fail(i, "write", "its bytes did not all reach the server");
		at += snprintf(list + at, sizeof(list) - at, "%d\n",
			       ntohs(((struct sockaddr_in *)&me)->sin_port)); /* (sin6_port: same place) */
	}
	zoo_write_file(clients_path, list, at);
	zoo_write_file(connected_path, "", 0);
	/* after the restore: the server's REPLY bytes, then MORE from us, then its end-of-file */
	for (int i = 0; i < NR_CLIENTS; i++) {
		const char *why = "";
		char b;
		if (!take(s[i], REPLY, 2000 + i, -1, &why))
			daemon_fail(i, "the server's reply", why);
		if (!send_pattern(s[i], MORE, 3000 + i))
			daemon_fail(i, "write after the restore", strerror(errno));
		struct pollfd p = { s[i], POLLIN, 0 };
		ssize_t n = poll(&p, 1, 10000) == 1 ? recv(s[i], &b, 1, 0) : -2;
		if (n != 0)
			daemon_fail(i, "the server's end", n > 0 ? "more bytes" : n == -1 ? strerror(errno) : "timeout");
	}
	zoo_write_file(result_path, "ok\n", 3);
	_exit(0);
}

/* ---- the program ---- */

static int accepted[NR_CLIENTS] = { -1, -1, -1, -1, -1, -1 }; /* a corruption may accept early */
static int client_ports[NR_CLIENTS];

/* The next connection waiting on fd within 5 s, its peer in sa. */
static int accept_within(int fd, struct sockaddr_storage *sa)
{
	socklen_t len = sizeof(*sa);
	struct pollfd p = { fd, POLLIN, 0 };
	return poll(&p, 1, 5000) == 1 ? accept4(fd, (struct sockaddr *)sa, &len, SOCK_CLOEXEC) : -1;
}

static void c_order(ucontext_t *u)
{
	(void)u;
	struct sockaddr_storage sa;
	struct linger lg = { 1, 0 };
	int s = accept_within(60, &sa);
	setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(s);
}
static void c_data(ucontext_t *u)
{
	(void)u;
	struct sockaddr_storage sa;
	char b;
	accepted[0] = accept_within(60, &sa);
	recv(accepted[0], &b, 1, 0);
}
static void c_v6(ucontext_t *u)
{
	(void)u;
	struct sockaddr_storage sa;
	char b;
	accepted[3] = accept_within(61, &sa);
	recv(accepted[3], &b, 1, 0);
}
static const struct zoo_corruption corruptions[] = {
	{ "order", c_order, 0 },
	{ "data", c_data, 0 },
	{ "v6", c_v6, 0 },
};

static int listener(int family, const char *addr, int at, uint16_t *port)
{
	struct sockaddr_storage sa = { .ss_family = family };
	socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int l = socket(family, SOCK_STREAM, 0), off = 0;
	if (family == AF_INET)
		inet_pton(AF_INET, addr, &((struct sockaddr_in *)&sa)->sin_addr);
	else
		inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&sa)->sin6_addr);
	if (l < 0 || (family == AF_INET6 && setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off))) ||
	    bind(l, (struct sockaddr *)&sa, len) || listen(l, 16) || getsockname(l, (struct sockaddr *)&sa, &len))
		zoo_die("listener on %s: %s", addr, strerror(errno));
	*port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
	zoo_place(l, at, O_CLOEXEC);
	return at;
}

/* The peer a client connected from, as its listener sees it. */
static int right_peer(int i, const struct sockaddr_storage *sa)
{
	const struct client *c = &clients[i];
	if (c->listener == 60)
		return sa->ss_family == AF_INET && ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
		       ntohs(((const struct sockaddr_in *)sa)->sin_port) == client_ports[i];
	const struct sockaddr_in6 *s6 = (const void *)sa;
	struct in6_addr want = in6addr_loopback;
	if (c->listener == 62)
		inet_pton(AF_INET6, "::ffff:127.0.0.1", &want);
	return sa->ss_family == AF_INET6 && !memcmp(&s6->sin6_addr, &want, sizeof(want)) &&
	       ntohs(s6->sin6_port) == client_ports[i];
}

int main(int argc, char **argv)
{
	uint16_t ports[3];
	char text[256] = "";

	if (argc == 3 && !strcmp(argv[1], "--daemon")) {
		set_paths(argv[2]);
		zoo_start_daemon(daemon_main, pid_path);
		return access(pid_path, F_OK) ? 1 : 0;
	}
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	set_paths(zoo_tmpdir());
	listener(AF_INET, "127.0.0.1", 60, &ports[0]);
	listener(AF_INET6, "::1", 61, &ports[1]);
	listener(AF_INET6, "::", 62, &ports[2]);
	/* a daemon started by --daemon for this run waits for our ports; anything else in the
	 * directory is an earlier run's */
	char pid[16] = "";
	int fresh = !access(waiting_path, F_OK) && access(connected_path, F_OK);
	unlink(connected_path);
	unlink(clients_path);
	unlink(result_path);
	unlink(ports_path);
	if (!fresh) {
		unlink(pid_path);
		zoo_start_daemon(daemon_main, pid_path);
	}
	int n = snprintf(text, sizeof(text), "%u %u %u\n", ports[0], ports[1], ports[2]);
	char tmp[4300];
	snprintf(tmp, sizeof(tmp), "%s.tmp", ports_path);
	if (zoo_write_file(tmp, text, (size_t)n) < 0 || rename(tmp, ports_path))
		zoo_die("cannot write %s: %s", ports_path, strerror(errno));
	for (int i = 0; i < 1000 && access(connected_path, F_OK); i++)
		zoo_sleep_ms(10);
	memset(text, 0, sizeof(text));
	if (zoo_read_file(clients_path, text, sizeof(text)) <= 0)
		zoo_die("the daemon did not connect: %s", access(result_path, F_OK) ? "no word from it" : result_path);
	char *p = text;
	for (int i = 0; i < NR_CLIENTS; i++)
		client_ports[i] = (int)strtol(p, &p, 10);

	zoo_ready();
	zoo_wait();

	for (int i = 0; i < NR_CLIENTS; i++) {
		struct sockaddr_storage sa = { 0 };
		if (accepted[i] >= 0)
			continue;
		accepted[i] = accept_within(clients[i].listener, &sa);
		CHECK("order", accepted[i] >= 0 && right_peer(i, &sa),
		      "connection %d: %s, not the client from port %d", i,
		      accepted[i] < 0 ? "none waiting on its listener" : "another peer", client_ports[i]);
	}
	for (int i = 0; i < NR_CLIENTS; i++) {
		const char *why = "";
		char b;
		int ok = accepted[i] >= 0 && take(accepted[i], clients[i].len, 1000 + i, 5000, &why) &&
			 recv(accepted[i], &b, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN;
		CHECK(clients[i].family == AF_INET6 ? "v6" : "data", ok,
		      "connection %d: not exactly the %zu bytes its client wrote (%s)", i, clients[i].len,
		      why[0] ? why : "more");
	}
	for (int i = 0; i < NR_CLIENTS; i++) {
		const char *why = "";
		CHECK("exchange", accepted[i] >= 0 && send_pattern(accepted[i], REPLY, 2000 + i) &&
					  take(accepted[i], MORE, 3000 + i, 5000, &why),
		      "connection %d carries nothing new (%s)", i, why[0] ? why : strerror(errno));
		if (accepted[i] >= 0)
			close(accepted[i]);
	}
	memset(text, 0, sizeof(text));
	for (int i = 0; i < 1500 && zoo_read_file(result_path, text, sizeof(text)) <= 0; i++)
		zoo_sleep_ms(10);
	CHECK("peer", !strcmp(text, "ok\n"), "the clients outside: %s", text[0] ? text : "no verdict");
	memset(pid, 0, sizeof(pid));
	zoo_read_file(pid_path, pid, sizeof(pid));
	if (atoi(pid) > 0)
		kill(atoi(pid), SIGKILL);
	return zoo_finish("6 connections from outside waiting in 3 listeners' accept queues");
}
