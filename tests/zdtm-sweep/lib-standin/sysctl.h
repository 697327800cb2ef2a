/* stand-in for criu's zdtm lib sysctl.h */
#ifndef ZDTM_SYSCTL_H
#define ZDTM_SYSCTL_H
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include "zdtmtst.h"
static inline int sysctl_write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0) { pr_perror("open %s", path); return -1; }
	if (write(fd, val, strlen(val)) != (ssize_t)strlen(val)) { pr_perror("write %s", path); close(fd); return -1; }
	close(fd);
	return 0;
}
static inline int sysctl_read_str(const char *path, char *val, int len)
{
	int fd = open(path, O_RDONLY), r;
	if (fd < 0) { pr_perror("open %s", path); return -1; }
	r = read(fd, val, len - 1);
	close(fd);
	if (r < 0) return -1;
	val[r] = 0;
	return 0;
}
static inline int sysctl_write_int(const char *path, int v) { char b[32]; snprintf(b, sizeof(b), "%d", v); return sysctl_write_str(path, b); }
static inline int sysctl_read_int(const char *path, int *v) { char b[32]; if (sysctl_read_str(path, b, sizeof(b))) return -1; *v = atoi(b); return 0; }
#endif
