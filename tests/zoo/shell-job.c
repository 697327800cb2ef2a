/*
 * shell-job: a program started from a shell with its stdout a pipe (`shell-job | cat`) and
 * dumped/restored with --shell-job; the restore's own stdout is a different pipe, and the
 * verdict must arrive through it. stdin is /dev/null, stderr a regular file.
 * The program then makes its stdin a named pipe of its own, opened read-write (as
 * `prog 0<>fifo`: reads block, never EOF) with a few bytes queued: a FIFO has a path and is
 * opened again by it, it is not the restoring caller's stdin.
 *   Checks: fd 1 is still a pipe (FIFO), write-only; fd 0 is still that named pipe, read-write,
 *   its bytes still queued and then nothing (EAGAIN: a writer remains, no EOF); a heap
 *   pattern survived.
 *   The process is not a session leader (the runner does not use setsid for it).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"

static char *heap;
#define LEN 100000

#define QUEUED "queued in the fifo"

static void c_pattern(ucontext_t *u) { (void)u; heap[777] ^= 1; }
static void c_stdin_fifo(ucontext_t *u)
{
	char c;
	(void)u;
	if (read(0, &c, 1) != 1)
		zoo_die("corrupt stdin-fifo: cannot take a byte");
}
static const struct zoo_corruption corruptions[] = {
	{ "pattern", c_pattern, 0 },
	{ "stdin-fifo", c_stdin_fifo, 0 },
};

/* fd 0 becomes the named pipe DIR/stdin, opened O_RDWR|O_NONBLOCK, QUEUED written into it */
static void stdin_fifo(char *path, size_t len)
{
	snprintf(path, len, "%s/stdin", zoo_tmpdir());
	if (mkfifo(path, 0600) < 0)
		zoo_die("mkfifo %s: %s", path, strerror(errno));
	int fd = open(path, O_RDWR | O_NONBLOCK);
	if (fd < 0 || dup2(fd, 0) < 0)
		zoo_die("open %s: %s", path, strerror(errno));
	close(fd);
	if (write(0, QUEUED, strlen(QUEUED)) != (ssize_t)strlen(QUEUED))
		zoo_die("cannot fill %s", path);
}

int main(int argc, char **argv)
{
	struct stat st;
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (fstat(1, &st) < 0 || !S_ISFIFO(st.st_mode))
		zoo_die("stdout is not a pipe (run as: shell-job | cat)");
	heap = malloc(LEN);
	zoo_fill(heap, LEN, 51);
	char fifo[600];
	struct stat fifo_st;
	stdin_fifo(fifo, sizeof(fifo));
	if (stat(fifo, &fifo_st) < 0)
		zoo_die("stat %s", fifo);

	zoo_ready();
	zoo_wait();

	CHECK("stdout", fstat(1, &st) == 0 && S_ISFIFO(st.st_mode), "stdout is no longer a pipe");
	int fl = fcntl(1, F_GETFL);
	CHECK("stdout", fl >= 0 && (fl & O_ACCMODE) == O_WRONLY, "stdout flags %#o", fl);
	CHECK("stdin-fifo", fstat(0, &st) == 0 && S_ISFIFO(st.st_mode) && st.st_ino == fifo_st.st_ino,
	      "stdin is no longer the named pipe %s", fifo);
	fl = fcntl(0, F_GETFL);
	CHECK("stdin-fifo", fl >= 0 && (fl & O_ACCMODE) == O_RDWR && (fl & O_NONBLOCK), "stdin flags %#o", fl);
	char got[64] = "";
	ssize_t n = read(0, got, sizeof(got) - 1);
	CHECK("stdin-fifo", n == (ssize_t)strlen(QUEUED) && !memcmp(got, QUEUED, n),
	      "stdin gave %zd bytes \"%.*s\", not \"%s\"", n, n > 0 ? (int)n : 0, got, QUEUED);
	n = read(0, got, 1);
	CHECK("stdin-fifo", n < 0 && errno == EAGAIN, "a further read of stdin gave %zd (%s), not EAGAIN",
	      n, n < 0 ? strerror(errno) : "EOF or data");
	long bad = zoo_check_fill(heap, LEN, 51);
	CHECK("pattern", bad < 0, "heap differs at offset %ld", bad);
	return zoo_finish(NULL);
}
