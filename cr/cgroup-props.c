/*
 * The properties of the tree's own cgroups: the control files stasis saves and writes back
 * (limits, shares and weights, cpusets, the devices allowed), the directory's mode and owner,
 * and the control files given away with it (delegation). Only the files in the table below are
 * ever written, whatever an image says; the freezer's state is not among them (a restored tree
 * is never frozen).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroups.h"
#include "log.h"
#include "task.h"
#include "util.h"

#define CG_VALUE_MAX 4096
#define CG_LIST_MAX 65536 /* devices.list */
#define DEVICE_LINE_MAX 256

enum prop_kind {
	PROP_PLAIN,       /* written back as read */
	PROP_OOM_CONTROL, /* saved as oom_kill_disable's value, written to memory.oom_control */
	PROP_DEVICES,     /* devices.list: deny all, then allow each saved line */
	PROP_SUBTREE,     /* cgroup.subtree_control: "+NAME" for each controller saved */
	PROP_THREADED,    /* cgroup.type: saved only when "threaded" (the others follow from it) */
};

struct prop_desc {
	const char *name;
	const char *controller; /* a v1 hierarchy has it; NULL: a v2 file */
	enum prop_kind kind;
};

/* In the order they are written (a cgroup's cpus and mems come before anything joins it). */
static const struct prop_desc props[] = {
	{ "cpuset.mems", "cpuset", PROP_PLAIN },
	{ "cpuset.cpus", "cpuset", PROP_PLAIN },
	{ "cpu.shares", "cpu", PROP_PLAIN },
	{ "cpu.cfs_period_us", "cpu", PROP_PLAIN },
	{ "cpu.cfs_quota_us", "cpu", PROP_PLAIN },
	{ "cpu.cfs_burst_us", "cpu", PROP_PLAIN },
	{ "cpu.idle", "cpu", PROP_PLAIN },
	{ "memory.limit_in_bytes", "memory", PROP_PLAIN },
	{ "memory.memsw.limit_in_bytes", "memory", PROP_PLAIN },
	{ "memory.soft_limit_in_bytes", "memory", PROP_PLAIN },
	{ "memory.swappiness", "memory", PROP_PLAIN },
	{ "memory.oom_control", "memory", PROP_OOM_CONTROL },
	{ "pids.max", "pids", PROP_PLAIN },
	{ "devices.list", "devices", PROP_DEVICES },
	{ "blkio.weight", "blkio", PROP_PLAIN },
	{ "net_cls.classid", "net_cls", PROP_PLAIN },
	/* v2 (a threaded cgroup before its controllers: a threaded one enables threaded ones only) */
	{ "cgroup.type", NULL, PROP_THREADED },
	{ "cgroup.subtree_control", NULL, PROP_SUBTREE },
	{ "cgroup.max.descendants", NULL, PROP_PLAIN },
	{ "cgroup.max.depth", NULL, PROP_PLAIN },
	{ "cpuset.mems", NULL, PROP_PLAIN },
	{ "cpuset.cpus", NULL, PROP_PLAIN },
	{ "cpu.weight", NULL, PROP_PLAIN },
	{ "cpu.max", NULL, PROP_PLAIN },
	{ "cpu.idle", NULL, PROP_PLAIN },
	{ "memory.min", NULL, PROP_PLAIN },
	{ "memory.low", NULL, PROP_PLAIN },
	{ "memory.high", NULL, PROP_PLAIN },
	{ "memory.max", NULL, PROP_PLAIN },
	{ "memory.swap.max", NULL, PROP_PLAIN },
	{ "memory.oom.group", NULL, PROP_PLAIN },
	{ "pids.max", NULL, PROP_PLAIN },
	{ "io.weight", NULL, PROP_PLAIN },
	{ "hugetlb.2MB.max", NULL, PROP_PLAIN },
	{ "hugetlb.2MB.rsvd.max", NULL, PROP_PLAIN },
	{ "hugetlb.1GB.max", NULL, PROP_PLAIN },
	{ "hugetlb.1GB.rsvd.max", NULL, PROP_PLAIN },
};

