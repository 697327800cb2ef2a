/*
 * The tree's PID namespace. A tree is either in stasis's own PID namespace (its pids are
 * restored as they were), or its root is pid 1 of a namespace of its own, as a container's
 * init is: then every pid in the images is the pid in that namespace, and the restore makes
 * a new namespace whose init is the root again (clone3 with CLONE_NEWPID and pid 1), the rest
 * of the tree getting its old pids inside it; what the host calls them does not matter.
 * PID namespaces nested in the tree's are kept too: their processes keep their pid at each
 * level. Stasis itself works on host pids: on restore, the host pid of each new process and
 * thread is found from /proc (NSpid), once it exists.
 *
 * A third case: the tree is in a PID namespace that is the engine's (a container of a pod that
 * shares its sandbox's: runc names it with --external pid[INODE]:KEY at dump and hands an fd of
 * it with --inherit-fd fd[N]:KEY at restore). Its pids are saved as seen there, as for a
 * namespace of the tree's own, but the root is not the namespace's init and the namespace is
 * not made: stasis's main thread makes the root in it (setns, then clone3 with the root's pid),
 * the rest of the tree forked there by the root. Other processes live there, so a failed
 * restore kills the tree's processes one by one.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "join-ns.h"
#include "log.h"
#include "ns-helper.h"
#include "pid-ns.h"
#include "tree.h"
#include "tree-objects.h"
#include "util.h"

struct pid_map {
	pid_t host;
	uint32_t vpid;
};

struct pid_ns_state {
	bool own;       /* the tree's pids are those of a PID namespace other than stasis's: its
			 * own (the root is pid 1 there), or the engine's (ext_key) */
	const char *ext_key; /* the engine's namespace: the key it is named by (--external pid) */
	int ext_fd;     /* restore: the engine's fd of it (--inherit-fd), not stasis's to close */
	int home;       /* restore: stasis's own, +1, while its children are made in the engine's */
	pid_t root;     /* dump: the root's host pid */
	size_t depth;   /* the NSpid index of the tree's namespace (0: stasis's own) */
	struct pid_map *map; /* dump: every process of the tree, zombies too */
	size_t n;
};

static struct pid_ns_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_pid_ns);
}

static int ns_ino(pid_t pid, const char *name, uint64_t *ino)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, name);
	if (stat(path, &st)) {
		pr_perror("dump pid %d: cannot read its %s namespace", pid, name);
		return -errno;
	}
	*ino = st.st_ino;
	return 0;
}

uint32_t pid_ns_vpid(const struct run_ctx *ctx, pid_t host)
{
	const struct pid_ns_state *st = state_of(ctx);

	if (!st->own)
		return host;
	for (size_t i = 0; i < st->n; i++)
		if (st->map[i].host == host)
			return st->map[i].vpid;
	return 0;
}

int pid_ns_vtid(const struct run_ctx *ctx, pid_t pid, pid_t tid, uint32_t *vtid)
{
	const struct pid_ns_state *st = state_of(ctx);
	auto_free uint32_t *nspid = NULL;
	size_t n;
	int err;

	*vtid = tid;
	if (!st->own)
		return 0;
	if ((err = proc_nspids(tid, &nspid, &n)))
		return err;
	if (n <= st->depth) {
		pr_err("dump pid %d thread %d: it is not in the tree's PID namespace", pid, tid);
		return -EINVAL;
	}
	*vtid = nspid[st->depth];
	return 0;
}

/* Whether host pid pid is one of the tree's processes, as of (a map, or a seized tree) knows. */
typedef bool pid_known_fn(const void *of, pid_t pid);

/* The first process of PID namespace pid:[tree_ns] that known does not know: its host pid, 0
 * when there is none (a process that exits meanwhile, or one stasis may not see, is none), or
 * -errno. */
static pid_t stranger_in(uint64_t tree_ns, pid_known_fn *known, const void *of)
{
	auto_free int *pids = NULL;
	size_t n;
	int err;

	if ((err = proc_list_pids(&pids, &n)))
		return err;
	for (size_t i = 0; i < n; i++) {
		char path[64];
		struct stat ps;
		if (known(of, pids[i]))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", pids[i]);
		if (!stat(path, &ps) && ps.st_ino == tree_ns)
			return pids[i];
	}
	return 0;
}

