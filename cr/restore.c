/*
 * Restore: read and check every image first (per-task images, then every tree-wide kind);
 * then each tree-wide kind makes its objects in the registry's order, the root is created
 * with its old PID (clone3 + set_tid) and creates the rest of the tree (cr/restore-task.c),
 * and stasis serves and finishes every process (cr/restore-finish.c). If anything fails
 * every restored process is killed and every kind undoes what it made: nothing half-alive.
 */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kernel/features.h"
#include "join-ns.h"
#include "log.h"
#include "pid-ns.h"
#include "mm.h"
#include "net-lock.h"
#include "ns-make.h"
#include "pstree.h"
#include "restore.h"
#include "restore-watchdog.h"
#include "safe-file.h"
#include "seize.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

static int read_task_images(struct restore_task *t)
{
	int err;

	if ((err = image_read(t->dirfd, IMG_CORE, t->pid, (ProtobufCMessage **)&t->core)) ||
	    (err = image_read(t->dirfd, IMG_MM, t->pid, (ProtobufCMessage **)&t->mm)) ||
	    (err = image_read(t->dirfd, IMG_PAGEMAP, t->pid, (ProtobufCMessage **)&t->pagemap)) ||
	    (err = image_read(t->dirfd, IMG_FDS, t->pid, (ProtobufCMessage **)&t->fds)))
		return err;
	if (t->core->pid != (uint32_t)t->pid) {
		pr_err("image core-%d.img: holds pid %u", t->pid, t->core->pid);
		return -EINVAL;
	}
	for (unsigned i = 0; i < state_table_len; i++) {
		unsigned logged = log_errors();
		if (state_table[i]->validate && (err = state_table[i]->validate(t)))
			return log_unnamed(logged, err, "restore pid %d: %s", t->pid, state_table[i]->name);
	}
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_entry_pid(const void *a, const void *b)
{
	return cmp_u32(&(*(TreeEntry *const *)a)->pid, &(*(TreeEntry *const *)b)->pid);
}

/*
 * Each process the inventory lists once, each with an entry in the tree that says it is a
 * living process (not a zombie nor a group's stand-in): said before any image is read.
 */
static int check_inventory_pids(const Inventory *inv)
{
	auto_free uint32_t *sorted = xmalloc(inv->n_pids * sizeof(uint32_t));
	auto_free TreeEntry **by_pid = xmalloc(inv->n_tree * sizeof(*by_pid));

	if (!sorted || !by_pid)
		return -ENOMEM;
	memcpy(by_pid, inv->tree, inv->n_tree * sizeof(*by_pid));
	qsort(by_pid, inv->n_tree, sizeof(*by_pid), cmp_entry_pid);
	memcpy(sorted, inv->pids, inv->n_pids * sizeof(uint32_t));
	qsort(sorted, inv->n_pids, sizeof(uint32_t), cmp_u32);
	for (size_t i = 1; i < inv->n_pids; i++) {
		if (sorted[i] == sorted[i - 1]) {
			pr_err("image inventory.img: pid %u is listed twice", sorted[i]);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < inv->n_pids; i++) {
		TreeEntry key = { .pid = inv->pids[i] }, *kp = &key, **found;
		found = bsearch(&kp, by_pid, inv->n_tree, sizeof(*by_pid), cmp_entry_pid);
		const TreeEntry *e = found ? *found : NULL;
		if (!e || e->zombie || e->group_helper) {
			pr_err("image inventory.img: pid %u has images but %s", inv->pids[i],
			       e ? "its tree entry is not a living process" : "no entry in the process tree");
			return -EINVAL;
		}
	}
	return 0;
}

static int read_inventory(int dirfd, Inventory **inv)
{
	struct utsname u;
	int err = image_read(dirfd, IMG_INVENTORY, 0, (ProtobufCMessage **)inv);

	if (err)
		return err;
	if ((*inv)->has_pre_dump && (*inv)->pre_dump) {
		pr_err("image inventory.img: these images are a pre-dump (memory only, the tree went "
		       "on running); restore the dump made after it");
		return -EINVAL;
	}
	if ((*inv)->page_size != PAGE_SIZE || (*inv)->n_pids < 1 || (*inv)->n_pids > 65536 ||
	    (*inv)->pids[0] != (*inv)->root_pid || (*inv)->root_pid < 1 || (*inv)->n_tree < 1 ||
	    (*inv)->tree[0]->pid != (*inv)->root_pid) {
		pr_err("image inventory.img: unsupported content (page size %u, %zu processes)",
		       (*inv)->page_size, (*inv)->n_pids);
		return -EINVAL;
	}
	if ((err = check_inventory_pids(*inv)))
		return err;
	uname(&u);
	if (strcmp(u.release, (*inv)->kernel_release))
		pr_warn("images were made on kernel %s, this is %s", (*inv)->kernel_release,
			u.release);
	return 0;
}

/* A pid number also stays taken while it is the session or group id of a running process
 * (when it cannot be told, clone3 will). */
static int check_ids_unused(const Inventory *inv)
{
	auto_free int *ids = xmalloc((inv->n_tree + 1) * sizeof(*ids));
	pid_t holder;
	int id;
	bool session;

	if (!ids)
		return -ENOMEM;
	for (size_t k = 0; k < inv->n_tree; k++)
		ids[k] = (int)inv->tree[k]->pid;
	proc_sort_numbers(ids, inv->n_tree);
	if (!proc_find_id_holder(ids, inv->n_tree, &holder, &id, &session))
		return 0;
	pr_err("restore pid %d: that pid is still the %s id of running process %d; nothing was started", id,
	       session ? "session" : "group", holder);
	return -EEXIST;
}

/*
 * Every pid of the tree must be free. A pid still held by a zombie of the dumped tree frees
 * up once its parent (or init, for killed trees) reaps it: wait for that, up to 5 s in all.
 */
static int check_pids_free(const Inventory *inv)
{
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + 5000000000ull;

	for (size_t i = 0; i < inv->n_tree; i++) {
		pid_t pid = inv->tree[i]->pid;
		char path[32];
		struct proc_stat st;
		int err = 0;

		snprintf(path, sizeof(path), "/proc/%d", pid);
		while (access(path, F_OK) == 0 && now_ns(CLOCK_MONOTONIC) < deadline &&
		       (err = proc_read_stat(pid, &st)) == 0 && st.state == 'Z')
			usleep(10000);
		if (err == -ENOMEM)
			return err;
		if (access(path, F_OK) == 0) {
			pr_err("restore pid %d: that pid is taken by a running process%s; nothing was "
			       "started",
			       pid, pid == getpid() ? " (this stasis itself: run it again, it gets another pid)" : "");
			return -EEXIST;
		}
	}
	return check_ids_unused(inv);
}

static void raise_nofile_limit(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &r))
			pr_warn("cannot raise the open files limit: %m");
	}
}

