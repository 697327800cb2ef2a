/*
 * timerfd: clock, time left and interval, and the expirations not yet read (from fdinfo; the
 * latter put back with TFD_IOC_SET_TICKS).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "files.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

/* "it_value: (sec, nsec)" */
static bool fdinfo_time(const char *info, const char *key, uint64_t *ns)
{
	const char *p = strstr(info, key);
	unsigned long long sec, nsec;

	if (!p || sscanf(p + strlen(key), " (%llu, %llu)", &sec, &nsec) != 2)
		return false;
	*ns = sec * 1000000000ull + nsec;
	return true;
}

static int dump_timerfd(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	uint64_t clockid, ticks;

	(void)t;
	if (strcmp(p->link, "anon_inode:[timerfd]"))
		return 0;
	if (!fdinfo_u64(p->info, "clockid:", 10, &clockid) || !fdinfo_u64(p->info, "ticks:", 10, &ticks) ||
	    !fdinfo_time(p->info, "it_value:", &e->value_ns) ||
	    !fdinfo_time(p->info, "it_interval:", &e->interval_ns))
		return -EINVAL;
	e->has_clockid = e->has_counter = e->has_value_ns = e->has_interval_ns = e->has_flags = true;
	e->clockid = clockid;
	e->counter = ticks;
	e->flags = p->flags;
	return 1;
}

static int open_timerfd(struct restore_task *t, const FdEntry *e)
{
	int flags = TFD_CLOEXEC | (e->flags & O_NONBLOCK ? TFD_NONBLOCK : 0);
	struct itimerspec its = {
		.it_interval = { e->interval_ns / 1000000000, e->interval_ns % 1000000000 },
		.it_value = { e->value_ns / 1000000000, e->value_ns % 1000000000 },
	};
	(void)t;
	int fd = timerfd_create(e->clockid, flags);
	if (fd < 0)
		return -errno;
	if ((e->value_ns && timerfd_settime(fd, 0, &its, NULL)) ||
	    (e->counter && ioctl(fd, TFD_IOC_SET_TICKS, &e->counter))) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

const struct fd_kind_ops fd_kind_timerfd = {
	.name = "timerfd",
	.dump = dump_timerfd,
	.open = open_timerfd,
	.kind = FD_KIND__FD_TIMERFD,
};
