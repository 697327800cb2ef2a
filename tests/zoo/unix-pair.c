/*
 * unix-pair: connected unix socket pairs between a parent and its child (socketpair + fork).
 *   S  SOCK_STREAM: 200 numbered records queued towards the child, 100 towards the parent.
 *   D  SOCK_DGRAM: 3 datagrams of 10, 1000 and 1 bytes queued towards the parent.
 *   Q  SOCK_SEQPACKET: 5 packets queued towards the child.
 *   E  SOCK_STREAM: the child wrote "bye" and shut down its sending side.
 *   F  SOCK_STREAM, both ends the parent's: F[0] wrote 64 KiB pieces (non-blocking) until the
 *      kernel took no more (its send buffer full: the queue above the buffer's size), F[1]
 *      read none of it.
 * Options on the parent's ends: S peek offset 24; D SO_RCVBUF 50000, SO_RCVTIMEO 2.5 s;
 * E SO_PRIORITY 6, SO_BUF_LOCK of its send buffer (its size left to the kernel), SO_PASSPIDFD
 * (set before the child sent "bye": the message comes with a pidfd of the child).
 * After restore and SIGTERM: every record arrives once, in order, datagrams and packets keep
 * their sizes, E gives "bye" then end-of-file, and S still carries a ping and its answer; the
 * options read as before; F[0] still takes nothing (EAGAIN) with its send buffer's size and
 * locks as before, and F[1] reads every byte it wrote, in order.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/socket.h>
#include <sys/wait.h>

#define REC 12

static int S[2], D[2], Q[2], E[2], F[2];
static size_t f_bytes;
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

static void put(int fd, unsigned n)
{
	char r[REC] = { 0 };
	snprintf(r, sizeof(r), "rec %07u", n);
	if (write(fd, r, REC) != REC)
		zoo_die("write: %s", strerror(errno));
}

static unsigned take(int fd, unsigned first, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char r[REC] = { 0 }, want[REC] = { 0 };
		size_t got = 0;
		while (got < REC) {
			ssize_t k = read(fd, r + got, REC - got);
			if (k <= 0)
				return i;
			got += k;
		}
		snprintf(want, sizeof(want), "rec %07u", first + i);
		if (memcmp(r, want, REC))
			return i;
	}
	return n;
}

/* Exit code bits: 1 S records, 2 Q packets, 4 ping */
static void child(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	close(S[0]);
	close(D[0]);
	close(Q[0]);
	close(E[0]);
	for (unsigned i = 0; i < 100; i++)
		put(S[1], i);
	const char *dg[3] = { "0123456789", NULL, "z" };
	char big[1000];
	memset(big, 'b', sizeof(big));
	if (send(D[1], dg[0], 10, 0) != 10 || send(D[1], big, 1000, 0) != 1000 || send(D[1], dg[2], 1, 0) != 1)
		_exit(9);
	if (write(E[1], "bye", 3) != 3 || shutdown(E[1], SHUT_WR))
		_exit(9);
	while (!child_term)
		zoo_sleep_ms(10);
	int code = take(S[1], 0, 200) == 200 ? 0 : 1;
	for (int i = 0; i < 5; i++) {
		char p[64];
		ssize_t n = recv(Q[1], p, sizeof(p), MSG_DONTWAIT);
		if (n != 10 + i)
			code |= 2;
	}
	char ping[4] = "";
	if (read(S[1], ping, 4) != 4 || memcmp(ping, "ping", 4) || write(S[1], "pong", 4) != 4)
		code |= 4;
	_exit(code);
}

