/*
 * memtarget: the program the benchmark checkpoints.
 *
 *   memtarget MIB RESULT_FILE
 *
 * Maps MIB MiB of private anonymous memory, fills every byte with a non-zero,
 * position-dependent pattern (so a dumper can skip no zero page), prints
 * "READY pid=N mib=M" on stdout and waits for SIGTERM. On SIGTERM it checks
 * every byte, writes "PASS ..." or "FAIL ..." to RESULT_FILE (opened only
 * then, so the verdict does not depend on restored file descriptors) and to
 * stdout, and exits 0 on PASS, 1 on FAIL.
 *
 * It makes itself a session leader and closes every inherited descriptor but
 * 0, 1 and 2, so it can be dumped without --shell-job.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench-util.h"

#define PAGE 4096u

static void say(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len) {
		ssize_t n = write(fd, s, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s MIB RESULT_FILE\n", argv[0]);
		return 2;
	}
	unsigned long mib = parse_ulong(argv[0], "size in MiB", argv[1]);
	const char *result_path = argv[2];
	size_t len = (size_t)mib << 20;
	size_t words = len / sizeof(uint64_t);
	char msg[512];

	/* Our own session: no controlling terminal, pgid == sid == pid. */
	if (setsid() < 0)
		fprintf(stderr, "memtarget: setsid: %s (dump may need --shell-job)\n", strerror(errno));
	close_range(3, ~0u, 0);

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL)) {
		perror("memtarget: sigprocmask");
		return 2;
	}

	uint64_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("memtarget: mmap");
		return 2;
	}

	/* A per-run seed kept in memory: a stale image of another run cannot pass. */
	pid_t pid = getpid();
	uint64_t seed = now_ns() ^ ((uint64_t)pid << 32);

	for (size_t i = 0; i < words; i++)
		mem[i] = pattern_word(i, seed);

	snprintf(msg, sizeof(msg), "READY pid=%d mib=%lu\n", (int)pid, mib);
	say(STDOUT_FILENO, msg);

	for (;;) {
		int sig = sigwaitinfo(&set, NULL);

		if (sig == SIGTERM)
			break;
		if (sig < 0 && errno != EINTR) {
			perror("memtarget: sigwaitinfo");
			return 2;
		}
	}

	uint64_t t0 = now_ns();
	size_t bad_pages = 0, zero_pages = 0, first_bad = SIZE_MAX;
	const size_t wpp = PAGE / sizeof(uint64_t);

	for (size_t p = 0; p < len / PAGE; p++) {
		const uint64_t *w = mem + p * wpp;
		int bad = 0, zero = 1;

		for (size_t j = 0; j < wpp; j++) {
			if (w[j] != pattern_word(p * wpp + j, seed))
				bad = 1;
			if (w[j])
				zero = 0;
		}
		if (bad) {
			bad_pages++;
			if (first_bad == SIZE_MAX)
				first_bad = p * PAGE;
		}
		zero_pages += zero;
	}
	double verify_ms = (double)(now_ns() - t0) / 1e6;
	pid_t now_pid = getpid();
	int ok = bad_pages == 0 && now_pid == pid;

	if (ok)
		snprintf(msg, sizeof(msg), "PASS pid=%d mib=%lu pages=%zu verify_ms=%.1f\n",
			 (int)now_pid, mib, len / PAGE, verify_ms);
	else if (now_pid != pid)
		snprintf(msg, sizeof(msg), "FAIL pid=%d but started as pid %d\n", (int)now_pid, (int)pid);
	else
		snprintf(msg, sizeof(msg),
			 "FAIL pid=%d mib=%lu bad_pages=%zu zero_pages=%zu first_bad_offset=%#zx\n",
			 (int)now_pid, mib, bad_pages, zero_pages, first_bad);
	say(STDOUT_FILENO, msg);

	int fd = open(result_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "memtarget: open %s: %s\n", result_path, strerror(errno));
		return 2;
	}
	say(fd, msg);
	close(fd);
	return ok ? 0 : 1;
}
