/*
 * Which namespaces each task is in: their ids (the /proc/PID/ns links) and the task's pid at
 * every PID-namespace level (NSpid) go into its core image. A tree whose processes are spread
 * over namespaces in a way a restore cannot make again (a user namespace nested in the tree's,
 * say) makes the dump fail, naming the task and the namespace. The IPC namespace is the IPC
 * kind's to judge (cr/ipc-ns.c), the root's user namespace the user namespace kind's
 * (cr/user-ns.c); mount, UTS, network and cgroup namespaces nested in the tree's are judged per process
 * by their kinds (cr/nested-ns.h), threads here: each in its process's. The whole tree is judged
 * first, before any kind collects (a sandbox's processes in user namespaces of their
 * own: refused by name, not at the first socket of the root that lives in another namespace).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "task.h"
#include "util.h"

enum ns_rule {
	NS_TREE_SHARES,  /* restored: the whole tree shares the root's */
	NS_NESTED,       /* restored, and may nest: the PID namespace kind judges (cr/pid-ns.c) */
	NS_TIME,         /* restored: cr/time-ns.c judges the tree's layout */
	NS_PER_PROCESS,  /* restored, and may nest per process (cr/nested-ns.h): threads share it */
};

struct ns_kind {
	const char *name;        /* as in /proc/PID/ns */
	size_t off, has_off;     /* its field in NsIds, and the field's has_ */
	enum ns_rule rule;
	bool kind_judges;        /* a tree-wide kind judges the tree's first (and says more) */
};

#define NS_FIELD(f) offsetof(NsIds, f), offsetof(NsIds, has_##f)

static const struct ns_kind ns_kinds[] = {
	{ "cgroup", NS_FIELD(cgroup), NS_PER_PROCESS, false }, /* nested: cr/cgroups.c */
	{ "ipc", NS_FIELD(ipc), NS_PER_PROCESS, false }, /* nested: cr/ipc-nested.c */
	{ "mnt", NS_FIELD(mnt), NS_PER_PROCESS, false },
	{ "net", NS_FIELD(net), NS_PER_PROCESS, false }, /* nested: netns/net-nested.c */
	{ "pid", NS_FIELD(pid), NS_NESTED, false },
	{ "pid_for_children", NS_FIELD(pid_for_children), NS_NESTED, false },
	{ "time", NS_FIELD(time), NS_TIME, false },
	{ "time_for_children", NS_FIELD(time_for_children), NS_TIME, false },
	{ "user", NS_FIELD(user), NS_TREE_SHARES, false }, /* cr/user-ns.c judges the root's */
	{ "uts", NS_FIELD(uts), NS_PER_PROCESS, false },
};

/* The inode of /proc/<who>/ns/<name>, 0 if this kernel has no such kind. */
static int ns_id(const char *who, const char *name, uint64_t *id)
{
	char path[96];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%s/ns/%s", who, name);
	if (stat(path, &st)) {
		if (errno == ENOENT) {
			*id = 0;
			return 0;
		}
		return -errno;
	}
	*id = st.st_ino;
	return 0;
}

static int read_ids(const char *who, NsIds *ids)
{
	for (size_t i = 0; i < ARRAY_SIZE(ns_kinds); i++) {
		uint64_t *field = (uint64_t *)((char *)ids + ns_kinds[i].off);
		protobuf_c_boolean *has = (protobuf_c_boolean *)((char *)ids + ns_kinds[i].has_off);
		int err = ns_id(who, ns_kinds[i].name, field);
		if (err)
			return err;
		*has = *field != 0;
	}
	return 0;
}

/*
 * Every namespace of the thread is stasis's own, or one the engine restores that the whole
 * tree shares with its root (PID namespaces may nest: cr/pid-ns.c judges those; time
 * namespaces: cr/time-ns.c).
 */
static int check_supported(pid_t pid, pid_t tid, const NsIds *ids, const NsIds *own,
			   const NsIds *root, const NsIds *proc, bool early)
{
	char who[48];

	snprintf(who, sizeof(who), tid == pid ? "pid %d" : "pid %d thread %d", pid, tid);
	for (size_t i = 0; i < ARRAY_SIZE(ns_kinds); i++) {
		uint64_t mine = *(const uint64_t *)((const char *)own + ns_kinds[i].off);
		uint64_t its = *(const uint64_t *)((const char *)ids + ns_kinds[i].off);
		uint64_t roots = *(const uint64_t *)((const char *)root + ns_kinds[i].off);
		uint64_t procs = *(const uint64_t *)((const char *)proc + ns_kinds[i].off);

		if (ns_kinds[i].rule == NS_PER_PROCESS && its != procs) {
			pr_err("dump %s: it is in %s namespace %s:[%llu], its process in %s:[%llu]; threads "
			       "of one process in different ones are not supported", who, ns_kinds[i].name,
			       ns_kinds[i].name, (unsigned long long)its, ns_kinds[i].name,
			       (unsigned long long)procs);
			return -ENOTSUP;
		}
		if (ns_kinds[i].rule == NS_PER_PROCESS || (early && ns_kinds[i].kind_judges))
			continue;
		if (its == mine || ns_kinds[i].rule == NS_NESTED || ns_kinds[i].rule == NS_TIME)
			continue;
		if (its != roots) {
			pr_err("dump %s: it is in %s namespace %s:[%llu], the tree's root in %s:[%llu]; "
			       "the whole tree must share one", who, ns_kinds[i].name, ns_kinds[i].name,
			       (unsigned long long)its, ns_kinds[i].name, (unsigned long long)roots);
			return -ENOTSUP;
		}
	}
	return 0;
}

