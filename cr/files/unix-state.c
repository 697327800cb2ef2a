/*
 * The run's unix socket state (tree_unix_sockets' share of the run, cr/files/unix.h), set up
 * on first use. Apart from unix.c, the kind's face, so that the files below it (unix-cred.c:
 * is this the tree's root making its sockets again) reach it without calling back up.
 */
#include "tree-objects.h"
#include "unix.h"

struct unix_state *unix_state_of(const struct run_ctx *ctx)
{
	struct unix_state *ud = run_state(ctx, &tree_unix_sockets);

	ud->ctx = ctx;
	if (!ud->tab_ready) {
		socket_table__init(&ud->tab);
		ud->tab_ready = true;
	}
	return ud;
}
