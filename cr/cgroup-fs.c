/*
 * Cgroup hierarchies, paths and directories: /proc/PID/cgroup read, a hierarchy opened (a
 * private mount of it, or --cgroup-yard's directory), cgroups walked, made and removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cgroups.h"
#include "log.h"
#include "util.h"

#define CG_WALK_MAX_DIRS 4096
#define CG_WALK_MAX_DEPTH 32
#define CG_RMDIR_WAIT_NS 5000000000ull

void cg_members_free(struct cg_members *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].controllers);
		free(m->v[i].path);
	}
	free(m->v);
	*m = (struct cg_members){ 0 };
}

int cg_members_parse(char *text, const char *what, struct cg_members *out)
{
	*out = (struct cg_members){ 0 };
	for (char *line = text, *next; *line; line = next) {
		next = line + strcspn(line, "\n");
		if (*next)
			*next++ = 0;
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2 || c2[1] != '/') {
			pr_err("%s: unexpected line \"%s\"", what, line);
			cg_members_free(out);
			return -EINVAL;
		}
		struct cg_member *v = xreallocarray(out->v, out->n + 1, sizeof(*v));
		if (!v) {
			cg_members_free(out);
			return -ENOMEM;
		}
		out->v = v;
		*c2 = 0;
		v[out->n].controllers = xstrdup(c1 + 1);
		v[out->n].path = v[out->n].controllers ? xstrdup(c2 + 1) : NULL;
		out->n++;
		if (!v[out->n - 1].controllers || !v[out->n - 1].path) {
			cg_members_free(out);
			return -ENOMEM;
		}
	}
	return 0;
}

int cg_members_read(const char *who, struct cg_members *out)
{
	char file[96];
	auto_free char *text = NULL;

	*out = (struct cg_members){ 0 };
	snprintf(file, sizeof(file), "/proc/%s/cgroup", who);
	if (!(text = read_file_at(AT_FDCWD, file, NULL))) {
		if (errno == ENOMEM)
			return -ENOMEM;
		pr_perror("cannot read %s", file);
		return errno ? -errno : -EIO;
	}
	return cg_members_parse(text, file, out);
}

const char *cg_members_path(const struct cg_members *m, const char *controllers)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->v[i].controllers, controllers))
			return m->v[i].path;
	return NULL;
}

const char *cg_hierarchy_name(const char *controllers)
{
	return controllers[0] ? controllers : "unified";
}

bool cg_has_controller(const char *controllers, const char *controller)
{
	size_t len = strlen(controller);

	for (const char *p = controllers; *p; p += strcspn(p, ","), p += *p == ',') {
		if (!strncmp(p, controller, len) && (p[len] == ',' || !p[len]))
			return true;
	}
	return false;
}

bool cg_hierarchy_named(const char *controllers, const char *key)
{
	if (!controllers[0])
		return !key[0] || !strcmp(key, "unified") || !strcmp(key, "cgroup2");
	return key[0] && (!strcmp(controllers, key) || cg_has_controller(controllers, key));
}

/* A fresh superblock reference of the hierarchy: fsopen + fsconfig + fsmount. */
static int mount_hierarchy(const char *controllers)
{
	auto_close int fs = syscall(SYS_fsopen, controllers[0] ? "cgroup" : "cgroup2", FSOPEN_CLOEXEC);
	int err = fs < 0 ? -errno : 0;

	for (const char *p = controllers; !err && *p; p += strcspn(p, ","), p += *p == ',') {
		char opt[64];
		snprintf(opt, sizeof(opt), "%.*s", (int)strcspn(p, ","), p);
		if (!strncmp(opt, "name=", 5))
			err = syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "name", opt + 5, 0) ? -errno : 0;
		else
			err = syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, opt, NULL, 0) ? -errno : 0;
	}
	if (!err && syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0))
		err = -errno;
	int mnt = err ? -1 : syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0);
	if (!err && mnt < 0)
		err = -errno;
	if (err) {
		pr_err("cannot mount cgroup hierarchy %s: %s", cg_hierarchy_name(controllers),
		       strerror(-err));
		return err;
	}
	/* fsmount gives a path-only fd: a real directory fd reads and lists */
	int dir = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	err = dir < 0 ? -errno : 0;
	close(mnt);
	if (err)
		pr_err("cannot open cgroup hierarchy %s: %s", cg_hierarchy_name(controllers),
		       strerror(-err));
	return err ? err : dir;
}

int cg_hierarchy_open(const struct stasis_opts *o, const char *controllers)
{
	char path[4096];
	int fd;

	if (!o->cgroup_yard)
		return mount_hierarchy(controllers);
	snprintf(path, sizeof(path), "%s/%s", o->cgroup_yard,
		 !controllers[0] ? "unified"
		 : !strncmp(controllers, "name=", 5) ? controllers + 5 : controllers);
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		pr_perror("cgroup hierarchy %s: cannot open %s (--cgroup-yard)",
			  cg_hierarchy_name(controllers), path);
		return -errno;
	}
	return fd;
}

bool cg_path_ok(const char *path)
{
	if (path[0] != '/' || strlen(path) > 3072)
		return false;
	if (!path[1])
		return true;
	for (const char *p = path + 1;; p += strcspn(p, "/") + 1) {
		size_t len = strcspn(p, "/");
		if (!len || (len == 1 && p[0] == '.') || (len == 2 && !strncmp(p, "..", 2)))
			return false;
		if (!p[len])
			return true;
	}
}

