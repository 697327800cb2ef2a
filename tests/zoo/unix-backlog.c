/*
 * unix-backlog: connections waiting to be accepted.
 *   fd 70 SOCK_STREAM listening on $ZOO_TMPDIR/backlog.sock (backlog 5, O_NONBLOCK); waiting
 *   in its queue, oldest first: 1. fd 71, which wrote "early"; 2. fd 72 (O_NONBLOCK), which
 *   wrote nothing; 3. a client that wrote "bye" and closed its socket; 4. fd 73, which wrote
 *   "shut" and shut down its sending side; 5. fd 80 of a child process, which wrote 64 KiB.
 *   fd 74 SOCK_SEQPACKET listening on an abstract name (backlog 1); fd 75 waits in its queue.
 *   fd 76 SOCK_STREAM listening on $ZOO_TMPDIR/crowd.sock (backlog 2048) with 1200 clients
 *   waiting (their entry in the kernel's listing outgrows a page, and one helper connects them).
 *   fd 78 SOCK_SEQPACKET listening on $ZOO_TMPDIR/packets.sock (backlog 2): 1. fd 79, which
 *   sent the packets "s1" and "s22"; 2. a client that sent "c333" and closed its socket.
 *   What the clients wrote waits in connections nobody accepted: the dump can only read it
 *   by accepting them.
 * After restore and SIGTERM: the server accepts 5 connections from fd 70, in order, and sends
 * each its number: fds 71, 72, 73 and the child's 80 receive 1, 2, 4 and 5; the third reads
 * "bye", then end-of-file, and refuses data; 71, 72 and the child answer (after "early" and
 * the 64 KiB); 73 cannot send and its connection reads "shut", then end-of-file; fd 74
 * accepts fd 75's connection, packets keep their sizes; fd 76 accepts 1200 connections and
 * sends each its place: every client reads its own; fd 78 accepts fd 79's connection (the
 * packets "s1" and "s22", sizes kept) and then the closed client's ("c333", then end-of-file).
 * --files-sent: fd 71 sends "early" with a file (SCM_RIGHTS: its own pipe's read end); the dump
 * must refuse before it takes any connection, and the tree PASSes after (the file is dropped
 * unread by read()).
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <sys/wait.h>

#define NR_ACCEPT 5
#define NR_CROWD 1200

#define BIG (64 << 10) /* what fd 80 wrote */

static struct sockaddr_un path_sa, abstract_sa, crowd_sa, packets_sa;
static int crowd[NR_CROWD];
static socklen_t abstract_len;
static pid_t kid;
static char big[BIG];
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

static int client(int type, const struct sockaddr_un *sa, socklen_t len)
{
	int c = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (const struct sockaddr *)sa, len))
		zoo_die("connect: %s", strerror(errno));
	return c;
}

/* read with a time limit (a lost connection must not hang the check) */
static ssize_t read_wait(int fd, void *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 3000) != 1)
		return -2;
	return read(fd, buf, len);
}

static int got(int fd, const char *want)
{
	char b[16] = "";
	size_t n = strlen(want);
	return read_wait(fd, b, n) == (ssize_t)n && !memcmp(b, want, n);
}

/* exactly len bytes, as given */
static int got_all(int fd, const char *want, size_t len)
{
	static char b[BIG];
	size_t n = 0;
	for (ssize_t r; n < len && (r = read_wait(fd, b + n, len - n)) > 0;)
		n += r;
	return n == len && !memcmp(b, want, len);
}

/* one packet, exactly want */
static int got_packet(int fd, const char *want)
{
	char b[16] = "";
	return read_wait(fd, b, sizeof(b)) == (ssize_t)strlen(want) && !memcmp(b, want, strlen(want));
}

/* Exit code 0: got its number 5 and answered. */
static void child(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	for (int fd = 70; fd <= 79; fd++)
		close(fd);
	while (!child_term)
		zoo_sleep_ms(10);
	_exit(got(80, "5") && send(80, "from5", 5, MSG_NOSIGNAL) == 5 ? 0 : 1);
}

