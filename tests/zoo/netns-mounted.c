/*
 * netns-mounted: network namespaces that mounts hold, as `ip netns add NAME` makes them (a
 * namespace's file bound on a file of a directory), and a service that `ip netns exec` started
 * in one: CNI plugins, network labs and test rigs in containers work so.
 *   M, the process whose mount namespace holds the mounts: the program itself when it is the
 *   init of a container (its namespaces are the container's), else a child that made a mount
 *   namespace of its own (private). M mounts a tmpfs on W/netns (W: the work directory) and
 *   makes the files blue and red there; a helper unshares CLONE_NEWNET and binds its namespace
 *   on W/netns/blue, then exits (no process is in blue: the mount alone holds it); red likewise,
 *   then M's child D joins red through the mount (setns: `ip netns exec red`). Through the
 *   files, helpers configure both: lo up, a veth pair zb0 (blue, 10.66.0.1/24, fd66::1/64) and
 *   zr0 (red, 10.66.0.2/24, MTU 1300), a route to 10.67.0.0/24 via 10.66.0.2 in blue, an
 *   nftables table inet zoo in blue. D listens on 10.66.0.2:7100.
 * After restore and SIGTERM: W/netns/blue and red are namespaces' files (nsfs) still, red the
 * namespace D is in; each looks as before (`ip -br link`, `ip -br addr`, routes, the ruleset:
 * a helper in it); a helper in blue (entered through its file) connects to D and gets an
 * answer.
 * What the dump must refuse (tests/failure-cases.sh): --bind-host W/netns/host binds the
 * namespace of the program's parent (stasis's, in the host flavour); --bind-ipc W/netns/ipc
 * binds M's IPC namespace (only network namespaces' files are kept).
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include "zoo-net.h"
#include <sched.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#define FD_LISTEN_D 50
#define LOOK_MAX 4096

static pid_t m_kid, d_kid;
static const char *refused; /* --bind-host, --bind-ipc */
static volatile sig_atomic_t child_term;
static char dir[512], blue[600], red[600];

static const char *const looks[] = {
	"ip -br link | sort; ip -o link | grep -o '^[0-9]*: [^:]*\\|mtu [0-9]*' | paste - - | sort",
	"ip -br addr | sed 's/ *$//' | sort",
	"ip route; ip -6 route | grep -v '^fe80\\|^multicast'",
	"nft list ruleset",
};
#define N_LOOKS (sizeof(looks) / sizeof(looks[0]))
static char before[2][N_LOOKS][LOOK_MAX]; /* blue's, red's */

static void on_term(int sig) { (void)sig; child_term = 1; }

static int is(const char *tag) { return zoo_corr && !strcmp(zoo_corr->tag, tag); }

static void enter(const char *file)
{
	int ns = open(file, O_RDONLY | O_CLOEXEC);
	if (ns < 0 || setns(ns, CLONE_NEWNET))
		zoo_die("enter %s: %s", file, strerror(errno));
	close(ns);
}

/* A helper in the namespace of file runs cmd; its exit status (0: done). */
static int in_ns(const char *file, const char *cmd)
{
	pid_t h = fork();
	if (h == 0) {
		int ns = open(file, O_RDONLY | O_CLOEXEC);
		_exit(ns < 0 || setns(ns, CLONE_NEWNET) ? 126 : system(cmd) ? 1 : 0);
	}
	int st = 0;
	return h > 0 && waitpid(h, &st, 0) == h && WIFEXITED(st) ? WEXITSTATUS(st) : 127;
}

static void sh_in(const char *file, const char *cmd)
{
	if (in_ns(file, cmd))
		zoo_die("in %s: %s failed", file, cmd);
}