static void write_pidfile(const struct run_ctx *ctx, pid_t pid)
{
	const char *path = ctx->opts->pidfile;
	char text[16];
	int fd, len;

	if (!path)
		return;
	/* like criu: a relative pidfile lives in the work directory */
	fd = safe_file_create(ctx->work_dir_fd, path, O_WRONLY);
	len = snprintf(text, sizeof(text), "%d", pid);
	if (fd < 0)
		pr_err("cannot write pidfile %s: %s", path, safe_file_strerror(fd));
	else if (write_all(fd, text, len))
		pr_perror("cannot write pidfile %s", path);
	if (fd >= 0)
		close(fd);
}

/* Before anything is made: a pidfile that could not be written safely is said at once. */
static int check_pidfile(const struct run_ctx *ctx)
{
	const char *path = ctx->opts->pidfile;
	int err = path ? safe_file_not_link(ctx->work_dir_fd, path) : 0;

	if (err)
		pr_err("pidfile %s: %s; nothing was started", path, safe_file_strerror(err));
	return err;
}

/* The root's parent (and so its threads') was outside the tree: their signals are not set. */
static void warn_root_pdeath_signals(const struct restore_task *t)
{
	const TaskCore *c = t->core;

	if (c->pdeath_signal)
		pr_warn("restore pid %d: its parent-death signal %u is not restored (its parent "
			"was outside the tree)",
			t->pid, c->pdeath_signal);
	for (size_t i = 0; i < c->n_threads; i++)
		if (c->threads[i]->pdeath_signal)
			pr_warn("restore pid %d: the parent-death signal %u of its thread %u is not "
				"restored (its parent was outside the tree)",
				t->pid, c->threads[i]->pdeath_signal, c->threads[i]->tid);
}

