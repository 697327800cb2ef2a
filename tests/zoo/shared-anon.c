/*
 * shared-anon: MAP_SHARED|MAP_ANONYMOUS memory shared by a parent and two children (fork).
 *   4 MiB: the first MiB filled by the parent before fork, one page written only by child 1
 *   after fork, the rest never touched (holes). After restore and SIGTERM: each process checks
 *   the content, then the sharing itself: the parent writes a token that each child must see,
 *   and each child answers with a token that the parent must see.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define SIZE (4UL << 20)
#define FILLED (1UL << 20)
#define CHILD_PAGE (2UL << 20)

struct mailbox {
	volatile uint64_t ping, pong[2];
};

static unsigned char *mem;
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

static int content_ok(void)
{
	if (zoo_check_fill(mem, FILLED, 51) >= 0 || zoo_check_fill(mem + CHILD_PAGE, 4096, 52) >= 0)
		return 0;
	for (size_t i = FILLED; i < SIZE - 4096; i += 4096) /* holes read as zero */
		if (i != CHILD_PAGE && mem[i + 7])
			return 0;
	return 1;
}

/* Exit code: 0, or 1 content, 2 no ping seen from the parent. */
static void child(int n)
{
	struct sigaction sa = { .sa_handler = on_term };
	struct mailbox *mb = (struct mailbox *)(mem + SIZE - 4096);
	sigaction(SIGTERM, &sa, NULL);
	if (n == 1)
		zoo_fill(mem + CHILD_PAGE, 4096, 52);
	while (!child_term)
		zoo_sleep_ms(10);
	int code = content_ok() ? 0 : 1;
	for (int i = 0; i < 500 && mb->ping != 0x70696e67; i++)
		zoo_sleep_ms(2);
	if (mb->ping != 0x70696e67)
		code |= 2;
	mb->pong[n - 1] = 0x706f6e67 + n;
	_exit(code);
}

static void c_content(ucontext_t *u) { (void)u; mem[1000] ^= 1; }
static void c_shared(ucontext_t *u)
{
	(void)u; /* replace the parent's view by a private copy: writes no longer reach children */
	void *copy = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memcpy(copy, mem, SIZE);
	mremap(copy, SIZE, SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, mem);
}

static const struct zoo_corruption corruptions[] = {
	{ "content", c_content, 0 },
	{ "sharing", c_shared, 0 },
};

int main(int argc, char **argv)
{
	pid_t kids[2];
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	zoo_fill(mem, FILLED, 51);
	for (int n = 1; n <= 2; n++)
		if ((kids[n - 1] = fork()) == 0)
			child(n);
	while (zoo_check_fill(mem + CHILD_PAGE, 4096, 52) >= 0)
		zoo_sleep_ms(1);
	zoo_check_maps = 0; /* the sharing corruption replaces a mapping on purpose */
	zoo_ready();
	zoo_wait();

	struct mailbox *mb = (struct mailbox *)(mem + SIZE - 4096);
	CHECK("content", content_ok(), "shared memory content differs in the parent");
	for (int n = 0; n < 2; n++)
		kill(kids[n], SIGTERM);
	mb->ping = 0x70696e67;
	for (int n = 0; n < 2; n++) {
		int st = 0;
		waitpid(kids[n], &st, 0);
		int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
		CHECK("content", !(code & 1) && code != 255, "child %d: content differs (code %d)", n + 1, code);
		CHECK("sharing", !(code & 2), "child %d did not see the parent's write", n + 1);
		CHECK("sharing", mb->pong[n] == 0x706f6e67u + n + 1, "the parent did not see child %d's write",
		      n + 1);
	}
	return zoo_finish("3 processes, 4 MiB shared");
}