/* The look of file's namespace, part i, into out (a helper in it, through a pipe). */
static void look(const char *file, size_t i, char *out, size_t len)
{
	int p[2];
	size_t n = 0;
	out[0] = 0;
	if (pipe(p))
		return;
	pid_t h = fork();
	if (h == 0) {
		dup2(p[1], 1);
		close(p[0]);
		enter(file);
		execl("/bin/sh", "sh", "-c", looks[i], (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	for (ssize_t r; n + 1 < len && (r = read(p[0], out + n, len - 1 - n)) > 0;)
		n += r;
	out[n] = 0;
	close(p[0]);
	waitpid(h, NULL, 0);
}

/* A namespace held by a bind of its file on file: a helper makes it and exits. */
static void netns_add(const char *file)
{
	int fd = open(file, O_CREAT | O_RDONLY | O_CLOEXEC, 0444);
	if (fd < 0)
		zoo_die("%s: %s", file, strerror(errno));
	close(fd);
	pid_t h = fork();
	if (h == 0)
		_exit(unshare(CLONE_NEWNET) || !zoo_set_lo(1) ||
		      mount("/proc/self/ns/net", file, NULL, MS_BIND, NULL) ? 1 : 0);
	int st = 0;
	if (h < 0 || waitpid(h, &st, 0) != h || !WIFEXITED(st) || WEXITSTATUS(st))
		zoo_die("a network namespace bound on %s", file);
}

/* D, in red: serves 10.66.0.2:7100 (a ping each connection) */
static void service(void)
{
	signal(SIGTERM, on_term);
	while (!child_term) {
		int c = accept4(FD_LISTEN_D, NULL, NULL, SOCK_NONBLOCK);
		if (c >= 0) {
			zoo_answer(c);
			close(c);
		}
		zoo_sleep_ms(10);
	}
	_exit(0);
}

static int is_nsfs(const char *file)
{
	struct statfs sf;
	return !statfs(file, &sf) && sf.f_type == NSFS_MAGIC;
}

static unsigned long ino_of(const char *path)
{
	struct stat sb;
	return stat(path, &sb) ? 0 : (unsigned long)sb.st_ino;
}

/* A helper in blue (entered through its file) connects to the service in red: answered? */
static int client_in_blue(void)
{
	pid_t h = fork();
	if (h == 0) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(7100) };
		inet_pton(AF_INET, "10.66.0.2", &sa.sin_addr);
		enter(blue);
		int c = socket(AF_INET, SOCK_STREAM, 0);
		_exit(c >= 0 && !connect(c, (struct sockaddr *)&sa, sizeof(sa)) && zoo_ping(c) ? 0 : 1);
	}
	int st = 0;
	return h > 0 && waitpid(h, &st, 0) == h && WIFEXITED(st) && !WEXITSTATUS(st);
}

/* M's checks after SIGTERM, "TAG: what" lines into report. */
static size_t check(char *report, size_t len)
{
	static char now[LOOK_MAX];
	char p[64];
	size_t n = 0;
#define REPORT(...) (n += snprintf(report + n, n < len ? len - n : 0, __VA_ARGS__), n = n < len ? n : len - 1)

	if (is("blue-mount"))
		umount2(blue, MNT_DETACH);
	if (is("blue-config"))
		in_ns(blue, "ip addr del 10.66.0.1/24 dev zb0");
	if (is("red-config"))
		in_ns(red, "ip link set zr0 mtu 1400");
	if (!is_nsfs(blue) || !is_nsfs(red))
		REPORT("blue-mount: %s is not a namespace's file\n", is_nsfs(blue) ? red : blue);
	snprintf(p, sizeof(p), "/proc/%d/ns/net", d_kid);
	if (!ino_of(red) || ino_of(red) != ino_of(p))
		REPORT("service: the service is not in the namespace %s holds\n", red);
	for (int w = 0; w < 2; w++)
		for (size_t i = 0; i < N_LOOKS && is_nsfs(w ? red : blue); i++) { /* (else: no look) */
			int same = 0;
			for (int k = 0; k < 30 && !same; k++) {
				look(w ? red : blue, i, now, sizeof(now));
				if (!(same = !strcmp(now, before[w][i])))
					zoo_sleep_ms(100);
			}
			if (!same)
				REPORT("%s-config: '%s' became '%s'\n", w ? "red" : "blue", before[w][i], now);
		}
	if (!client_in_blue())
		REPORT("service: no answer from the service to a client in blue\n");
	return n;
}

/* M: makes the namespaces and their mounts, and D. Returns once they are ready. */
static void make_all(void)
{
	char cmd[1024];
	snprintf(dir, sizeof(dir), "%.400s/netns", zoo_tmpdir());
	snprintf(blue, sizeof(blue), "%s/blue", dir);
	snprintf(red, sizeof(red), "%s/red", dir);
	if (mkdir(dir, 0755) && errno != EEXIST)
		zoo_die("mkdir %s: %s", dir, strerror(errno));
	if (mount("zoo-netns", dir, "tmpfs", 0, "mode=0755"))
		zoo_die("tmpfs on %s: %s", dir, strerror(errno));
	netns_add(blue);
	netns_add(red);
	snprintf(cmd, sizeof(cmd), "ip link add zb0 type veth peer name zr0 netns %s && "
		 "ip addr add 10.66.0.1/24 dev zb0 && ip -6 addr add fd66::1/64 dev zb0 nodad && "
		 "ip link set zb0 up && nft add table inet zoo && "
		 "nft add chain inet zoo in '{ type filter hook input priority 0; }' && "
		 "nft add rule inet zoo in tcp dport 7101 drop", red);
	sh_in(blue, cmd);
	sh_in(red, "ip addr add 10.66.0.2/24 dev zr0 && ip link set zr0 mtu 1300 up");
	sh_in(blue, "ip route add 10.67.0.0/24 via 10.66.0.2");
	if (refused) {
		char file[700], ns[64];
		snprintf(file, sizeof(file), "%s/%s", dir, refused + 7);
		snprintf(ns, sizeof(ns), strcmp(refused, "--bind-ipc") ? "/proc/%d/ns/net" : "/proc/self/ns/ipc", getppid());
		int fd = open(file, O_CREAT | O_RDONLY | O_CLOEXEC, 0444);
		if (fd < 0 || close(fd) || mount(ns, file, NULL, MS_BIND, NULL))
			zoo_die("bind %s on %s: %s", ns, file, strerror(errno));
	}
	if ((d_kid = fork()) == 0) {
		enter(red);
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(7100) };
		inet_pton(AF_INET, "10.66.0.2", &sa.sin_addr);
		int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 4))
			zoo_die("listen on 10.66.0.2:7100: %s", strerror(errno));
		zoo_place(l, FD_LISTEN_D, 0);
		service();
	}
	/* (settled: the pair up on both sides, zb0's link-local address made) */
	for (int i = 0; i < 50 && in_ns(blue, "ip -br link show zb0 | grep -q ' UP ' && "
					"ip -6 addr show dev zb0 scope link | grep -q fe80 && "
					"! ip -6 addr show dev zb0 | grep -q tentative"); i++)
		zoo_sleep_ms(100);
	for (int w = 0; w < 2; w++)
		for (size_t i = 0; i < N_LOOKS; i++)
			look(w ? red : blue, i, before[w][i], sizeof(before[w][i]));
}

