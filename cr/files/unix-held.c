/*
 * Which unix sockets are held, and by whom. At dump: every socket the tree's processes hold
 * (read once from /proc, the tree frozen) or a waiting message carries, and what becomes of a
 * socket whose peer is held by nobody of the tree (external with --ext-unix-sk, else refused).
 * At restore: the sockets stasis made before the tree, by inode (and by name, for senders),
 * which every new process inherits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "unix.h"
#include "util.h"

/* (fd_each_socket: each socket once in ud's set) */
static int note_held(uint64_t ino, pid_t pid, int fd, void *arg)
{
	struct unix_state *ud = arg;
	int added = ino_map_add(&ud->held_by_ino, ino, ud->nr_held);

	if (added <= 0)
		return added;
	if (xgrow(&ud->held, &ud->cap_held, ud->nr_held, sizeof(*ud->held)))
		return -ENOMEM;
	ud->held[ud->nr_held++] = (struct unix_holder){ ino, pid, fd };
	return 0;
}

/*
 * Every fd of every process is read (readlinkat in its /proc/PID/fd, opened once), and each
 * socket is recorded once (a set of inodes: a tree of 235 processes inheriting 350 sockets
 * each met 82,000 socket fds).
 */
int unix_read_tree_sockets(struct unix_state *ud, struct dump_task *t)
{
	for (size_t k = 0; k < t->tree_size; k++) {
		pid_t pid = t->tree[k].pid;
		unsigned logged = log_errors();
		int err = fd_each_socket(pid, note_held, ud);
		if (err) {
			log_unnamed(logged, err, "dump pid %d: cannot list its fds", pid);
			return err;
		}
	}
	ud->held_read = true;
	return 0;
}

int unix_tree_holds(struct unix_state *ud, struct dump_task *t, uint64_t ino)
{
	int err;

	if (!ud->held_read && (err = unix_read_tree_sockets(ud, t)))
		return err;
	if (ino_map_get(&ud->held_by_ino, ino, NULL))
		return 1;
	for (size_t i = 0; i < ud->nr_carried; i++)
		if (ud->carried[i].is_socket && ud->carried[i].ino == ino)
			return 1;
	return 0;
}

int unix_dump_outside(struct dump_task *t, const struct fd_probe *p, FdEntry *e, const char *what)
{
	char key[48];

	snprintf(key, sizeof(key), "socket:[%llu]", (unsigned long long)p->st.st_ino);
	if (!t->ctx->opts->ext_unix_sk) {
		pr_err("dump pid %d fd %d: unix socket %s is %s (pass --ext-unix-sk to save it as "
		       "external, then restore with --inherit-fd fd[N]:%s)",
		       t->pid, p->fd, key, what, key);
		return -ENOTSUP;
	}
	e->kind = FD_KIND__FD_EXTERNAL;
	if (!(e->ext_key = xstrdup(key)))
		return -ENOMEM;
	e->has_flags = true;
	e->flags = p->flags;
	pr_info("dump pid %d fd %d: unix socket %s is %s: saved as external, restore needs "
		"--inherit-fd fd[N]:%s",
		t->pid, p->fd, key, what, key);
	return 1;
}

/* ---- restore ---- */

int unix_hold(struct unix_state *st, uint64_t ino, uint64_t pair_id, int fd, const FdEntry *e)
{
	if (ino && unix_held_fd(st, ino) >= 0) {
		pr_err("image sockets.img: socket %llu appears twice", (unsigned long long)ino);
		close(fd);
		return -EINVAL;
	}
	struct held_socket *more = xreallocarray(st->made, st->nr_made + 1, sizeof(*st->made));
	if (!more) {
		close(fd);
		return -ENOMEM;
	}
	st->made = more;
	st->made[st->nr_made++] = (struct held_socket){ ino, pair_id, fd, e, { 0 }, false };
	return 0;
}

int unix_hold_stand_in(struct unix_state *st, uint64_t ino, uint64_t pair_id, int type)
{
	int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0), err;

	if (s < 0)
		return -errno;
	if (!(err = unix_hold(st, ino, pair_id, s, NULL)))
		st->made[st->nr_made - 1].stand_in = true;
	return err;
}

