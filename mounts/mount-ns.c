/*
 * The tree's own mount namespace (tree_mount_ns): its mount table (mount-ns.img) and tmpfs
 * contents. A tree in stasis's own mount namespace has nothing here.
 *
 * Dump: the root task's mount table, read with libmount, each mount classified
 * (mount-table.c); every tmpfs read through a detached copy of it that a helper, inside the
 * namespace, makes with open_tree(OPEN_TREE_CLONE) and hands over (tmpfs.c). Processes in
 * mount namespaces of their own below it: mount-nested.c.
 * Restore, in two halves. In stasis (prepare): it moves into a new mount namespace, a slave
 * of the host's (nothing it mounts reaches the host), binds --root on itself and makes there
 * every mount that needs no namespace of the tree: tmpfs (refilled), devpts, binds; then it
 * goes back to its own namespace, keeping the new one, which becomes the tree's. The tree's
 * paths resolve below --root (ctx->tree_root_fd) for every kind that opens files in stasis:
 * those files are on the tree's own mounts. In the tree's root (enter), in its new
 * namespaces: it joins that mount namespace, makes the mounts that belong to its other
 * namespaces (proc, sysfs, mqueue, cgroup, and whatever lies on them), propagation, then
 * pivot_root into --root and the old root detached: the tree sees its own mounts and nothing
 * of the host's. A failed restore leaves nothing: the namespace goes with its last process
 * and stasis's hold on it, and nothing in it was ever mounted on the host.
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
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "mount-ns.h"
#include "mounts.h"
#include "ns-helper.h"
#include "ns-make.h"
#include "pstree.h"
#include "tree-objects.h"
#include "task.h"
#include "util.h"

struct mount_ns_state {
	MountNs *ns;      /* dump: the classified table; restore: mount-ns.img, checked */
	bool *made;       /* restore: made by stasis (the rest is the root's) */
	struct tmpfs_image *contents; /* restore, per mount: a tmpfs's contents, opened when checked */
	char *root_path;  /* restore: --root, resolved */
	char *root_at;    /* restore: where --root is bound in the tree's new namespace: root_path,
			   * or for "/" (that the process's root would hide) an empty directory of
			   * /tmp made by stasis (pid root_at_maker) and removed after the restore */
	pid_t root_at_maker;
	int own_ns;       /* restore: stasis's own mount namespace (fd + 1) while it is away */
	int tree_ns;      /* restore: the tree's mount namespace (fd + 1), made by stasis */
};

static struct mount_ns_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_mount_ns);
}

static int mnt_ns_of(pid_t pid, uint64_t *ino)
{
	char path[64];
	struct stat st;

	if (pid == PROC_SELF)
		snprintf(path, sizeof(path), "/proc/self/ns/mnt");
	else
		snprintf(path, sizeof(path), "/proc/%d/ns/mnt", pid);
	if (stat(path, &st)) {
		pr_perror("cannot read the mount namespace of %s", path);
		return -errno;
	}
	*ino = st.st_ino;
	return 0;
}

static int collect_mount_ns(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct mount_ns_state *st = state_of(ctx);
	struct mount_table tree = { 0 }, host = { 0 };
	pid_t root = tr->tasks[0].pid;
	uint64_t own, its;
	int err;

	if ((err = mnt_ns_of(PROC_SELF, &own)) || (err = mnt_ns_of(root, &its)))
		return err;
	if (own == its)
		return 0;
	if (!(st->ns = xzalloc(sizeof(*st->ns))))
		return -ENOMEM;
	mount_ns__init(st->ns);
	if ((err = mount_table_read(root, &tree)) || (err = mount_table_read(PROC_SELF, &host)) ||
	    (ns_is_own(root, "cgroup", NULL) && (err = mount_table_cgroup_ns_roots(root, &tree))) ||
	    (err = mount_table_classify(ctx, root, &tree, &host, st->ns)) ||
	    (err = tmpfs_dump_mounts(ctx, root, st->ns)) ||
	    (err = mounts_note_nsfs(ctx, st->ns->mounts, st->ns->n_mounts, 0)))
		goto out;
	tr->inv.has_mnt_ns = tr->inv.mnt_ns = true;
	pr_info("dump pid %d: its own mount namespace, %zu mounts", root, st->ns->n_mounts);
out:
	mount_table_free(&tree);
	mount_table_free(&host);
	return err;
}

bool mount_ns_holds(const struct run_ctx *ctx, uint64_t mnt_id)
{
	const MountNs *ns = state_of(ctx)->ns;

	for (size_t i = 0; ns && i < ns->n_mounts; i++)
		if (ns->mounts[i]->id == mnt_id)
			return true;
	return !ns;
}

bool mount_ns_is_stasis(const struct run_ctx *ctx)
{
	return !state_of(ctx)->ns;
}

