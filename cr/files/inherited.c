/*
 * --shell-job: the task's stdio terminal or pipes belong to whoever started it. They are not
 * saved; on restore the task gets the restoring caller's stdin/stdout/stderr in their place.
 * A terminal named with --external tty[RDEV:DEV] is the caller's too, given back by key.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

/*
 * A terminal: tty, console, pty slave; not /dev/ptmx (5:2), a pty master (cr/files/pty.c),
 * nor /dev/tty (5:0), which names whatever controlling terminal the session has and is
 * reopened by path (cr/files/regular.c).
 */
static bool is_terminal(const struct stat *st)
{
	unsigned maj = major(st->st_rdev), min = minor(st->st_rdev);
	return S_ISCHR(st->st_mode) && (maj == 4 || (maj == 5 && min != 2 && min != 0) ||
					(maj >= 136 && maj <= 143));
}

/*
 * The caller's: the same open file as one of the root's stdio fds (a terminal or pipe the
 * tree was started with; children inherit them). Any other pipe belongs to the tree.
 * A named pipe (FIFO) is never the caller's: it has a path and is opened again by it
 * (cr/files/pipe.c), as `prog 0<>fifo` expects its stdin to still be that FIFO.
 */
static bool from_outside(const struct dump_task *t, int fd)
{
	pid_t root = t->tree ? t->tree[0].pid : t->pid;

	for (int std = 0; std <= 2; std++)
		if (syscall(SYS_kcmp, root, t->pid, KCMP_FILE, std, fd) == 0)
			return true;
	return false;
}

/*
 * A terminal from outside the tree that the caller names with --external tty[RDEV:DEV] (its
 * device and its file system's, in hex: LXC's and libvirt's container console): saved as an
 * object outside the tree (cr/files/external.c), which the caller gives back with --inherit-fd
 * fd[N]:tty[RDEV:DEV]. 1: claimed; 0: not named.
 */
static int dump_external_tty(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	const struct opt_list *ext = &t->ctx->opts->externals;
	char key[64];

	snprintf(key, sizeof(key), "tty[%llx:%llx]", (unsigned long long)p->st.st_rdev,
		 (unsigned long long)p->st.st_dev);
	for (size_t i = 0; i < ext->n; i++) {
		if (strcmp(ext->v[i].value, key))
			continue;
		e->kind = FD_KIND__FD_EXTERNAL;
		if (!(e->ext_key = xstrdup(key)))
			return -ENOMEM;
		e->has_flags = true;
		e->flags = p->flags;
		pr_info("dump pid %d fd %d: %s is the caller's %s: restore needs --inherit-fd fd[N]:%s",
			t->pid, p->fd, p->link, key, key);
		return 1;
	}
	return 0;
}

static int dump_inherited(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	bool tty = is_terminal(&p->st), pipe = S_ISFIFO(p->st.st_mode) && p->link[0] != '/';
	int owned = 0;

	if (!tty && !pipe)
		return 0;
	if (tty && pty_slave_index(&p->st) >= 0 &&
	    (owned = pty_kept(t, pty_slave_index(&p->st), p)))
		return owned < 0 ? owned : 0; /* a pty of the tree's own (cr/files/pty.c) */
	if (pipe && !from_outside(t, p->fd))
		return 0; /* a pipe of the tree's own: saved as a pipe (cr/files/pipe.c) */
	if (tty && (owned = dump_external_tty(t, p, e)))
		return owned;
	if (!t->ctx->opts->shell_job) {
		if (pipe)
			return 0; /* saved as a pipe (cr/files/pipe.c) */
		pr_err("dump pid %d fd %d: %s is a terminal from outside the tree (pass --shell-job "
		       "to hand it over to the restoring caller)",
		       t->pid, p->fd, p->link);
		return -ENOTSUP;
	}
	for (int std = 0; std <= 2; std++) {
		if (std == p->fd || syscall(SYS_kcmp, t->pid, t->pid, KCMP_FILE, std, p->fd) == 0) {
			e->has_inherit_from = true;
			e->inherit_from = std;
			e->path = xstrdup(p->link);
			return e->path ? 1 : -ENOMEM;
		}
	}
	pr_err("dump pid %d fd %d: %s is not one of the task's stdio fds, cannot inherit it", t->pid,
	       p->fd, p->link);
	return -ENOTSUP;
}

static int validate_inherited(const struct restore_task *t, const FdEntry *e)
{
	if (!t->ctx->opts->shell_job) {
		pr_err("restore pid %d fd %u: was the caller's %s; restore with --shell-job", t->pid,
		       e->fd, e->path ? e->path : "stdio");
		return -EINVAL;
	}
	if (!e->has_inherit_from || e->inherit_from > 2) {
		pr_err("image fds-%d.img: fd %u is inherited from no stdio fd", t->pid, e->fd);
		return -EINVAL;
	}
	return 0;
}

static int open_inherited(struct restore_task *t, const FdEntry *e)
{
	(void)t;
	int fd = fcntl(e->inherit_from, F_DUPFD_CLOEXEC, 0);
	return fd < 0 ? -errno : fd;
}

const struct fd_kind_ops fd_kind_inherited = {
	.name = "inherited stdio",
	.dump = dump_inherited,
	.validate = validate_inherited,
	.open = open_inherited,
	.kind = FD_KIND__FD_INHERITED,
};