bool cg_path_within(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	if (!strcmp(dir, "/"))
		return true;
	return !strncmp(path, dir, len) && (path[len] == '/' || !path[len]);
}

const char *cg_rel(const char *path)
{
	return path[1] ? path + 1 : ".";
}

char *cg_path_moved(const char *path, const char *from, const char *to)
{
	const char *rest = !strcmp(from, "/") ? path : path + strlen(from);

	if (!strcmp(rest, "/"))
		rest = "";
	return xasprintf("%s%s", !strcmp(to, "/") && rest[0] ? "" : to, rest);
}

/* A new v1 cpuset cgroup starts with no cpus and no mems: its parent's, as clone_children would.
 * (Fails only when out of memory.) */
static int cpuset_inherit(int hfd, const char *path)
{
	static const char *const files[] = { "cpuset.mems", "cpuset.cpus" };
	char parent[4096], file[4200];

	snprintf(parent, sizeof(parent), "%s", path);
	*strrchr(parent, '/') = 0;
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(file, sizeof(file), "%s/%s", cg_rel(parent[0] ? parent : "/"), files[i]);
		auto_free char *value = read_file_at(hfd, file, NULL);
		if (!value && errno == ENOMEM)
			return -ENOMEM;
		snprintf(file, sizeof(file), "%s/%s", cg_rel(path), files[i]);
		int fd = openat(hfd, file, O_WRONLY | O_CLOEXEC);
		if (!value || fd < 0 || write(fd, value, strlen(value)) < 0)
			pr_warn("cgroup cpuset:%s: cannot copy %s from its parent: %m", path, files[i]);
		if (fd >= 0)
			close(fd);
	}
	return 0;
}

int cg_make_dir(int hfd, const char *controllers, const char *path, struct cg_made *made)
{
	char part[4096];
	int err;

	for (const char *p = path + 1; *p; p += strcspn(p, "/"), p += *p == '/') {
		snprintf(part, sizeof(part), "%.*s", (int)(p + strcspn(p, "/") - path), path);
		/* room to note it before it is made */
		void *v = xreallocarray(made->v, made->n + 1, sizeof(*made->v));
		if (!v)
			return -ENOMEM;
		made->v = v;
		if (!(made->v[made->n].path = xstrdup(part)))
			return -ENOMEM;
		made->v[made->n].hfd = hfd;
		if (!mkdirat(hfd, cg_rel(part), 0755)) {
			made->n++;
			pr_info("restore: made cgroup %s:%s", cg_hierarchy_name(controllers), part);
			if (cg_has_controller(controllers, "cpuset") && (err = cpuset_inherit(hfd, part)))
				return err;
			continue;
		}
		err = errno;
		free(made->v[made->n].path);
		if ((errno = err) != EEXIST) {
			pr_perror("restore: cannot make cgroup %s:%s", cg_hierarchy_name(controllers), part);
			return -errno;
		}
	}
	return 0;
}

void cg_remove_made(struct cg_made *made)
{
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + CG_RMDIR_WAIT_NS;

	for (size_t i = made->n; i-- > 0;) {
		/* the killed tree's processes may take a moment to leave it */
		while (unlinkat(made->v[i].hfd, cg_rel(made->v[i].path), AT_REMOVEDIR) &&
		       errno == EBUSY && now_ns(CLOCK_MONOTONIC) < deadline)
			usleep(10000);
		if (faccessat(made->v[i].hfd, cg_rel(made->v[i].path), F_OK, 0) == 0)
			pr_warn("restore: cannot remove the cgroup %s it made: %m", made->v[i].path);
		free(made->v[i].path);
	}
	free(made->v);
	*made = (struct cg_made){ 0 };
}

struct walk {
	int hfd;
	int (*fn)(const char *path, void *arg);
	void *arg;
	size_t seen;
};

static int walk_below(struct walk *w, const char *path, int depth)
{
	int err;
	DIR *dir;
	struct dirent *de;

	if (++w->seen > CG_WALK_MAX_DIRS || depth > CG_WALK_MAX_DEPTH) {
		pr_err("dump: cgroup %s: more than %d cgroups, or deeper than %d, below the tree's",
		       path, CG_WALK_MAX_DIRS, CG_WALK_MAX_DEPTH);
		return -E2BIG;
	}
	if ((err = w->fn(path, w->arg)))
		return err;
	if (!(dir = opendir_at(w->hfd, cg_rel(path), 0))) {
		pr_perror("dump: cannot list cgroup %s", path);
		return -errno;
	}
	while (!err && (de = readdir(dir))) {
		char sub[4096];
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", path[1] ? path : "", de->d_name) >= 3072) {
			pr_err("dump: cgroup %s/%s: path too long", path, de->d_name);
			err = -ENAMETOOLONG;
			break;
		}
		err = walk_below(w, sub, depth + 1);
	}
	closedir(dir);
	return err;
}

int cg_walk(int hfd, const char *path, int (*fn)(const char *path, void *arg), void *arg)
{
	struct walk w = { .hfd = hfd, .fn = fn, .arg = arg };

	return walk_below(&w, path, 0);
}