int mount_ns_path_of(const struct run_ctx *ctx, pid_t pid, const char *link, const struct stat *st,
		     char *path, size_t len)
{
	const MountNs *ns = state_of(ctx)->ns;

	for (size_t i = 0; ns && i < ns->n_mounts; i++) {
		const char *mp = ns->mounts[i]->mountpoint;
		int n = snprintf(path, len, "%s%s", strcmp(mp, "/") ? mp : "", link);
		if (n >= 0 && (size_t)n < len && mount_path_leads_to(pid, path, st->st_dev, st->st_ino))
			return 0;
	}
	return -ENOENT;
}

static int write_mount_ns(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct mount_ns_state *st = state_of(ctx);

	(void)tr;
	return st->ns ? image_write(ctx->images_dir_fd, IMG_MOUNT_NS, 0, &st->ns->base) : 0;
}

/* ---- restore ---- */

static const MountEntry *entry_by_id(const MountNs *ns, size_t before, uint32_t id)
{
	for (size_t i = 0; i < before; i++)
		if (ns->mounts[i]->id == id)
			return ns->mounts[i];
	return NULL;
}

bool mount_path_ok(const char *p)
{
	if (p[0] != '/' || strlen(p) >= 4096)
		return false;
	for (const char *c = p; *c;) {
		c += *c == '/';
		size_t n = strcspn(c, "/");
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.') || (!n && c[0]))
			return false;
		c += n;
	}
	return true;
}

bool mount_fs_allowed(const struct run_ctx *ctx, const char *fstype)
{
	if (mount_fstype_fresh(fstype))
		return true;
	for (size_t k = 0; k < ctx->opts->enable_fs.n; k++)
		if (!strcmp(ctx->opts->enable_fs.v[k].value, fstype) ||
		    !strcmp(ctx->opts->enable_fs.v[k].value, "all"))
			return true;
	return false;
}

static int validate_mount_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct mount_ns_state *st = state_of(ctx);
	struct stat sb;
	int err;

	if (!rt->inv->mnt_ns) {
		if (faccessat(ctx->images_dir_fd, "mount-ns.img", F_OK, 0) == 0) {
			pr_err("image mount-ns.img: present, but inventory.img says the tree shared the "
			       "host's mount namespace");
			return -EINVAL;
		}
		return 0;
	}
	if ((err = image_read(ctx->images_dir_fd, IMG_MOUNT_NS, 0, (ProtobufCMessage **)&st->ns)))
		return err;
	if (!ctx->opts->root) {
		pr_err("restore: the tree had a mount namespace of its own: pass --root DIR, its root "
		       "file system");
		return -EINVAL;
	}
	if (!(st->root_path = realpath(ctx->opts->root, NULL)) || stat(st->root_path, &sb) ||
	    !S_ISDIR(sb.st_mode)) {
		pr_err("restore: --root %s is not a directory", ctx->opts->root);
		return -ENOTDIR;
	}
	st->root_at = st->root_path;
	const MountNs *ns = st->ns;
	if (!(st->contents = xzalloc((ns->n_mounts + 1) * sizeof(*st->contents))))
		return -ENOMEM;
	for (size_t i = 0; i < ns->n_mounts; i++)
		st->contents[i].data_fd = -1;
	for (size_t i = 0; i < ns->n_mounts; i++) {
		const MountEntry *e = ns->mounts[i];
		bool ok = mount_path_ok(e->mountpoint) && !entry_by_id(ns, i, e->id) &&
			  (i == 0) == (e->how == MOUNT_HOW__MOUNT_ROOT) &&
			  (i == 0 ? !strcmp(e->mountpoint, "/") : entry_by_id(ns, i, e->parent_id) != NULL) &&
			  !(e->mount_flags & ~(uint64_t)(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC |
							  MS_NOATIME | MS_NODIRATIME | MS_RELATIME |
							  MS_STRICTATIME | MS_NOSYMFOLLOW));
		if (ok && e->how == MOUNT_HOW__MOUNT_BIND)
			ok = e->has_bind_of && entry_by_id(ns, i, e->bind_of) && e->bind_root &&
			     !strstr(e->bind_root, "..");
		if (ok && e->how == MOUNT_HOW__MOUNT_EXTERNAL)
			ok = (e->ext_key && *e->ext_key) || (e->ext_path && e->ext_path[0] == '/');
		if (ok && e->how == MOUNT_HOW__MOUNT_NSFS)
			ok = mount_nsfs_valid(e);
		if (ok && e->how == MOUNT_HOW__MOUNT_FRESH && !mount_fs_allowed(ctx, e->fstype)) {
			pr_err("image mount-ns.img: mount %s is a %s filesystem; allow it with --enable-fs %s",
			       e->mountpoint, e->fstype, e->fstype);
			return -EPERM;
		}
		if (!ok) {
			pr_err("image mount-ns.img: mount %zu (%.100s) is invalid", i, e->mountpoint);
			return -EINVAL;
		}
		if (e->how == MOUNT_HOW__MOUNT_EXTERNAL && !mount_external_source(ctx, e))
			return -ENOENT;
		if (e->has_contents && (err = tmpfs_image_open(ctx->images_dir_fd, e->id, &st->contents[i])))
			return err;
	}
	return mounts_note_nsfs(ctx, ns->mounts, ns->n_mounts, 0);
}

