/*
 * Restore: where the tree's processes go. The images' cgroups are made or found as
 * --manage-cgroups says (criu's modes: none and props use only cgroups that exist, strict only
 * cgroups it makes, soft and full either; properties go to the cgroups stasis made, and with
 * props and full to those it found too), below --cgroup-root's new root if one is given; then
 * the cgroup.procs of every cgroup a process moves into is opened, while stasis still sees the
 * host's cgroup filesystems. Stasis made every process of the tree in its own cgroups (the root)
 * or in the root's (every other one): a process moves only where its cgroup differs.
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
#include "task.h"
#include "util.h"

static const char *mode_name(enum cgroup_mode m)
{
	static const char *const names[] = { "ignore", "none", "props", "soft", "full", "strict", "soft" };
	return m <= CG_MODE_DEFAULT ? names[m] : "?";
}

/* Where a saved cgroup is restored: below --cgroup-root's new root if one is given (NULL: out
 * of memory). */
static char *placed(const struct cg_place *p, size_t h, const char *path)
{
	const char *from = p->img->hierarchies[h]->root;

	if (p->new_roots[h] && cg_path_within(path, from))
		return cg_path_moved(path, from, p->new_roots[h]);
	return xstrdup(path);
}

/* A process's cgroup: placed, or the restoring stasis's own if it shared stasis's (NULL: none,
 * errno 0; or out of memory, errno ENOMEM). */
static char *destination(const struct cg_place *p, size_t h, const char *path,
			 const char *stasis_now)
{
	const CgroupHierarchy *hier = p->img->hierarchies[h];

	errno = 0;
	if (!strcmp(path, hier->stasis_own) && !(p->new_roots[h] && cg_path_within(path, hier->root)))
		return stasis_now ? xstrdup(stasis_now) : NULL;
	return placed(p, h, path);
}

static int open_hierarchy(struct cg_place *p, size_t h, const char *stasis_now)
{
	const char *c = p->img->hierarchies[h]->controllers;

	if (p->hfds[h] >= 0)
		return 0;
	if (!stasis_now) {
		pr_err("restore: the cgroup hierarchy %s of the images is not mounted on this host",
		       cg_hierarchy_name(c));
		return -ENOENT;
	}
	p->hfds[h] = cg_hierarchy_open(p->opts, c);
	return p->hfds[h] < 0 ? p->hfds[h] : 0;
}

static bool made_here(const struct cg_place *p, size_t h, const char *path)
{
	for (size_t i = 0; i < p->made.n; i++)
		if (p->made.v[i].hfd == p->hfds[h] && !strcmp(p->made.v[i].path, path))
			return true;
	return false;
}

/* The cgroup is there, or made if the mode allows. */
static int ensure_cgroup(struct cg_place *p, size_t h, const char *path)
{
	const char *c = p->img->hierarchies[h]->controllers;

	if (!faccessat(p->hfds[h], cg_rel(path), F_OK, 0))
		return 0;
	if (errno != ENOENT) {
		pr_perror("restore: cannot look for cgroup %s:%s", cg_hierarchy_name(c), path);
		return -errno;
	}
	if (p->mode == CG_MODE_NONE || p->mode == CG_MODE_PROPS) {
		pr_err("restore: cgroup %s:%s does not exist; --manage-cgroups=%s restores only into "
		       "cgroups that exist", cg_hierarchy_name(c), path, mode_name(p->mode));
		return -ENOENT;
	}
	return cg_make_dir(p->hfds[h], c, path, &p->made);
}

/* The tree's own cgroups of hierarchy h, made or found as the mode says, with properties. */
static int place_dirs(struct cg_place *p, size_t h, const char *stasis_now)
{
	const CgroupHierarchy *hier = p->img->hierarchies[h];
	int err = hier->n_dirs ? open_hierarchy(p, h, stasis_now) : 0;

	for (size_t i = 0; i < hier->n_dirs && !err; i++) {
		char *path = placed(p, h, hier->dirs[i]->path);
		if (!path)
			return -ENOMEM;
		bool existed = !made_here(p, h, path) && !faccessat(p->hfds[h], cg_rel(path), F_OK, 0);
		if (existed && p->mode == CG_MODE_STRICT) {
			pr_err("restore: cgroup %s:%s exists; --manage-cgroups=strict restores only into "
			       "cgroups it makes", cg_hierarchy_name(hier->controllers), path);
			err = -EEXIST;
		} else if (!(err = ensure_cgroup(p, h, path)) &&
			   (!existed || p->mode == CG_MODE_PROPS || p->mode == CG_MODE_FULL)) {
			err = cg_dir_restore(p->hfds[h], hier->controllers, path, hier->dirs[i],
					     p->mode == CG_MODE_STRICT);
		}
		free(path);
	}
	return err;
}

