/*
 * Dump: freeze the tree, let every tree-wide kind collect what belongs to the whole tree,
 * every per-task kind collect each process, write the images (into a directory of their own,
 * moved into the images directory once complete), then kill the tree (or leave it running).
 * Any failure before the end puts every task back exactly as it was and removes the images
 * this dump wrote; an earlier dump in the images directory stays as it was.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "dirty-track.h"
#include "dump.h"
#include "kernel/features.h"
#include "log.h"
#include "files/files.h"
#include "net-lock.h"
#include "pid-ns.h"
#include "proc.h"
#include "pstree.h"
#include "regs.h"
#include "safe-file.h"
#include "seccomp.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

/* Each image is whole as soon as it exists: the tree's teardown frees what a failure left. */
static int new_task_images(struct dump_task *t)
{
	if (!(t->core = xzalloc(sizeof(*t->core))))
		return -ENOMEM;
	task_core__init(t->core);
	t->core->pid = t->core->tid = t->vpid;
	if (!(t->mm = xzalloc(sizeof(*t->mm))))
		return -ENOMEM;
	mm__init(t->mm);
	if (!(t->pagemap = xzalloc(sizeof(*t->pagemap))))
		return -ENOMEM;
	pagemap__init(t->pagemap);
	if (!(t->fds = xzalloc(sizeof(*t->fds))))
		return -ENOMEM;
	fd_table__init(t->fds);
	return 0;
}

static int collect_task(struct dump_task *t)
{
	unsigned logged;
	int err;

	if (ptrace(PTRACE_GETREGS, t->pid, 0, &t->regs)) {
		pr_perror("dump pid %d: cannot read registers", t->pid);
		return -errno;
	}
	if ((err = regs_refuse_compat(t->tgid, t->pid, &t->regs)))
		return err;
	for (size_t i = 0; i < t->nr_threads; i++)
		if ((err = regs_refuse_compat(t->tgid, t->threads[i].tid, &t->threads[i].regs)))
			return err;
	logged = log_errors();
	if ((err = proc_read_stat(t->pid, &t->stat)))
		return log_unnamed(logged, err, "dump pid %d: cannot read its /proc stat", t->pid);
	if ((err = proc_read_vmas(t->pid, &t->vmas)))
		return err;
	proc_vdso_range(&t->vmas, &t->vdso_start, &t->vdso_end);
	for (size_t i = 0; i < t->nr_threads; i++)
		if ((err = kernel_task_prepare_frozen(t, t->threads[i].tid, &t->threads[i].regs)))
			return err;
	/* the whole tree is frozen: no thread's seccomp can change any more */
	if ((err = kernel_task_prepare_frozen(t, t->pid, &t->regs)) ||
	    (err = seccomp_suspend_for_dump(t)) ||
	    (err = inject_begin(&t->inj, t->ctx, t->pid, &t->regs, t->vdso_start, t->vdso_end)))
		return err;
	t->inj_active = true;
	for (unsigned i = 0; i < state_table_len; i++) {
		if (state_table[i] == &state_pages) {
			/* Done with syscalls inside the task: pages are read from outside. */
			t->inj_active = false;
			if ((err = inject_end(&t->inj)))
				return err;
			if (run_fault(t->ctx, "after-collect")) {
				pr_err("dump pid %d: injected failure after-collect", t->pid);
				return -EIO;
			}
		}
		if (!state_table[i]->dump)
			continue; /* restore only: the kind dumps tree-wide */
		logged = log_errors();
		pr_debug("dump pid %d: %s", t->pid, state_table[i]->name);
		if ((err = state_table[i]->dump(t)))
			return log_unnamed(logged, err, "dump pid %d: %s", t->pid, state_table[i]->name);
	}
	return 0;
}

static int write_task_images(struct dump_task *t)
{
	int err;

	if ((err = image_write(t->dirfd, IMG_CORE, t->vpid, &t->core->base)) ||
	    (err = image_write(t->dirfd, IMG_MM, t->vpid, &t->mm->base)) ||
	    (err = image_write(t->dirfd, IMG_PAGEMAP, t->vpid, &t->pagemap->base)))
		return err;
	return image_write(t->dirfd, IMG_FDS, t->vpid, &t->fds->base);
}

