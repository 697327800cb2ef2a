/*
 * Mount namespaces that processes of the tree made (unshare CLONE_NEWNS) from the tree's or
 * from another such one (mount-nested.img; cr/nested-ns.h): a systemd service's own
 * (ProtectSystem=, PrivateTmp=, InaccessiblePaths=, ...).
 *
 * Dump: per namespace, its maker's mount table (libmount), each mount compared with the
 * table of the namespace it was made from (its maker's parent's): one with the same mount
 * point, filesystem and root there is inherited; any other is a bind of one of the
 * namespace's own mounts (the one of its filesystem whose root holds it most closely), or a
 * filesystem made anew (tmpfs: its files saved through a detached copy made inside it,
 * tmpfs.c). Restore, in the maker when it is created (after the tree's mounts exist, inside
 * the tree's root): unshare(CLONE_NEWNS), a copy of its parent's table, made a slave of it
 * (MS_REC | MS_SLAVE); the copy's mounts matched with the inherited ones (by mount point and
 * filesystem type, in order: stacked mounts too), those it does not keep unmounted (deepest
 * first), the per-mount flags that differ set, its own mounts made in its order (parents
 * first, mount-make.c; a /proc of its own first of all, as the others are made through
 * /proc/self/fd), then each mount's propagation as saved: private, slave (kept from the copy,
 * or a bind of a slave), shared in groups of its own. A namespace made from stasis's own (a
 * tree on the host) may miss host mounts gone since the dump: they are left out, said.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "mount-ns.h"
#include "mounts.h"
#include "nested-ns.h"
#include "proc.h"
#include "ns-make.h"
#include "tree.h"
#include "tree-objects.h"
#include "task.h"
#include "util.h"

#ifndef MOVE_MOUNT_SET_GROUP
#define MOVE_MOUNT_SET_GROUP 0x00000100
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif

#define FLAG_MASK ((uint64_t)(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | \
			      MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME | MS_NOSYMFOLLOW))

struct mount_nested_state {
	MountNested *img;
	struct nested_ns_view *views;
	bool *from_host;  /* restore, per namespace: made from stasis's own (the tree has none) */
	struct tmpfs_image **contents; /* restore, per namespace, per mount: a tmpfs's, opened when checked */
};

static struct mount_nested_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_mount_nested);
}

/* A view of namespace n's mounts as the tree's table type (mount-make.c, tmpfs.c take it). */
static MountNs table_of(const NestedMountNs *n)
{
	MountNs t = MOUNT_NS__INIT;

	t.n_mounts = n->n_mounts;
	t.mounts = n->mounts;
	return t;
}

/*
 * How mount i of the namespace's table nt (its maker, namespace id) is made again: inherited
 * from pt (the table it was made from; used marks those taken), a bind of one of its own, or
 * made anew. Fails naming what cannot be made again.
 */
