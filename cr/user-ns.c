/*
 * The tree's user namespace (userns.img). A tree is in stasis's user namespace, or every
 * process and thread of it is in one user namespace U, a child of stasis's (cr/namespaces.c
 * refuses a tree spread over several): its uid and gid maps, whether setgroups is allowed
 * there, its owner, and which of the tree's other namespaces it owns are saved. Ids in the
 * other images stay as stasis sees them (host ids).
 *
 * Restore: a helper process makes U first of all (cr/ns-make.c: stasis writes its setgroups
 * and maps), then every namespace U owned, which stasis joins to fill them keeping its host
 * privilege. The root is pid 1 of a new PID namespace U owns and joins U first thing (stasis
 * itself never does: it would lose its host privilege); so it does every step of its own
 * (enter: its cgroup and time namespaces, the mounts that belong to its namespaces,
 * pivot_root) from inside U, and every process it forks is in U.
 * Each thread's credentials are taken on in U's view (cr/creds.c). The tree must have its own
 * PID namespace, owned by U: inside U no process could give its children their pids in
 * stasis's. Asked to join a user namespace (--join-ns user:PATH: a pod's own, which its
 * containers share), the helper enters that one instead of making U; its maps must be the
 * saved ones, and its setgroups is left as it is.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "join-ns.h"
#include "log.h"
#include "ns-helper.h"
#include "ns-make.h"
#include "pstree.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

#define MAX_MAP_LINES 340 /* the kernel's limit */

static struct user_ns_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_user_ns);
}

/* The namespaces U may own, as in /proc/PID/ns; which of them the tree must have U own. */
static const struct {
	const char *file;
	int flag;
	bool may_be_stasis; /* the tree's own may be owned by stasis's user namespace */
} owned_kinds[] = {
	{ "mnt", CLONE_NEWNS, false },
	{ "net", CLONE_NEWNET, true },
	{ "ipc", CLONE_NEWIPC, true },
	{ "uts", CLONE_NEWUTS, false },
	{ "cgroup", CLONE_NEWCGROUP, false },
	{ "pid", CLONE_NEWPID, false },
	{ "time_for_children", CLONE_NEWTIME, false },
};

static uint32_t all_kinds(void)
{
	uint32_t all = 0;

	for (size_t i = 0; i < ARRAY_SIZE(owned_kinds); i++)
		all |= owned_kinds[i].flag;
	return all;
}

/* The inode of the namespace an nsfs ioctl (NS_GET_USERNS, NS_GET_PARENT) on path gives. */
static int related_ns(const char *path, unsigned long request, uint64_t *ino)
{
	struct stat st;
	auto_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	auto_close int rel = fd < 0 ? -1 : ioctl(fd, request);

	if (rel < 0 || fstat(rel, &st))
		return -errno;
	*ino = st.st_ino;
	return 0;
}

static int read_map(pid_t root, const char *name, IdMapLine ***out, size_t *n)
{
	char path[64];
	uint32_t inner, outer, count;

	snprintf(path, sizeof(path), "/proc/%d/%s", root, name);
	auto_free char *text = read_file_at(AT_FDCWD, path, NULL);
	if (!text) {
		pr_perror("dump pid %d: cannot read %s", root, path);
		return -errno;
	}
	if (!(*out = xzalloc(MAX_MAP_LINES * sizeof(**out))))
		return -ENOMEM;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (sscanf(line, "%u %u %u", &inner, &outer, &count) != 3 || *n == MAX_MAP_LINES) {
			pr_err("dump pid %d: cannot read %s", root, path);
			return -EIO;
		}
		IdMapLine *l = xzalloc(sizeof(*l));
		if (!l)
			return -ENOMEM;
		id_map_line__init(l);
		l->inner = inner, l->outer = outer, l->count = count;
		(*out)[(*n)++] = l;
	}
	return 0;
}

/* Which of the root's own namespaces U owns; one owned by another user namespace is refused. */
static int read_owned(pid_t root, uint64_t user, uint64_t own_user, uint32_t *owned)
{
	char path[64], mine[64];
	uint64_t owner;
	struct stat a, b;
	int err;

	for (size_t i = 0; i < ARRAY_SIZE(owned_kinds); i++) {
		const char *file = owned_kinds[i].file;
		const char *name = owned_kinds[i].flag == CLONE_NEWTIME ? "time" : file;
		snprintf(mine, sizeof(mine), "/proc/self/ns/%s", file);
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", root, file);
		if (stat(path, &a) || stat(mine, &b))
			continue; /* a kind this kernel lacks */
		if (a.st_ino == b.st_ino)
			continue; /* stasis's own: nothing to make */
		if ((err = related_ns(path, NS_GET_USERNS, &owner))) {
			pr_err("dump pid %d: cannot tell which user namespace owns its %s namespace: %s",
			       root, name, strerror(-err));
			return err;
		}
		if (owner == user) {
			*owned |= owned_kinds[i].flag;
			continue;
		}
		if (owner == own_user && owned_kinds[i].may_be_stasis)
			continue;
		pr_err("dump pid %d: its %s namespace %s:[%llu] is owned by user namespace user:[%llu], "
		       "not by the tree's (user:[%llu])%s; not supported", root, name, name,
		       (unsigned long long)a.st_ino, (unsigned long long)owner, (unsigned long long)user,
		       owner == own_user ? ", which the root could not act in" : "");
		return -ENOTSUP;
	}
	if (!(*owned & CLONE_NEWPID)) {
		pr_err("dump pid %d: it is in a user namespace of its own (user:[%llu]) but not the init "
		       "of a PID namespace that one owns; a tree in a user namespace is restored only "
		       "with its own PID namespace (unshare --pid --fork, a container)",
		       root, (unsigned long long)user);
		return -ENOTSUP;
	}
	return 0;
}

