/*
 * netns-veth: a program that gives a service a network namespace of its own wired to its own
 * by a veth pair (`ip netns add` and `ip link add ... netns` in a container, a network lab, a
 * CNI plugin's test), with the service's namespace configured whole.
 *   The parent P makes a network namespace of its own (in the host flavour it is the tree's;
 *   in the container flavours one nested in the container's), brings lo up, forks the child C.
 *   C makes another (its maker) and brings lo up; P makes the pair zr0 (its own, 10.77.0.1/24,
 *   fd77::1/64, MTU 1400) and zc0 (in C's namespace).
 *   C configures its namespace: zc0 with 10.77.0.2/24, fd77::2/64 and MAC 02:77:00:00:00:02; a
 *   route to 10.78.0.0/24 via 10.77.0.1 (metric 7); a bridge zb0 with 10.79.0.1/24 whose port
 *   is zq0, one end of a pair inside C's namespace (zq1 the other, down); ip_forward 1,
 *   somaxconn 777 (where /proc/sys can be written: not in a container); an nftables table inet zoo (a base chain dropping TCP port 7001).
 *   C listens on 10.77.0.2:7000 (fd 50); P connects (fd 51), C accepts (fd 52): an established
 *   TCP connection over the pair (dumped with --tcp-established); P connects again (fd 55), and
 *   that connection waits in C's accept queue. C forks a grandchild G, which stays in C's
 *   namespace.
 *   Each of P and C notes how its namespace looks (`ip -br link`, `ip -br addr`, routes,
 *   `nft list ruleset`, the two sysctls) before it is ready.
 * After restore and SIGTERM: each namespace looks the same (links up again given 3 s); a ping
 * over the connection is answered both ways; C accepts the connection that waited, which
 * answers a ping; P connects to C's listener again and is accepted there (the pair carries); G is in C's namespace, and C's is not P's.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include "zoo-net.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>

#define FD_LISTEN_C 50
#define FD_CONN_P 51
#define FD_CONN_C 52
#define FD_SYNC 53 /* P's end of a pipe pair with C (C's: 54) */
#define FD_SYNC_C 54
#define FD_QUEUED_P 55 /* a connection of P's to C's listener that C has not accepted yet */

#define LOOK_MAX 4096

static pid_t kid, grandkid;
static volatile sig_atomic_t child_term;

/* The parts of a namespace's look, each as its tools print it (C's namespace; P's: zr0). */
static const struct part {
	const char *tag, *cmd;
} parts[] = {
	{ "links", "ip -br link | sort; ip -o link | grep -o '^[0-9]*: [^:]*\\|mtu [0-9]*' | paste - - | sort" },
	{ "addresses", "ip -br addr | sed 's/ *$//' | sort" },
	{ "routes", "ip route; ip -6 route | grep -v '^fe80\\|^multicast'" },
	{ "nftables", "nft list ruleset" },
	{ "sysctls", "sysctl -n net.ipv4.ip_forward net.core.somaxconn" },
	{ "outer-end", "ip -br link show zr0; ip -o link show zr0 | grep -o 'mtu [0-9]*'; "
		       "ip -br addr show zr0 | sed 's/ *$//'" },
};
#define N_PARTS (sizeof(parts) / sizeof(parts[0]))
static char before[N_PARTS][LOOK_MAX];

static void on_term(int sig) { (void)sig; child_term = 1; }

static int is(const char *tag) { return zoo_corr && !strcmp(zoo_corr->tag, tag); }

static void sh(const char *cmd)
{
	if (system(cmd))
		zoo_die("%s failed", cmd);
}

static void look(size_t part, char *out, size_t len)
{
	FILE *f = popen(parts[part].cmd, "r");
	size_t n = f ? fread(out, 1, len - 1, f) : 0;

	out[n] = 0;
	if (f)
		pclose(f);
}

/* Part as before within 3 s (an interface's state follows its peer's a moment later); else
 * the first line that differs, into why. */
static int same_look(size_t part, char *why, size_t len)
{
	static char now[LOOK_MAX];

	for (int i = 0; i < 30; i++) {
		look(part, now, sizeof(now));
		if (!strcmp(now, before[part]))
			return 1;
		zoo_sleep_ms(100);
	}
	const char *a = before[part], *b = now;
	while (*a && *a == *b)
		a++, b++;
	while (a > before[part] && a[-1] != '\n')
		a--, b--;
	snprintf(why, len, "'%.*s' became '%.*s'", (int)strcspn(a, "\n"), a, (int)strcspn(b, "\n"), b);
	return 0;
}