static int read_tree_images(struct run_ctx *ctx, struct restore_tree *rt)
{
	int err;

	rt->nr_tasks = rt->inv->n_pids;
	if (!(rt->tasks = xzalloc(rt->nr_tasks * sizeof(*rt->tasks))))
		return -ENOMEM;
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		struct restore_task *t = &rt->tasks[i];
		t->ctx = ctx;
		t->dirfd = ctx->images_dir_fd;
		t->pages_fd = t->exe_fd = t->fds_done_fd = -1;
		t->sharers_low = INT_MAX;
		t->pid = rt->inv->pids[i];
		t->is_root = i == 0;
		t->tree = rt->tasks;
		t->tree_size = rt->nr_tasks;
	}
	/* (each checked against the tree's pids as it is read) */
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		struct restore_task *t = &rt->tasks[i];
		if ((err = read_task_images(t)))
			return err;
		if (t->is_root)
			warn_root_pdeath_signals(t);
	}
	for (size_t i = 0; i < rt->nr_tasks; i++)
		if ((err = pages_check_references(&rt->tasks[i])))
			return err;
	return pstree_validate(rt);
}

static int make_pipes(struct restore_tree *rt, int status[2])
{
	if (!(rt->ctl_fds = xzalloc(rt->nr_tasks * sizeof(int))) ||
	    !(rt->ctl_peer_fds = xzalloc(rt->nr_tasks * sizeof(int))))
		return -ENOMEM;
	if (pipe2(status, O_CLOEXEC)) {
		pr_perror("restore: pipe");
		return -errno;
	}
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		int ctl[2];
		if (pipe2(ctl, O_CLOEXEC)) {
			pr_perror("restore: pipe");
			return -errno;
		}
		rt->ctl_fds[i] = ctl[0];
		rt->ctl_peer_fds[i] = ctl[1];
	}
	rt->status_fd = status[1];
	return 0;
}

#define KILLED_TREE_WAIT_MS 10000

/*
 * The threads stasis traces (seccomp suspended, or caught for their finish steps) are stasis's
 * to reap once killed, and their process is not reaped (nor, in a PID namespace of its own, its
 * dying init done) before: waiting for the root alone would wait for ever. The root and every
 * thread of the tree, all at once: each process's threads as /proc lists them (a zombie thread
 * not reaped is listed), or as saved (the host's PID namespace); -ENOMEM: the root alone.
 */
