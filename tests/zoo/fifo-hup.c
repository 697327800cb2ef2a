/*
 * fifo-hup: named pipes whose readers do or do not report POLLHUP. The kernel hangs up a
 * FIFO's reader once no writer is left and a writer opened the FIFO since that reader was
 * opened (a reader opened O_NONBLOCK with no writer around waits for its first one quietly).
 *   A  a FIFO two readers opened O_NONBLOCK, never a writer, 1 MiB capacity; a child holds
 *      them too (fork): no POLLHUP, capacity kept.
 *   B  a reader, then a writer that wrote 3 messages and was closed: POLLHUP, 3 messages,
 *      then end-of-file.
 *   C  reader C1, then a writer that wrote 2 messages and was closed, then reader C2: C1 has
 *      POLLHUP, C2 not; the 2 messages are there.
 *   D  a reader (blocking again with F_SETFL) and a writer, 4 messages queued: no POLLHUP
 *      until the writer is closed, then POLLHUP.
 *   E  a FIFO opened O_RDWR, 5 messages queued: no POLLHUP, the messages.
 *   F  a FIFO removed while its one reader (O_NONBLOCK) is open, never a writer: no POLLHUP.
 * After restore and SIGTERM the parent checks all of that; the child checks A's readers.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <poll.h>

#define MSG 16

static int a1, a2, b, c1, c2, dr, dw, e, f;
static char path_a[600], path_b[600], path_c[600];
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

/* revents of fd for POLLIN, polled without waiting */
static short revents(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) < 0 ? POLLNVAL : p.revents;
}

static void put(int fd, unsigned n)
{
	char m[MSG] = { 0 };
	snprintf(m, sizeof(m), "msg %010u", n);
	if (write(fd, m, MSG) != MSG)
		zoo_die("write msg %u: %s", n, strerror(errno));
}

/* Reads n messages, expecting 0..n-1 (non-blocking reads); returns the number of good ones. */
static unsigned take(int fd, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char m[MSG + 1] = "", want[MSG + 1] = "";
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 1000) <= 0 || read(fd, m, MSG) != MSG)
			return i;
		snprintf(want, sizeof(want), "msg %010u", i);
		if (memcmp(m, want, MSG))
			return i;
	}
	return n;
}

