/*
 * Which cgroups the tree's processes are in, and the tree's own cgroups (cgroups.img; each
 * process's core image names its set of cgroups, one per hierarchy).
 *
 * Dump: each process's /proc/PID/cgroup. The tree's root cgroup in each hierarchy is
 * --cgroup-root's, else the root of the tree's own cgroup namespace, else the root process's
 * cgroup. Every cgroup a process lives in (and the root cgroup, when it is the container's) is
 * saved with every cgroup below it and their properties, except stasis's own cgroup and those
 * above it: a process that shares stasis's cgroup is not moved on restore, it stays with the
 * restoring stasis (as criu does). --manage-cgroups=ignore saves nothing.
 *
 * Restore (criu's modes; without --manage-cgroups, soft): cr/cgroup-place.c makes or finds the
 * cgroups and opens every cgroup.procs the tree needs before the tree exists; the root moves
 * into its cgroups (or its cgroup namespace's root) first thing, before it makes its
 * namespace, and every process moves itself before any code of its own runs; a thread in
 * cgroups other than its process's (v1 tasks, v2 threaded cgroups) gets a set of its own,
 * and moves itself in the blob once made. A failed restore removes every cgroup stasis made.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroups.h"
#include "log.h"
#include "nested-ns.h"
#include "ns-helper.h"
#include "pstree.h"
#include "restore-watchdog.h"
#include "restorer/restorer.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

#define CG_MAX_HIERARCHIES 64
#define CG_MAX_SETS 65536
#define CG_MAX_DIRS 16384

struct cgroups_state {
	Cgroups *img;    /* dump: being built (NULL: nothing to save) */
	bool *walk_root; /* dump, per hierarchy: its root cgroup is the tree's own */
	struct cg_place place; /* restore: the images' cgroups (place.img NULL: nothing to do) */
	struct nested_ns_view *nested; /* restore: place.img's nested namespaces */
};

static struct cgroups_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_cgroups);
}

/* ---- dump ---- */

struct ns_view {
	pid_t pid;
	char text[8192];
};