static int classify_nested(const struct dump_task *maker, uint64_t ns_id, const struct mount_table *nt,
			   size_t i, const struct mount_table *pt, bool *used, MountEntry *e)
{
	pid_t pid = maker->vpid;
	const struct mount_info *m = &nt->m[i], *of = NULL;
	const char *rest = NULL, *r;

	for (size_t k = 0; k < pt->n; k++)
		if (!used[k] && pt->m[k].dev == m->dev && !strcmp(pt->m[k].mountpoint, m->mountpoint) &&
		    !strcmp(pt->m[k].root, m->root)) {
			used[k] = true;
			e->has_inherited = e->inherited = true;
			e->how = MOUNT_HOW__MOUNT_ROOT; /* (not made) */
			for (size_t j = 0; m->shared && j < pt->n; j++)
				if (pt->m[j].shared == m->shared) {
					pr_warn("dump pid %d: mount %s of mount namespace mnt:[%llu] shares peer "
						"group %u with the namespace it was made from; it is restored in a "
						"group of its own", pid, m->mountpoint, (unsigned long long)ns_id,
						m->shared);
					break;
				}
			return 0;
		}
	if (i == 0) {
		/* (its mount table is read through it: a chroot shows only what is below its root) */
		char root[PATH_MAX] = "";
		bool chrooted = proc_readlink(pid, "root", root, sizeof(root)) >= 0 && strcmp(root, "/");
		pr_err("dump pid %d: the root of its mount namespace mnt:[%llu] is not the one of the "
		       "namespace it was made from (%s%s); not supported", pid, (unsigned long long)ns_id,
		       chrooted ? "it is chrooted, to " : "pivot_root", chrooted ? root : "");
		return -ENOTSUP;
	}
	if (m->idmapped) { /* (made again, its owners would be the filesystem's own) */
		pr_err("dump pid %d: mount %s (%s, %s) of its mount namespace mnt:[%llu] is idmapped "
		       "(mount_setattr MOUNT_ATTR_IDMAP): not supported", pid, m->mountpoint, m->fstype,
		       m->root, (unsigned long long)ns_id);
		return -ENOTSUP;
	}
	/* a bind of a mount it keeps (one it made before this one, or inherited) */
	for (size_t k = 0; k < nt->n; k++) {
		if (k == i || nt->m[k].dev != m->dev || !mount_path_below(nt->m[k].root, m->root, &r))
			continue;
		if (k > i) { /* only an inherited one exists before this one is made */
			bool inherited = false;
			for (size_t j = 0; j < pt->n && !inherited; j++)
				inherited = pt->m[j].dev == nt->m[k].dev &&
					    !strcmp(pt->m[j].mountpoint, nt->m[k].mountpoint) &&
					    !strcmp(pt->m[j].root, nt->m[k].root);
			if (!inherited)
				continue;
		}
		if (!of || strlen(nt->m[k].root) < strlen(of->root)) {
			of = &nt->m[k];
			rest = r;
		}
	}
	if (of)
		return mount_bind_fill(maker->pid, m, of->id, rest, e);
	if (mount_fstype_fresh(m->fstype) && !strcmp(m->root, "/")) {
		e->how = MOUNT_HOW__MOUNT_FRESH;
		e->has_has_contents = true;
		e->has_contents = !strcmp(m->fstype, "tmpfs") || !strcmp(m->fstype, "ramfs");
		return 0;
	}
	pr_err("dump pid %d: mount %s (%s from %s, %s) of its mount namespace mnt:[%llu] is neither "
	       "one of the namespace it was made from nor a bind of one it has; not supported", pid,
	       m->mountpoint, m->fstype, m->source, m->root, (unsigned long long)ns_id);
	return -ENOTSUP;
}

static int dump_one(struct run_ctx *ctx, const struct dump_tree *tr, const struct nested_ns *v,
		    NestedMountNs *out)
{
	const struct dump_task *maker = &tr->tasks[v->members[0]];
	struct mount_table nt = { 0 }, pt = { 0 };
	pid_t from = maker->parent ? maker->parent->pid : tr->tasks[0].pid;
	bool *used = NULL;
	int err;

	out->ns_id = v->id;
	out->maker = maker->vpid;
	if (!(out->pids = xzalloc(v->n * sizeof(*out->pids))))
		return -ENOMEM;
	for (size_t m = 0; m < v->n; m++)
		out->pids[out->n_pids++] = tr->tasks[v->members[m]].vpid;
	if ((err = mount_table_read(maker->pid, &nt)) || (err = mount_table_read(from, &pt)))
		goto out;
	if (!(used = xzalloc((pt.n + 1) * sizeof(bool))) ||
	    !(out->mounts = xzalloc(nt.n * sizeof(*out->mounts)))) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nt.n && !err; i++) {
		MountEntry *e = xzalloc(sizeof(*e));
		if (!e) {
			err = -ENOMEM;
			break;
		}
		mount_entry__init(e);
		out->mounts[out->n_mounts++] = e;
		if (!(err = mount_entry_fill(maker->pid, &nt.m[i], i == 0, e)))
			err = classify_nested(maker, v->id, &nt, i, &pt, used, e);
	}
	if (!err) {
		MountNs t = table_of(out);
		err = tmpfs_dump_mounts(ctx, maker->pid, &t);
	}
	if (!err)
		pr_info("dump pid %u: its own mount namespace mnt:[%llu], %zu mounts, %zu processes",
			out->maker, (unsigned long long)v->id, out->n_mounts, out->n_pids);
out:
	free(used);
	mount_table_free(&nt);
	mount_table_free(&pt);
	return err;
}