static bool in_map(const void *of, pid_t pid)
{
	const struct pid_ns_state *st = of;

	for (size_t k = 0; k < st->n; k++)
		if (st->map[k].host == pid)
			return true;
	return false;
}

static bool in_entries(const void *of, pid_t pid)
{
	const struct dump_tree *tr = of;

	for (size_t k = 0; k < tr->nr_entries; k++)
		if ((pid_t)tr->entries[k]->pid == pid)
			return true;
	return false;
}

pid_t pid_ns_stranger(const struct dump_tree *tr)
{
	auto_free uint32_t *nspid = NULL;
	pid_t root = tr->tasks[0].pid;
	uint64_t tree_ns;
	size_t n;

	if (proc_nspids(root, &nspid, &n) || n < 2 || nspid[n - 1] != 1 || ns_ino(root, "pid", &tree_ns))
		return 0;
	pid_t p = stranger_in(tree_ns, in_entries, tr);
	return p > 0 ? p : 0;
}

/* Every process in the tree's namespace (or one nested in it) must be in the tree. */
static int check_namespace_complete(const struct pid_ns_state *st, pid_t root)
{
	uint64_t tree_ns;
	pid_t p;
	int err;

	if ((err = ns_ino(root, "pid", &tree_ns)))
		return err;
	if ((p = stranger_in(tree_ns, in_map, st)) <= 0)
		return p;
	pr_err("dump pid %d: it is in the tree's PID namespace (pid:[%llu]) but not a descendant of its "
	       "init, pid %d (a process joined with setns, as `exec` into a container does, that did not "
	       "end while the tree ran on for a moment, or that a paused container holds); it would be "
	       "lost: not supported",
	       p, (unsigned long long)tree_ns, root);
	return -ENOTSUP;
}

static int add_mapping(struct pid_ns_state *st, pid_t host, uint32_t vpid)
{
	struct pid_map *more = xreallocarray(st->map, st->n + 1, sizeof(*st->map));

	if (!more)
		return -ENOMEM;
	st->map = more;
	st->map[st->n++] = (struct pid_map){ host, vpid };
	return 0;
}

/* A call of pid_ns_run_in_tree's, and its answer (in the buffer that follows). */
struct in_tree_call {
	int (*fn)(void *buf, size_t len);
	size_t len;
	int err;
	char buf[];
};

