/*
 * unix-peer-closed: unix sockets whose peer was closed with data still waiting for them, and
 * neighbours of that state.
 *   fd 60 SOCK_STREAM: the peer wrote "hello" and closed;
 *   fd 61 SOCK_STREAM: the peer wrote "data" and closed without reading the "x" fd 61 sent it
 *         (the kernel then has an ECONNRESET waiting for fd 61, after the data);
 *   fd 62 SOCK_SEQPACKET: the peer sent "p1", "pp2" and an empty packet, and closed;
 *   fd 63 SOCK_SEQPACKET: the peer closed without reading the "y" fd 63 sent it;
 *   fd 64 SOCK_DGRAM (socketpair): the peer sent "d1", "dd2" and closed;
 *   fd 65/66 SOCK_STREAM pair: 65 shut down its receiving side only, with "half" waiting in it;
 *   fd 67 SOCK_STREAM (peer at 68): "abcdef" waits, SO_PEEK_OFF 3, then 2 bytes peeked.
 * After restore and SIGTERM, every call gives what it gave before the checkpoint: 60 "hello",
 * end-of-file, EPIPE; 61 "data", ECONNRESET, end-of-file, EPIPE; 62 "p1", "pp2", "", end of
 * file, EPIPE; 63 ECONNRESET, end-of-file, EPIPE; 64 "d1", "dd2", EAGAIN, a send ECONNREFUSED
 * then ENOTCONN; 65 "half" then end-of-file, 66 cannot send (EPIPE) while 65 still can; a
 * peek at 67 gives "f", a read "abcdef".
 * --oob: an urgent byte (MSG_OOB) follows "abcdef" at 67; the dump must refuse; it is read last.
 * --reset-data: 63's peer also sent "late" before it closed: 63 has an ECONNRESET waiting before
 * that packet (reading the packet takes the error first: the dump must refuse).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/socket.h>

/* "n:text" or "-errno" of one non-blocking receive, into out. */
static const char *rd(int s, int flags, char *out, size_t len)
{
	char b[32];
	errno = 0;
	ssize_t n = recv(s, b, sizeof(b), flags | MSG_DONTWAIT);
	if (n < 0)
		snprintf(out, len, "-%s", strerrorname_np(errno));
	else
		snprintf(out, len, "%zd:%.*s", n, (int)n, b);
	return out;
}

