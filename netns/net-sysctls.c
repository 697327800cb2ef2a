/*
 * The sysctls of the tree's network namespace (net-sysctls.img): every file under
 * /proc/sys/net/{core,ipv4,ipv6,unix} that can be read and written (net.ipv4.*, the
 * per-interface net.ipv4.conf.* and net.ipv6.conf.*, neighbour tables' settings,
 * net.core.somaxconn, ...), as the namespace has them (stasis reads them from inside it).
 * On restore each is written where the new namespace's differs, once its interfaces and
 * addresses exist and before routes: "all" first, then "default", then each interface's. A
 * sysctl that cannot be written fails the restore naming it; with --weak-sysctls it is
 * skipped with a warning (a kernel without it, say). In the engine's namespace they are saved
 * all the same; a restore given a namespace (joined) writes only those of the interfaces the
 * tree made there (net.ipv4/ipv6.conf/neigh.NAME.*), the rest being the engine's. A restore in
 * a new empty one (--empty-ns net: Docker's, whose runc applies no `--sysctl` on restore) writes
 * the namespace's own too (not an interface's, but "all", "default" and lo's: somaxconn, a port
 * range, lo's IPv6 ...) once the engine's hooks have set the namespace up at setup-namespaces
 * (net_sysctls_after_engine), as the tree had them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "net-links.h"
#include "net-ns.h"
#include "net-sysctls.h"
#include "pstree.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

#define NET_SYSCTLS "/proc/sys/net"
#define VALUE_MAX 4096
#define NAME_MAX_LEN 256
#define DEPTH_MAX 4

static const char *const roots[] = { "core", "ipv4", "ipv6", "unix" };
/* an interface's own, under a root: ROOT/DIR/NAME/... */
static const char *const device_dirs[] = { "ipv4/conf", "ipv6/conf", "ipv4/neigh", "ipv6/neigh" };

struct sysctls_state {
	NetSysctls *img;
	size_t early;       /* restore: sysctls[0, early) written by prepare, the rest (the empty
			       namespace's own) by net_sysctls_after_engine */
};

static struct sysctls_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_net_sysctls);
}

/* A value as read, without its trailing newline: its length, or <0. */
static ssize_t read_value(int fd, char *buf)
{
	ssize_t n = pread(fd, buf, VALUE_MAX - 1, 0);

	if (n < 0)
		return -errno;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	return n;
}

/* ---- dump ---- */

/* In a directory, "all" and "default" first (writing them changes the others). */
static int rank(const char *name)
{
	return !strcmp(name, "all") ? 0 : !strcmp(name, "default") ? 1 : 2;
}

static int by_rank(const struct dirent **a, const struct dirent **b)
{
	int ra = rank((*a)->d_name), rb = rank((*b)->d_name);

	return ra != rb ? ra - rb : strcmp((*a)->d_name, (*b)->d_name);
}

static int not_dot(const struct dirent *d)
{
	return strcmp(d->d_name, ".") && strcmp(d->d_name, "..");
}

static int keep(NetSysctls *img, const char *name, const char *value)
{
	NetSysctl *s = xzalloc(sizeof(*s)), **more;

	if (!s || !(more = xreallocarray(img->sysctls, img->n_sysctls + 1, sizeof(*more)))) {
		free(s);
		return -ENOMEM;
	}
	img->sysctls = more;
	img->sysctls[img->n_sysctls++] = s;
	net_sysctl__init(s);
	return (s->name = xstrdup(name)) && (s->value = xstrdup(value)) ? 0 : -ENOMEM;
}