/* In the tree's cgroup namespace: /proc/PID/cgroup as the tree sees it. */
static int read_ns_view(void *out, size_t len)
{
	struct ns_view *v = out;
	char file[64];

	(void)len;
	snprintf(file, sizeof(file), "/proc/%d/cgroup", v->pid);
	auto_close int fd = open(file, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read_all(fd, v->text, sizeof(v->text) - 1);
	if (n < 0)
		return -errno;
	v->text[n] = 0;
	return 0;
}

/* /proc/PID/cgroup of pid as its own cgroup namespace shows it (what: for messages). */
static int read_members_inside(pid_t pid, const char *what, struct cg_members *out)
{
	auto_free struct ns_view *view = xzalloc(sizeof(*view));
	int err;

	if (!view)
		return -ENOMEM;
	view->pid = pid;
	if ((err = ns_helper_run(pid, CLONE_NEWCGROUP, read_ns_view, view, sizeof(*view))))
		return err;
	return cg_members_parse(view->text, what, out);
}

/* The root of pid's cgroup namespace in hierarchy controllers, from its path seen from both
 * (NULL with errno: ENOMEM, or EINVAL, named). */
static char *ns_root_of(pid_t pid, const char *controllers, const char *full,
			const struct cg_members *inside)
{
	const char *rel = cg_members_path(inside, controllers);
	size_t lf = strlen(full), lr = rel ? strlen(rel) : 0;
	bool within = rel && strncmp(rel, "/..", 3) &&
		      (!strcmp(rel, "/") || (lr <= lf && !strcmp(full + lf - lr, rel)));

	if (!within) {
		pr_err("dump pid %d: its cgroup %s:%s lies outside its own cgroup namespace (%s)", pid,
		       cg_hierarchy_name(controllers), full, rel ? rel : "not there");
		errno = EINVAL;
		return NULL;
	}
	if (!strcmp(rel, "/"))
		return xstrdup(full);
	if (lf == lr)
		return xstrdup("/");
	char *root = xmalloc(lf - lr + 1);
	if (root) {
		memcpy(root, full, lf - lr);
		root[lf - lr] = 0;
	}
	return root;
}

static const char *given_root(const struct stasis_opts *o, const char *controllers)
{
	const char *global = NULL;

	for (size_t i = 0; i < o->cgroup_roots.n; i++) {
		const struct opt_pair *r = &o->cgroup_roots.v[i];
		if (!r->key)
			global = r->value;
		else if (cg_hierarchy_named(controllers, r->key))
			return r->value;
	}
	return global;
}

static bool dumped_hierarchy(const struct stasis_opts *o, const char *controllers)
{
	for (size_t i = 0; i < o->cgroup_dump_controllers.n; i++)
		if (cg_hierarchy_named(controllers, o->cgroup_dump_controllers.v[i].value))
			return true;
	return !o->cgroup_dump_controllers.n;
}

static int add_hierarchy(struct cgroups_state *st, const struct stasis_opts *o, pid_t pid,
			 const struct cg_member *own, const struct cg_members *rootm,
			 const struct cg_members *inside)
{
	const char *at = cg_members_path(rootm, own->controllers);
	const char *given = given_root(o, own->controllers);
	CgroupHierarchy *h;
	Cgroups *img = st->img;

	if (!at) {
		pr_err("dump pid %d: it is in no cgroup of hierarchy %s", pid,
		       cg_hierarchy_name(own->controllers));
		return -EINVAL;
	}
	if (given && !cg_path_ok(given)) {
		pr_err("dump: --cgroup-root %s: not an absolute cgroup path", given);
		return -EINVAL;
	}
	if (!(h = xzalloc(sizeof(*h))))
		return -ENOMEM;
	cgroup_hierarchy__init(h);
	st->walk_root[img->n_hierarchies] = false;
	img->hierarchies[img->n_hierarchies++] = h; /* (freed with the image, also if what follows fails) */
	if (!(h->controllers = xstrdup(own->controllers)) || !(h->stasis_own = xstrdup(own->path)))
		return -ENOMEM;
	if (inside && !(h->ns_root = ns_root_of(pid, own->controllers, at, inside)))
		return -errno;
	if (!(h->root = xstrdup(given ? given : h->ns_root ? h->ns_root : at)))
		return -ENOMEM;
	st->walk_root[img->n_hierarchies - 1] = given || h->ns_root;
	return 0;
}

/* One cgroup namespace made below the tree's: its root in every hierarchy, from its maker's
 * cgroups seen from outside and from inside it. */
static int collect_one_nested(Cgroups *img, const struct dump_tree *tr, const struct nested_ns *ns)
{
	const struct dump_task *maker = &tr->tasks[ns->members[0]];
	CgroupNestedNs *c = xzalloc(sizeof(*c));
	struct cg_members full = { 0 }, inside = { 0 };
	char who[32];
	int err = 0;

	if (!c)
		return -ENOMEM;
	cgroup_nested_ns__init(c);
	img->nested[img->n_nested++] = c;
	c->ns_id = ns->id;
	c->maker = maker->vpid;
	if (!(c->pids = xzalloc(ns->n * sizeof(*c->pids))) ||
	    !(c->roots = xzalloc((img->n_hierarchies + 1) * sizeof(*c->roots))))
		return -ENOMEM;
	for (size_t m = 0; m < ns->n; m++)
		c->pids[c->n_pids++] = tr->tasks[ns->members[m]].vpid;
	snprintf(who, sizeof(who), "%d", maker->pid);
	if ((err = cg_members_read(who, &full)) ||
	    (err = read_members_inside(maker->pid, "a nested cgroup namespace's /proc/PID/cgroup", &inside)))
		goto out;
	for (size_t h = 0; h < img->n_hierarchies && !err; h++) {
		const char *controllers = img->hierarchies[h]->controllers, *at = cg_members_path(&full, controllers);
		if (!at) {
			pr_err("dump pid %d: it is in no cgroup of hierarchy %s", maker->pid,
			       cg_hierarchy_name(controllers));
			err = -EINVAL;
		} else if (!(c->roots[c->n_roots++] = ns_root_of(maker->pid, controllers, at, &inside))) {
			err = -errno;
		}
	}
	if (!err)
		pr_info("dump pid %d: its own cgroup namespace cgroup:[%llu], %zu processes", maker->pid,
			(unsigned long long)c->ns_id, c->n_pids);
out:
	cg_members_free(&full);
	cg_members_free(&inside);
	return err;
}

/* The cgroup namespaces processes of the tree made below the tree's (cr/nested-ns.h). */
static int collect_nested(Cgroups *img, const struct dump_tree *tr)
{
	struct nested_ns *v;
	size_t n;
	int err;

	if ((err = nested_ns_find(tr, "cgroup", &v, &n)) || !n)
		return err;
	if (!img) {
		pr_err("dump pid %d: it made a cgroup namespace of its own, cgroup:[%llu], which is made "
		       "again from its root cgroups: --manage-cgroups=ignore saves none",
		       tr->tasks[v[0].members[0]].pid, (unsigned long long)v[0].id);
		err = -ENOTSUP;
	} else if (!(img->nested = xzalloc(n * sizeof(*img->nested)))) {
		err = -ENOMEM;
	}
	for (size_t i = 0; i < n && !err; i++)
		err = collect_one_nested(img, tr, &v[i]);
	nested_ns_free(v, n);
	return err;
}

/* Every process of a nested cgroup namespace is in cgroups below its root (it could not move
 * there from inside it), or in stasis's own (not moved). */
static int check_nested_members(const Cgroups *img, const struct dump_tree *tr)
{
	for (size_t i = 0; i < img->n_nested; i++) {
		const CgroupNestedNs *c = img->nested[i];
		for (size_t k = 0; k < tr->nr_tasks; k++) {
			const struct dump_task *t = &tr->tasks[k];
			bool member = false;
			for (size_t m = 0; m < c->n_pids; m++)
				member |= c->pids[m] == t->vpid;
			for (size_t h = 0; member && t->core->cg_set && h < img->n_hierarchies; h++) {
				const char *cg = img->sets[t->core->cg_set - 1]->paths[h];
				if (cg_path_within(cg, c->roots[h]) || !strcmp(cg, img->hierarchies[h]->stasis_own))
					continue;
				pr_err("dump pid %d: its cgroup %s:%s lies outside its cgroup namespace "
				       "cgroup:[%llu], rooted at %s", t->pid,
				       cg_hierarchy_name(img->hierarchies[h]->controllers), cg,
				       (unsigned long long)c->ns_id, c->roots[h]);
				return -ENOTSUP;
			}
		}
	}
	return 0;
}

static int collect_cgroups(struct run_ctx *ctx, struct dump_tree *tr)
{
	const struct stasis_opts *o = ctx->opts;
	struct cgroups_state *st = state_of(ctx);
	pid_t pid = tr->tasks[0].pid;
	struct cg_members own = { 0 }, rootm = { 0 }, inside = { 0 };
	bool own_ns = false;
	char who[32];
	int err;

	if (o->cgroup_mode == CG_MODE_IGNORE)
		return collect_nested(NULL, tr);
	if (o->cgroup_props || o->cgroup_props_file) {
		pr_err("dump: --cgroup-props and --cgroup-props-file are not supported yet (stasis saves "
		       "the properties it knows of each controller)");
		return -ENOTSUP;
	}
	snprintf(who, sizeof(who), "%d", pid);
	if ((err = cg_members_read("self", &own)) || (err = cg_members_read(who, &rootm)))
		goto out;
	if ((own_ns = ns_is_own(pid, "cgroup", NULL)) &&
	    (err = read_members_inside(pid, "the tree's /proc/PID/cgroup", &inside)))
		goto out;
	if (!(st->img = xzalloc(sizeof(*st->img)))) {
		err = -ENOMEM;
		goto out;
	}
	cgroups__init(st->img);
	if (!(st->img->hierarchies = xzalloc((own.n + 1) * sizeof(*st->img->hierarchies))) ||
	    !(st->walk_root = xzalloc((own.n + 1) * sizeof(bool))))
		err = -ENOMEM;
	for (size_t i = 0; i < own.n && !err; i++)
		if (dumped_hierarchy(o, own.v[i].controllers))
			err = add_hierarchy(st, o, pid, &own.v[i], &rootm, own_ns ? &inside : NULL);
	if (!err)
		err = collect_nested(st->img, tr);
out:
	cg_members_free(&own);
	cg_members_free(&rootm);
	cg_members_free(&inside);
	return err;
}

/* The cgroups of /proc/<who>/cgroup, one per hierarchy of img ("pid 12", "pid 12 thread 13" for
 * messages: what). */
static int read_set(const char *who, const char *what, const Cgroups *img, CgroupSet **out)
{
	struct cg_members m;
	CgroupSet *set;
	int err;

	if ((err = cg_members_read(who, &m)))
		return err;
	if (!(set = xzalloc(sizeof(*set)))) {
		cg_members_free(&m);
		return -ENOMEM;
	}
	cgroup_set__init(set);
	if (!(set->paths = xzalloc((img->n_hierarchies + 1) * sizeof(char *))))
		err = -ENOMEM;
	for (size_t h = 0; h < img->n_hierarchies && !err; h++) {
		const char *p = cg_members_path(&m, img->hierarchies[h]->controllers);
		if (!p) {
			pr_err("dump %s: it is in no cgroup of hierarchy %s", what,
			       cg_hierarchy_name(img->hierarchies[h]->controllers));
			err = -EINVAL;
		} else if (!(set->paths[set->n_paths++] = xstrdup(p))) {
			err = -ENOMEM;
		}
	}
	cg_members_free(&m);
	if (err) {
		cgroup_set__free_unpacked(set, NULL);
		return err;
	}
	*out = set;
	return 0;
}

static bool same_set(const CgroupSet *a, const CgroupSet *b)
{
	for (size_t h = 0; h < a->n_paths; h++)
		if (strcmp(a->paths[h], b->paths[h]))
			return false;
	return true;
}

/* set's number in img (sets[number - 1]), added if it is new (else freed); or -ENOMEM. */
static int set_number(Cgroups *img, CgroupSet *set)
{
	for (size_t s = 0; s < img->n_sets; s++)
		if (same_set(set, img->sets[s])) {
			cgroup_set__free_unpacked(set, NULL);
			return s + 1;
		}
	void *v = xreallocarray(img->sets, img->n_sets + 1, sizeof(*img->sets));
	if (!v) {
		cgroup_set__free_unpacked(set, NULL);
		return -ENOMEM;
	}
	img->sets = v;
	img->sets[img->n_sets++] = set;
	return img->n_sets;
}

/* A thread in cgroups other than its process's (v1's tasks, v2's threaded cgroups) gets a set. */
static int dump_thread_cgroups(struct dump_task *t, const CgroupSet *process_set, Cgroups *img)
{
	for (size_t i = 0; i < t->nr_threads; i++) {
		struct frozen_thread *ft = &t->threads[i];
		char who[48], what[64];
		CgroupSet *set;
		int err, n;

		snprintf(who, sizeof(who), "%d/task/%d", t->pid, ft->tid);
		snprintf(what, sizeof(what), "pid %d thread %d", t->pid, ft->tid);
		if ((err = read_set(who, what, img, &set)))
			return err;
		if (same_set(set, process_set)) {
			cgroup_set__free_unpacked(set, NULL);
			continue;
		}
		if ((n = set_number(img, set)) < 0)
			return n;
		ft->cg_set = n;
		pr_info("dump pid %d thread %d: in cgroups of its own (set %d)", t->pid, ft->tid, n);
	}
	return 0;
}

static int dump_task_cgroups(struct dump_task *t)
{
	Cgroups *img = state_of(t->ctx)->img;
	CgroupSet *set;
	char who[32], what[32];
	int err, n;

	if (!img)
		return 0;
	snprintf(who, sizeof(who), "%d", t->pid);
	snprintf(what, sizeof(what), "pid %d", t->pid);
	if ((err = read_set(who, what, img, &set)))
		return err;
	if ((n = set_number(img, set)) < 0)
		return n;
	t->core->has_cg_set = true;
	t->core->cg_set = n;
	return dump_thread_cgroups(t, img->sets[n - 1], img);
}

struct dir_walk {
	int hfd;
	CgroupHierarchy *h;
};

static int save_dir(const char *path, void *arg)
{
	struct dir_walk *w = arg;
	CgroupDir *d = xzalloc(sizeof(*d));
	void *v = d ? xreallocarray(w->h->dirs, w->h->n_dirs + 1, sizeof(*w->h->dirs)) : NULL;

	if (!v) {
		free(d);
		return -ENOMEM;
	}
	w->h->dirs = v;
	cgroup_dir__init(d);
	if (!(d->path = xstrdup(path))) {
		free(d);
		return -ENOMEM;
	}
	w->h->dirs[w->h->n_dirs++] = d;
	return cg_dir_dump(w->hfd, w->h->controllers, d);
}

/* The cgroups whose subtrees are the tree's own: where processes live, not stasis's. */
static bool owned_by_tree(const CgroupHierarchy *h, const char *cg)
{
	return !cg_path_within(h->stasis_own, cg);
}

/* A cgroup of the tree below another one of the tree is saved with that one. */
static bool walk_from(const Cgroups *img, size_t hi, bool root_too, const char *cg)
{
	const CgroupHierarchy *h = img->hierarchies[hi];

	if (!owned_by_tree(h, cg))
		return false;
	if (root_too && strcmp(cg, h->root) && cg_path_within(cg, h->root) && owned_by_tree(h, h->root))
		return false;
	for (size_t s = 0; s < img->n_sets; s++) {
		const char *other = img->sets[s]->paths[hi];
		if (strcmp(other, cg) && cg_path_within(cg, other) && owned_by_tree(h, other))
			return false;
	}
	return true;
}

static int save_dirs(struct run_ctx *ctx, size_t hi)
{
	struct cgroups_state *st = state_of(ctx);
	const Cgroups *img = st->img;
	struct dir_walk w = { .hfd = -1, .h = img->hierarchies[hi] };
	int err = 0;

	/* candidates: every process's cgroup, and the root cgroup when it is the tree's */
	for (size_t s = 0; s <= img->n_sets && !err; s++) {
		const char *cg = s < img->n_sets ? img->sets[s]->paths[hi] : w.h->root;
		bool seen = false;
		if (s == img->n_sets && !st->walk_root[hi])
			break;
		for (size_t k = 0; k < s; k++)
			seen |= !strcmp(img->sets[k]->paths[hi], cg);
		if (seen || !walk_from(img, hi, st->walk_root[hi], cg))
			continue;
		if (w.hfd < 0 && (w.hfd = cg_hierarchy_open(ctx->opts, w.h->controllers)) < 0)
			return w.hfd;
		if (s == img->n_sets && faccessat(w.hfd, cg_rel(cg), F_OK, 0)) {
			pr_info("dump: cgroup %s:%s (--cgroup-root) does not exist",
				cg_hierarchy_name(w.h->controllers), cg);
			continue;
		}
		err = cg_walk(w.hfd, cg, save_dir, &w);
	}
	if (w.hfd >= 0)
		close(w.hfd);
	return err;
}

static int write_cgroups(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct cgroups_state *st = state_of(ctx);
	int err;

	if (!st->img)
		return 0;
	if ((err = check_nested_members(st->img, tr)))
		return err;
	for (size_t h = 0; h < st->img->n_hierarchies; h++)
		if ((err = save_dirs(ctx, h)))
			return err;
	tr->inv.has_cgroups = tr->inv.cgroups = true;
	return image_write(ctx->images_dir_fd, IMG_CGROUPS, 0, &st->img->base);
}

/* ---- restore ---- */

static bool controllers_ok(const char *c)
{
	return strlen(c) < 256 && strspn(c, "abcdefghijklmnopqrstuvwxyz0123456789_,=.-") == strlen(c);
}

static int check_image(const Cgroups *img, struct restore_tree *rt)
{
	bool ok = img->n_hierarchies <= CG_MAX_HIERARCHIES && img->n_sets <= CG_MAX_SETS;
	size_t dirs = 0;
	int err;

	for (size_t i = 0; ok && i < img->n_hierarchies; i++) {
		const CgroupHierarchy *h = img->hierarchies[i];
		ok = controllers_ok(h->controllers) && cg_path_ok(h->root) && cg_path_ok(h->stasis_own) &&
		     (!h->ns_root || cg_path_ok(h->ns_root));
		for (size_t k = 0; ok && k < h->n_dirs; k++) {
			if (!cg_path_ok(h->dirs[k]->path) || ++dirs > CG_MAX_DIRS)
				ok = false;
			else if ((err = cg_dir_check(h->controllers, h->dirs[k])))
				return err;
		}
	}
	for (size_t s = 0; ok && s < img->n_sets; s++) {
		ok = img->sets[s]->n_paths == img->n_hierarchies;
		for (size_t k = 0; ok && k < img->sets[s]->n_paths; k++)
			ok = cg_path_ok(img->sets[s]->paths[k]);
	}
	for (size_t i = 0; ok && i < img->n_nested; i++) {
		ok = img->nested[i]->n_roots == img->n_hierarchies;
		for (size_t k = 0; ok && k < img->nested[i]->n_roots; k++)
			ok = cg_path_ok(img->nested[i]->roots[k]);
	}
	if (!ok) {
		pr_err("image cgroups.img: a hierarchy, cgroup path, set or nested namespace is invalid");
		return -EINVAL;
	}
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const TaskCore *c = rt->tasks[i].core;
		uint32_t set = c->cg_set;
		for (size_t k = 0; k < c->n_threads; k++)
			if (c->threads[k]->cg_set > set)
				set = c->threads[k]->cg_set;
		if (set > img->n_sets || (set && !c->cg_set)) {
			pr_err("image core-%d.img: cgroup set %u (of it or a thread), cgroups.img has %zu%s",
			       rt->tasks[i].pid, set, img->n_sets, c->cg_set ? "" : "; the process has none");
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * With --cgroup-root, the images name no cgroup of hierarchy hi outside the tree's root (all
 * of the tree moves; a process in stasis's own cgroup stays with the restoring stasis).
 */
static int check_confined(const Cgroups *img, size_t hi)
{
	const CgroupHierarchy *h = img->hierarchies[hi];
	const char *out = h->ns_root && !cg_path_within(h->ns_root, h->root) ? h->ns_root : NULL;

	for (size_t i = 0; !out && i < h->n_dirs; i++)
		if (!cg_path_within(h->dirs[i]->path, h->root))
			out = h->dirs[i]->path;
	for (size_t s = 0; !out && s < img->n_sets; s++) {
		const char *cg = img->sets[s]->paths[hi];
		if (!cg_path_within(cg, h->root) && strcmp(cg, h->stasis_own))
			out = cg;
	}
	for (size_t i = 0; !out && i < img->n_nested; i++)
		if (!cg_path_within(img->nested[i]->roots[hi], h->root))
			out = img->nested[i]->roots[hi];
	if (out) {
		pr_err("image cgroups.img: cgroup %s:%s lies outside the tree's root cgroup %s, which "
		       "--cgroup-root moves", cg_hierarchy_name(h->controllers), out, h->root);
		return -EINVAL;
	}
	return 0;
}

/* The nested cgroup namespaces checked against the tree (cr/nested-ns.h). */
static int validate_nested(struct cgroups_state *st, const struct restore_tree *rt)
{
	const Cgroups *img = st->place.img;

	if (!img->n_nested)
		return 0;
	if (!(st->nested = xzalloc(img->n_nested * sizeof(*st->nested))))
		return -ENOMEM;
	for (size_t i = 0; i < img->n_nested; i++)
		st->nested[i] = (struct nested_ns_view){ img->nested[i]->maker, img->nested[i]->pids,
							 img->nested[i]->n_pids };
	return nested_ns_validate(rt, "cgroups.img", st->nested, img->n_nested);
}

int cgroup_nested_make(const struct run_ctx *ctx, pid_t pid)
{
	const struct cgroups_state *st = state_of(ctx);
	ssize_t i = st->nested ? nested_ns_made_by(st->nested, st->place.img->n_nested, pid) : -1;

	return i < 0 ? 0 : cg_place_enter_nested(&st->place, i, pid);
}

static int validate_cgroups(struct run_ctx *ctx, struct restore_tree *rt)
{
	const struct stasis_opts *o = ctx->opts;
	struct cg_place *p = &state_of(ctx)->place;
	Cgroups *img;
	int err;

	if (!rt->inv->cgroups)
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_CGROUPS, 0, (ProtobufCMessage **)&img)))
		return err;
	p->img = img;
	if (o->cgroup_mode == CG_MODE_IGNORE && img->n_nested) {
		pr_err("restore: pid %u made a cgroup namespace of its own, which is made again from its "
		       "root cgroups: not with --manage-cgroups=ignore", img->nested[0]->maker);
		return -ENOTSUP;
	}
	if (o->cgroup_mode == CG_MODE_IGNORE) {
		p->img = NULL;
		image_free(&img->base);
		return 0;
	}
	if ((err = check_image(img, rt)) || (err = validate_nested(state_of(ctx), rt)))
		return err;
	/* --cgroup-root CONTROLLER:PATH moves that hierarchy's root; a PATH alone, the root of
	 * every hierarchy where the tree has cgroups of its own (as criu) */
	if (!(p->new_roots = xzalloc((img->n_hierarchies + 1) * sizeof(char *))))
		return -ENOMEM;
	for (size_t i = 0; i < o->cgroup_roots.n; i++) {
		const struct opt_pair *r = &o->cgroup_roots.v[i];
		bool used = false;
		if (!cg_path_ok(r->value)) {
			pr_err("restore: --cgroup-root %s: not an absolute cgroup path", r->value);
			return -EINVAL;
		}
		for (size_t h = 0; h < img->n_hierarchies; h++) {
			const CgroupHierarchy *hier = img->hierarchies[h];
			bool named = r->key && cg_hierarchy_named(hier->controllers, r->key);
			if (named || (!r->key && hier->n_dirs && !p->new_roots[h]))
				p->new_roots[h] = r->value;
			used |= named;
		}
		if (r->key && !used)
			pr_warn("restore: --cgroup-root %s:%s names no cgroup hierarchy of the images",
				r->key, r->value);
	}
	for (size_t h = 0; h < img->n_hierarchies; h++)
		if (p->new_roots[h] && (err = check_confined(img, h)))
			return err;
	return 0;
}

