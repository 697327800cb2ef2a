/*
 * tcp-md5: TCP state no socket option reads back, which the kernel's socket listing tells
 * (dumped with --tcp-established).
 *   fd 60: a listener on 127.0.0.1 with a TCP_MD5SIG key (RFC 2385, as BGP daemons protect their
 *          sessions) for peers in 127.0.0.0/8 (TCP_MD5SIG_EXT, a prefix) and one for 10.1.0.0/16;
 *   fd 61 client (its key for 127.0.0.1) / fd 62 server (the listener's keys, inherited) of a
 *          connection signed both ways, 3 bytes waiting at the server;
 *   fd 63 client / fd 64 server of a plain connection whose server shut its read side
 *          (shutdown SHUT_RD), 4 bytes sent to it before.
 * After restore and SIGTERM: the signed connection carries data both ways (a side without its
 * key has its segments dropped by the other); a new client with the key is accepted by the
 * listener, one without it is not (its SYNs dropped); the shut server reads its 4 bytes, then
 * end-of-file at once, poll says POLLRDHUP, and it can still send.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include "zoo-net.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#define KEY "bgp-key!"

static struct sockaddr_in listen_sa;

static void set_key(int fd, int family, const char *addr, int prefix, const char *key)
{
	struct tcp_md5sig m = { .tcpm_keylen = (uint16_t)strlen(key) };
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&m.tcpm_addr;
		a->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &a->sin_addr);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&m.tcpm_addr;
		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &a->sin6_addr);
	}
	if (prefix >= 0) {
		m.tcpm_flags = TCP_MD5SIG_FLAG_PREFIX;
		m.tcpm_prefixlen = (uint8_t)prefix;
	}
	memcpy(m.tcpm_key, key, strlen(key));
	if (setsockopt(fd, IPPROTO_TCP, prefix >= 0 ? TCP_MD5SIG_EXT : TCP_MD5SIG, &m, sizeof(m)))
		zoo_die("TCP_MD5SIG on fd %d: %s", fd, strerror(errno));
}

/* A new client (with key, or none) connecting to the listener: connected within ms? */
static int connects(const char *key, int ms)
{
	int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (key)
		set_key(c, AF_INET, "127.0.0.1", -1, key);
	connect(c, (struct sockaddr *)&listen_sa, sizeof(listen_sa));
	struct pollfd p = { c, POLLOUT, 0 };
	int err = 1;
	socklen_t len = sizeof(err);
	int ok = poll(&p, 1, ms) == 1 && !getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len) && !err;
	close(c);
	return ok;
}

/* what a restore that lost them would leave */
static void c_keys(ucontext_t *u)
{
	(void)u;
	struct tcp_md5sig m = { .tcpm_flags = TCP_MD5SIG_FLAG_PREFIX, .tcpm_prefixlen = 8 };
	struct sockaddr_in *a = (struct sockaddr_in *)&m.tcpm_addr;
	a->sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.0", &a->sin_addr);
	setsockopt(60, IPPROTO_TCP, TCP_MD5SIG_EXT, &m, sizeof(m)); /* keylen 0: deleted */
}
static void c_shutdown(ucontext_t *u)
{
	(void)u; /* the plain pair made again, not shut */
	int c, s;
	zoo_tcp_loopback_pair(AF_INET, &c, &s);
	send(c, "data", 4, 0);
	zoo_place(c, 63, 0);
	zoo_place(s, 64, 0);
	zoo_sleep_ms(50);
}
static const struct zoo_corruption corruptions[] = {
	{ "keys", c_keys, 0 },
	{ "shutdown", c_shutdown, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	int l = socket(AF_INET, SOCK_STREAM, 0);
	set_key(l, AF_INET, "127.0.0.0", 8, KEY);
	set_key(l, AF_INET, "10.1.0.0", 16, "other-key");
	listen_sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(listen_sa);
	if (bind(l, (struct sockaddr *)&listen_sa, len) || listen(l, 8) ||
	    getsockname(l, (struct sockaddr *)&listen_sa, &len))
		zoo_die("listener: %s", strerror(errno));
	zoo_place(l, 60, O_CLOEXEC);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	set_key(c, AF_INET, "127.0.0.1", -1, KEY);
	if (connect(c, (struct sockaddr *)&listen_sa, sizeof(listen_sa)))
		zoo_die("signed connect: %s", strerror(errno));
	int s = accept(60, NULL, NULL);
	if (s < 0)
		zoo_die("accept: %s", strerror(errno));
	zoo_place(c, 61, O_CLOEXEC);
	zoo_place(s, 62, O_CLOEXEC);
	if (send(61, "md5", 3, 0) != 3)
		zoo_die("send: %s", strerror(errno));

	zoo_tcp_loopback_pair(AF_INET, &c, &s);
	zoo_place(c, 63, O_CLOEXEC);
	zoo_place(s, 64, O_CLOEXEC);
	if (send(63, "data", 4, 0) != 4)
		zoo_die("send: %s", strerror(errno));
	zoo_sleep_ms(50);
	if (shutdown(64, SHUT_RD))
		zoo_die("shutdown: %s", strerror(errno));
	zoo_sleep_ms(100);
	zoo_ready();
	zoo_wait();

	char buf[8] = "";
	CHECK("keys", recv(62, buf, 3, MSG_WAITALL) == 3 && !memcmp(buf, "md5", 3), "the server did not read its 3 bytes");
	CHECK("keys", zoo_stream_carries(61, 62, "c2s") && zoo_stream_carries(62, 61, "s2c"),
	      "the signed connection carries nothing");
	CHECK("keys", connects(KEY, 2000), "a client with the key is not accepted");
	CHECK("keys", !connects(NULL, 1500), "a client without a key was accepted: the listener lost its key");
	CHECK("keys", !connects("wrong-key", 1500), "a client with another key was accepted");
	struct pollfd p = { 64, POLLIN | POLLRDHUP, 0 };
	CHECK("shutdown", poll(&p, 1, 0) == 1 && (p.revents & POLLRDHUP), "the shut server's poll says %#x, no POLLRDHUP",
	      p.revents);
	CHECK("shutdown", recv(64, buf, 4, MSG_WAITALL) == 4 && !memcmp(buf, "data", 4) && recv(64, buf, 1, MSG_DONTWAIT) == 0,
	      "the shut server did not read its 4 bytes then end-of-file");
	CHECK("shutdown", zoo_stream_carries(64, 63, "back"), "the shut server cannot send");
	return zoo_finish("a listener and a connection signed with TCP_MD5SIG keys, a server with its read side shut");
}
