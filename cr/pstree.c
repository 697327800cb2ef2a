/*
 * The process tree. Dump: from the root, freeze each process and its threads, read the
 * children of every thread, and repeat until no process is missing; zombies are recorded
 * with their exit status. Restore: each process forks what cr/tree-plan.c says it forks (its
 * children, or its parent's through CLONE_PARENT) with their old pids (clone3 + set_tid),
 * before and after taking its session and process group; zombies and the helpers standing in
 * for exited session or group leaders are made the same way, then die.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "end-as.h"
#include "freezer.h"
#include "log.h"
#include "proc.h"
#include "pstree.h"
#include "regs.h"
#include "restorer/restorer.h"
#include "threads.h"
#include "tree-plan.h"
#include "files/files.h"
#include "util.h"

static TreeEntry *find_entry(TreeEntry **e, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (e[i]->pid == (uint32_t)pid)
			return e[i];
	return NULL;
}

static int add_entry(struct dump_tree *tr, pid_t pid, const struct proc_stat *st)
{
	TreeEntry *e = xzalloc(sizeof(*e)), **more;

	if (!e)
		return -ENOMEM;
	tree_entry__init(e);
	e->pid = pid;
	e->ppid = st->ppid;
	e->pgid = st->pgid;
	e->sid = st->sid;
	if (st->state != 'Z' && st->exit_signal != SIGCHLD) {
		e->has_exit_signal = true;
		e->exit_signal = st->exit_signal;
	}
	pid_t live = st->state == 'Z' ? proc_live_thread(pid) : 0;
	if (live < 0) {
		free(e);
		return live;
	}
	if (st->state == 'Z') {
		char path[64];
		auto_free char *comm = NULL;

		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		comm = read_file_at(AT_FDCWD, path, NULL);
		e->has_exit_status = true;
		e->exit_status = st->exit_code;
		if (live)
			e->has_leader_exited = e->leader_exited = true;
		else
			e->has_zombie = e->zombie = true;
		if ((!comm && errno == ENOMEM) || !(e->comm = xstrdup(comm))) {
			free(e);
			return -ENOMEM;
		}
		e->comm[strcspn(e->comm, "\n")] = 0;
	}
	if (!(more = xreallocarray(tr->entries, tr->nr_entries + 1, sizeof(*more)))) {
		free(e->comm);
		free(e);
		return -ENOMEM;
	}
	tr->entries = more;
	tr->entries[tr->nr_entries++] = e;
	return 0;
}

/* Children of every thread of t that the tree does not hold yet. */
static int add_children(struct dump_tree *tr, const struct dump_task *t, bool *found_new)
{
	for (size_t i = 0; i <= t->nr_threads; i++) {
		pid_t tid = i < t->nr_threads ? t->threads[i].tid : t->pid;
		char path[96];
		auto_free char *list = NULL;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", t->pid, tid);
		list = read_file_at(AT_FDCWD, path, NULL);
		if (!list && errno == ENOMEM)
			return -ENOMEM;
		for (char *p = list; p && *p;) {
			char *end;
			pid_t child = strtol(p, &end, 10);
			struct proc_stat st;
			int err;
			if (end == p)
				break;
			p = end;
			if (find_entry(tr->entries, tr->nr_entries, child))
				continue;
			if ((err = proc_read_stat(child, &st)) == -ENOMEM)
				return err;
			if (err)
				continue; /* gone already */
			if ((err = add_entry(tr, child, &st)))
				return err;
			*found_new = true;
		}
	}
	return 0;
}

/*
 * Entry i exited while we froze it: its parent is frozen, so it stays a zombie (returns 0);
 * if it is gone after all (its parent reaped it before being frozen), it leaves the tree
 * (returns 1). Negative: out of memory.
 */
static int became_zombie(struct dump_tree *tr, size_t i)
{
	struct proc_stat st;
	int err = proc_read_stat(tr->entries[i]->pid, &st);

	if (err == -ENOMEM)
		return err;
	pid_t live = !err && st.state == 'Z' ? proc_live_thread(tr->entries[i]->pid) : 0;
	if (live < 0)
		return live;
	TreeEntry *e = tr->entries[i];
	int left = 1;
	if (!err && st.state == 'Z' && !live) {
		if ((err = add_entry(tr, e->pid, &st)))
			return err;
		tr->entries[i] = tr->entries[--tr->nr_entries]; /* the new zombie entry takes its place */
		left = 0;
	} else {
		memmove(&tr->entries[i], &tr->entries[i + 1], (tr->nr_entries - i - 1) * sizeof(*tr->entries));
		tr->nr_entries--;
	}
	free(e->comm);
	free(e);
	return left;
}

static int seize_process(struct dump_tree *tr, TreeEntry *e, struct run_ctx *ctx)
{
	struct dump_task *t = xreallocarray(tr->tasks, tr->nr_tasks + 1, sizeof(*tr->tasks));
	int err;

	if (!t)
		return -ENOMEM;
	tr->tasks = t;
	t = &tr->tasks[tr->nr_tasks];
	memset(t, 0, sizeof(*t));
	t->pid = t->tgid = e->pid;
	t->ctx = ctx;
	t->dirfd = ctx->images_dir_fd;
	if (e->has_leader_exited && e->leader_exited) {
		/* its main thread has exited: one of its live threads stands for it */
		pid_t live = proc_live_thread(e->pid);
		if (live <= 0)
			return live ? live : -ESRCH;
		t->pid = live;
		pr_debug("dump pid %d: its main thread has exited; thread %d stands for it", e->pid, live);
	}
	if ((err = task_seize(t->pid, &t->stop_sig, ctx->opts->timeout)))
		return err;
	tr->nr_tasks++;
	if (!(t->threads = xzalloc(RST_MAX_THREADS * sizeof(*t->threads))))
		return -ENOMEM;
	if (t->pid != t->tgid) { /* the thread standing for it is one of its threads too */
		struct frozen_thread *ft = &t->threads[t->nr_threads++];
		ft->tid = t->pid;
		if (ptrace(PTRACE_GETREGS, ft->tid, 0, &ft->regs)) {
			pr_perror("dump tid %d: cannot read registers", ft->tid);
			return -errno;
		}
	}
	return threads_seize(t);
}