static int collect_user_ns(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct user_ns_state *st = state_of(ctx);
	pid_t root = tr->tasks[0].pid;
	uint64_t user, own_user, parent;
	char path[64];
	int err;

	if (!ns_is_own(root, "user", &user))
		return 0;
	ns_is_own(getpid(), "user", &own_user);
	snprintf(path, sizeof(path), "/proc/%d/ns/user", root);
	if ((err = related_ns(path, NS_GET_PARENT, &parent)) || parent != own_user) {
		pr_err("dump pid %d: its user namespace user:[%llu] is not a child of stasis's "
		       "(user:[%llu])%s%s; not supported", root, (unsigned long long)user,
		       (unsigned long long)own_user, err ? ": " : "", err ? strerror(-err) : "");
		return -ENOTSUP;
	}
	if (!(st->img = xzalloc(sizeof(*st->img))))
		return -ENOMEM;
	user_ns__init(st->img);
	auto_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	uid_t owner;
	if (fd < 0 || ioctl(fd, NS_GET_OWNER_UID, &owner)) {
		pr_perror("dump pid %d: cannot read the owner of its user namespace", root);
		return -errno;
	}
	st->img->owner_uid = owner;
	if ((err = read_map(root, "uid_map", &st->img->uid_map, &st->img->n_uid_map)) ||
	    (err = read_map(root, "gid_map", &st->img->gid_map, &st->img->n_gid_map)))
		return err;
	snprintf(path, sizeof(path), "/proc/%d/setgroups", root);
	auto_free char *sg = read_file_at(AT_FDCWD, path, NULL);
	if (!sg || (strcmp(sg, "allow\n") && strcmp(sg, "deny\n"))) {
		pr_err("dump pid %d: cannot read %s", root, path);
		return -EIO;
	}
	st->img->setgroups_allowed = !strcmp(sg, "allow\n");
	if ((err = read_owned(root, user, own_user, &st->img->owned)))
		return err;
	pr_info("dump pid %d: in its own user namespace user:[%llu] (owner uid %u, %zu uid and %zu "
		"gid map lines)", root, (unsigned long long)user, owner, st->img->n_uid_map,
		st->img->n_gid_map);
	tr->inv.has_user_ns = tr->inv.user_ns = true;
	return image_write(ctx->images_dir_fd, IMG_USER_NS, 0, &st->img->base);
}

/* ---- restore ---- */