static struct sockaddr_in service(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(7000) };
	inet_pton(AF_INET, "10.77.0.2", &sa.sin_addr);
	return sa;
}

static void sync_write(int fd)
{
	if (write(fd, "x", 1) != 1)
		zoo_die("sync: %s", strerror(errno));
}

static void sync_read(int fd)
{
	char c;
	if (read(fd, &c, 1) != 1)
		zoo_die("sync: the other side is gone");
}

static void grandchild(void)
{
	signal(SIGTERM, on_term);
	while (!child_term)
		zoo_sleep_ms(10);
	_exit(0);
}

/* Exit code bits: 1 its namespace looks otherwise, 2 the connection, 4 the listener, 8 G's
 * namespace, 16 C's namespace is P's */
static void child(void)
{
	char cmd[256], why[512];

	signal(SIGTERM, on_term);
	if (unshare(CLONE_NEWNET) || !zoo_set_lo(1))
		zoo_die("a network namespace of its own with lo up: %s", strerror(errno));
	sync_write(FD_SYNC_C);
	sync_read(FD_SYNC_C); /* (P made the pair) */
	sh("ip addr add 10.77.0.2/24 dev zc0 && ip -6 addr add fd77::2/64 dev zc0 nodad && "
	   "ip link set zc0 address 02:77:00:00:00:02 up && ip route add 10.78.0.0/24 via 10.77.0.1 metric 7 && "
	   "ip link add zb0 type bridge && ip link add zq0 type veth peer name zq1 && "
	   "ip link set zq0 master zb0 up && ip link set zb0 up && ip addr add 10.79.0.1/24 dev zb0");
	if (!access("/proc/sys/net/core/somaxconn", W_OK)) /* (a container's /proc/sys is read-only) */
		sh("sysctl -qw net.ipv4.ip_forward=1 net.core.somaxconn=777");
	sh("nft add table inet zoo && nft add chain inet zoo in '{ type filter hook input priority 0; }' && "
	   "nft add rule inet zoo in tcp dport 7001 drop");
	struct sockaddr_in sa = service();
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 4))
		zoo_die("listen on 10.77.0.2:7000: %s", strerror(errno));
	zoo_place(l, FD_LISTEN_C, 0);
	sync_write(FD_SYNC_C); /* (listening) */
	int a = accept4(FD_LISTEN_C, NULL, NULL, SOCK_NONBLOCK);
	if (a < 0)
		zoo_die("accept: %s", strerror(errno));
	zoo_place(a, FD_CONN_C, 0);
	if ((grandkid = fork()) == 0)
		grandchild();
	/* (settled first: the pair up on both sides, zc0's link-local address made) */
	for (int i = 0; i < 50 && system("ip -br link show zc0 | grep -q ' UP ' && "
					 "ip -6 addr show dev zc0 scope link | grep -q fe80 && "
					 "! ip -6 addr show dev zc0 | grep -q tentative"); i++)
		zoo_sleep_ms(100);
	for (size_t i = 0; i + 1 < N_PARTS; i++)
		look(i, before[i], sizeof(before[i]));
	sync_write(FD_SYNC_C); /* (ready) */
	while (!child_term)
		zoo_sleep_ms(10);

	if (is("links"))
		sh("ip link del zb0");
	if (is("addresses"))
		sh("ip -6 addr del fd77::2/64 dev zc0");
	if (is("routes"))
		sh("ip route del 10.78.0.0/24");
	if (is("nftables"))
		sh("nft delete table inet zoo");
	if (is("sysctls"))
		sh("sysctl -qw net.core.somaxconn=778");
	if (is("netns"))
		zoo_enter_netns_of(getppid());
	/* the report, "TAG: what" lines, to P */
	char report[4096] = "";
	size_t n = 0;
