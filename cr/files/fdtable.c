/*
 * The fd table: numbers, close-on-exec, sharing of one open file description by several fds
 * (dup), and dispatch to the kind of file behind each fd. An fd of a kind stasis does not
 * know fails the dump, naming the fd, the task and what the fd points to.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "restorer/restorer.h"
#include "seize.h"
#include "task.h"
#include "util.h"

#define MAX_FD_NUMBER (1u << 20)

static const struct fd_kind_ops *const fd_kinds[] = {
	&fd_kind_inherited, /* first: with --shell-job, the caller's stdio ttys and pipes */
	&fd_kind_memfd, /* before regular files: a memfd is a regular file named "/memfd:..." */
	&fd_kind_mqueue, /* before regular files too: a queue is a regular file of mqueue fs */
	&fd_kind_regular,
	&fd_kind_pipe,
	&fd_kind_eventfd,
	&fd_kind_signalfd,
	&fd_kind_timerfd,
	&fd_kind_epoll,
	&fd_kind_netlink, /* before the unix kinds: sockets of another family */
	&fd_kind_unix_bound, /* before pairs: bound and not connected */
	&fd_kind_unix, /* claims external peers and connections not accepted yet too */
	&fd_kind_unix_external,
	&fd_kind_unix_pending, /* claimed by fd_kind_unix's dump */
	&fd_kind_external, /* claimed by fd_kind_unix's dump: peers outside the tree */
	&fd_kind_inotify,
	&fd_kind_pty_master, /* claims slaves too */
	&fd_kind_pty_slave,
	&fd_kind_pidfd,
	&fd_kind_unix_fresh, /* claimed by fd_kind_unix's dump */
};

bool fdinfo_u64(const char *info, const char *key, int base, uint64_t *val)
{
	const char *p = strstr(info, key);
	if (!p)
		return false;
	p += strlen(key);
	while (*p == ' ' || *p == '\t')
		p++;
	char *end;
	*val = strtoull(p, &end, base);
	return end != p;
}

const struct fd_kind_ops *fd_kind_of(FdKind kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(fd_kinds); i++)
		if (fd_kinds[i]->kind == kind)
			return fd_kinds[i];
	return NULL;
}

/* fdinfo text on one line ("pos: 0; flags: 02; ..."), cut to fit len. */
static const char *one_line(const char *text, char *buf, size_t len)
{
	size_t n = 0;

	for (const char *c = text; *c && n + 4 < len; c++) {
		if (*c == '\t')
			continue;
		if (*c == '\n') {
			if (c[1]) {
				buf[n++] = ';';
				buf[n++] = ' ';
			}
			continue;
		}
		buf[n++] = *c;
	}
	buf[n] = 0;
	return buf;
}

static int probe_fd(pid_t pid, int fd, struct fd_probe *p, char **info_out)
{
	char path[64], buf[4096];
	char *info = NULL;
	char *l;
	ssize_t n;

	memset(p, 0, sizeof(*p));
	p->fd = fd;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	n = readlink(path, p->link, sizeof(p->link) - 1);
	if (n < 0 || stat(path, &p->st)) {
		pr_perror("dump pid %d fd %d: cannot inspect", pid, fd);
		return -errno;
	}
	p->link[n] = 0;
	snprintf(buf, sizeof(buf), "/proc/%d/fdinfo/%d", pid, fd);
	info = read_file_at(AT_FDCWD, buf, NULL);
	if (!info) {
		pr_perror("dump pid %d fd %d: cannot read %s", pid, fd, buf);
		return -errno;
	}
	if ((l = strstr(info, "pos:")))
		p->pos = strtoull(l + 4, NULL, 10);
	if ((l = strstr(info, "flags:")))
		p->flags = strtoul(l + 6, NULL, 8);
	p->info = *info_out = info;
	return 0;
}

/*
 * Close-on-exec: fdinfo's flags are the file's flags with O_CLOEXEC added for a close-on-exec
 * fd. A message queue keeps the O_CLOEXEC of its mq_open in its own flags (no other kind of
 * file does, checked on 6.18): for one, the fd's own flag is asked inside the task.
 */