/* In a helper that joined the tree's PID namespace: fn in a child of it, a process there. */
static int call_in_ns(void *out, size_t len)
{
	struct in_tree_call *c = out;
	int p[2], status;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid_t child = fork();
	if (child == 0) {
		c->err = c->fn(c->buf, c->len);
		_exit(write_all(p[1], c, len) ? 1 : 0);
	}
	close(p[1]);
	ssize_t got = child > 0 ? read_all(p[0], c, len) : -1;
	close(p[0]);
	while (child > 0 && waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	return got == (ssize_t)len ? 0 : -EIO;
}

int pid_ns_run_in_tree(const struct run_ctx *ctx, int (*fn)(void *buf, size_t len), void *buf, size_t len)
{
	const struct pid_ns_state *st = state_of(ctx);
	size_t size = sizeof(struct in_tree_call) + len;
	auto_free struct in_tree_call *c = xzalloc(size);
	int err;

	if (!c)
		return -ENOMEM;
	*c = (struct in_tree_call){ fn, len, 0 };
	memcpy(c->buf, buf, len);
	if ((err = ns_helper_run(st->root, CLONE_NEWPID, call_in_ns, c, size)) || (err = c->err))
		return err;
	memcpy(buf, c->buf, len);
	return 0;
}

/* In a process of the tree's PID namespace (pid_ns_run_in_tree): each member's group there. */
#define ASK_SESSION (1u << 31) /* in an id asked for: the session of that pid, not its group */

static int groups_here(void *buf, size_t len)
{
	uint32_t *ids = buf;

	for (size_t i = 0; i < len / sizeof(*ids); i++) {
		pid_t pid = ids[i] & ~ASK_SESSION;
		pid_t id = ids[i] & ASK_SESSION ? getsid(pid) : getpgid(pid);
		ids[i] = id > 0 ? id : 0;
	}
	return 0;
}

/*
 * Sessions and groups whose leader has exited (pstree's helper entries, each before its first
 * member): their id in the namespace is that member's session or group as a process there
 * sees it.
 */
static int map_lost_leaders(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct pid_ns_state *st = state_of(ctx);
	size_t n = 0;
	int err;

	for (size_t i = 0; i + 1 < tr->nr_entries; i++)
		n += tr->entries[i]->group_helper;
	if (!n)
		return 0;
	auto_free uint32_t *ids = xzalloc(n * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	for (size_t i = 0, k = 0; i + 1 < tr->nr_entries; i++) {
		const TreeEntry *h = tr->entries[i], *m;
		size_t next = i + 1;
		if (!h->group_helper)
			continue;
		while (next + 1 < tr->nr_entries && tr->entries[next]->group_helper)
			next++; /* a session's helper, then its group's, then their member */
		m = tr->entries[next];
		ids[k++] = pid_ns_vpid(ctx, m->pid) | (h->pid == m->sid ? ASK_SESSION : 0);
	}
	if ((err = pid_ns_run_in_tree(ctx, groups_here, ids, n * sizeof(*ids))))
		return err;
	for (size_t i = 0, k = 0; i + 1 < tr->nr_entries; i++) {
		TreeEntry *e = tr->entries[i];
		if (!e->group_helper)
			continue;
		if (!ids[k]) {
			pr_err("dump: process group %u lost its leader; its id in the tree's PID namespace "
			       "cannot be read", e->pid);
			return -EIO;
		}
		if ((err = add_mapping(st, e->pid, ids[k++])))
			return err;
	}
	return 0;
}

/*
 * t made a PID namespace for its children (unshare) without going back to its own: one of its
 * children is in it (unshare --fork --pid), noted in t's entry (its host pid: made the
 * namespace's with the others). One that has no process yet is refused.
 */
static int children_ns_of(struct dump_tree *tr, const struct dump_task *t, uint64_t children_ns)
{
	TreeEntry *mine = NULL;
	uint64_t ns;

	for (size_t i = 0; i < tr->nr_entries; i++)
		if (tr->entries[i]->pid == (uint32_t)t->pid)
			mine = tr->entries[i];
	for (size_t i = 0; mine && i < tr->nr_entries; i++) {
		const TreeEntry *c = tr->entries[i];
		if (c->ppid != (uint32_t)t->pid || c->group_helper || ns_ino(c->pid, "pid", &ns) || ns != children_ns)
			continue;
		mine->has_children_ns_of = true;
		mine->children_ns_of = c->pid;
		return 0;
	}
	pr_err("dump pid %d: it made a PID namespace for its children (unshare) that has no process "
	       "yet; not supported", t->pid);
	return -ENOTSUP;
}

/* The frozen tree's pids in its namespace, and whether that namespace is the tree's own. */
static int collect_pid_ns(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct pid_ns_state *st = state_of(ctx);
	pid_t root = tr->tasks[0].pid;
	int err;

	for (size_t i = 0; i < tr->nr_entries; i++) {
		TreeEntry *e = tr->entries[i];
		auto_free uint32_t *nspid = NULL;
		size_t n;

		if (e->group_helper)
			continue; /* its id in the namespace: below, once its members' are known */
		if ((err = proc_nspids(e->pid, &nspid, &n))) {
			if (err == -ESRCH)
				pr_err("dump pid %d: cannot read its pids in its PID namespaces", e->pid);
			return err;
		}
		if (i == 0) {
			st->root = e->pid;
			st->depth = n - 1;
			st->own = n > 1;
			uint64_t ino;
			if (st->own && nspid[n - 1] != 1) {
				if ((err = ns_ino(root, "pid", &ino)))
					return err;
				if (!(st->ext_key = external_ns_key(ctx->opts, "pid", ino))) {
					pr_err("dump pid %d: it is pid %u of a PID namespace (pid:[%llu]) whose "
					       "init (pid 1 there) is not in the tree; dump the namespace's "
					       "init instead, or name the namespace as the engine's "
					       "(--external pid[%llu]:KEY)", root, nspid[n - 1],
					       (unsigned long long)ino, (unsigned long long)ino);
					return -ENOTSUP;
				}
			}
		}
		if (n <= st->depth) {
			pr_err("dump pid %u: it is outside the tree's PID namespace", e->pid);
			return -ENOTSUP;
		}
		if (n > st->depth + 1) { /* a namespace nested in the tree's */
			e->nested_pids = xzalloc((n - st->depth) * sizeof(uint32_t));
			if (!e->nested_pids)
				return -ENOMEM;
			memcpy(e->nested_pids, nspid + st->depth, (n - st->depth) * sizeof(uint32_t));
			e->n_nested_pids = n - st->depth;
		}
		if ((err = add_mapping(st, e->pid, nspid[st->depth])))
			return err;
	}
	if (st->own && (err = map_lost_leaders(ctx, tr)))
		return err;
	for (size_t i = 0; i < tr->nr_tasks; i++) {
		uint64_t pid_ns, children_ns;
		struct dump_task *t = &tr->tasks[i];
		if ((err = ns_ino(t->pid, "pid", &pid_ns)) ||
		    (err = ns_ino(t->pid, "pid_for_children", &children_ns)))
			return err;
		if (pid_ns != children_ns && (err = children_ns_of(tr, t, children_ns)))
			return err;
		t->vpid = pid_ns_vpid(ctx, t->tgid);
	}
	if (st->own && !st->ext_key && (err = check_namespace_complete(st, root)))
		return err;
	tr->inv.has_pid_ns = true;
	tr->inv.pid_ns = st->own;
	tr->inv.pid_ns_ext_key = (char *)st->ext_key;
	if (st->ext_key)
		pr_info("dump pid %d: pid %u of the engine's PID namespace (%s); %zu pids saved as seen "
			"there", root, pid_ns_vpid(ctx, root), st->ext_key, st->n);
	else if (st->own)
		pr_info("dump pid %d: the init of its own PID namespace; %zu pids saved as seen there",
			root, st->n);
	return 0;
}

/* Once nothing needs host pids any more: the tree entries in the namespace's pids. */
static int write_pid_ns(struct run_ctx *ctx, struct dump_tree *tr)
{
	const struct pid_ns_state *st = state_of(ctx);

	if (!st->own)
		return 0;
	for (size_t i = 0; i < tr->nr_entries; i++) {
		TreeEntry *e = tr->entries[i];
		/* ids of processes outside the namespace (the root's parent, the caller's session
		 * or group) are 0: the restored tree takes the caller's */
		e->pid = pid_ns_vpid(ctx, e->pid);
		e->ppid = i == 0 ? 0 : pid_ns_vpid(ctx, e->ppid);
		e->pgid = pid_ns_vpid(ctx, e->pgid);
		e->sid = pid_ns_vpid(ctx, e->sid);
		if (e->has_children_ns_of)
			e->children_ns_of = pid_ns_vpid(ctx, e->children_ns_of);
	}
	return 0;
}

/* ---- restore ---- */

bool pid_ns_is_own(const struct run_ctx *ctx)
{
	return state_of(ctx)->own;
}

/* The engine's namespace named at dump: the fd given for its key, a PID namespace that is a
 * child of stasis's (the host pids of the tree are found one level down). */
static int validate_engine_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct pid_ns_state *st = state_of(ctx);
	const char *key = rt->inv->pid_ns_ext_key;
	struct stat own, parent;

	st->ext_fd = -1;
	for (size_t i = 0; i < ctx->opts->nr_inherit_fds; i++)
		if (!strcmp(ctx->opts->inherit_fds[i].key, key))
			st->ext_fd = ctx->opts->inherit_fds[i].fd;
	if (st->ext_fd < 0) {
		pr_err("restore: the tree's PID namespace was the engine's (%s): pass --inherit-fd "
		       "fd[N]:%s with an fd of the namespace", key, key);
		return -EINVAL;
	}
	if (rt->inv->user_ns) {
		pr_err("restore: the tree's PID namespace was the engine's (%s) and its user namespace "
		       "its own: not supported", key);
		return -ENOTSUP;
	}
	int up = ioctl(st->ext_fd, NS_GET_PARENT);
	int err = ioctl(st->ext_fd, NS_GET_NSTYPE) != CLONE_NEWPID || up < 0 || fstat(up, &parent) ||
			  stat("/proc/self/ns/pid", &own) ? -EINVAL : 0;
	if (up >= 0)
		close(up);
	if (err || parent.st_ino != own.st_ino || parent.st_dev != own.st_dev) {
		pr_err("restore: --inherit-fd fd[%d]:%s: not a PID namespace, or not a child of stasis's "
		       "own (not supported)", st->ext_fd, key);
		return -EINVAL;
	}
	st->ext_key = key;
	return 0;
}

static int validate_pid_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct pid_ns_state *st = state_of(ctx);
	int err;

	st->own = rt->inv->has_pid_ns && rt->inv->pid_ns;
	if (st->own && rt->inv->pid_ns_ext_key && (err = validate_engine_ns(ctx, rt)))
		return err;
	if (st->own && !st->ext_key && rt->inv->root_pid != 1) {
		pr_err("image inventory.img: the tree has its own PID namespace, but its root is pid %u, "
		       "not 1", rt->inv->root_pid);
		return -EINVAL;
	}
	for (size_t i = 0; i < rt->inv->n_tree; i++) {
		const TreeEntry *e = rt->inv->tree[i];
		if (e->n_nested_pids && (e->n_nested_pids < 2 || e->n_nested_pids > 31 ||
					 e->nested_pids[0] != e->pid)) {
			pr_err("image inventory.img: pid %u has invalid pids in nested PID namespaces",
			       e->pid);
			return -EINVAL;
		}
	}
	if (st->own && !st->ext_key)
		rt->clone_flags |= CLONE_NEWPID;
	return 0;
}