static const char *wr(int s, char *out, size_t len)
{
	ssize_t n = send(s, "z", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		snprintf(out, len, "-%s", strerrorname_np(errno));
	else
		snprintf(out, len, "sent");
	return out;
}

/* Runs the calls on fd: 'r' a receive, 'w' a send, 'p' a peek; each result must be the next of want. */
static void expect(const char *tag, int fd, const char *calls, const char *const *want)
{
	char got[64];
	for (size_t i = 0; calls[i]; i++) {
		const char *r = calls[i] == 'w' ? wr(fd, got, sizeof(got))
						: rd(fd, calls[i] == 'p' ? MSG_PEEK : 0, got, sizeof(got));
		if (!CHECK(tag, !strcmp(r, want[i]), "fd %d call %zu (%c): %s, expected %s", fd, i + 1,
			   calls[i], r, want[i]))
			return;
	}
}

static void pair(int type, int at, int peer_at)
{
	int sv[2];
	if (socketpair(AF_UNIX, type, 0, sv) || dup3(sv[0], at, O_CLOEXEC) != at ||
	    dup3(sv[1], peer_at, O_CLOEXEC) != peer_at)
		zoo_die("socketpair: %s", strerror(errno));
	close(sv[0]);
	close(sv[1]);
}

static void put(int fd, const char *s)
{
	if (send(fd, s, strlen(s), 0) != (ssize_t)strlen(s))
		zoo_die("send: %s", strerror(errno));
}

static void c_stream(ucontext_t *u) { (void)u; char b[8]; recv(60, b, sizeof(b), MSG_DONTWAIT); }
static void c_reset(ucontext_t *u) { (void)u; char b[8]; recv(61, b, sizeof(b), MSG_DONTWAIT); recv(61, b, sizeof(b), MSG_DONTWAIT); }
static void c_seqpacket(ucontext_t *u) { (void)u; char b[8]; recv(62, b, sizeof(b), MSG_DONTWAIT); }
static void c_seqpacket_reset(ucontext_t *u) { (void)u; char b[8]; recv(63, b, sizeof(b), MSG_DONTWAIT); }
static void c_dgram(ucontext_t *u) { (void)u; char b[8]; recv(64, b, sizeof(b), MSG_DONTWAIT); }
static void c_shut_rd(ucontext_t *u) { (void)u; shutdown(65, SHUT_WR); }
static void c_peek_off(ucontext_t *u) { (void)u; int off = 0; setsockopt(67, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)); }
static const struct zoo_corruption corruptions[] = {
	{ "stream", c_stream, 0 },
	{ "reset", c_reset, 0 },
	{ "seqpacket", c_seqpacket, 0 },
	{ "seqpacket-reset", c_seqpacket_reset, 0 },
	{ "dgram", c_dgram, 0 },
	{ "shut-rd", c_shut_rd, 0 },
	{ "peek-off", c_peek_off, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	pair(SOCK_STREAM, 60, 70);
	put(70, "hello");
	close(70);
	pair(SOCK_STREAM, 61, 70);
	put(61, "x");
	put(70, "data");
	close(70);
	pair(SOCK_SEQPACKET, 62, 70);
	put(70, "p1");
	put(70, "pp2");
	put(70, "");
	close(70);
	int oob = argc > 1 && !strcmp(argv[argc - 1], "--oob");
	int reset_data = argc > 1 && !strcmp(argv[argc - 1], "--reset-data");
	pair(SOCK_SEQPACKET, 63, 70);
	put(63, "y");
	if (reset_data)
		put(70, "late");
	close(70);
	pair(SOCK_DGRAM, 64, 70);
	put(70, "d1");
	put(70, "dd2");
	close(70);
	pair(SOCK_STREAM, 65, 66);
	put(66, "half");
	shutdown(65, SHUT_RD);
	pair(SOCK_STREAM, 67, 68);
	put(68, "abcdef");
	int off = 3;
	char peeked[2];
	if ((oob && send(68, "!", 1, MSG_OOB) != 1) ||
	    setsockopt(67, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)) || recv(67, peeked, 2, MSG_PEEK) != 2)
		zoo_die("peek: %s", strerror(errno));
	zoo_ready();
	zoo_wait();

	expect("stream", 60, "rrw", (const char *const[]){ "5:hello", "0:", "-EPIPE" });
	expect("reset", 61, "rrrw", (const char *const[]){ "4:data", "-ECONNRESET", "0:", "-EPIPE" });
	expect("seqpacket", 62, "rrrrw", (const char *const[]){ "2:p1", "3:pp2", "0:", "0:", "-EPIPE" });
	if (reset_data)
		expect("seqpacket-reset", 63, "rrrw", (const char *const[]){ "-ECONNRESET", "4:late", "0:", "-EPIPE" });
	else
		expect("seqpacket-reset", 63, "rrw", (const char *const[]){ "-ECONNRESET", "0:", "-EPIPE" });
	expect("dgram", 64, "rrrww",
	       (const char *const[]){ "2:d1", "3:dd2", "-EAGAIN", "-ECONNREFUSED", "-ENOTCONN" });
	expect("shut-rd", 65, "rr", (const char *const[]){ "4:half", "0:" });
	expect("shut-rd", 66, "w", (const char *const[]){ "-EPIPE" });
	expect("shut-rd", 65, "w", (const char *const[]){ "sent" });
	expect("peek-off", 67, "pr", (const char *const[]){ "1:f", "6:abcdef" });
	char urgent = 0;
	CHECK("peek-off", !oob || (recv(67, &urgent, 1, MSG_OOB | MSG_DONTWAIT) == 1 && urgent == '!'),
	      "no urgent byte at 67");
	return zoo_finish("5 sockets with a closed peer, 1 shut down for reading, 1 peek offset");
}