/* The cgroup.procs (threads: tasks or cgroup.threads) of path in hierarchy h, opened once: its
 * index in p->procs. */
static int procs_of(struct cg_place *p, size_t h, const char *path, const char *stasis_now,
		    bool threads)
{
	const char *v2 = p->img->hierarchies[h]->controllers[0] ? NULL : "cgroup.threads";
	char file[4200];
	int err, fd;

	for (size_t i = 0; i < p->n_procs; i++)
		if (p->procs[i].hier == h && p->procs[i].threads == threads && !strcmp(p->procs[i].path, path))
			return i;
	if ((err = open_hierarchy(p, h, stasis_now)) || (err = ensure_cgroup(p, h, path)))
		return err;
	void *v = xreallocarray(p->procs, p->n_procs + 1, sizeof(*p->procs));
	if (!v)
		return -ENOMEM;
	p->procs = v;
	char *kept = xstrdup(path);
	if (!kept)
		return -ENOMEM;
	snprintf(file, sizeof(file), "%s/%s", cg_rel(path), !threads ? "cgroup.procs" : v2 ? v2 : "tasks");
	if ((fd = openat(p->hfds[h], file, O_WRONLY | O_CLOEXEC)) < 0) {
		pr_perror("restore: cannot open cgroup %s:%s",
			  cg_hierarchy_name(p->img->hierarchies[h]->controllers), path);
		free(kept);
		return -errno;
	}
	p->procs[p->n_procs] = (struct cg_procs){ h, kept, threads, fd };
	return p->n_procs++;
}

/*
 * Where each process moves: the root, made in stasis's cgroups, first into its own (or into
 * its cgroup namespace's root, which must be where it makes the namespace); every other
 * process is made in the root's and moves on from there if its own differ.
 */
static int plan_moves(struct cg_place *p, bool cgroup_ns, uint32_t root_set,
		      const struct cg_members *now)
{
	const Cgroups *img = p->img;
	int err = 0;

	if (!(p->enter_moves = xzalloc(img->n_hierarchies * sizeof(int) + 1)) ||
	    !(p->set_moves = xzalloc(img->n_sets * img->n_hierarchies * sizeof(int) + 1)) ||
	    !(p->thread_moves = xzalloc(img->n_sets * img->n_hierarchies * sizeof(int) + 1)) ||
	    !(p->nested_moves = xzalloc(img->n_nested * img->n_hierarchies * sizeof(int) + 1)))
		return -ENOMEM;
	for (size_t h = 0; h < img->n_hierarchies && err >= 0; h++) {
		const CgroupHierarchy *hier = img->hierarchies[h];
		const char *stasis_now = cg_members_path(now, hier->controllers);
		const char *root_cg = cgroup_ns && hier->ns_root ? hier->ns_root
				      : root_set ? img->sets[root_set - 1]->paths[h] : NULL;
		auto_free char *first = root_cg ? destination(p, h, root_cg, stasis_now) : NULL;
		const char *start = first ? first : stasis_now;

		p->enter_moves[h] = -1;
		if (root_cg && !first && errno == ENOMEM)
			return -ENOMEM;
		if (first && (!stasis_now || strcmp(first, stasis_now)))
			err = p->enter_moves[h] = procs_of(p, h, first, stasis_now, false);
		for (size_t s = 0; s < img->n_sets && err >= 0; s++) {
			auto_free char *to = destination(p, h, img->sets[s]->paths[h], stasis_now);
			int *move = &p->set_moves[s * img->n_hierarchies + h];
			int *thread_move = &p->thread_moves[s * img->n_hierarchies + h];
			*move = *thread_move = -1;
			if (!to && errno == ENOMEM)
				return -ENOMEM;
			if (to && (!start || strcmp(to, start)))
				err = *move = procs_of(p, h, to, stasis_now, false);
			if (to && err >= 0 && p->thread_sets && p->thread_sets[s])
				err = *thread_move = procs_of(p, h, to, stasis_now, true);
		}
		for (size_t i = 0; i < img->n_nested && err >= 0; i++) {
			auto_free char *to = destination(p, h, img->nested[i]->roots[h], stasis_now);
			int *move = &p->nested_moves[i * img->n_hierarchies + h];
			*move = -1;
			if (!to && errno == ENOMEM)
				return -ENOMEM;
			if (to)
				err = *move = procs_of(p, h, to, stasis_now, false);
		}
	}
	return err < 0 ? err : 0;
}

