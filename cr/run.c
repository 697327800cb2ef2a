#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "run.h"
#include "tree-objects.h"
#include "util.h"

void run_ctx_init(struct run_ctx *ctx, const struct stasis_opts *opts, int images_dir_fd,
		  int work_dir_fd)
{
	*ctx = (struct run_ctx){ .opts = opts, .images_dir_fd = images_dir_fd, .work_dir_fd = work_dir_fd,
				 .tree_root_fd = -1 };
}

int run_states_make(struct run_ctx *ctx, const struct tree_object_ops *const *kinds, size_t n)
{
	ctx->slots = xzalloc(n * sizeof(*ctx->slots));
	if (!ctx->slots)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		ctx->slots[i].kind = kinds[i];
		ctx->slots[i].state = xzalloc(kinds[i]->state_size);
		ctx->nr_slots = i + 1;
		if (!ctx->slots[i].state)
			return -ENOMEM;
	}
	return 0;
}

void *run_state(const struct run_ctx *ctx, const struct tree_object_ops *kind)
{
	for (size_t i = 0; i < ctx->nr_slots; i++)
		if (ctx->slots[i].kind == kind)
			return ctx->slots[i].state;
	return NULL;
}

void run_ctx_fini(struct run_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_slots; i++) {
		if (ctx->slots[i].state && ctx->slots[i].kind->free_state)
			ctx->slots[i].kind->free_state(ctx->slots[i].state);
		free(ctx->slots[i].state);
	}
	free(ctx->slots);
	ctx->slots = NULL;
	ctx->nr_slots = 0;
}

int run_notify(const struct run_ctx *ctx, const char *point, int pid, int fd)
{
	int err;

	if (!ctx->notify)
		return 0;
	pr_debug("notify: %s (pid %d)", point, pid);
	err = ctx->notify(ctx, point, pid, fd);
	if (err)
		pr_err("the %s notification failed: the run stops here", point);
	return err;
}

bool run_fault(const struct run_ctx *ctx, const char *point)
{
	return ctx->opts->fault_inject && strcmp(ctx->opts->fault_inject, point) == 0;
}