/* Control files a delegation gives away with the directory. */
static const char *const delegated[] = { "cgroup.procs", "cgroup.threads", "cgroup.subtree_control",
					 "tasks" };

static bool applies(const struct prop_desc *p, const char *controllers)
{
	if (!controllers[0])
		return !p->controller;
	return p->controller && cg_has_controller(controllers, p->controller);
}

static const struct prop_desc *find_prop(const char *controllers, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(props); i++)
		if (applies(&props[i], controllers) && !strcmp(props[i].name, name))
			return &props[i];
	return NULL;
}

/* NULL with errno (ENOMEM: out of memory, said; else the file is not there). */
static char *read_control(int hfd, const char *path, const char *name)
{
	char file[4200];
	char *value;

	snprintf(file, sizeof(file), "%s/%s", cg_rel(path), name);
	if (!(value = read_file_at(hfd, file, NULL)))
		return NULL;
	size_t len = strlen(value);
	while (len && value[len - 1] == '\n')
		value[--len] = 0;
	return value;
}

static int add_prop(CgroupDir *d, const char *name, char *value)
{
	CgroupProp *p = xzalloc(sizeof(*p));
	void *v = p ? xreallocarray(d->props, d->n_props + 1, sizeof(*d->props)) : NULL;

	if (!v) {
		free(p);
		free(value);
		return -ENOMEM;
	}
	d->props = v;
	cgroup_prop__init(p);
	if (!(p->name = xstrdup(name))) {
		free(p);
		free(value);
		return -ENOMEM;
	}
	p->value = value;
	d->props[d->n_props++] = p;
	return 0;
}

static int dump_owners(int hfd, CgroupDir *d)
{
	struct stat st, dst;

	if (fstatat(hfd, cg_rel(d->path), &dst, 0)) {
		pr_perror("dump: cannot stat cgroup %s", d->path);
		return -errno;
	}
	d->mode = dst.st_mode & 07777;
	d->uid = dst.st_uid;
	d->gid = dst.st_gid;
	for (size_t i = 0; i < ARRAY_SIZE(delegated); i++) {
		char file[4200];
		snprintf(file, sizeof(file), "%s/%s", cg_rel(d->path), delegated[i]);
		if (fstatat(hfd, file, &st, 0) || (!st.st_uid && !st.st_gid))
			continue;
		CgroupFileOwner *o = xzalloc(sizeof(*o));
		void *v = o ? xreallocarray(d->owners, d->n_owners + 1, sizeof(*d->owners)) : NULL;
		if (!v) {
			free(o);
			return -ENOMEM;
		}
		d->owners = v;
		cgroup_file_owner__init(o);
		if (!(o->name = xstrdup(delegated[i]))) {
			free(o);
			return -ENOMEM;
		}
		o->uid = st.st_uid;
		o->gid = st.st_gid;
		d->owners[d->n_owners++] = o;
	}
	return 0;
}

int cg_dir_dump(int hfd, const char *controllers, CgroupDir *d)
{
	int err = dump_owners(hfd, d);

	for (size_t i = 0; !err && i < ARRAY_SIZE(props); i++) {
		const struct prop_desc *p = &props[i];
		char *value;
		int disable;

		if (!applies(p, controllers))
			continue;
		if (!(value = read_control(hfd, d->path, p->name))) {
			if (errno == ENOMEM)
				return -ENOMEM;
			continue; /* not on this kernel, or not enabled for this cgroup */
		}
		if (p->kind == PROP_THREADED && strcmp(value, "threaded")) {
			free(value);
			continue;
		}
		if (p->kind == PROP_OOM_CONTROL) {
			if (sscanf(value, "oom_kill_disable %d", &disable) != 1) {
				pr_err("dump: cgroup %s: unexpected memory.oom_control \"%s\"", d->path, value);
				free(value);
				return -EINVAL;
			}
			snprintf(value, strlen(value) + 1, "%d", disable);
		}
		if (strlen(value) > (p->kind == PROP_DEVICES ? CG_LIST_MAX : CG_VALUE_MAX)) {
			pr_err("dump: cgroup %s: %s is too long to save", d->path, p->name);
			free(value);
			return -E2BIG;
		}
		pr_debug("dump: cgroup %s:%s %s = %s", cg_hierarchy_name(controllers), d->path, p->name,
			 value);
		err = add_prop(d, p->name, value);
	}
	return err;
}