/* (M applies the corruption named: is()) */
static void c_in_m(ucontext_t *u) { (void)u; }

static const struct zoo_corruption corruptions[] = {
	{ "blue-mount", c_in_m, 0 }, { "blue-config", c_in_m, 0 }, { "red-config", c_in_m, 0 },
	{ "service", c_in_m, 0 },
};

int main(int argc, char **argv)
{
	static char report[4096];
	int p[2];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--bind-host") || !strcmp(argv[i], "--bind-ipc"))
			refused = argv[i];
	if (getpid() == 1) { /* the init of a container: its own mount namespace */
		make_all();
		zoo_ready();
		zoo_wait();
		if (is("service"))
			kill(d_kid, SIGKILL);
		check(report, sizeof(report));
		kill(d_kid, SIGTERM);
		waitpid(d_kid, NULL, 0);
		zoo_fail_report(report);
		return zoo_finish(NULL);
	}
	if (pipe(p))
		zoo_die("pipe: %s", strerror(errno));
	if ((m_kid = fork()) == 0) {
		close(p[0]);
		signal(SIGTERM, on_term);
		if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
			zoo_die("a mount namespace of its own: %s", strerror(errno));
		make_all();
		if (write(p[1], "r", 1) != 1)
			_exit(1);
		while (!child_term)
			zoo_sleep_ms(10);
		if (is("service"))
			kill(d_kid, SIGKILL);
		size_t n = check(report, sizeof(report));
		kill(d_kid, SIGTERM);
		waitpid(d_kid, NULL, 0);
		zoo_write_all(p[1], report, n);
		_exit(0);
	}
	close(p[1]);
	char c;
	if (read(p[0], &c, 1) != 1)
		zoo_die("M did not get ready");
	zoo_ready();
	zoo_wait();
	kill(m_kid, SIGTERM);
	zoo_fail_report_fd(p[0]);
	int st = 0;
	if (waitpid(m_kid, &st, 0) != m_kid || !WIFEXITED(st) || WEXITSTATUS(st))
		zoo_failf("service", "M did not end well (status %#x)", st);
	return zoo_finish(NULL);
}
