#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "run.h"
#include "tree-objects.h"
#include "util.h"

void run_ctx_init(struct run_ctx *ctx, const struct stasis_opts *opts, int images_dir_fd,
		  int work_dir_fd)
{
	*ctx = (struct run_ctx){ .opts = opts, .images_dir_fd = images_dir_fd, .images_dest_fd = -1, .work_dir_fd = work_dir_fd,
				 .tree_root_fd = -1 };
}

static int slots_make(struct run_slot **slots, size_t *nr, const struct tree_object_ops *const *kinds, size_t n,
		      bool (*want)(const struct tree_object_ops *kind))
{
	if (!(*slots = xzalloc((n + 1) * sizeof(**slots))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (want && !want(kinds[i]))
			continue;
		struct run_slot *s = &(*slots)[(*nr)++];
		s->kind = kinds[i];
		if (!(s->state = xzalloc(kinds[i]->state_size)))
			return -ENOMEM;
	}
	return 0;
}

static void slots_free(struct run_slot **slots, size_t *nr)
{
	for (size_t i = 0; i < *nr; i++) {
		if ((*slots)[i].state && (*slots)[i].kind->free_state)
			(*slots)[i].kind->free_state((*slots)[i].state);
		free((*slots)[i].state);
	}
	free(*slots);
	*slots = NULL;
	*nr = 0;
}

int run_states_make(struct run_ctx *ctx, const struct tree_object_ops *const *kinds, size_t n)
{
	return slots_make(&ctx->slots, &ctx->nr_slots, kinds, n, NULL);
}

int run_scope_make(struct run_scope *scope, uint32_t image_id,
		   bool (*want)(const struct tree_object_ops *kind))
{
	scope->image_id = image_id;
	return slots_make(&scope->slots, &scope->nr_slots, tree_objects, tree_objects_len, want);
}

void run_scope_free(struct run_scope *scope)
{
	slots_free(&scope->slots, &scope->nr_slots);
}

uint32_t run_scope_id(const struct run_ctx *ctx)
{
	return ctx->scope ? ctx->scope->image_id : 0;
}

void *run_state(const struct run_ctx *ctx, const struct tree_object_ops *kind)
{
	for (size_t i = 0; ctx->scope && i < ctx->scope->nr_slots; i++)
		if (ctx->scope->slots[i].kind == kind)
			return ctx->scope->slots[i].state;
	for (size_t i = 0; i < ctx->nr_slots; i++)
		if (ctx->slots[i].kind == kind)
			return ctx->slots[i].state;
	return NULL;
}

void run_ctx_fini(struct run_ctx *ctx)
{
	slots_free(&ctx->slots, &ctx->nr_slots);
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
	const char *fault = ctx->opts->fault_inject;

	if (fault && !strncmp(fault, "kill-at:", 8) && !strcmp(fault + 8, point))
		kill(getpid(), SIGKILL); /* stasis dies here, as if killed from outside */
	return fault && strcmp(fault, point) == 0;
}

void run_fault_count(struct run_ctx *ctx, const char *point)
{
	const char *fault = ctx->opts->fault_inject;
	size_t len = strlen(point);

	if (fault && !strncmp(fault, "kill-at:", 8) && !strncmp(fault + 8, point, len) &&
	    fault[8 + len] == ':' && ++ctx->fault_hits == strtoul(fault + 9 + len, NULL, 10))
		kill(getpid(), SIGKILL);
}
