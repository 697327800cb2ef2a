/*
 * cow: private anonymous memory inherited across fork (copy-on-write). The parent fills
 * 16 MiB, then forks: child A rewrites one page in 16, child B changes nothing and forks a
 * grandchild G that changes nothing either. Pages still shared are saved once (see
 * cow.after-dump). After restore and SIGTERM: every process checks its content, then that
 * memory is still private: each child writes a byte the parent must not see.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define SIZE (16UL << 20)

static unsigned char *mem;
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

static int content_ok(int rewrote)
{
	for (size_t off = 0; off < SIZE; off += 4096) {
		int mine = rewrote && (off / 4096) % 16 == 3;
		if (zoo_check_fill(mem + off, 4096, mine ? 92 + off / 4096 : 91 + off / 4096) >= 0)
			return 0;
	}
	return 1;
}

/* Exit code: 0, or 1 content, 2 grandchild failed */
static void wait_term_and_check(int rewrote, pid_t kid)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	while (!child_term)
		zoo_sleep_ms(10);
	int code = content_ok(rewrote) ? 0 : 1;
	mem[SIZE - 1] = 0x5a; /* private: nobody else sees it */
	if (kid > 0) {
		int st = 0;
		kill(kid, SIGTERM);
		waitpid(kid, &st, 0);
		code |= !WIFEXITED(st) || WEXITSTATUS(st) ? 2 : 0;
	}
	_exit(code);
}

static void c_content(ucontext_t *u) { (void)u; mem[12345] ^= 1; }
static const struct zoo_corruption corruptions[] = {
	{ "content", c_content, 0 },
};

int main(int argc, char **argv)
{
	pid_t a, b;
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (size_t off = 0; off < SIZE; off += 4096)
		zoo_fill(mem + off, 4096, 91 + off / 4096);
	if ((a = fork()) == 0) {
		for (size_t off = 3 * 4096; off < SIZE; off += 16 * 4096)
			zoo_fill(mem + off, 4096, 92 + off / 4096);
		wait_term_and_check(1, 0);
	}
	if ((b = fork()) == 0) {
		pid_t g = fork();
		if (g == 0)
			wait_term_and_check(0, 0);
		wait_term_and_check(0, g);
	}
	zoo_sleep_ms(100);
	zoo_ready();
	zoo_wait();

	CHECK("content", content_ok(0), "the parent's memory differs");
	int st = 0;
	kill(a, SIGTERM);
	waitpid(a, &st, 0);
	CHECK("content", WIFEXITED(st) && WEXITSTATUS(st) == 0, "child A: %#x", st);
	kill(b, SIGTERM);
	waitpid(b, &st, 0);
	CHECK("content", WIFEXITED(st) && WEXITSTATUS(st) == 0, "child B or its child: %#x", st);
	CHECK("private", mem[SIZE - 1] != 0x5a, "a child's write reached the parent");
	return zoo_finish("4 processes share 16 MiB copy-on-write");
}