/*
 * A session or process group whose leader has exited lives on in its members. For each such
 * session, then group, an entry stands for the leader, placed before the first member, under
 * that member's parent (restore forks it there, as a helper that leads it for a moment).
 */
static int add_helper(struct dump_tree *tr, size_t i, uint32_t id)
{
	TreeEntry *m = tr->entries[i], *h, **more;

	if (!(h = xzalloc(sizeof(*h))))
		return -ENOMEM;
	tree_entry__init(h);
	h->pid = h->pgid = id;
	h->ppid = m->ppid;
	h->sid = m->sid;
	h->has_group_helper = true;
	h->group_helper = true;
	if (!(more = xreallocarray(tr->entries, tr->nr_entries + 1, sizeof(*more)))) {
		free(h);
		return -ENOMEM;
	}
	tr->entries = more;
	memmove(&tr->entries[i + 1], &tr->entries[i], (tr->nr_entries - i) * sizeof(*tr->entries));
	tr->entries[i] = h;
	tr->nr_entries++;
	pr_debug("dump: %s %u has lost its leader; its members are restored in it",
		 h->sid == id ? "session" : "group", id);
	return 0;
}

static int add_group_helpers(struct dump_tree *tr)
{
	/* the root's own session and group: restore puts the root in the caller's */
	uint32_t root_ids[2] = { tr->entries[0]->sid, tr->entries[0]->pgid };

	for (size_t i = 1; i < tr->nr_entries; i++) {
		TreeEntry *m = tr->entries[i];
		uint32_t ids[2] = { m->sid, m->pgid };
		char path[32];
		int err;

		for (size_t k = 0; k < 2 && !m->group_helper; k++) {
			if (ids[k] == m->pid || find_entry(tr->entries, tr->nr_entries, ids[k]))
				continue;
			/* the root's, led from outside the tree (gone, a zombie or alive): the members
			 * are restored in the root's, whatever its leader's fate (a daemon's children) */
			if (ids[k] == root_ids[k])
				continue;
			snprintf(path, sizeof(path), "/proc/%u", ids[k]);
			if (access(path, F_OK) == 0) {
				if (k == 1)
					continue; /* its leader lives outside: see join_own_group() */
				pr_err("dump pid %u: its session %u is led by process %u outside the tree; a "
				       "restore could not make it again (dump the tree from that leader)",
				       m->pid, ids[k], ids[k]);
				return -EINVAL;
			}
			if ((err = add_helper(tr, i++, ids[k])))
				return err;
		}
	}
	return 0;
}

/* --freeze-cgroup: the threads the freezer caught that are not the tree's go on (a paused
 * cgroup's are held until pstree_release has frozen it again). */
static void freezer_done(struct dump_tree *tr, struct freezer_catch *caught)
{
	for (size_t i = 0; i < tr->nr_tasks; i++) {
		freezer_claim(caught, tr->tasks[i].pid);
		for (size_t k = 0; k < tr->tasks[i].nr_threads; k++)
			freezer_claim(caught, tr->tasks[i].threads[k].tid);
	}
	if (!caught->was_frozen) {
		freezer_release_unclaimed(caught);
		return;
	}
	freezer_hold_unclaimed(caught);
	tr->paused = *caught;
	*caught = (struct freezer_catch){ 0 };
}

int pstree_seize(struct dump_tree *tr, pid_t root, struct run_ctx *ctx)
{
	struct freezer_catch caught = { 0 };
	struct proc_stat st;
	bool found_new = true;
	int err;

	*tr = (struct dump_tree){ .inv = INVENTORY__INIT };
	if ((err = proc_read_stat(root, &st))) {
		if (err == -ESRCH)
			pr_err("dump pid %d: no such process", root);
		return err;
	}
	if (st.state == 'Z' && (err = proc_live_thread(root)) <= 0) {
		if (err == 0)
			pr_err("dump pid %d: is a zombie, nothing to dump", root);
		return err ? err : -ESRCH;
	}
	if ((err = add_entry(tr, root, &st)))
		return err;
	if (ctx->opts->freeze_cgroup &&
	    (err = freezer_catch_tree(ctx->opts->freeze_cgroup, ctx->opts->timeout, root, &caught)))
		return err;
	if (caught.was_frozen) { /* frozen again by pstree_release, however the dump ends */
		tr->refreeze_cgroup = ctx->opts->freeze_cgroup;
		tr->freeze_timeout_s = ctx->opts->timeout;
	}
	/* Frozen processes fork no more: once a pass finds nobody new, the tree is closed. */
	while (found_new) {
		found_new = false;
		for (size_t i = 0; i < tr->nr_entries && !err; i++) {
			TreeEntry *e = tr->entries[i];
			bool seized = false;
			for (size_t k = 0; k < tr->nr_tasks; k++)
				seized |= tr->tasks[k].tgid == (pid_t)e->pid;
			if (e->zombie || seized)
				continue;
			err = seize_process(tr, e, ctx);
			if (err == -ESRCH && i == 0)
				pr_err("dump pid %d: exited while being frozen", root);
			if (err == -ESRCH && i > 0 && (err = became_zombie(tr, i)) > 0) {
				err = 0;
				i--; /* entry i is gone: the next one moved into its place */
			}
		}
		for (size_t k = 0; k < tr->nr_tasks && !err; k++)
			err = add_children(tr, &tr->tasks[k], &found_new);
		if (err) {
			freezer_done(tr, &caught);
			pstree_release(tr);
			return err;
		}
	}
	freezer_done(tr, &caught);
	size_t n = 0;
	for (size_t i = 0; i < tr->nr_tasks; i++)
		n += 1 + tr->tasks[i].nr_threads;
	if (!(tr->kill_tids = xzalloc(n * sizeof(pid_t))) ||
	    !(tr->kill_pidfds = xzalloc(tr->nr_tasks * sizeof(int))) || (err = add_group_helpers(tr))) {
		pstree_release(tr);
		return err ? err : -ENOMEM;
	}
	pr_debug("dump pid %d: froze %zu processes (%zu in the tree)", root, tr->nr_tasks,
		 tr->nr_entries);
	return 0;
}

