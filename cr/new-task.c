/*
 * What the kinds use inside a new task before the restorer takes over: their helper fds (open
 * images, mapped files) kept in a room of fd numbers the task will not use (above every one,
 * or, when the task's fds reach up to its limit, the widest gap between them: valgrind keeps
 * its own just below the hard limit), so that fds can be put at their saved numbers; and the
 * restorer's argument area, handed out as each kind reserved.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "task.h"

#define HELPER_FDS_ROOM 256 /* numbers above the task's highest fd that are surely enough */

int restore_place_helper_fds(struct restore_task *t, int inherited_high)
{
	const FdTable *tab = t->fds_owner ? t->fds_owner->fds : t->fds;
	struct rlimit lim;

	if (inherited_high >= t->next_high_fd)
		t->next_high_fd = inherited_high + 1;
	if (getrlimit(RLIMIT_NOFILE, &lim) || lim.rlim_cur > INT_MAX ||
	    t->next_high_fd + HELPER_FDS_ROOM <= (int)lim.rlim_cur || t->fds_owner)
		return 0;
	/* the widest run of free numbers above the inherited fds, the top one included */
	int best_start = t->next_high_fd, best_end = (int)lim.rlim_cur;
	for (size_t i = 0; i < tab->n_fds; i++) {
		int start = i ? (int)tab->fds[i - 1]->fd + 1 : 0, end = (int)tab->fds[i]->fd;
		if (start <= inherited_high)
			start = inherited_high + 1;
		if (end - start > best_end - best_start) {
			best_start = start;
			best_end = end;
		}
	}
	if (best_end - best_start < 8) {
		pr_err("restore pid %d: its fds leave no room below its limit of %d fds for stasis's "
		       "own while it restores (%d free numbers at most)", t->pid, (int)lim.rlim_cur,
		       best_end - best_start);
		return -EMFILE;
	}
	t->next_high_fd = best_start;
	t->high_fd_end = best_end;
	return 0;
}

/* fd copied into the helpers' room: -errno, -EMFILE once the room is full. */
int restore_dup_high(struct restore_task *t, int fd)
{
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, t->next_high_fd);

	if (nfd < 0)
		return -errno;
	if (t->high_fd_end && nfd >= t->high_fd_end) {
		close(nfd);
		return -EMFILE;
	}
	if (nfd >= t->high_fd_top)
		t->high_fd_top = nfd + 1;
	return nfd;
}

/* fd again above the helpers so far; the original closed if close_it. */
int restore_copy_high(struct restore_task *t, int fd, bool close_it)
{
	int nfd = restore_dup_high(t, fd);

	if (nfd < 0) {
		pr_err("restore pid %d: cannot move fd %d to fd %d or above: %s", t->pid, fd,
		       t->next_high_fd, nfd == -EMFILE && t->high_fd_end ?
		       "no number left before the task's own fds" : strerror(-nfd));
		return nfd;
	}
	if (close_it)
		close(fd);
	return nfd;
}

int restore_move_high(struct restore_task *t, int fd)
{
	return restore_copy_high(t, fd, true);
}

int restore_open_high(struct restore_task *t, const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? -errno : restore_move_high(t, fd); /* open: the caller names the file */
}

void *restorer_args_alloc(struct restore_task *t, size_t len, uint64_t *off)
{
	size_t at = (t->args_used + 7) & ~(size_t)7;

	if (at + len > t->args_len) {
		pr_err("restore pid %d: %zu bytes of the restorer's arguments are past the %zu reserved",
		       t->pid, at + len - t->args_len, t->args_len);
		return NULL;
	}
	t->args_used = at + len;
	*off = at;
	return (char *)t->args + at;
}