/* Every readable and writable file under dir (path, relative to /proc/sys/net). */
static int walk(int net, const char *path, int depth, NetSysctls *img)
{
	char full[NAME_MAX_LEN + 64], value[VALUE_MAX];
	struct dirent **ents;
	int err = 0;

	snprintf(full, sizeof(full), NET_SYSCTLS "/%s", path);
	int n = scandir(full, &ents, not_dot, by_rank);
	if (n < 0)
		return errno == ENOENT ? 0 : -errno; /* no IPv6 in this kernel, say */
	for (int i = 0; i < n && !err; i++) {
		char name[NAME_MAX_LEN];
		struct stat st;
		if ((size_t)snprintf(name, sizeof(name), "%s/%s", path, ents[i]->d_name) >= sizeof(name) ||
		    fstatat(net, name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISDIR(st.st_mode) && depth < DEPTH_MAX) {
			if ((err = walk(net, name, depth + 1, img)) != -ENOMEM)
				err = 0; /* a directory that cannot be read is left out */
		} else if (S_ISREG(st.st_mode) && (st.st_mode & S_IRUSR) && (st.st_mode & S_IWUSR)) {
			int fd = openat(net, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd >= 0 && read_value(fd, value) >= 0)
				err = keep(img, name, value); /* unreadable ones (an unset stable_secret) are not */
			if (fd >= 0)
				close(fd);
		}
	}
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return err;
}

static int collect_sysctls(struct run_ctx *ctx, struct dump_tree *tr)
{
	NetSysctls img = NET_SYSCTLS__INIT;
	int err = 0;

	if (!net_ns_interfaces(ctx))
		return 0;
	auto_close int net = open(NET_SYSCTLS, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (net < 0) {
		pr_perror("dump pid %d: cannot read the sysctls of its network namespace (" NET_SYSCTLS ")",
			  net_ns_holder(ctx, tr));
		return -errno;
	}
	for (size_t i = 0; i < ARRAY_SIZE(roots) && !err; i++)
		err = walk(net, roots[i], 1, &img);
	if (err && err != -ENOMEM)
		pr_err("dump pid %d: cannot read the sysctls of its network namespace: %s",
		       net_ns_holder(ctx, tr), strerror(-err));
	else
		err = image_write(ctx->images_dir_fd, IMG_NET_SYSCTLS, run_scope_id(ctx), &img.base);
	for (size_t i = 0; i < img.n_sysctls; i++)
		net_sysctl__free_unpacked(img.sysctls[i], NULL);
	free(img.sysctls);
	return err;
}

/* ---- restore ---- */

/* A path under one of the roots, of plain components. */
static bool name_valid(const char *name)
{
	bool rooted = false;

	if (!*name || strlen(name) >= NAME_MAX_LEN || strstr(name, "//") || strstr(name, "/../") ||
	    strstr(name, "/./") || name[strlen(name) - 1] == '/')
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(roots); i++)
		rooted = rooted || (!strncmp(name, roots[i], strlen(roots[i])) && name[strlen(roots[i])] == '/');
	for (const char *c = name; rooted && *c; c++)
		if (!(*c == '/' || *c == '.' || *c == '_' || *c == '-' || (*c >= '0' && *c <= '9') ||
		      (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')))
			return false;
	return rooted && !strstr(name, "/..");
}

/* ROOT/DIR/NAME/... is of interface (or "all", "default") name: NAME, else NULL. */
static const char *device_of(const char *sysctl)
{
	for (size_t k = 0; k < ARRAY_SIZE(device_dirs); k++) {
		size_t len = strlen(device_dirs[k]);
		if (!strncmp(sysctl, device_dirs[k], len) && sysctl[len] == '/')
			return sysctl + len + 1;
	}
	return NULL;
}

static bool named(const char *device, const char *name)
{
	return !strncmp(device, name, strlen(name)) && device[strlen(name)] == '/';
}

/* In the engine's namespace: of an interface saved. */
static bool of_saved_device(const struct run_ctx *ctx, const char *sysctl)
{
	const char *device = device_of(sysctl), *name;

	for (size_t i = 0; device && (name = net_links_name(ctx, i)); i++)
		if (named(device, name))
			return true;
	return false;
}

/* The namespace's own: not an interface's, or "all"'s, "default"'s or lo's. */
static bool of_namespace(const char *sysctl)
{
	const char *device = device_of(sysctl);

	return !device || named(device, "all") || named(device, "default") || named(device, "lo");
}

static int validate_sysctls(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct sysctls_state *st = state_of(ctx);
	int err;

	(void)rt;
	if (!net_ns_interfaces(ctx))
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_NET_SYSCTLS, run_scope_id(ctx), (ProtobufCMessage **)&st->img)))
		return err;
	for (size_t i = 0; i < st->img->n_sysctls; i++) {
		NetSysctl *s = st->img->sysctls[i];
		if (!name_valid(s->name) || strlen(s->value) >= VALUE_MAX) {
			pr_err("image net-sysctls.img: sysctl %zu (%.64s) is invalid", i, s->name);
			return -EINVAL;
		}
	}
	/* the engine's namespace: an interface's the tree made first, then (an empty one) the
	 * namespace's own, each in the image's order; the rest is the engine's */
	auto_free NetSysctl **late = xzalloc((st->img->n_sysctls + 1) * sizeof(*late));
	size_t kept = 0, n_late = 0;
	if (!late)
		return -ENOMEM;
	for (size_t i = 0; i < st->img->n_sysctls; i++) {
		NetSysctl *s = st->img->sysctls[i];
		if (!net_ns_devices(ctx) || of_saved_device(ctx, s->name))
			st->img->sysctls[kept++] = s;
		else if (net_ns_empty(ctx) && of_namespace(s->name))
			late[n_late++] = s;
		else
			net_sysctl__free_unpacked(s, NULL);
	}
	st->early = kept;
	memcpy(st->img->sysctls + kept, late, n_late * sizeof(*late));
	st->img->n_sysctls = kept + n_late;
	return 0;
}

/* One sysctl written if the namespace's differs: 0, or <0 (said, or warned with weak). */
static int write_sysctl(int net, const NetSysctl *s, bool weak)
{
	char now[VALUE_MAX], dotted[NAME_MAX_LEN];
	int fd = openat(net, s->name, O_RDWR | O_CLOEXEC | O_NOFOLLOW), err = 0;
	size_t len = strlen(s->value);

	snprintf(dotted, sizeof(dotted), "net.%s", s->name);
	for (char *c = dotted; *c; c++)
		*c = *c == '/' ? '.' : *c;
	if (fd >= 0 && read_value(fd, now) >= 0 && !strcmp(now, s->value)) {
		close(fd);
		return 0;
	}
	if (fd < 0 || pwrite(fd, s->value, len, 0) != (ssize_t)len)
		err = -errno ?: -EIO;
	if (fd >= 0)
		close(fd);
	if (!err)
		return 0;
	if (weak) {
		pr_warn("restore: sysctl %s of the tree's network namespace cannot be set to \"%s\" "
			"(--weak-sysctls): %s", dotted, s->value, strerror(-err));
		return 0;
	}
	pr_err("restore: cannot set sysctl %s of the tree's network namespace to \"%s\": %s "
	       "(--weak-sysctls skips it)", dotted, s->value, strerror(-err));
	return err;
}

static int prepare_sysctls(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct sysctls_state *st = state_of(ctx);
	int err = 0;

	(void)rt;
	if (!st->img)
		return 0;
	auto_close int net = open(NET_SYSCTLS, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (net < 0) {
		pr_perror("restore: cannot open " NET_SYSCTLS " in the tree's network namespace");
		return -errno;
	}
	for (size_t i = 0; i < st->early && !err; i++)
		err = write_sysctl(net, st->img->sysctls[i], ctx->opts->weak_sysctls);
	/* an interface's stable_secret written sets its address generation mode to stable privacy */
	return err ?: net_links_addr_gen_mode(ctx);
}

int net_sysctls_after_engine(struct run_ctx *ctx, pid_t root)
{
	struct sysctls_state *st = state_of(ctx);
	char path[64];
	int err = 0;

	if (!st->img || st->early == st->img->n_sysctls)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", root);
	auto_close int own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	auto_close int tree = open(path, O_RDONLY | O_CLOEXEC);
	if (own < 0 || tree < 0 || setns(tree, CLONE_NEWNET)) {
		pr_perror("restore pid %d: cannot go into its network namespace for its sysctls", root);
		return -errno;
	}
	/* (/proc/sys/net shows the namespace of the thread that looks a name up) */
	auto_close int net = open(NET_SYSCTLS, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (net < 0)
		err = -errno;
	for (size_t i = st->early; i < st->img->n_sysctls && !err; i++)
		err = write_sysctl(net, st->img->sysctls[i], ctx->opts->weak_sysctls);
	if (setns(own, CLONE_NEWNET)) {
		pr_perror("restore pid %d: cannot come back from its network namespace", root);
		return -errno;
	}
	if (net < 0)
		pr_err("restore pid %d: cannot open " NET_SYSCTLS " in its network namespace: %s", root,
		       strerror(-err));
	else if (!err)
		pr_info("restore pid %d: %zu sysctls of its network namespace, set up by the engine, "
			"as the tree had them", root, st->img->n_sysctls - st->early);
	return err;
}

static void free_sysctls(void *state)
{
	struct sysctls_state *st = state;

	if (st->img)
		image_free(&st->img->base);
}

const struct tree_object_ops tree_net_sysctls = {
	.name = "network sysctls",
	.per_net_ns = true,
	.state_size = sizeof(struct sysctls_state),
	.free_state = free_sysctls,
	.collect = collect_sysctls,
	.validate = validate_sysctls,
	.prepare = prepare_sysctls,
};
