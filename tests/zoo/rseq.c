/*
 * rseq: the rseq area glibc registered stays registered and maintained after restore.
 *   Found through __rseq_offset/__rseq_size (<sys/rseq.h>). Checks: a second rseq()
 *   registration of the same area, length and signature fails with EBUSY (the kernel still
 *   has exactly that registration), cpu_id/cpu_id_start are valid and equal the getcpu()
 *   system call, and after moving the task to each allowed CPU with sched_setaffinity the
 *   kernel has written the new CPU into cpu_id.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sched.h>
#include <sys/rseq.h>

#ifndef RSEQ_SIG
#define RSEQ_SIG 0x53053053
#endif

static volatile struct rseq *rs;
static unsigned reg_len;

static int rseq_call(unsigned len, int flags)
{
	return (int)syscall(SYS_rseq, rs, len, flags, RSEQ_SIG);
}
static int real_cpu(void)
{
	unsigned cpu = ~0u;
	syscall(SYS_getcpu, &cpu, NULL, NULL);
	return (int)cpu;
}

static void c_registered(ucontext_t *u) { (void)u; rseq_call(reg_len, RSEQ_FLAG_UNREGISTER); }
/* unregistered first: a registered area gets cpu_id rewritten at the next preemption */
static void c_cpu_id(ucontext_t *u)
{
	(void)u;
	rseq_call(reg_len, RSEQ_FLAG_UNREGISTER);
	rs->cpu_id = 999;
}
static const struct zoo_corruption corruptions[] = {
	{ "registered", c_registered, 0 },
	{ "cpu_id", c_cpu_id, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (__rseq_size == 0)
		zoo_die("glibc did not register rseq (GLIBC_TUNABLES=glibc.pthread.rseq=0?)");
	rs = (volatile struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
	unsigned cand[] = { __rseq_size, 32, sizeof(struct rseq) };
	for (unsigned i = 0; i < 3 && !reg_len; i++)
		if (rseq_call(cand[i], 0) < 0 && errno == EBUSY)
			reg_len = cand[i];
	if (!reg_len)
		zoo_die("cannot find the registered rseq length (__rseq_size %u)", __rseq_size);
	if ((int)rs->cpu_id < 0)
		zoo_die("rseq cpu_id is %d before the checkpoint", (int)rs->cpu_id);

	zoo_ready();
	zoo_wait();

	int cpu = (int)rs->cpu_id, start = (int)rs->cpu_id_start;
	int real = real_cpu();
	CHECK("cpu_id", cpu >= 0 && cpu == real, "rseq cpu_id is %d, getcpu says %d", cpu, real);
	CHECK("cpu_id", start >= 0 && start == real, "rseq cpu_id_start is %d, getcpu says %d", start, real);

	errno = 0;
	int r = rseq_call(reg_len, 0);
	int e = errno;
	CHECK("registered", r < 0 && e == EBUSY, "re-registering the area (len %u) gave %d errno %d (%s); expected EBUSY",
	      reg_len, r, r < 0 ? e : 0,
	      r == 0 ? "it was not registered" : e == EINVAL ? "another area/length is registered" : e == EPERM ? "another signature" : "?");

	/* the kernel keeps writing cpu_id: move to every allowed CPU */
	cpu_set_t orig, one;
	int moves = 0;
	if (sched_getaffinity(0, sizeof(orig), &orig) == 0) {
		for (int c = 0; c < CPU_SETSIZE; c++) {
			if (!CPU_ISSET(c, &orig))
				continue;
			CPU_ZERO(&one);
			CPU_SET(c, &one);
			if (sched_setaffinity(0, sizeof(one), &one) < 0)
				continue;
			sched_yield();
			int seen = (int)rs->cpu_id;
			CHECK("update", seen == c, "pinned to CPU %d, rseq cpu_id says %d", c, seen);
			moves++;
		}
		sched_setaffinity(0, sizeof(orig), &orig);
	}
	char info[64];
	snprintf(info, sizeof(info), "(rseq len %u, checked on %d cpus)", reg_len, moves);
	return zoo_finish(info);
}