static int collect_mount_nested(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct mount_nested_state *st = state_of(ctx);
	struct nested_ns *v;
	size_t n;
	int err;

	if ((err = nested_ns_find(tr, "mnt", &v, &n)) || !n)
		return err;
	if (!(st->img = xzalloc(sizeof(*st->img))) ||
	    (mount_nested__init(st->img), !(st->img->ns = xzalloc(n * sizeof(*st->img->ns))))) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && !err; i++) {
		NestedMountNs *m = xzalloc(sizeof(*m));
		if (!m) {
			err = -ENOMEM;
			break;
		}
		nested_mount_ns__init(m);
		st->img->ns[st->img->n_ns++] = m;
		err = dump_one(ctx, tr, &v[i], m);
	}
	if (!err)
		tr->inv.has_mnt_nested = tr->inv.mnt_nested = true;
out:
	nested_ns_free(v, n);
	return err;
}

bool mount_nested_holds(const struct run_ctx *ctx, uint64_t mnt_id)
{
	const MountNested *img = state_of(ctx)->img;

	for (size_t i = 0; img && i < img->n_ns; i++)
		for (size_t k = 0; k < img->ns[i]->n_mounts; k++)
			if (img->ns[i]->mounts[k]->id == mnt_id)
				return true;
	return false;
}

bool mount_nested_in(const struct run_ctx *ctx, pid_t pid)
{
	const struct mount_nested_state *st = state_of(ctx);

	for (size_t i = 0; st->img && i < st->img->n_ns; i++)
		for (size_t k = 0; k < st->img->ns[i]->n_pids; k++)
			if (st->img->ns[i]->pids[k] == (uint32_t)pid)
				return true;
	return false;
}

static const struct dump_task *task_of(const struct dump_tree *tr, uint32_t vpid)
{
	for (size_t i = 0; i < tr->nr_tasks; i++)
		if (tr->tasks[i].vpid == vpid)
			return &tr->tasks[i];
	return NULL;
}

/*
 * A file that several processes share is opened once by stasis, in the tree's mount namespace
 * (cr/files/shared.c): one held by a process in a nested namespace must be the same file at
 * its path there. Fails naming the pid, the fd and the path if it is not.
 */
static int check_shared_files(const struct dump_tree *tr)
{
	for (size_t i = 0; i < tr->nr_tasks; i++) {
		const FdTable *tab = tr->tasks[i].fds;
		for (size_t k = 0; tab && k < tab->n_fds; k++) {
			const FdEntry *s = tab->fds[k], *e = NULL;
			const struct dump_task *owner;
			if (s->kind != FD_KIND__FD_SHARED || !(owner = task_of(tr, s->shared_pid)) || !owner->fds ||
			    !mount_nested_in(owner->ctx, owner->vpid))
				continue;
			for (size_t j = 0; j < owner->fds->n_fds; j++)
				if (owner->fds->fds[j]->fd == s->shared_fd)
					e = owner->fds->fds[j];
			if (!e || !e->path || e->path[0] != '/')
				continue;
			char in_tree[PATH_MAX + 64], in_ns[PATH_MAX + 64];
			struct stat a, b;
			snprintf(in_tree, sizeof(in_tree), "/proc/%d/root%s", tr->tasks[0].pid, e->path);
			snprintf(in_ns, sizeof(in_ns), "/proc/%d/root%s", owner->pid, e->path);
			if (stat(in_ns, &b) || (!stat(in_tree, &a) && a.st_dev == b.st_dev && a.st_ino == b.st_ino))
				continue; /* (not there by its path: its own kind said how it comes back) */
			pr_err("dump pid %u fd %u: %s, shared with pid %u, is in its own mount namespace "
			       "another file than the tree's at that path; stasis opens shared files in the "
			       "tree's: not supported", owner->vpid, e->fd, e->path, tr->tasks[i].vpid);
			return -ENOTSUP;
		}
	}
	return 0;
}

static int write_mount_nested(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct mount_nested_state *st = state_of(ctx);
	int err;

	if (!st->img)
		return 0;
	if ((err = check_shared_files(tr)))
		return err;
	return image_write(ctx->images_dir_fd, IMG_MOUNT_NESTED, 0, &st->img->base);
}

/* ---- restore ---- */