/* The process of the tree that thread tid belongs to, or NULL. */
static const struct dump_task *task_of_thread(const struct dump_tree *tr, pid_t tid)
{
	for (size_t i = 0; i < tr->nr_tasks; i++) {
		const struct dump_task *t = &tr->tasks[i];
		if (t->pid == tid)
			return t;
		for (size_t k = 0; k < t->nr_threads; k++)
			if (t->threads[k].tid == tid)
				return t;
	}
	return NULL;
}

int pstree_refuse_tracers(const struct dump_tree *tr)
{
	auto_free int *pids = NULL;
	size_t n = 0;
	int err = proc_list_pids(&pids, &n) == -ENOMEM ? -ENOMEM : 0;

	for (size_t i = 0; !err && i < n; i++) {
		pid_t pid = pids[i];
		uint64_t tracer = 0;
		const struct dump_task *t;
		if (proc_status_field(pid, "TracerPid", 10, &tracer) == -ENOMEM)
			err = -ENOMEM;
		if (err || !tracer || !(t = task_of_thread(tr, (pid_t)tracer)))
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		auto_free char *comm = read_file_at(AT_FDCWD, path, NULL);
		if (!comm && errno == ENOMEM) {
			err = -ENOMEM;
			continue;
		}
		if (comm)
			comm[strcspn(comm, "\n")] = 0;
		pr_err("dump pid %d: it traces (ptrace, thread %llu) pid %d (%s), outside the tree: the "
		       "dump would end that tracing (not supported)", t->pid, (unsigned long long)tracer,
		       pid, comm ? comm : "?");
		err = -ENOTSUP;
	}
	return err;
}

/* A cgroup frozen before the dump: frozen again, then its threads not the tree's let go. */
static void refreeze_paused(struct dump_tree *tr)
{
	if (tr->refreeze_cgroup)
		freezer_refreeze_caught(tr->refreeze_cgroup, tr->freeze_timeout_s, &tr->paused);
	tr->refreeze_cgroup = NULL;
}

void pstree_release(struct dump_tree *tr)
{
	for (size_t i = 0; i < tr->nr_tasks; i++) {
		struct dump_task *t = &tr->tasks[i];
		threads_undo_freeze_eintr(t);
		if (t->regs.rip)
			regs_undo_freeze_eintr(t->pid, &t->regs);
	}
	/*
	 * A cgroup frozen before the dump (a paused container) is frozen again while its threads
	 * are still held by ptrace: the freezer takes them where they stop, and not one instruction
	 * of theirs runs between the detach and the freeze.
	 */
	refreeze_paused(tr);
	for (size_t i = 0; i < tr->nr_tasks; i++) {
		threads_release(&tr->tasks[i]);
		task_release(tr->tasks[i].pid, tr->tasks[i].stop_sig);
	}
	free(tr->kill_tids);
	free(tr->kill_pidfds);
	tr->kill_tids = NULL;
	tr->kill_pidfds = NULL;
}

#define KILL_WAIT_MS 10000

int pstree_die_with_stasis(struct dump_tree *tr)
{
	for (size_t i = 0; i < tr->nr_tasks; i++) {
		const struct dump_task *t = &tr->tasks[i];
		for (size_t k = 0; k <= t->nr_threads; k++) {
			pid_t tid = k < t->nr_threads ? t->threads[k].tid : t->pid;
			if (ptrace(PTRACE_SETOPTIONS, tid, 0, (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL))) {
				int err = -errno;
				pr_perror("dump pid %d: cannot have its tid %d die with stasis", t->tgid, tid);
				return err;
			}
		}
	}
	return 0;
}

static int kill_process(struct dump_tree *tr, size_t i)
{
	pid_t pid = tr->tasks[i].tgid;
	/* (a traced process is not reaped before its tracer lets go: the pid is still its) */
	int pidfd = tr->kill_pidfds[i] = syscall(SYS_pidfd_open, pid, 0);

	if (pidfd >= 0 ? syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) : kill(pid, SIGKILL)) {
		pr_perror("dump pid %d: cannot kill after dump", pid);
		return -errno;
	}
	return 0;
}

static void release_memory(struct dump_tree *tr, size_t i)
{
	int pidfd = tr->kill_pidfds[i];

	if (pidfd < 0)
		return;
	if (syscall(SYS_process_mrelease, pidfd, 0) && errno != ESRCH && errno != EINVAL)
		pr_debug("dump pid %d: process_mrelease: %m", tr->tasks[i].pid);
	close(pidfd);
	tr->kill_pidfds[i] = -1;
}

