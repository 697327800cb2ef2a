#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>

#include "compat/kernel-abi.h"
#include "log.h"
#include "util.h"

/* STASIS_FAULT=alloc-N: allocations left before the one that fails (0: none fails). */
static unsigned long alloc_fault_countdown;

void alloc_fail_at(unsigned long n)
{
	alloc_fault_countdown = n;
}

/* Whether this allocation is the one a test asked to fail. */
static bool alloc_fault(void)
{
	return alloc_fault_countdown && --alloc_fault_countdown == 0;
}

static void *out_of_memory(size_t size)
{
	pr_err("out of memory: %zu bytes", size);
	errno = ENOMEM;
	return NULL;
}

void *xmalloc(size_t size)
{
	void *p = alloc_fault() ? NULL : malloc(size ? size : 1);

	return p ? p : out_of_memory(size);
}

void *xzalloc(size_t size)
{
	void *p = alloc_fault() ? NULL : calloc(1, size ? size : 1);

	return p ? p : out_of_memory(size);
}

char *xstrdup(const char *s)
{
	char *p;

	if (!s)
		s = "";
	p = alloc_fault() ? NULL : strdup(s);
	return p ? p : out_of_memory(strlen(s) + 1);
}

void *xmemdup(const void *p, size_t len)
{
	void *copy = xzalloc(len ?: 1);

	return copy && len ? memcpy(copy, p, len) : copy;
}

void *xreallocarray(void *p, size_t n, size_t size)
{
	size_t bytes;
	void *q;

	if (__builtin_mul_overflow(n, size, &bytes))
		return out_of_memory(SIZE_MAX);
	q = alloc_fault() ? NULL : realloc(p, bytes ? bytes : 1);
	return q ? q : out_of_memory(bytes);
}

int xgrow(void *array, size_t *cap, size_t n, size_t size)
{
	void *old;

	if (n < *cap)
		return 0;
	memcpy(&old, array, sizeof(old)); /* (any object pointer: the array's, as void *) */
	size_t more = *cap ? 2 * *cap : 16;
	void *grown = xreallocarray(old, more, size);
	if (!grown)
		return -ENOMEM;
	memcpy(array, &grown, sizeof(grown));
	*cap = more;
	return 0;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	va_list again;
	int len;
	char *p;

	va_copy(again, ap);
	len = vsnprintf(NULL, 0, fmt, again);
	va_end(again);
	if (len < 0 || !(p = xmalloc(len + 1)))
		return NULL;
	vsnprintf(p, len + 1, fmt, ap);
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}

ssize_t read_all(int fd, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

int write_all(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		done += n;
	}
	return 0;
}

static char *read_whole(int dirfd, const char *path, size_t *len_out, bool one_record);

char *read_file_at(int dirfd, const char *path, size_t *len_out)
{
	return read_whole(dirfd, path, len_out, false);
}

char *read_proc_record(const char *path)
{
	return read_whole(AT_FDCWD, path, NULL, true);
}

/* one_record: a read that leaves room in the buffer had the whole file (no read for EOF) */
static char *read_whole(int dirfd, const char *path, size_t *len_out, bool one_record)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	size_t cap = 4096, len = 0;
	char *buf;
	int err = 0;

	if (fd < 0)
		return NULL;
	buf = xmalloc(cap);
	while (buf) {
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			free(buf);
			buf = NULL;
			break;
		}
		if (n == 0)
			break;
		len += n;
		if (one_record && cap - len >= 2)
			break;
		if (cap - len < 2) {
			char *nb = xreallocarray(buf, cap *= 2, 1);
			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	if (!buf && !err)
		err = ENOMEM;
	close(fd);
	if (!buf) {
		errno = err;
		return NULL;
	}
	buf[len] = 0;
	if (len_out)
		*len_out = len;
	return buf;
}

void free_ptr(void *p)
{
	free(*(void **)p);
}

uint64_t now_ns(int clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

bool page_is_zero(const void *page)
{
	const uint64_t *p = page;
	for (size_t i = 0; i < PAGE_SIZE / 8; i += 8)
		if (p[i] | p[i + 1] | p[i + 2] | p[i + 3] | p[i + 4] | p[i + 5] | p[i + 6] | p[i + 7])
			return false;
	return true;
}

uint64_t str_hash(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		h = (h ^ *c) * 1099511628211ull;
	return h;
}

bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

int task_fd_copy(pid_t pid, int fd)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0), copy;

	if (pidfd < 0 && errno == ENOENT) /* a thread other than the main one: PIDFD_THREAD */
		pidfd = syscall(SYS_pidfd_open, pid, O_EXCL);
	if (pidfd < 0)
		return -errno;
	copy = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	copy = copy < 0 ? -errno : copy;
	close(pidfd);
	return copy;
}

int sock_buf_room(int sk, int opt, int force_opt, size_t need)
{
	int want = need > INT_MAX / 2 ? INT_MAX / 2 : (int)need, have;
	socklen_t len = sizeof(have);

	if (getsockopt(sk, SOL_SOCKET, opt, &have, &len))
		return -errno;
	if (have / 2 >= want) /* (the kernel doubles what it is given) */
		return 0;
	if (!setsockopt(sk, SOL_SOCKET, opt, &want, sizeof(want)) &&
	    !getsockopt(sk, SOL_SOCKET, opt, &have, &len) && have / 2 >= want)
		return 0;
	return setsockopt(sk, SOL_SOCKET, force_opt, &want, sizeof(want)) ? -errno : 0;
}

int send_with_fd(int sk, const void *msg, size_t len, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { (void *)msg, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t sent;

	if (fd >= 0) {
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while ((sent = sendmsg(sk, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return sent < 0 ? -errno : sent == (ssize_t)len ? 0 : -EIO;
}

ssize_t recv_with_fd(int sk, void *msg, size_t len, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { msg, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n;

	*fd = -1;
	while ((n = recvmsg(sk, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(c), sizeof(int));
	return n;
}

DIR *opendir_at(int dirfd, const char *name, int flags)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | flags);
	DIR *dir = fd < 0 ? NULL : fdopendir(fd);

	if (!dir && fd >= 0) {
		int err = errno;
		close(fd);
		errno = err;
	}
	return dir;
}

pid_t clone_with_pid(const uint32_t *pids, size_t levels, uint64_t flags, int exit_signal, int cgroup_fd)
{
	pid_t set_tid[32];
	struct clone_args ca = {
		.flags = flags | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0),
		/* a sibling (CLONE_PARENT) tells our parent with our own exit signal */
		.exit_signal = (flags & CLONE_PARENT) ? 0 : (uint64_t)exit_signal,
		.set_tid = (uint64_t)(uintptr_t)set_tid,
		.set_tid_size = levels,
		.cgroup = cgroup_fd >= 0 ? (uint64_t)cgroup_fd : 0,
	};

	if (!levels || levels > ARRAY_SIZE(set_tid)) {
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < levels; i++)
		set_tid[i] = pids[i];
	return syscall(SYS_clone3, &ca, sizeof(ca));
}
