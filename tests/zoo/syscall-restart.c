/*
 * syscall-restart: a restartable system call interrupted by the freeze continues
 * transparently after restore.
 *   The program blocks in futex(FUTEX_WAIT_PRIVATE) on a word that stays 0, with no timeout;
 *   the dump finds it there (orig_rax = 202, rax = -ERESTARTSYS). The SIGTERM handler
 *   (SA_RESTART) sets the word to 1, so the kernel's own restart returns EAGAIN. Any other
 *   return - EINTR, 0 while the word is 0, a leaked -ERESTARTSYS (errno 512) - is a FAIL.
 * Blocks in: futex (syscall 202), FUTEX_WAIT_PRIVATE, no timeout.
 */
#include "zoo.h"
#include <linux/futex.h>

static volatile int word;
static char first_bad[200];
static unsigned long returns;

static void wake(void) { word = 1; }

/* What an engine that does not restart the call would produce: it returns EINTR. */
static void c_restart(ucontext_t *uc)
{
	greg_t *g = uc->uc_mcontext.gregs;
	if (g[REG_RAX] == SYS_futex && *(const uint16_t *)g[REG_RIP] == 0x050f) {
		g[REG_RIP] += 2;
		g[REG_RAX] = -EINTR;
	}
}
static const struct zoo_corruption corruptions[] = {
	{ "restart", c_restart, 1 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, 1);
	zoo_term_hook = wake;

	zoo_ready();
	for (;;) {
		long r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
		int e = errno;
		returns++;
		if (r == -1 && e == EAGAIN && word)
			break; /* woken by SIGTERM: the normal end */
		if (!first_bad[0])
			snprintf(first_bad, sizeof(first_bad), "futex wait returned %ld errno %d (%s) with word=%d term=%d",
				 r, r < 0 ? e : 0, r < 0 && strerrorname_np(e) ? strerrorname_np(e) : "-", word, (int)zoo_term);
		if (zoo_term)
			break;
	}
	zoo_begin_verify();
	CHECK("restart", !first_bad[0], "%s", first_bad);
	CHECK("restart", returns == 1, "futex returned %lu times, expected once", returns);
	return zoo_finish(NULL);
}
