/* What every fd has in common, read from /proc/PID/fd and /proc/PID/fdinfo. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "proc.h"
#include "util.h"

const char *fdinfo_key(const char *info, const char *key)
{
	size_t len = strlen(key);

	for (const char *l = info; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (!strncmp(l, key, len))
			return l;
	return NULL;
}

bool fdinfo_u64(const char *info, const char *key, int base, uint64_t *val)
{
	const char *p = strstr(info, key);
	if (!p)
		return false;
	p += strlen(key);
	while (*p == ' ' || *p == '\t')
		p++;
	char *end;
	*val = strtoull(p, &end, base);
	return end != p;
}


char *fdinfo_line(const char *l, char *buf, size_t len)
{
	size_t n = strcspn(l, "\n");

	if (n >= len)
		n = len - 1;
	memcpy(buf, l, n);
	buf[n] = 0;
	return buf;
}

const char *fdinfo_one_line(const char *text, char *buf, size_t len)
{
	size_t n = 0;

	for (const char *c = text; *c && n + 4 < len; c++) {
		if (*c == '\t')
			continue;
		if (*c == '\n') {
			if (c[1]) {
				buf[n++] = ';';
				buf[n++] = ' ';
			}
			continue;
		}
		buf[n++] = *c;
	}
	buf[n] = 0;
	return buf;
}

/* The path of fd (or its fdinfo) of d's process: relative to the open directory, else whole. */
static const char *fd_path(const struct fd_dirs *d, bool info, int fd, char *buf, size_t len)
{
	if ((info ? d->info_dir : d->fd_dir) >= 0)
		snprintf(buf, len, "%d", fd);
	else
		snprintf(buf, len, "/proc/%d/%s/%d", d->pid, info ? "fdinfo" : "fd", fd);
	return buf;
}

static int at_dir(const struct fd_dirs *d, bool info)
{
	int dir = info ? d->info_dir : d->fd_dir;
	return dir >= 0 ? dir : AT_FDCWD;
}

int fd_probe_info(const struct fd_dirs *d, int fd, struct fd_probe *p, char **info_out)
{
	char path[64];
	uint64_t mnt_id, ino;
	char *info;
	const char *l;

	memset(p, 0, offsetof(struct fd_probe, link));
	p->link[0] = 0;
	p->fd = fd;
	info = read_file_at(at_dir(d, true), fd_path(d, true, fd, path, sizeof(path)), NULL);
	if (!info) {
		if (errno != ENOMEM)
			pr_perror("dump pid %d fd %d: cannot read its fdinfo", d->pid, fd);
		return -errno;
	}
	if ((l = fdinfo_key(info, "pos:")))
		p->pos = strtoull(l + 4, NULL, 10);
	if ((l = fdinfo_key(info, "flags:")))
		p->flags = strtoul(l + 6, NULL, 8);
	p->info = *info_out = info;
	/* one open file has one mount: its mount and inode group it with those that may be it */
	if (fdinfo_u64(info, "mnt_id:", 10, &mnt_id) && fdinfo_u64(info, "\nino:", 10, &ino)) {
		p->id_dev = mnt_id | 1ull << 63;
		p->id_ino = ino;
		return 0;
	}
	if (fstatat(at_dir(d, false), fd_path(d, false, fd, path, sizeof(path)), &p->st, 0)) {
		pr_perror("dump pid %d fd %d: cannot inspect", d->pid, fd);
		return -errno;
	}
	p->has_st = true;
	p->id_dev = p->st.st_dev;
	p->id_ino = p->st.st_ino;
	return 0;
}

int fd_probe_file(const struct fd_dirs *d, struct fd_probe *p)
{
	char path[64];
	ssize_t n;

	fd_path(d, false, p->fd, path, sizeof(path));
	n = readlinkat(at_dir(d, false), path, p->link, sizeof(p->link) - 1);
	if (n < 0 || (!p->has_st && fstatat(at_dir(d, false), path, &p->st, 0))) {
		pr_perror("dump pid %d fd %d: cannot inspect", d->pid, p->fd);
		return -errno;
	}
	p->link[n] = 0;
	p->has_st = true;
	return 0;
}

int fd_probe(pid_t pid, int fd, struct fd_probe *p, char **info_out)
{
	const struct fd_dirs d = { pid, -1, -1 };
	int err = fd_probe_info(&d, fd, p, info_out);

	if (!err && (err = fd_probe_file(&d, p))) {
		free(*info_out);
		*info_out = NULL;
	}
	return err;
}

int fd_probe_refuse_fuse(const struct dump_task *tasks, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		pid_t pid = tasks[i].pid;
		auto_free int *fds = NULL;
		size_t nr = 0;
		int err = proc_list_numbers(pid, "fd", &fds, &nr);
		if (err == -ENOMEM)
			return err;
		if (err)
			continue; /* (said by the fd table's own dump) */
		for (size_t k = 0; k < nr; k++) {
			char path[64], link[16];
			struct stat st;
			snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fds[k]);
			ssize_t len = readlink(path, link, sizeof(link) - 1);
			if (len != 9 || memcmp(link, "/dev/fuse", 9))
				continue;
			/* (the device itself, not a file of the file system it serves: safe to look at) */
			if (!stat(path, &st) && S_ISCHR(st.st_mode) && st.st_rdev == makedev(10, 229)) {
				pr_err("dump pid %d fd %d: /dev/fuse: the tree serves a FUSE file system (not "
				       "supported; the files of that file system cannot even be looked at "
				       "while their server is frozen)", pid, fds[k]);
				return -ENOTSUP;
			}
		}
	}
	return 0;
}

int fd_each_socket(pid_t pid, int (*fn)(uint64_t ino, pid_t pid, int fd, void *arg), void *arg)
{
	auto_free int *fds = NULL;
	size_t n;
	char dir[64];
	int err;

	if ((err = proc_list_numbers(pid, "fd", &fds, &n)))
		return err;
	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	auto_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i < n && dfd >= 0; i++) {
		char name[32], link[64];
		unsigned long long ino;
		snprintf(name, sizeof(name), "%d", fds[i]);
		ssize_t len = readlinkat(dfd, name, link, sizeof(link) - 1);
		if (len < 0)
			continue;
		link[len] = 0;
		if (sscanf(link, "socket:[%llu]", &ino) == 1 && (err = fn(ino, pid, fds[i], arg)))
			return err;
	}
	return 0;
}

/* (fd_each_socket: the fd holding the socket wanted, which ends the walk) */
struct socket_wanted {
	uint64_t ino;
	int fd;
};

static int holding_wanted(uint64_t ino, pid_t pid, int fd, void *arg)
{
	struct socket_wanted *w = arg;

	(void)pid;
	if (ino != w->ino)
		return 0;
	w->fd = fd;
	return 1;
}

int fd_holding_socket(const struct dump_task *t, uint64_t ino)
{
	struct socket_wanted w = { ino, -ENOENT };
	int err = fd_each_socket(t->pid, holding_wanted, &w);

	return err < 0 ? err : w.fd;
}
