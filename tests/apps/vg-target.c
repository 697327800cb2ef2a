/*
 * A program for valgrind (memcheck) to run, for tests/apps/run-apps.sh's valgrind case.
 * Before the dump: 1000 bytes leaked (the only pointer overwritten), 64 blocks of 100..6400
 * bytes filled with a pattern, every other one freed; a counter going on every millisecond.
 * After SIGTERM: the live blocks hold their pattern and the counter went on (PASS or FAIL on
 * stdout); then, for valgrind to see, one read a byte past the end of a live block and one
 * inside a freed block (unless APPS_CORRUPT=valgrind), the live blocks freed. Valgrind's log
 * then names both reads and the 1000 bytes definitely lost: its own bookkeeping of the heap
 * went through the dump and the restore too.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBLOCKS 64

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

int main(void)
{
	static char *blocks[NBLOCKS];
	char *leak = malloc(1000);
	volatile long counter = 0;

	memset(leak, 1, 1000);
	leak = NULL; /* definitely lost */
	for (int i = 0; i < NBLOCKS; i++) {
		size_t len = 100 * (size_t)(i + 1);
		if (!(blocks[i] = malloc(len)))
			return 2;
		for (size_t j = 0; j < len; j++)
			blocks[i][j] = (char)(i * 31 + j);
	}
	for (int i = 1; i < NBLOCKS; i += 2)
		free(blocks[i]); /* kept as pointers: one is read after the restore */
	signal(SIGTERM, on_term);
	printf("READY\n");
	fflush(stdout);
	while (!stop) {
		counter++;
		usleep(1000);
	}
	int bad = 0;
	for (int i = 0; i < NBLOCKS; i += 2)
		for (size_t j = 0; j < 100 * (size_t)(i + 1); j++)
			bad += blocks[i][j] != (char)(i * 31 + j);
	printf("%s %d bad bytes, counter %ld\n", !bad && counter > 1000 ? "PASS" : "FAIL", bad, counter);
	fflush(stdout);
	const char *corrupt = getenv("APPS_CORRUPT");
	if (!corrupt || strcmp(corrupt, "valgrind")) {
		volatile char past_end = blocks[2][300];   /* block 2 holds 300 bytes */
		volatile char after_free = blocks[5][10]; /* block 5 was freed */
		(void)past_end;
		(void)after_free;
	}
	for (int i = 0; i < NBLOCKS; i += 2)
		free(blocks[i]);
	return 0;
}
