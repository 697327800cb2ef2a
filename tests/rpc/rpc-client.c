/*
 * rpc-client: speaks criu's RPC to `stasis swrk FD` the way engines do (a SOCK_SEQPACKET
 * socketpair, one criu_req per packet, one criu_resp per packet), for tests/rpc/run-rpc.sh.
 *
 *   rpc-client SWRK_BINARY REQUEST...
 *   rpc-client --stats FILE      a stats-dump / stats-restore file decoded as go-criu reads it
 *                                (magic 0x55105940, magic 0x57093306, length, stats_entry)
 *
 * Every REQUEST goes over the same connection, in order. A REQUEST is one word, a type then
 * comma-separated settings: "version", "check", "features", "garbage" (bytes that are not a
 * criu_req), "notify" (an acknowledgement with nothing to acknowledge), "pre_dump",
 * "page_server", "wait_pid,pid=N", or "dump,..." / "restore,..." with:
 *   images=DIR work=DIR (opened here close-on-exec: the server must take them from us, as it
 *   does from runc), pid=N, log=NAME, level=N, notify=1 (notify_scripts), fail_at=POINT (answer
 *   that notification with a failure), leave_running=1, shell_job=1, ext_unix_sk=1,
 *   file_locks=1, lazy_pages=1, track_mem=1, rst_sibling=1, root=PATH, config=FILE,
 *   ext_mnt=KEY:VAL, external=STR, inherit=FD:KEY, empty_ns=N, images_fd=N (a raw number).
 *
 * Prints one line per packet received: "notify SCRIPT pid=N [fd]" or "TYPE success=0|1 ..."
 * with errno, errmsg, pid, version, features and status when the answer has them; then
 * "swrk exit=N". Exit code: 0 when every request got its answer, 2 on a protocol failure
 * (the connection dropped, an answer that does not parse).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rpc.pb-c.h"
#include "stats.pb-c.h"

#define MAX_REQS 16
#define MAX_LIST 16

struct request {
	CriuReq req;
	CriuOpts opts;
	CriuFeatures features;
	ExtMountMap mnt[MAX_LIST], *mntp[MAX_LIST];
	InheritFd inh[MAX_LIST], *inhp[MAX_LIST];
	char *ext[MAX_LIST];
	const char *fail_at;
	bool garbage;
};

static void die(const char *what)
{
	fprintf(stderr, "rpc-client: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int open_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die(path);
	return fd;
}

static bool flag(const char *key, const char *k, const char *v, protobuf_c_boolean *has,
		 protobuf_c_boolean *field)
{
	if (strcmp(key, k))
		return false;
	*has = true;
	*field = atoi(v) != 0;
	return true;
}

static void parse_setting(struct request *r, char *kv)
{
	CriuOpts *o = &r->opts;
	char *v = strchr(kv, '=');

	if (!v) {
		fprintf(stderr, "rpc-client: setting '%s' has no '='\n", kv);
		exit(2);
	}
	*v++ = 0;
	if (!strcmp(kv, "images"))
		o->images_dir_fd = open_dir(v);
	else if (!strcmp(kv, "images_fd"))
		o->images_dir_fd = atoi(v);
	else if (!strcmp(kv, "work")) {
		o->has_work_dir_fd = true;
		o->work_dir_fd = open_dir(v);
	} else if (!strcmp(kv, "pid")) {
		o->has_pid = r->req.has_pid = true;
		o->pid = r->req.pid = atoi(v);
	} else if (!strcmp(kv, "log"))
		o->log_file = v;
	else if (!strcmp(kv, "level")) {
		o->has_log_level = true;
		o->log_level = atoi(v);
	} else if (!strcmp(kv, "empty_ns")) {
		o->has_empty_ns = true;
		o->empty_ns = strtoul(v, NULL, 0);
	} else if (!strcmp(kv, "root"))
		o->root = v;
	else if (!strcmp(kv, "config"))
		o->config_file = v;
	else if (!strcmp(kv, "fail_at"))
		r->fail_at = v;
	else if (!strcmp(kv, "ext_mnt") && o->n_ext_mnt < MAX_LIST) {
		char *c = strchr(v, ':');
		ExtMountMap *m = &r->mnt[o->n_ext_mnt];
		ext_mount_map__init(m);
		if (c)
			*c++ = 0;
		m->key = v;
		m->val = c ? c : v;
		r->mntp[o->n_ext_mnt++] = m;
		o->ext_mnt = r->mntp;
	} else if (!strcmp(kv, "inherit") && o->n_inherit_fd < MAX_LIST) {
		InheritFd *i = &r->inh[o->n_inherit_fd];
		inherit_fd__init(i);
		i->fd = atoi(v);
		i->key = strchr(v, ':') ? strchr(v, ':') + 1 : v;
		r->inhp[o->n_inherit_fd++] = i;
		o->inherit_fd = r->inhp;
	} else if (!strcmp(kv, "external") && o->n_external < MAX_LIST) {
		r->ext[o->n_external++] = v;
		o->external = r->ext;
	} else if (!(flag(kv, "notify", v, &o->has_notify_scripts, &o->notify_scripts) ||
		     flag(kv, "leave_running", v, &o->has_leave_running, &o->leave_running) ||
		     flag(kv, "shell_job", v, &o->has_shell_job, &o->shell_job) ||
		     flag(kv, "ext_unix_sk", v, &o->has_ext_unix_sk, &o->ext_unix_sk) ||
		     flag(kv, "file_locks", v, &o->has_file_locks, &o->file_locks) ||
		     flag(kv, "lazy_pages", v, &o->has_lazy_pages, &o->lazy_pages) ||
		     flag(kv, "track_mem", v, &o->has_track_mem, &o->track_mem) ||
		     flag(kv, "rst_sibling", v, &o->has_rst_sibling, &o->rst_sibling))) {
		fprintf(stderr, "rpc-client: unknown setting '%s'\n", kv);
		exit(2);
	}
}

static const struct {
	const char *name;
	CriuReqType type;
} types[] = {
	{ "version", CRIU_REQ_TYPE__VERSION },	 { "check", CRIU_REQ_TYPE__CHECK },
	{ "features", CRIU_REQ_TYPE__FEATURE_CHECK }, { "dump", CRIU_REQ_TYPE__DUMP },
	{ "restore", CRIU_REQ_TYPE__RESTORE },	 { "wait_pid", CRIU_REQ_TYPE__WAIT_PID },
	{ "notify", CRIU_REQ_TYPE__NOTIFY },	 { "pre_dump", CRIU_REQ_TYPE__PRE_DUMP },
	{ "page_server", CRIU_REQ_TYPE__PAGE_SERVER }, { "garbage", CRIU_REQ_TYPE__EMPTY },
};

static void parse_request(struct request *r, char *word)
{
	char *save, *tok = strtok_r(word, ",", &save);
	size_t i;

	criu_req__init(&r->req);
	criu_opts__init(&r->opts);
	criu_features__init(&r->features);
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(tok, types[i].name))
			break;
	if (i == sizeof(types) / sizeof(types[0])) {
		fprintf(stderr, "rpc-client: unknown request type '%s'\n", tok);
		exit(2);
	}
	r->req.type = types[i].type;
	r->garbage = !strcmp(tok, "garbage");
	if (r->req.type == CRIU_REQ_TYPE__DUMP || r->req.type == CRIU_REQ_TYPE__RESTORE)
		r->req.opts = &r->opts;
	if (r->req.type == CRIU_REQ_TYPE__FEATURE_CHECK) {
		r->features.has_mem_track = r->features.has_lazy_pages = true;
		r->features.has_pidfd_store = true;
		r->features.mem_track = r->features.lazy_pages = r->features.pidfd_store = true;
		r->req.features = &r->features;
	}
	if (r->req.type == CRIU_REQ_TYPE__NOTIFY) {
		r->req.has_notify_success = true;
		r->req.notify_success = true;
	}
	while ((tok = strtok_r(NULL, ",", &save)))
		parse_setting(r, tok);
}

static void send_req(int sk, const CriuReq *req)
{
	size_t len = criu_req__get_packed_size(req);
	unsigned char *buf = malloc(len + 1);

	criu_req__pack(req, buf);
	if (send(sk, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
		die("send");
	free(buf);
}

/* One answer; an fd that came with it in *fd (else -1). */
static CriuResp *recv_resp(int sk, int *fd)
{
	static unsigned char buf[1 << 20];
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(sk, &mh, MSG_CMSG_CLOEXEC);
	CriuResp *resp;

	*fd = -1;
	if (n <= 0) {
		printf("connection %s\n", n == 0 ? "closed by swrk" : "failed");
		exit(2);
	}
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(c), sizeof(int));
	resp = criu_resp__unpack(NULL, n, buf);
	if (!resp) {
		printf("an answer that is not a criu_resp (%zd bytes)\n", n);
		exit(2);
	}
	return resp;
}

