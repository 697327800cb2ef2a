/*
 * --shell-job: the task's stdio terminal or pipes belong to whoever started it. They are not
 * saved; on restore the task gets the restoring caller's stdin/stdout/stderr in their place:
 * the same open file, or, for an open file of its own on that terminal (less opens /dev/tty),
 * the caller's terminal opened anew with its flags. A terminal's mode (termios: the raw mode a
 * full-screen program set, which the shell put back when the job died) is set again; when the
 * caller's terminal has another window size than the saved one (resized meanwhile, or another
 * terminal), its foreground group gets SIGWINCH once the tree runs, as after a resize, so that
 * a full-screen program draws itself for the new size.
 * A terminal named with --external tty[RDEV:DEV] is the caller's too, given back by key.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <linux/kcmp.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "tree.h"

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

/* Which stdio fd of pid (or of the tree's root) is a terminal with the device of st: -1 none. */
static int stdio_of_terminal(const struct dump_task *t, const struct stat *st)
{
	pid_t pids[2] = { t->pid, t->tree ? t->tree[0].pid : t->pid };

	for (int k = 0; k < 2; k++)
		for (int std = 0; std <= 2; std++) {
			char path[64];
			struct stat s;
			snprintf(path, sizeof(path), "/proc/%d/fd/%d", pids[k], std);
			if (!stat(path, &s) && S_ISCHR(s.st_mode) && s.st_rdev == st->st_rdev)
				return std;
		}
	return -1;
}

/* len bytes of data as field *b (its has_ flag in *has) */
static int save_bytes(ProtobufCBinaryData *b, protobuf_c_boolean *has, const void *data, size_t len)
{
	if (!(b->data = xzalloc(len)))
		return -ENOMEM;
	memcpy(b->data, data, len);
	b->len = len;
	*has = true;
	return 0;
}

/* A terminal's mode and window size, saved with its entry (for the restore). */
static int save_termios(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	struct termios tio;
	struct winsize ws;
	auto_close int copy = task_fd_copy(t->pid, p->fd);

	if (copy < 0 || ioctl(copy, TCGETS, &tio))
		return 0; /* (a terminal hung up: nothing to set again) */
	if (save_bytes(&e->tty_termios, &e->has_tty_termios, &tio, sizeof(tio)) ||
	    (!ioctl(copy, TIOCGWINSZ, &ws) && save_bytes(&e->tty_winsize, &e->has_tty_winsize, &ws, sizeof(ws))))
		return -ENOMEM;
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
	int std = 0, err;
	while (std <= 2 && std != p->fd && syscall(SYS_kcmp, t->pid, t->pid, KCMP_FILE, std, p->fd))
		std++;
	if (std > 2 && tty && (std = stdio_of_terminal(t, &p->st)) >= 0) {
		e->has_inherit_reopen = e->inherit_reopen = true; /* its own open file of that terminal */
		e->has_flags = true;
		e->flags = p->flags;
	}
	if (std < 0 || std > 2) {
		pr_err("dump pid %d fd %d: %s is not one of the task's stdio fds, cannot inherit it",
		       t->pid, p->fd, p->link);
		return -ENOTSUP;
	}
	e->has_inherit_from = true;
	e->inherit_from = std;
	if (tty && (err = save_termios(t, p, e)))
		return err;
	e->path = xstrdup(p->link);
	return e->path ? 1 : -ENOMEM;
}

static int validate_inherited(const struct restore_task *t, const FdEntry *e)
{
	if (!t->ctx->opts->shell_job) {
		pr_err("restore pid %d fd %u: was the caller's %s; restore with --shell-job", t->pid,
		       e->fd, e->path ? e->path : "stdio");
		return -EINVAL;
	}
	if (!e->has_inherit_from || e->inherit_from > 2 ||
	    (e->has_tty_termios && e->tty_termios.len != sizeof(struct termios)) ||
	    (e->has_tty_winsize && e->tty_winsize.len != sizeof(struct winsize))) {
		pr_err("image fds-%d.img: fd %u is inherited from no stdio fd, or its terminal's mode or "
		       "window size is malformed", t->pid, e->fd);
		return -EINVAL;
	}
	return 0;
}

static int open_inherited(struct restore_task *t, const FdEntry *e)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%u", e->inherit_from);
	fd = e->inherit_reopen ? open(path, (e->flags & (O_ACCMODE | O_NONBLOCK | O_APPEND)) | O_NOCTTY |
						   O_CLOEXEC)
			       : fcntl(e->inherit_from, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (e->has_tty_termios && ioctl(fd, TCSETS, e->tty_termios.data))
		pr_warn("restore pid %d fd %u: the caller's terminal keeps its mode, not the saved one: %m",
			t->pid, e->fd);
	return fd;
}

void inherited_tty_resized(const struct restore_tree *rt)
{
	for (size_t i = 0; rt->ctx->opts->shell_job && i < rt->nr_tasks; i++) {
		const FdTable *tab = rt->tasks[i].fds;
		for (size_t k = 0; tab && k < tab->n_fds; k++) {
			const FdEntry *e = tab->fds[k];
			struct winsize now;
			if (e->kind != FD_KIND__FD_INHERITED || !e->has_tty_winsize ||
			    ioctl(e->inherit_from, TIOCGWINSZ, &now) || !memcmp(&now, e->tty_winsize.data, sizeof(now)))
				continue;
			const struct winsize *was = (const struct winsize *)e->tty_winsize.data;
			pid_t fg = tcgetpgrp(e->inherit_from);
			if (fg > 0 && !kill(-fg, SIGWINCH))
				pr_info("restore: the caller's terminal is %ux%u, was %ux%u: SIGWINCH to its "
					"foreground group %d", now.ws_col, now.ws_row, was->ws_col, was->ws_row, fg);
			return;
		}
	}
}

const struct fd_kind_ops fd_kind_inherited = {
	.name = "inherited stdio",
	.dump = dump_inherited,
	.validate = validate_inherited,
	.open = open_inherited,
	.kind = FD_KIND__FD_INHERITED,
};
