/*
 * stasis swrk FD: criu's RPC face, as Docker, Podman, runc, containerd and crun (libcriu)
 * speak it. The engine starts `criu swrk FD` with one end of a SOCK_SEQPACKET socketpair;
 * each packet is one criu_req (proto/rpc.proto), answered by one criu_resp. During a dump or
 * a restore with notify_scripts, each notification point is a NOTIFY criu_resp that the
 * engine acknowledges with a NOTIFY criu_req before the run goes on.
 *
 * One swrk process serves requests until the engine closes its end. Each request has its
 * own options, directory fds, log and run context, all released before the next one: a
 * request sees nothing of the one before (the restored children of an earlier RESTORE stay,
 * for WAIT_PID).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "faces.h"
#include "kernel/criu-features.h"
#include "log.h"
#include "swrk.h"
#include "util.h"

#define MAX_PACKET (16u << 20)
#define MSG_LEN 1024

/* The connection: the socket, and the engine at its other end (SO_PEERCRED). */
struct swrk_conn {
	int sk;
	pid_t peer;
};

/* One DUMP or RESTORE: what notifications need while the engine runs. */
struct swrk_run {
	const struct swrk_conn *conn;
	bool notify_scripts; /* the engine wants NOTIFY messages */
	bool restore;
};

/* The answer to one request, with room for every part it may carry. */
struct reply {
	CriuResp resp;
	CriuVersion version;
	CriuFeatures features;
	CriuDumpResp dump;
	CriuRestoreResp restore;
	CriuPageServerInfo ps;
	char msg[MSG_LEN];
};