/* Its main thread and every other thread (as tracer we see each die). */
static size_t add_tids(const struct dump_task *t, pid_t *tids, size_t n)
{
	tids[n++] = t->pid;
	for (size_t k = 0; k < t->nr_threads; k++)
		if (t->threads[k].tid != t->pid)
			tids[n++] = t->threads[k].tid;
	return n;
}

int pstree_kill_one(struct dump_tree *tr, size_t i)
{
	struct dump_task *t = &tr->tasks[i];
	int err = kill_process(tr, i);

	t->killed_alone = true;
	release_memory(tr, i);
	if (err)
		return err;
	return tasks_wait_gone(tr->kill_tids, add_tids(t, tr->kill_tids, 0), KILL_WAIT_MS);
}

int pstree_kill(struct dump_tree *tr)
{
	int err = 0;

	for (size_t i = 0; i < tr->nr_tasks; i++) {
		int failed = 0;
		if (!tr->tasks[i].killed_alone) /* (gone, its pid maybe reaped) */
			failed = kill_process(tr, i);
		else
			tr->kill_pidfds[i] = -1;
		err = err ? err : failed;
	}
	return err;
}

int pstree_wait_killed(struct dump_tree *tr)
{
	size_t n = 0;

	for (size_t i = 0; i < tr->nr_tasks; i++)
		release_memory(tr, i);
	/* As tracer of every thread we see each die (the parents reap the processes). */
	for (size_t i = 0; i < tr->nr_tasks; i++)
		if (!tr->tasks[i].killed_alone)
			n = add_tids(&tr->tasks[i], tr->kill_tids, n);
	int gone = tasks_wait_gone(tr->kill_tids, n, KILL_WAIT_MS);
	free(tr->kill_tids);
	free(tr->kill_pidfds);
	tr->kill_tids = NULL;
	tr->kill_pidfds = NULL;
	/* a paused cgroup's other threads: frozen again, as they were found, then let go */
	refreeze_paused(tr);
	return gone;
}

/* ---- restore ---- */

/* A sharer of an fd table is made by its parent with CLONE_FILES: its parent holds the table. */
static bool parent_holds_table(struct restore_tree *rt, const TreeEntry *e, const struct restore_task *t)
{
	const FdTable *tab = t->fds, *up;
	struct restore_task *parent = pstree_task(rt, e->ppid);

	if (!tab->has_table_of)
		return true;
	if (!parent || t->is_root)
		return false;
	up = parent->fds;
	return parent->pid == (pid_t)tab->table_of || (up->has_table_of && up->table_of == tab->table_of);
}

pid_t pstree_pid_seen_by(const Inventory *inv, const TreeEntry *e, uint32_t pid)
{
	size_t depth = e->n_nested_pids;
	const TreeEntry *other = depth ? find_entry(inv->tree, inv->n_tree, pid) : NULL;

	if (!depth)
		return pid;
	return other && other->n_nested_pids >= depth ? (pid_t)other->nested_pids[depth - 1] : 0;
}

/*
 * Is e in a PID namespace nested deeper than its group's leader's (which it cannot name: the
 * group is the one its parent forked it in)?
 */
static bool group_outside_ns(const Inventory *inv, const TreeEntry *e)
{
	if (!e->n_nested_pids || e->pgid == e->pid)
		return false;
	const TreeEntry *leader = find_entry(inv->tree, inv->n_tree, e->pgid);
	return !leader || leader->n_nested_pids < e->n_nested_pids;
}

/*
 * --shell-job: a root that led its process group in the caller's session (a shell's job) comes
 * back in the caller's group, with the members of its group: the group the shell put in the
 * terminal's foreground for the restore. In a group of its own it would be in the background,
 * stopped by SIGTTIN at its first read of the terminal.
 */
static void shell_job_group(struct restore_tree *rt)
{
	Inventory *inv = rt->inv;
	TreeEntry *root = inv->n_tree ? inv->tree[0] : NULL;
	pid_t caller_group = getpgid(0);

	if (!rt->ctx->opts->shell_job || !root || root->sid == root->pid || root->pgid != root->pid ||
	    inv->pid_ns || caller_group <= 0)
		return;
	pr_info("restore pid %u: a shell job: its group %u comes back as the caller's, %d",
		root->pid, root->pgid, caller_group);
	for (size_t i = 1; i < inv->n_tree; i++)
		if (inv->tree[i]->pgid == root->pid)
			inv->tree[i]->pgid = caller_group;
	root->pgid = caller_group;
}

/*
 * e's children_ns_of is a live child of e, the init of a PID namespace one level below e's, and
 * e has no other child in its own namespace (it is made by unshare before that child: every
 * child after it goes there).
 */
static bool children_ns_ok(const Inventory *inv, const TreeEntry *e)
{
	const TreeEntry *c = find_entry(inv->tree, inv->n_tree, e->children_ns_of);
	size_t depth = e->n_nested_pids ? e->n_nested_pids : 1;

	for (size_t i = 0; i < inv->n_tree; i++)
		if (inv->tree[i]->ppid == e->pid && inv->tree[i]->pid != e->pid &&
		    (inv->tree[i]->n_nested_pids ? inv->tree[i]->n_nested_pids : 1) == depth)
			return false;
	return c && c->ppid == e->pid && !c->zombie && !c->group_helper && c->n_nested_pids == depth + 1 &&
	       c->nested_pids[depth] == 1;
}

