/*
 * NUMA memory policies: each thread's (set_mempolicy; numactl --interleave / --membind sets the
 * one a program starts with) and each mapping's own (mbind). Asked inside the frozen task with
 * get_mempolicy, the main thread's and the mappings' in one loop of injected calls (a thread's
 * with its other questions, cr/threads.c). At restore the main thread sets its own before its
 * blob (the pages it fills then go where the policy says), the blob each mapping's once mapped
 * and each thread's, when some thread of the process has one, as it starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "restorer/restorer.h"
#include "seize.h"
#include "task.h"
#include "util.h"

#define MPOL_DEFAULT 0
#define MPOL_BIND 2
#define MPOL_LOCAL 4
#define MPOL_PREFERRED_MANY 5
#define MPOL_LAST_MODE 6 /* MPOL_WEIGHTED_INTERLEAVE (6.9) */
#define MPOL_F_ADDR (1 << 1)
#define MPOL_F_MEMS_ALLOWED (1 << 2)
#define MPOL_F_STATIC_NODES (1u << 15)
#define MPOL_F_RELATIVE_NODES (1u << 14)
#define MPOL_F_NUMA_BALANCING (1u << 13)
#define MPOL_MODE_FLAGS (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES | MPOL_F_NUMA_BALANCING)

/* Words of the node masks asked for: enough for every node this machine can have. */
static unsigned node_words(void)
{
	char buf[64] = "";
	int fd = open("/sys/devices/system/node/possible", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	unsigned long last = 0;

	if (fd >= 0)
		close(fd);
	/* "0", "0-3" or "0,2-5": the last number is the highest node */
	for (char *p = buf; n > 0 && *p;) {
		if (*p >= '0' && *p <= '9')
			last = strtoul(p, &p, 10);
		else
			p++;
	}
	unsigned words = last / 64 + 1;
	return words < RST_NODE_WORDS ? words : RST_NODE_WORDS;
}

void mempolicy_ask(struct inject_call *call, uint64_t at_mode, uint64_t at_nodes, unsigned words,
		   uint64_t addr)
{
	*call = (struct inject_call){ SYS_get_mempolicy,
				      { at_mode, at_nodes, words * 64, addr, addr ? MPOL_F_ADDR : 0 } };
}

int mempolicy_collect(int64_t ret, int32_t mode, const uint64_t *nodes, unsigned words, Mempolicy **out)
{
	*out = NULL;
	if (ret == -ENOSYS) /* a kernel without NUMA: every policy is the default */
		return 0;
	if (ret)
		return inject_ret_err(ret);
	if (mode == MPOL_DEFAULT)
		return 0;
	while (words && !nodes[words - 1])
		words--;
	Mempolicy *p = xzalloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	mempolicy__init(p);
	if (words && !(p->nodes = xmalloc(words * sizeof(*p->nodes)))) {
		free(p);
		return -ENOMEM;
	}
	p->mode = mode;
	p->n_nodes = words;
	if (words) /* (none: MPOL_LOCAL, MPOL_PREFERRED for local allocation) */
		memcpy(p->nodes, nodes, words * sizeof(*nodes));
	*out = p;
	return 0;
}

/* The answers of one call: its mode (padded) and its node mask. */
struct policy_answer {
	int32_t mode, pad;
	uint64_t nodes[];
};

/* How many calls fit in one loop, each with its answer and its place in the list. */
static size_t calls_per_loop(const struct inject_ctx *inj, size_t answer)
{
	return inj->scratch_len / (answer + sizeof(struct inject_call));
}

/*
 * The main thread's policy (first) and each mapping's, asked in loops; each answer read back.
 * A mapping that went away meanwhile cannot: the tree is frozen.
 */
static int dump_mempolicy(struct dump_task *t)
{
	unsigned words = node_words();
	size_t answer = sizeof(struct policy_answer) + words * sizeof(uint64_t);
	size_t per_loop = calls_per_loop(&t->inj, answer), total = t->mm->n_vmas + 1;
	auto_free struct inject_call *calls = xmalloc(per_loop * sizeof(*calls));
	auto_free int64_t *ret = xmalloc(per_loop * sizeof(*ret));
	auto_free uint8_t *out = xmalloc(per_loop * answer);
	int err;

	if (!calls || !ret || !out)
		return -ENOMEM;
	for (size_t first = 0; first < total; first += per_loop) {
		size_t n = total - first < per_loop ? total - first : per_loop;
		for (size_t k = 0; k < n; k++) {
			uint64_t at = t->inj.scratch + k * answer;
			uint64_t addr = first + k ? t->mm->vmas[first + k - 1]->start : 0;
			mempolicy_ask(&calls[k], at, at + offsetof(struct policy_answer, nodes), words, addr);
		}
		if ((err = inject_syscalls(&t->inj, calls, n, ret, out, n * answer)))
			return err;
		for (size_t k = 0; k < n; k++) {
			const struct policy_answer *a = (const void *)(out + k * answer);
			size_t i = first + k;
			Mempolicy **dst = i ? &t->mm->vmas[i - 1]->mempolicy : &t->core->mempolicy;
			if (!(err = mempolicy_collect(ret[k], a->mode, a->nodes, words, dst)))
				continue;
			if (i)
				pr_err("dump pid %d: cannot read the NUMA policy of mapping %#llx-%#llx: %s", t->pid,
				       (unsigned long long)t->mm->vmas[i - 1]->start,
				       (unsigned long long)t->mm->vmas[i - 1]->end, strerror(-err));
			else
				pr_err("dump pid %d: cannot read its NUMA policy: %s", t->pid, strerror(-err));
			return err;
		}
	}
	return 0;
}

/* A policy the kernel takes (the default is never saved; a local one has no nodes, others some). */
static bool policy_valid(const Mempolicy *p)
{
	unsigned mode = p->mode & ~MPOL_MODE_FLAGS, flags = p->mode & MPOL_MODE_FLAGS;

	if (mode == MPOL_DEFAULT || mode > MPOL_LAST_MODE || p->n_nodes > RST_NODE_WORDS ||
	    (flags & MPOL_F_STATIC_NODES && flags & MPOL_F_RELATIVE_NODES) ||
	    (flags & MPOL_F_NUMA_BALANCING && mode != MPOL_BIND && mode != MPOL_PREFERRED_MANY))
		return false;
	bool nodes = false;
	for (size_t w = 0; w < p->n_nodes; w++)
		nodes |= !!p->nodes[w];
	return mode == MPOL_LOCAL ? !nodes && !flags : nodes;
}

typedef int policy_step(const Mempolicy *p, const uint64_t *allowed, pid_t pid, const char *what,
			unsigned long long which);

/* step on every policy of the process: its threads', then its mappings' (0, or the first error). */
static int each_policy(const struct restore_task *t, policy_step *step, const uint64_t *allowed)
{
	int err = step(t->core->mempolicy, allowed, t->pid, "thread", t->pid);

	for (size_t i = 0; !err && i < t->core->n_threads; i++)
		err = step(t->core->threads[i]->mempolicy, allowed, t->pid, "thread",
			   t->core->threads[i]->tid);
	for (size_t i = 0; !err && i < t->mm->n_vmas; i++)
		err = step(t->mm->vmas[i]->mempolicy, allowed, t->pid, "mapping", t->mm->vmas[i]->start);
	return err;
}

static int validate_one(const Mempolicy *p, const uint64_t *allowed, pid_t pid, const char *what,
			unsigned long long which)
{
	(void)allowed;
	if (!p || policy_valid(p))
		return 0;
	pr_err("image core-%d.img: the NUMA policy of %s %#llx (mode %#x, %zu words of nodes) is not one",
	       pid, what, which, p->mode, p->n_nodes);
	return -EINVAL;
}

static int validate_mempolicy(struct restore_task *t)
{
	return each_policy(t, validate_one, NULL);
}

/* One whose nodes are all missing here (no memory, or not allowed by stasis's cpuset) cannot be set. */
static int check_one(const Mempolicy *p, const uint64_t *allowed, pid_t pid, const char *what,
		     unsigned long long which)
{
	if (!p || (p->mode & ~MPOL_MODE_FLAGS) == MPOL_LOCAL || p->mode & MPOL_F_RELATIVE_NODES)
		return 0;
	for (size_t w = 0; w < p->n_nodes; w++)
		if (p->nodes[w] & allowed[w])
			return 0;
	pr_err("restore pid %d: the NUMA policy of %s %#llx (mode %#x) names nodes %#llx..., none of which "
	       "this machine has or allows (%#llx...)", pid, what, which, p->mode,
	       (unsigned long long)p->nodes[0], (unsigned long long)allowed[0]);
	return -EINVAL;
}

static int check_mempolicy(struct restore_task *t)
{
	uint64_t allowed[RST_NODE_WORDS] = { 0 };

	if (syscall(SYS_get_mempolicy, NULL, allowed, RST_NODE_WORDS * 64, NULL, MPOL_F_MEMS_ALLOWED))
		return 0; /* (a kernel without NUMA, or one that cannot tell: the set itself says) */
	return each_policy(t, check_one, allowed);
}

static size_t mempolicy_args_size(const struct restore_task *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->mm->n_vmas; i++)
		n += !!t->mm->vmas[i]->mempolicy;
	return n * sizeof(struct rst_mempolicy);
}