/*
 * Mounts that need the tree's namespaces, and those that lie on them or bind them; and binds
 * of a file of a devpts mount (a container's /dev/console is its terminal's slave): the pty
 * exists once the tree's ptys are made, after the mounts stasis makes itself.
 */
static bool deferred(const MountNs *ns, size_t i, const bool *later)
{
	const MountEntry *e = ns->mounts[i];
	const MountEntry *of = e->how == MOUNT_HOW__MOUNT_BIND && e->has_bind_of ? entry_by_id(ns, i, e->bind_of) : NULL;

	if ((e->how == MOUNT_HOW__MOUNT_FRESH && mount_fstype_in_ns(e->fstype)) || e->how == MOUNT_HOW__MOUNT_NSFS)
		return true;
	if (of && e->is_file && !strcmp(of->fstype, "devpts"))
		return true;
	for (size_t k = 0; k < i; k++)
		if (later[k] && (ns->mounts[k]->id == e->parent_id ||
				 (e->how == MOUNT_HOW__MOUNT_BIND && ns->mounts[k]->id == e->bind_of)))
			return true;
	return false;
}

bool mount_ns_made_by_root(const struct run_ctx *ctx, const char *path)
{
	const MountNs *ns = state_of(ctx)->ns;
	size_t best = 0, best_len = 0;
	bool found = false, late = false;

	if (!ns || !ns->n_mounts)
		return false;
	bool *later = xzalloc(ns->n_mounts * sizeof(bool));
	if (!later)
		return false;
	for (size_t i = 0; i < ns->n_mounts; i++) {
		const char *mp = ns->mounts[i]->mountpoint;
		size_t len = strlen(mp);
		later[i] = deferred(ns, i, later);
		if (!strcmp(mp, "/"))
			len = 0;
		/* the deepest mount point above path; of several on one, the last (on top) */
		if ((!len || (!strncmp(path, mp, len) && (path[len] == '/' || !path[len]))) &&
		    (!found || len >= best_len)) {
			best = i;
			best_len = len;
			found = true;
		}
	}
	late = found && later[best];
	free(later);
	return late;
}

/* stasis back in its own mount namespace, holding the one it made (the tree's from now on). */
static int leave_tree_mount_ns(struct mount_ns_state *st)
{
	int tree_ns = open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);

	if (tree_ns < 0) {
		pr_perror("restore: cannot open the tree's mount namespace");
		return -errno;
	}
	st->tree_ns = tree_ns + 1;
	if (setns(st->own_ns - 1, CLONE_NEWNS)) {
		pr_perror("restore: cannot go back to stasis's own mount namespace");
		return -errno;
	}
	close(st->own_ns - 1);
	st->own_ns = 0;
	return 0;
}

/*
 * A namespace the tree's user namespace owns is a copy of stasis's whose mounts are locked
 * together: neither --root nor a host path can be bound there alone. Copies of them (index
 * 0: --root; then each external mount) are made in stasis's namespace and moved in.
 */
static int copy_locked_sources(struct run_ctx *ctx, const struct mount_ns_state *st, int *copies)
{
	const MountNs *ns = st->ns;

	for (size_t i = 0; i < ns->n_mounts; i++) {
		const char *path = i == 0 ? st->root_path
				   : ns->mounts[i]->how == MOUNT_HOW__MOUNT_EXTERNAL ? mount_external_source(ctx, ns->mounts[i])
				   : NULL;
		if (!path)
			continue;
		copies[i] = syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (copies[i] < 0) {
			pr_perror("restore: cannot copy %s for mount %s", path, ns->mounts[i]->mountpoint);
			return -errno;
		}
	}
	return 0;
}