int pstree_validate(struct restore_tree *rt)
{
	Inventory *inv = rt->inv;

	for (size_t i = 0; i < inv->n_tree; i++) {
		TreeEntry *e = inv->tree[i];
		struct restore_task *t = pstree_task(rt, e->pid);
		bool has_images = t != NULL;
		bool live = !e->zombie && !e->group_helper;
		const TreeEntry *parent = i ? find_entry(inv->tree, i, e->ppid) : NULL;
		bool parent_known = i == 0 || parent;
		if (t && !parent_holds_table(rt, e, t)) {
			pr_err("image fds-%u.img: it shares the fd table of pid %u, which its parent pid %u "
			       "does not hold", e->pid, t->fds->table_of, e->ppid);
			return -EINVAL;
		}
		if (t && e->leader_exited) { /* (its threads go on without it: restore-finish.c) */
			t->leader_exited = true;
			t->leader_exit_code = WEXITSTATUS(e->exit_status);
		}
		if (e->pid < 1 || live != has_images || (e->zombie && e->group_helper) ||
		    (e->zombie && !wait_status_valid(e->exit_status)) ||
		    (e->leader_exited && (!t || !t->core->n_threads)) ||
		    (e->group_helper && (i == 0 || e->pgid != e->pid)) || !parent_known ||
		    (e->has_exit_signal && (!live || e->exit_signal > 64)) ||
		    find_entry(inv->tree, i, e->pid)) {
			pr_err("image inventory.img: tree entry %zu (pid %u) is invalid", i, e->pid);
			return -EINVAL;
		}
		if (e->has_children_ns_of && !children_ns_ok(inv, e)) {
			pr_err("image inventory.img: tree entry %zu (pid %u): its children's PID namespace is "
			       "said to be pid %u's, not a live child of it, the init of a namespace at the "
			       "next level, or it has a child in its own", i, e->pid, e->children_ns_of);
			return -EINVAL;
		}
		if (group_outside_ns(inv, e) && (!parent || parent->pgid != e->pgid)) {
			pr_err("restore pid %u: in a PID namespace nested in the tree's, it is in process "
			       "group %u, outside that namespace and not its parent's: it cannot be put "
			       "there again (not supported)", e->pid, e->pgid);
			return -ENOTSUP;
		}
	}
	shell_job_group(rt);
	return tree_plan_make(rt);
}

#define JOIN_WAIT_NS 5000000000ull
#define SETTLE_WAIT_NS 10000000000ull

/*
 * One pause of a polling wait: 200 us at first, twice as long each round up to 6.4 ms, so that
 * hundreds of processes waiting on each other leave the CPUs to the ones at work.
 */
static void poll_pause(unsigned *round)
{
	usleep(200u << (*round < 5 ? (*round)++ : 5));
}

/*
 * Joins process group pgid of its session. With wait, for up to 5 s while the group does not
 * exist yet: its leader (or a member) is made by another branch of the tree.
 */
/* pgid: as the caller sees it (in its PID namespace: pstree_pid_seen_by) */
static int join_group(uint32_t pgid, bool wait)
{
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + JOIN_WAIT_NS;
	unsigned round = 0;

	if (pgid == (uint32_t)getpgrp())
		return 0;
	while (setpgid(0, pgid)) {
		if (errno != EPERM || !wait || now_ns(CLOCK_MONOTONIC) >= deadline)
			return -errno;
		poll_pause(&round);
	}
	return 0;
}

/* Does some other process of the tree belong to group pid? */
static bool has_members(const Inventory *inv, uint32_t pid)
{
	for (size_t i = 0; i < inv->n_tree; i++)
		if (inv->tree[i]->pgid == pid && inv->tree[i]->pid != pid)
			return true;
	return false;
}

/*
 * Joins the group e (not the root) was in. One led from outside the tree: the root's is the one
 * the root is restored in (e's ancestor, there already); another is joined if it is in e's
 * session here (its leader still alive), else e takes the root's. Else as join_group().
 */
static int join_own_group(const Inventory *inv, const TreeEntry *e, bool wait)
{
	uint32_t root_pgid = inv->tree[0]->pgid;

	if (!e->pgid || find_entry(inv->tree, inv->n_tree, e->pgid))
		return e->pgid ? join_group(pstree_pid_seen_by(inv, e, e->pgid), wait) : 0;
	if (e->pgid != root_pgid) {
		if (join_group(e->pgid, false) == 0)
			return 0;
		pr_warn("restore pid %u: its process group %u, led by a process outside the tree, is not "
			"in its session here: it joins the root's", e->pid, e->pgid);
	}
	return join_group(getpgid(inv->tree[0]->pid), false);
}

static bool in_group(pid_t pid, pid_t pgid)
{
	return getpgid(pid) == pgid;
}

/*
 * Does every process forked by creator (0: none) exist, and has every member of group pgid
 * (0: none) joined it?
 */
static bool made_and_joined(const struct restore_tree *rt, uint32_t creator, uint32_t pgid)
{
	const Inventory *inv = rt->inv;

	for (size_t i = 0; i < inv->n_tree; i++) {
		const TreeEntry *m = inv->tree[i];
		bool made = creator && rt->plan[i].creator == creator && m->pid != creator;
		bool member = pgid && m->pgid == pgid && m->pid != pgid;
		if ((made && getpgid(m->pid) < 0) || (member && !in_group(m->pid, pgid)))
			return false;
	}
	return true;
}

/* Entry k's parent now: a helper's orphan to be is its forker's until it has come. */
static ssize_t parent_now(const struct restore_tree *rt, size_t k)
{
	const Inventory *inv = rt->inv;
	bool forker = rt->plan[k].lift && !__atomic_load_n(&rt->lift_came[k], __ATOMIC_ACQUIRE);

	return tree_entry_index(inv, forker ? rt->plan[k].creator : inv->tree[k]->ppid);
}