static int reap_killed_tree(struct restore_tree *rt, pid_t root)
{
	size_t n = 1, cap = 1;
	auto_free pid_t *tids = NULL;

	for (size_t i = 0; i < rt->nr_tasks; i++)
		cap += 1 + rt->tasks[i].core->n_threads;
	if (!(tids = xmalloc(cap * sizeof(*tids))))
		return -ENOMEM;
	tids[0] = rt->ctx->opts->restore_sibling ? 0 : root; /* a sibling is its parent's to reap */
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const struct restore_task *t = &rt->tasks[i];
		pid_t pid = rt->inv->pid_ns ? t->host_pid : t->pid;
		auto_free int *listed = NULL;
		size_t nr_listed = 0;
		if (pid <= 0)
			continue;
		if (pid != root)
			tids[n++] = pid;
		if (proc_list_numbers(pid, "task", &listed, &nr_listed))
			nr_listed = 0;
		for (size_t k = 0; k < nr_listed && n < cap; k++)
			if (listed[k] != pid)
				tids[n++] = listed[k];
		for (size_t k = 0; !rt->inv->pid_ns && !nr_listed && k < t->core->n_threads && n < cap; k++)
			tids[n++] = t->core->threads[k]->tid;
	}
	return tasks_wait_gone(tids, n, KILLED_TREE_WAIT_MS);
}

static void kill_tree(struct restore_tree *rt, pid_t root)
{
	int wstatus;

	/* The root first: in a PID namespace of its own, its death takes every process there.
	 * In the host's, every pid of the tree was free when we started: whatever holds one now
	 * is ours. In the engine's, every process below the root (and the root) is ours. */
	pid_ns_kill_engines_tree(rt->ctx, root);
	kill(root, SIGKILL);
	if (!rt->inv->pid_ns)
		for (size_t i = 0; i < rt->nr_tasks; i++)
			kill(rt->tasks[i].pid, SIGKILL);
	if (reap_killed_tree(rt, root) == -ENOMEM && !rt->ctx->opts->restore_sibling)
		waitpid(root, &wstatus, __WALL);
}

/* Each tree-wide kind, in the registry's order: its images checked, then its objects made. */
static int validate_objects(struct run_ctx *ctx, struct restore_tree *rt)
{
	int err;

	for (unsigned i = 0; i < tree_objects_len; i++) {
		unsigned logged = log_errors();
		if (tree_objects[i]->validate && (err = tree_objects[i]->validate(ctx, rt)))
			return log_unnamed(logged, err, "restore: %s", tree_objects[i]->name);
	}
	return 0;
}

static void undo_objects(struct run_ctx *ctx, unsigned upto, bool restored)
{
	for (unsigned i = upto; i-- > 0;)
		if (tree_objects[i]->undo)
			tree_objects[i]->undo(ctx, restored);
}

static int prepare_objects(struct run_ctx *ctx, struct restore_tree *rt)
{
	int err;

	for (unsigned i = 0; i < tree_objects_len; i++) {
		unsigned logged = log_errors();
		if (tree_objects[i]->prepare && (err = tree_objects[i]->prepare(ctx, rt))) {
			log_unnamed(logged, err, "restore: %s", tree_objects[i]->name);
			undo_objects(ctx, i + 1, false);
			return err;
		}
	}
	return 0;
}

/* Once the tree's mounts exist, still before anything starts: every task's files are there. */
static int check_tasks(struct restore_tree *rt)
{
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++)
		for (unsigned k = 0; k < state_table_len; k++)
			if (state_table[k]->check && (err = state_table[k]->check(&rt->tasks[i])))
				return err;
	return 0;
}

static void close_objects(struct run_ctx *ctx)
{
	for (unsigned i = 0; i < tree_objects_len; i++)
		if (tree_objects[i]->close)
			tree_objects[i]->close(ctx);
}