static int check_map(const char *name, IdMapLine **map, size_t n)
{
	if (n < 1 || n > MAX_MAP_LINES) {
		pr_err("image userns.img: %s has %zu lines (1 to %d)", name, n, MAX_MAP_LINES);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const IdMapLine *l = map[i];
		/* (uint32_t)-1 is no id */
		if (!l->count || l->count > UINT32_MAX - l->inner || l->count > UINT32_MAX - l->outer) {
			pr_err("image userns.img: %s line %zu (%u %u %u) is invalid", name, i + 1, l->inner,
			       l->outer, l->count);
			return -EINVAL;
		}
		for (size_t k = 0; k < i; k++) {
			const IdMapLine *o = map[k];
			bool in = l->inner < o->inner + o->count && o->inner < l->inner + l->count;
			bool out = l->outer < o->outer + o->count && o->outer < l->outer + l->count;
			if (in || out) {
				pr_err("image userns.img: %s lines %zu and %zu overlap (%s ids)", name, k + 1,
				       i + 1, in ? "inner" : "outer");
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* Every id of a thread's credentials has a name in U. */
static int check_creds(const UserNs *ns, pid_t pid, const Creds *c, const Creds *root)
{
	uint32_t id;

	if (!c)
		return 0;
	for (size_t k = 0; k < c->n_uids; k++)
		if (!id_map_inner((const IdMapLine *const *)ns->uid_map, ns->n_uid_map, c->uids[k], &id)) {
			pr_err("restore pid %d: its uid %u is not mapped in the tree's user namespace", pid,
			       c->uids[k]);
			return -EINVAL;
		}
	for (size_t k = 0; k < c->n_gids; k++)
		if (!id_map_inner((const IdMapLine *const *)ns->gid_map, ns->n_gid_map, c->gids[k], &id)) {
			pr_err("restore pid %d: its gid %u is not mapped in the tree's user namespace", pid,
			       c->gids[k]);
			return -EINVAL;
		}
	if (!ns->setgroups_allowed) {
		/* setgroups denied: every process has the groups it inherited, the root's */
		if (root && (c->n_groups != root->n_groups ||
			     (c->n_groups && memcmp(c->groups, root->groups, c->n_groups * sizeof(uint32_t))))) {
			pr_err("restore pid %d: its supplementary groups differ from the root's, in a user "
			       "namespace where setgroups is denied", pid);
			return -EINVAL;
		}
		return 0;
	}
	for (size_t k = 0; k < c->n_groups; k++)
		if (!id_map_inner((const IdMapLine *const *)ns->gid_map, ns->n_gid_map, c->groups[k], &id)) {
			pr_err("restore pid %d: its supplementary group %u is not mapped in the tree's user "
			       "namespace", pid, c->groups[k]);
			return -EINVAL;
		}
	return 0;
}

static int validate_user_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct user_ns_state *st = state_of(ctx);
	const Inventory *inv = rt->inv;
	const struct { int flag; bool has; const char *name; } own[] = {
		{ CLONE_NEWNS, inv->mnt_ns, "mount" }, { CLONE_NEWNET, inv->net_ns, "network" },
		{ CLONE_NEWIPC, inv->ipc_ns, "IPC" }, { CLONE_NEWUTS, inv->uts_ns, "UTS" },
		{ CLONE_NEWCGROUP, inv->cgroup_ns, "cgroup" }, { CLONE_NEWPID, inv->pid_ns, "PID" },
		{ CLONE_NEWTIME, inv->time_ns, "time" },
	};
	int err, fd;

	if ((err = join_ns_open(ctx->opts, "user", &fd)) < 0)
		return err;
	if (err)
		st->join_fd = fd + 1;
	if (err && !inv->user_ns) {
		pr_err("restore: --join-ns user: the tree had no user namespace of its own to put back "
		       "there");
		return -EINVAL;
	}
	struct stat given, mine;
	if (err && (fstat(fd, &given) || stat("/proc/self/ns/user", &mine) ||
		    (given.st_ino == mine.st_ino && given.st_dev == mine.st_dev))) {
		pr_err("restore: --join-ns user: the namespace given is stasis's own, and the tree had "
		       "one of its own (userns.img)");
		return -EINVAL;
	}
	if (!inv->user_ns)
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_USER_NS, 0, (ProtobufCMessage **)&st->img)))
		return err;
	const UserNs *ns = st->img;
	if ((err = check_map("uid_map", ns->uid_map, ns->n_uid_map)) ||
	    (err = check_map("gid_map", ns->gid_map, ns->n_gid_map)))
		return err;
	if (ns->owned & ~all_kinds()) {
		pr_err("image userns.img: owns unknown kinds of namespace (%#x)", ns->owned);
		return -EINVAL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(own); i++)
		if ((ns->owned & own[i].flag) && !own[i].has) {
			pr_err("image userns.img: owns the tree's %s namespace, which the tree does not have",
			       own[i].name);
			return -EINVAL;
		}
	if (!(ns->owned & CLONE_NEWPID)) {
		pr_err("image userns.img: does not own the tree's PID namespace");
		return -EINVAL;
	}
	const Creds *root = rt->tasks[0].core->creds;
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const TaskCore *c = rt->tasks[i].core;
		if ((err = check_creds(ns, rt->tasks[i].pid, c->creds, root)))
			return err;
		for (size_t k = 0; k < c->n_threads; k++)
			if ((err = check_creds(ns, rt->tasks[i].pid, c->threads[k]->creds, root)))
				return err;
	}
	return 0;
}

/* Before every namespace of the tree: the helper in a new user namespace with U's maps. */
static int prepare_user_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	(void)rt;
	return state_of(ctx)->img ? ns_make_start(ctx) : 0;
}

/* The root holds U (and what the helper made): the helper goes. */
static void close_user_ns(struct run_ctx *ctx)
{
	ns_make_stop(ctx);
}

static void undo_user_ns(struct run_ctx *ctx, bool restored)
{
	(void)restored;
	ns_make_stop(ctx);
}

static void free_user_ns(void *state)
{
	struct user_ns_state *st = state;

	if (st->img)
		image_free(&st->img->base);
	if (st->join_fd)
		close(st->join_fd - 1);
}

const struct tree_object_ops tree_user_ns = {
	.name = "user namespace",
	.state_size = sizeof(struct user_ns_state),
	.free_state = free_user_ns,
	.collect = collect_user_ns,
	.validate = validate_user_ns,
	.prepare = prepare_user_ns,
	.close = close_user_ns,
	.undo = undo_user_ns,
};
