/*
 * dirtytarget: the program the migration benchmark moves.
 *
 *   dirtytarget MIB PERCENT_PER_SECOND RESULT_FILE RESUMED_FILE
 *
 * Maps MIB MiB of private anonymous memory, fills every page with a pattern of its index and
 * its version (kept in a table of its own, in memory too), prints "READY pid=N mib=M" and then
 * rewrites PERCENT_PER_SECOND percent of its pages every second, random ones, a few every
 * millisecond. Whenever its clock jumps by more than 20 ms between two steps (it was stopped,
 * frozen, moved, restored) it appends "resumed_ns=T gap_ms=G" to RESUMED_FILE: T is
 * CLOCK_REALTIME at the first step after the gap, G the gap as the program saw it (from its
 * last step before the stop to its first one after it: its downtime). On SIGTERM it checks
 * every byte against its table and writes "PASS ..." or "FAIL ..." to RESULT_FILE and stdout;
 * exit 0 on PASS.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench-util.h"

#define PAGE 4096u
#define WORDS (PAGE / sizeof(uint64_t))
#define STEP_NS 1000000ull /* a step every millisecond */

static volatile sig_atomic_t term;
static void on_term(int sig) { (void)sig; term = 1; }

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void write_file(const char *path, const char *text, int how)
{
	int fd = open(path, O_WRONLY | O_CREAT | how | O_CLOEXEC, 0644);

	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror("dirtytarget: write");
		close(fd);
	}
}

static void fill(uint64_t *page, size_t index, uint32_t version, uint64_t seed)
{
	for (size_t j = 0; j < WORDS; j++)
		page[j] = pattern_word(index * WORDS + j, seed + version);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s MIB PERCENT_PER_SECOND RESULT_FILE RESUMED_FILE\n", argv[0]);
		return 2;
	}
	unsigned long mib = parse_ulong(argv[0], "size in MiB", argv[1]);
	double pct = atof(argv[2]);
	size_t pages = (size_t)mib << 20 >> 12;
	char msg[256];

	if (setsid() < 0)
		perror("dirtytarget: setsid");
	close_range(3, ~0u, 0);
	signal(SIGTERM, on_term);
	uint64_t *mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint32_t *version = calloc(pages, sizeof(*version));
	if (mem == MAP_FAILED || !version) {
		perror("dirtytarget: memory");
		return 2;
	}
	pid_t pid = getpid();
	uint64_t seed = now_ns() ^ ((uint64_t)pid << 32), rng = seed | 1;
	for (size_t p = 0; p < pages; p++)
		fill(mem + p * WORDS, p, 0, seed);
	snprintf(msg, sizeof(msg), "READY pid=%d mib=%lu\n", (int)pid, mib);
	if (write(STDOUT_FILENO, msg, strlen(msg)) < 0)
		return 2;

	/* pages per step, as a fraction carried over from step to step */
	double per_step = pages * pct / 100.0 * STEP_NS / 1e9, owed = 0;
	uint64_t last = now_ns(), written = 0;
	struct timespec nap = { 0, STEP_NS };
	while (!term) {
		uint64_t now = now_ns();
		if (now - last > 20000000ull) {
			snprintf(msg, sizeof(msg), "resumed_ns=%llu gap_ms=%.1f\n", (unsigned long long)realtime_ns(),
				 (now - last) / 1e6);
			write_file(argv[4], msg, O_APPEND);
		}
		last = now;
		for (owed += per_step; owed >= 1; owed--) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			size_t p = rng % pages;
			fill(mem + p * WORDS, p, ++version[p], seed);
			written++;
		}
		nanosleep(&nap, NULL);
	}

	size_t bad = 0, first_bad = SIZE_MAX;
	for (size_t p = 0; p < pages; p++) {
		const uint64_t *w = mem + p * WORDS;
		for (size_t j = 0; j < WORDS; j++) {
			if (w[j] != pattern_word(p * WORDS + j, seed + version[p])) {
				bad++;
				if (first_bad == SIZE_MAX)
					first_bad = p;
				break;
			}
		}
	}
	if (bad || getpid() != pid)
		snprintf(msg, sizeof(msg), "FAIL pid=%d bad_pages=%zu first_bad_page=%zu\n", (int)getpid(), bad,
			 first_bad);
	else
		snprintf(msg, sizeof(msg), "PASS pid=%d mib=%lu pages_written=%llu\n", (int)pid, mib,
			 (unsigned long long)written);
	if (write(STDOUT_FILENO, msg, strlen(msg)) < 0)
		return 2;
	write_file(argv[3], msg, O_TRUNC);
	return bad ? 1 : 0;
}
