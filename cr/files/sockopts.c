/*
 * Socket options every kind of socket has (SOL_SOCKET): only those whose value differs from a
 * fresh socket of the same family and type are saved, so that a restored socket keeps the
 * kernel's defaults (and autotuning) wherever the program did not choose. Buffer sizes are
 * set with the *FORCE variants (the kernel doubles what is set, so half is given back).
 * A classic BPF filter (SO_ATTACH_FILTER) is read back with SO_GET_FILTER and attached again
 * last (SO_LOCK_FILTER again if it was set); an eBPF one (SO_ATTACH_BPF) cannot be read: the dump fails.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/net_tstamp.h>
#include <linux/socket.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "files.h"
#include "log.h"
#include "util.h"

#ifndef SO_SNDBUFFORCE
#define SO_SNDBUFFORCE 32
#endif
#ifndef SO_RCVBUFFORCE
#define SO_RCVBUFFORCE 33
#endif
#ifndef SO_TXREHASH
#define SO_TXREHASH 74
#endif
#ifndef SO_RCVMARK
#define SO_RCVMARK 75
#endif
#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

static const struct {
	int name;
	int set_as;  /* the option to set it with */
	size_t size; /* of the value */
	const char *what;
} known_opts[] = {
	{ SO_SNDBUF, SO_SNDBUFFORCE, sizeof(int), "SO_SNDBUF" },
	{ SO_RCVBUF, SO_RCVBUFFORCE, sizeof(int), "SO_RCVBUF" },
	/* after the sizes, which lock what they set: the locks as they were (Linux >= 5.14) */
	{ SO_BUF_LOCK, SO_BUF_LOCK, sizeof(int), "SO_BUF_LOCK" },
	{ SO_RCVTIMEO, SO_RCVTIMEO, sizeof(struct timeval), "SO_RCVTIMEO" },
	{ SO_SNDTIMEO, SO_SNDTIMEO, sizeof(struct timeval), "SO_SNDTIMEO" },
	{ SO_RCVLOWAT, SO_RCVLOWAT, sizeof(int), "SO_RCVLOWAT" },
	{ SO_PRIORITY, SO_PRIORITY, sizeof(int), "SO_PRIORITY" },
	{ SO_MARK, SO_MARK, sizeof(int), "SO_MARK" },
	{ SO_PASSCRED, SO_PASSCRED, sizeof(int), "SO_PASSCRED" },
	{ SO_PASSSEC, SO_PASSSEC, sizeof(int), "SO_PASSSEC" },
	{ SO_TIMESTAMP, SO_TIMESTAMP, sizeof(int), "SO_TIMESTAMP" },
	{ SO_TIMESTAMPNS, SO_TIMESTAMPNS, sizeof(int), "SO_TIMESTAMPNS" },
	{ SO_KEEPALIVE, SO_KEEPALIVE, sizeof(int), "SO_KEEPALIVE" },
	{ SO_BROADCAST, SO_BROADCAST, sizeof(int), "SO_BROADCAST" },
	{ SO_OOBINLINE, SO_OOBINLINE, sizeof(int), "SO_OOBINLINE" },
	{ SO_DONTROUTE, SO_DONTROUTE, sizeof(int), "SO_DONTROUTE" },
	{ SO_LINGER, SO_LINGER, sizeof(struct linger), "SO_LINGER" },
	{ SO_PEEK_OFF, SO_PEEK_OFF, sizeof(int), "SO_PEEK_OFF" },
	{ SO_NO_CHECK, SO_NO_CHECK, sizeof(int), "SO_NO_CHECK" },
	{ SO_RXQ_OVFL, SO_RXQ_OVFL, sizeof(int), "SO_RXQ_OVFL" },
	{ SO_SELECT_ERR_QUEUE, SO_SELECT_ERR_QUEUE, sizeof(int), "SO_SELECT_ERR_QUEUE" },
	{ SO_INCOMING_CPU, SO_INCOMING_CPU, sizeof(int), "SO_INCOMING_CPU" },
	{ SO_BUSY_POLL, SO_BUSY_POLL, sizeof(int), "SO_BUSY_POLL" },
	{ SO_PREFER_BUSY_POLL, SO_PREFER_BUSY_POLL, sizeof(int), "SO_PREFER_BUSY_POLL" },
	{ SO_BUSY_POLL_BUDGET, SO_BUSY_POLL_BUDGET, sizeof(int), "SO_BUSY_POLL_BUDGET" },
	{ SO_ZEROCOPY, SO_ZEROCOPY, sizeof(int), "SO_ZEROCOPY" },
	{ SO_TXREHASH, SO_TXREHASH, sizeof(int), "SO_TXREHASH" },
	{ SO_RCVMARK, SO_RCVMARK, sizeof(int), "SO_RCVMARK" },
	{ SO_PASSPIDFD, SO_PASSPIDFD, sizeof(int), "SO_PASSPIDFD" },   /* Linux >= 6.5 */
	{ SO_PASSRIGHTS, SO_PASSRIGHTS, sizeof(int), "SO_PASSRIGHTS" }, /* Linux >= 6.16 */
	/* the flags (its PTP clock, bind_phc, is not kept: such a clock is the host's hardware) */
	{ SO_TIMESTAMPING, SO_TIMESTAMPING, sizeof(int), "SO_TIMESTAMPING" },
	{ SO_MAX_PACING_RATE, SO_MAX_PACING_RATE, sizeof(uint64_t), "SO_MAX_PACING_RATE" },
	{ SO_TXTIME, SO_TXTIME, sizeof(struct sock_txtime), "SO_TXTIME" },
	{ SO_WIFI_STATUS, SO_WIFI_STATUS, sizeof(int), "SO_WIFI_STATUS" },
};