static int prepare_mount_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct mount_ns_state *st = state_of(ctx);
	const MountNs *ns = st->ns;
	auto_free bool *later = NULL;
	auto_free int *copies = NULL;
	int own, err = 0;

	(void)rt;
	if (!ns)
		return 0;
	if (!(st->made = xzalloc(ns->n_mounts * sizeof(bool))) ||
	    !(later = xzalloc(ns->n_mounts * sizeof(bool))) || !(copies = xmalloc(ns->n_mounts * sizeof(int))))
		return -ENOMEM;
	for (size_t i = 0; i < ns->n_mounts; i++)
		copies[i] = -1;
	if (ns_make_in_tree_userns(ctx, CLONE_NEWNS) && (err = copy_locked_sources(ctx, st, copies)))
		goto out;
	if (!strcmp(st->root_path, "/")) {
		char standin[] = "/tmp/.stasis-root.XXXXXX";
		if (!mkdtemp(standin) || !(st->root_at = xstrdup(standin))) {
			err = -errno;
			pr_perror("restore: cannot make a directory in /tmp to bind --root / on");
			st->root_at = st->root_path;
			goto out;
		}
		st->root_at_maker = getpid();
	}
	if ((own = open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC)) < 0) {
		pr_perror("restore: cannot open stasis's own mount namespace");
		err = -errno;
		goto out;
	}
	if ((err = ns_make(ctx, CLONE_NEWNS))) {
		close(own);
		goto out;
	}
	st->own_ns = own + 1;
	/* nothing made from here on reaches the host; --root becomes a mount of its own */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) ||
	    (copies[0] >= 0 ? syscall(SYS_move_mount, copies[0], "", AT_FDCWD, st->root_at,
				      MOVE_MOUNT_F_EMPTY_PATH)
			    : mount(st->root_path, st->root_at, NULL, MS_BIND, NULL)) ||
	    mount(NULL, st->root_at, NULL, MS_PRIVATE, NULL)) {
		pr_perror("restore: cannot prepare --root %s", st->root_path);
		err = -errno;
		goto out;
	}
	if ((ctx->tree_root_fd = open(st->root_at, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		err = -errno;
		goto out;
	}
	for (size_t i = 1; i < ns->n_mounts && !err; i++) {
		if ((later[i] = deferred(ns, i, later)))
			continue;
		err = mount_make(ns, i, ctx->tree_root_fd, ctx, copies[i], &st->contents[i], false);
		st->made[i] = !err;
	}
	if (!err)
		err = leave_tree_mount_ns(st);
out:
	for (size_t i = 0; i < ns->n_mounts; i++)
		if (copies[i] >= 0)
			close(copies[i]);
	return err;
}

/* In the root, in its new namespaces: the rest of the mounts, then into its own root. */
static int enter_mount_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct mount_ns_state *st = state_of(ctx);
	const MountNs *ns = st->ns;
	int err;

	(void)rt;
	if (!ns)
		return 0;
	if (setns(st->tree_ns - 1, CLONE_NEWNS)) {
		pr_perror("restore: cannot join the tree's mount namespace");
		return -errno;
	}
	auto_close int root = open(st->root_at, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		pr_perror("restore: --root %s", st->root_path);
		return -errno;
	}
	for (size_t i = 1; i < ns->n_mounts; i++)
		if (!st->made[i] && (err = mount_make(ns, i, root, ctx, -1, &st->contents[i], ns_make_tree_userns(ctx))))
			return err;
	if ((err = mount_set_propagation(ns, root)))
		return err;
	if (fchdir(root) || syscall(SYS_pivot_root, ".", ".") || umount2(".", MNT_DETACH) || chdir("/")) {
		pr_perror("restore: cannot move into --root %s (pivot_root)", st->root_path);
		return -errno;
	}
	/* the root's own flags last (a read-only root would have refused its mount points) */
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | ns->mounts[0]->mount_flags, NULL)) {
		pr_perror("restore: cannot set the flags of the tree's root");
		return -errno;
	}
	return 0;
}

/* stasis back in its own mount namespace, without hold on the tree's (gone with the tree). */
static void undo_mount_ns(struct run_ctx *ctx, bool restored)
{
	struct mount_ns_state *st = state_of(ctx);

	(void)restored;
	if (ctx->tree_root_fd >= 0) {
		close(ctx->tree_root_fd);
		ctx->tree_root_fd = -1;
	}
	if (st->tree_ns) {
		close(st->tree_ns - 1);
		st->tree_ns = 0;
	}
	ns_go_home(&st->own_ns, CLONE_NEWNS, "restore");
}

static void free_mount_ns(void *state)
{
	struct mount_ns_state *st = state;

	for (size_t i = 0; st->contents && i < st->ns->n_mounts; i++)
		tmpfs_image_close(&st->contents[i]);
	free(st->contents);
	if (st->ns)
		image_free(&st->ns->base);
	free(st->made);
	if (st->root_at != st->root_path) {
		if (st->root_at_maker == getpid())
			rmdir(st->root_at);
		free(st->root_at);
	}
	free(st->root_path);
}

const struct tree_object_ops tree_mount_ns = {
	.name = "mount namespace",
	.state_size = sizeof(struct mount_ns_state),
	.free_state = free_mount_ns,
	.collect = collect_mount_ns,
	.write = write_mount_ns,
	.validate = validate_mount_ns,
	.prepare = prepare_mount_ns,
	.enter = enter_mount_ns,
	.undo = undo_mount_ns,
};