int unix_held_replace(const struct unix_state *st, uint64_t pair_id, uint64_t ino, int *s)
{
	for (size_t i = 0; i < st->nr_made; i++) {
		if (st->made[i].pair_id != pair_id || st->made[i].ino != ino || !st->made[i].stand_in)
			continue;
		if (dup3(*s, st->made[i].fd, O_CLOEXEC) < 0)
			return -errno;
		close(*s);
		*s = -1;
		return 0;
	}
	return -ENOENT;
}

int unix_held_fd(const struct unix_state *st, uint64_t ino)
{
	for (size_t i = 0; ino && i < st->nr_made; i++)
		if (st->made[i].ino == ino)
			return st->made[i].fd;
	return -1;
}

int unix_held_end(const struct unix_state *st, uint64_t pair_id, uint64_t ino)
{
	for (size_t i = 0; i < st->nr_made; i++)
		if (st->made[i].pair_id == pair_id && st->made[i].ino == ino)
			return st->made[i].fd;
	return -1;
}

int unix_held_listener(const struct unix_state *st, int type, const void *name, size_t len,
		       const FdEntry **e)
{
	for (size_t i = 0; i < st->nr_made; i++) {
		const FdEntry *l = st->made[i].e;
		if (l && l->has_sock_backlog && l->sock_type == (uint32_t)type && l->sock_name.len == len &&
		    !memcmp(l->sock_name.data, name, len)) {
			*e = l;
			return st->made[i].fd;
		}
	}
	return -1;
}

void unix_held_drop(struct unix_state *st, int fd)
{
	for (size_t i = 0; i < st->nr_made; i++) {
		if (st->made[i].fd != fd)
			continue;
		unix_file_remove(st->ctx, &st->made[i].unlink_later);
		close(fd);
		st->made[i] = st->made[--st->nr_made];
		return;
	}
}

int unix_held_by_name(const struct unix_state *st, int type, const struct sockaddr_un *sa,
		      socklen_t len)
{
	for (size_t i = 0; i < st->nr_made; i++) {
		struct sockaddr_un name;
		socklen_t name_len = sizeof(name);
		int t;
		socklen_t tlen = sizeof(t);
		if (!getsockname(st->made[i].fd, (struct sockaddr *)&name, &name_len) && name_len == len &&
		    !memcmp(&name, sa, len) && !getsockopt(st->made[i].fd, SOL_SOCKET, SO_TYPE, &t, &tlen) &&
		    t == type)
			return st->made[i].fd;
	}
	return -1;
}

/* The directories made for f, moved to the ones removed after every file (if memory allows). */
static void dirs_later(struct unix_state *st, struct unix_file *f)
{
	struct unix_file *later = &st->dirs_later;
	struct made_dir *d;

	if (!f->n_dirs || !(d = realloc(later->dirs, (later->n_dirs + f->n_dirs) * sizeof(*d))))
		return; /* (else kept with the file: removed with it, if empty then) */
	later->dirs = d;
	memcpy(d + later->n_dirs, f->dirs, f->n_dirs * sizeof(*d));
	later->n_dirs += f->n_dirs;
	free(f->dirs);
	f->dirs = NULL;
	f->n_dirs = 0;
}

void unix_held_unlink_later(struct unix_state *st, uint64_t ino, struct unix_file *f)
{
	for (size_t i = 0; (f->path || f->scratch) && i < st->nr_made; i++) {
		if (st->made[i].ino == ino && !st->made[i].unlink_later.path && !st->made[i].unlink_later.scratch) {
			dirs_later(st, f);
			st->made[i].unlink_later = *f;
			*f = (struct unix_file){ 0 };
			return;
		}
	}
	unix_file_remove(st->ctx, f);
}

const struct unix_file *unix_held_file(const struct unix_state *st, uint64_t ino)
{
	for (size_t i = 0; ino && i < st->nr_made; i++)
		if (st->made[i].ino == ino)
			return &st->made[i].unlink_later;
	return NULL;
}

const char *unix_held_scratch(const struct unix_state *st, uint64_t ino)
{
	const struct unix_file *f = unix_held_file(st, ino);
	return f ? f->scratch : NULL;
}

void unix_close_held(struct unix_state *st)
{
	for (size_t i = 0; i < st->nr_made; i++) {
		unix_file_remove(st->ctx, &st->made[i].unlink_later);
		close(st->made[i].fd);
	}
	st->nr_made = 0;
	unix_file_remove(st->ctx, &st->dirs_later); /* empty now: made for the files just removed */
}
