/*
 * Bench target with many processes holding many fds: `fdtarget N M RESULT DATA_FILE`.
 * The root opens about M fds, a quarter of each kind: pipes (each with bytes in it), unix
 * socket pairs (bytes queued one way), DATA_FILE opened again and again (each at an offset
 * of its own) and eventfds (each with a count). Then it makes a tree of N processes in all
 * (process i is a child of process (i - 1) / 4), which inherit every one of those fds; each
 * process also opens two files of its own and keeps signals pending (blocked SIGUSR1,
 * SIGUSR2 and three queued real-time signals with values).
 * After SIGTERM to the root: it passes it down, and every process checks its fds (offsets,
 * counts and queued bytes, read without changing them) and its pending signals; the root
 * writes "PASS pid=ROOT tasks=N fds=TOTAL" or "FAIL ..." to RESULT (opened only then).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FANOUT 4

enum kind { K_PIPE, K_SOCK, K_FILE, K_EVENT };

struct held {
	int fd;
	enum kind kind;
	long value; /* offset, count or queued bytes */
};

static struct held *held;
static int nheld;
static volatile sig_atomic_t term;
static pid_t kids[FANOUT];
static int nkids;
static int index_in_tree;

static void on_term(int sig) { (void)sig; term = 1; }

static void nap(void)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	nanosleep(&ts, NULL);
}

static void hold(int fd, enum kind kind, long value)
{
	held[nheld++] = (struct held){ fd, kind, value };
}

/* The eventfd's count, read from fdinfo (a read() would reset it for every holder). */
static long eventfd_count(int fd)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	int f = open(path, O_RDONLY);
	ssize_t n = f < 0 ? -1 : read(f, buf, sizeof(buf) - 1);
	if (f >= 0)
		close(f);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *l = strstr(buf, "eventfd-count:");
	return l ? strtol(l + 14, NULL, 16) : -1;
}

static int check_fds(void)
{
	int bad = 0;
	for (int i = 0; i < nheld; i++) {
		const struct held *h = &held[i];
		int q = -1;
		long v = -1;
		switch (h->kind) {
		case K_PIPE:
		case K_SOCK:
			v = ioctl(h->fd, FIONREAD, &q) ? -1 : q;
			break;
		case K_FILE: v = lseek(h->fd, 0, SEEK_CUR); break;
		case K_EVENT: v = eventfd_count(h->fd); break;
		}
		if (v != h->value) {
			if (bad < 3)
				fprintf(stderr, "process %d fd %d (kind %d): %ld, wanted %ld\n", index_in_tree,
					h->fd, h->kind, v, h->value);
			bad++;
		}
	}
	return bad;
}

/* Signals pending since before the dump: SIGUSR1, SIGUSR2 and three SIGRTMIN+1 with values. */
static void make_pending(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGRTMIN + 1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	raise(SIGUSR1);
	raise(SIGUSR2);
	for (int k = 0; k < 3; k++)
		sigqueue(getpid(), SIGRTMIN + 1, (union sigval){ .sival_int = index_in_tree * 10 + k });
}

static int check_pending(void)
{
	sigset_t set;
	siginfo_t si;
	struct timespec zero = { 0, 0 };
	int bad = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	bad += sigtimedwait(&set, &si, &zero) < 0;
	bad += sigtimedwait(&set, &si, &zero) < 0;
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 1);
	for (int k = 0; k < 3; k++)
		bad += sigtimedwait(&set, &si, &zero) != SIGRTMIN + 1 ||
		       si.si_value.sival_int != index_in_tree * 10 + k;
	if (bad)
		fprintf(stderr, "process %d: pending signals lost\n", index_in_tree);
	return bad;
}

/* Waits for SIGTERM, passes it down, checks; returns the number of wrong things in the subtree. */
static int live(void)
{
	int bad = 0;

	while (!term)
		nap();
	for (int k = 0; k < nkids; k++)
		kill(kids[k], SIGTERM);
	bad += check_fds() + check_pending();
	for (int k = 0; k < nkids; k++) {
		int st = 0;
		if (waitpid(kids[k], &st, 0) != kids[k] || !WIFEXITED(st) || WEXITSTATUS(st))
			bad++;
	}
	return bad;
}

