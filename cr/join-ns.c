/*
 * --join-ns: which namespaces a restore joins (cr/join-ns.h). A value is a path, or a PID
 * whose namespace of that kind is meant; what follows a comma (criu's extra options, for a
 * user namespace) is not part of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "join-ns.h"
#include "log.h"
#include "util.h"

static const struct joinable {
	const char *kind;
	int nstype;
} joinable[] = { { "net", CLONE_NEWNET }, { "ipc", CLONE_NEWIPC }, { "uts", CLONE_NEWUTS },
		  { "user", CLONE_NEWUSER } };

static const char *value_path(const char *kind, const char *value, char *buf, size_t len)
{
	size_t n = strcspn(value, ",");

	if (n && strspn(value, "0123456789") == n)
		snprintf(buf, len, "/proc/%.*s/ns/%s", (int)n, value, kind);
	else
		snprintf(buf, len, "%.*s", (int)n, value);
	return buf;
}

/* The value of the last --join-ns of that kind (the one that counts), or NULL. */
static const char *value_of(const struct stasis_opts *o, const char *kind)
{
	const char *value = NULL;

	for (size_t i = 0; i < o->join_ns.n; i++)
		if (o->join_ns.v[i].key && !strcmp(o->join_ns.v[i].key, kind))
			value = o->join_ns.v[i].value;
	return value;
}

const char *join_ns_path(const struct stasis_opts *o, const char *kind, char *buf, size_t len)
{
	const char *value = value_of(o, kind);

	return value ? value_path(kind, value, buf, len) : NULL;
}

/* An fd of the namespace at path, checked to be of that type: -errno, said. */
static int open_ns(const char *kind, int nstype, const char *value, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		pr_perror("restore: --join-ns %s:%s: cannot open %s", kind, value, path);
		return -errno;
	}
	int type = ioctl(fd, NS_GET_NSTYPE);
	if (type != nstype) {
		pr_err("restore: --join-ns %s:%s: %s is not a%s %s namespace", kind, value, path,
		       kind[0] == 'i' || kind[0] == 'u' ? "n" : "", kind);
		close(fd);
		return -EINVAL;
	}
	return fd;
}

int join_ns_check(const struct stasis_opts *o)
{
	char path[4096];

	for (size_t i = 0; i < o->join_ns.n; i++) {
		const char *kind = o->join_ns.v[i].key, *value = o->join_ns.v[i].value;
		const struct joinable *j = NULL;
		for (size_t k = 0; kind && k < ARRAY_SIZE(joinable); k++)
			if (!strcmp(joinable[k].kind, kind))
				j = &joinable[k];
		if (!kind || !value || !*value) {
			pr_err("restore: --join-ns %s%s%s: expected NS:PATH or NS:PID", kind ? kind : "",
			       kind ? ":" : "", value ? value : "");
			return -EINVAL;
		}
		if (!j) {
			pr_err("restore: --join-ns %s:%s: joining a %s namespace is not supported (net, "
			       "ipc, uts and user are)", kind, value, kind);
			return -EINVAL;
		}
		int fd = open_ns(kind, j->nstype, value, value_path(kind, value, path, sizeof(path)));
		if (fd < 0)
			return fd;
		close(fd);
	}
	return 0;
}

int join_ns_open(const struct stasis_opts *o, const char *kind, int *fd)
{
	char path[4096];
	const char *value = value_of(o, kind);

	for (size_t k = 0; value && k < ARRAY_SIZE(joinable); k++) {
		if (strcmp(joinable[k].kind, kind))
			continue;
		int got = open_ns(kind, joinable[k].nstype, value, value_path(kind, value, path, sizeof(path)));
		if (got < 0)
			return got;
		*fd = got;
		return 1;
	}
	return 0;
}

const char *external_ns_key(const struct stasis_opts *o, const char *kind, uint64_t ino)
{
	char want[48];

	snprintf(want, sizeof(want), "%s[%llu]:", kind, (unsigned long long)ino);
	for (size_t i = 0; i < o->externals.n; i++)
		if (!strncmp(o->externals.v[i].value, want, strlen(want)))
			return o->externals.v[i].value + strlen(want);
	return NULL;
}