int dump_write_inventory(const struct run_ctx *ctx, const struct dump_tree *tr)
{
	struct utsname u;
	Inventory inv = tr->inv;
	auto_free uint32_t *pids = xzalloc(tr->nr_tasks * sizeof(uint32_t));

	if (!pids)
		return -ENOMEM;
	for (size_t i = 0; i < tr->nr_tasks; i++)
		pids[i] = tr->tasks[i].vpid;
	uname(&u);
	inv.format_version = IMAGE_FORMAT_VERSION;
	inv.tool_version = STASIS_VERSION;
	inv.root_pid = tr->tasks[0].vpid;
	inv.n_pids = tr->nr_tasks;
	inv.pids = pids;
	inv.n_tree = tr->nr_entries;
	inv.tree = tr->entries;
	inv.kernel_release = u.release;
	inv.page_size = PAGE_SIZE;
	inv.dumped_at_ns = now_ns(CLOCK_REALTIME);
	inv.has_shell_job = true;
	inv.shell_job = ctx->opts->shell_job;
	return image_write(ctx->images_dir_fd, IMG_INVENTORY, 0, &inv.base);
}

void dump_tree_free(struct dump_tree *tr)
{
	for (size_t i = 0; i < tr->nr_tasks; i++) {
		struct dump_task *t = &tr->tasks[i];
		if (t->core)
			task_core__free_unpacked(t->core, NULL);
		if (t->mm)
			mm__free_unpacked(t->mm, NULL);
		if (t->pagemap)
			pagemap__free_unpacked(t->pagemap, NULL);
		if (t->fds)
			fd_table__free_unpacked(t->fds, NULL);
		free(t->saved);
		free(t->threads);
		proc_vmas_free(&t->vmas);
		open_files_free(&t->open_files);
		dirty_track_free(t->track);
		namespaces_free(t->ns);
	}
	for (size_t i = 0; i < tr->nr_entries; i++)
		tree_entry__free_unpacked(tr->entries[i], NULL);
	free(tr->tasks);
	free(tr->entries);
	free(tr->kill_tids);
	free(tr->kill_pidfds);
	*tr = (struct dump_tree){ 0 };
}

/* Parents come first in the tree: each process learns its parent (it saves shared pages). */
void dump_link_parents(struct dump_tree *tr)
{
	for (size_t i = 1; i < tr->nr_tasks; i++)
		for (size_t e = 0; e < tr->nr_entries; e++)
			if (tr->entries[e]->pid == (uint32_t)tr->tasks[i].tgid)
				for (size_t k = 0; k < i; k++)
					if (tr->tasks[k].tgid == (pid_t)tr->entries[e]->ppid)
						tr->tasks[i].parent = &tr->tasks[k];
}

static uint64_t us_since(uint64_t start_ns)
{
	return (now_ns(CLOCK_MONOTONIC) - start_ns) / 1000;
}

static int collect_tree(struct run_ctx *ctx, struct dump_tree *tr, uint64_t *pages, uint64_t *shared,
			uint64_t *in_parent, uint64_t *sums_ns)
{
	uint64_t start = now_ns(CLOCK_MONOTONIC), writing;
	int err;

	dump_link_parents(tr); /* (the kinds' collect may ask) */
	if ((err = namespaces_judge_tree(tr->tasks, tr->nr_tasks)))
		return err;
	for (unsigned i = 0; i < tree_objects_len; i++) {
		unsigned logged = log_errors();
		uint64_t began = now_ns(CLOCK_MONOTONIC);
		if (tree_objects[i]->collect && (err = tree_objects[i]->collect(ctx, tr)))
			return log_unnamed(logged, err, "dump: %s", tree_objects[i]->name);
		if (tree_objects[i]->collect)
			pr_debug("dump: %s collected in %.1f ms", tree_objects[i]->name,
				 us_since(began) / 1000.0);
	}
	for (size_t i = 0; i < tr->nr_tasks; i++) {
		struct dump_task *t = &tr->tasks[i];
		t->tree_size = tr->nr_tasks;
		t->tree = tr->tasks;
		t->tree_pos = i;
		if ((err = new_task_images(t)) || (err = collect_task(t)))
			return err;
		writing = now_ns(CLOCK_MONOTONIC);
		if ((err = write_task_images(t)))
			return err;
		ctx->stats.memwrite_us += us_since(writing);
		*pages += t->nr_pages_written;
		*shared += t->nr_shared_pages;
		*in_parent += t->nr_parent_pages;
		*sums_ns += t->page_sums_ns;
	}
	writing = now_ns(CLOCK_MONOTONIC);
	for (unsigned i = 0; i < tree_objects_len; i++) {
		unsigned logged = log_errors();
		if (tree_objects[i]->write && (err = tree_objects[i]->write(ctx, tr)))
			return log_unnamed(logged, err, "dump: %s", tree_objects[i]->name);
	}
	if ((err = dump_write_inventory(ctx, tr)))
		return err;
	ctx->stats.memwrite_us += us_since(writing);
	ctx->stats.memdump_us = us_since(start) - ctx->stats.memwrite_us;
	return 0;
}

