/*
 * netns-private: a service in a network namespace of its own with its loopback alone, as
 * systemd makes one for PrivateNetwork=yes, under a parent in the tree's namespace.
 *   The parent (the root) listens on $ZOO_TMPDIR/bus.sock (SOCK_STREAM, a bus daemon's place)
 *   and made a socket pair before the fork (its end at fd 50, the child's at fd 51: a journal
 *   stream the service inherits).
 *   The child unshares CLONE_NEWNET (its maker), brings its loopback up, connects to bus.sock
 *   (fd 52: a socket of its namespace connected to one of the tree's), binds a SOCK_DGRAM
 *   socket to $ZOO_TMPDIR/nested.sock (fd 53), makes a socket pair there (fd 54, the other end
 *   at fd 55 in a grandchild it forks, which stays in its namespace).
 *   The parent accepted the connection (fd 56). The child also made a pair in its namespace
 *   and sent one end up to the parent (fd 58 there; its own end at fd 57), as Chromium's
 *   sandboxed processes hand theirs to the browser.
 * After restore and SIGTERM: the child and the grandchild share a network namespace that is not
 * the parent's, it holds the loopback alone and up; a ping over the bus connection, one over
 * the inherited pair, one over the pair sent up and one over the grandchild's pair are
 * answered; a datagram the parent sends to nested.sock arrives.
 * What the dump must refuse (tests/failure-cases.sh), in the child's namespace: --abstract a
 * unix socket bound to an abstract name (fd 59), --vxlan an interface of a kind stasis does not
 * keep (a vxlan, as in the tree's own namespace).
 * (Inet sockets there: netns-inet; a namespace configured whole, wired to its parent's by a
 * veth pair: netns-veth.)
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include "zoo-net.h"
#include <netinet/in.h>
#include <stddef.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#define FD_JOURNAL_P 50
#define FD_JOURNAL_C 51
#define FD_BUS_C 52
#define FD_NESTED_DGRAM 53
#define FD_PAIR_C 54
#define FD_PAIR_G 55
#define FD_BUS_P 56
#define FD_SENT_C 57
#define FD_SENT_P 58
#define FD_REFUSED 59

static pid_t kid, grandkid;
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

static int is(const char *tag) { return zoo_corr && !strcmp(zoo_corr->tag, tag); }

static void path_of(struct sockaddr_un *sa, const char *name)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%.80s/%s", zoo_tmpdir(), name);
	if (n >= (int)sizeof(sa->sun_path))
		zoo_die("socket path too long: %s/%s", zoo_tmpdir(), name);
}

/* Only lo (and the others made on purpose), and up. */
static int loopback_alone_up(int others)
{
	struct if_nameindex *names = if_nameindex();
	struct ifreq ifr = { 0 };
	int n = 0, s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), up;

	for (struct if_nameindex *i = names; i && i->if_index; i++)
		n++;
	if (names)
		if_freenameindex(names);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	up = s >= 0 && !ioctl(s, SIOCGIFFLAGS, &ifr) && (ifr.ifr_flags & IFF_UP);
	if (s >= 0)
		close(s);
	return n == 1 + others && up;
}

static void grandchild(void)
{
	signal(SIGTERM, on_term);
	while (!child_term)
		zoo_sleep_ms(10);
	_exit(zoo_answer(FD_PAIR_G) ? 0 : 1);
}

/* What the dump must refuse (--abstract, --vxlan), made in the child's namespace. */
static void refused_state(const char *what)
{
	if (!strcmp(what, "--abstract")) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "stasis-zoo-nested-%d", getpid());
		int s = socket(AF_UNIX, SOCK_DGRAM, 0);
		if (s < 0 || bind(s, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + 1 + n))
			zoo_die("an abstract name: %s", strerror(errno));
		zoo_place(s, FD_REFUSED, 0);
	} else if (!strcmp(what, "--vxlan")) {
		if (system("ip link add zoo-x0 type vxlan id 42 dstport 4789"))
			zoo_die("ip link add zoo-x0 type vxlan failed");
	}
}

/* Exit code bits: 1 loopback, 2 bus, 4 journal, 8 pair, 16 datagram, 32 grandchild's netns,
 * 64 the pair sent up */