union opt_value {
	int i;
	uint64_t u64;
	struct timeval tv;
	struct linger linger;
	struct sock_txtime txtime;
};

/* Reads option i of sk into buf (known_opts[i].size bytes); false if the socket has none. */
static bool read_opt(int sk, size_t i, void *buf)
{
	socklen_t len = known_opts[i].size;

	memset(buf, 0, len);
	return !getsockopt(sk, SOL_SOCKET, known_opts[i].name, buf, &len) && len == known_opts[i].size;
}

/* The classic BPF filter attached to sk, if any, and whether filters are locked. */
static int filter_dump(pid_t pid, int fd, int sk, FdEntry *e)
{
	socklen_t n = 0, len = sizeof(int);
	int locked = 0;

	if (!getsockopt(sk, SOL_SOCKET, SO_LOCK_FILTER, &locked, &len) && locked)
		e->has_sock_filter_locked = e->sock_filter_locked = true;
	if (getsockopt(sk, SOL_SOCKET, SO_GET_FILTER, NULL, &n)) {
		if (errno == EACCES) /* a filter with no classic program: eBPF (SO_ATTACH_BPF) */
			pr_err("dump pid %d fd %d: its socket filter is an eBPF program (SO_ATTACH_BPF): "
			       "not supported", pid, fd);
		return -errno;
	}
	if (!n)
		return 0;
	if (n > BPF_MAXINSNS)
		return -E2BIG;
	if (!(e->sock_filter.data = xzalloc(n * sizeof(struct sock_filter))))
		return -ENOMEM;
	if (getsockopt(sk, SOL_SOCKET, SO_GET_FILTER, e->sock_filter.data, &n))
		return -errno;
	e->sock_filter.len = n * sizeof(struct sock_filter);
	e->has_sock_filter = true;
	return 0;
}

