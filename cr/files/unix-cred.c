/*
 * A unix socket's peer credentials (SO_PEERCRED): the pid, euid and egid of the process that
 * made the connection, as the kernel took them from it then: socketpair() gives both ends its
 * caller's, connect() gives the accepted socket the connecting process's (and the connecting
 * socket its listener's, from listen()). They cannot be set afterwards.
 * Dump: each end's, as the tree's PID namespace numbers the pid (the process may have exited
 * since: the socket keeps its number).
 * Restore: the call that makes the connection runs in a helper process that has that pid
 * (clone3 set_tid; the pid is free before the tree exists, and again once the helper is
 * reaped) and that euid and egid, sharing stasis's file table so that the sockets it makes
 * are stasis's; it keeps its capabilities (SECBIT_NO_SETUID_FIXUP), as stasis reaches paths
 * the process may not have. A pid that is taken leaves the pid to the helper's own, with a
 * warning; so does a tree in a PID namespace of its own (made after the sockets: the pid
 * reads 0 there, as a process of no namespace of its), silently, its euid and egid kept; a
 * listener there listens again from the process that had listened, if it holds it
 * (unix_relisten_in_task): listen() takes its caller's credentials each time.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/securebits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "ns-make.h"
#include "pid-ns.h"
#include "pstree.h"
#include "tree-path.h"
#include "unix.h"

bool unix_cred_read(const struct run_ctx *ctx, int s, struct unix_cred *c)
{
	struct ucred u;
	socklen_t len = sizeof(u);

	*c = (struct unix_cred){ 0 };
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &u, &len) || u.pid <= 0)
		return false; /* none: never connected by a process (a datagram socket's connect) */
	c->pid = pid_ns_vpid(ctx, u.pid); /* 0: gone, and the tree has a PID namespace of its own */
	c->uid = u.uid;
	c->gid = u.gid;
	return true;
}

void unix_end_cred_set(UnixEnd *end, const struct unix_cred *c)
{
	end->has_peer_pid = end->has_peer_uid = end->has_peer_gid = true;
	end->peer_pid = c->pid;
	end->peer_uid = c->uid;
	end->peer_gid = c->gid;
}

const struct unix_cred *unix_end_cred(const UnixEnd *end, struct unix_cred *c)
{
	if (!end->has_peer_pid || !end->has_peer_uid || !end->has_peer_gid)
		return NULL;
	*c = (struct unix_cred){ end->peer_pid, end->peer_uid, end->peer_gid };
	return c;
}

void unix_listener_cred_set(FdEntry *e, const struct unix_cred *c)
{
	e->has_sock_listen_pid = e->has_sock_listen_uid = e->has_sock_listen_gid = true;
	e->sock_listen_pid = c->pid;
	e->sock_listen_uid = c->uid;
	e->sock_listen_gid = c->gid;
}

const struct unix_cred *unix_listener_cred(const FdEntry *e, struct unix_cred *c)
{
	if (!e->has_sock_listen_pid || !e->has_sock_listen_uid || !e->has_sock_listen_gid)
		return NULL;
	*c = (struct unix_cred){ e->sock_listen_pid, e->sock_listen_uid, e->sock_listen_gid };
	return c;
}

/* In the helper: its credentials, its root and directory, then fn. */
static int run_here(const struct unix_cred *as, int root_fd, const char *dir, int (*fn)(void *arg),
		    void *arg)
{
	if (prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED) ||
	    syscall(SYS_setgroups, 0, NULL) || syscall(SYS_setresgid, as->gid, as->gid, as->gid) ||
	    syscall(SYS_setresuid, as->uid, as->uid, as->uid))
		return -errno;
	if (root_fd >= 0 && (fchdir(root_fd) || chroot(".") || chdir("/")))
		return -errno;
	if (dir && chdir(dir))
		return -errno;
	return fn(arg);
}

int unix_run_as(const struct run_ctx *ctx, const struct unix_cred *as, int root_fd, const char *dir,
		int (*fn)(void *arg), void *arg, size_t arg_size)
{
	struct shared {
		int err;
		char arg[];
	} *sh = mmap(NULL, sizeof(*sh) + arg_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int status;
	pid_t child;

	if (sh == MAP_FAILED)
		return -errno;
	memcpy(sh->arg, arg, arg_size);
	sh->err = -EINTR;
	fflush(NULL);
	bool with_pid = as->pid && !pid_ns_is_own(ctx);
	child = with_pid ? clone_with_pid(&as->pid, 1, CLONE_FILES, -1) : -1;
	if (child < 0) {
		if (with_pid)
			pr_warn("restore: a unix socket's peer pid %u is taken (%s): it comes back with "
				"another", as->pid, strerror(errno));
		child = syscall(SYS_clone, CLONE_FILES | SIGCHLD, NULL, NULL, NULL, 0);
	}
	if (child == 0) {
		sh->err = run_here(as, root_fd, dir, fn, sh->arg);
		_exit(0);
	}
	int err = child < 0 ? -errno : 0;
	while (child > 0 && waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (!err) {
		err = sh->err;
		memcpy(arg, sh->arg, arg_size);
	}
	munmap(sh, sizeof(*sh) + arg_size);
	return err;
}

struct by_listen {
	int s, backlog;
};

static int listen_here(void *arg)
{
	const struct by_listen *l = arg;

	return listen(l->s, l->backlog) ? -errno : 0;
}

int unix_listen_as(const struct run_ctx *ctx, int s, int backlog, const struct unix_cred *as)
{
	struct by_listen l = { s, backlog };

	return as ? unix_run_as(ctx, as, -1, NULL, listen_here, &l, sizeof(l)) : listen_here(&l);
}

struct relisten {
	int fd, backlog;
	uint32_t uid, gid;
	int err;
};

/* A thread of the task: credentials are per thread, listen() takes the process's pid and the
 * calling thread's euid and egid (raw calls: glibc would change every thread's). */
static void *relisten_thread(void *arg)
{
	struct relisten *r = arg;

	if (syscall(SYS_setresgid, -1, r->gid, -1) || syscall(SYS_setresuid, -1, r->uid, -1) ||
	    listen(r->fd, r->backlog))
		r->err = -errno;
	return NULL;
}

int unix_relisten_in_task(const struct restore_task *t, const FdEntry *e)
{
	struct unix_cred as;
	pthread_t th;

	if (!e->has_sock_backlog || !pid_ns_is_own(t->ctx) || !unix_listener_cred(e, &as) ||
	    as.pid != (uint32_t)t->pid)
		return 0;
	struct relisten r = { (int)e->fd, (int)e->sock_backlog, as.uid, as.gid, 0 };
	ns_make_tree_ids(t->ctx, false, &r.uid, 1); /* (in a user namespace: in its view) */
	ns_make_tree_ids(t->ctx, true, &r.gid, 1);
	int err = pthread_create(&th, NULL, relisten_thread, &r);
	if (err || (err = pthread_join(th, NULL)))
		r.err = -err;
	if (r.err) /* the listener works; its clients read another pid */
		pr_warn("restore pid %d fd %u: cannot listen again as pid %d, euid %u, egid %u (%s): its "
			"clients read its peer pid as 0", t->pid, e->fd, t->pid, as.uid, as.gid, strerror(-r.err));
	return 0;
}