static void c_lost(ucontext_t *u) { (void)u; char r[REC]; read(S[0], r, REC); }
static void c_dgram(ucontext_t *u) { (void)u; char b[2000]; recv(D[0], b, sizeof(b), MSG_DONTWAIT); }
static void c_eof(ucontext_t *u) { (void)u; char b[3]; read(E[0], b, 3); }
static void c_full(ucontext_t *u) { (void)u; char b[4096]; read(F[1], b, sizeof(b)); }
static void c_options(ucontext_t *u)
{
	(void)u;
	struct timeval none = { 0, 0 };
	setsockopt(D[0], SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
}
static const struct zoo_corruption corruptions[] = {
	{ "stream", c_lost, 0 },
	{ "dgram", c_dgram, 0 },
	{ "eof", c_eof, 0 },
	{ "full", c_full, 0 },
	{ "options", c_options, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, S) || socketpair(AF_UNIX, SOCK_DGRAM, 0, D) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, Q) || socketpair(AF_UNIX, SOCK_STREAM, 0, E) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, F))
		zoo_die("socketpair: %s", strerror(errno));
	static char piece[64 << 10];
	for (ssize_t w = 1; w > 0; f_bytes += (size_t)w) {
		for (size_t i = 0; i < sizeof(piece); i++)
			piece[i] = (char)zoo_pattern(f_bytes + i, 6);
		if ((w = send(F[0], piece, sizeof(piece), MSG_DONTWAIT)) < 0)
			w = 0;
	}
	int f_sndbuf = 0, f_locks = -1;
	socklen_t fl1 = sizeof(int), fl2 = sizeof(int);
	getsockopt(F[0], SOL_SOCKET, SO_SNDBUF, &f_sndbuf, &fl1);
	getsockopt(F[0], SOL_SOCKET, 72 /* SO_BUF_LOCK */, &f_locks, &fl2);
	for (unsigned i = 0; i < 200; i++)
		put(S[0], i);
	for (int i = 0; i < 5; i++) {
		char p[64];
		memset(p, 'q', sizeof(p));
		if (send(Q[0], p, 10 + i, 0) != 10 + i)
			zoo_die("seqpacket send");
	}
	int one = 1; /* (before the child sends "bye": a message carries its sender's pid for a
		      * receiver that asks when it is sent) */
	if (setsockopt(E[0], SOL_SOCKET, 76 /* SO_PASSPIDFD, Linux >= 6.5 */, &one, sizeof(one)))
		zoo_die("SO_PASSPIDFD: %s", strerror(errno));
	pid_t kid = fork();
	if (kid == 0)
		child();
	close(S[1]);
	close(D[1]);
	close(Q[1]);
	close(E[1]);
	zoo_sleep_ms(100); /* the child has queued its records, datagrams and "bye" */
	int peek = 24, rcvbuf = 50000, prio = 6, rcvbuf_set = 0, buf_lock = 1 /* SOCK_SNDBUF_LOCK */;
	struct timeval tmo = { 2, 500000 };
	socklen_t len = sizeof(rcvbuf_set);
	if (setsockopt(S[0], SOL_SOCKET, SO_PEEK_OFF, &peek, sizeof(peek)) ||
	    setsockopt(D[0], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) ||
	    setsockopt(D[0], SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo)) ||
	    setsockopt(E[0], SOL_SOCKET, SO_PRIORITY, &prio, sizeof(prio)) ||
	    setsockopt(E[0], SOL_SOCKET, 72 /* SO_BUF_LOCK */, &buf_lock, sizeof(buf_lock)) ||
	    getsockopt(D[0], SOL_SOCKET, SO_RCVBUF, &rcvbuf_set, &len))
		zoo_die("setsockopt: %s", strerror(errno));
	zoo_ready();
	zoo_wait();

	int got_peek = -2, got_rcvbuf = 0, got_prio = 0, got_lock = -1;
	struct timeval got_tmo = { 0, 0 };
	socklen_t l1 = sizeof(int), l2 = sizeof(int), l3 = sizeof(int), l4 = sizeof(got_tmo);
	getsockopt(S[0], SOL_SOCKET, SO_PEEK_OFF, &got_peek, &l1);
	getsockopt(D[0], SOL_SOCKET, SO_RCVBUF, &got_rcvbuf, &l2);
	getsockopt(E[0], SOL_SOCKET, SO_PRIORITY, &got_prio, &l3);
	getsockopt(D[0], SOL_SOCKET, SO_RCVTIMEO, &got_tmo, &l4);
	socklen_t l5 = sizeof(int);
	getsockopt(E[0], SOL_SOCKET, 72 /* SO_BUF_LOCK */, &got_lock, &l5);
	int got_pidfd = -1;
	socklen_t l6 = sizeof(int);
	getsockopt(E[0], SOL_SOCKET, 76 /* SO_PASSPIDFD */, &got_pidfd, &l6);
	CHECK("options", got_peek == 24 && got_rcvbuf == rcvbuf_set && got_prio == 6 && got_tmo.tv_sec == 2 &&
				 got_tmo.tv_usec == 500000 && got_lock == buf_lock && got_pidfd == 1,
	      "peek offset %d, rcvbuf %d (was %d), priority %d, rcvtimeo %ld.%06ld, buffer lock %d, "
	      "SO_PASSPIDFD %d", got_peek, got_rcvbuf, rcvbuf_set, got_prio, (long)got_tmo.tv_sec,
	      (long)got_tmo.tv_usec, got_lock, got_pidfd);

	CHECK("stream", take(S[0], 0, 100) == 100, "records from the child are missing or out of order");
	int f_sndbuf_now = 0, f_locks_now = -1;
	socklen_t fl3 = sizeof(int), fl4 = sizeof(int);
	getsockopt(F[0], SOL_SOCKET, SO_SNDBUF, &f_sndbuf_now, &fl3);
	getsockopt(F[0], SOL_SOCKET, 72 /* SO_BUF_LOCK */, &f_locks_now, &fl4);
	ssize_t more = send(F[0], "x", 1, MSG_DONTWAIT);
	CHECK("full", more < 0 && errno == EAGAIN && f_sndbuf_now == f_sndbuf && f_locks_now == f_locks,
	      "the full sender: send gave %zd (%s), its buffer %d bytes (was %d), locks %d (were %d)", more,
	      more < 0 ? strerror(errno) : "taken", f_sndbuf_now, f_sndbuf, f_locks_now, f_locks);
	size_t f_got = 0, f_bad = (size_t)-1;
	for (ssize_t k; (k = recv(F[1], piece, sizeof(piece), MSG_DONTWAIT)) > 0; f_got += (size_t)k)
		for (ssize_t i = 0; i < k && f_bad == (size_t)-1; i++)
			if (piece[i] != (char)zoo_pattern(f_got + (size_t)i, 6))
				f_bad = f_got + (size_t)i;
	CHECK("full", f_got == f_bytes && f_bad == (size_t)-1, "the full queue gave %zu of %zu bytes (first wrong at %zd)",
	      f_got, f_bytes, (ssize_t)f_bad);
	char b[2000];
	ssize_t n1 = recv(D[0], b, sizeof(b), MSG_DONTWAIT), n2 = recv(D[0], b, sizeof(b), MSG_DONTWAIT),
		n3 = recv(D[0], b, sizeof(b), MSG_DONTWAIT);
	CHECK("dgram", n1 == 10 && n2 == 1000 && n3 == 1, "datagrams of %zd, %zd, %zd bytes", n1, n2, n3);
	char bye[4] = "", ctl[CMSG_SPACE(sizeof(int)) * 2];
	struct iovec iov = { bye, 3 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	ssize_t nb = recvmsg(E[0], &mh, MSG_WAITALL | MSG_CMSG_CLOEXEC);
	CHECK("eof", nb == 3 && !memcmp(bye, "bye", 3) && read(E[0], b, 1) == 0,
	      "the shut-down stream gave %zd bytes '%.3s' and no end-of-file", nb, bye);
	/* SO_PASSPIDFD: "bye" comes with a pidfd of its sender, the child */
	pid_t sender = -1;
	for (struct cmsghdr *c = nb > 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != 0x04 /* SCM_PIDFD */)
			continue;
		int pfd;
		char path[64], info[512] = "";
		memcpy(&pfd, CMSG_DATA(c), sizeof(pfd));
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pfd);
		zoo_read_file(path, info, sizeof(info));
		const char *at = strstr(info, "\nPid:");
		sender = at ? atoi(at + 5) : -1;
		close(pfd);
	}
	CHECK("options", sender == zoo_proc_pid(kid), "E's \"bye\" came with a pidfd of pid %d, not the child's %d", sender,
	      zoo_proc_pid(kid));
	kill(kid, SIGTERM);
	if (write(S[0], "ping", 4) != 4)
		zoo_failf("stream", "cannot write a ping");
	char pong[4] = "";
	CHECK("stream", read(S[0], pong, 4) == 4 && !memcmp(pong, "pong", 4), "no pong");
	int st = 0;
	waitpid(kid, &st, 0);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	CHECK("stream", code != 255 && !(code & 1), "the child's records are missing or out of order (%#x)", st);
	CHECK("seqpacket", code == 255 || !(code & 2), "the child's packets lost their sizes");
	CHECK("stream", code == 255 || !(code & 4), "the child got no ping");
	return zoo_finish("stream, dgram, seqpacket, shutdown");
}
