/*
 * Who gets an open file's signals and which (fcntl F_SETOWN / F_SETOWN_EX, F_SETSIG) and
 * whether it sends them (O_ASYNC): SIGIO of sockets, pipes and ttys, SIGURG of sockets, the
 * signal of a lease being broken. The owner (a process, a thread or a process group) is kept
 * by its pid in the tree's namespace. Read from a copy of the open file (pidfd_getfd: the same
 * file) at dump; set by stasis on a copy of the restored process's fd once the whole tree
 * exists, so that every owner has its pid by then. O_ASYNC is armed by the restored process
 * itself once its fds have their numbers (the signal's si_fd is the number it was armed
 * through; open(2) takes O_ASYNC without arming it). A directory with an owner is watched with
 * dnotify (F_NOTIFY), whose events cannot be read: refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "pid-ns.h"
#include "util.h"

int fown_dump(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	struct f_owner_ex ex = { 0 };
	int sig;
	uint32_t vpid = 0;

	if (p->flags & O_PATH)
		return 0; /* no signals */
	auto_close int copy = task_fd_copy(t->pid, p->fd);
	if (copy < 0 || fcntl(copy, F_GETOWN_EX, &ex) || (sig = fcntl(copy, F_GETSIG)) < 0) {
		pr_err("dump pid %d fd %d: cannot read who gets its signals: %s", t->pid, p->fd,
		       strerror(copy < 0 ? -copy : errno));
		return copy < 0 ? copy : -errno;
	}
	/* a directory signals its owner only for dnotify (F_NOTIFY sets the caller as owner):
	 * which events it asked for the kernel shows nowhere (nor whether it still does) */
	struct stat st;
	if (ex.pid > 0 && !fstat(copy, &st) && S_ISDIR(st.st_mode)) {
		pr_err("dump pid %d fd %d: directory %s has an owner for signals (pid %d): it is watched "
		       "with dnotify (fcntl F_NOTIFY), whose events the kernel does not show: not supported",
		       t->pid, p->fd, p->link, ex.pid);
		return -ENOTSUP;
	}
	if (ex.pid > 0 && ex.type == F_OWNER_TID && pid_ns_vtid(t->ctx, t->pid, ex.pid, &vpid))
		vpid = 0;
	else if (ex.pid > 0 && ex.type != F_OWNER_TID)
		vpid = pid_ns_vpid(t->ctx, ex.pid);
	if (ex.pid > 0 && !vpid)
		pr_warn("dump pid %d fd %d: its signals go to %s %d, outside the tree's PID namespace: "
			"not kept", t->pid, p->fd, ex.type == F_OWNER_PGRP ? "process group" : "pid", ex.pid);
	e->has_fown_async = true;
	e->fown_async = p->flags & O_ASYNC;
	if (vpid) {
		e->has_fown_type = e->has_fown_pid = true;
		e->fown_type = ex.type;
		e->fown_pid = vpid;
	}
	if (sig) {
		e->has_fown_sig = true;
		e->fown_sig = sig;
	}
	return 0;
}

bool fown_valid(const FdEntry *e)
{
	return (!e->has_fown_type || e->fown_type <= F_OWNER_PGRP) && (!e->has_fown_pid || e->fown_pid <= INT32_MAX) &&
	       (!e->has_fown_sig || e->fown_sig <= 64);
}

/* The host's pid of the owner vpid (its process, thread, or group leader). */
static pid_t host_of(const struct restore_task *t, uint32_t vpid)
{
	bool same_numbers = true;

	for (size_t i = 0; i < t->tree_size; i++) {
		const struct restore_task *u = &t->tree[i];
		if ((uint32_t)u->pid == vpid)
			return u->host_pid;
		for (size_t k = 0; u->host_tids && k < u->core->n_threads; k++)
			if (u->core->threads[k]->tid == vpid)
				return u->host_tids[k];
		same_numbers &= u->host_pid == u->pid;
	}
	return same_numbers ? (pid_t)vpid : 0; /* a group whose leader is gone: its number, if ours */
}

int fown_arm(const FdTable *tab)
{
	for (size_t i = 0; i < tab->n_fds; i++) {
		const FdEntry *e = tab->fds[i];
		int fl = e->fown_async ? fcntl(e->fd, F_GETFL) : 0;
		if (e->fown_async && (fl < 0 || fcntl(e->fd, F_SETFL, fl & ~O_ASYNC) ||
				      fcntl(e->fd, F_SETFL, fl | O_ASYNC))) {
			pr_perror("restore fd %u: cannot arm O_ASYNC", e->fd);
			return -errno;
		}
	}
	return 0;
}

int fown_restore(const struct restore_task *t, const FdEntry *e)
{
	bool owned = e->has_fown_pid && e->fown_pid;

	if (!owned && !e->has_fown_sig)
		return 0;
	auto_close int copy = task_fd_copy(t->host_pid, e->fd);
	if (copy < 0) {
		pr_err("restore pid %d fd %u: cannot reach it to set who gets its signals: %s", t->pid, e->fd,
		       strerror(-copy));
		return copy;
	}
	if (owned) {
		struct f_owner_ex ex = { .type = e->fown_type, .pid = host_of(t, e->fown_pid) };
		if (!ex.pid || fcntl(copy, F_SETOWN_EX, &ex))
			pr_warn("restore pid %d fd %u: its signals cannot go to pid %u again (%s)", t->pid, e->fd,
				e->fown_pid, ex.pid ? strerror(errno) : "gone");
	}
	if (e->has_fown_sig && fcntl(copy, F_SETSIG, e->fown_sig)) {
		pr_perror("restore pid %d fd %u: cannot set its signal", t->pid, e->fd);
		return -errno;
	}
	return 0;
}
