/*
 * inode-owners: pipes' and sockets' inodes given owners other than their creator's (fchown,
 * as root; a socket's owner is also its sk_uid, which netfilter's owner match reads):
 *   a pipe 13333:44444 (both ends one inode), a unix socket pair end 13334:44445, a bound UDP
 *   socket and an unbound TCP socket 12345:12346; one pipe left root's.
 * After restore and SIGTERM: each fd's inode has its owner (fstat), the UDP socket's uid
 * column in /proc/net/udp is 12345 too.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

static int fds[6]; /* pipe read, pipe write, pair end, udp, tcp, root's pipe */
static const uid_t uids[6] = { 13333, 13333, 13334, 12345, 12345, 0 };
static const gid_t gids[6] = { 44444, 44444, 44445, 12346, 12346, 0 };
static const char *names[6] = { "pipe read end", "pipe write end", "unix pair end", "UDP socket",
				 "TCP socket", "root's pipe" };

static void c_pipe(ucontext_t *u) { (void)u; if (fchown(fds[0], 0, 0)) zoo_die("fchown"); }
static void c_socket(ucontext_t *u) { (void)u; if (fchown(fds[3], 0, 0)) zoo_die("fchown"); }
static const struct zoo_corruption corruptions[] = {
	{ "pipe", c_pipe, 0 },
	{ "socket", c_socket, 0 },
};

/* The uid column of the UDP socket bound to port in /proc/net/udp, -1 if not found. */
static long udp_uid(unsigned port)
{
	char line[512];
	long uid = -1;
	FILE *f = fopen("/proc/net/udp", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned lport;
		long u;
		if (sscanf(line, " %*d: %*x:%x %*x:%*x %*x %*x:%*x %*x:%*x %*x %ld", &lport, &u) == 2 &&
		    lport == port)
			uid = u;
	}
	fclose(f);
	return uid;
}

int main(int argc, char **argv)
{
	int p[2], s[2], p2[2];
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, s) || pipe(p2))
		zoo_die("pipe/socketpair: %s", strerror(errno));
	fds[0] = p[0], fds[1] = p[1], fds[2] = s[0], fds[5] = p2[0];
	fds[3] = socket(AF_INET, SOCK_DGRAM, 0);
	fds[4] = socket(AF_INET, SOCK_STREAM, 0);
	if (fds[3] < 0 || fds[4] < 0 || bind(fds[3], (struct sockaddr *)&sin, sizeof(sin)) ||
	    getsockname(fds[3], (struct sockaddr *)&sin, &len))
		zoo_die("sockets: %s", strerror(errno));
	for (int i = 0; i < 5; i++)
		if (i != 1 && fchown(fds[i], uids[i], gids[i]))
			zoo_die("fchown %s: %s", names[i], strerror(errno));
	if (udp_uid(ntohs(sin.sin_port)) != 12345)
		zoo_die("/proc/net/udp does not show the UDP socket's owner 12345");

	zoo_ready();
	zoo_wait();

	for (int i = 0; i < 6; i++) {
		struct stat st;
		CHECK(i == 3 ? "socket" : i < 2 ? "pipe" : "owner", !fstat(fds[i], &st) && st.st_uid == uids[i] &&
		      st.st_gid == gids[i], "%s is owned by %u:%u, expected %u:%u", names[i],
		      (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned)uids[i], (unsigned)gids[i]);
	}
	long u = udp_uid(ntohs(sin.sin_port));
	CHECK("socket", u == 12345, "/proc/net/udp shows uid %ld for the UDP socket, expected 12345", u);
	return zoo_finish(NULL);
}