/*
 * May entry d (a helper or a zombie) die now? Its orphans go to the nearest subreaper above
 * it: going up from it as it is now, each one's parent must come before any other process
 * still waiting for orphans of its own (the subreapers of the restore).
 */
static bool may_die(const struct restore_tree *rt, size_t d)
{
	const Inventory *inv = rt->inv;

	for (size_t i = 0; rt->lift_done && i < inv->n_tree; i++) {
		const struct tree_plan_step *st = &rt->plan[i];
		ssize_t k = d;
		if (!st->lift || st->creator != inv->tree[d]->pid)
			continue;
		for (size_t n = 0;; n++) {
			if (n > inv->n_tree || k <= 0 || (k = parent_now(rt, k)) < 0)
				return false; /* its parent is not above it (yet) */
			if (inv->tree[k]->pid == inv->tree[i]->ppid)
				break;
			if (rt->plan[k].lift_target && !__atomic_load_n(&rt->lift_done[k], __ATOMIC_ACQUIRE))
				return false;
		}
	}
	return true;
}

/*
 * Have the orphans planned for parent self come to it (each one it has is marked so)? A child
 * of its own, even a zombie, is one waitid() knows.
 */
static pid_t orphan_missing(const struct restore_tree *rt, pid_t self)
{
	const Inventory *inv = rt->inv;
	pid_t missing = 0;

	for (size_t i = 0; i < inv->n_tree; i++) {
		siginfo_t si;
		if (!rt->plan[i].lift || inv->tree[i]->ppid != (uint32_t)self ||
		    __atomic_load_n(&rt->lift_came[i], __ATOMIC_ACQUIRE))
			continue;
		if (waitid(P_PID, inv->tree[i]->pid, &si,
			   WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT))
			missing = inv->tree[i]->pid;
		else
			__atomic_store_n(&rt->lift_came[i], 1, __ATOMIC_RELEASE);
	}
	return missing;
}

/* The zombies' exits queued SIGCHLD for us; the saved pending signals are queued later. */
static void drain_sigchld(void)
{
	sigset_t chld;
	struct timespec zero = { 0, 0 };

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	while (sigtimedwait(&chld, NULL, &zero) > 0)
		;
}

/*
 * A child with its pid at every PID-namespace level of the tree: a process of a namespace
 * nested in its parent's starts it (CLONE_NEWPID) as its init.
 */
static pid_t clone_child(const TreeEntry *parent, const TreeEntry *e, uint64_t flags)
{
	uint32_t levels[32];
	size_t n = e->n_nested_pids ? e->n_nested_pids : 1;
	size_t parent_n = parent->n_nested_pids ? parent->n_nested_pids : 1;
	int sig = e->has_exit_signal ? (int)e->exit_signal : SIGCHLD;

	if (e->has_exit_signal && (flags & CLONE_PARENT))
		pr_warn("restore pid %u: its exit signal %u is not given back: a sibling makes it, and "
			"its parent gets the sibling's", e->pid, e->exit_signal);
	if (!e->n_nested_pids)
		return clone_with_pid(&e->pid, 1, flags, sig, -1);
	for (size_t i = 0; i < n; i++) /* innermost first */
		levels[i] = e->nested_pids[n - 1 - i];
	/* the namespace its parent keeps for its children (unshare: it forks into it from now on) */
	if (parent->has_children_ns_of && parent->children_ns_of == e->pid) {
		if (unshare(CLONE_NEWPID)) {
			pr_perror("restore pid %u: cannot make a PID namespace for its children", parent->pid);
			return -1;
		}
		return clone_with_pid(levels, n, flags, sig, -1);
	}
	return clone_with_pid(levels, n, flags | (n > parent_n ? CLONE_NEWPID : 0), sig, -1);
}

typedef void (*run_child_fn)(struct restore_tree *, struct restore_task *);

static int make_children(struct restore_tree *rt, pid_t self, bool before_setsid, run_child_fn run);

static __attribute__((noreturn)) void stand_in_failed(const TreeEntry *e, int err)
{
	pr_err("restore pid %u: cannot take session %u and group %u again: %s", e->pid, e->sid,
	       e->pgid, strerror(-err));
	_exit(1);
}

/*
 * A process that is not one of the tree's (a helper: the exited leader of a session or group,
 * which members still use) or no more (a zombie): it takes its session and group, forks what
 * it forks for the tree, then a helper waits for its parent to kill it once its members are
 * in, a zombie dies as it did.
 */
static __attribute__((noreturn)) void run_stand_in(struct restore_tree *rt, const TreeEntry *e,
						   run_child_fn run)
{
	const struct tree_plan_step *step = &rt->plan[tree_entry_index(rt->inv, e->pid)];

	/* nor outlives its parent (a helper's orphan to be: its forker, who dies first) */
	if (!step->lift)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* (a helper's orphan to be may be its parent's already: its forker dies when it may) */
	pid_t ppid = getppid();
	if (ppid != pstree_pid_seen_by(rt->inv, e, step->lift ? step->creator : e->ppid) &&
	    !(step->lift && ppid == pstree_pid_seen_by(rt->inv, e, e->ppid))) {
		pr_debug("restore pid %u: the process that forked it is gone", e->pid);
		_exit(1);
	}
	int err = 0;
	bool join_late = false;
	if (e->sid == e->pid)
		err = setsid() < 0 ? -errno : 0;
	else if (e->pgid == e->pid)
		err = setpgid(0, 0) ? -errno : 0;
	/* (its group not there yet: maybe its leader is made by what it forks, its orphans') */
	else if ((err = join_own_group(rt->inv, e, false)) == -EPERM)
		join_late = true;
	if (err && !join_late)
		stand_in_failed(e, err);
	if (make_children(rt, e->pid, false, run))
		_exit(1);
	if (join_late && (err = join_own_group(rt->inv, e, true)))
		stand_in_failed(e, err);
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + SETTLE_WAIT_NS;
	unsigned round = 0;
	while (e->zombie && !may_die(rt, tree_entry_index(rt->inv, e->pid)) &&
	       now_ns(CLOCK_MONOTONIC) < deadline)
		poll_pause(&round);
	if (e->zombie) {
		if (e->comm)
			prctl(PR_SET_NAME, e->comm, 0, 0, 0);
		end_as(rt->ctx, e->exit_status);
	}
	for (;;)
		pause(); /* every signal is blocked: only SIGKILL ends this */
}