/* A process's namespaces and its threads', read once when the tree is judged (frozen, they stay). */
struct task_ns {
	NsIds own; /* stasis's */
	NsIds ids; /* the process's */
	size_t n_threads;
	NsIds threads[]; /* as t->threads */
};

static int read_task_ns(const struct dump_task *t, const NsIds *own, struct task_ns **out)
{
	struct task_ns *ns = xzalloc(sizeof(*ns) + t->nr_threads * sizeof(ns->threads[0]));
	char who[48];
	int err;

	if (!ns)
		return -ENOMEM;
	ns->own = *own;
	ns->ids = (NsIds)NS_IDS__INIT;
	snprintf(who, sizeof(who), "%d", t->pid);
	if ((err = read_ids(who, &ns->ids))) {
		pr_err("dump pid %d: cannot read its namespaces: %s", t->pid, strerror(-err));
		free(ns);
		return err;
	}
	for (size_t i = 0; i < t->nr_threads; i++, ns->n_threads++) {
		ns->threads[i] = (NsIds)NS_IDS__INIT;
		snprintf(who, sizeof(who), "%d/task/%d", t->pid, t->threads[i].tid);
		if ((err = read_ids(who, &ns->threads[i]))) {
			pr_err("dump pid %d thread %d: cannot read its namespaces: %s", t->pid,
			       t->threads[i].tid, strerror(-err));
			free(ns);
			return err;
		}
	}
	*out = ns;
	return 0;
}

/*
 * t's and its threads' namespaces judged against stasis's own and the root's (root; NULL: t is
 * the root); early: before the tree-wide kinds, which judge some kinds first.
 */
static int judge(const struct dump_task *t, const struct task_ns *ns, const NsIds *root, bool early)
{
	const NsIds *ids = &ns->ids;
	int err;

	if ((err = check_supported(t->pid, t->pid, ids, &ns->own, root ? root : ids, ids, early)))
		return err;
	for (size_t i = 0; i < ns->n_threads; i++)
		if ((err = check_supported(t->pid, t->threads[i].tid, &ns->threads[i], &ns->own,
					   root ? root : ids, ids, early)))
			return err;
	return 0;
}

int namespaces_judge_tree(struct dump_task *tasks, size_t n)
{
	NsIds own = NS_IDS__INIT;
	int err;

	if ((err = read_ids("self", &own))) {
		pr_err("dump: cannot read stasis's own namespaces: %s", strerror(-err));
		return err;
	}
	for (size_t i = 0; i < n; i++) {
		namespaces_free(tasks[i].ns);
		tasks[i].ns = NULL;
		if ((err = read_task_ns(&tasks[i], &own, &tasks[i].ns)) ||
		    (err = judge(&tasks[i], tasks[i].ns, i ? &tasks[0].ns->ids : NULL, true)))
			return err;
	}
	return 0;
}

void namespaces_free(struct task_ns *ns)
{
	free(ns);
}

const NsIds *namespaces_of(const struct dump_task *t)
{
	return &t->ns->ids;
}

static int dump_namespaces(struct dump_task *t)
{
	NsIds *ids = xzalloc(sizeof(*ids));
	int err;

	if (!ids)
		return -ENOMEM;
	t->core->ns = ids;
	const NsIds *root = t->tree && t->tree_pos ? t->tree[0].core->ns : NULL;
	*ids = t->ns->ids; /* read by namespaces_judge_tree, which every dump runs first */
	if ((err = judge(t, t->ns, root, false)))
		return err;
	if ((err = proc_nspids(t->pid, &t->core->ns_pids, &t->core->n_ns_pids)) == -ESRCH)
		pr_err("dump pid %d: cannot read its pids in its PID namespaces", t->pid);
	return err;
}

static int validate_namespaces(struct restore_task *t)
{
	TaskCore *c = t->core;

	if (c->n_ns_pids > 32) {
		pr_err("image core-%d.img: its pids per PID namespace are invalid", t->pid);
		return -EINVAL;
	}
	return 0;
}

const struct state_ops state_namespaces = {
	.name = "namespaces",
	.dump = dump_namespaces,
	.validate = validate_namespaces,
};
