/*
 * Bench target with a language runtime's address space reservation: `reservetarget RESULT`
 * maps 1 TiB PROT_NONE (private anonymous, MAP_NORESERVE), commits a few small windows of it
 * read-write (64 KiB at its start, in its middle and at its end) and fills them with a
 * pattern, then forks a child that inherits the reservation (shared copy-on-write) and
 * rewrites one page of the middle window. Two walks over a reservation's every page, which
 * cost seconds and which make bench guards: the dump reading the pagemap of each page of a
 * reservation (per process) and a restored child walking each page of a reservation it
 * inherited.
 * After SIGTERM to the root: both check their windows (the child its own page) and that the
 * reservation is still mapped; the root writes "PASS pid=ROOT tasks=2" or "FAIL ..." to RESULT.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RESERVE (1ULL << 40)
#define WIN (64UL << 10)
#define KID_PAGE 3

static const size_t windows[] = { 0, RESERVE / 2, RESERVE - WIN };
static unsigned char *res;
static volatile sig_atomic_t term;

static void on_term(int sig) { (void)sig; term = 1; }

static unsigned char byte_at(size_t off, bool kid)
{
	return (unsigned char)((off >> 12) * 13 + (off & 0xfff) * 5 + 1 + (kid ? 7 : 0));
}

/* Windows hold the pattern (the child's page its own); 0 if all is well. */
static int check(bool kid)
{
	for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++)
		for (size_t off = windows[w]; off < windows[w] + WIN; off++) {
			bool mine = kid && off >= RESERVE / 2 + KID_PAGE * 4096UL &&
				    off < RESERVE / 2 + (KID_PAGE + 1) * 4096UL;
			if (res[off] != byte_at(off, mine))
				return 1;
		}
	/* still reserved: the end of the reservation is mapped (PROT_NONE: mprotect succeeds) */
	return mprotect(res + RESERVE / 4, 4096, PROT_NONE) != 0;
}

static void wait_term(void)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	while (!term)
		nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_term };
	char line[120];

	if (argc != 2) {
		fprintf(stderr, "usage: %s RESULT_FILE\n", argv[0]);
		return 2;
	}
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	sigaction(SIGTERM, &sa, NULL);
	res = mmap(NULL, RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED) {
		perror("mmap of the reservation");
		return 1;
	}
	for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
		if (mprotect(res + windows[w], WIN, PROT_READ | PROT_WRITE)) {
			perror("mprotect");
			return 1;
		}
		for (size_t off = windows[w]; off < windows[w] + WIN; off++)
			res[off] = byte_at(off, false);
	}
	pid_t kid = fork();
	if (kid < 0) {
		perror("fork");
		return 1;
	}
	if (kid == 0) {
		for (size_t off = RESERVE / 2 + KID_PAGE * 4096UL; off < RESERVE / 2 + (KID_PAGE + 1) * 4096UL; off++)
			res[off] = byte_at(off, true);
		wait_term();
		_exit(check(true));
	}
	printf("READY pid=%d tasks=2\n", getpid());
	fflush(stdout);
	wait_term();
	kill(kid, SIGTERM);
	int st = 0;
	bool kid_bad = waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st);
	bool bad = check(false);
	snprintf(line, sizeof(line), bad || kid_bad ? "FAIL pid=%d tasks=2 (%s)\n" : "PASS pid=%d tasks=2\n",
		 getpid(), bad ? "the root's windows differ" : "the child's windows differ");
	FILE *f = fopen(argv[1], "w");
	if (!f || fputs(line, f) < 0 || fclose(f))
		return 1;
	return bad || kid_bad;
}