/*
 * A child sharing our fd table runs first, alone with it: it places its helper fds above every
 * open one, closes no fd it did not open (ours, stasis's), and once its restorer has closed its
 * helpers but its status fd, it writes that fd's number to `done`; only then do we go on
 * (the owner then restores the fds, closing leftovers below its sharers' lowest helper).
 */
static int wait_sharer(struct restore_task *self, struct restore_task *child, int done)
{
	int low;
	ssize_t n = read(done, &low, sizeof(low));

	close(done);
	if (n != sizeof(low)) {
		pr_err("restore pid %d: its child %d, sharing its fd table, did not get through its "
		       "restore", self->pid, child->pid);
		return -EIO;
	}
	if (low < self->sharers_low)
		self->sharers_low = low;
	return 0;
}

/*
 * Forks the processes self forks (before or after its setsid), in inventory order: group
 * leaders (or their helpers) come before members.
 */
static int make_children(struct restore_tree *rt, pid_t self, bool before_setsid, run_child_fn run)
{
	Inventory *inv = rt->inv;

	for (size_t i = 0; i < inv->n_tree; i++) {
		TreeEntry *e = inv->tree[i];
		const struct tree_plan_step *step = &rt->plan[i];
		if (step->creator != (uint32_t)self || e->pid == (uint32_t)self ||
		    step->before_setsid != before_setsid)
			continue;
		struct restore_task *ct = pstree_task(rt, e->pid), *holder = pstree_task(rt, self);
		bool share = ct && ct->fds_owner;
		int done[2] = { -1, -1 };
		if (share && (step->clone_parent || e->ppid != (uint32_t)self || !holder)) {
			pr_err("restore pid %u: it shares the fd table of its parent %u, but its session "
			       "has pid %d fork it; not supported", e->pid, e->ppid, self);
			return -ENOTSUP;
		}
		if (share && pipe2(done, O_CLOEXEC)) {
			pr_perror("restore pid %d: pipe", self);
			return -errno;
		}
		if (ct)
			ct->fds_done_fd = done[1]; /* (in the child's copy of our memory) */
		pid_t child = clone_child(find_entry(inv->tree, inv->n_tree, e->ppid), e,
					  (step->clone_parent ? CLONE_PARENT : 0) | (share ? CLONE_FILES : 0));
		if (child < 0) {
			pr_perror("restore pid %d: cannot create %s %u", self,
				  step->clone_parent ? "its sibling" : "its child", e->pid);
			return -errno;
		}
		if (child == 0) {
			if (e->zombie || e->group_helper)
				run_stand_in(rt, e, run);
			run(rt, ct);
		}
		int err;
		if (done[0] >= 0 && (err = wait_sharer(holder, ct, done[0])))
			return err;
	}
	return 0;
}

/*
 * Kills its helpers once they have done their work (and may die), takes its orphans as their
 * subreaper, then waits until its zombie children (maybe forked by a sibling) are dead.
 */
static int settle_children(struct restore_tree *rt, size_t me)
{
	Inventory *inv = rt->inv;
	pid_t self = inv->tree[me]->pid;
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + SETTLE_WAIT_NS;
	bool zombies = false, orphans_in = !rt->plan[me].lift_target;
	pid_t missing = 0;
	size_t left;
	unsigned round = 0;
	auto_free bool *ended = xzalloc(inv->n_tree * sizeof(*ended)); /* its helpers it killed */

	if (!ended)
		return -ENOMEM;
	do {
		left = 0;
		for (size_t i = 0; i < inv->n_tree; i++) {
			const TreeEntry *e = inv->tree[i];
			if (e->ppid != (uint32_t)self || !e->group_helper || ended[i])
				continue;
			zombies = true; /* (its death queues a SIGCHLD too) */
			/* (not there yet: a sibling of ours forks it, as our child, maybe later; or an
			 * orphan to be, which has not come up to us yet) */
			bool here = !rt->plan[i].lift || __atomic_load_n(&rt->lift_came[i], __ATOMIC_ACQUIRE);
			if (here && getpgid(e->pid) >= 0 && made_and_joined(rt, e->pid, e->pid) &&
			    may_die(rt, i)) {
				kill(e->pid, SIGKILL);
				waitpid(e->pid, NULL, 0);
				ended[i] = true;
			} else {
				left++;
			}
		}
		if (!orphans_in && !(missing = orphan_missing(rt, self))) {
			prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
			__atomic_store_n(&rt->lift_done[me], 1, __ATOMIC_RELEASE);
			orphans_in = true;
		}
		if (!left && orphans_in)
			break;
		poll_pause(&round);
	} while (now_ns(CLOCK_MONOTONIC) < deadline);
	if (left) {
		pr_err("restore pid %d: the helpers standing in for exited leaders did not finish in "
		       "time", self);
		return -ETIMEDOUT;
	}
	if (!orphans_in) {
		pr_err("restore pid %d: its orphan %d did not come to it in time", self, missing);
		return -ETIMEDOUT;
	}
	for (size_t i = 0; i < inv->n_tree; i++) {
		const TreeEntry *e = inv->tree[i];
		siginfo_t si;
		if (e->ppid != (uint32_t)self || !e->zombie)
			continue;
		zombies = true;
		si.si_pid = 0;
		round = 0;
		/* (ECHILD: its forker has not made it yet) */
		while (waitid(P_PID, e->pid, &si, WEXITED | WNOWAIT) && errno == ECHILD &&
		       now_ns(CLOCK_MONOTONIC) < deadline)
			poll_pause(&round);
		if (si.si_pid == (pid_t)e->pid && wait_status_from(&si) != (int32_t)e->exit_status)
			pr_warn("restore pid %u: it ended with wait status %#x, made again with %#x%s",
				e->pid, e->exit_status, wait_status_from(&si),
				(e->exit_status & CORE_DUMPED) ? " (it dumped core; core_pattern does not "
				"write cores where the one made again could)" : "");
	}
	if (zombies || rt->lift_done)
		drain_sigchld(); /* (of zombies, helpers and zombie orphans that came) */
	return 0;
}

