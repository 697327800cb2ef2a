/*
 * stasis pre-dump: a round of an iterative migration. The tree keeps running: stasis reads
 * each process's mappings, arms or reads its write tracking (cr/dirty-track.c) and copies the
 * pages of its private anonymous mappings that changed since the previous round (every
 * present page in the first one). Only a process that has no tracker of its own yet (every
 * one in the first round, a new one later) is stopped, its main thread alone, for the few
 * syscalls run inside it that make one; the rounds after the first stop nothing else. Each
 * process gets its pagemap and pages images, the directory an inventory marked pre_dump: it
 * is the --prev-images-dir (DIR/parent) of the next round, or of the final dump, never a
 * restore point. Shared memory and the pages a process copied from its file mappings are
 * left to the final dump, which takes them whole while the tree is frozen.
 *
 * A page written while a round copies it is not lost: each process's written pages are
 * write-protected again before any is copied, so the write shows in the next round; a round
 * may thus save a torn or stale page, which a later round saves again. Only the final dump,
 * frozen from its scan to its last copy, is exact. A process forked or gone between the
 * tree's walk and its copy is left to the next round. A paused container (a --freeze-cgroup
 * frozen before the round) is held whole while its processes are armed and frozen again before
 * they go: not one instruction of it runs (struct paused_hold).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <time.h>
#include <unistd.h>

#include "dirty-track.h"
#include "dump.h"
#include "freezer.h"
#include "image-chain.h"
#include "kernel/features.h"
#include "log.h"
#include "mm.h"
#include "page-xfer.h"
#include "pstree.h"
#include "regs.h"
#include "seccomp.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

#define TASK_TOP 0x7ffffffff000ULL

/* The mappings a pre-dump copies and tracks: private anonymous ones (heap, stacks, mmap). */
static bool private_anon(const struct proc_vma *pv)
{
	if (pv->shared || pv->start >= TASK_TOP)
		return false;
	if (!strcmp(pv->path, "[vdso]") || !strcmp(pv->path, "[vvar]") ||
	    !strcmp(pv->path, "[vvar_vclock]"))
		return false;
	return !pv->path[0] || pv->path[0] == '[' || !strcmp(pv->path, "/dev/zero");
}

static int new_images(struct dump_task *t)
{
	t->mm = xzalloc(sizeof(*t->mm));
	t->pagemap = xzalloc(sizeof(*t->pagemap));
	mm__init(t->mm);
	pagemap__init(t->pagemap);
	t->mm->vmas = xzalloc((t->vmas.n + 1) * sizeof(*t->mm->vmas));
	proc_vdso_range(&t->vmas, &t->vdso_start, &t->vdso_end);
	uint64_t last_end = 0;
	for (size_t i = 0; i < t->vmas.n; i++) {
		const struct proc_vma *pv = &t->vmas.v[i];
		/*
		 * read while the process runs, its layout may list a mapping that changed between
		 * two reads twice, overlapping: its pages would be walked twice, the pagemap's runs
		 * out of order (the next dump refuses such a parent); what lies below the end of
		 * the last one taken is left out
		 */
		uint64_t start = pv->start > last_end ? pv->start : last_end;
		if (!private_anon(pv) || start >= pv->end)
			continue;
		last_end = pv->end;
		VmaEntry *e = xzalloc(sizeof(*e));
		vma_entry__init(e);
		e->start = start;
		e->end = pv->end;
		e->prot = pv->prot;
		e->kind = VMA_KIND__VMA_ANON_PRIVATE;
		e->advice = vma_advice_of(pv->vmflags); /* (MAP_DROPPABLE memory has no pages saved) */
		t->mm->vmas[t->mm->n_vmas++] = e;
	}
	return 0;
}

/* A process gone, or a zombie: nothing of it to save any more (one whose main thread alone has
 * exited lives on in its other threads). */
static bool gone(pid_t pid)
{
	struct proc_stat st;

	return proc_read_stat(pid, &st) || st.state == 'X' || (st.state == 'Z' && proc_live_thread(pid) <= 0);
}

struct tree_walk {
	size_t depth;   /* the NSpid level of the tree's PID namespace */
	pid_t *queue;
	size_t head, tail;
};

/* One more process of the tree, named by its pid in the tree's namespace (0: gone already). */
static int add_process(struct dump_tree *tr, struct tree_walk *w, pid_t pid, size_t *alloc,
		       struct run_ctx *ctx)
{
	auto_free uint32_t *nspid = NULL;
	auto_free int *tids = NULL;
	struct proc_stat st;
	size_t n, nt;

