/*
 * membarrier(2) registrations of the process's memory (MEMBARRIER_CMD_REGISTER_*), which the
 * expedited commands need: asked inside the task with MEMBARRIER_CMD_GET_REGISTRATIONS, and
 * registered again by the new process (its memory is the same mm through the blob). A kernel
 * without that command (before 6.3) cannot tell: the registrations are then not kept.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "task.h"
#include "util.h"

#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif

/* The registrations, in the order they may be made. */
static const unsigned registrations[] = {
	MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
	MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
	MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
	MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ,
};

static int dump_membarrier(struct dump_task *t)
{
	uint64_t args[6] = { MEMBARRIER_CMD_GET_REGISTRATIONS };
	int64_t ret;

	if (inject_syscall(&t->inj, SYS_membarrier, args, &ret))
		return -EIO;
	if (ret == -EINVAL) {
		pr_debug("dump pid %d: this kernel does not tell membarrier registrations", t->pid);
		return 0;
	}
	if (ret < 0) {
		pr_err("dump pid %d: cannot read its membarrier registrations: %s", t->pid, strerror(-ret));
		return ret;
	}
	if (ret) {
		t->core->has_membarrier = true;
		t->core->membarrier = ret;
	}
	return 0;
}

static int validate_membarrier(struct restore_task *t)
{
	unsigned known = 0;

	for (size_t i = 0; i < ARRAY_SIZE(registrations); i++)
		known |= registrations[i];
	if (t->core->membarrier & ~known) {
		pr_err("image core-%d.img: membarrier registrations %#x are not known", t->pid, t->core->membarrier);
		return -EINVAL;
	}
	return 0;
}

static int restore_membarrier(struct restore_task *t)
{
	for (size_t i = 0; i < ARRAY_SIZE(registrations); i++) {
		if (!(t->core->membarrier & registrations[i]))
			continue;
		if (syscall(SYS_membarrier, registrations[i], 0, 0)) {
			pr_perror("restore pid %d: cannot register for membarrier command %#x", t->pid,
				  registrations[i]);
			return -errno;
		}
	}
	return 0;
}

const struct state_ops state_membarrier = {
	.name = "membarrier registrations",
	.dump = dump_membarrier,
	.validate = validate_membarrier,
	.restore = restore_membarrier,
};
