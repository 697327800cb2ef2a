/*
 * What the kinds use inside a new task before the restorer takes over: their helper fds (open
 * images, mapped files) kept above every fd number the task will use, so that fds can be put
 * at their saved numbers; and the restorer's argument area, handed out as each kind reserved.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "log.h"
#include "task.h"

/* fd again above the helpers so far; the original closed if close_it. */
int restore_copy_high(struct restore_task *t, int fd, bool close_it)
{
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, t->next_high_fd);

	if (nfd < 0) {
		pr_perror("restore pid %d: cannot move fd %d above fd %d", t->pid, fd, t->next_high_fd);
		return -errno;
	}
	if (close_it)
		close(fd);
	t->next_high_fd = nfd + 1;
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