/* Which sets hold threads apart from their processes (NULL: none, or out of memory). */
static bool *sets_of_threads(const struct restore_tree *rt, size_t n_sets, int *err)
{
	bool *used = NULL;

	*err = 0;
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const TaskCore *c = rt->tasks[i].core;
		for (size_t k = 0; k < c->n_threads; k++) {
			uint32_t ts = c->threads[k]->cg_set;
			if (!ts || ts == c->cg_set)
				continue;
			if (!used && !(used = xzalloc(n_sets * sizeof(bool)))) {
				*err = -ENOMEM;
				return NULL;
			}
			used[ts - 1] = true;
		}
	}
	return used;
}

static int prepare_cgroups(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct cgroups_state *st = state_of(ctx);
	int err;

	if (!st->place.img)
		return 0;
	if (!(st->place.thread_sets = sets_of_threads(rt, st->place.img->n_sets, &err)) && err)
		return err;
	st->place.opts = ctx->opts;
	st->place.mode = ctx->opts->cgroup_mode == CG_MODE_DEFAULT ? CG_MODE_SOFT : ctx->opts->cgroup_mode;
	err = cg_place_tree(&st->place, rt->inv->cgroup_ns, rt->tasks[0].core->cg_set);
	/* if stasis dies before the tree is let go, its watchdog removes them */
	for (size_t i = 0; i < st->place.made.n; i++)
		watchdog_undo_cgroup(rt->watchdog, st->place.made.v[i].hfd, cg_rel(st->place.made.v[i].path));
	return err;
}