bool pid_ns_is_engines(const struct run_ctx *ctx)
{
	return state_of(ctx)->ext_key;
}

int pid_ns_enter_engines(const struct run_ctx *ctx)
{
	struct pid_ns_state *st = state_of(ctx);
	int err;

	if (st->ext_key && (err = ns_enter_from_home(st->ext_fd, CLONE_NEWPID, &st->home))) {
		pr_perror("restore: cannot enter the engine's PID namespace (%s)", st->ext_key);
		return err;
	}
	return 0;
}

void pid_ns_leave_engines(const struct run_ctx *ctx)
{
	ns_go_home(&state_of(ctx)->home, CLONE_NEWPID, "restore");
}

/* The children of every thread of process p appended to queue (up to cap): the new tail, or
 * -ENOMEM. */
static ssize_t push_children(pid_t p, pid_t *queue, size_t tail, size_t cap)
{
	auto_free int *tids = NULL;
	size_t nt;
	int err;

	if ((err = proc_list_numbers(p, "task", &tids, &nt)))
		return err == -ENOMEM ? err : (ssize_t)tail;
	for (size_t i = 0; i < nt; i++) {
		char path[96];
		auto_free char *list = NULL;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", p, tids[i]);
		if (!(list = read_file_at(AT_FDCWD, path, NULL)) && errno == ENOMEM)
			return -ENOMEM;
		for (char *c = list; c && *c && tail < cap;) {
			char *end;
			long child = strtol(c, &end, 10);
			if (end == c)
				break;
			queue[tail++] = child;
			c = end;
		}
	}
	return tail;
}

