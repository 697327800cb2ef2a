/*
 * timerfd: clock, time left and interval, and the expirations not yet read (from fdinfo, once a
 * copy of the file has been asked for its time: see timerfd_state; the expirations are put
 * back with TFD_IOC_SET_TICKS, which an image that has some needs from the kernel). A timer set with an absolute time stays absolute:
 * on a wall clock (CLOCK_REALTIME, _ALARM) it expires at the same date after a restore days
 * later; on the others it keeps the time it had left. TFD_TIMER_CANCEL_ON_SET is kept.
 */
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "files.h"
#include "kernel/features.h"
#include "log.h"
#include "util.h"

#define TIMER_FLAGS_KNOWN (TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET)

static bool wall_clock(uint32_t clockid)
{
	return clockid == CLOCK_REALTIME || clockid == CLOCK_REALTIME_ALARM;
}

/* The clock now_ns reads for a timer's clock (the alarm clocks are the same clocks). */
static int clock_of(uint32_t clockid)
{
	return clockid == CLOCK_REALTIME_ALARM ? CLOCK_REALTIME : clockid == CLOCK_BOOTTIME_ALARM ? CLOCK_BOOTTIME
												   : (int)clockid;
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

/*
 * A periodic timer that expired is not rearmed until it is read or asked (timerfd_gettime):
 * until then fdinfo counts one expiration and shows no time left. Asking a copy of the open
 * file brings the count and the time left up to date (what a read would count), again if it
 * expires meanwhile; then fdinfo is exact. (A timer so fast that it has always expired again
 * is saved with its count and the next expiration one interval away.)
 */
static int timerfd_state(const struct dump_task *t, const struct fd_probe *p, char **info)
{
	auto_close int copy = task_fd_copy(t->pid, p->fd);
	struct itimerspec its;
	char path[64];

	if (copy < 0) {
		pr_err("dump pid %d fd %d: cannot take a copy of its timerfd: %s", t->pid, p->fd, strerror(-copy));
		return copy;
	}
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", copy);
	for (int tries = 0; tries < 10; tries++) {
		uint64_t value, interval, ticks;

		free(*info);
		*info = NULL;
		if (timerfd_gettime(copy, &its) || !(*info = read_file_at(AT_FDCWD, path, NULL))) {
			int err = -errno;
			pr_err("dump pid %d fd %d: cannot read its timerfd's state: %s", t->pid, p->fd, strerror(-err));
			return err;
		}
		if (!fdinfo_u64(*info, "ticks:", 10, &ticks) || !fdinfo_time(*info, "it_value:", &value) ||
		    !fdinfo_time(*info, "it_interval:", &interval) || !interval || !ticks || value)
			return 0; /* (not expired again since: fdinfo is exact) */
	}
	return 0;
}

static int dump_timerfd(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	uint64_t clockid, ticks, flags = 0;
	auto_free char *info = NULL;
	int err;

	if (strcmp(p->link, "anon_inode:[timerfd]"))
		return 0;
	if ((err = timerfd_state(t, p, &info)))
		return err;
	if (!fdinfo_u64(info, "clockid:", 10, &clockid) || !fdinfo_u64(info, "ticks:", 10, &ticks) ||
	    !fdinfo_time(info, "it_value:", &e->value_ns) || !fdinfo_time(info, "it_interval:", &e->interval_ns)) {
		pr_err("dump pid %d fd %d: cannot parse its timerfd fdinfo", t->pid, p->fd);
		return -EINVAL;
	}
	if (e->interval_ns && ticks && !e->value_ns)
		e->value_ns = e->interval_ns; /* (expired again while asked: see timerfd_state) */
	fdinfo_u64(info, "settime flags:", 0, &flags);
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
		e->deadline_ns = now_ns(CLOCK_REALTIME) + e->value_ns;
		if (e->deadline_ns > INT64_MAX) /* (armed at the end of time: it stays there) */
			e->deadline_ns = INT64_MAX;
	}
	return 1;
}

static bool timerfd_clock(uint32_t clockid)
{
	return clockid == CLOCK_REALTIME || clockid == CLOCK_MONOTONIC || clockid == CLOCK_BOOTTIME ||
	       clockid == CLOCK_REALTIME_ALARM || clockid == CLOCK_BOOTTIME_ALARM;
}

static int validate_timerfd(const struct restore_task *t, const FdEntry *e)
{
	uint32_t flags = e->has_timer_flags ? e->timer_flags : 0;

	if (!e->has_clockid || !timerfd_clock(e->clockid)) {
		pr_err("image fds-%d.img: fd %u: timerfd clock %u is not one a timerfd can have", t->pid, e->fd,
		       e->clockid);
		return -EINVAL;
	}
	if ((flags & ~TIMER_FLAGS_KNOWN) || ((flags & TFD_TIMER_CANCEL_ON_SET) && !(flags & TFD_TIMER_ABSTIME))) {
		pr_err("image fds-%d.img: fd %u: timerfd settime flags %#x are not the kernel's", t->pid, e->fd,
		       flags);
		return -EINVAL;
	}
	if (e->has_deadline_ns && !((flags & TFD_TIMER_ABSTIME) && wall_clock(e->clockid))) {
		pr_err("image fds-%d.img: fd %u: a timerfd deadline for a timer not absolute on a wall clock",
		       t->pid, e->fd);
		return -EINVAL;
	}
	/* (the kernel's times end at KTIME_MAX, INT64_MAX ns: a timer armed at the end of time,
	 * as systemd arms its watch for clock changes, has almost that much left) */
	if (e->value_ns > INT64_MAX || e->interval_ns > INT64_MAX || e->deadline_ns > INT64_MAX) {
		pr_err("image fds-%d.img: fd %u: timerfd times out of range", t->pid, e->fd);
		return -EINVAL;
	}
	if (e->counter && !kernel_has(KF_TIMERFD_SET_TICKS)) {
		pr_err("image fds-%d.img: fd %u: the timerfd's %llu unread expirations cannot be put back "
		       "(this kernel has no TFD_IOC_SET_TICKS: CONFIG_CHECKPOINT_RESTORE)", t->pid, e->fd,
		       (unsigned long long)e->counter);
		return -EOPNOTSUPP;
	}
	return 0;
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
	if (e->value_ns && (set_flags & TFD_TIMER_ABSTIME)) {
		uint64_t at = e->has_deadline_ns ? e->deadline_ns : now_ns(clock_of(e->clockid)) + e->value_ns;
		if (at > INT64_MAX)
			at = INT64_MAX;
		its.it_value = (struct timespec){ at / 1000000000, at % 1000000000 };
	}
	int fd = timerfd_create(e->clockid, flags);
	if (fd < 0)
		return -errno;
	/* (disarmed too: the settime flags are kept, and a cancel on a clock change is armed) */
	if (timerfd_settime(fd, set_flags, &its, NULL) ||
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
	.validate = validate_timerfd,
	.open = open_timerfd,
	.kind = FD_KIND__FD_TIMERFD,
};