static const MountEntry *entry_before(const NestedMountNs *n, size_t before, uint32_t id)
{
	for (size_t i = 0; i < before; i++)
		if (n->mounts[i]->id == id)
			return n->mounts[i];
	return NULL;
}

static int validate_one(const struct run_ctx *ctx, size_t k, const NestedMountNs *n,
			struct tmpfs_image *contents)
{
	int err;

	for (size_t i = 0; i < n->n_mounts; i++) {
		const MountEntry *e = n->mounts[i];
		bool ok = mount_path_ok(e->mountpoint) && !entry_before(n, i, e->id) &&
			  (i == 0 ? !strcmp(e->mountpoint, "/") && e->inherited
				  : entry_before(n, i, e->parent_id) != NULL) &&
			  !(e->mount_flags & ~FLAG_MASK) && !e->ext_key && !e->ext_path;
		if (ok && !e->inherited && e->how == MOUNT_HOW__MOUNT_BIND) {
			const MountEntry *of = NULL;
			for (size_t j = 0; j < n->n_mounts && e->has_bind_of; j++)
				if (n->mounts[j]->id == e->bind_of && j != i && (j < i || n->mounts[j]->inherited))
					of = n->mounts[j];
			ok = of && e->bind_root && !strstr(e->bind_root, "..");
		} else if (ok && !e->inherited) {
			ok = e->how == MOUNT_HOW__MOUNT_FRESH;
			if (ok && !mount_fs_allowed(ctx, e->fstype)) {
				pr_err("image mount-nested.img: namespace %zu: mount %s is a %s filesystem; "
				       "allow it with --enable-fs %s", k, e->mountpoint, e->fstype, e->fstype);
				return -EPERM;
			}
			if (ok && e->has_contents && (err = tmpfs_image_open(ctx->images_dir_fd, e->id, &contents[i])))
				return err;
		}
		if (!ok) {
			pr_err("image mount-nested.img: namespace %zu: mount %zu (%.100s) is invalid", k, i,
			       e->mountpoint);
			return -EINVAL;
		}
	}
	if (!n->n_mounts) {
		pr_err("image mount-nested.img: namespace %zu has no mounts", k);
		return -EINVAL;
	}
	return 0;
}

static int validate_mount_nested(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct mount_nested_state *st = state_of(ctx);
	int err;

	if ((err = nested_ns_image_read(ctx->images_dir_fd, rt->inv->mnt_nested, IMG_MOUNT_NESTED,
					(ProtobufCMessage **)&st->img)) || !st->img)
		return err;
	if (!(st->views = xzalloc((st->img->n_ns + 1) * sizeof(*st->views))) ||
	    !(st->from_host = xzalloc((st->img->n_ns + 1) * sizeof(bool))) ||
	    !(st->contents = xzalloc((st->img->n_ns + 1) * sizeof(*st->contents))))
		return -ENOMEM;
	for (size_t i = 0; i < st->img->n_ns; i++) {
		const NestedMountNs *n = st->img->ns[i];
		if (!(st->contents[i] = xzalloc((n->n_mounts + 1) * sizeof(**st->contents))))
			return -ENOMEM;
		for (size_t j = 0; j < n->n_mounts; j++)
			st->contents[i][j].data_fd = -1;
		if ((err = validate_one(ctx, i, n, st->contents[i])))
			return err;
		st->views[i] = (struct nested_ns_view){ n->maker, n->pids, n->n_pids };
	}
	if ((err = nested_ns_validate(rt, "mount-nested.img", st->views, st->img->n_ns)))
		return err;
	/* (checked: every maker is in the tree, its parent in the tree's namespace or a nested one) */
	for (size_t i = 0; i < st->img->n_ns && !rt->inv->mnt_ns; i++) {
		uint32_t ppid = 0;
		bool nested = false;
		for (size_t k = 0; k < rt->inv->n_tree; k++)
			if (rt->inv->tree[k]->pid == st->views[i].maker)
				ppid = rt->inv->tree[k]->ppid;
		for (size_t k = 0; k < st->img->n_ns; k++)
			for (size_t j = 0; j < st->views[k].n; j++)
				nested |= st->views[k].pids[j] == ppid;
		st->from_host[i] = !nested;
	}
	return 0;
}