static bool value_ok(const char *value, size_t max, bool lines)
{
	size_t len = 0;

	for (const char *c = value; *c; c++, len++)
		if ((*c < ' ' || *c > '~') && !(lines && *c == '\n'))
			return false;
	return len <= max;
}

/* Every line of a devices list fits one write (devices.allow takes one line at a time). */
static bool lines_short(const char *list)
{
	for (const char *l = list; *l; l += strcspn(l, "\n"), l += *l == '\n')
		if (strcspn(l, "\n") >= DEVICE_LINE_MAX)
			return false;
	return true;
}

int cg_dir_check(const char *controllers, const CgroupDir *d)
{
	for (size_t i = 0; i < d->n_props; i++) {
		const struct prop_desc *p = find_prop(controllers, d->props[i]->name);
		const char *v = d->props[i]->value;
		if (!p || !value_ok(v, p->kind == PROP_DEVICES ? CG_LIST_MAX : CG_VALUE_MAX,
				   p->kind == PROP_DEVICES) ||
		    (p->kind == PROP_DEVICES && !lines_short(v)) ||
		    (p->kind == PROP_THREADED && strcmp(v, "threaded"))) {
			pr_err("image cgroups.img: cgroup %s:%s: property \"%s\" is not one stasis restores, "
			       "or its value is invalid",
			       cg_hierarchy_name(controllers), d->path, d->props[i]->name);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < d->n_owners; i++) {
		bool known = false;
		for (size_t k = 0; k < ARRAY_SIZE(delegated); k++)
			known |= !strcmp(d->owners[i]->name, delegated[k]);
		if (!known) {
			pr_err("image cgroups.img: cgroup %s: \"%s\" is not a file stasis gives away",
			       d->path, d->owners[i]->name);
			return -EINVAL;
		}
	}
	if (d->mode & ~07777u) {
		pr_err("image cgroups.img: cgroup %s: invalid mode %o", d->path, d->mode);
		return -EINVAL;
	}
	return 0;
}

/* One write of a control file; -errno. */
static int write_control(int hfd, const char *path, const char *name, const char *value)
{
	char file[4200];
	size_t len = strlen(value);

	if (!len) { /* an empty list (cpuset.cpus of v2: its parent's) */
		value = "\n";
		len = 1;
	}
	snprintf(file, sizeof(file), "%s/%s", cg_rel(path), name);
	auto_close int fd = openat(hfd, file, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, len) != (ssize_t)len)
		return -errno;
	return 0;
}

static int write_devices(int hfd, const char *path, const char *list)
{
	int err = write_control(hfd, path, "devices.deny", "a");

	for (const char *l = list; !err && *l; l += strcspn(l, "\n"), l += *l == '\n') {
		char line[DEVICE_LINE_MAX];
		snprintf(line, sizeof(line), "%.*s", (int)strcspn(l, "\n"), l);
		if (line[0])
			err = write_control(hfd, path, "devices.allow", line);
	}
	return err;
}

/* "+NAME" for each controller of names (space separated) not in now (comma separated). */
static int write_subtree(int hfd, const char *path, const char *names, const char *now)
{
	int err = 0;

	for (const char *n = names; !err && *n; n += strcspn(n, " "), n += *n == ' ') {
		char word[64];
		snprintf(word, sizeof(word), "+%.*s", (int)strcspn(n, " "), n);
		if (word[1] && !cg_has_controller(now, word + 1))
			err = write_control(hfd, path, "cgroup.subtree_control", word);
	}
	return err;
}

