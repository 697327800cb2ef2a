/*
 * The restore's side of a lazy restore (cr/lazy-pages.h), a tree-wide kind: at prepare,
 * before anything of the tree exists, the server is found (`stasis lazy-pages` listening on
 * lazy-pages.socket in the work directory) or started (a process of its own, out of the
 * restore's way: it outlives a restore -d), and waited for until its page source is open; each
 * process's userfaultfd is handed to it when its blob is ready; undo tells it the tree runs
 * (or, by closing, that it does not). Also `stasis lazy-pages`: that listening socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel/features.h"
#include "lazy-pages.h"
#include "log.h"
#include "tree-objects.h"
#include "util.h"

#define SOCKET_NAME "lazy-pages.socket"
#define READY_TIMEOUT_MS 60000

struct lazy_state {
	bool on;
	int sk;
};

static struct lazy_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_lazy_pages);
}

bool lazy_pages_on(const struct run_ctx *ctx)
{
	return state_of(ctx)->on;
}

static void socket_path(const struct run_ctx *ctx, struct sockaddr_un *a)
{
	*a = (struct sockaddr_un){ .sun_family = AF_UNIX };
	snprintf(a->sun_path, sizeof(a->sun_path), "/proc/self/fd/%d/%s", ctx->work_dir_fd, SOCKET_NAME);
}

/* `stasis lazy-pages` listening in the work directory: connected, or -ENOENT if none is. */
static int connect_daemon(const struct run_ctx *ctx)
{
	struct sockaddr_un a;
	int sk = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	socket_path(ctx, &a);
	if (sk < 0 || connect(sk, (struct sockaddr *)&a, sizeof(a))) {
		int err = errno;
		if (sk >= 0)
			close(sk);
		if (err == ENOENT || err == ECONNREFUSED)
			return -ENOENT;
		pr_err("lazy restore: cannot reach the lazy-pages server in the work directory: %s",
		       strerror(err));
		return -err;
	}
	pr_info("lazy restore: pages come through the lazy-pages server listening there");
	return sk;
}

/* A server of the restore's own, in a session of its own, no child of stasis's. */
static int start_server(struct run_ctx *ctx)
{
	int sv[2], status;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		pr_perror("lazy restore: socketpair");
		return -errno;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		pr_perror("lazy restore: fork");
		return -errno;
	}
	if (pid == 0) {
		struct stat st;
		close(sv[0]);
		if (fork())
			_exit(0);
		setsid();
		int null = open("/dev/null", O_RDWR);
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		/* whoever reads stasis's stderr through a pipe must not wait for the server */
		if (fstat(STDERR_FILENO, &st) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
			dup2(null, STDERR_FILENO);
		_exit(lazy_pages_serve(ctx, sv[1]) ? 1 : 0);
	}
	close(sv[1]);
	waitpid(pid, &status, 0);
	return sv[0];
}

static int prepare_lazy(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct lazy_state *st = state_of(ctx);
	struct pollfd pfd;
	struct lazy_msg m;
	int err;

	(void)rt;
	if (!ctx->opts->lazy_pages)
		return 0;
	if ((err = kernel_refuse_lacking(ctx, KF_USERFAULTFD, "lazy restore")))
		return err;
	st->sk = connect_daemon(ctx);
	if (st->sk == -ENOENT)
		st->sk = start_server(ctx);
	if (st->sk < 0)
		return st->sk;
	st->on = true;
	pfd = (struct pollfd){ st->sk, POLLIN, 0 };
	if (poll(&pfd, 1, READY_TIMEOUT_MS) != 1 || recv(st->sk, &m, sizeof(m), 0) != sizeof(m) ||
	    m.type != LAZY_READY) {
		pr_err("lazy restore: the lazy-pages server did not get ready (its log says why)");
		return -ECONNREFUSED;
	}
	return 0;
}

int lazy_pages_hand_off(const struct run_ctx *ctx, const struct restore_task *t, int uffd)
{
	struct lazy_state *st = state_of(ctx);
	struct lazy_msg m = { LAZY_TASK, (uint32_t)t->pid, t->host_pid, 0 };
	int copy = task_fd_copy(t->host_pid, uffd), err;

	if (copy < 0) {
		pr_err("restore pid %d: cannot take its userfaultfd: %s", t->pid, strerror(-copy));
		return copy;
	}
	err = send_with_fd(st->sk, &m, sizeof(m), copy);
	close(copy);
	if (err)
		pr_err("restore pid %d: cannot hand its memory to the lazy-pages server: %s", t->pid,
		       strerror(-err));
	return err;
}

/* The restore is over: the server goes on until every page is in, or (failed) lets go. */
static void undo_lazy(struct run_ctx *ctx, bool restored)
{
	struct lazy_state *st = state_of(ctx);
	struct lazy_msg m = { LAZY_END, 0, 0, 0 };

	if (!st->on)
		return;
	if (restored && send_with_fd(st->sk, &m, sizeof(m), -1))
		pr_warn("lazy restore: the lazy-pages server is gone");
	close(st->sk);
	st->on = false;
}

const struct tree_object_ops tree_lazy_pages = {
	.name = "lazy pages",
	.state_size = sizeof(struct lazy_state),
	.prepare = prepare_lazy,
	.undo = undo_lazy,
};

int cr_lazy_pages(struct run_ctx *ctx, void (*ready)(void *arg, int port), void *arg)
{
	struct sockaddr_un a;
	int lsk, sk;

	socket_path(ctx, &a);
	unlink(a.sun_path);
	lsk = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (lsk < 0 || bind(lsk, (struct sockaddr *)&a, sizeof(a)) || listen(lsk, 1)) {
		pr_perror("lazy-pages: cannot listen on %s in the work directory", SOCKET_NAME);
		if (lsk >= 0)
			close(lsk);
		return -errno;
	}
	pr_info("lazy-pages: waiting for the restore on %s", SOCKET_NAME);
	if (ready)
		ready(arg, -1);
	while ((sk = accept4(lsk, NULL, NULL, SOCK_CLOEXEC)) < 0 && errno == EINTR)
		;
	int err = sk < 0 ? -errno : 0;
	close(lsk);
	unlink(a.sun_path);
	if (err) {
		pr_perror("lazy-pages: accept");
		return err;
	}
	return lazy_pages_serve(ctx, sk);
}