static int fd_cloexec(struct dump_task *t, const struct fd_probe *p, bool *cloexec)
{
	uint64_t args[6] = { p->fd, F_GETFD };
	char path[64];
	struct statfs sf;
	int64_t ret;

	*cloexec = p->flags & O_CLOEXEC;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", t->pid, p->fd);
	if (!*cloexec || statfs(path, &sf) || sf.f_type != MQUEUE_MAGIC)
		return 0;
	if (inject_syscall(&t->inj, SYS_fcntl, args, &ret) || ret < 0) {
		pr_err("dump pid %d fd %d: cannot read its close-on-exec flag", t->pid, p->fd);
		return -EIO;
	}
	*cloexec = ret & FD_CLOEXEC;
	return 0;
}

static int same_open_file(pid_t pid1, int fd1, pid_t pid2, int fd2)
{
	return syscall(SYS_kcmp, pid1, pid2, KCMP_FILE, fd1, fd2) == 0;
}

/*
 * The same open file (one offset, one set of flags) held by a process dumped before this one,
 * as fork leaves it: the entry refers to that process's fd, resolved to the first holder.
 */
static bool find_in_earlier_process(const struct dump_task *t, int fd, FdEntry *e)
{
	for (size_t k = 0; k < t->tree_pos; k++) {
		const struct dump_task *u = &t->tree[k];
		for (size_t j = 0; j < u->fds->n_fds; j++) {
			const FdEntry *o = u->fds->fds[j];
			if (o->kind == FD_KIND__FD_DUP || !same_open_file(u->pid, o->fd, t->pid, fd))
				continue;
			e->kind = FD_KIND__FD_SHARED;
			e->has_shared_pid = e->has_shared_fd = true;
			e->shared_pid = o->kind == FD_KIND__FD_SHARED ? o->shared_pid : (uint32_t)u->pid;
			e->shared_fd = o->kind == FD_KIND__FD_SHARED ? o->shared_fd : o->fd;
			return true;
		}
	}
	return false;
}

static int dump_fds(struct dump_task *t)
{
	auto_free int *fds = NULL;
	size_t n;
	FdTable *tab = t->fds;
	int err = proc_list_numbers(t->pid, "fd", &fds, &n);

	if (err) {
		pr_perror("dump pid %d: cannot list its fds", t->pid);
		return err;
	}
	tab->fds = xzalloc(n * sizeof(*tab->fds));
	for (size_t i = 0; i < n; i++) {
		struct fd_probe p;
		FdEntry *e = xzalloc(sizeof(*e));
		auto_free char *info = NULL;

		fd_entry__init(e);
		if ((err = probe_fd(t->pid, fds[i], &p, &info)))
			return err;
		e->fd = fds[i];
		bool cloexec;
		if ((err = fd_cloexec(t, &p, &cloexec)))
			return err;
		e->cloexec = cloexec;
		tab->fds[tab->n_fds++] = e;
		for (size_t j = 0; j < i; j++) {
			FdEntry *prev = tab->fds[j];
			if (prev->kind != FD_KIND__FD_DUP && same_open_file(t->pid, prev->fd, t->pid, e->fd)) {
				e->kind = FD_KIND__FD_DUP;
				e->has_dup_of = true;
				e->dup_of = prev->fd;
				break;
			}
		}
		if (e->kind == FD_KIND__FD_DUP)
			continue;
		if (find_in_earlier_process(t, e->fd, e)) {
			if ((err = locks_dump_fd(t, &p, e, true)))
				return err;
			continue;
		}
		if (S_ISSOCK(p.st.st_mode) && (err = sockopts_dump(t->pid, e->fd, e))) {
			pr_err("dump pid %d fd %d: cannot read the options of %s: %s", t->pid, e->fd, p.link,
			       strerror(-err));
			return err;
		}
		int claimed = 0;
		for (size_t k = 0; k < ARRAY_SIZE(fd_kinds) && !claimed; k++) {
			if (!fd_kinds[k]->dump)
				continue; /* restore-only: claimed by a sibling kind's dump */
			e->kind = fd_kinds[k]->kind; /* the dump may refine it */
			claimed = fd_kinds[k]->dump(t, &p, e);
			if (claimed < 0)
				return claimed;
		}
		if (!claimed) {
			char what[320];
			pr_err("dump pid %d fd %d: %s is not supported yet (fdinfo: %s)", t->pid, e->fd, p.link,
			       one_line(info, what, sizeof(what)));
			return -ENOTSUP;
		}
		if ((err = locks_dump_fd(t, &p, e, false)))
			return err;
	}
	return 0;
}