int sockopts_dump(pid_t pid, int fd, FdEntry *e)
{
	auto_close int sk = task_fd_copy(pid, fd);
	int family = 0, type = 0, protocol = 0, err;
	socklen_t len = sizeof(int);

	if (sk < 0)
		return sk;
	if (getsockopt(sk, SOL_SOCKET, SO_DOMAIN, &family, &len) ||
	    getsockopt(sk, SOL_SOCKET, SO_TYPE, &type, &len))
		return -errno;
	/* a raw inet socket has no default protocol */
	if (type == SOCK_RAW && (family == AF_INET || family == AF_INET6) &&
	    getsockopt(sk, SOL_SOCKET, SO_PROTOCOL, &protocol, &len))
		return -errno;
	if ((err = filter_dump(pid, fd, sk, e)))
		return err;
	auto_close int fresh = socket(family, type | SOCK_CLOEXEC, protocol);
	union opt_value now, dflt;

	if (fresh < 0)
		return -errno;
	for (size_t i = 0; i < ARRAY_SIZE(known_opts); i++) {
		if (!read_opt(sk, i, &now) || (read_opt(fresh, i, &dflt) && !memcmp(&now, &dflt, known_opts[i].size)))
			continue;
		SockOpt *o = xzalloc(sizeof(*o)), **more;
		if (!o || !(more = xreallocarray(e->sockopts, e->n_sockopts + 1, sizeof(*more)))) {
			free(o);
			return -ENOMEM;
		}
		sock_opt__init(o);
		e->sockopts = more;
		e->sockopts[e->n_sockopts++] = o;
		if (!(o->value.data = xzalloc(known_opts[i].size)))
			return -ENOMEM;
		o->name = known_opts[i].name;
		o->value.len = known_opts[i].size;
		memcpy(o->value.data, &now, known_opts[i].size);
	}
	return 0;
}

/* The entry of known_opts for o, or -1: not an option stasis saves (a damaged image). */
static int known(const SockOpt *o)
{
	for (size_t i = 0; i < ARRAY_SIZE(known_opts); i++)
		if ((int)o->name == known_opts[i].name)
			return o->value.len == known_opts[i].size ? (int)i : -1;
	return -1;
}

bool sockopts_saved(const FdEntry *e)
{
	return e->n_sockopts || e->has_sock_filter || e->sock_filter_locked;
}

bool sockopts_valid(const FdEntry *e)
{
	if (e->has_sock_filter && (!e->sock_filter.len || e->sock_filter.len % sizeof(struct sock_filter) ||
				   e->sock_filter.len > BPF_MAXINSNS * sizeof(struct sock_filter)))
		return false;
	for (size_t k = 0; k < e->n_sockopts; k++)
		if (known(e->sockopts[k]) < 0)
			return false;
	return true;
}

/* The filter attached again, then locked; once locked (by an earlier call for the same
 * socket: a kind's own, then the fd table's) it is left as it is. */
static int filter_restore(int sk, const FdEntry *e)
{
	struct sock_fprog prog = { .len = e->sock_filter.len / sizeof(struct sock_filter),
				   .filter = (struct sock_filter *)e->sock_filter.data };
	int on = 1, locked = 0;
	socklen_t len = sizeof(locked);

	if (!getsockopt(sk, SOL_SOCKET, SO_LOCK_FILTER, &locked, &len) && locked)
		return 0;
	if (e->has_sock_filter && setsockopt(sk, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog))) {
		pr_perror("restore: cannot attach the socket filter (%u instructions) of fd %u", prog.len,
			  e->fd);
		return -errno;
	}
	if (e->sock_filter_locked && setsockopt(sk, SOL_SOCKET, SO_LOCK_FILTER, &on, sizeof(on))) {
		pr_perror("restore: cannot lock the socket filter of fd %u", e->fd);
		return -errno;
	}
	return 0;
}

/* Which of e's buffer sizes the program set (SO_BUF_LOCK as saved; none saved: the kernel's). */
static int saved_buf_lock(const FdEntry *e)
{
	int lock = 0;

	for (size_t k = 0; k < e->n_sockopts; k++)
		if (e->sockopts[k]->name == SO_BUF_LOCK && known(e->sockopts[k]) >= 0)
			memcpy(&lock, e->sockopts[k]->value.data, sizeof(lock));
	return lock;
}

/* Did the program set the size of buffer option name (SO_SNDBUF, SO_RCVBUF) itself (lock: as
 * saved_buf_lock gives), or the kernel choose it (autotuning)? */