/* mount(2) on the top mount at path (absolute, in our root) with flags. */
static int at_path(pid_t pid, const char *path, unsigned long flags, const char *what)
{
	if (mount(NULL, path, NULL, flags, NULL)) {
		pr_perror("restore pid %d: cannot %s mount %s", pid, what, path);
		return -errno;
	}
	return 0;
}

/*
 * The copy's mounts matched with the inherited ones (match[i]: index in c, or -1). One made
 * from stasis's own namespace (from_host) may miss some of the host's mounts of the dump: they
 * are not the tree's to restore (-2: said and left out).
 */
static int match_copy(pid_t pid, const NestedMountNs *n, const struct mount_table *c, ssize_t *match,
		      bool *kept, bool from_host)
{
	for (size_t i = 0; i < n->n_mounts; i++) {
		const MountEntry *e = n->mounts[i];
		match[i] = -1;
		if (!e->inherited)
			continue;
		for (size_t k = 0; k < c->n && match[i] < 0; k++)
			if (!kept[k] && !strcmp(c->m[k].mountpoint, e->mountpoint) &&
			    (i == 0 || !strcmp(c->m[k].fstype, e->fstype))) {
				match[i] = k;
				kept[k] = true;
			}
		if (match[i] < 0 && from_host) {
			pr_warn("restore pid %d: mount %s (%s) of its own mount namespace, the host's at the "
				"dump, is not there any more; left out", pid, e->mountpoint, e->fstype);
			match[i] = -2;
		} else if (match[i] < 0) {
			pr_err("restore pid %d: mount %s (%s) of its own mount namespace is not in the one it "
			       "is made from", pid, e->mountpoint, e->fstype);
			return -ENOENT;
		}
	}
	return 0;
}

/* Mount e (private) joins the peer group of l, or becomes a slave of it as l is (SET_GROUP). */
static int join_group_of(pid_t pid, const MountEntry *l, const MountEntry *e)
{
	auto_close int f = open(l->mountpoint, O_PATH | O_CLOEXEC);
	auto_close int t = open(e->mountpoint, O_PATH | O_CLOEXEC);
	int err;

	if (f < 0 || t < 0 || (err = at_path(pid, e->mountpoint, MS_PRIVATE, "make private")) ||
	    syscall(SYS_move_mount, f, "", t, "",
		    MOVE_MOUNT_SET_GROUP | MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)) {
		pr_perror("restore pid %d: cannot put mount %s in the peer group of %s", pid,
			  e->mountpoint, l->mountpoint);
		return -errno ? -errno : -EIO;
	}
	return 0;
}

static int set_propagation(pid_t pid, const NestedMountNs *n, const ssize_t *match)
{
	int err;

	for (size_t i = 0; i < n->n_mounts; i++) {
		const MountEntry *e = n->mounts[i], *l = mount_group_leader(n->mounts, n->n_mounts, e->shared);
		if (match[i] == -2)
			continue;
		if (!e->master && (err = at_path(pid, e->mountpoint, MS_PRIVATE, "make private")))
			return err;
		if (!e->shared)
			continue;
		if ((err = l == e ? at_path(pid, e->mountpoint, MS_SHARED, "share") : join_group_of(pid, l, e)))
			return err;
	}
	/* a slave of a peer group of this namespace's own (one of another stays as the copy made it) */
	for (size_t i = 0; i < n->n_mounts; i++) {
		const MountEntry *e = n->mounts[i], *l = mount_group_leader(n->mounts, n->n_mounts, e->master);
		if (match[i] == -2 || !l || e->shared)
			continue;
		if ((err = join_group_of(pid, l, e)) || (err = at_path(pid, e->mountpoint, MS_SLAVE, "enslave")))
			return err;
	}
	for (size_t i = 0; i < n->n_mounts; i++)
		if (n->mounts[i]->unbindable && match[i] != -2 &&
		    (err = at_path(pid, n->mounts[i]->mountpoint, MS_UNBINDABLE, "make unbindable")))
			return err;
	return 0;
}

/*
 * A /proc of its own (systemd's ProtectProc=): made first, by its path, as soon as the copy's
 * is gone; every other mount is made through /proc/self/fd (mount-make.c).
 */
static bool proc_first(const MountEntry *e)
{
	return !e->inherited && e->how == MOUNT_HOW__MOUNT_FRESH && !strcmp(e->fstype, "proc") &&
	       !strcmp(e->mountpoint, "/proc");
}