	/* its main thread exited: a live thread stands for it (its /proc files, its freeze) */
	pid_t via = proc_read_stat(pid, &st) || st.state == 'X' ? 0 : st.state == 'Z' ? proc_live_thread(pid) : pid;
	if (via < 0)
		return via;
	if (!via || proc_nspids(pid, &nspid, &n) || n <= w->depth || proc_list_numbers(pid, "task", &tids, &nt))
		return 0;
	TreeEntry *e = xzalloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	tree_entry__init(e);
	e->pid = pid;
	e->ppid = st.ppid;
	e->pgid = st.pgid;
	e->sid = st.sid;
	if (tr->nr_tasks == *alloc) {
		size_t n = *alloc ? *alloc * 2 : 16;
		struct dump_task *tasks = xreallocarray(tr->tasks, n, sizeof(*tr->tasks));
		if (tasks)
			tr->tasks = tasks;
		TreeEntry **entries = tasks ? xreallocarray(tr->entries, n, sizeof(*tr->entries)) : NULL;
		if (!entries) {
			tree_entry__free_unpacked(e, NULL);
			return -ENOMEM;
		}
		tr->entries = entries;
		*alloc = n;
	}
	tr->entries[tr->nr_entries++] = e;
	tr->tasks[tr->nr_tasks++] = (struct dump_task){ .pid = via, .tgid = pid, .vpid = nspid[w->depth], .ctx = ctx,
						       .dirfd = ctx->images_dir_fd };
	for (size_t i = 0; i < nt; i++) {
		char path[96];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, tids[i]);
		auto_free char *list = read_file_at(AT_FDCWD, path, NULL);
		for (char *c = list, *end; c && *c; c = end) {
			long child = strtol(c, &end, 10);
			if (end == c)
				break;
			pid_t *more = xreallocarray(w->queue, w->tail + 1, sizeof(*more));
			if (!more)
				return -ENOMEM;
			w->queue = more;
			w->queue[w->tail++] = child;
		}
	}
	return 0;
}

/*
 * The tree as it is now, without freezing it: every process reachable from the root, with
 * its pid in the tree's PID namespace (the root's own if it is that namespace's init).
 */
static int walk_tree(struct dump_tree *tr, pid_t root, struct run_ctx *ctx)
{
	struct tree_walk w = { 0 };
	auto_free uint32_t *nspid = NULL;
	size_t n, alloc = 0;
	int err = 0;

	inventory__init(&tr->inv);
	if (gone(root) || proc_nspids(root, &nspid, &n)) {
		pr_err("pre-dump pid %d: no such process", root);
		return -ESRCH;
	}
	tr->inv.has_pid_ns = true;
	tr->inv.pid_ns = n > 1 && nspid[n - 1] == 1;
	w.depth = tr->inv.pid_ns ? n - 1 : 0;
	w.queue = xzalloc(sizeof(pid_t));
	w.queue[w.tail++] = root;
	while (w.head < w.tail && !err)
		err = add_process(tr, &w, w.queue[w.head++], &alloc, ctx);
	free(w.queue);
	if (!err && (!tr->nr_tasks || tr->tasks[0].tgid != root)) {
		pr_err("pre-dump pid %d: it exited", root);
		err = -ESRCH;
	}
	return err;
}

/* The inventory names every process by its pid in the tree's namespace. */
static void entries_as_vpids(struct dump_tree *tr)
{
	for (size_t i = 0; i < tr->nr_entries; i++) {
		TreeEntry *e = tr->entries[i];
		uint32_t ppid = 0;
		for (size_t k = 0; k < i; k++)
			if (tr->entries[k]->pid == e->ppid)
				ppid = tr->tasks[k].vpid;
		e->ppid = ppid ? ppid : tr->inv.pid_ns ? 0 : e->ppid;
		e->pid = tr->tasks[i].vpid;
		if (tr->inv.pid_ns)
			e->pgid = e->sid = 0;
	}
}

/*
 * A paused container (--freeze-cgroup frozen before the pre-dump): none of its threads may run
 * code of its own, yet a process stops for the injected syscalls that arm its tracking only
 * once it runs. Every thread of the cgroup is seized at once, an interrupt pending, and the
 * cgroup thawed (freezer_catch_tree): each stops for ptrace as it wakes. The tree's processes
 * are armed so held (their main threads claimed), the cgroup frozen again while every thread is
 * held, and only then are they let go.
 */
