/*
 * timerfd: clock, time left and interval, and the expirations not yet read (from fdinfo; the
 * latter put back with TFD_IOC_SET_TICKS). A timer set with an absolute time stays absolute:
 * on a wall clock (CLOCK_REALTIME, _ALARM) it expires at the same date after a restore days
 * later; on the others it keeps the time it had left. TFD_TIMER_CANCEL_ON_SET is kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "util.h"

#define TIMER_FLAGS_KNOWN (TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET)

static bool wall_clock(uint32_t clockid)
{
	return clockid == CLOCK_REALTIME || clockid == CLOCK_REALTIME_ALARM;
}

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
	uint64_t clockid, ticks, flags = 0;

	if (strcmp(p->link, "anon_inode:[timerfd]"))
		return 0;
	if (!fdinfo_u64(p->info, "clockid:", 10, &clockid) || !fdinfo_u64(p->info, "ticks:", 10, &ticks) ||
	    !fdinfo_time(p->info, "it_value:", &e->value_ns) ||
	    !fdinfo_time(p->info, "it_interval:", &e->interval_ns)) {
		pr_err("dump pid %d fd %d: cannot parse its timerfd fdinfo", t->pid, p->fd);
		return -EINVAL;
	}
	fdinfo_u64(p->info, "settime flags:", 0, &flags);
	e->has_clockid = e->has_counter = e->has_value_ns = e->has_interval_ns = e->has_flags = true;
	e->clockid = clockid;
	e->counter = ticks;
	e->flags = p->flags;
	if (flags) {
		e->has_timer_flags = true;
		e->timer_flags = flags;
	}
	if ((flags & TFD_TIMER_ABSTIME) && wall_clock(clockid) && e->value_ns) {
		e->has_deadline_ns = true;
		e->deadline_ns = now_ns(clockid == CLOCK_REALTIME_ALARM ? CLOCK_REALTIME : clockid) + e->value_ns;
	}
	return 1;
}

static int open_timerfd(struct restore_task *t, const FdEntry *e)
{
	int flags = TFD_CLOEXEC | (e->flags & O_NONBLOCK ? TFD_NONBLOCK : 0);
	struct itimerspec its = {
		.it_interval = { e->interval_ns / 1000000000, e->interval_ns % 1000000000 },
		.it_value = { e->value_ns / 1000000000, e->value_ns % 1000000000 },
	};
	int set_flags = e->has_timer_flags ? (int)e->timer_flags : 0;
	(void)t;
	if (set_flags & ~TIMER_FLAGS_KNOWN)
		return -EINVAL;
	if (e->value_ns && (set_flags & TFD_TIMER_ABSTIME)) {
		uint64_t at = e->has_deadline_ns ? e->deadline_ns
						 : now_ns(e->clockid == CLOCK_REALTIME_ALARM ? CLOCK_REALTIME : e->clockid) +
							   e->value_ns;
		its.it_value = (struct timespec){ at / 1000000000, at % 1000000000 };
	}
	int fd = timerfd_create(e->clockid, flags);
	if (fd < 0)
		return -errno;
	if ((e->value_ns && timerfd_settime(fd, set_flags, &its, NULL)) ||
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
