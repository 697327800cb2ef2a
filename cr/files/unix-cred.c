/*
 * A unix socket's peer credentials (SO_PEERCRED): the pid, euid and egid of the process that
 * made the connection, as the kernel took them from it then: socketpair() gives both ends its
 * caller's, connect() gives the accepted socket the connecting process's (and the connecting
 * socket its listener's, from listen()). They cannot be set afterwards.
 * Dump: each end's, as the tree's PID namespace numbers the pid (the process may have exited
 * since: the socket keeps its number, which in a namespace of the tree's own only a process
 * there reads: pid_ns_run_in_tree).
 * Restore: the call that makes the connection runs in a helper process that has that pid
 * (clone3 set_tid; the pid is free before the tree exists, and again once the helper is
 * reaped) and that euid and egid, sharing stasis's file table so that the sockets it makes
 * are stasis's; it keeps its capabilities (SECBIT_NO_SETUID_FIXUP), as stasis reaches paths
 * the process may not have. A pid that is taken leaves the pid to the helper's own, with a
 * warning. A tree in a PID namespace of its own has it only once its root exists (a pid
 * made before reads 0 there): stasis makes stand-ins of those pairs and waiting connections,
 * the root (unix.c's enter, before it makes any other process) makes them again at the
 * stand-ins' numbers, its helpers in the namespace with their pids (pid 1: a thread of the
 * root), listeners listening again as who had listened, and stasis takes them from the root
 * (unix_take_from_root) for their queues. Left at 0 there: pairs carried in flight or with a
 * file made for a gone name, connections to a listener bound in a scratch root; a listener
 * listens again from the process that had listened too, if it holds it
 * (unix_relisten_in_task): listen() takes its caller's credentials each time.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/securebits.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
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

struct peer_of {
	int s;
	struct ucred u;
};

/* SO_PEERCRED as the caller's PID namespace numbers the pid (0: none there). */
static int peer_here(void *buf, size_t len)
{
	struct peer_of *p = buf;
	socklen_t l = sizeof(p->u);

	(void)len;
	return getsockopt(p->s, SOL_SOCKET, SO_PEERCRED, &p->u, &l) ? -errno : 0;
}

bool unix_cred_read(const struct run_ctx *ctx, int s, struct unix_cred *c)
{
	struct peer_of p = { s, { 0 } };

	*c = (struct unix_cred){ 0 };
	if (peer_here(&p, sizeof(p)) || p.u.pid <= 0)
		return false; /* none: never connected by a process (a datagram socket's connect) */
	c->pid = pid_ns_vpid(ctx, p.u.pid);
	c->uid = p.u.uid;
	c->gid = p.u.gid;
	/* not a process of the tree now: one gone since is known by its number in the tree's own
	 * namespace (the socket keeps it) to a process there only (0 to one of no namespace of it) */
	if (!c->pid && pid_ns_is_own(ctx) && !pid_ns_run_in_tree(ctx, peer_here, &p, sizeof(p)))
		c->pid = p.u.pid > 0 ? (uint32_t)p.u.pid : 0;
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

struct run_as_thread {
	const struct unix_cred *as;
	int root_fd;
	const char *dir;
	int (*fn)(void *arg);
	void *arg;
	int err;
};

/* A thread of the root (pid 1): credentials, secure bits and, once unshared, root and working
 * directory are the thread's own (raw calls: glibc would change every thread's). */
static void *run_as_thread(void *arg)
{
	struct run_as_thread *r = arg;

	r->err = unshare(CLONE_FS) ? -errno : run_here(r->as, r->root_fd, r->dir, r->fn, r->arg);
	return NULL;
}

/* In the tree's root: as pid 1 (the root itself), by a thread of its own. */
static int run_in_root_thread(const struct unix_cred *as, int root_fd, const char *dir,
			      int (*fn)(void *arg), void *arg)
{
	struct run_as_thread r = { as, root_fd, dir, fn, arg, 0 };
	pthread_t th;
	int err = pthread_create(&th, NULL, run_as_thread, &r);

	if (err || (err = pthread_join(th, NULL)))
		return -err;
	return r.err;
}

int unix_run_as(const struct run_ctx *ctx, const struct unix_cred *as, int root_fd, const char *dir,
		int (*fn)(void *arg), void *arg, size_t arg_size)
{
	bool in_root = unix_state_of(ctx)->in_root;
	struct unix_cred ids = *as;

	if (in_root) { /* the root takes on ids in its user namespace's view, if it has one */
		ns_make_tree_ids(ctx, false, &ids.uid, 1);
		ns_make_tree_ids(ctx, true, &ids.gid, 1);
		if (ids.pid == 1)
			return run_in_root_thread(&ids, root_fd, dir, fn, arg);
	}
	struct shared {
		int err;
		_Alignas(max_align_t) char arg[]; /* (fn's struct, its pointers aligned) */
	} *sh = mmap(NULL, sizeof(*sh) + arg_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int status;
	pid_t child;

	if (sh == MAP_FAILED)
		return -errno;
	memcpy(sh->arg, arg, arg_size);
	sh->err = -EINTR;
	fflush(NULL);
	/* (made before the tree's own PID namespace exists, a helper's pid reads 0 there) */
	bool with_pid = ids.pid && (!pid_ns_is_own(ctx) || in_root);
	child = with_pid ? clone_with_pid(&ids.pid, 1, CLONE_FILES, SIGCHLD, -1) : -1;
	if (child < 0) {
		if (with_pid)
			pr_warn("restore: a unix socket's peer pid %u is taken (%s): it comes back with "
				"another", ids.pid, strerror(errno));
		child = syscall(SYS_clone, CLONE_FILES | SIGCHLD, NULL, NULL, NULL, 0);
	}
	if (child == 0) {
		sh->err = run_here(&ids, root_fd, dir, fn, sh->arg);
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

size_t unix_cred_group(size_t n, size_t i, bool *taken,
		       bool (*cred_of)(void *arg, size_t j, struct unix_cred *c), void *arg,
		       size_t *at, struct unix_cred *as)
{
	struct unix_cred other;
	size_t k = 0;

	if (taken[i] || !cred_of(arg, i, as))
		return 0;
	for (size_t j = i; j < n; j++) /* (one before i with these would have taken i) */
		if (!taken[j] && cred_of(arg, j, &other) && !memcmp(as, &other, sizeof(other))) {
			taken[j] = true;
			at[k++] = j;
		}
	return k;
}

struct listen_batch {
	const int *s, *backlog;
	size_t n, failed; /* (the one whose listen() failed) */
};

static int listen_batch_here(void *arg)
{
	struct listen_batch *b = arg;

	for (b->failed = 0; b->failed < b->n; b->failed++)
		if (listen(b->s[b->failed], b->backlog[b->failed]))
			return -errno;
	return 0;
}

int unix_listen_all_as(const struct run_ctx *ctx, const int *s, const int *backlog, size_t n,
		       const struct unix_cred *as, size_t *failed)
{
	struct listen_batch b = { s, backlog, n, 0 };
	int err = unix_run_as(ctx, as, -1, NULL, listen_batch_here, &b, sizeof(b));

	*failed = b.failed;
	return err;
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
