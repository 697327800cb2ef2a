/*
 * File locks (with --file-locks, as criu): POSIX record locks belong to a process, flock()
 * and OFD locks and leases to an open file. They are read from the "lock:" lines of
 * /proc/PID/fdinfo/N and taken again by the restored process once its fds have their numbers.
 * A lease being broken (its holder was told, the opener waits) shows only the type it goes to:
 * it is taken again as a read lease (going to F_UNLCK: broken by a writer) or a write lease
 * (going to F_RDLCK: broken by a reader), and stasis, as that opener, breaks it again once the
 * file's owner and signal are back; the holder is told again, and has the break time again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "options.h"

/* "lock:\t1: POSIX  ADVISORY  WRITE 15757 fe:00:10954290 10 29" */
static int parse_lock(const char *line, FileLock *l, int *owner)
{
	char kind[16], mode[16], access[16], end[32];
	unsigned long long start;

	char one[256];
	if (sscanf(fdinfo_line(line, one, sizeof(one)), "lock: %*d: %15s %15s %15s %d %*s %llu %31s", kind, mode, access, owner,
		   &start, end) != 6)
		return -EINVAL;
	if (!strcmp(kind, "->"))
		return 1; /* a process waiting for the lock, not holding it */
	if (!strcmp(kind, "LEASE") && strcmp(mode, "BREAKER")) {
		l->kind = LOCK_KIND__LOCK_LEASE;
		l->write = !strcmp(access, "WRITE");
		if (!strcmp(mode, "BREAKING")) {
			l->has_lease_breaking_to = true;
			l->lease_breaking_to = !strcmp(access, "READ") ? F_RDLCK : F_UNLCK;
			l->write = l->lease_breaking_to == F_RDLCK; /* a write lease goes to read */
		}
		return 0;
	}
	if (!strcmp(kind, "POSIX"))
		l->kind = LOCK_KIND__LOCK_POSIX;
	else if (!strcmp(kind, "FLOCK"))
		l->kind = LOCK_KIND__LOCK_FLOCK;
	else if (!strcmp(kind, "OFDLCK"))
		l->kind = LOCK_KIND__LOCK_OFD;
	else
		return -ENOTSUP; /* delegations */
	l->write = !strcmp(access, "WRITE");
	l->start = start;
	if (strcmp(end, "EOF")) {
		l->has_end = true;
		l->end = strtoull(end, NULL, 10);
	}
	return 0;
}

int locks_dump_fd(struct dump_task *t, const struct fd_probe *p, FdEntry *e, bool shared)
{
	for (const char *line = strstr(p->info, "lock:"); line; line = strstr(line + 5, "lock:")) {
		auto_free FileLock *l = xzalloc(sizeof(*l));
		FileLock **more;
		int owner, err;

		if (!l)
			return -ENOMEM;
		file_lock__init(l);
		if ((err = parse_lock(line, l, &owner)) > 0)
			continue;
		if (err) {
			pr_err("dump pid %d fd %d: lock not supported: %.60s", t->pid, p->fd, line);
			return err;
		}
		/* POSIX locks are the process's: this file may show another process's too */
		if (l->kind == LOCK_KIND__LOCK_POSIX ? owner != t->pid : shared)
			continue;
		if (!t->ctx->opts->file_locks) {
			pr_err("dump pid %d fd %d: holds a file lock on %s (pass --file-locks)", t->pid,
			       p->fd, p->link);
			return -ENOTSUP;
		}
		if (!(more = xreallocarray(e->locks, e->n_locks + 1, sizeof(*more))))
			return -ENOMEM;
		e->locks = more;
		e->locks[e->n_locks++] = l;
		l = NULL; /* the entry's now */
	}
	return 0;
}

int locks_restore(pid_t pid, const FdTable *tab)
{
	for (size_t i = 0; i < tab->n_fds; i++) {
		const FdEntry *e = tab->fds[i];
		for (size_t k = 0; k < e->n_locks; k++) {
			const FileLock *l = e->locks[k];
			struct flock fl = {
				.l_type = l->write ? F_WRLCK : F_RDLCK,
				.l_whence = SEEK_SET,
				.l_start = l->start,
				.l_len = l->has_end ? l->end - l->start + 1 : 0,
			};
			int r = l->kind == LOCK_KIND__LOCK_FLOCK
					? flock(e->fd, (l->write ? LOCK_EX : LOCK_SH) | LOCK_NB)
				: l->kind == LOCK_KIND__LOCK_LEASE
					? fcntl(e->fd, F_SETLEASE, l->write ? F_WRLCK : F_RDLCK)
					: fcntl(e->fd, l->kind == LOCK_KIND__LOCK_OFD ? F_OFD_SETLK : F_SETLK, &fl);
			if (r) {
				pr_perror("restore pid %d fd %u: cannot take its %s lock at %llu again", pid,
					  e->fd, l->kind == LOCK_KIND__LOCK_FLOCK ? "flock" :
					  l->kind == LOCK_KIND__LOCK_OFD ? "OFD" : "POSIX",
					  (unsigned long long)l->start);
				return -errno;
			}
		}
	}
	return 0;
}

int locks_break_leases(const struct restore_task *t, const FdEntry *e)
{
	for (size_t k = 0; k < e->n_locks; k++) {
		const FileLock *l = e->locks[k];
		char path[64];
		if (l->kind != LOCK_KIND__LOCK_LEASE || !l->has_lease_breaking_to)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%u", t->host_pid, e->fd);
		int fd = open(path, (l->lease_breaking_to == F_UNLCK ? O_WRONLY : O_RDONLY) | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			pr_warn("restore pid %d fd %u: its lease was not there to break again", t->pid, e->fd);
		} else if (errno != EWOULDBLOCK) {
			pr_perror("restore pid %d fd %u: cannot break its lease again", t->pid, e->fd);
			return -errno;
		}
	}
	return 0;
}