static void print_resp(const CriuResp *r)
{
	const char *name = "EMPTY";

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].type == r->type && strcmp(types[i].name, "garbage"))
			name = types[i].name;
	printf("%s success=%d", name, r->success);
	if (r->has_cr_errno)
		printf(" errno=%d", r->cr_errno);
	if (r->restore)
		printf(" pid=%d", r->restore->pid);
	if (r->version)
		printf(" version=%d.%d.%d name=%s", r->version->major_number, r->version->minor_number,
		       r->version->has_sublevel ? r->version->sublevel : -1,
		       r->version->name ? r->version->name : "-");
	if (r->features)
		printf(" features=mem_track:%d,lazy_pages:%d,pidfd_store:%d", r->features->mem_track,
		       r->features->lazy_pages, r->features->pidfd_store);
	if (r->has_status)
		printf(" status=%d", r->status);
	if (r->type == CRIU_REQ_TYPE__DUMP && r->success && !r->dump)
		printf(" NO-DUMP-PART");
	if (r->cr_errmsg)
		printf(" errmsg=\"%s\"", r->cr_errmsg);
	printf("\n");
	fflush(stdout);
}

/* Sends one request and reads until its answer, acknowledging notifications on the way. */
static void run_request(int sk, const struct request *r)
{
	for (bool sent = false;;) {
		int fd;
		if (!sent) {
			if (r->garbage)
				send(sk, "\xff\xff\xff\xff garbage", 13, MSG_NOSIGNAL);
			else
				send_req(sk, &r->req);
			sent = true;
		}
		CriuResp *resp = recv_resp(sk, &fd);
		if (resp->type == CRIU_REQ_TYPE__NOTIFY && resp->notify && r->req.type != CRIU_REQ_TYPE__NOTIFY) {
			const char *script = resp->notify->script ? resp->notify->script : "?";
			CriuReq ack = CRIU_REQ__INIT;
			printf("notify %s pid=%d%s\n", script, resp->notify->pid, fd >= 0 ? " fd" : "");
			fflush(stdout);
			ack.type = CRIU_REQ_TYPE__NOTIFY;
			ack.has_notify_success = true;
			ack.notify_success = !(r->fail_at && !strcmp(r->fail_at, script));
			send_req(sk, &ack);
			if (fd >= 0)
				close(fd);
			criu_resp__free_unpacked(resp, NULL);
			continue;
		}
		print_resp(resp);
		criu_resp__free_unpacked(resp, NULL);
		return;
	}
}