static bool set_by_program(int lock, int name)
{
	return lock & (name == SO_SNDBUF ? SOCK_SNDBUF_LOCK : SOCK_RCVBUF_LOCK);
}

/*
 * A buffer size beyond net.core.[rw]mem_max takes CAP_NET_ADMIN over the host
 * (SO_*BUFFORCE), which a process in a user namespace of its own lacks: there the plain
 * option, which must then give the size saved if the program chose it (locked). One the
 * kernel had chosen (tuned; TCP grows its send buffer past that limit) is as large as the
 * limit allows: the kernel tunes it again.
 */
static int set_buffer_size(int sk, size_t i, int half, int saved, bool tuned, unsigned fd)
{
	int now = 0;
	socklen_t len = sizeof(now);

	if (!setsockopt(sk, SOL_SOCKET, known_opts[i].set_as, &half, sizeof(half)))
		return 0;
	if (errno != EPERM || setsockopt(sk, SOL_SOCKET, known_opts[i].name, &half, sizeof(half))) {
		pr_perror("restore: cannot set %s on fd %u", known_opts[i].what, fd);
		return -errno;
	}
	if (getsockopt(sk, SOL_SOCKET, known_opts[i].name, &now, &len))
		return -errno;
	if (now != saved && tuned) {
		pr_info("restore: %s of fd %u is %d, not %d as the kernel had tuned it: beyond the "
			"host's limit, and in a user namespace", known_opts[i].what, fd, now, saved);
		return 0;
	}
	if (now != saved) {
		pr_err("restore: cannot set %s on fd %u to %d (it is %d): beyond the host's limit, and "
		       "in a user namespace", known_opts[i].what, fd, saved, now);
		return -EPERM;
	}
	return 0;
}

/* Which of sk's buffer sizes are the program's (SO_BUF_LOCK); the others the kernel tunes. */
static int set_buf_lock(int sk, unsigned fd, int lock)
{
	if (setsockopt(sk, SOL_SOCKET, SO_BUF_LOCK, &lock, sizeof(lock)) && errno != ENOPROTOOPT) {
		pr_perror("restore: cannot set SO_BUF_LOCK on fd %u", fd);
		return -errno;
	}
	return 0;
}

int sockopts_restore(int sk, const FdEntry *e)
{
	bool sized = false, locked = false;
	int lock = saved_buf_lock(e), err;

	for (size_t k = 0; k < e->n_sockopts; k++) {
		const SockOpt *o = e->sockopts[k];
		int i = known(o);
		if (i < 0)
			return -EINVAL;
		union opt_value value;
		memcpy(&value, o->value.data, o->value.len);
		if (known_opts[i].set_as != known_opts[i].name) { /* buffer sizes: the kernel doubles */
			if ((err = set_buffer_size(sk, i, value.i / 2, value.i, !set_by_program(lock, o->name),
						   e->fd)))
				return err;
			sized = true;
			continue;
		}
		if (setsockopt(sk, SOL_SOCKET, known_opts[i].set_as, &value, o->value.len)) {
			pr_perror("restore: cannot set %s on fd %u", known_opts[i].what, e->fd);
			return -errno;
		}
		locked |= o->name == SO_BUF_LOCK;
	}
	/* sizes the kernel had chosen (no SO_BUF_LOCK saved), set here, it tunes again */
	if (sized && !locked && (err = set_buf_lock(sk, e->fd, 0)))
		return err;
	return filter_restore(sk, e);
}

int sockopts_buffers_restore(int sk, const FdEntry *e)
{
	int lock = saved_buf_lock(e);

	for (size_t k = 0; k < e->n_sockopts; k++) {
		const SockOpt *o = e->sockopts[k];
		int i = known(o), value;
		if (i < 0 || known_opts[i].set_as == known_opts[i].name)
			continue;
		if (!set_by_program(lock, o->name))
			continue; /* a size the kernel chose (autotuning): the kernel's again */
		memcpy(&value, o->value.data, sizeof(value));
		int err = set_buffer_size(sk, i, value / 2, value, false, e->fd);
		if (err)
			return err;
	}
	return set_buf_lock(sk, e->fd, lock);
}
