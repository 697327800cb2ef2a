/*
 * tcptarget N VERDICT: N established TCP connections over loopback, both ends in the tree: the
 * process holds the client ends, a child of it the server ends (N sockets each, so that each
 * stays under a hard limit of open files of N + 64), each end with 100 bytes written that the other
 * has not read, naming its connection and its side (two connections swapped by a restore do
 * not pass). On SIGTERM the process tells the child (through a pipe) to check too; each reads
 * every one of its ends' bytes and checks them, and one more message goes each way on every
 * connection (the client's "ping N", the server's "pong N"); the process writes "PASS pid=PID
 * ..." or "FAIL ..." to VERDICT, with the child's verdict (its exit status) in it. Each side
 * gives up after 10 failed connections (a broken restore fails in seconds, not 10,000 timeouts).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG 100
#define GIVE_UP 10

static volatile sig_atomic_t term;
static void on_term(int sig) { (void)sig; term = 1; }

static void fill(char *b, unsigned conn, int side)
{
	int n = snprintf(b, MSG, "connection %u, %s's bytes:", conn, side ? "server" : "client");
	for (int i = n; i < MSG; i++)
		b[i] = (char)(conn * 7 + side * 13 + i);
}

static int take(int fd, const char *want, size_t len)
{
	char b[MSG];
	size_t got = 0;
	while (got < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 20000) != 1)
			return 0;
		ssize_t n = recv(fd, b + got, len - got, 0);
		if (n <= 0)
			return 0;
		got += (size_t)n;
	}
	return !memcmp(b, want, len);
}

/* side 0: the client ends (read the server's bytes, ping, read pong); 1: the servers'. */
static unsigned check(const int *fds, unsigned n, int side)
{
	unsigned bad = 0;
	char b[MSG], ping[16], pong[16];

	for (unsigned i = 0; i < n && bad < GIVE_UP; i++) {
		fill(b, i, !side);
		snprintf(ping, sizeof(ping), "ping %6u", i);
		snprintf(pong, sizeof(pong), "pong %6u", i);
		bool ok = take(fds[i], b, MSG);
		if (side == 0)
			ok = write(fds[i], ping, 11) == 11 && take(fds[i], pong, 11) && ok;
		else
			ok = take(fds[i], ping, 11) && write(fds[i], pong, 11) == 11 && ok;
		if (!ok)
			fprintf(stderr, "%s end of connection %u: wrong or missing bytes\n",
				side ? "server" : "client", i);
		bad += !ok;
	}
	return bad;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	unsigned n = (unsigned)atoi(argv[1]);
	struct rlimit r;
	int *ends = calloc(n, sizeof(int)), ready[2], go[2];
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	char b[MSG], byte;

	getrlimit(RLIMIT_NOFILE, &r);
	r.rlim_cur = r.rlim_max;
	if (r.rlim_max < (rlim_t)n + 64) {
		fprintf(stderr, "setup: %u connections need %u open files per process, the hard limit "
			"is %llu\n", n, n + 64, (unsigned long long)r.rlim_max);
		return 1;
	}
	if (!ends || setrlimit(RLIMIT_NOFILE, &r) || l < 0 || bind(l, (struct sockaddr *)&sa, len) ||
	    listen(l, 4096) || getsockname(l, (struct sockaddr *)&sa, &len) || pipe(ready) || pipe(go)) {
		perror("setup");
		return 1;
	}
	signal(SIGTERM, on_term);
	pid_t kid = fork();
	if (kid < 0) {
		perror("fork");
		return 1;
	}
	if (kid == 0) { /* the servers' ends, accepted in the order the clients connect */
		close(ready[0]);
		close(go[1]);
		for (unsigned i = 0; i < n; i++) {
			fill(b, i, 1);
			if ((ends[i] = accept(l, NULL, NULL)) < 0 || write(ends[i], b, MSG) != MSG) {
				fprintf(stderr, "server end %u: %s\n", i, strerror(errno));
				return 1;
			}
		}
		close(l);
		if (write(ready[1], "r", 1) != 1)
			return 1;
		while (read(go[0], &byte, 1) < 0 && errno == EINTR)
			;
		return check(ends, n, 1) ? 1 : 0;
	}
	close(l);
	close(ready[1]);
	close(go[0]);
	for (unsigned i = 0; i < n; i++) {
		fill(b, i, 0);
		ends[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (ends[i] < 0 || connect(ends[i], (struct sockaddr *)&sa, len) ||
		    write(ends[i], b, MSG) != MSG) {
			fprintf(stderr, "client end %u: %s\n", i, strerror(errno));
			return 1;
		}
	}
	if (read(ready[0], &byte, 1) != 1) {
		fprintf(stderr, "the servers' process failed\n");
		return 1;
	}
	close(ready[0]);
	printf("READY pid=%d\n", getpid());
	fflush(stdout);
	while (!term)
		pause();
	if (write(go[1], "g", 1) != 1)
		return 1;
	unsigned bad = check(ends, n, 0);
	int st = 0;
	if (bad)
		kill(kid, SIGKILL); /* it may wait for a ping that never comes */
	while (waitpid(kid, &st, 0) < 0 && errno == EINTR)
		;
	FILE *f = fopen(argv[2], "w");
	if (!f)
		return 1;
	if (bad || !WIFEXITED(st) || WEXITSTATUS(st))
		fprintf(f, "FAIL pid=%d: %u of %u connections failed at their client end (checks stop "
			"at %d); the servers' process: %s %d\n",
			getpid(), bad, n, GIVE_UP, WIFEXITED(st) ? "exit" : "signal",
			WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	else
		fprintf(f, "PASS pid=%d %u connections, every byte\n", getpid(), n);
	fclose(f);
	return bad != 0;
}