static int make_fifo(char *path, size_t len, const char *name)
{
	snprintf(path, len, "%s/%s", zoo_tmpdir(), name);
	unlink(path);
	if (mkfifo(path, 0600))
		zoo_die("mkfifo %s: %s", path, strerror(errno));
	int fd = open(path, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		zoo_die("open %s: %s", path, strerror(errno));
	return fd;
}

/* a writer opened and closed again: A's readers now hang up once no writer is left */
static void c_unhung(ucontext_t *u)
{
	(void)u;
	close(open(path_a, O_WRONLY | O_NONBLOCK));
}
/* a writer of B kept open: B's reader does not hang up */
static void c_hup(ucontext_t *u) { (void)u; if (open(path_b, O_WRONLY | O_NONBLOCK) < 0) _exit(3); }
/* a writer of C opened and closed again: C2 hangs up too */
static void c_mixed(ucontext_t *u) { (void)u; close(open(path_c, O_WRONLY | O_NONBLOCK)); }
/* one message of D read early */
static void c_queued(ucontext_t *u) { (void)u; char m[MSG]; if (read(dr, m, MSG) < 0) _exit(3); }
/* a writer of F opened and closed again (through /proc: F has no name) */
static void c_removed(ucontext_t *u)
{
	(void)u;
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", f);
	close(open(p, O_WRONLY | O_NONBLOCK));
}
static const struct zoo_corruption corruptions[] = {
	{ "unhung", c_unhung, 0 },
	{ "hup", c_hup, 0 },
	{ "mixed", c_mixed, 0 },
	{ "queued", c_queued, 0 },
	{ "removed", c_removed, 0 },
};

/* Exit code: 0, or 1 A's readers hang up */
static void child(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	close(dw); /* D's one writer is the parent's */
	while (!child_term)
		zoo_sleep_ms(10);
	_exit((revents(a1) & POLLHUP) || (revents(a2) & POLLHUP) ? 1 : 0);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));

	a1 = make_fifo(path_a, sizeof(path_a), "a");
	if (fcntl(a1, F_SETPIPE_SZ, 1 << 20) < 0 || (a2 = open(path_a, O_RDONLY | O_NONBLOCK)) < 0)
		zoo_die("fifo a: %s", strerror(errno));

	b = make_fifo(path_b, sizeof(path_b), "b");
	int w = open(path_b, O_WRONLY);
	if (w < 0)
		zoo_die("fifo b writer: %s", strerror(errno));
	for (unsigned i = 0; i < 3; i++)
		put(w, i);
	close(w);

	c1 = make_fifo(path_c, sizeof(path_c), "c");
	if ((w = open(path_c, O_WRONLY)) < 0)
		zoo_die("fifo c writer: %s", strerror(errno));
	put(w, 0);
	put(w, 1);
	close(w);
	if ((c2 = open(path_c, O_RDONLY | O_NONBLOCK)) < 0)
		zoo_die("fifo c: %s", strerror(errno));

	char path[600];
	dr = make_fifo(path, sizeof(path), "d");
	if ((dw = open(path, O_WRONLY)) < 0 || fcntl(dr, F_SETFL, 0))
		zoo_die("fifo d: %s", strerror(errno));
	for (unsigned i = 0; i < 4; i++)
		put(dw, i);

	snprintf(path, sizeof(path), "%s/e", zoo_tmpdir());
	unlink(path);
	if (mkfifo(path, 0600) || (e = open(path, O_RDWR | O_NONBLOCK)) < 0)
		zoo_die("fifo e: %s", strerror(errno));
	for (unsigned i = 0; i < 5; i++)
		put(e, i);
	f = make_fifo(path, sizeof(path), "f");
	unlink(path);

	if ((revents(a1) & POLLHUP) || (revents(a2) & POLLHUP) || !(revents(b) & POLLHUP) ||
	    !(revents(c1) & POLLHUP) || (revents(c2) & POLLHUP) || (revents(dr) & POLLHUP) ||
	    (revents(e) & POLLHUP) || (revents(f) & POLLHUP))
		zoo_die("the kernel hangs up other FIFO readers than expected");

	pid_t kid = fork();
	if (kid < 0)
		zoo_die("fork: %s", strerror(errno));
	if (kid == 0)
		child();
	zoo_ready();
	zoo_wait();

	CHECK("unhung", !(revents(a1) & POLLHUP) && !(revents(a2) & POLLHUP),
	      "A: a reader that never saw a writer reports POLLHUP (%#x, %#x)", revents(a1), revents(a2));
	CHECK("unhung", fcntl(a1, F_GETPIPE_SZ) == 1 << 20, "A holds %d bytes", fcntl(a1, F_GETPIPE_SZ));
	CHECK("hup", revents(b) & POLLHUP, "B: the reader whose writer was closed reports no POLLHUP (%#x)",
	      revents(b));
	char c;
	unsigned got = take(b, 3);
	CHECK("hup", got == 3 && read(b, &c, 1) == 0, "B: %u messages of 3, then no end-of-file", got);
	CHECK("mixed", revents(c1) & POLLHUP, "C: the reader opened before the writer reports no POLLHUP (%#x)",
	      revents(c1));
	CHECK("mixed", !(revents(c2) & POLLHUP), "C: the reader opened after the writer reports POLLHUP (%#x)",
	      revents(c2));
	got = take(c2, 2);
	CHECK("mixed", got == 2, "C: %u messages of 2", got);
	CHECK("queued", !(revents(dr) & POLLHUP), "D: its reader reports POLLHUP while its writer is open (%#x)",
	      revents(dr));
	fcntl(dr, F_SETFL, O_NONBLOCK);
	got = take(dr, 4);
	CHECK("queued", got == 4, "D: %u messages of 4", got);
	close(dw);
	CHECK("queued", revents(dr) & POLLHUP, "D: no POLLHUP once its writer is closed (%#x)", revents(dr));
	CHECK("queued", !(revents(e) & POLLHUP), "E: the O_RDWR end reports POLLHUP (%#x)", revents(e));
	got = take(e, 5);
	CHECK("queued", got == 5, "E: %u messages of 5", got);

	CHECK("removed", !(revents(f) & POLLHUP), "F: the removed FIFO's reader reports POLLHUP (%#x)",
	      revents(f));

	kill(kid, SIGTERM);
	int st = 0;
	waitpid(kid, &st, 0);
	CHECK("unhung", WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's readers of A report POLLHUP (%#x)", st);
	return zoo_finish("6 named pipes (one removed), 2 processes");
}