/* The root: stasis's child, or with --restore-sibling its sibling (the caller's child). */
static pid_t create_root(struct restore_tree *rt)
{
	uint64_t flags = rt->clone_flags | (rt->ctx->opts->restore_sibling ? CLONE_PARENT : 0);
	const Creds *creds = rt->tasks[0].core->creds;
	bool in_userns = ns_make_tree_userns(rt->ctx);
	pid_t root;

	fflush(NULL);
	/* its parent as it will see it, to know whether that one died before it could say (in a
	 * PID namespace its parent is not in: none) */
	rt->root_parent = (flags & CLONE_NEWPID) || pid_ns_is_engines(rt->ctx) ? 0
			  : rt->ctx->opts->restore_sibling ? getppid() : getpid();
	int err = pid_ns_enter_engines(rt->ctx);
	if (err)
		return err;
	/* in a user namespace of the tree's own, it is born there (pid 1 of a PID namespace it owns) */
	root = in_userns ? ns_make_clone_root(rt->ctx, flags, creds ? creds->groups : NULL, creds ? creds->n_groups : 0)
			 : clone_with_pid(&rt->inv->root_pid, 1, flags, SIGCHLD, -1);
	if (root) {
		int clone_errno = errno; /* (said below) */
		pid_ns_leave_engines(rt->ctx);
		errno = clone_errno;
	}
	if (root < 0 && in_userns)
		return root; /* (said) */
	if (root < 0) {
		if (errno == EEXIST)
			pr_err("restore pid %d: that pid is taken (by a process, or as the session or group "
			       "id of a process still running); nothing was started",
			       rt->inv->root_pid);
		else
			pr_perror("restore pid %d: clone3 with set_tid failed", rt->inv->root_pid);
		return -errno;
	}
	if (root == 0)
		restore_process(rt, &rt->tasks[0]);
	rt->tasks[0].host_pid = root;
	return root;
}

/* Every image read and checked, nothing made: the restore's first step. */
static int read_and_validate(struct run_ctx *ctx, struct restore_tree *rt)
{
	int err;

	if ((err = join_ns_check(ctx->opts)) || (err = read_inventory(ctx->images_dir_fd, &rt->inv)) ||
	    (err = read_tree_images(ctx, rt)) || (err = validate_objects(ctx, rt)))
		return err;
	return 0;
}

/* What the restore read (the kinds' own states go with the run context). */
static void free_tree(struct restore_tree *rt)
{
	for (size_t i = 0; rt->tasks && i < rt->nr_tasks; i++) {
		struct restore_task *t = &rt->tasks[i];
		image_free(t->core ? &t->core->base : NULL);
		image_free(t->mm ? &t->mm->base : NULL);
		image_free(t->pagemap ? &t->pagemap->base : NULL);
		image_free(t->fds ? &t->fds->base : NULL);
		if (t->pages_fd >= 0)
			close(t->pages_fd);
		pages_sources_free(t);
		free(t->host_tids);
	}
	for (size_t i = 0; rt->ctl_peer_fds && i < rt->nr_tasks; i++)
		close(rt->ctl_peer_fds[i]);
	free(rt->ctl_fds);
	free(rt->ctl_peer_fds);
	free(rt->tasks);
	free(rt->plan);
	if (rt->lift_done)
		munmap(rt->lift_done, rt->inv ? 2 * rt->inv->n_tree : 0);
	image_free(rt->inv ? &rt->inv->base : NULL);
	*rt = (struct restore_tree){ .ctx = rt->ctx };
}