int pstree_restore_links(struct restore_tree *rt, struct restore_task *self,
			 run_child_fn run_child)
{
	Inventory *inv = rt->inv;
	size_t my = tree_entry_index(inv, self->pid);
	TreeEntry *me = inv->tree[my];
	bool is_root = self == &rt->tasks[0], join_late = false;
	unsigned round = 0;
	/* it leads a group it is no longer in: the group is made for its members first */
	bool left_group = me->pgid != (uint32_t)self->pid && has_members(inv, self->pid);
	int err;

	/* (a subreaper until its orphans have come: the tree's own flag, cr/restore-finish.c) */
	if (rt->plan[my].lift_target && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) {
		pr_perror("restore pid %d: cannot take its orphans as their subreaper", self->pid);
		return -errno;
	}
	if ((err = make_children(rt, self->pid, true, run_child)))
		return err;
	if (me->sid == (uint32_t)self->pid) {
		if (setsid() < 0) {
			pr_perror("restore pid %d: cannot lead its session again", self->pid);
			return -errno;
		}
		if (self->core->has_ctty_pty && (err = pty_take_as_ctty(self->ctx, self->core->ctty_pty))) {
			pr_err("restore pid %d: cannot take /dev/pts/%u as its controlling terminal: %s",
			       self->pid, self->core->ctty_pty, strerror(-err));
			return err;
		}
	} else if (me->pgid == (uint32_t)self->pid || left_group) {
		if (setpgid(0, 0)) {
			pr_perror("restore pid %d: cannot lead its process group again", self->pid);
			return -errno;
		}
		join_late = left_group;
	} else if (group_outside_ns(inv, me)) {
		/* the group it was forked in, its parent's (checked at validation): it cannot name it */
	} else if (!is_root && me->pgid && !find_entry(inv->tree, inv->n_tree, me->pgid)) {
		if ((err = join_own_group(inv, me, false))) {
			pr_err("restore pid %d: cannot join process group %u or the root's: %s",
			       self->pid, me->pgid, strerror(-err));
			return err;
		}
	} else if (!is_root && me->pgid && (err = join_group(pstree_pid_seen_by(inv, me, me->pgid), false))) {
		if (err != -EPERM) {
			pr_err("restore pid %d: cannot join process group %u: %s", self->pid, me->pgid,
			       strerror(-err));
			return err;
		}
		join_late = true; /* its group is not there yet: made by another branch */
	}
	/* (A group or session id 0 was outside the tree's PID namespace: it takes its parent's.) */
	/* (The root outside its own group or session joins the restoring caller's.) */
	if ((err = make_children(rt, self->pid, false, run_child)))
		return err;
	for (uint64_t end = now_ns(CLOCK_MONOTONIC) + JOIN_WAIT_NS;
	     left_group && !made_and_joined(rt, 0, self->pid) && now_ns(CLOCK_MONOTONIC) < end;)
		poll_pause(&round);
	if (join_late && (err = join_group(pstree_pid_seen_by(inv, me, me->pgid), true))) {
		pr_err("restore pid %d: cannot join process group %u: %s", self->pid, me->pgid,
		       strerror(-err));
		return err;
	}
	if ((err = settle_children(rt, my)))
		return err;
	if (rt->plan[my].lift) {
		/* its forker has died: now its parent's, it dies with it as the others do */
		pid_t parent = pstree_pid_seen_by(inv, me, me->ppid);
		round = 0;
		for (uint64_t end = now_ns(CLOCK_MONOTONIC) + SETTLE_WAIT_NS;
		     getppid() != parent && now_ns(CLOCK_MONOTONIC) < end;)
			poll_pause(&round);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) {
			pr_err("restore pid %d: did not come to its parent %u as its orphan", self->pid,
			       me->ppid);
			return -ESRCH;
		}
	}
	if (me->sid == (uint32_t)self->pid && self->core->has_ctty_pty &&
	    (err = pty_set_foreground(self->ctx, self->core->ctty_pty))) {
		pr_err("restore pid %d: cannot give /dev/pts/%u its foreground group again: %s",
		       self->pid, self->core->ctty_pty, strerror(-err));
		return err;
	}
	return 0;
}