struct paused_hold {
	const char *cgroup;
	int timeout_s;
	struct freezer_catch caught;
	struct { pid_t pid; int stop_sig; } *held; /* main threads armed, still stopped */
	size_t n_held;
};

/* The cgroup frozen again while its threads are held, then each let go where it stopped. */
static void release_paused(struct paused_hold *h)
{
	if (!h->cgroup)
		return;
	freezer_hold_unclaimed(&h->caught);
	freezer_refreeze_caught(h->cgroup, h->timeout_s, &h->caught);
	for (size_t i = 0; i < h->n_held; i++)
		task_release(h->held[i].pid, h->held[i].stop_sig);
	free(h->held);
	*h = (struct paused_hold){ 0 };
}

/*
 * Its mappings and its tracking: a process without a tracker of its own is stopped for the
 * syscalls that make one, its main thread alone, for as long as they take (with hold, until
 * release_paused lets it go).
 */
static int arm_task(struct dump_task *t, uint64_t *stopped_us, struct paused_hold *hold)
{
	bool needs_inject;
	int err, end_err;

	if ((err = proc_read_layout(t->pid, &t->vmas)) || (err = new_images(t)) ||
	    (err = dirty_track_find(t, &needs_inject)))
		return gone(t->pid) ? 0 : err;
	if (!needs_inject) {
		err = dirty_track_arm(t);
		return err && gone(t->pid) ? 0 : err;
	}
	uint64_t start = now_ns(CLOCK_MONOTONIC);
	if ((err = task_seize(t->pid, &t->stop_sig, t->ctx->opts->timeout)))
		return err == -ESRCH ? 0 : err; /* -ESRCH: it exited meanwhile */
	/* its syscall user dispatch blocking system calls (Wine running Windows code), ours would go
	 * to its SIGSYS handler: it runs on for a moment (a paused one cannot) */
	for (unsigned tries = 1; !hold && tries < SETTLE_TRIES && kernel_task_dispatch_blocks(t->pid, t->pid); tries++) {
		if (!ptrace(PTRACE_GETREGS, t->pid, 0, &t->regs))
			regs_undo_freeze_eintr(t->pid, &t->regs); /* (a wait the seize broke, made again) */
		if ((err = task_release(t->pid, t->stop_sig)))
			return err;
		settle_pause(tries);
		if ((err = task_seize(t->pid, &t->stop_sig, t->ctx->opts->timeout)))
			return err == -ESRCH ? 0 : err;
	}
	if (hold) {
		typeof(hold->held) more = xreallocarray(hold->held, hold->n_held + 1, sizeof(*more));
		if (!more) {
			task_release(t->pid, t->stop_sig);
			return -ENOMEM;
		}
		hold->held = more;
		hold->held[hold->n_held].pid = t->pid;
		hold->held[hold->n_held++].stop_sig = t->stop_sig;
		freezer_claim(&hold->caught, t->pid);
	}
	if (ptrace(PTRACE_GETREGS, t->pid, 0, &t->regs)) {
		pr_perror("pre-dump pid %d: cannot read registers", t->pid);
		err = -errno;
	} else if (!(err = regs_refuse_compat(t->tgid, t->pid, &t->regs)) &&
		   !(err = kernel_task_prepare_frozen(t, t->pid, &t->regs)) &&
		   !(err = seccomp_suspend_for_dump(t)) &&
		   !(err = inject_begin(&t->inj, t->ctx, t->pid, &t->regs, t->vdso_start, t->vdso_end))) {
		err = dirty_track_arm(t);
		end_err = inject_end(&t->inj);
		err = err ?: end_err ?: regs_undo_freeze_eintr(t->pid, &t->regs);
	}
	end_err = hold ? 0 : task_release(t->pid, t->stop_sig);
	*stopped_us += (now_ns(CLOCK_MONOTONIC) - start) / 1000;
	err = err ? err : end_err;
	return err && gone(t->pid) ? 0 : err;
}

/* Running: the changed pages copied, the images written (nothing of a process gone since). */
static int copy_task(struct dump_task *t)
{
	int err;

	if (gone(t->pid) || !t->pagemap) {
		pr_info("pre-dump pid %d: it exited meanwhile; nothing of it is saved", t->pid);
		return 0;
	}
	err = state_pages.dump(t);

	return err ? err : image_write(t->dirfd, IMG_PAGEMAP, t->vpid, &t->pagemap->base);
}

static void pre_dump_done(struct run_ctx *ctx)
{
	tree_page_xfer.dump_done(ctx);
	tree_dirty_track.dump_done(ctx);
	tree_image_chain.dump_done(ctx);
}