static int restore(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct restore_watchdog wd = { .pid = -1, .sock = -1 };
	uint64_t start = now_ns(CLOCK_MONOTONIC), pages = 0;
	int status[2], err, wstatus;
	pid_t root;

	pr_debug("restore: start");
	if ((err = kernel_refuse_missing(ctx, KF_NEEDED_BY_RESTORE)) ||
	    (err = check_pidfile(ctx)) ||
	    (!ctx->opts->allow_untrusted_images &&
	     (err = image_dir_check_owner(ctx->images_dir_fd, ctx->opts->images_dir ? ctx->opts->images_dir : "."))) ||
	    (err = run_states_make(ctx, tree_objects, tree_objects_len)) ||
	    (err = run_notify(ctx, "pre-restore", 0, -1)) || (err = read_and_validate(ctx, rt)))
		return err;
	/* Waiting for the dumped tree's zombies to be reaped is not restore work: timed apart.
	 * Checked before anything is made (a listener bound again would take over its name). */
	uint64_t wait_start = now_ns(CLOCK_MONOTONIC);
	if (!rt->inv->pid_ns && (err = check_pids_free(rt->inv))) /* a new namespace's are free */
		return err;
	uint64_t pid_wait = now_ns(CLOCK_MONOTONIC) - wait_start;
	/* from here on, the death of stasis takes what the restore made with it */
	rt->watchdog = &wd;
	if ((err = watchdog_start(&wd)))
		return err;
	if ((err = prepare_objects(ctx, rt))) {
		watchdog_done(&wd);
		return err;
	}
	if ((err = check_tasks(rt))) {
		undo_objects(ctx, tree_objects_len, false);
		watchdog_done(&wd);
		return err;
	}
	pr_debug("restore: images checked, pids free, shared objects made");
	run_fault_count(ctx, "restore-objects");
	raise_nofile_limit();
	uint64_t forking = now_ns(CLOCK_MONOTONIC);
	if ((err = make_pipes(rt, status)) || (root = create_root(rt)) < 0) {
		err = err ? err : root;
		undo_objects(ctx, tree_objects_len, false);
		watchdog_done(&wd);
		return err;
	}
	ctx->stats.forking_us = (now_ns(CLOCK_MONOTONIC) - forking) / 1000;
	close(status[1]);
	for (size_t i = 0; i < rt->nr_tasks; i++)
		close(rt->ctl_fds[i]);
	close_objects(ctx);
	run_fault_count(ctx, "restore-root");
	err = restore_collect_reports(rt, status[0]);
	pr_debug("restore pid %d: every restorer done", root);
	if (!err && !(err = restore_ready_tree(rt)) &&
	    !(err = run_notify(ctx, "post-restore", root, -1)) &&
	    !(err = net_lock_restore_over(ctx)) && !(err = run_notify(ctx, "network-unlock", root, -1)) &&
	    !(err = run_notify(ctx, "pre-resume", root, -1)) && !(err = restore_finish_tree(rt))) {
		/* what only the restore needed goes (unlinked queues' names) while the watchdog
		 * would still undo it; then every process goes on by itself, whatever happens to
		 * stasis */
		undo_objects(ctx, tree_objects_len, true);
		watchdog_done(&wd);
		run_fault_count(ctx, "restore-committed");
		err = restore_release_tree(rt);
	}
	if (err) {
		kill_tree(rt, root);
		undo_objects(ctx, tree_objects_len, false);
		watchdog_done(&wd);
		pr_err("restore pid %d failed; nothing from the images is running", root);
		return err;
	}
	ctx->restored_pid = root;
	write_pidfile(ctx, root);
	run_notify(ctx, "post-resume", root, -1);
	for (size_t i = 0; i < rt->nr_tasks; i++)
		pages += rt->tasks[i].pagemap->nr_pages;
	ctx->stats.restore_us = (now_ns(CLOCK_MONOTONIC) - start - pid_wait) / 1000;
	ctx->stats.pages_restored = pages;
	pr_info("restore stats: total_ms=%.1f pid_wait_ms=%.1f processes=%zu pages=%llu",
		ctx->stats.restore_us / 1e3, pid_wait / 1e6, rt->nr_tasks, (unsigned long long)pages);
	if (ctx->opts->restore_detached || ctx->opts->restore_sibling)
		return 0; /* (a sibling's exit is its parent's to wait for) */
	while (waitpid(root, &wstatus, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}

int cr_restore_check_images(struct run_ctx *ctx)
{
	struct restore_tree rt = { .ctx = ctx };
	int err = run_states_make(ctx, tree_objects, tree_objects_len);

	if (!err)
		err = read_and_validate(ctx, &rt);
	free_tree(&rt);
	return err;
}

int cr_restore(struct run_ctx *ctx)
{
	struct restore_tree rt = { .ctx = ctx };
	int err = restore(ctx, &rt);

	free_tree(&rt);
	return err;
}
