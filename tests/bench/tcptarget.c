/*
 * tcptarget N VERDICT: N established TCP connections over loopback, both ends in this process
 * (2N sockets), each end with 100 bytes written that the other has not read. On SIGTERM it
 * reads every end's bytes, checks them, sends one more message each way on every connection,
 * and writes "PASS pid=PID ..." or "FAIL ..." to VERDICT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MSG 100

static volatile sig_atomic_t term;
static void on_term(int sig) { (void)sig; term = 1; }

static void fill(char *b, unsigned conn, int side)
{
	for (int i = 0; i < MSG; i++)
		b[i] = (char)(conn * 7 + side * 13 + i);
}

static int take(int fd, const char *want, size_t len)
{
	char b[MSG];
	size_t got = 0;
	while (got < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 10000) != 1)
			return 0;
		ssize_t n = recv(fd, b + got, len - got, 0);
		if (n <= 0)
			return 0;
		got += (size_t)n;
	}
	return !memcmp(b, want, len);
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	unsigned n = (unsigned)atoi(argv[1]);
	struct rlimit r = { 4 * n + 64, 4 * n + 64 };
	int *c = calloc(n, sizeof(int)), *s = calloc(n, sizeof(int));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	char b[MSG];

	if (setrlimit(RLIMIT_NOFILE, &r) || l < 0 || bind(l, (struct sockaddr *)&sa, len) || listen(l, 4096) ||
	    getsockname(l, (struct sockaddr *)&sa, &len)) {
		perror("setup");
		return 1;
	}
	signal(SIGTERM, on_term);
	for (unsigned i = 0; i < n; i++) {
		c[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (c[i] < 0 || connect(c[i], (struct sockaddr *)&sa, len) || (s[i] = accept(l, NULL, NULL)) < 0) {
			fprintf(stderr, "connection %u: %s\n", i, strerror(errno));
			return 1;
		}
		fill(b, i, 0);
		if (write(c[i], b, MSG) != MSG)
			return 1;
		fill(b, i, 1);
		if (write(s[i], b, MSG) != MSG)
			return 1;
	}
	close(l);
	printf("READY pid=%d\n", getpid());
	fflush(stdout);
	while (!term)
		pause();
	unsigned bad = 0;
	for (unsigned i = 0; i < n; i++) {
		fill(b, i, 0);
		bad += !take(s[i], b, MSG);
		fill(b, i, 1);
		bad += !take(c[i], b, MSG);
		bad += write(c[i], "ping", 4) != 4 || !take(s[i], "ping", 4);
		bad += write(s[i], "pong", 4) != 4 || !take(c[i], "pong", 4);
	}
	FILE *f = fopen(argv[2], "w");
	if (!f)
		return 1;
	if (bad)
		fprintf(f, "FAIL pid=%d: %u checks of %u connections failed\n", getpid(), bad, n);
	else
		fprintf(f, "PASS pid=%d %u connections, every byte\n", getpid(), n);
	fclose(f);
	return bad != 0;
}