static uint64_t us_since(uint64_t start_ns)
{
	return (now_ns(CLOCK_MONOTONIC) - start_ns) / 1000;
}

static int pre_dump_tree(struct run_ctx *ctx, int images_dir, struct image_set *set)
{
	struct dump_tree tr = { 0 };
	struct paused_hold hold = { 0 };
	uint64_t start = now_ns(CLOCK_MONOTONIC), copying, stopped_us = 0;
	uint64_t pages = 0, shared = 0, in_parent = 0;
	pid_t root = ctx->opts->pid;
	int paused = ctx->opts->freeze_cgroup ? freezer_is_frozen(ctx->opts->freeze_cgroup) : 0;
	int err;

	if (paused < 0)
		return paused;
	if ((err = run_states_make(ctx, tree_objects, tree_objects_len)) ||
	    (err = run_notify(ctx, "pre-dump", root, -1)))
		return err;
	if (paused) {
		hold.cgroup = ctx->opts->freeze_cgroup;
		hold.timeout_s = ctx->opts->timeout;
		pr_info("pre-dump: cgroup %s is frozen (a paused container): its threads are held "
			"while the tree is armed, and it is frozen again before they go", hold.cgroup);
	}
	if ((err = dump_before_freeze(ctx)) ||
	    (paused && (err = freezer_catch_tree(hold.cgroup, hold.timeout_s, root, &hold.caught))) ||
	    (err = walk_tree(&tr, root, ctx)) || (err = tree_page_xfer.collect(ctx, &tr)))
		goto fail;
	dump_link_parents(&tr);
	for (size_t i = 0; i < tr.nr_tasks; i++) {
		struct dump_task *t = &tr.tasks[i];
		t->tree = tr.tasks;
		t->tree_size = tr.nr_tasks;
		t->tree_pos = i;
		if ((err = arm_task(t, &stopped_us, paused ? &hold : NULL)))
			goto fail;
	}
	if (run_fault(ctx, "pre-dump-armed")) {
		pr_err("pre-dump pid %d: injected failure pre-dump-armed", root);
		err = -EIO;
		goto fail;
	}
	release_paused(&hold);
	copying = now_ns(CLOCK_MONOTONIC);
	ctx->stats.frozen_us = stopped_us;
	for (size_t i = 0; i < tr.nr_tasks; i++) {
		struct dump_task *t = &tr.tasks[i];
		if ((err = copy_task(t)))
			goto fail;
		pages += t->nr_pages_written;
		shared += t->nr_shared_pages;
		in_parent += t->nr_parent_pages;
	}
	ctx->stats.memdump_us = us_since(copying);
	tr.inv.has_pre_dump = tr.inv.pre_dump = true;
	entries_as_vpids(&tr);
	if ((err = tree_image_chain.write(ctx, &tr)) || (err = tree_page_xfer.write(ctx, &tr)) ||
	    (err = dump_write_inventory(ctx, &tr)) || (err = image_set_commit(images_dir, set)))
		goto fail;
	pre_dump_done(ctx);
	ctx->stats.pages_scanned = pages + shared + in_parent;
	ctx->stats.pages_written = pages;
	ctx->stats.pages_skipped_parent = in_parent;
	pr_info("pre-dump stats: stopped_ms=%.1f total_ms=%.1f processes=%zu pages=%llu "
		"pages_shared_with_parent=%llu pages_in_parent_dump=%llu",
		stopped_us / 1e3, (now_ns(CLOCK_MONOTONIC) - start) / 1e6, tr.nr_tasks,
		(unsigned long long)pages, (unsigned long long)shared, (unsigned long long)in_parent);
	dump_tree_free(&tr);
	return 0;
fail:
	release_paused(&hold);
	dirty_track_abort(tr.tasks, tr.nr_tasks);
	pre_dump_done(ctx);
	image_set_abort(images_dir, set);
	dump_tree_free(&tr);
	pr_err("pre-dump pid %d failed; the tree was left running", root);
	return err;
}

int cr_pre_dump(struct run_ctx *ctx)
{
	int err;

	if (ctx->opts->pid <= 0) {
		pr_err("pre-dump: no task given (-t PID)");
		return -EINVAL;
	}
	if ((err = kernel_refuse_missing(ctx, KF_NEEDED_BY_DUMP)) ||
	    (err = kernel_refuse_lacking(ctx, KF_DIRTY_TRACKING, "pre-dump")))
		return err;
	return dump_into_image_set(ctx, pre_dump_tree);
}