/* Writes p unless the cgroup already has that value; 0 or -errno. */
static int restore_prop(int hfd, const char *path, const struct prop_desc *desc,
			const CgroupProp *p)
{
	auto_free char *now = read_control(hfd, path, p->name);
	auto_free char *spaced = NULL;

	if (!now && errno == ENOMEM)
		return -ENOMEM;
	switch (desc->kind) {
	case PROP_OOM_CONTROL:
		if (now && strstr(now, "oom_kill_disable ") == now && atoi(now + 17) == atoi(p->value))
			return 0;
		return write_control(hfd, path, p->name, p->value);
	case PROP_DEVICES:
		return now && !strcmp(now, p->value) ? 0 : write_devices(hfd, path, p->value);
	case PROP_SUBTREE:
		if (!now)
			return -ENOENT;
		if (!(spaced = xstrdup(now)))
			return -ENOMEM;
		for (char *c = spaced; *c; c++)
			*c = *c == ' ' ? ',' : *c;
		return write_subtree(hfd, path, p->value, spaced);
	default: /* (PROP_THREADED too: "threaded" is the only value) */
		return now && !strcmp(now, p->value) ? 0 : write_control(hfd, path, p->name, p->value);
	}
}

static int restore_owners(int hfd, const char *path, const CgroupDir *d)
{
	struct stat st;
	int err = 0;

	if (fstatat(hfd, cg_rel(path), &st, 0))
		return -errno;
	if ((st.st_mode & 07777) != d->mode && fchmodat(hfd, cg_rel(path), d->mode, 0))
		err = -errno;
	if ((st.st_uid != d->uid || st.st_gid != d->gid) &&
	    fchownat(hfd, cg_rel(path), d->uid, d->gid, 0))
		err = err ? err : -errno;
	for (size_t i = 0; i < d->n_owners; i++) {
		char file[4200];
		snprintf(file, sizeof(file), "%s/%s", cg_rel(path), d->owners[i]->name);
		if (fchownat(hfd, file, d->owners[i]->uid, d->owners[i]->gid, 0) && errno != ENOENT)
			err = err ? err : -errno;
	}
	return err;
}

int cg_dir_restore(int hfd, const char *controllers, const char *path, const CgroupDir *d,
		   bool strict)
{
	const char *hier = cg_hierarchy_name(controllers);
	bool *failed = xzalloc((d->n_props + 1) * sizeof(bool));
	int err;

	if (!failed)
		return -ENOMEM;
	/* A value may need another first (a memory limit under the memory+swap one, a quota under
	 * its period): what fails once is tried again after the others. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < d->n_props; i++) {
			const CgroupProp *p = d->props[i];
			unsigned logged = log_errors();
			if (pass && !failed[i])
				continue;
			err = restore_prop(hfd, path, find_prop(controllers, p->name), p);
			failed[i] = err != 0;
			if (err == -ENOMEM) {
				free(failed);
				return log_unnamed(logged, err, "restore: cgroup %s:%s: cannot set %s", hier, path,
						   p->name);
			}
			if (!err || !pass)
				continue;
			if (strict) {
				pr_err("restore: cgroup %s:%s: cannot set %s to \"%s\": %s", hier, path, p->name,
				       p->value, strerror(-err));
				free(failed);
				return err;
			}
			pr_warn("restore: cgroup %s:%s: cannot set %s to \"%s\": %s (left as it is)", hier,
				path, p->name, p->value, strerror(-err));
		}
	}
	free(failed);
	if ((err = restore_owners(hfd, path, d))) {
		if (strict) {
			pr_err("restore: cgroup %s:%s: cannot give it its mode and owners: %s", hier, path,
			       strerror(-err));
			return err;
		}
		pr_warn("restore: cgroup %s:%s: cannot give it its mode and owners: %s", hier, path,
			strerror(-err));
	}
	return 0;
}
