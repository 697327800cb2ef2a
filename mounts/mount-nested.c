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
#include <linux/openat2.h>
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
#include "ns-helper.h"
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

/* The index in pt of a mount with m's mount point, filesystem and root (not among used), or -1. */
static ssize_t same_in(const struct mount_table *pt, const bool *used, const struct mount_info *m)
{
	for (size_t k = 0; k < pt->n; k++)
		if ((!used || !used[k]) && pt->m[k].dev == m->dev &&
		    !strcmp(pt->m[k].mountpoint, m->mountpoint) && !strcmp(pt->m[k].root, m->root))
			return k;
	return -1;
}

/*
 * In a namespace with a root of its own: m as a bind of a mount of pt (the table of the one it
 * was made from, read through pid from), by the path there that leads to m's root (checked by
 * inode against m's mount point in the maker's; only by filesystem if a mount covers that). 0
 * if there is none.
 */
static int outer_fill(pid_t maker, pid_t from, const struct mount_info *m, const struct mount_table *pt,
		      MountEntry *e)
{
	char here[PATH_MAX + 64];
	struct stat want, got;
	const char *r;

	bool seen = snprintf(here, sizeof(here), "/proc/%d/root%s", maker, m->mountpoint) < (int)sizeof(here) &&
		    !stat(here, &want) && want.st_dev == m->dev;
	for (size_t k = pt->n; k-- > 0;) { /* (the latest of those on one spot is the one seen) */
		if (pt->m[k].dev != m->dev || !mount_path_below(pt->m[k].root, m->root, &r))
			continue;
		char *path = mount_path_join(pt->m[k].mountpoint, r);
		if (!path)
			return -ENOMEM;
		if (seen ? mount_path_leads_to(from, path, want.st_dev, want.st_ino)
			 : snprintf(here, sizeof(here), "/proc/%d/root%s", from, path) < (int)sizeof(here) &&
				   !stat(here, &got) && got.st_dev == m->dev) {
			e->how = MOUNT_HOW__MOUNT_OUTER;
			e->outer_path = path;
			return 1;
		}
		free(path);
	}
	return 0;
}

/*
 * Whether no other mount of m's filesystem is in nt (but m, and binds of files removed since,
 * kept apart) or pt: what m does not show is gone.
 */
static bool alone(const struct mount_table *nt, const struct mount_info *m, const struct mount_table *pt)
{
	for (size_t k = 0; k < nt->n; k++)
		if (&nt->m[k] != m && nt->m[k].dev == m->dev && !ends_with(nt->m[k].root, "//deleted"))
			return false;
	for (size_t k = 0; k < pt->n; k++)
		if (pt->m[k].dev == m->dev)
			return false;
	return true;
}

/*
 * How mount i of the namespace's table nt (its maker, namespace id) is made again: inherited
 * from pt (the table it was made from, read through from; used marks those taken), a bind of
 * one of its own, made anew, or (own_root: it has a root of its own, nothing is inherited) a
 * bind of one of pt's. Fails naming what cannot be made again.
 */