/* The host pid of a process of the restored namespace, by its pid there (0: none yet; -ENOMEM). */
static pid_t find_host_pid(pid_t host_root, uint32_t vpid, char *state)
{
	pid_t queue[4096];
	size_t head = 0, tail = 0;

	queue[tail++] = host_root;
	while (head < tail) {
		pid_t p = queue[head++];
		auto_free uint32_t *nspid = NULL;
		size_t n;
		int err;

		if ((err = proc_nspids(p, &nspid, &n)) == -ENOMEM)
			return err;
		if (err || n < 2)
			continue;
		if (nspid[1] == vpid) {
			struct proc_stat ps;
			if ((err = proc_read_stat(p, &ps)) == -ENOMEM)
				return err;
			*state = err ? 'X' : ps.state;
			return p;
		}
		ssize_t more = push_children(p, queue, tail, ARRAY_SIZE(queue));
		if (more < 0)
			return more;
		tail = more;
	}
	return 0;
}

int pid_ns_find_host(const struct run_ctx *ctx, const struct restore_tree *rt, struct restore_task *t,
		     char *state)
{
	struct proc_stat ps;
	pid_t found;
	int err;

	if (!state_of(ctx)->own) {
		t->host_pid = t->pid;
		if ((err = proc_read_stat(t->pid, &ps)) == -ENOMEM)
			return err;
		*state = err ? 0 : ps.state;
		return *state ? 0 : -ESRCH;
	}
	*state = 0;
	if ((found = find_host_pid(rt->tasks[0].host_pid, t->pid, state)) < 0)
		return found;
	if (!found)
		return -ESRCH;
	t->host_pid = found;
	return 0;
}

