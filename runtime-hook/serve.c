/*
 * The verbs that serve pages to another stasis: page-server (a dump's pages in, a lazy
 * restore's pages out) and lazy-pages (a restored tree's first touches). Both may go to the
 * background once they listen (--daemon: the command returns when the server is ready, its
 * pid in --pidfile), and say so on --status-fd (a byte "\0", criu's way).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faces.h"
#include "log.h"
#include "run.h"
#include "util.h"

struct ready_note {
	const struct stasis_opts *o;
	int pipe_fd; /* --daemon: the waiting parent's pipe (-1: in the foreground) */
};

/* Listening: --port 0 prints the port chosen, --status-fd gets its byte, a parent its go. */
static void say_ready(void *arg, int port)
{
	struct ready_note *r = arg;

	if (port > 0 && r->o->ps_port == 0) {
		printf("%d\n", port);
		fflush(stdout);
	}
	if (r->o->status_fd >= 0) {
		if (write(r->o->status_fd, "", 1) != 1)
			pr_warn("--status-fd %d: %m", r->o->status_fd);
		close(r->o->status_fd);
	}
	if (r->pipe_fd >= 0) {
		if (write(r->pipe_fd, &port, sizeof(port)) != sizeof(port))
			pr_warn("the waiting command is gone: %m");
		close(r->pipe_fd);
	}
}

static void write_pidfile(const struct run_ctx *ctx, pid_t pid)
{
	char text[16];
	int len = snprintf(text, sizeof(text), "%d", pid);
	int fd = ctx->opts->pidfile ? openat(ctx->work_dir_fd, ctx->opts->pidfile,
					     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
				    : -1;

	if (ctx->opts->pidfile && (fd < 0 || write_all(fd, text, len)))
		pr_perror("cannot write pidfile %s", ctx->opts->pidfile);
	if (fd >= 0)
		close(fd);
}

/*
 * Runs serve(ctx, say_ready, note) in the foreground, or (--daemon) in a child of its own
 * session: this process then returns once the child listens (0), or when it failed (1).
 */
int serve_maybe_daemon(struct run_ctx *ctx,
		       int (*serve)(struct run_ctx *, void (*)(void *, int), void *))
{
	struct ready_note note = { ctx->opts, -1 };
	int p[2], port, status;
	pid_t child;

	if (!ctx->opts->daemon)
		return serve(ctx, say_ready, &note) ? 1 : 0;
	if (pipe2(p, O_CLOEXEC)) {
		pr_perror("--daemon: pipe");
		return 1;
	}
	fflush(NULL);
	if ((child = fork()) < 0) {
		pr_perror("--daemon: fork");
		return 1;
	}
	if (child == 0) {
		close(p[0]);
		setsid();
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			close(null);
		}
		note.pipe_fd = p[1];
		_exit(serve(ctx, say_ready, &note) ? 1 : 0);
	}
	close(p[1]);
	if (read_all(p[0], &port, sizeof(port)) != sizeof(port)) {
		waitpid(child, &status, 0);
		fprintf(stderr, "stasis: the server stopped before it was ready (see its log)\n");
		return 1;
	}
	close(p[0]);
	write_pidfile(ctx, child);
	if (port > 0 && ctx->opts->ps_port == 0)
		printf("%d\n", port);
	return 0;
}
