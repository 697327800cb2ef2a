/*
 * mempolicy: NUMA memory policies (this machine may have one node: node 0 is used throughout).
 * The main thread interleaves (as numactl --interleave starts a program), a second thread binds
 * with static nodes, a third keeps the default, a fourth allocates locally (MPOL_LOCAL: a policy
 * without nodes); a private anonymous mapping is bound (mbind), a shared one prefers node 0, a
 * third mapping has none, a fourth prefers no node (local allocation: MPOL_LOCAL). Each
 * mapping's pages hold a pattern.
 *   Checks: get_mempolicy of each thread (asked in the thread) and of each mapping; the patterns.
 * Corruptions: task (the main thread back to the default), thread (the second thread's too),
 * mapping (the private mapping's policy dropped).
 * Blocks in: zoo_wait (main), read on a pipe (the threads).
 */
#include "zoo.h"
#include <pthread.h>
#include <sys/mman.h>

#define MPOL_DEFAULT 0
#define MPOL_PREFERRED 1
#define MPOL_BIND 2
#define MPOL_INTERLEAVE 3
#define MPOL_LOCAL 4
#define MPOL_F_STATIC_NODES (1 << 15)
#define MPOL_F_ADDR (1 << 1)
#define MAXNODE 1024

struct policy {
	int mode;
	unsigned long nodes[MAXNODE / 64];
};

static int wake[2];
static volatile int corrupt_thread;
static char verdicts[3][160];
static char *priv, *shared, *plain, *local;

static int get_policy(struct policy *p, void *addr)
{
	memset(p, 0, sizeof(*p));
	return syscall(SYS_get_mempolicy, &p->mode, p->nodes, MAXNODE, addr, addr ? MPOL_F_ADDR : 0);
}

static int set_policy(int mode, unsigned long node_mask)
{
	return syscall(SYS_set_mempolicy, mode, node_mask ? &node_mask : NULL, node_mask ? 65 : 0);
}

/* "" if the policy is (mode, node 0 alone or none), else what it is */
static void expect(char *out, size_t len, const char *who, void *addr, int mode, unsigned long nodes)
{
	struct policy p;
	out[0] = 0;
	if (get_policy(&p, addr))
		snprintf(out, len, "%s: get_mempolicy: %s", who, strerror(errno));
	else if (p.mode != mode || p.nodes[0] != nodes)
		snprintf(out, len, "%s: mode %#x nodes %#lx, not mode %#x nodes %#lx", who, p.mode, p.nodes[0],
			 mode, nodes);
}

struct thread_plan {
	int index, mode;
	unsigned long nodes;
};

static void *thread_main(void *arg)
{
	const struct thread_plan *plan = arg;
	char c;
	if (plan->mode != MPOL_DEFAULT && set_policy(plan->mode, plan->nodes))
		zoo_die("set_mempolicy in thread %d: %s", plan->index, strerror(errno));
	else if (plan->mode == MPOL_DEFAULT && set_policy(MPOL_DEFAULT, 0)) /* (not the main's) */
		zoo_die("set_mempolicy(MPOL_DEFAULT): %s", strerror(errno));
	while (read(wake[0], &c, 1) < 0 && errno == EINTR)
		;
	if (corrupt_thread && plan->index == 0)
		set_policy(MPOL_DEFAULT, 0);
	static const char *const names[] = { "the second thread", "the third thread", "the fourth thread" };
	expect(verdicts[plan->index], sizeof(verdicts[0]), names[plan->index], NULL, plan->mode, plan->nodes);
	return NULL;
}

static void c_task(ucontext_t *u)
{
	(void)u;
	set_policy(MPOL_DEFAULT, 0);
}
static void c_thread(ucontext_t *u)
{
	(void)u;
	corrupt_thread = 1;
}
static void c_mapping(ucontext_t *u)
{
	(void)u;
	syscall(SYS_mbind, priv, 4 * 4096, MPOL_DEFAULT, NULL, 0, 0);
}
static const struct zoo_corruption corruptions[] = {
	{ "task", c_task, 0 },
	{ "thread", c_thread, 0 },
	{ "mapping", c_mapping, 0 },
};

static int pattern_ok(const char *p, size_t len, char c)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != (char)(c + i % 7))
			return 0;
	return 1;
}

static void fill(char *p, size_t len, char c)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (char)(c + i % 7);
}

int main(int argc, char **argv)
{
	static struct thread_plan plans[3] = {
		{ 0, MPOL_BIND | MPOL_F_STATIC_NODES, 1 },
		{ 1, MPOL_DEFAULT, 0 },
		{ 2, MPOL_LOCAL, 0 },
	};
	pthread_t threads[3];
	unsigned long node0 = 1;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (pipe(wake) || set_policy(MPOL_INTERLEAVE, 1))
		zoo_die("pipe/set_mempolicy: %s", strerror(errno));
	priv = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	shared = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	plain = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	local = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (priv == MAP_FAILED || shared == MAP_FAILED || plain == MAP_FAILED || local == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	if (syscall(SYS_mbind, priv, 4 * 4096, MPOL_BIND, &node0, 64, 0) ||
	    syscall(SYS_mbind, shared, 2 * 4096, MPOL_PREFERRED, &node0, 64, 0) ||
	    syscall(SYS_mbind, local, 2 * 4096, MPOL_PREFERRED, NULL, 0, 0))
		zoo_die("mbind: %s", strerror(errno));
	fill(priv, 4 * 4096, 'a');
	fill(shared, 2 * 4096, 'k');
	fill(plain, 3 * 4096, 'q');
	fill(local, 2 * 4096, 'x');
	for (int i = 0; i < 3; i++)
		if (pthread_create(&threads[i], NULL, thread_main, &plans[i]))
			zoo_die("pthread_create");
	usleep(50000); /* (the threads set their policies) */
	zoo_ready();
	zoo_wait();

	char got[160];
	expect(got, sizeof(got), "the main thread", NULL, MPOL_INTERLEAVE, 1);
	CHECK("task", !got[0], "%s", got);
	if (write(wake[1], "www", 3) != 3)
		zoo_die("waking the threads");
	for (int i = 0; i < 3; i++)
		pthread_join(threads[i], NULL);
	for (int i = 0; i < 3; i++)
		CHECK("thread", !verdicts[i][0], "%s", verdicts[i]);
	expect(got, sizeof(got), "the bound mapping", priv, MPOL_BIND, 1);
	CHECK("mapping", !got[0], "%s", got);
	expect(got, sizeof(got), "the shared mapping", shared, MPOL_PREFERRED, 1);
	CHECK("mapping", !got[0], "%s", got);
	expect(got, sizeof(got), "the mapping without a policy", plain, MPOL_DEFAULT, 0);
	CHECK("mapping", !got[0], "%s", got);
	expect(got, sizeof(got), "the local mapping", local, MPOL_LOCAL, 0);
	CHECK("mapping", !got[0], "%s", got);
	CHECK("memory", pattern_ok(priv, 4 * 4096, 'a') && pattern_ok(shared, 2 * 4096, 'k') &&
			pattern_ok(plain, 3 * 4096, 'q') && pattern_ok(local, 2 * 4096, 'x'),
	      "a mapping's pattern differs");
	return zoo_finish(NULL);
}