static int validate_fds(struct restore_task *t)
{
	FdTable *tab = t->fds;

	for (size_t i = 0; i < tab->n_fds; i++) {
		FdEntry *e = tab->fds[i];
		bool ok = e->fd < MAX_FD_NUMBER && (i == 0 || e->fd > tab->fds[i - 1]->fd);
		if (e->kind == FD_KIND__FD_DUP) {
			ok = ok && e->has_dup_of && e->dup_of < e->fd;
			for (size_t j = 0; ok && j < i; j++)
				if (tab->fds[j]->fd == e->dup_of)
					goto next;
			ok = false;
		} else if (e->kind == FD_KIND__FD_SHARED) {
			ok = ok && e->has_shared_pid && e->has_shared_fd && e->shared_pid != (uint32_t)t->pid;
		} else {
			ok = ok && fd_kind_of(e->kind);
			ok = ok && (e->kind != FD_KIND__FD_PIPE || (e->has_pipe_id && e->has_flags));
			ok = ok && (e->kind != FD_KIND__FD_UNIX_PAIR || (e->has_pair_id && e->has_sock_ino));
			ok = ok && (e->kind != FD_KIND__FD_UNIX_PENDING || e->has_sock_ino);
			ok = ok && sockopts_valid(e);
		}
		if (!ok) {
			pr_err("image fds-%d.img: entry %zu (fd %u) is invalid", t->pid, i, e->fd);
			return -EINVAL;
		}
		const struct fd_kind_ops *ops = fd_kind_of(e->kind);
		int err = ops && ops->validate ? ops->validate(t, e) : 0;
		if (err)
			return err;
next:;
	}
	if (tab->n_fds)
		t->next_high_fd = tab->fds[tab->n_fds - 1]->fd + 1;
	return 0;
}

/*
 * In the new task: open every file above all numbers in use, drop the engine's own fds below
 * that, then move each file to its number.
 */
static int restore_fds(struct restore_task *t)
{
	FdTable *tab = t->fds;
	auto_free int *tmp = xzalloc((tab->n_fds + 1) * sizeof(int));
	int low_end = t->args->close_from; /* first helper fd: everything below is the task's */
	int err;

	for (size_t i = 0; i < tab->n_fds; i++) {
		FdEntry *e = tab->fds[i];
		if (e->kind == FD_KIND__FD_DUP)
			continue;
		/* held by several processes: stasis opened it once, every process inherited it */
		int held = e->kind == FD_KIND__FD_SHARED ? shared_file_fd(e->shared_pid, e->shared_fd)
							  : shared_file_fd(t->pid, e->fd);
		int fd = held >= 0 ? fcntl(held, F_DUPFD_CLOEXEC, 0)
			 : e->kind == FD_KIND__FD_SHARED ? -ENOENT : fd_kind_of(e->kind)->open(t, e);
		if (fd < 0)
			return fd;
		if (e->n_sockopts && e->kind != FD_KIND__FD_EXTERNAL && (err = sockopts_restore(fd, e))) {
			close(fd);
			return err;
		}
		tmp[i] = restore_move_high(t, fd);
		if (tmp[i] < 0)
			return tmp[i];
	}
	if (low_end > 0 && syscall(SYS_close_range, 0, low_end - 1, 0))
		return -errno;
	for (size_t i = 0; i < tab->n_fds; i++) {
		FdEntry *e = tab->fds[i];
		int src = e->kind == FD_KIND__FD_DUP ? (int)e->dup_of : tmp[i];
		if (dup3(src, e->fd, e->cloexec ? O_CLOEXEC : 0) < 0)
			return -errno;
		if (e->kind != FD_KIND__FD_DUP)
			close(tmp[i]);
	}
	err = locks_restore(tab);
	return err ? err : epoll_register_targets(tab);
}

const struct state_ops state_fds = {
	.name = "file descriptors",
	.dump = dump_fds,
	.validate = validate_fds,
	.restore = restore_fds,
};