int cg_place_tree(struct cg_place *p, bool cgroup_ns, uint32_t root_set)
{
	struct cg_members now;
	int err;

	if ((err = cg_members_read("self", &now)))
		return err;
	if (!(p->hfds = xzalloc((p->img->n_hierarchies + 1) * sizeof(int)))) {
		cg_members_free(&now);
		return -ENOMEM;
	}
	for (size_t h = 0; h < p->img->n_hierarchies; h++)
		p->hfds[h] = -1;
	for (size_t h = 0; h < p->img->n_hierarchies && !err; h++)
		err = place_dirs(p, h, cg_members_path(&now, p->img->hierarchies[h]->controllers));
	if (!err)
		err = plan_moves(p, cgroup_ns, root_set, &now);
	cg_members_free(&now);
	pr_debug("restore: cgroups ready (%s mode, %zu made)", mode_name(p->mode), p->made.n);
	return err;
}

int cg_place_move(const struct cg_place *p, int i, pid_t pid)
{
	const struct cg_procs *c = &p->procs[i];

	if (write(c->fd, "0", 1) != 1) {
		pr_perror("restore pid %d: cannot move it into cgroup %s:%s", pid,
			  cg_hierarchy_name(p->img->hierarchies[c->hier]->controllers), c->path);
		return -errno;
	}
	return 0;
}

int cg_place_thread_move(const struct cg_place *p, uint32_t ts, uint32_t ps, size_t h)
{
	const Cgroups *img = p->img;

	if (!p->thread_moves || !ts || !ps || !strcmp(img->sets[ts - 1]->paths[h], img->sets[ps - 1]->paths[h]))
		return -1;
	return p->thread_moves[(ts - 1) * img->n_hierarchies + h];
}

int cg_place_enter_nested(const struct cg_place *p, size_t i, pid_t pid)
{
	int err = 0;

	for (size_t h = 0; h < p->img->n_hierarchies && !err; h++) {
		int move = p->nested_moves[i * p->img->n_hierarchies + h];
		if (move >= 0)
			err = cg_place_move(p, move, pid);
	}
	if (!err && unshare(CLONE_NEWCGROUP)) {
		pr_perror("restore pid %d: cannot make its own cgroup namespace", pid);
		return -errno;
	}
	return err;
}

void cg_place_close(struct cg_place *p)
{
	for (size_t i = 0; i < p->n_procs; i++) {
		if (p->procs[i].fd >= 0)
			close(p->procs[i].fd);
		p->procs[i].fd = -1;
	}
}

void cg_place_undo(struct cg_place *p, bool restored)
{
	cg_place_close(p);
	if (!restored)
		cg_remove_made(&p->made); /* the tree is dead: nothing is in them */
	for (size_t h = 0; p->hfds && h < p->img->n_hierarchies; h++) {
		if (p->hfds[h] >= 0)
			close(p->hfds[h]);
		p->hfds[h] = -1;
	}
}

void cg_place_free(struct cg_place *p)
{
	for (size_t i = 0; i < p->made.n; i++)
		free(p->made.v[i].path);
	free(p->made.v);
	for (size_t i = 0; i < p->n_procs; i++)
		free(p->procs[i].path);
	free(p->procs);
	free(p->enter_moves);
	free(p->set_moves);
	free(p->thread_moves);
	free(p->thread_sets);
	free(p->nested_moves);
	free(p->hfds);
	free(p->new_roots);
}