int dump_before_freeze(struct run_ctx *ctx)
{
	int err;

	for (unsigned i = 0; i < tree_objects_len; i++) {
		unsigned logged = log_errors();
		if (tree_objects[i]->before_freeze && (err = tree_objects[i]->before_freeze(ctx)))
			return log_unnamed(logged, err, "dump: %s", tree_objects[i]->name);
	}
	return 0;
}

static void kill_apart(struct run_ctx *ctx, struct dump_tree *tr)
{
	for (unsigned i = 0; i < tree_objects_len; i++)
		if (tree_objects[i]->kill_apart)
			tree_objects[i]->kill_apart(ctx, tr);
}

static int tree_gone(struct run_ctx *ctx, const struct dump_tree *tr, int images_dir)
{
	int err;

	for (unsigned i = 0; i < tree_objects_len; i++) {
		unsigned logged = log_errors();
		if (tree_objects[i]->tree_gone && (err = tree_objects[i]->tree_gone(ctx, tr, images_dir)))
			return log_unnamed(logged, err, "dump: %s", tree_objects[i]->name);
	}
	return 0;
}

static void dump_done(struct run_ctx *ctx)
{
	for (unsigned i = tree_objects_len; i-- > 0;)
		if (tree_objects[i]->dump_done)
			tree_objects[i]->dump_done(ctx);
}

/* What a frozen tree is in the middle of (tree_in_the_middle). */
enum tree_middle {
	TREE_SETTLED,
	TREE_MOMENT,   /* something of a moment: SETTLE_TRIES seizes */
	TREE_OUTSIDER, /* something from outside the tree (a process joined to its PID namespace,
			  a unix client): SETTLE_TRIES_OUTSIDER seizes */
};

/*
 * Is the frozen tree in the middle of something that lasts a moment and that a dump cannot
 * take: a thread whose syscall user dispatch blocks system calls (Wine running Windows code:
 * stasis's own would go to its SIGSYS handler), a netlink socket talking with the kernel (a
 * restore cannot give that conversation back), a process that joined the PID namespace of
 * which the root is the init (an engine's exec into the container: a health check; it would
 * be lost), a unix client outside the tree being served?
 */
static enum tree_middle tree_in_the_middle(const struct dump_tree *tr)
{
	pid_t stranger;

	for (size_t i = 0; i < tr->nr_tasks; i++) {
		const struct dump_task *t = &tr->tasks[i];
		for (size_t k = 0; k <= t->nr_threads; k++) {
			pid_t tid = k < t->nr_threads ? t->threads[k].tid : t->pid;
			if (kernel_task_dispatch_blocks(t->pid, tid)) {
				pr_info("dump tid %d: its syscall user dispatch blocks system calls: the tree "
					"runs on for a moment", tid);
				return TREE_MOMENT;
			}
		}
	}
	if (netlink_tree_talking(tr->tasks, tr->nr_tasks))
		return TREE_MOMENT;
	if ((stranger = pid_ns_stranger(tr))) {
		pr_info("dump pid %d: it joined the tree's PID namespace from outside (an exec into the "
			"container?): the tree runs on for a moment", stranger);
		return TREE_OUTSIDER;
	}
	if (unix_tree_outside_moment(tr->tasks, tr->nr_tasks))
		return TREE_OUTSIDER;
	return TREE_SETTLED;
}