static int enter_cgroups(struct run_ctx *ctx, struct restore_tree *rt)
{
	const struct cg_place *p = &state_of(ctx)->place;
	int err = 0;

	for (size_t h = 0; p->enter_moves && h < p->img->n_hierarchies && !err; h++)
		if (p->enter_moves[h] >= 0)
			err = cg_place_move(p, p->enter_moves[h], rt->tasks[0].pid);
	return err;
}

static size_t cgroups_args_size(const struct restore_task *t)
{
	const struct cg_place *p = &state_of(t->ctx)->place;
	size_t n = 0;

	for (size_t k = 0; p->img && k < t->core->n_threads; k++)
		n += t->core->threads[k]->cg_set != 0;
	return n * (p->img ? p->img->n_hierarchies : 0) * sizeof(struct rst_thread_cgroup);
}

/* The blob's list of thread moves: each thread writes to copies of the files stasis opened. */
static int thread_moves_args(struct restore_task *t, const struct cg_place *p)
{
	struct restorer_args *a = t->args;
	struct rst_thread_cgroup *out = restorer_args_alloc(t, cgroups_args_size(t), &a->thread_cgroups_off);

	if (!out)
		return -ENOMEM;
	a->nr_thread_cgroups = 0;
	for (size_t k = 0; k < t->core->n_threads; k++) {
		const ThreadCore *tc = t->core->threads[k];
		for (size_t h = 0; h < p->img->n_hierarchies; h++) {
			int i = cg_place_thread_move(p, tc->cg_set, t->core->cg_set, h), fd;
			if (i < 0)
				continue;
			if ((fd = restore_copy_high(t, p->procs[i].fd, false)) < 0)
				return fd;
			out[a->nr_thread_cgroups++] = (struct rst_thread_cgroup){ tc->tid, fd };
		}
	}
	return 0;
}