static void child(const char *refused)
{
	struct sockaddr_un bus, nested;
	int pair[2];

	signal(SIGTERM, on_term);
	if (unshare(CLONE_NEWNET) || !zoo_set_lo(1))
		zoo_die("a network namespace of its own with lo up: %s", strerror(errno));
	path_of(&bus, "bus.sock");
	path_of(&nested, "nested.sock");
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&bus, sizeof(bus)))
		zoo_die("connect to bus.sock: %s", strerror(errno));
	zoo_place(c, FD_BUS_C, 0);
	int d = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (d < 0 || bind(d, (struct sockaddr *)&nested, sizeof(nested)))
		zoo_die("bind nested.sock: %s", strerror(errno));
	zoo_place(d, FD_NESTED_DGRAM, 0);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair))
		zoo_die("socketpair: %s", strerror(errno));
	zoo_place(pair[0], FD_PAIR_C, 0);
	zoo_place(pair[1], FD_PAIR_G, 0);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair))
		zoo_die("socketpair: %s", strerror(errno));
	zoo_place(pair[1], FD_SENT_C, 0);
	zoo_send_fd(FD_JOURNAL_C, pair[0]); /* (before any ping on it) */
	close(pair[0]);
	if (refused)
		refused_state(refused);
	if ((grandkid = fork()) == 0)
		grandchild();
	close(FD_PAIR_G);
	while (!child_term)
		zoo_sleep_ms(10);

	if (is("netns")) /* back into the parent's namespace */
		zoo_enter_netns_of(getppid());
	if (is("loopback"))
		zoo_set_lo(0);
	if (is("bus"))
		shutdown(FD_BUS_C, SHUT_RDWR);
	if (is("nested-bound"))
		close(FD_NESTED_DGRAM);
	if (is("sent-up"))
		close(FD_SENT_C);
	char mine[64] = "", its[64] = "", p[64];
	snprintf(p, sizeof(p), "/proc/%d/ns/net", grandkid);
	int code = readlink("/proc/self/ns/net", mine, sizeof(mine) - 1) <= 0 ||
			   readlink(p, its, sizeof(its) - 1) <= 0 || strcmp(mine, its) ? 32 : 0;
	code |= loopback_alone_up(refused && !strcmp(refused, "--vxlan") ? 1 : 0) ? 0 : 1;
	code |= zoo_answer(FD_BUS_C) ? 0 : 2;
	code |= zoo_answer(FD_JOURNAL_C) ? 0 : 4;
	code |= zoo_answer(FD_SENT_C) ? 0 : 64;
	kill(grandkid, is("pair") ? SIGKILL : SIGTERM); /* (killed: its end closes unanswered) */
	code |= zoo_ping(FD_PAIR_C) ? 0 : 8;
	char b[8];
	int got = 0;
	for (int i = 0; i < 300 && !got; i++) {
		got = recv(FD_NESTED_DGRAM, b, sizeof(b), MSG_DONTWAIT) == 5 && !memcmp(b, "hello", 5);
		if (!got)
			zoo_sleep_ms(10);
	}
	code |= got ? 0 : 16;
	int st;
	if (waitpid(grandkid, &st, 0) != grandkid || !WIFEXITED(st) || WEXITSTATUS(st))
		code |= 8;
	_exit(code);
}

/* (the child applies the corruption named, on its own side: is()) */
static void c_in_child(ucontext_t *u) { (void)u; }

static const struct zoo_corruption corruptions[] = {
	{ "netns", c_in_child, 0 },   { "loopback", c_in_child, 0 }, { "bus", c_in_child, 0 },
	{ "journal", c_in_child, 0 }, { "nested-bound", c_in_child, 0 }, { "pair", c_in_child, 0 },
	{ "sent-up", c_in_child, 0 },
};

int main(int argc, char **argv)
{
	struct sockaddr_un bus, nested;
	int journal[2];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	const char *refused = NULL;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--abstract") || !strcmp(argv[i], "--vxlan"))
			refused = argv[i];
	path_of(&bus, "bus.sock");
	path_of(&nested, "nested.sock");
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&bus, sizeof(bus)) || listen(l, 4))
		zoo_die("listen on bus.sock: %s", strerror(errno));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, journal))
		zoo_die("socketpair: %s", strerror(errno));
	zoo_place(journal[0], FD_JOURNAL_P, 0);
	zoo_place(journal[1], FD_JOURNAL_C, 0);
	if ((kid = fork()) == 0)
		child(refused);
	close(FD_JOURNAL_C);
	zoo_place(zoo_recv_fd(FD_JOURNAL_P), FD_SENT_P, 0);
	int a = accept4(l, NULL, NULL, 0);
	if (a < 0)
		zoo_die("accept: %s", strerror(errno));
	zoo_place(a, FD_BUS_P, 0);
	close(l);
	struct stat st;
	for (int i = 0; i < 500 && stat(nested.sun_path, &st); i++)
		zoo_sleep_ms(10);
	zoo_sleep_ms(50); /* (the grandchild forked) */
	zoo_ready();
	zoo_wait();

	char mine[64] = "", its[64] = "", p[64];
	snprintf(p, sizeof(p), "/proc/%d/ns/net", kid);
	kill(kid, SIGTERM);
	if (is("journal"))
		shutdown(FD_JOURNAL_P, SHUT_RDWR);
	CHECK("bus", zoo_ping(FD_BUS_P), "no answer over the bus connection");
	CHECK("journal", zoo_ping(FD_JOURNAL_P), "no answer over the inherited pair");
	CHECK("sent-up", zoo_ping(FD_SENT_P), "no answer over the pair the child sent up");
	int d = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK("nested-bound",
	      d >= 0 && sendto(d, "hello", 5, 0, (struct sockaddr *)&nested, sizeof(nested)) == 5,
	      "cannot send to nested.sock: %s", strerror(errno));
	if (d >= 0)
		close(d);
	if (readlink(p, its, sizeof(its) - 1) > 0 && readlink("/proc/self/ns/net", mine, sizeof(mine) - 1) > 0)
		CHECK("netns", strcmp(mine, its), "the child is in the parent's network namespace %s", mine);
	int status = 0;
	if (waitpid(kid, &status, 0) != kid || !WIFEXITED(status)) {
		zoo_failf("netns", "the child did not exit (status %#x)", status);
	} else {
		int c = WEXITSTATUS(status);
		CHECK("loopback", !(c & 1), "the child's namespace does not hold its loopback alone, up");
		CHECK("bus", !(c & 2), "the child got no ping over the bus connection");
		CHECK("journal", !(c & 4), "the child got no ping over the inherited pair");
		CHECK("pair", !(c & 8), "the grandchild's pair does not answer");
		CHECK("nested-bound", !(c & 16), "the datagram to nested.sock did not arrive");
		CHECK("netns", !(c & 32), "the grandchild is not in the child's namespace");
		CHECK("sent-up", !(c & 64), "the child got no ping over the pair it sent up");
	}
	return zoo_finish(NULL);
}
