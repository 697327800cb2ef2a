/*
 * worker-pool: real work across the checkpoint. A parent and 4 worker processes share (fork,
 * MAP_SHARED|MAP_ANONYMOUS) a 16 MiB buffer and a queue of 4096 chunks. Each worker takes the
 * next chunk with an atomic counter, computes a checksum of it (slowly: the pool needs about
 * 2 s, so the checkpoint falls in the middle), and stores it in the shared results. After
 * SIGTERM the parent waits for the workers and compares the combined checksum with one it
 * computes directly over the buffer: an uninterrupted run gives the same number.
 * Blocks in: nanosleep (parent); workers compute and sleep between chunks.
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define BUF (16UL << 20)
#define CHUNKS 4096
#define CHUNK (BUF / CHUNKS)
#define WORKERS 4

struct pool {
	uint32_t next;            /* next chunk to take */
	uint32_t done;            /* chunks finished */
	uint64_t sums[CHUNKS];    /* 0 = not computed */
};

static unsigned char *buf;
static struct pool *pool;

static uint64_t chunk_sum(size_t c)
{
	uint64_t h = 1469598103934665603ull ^ c;
	for (size_t i = 0; i < CHUNK; i++)
		h = (h ^ buf[c * CHUNK + i]) * 1099511628211ull;
	return h | 1;
}

static void worker(void)
{
	for (;;) {
		uint32_t c = __atomic_fetch_add(&pool->next, 1, __ATOMIC_SEQ_CST);
		if (c >= CHUNKS)
			_exit(0);
		pool->sums[c] = chunk_sum(c);
		__atomic_add_fetch(&pool->done, 1, __ATOMIC_SEQ_CST);
		zoo_sleep_ms(2);
	}
}

static void c_buffer(ucontext_t *u) { (void)u; buf[BUF - 100] ^= 0x40; }
static void c_result(ucontext_t *u) { (void)u; pool->sums[5] ^= 2; }

static const struct zoo_corruption corruptions[] = {
	{ "checksum", c_buffer, 0 },
	{ "results", c_result, 0 },
};

int main(int argc, char **argv)
{
	pid_t kids[WORKERS];
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	buf = mmap(NULL, BUF + sizeof(struct pool), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		   -1, 0);
	if (buf == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	pool = (struct pool *)(buf + BUF);
	zoo_fill(buf, BUF, 61);
	uint64_t expect = 0;
	for (size_t c = 0; c < CHUNKS; c++) /* the uninterrupted answer, kept on our stack */
		expect = expect * 31 + chunk_sum(c);
	for (int w = 0; w < WORKERS; w++)
		if ((kids[w] = fork()) == 0)
			worker();
	while (__atomic_load_n(&pool->done, __ATOMIC_SEQ_CST) < CHUNKS / 8)
		zoo_sleep_ms(5);
	zoo_ready();
	zoo_wait();

	for (int w = 0; w < WORKERS; w++) {
		int st = 0;
		waitpid(kids[w], &st, 0);
		CHECK("workers", WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker %d ended with %#x", w, st);
	}
	uint64_t got = 0, direct = 0;
	for (size_t c = 0; c < CHUNKS; c++) {
		got = got * 31 + pool->sums[c];
		direct = direct * 31 + chunk_sum(c);
	}
	CHECK("results", got == direct, "the pool's checksum %#lx differs from a direct one %#lx",
	      (unsigned long)got, (unsigned long)direct);
	CHECK("checksum", direct == expect, "the buffer's checksum %#lx differs from before %#lx",
	      (unsigned long)direct, (unsigned long)expect);
	char info[64];
	snprintf(info, sizeof(info), "%u of %d chunks before SIGTERM", pool->done, CHUNKS);
	return zoo_finish(info);
}