static int classify_nested(const struct dump_task *maker, pid_t from, uint64_t ns_id,
			   const struct mount_table *nt, size_t i, const struct mount_table *pt,
			   bool own_root, bool *used, MountEntry *e, pid_t tree_root)
{
	pid_t pid = maker->vpid;
	const struct mount_info *m = &nt->m[i], *of = NULL;
	const char *rest = NULL, *r;
	ssize_t same = own_root ? -1 : same_in(pt, used, m);
	int err;

	if (same >= 0) {
		used[same] = true;
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
	if (m->idmapped) { /* (made again, its owners would be the filesystem's own) */
		pr_err("dump pid %d: mount %s (%s, %s) of its mount namespace mnt:[%llu] is idmapped "
		       "(mount_setattr MOUNT_ATTR_IDMAP): not supported", pid, m->mountpoint, m->fstype,
		       m->root, (unsigned long long)ns_id);
		return -ENOTSUP;
	}
	if (own_root && (err = mount_removed_file_fill(maker->pid, m, e)))
		return err < 0 ? err : 0;
	/* a bind of a mount it keeps (one it made before this one, or inherited) */
	for (size_t k = 0; k < nt->n; k++) {
		if (k == i || nt->m[k].dev != m->dev || !mount_path_below(nt->m[k].root, m->root, &r))
			continue;
		/* (only an inherited one exists before this one is made) */
		if (k > i && (own_root || same_in(pt, NULL, &nt->m[k]) < 0))
			continue;
		if (!of || strlen(nt->m[k].root) < strlen(of->root)) {
			of = &nt->m[k];
			rest = r;
		}
	}
	if (of)
		return mount_bind_fill(maker->pid, m, of->id, rest, e);
	/* (with a root of its own: one the namespace it was made from shows is bound from there) */
	if (own_root && (err = outer_fill(maker->pid, from, m, pt, e)))
		return err < 0 ? err : 0;
	if (!strcmp(m->fstype, "nsfs"))
		return mount_nsfs_fill(tree_root, m, e);
	/* made anew: what it does not show of a tmpfs is gone if nothing else shows it */
	if (mount_fstype_fresh(m->fstype) &&
	    (!strcmp(m->root, "/") || (!strcmp(m->fstype, "tmpfs") && alone(nt, m, pt)))) {
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

/* In a helper that joined the namespace (its root: the namespace's, and what is mounted on it). */
static int stat_ns_root(void *out, size_t len)
{
	(void)len;
	return statx(AT_FDCWD, "/", 0, STATX_INO | STATX_MNT_ID, out) ? -errno : 0;
}

static bool same_file(const struct statx *a, const struct statx *b)
{
	return a->stx_mnt_id == b->stx_mnt_id && a->stx_ino == b->stx_ino &&
	       a->stx_dev_major == b->stx_dev_major && a->stx_dev_minor == b->stx_dev_minor;
}

/*
 * Its maker's root is the namespace's root, and every other process's root is what its path
 * (as /proc/PID/root reads) leads to from there: a chroot is made again by that path. A root
 * elsewhere (the maker chrooted, a root moved over the namespace's) cannot be told by path.
 */
static int check_roots(const struct dump_tree *tr, const struct nested_ns *v)
{
	const struct dump_task *maker = &tr->tasks[v->members[0]];
	struct statx ns_root, its, there;
	int err;

	if ((err = ns_helper_run(maker->pid, CLONE_NEWNS, stat_ns_root, &ns_root, sizeof(ns_root)))) {
		pr_err("dump pid %u: cannot look at the root of its mount namespace mnt:[%llu]", maker->vpid,
		       (unsigned long long)v->id);
		return err;
	}
	for (size_t m = 0; m < v->n; m++) {
		const struct dump_task *t = &tr->tasks[v->members[m]];
		char path[64], root[PATH_MAX] = "/", at[PATH_MAX + 64];
		snprintf(path, sizeof(path), "/proc/%d/root", t->pid);
		if (statx(AT_FDCWD, path, 0, STATX_INO | STATX_MNT_ID, &its) ||
		    (m && proc_readlink(t->pid, "root", root, sizeof(root)) < 0)) {
			pr_perror("dump pid %u: cannot look at its root", t->vpid);
			return -errno ? -errno : -EIO;
		}
		snprintf(at, sizeof(at), "/proc/%d/root%s", maker->pid, root);
		bool ok = !m ? same_file(&its, &ns_root)
			     : !statx(AT_FDCWD, strcmp(root, "/") ? at : path, 0, STATX_INO | STATX_MNT_ID, &there) &&
				       same_file(&its, strcmp(root, "/") ? &there : &ns_root);
		if (!ok) {
			pr_err("dump pid %u: its root is not the root of its mount namespace mnt:[%llu] (a "
			       "chroot%s, or a root moved over it): not supported", t->vpid,
			       (unsigned long long)v->id, m ? " where its path does not lead" : " of its maker");
			return -ENOTSUP;
		}
	}
	return 0;
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
	if ((err = check_roots(tr, v)) || (err = mount_table_read(maker->pid, &nt)) ||
	    (err = mount_table_read(from, &pt)))
		goto out;
	if (!(used = xzalloc((pt.n + 1) * sizeof(bool))) ||
	    !(out->mounts = xzalloc(nt.n * sizeof(*out->mounts)))) {
		err = -ENOMEM;
		goto out;
	}
	/* pivot_root (its root is the namespace's: check_roots()) */
	if (nt.n && same_in(&pt, NULL, &nt.m[0]) < 0)
		out->has_own_root = out->own_root = true;
	for (size_t i = 0; i < nt.n && !err; i++) {
		if (mount_nsfs_hidden(&nt, i))
			continue; /* (mount-table.c says why) */
		MountEntry *e = xzalloc(sizeof(*e));
		if (!e) {
			err = -ENOMEM;
			break;
		}
		mount_entry__init(e);
		out->mounts[out->n_mounts++] = e;
		if (!(err = mount_entry_fill(maker->pid, &nt.m[i], i == 0, e)))
			err = classify_nested(maker, from, v->id, &nt, i, &pt, out->own_root, used, e,
					      tr->tasks[0].pid);
	}
	if (!err) {
		MountNs t = table_of(out);
		if (!(err = tmpfs_dump_mounts(ctx, maker->pid, &t)))
			err = mounts_note_nsfs(ctx, out->mounts, out->n_mounts, out->maker);
	}
	if (!err)
		pr_info("dump pid %u: its own mount namespace mnt:[%llu]%s, %zu mounts, %zu processes",
			out->maker, (unsigned long long)v->id, out->own_root ? " with a root of its own" : "",
			out->n_mounts, out->n_pids);
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

uint32_t mount_nested_maker(const struct run_ctx *ctx, pid_t vpid)
{
	const MountNested *img = state_of(ctx)->img;

	for (size_t i = 0; img && i < img->n_ns; i++)
		for (size_t k = 0; k < img->ns[i]->n_pids; k++)
			if (img->ns[i]->pids[k] == (uint32_t)vpid)
				return img->ns[i]->maker;
	return 0;
}

static const struct dump_task *task_of(const struct dump_tree *tr, uint32_t vpid)
{
	for (size_t i = 0; i < tr->nr_tasks; i++)
		if (tr->tasks[i].vpid == vpid)
			return &tr->tasks[i];
	return NULL;
}

/* Is t forked below the process vpid (or it)? */
static bool below(const struct dump_task *t, uint32_t vpid)
{
	for (; t; t = t->parent)
		if ((uint32_t)t->vpid == vpid)
			return true;
	return false;
}

/*
 * A file that several processes share is opened once: by stasis, in the tree's mount namespace
 * (cr/files/shared.c), or, on a mount of a nested namespace (fd_entry.mntns_maker), by that
 * namespace's maker once it made it. One held by a process in a nested namespace must be the
 * same file at its path in the tree's, or one of the namespace whose every sharer is forked
 * below its maker. Fails naming the pid, the fd and the path if it is not.
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
			if (e->has_mntns_maker) {
				if (below(&tr->tasks[i], e->mntns_maker))
					continue;
				pr_err("dump pid %u fd %u: %s, shared with pid %u, is a file of the mount namespace "
				       "pid %u made, which pid %u was not forked below (not supported)", owner->vpid,
				       e->fd, e->path, tr->tasks[i].vpid, e->mntns_maker, tr->tasks[i].vpid);
				return -ENOTSUP;
			}
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
			  (i == 0 ? !strcmp(e->mountpoint, "/") && e->inherited != n->own_root
				  : entry_before(n, i, e->parent_id) != NULL) &&
			  !(e->mount_flags & ~FLAG_MASK) && !e->ext_key && !e->ext_path &&
			  !(n->own_root && e->inherited) && (e->how == MOUNT_HOW__MOUNT_OUTER) == !!e->outer_path;
		if (ok && !e->inherited && e->how == MOUNT_HOW__MOUNT_BIND) {
			const MountEntry *of = NULL;
			for (size_t j = 0; j < n->n_mounts && e->has_bind_of; j++)
				if (n->mounts[j]->id == e->bind_of && j != i && (j < i || n->mounts[j]->inherited))
					of = n->mounts[j];
			ok = of && e->bind_root && !strstr(e->bind_root, "..");
		} else if (ok && !e->inherited && e->how == MOUNT_HOW__MOUNT_OUTER) {
			ok = n->own_root && mount_path_ok(e->outer_path);
		} else if (ok && !e->inherited && e->how == MOUNT_HOW__MOUNT_NSFS) {
			ok = mount_nsfs_valid(e);
		} else if (ok && !e->inherited && e->how == MOUNT_HOW__MOUNT_REMOVED_FILE) {
			ok = n->own_root && i > 0 && e->is_file && e->has_removed_data &&
			     e->removed_data.len <= MOUNT_REMOVED_FILE_MAX && e->has_deleted_mode;
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
	return mounts_note_nsfs(ctx, n->mounts, n->n_mounts, n->maker);
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

/*
 * Where mount i of n is for mount(2) and open(2): its mount point (absolute, in our root: the top
 * mount there), or through tops[i], an fd of it (a mount covered since is reached so too).
 */
static const char *mount_at(char buf[static 32], const NestedMountNs *n, const int *tops, size_t i)
{
	if (!tops)
		return n->mounts[i]->mountpoint;
	snprintf(buf, 32, "/proc/self/fd/%d", tops[i]);
	return buf;
}

/* mount(2) on mount i of n with flags (a propagation type alone: mount_setattr on its fd). */
static int at_mount(pid_t pid, const NestedMountNs *n, const int *tops, size_t i, unsigned long flags,
		    const char *what)
{
	struct mount_attr attr = { .propagation = flags };
	char buf[32];
	bool propagation = flags == MS_PRIVATE || flags == MS_SHARED || flags == MS_SLAVE ||
			   flags == MS_UNBINDABLE;

	if (propagation && tops ? syscall(SYS_mount_setattr, tops[i], "", AT_EMPTY_PATH, &attr, sizeof(attr))
				: mount(NULL, mount_at(buf, n, tops, i), NULL, flags, NULL)) {
		pr_perror("restore pid %d: cannot %s mount %s", pid, what, n->mounts[i]->mountpoint);
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

/* Mount i of n (private) joins the peer group of mount l, or becomes a slave of it as l is (SET_GROUP). */
static int join_group_of(pid_t pid, const NestedMountNs *n, const int *tops, size_t l, size_t i)
{
	char buf[32];
	auto_close int f = open(mount_at(buf, n, tops, l), O_PATH | O_CLOEXEC);
	auto_close int t = open(mount_at(buf, n, tops, i), O_PATH | O_CLOEXEC);
	int err;

	if (f < 0 || t < 0 || (err = at_mount(pid, n, tops, i, MS_PRIVATE, "make private")) ||
	    syscall(SYS_move_mount, f, "", t, "",
		    MOVE_MOUNT_SET_GROUP | MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)) {
		pr_perror("restore pid %d: cannot put mount %s in the peer group of %s", pid,
			  n->mounts[i]->mountpoint, n->mounts[l]->mountpoint);
		return -errno ? -errno : -EIO;
	}
	return 0;
}

/* The index of the first mount of n in peer group g (its leader), -1 if none (or g is 0). */
static ssize_t leader_of(const NestedMountNs *n, uint32_t g)
{
	const MountEntry *l = mount_group_leader(n->mounts, n->n_mounts, g);

	for (size_t i = 0; l && i < n->n_mounts; i++)
		if (n->mounts[i] == l)
			return i;
	return -1;
}

/* Whether mount i was left out (match: as match_copy() gives; NULL: nothing is inherited). */
static bool left_out(const ssize_t *match, size_t i)
{
	return match && match[i] == -2;
}

/* tops: as mount_at() takes them */
static int set_propagation(pid_t pid, const NestedMountNs *n, const ssize_t *match, const int *tops)
{
	int err;

	for (size_t i = 0; i < n->n_mounts; i++) {
		const MountEntry *e = n->mounts[i];
		ssize_t l = leader_of(n, e->shared);
		if (left_out(match, i))
			continue;
		if (!e->master && (err = at_mount(pid, n, tops, i, MS_PRIVATE, "make private")))
			return err;
		if (!e->shared)
			continue;
		if ((err = l == (ssize_t)i ? at_mount(pid, n, tops, i, MS_SHARED, "share")
					  : join_group_of(pid, n, tops, l, i)))
			return err;
	}
	/* a slave of a peer group of this namespace's own (one of another stays as the copy made it) */
	for (size_t i = 0; i < n->n_mounts; i++) {
		ssize_t l = leader_of(n, n->mounts[i]->master);
		if (left_out(match, i) || l < 0 || n->mounts[i]->shared)
			continue;
		if ((err = join_group_of(pid, n, tops, l, i)) ||
		    (err = at_mount(pid, n, tops, i, MS_SLAVE, "enslave")))
			return err;
	}
	for (size_t i = 0; i < n->n_mounts; i++)
		if (n->mounts[i]->unbindable && !left_out(match, i) &&
		    (err = at_mount(pid, n, tops, i, MS_UNBINDABLE, "make unbindable")))
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

/*
 * Fds of a namespace's mounts as they are made (or kept from the copy), per mount: tops, its
 * root, for its propagation at the end; sources, the source of a bind of one of its own, taken
 * as soon as that one is there, before a mount made later can cover its path.
 */
struct made_mounts {
	int *tops;
	int *sources;
};

/* Mount j of n is there, held in m->tops[j]: the sources of the binds of it taken through it. */
static void hold_bind_sources(const NestedMountNs *n, size_t j, struct made_mounts *m)
{
	/* (a path that crosses a mount, one there already, is left to be found by path) */
	struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS };

	for (size_t i = 0; i < n->n_mounts; i++) {
		const MountEntry *e = n->mounts[i];
		if (e->inherited || e->how != MOUNT_HOW__MOUNT_BIND || e->bind_of != n->mounts[j]->id ||
		    e->bind_root_deleted || m->sources[i] >= 0)
			continue;
		const char *rest = e->bind_root + strspn(e->bind_root, "/");
		m->sources[i] = syscall(SYS_openat2, m->tops[j], *rest ? rest : ".", &how, sizeof(how));
	}
}

/* For mount i of n, a bind: a copy (open_tree) of its source held, or -1 (found by path). */
static int bind_copy(const NestedMountNs *n, const struct made_mounts *m, size_t i)
{
	if (n->mounts[i]->how != MOUNT_HOW__MOUNT_BIND || m->sources[i] < 0)
		return -1;
	return syscall(SYS_open_tree, m->sources[i], "", OPEN_TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH);
}

struct yard_file {
	int yard;
	const char *name;
	const MountEntry *e; /* NULL: a directory */
	uint32_t uid, gid;
};

static int yard_file_make(void *arg)
{
	const struct yard_file *y = arg;
	const MountEntry *e = y->e;

	if (!e)
		return mkdirat(y->yard, y->name, 0700) ? -errno : 0;
	auto_close int fd = openat(y->yard, y->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, e->removed_data.data, e->removed_data.len) || fchown(fd, y->uid, y->gid) ||
	    fchmod(fd, e->deleted_mode & 07777))
		return -errno;
	return 0;
}

/*
 * A directory (e NULL), or the file MOUNT_REMOVED_FILE mount e binds, made in the yard: as the
 * root of the tree's user namespace if it has one (mount_as_ns_root(): the yard is that one's).
 */
static int yard_make(const struct run_ctx *ctx, int yard, const char *name, const MountEntry *e)
{
	struct yard_file y = { yard, name, e, e ? e->deleted_uid : 0, e ? e->deleted_gid : 0 };

	if (!ns_make_tree_userns(ctx))
		return yard_file_make(&y);
	ns_make_tree_ids(ctx, false, &y.uid, 1);
	ns_make_tree_ids(ctx, true, &y.gid, 1);
	return mount_as_ns_root(yard_file_make, &y, "the yard of a mount namespace");
}

/*
 * The file a MOUNT_REMOVED_FILE mount e binds, made again in the yard as name (removed once it
 * is bound): a copy (open_tree) of it.
 */
static int removed_file_copy(const struct run_ctx *ctx, pid_t pid, int yard, const char *name,
			     const MountEntry *e)
{
	int copy = -1, err;

	if ((err = yard_make(ctx, yard, name, e)) ||
	    (copy = syscall(SYS_open_tree, yard, name, OPEN_TREE_CLONE | O_CLOEXEC)) < 0) {
		err = err ? err : -errno;
		pr_err("restore pid %d: mount %s of its own mount namespace: cannot make the removed "
		       "file it binds again: %s", pid, e->mountpoint, strerror(-err));
		unlinkat(yard, name, 0);
		return err;
	}
	return copy;
}

/*
 * Mount i of a namespace with a root of its own, made under root (for mounts[0]: the yard, it
 * goes at /root there). A
 * MOUNT_OUTER one is bound from a copy (open_tree) of what its path leads to from outer (the
 * root of the namespace it is made from), made just before (mounts get their order in the
 * table as they are made); a MOUNT_REMOVED_FILE one from a file made in the yard.
 */
static int make_own_mount(const struct run_ctx *ctx, pid_t pid, const NestedMountNs *n, size_t i,
			  int root, int outer, int yard, const struct made_mounts *m, struct tmpfs_image *contents)
{
	const MountEntry *e = n->mounts[i];
	MountNs t = table_of(n);
	MountEntry in_yard = *e, *alone[1] = { &in_yard };
	auto_close int copy = -1;

	if (i == 0) {
		in_yard.mountpoint = (char *)"/root";
		t.mounts = alone;
		t.n_mounts = 1;
	}
	pr_debug("restore pid %d: its own mount namespace: makes %s", pid, e->mountpoint);
	if (e->how == MOUNT_HOW__MOUNT_OUTER &&
	    (copy = syscall(SYS_open_tree, outer, e->outer_path[1] ? e->outer_path + 1 : ".",
			    OPEN_TREE_CLONE | O_CLOEXEC)) < 0) {
		pr_perror("restore pid %d: mount %s of its own mount namespace: its source %s", pid,
			  e->mountpoint, e->outer_path);
		return -errno;
	}
	char removed[32];
	snprintf(removed, sizeof(removed), "removed.%zu", i);
	if (e->how == MOUNT_HOW__MOUNT_REMOVED_FILE && (copy = removed_file_copy(ctx, pid, yard, removed, e)) < 0)
		return copy;
	if (e->how == MOUNT_HOW__MOUNT_BIND)
		copy = bind_copy(n, m, i);
	int err = mount_make(&t, i, root, ctx, copy, contents, ns_make_tree_userns(ctx));
	if (e->how == MOUNT_HOW__MOUNT_REMOVED_FILE)
		unlinkat(yard, removed, 0);
	return err;
}

/*
 * A namespace with a root of its own (pivot_root; in the maker, in its copy of the one it is
 * made from): a yard (a small tmpfs over "/") to make its root in, its mounts made under that
 * root (sources outside it found from the old root), then the maker moves into it and the rest
 * is detached.
 */
static int make_own_root(const struct run_ctx *ctx, pid_t pid, const NestedMountNs *n,
			 struct tmpfs_image *contents, struct made_mounts *m)
{
	int *tops = m->tops;
	auto_close int outer = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	auto_close int fs = -1, yard = -1;
	int err = 0;

	if (outer < 0 || (fs = syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC)) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "0777", 0) ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) ||
	    (yard = syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0)) < 0 ||
	    syscall(SYS_move_mount, yard, "", outer, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH))
		err = -errno;
	else
		err = yard_make(ctx, yard, "root", NULL);
	if (err) {
		pr_err("restore pid %d: cannot make a place for the root of its own mount namespace: %s", pid,
		       strerror(-err));
		return err;
	}
	for (size_t i = 0; i < n->n_mounts && !err; i++) {
		int under = i ? tops[0] : yard;
		const char *at = i ? n->mounts[i]->mountpoint : "/root";
		if (!(err = make_own_mount(ctx, pid, n, i, under, outer, yard, m, &contents[i])) &&
		    (tops[i] = mount_open_in_root(under, at, O_PATH)) < 0)
			err = tops[i];
		if (!err)
			hold_bind_sources(n, i, m);
	}
	/* the old root goes onto the new one with the yard over it: both detached, the yard first */
	if (!err && (fchdir(tops[0]) || syscall(SYS_pivot_root, ".", ".") || umount2(".", MNT_DETACH) ||
		     umount2(".", MNT_DETACH) || chdir("/"))) {
		pr_perror("restore pid %d: cannot move into the root of its own mount namespace (pivot_root)", pid);
		err = -errno;
	}
	return err ? err : set_propagation(pid, n, NULL, tops);
}

/* In the maker, in its copy of the namespace it is made from. */
static int make_from_copy(const struct run_ctx *ctx, pid_t pid, const NestedMountNs *n, bool from_host,
			  struct tmpfs_image *contents, struct made_mounts *m)
{
	int *tops = m->tops;
	struct mount_table c = { 0 };
	ssize_t *match = xzalloc((n->n_mounts + 1) * sizeof(*match));
	bool *kept = NULL;
	MountNs t = table_of(n);
	int err, root = -1;

	if (!match)
		return -ENOMEM;
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
	/* the kept ones held before anything is mounted over them: /proc of its own first */
	for (size_t i = 0; i < n->n_mounts; i++)
		if (match[i] >= 0 && (tops[i] = open(n->mounts[i]->mountpoint, O_PATH | O_CLOEXEC)) < 0) {
			pr_perror("restore pid %d: mount %s of its own mount namespace", pid, n->mounts[i]->mountpoint);
			err = -errno;
			goto out;
		}
	for (size_t i = 1; i < n->n_mounts; i++) {
		const MountEntry *e = n->mounts[i];
		if (proc_first(e) && (mount(e->source, "/proc", "proc", e->mount_flags & ~(uint64_t)MS_RDONLY,
					    e->fs_options && *e->fs_options ? e->fs_options : NULL) ||
				      (tops[i] = open("/proc", O_PATH | O_CLOEXEC)) < 0)) {
			pr_perror("restore pid %d: cannot mount /proc in its own mount namespace", pid);
			err = -errno;
			goto out;
		}
	}
	for (size_t i = 0; i < n->n_mounts; i++) {
		const MountEntry *e = n->mounts[i];
		if (match[i] >= 0 && c.m[match[i]].flags != e->mount_flags &&
		    (err = at_mount(pid, n, tops, i, MS_REMOUNT | MS_BIND | e->mount_flags, "set the flags of")))
			goto out;
		if (match[i] >= 0)
			hold_bind_sources(n, i, m);
	}
	if ((root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		err = -errno;
		goto out;
	}
	for (size_t i = 1; i < n->n_mounts; i++) {
		const MountEntry *e = n->mounts[i];
		if (e->inherited || proc_first(e))
			continue;
		pr_debug("restore pid %d: its own mount namespace: makes %s", pid, e->mountpoint);
		auto_close int copy = bind_copy(n, m, i);
		if ((err = mount_make(&t, i, root, ctx, copy, &contents[i], ns_make_tree_userns(ctx))))
			goto out;
		if ((tops[i] = mount_open_in_root(root, e->mountpoint, O_PATH)) < 0) {
			err = tops[i];
			goto out;
		}
		hold_bind_sources(n, i, m);
	}
	err = set_propagation(pid, n, match, tops);
out:
	if (root >= 0)
		close(root);
	mount_table_free(&c);
	free(kept);
	free(match);
	return err;
}

/* Namespace n made in the maker pid: a copy of the one it is made from, made its own, or (a
 * root of its own) a root made anew. */
static int make_one(const struct run_ctx *ctx, pid_t pid, const NestedMountNs *n, bool from_host,
		    struct tmpfs_image *contents)
{
	struct made_mounts m = { xzalloc((n->n_mounts + 1) * sizeof(int)), xzalloc((n->n_mounts + 1) * sizeof(int)) };
	int err;

	if (!m.tops || !m.sources) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n->n_mounts; i++)
		m.tops[i] = m.sources[i] = -1;
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL)) {
		pr_perror("restore pid %d: cannot make its own mount namespace", pid);
		err = -errno;
	} else {
		err = n->own_root ? make_own_root(ctx, pid, n, contents, &m)
				  : make_from_copy(ctx, pid, n, from_host, contents, &m);
	}
	for (size_t i = 0; m.tops && m.sources && i < n->n_mounts; i++) {
		close_fdp(&m.tops[i]);
		close_fdp(&m.sources[i]);
	}
out:
	free(m.tops);
	free(m.sources);
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
