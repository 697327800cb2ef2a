/*
 * The sysctls of the tree's network namespace (net-sysctls.img): every file under
 * /proc/sys/net/{core,ipv4,ipv6,unix} that can be read and written (net.ipv4.*, the
 * per-interface net.ipv4.conf.* and net.ipv6.conf.*, neighbour tables' settings,
 * net.core.somaxconn, ...), as the namespace has them (stasis reads them from inside it).
 * On restore each is written where the new namespace's differs, once its interfaces and
 * addresses exist and before routes: "all" first, then "default", then each interface's. A
 * sysctl that cannot be written fails the restore naming it; with --weak-sysctls it is
 * skipped with a warning (a kernel without it, say). In the engine's namespace only those of
 * the interfaces the tree made there are saved (net.ipv4/ipv6.conf/neigh.NAME.*).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "net-links.h"
#include "net-ns.h"
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
	char dir[NAME_MAX_LEN];
	const char *name;
	int err = 0;

	if (!net_ns_interfaces(ctx))
		return 0;
	auto_close int net = open(NET_SYSCTLS, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (net < 0) {
		pr_perror("dump pid %d: cannot read the sysctls of its network namespace (" NET_SYSCTLS ")",
			  net_ns_holder(ctx, tr));
		return -errno;
	}
	for (size_t i = 0; net_ns_config(ctx) && i < ARRAY_SIZE(roots) && !err; i++)
		err = walk(net, roots[i], 1, &img);
	for (size_t i = 0; net_ns_devices(ctx) && (name = net_links_name(ctx, i)) && !err; i++) {
		for (size_t k = 0; k < ARRAY_SIZE(device_dirs) && !err; k++) {
			snprintf(dir, sizeof(dir), "%s/%s", device_dirs[k], name);
			err = walk(net, dir, 3, &img);
		}
	}
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

/* In the engine's namespace: ROOT/DIR/NAME/... of an interface saved. */
static bool of_device(const struct run_ctx *ctx, const char *sysctl)
{
	const char *name;

	for (size_t k = 0; k < ARRAY_SIZE(device_dirs); k++) {
		size_t len = strlen(device_dirs[k]);
		if (strncmp(sysctl, device_dirs[k], len) || sysctl[len] != '/')
			continue;
		for (size_t i = 0; (name = net_links_name(ctx, i)); i++)
			if (!strncmp(sysctl + len + 1, name, strlen(name)) && sysctl[len + 1 + strlen(name)] == '/')
				return true;
	}
	return false;
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
	size_t kept = 0;
	for (size_t i = 0; i < st->img->n_sysctls; i++) {
		NetSysctl *s = st->img->sysctls[i];
		if (!name_valid(s->name) || strlen(s->value) >= VALUE_MAX) {
			pr_err("image net-sysctls.img: sysctl %zu (%.64s) is invalid", i, s->name);
			return -EINVAL;
		}
		if (net_ns_devices(ctx) && !of_device(ctx, s->name))
			net_sysctl__free_unpacked(s, NULL); /* the engine's namespace: not a device's */
		else
			st->img->sysctls[kept++] = s;
	}
	st->img->n_sysctls = kept;
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
	for (size_t i = 0; i < st->img->n_sysctls && !err; i++)
		err = write_sysctl(net, st->img->sysctls[i], ctx->opts->weak_sysctls);
	/* an interface's stable_secret written sets its address generation mode to stable privacy */
	return err ?: net_links_addr_gen_mode(ctx);
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