pid_t pid_ns_host_of(const struct run_ctx *ctx, struct restore_tree *rt, uint32_t vpid)
{
	struct restore_task *t = pstree_task(rt, vpid);
	char state;
	int err;

	if (!state_of(ctx)->own)
		return vpid;
	if (!t)
		return 0;
	if (!t->host_pid && (err = pid_ns_find_host(ctx, rt, t, &state)))
		return err == -ENOMEM ? err : 0;
	return t->host_pid;
}

int pid_ns_host_tids(const struct run_ctx *ctx, struct restore_task *t)
{
	const struct pid_ns_state *st = state_of(ctx);
	auto_free int *tids = NULL;
	size_t n;
	int err;

	if (!t->host_tids) {
		t->host_tids = xzalloc((t->core->n_threads + 1) * sizeof(pid_t));
		if (!t->host_tids)
			return -ENOMEM;
	}
	for (size_t i = 0; i < t->core->n_threads; i++)
		t->host_tids[i] = t->core->threads[i]->tid;
	if (!st->own)
		return 0;
	if ((err = proc_list_numbers(t->host_pid, "task", &tids, &n))) {
		if (err == -ENOMEM)
			return err;
		pr_err("restore pid %d: cannot list the threads of host pid %d", t->pid, t->host_pid);
		return -ESRCH;
	}
	for (size_t i = 0; i < t->core->n_threads; i++) {
		t->host_tids[i] = 0;
		for (size_t k = 0; k < n && !t->host_tids[i]; k++) {
			auto_free uint32_t *nspid = NULL;
			size_t levels;
			if ((err = proc_nspids(tids[k], &nspid, &levels)) == -ENOMEM)
				return err;
			if (!err && levels > 1 && nspid[1] == t->core->threads[i]->tid)
				t->host_tids[i] = tids[k];
		}
		if (!t->host_tids[i]) {
			pr_err("restore pid %d: thread %u is not there", t->pid, t->core->threads[i]->tid);
			return -ESRCH;
		}
	}
	return 0;
}

void pid_ns_kill_engines_tree(const struct run_ctx *ctx, pid_t host_root)
{
	pid_t queue[4096];
	size_t head = 0, tail = 0;

	if (!state_of(ctx)->ext_key)
		return;
	/* every process below the root first (killed, they would go to the namespace's init),
	 * then all at once */
	queue[tail++] = host_root;
	while (head < tail) {
		ssize_t more = push_children(queue[head++], queue, tail, ARRAY_SIZE(queue));
		tail = more < 0 ? tail : (size_t)more; /* (out of memory: those found are killed) */
	}
	for (size_t i = 0; i < tail; i++)
		kill(queue[i], SIGKILL);
}

static void free_pid_ns(void *state)
{
	free(((struct pid_ns_state *)state)->map);
}

const struct tree_object_ops tree_pid_ns = {
	.name = "PID namespace",
	.state_size = sizeof(struct pid_ns_state),
	.free_state = free_pid_ns,
	.collect = collect_pid_ns,
	.write = write_pid_ns,
	.validate = validate_pid_ns,
};
