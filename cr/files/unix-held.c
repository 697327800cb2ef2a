/*
 * Which unix sockets are held, and by whom. At dump: every socket the tree's processes hold
 * (read once from /proc, the tree frozen), and what becomes of a socket whose peer is held by
 * nobody of the tree (external with --ext-unix-sk, else refused). At restore: the sockets
 * stasis made before the tree, by inode, which every new process inherits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "unix.h"
#include "util.h"

/* Every socket the tree's processes hold, from /proc/PID/fd (the tree is frozen). */
static int read_tree_sockets(struct dump_task *t, struct unix_state *ud)
{
	for (size_t k = 0; k < t->tree_size; k++) {
		pid_t pid = t->tree[k].pid;
		auto_free int *fds = NULL;
		size_t n;
		int err = proc_list_numbers(pid, "fd", &fds, &n);
		if (err) {
			pr_perror("dump pid %d: cannot list its fds", pid);
			return err;
		}
		for (size_t i = 0; i < n; i++) {
			char name[32], link[64];
			unsigned long long ino;
			snprintf(name, sizeof(name), "fd/%d", fds[i]);
			if (proc_readlink(pid, name, link, sizeof(link)) || sscanf(link, "socket:[%llu]", &ino) != 1)
				continue;
			ud->held = realloc(ud->held, (ud->nr_held + 1) * sizeof(*ud->held));
			if (!ud->held)
				return -ENOMEM;
			ud->held[ud->nr_held++] = ino;
		}
	}
	ud->held_read = true;
	return 0;
}

int unix_tree_holds(struct unix_state *ud, struct dump_task *t, uint64_t ino)
{
	int err;

	if (!ud->held_read && (err = read_tree_sockets(t, ud)))
		return err;
	for (size_t i = 0; i < ud->nr_held; i++)
		if (ud->held[i] == ino)
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
	e->ext_key = xstrdup(key);
	e->has_flags = true;
	e->flags = p->flags;
	pr_info("dump pid %d fd %d: unix socket %s is %s: saved as external, restore needs "
		"--inherit-fd fd[N]:%s",
		t->pid, p->fd, key, what, key);
	return 1;
}

/* ---- restore ---- */

int unix_hold(struct unix_state *st, uint64_t ino, uint64_t pair_id, int fd)
{
	if (unix_held_fd(st, ino) >= 0) {
		pr_err("image sockets.img: socket %llu appears twice", (unsigned long long)ino);
		close(fd);
		return -EINVAL;
	}
	struct held_socket *more = realloc(st->made, (st->nr_made + 1) * sizeof(*st->made));
	if (!more) {
		close(fd);
		return -ENOMEM;
	}
	st->made = more;
	st->made[st->nr_made++] = (struct held_socket){ ino, pair_id, fd };
	return 0;
}

int unix_held_fd(const struct unix_state *st, uint64_t ino)
{
	for (size_t i = 0; i < st->nr_made; i++)
		if (st->made[i].ino == ino)
			return st->made[i].fd;
	return -1;
}
