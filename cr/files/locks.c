/*
 * File locks (with --file-locks, as criu): POSIX record locks belong to a process, flock()
 * and OFD locks and leases to an open file. They are read from the "lock:" lines of
 * /proc/PID/fdinfo/N and taken again by the restored process once its fds have their numbers.
 * A lease being broken (its holder was told, the opener waits or was refused) shows only the
 * type it goes to: READ (a write lease an open for reading broke) or UNLCK (any lease an open
 * for writing broke). It is taken again as the lease its fd can hold that such an open breaks
 * the same way: a write lease when going to READ or when the fd is open for writing (a read
 * lease needs the file open for writing nowhere), else a read lease. Its holder already had
 * the lease-break signal (handled, or pending and restored with the signals): the restored
 * process gives the file no owner right after taking the lease, and once every process of the
 * tree has its leases, stasis, as that opener, breaks each again (refused: nothing opened) and
 * only then sets the file's owner and signal back. The holder finds F_GETLEASE as it was and
 * no new signal; only the break time starts again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "options.h"
#include "restorer/restorer.h"

/* "lock:\t1: POSIX  ADVISORY  WRITE 15757 fe:00:10954290 10 29"; fd_writable: the fd is
 * open for writing (which lease a lease being broken to none was). 1: a waiter, held by none. */
static int parse_lock(const char *line, bool fd_writable, FileLock *l, int *owner)
{
	char kind[16], mode[16], access[16], end[32];
	unsigned long long start;

	char one[256];
	if (sscanf(fdinfo_line(line, one, sizeof(one)), "lock: %*d: %15s %15s %15s %d %*s %llu %31s", kind, mode, access, owner,
		   &start, end) != 6)
		return -EINVAL;
	if (!strcmp(kind, "->") || !strcmp(mode, "BREAKER"))
		return 1; /* a process waiting for the lock or for a lease to go */
	l->write = !strcmp(access, "WRITE");
	if (!strcmp(kind, "LEASE")) {
		l->kind = LOCK_KIND__LOCK_LEASE;
		if (!strcmp(mode, "BREAKING")) {
			l->has_lease_breaking_to = true;
			l->lease_breaking_to = !strcmp(access, "READ") ? F_RDLCK : F_UNLCK;
			l->write = l->lease_breaking_to == F_RDLCK || fd_writable;
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
	l->start = start;
	if (strcmp(end, "EOF")) {
		l->has_end = true;
		l->end = strtoull(end, NULL, 10);
	}
	return 0;
}

int locks_dump_fd(struct dump_task *t, const struct fd_probe *p, FdEntry *e, bool shared)
{
	for (const char *line = fdinfo_key(p->info, "lock:"); line; line = fdinfo_key(line + 5, "lock:")) {
		auto_free FileLock *l = xzalloc(sizeof(*l));
		FileLock **more;
		int owner, err;

		if (!l)
			return -ENOMEM;
		file_lock__init(l);
		if ((err = parse_lock(line, (p->flags & O_ACCMODE) != O_RDONLY, l, &owner)) > 0)
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

bool locks_valid(const FdEntry *e)
{
	for (size_t k = 0; k < e->n_locks; k++) {
		const FileLock *l = e->locks[k];
		if (l->kind < LOCK_KIND__LOCK_POSIX || l->kind > LOCK_KIND__LOCK_LEASE ||
		    (l->has_end && l->end < l->start) ||
		    (l->has_lease_breaking_to &&
		     (l->kind != LOCK_KIND__LOCK_LEASE || (l->lease_breaking_to != F_RDLCK && l->lease_breaking_to != F_UNLCK) ||
		      (l->lease_breaking_to == F_RDLCK && !l->write))))
			return false;
	}
	return true;
}

static const char *lock_what(const FileLock *l)
{
	switch (l->kind) {
	case LOCK_KIND__LOCK_FLOCK: return "flock";
	case LOCK_KIND__LOCK_OFD: return "OFD lock";
	case LOCK_KIND__LOCK_LEASE: return l->write ? "write lease" : "read lease";
	default: return "POSIX lock";
	}
}

static bool is_posix(const FileLock *l)
{
	return l->kind == LOCK_KIND__LOCK_POSIX;
}

static size_t count_posix(const FdTable *tab)
{
	size_t n = 0;

	for (size_t i = 0; i < tab->n_fds; i++)
		for (size_t k = 0; k < tab->fds[i]->n_locks; k++)
			n += is_posix(tab->fds[i]->locks[k]);
	return n;
}

size_t locks_args_size(const FdTable *tab)
{
	return count_posix(tab) * sizeof(struct rst_posix_lock);
}

/*
 * A lease is its file owner's to take, or a holder of CAP_LEASE over the host's, which a
 * process in a user namespace of its own is not: there it takes it as the owner (its fs uid
 * for the moment; this thread only).
 */
static int take_lease(int fd, int type)
{
	struct stat st;

	if (!fcntl(fd, F_SETLEASE, type))
		return 0;
	if (errno != EACCES || fstat(fd, &st))
		return -1;
	int fsuid = syscall(SYS_setfsuid, st.st_uid), r = fcntl(fd, F_SETLEASE, type), err = errno;
	syscall(SYS_setfsuid, fsuid);
	errno = err;
	return r;
}

int locks_restore(struct restore_task *t, const FdTable *tab)
{
	pid_t pid = t->pid;
	size_t n = count_posix(tab);
	struct rst_posix_lock *again = n ? restorer_args_alloc(t, n * sizeof(*again), &t->args->posix_locks_off) : NULL;

	if (n && !again)
		return -ENOMEM;
	t->args->nr_posix_locks = n;
	n = 0;
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
					? take_lease(e->fd, l->write ? F_WRLCK : F_RDLCK)
					: fcntl(e->fd, l->kind == LOCK_KIND__LOCK_OFD ? F_OFD_SETLK : F_SETLK, &fl);
			if (r) {
				pr_perror("restore pid %d fd %u: cannot take its %s at %llu again", pid, e->fd,
					  lock_what(l), (unsigned long long)l->start);
				return -errno;
			}
			if (is_posix(l)) /* the blob takes it again after closing its helper fds */
				again[n++] = (struct rst_posix_lock){ .fd = e->fd, .fl = { .type = fl.l_type,
					.whence = SEEK_SET, .start = fl.l_start, .len = fl.l_len } };
			/* taking a lease made this process the file's owner: none until broken again */
			if (l->has_lease_breaking_to && fcntl(e->fd, F_SETOWN, 0)) {
				pr_perror("restore pid %d fd %u: cannot take the owner of its lease away", pid, e->fd);
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
		if (!l->has_lease_breaking_to)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%u", t->host_pid, e->fd);
		int fd = open(path, (l->lease_breaking_to == F_UNLCK ? O_WRONLY : O_RDONLY) | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			close(fd); /* gone already (a break time of 0): as its holder would find it */
			pr_warn("restore pid %d fd %u: its %s was not there to break again", t->pid, e->fd, lock_what(l));
		} else if (errno != EWOULDBLOCK) {
			pr_perror("restore pid %d fd %u: cannot break its %s again", t->pid, e->fd, lock_what(l));
			return -errno;
		}
	}
	return 0;
}
