/*
 * shell-job: a program started from a shell with its stdout a pipe (`shell-job | cat`) and
 * dumped/restored with --shell-job; the restore's own stdout is a different pipe, and the
 * verdict must arrive through it. stdin is /dev/null, stderr a regular file.
 *   Checks: fd 1 is still a pipe (FIFO), write-only; a heap pattern survived.
 *   The process is not a session leader (the runner does not use setsid for it).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"

static char *heap;
#define LEN 100000

static void c_pattern(ucontext_t *u) { (void)u; heap[777] ^= 1; }
static const struct zoo_corruption corruptions[] = {
	{ "pattern", c_pattern, 0 },
};

int main(int argc, char **argv)
{
	struct stat st;
	zoo_init(argc, argv, corruptions, 1);
	if (fstat(1, &st) < 0 || !S_ISFIFO(st.st_mode))
		zoo_die("stdout is not a pipe (run as: shell-job | cat)");
	heap = malloc(LEN);
	zoo_fill(heap, LEN, 51);

	zoo_ready();
	zoo_wait();

	CHECK("stdout", fstat(1, &st) == 0 && S_ISFIFO(st.st_mode), "stdout is no longer a pipe");
	int fl = fcntl(1, F_GETFL);
	CHECK("stdout", fl >= 0 && (fl & O_ACCMODE) == O_WRONLY, "stdout flags %#o", fl);
	long bad = zoo_check_fill(heap, LEN, 51);
	CHECK("pattern", bad < 0, "heap differs at offset %ld", bad);
	return zoo_finish(NULL);
}