/*
 * A paused container (its cgroup frozen by the engine, as Docker and containerd do before each
 * checkpoint) cannot run on for a moment: its tree stays held. When something joined its PID
 * namespace from outside (an exec: a health check), what the freezer caught that is not the
 * tree's goes on, to end within SETTLE_TRIES_OUTSIDER pauses. What is left is refused by the
 * final check, and frozen again with the cgroup.
 */
static void paused_strangers_end(struct dump_tree *tr)
{
	pid_t stranger = pid_ns_stranger(tr);
	unsigned tries;

	if (!stranger)
		return;
	pr_info("dump pid %d: it joined the paused container's PID namespace from outside (an exec "
		"into the container?): it alone goes on for a moment", stranger);
	freezer_let_go_held(tr->refreeze_cgroup, &tr->paused);
	for (tries = 1; tries < SETTLE_TRIES_OUTSIDER && (stranger = pid_ns_stranger(tr)); tries++)
		settle_pause(tries);
	if (!stranger)
		pr_info("dump: what joined the paused container ended (%u pauses)", tries - 1);
}

/*
 * Seizes the tree at a moment when it is not in the middle of something (tree_in_the_middle):
 * the tree is let go to finish it and seized again, a few times. A paused container cannot
 * finish it (but for an exec: paused_strangers_end); then (or when it never settles) the dump
 * refuses it by name.
 */
static int seize_settled(struct run_ctx *ctx, struct dump_tree *tr, pid_t root)
{
	for (unsigned tries = 1;; tries++) {
		int err = pstree_seize(tr, root, ctx);
		if (err) {
			dump_tree_free(tr);
			return err;
		}
		if (tr->refreeze_cgroup)
			paused_strangers_end(tr);
		if (tries == SETTLE_TRIES_OUTSIDER || tr->refreeze_cgroup)
			return 0;
		enum tree_middle middle = tree_in_the_middle(tr);
		if (middle == TREE_SETTLED || (middle == TREE_MOMENT && tries >= SETTLE_TRIES))
			return 0;
		/* a wait the seize broke with EINTR is made again by pstree_release, which needs the
		 * main threads' registers (the seize read the others') */
		for (size_t i = 0; i < tr->nr_tasks; i++)
			ptrace(PTRACE_GETREGS, tr->tasks[i].pid, 0, &tr->tasks[i].regs);
		pstree_release(tr);
		dump_tree_free(tr);
		settle_pause(tries);
	}
}

/* The tree's pids, zombies too, sorted, for warn_ids_held (taken while the dump can still
 * fail cleanly): a zombie of the tree is not yet reaped when the scan comes. */
static int *tree_pids(const struct dump_tree *tr, size_t *n)
{
	int *ids = xmalloc((tr->nr_entries + 1) * sizeof(*ids));

	*n = tr->nr_entries;
	for (size_t i = 0; ids && i < *n; i++)
		ids[i] = tr->entries[i]->pid;
	if (ids)
		proc_sort_numbers(ids, *n);
	return ids;
}

/*
 * The tree killed: a process outside it still in the session or group one of its processes led
 * (an orphan a subreaper outside took) keeps that pid taken, and the restore refuses the images
 * until it ends. Said now, while the dump is fresh.
 */
static void warn_ids_held(const int *ids, size_t n)
{
	pid_t holder;
	int id;
	bool session;

	if (proc_find_id_holder(ids, n, &holder, &id, &session))
		pr_warn("dump: process %d, outside the tree, is still in the %s of pid %d: the images "
			"cannot be restored while it runs (pid %d stays taken)",
			holder, session ? "session" : "process group", id, id);
}

/*
 * The dump itself, writing into ctx->images_dir_fd (the new image set's directory); the set is
 * moved into images_dir just before the tree is let go or killed.
 */
