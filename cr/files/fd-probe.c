/* What every fd has in common, read from /proc/PID/fd and /proc/PID/fdinfo. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "util.h"

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

int fd_probe(pid_t pid, int fd, struct fd_probe *p, char **info_out)
{
	char path[64], buf[4096];
	char *info = NULL;
	char *l;
	ssize_t n;

	memset(p, 0, sizeof(*p));
	p->fd = fd;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	n = readlink(path, p->link, sizeof(p->link) - 1);
	if (n < 0 || stat(path, &p->st)) {
		pr_perror("dump pid %d fd %d: cannot inspect", pid, fd);
		return -errno;
	}
	p->link[n] = 0;
	snprintf(buf, sizeof(buf), "/proc/%d/fdinfo/%d", pid, fd);
	info = read_file_at(AT_FDCWD, buf, NULL);
	if (!info) {
		if (errno != ENOMEM)
			pr_perror("dump pid %d fd %d: cannot read %s", pid, fd, buf);
		return -errno;
	}
	if ((l = strstr(info, "pos:")))
		p->pos = strtoull(l + 4, NULL, 10);
	if ((l = strstr(info, "flags:")))
		p->flags = strtoul(l + 6, NULL, 8);
	p->info = *info_out = info;
	return 0;
}
