/*
 * Nested namespaces (cr/nested-ns.h): which processes are in a namespace of a kind other than
 * the root's, which of them makes it again, and the checks of both sides.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "nested-ns.h"
#include "tree-plan.h"
#include "util.h"

static int ns_ino(pid_t pid, const char *kind, uint64_t *ino)
{
	char path[64];
	struct stat st;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, kind);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/%s", kind);
	if (stat(path, &st)) {
		pr_perror("dump: cannot read %s", path);
		return -errno;
	}
	*ino = st.st_ino;
	return 0;
}

void nested_ns_free(struct nested_ns *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].members);
	free(v);
}

/* The namespace (index in v) task k is in, -1: the root's. */
static ssize_t ns_of(const struct nested_ns *v, size_t n, size_t k)
{
	for (size_t i = 0; i < n; i++)
		for (size_t m = 0; m < v[i].n; m++)
			if (v[i].members[m] == k)
				return i;
	return -1;
}

static int add_member(struct nested_ns *ns, size_t k)
{
	size_t *more = xreallocarray(ns->members, ns->n + 1, sizeof(*more));

	if (!more)
		return -ENOMEM;
	ns->members = more;
	ns->members[ns->n++] = k;
	return 0;
}

int nested_ns_find(const struct dump_tree *tr, const char *kind, struct nested_ns **out, size_t *n)
{
	uint64_t own, root, *ids = xzalloc(tr->nr_tasks * sizeof(*ids));
	struct nested_ns *v = NULL;
	size_t nr = 0;
	int err = 0;

	*out = NULL;
	*n = 0;
	if (!ids)
		return -ENOMEM;
	if ((err = ns_ino(0, kind, &own)))
		goto out;
	for (size_t k = 0; k < tr->nr_tasks && !err; k++)
		err = ns_ino(tr->tasks[k].pid, kind, &ids[k]);
	if (err)
		goto out;
	root = ids[0];
	/* tasks come parents first: a namespace's topmost process is the first seen in it */
	for (size_t k = 1; k < tr->nr_tasks; k++) {
		const struct dump_task *t = &tr->tasks[k];
		size_t i;
		if (ids[k] == root)
			continue;
		if (ids[k] == own) {
			pr_err("dump pid %d: it is in stasis's own %s namespace %s:[%llu], the tree's root in "
			       "%s:[%llu]; a process of the tree can only be in the root's or one made below "
			       "it", t->vpid, kind, kind, (unsigned long long)own, kind,
			       (unsigned long long)root);
			err = -ENOTSUP;
			goto out;
		}
		for (i = 0; i < nr && v[i].id != ids[k]; i++)
			;
		if (i == nr) {
			struct nested_ns *more = xreallocarray(v, nr + 1, sizeof(*more));
			if (!more) {
				err = -ENOMEM;
				goto out;
			}
			v = more;
			v[nr] = (struct nested_ns){ .id = ids[k] };
			v[nr].from = t->parent ? ns_of(v, nr, t->parent - tr->tasks) : -1;
			nr++;
		} else if (!t->parent || ids[t->parent - tr->tasks] != ids[k]) {
			const struct dump_task *maker = &tr->tasks[v[i].members[0]];
			pr_err("dump pid %d: it is in %s namespace %s:[%llu], made by pid %d, but its parent "
			       "is not: a nested namespace is restored only for its maker's descendants",
			       t->vpid, kind, kind, (unsigned long long)ids[k], maker->vpid);
			err = -ENOTSUP;
			goto out;
		}
		if ((err = add_member(&v[i], k)))
			goto out;
	}
out:
	free(ids);
	if (err) {
		nested_ns_free(v, nr);
		return err;
	}
	*out = v;
	*n = nr;
	return 0;
}

/* ---- restore ---- */

int nested_ns_image_read(int images_dir, bool listed, enum image_type type, ProtobufCMessage **img)
{
	char name[64];

	*img = NULL;
	if (listed)
		return image_read(images_dir, type, 0, img);
	snprintf(name, sizeof(name), "%s.img", image_desc(type)->name);
	if (faccessat(images_dir, name, F_OK, 0) == 0) {
		pr_err("image %s: present, but inventory.img does not say so", name);
		return -EINVAL;
	}
	return 0;
}

static ssize_t view_of(const struct nested_ns_view *v, size_t n, uint32_t pid)
{
	for (size_t i = 0; i < n; i++)
		for (size_t m = 0; m < v[i].n; m++)
			if (v[i].pids[m] == pid)
				return i;
	return -1;
}

static const TreeEntry *entry_of(const Inventory *inv, uint32_t pid, size_t *idx)
{
	for (size_t i = 0; i < inv->n_tree; i++)
		if (inv->tree[i]->pid == pid) {
			if (idx)
				*idx = i;
			return inv->tree[i];
		}
	return NULL;
}

int nested_ns_validate(const struct restore_tree *rt, const char *image, const struct nested_ns_view *v,
		       size_t n)
{
	const Inventory *inv = rt->inv;

	for (size_t i = 0; i < n; i++) {
		if (!v[i].n || v[i].pids[0] != v[i].maker || v[i].maker == inv->root_pid) {
			pr_err("image %s: namespace %zu: its maker (pid %u) is invalid", image, i, v[i].maker);
			return -EINVAL;
		}
		for (size_t m = 0; m < v[i].n; m++) {
			uint32_t pid = v[i].pids[m];
			size_t idx = 0;
			const TreeEntry *e = entry_of(inv, pid, &idx);
			ssize_t parent_ns, creator_ns;
			bool twice = false;
			for (size_t k = 0; k < n; k++)
				for (size_t j = 0; j < v[k].n; j++)
					twice |= v[k].pids[j] == pid && (k != i || j != m);
			if (!e || e->zombie || e->group_helper || twice || !pstree_task((struct restore_tree *)rt, pid)) {
				pr_err("image %s: namespace %zu: pid %u is not a live process of the tree, or "
				       "is listed twice", image, i, pid);
				return -EINVAL;
			}
			parent_ns = view_of(v, n, e->ppid);
			creator_ns = view_of(v, n, rt->plan[idx].creator);
			if (m == 0 ? parent_ns == (ssize_t)i || parent_ns > (ssize_t)i : parent_ns != (ssize_t)i) {
				pr_err("image %s: namespace %zu: pid %u %s", image, i, pid,
				       m ? "is not a descendant of its maker" : "(its maker) has its parent in it");
				return -EINVAL;
			}
			/* it inherits the namespace of the process that forks it */
			if (creator_ns != parent_ns || (m == 0 && rt->plan[idx].lift)) {
				pr_err("restore pid %u: it is forked by pid %u, which is not in the namespaces "
				       "it inherits (of its parent %u); not supported with nested namespaces",
				       pid, rt->plan[idx].creator, e->ppid);
				return -ENOTSUP;
			}
		}
	}
	return 0;
}

ssize_t nested_ns_made_by(const struct nested_ns_view *v, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].maker == (uint32_t)pid)
			return i;
	return -1;
}