static int dump_tree(struct run_ctx *ctx, int images_dir, struct image_set *set)
{
	struct dump_tree tr = { 0 };
	uint64_t start = now_ns(CLOCK_MONOTONIC), frozen_at, thawed_at, pages = 0, shared = 0, in_parent = 0;
	uint64_t sums_ns = 0;
	pid_t root = ctx->opts->pid;
	bool locked = false, committed = false;
	auto_free int *ids = NULL;
	size_t n_ids = 0;
	int err;

	if ((err = run_states_make(ctx, tree_objects, tree_objects_len)) ||
	    (err = run_notify(ctx, "pre-dump", root, -1)))
		return err;
	if ((err = dump_before_freeze(ctx))) {
		dump_done(ctx);
		return err;
	}
	frozen_at = now_ns(CLOCK_MONOTONIC);
	if ((err = seize_settled(ctx, &tr, root)))
		return err;
	ctx->stats.freezing_us = us_since(frozen_at);
	if (run_fault(ctx, "after-seize")) {
		pr_err("dump pid %d: injected failure after-seize", root);
		err = -EIO;
		goto fail;
	}
	/* (before anything looks at the tree's files: the network lock finds its sockets) */
	if ((err = fd_probe_refuse_fuse(tr.tasks, tr.nr_tasks)) || (err = pstree_refuse_tracers(&tr)))
		goto fail;
	if ((err = net_lock_dump(ctx, &tr)) || (err = run_notify(ctx, "network-lock", root, -1)))
		goto fail;
	locked = true;
	/* (host pids: the tree's own PID namespace gets its pids when the images are written) */
	if (!ctx->opts->leave_running && !(ids = tree_pids(&tr, &n_ids))) {
		err = -ENOMEM;
		goto fail;
	}
	if ((err = collect_tree(ctx, &tr, &pages, &shared, &in_parent, &sums_ns)))
		goto fail;
	if (run_fault(ctx, "after-images")) {
		pr_err("dump pid %d: injected failure after-images", root);
		err = -EIO;
		goto fail;
	}
	/* complete: in place before the post-dump hook looks at it, and before the tree goes */
	if ((err = image_set_commit(images_dir, set)))
		goto fail;
	committed = true;
	if ((err = run_notify(ctx, "post-dump", root, -1)))
		goto fail;
	dirty_track_close_later(ctx);
	dump_done(ctx);
	if ((err = net_lock_dump_over(ctx, ctx->opts->leave_running)))
		goto fail;
	if (ctx->opts->leave_running) {
		run_notify(ctx, "network-unlock", root, -1);
		pstree_release(&tr);
	} else {
		kill_apart(ctx, &tr);
		err = pstree_kill(&tr);
	}
	thawed_at = now_ns(CLOCK_MONOTONIC); /* (killed: its exit, below, is not frozen time) */
	if (!ctx->opts->leave_running) {
		int gone = pstree_wait_killed(&tr);
		err = err ? err : gone;
		ctx->stats.exit_wait_us = us_since(thawed_at);
	}
	if (!err)
		err = tree_gone(ctx, &tr, images_dir);
	if (!err && ids)
		warn_ids_held(ids, n_ids);
	dirty_track_close(ctx);
	ctx->stats.frozen_us = (thawed_at - frozen_at) / 1000 - ctx->stats.freezing_us;
	ctx->stats.pages_scanned = pages + shared + in_parent;
	ctx->stats.pages_written = pages;
	ctx->stats.pages_skipped_parent = in_parent;
	pr_info("dump stats: frozen_ms=%.1f exit_wait_ms=%.1f total_ms=%.1f processes=%zu pages=%llu "
		"pages_shared_with_parent=%llu pages_in_parent_dump=%llu image_bytes=%llu "
		"page_checksums_ms=%.1f",
		(thawed_at - frozen_at) / 1e6, ctx->stats.exit_wait_us / 1e3, (now_ns(CLOCK_MONOTONIC) - start) / 1e6, tr.nr_tasks,
		(unsigned long long)pages, (unsigned long long)shared, (unsigned long long)in_parent,
		(unsigned long long)(pages * PAGE_SIZE), sums_ns / 1e6);
	dump_tree_free(&tr);
	return err;
fail:
	for (size_t i = 0; i < tr.nr_tasks; i++)
		if (tr.tasks[i].inj_active)
			inject_end(&tr.tasks[i].inj);
	dirty_track_abort(tr.tasks, tr.nr_tasks);
	dump_done(ctx);
	if (committed) /* no dump: its images go (the earlier dump they replaced is gone) */
		image_set_uncommit(images_dir, set);
	image_set_abort(images_dir, set);
	net_lock_dump_over(ctx, true);
	if (locked)
		run_notify(ctx, "network-unlock", root, -1);
	pstree_release(&tr);
	dump_tree_free(&tr);
	pr_err("dump pid %d failed; the tree was left running", root);
	return err;
}