static int make_one(const struct run_ctx *ctx, pid_t pid, const NestedMountNs *n, bool from_host,
		    struct tmpfs_image *contents)
{
	struct mount_table c = { 0 };
	ssize_t *match = xzalloc((n->n_mounts + 1) * sizeof(*match));
	bool *kept = NULL;
	MountNs t = table_of(n);
	int err, root = -1;

	if (!match)
		return -ENOMEM;
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL)) {
		pr_perror("restore pid %d: cannot make its own mount namespace", pid);
		free(match);
		return -errno;
	}
	if ((err = mount_table_read(PROC_SELF, &c)))
		goto out;
	if (!(kept = xzalloc((c.n + 1) * sizeof(bool)))) {
		err = -ENOMEM;
		goto out;
	}
	if ((err = match_copy(pid, n, &c, match, kept, from_host)))
		goto out;
	/* what it does not keep goes, deepest first */
	for (size_t k = c.n; k-- > 1;)
		if (!kept[k] && (pr_debug("restore pid %d: its own mount namespace: without %s (%s)", pid,
					  c.m[k].mountpoint, c.m[k].fstype), 1) && umount2(c.m[k].mountpoint, MNT_DETACH) && errno != EINVAL && errno != ENOENT) {
			pr_perror("restore pid %d: cannot unmount %s in its own mount namespace", pid,
				  c.m[k].mountpoint);
			err = -errno;
			goto out;
		}
	for (size_t i = 1; i < n->n_mounts; i++) {
		const MountEntry *e = n->mounts[i];
		if (proc_first(e) && mount(e->source, "/proc", "proc", e->mount_flags & ~(uint64_t)MS_RDONLY,
					   e->fs_options && *e->fs_options ? e->fs_options : NULL)) {
			pr_perror("restore pid %d: cannot mount /proc in its own mount namespace", pid);
			err = -errno;
			goto out;
		}
	}
	/* the kept ones' flags, before anything is mounted over them */
	for (size_t i = 0; i < n->n_mounts; i++) {
		const MountEntry *e = n->mounts[i];
		if (match[i] >= 0 && c.m[match[i]].flags != e->mount_flags &&
		    (err = at_path(pid, e->mountpoint, MS_REMOUNT | MS_BIND | e->mount_flags, "set the flags of")))
			goto out;
	}
	if ((root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		err = -errno;
		goto out;
	}
	for (size_t i = 1; i < n->n_mounts; i++)
		if (!n->mounts[i]->inherited && !proc_first(n->mounts[i]) &&
		    (pr_debug("restore pid %d: its own mount namespace: makes %s", pid, n->mounts[i]->mountpoint),
		     (err = mount_make(&t, i, root, ctx, -1, &contents[i], ns_make_tree_userns(ctx)))))
			goto out;
	err = set_propagation(pid, n, match);
out:
	if (root >= 0)
		close(root);
	mount_table_free(&c);
	free(kept);
	free(match);
	return err;
}

int mount_nested_make(const struct run_ctx *ctx, pid_t pid)
{
	struct mount_nested_state *st = state_of(ctx);
	ssize_t i = st->img ? nested_ns_made_by(st->views, st->img->n_ns, pid) : -1;

	return i < 0 ? 0 : make_one(ctx, pid, st->img->ns[i], st->from_host[i], st->contents[i]);
}

static void free_mount_nested(void *state)
{
	struct mount_nested_state *st = state;

	for (size_t i = 0; st->contents && i < st->img->n_ns; i++)
		for (size_t j = 0; st->contents[i] && j < st->img->ns[i]->n_mounts; j++)
			tmpfs_image_close(&st->contents[i][j]);
	for (size_t i = 0; st->contents && i < st->img->n_ns; i++)
		free(st->contents[i]);
	free(st->contents);
	if (st->img)
		image_free(&st->img->base);
	free(st->views);
	free(st->from_host);
}

const struct tree_object_ops tree_mount_nested = {
	.name = "nested mount namespaces",
	.state_size = sizeof(struct mount_nested_state),
	.free_state = free_mount_nested,
	.collect = collect_mount_nested,
	.write = write_mount_nested,
	.validate = validate_mount_nested,
};
