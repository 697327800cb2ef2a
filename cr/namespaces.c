/*
 * Which namespaces each task is in: their ids (the /proc/PID/ns links), the task's pid at every
 * PID-namespace level (NSpid) and its seccomp mode go into its core image. A kind of
 * namespace the engine does not restore yet makes the dump fail, naming the task and the
 * namespace, instead of a restore that would put the tree in the host's namespaces. The
 * IPC namespace is the IPC kind's to judge (cr/ipc-ns.c).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "task.h"
#include "util.h"

struct ns_kind {
	const char *name;        /* as in /proc/PID/ns */
	size_t off, has_off;     /* its field in NsIds, and the field's has_ */
	bool restored;           /* the engine brings a tree in its own one back */
};

#define NS_FIELD(f) offsetof(NsIds, f), offsetof(NsIds, has_##f)

static const struct ns_kind ns_kinds[] = {
	{ "cgroup", NS_FIELD(cgroup), false },
	{ "ipc", NS_FIELD(ipc), true },
	{ "mnt", NS_FIELD(mnt), false },
	{ "net", NS_FIELD(net), false },
	{ "pid", NS_FIELD(pid), false },
	{ "pid_for_children", NS_FIELD(pid_for_children), false },
	{ "time", NS_FIELD(time), false },
	{ "time_for_children", NS_FIELD(time_for_children), false },
	{ "user", NS_FIELD(user), false },
	{ "uts", NS_FIELD(uts), false },
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

/* Every namespace of the thread that is not stasis's own must be one the engine restores. */
static int check_supported(pid_t pid, pid_t tid, const NsIds *ids, const NsIds *own)
{
	for (size_t i = 0; i < ARRAY_SIZE(ns_kinds); i++) {
		uint64_t mine = *(const uint64_t *)((const char *)own + ns_kinds[i].off);
		uint64_t its = *(const uint64_t *)((const char *)ids + ns_kinds[i].off);
		if (its == mine || ns_kinds[i].restored)
			continue;
		char who[48];
		snprintf(who, sizeof(who), tid == pid ? "pid %d" : "pid %d thread %d", pid, tid);
		pr_err("dump %s: it is in %s namespace %s:[%llu], not stasis's own (%s:[%llu]); "
		       "trees in namespaces of their own (containers) are not supported yet, except "
		       "the IPC namespace",
		       who, ns_kinds[i].name, ns_kinds[i].name, (unsigned long long)its,
		       ns_kinds[i].name, (unsigned long long)mine);
		return -ENOTSUP;
	}
	return 0;
}

static int dump_namespaces(struct dump_task *t)
{
	NsIds own = NS_IDS__INIT, *ids = xzalloc(sizeof(*ids));
	char who[48];
	uint64_t mode = 0;
	int err;

	if (!ids)
		return -ENOMEM;
	ns_ids__init(ids);
	t->core->ns = ids;
	if ((err = read_ids("self", &own)) || (snprintf(who, sizeof(who), "%d", t->pid), 0) ||
	    (err = read_ids(who, ids))) {
		pr_err("dump pid %d: cannot read its namespaces: %s", t->pid, strerror(-err));
		return err;
	}
	if ((err = check_supported(t->pid, t->pid, ids, &own)))
		return err;
	for (size_t i = 0; i < t->nr_threads; i++) {
		NsIds tids = NS_IDS__INIT;
		snprintf(who, sizeof(who), "%d/task/%d", t->pid, t->threads[i].tid);
		if ((err = read_ids(who, &tids))) {
			pr_err("dump pid %d thread %d: cannot read its namespaces: %s", t->pid,
			       t->threads[i].tid, strerror(-err));
			return err;
		}
		if ((err = check_supported(t->pid, t->threads[i].tid, &tids, &own)))
			return err;
	}
	if ((err = proc_nspids(t->pid, &t->core->ns_pids, &t->core->n_ns_pids)))
		return err;
	if (t->core->n_ns_pids != 1 || t->core->ns_pids[0] != (uint32_t)t->pid) {
		pr_err("dump pid %d: it is pid %u in a PID namespace of its own; not supported yet",
		       t->pid, t->core->n_ns_pids ? t->core->ns_pids[t->core->n_ns_pids - 1] : 0);
		return -ENOTSUP;
	}
	if ((err = proc_status_field(t->pid, "Seccomp", 10, &mode))) {
		if (err != -ENOMEM)
			pr_err("dump pid %d: cannot read its seccomp mode from /proc/%d/status: %s",
			       t->pid, t->pid, strerror(-err));
		return err;
	}
	t->core->has_seccomp_mode = true;
	t->core->seccomp_mode = mode;
	if (mode) {
		pr_err("dump pid %d: it runs under a seccomp %s; seccomp is not restored yet", t->pid,
		       mode == 1 ? "strict mode" : "filter");
		return -ENOTSUP;
	}
	return 0;
}

static int validate_namespaces(struct restore_task *t)
{
	TaskCore *c = t->core;

	if (c->n_ns_pids > 32 || (c->n_ns_pids && c->ns_pids[c->n_ns_pids - 1] != (uint32_t)t->pid) ||
	    (c->has_seccomp_mode && c->seccomp_mode > 2)) {
		pr_err("image core-%d.img: its pids per PID namespace or its seccomp mode are invalid",
		       t->pid);
		return -EINVAL;
	}
	return 0;
}

const struct state_ops state_namespaces = {
	.name = "namespaces",
	.dump = dump_namespaces,
	.validate = validate_namespaces,
};