int dump_into_image_set(struct run_ctx *ctx, int (*dump)(struct run_ctx *ctx, int images_dir,
							 struct image_set *set))
{
	struct image_set set;
	int images_dir = ctx->images_dir_fd, err;

	if ((err = image_set_begin(images_dir, ctx->opts->images_dir ? ctx->opts->images_dir : ".", &set)))
		return err;
	ctx->images_dir_fd = set.fd;
	ctx->images_dest_fd = images_dir;
	err = dump(ctx, images_dir, &set);
	image_set_abort(images_dir, &set); /* (nothing left after a commit) */
	ctx->images_dir_fd = images_dir;
	ctx->images_dest_fd = -1;
	return err;
}

/* The lazy source listens: criu's "\0" on --status-fd, and its status-ready notification
 * (runc writes its --status-fd's byte then; a failure is the engine's, said by it). */
static void lazy_source_ready(void *arg, int port)
{
	const struct run_ctx *ctx = arg;
	const struct stasis_opts *o = ctx->opts;

	pr_info("dump --lazy-pages: serving the pages on port %d", port);
	if (o->status_fd >= 0) {
		if (write(o->status_fd, "", 1) != 1)
			pr_warn("--status-fd %d: %m", o->status_fd);
		close(o->status_fd);
	}
	if (run_notify(ctx, "status-ready", 0, -1))
		pr_warn("dump --lazy-pages: the status-ready notification failed; serving anyway");
}

/*
 * criu's lazy migration from the dump's side (runc checkpoint --lazy-pages --page-server
 * ADDRESS:PORT): the dump writes every image, its pages too, as a plain dump does, and lets
 * the tree go as one does; then it serves those pages on ADDRESS:PORT to one lazy restore's
 * lazy-pages server (cr_page_server), "\0" on --status-fd and the status-ready notification
 * once it listens, and returns when that session ends. (criu serves them from the frozen tree
 * instead; what the restore side sees is the same.)
 */
static int dump_then_serve_lazily(struct run_ctx *ctx)
{
	const struct stasis_opts *given = ctx->opts;
	struct stasis_opts plain = *given, serving = *given;
	uint64_t pages_written;
	int err;

	if (!given->page_server) {
		pr_err("dump --lazy-pages: no --page-server ADDRESS:PORT to serve the pages on (or dump "
		       "to a page server without --lazy-pages, then restore --lazy-pages there)");
		return -EINVAL;
	}
	plain.lazy_pages = plain.page_server = false; /* the pages go to the images directory */
	plain.status_fd = -1;
	ctx->opts = &plain;
	err = dump_into_image_set(ctx, dump_tree);
	if (!err) {
		serving.prev_images_dir = NULL; /* (the dump made the parent link) */
		ctx->opts = &serving;
		pages_written = ctx->stats.pages_written;
		err = cr_page_server(ctx, lazy_source_ready, ctx);
		ctx->stats.pages_written = pages_written;
	}
	ctx->opts = given;
	return err;
}

int cr_dump(struct run_ctx *ctx)
{
	int err;

	if (ctx->opts->pid <= 0) {
		pr_err("dump: no task given (-t PID)");
		return -EINVAL;
	}
	if ((err = kernel_refuse_missing(ctx, KF_NEEDED_BY_DUMP)))
		return err;
	if (ctx->opts->lazy_pages)
		return dump_then_serve_lazily(ctx);
	return dump_into_image_set(ctx, dump_tree);
}