static int restore_task_cgroups(struct restore_task *t)
{
	const struct cg_place *p = &state_of(t->ctx)->place;
	uint32_t set = t->core->cg_set;
	int err = 0;

	for (size_t h = 0; p->set_moves && set && h < p->img->n_hierarchies && !err; h++) {
		int i = p->set_moves[(set - 1) * p->img->n_hierarchies + h];
		if (i >= 0)
			err = cg_place_move(p, i, t->pid);
	}
	return err || !p->img ? err : thread_moves_args(t, p);
}

static void close_cgroups(struct run_ctx *ctx)
{
	cg_place_close(&state_of(ctx)->place);
}

static void undo_cgroups(struct run_ctx *ctx, bool restored)
{
	cg_place_undo(&state_of(ctx)->place, restored);
}

static void free_cgroups(void *state)
{
	struct cgroups_state *st = state;

	cg_place_free(&st->place);
	if (st->place.img)
		image_free((ProtobufCMessage *)&st->place.img->base);
	if (st->img)
		cgroups__free_unpacked(st->img, NULL);
	free(st->walk_root);
	free(st->nested);
}

const struct tree_object_ops tree_cgroups = {
	.name = "cgroups",
	.state_size = sizeof(struct cgroups_state),
	.free_state = free_cgroups,
	.collect = collect_cgroups,
	.write = write_cgroups,
	.validate = validate_cgroups,
	.prepare = prepare_cgroups,
	.enter = enter_cgroups,
	.close = close_cgroups,
	.undo = undo_cgroups,
};

const struct state_ops state_cgroups = {
	.name = "cgroups",
	.dump = dump_task_cgroups,
	.args_size = cgroups_args_size,
	.restore = restore_task_cgroups,
};