/* Next packet: 0 with *out (malloc'd) and *len, 1 at the end of the connection, or -errno. */
static int recv_packet(int sk, uint8_t **out, size_t *len)
{
	ssize_t n;

	while ((n = recv(sk, NULL, 0, MSG_PEEK | MSG_TRUNC)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -errno;
	if (n == 0) {
		recv(sk, NULL, 0, 0);
		return 1;
	}
	*out = xmalloc(n);
	if (!*out)
		return -ENOMEM;
	while ((n = recv(sk, *out, n, 0)) < 0 && errno == EINTR)
		;
	if (n < 0) {
		free(*out);
		return -errno;
	}
	*len = n;
	return 0;
}

/* One criu_resp in one packet; fd >= 0 rides along (SCM_RIGHTS). */
static int send_resp(int sk, const CriuResp *resp, int fd)
{
	size_t len = criu_resp__get_packed_size(resp);
	auto_free uint8_t *buf = xmalloc(len);

	if (!buf)
		return -ENOMEM;
	criu_resp__pack(resp, buf);
	return send_with_fd(sk, buf, len, fd);
}

/* ---- notifications ------------------------------------------------------------------ */

/* The engine's hook at a point: the scripts of the configuration, then the NOTIFY exchange. */
static int swrk_notify(const struct run_ctx *ctx, const char *point, int pid, int fd)
{
	const struct swrk_run *run = ctx->face;
	CriuResp resp = CRIU_RESP__INIT;
	CriuNotify note = CRIU_NOTIFY__INIT;
	CriuReq *ack;
	uint8_t *buf;
	size_t len;
	unsigned logged = log_errors();
	int err;

	if ((err = action_scripts_run(&ctx->opts->action_scripts, point, run->restore ? pid : 0)))
		return err;
	if (!run->notify_scripts)
		return 0;
	resp.type = CRIU_REQ_TYPE__NOTIFY;
	resp.success = true;
	note.script = (char *)point;
	note.has_pid = true;
	note.pid = pid;
	resp.notify = &note;
	if ((err = send_resp(run->conn->sk, &resp, fd)))
		return log_unnamed(logged, err, "notify %s: cannot send it to the engine", point);
	if ((err = recv_packet(run->conn->sk, &buf, &len))) {
		if (err > 0)
			pr_err("notify %s: the engine closed the connection instead of answering", point);
		return err > 0 ? -ECONNRESET
			       : log_unnamed(logged, err, "notify %s: the engine's answer could not be read",
					     point);
	}
	ack = criu_req__unpack(NULL, len, buf);
	free(buf);
	if (!ack || ack->type != CRIU_REQ_TYPE__NOTIFY) {
		pr_err("notify %s: the engine answered with %s, not a NOTIFY request", point,
		       ack ? "another request" : "a malformed packet");
		err = -EBADMSG;
	} else if (!ack->has_notify_success || !ack->notify_success) {
		pr_err("notify %s: the engine answered that it failed", point);
		err = -ECANCELED;
	}
	if (ack)
		criu_req__free_unpacked(ack, NULL);
	return err;
}

/* ---- one request's directories, options and log ---------------------------------------- */

/*
 * images_dir_fd and work_dir_fd are the engine's fds (criu reads them through the peer; runc
 * does not pass them down), else the same number inherited by this process (libcriu).
 */
static int open_engine_dir(const struct swrk_conn *c, int fd, const char *field, char *msg)
{
	int copies[2] = { task_fd_copy(c->peer, fd), fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1 };
	int dir = -1;
	struct stat st;

	for (int i = 0; i < 2; i++) {
		if (copies[i] < 0)
			continue;
		if (dir < 0 && fstat(copies[i], &st) == 0 && S_ISDIR(st.st_mode))
			dir = copies[i];
		else
			close(copies[i]);
	}
	if (dir < 0)
		snprintf(msg, MSG_LEN, "stasis: %s: fd %d is not an open directory of the engine "
				       "(pid %d) or of the swrk process", field, fd, c->peer);
	return dir < 0 ? -EBADF : dir;
}

/* The images directory (images_dir_fd, else images_dir) and the work directory (work_dir_fd,
 * else the images directory): 0, or -EBADF with msg saying which. */
static int open_run_dirs(const struct swrk_conn *c, const CriuOpts *ro, int *images_fd,
			 int *work_fd, char *msg)
{
	if (ro->images_dir_fd >= 0) {
		*images_fd = open_engine_dir(c, ro->images_dir_fd, "images_dir_fd", msg);
	} else if (!ro->images_dir) {
		snprintf(msg, MSG_LEN, "stasis: images_dir_fd: no images directory given");
	} else if ((*images_fd = open(ro->images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(msg, MSG_LEN, "stasis: images_dir: %s: %m", ro->images_dir);
	}
	if (*images_fd < 0)
		return -EBADF;
	*work_fd = ro->has_work_dir_fd ? open_engine_dir(c, ro->work_dir_fd, "work_dir_fd", msg)
				       : fcntl(*images_fd, F_DUPFD_CLOEXEC, 0);
	return *work_fd < 0 ? -EBADF : 0;
}

/* Where an open directory is, for messages. */
static const char *dir_name(int fd, struct swrk_allocs *a)
{
	char link[32], path[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	path[n > 0 ? n : 0] = 0;
	return swrk_strdup_printf(a, "%s", n > 0 ? path : "(the images directory)");
}

/* criu's order: the default configuration files, the RPC options, then the request's
 * config_file. */
static int read_request_opts(const CriuOpts *ro, struct stasis_opts *o, struct swrk_allocs *a,
			     char *msg)
{
	const char *home = getenv("HOME"), *env = getenv("CRIU_CONFIG_FILE");
	char home_conf[PATH_MAX];
	int err;

	cli_opts_init(o);
	if ((err = cli_parse_config(o, "/etc/criu/default.conf", false)))
		goto bad_config;
	if (home) {
		snprintf(home_conf, sizeof(home_conf), "%s/.criu/default.conf", home);
		if ((err = cli_parse_config(o, home_conf, false)))
			goto bad_config;
	}
	if (env && (err = cli_parse_config(o, env, true)))
		goto bad_config;
	if ((err = swrk_opts_map(ro, o, a, msg, MSG_LEN)))
		return err;
	if (ro->config_file && (err = cli_parse_config(o, ro->config_file, false))) {
		snprintf(msg, MSG_LEN, "stasis: config_file: %s cannot be applied (stasis said why on "
				       "its stderr)", ro->config_file);
		return err;
	}
	o->fault_inject = getenv("STASIS_FAULT"); /* as on the command line, for tests */
	return 0;
bad_config:
	snprintf(msg, MSG_LEN, "stasis: a default configuration file (/etc/criu/default.conf, "
			       "~/.criu/default.conf or $CRIU_CONFIG_FILE) cannot be applied (stasis "
			       "said why on its stderr)");
	return err;
}

static int open_log(const struct stasis_opts *o, const CriuOpts *ro, int work_fd, char *msg)
{
	char path[PATH_MAX];

	if ((ro->has_log_to_stderr && ro->log_to_stderr) || !o->log_file || !strcmp(o->log_file, "-"))
		return log_init(o->verbosity, NULL);
	if (o->log_file[0] == '/') /* from a configuration file */
		snprintf(path, sizeof(path), "%s", o->log_file);
	else
		snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", work_fd, o->log_file);
	if (log_init(o->verbosity, path)) {
		snprintf(msg, MSG_LEN, "stasis: log_file: cannot open %s in the work directory: %m",
			 o->log_file);
		return -EIO;
	}
	return 0;
}

/*
 * The request's criu_opts in the log, one "name=value" per field the engine set (lists by
 * their length): what an engine asked for is the first question when it fails.
 */
static void log_request_opts(const CriuOpts *ro)
{
	const ProtobufCMessageDescriptor *d = ro->base.descriptor;
	const char *base = (const char *)ro;
	char line[2048];
	size_t n = 0;

	for (unsigned i = 0; i < d->n_fields && n < sizeof(line) - 64; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *v = base + f->offset;
		size_t room = sizeof(line) - n;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t count = *(const size_t *)(base + f->quantifier_offset);
			if (count)
				n += snprintf(line + n, room, " %s[%zu]", f->name, count);
			continue;
		}
		if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) {
			const char *str = *(const char *const *)v;
			if (str && f->type == PROTOBUF_C_TYPE_STRING)
				n += snprintf(line + n, room, " %s=%.200s", f->name, str);
			else if (str)
				n += snprintf(line + n, room, " %s", f->name);
			continue;
		}
		if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
		    !*(const protobuf_c_boolean *)(base + f->quantifier_offset))
			continue;
		if (f->type == PROTOBUF_C_TYPE_BOOL)
			n += snprintf(line + n, room, " %s=%d", f->name, *(const protobuf_c_boolean *)v);
		else if (f->type == PROTOBUF_C_TYPE_INT32 || f->type == PROTOBUF_C_TYPE_ENUM)
			n += snprintf(line + n, room, " %s=%d", f->name, *(const int32_t *)v);
		else if (f->type == PROTOBUF_C_TYPE_UINT32)
			n += snprintf(line + n, room, " %s=%u", f->name, *(const uint32_t *)v);
	}
	pr_info("swrk: criu_opts:%s", n ? line : " (none)");
}

/* cr_errmsg of a failed run: the engine's first error (the cause) and its last (what failed). */
static void run_errmsg(char *msg, int err, const char *verb)
{
	const char *first = log_first_error(), *last = log_last_error();

	if (!first)
		snprintf(msg, MSG_LEN, "stasis: %s failed: %s", verb, strerror(-err));
	else if (!strcmp(first, last))
		snprintf(msg, MSG_LEN, "stasis: %s", first);
	else
		snprintf(msg, MSG_LEN, "stasis: %s (%s)", first, last);
}

/* DUMP or RESTORE: 0, or a negative errno with rp->msg saying why. */
static int handle_run(const struct swrk_conn *c, const CriuReq *req, struct reply *rp)
{
	const CriuOpts *ro = req->opts;
	bool restore = req->type == CRIU_REQ_TYPE__RESTORE;
	bool pre_dump = req->type == CRIU_REQ_TYPE__PRE_DUMP || req->type == CRIU_REQ_TYPE__SINGLE_PRE_DUMP;
	const char *verb = restore ? "restore" : pre_dump ? "pre-dump" : "dump";
	struct swrk_run run = { .conn = c, .restore = restore };
	struct swrk_allocs allocs = { 0 };
	struct stasis_opts o;
	struct run_ctx ctx;
	int images_fd = -1, work_fd = -1, err;

	if (!ro) {
		snprintf(rp->msg, MSG_LEN, "stasis: %s: the request has no opts", verb);
		return -EINVAL;
	}
	if ((err = read_request_opts(ro, &o, &allocs, rp->msg)))
		goto out;
	run.notify_scripts = ro->has_notify_scripts && ro->notify_scripts;
	if (!restore && o.pid <= 0)
		o.pid = c->peer; /* criu's rule: no pid dumps the requesting process */
	if (restore)
		o.restore_detached = true; /* the engine waits for the tree, not for stasis */
	o.pre_dump = pre_dump;
	if ((err = open_run_dirs(c, ro, &images_fd, &work_fd, rp->msg)))
		goto out;
	if (!(o.images_dir = dir_name(images_fd, &allocs))) {
		snprintf(rp->msg, MSG_LEN, "stasis: %s: out of memory", verb);
		err = -ENOMEM;
		goto out;
	}
	if ((err = open_log(&o, ro, work_fd, rp->msg)))
		goto out;
	log_request_opts(ro);
	/* the engine reads cr_errmsg and the log; our stderr may be the restored container's */
	log_stderr(ro->has_log_to_stderr && ro->log_to_stderr);
	log_errors_reset();
	run_ctx_init(&ctx, &o, images_fd, work_fd);
	ctx.notify = swrk_notify;
	ctx.face = &run;
	err = restore ? cr_restore(&ctx) : pre_dump ? cr_pre_dump(&ctx) : cr_dump(&ctx);
	if (err)
		run_errmsg(rp->msg, err, verb);
	else
		stats_file_write(&ctx, restore);
	if (restore)
		rp->restore.pid = ctx.restored_pid;
	run_ctx_fini(&ctx);
	log_close();
	log_stderr(true);
out:
	if (images_fd >= 0)
		close(images_fd);
	if (work_fd >= 0)
		close(work_fd);
	cli_opts_free(&o);
	for (size_t i = 0; i < allocs.n; i++)
		free(allocs.v[i]);
	free(allocs.v);
	return err < 0 ? err : (err ? -EIO : 0);
}

/* The page server's child says where it listens (its port), or nothing if it failed. */
static void page_server_ready(void *arg, int port)
{
	int fd = *(int *)arg;

	if (write(fd, &port, sizeof(port)) != sizeof(port))
		pr_warn("PAGE_SERVER: the swrk that started the page server is gone");
	close(fd);
}

/* PAGE_SERVER: a page server for one session in a process of its own; its pid and port. */
static int handle_page_server(const struct swrk_conn *c, const CriuReq *req, struct reply *rp)
{
	const CriuOpts *ro = req->opts;
	struct swrk_allocs allocs = { 0 };
	struct stasis_opts o;
	struct run_ctx ctx;
	int images_fd = -1, work_fd = -1, p[2] = { -1, -1 }, port = 0, err;
	pid_t pid = -1;

	if (!ro || !ro->ps) {
		snprintf(rp->msg, MSG_LEN, "stasis: PAGE_SERVER: the request names no ps (port, address)");
		return -EINVAL;
	}
	if ((err = read_request_opts(ro, &o, &allocs, rp->msg)) ||
	    (err = open_run_dirs(c, ro, &images_fd, &work_fd, rp->msg)) ||
	    (err = open_log(&o, ro, work_fd, rp->msg)))
		goto out;
	if (!(o.images_dir = dir_name(images_fd, &allocs))) {
		snprintf(rp->msg, MSG_LEN, "stasis: PAGE_SERVER: out of memory");
		err = -ENOMEM;
		goto out;
	}
	if (pipe2(p, O_CLOEXEC) || (pid = fork()) < 0) {
		snprintf(rp->msg, MSG_LEN, "stasis: PAGE_SERVER: cannot start it: %m");
		err = -errno;
		goto out;
	}
	if (pid == 0) {
		close(p[0]);
		close(c->sk); /* the engine's conversation is swrk's */
		run_ctx_init(&ctx, &o, images_fd, work_fd);
		_exit(cr_page_server(&ctx, page_server_ready, &p[1]) ? 1 : 0);
	}
	close(p[1]);
	p[1] = -1;
	if (read_all(p[0], &port, sizeof(port)) != sizeof(port)) {
		waitpid(pid, NULL, 0);
		snprintf(rp->msg, MSG_LEN, "stasis: PAGE_SERVER: the page server stopped before it "
					   "listened (its log says why)");
		err = -EIO;
		goto out;
	}
	rp->ps.has_pid = rp->ps.has_port = true;
	rp->ps.pid = pid;
	rp->ps.port = port;
	rp->resp.ps = &rp->ps;
out:
	log_close();
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
	if (images_fd >= 0)
		close(images_fd);
	if (work_fd >= 0)
		close(work_fd);
	cli_opts_free(&o);
	for (size_t i = 0; i < allocs.n; i++)
		free(allocs.v[i]);
	free(allocs.v);
	return err;
}

/* ---- the other requests -------------------------------------------------------------- */

/* As `stasis check`, its report kept from the engine's stdout; the verdict line if it fails. */
static int handle_check(struct reply *rp)
{
	int tmp = memfd_create("stasis-check", MFD_CLOEXEC), saved = dup(STDOUT_FILENO), rc;
	struct stasis_opts o;
	char text[8192], *last;
	ssize_t n;

	if (tmp < 0 || saved < 0) {
		snprintf(rp->msg, MSG_LEN, "stasis: check: cannot capture its report: %m");
		if (tmp >= 0)
			close(tmp);
		return -EIO;
	}
	cli_opts_init(&o);
	fflush(stdout);
	dup2(tmp, STDOUT_FILENO);
	rc = cmd_check(&o);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	n = pread(tmp, text, sizeof(text) - 1, 0);
	close(tmp);
	if (!rc)
		return 0;
	text[n > 0 ? n : 0] = 0;
	while (n > 0 && text[n - 1] == '\n')
		text[--n] = 0;
	last = strrchr(text, '\n');
	snprintf(rp->msg, MSG_LEN, "stasis: check: %.900s", last ? last + 1 : text);
	return -EOPNOTSUPP;
}

/* A feature by criu's `check --feature` name, answered as `stasis check --feature` does. */
static protobuf_c_boolean supported(const char *name)
{
	char why[256];

	return criu_feature_check(name, why, sizeof(why)) == 1;
}

/* Each feature asked for, answered as the command line answers its criu name. */
static int handle_feature_check(const CriuReq *req, struct reply *rp)
{
	const CriuFeatures *asked = req->features;

	if (!asked) {
		snprintf(rp->msg, MSG_LEN, "stasis: FEATURE_CHECK: the request names no features");
		return -EINVAL;
	}
	if ((rp->features.has_mem_track = asked->has_mem_track))
		rp->features.mem_track = supported("mem_dirty_track");
	if ((rp->features.has_lazy_pages = asked->has_lazy_pages))
		rp->features.lazy_pages = supported("lazy_pages");
	if ((rp->features.has_pidfd_store = asked->has_pidfd_store))
		rp->features.pidfd_store = supported("pidfd_store");
	rp->resp.features = &rp->features;
	return 0;
}

/* A process of this swrk (a tree restored without rst_sibling): its wait status. */
static int handle_wait_pid(const CriuReq *req, struct reply *rp)
{
	int status;

	if (!req->has_pid) {
		snprintf(rp->msg, MSG_LEN, "stasis: WAIT_PID: the request names no pid");
		return -EINVAL;
	}
	while (waitpid(req->pid, &status, 0) < 0) {
		if (errno != EINTR) {
			snprintf(rp->msg, MSG_LEN, "stasis: WAIT_PID %u: %m (only a tree restored by this "
						   "swrk without rst_sibling is its child)", req->pid);
			return -errno;
		}
	}
	rp->resp.has_status = true;
	rp->resp.status = status;
	return 0;
}

static void handle_version(struct reply *rp)
{
	rp->version.major_number = CRIU_DIALECT_MAJOR;
	rp->version.minor_number = CRIU_DIALECT_MINOR;
	rp->version.has_sublevel = true;
	rp->version.sublevel = CRIU_DIALECT_SUBLEVEL;
	rp->version.name = "stasis";
	rp->resp.version = &rp->version;
}

static int handle(const struct swrk_conn *c, const CriuReq *req, struct reply *rp)
{
	int err;

	switch (req->type) {
	case CRIU_REQ_TYPE__VERSION:
		handle_version(rp);
		return 0;
	case CRIU_REQ_TYPE__CHECK:
		return handle_check(rp);
	case CRIU_REQ_TYPE__FEATURE_CHECK:
		return handle_feature_check(req, rp);
	case CRIU_REQ_TYPE__WAIT_PID:
		return handle_wait_pid(req, rp);
	case CRIU_REQ_TYPE__DUMP:
		if ((err = handle_run(c, req, rp)))
			return err;
		rp->resp.dump = &rp->dump;
		return 0;
	case CRIU_REQ_TYPE__RESTORE:
		if ((err = handle_run(c, req, rp)))
			return err;
		rp->resp.restore = &rp->restore;
		return 0;
	case CRIU_REQ_TYPE__NOTIFY:
		snprintf(rp->msg, MSG_LEN, "stasis: NOTIFY: an acknowledgement with no notification "
					   "waiting for it (no dump or restore is running)");
		return -EINVAL;
	case CRIU_REQ_TYPE__PRE_DUMP:
	case CRIU_REQ_TYPE__SINGLE_PRE_DUMP:
		return handle_run(c, req, rp); /* one round per request; the engine sends the next */
	case CRIU_REQ_TYPE__PAGE_SERVER:
	case CRIU_REQ_TYPE__PAGE_SERVER_CHLD:
		return handle_page_server(c, req, rp);
	case CRIU_REQ_TYPE__CPUINFO_DUMP:
	case CRIU_REQ_TYPE__CPUINFO_CHECK:
		snprintf(rp->msg, MSG_LEN, "stasis: CPUINFO: cpuinfo images are not supported; a "
					   "restore checks the saved xsave layout against this CPU");
		return -EOPNOTSUPP;
	default:
		snprintf(rp->msg, MSG_LEN, "stasis: request type %d is not known", (int)req->type);
		return -EINVAL;
	}
}

/* One packet in, one packet out: 0 if the request succeeded, else a negative errno. */
static int serve(const struct swrk_conn *c, const uint8_t *buf, size_t len)
{
	struct reply rp = { .resp = CRIU_RESP__INIT,
			    .version = CRIU_VERSION__INIT,
			    .features = CRIU_FEATURES__INIT,
			    .dump = CRIU_DUMP_RESP__INIT,
			    .restore = CRIU_RESTORE_RESP__INIT,
			    .ps = CRIU_PAGE_SERVER_INFO__INIT };
	CriuReq *req = len <= MAX_PACKET ? criu_req__unpack(NULL, len, buf) : NULL;
	int err, serr;

	if (!req) {
		rp.resp.type = CRIU_REQ_TYPE__EMPTY;
		snprintf(rp.msg, MSG_LEN, "stasis: a malformed request (%zu bytes): not a criu_req", len);
		err = -EBADMSG;
	} else {
		rp.resp.type = req->type;
		err = handle(c, req, &rp);
	}
	rp.resp.success = err == 0;
	if (err) {
		rp.resp.has_cr_errno = true;
		rp.resp.cr_errno = -err;
		rp.resp.cr_errmsg = rp.msg;
	}
	if ((serr = send_resp(c->sk, &rp.resp, -1)))
		fprintf(stderr, "stasis swrk: cannot send the answer: %s\n", strerror(-serr));
	if (req)
		criu_req__free_unpacked(req, NULL);
	return err ? err : serr;
}

int cmd_swrk(int argc, char **argv)
{
	struct swrk_conn c;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	int type, last = 0, err;
	socklen_t tlen = sizeof(type);
	char *end;

	if (argc != 2 || (c.sk = strtol(argv[1], &end, 10), *end) || c.sk < 0) {
		fprintf(stderr, "usage: stasis swrk FD (FD: one end of a SOCK_SEQPACKET socketpair)\n");
		return 1;
	}
	if (getsockopt(c.sk, SOL_SOCKET, SO_TYPE, &type, &tlen) || type != SOCK_SEQPACKET) {
		fprintf(stderr, "stasis swrk: fd %d is not a SOCK_SEQPACKET socket\n", c.sk);
		return 1;
	}
	c.peer = getsockopt(c.sk, SOL_SOCKET, SO_PEERCRED, &cred, &clen) ? getppid() : cred.pid;
	fcntl(c.sk, F_SETFD, FD_CLOEXEC);
	for (;;) {
		uint8_t *buf = NULL;
		size_t len = 0;
		err = recv_packet(c.sk, &buf, &len);
		if (err > 0)
			break;
		if (err < 0) {
			fprintf(stderr, "stasis swrk: reading fd %d: %s\n", c.sk, strerror(-err));
			return 1;
		}
		last = serve(&c, buf, len);
		free(buf);
	}
	return last ? 1 : 0;
}