/* The stats file: "dump freezing_time=N ..." or "restore ...", or why it does not decode. */
static int print_stats(const char *path)
{
	static unsigned char buf[65536];
	uint32_t head[3];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
	StatsEntry *e;

	if (f)
		fclose(f);
	if (n < 12) {
		printf("stats: %s: shorter than its header\n", path);
		return 1;
	}
	memcpy(head, buf, sizeof(head));
	if (head[0] != 0x55105940 || head[1] != 0x57093306 || head[2] != n - 12) {
		printf("stats: %s: header %#x %#x length %u of %zu bytes\n", path, head[0], head[1],
		       head[2], n - 12);
		return 1;
	}
	e = stats_entry__unpack(NULL, head[2], buf + 12);
	if (!e) {
		printf("stats: %s: not a stats_entry\n", path);
		return 1;
	}
	if (e->dump)
		printf("dump freezing_time=%u frozen_time=%u memdump_time=%u memwrite_time=%u "
		       "pages_scanned=%llu pages_skipped_parent=%llu pages_written=%llu\n",
		       e->dump->freezing_time, e->dump->frozen_time, e->dump->memdump_time,
		       e->dump->memwrite_time, (unsigned long long)e->dump->pages_scanned,
		       (unsigned long long)e->dump->pages_skipped_parent,
		       (unsigned long long)e->dump->pages_written);
	if (e->restore)
		printf("restore forking_time=%u restore_time=%u pages_restored=%llu\n",
		       e->restore->forking_time, e->restore->restore_time,
		       (unsigned long long)e->restore->pages_restored);
	stats_entry__free_unpacked(e, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	static struct request reqs[MAX_REQS];
	int sv[2], status, n = argc - 2;
	char fdnum[16];
	pid_t pid;

	if (argc == 3 && !strcmp(argv[1], "--stats"))
		return print_stats(argv[2]);
	if (argc < 3 || n > MAX_REQS) {
		fprintf(stderr, "usage: rpc-client SWRK_BINARY REQUEST... (see the source)\n");
		return 2;
	}
	for (int i = 0; i < n; i++)
		parse_request(&reqs[i], argv[i + 2]);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		die("socketpair");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		int fd = dup(sv[1]); /* without close-on-exec */
		snprintf(fdnum, sizeof(fdnum), "%d", fd);
		execl(argv[1], argv[1], "swrk", fdnum, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	for (int i = 0; i < n; i++)
		run_request(sv[0], &reqs[i]);
	shutdown(sv[0], SHUT_WR);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	printf("swrk exit=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 0;
}