static void policy_args(struct rst_mempolicy *r, const Mempolicy *p)
{
	memset(r, 0, sizeof(*r));
	if (!p)
		return; /* MPOL_DEFAULT */
	r->mode = p->mode;
	r->nr_words = p->n_nodes;
	if (p->n_nodes)
		memcpy(r->nodes, p->nodes, p->n_nodes * sizeof(*p->nodes));
}

void mempolicy_thread_args(struct rst_thread *th, const Mempolicy *p)
{
	policy_args(&th->mempolicy, p);
}

static int restore_mempolicy(struct restore_task *t)
{
	struct restorer_args *a = t->args;
	struct rst_vma *vmas = (struct rst_vma *)((char *)a + a->vmas_off);
	size_t n = mempolicy_args_size(t) / sizeof(struct rst_mempolicy), used = 0;
	struct rst_mempolicy *policies =
		n ? restorer_args_alloc(t, n * sizeof(*policies), &a->mempolicies_off) : NULL;

	if (n && !policies)
		return -ENOMEM;
	/* (the blob's mappings are the image's in order, some left out) */
	for (size_t i = 0, j = 0; i < t->mm->n_vmas && j < a->nr_vmas; i++) {
		const VmaEntry *v = t->mm->vmas[i];
		while (j < a->nr_vmas && vmas[j].start < v->start)
			j++;
		if (!v->mempolicy || j == a->nr_vmas || vmas[j].start != v->start)
			continue;
		policy_args(&policies[used], v->mempolicy);
		vmas[j].mempolicy = ++used;
	}
	a->nr_mempolicies = used;
	for (size_t i = 0; i < t->core->n_threads; i++)
		a->mempolicy_threads |= !!t->core->threads[i]->mempolicy;
	a->mempolicy_threads |= !!t->core->mempolicy;
	if (!t->core->mempolicy)
		return 0;
	struct rst_mempolicy own;
	policy_args(&own, t->core->mempolicy);
	if (syscall(SYS_set_mempolicy, own.mode, own.nodes, own.nr_words * 64 + 1)) {
		pr_perror("restore pid %d: cannot set its NUMA policy (mode %#x)", t->pid, own.mode);
		return -errno;
	}
	return 0;
}

const struct state_ops state_mempolicy = {
	.name = "NUMA memory policies",
	.dump = dump_mempolicy,
	.validate = validate_mempolicy,
	.check = check_mempolicy,
	.args_size = mempolicy_args_size,
	.restore = restore_mempolicy,
};