#define REPORT(tag, ...) \
	(n += snprintf(report + n, n < sizeof(report) ? sizeof(report) - n : 0, tag ": " __VA_ARGS__), \
	 n = n < sizeof(report) ? n : sizeof(report) - 1)
	if (!zoo_answer(FD_CONN_C))
		REPORT("connection", "the child got no ping over the connection\n");
	for (int k = 0; k < 2; k++) { /* (the one waiting in the queue, then P's new one) */
		int b = -1;
		for (int i = 0; i < 300 && b < 0; i++)
			if ((b = accept4(FD_LISTEN_C, NULL, NULL, SOCK_NONBLOCK)) < 0)
				zoo_sleep_ms(10);
		if (b < 0 || !zoo_answer(b))
			REPORT("connection", "the child's listener gave no %s connection\n", k ? "new" : "waiting");
	}
	for (size_t i = 0; i + 1 < N_PARTS; i++)
		if (!same_look(i, why, sizeof(why)))
			REPORT("%s", "%s\n", parts[i].tag, why);
	char mine[64] = "", its[64] = "", parent[64] = "";
	snprintf(cmd, sizeof(cmd), "/proc/%d/ns/net", grandkid);
	if (readlink("/proc/self/ns/net", mine, sizeof(mine) - 1) <= 0 || readlink(cmd, its, sizeof(its) - 1) <= 0 ||
	    strcmp(mine, its))
		REPORT("netns", "the grandchild is not in the child's namespace\n");
	snprintf(cmd, sizeof(cmd), "/proc/%d/ns/net", getppid());
	if (readlink(cmd, parent, sizeof(parent) - 1) <= 0 || !strcmp(mine, parent))
		REPORT("netns", "the child is in the parent's network namespace\n");
	kill(grandkid, SIGTERM);
	waitpid(grandkid, NULL, 0);
	zoo_write_all(FD_SYNC_C, report, n);
	_exit(0);
}

/* (the child applies the corruption named, on its own side: is()) */
static void c_in_child(ucontext_t *u) { (void)u; }

static const struct zoo_corruption corruptions[] = {
	{ "links", c_in_child, 0 },    { "addresses", c_in_child, 0 }, { "routes", c_in_child, 0 },
	{ "nftables", c_in_child, 0 }, { "sysctls", c_in_child, 0 },   { "netns", c_in_child, 0 },
	{ "outer-end", c_in_child, 0 }, { "connection", c_in_child, 0 },
};

int main(int argc, char **argv)
{
	char cmd[256], why[512];
	int sync[2];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (unshare(CLONE_NEWNET) || !zoo_set_lo(1))
		zoo_die("a network namespace of its own with lo up: %s", strerror(errno));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sync))
		zoo_die("socketpair: %s", strerror(errno));
	zoo_place(sync[0], FD_SYNC, 0);
	zoo_place(sync[1], FD_SYNC_C, 0);
	if ((kid = fork()) == 0)
		child();
	close(FD_SYNC_C);
	sync_read(FD_SYNC); /* (C has its namespace) */
	snprintf(cmd, sizeof(cmd),
		 "ip link add zr0 type veth peer name zc0 netns %d && ip addr add 10.77.0.1/24 dev zr0 && "
		 "ip -6 addr add fd77::1/64 dev zr0 nodad && ip link set zr0 mtu 1400 up", kid);
	sh(cmd);
	sync_write(FD_SYNC);
	sync_read(FD_SYNC); /* (C listens) */
	struct sockaddr_in sa = service();
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)))
		zoo_die("connect to 10.77.0.2:7000: %s", strerror(errno));
	zoo_place(c, FD_CONN_P, 0);
	sync_read(FD_SYNC); /* (C is ready) */
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)))
		zoo_die("connect to 10.77.0.2:7000 again: %s", strerror(errno));
	zoo_place(c, FD_QUEUED_P, 0);
	look(N_PARTS - 1, before[N_PARTS - 1], sizeof(before[0]));
	zoo_ready();
	zoo_wait();

	kill(kid, SIGTERM);
	if (is("outer-end"))
		sh("ip link set zr0 mtu 1500");
	if (is("connection"))
		shutdown(FD_CONN_P, SHUT_RDWR);
	CHECK("connection", zoo_ping(FD_CONN_P), "no answer over the connection to the child");
	CHECK("connection", zoo_ping(FD_QUEUED_P), "no answer over the connection that waited in the child's queue");
	int again = socket(AF_INET, SOCK_STREAM, 0);
	CHECK("connection", again >= 0 && !connect(again, (struct sockaddr *)&sa, sizeof(sa)) && zoo_ping(again),
	      "cannot talk to the child's listener again over the pair: %s", strerror(errno));
	CHECK("outer-end", same_look(N_PARTS - 1, why, sizeof(why)), "zr0: %s", why);
	zoo_fail_report_fd(FD_SYNC);
	int status = 0;
	if (waitpid(kid, &status, 0) != kid || !WIFEXITED(status) || WEXITSTATUS(status))
		zoo_failf("netns", "the child did not end well (status %#x)", status);
	return zoo_finish(NULL);
}