/* Process i's children i * FANOUT + 1 .. (i + 1) * FANOUT below n; each forks its own. */
static void fork_children(int n, const char *data)
{
	for (int c = index_in_tree * FANOUT + 1; c <= (index_in_tree + 1) * FANOUT && c < n; c++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			exit(1);
		}
		if (pid == 0) {
			index_in_tree = c;
			nkids = 0;
			/* two files of its own, each a new open file */
			for (int k = 0; k < 2; k++) {
				int fd = open(data, O_RDONLY);
				if (fd < 0 || lseek(fd, c + k, SEEK_SET) < 0)
					exit(1);
				hold(fd, K_FILE, c + k);
			}
			fork_children(n, data);
			make_pending();
			exit(live() ? 1 : 0);
		}
		kids[nkids++] = pid;
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_term };
	char line[200];

	if (argc != 5 || atoi(argv[1]) < 1 || atoi(argv[2]) < 4) {
		fprintf(stderr, "usage: %s PROCESSES FDS RESULT_FILE DATA_FILE\n", argv[0]);
		return 2;
	}
	int n = atoi(argv[1]), m = atoi(argv[2]) / 4 * 4;
	const char *data = argv[4];
	struct rlimit rl = { (rlim_t)m + 256, (rlim_t)m + 256 };
	if (setrlimit(RLIMIT_NOFILE, &rl)) {
		perror("setrlimit");
		return 1;
	}
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	sigaction(SIGTERM, &sa, NULL);
	held = calloc(m + 8, sizeof(*held));
	int dfd = open(data, O_RDWR | O_CREAT | O_TRUNC, 0644);
	char page[4096];
	memset(page, 'x', sizeof(page));
	if (dfd < 0 || write(dfd, page, sizeof(page)) != sizeof(page)) {
		perror(data);
		return 1;
	}
	close(dfd);
	for (int i = 0; i < m / 4; i++) {
		int p[2];
		long bytes = 1 + i % 7;
		if (i % 2 == 0) {
			if (pipe(p) || write(p[1], page, bytes) != bytes) {
				perror("pipe");
				return 1;
			}
			hold(p[0], K_PIPE, bytes);
			hold(p[1], K_PIPE, bytes); /* FIONREAD on either end: the pipe's bytes */
		} else {
			if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) || write(p[0], page, bytes) != bytes) {
				perror("socketpair");
				return 1;
			}
			hold(p[0], K_SOCK, 0);
			hold(p[1], K_SOCK, bytes);
		}
		int fd = open(data, O_RDONLY);
		if (fd < 0 || lseek(fd, i % 4096, SEEK_SET) < 0) {
			perror(data);
			return 1;
		}
		hold(fd, K_FILE, i % 4096);
		uint64_t one = 1 + i;
		fd = eventfd(0, EFD_NONBLOCK);
		if (fd < 0 || write(fd, &one, sizeof(one)) != sizeof(one)) {
			perror("eventfd");
			return 1;
		}
		hold(fd, K_EVENT, one);
	}
	int total = nheld;
	index_in_tree = 0;
	fork_children(n, data);
	make_pending();
	/* each other process holds two files of its own */
	printf("READY pid=%d tasks=%d fds=%ld\n", getpid(), n, (long)total * n + 2L * (n - 1));
	fflush(stdout);
	int bad = live();
	if (bad)
		snprintf(line, sizeof(line), "FAIL pid=%d tasks=%d bad=%d\n", getpid(), n, bad);
	else
		snprintf(line, sizeof(line), "PASS pid=%d tasks=%d fds=%ld\n", getpid(), n,
			 (long)total * n + 2L * (n - 1));
	int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, line, strlen(line)) < 0)
		return 1;
	close(fd);
	return bad != 0;
}