static void c_order(ucontext_t *u) { (void)u; close(accept4(70, NULL, NULL, SOCK_CLOEXEC)); }
static void c_flags(ucontext_t *u) { (void)u; fcntl(72, F_SETFL, 0); }
static void c_shutdown(ucontext_t *u) { (void)u; zoo_place(client(SOCK_STREAM, &path_sa, sizeof(path_sa)), 73, O_CLOEXEC); }
static void c_seqpacket(ucontext_t *u) { (void)u; close(75); }
static void c_child(ucontext_t *u) { (void)u; kill(kid, SIGKILL); }
static void c_crowd(ucontext_t *u) { (void)u; close(accept4(76, NULL, NULL, SOCK_CLOEXEC)); }
static void c_data(ucontext_t *u) /* the first packet of fd 79 read: as if lost */
{
	(void)u;
	int s = accept4(78, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	char b[16];
	if (s >= 0 && read(s, b, sizeof(b)) > 0)
		zoo_place(s, 77, O_CLOEXEC); /* (the server takes the next connection instead) */
}
static const struct zoo_corruption corruptions[] = {
	{ "order", c_order, 0 },
	{ "flags", c_flags, 0 },
	{ "shutdown", c_shutdown, 0 },
	{ "seqpacket", c_seqpacket, 0 },
	{ "child", c_child, 0 },
	{ "crowd", c_crowd, 0 },
	{ "data", c_data, 0 },
};

/* The crowd's connections accepted in order, each told its place: does every client read its own? */
static int crowd_in_order(int *nacc)
{
	int bad = 0;
	*nacc = 0;
	for (int s; (s = accept4(76, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0; close(s), ++*nacc)
		bad |= *nacc >= NR_CROWD || send(s, nacc, sizeof(*nacc), MSG_NOSIGNAL) != sizeof(*nacc);
	for (int i = 0; i < NR_CROWD && !bad; i++) {
		int place = -1;
		bad = read_wait(crowd[i], &place, sizeof(place)) != sizeof(place) || place != i;
	}
	return !bad && *nacc == NR_CROWD;
}

int main(int argc, char **argv)
{
	const char *dir = getenv("ZOO_TMPDIR") ? getenv("ZOO_TMPDIR") : "/tmp";
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	path_sa.sun_family = abstract_sa.sun_family = AF_UNIX;
	snprintf(path_sa.sun_path, sizeof(path_sa.sun_path), "%s/backlog.sock", dir);
	int n = snprintf(abstract_sa.sun_path + 1, sizeof(abstract_sa.sun_path) - 1, "stasis-zoo-backlog-%d",
			 getpid());
	abstract_len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	unlink(path_sa.sun_path);
	int a = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0), b = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (bind(a, (struct sockaddr *)&path_sa, sizeof(path_sa)) || listen(a, NR_ACCEPT) ||
	    bind(b, (struct sockaddr *)&abstract_sa, abstract_len) || listen(b, 1))
		zoo_die("listen: %s", strerror(errno));
	zoo_place(a, 70, O_CLOEXEC);
	zoo_place(b, 74, O_CLOEXEC);
	zoo_place(client(SOCK_STREAM, &path_sa, sizeof(path_sa)), 71, O_CLOEXEC);
	zoo_place(client(SOCK_STREAM, &path_sa, sizeof(path_sa)), 72, O_CLOEXEC);
	fcntl(72, F_SETFL, O_NONBLOCK);
	int gone = client(SOCK_STREAM, &path_sa, sizeof(path_sa));
	if (argc > 1 && !strcmp(argv[argc - 1], "--files-sent")) {
		int pfd[2];
		char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
		struct iovec iov = { .iov_base = "early", .iov_len = 5 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		if (pipe(pfd))
			zoo_die("pipe: %s", strerror(errno));
		memcpy(CMSG_DATA(cm), &pfd[0], sizeof(int));
		if (sendmsg(71, &m, 0) != 5)
			zoo_die("sendmsg: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
	} else if (write(71, "early", 5) != 5)
		zoo_die("write: %s", strerror(errno));
	if (write(gone, "bye", 3) != 3)
		zoo_die("write: %s", strerror(errno));
	close(gone);
	zoo_place(client(SOCK_STREAM, &path_sa, sizeof(path_sa)), 73, O_CLOEXEC);
	if (write(73, "shut", 4) != 4 || shutdown(73, SHUT_WR))
		zoo_die("shutdown: %s", strerror(errno));
	zoo_place(client(SOCK_STREAM, &path_sa, sizeof(path_sa)), 80, O_CLOEXEC);
	for (int i = 0; i < BIG; i++)
		big[i] = (char)(i * 7 + i / 251);
	if (write(80, big, BIG) != BIG)
		zoo_die("write: %s", strerror(errno));
	packets_sa.sun_family = AF_UNIX;
	snprintf(packets_sa.sun_path, sizeof(packets_sa.sun_path), "%s/packets.sock", dir);
	unlink(packets_sa.sun_path);
	int d = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (bind(d, (struct sockaddr *)&packets_sa, sizeof(packets_sa)) || listen(d, 2))
		zoo_die("listen: %s", strerror(errno));
	zoo_place(d, 78, O_CLOEXEC);
	zoo_place(client(SOCK_SEQPACKET, &packets_sa, sizeof(packets_sa)), 79, O_CLOEXEC);
	gone = client(SOCK_SEQPACKET, &packets_sa, sizeof(packets_sa));
	if (write(79, "s1", 2) != 2 || write(79, "s22", 3) != 3 || write(gone, "c333", 4) != 4)
		zoo_die("write: %s", strerror(errno));
	close(gone);
	zoo_place(client(SOCK_SEQPACKET, &abstract_sa, abstract_len), 75, O_CLOEXEC);
	struct rlimit nofile;
	getrlimit(RLIMIT_NOFILE, &nofile);
	nofile.rlim_cur = nofile.rlim_max < 4096 ? nofile.rlim_max : 4096;
	setrlimit(RLIMIT_NOFILE, &nofile);
	crowd_sa.sun_family = AF_UNIX;
	snprintf(crowd_sa.sun_path, sizeof(crowd_sa.sun_path), "%s/crowd.sock", dir);
	unlink(crowd_sa.sun_path);
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (bind(c, (struct sockaddr *)&crowd_sa, sizeof(crowd_sa)) || listen(c, 2048))
		zoo_die("listen: %s", strerror(errno));
	zoo_place(c, 76, O_CLOEXEC);
	for (int i = 0; i < NR_CROWD; i++)
		crowd[i] = client(SOCK_STREAM, &crowd_sa, sizeof(crowd_sa));
	kid = fork();
	if (kid < 0)
		zoo_die("fork: %s", strerror(errno));
	if (kid == 0)
		child();
	close(80);
	zoo_ready();
	zoo_wait();

	/* accept them all, in order, and tell each its number */
	int acc[NR_ACCEPT + 1], nacc = 0, sent[NR_ACCEPT] = { 0 };
	for (int s; nacc <= NR_ACCEPT && (s = accept4(70, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0;)
		acc[nacc++] = s;
	CHECK("order", nacc == NR_ACCEPT, "%d connections were waiting, not %d", nacc, NR_ACCEPT);
	for (int i = 0; i < nacc && i < NR_ACCEPT; i++) {
		char num = '1' + i;
		sent[i] = send(acc[i], &num, 1, MSG_NOSIGNAL) == 1;
	}
	kill(kid, SIGTERM);
	CHECK("order", sent[0] && got(71, "1"), "fd 71's connection was not accepted first");
	CHECK("order", sent[1] && got(72, "2"), "fd 72's connection was not accepted second");
	CHECK("order", nacc > 2 && !sent[2] && got(acc[2], "bye") && read_wait(acc[2], &(char){ 0 }, 1) == 0,
	      "the third connection is not the closed client's (\"bye\", then end-of-file)");
	CHECK("order", sent[3] && got(73, "4"), "fd 73's connection was not accepted fourth");
	CHECK("order", sent[4], "the child's connection was not accepted fifth");
	/* and back */
	CHECK("order", send(71, "from1", 5, MSG_NOSIGNAL) == 5 && nacc > 0 && got(acc[0], "early") &&
			       got(acc[0], "from1"),
	      "no data from fd 71 (\"early\", then \"from1\")");
	CHECK("order", send(72, "from2", 5, MSG_NOSIGNAL) == 5 && nacc > 1 && got(acc[1], "from2"), "no data from fd 72");
	CHECK("shutdown", send(73, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "fd 73 can send again");
	CHECK("shutdown", nacc > 3 && got(acc[3], "shut") && read_wait(acc[3], &(char){ 0 }, 1) == 0,
	      "fd 73's connection does not read \"shut\", then end-of-file");
	CHECK("child", nacc > 4 && got_all(acc[4], big, BIG) && got(acc[4], "from5"),
	      "no 64 KiB, then answer, from the child's fd 80");
	int st = 0;
	waitpid(kid, &st, 0);
	CHECK("child", WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child did not get its number (%#x)", st);
	CHECK("flags", (fcntl(70, F_GETFL) & O_NONBLOCK) && (fcntl(72, F_GETFL) & O_NONBLOCK) &&
			       !(fcntl(71, F_GETFL) & O_NONBLOCK),
	      "O_NONBLOCK of fds 70, 71, 72 changed");

	struct pollfd p = { .fd = 74, .events = POLLIN };
	int q = poll(&p, 1, 3000) == 1 ? accept4(74, NULL, NULL, SOCK_CLOEXEC) : -1;
	char pk[8] = "";
	CHECK("seqpacket",
	      q >= 0 && send(75, "p1", 2, MSG_NOSIGNAL) == 2 && send(75, "p22", 3, MSG_NOSIGNAL) == 3 &&
		      read_wait(q, pk, sizeof(pk)) == 2 && read_wait(q, pk, sizeof(pk)) == 3,
	      "fd 75's connection was not accepted, or its packets lost their sizes");
	p.fd = 78;
	int d1 = poll(&p, 1, 3000) == 1 ? accept4(78, NULL, NULL, SOCK_CLOEXEC) : -1;
	CHECK("data", d1 >= 0 && got_packet(d1, "s1") && got_packet(d1, "s22"),
	      "fd 79's connection was not accepted first from fd 78, or lost its packets \"s1\", \"s22\"");
	int d2 = poll(&p, 1, 3000) == 1 ? accept4(78, NULL, NULL, SOCK_CLOEXEC) : -1;
	CHECK("data", d2 >= 0 && got_packet(d2, "c333") && read_wait(d2, pk, sizeof(pk)) == 0,
	      "the closed client's connection on fd 78 did not read \"c333\", then end-of-file");
	int ncrowd;
	CHECK("crowd", crowd_in_order(&ncrowd), "the %d connections waiting on fd 76 were not its %d clients', in order",
	      ncrowd, NR_CROWD);
	unlink(path_sa.sun_path);
	unlink(crowd_sa.sun_path);
	unlink(packets_sa.sun_path);
	return zoo_finish("5 + 1 + 1200 + 2 connections waiting to be accepted, 5 with data");
}
