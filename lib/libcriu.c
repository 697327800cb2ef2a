/*
 * libcriu.so.2: criu's C library interface (lib/criu.h) over criu's RPC. A call packs its
 * options into one criu_req, reaches the service (by default it starts `criu swrk FD` as a
 * child over a SOCK_SEQPACKET socketpair, the binary found on PATH or given with
 * criu_set_service_binary), hands each NOTIFY to the caller's callback and acknowledges it,
 * and returns what the final criu_resp says. Only the criu_* functions are exported.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "criu.h"
#include "rpc.pb-c.h"

#define API __attribute__((visibility("default")))

struct criu_opts {
	CriuOpts *rpc; /* every allocation in it is malloc'd: freed with criu_opts__free_unpacked */
	criu_notify_cb notify;
	enum criu_service_comm comm;
	char *address; /* CRIU_COMM_SK */
	int fd;        /* CRIU_COMM_FD */
	char *binary;  /* CRIU_COMM_BIN */
};

static criu_opts *global_opts;
static int orphan_pts_master_fd = -1;
static char last_errmsg[1024];

/* ---- options ------------------------------------------------------------------------ */

API int criu_local_init_opts(criu_opts **out)
{
	criu_opts *o = calloc(1, sizeof(*o));

	if (!o || !(o->rpc = malloc(sizeof(*o->rpc))) || !(o->binary = strdup("criu"))) {
		if (o)
			free(o->rpc);
		free(o);
		return -ENOMEM;
	}
	criu_opts__init(o->rpc);
	o->comm = CRIU_COMM_BIN;
	o->fd = -1;
	*out = o;
	return 0;
}

API void criu_local_free_opts(criu_opts *o)
{
	if (!o)
		return;
	criu_opts__free_unpacked(o->rpc, NULL);
	free(o->address);
	free(o->binary);
	free(o);
}

API int criu_init_opts(void)
{
	criu_local_free_opts(global_opts);
	global_opts = NULL;
	return criu_local_init_opts(&global_opts);
}

API void criu_free_opts(void)
{
	criu_local_free_opts(global_opts);
	global_opts = NULL;
}

static int set_string(char **field, const char *value)
{
	char *s = value ? strdup(value) : NULL;

	if (value && !s)
		return -ENOMEM;
	free(*field);
	*field = s;
	return 0;
}

/* Appends item to a repeated field (*v, *n): 0 or -ENOMEM. */
static int append(void ***v, size_t *n, void *item)
{
	void **nv;

	if (!item)
		return -ENOMEM;
	nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = item;
	*v = nv;
	return 0;
}
#define APPEND(o, field, item) append((void ***)&(o)->rpc->field, &(o)->rpc->n_##field, (item))

API int criu_local_set_service_address(criu_opts *o, const char *path)
{
	o->comm = CRIU_COMM_SK;
	return set_string(&o->address, path ? path : "/var/run/criu_service.socket");
}

API void criu_local_set_service_fd(criu_opts *o, int fd)
{
	o->comm = CRIU_COMM_FD;
	o->fd = fd;
}

API int criu_local_set_service_binary(criu_opts *o, const char *path)
{
	o->comm = CRIU_COMM_BIN;
	return set_string(&o->binary, path ? path : "criu");
}

API void criu_local_set_notify_cb(criu_opts *o, criu_notify_cb cb)
{
	o->notify = cb;
	o->rpc->has_notify_scripts = true;
	o->rpc->notify_scripts = cb != NULL;
}

API void criu_local_set_images_dir_fd(criu_opts *o, int fd)
{
	o->rpc->images_dir_fd = fd;
}

/* Setters of plain fields, each with its global twin. */
#define SCALAR(name, field, type)                                              \
	API void criu_local_set_##name(criu_opts *o, type v)                  \
	{                                                                      \
		o->rpc->has_##field = true;                                   \
		o->rpc->field = v;                                            \
	}                                                                      \
	API void criu_set_##name(type v)                                       \
	{                                                                      \
		if (global_opts)                                               \
			criu_local_set_##name(global_opts, v);                \
	}
#define STRING(name, field)                                                    \
	API int criu_local_set_##name(criu_opts *o, const char *v)            \
	{                                                                      \
		return set_string(&o->rpc->field, v);                         \
	}                                                                      \
	API int criu_set_##name(const char *v)                                 \
	{                                                                      \
		return global_opts ? criu_local_set_##name(global_opts, v) : -EINVAL; \
	}

SCALAR(pid, pid, int)
SCALAR(work_dir_fd, work_dir_fd, int)
SCALAR(leave_running, leave_running, bool)
SCALAR(ext_unix_sk, ext_unix_sk, bool)
SCALAR(tcp_established, tcp_established, bool)
SCALAR(tcp_skip_in_flight, tcp_skip_in_flight, bool)
SCALAR(tcp_close, tcp_close, bool)
SCALAR(weak_sysctls, weak_sysctls, bool)
SCALAR(evasive_devices, evasive_devices, bool)
SCALAR(shell_job, shell_job, bool)
SCALAR(orphan_pts_master, orphan_pts_master, bool)
SCALAR(file_locks, file_locks, bool)
SCALAR(track_mem, track_mem, bool)
SCALAR(auto_dedup, auto_dedup, bool)
SCALAR(force_irmap, force_irmap, bool)
SCALAR(link_remap, link_remap, bool)
SCALAR(log_level, log_level, int)
SCALAR(cpu_cap, cpu_cap, unsigned int)
SCALAR(manage_cgroups, manage_cgroups, bool)
SCALAR(timeout, timeout, unsigned int)
SCALAR(auto_ext_mnt, auto_ext_mnt, bool)
SCALAR(ext_sharing, ext_sharing, bool)
SCALAR(ext_masters, ext_masters, bool)
SCALAR(ghost_limit, ghost_limit, unsigned int)
SCALAR(pidfd_store_sk, pidfd_store_sk, int)
SCALAR(mntns_compat_mode, mntns_compat_mode, bool)
STRING(parent_images, parent_img)
STRING(log_file, log_file)
STRING(root, root)
STRING(freeze_cgroup, freeze_cgroup)
STRING(lsm_profile, lsm_profile)
STRING(lsm_mount_context, lsm_mount_context)
STRING(config_file, config_file)

API void criu_local_set_manage_cgroups_mode(criu_opts *o, enum criu_cg_mode mode)
{
	o->rpc->has_manage_cgroups_mode = true;
	o->rpc->manage_cgroups_mode = (CriuCgMode)mode;
}

API int criu_local_set_pre_dump_mode(criu_opts *o, enum criu_pre_dump_mode mode)
{
	if (mode != CRIU_PRE_DUMP_SPLICE && mode != CRIU_PRE_DUMP_READ)
		return -EINVAL;
	o->rpc->has_pre_dump_mode = true;
	o->rpc->pre_dump_mode = (CriuPreDumpMode)mode;
	return 0;
}

API int criu_local_set_network_lock(criu_opts *o, enum criu_network_lock_method method)
{
	if (method < CRIU_NETWORK_LOCK_IPTABLES || method > CRIU_NETWORK_LOCK_SKIP)
		return -EINVAL;
	o->rpc->has_network_lock = true;
	o->rpc->network_lock = (CriuNetworkLockMethod)method;
	return 0;
}

API int criu_local_set_exec_cmd(criu_opts *o, int argc, char *argv[])
{
	for (int i = 0; i < argc; i++) {
		int err = APPEND(o, exec_cmd, strdup(argv[i]));
		if (err)
			return err;
	}
	return 0;
}

API int criu_local_set_page_server_address_port(criu_opts *o, const char *address, int port)
{
	if (!o->rpc->ps) {
		if (!(o->rpc->ps = malloc(sizeof(*o->rpc->ps))))
			return -ENOMEM;
		criu_page_server_info__init(o->rpc->ps);
	}
	o->rpc->ps->has_port = true;
	o->rpc->ps->port = port;
	return set_string(&o->rpc->ps->address, address);
}

static char *dup_or_null(const char *s, int *err)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*err = -ENOMEM;
	return d;
}

API int criu_local_add_ext_mount(criu_opts *o, const char *key, const char *val)
{
	ExtMountMap *m = malloc(sizeof(*m));
	int err = 0;

	if (!m)
		return -ENOMEM;
	ext_mount_map__init(m);
	m->key = dup_or_null(key, &err);
	m->val = dup_or_null(val, &err);
	if (err || APPEND(o, ext_mnt, m)) {
		ext_mount_map__free_unpacked(m, NULL);
		return -ENOMEM;
	}
	return 0;
}

API int criu_local_add_veth_pair(criu_opts *o, const char *in, const char *out)
{
	CriuVethPair *p = malloc(sizeof(*p));
	int err = 0;

	if (!p)
		return -ENOMEM;
	criu_veth_pair__init(p);
	p->if_in = dup_or_null(in, &err);
	p->if_out = dup_or_null(out, &err);
	if (err || APPEND(o, veths, p)) {
		criu_veth_pair__free_unpacked(p, NULL);
		return -ENOMEM;
	}
	return 0;
}

API int criu_local_add_cg_root(criu_opts *o, const char *ctrl, const char *path)
{
	CgroupRoot *r = malloc(sizeof(*r));
	int err = 0;

	if (!r)
		return -ENOMEM;
	cgroup_root__init(r);
	r->ctrl = dup_or_null(ctrl, &err);
	r->path = dup_or_null(path, &err);
	if (err || APPEND(o, cg_root, r)) {
		cgroup_root__free_unpacked(r, NULL);
		return -ENOMEM;
	}
	return 0;
}

API int criu_local_add_inherit_fd(criu_opts *o, int fd, const char *key)
{
	InheritFd *f = malloc(sizeof(*f));
	int err = 0;

	if (!f)
		return -ENOMEM;
	inherit_fd__init(f);
	f->fd = fd;
	f->key = dup_or_null(key, &err);
	if (err || APPEND(o, inherit_fd, f)) {
		inherit_fd__free_unpacked(f, NULL);
		return -ENOMEM;
	}
	return 0;
}

API int criu_local_join_ns_add(criu_opts *o, const char *ns, const char *ns_file,
			       const char *extra_opt)
{
	JoinNamespace *j = malloc(sizeof(*j));
	int err = 0;

	if (!j)
		return -ENOMEM;
	join_namespace__init(j);
	j->ns = dup_or_null(ns, &err);
	j->ns_file = dup_or_null(ns_file, &err);
	j->extra_opt = dup_or_null(extra_opt, &err);
	if (err || APPEND(o, join_ns, j)) {
		join_namespace__free_unpacked(j, NULL);
		return -ENOMEM;
	}
	return 0;
}

API int criu_local_add_unix_sk(criu_opts *o, unsigned int inode)
{
	UnixSk *u = malloc(sizeof(*u));

	if (!u)
		return -ENOMEM;
	unix_sk__init(u);
	u->inode = inode;
	if (APPEND(o, unix_sk_ino, u)) {
		free(u);
		return -ENOMEM;
	}
	return 0;
}

API int criu_local_add_enable_fs(criu_opts *o, const char *fs)
{
	return APPEND(o, enable_fs, strdup(fs));
}

API int criu_local_add_skip_mnt(criu_opts *o, const char *mnt)
{
	return APPEND(o, skip_mnt, strdup(mnt));
}

API int criu_local_add_irmap_path(criu_opts *o, const char *path)
{
	return APPEND(o, irmap_scan_paths, strdup(path));
}

API int criu_local_add_external(criu_opts *o, const char *key)
{
	return APPEND(o, external, strdup(key));
}

/* The global twins of the setters above. */
#define GLOBAL_INT(call) return global_opts ? (call) : -EINVAL
#define GLOBAL_VOID(call) \
	do {                      \
		if (global_opts)  \
			call;     \
	} while (0)

API int criu_set_service_address(const char *path) { GLOBAL_INT(criu_local_set_service_address(global_opts, path)); }
API void criu_set_service_fd(int fd) { GLOBAL_VOID(criu_local_set_service_fd(global_opts, fd)); }
API int criu_set_service_binary(const char *path) { GLOBAL_INT(criu_local_set_service_binary(global_opts, path)); }
API void criu_set_notify_cb(criu_notify_cb cb) { GLOBAL_VOID(criu_local_set_notify_cb(global_opts, cb)); }
API void criu_set_images_dir_fd(int fd) { GLOBAL_VOID(criu_local_set_images_dir_fd(global_opts, fd)); }
API void criu_set_manage_cgroups_mode(enum criu_cg_mode mode) { GLOBAL_VOID(criu_local_set_manage_cgroups_mode(global_opts, mode)); }
API int criu_set_pre_dump_mode(enum criu_pre_dump_mode mode) { GLOBAL_INT(criu_local_set_pre_dump_mode(global_opts, mode)); }
API int criu_set_network_lock(enum criu_network_lock_method m) { GLOBAL_INT(criu_local_set_network_lock(global_opts, m)); }
API int criu_set_exec_cmd(int argc, char *argv[]) { GLOBAL_INT(criu_local_set_exec_cmd(global_opts, argc, argv)); }
API int criu_set_page_server_address_port(const char *a, int p) { GLOBAL_INT(criu_local_set_page_server_address_port(global_opts, a, p)); }
API int criu_add_ext_mount(const char *k, const char *v) { GLOBAL_INT(criu_local_add_ext_mount(global_opts, k, v)); }
API int criu_add_veth_pair(const char *in, const char *out) { GLOBAL_INT(criu_local_add_veth_pair(global_opts, in, out)); }
API int criu_add_cg_root(const char *ctrl, const char *path) { GLOBAL_INT(criu_local_add_cg_root(global_opts, ctrl, path)); }
API int criu_add_inherit_fd(int fd, const char *key) { GLOBAL_INT(criu_local_add_inherit_fd(global_opts, fd, key)); }
API int criu_join_ns_add(const char *ns, const char *f, const char *x) { GLOBAL_INT(criu_local_join_ns_add(global_opts, ns, f, x)); }
API int criu_add_unix_sk(unsigned int inode) { GLOBAL_INT(criu_local_add_unix_sk(global_opts, inode)); }
API int criu_add_enable_fs(const char *fs) { GLOBAL_INT(criu_local_add_enable_fs(global_opts, fs)); }
API int criu_add_skip_mnt(const char *mnt) { GLOBAL_INT(criu_local_add_skip_mnt(global_opts, mnt)); }
API int criu_add_irmap_path(const char *path) { GLOBAL_INT(criu_local_add_irmap_path(global_opts, path)); }
API int criu_add_external(const char *key) { GLOBAL_INT(criu_local_add_external(global_opts, key)); }

API int criu_notify_pid(criu_notify_arg_t na)
{
	const CriuNotify *n = (const CriuNotify *)na;

	return n && n->has_pid ? n->pid : 0;
}

API int criu_get_orphan_pts_master_fd(void)
{
	return orphan_pts_master_fd;
}

API const char *criu_get_last_errmsg(void)
{
	return last_errmsg[0] ? last_errmsg : NULL;
}

/* ---- the service ---------------------------------------------------------------------- */

/* A connection to the service; *child is the swrk process started for it (else 0). */
static int connect_service(const criu_opts *o, pid_t *child)
{
	int sv[2];
	char num[16];

	*child = 0;
	if (o->comm == CRIU_COMM_FD)
		return o->fd;
	if (o->comm == CRIU_COMM_SK) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		int sk = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (sk < 0)
			return -errno;
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", o->address);
		if (connect(sk, (struct sockaddr *)&a, sizeof(a))) {
			int err = -errno;
			close(sk);
			return err;
		}
		return sk;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	snprintf(num, sizeof(num), "%d", sv[1]);
	*child = fork();
	if (*child < 0) {
		int err = -errno;
		close(sv[0]);
		close(sv[1]);
		return err;
	}
	if (*child == 0) {
		fcntl(sv[1], F_SETFD, 0); /* the one fd swrk must inherit */
		execlp(o->binary, o->binary, "swrk", num, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	return sv[0];
}

static int send_req(int sk, const CriuReq *req)
{
	size_t len = criu_req__get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	criu_req__pack(req, buf);
	n = send(sk, buf, len, MSG_NOSIGNAL);
	free(buf);
	return n == (ssize_t)len ? 0 : -ECOMM;
}

/* The next answer; an fd passed with it in *fd (else -1). */
static int recv_resp(int sk, CriuResp **out, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t len = recv(sk, NULL, 0, MSG_PEEK | MSG_TRUNC);
	uint8_t *buf;

	*fd = -1;
	if (len <= 0 || !(buf = malloc(len)))
		return -ECOMM;
	iov = (struct iovec){ buf, (size_t)len };
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	if (recvmsg(sk, &mh, MSG_CMSG_CLOEXEC) != len) {
		free(buf);
		return -ECOMM;
	}
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(c), sizeof(int));
	*out = criu_resp__unpack(NULL, len, buf);
	free(buf);
	return *out ? 0 : -EBADMSG;
}

/* A notification: the callback's verdict goes back as a NOTIFY request. */
static int answer_notify(const criu_opts *o, int sk, CriuResp *resp, int fd)
{
	CriuReq ack = CRIU_REQ__INIT;
	int verdict = 0;

	if (fd >= 0 && resp->notify->script && !strcmp(resp->notify->script, "orphan-pts-master")) {
		if (orphan_pts_master_fd >= 0)
			close(orphan_pts_master_fd);
		orphan_pts_master_fd = fd;
	} else if (fd >= 0) {
		close(fd);
	}
	if (o->notify)
		verdict = o->notify(resp->notify->script, (criu_notify_arg_t)resp->notify);
	ack.type = CRIU_REQ_TYPE__NOTIFY;
	ack.has_notify_success = true;
	ack.notify_success = verdict == 0;
	return send_req(sk, &ack);
}

/* One request, its notifications on the way, its answer in *out: 0 or a negative errno. */
static int transact(const criu_opts *o, CriuReq *req, CriuResp **out)
{
	pid_t child;
	int sk = connect_service(o, &child), err, fd, status;

	*out = NULL;
	last_errmsg[0] = 0;
	if (sk < 0)
		return -ECOMM;
	err = send_req(sk, req);
	while (!err && !(err = recv_resp(sk, out, &fd))) {
		if ((*out)->type != CRIU_REQ_TYPE__NOTIFY || !(*out)->notify ||
		    req->type == CRIU_REQ_TYPE__NOTIFY)
			break;
		err = answer_notify(o, sk, *out, fd);
		criu_resp__free_unpacked(*out, NULL);
		*out = NULL;
	}
	if (o->comm != CRIU_COMM_FD)
		close(sk);
	if (child > 0)
		while (waitpid(child, &status, 0) < 0 && errno == EINTR)
			;
	if (err) {
		if (*out)
			criu_resp__free_unpacked(*out, NULL);
		*out = NULL;
		return err;
	}
	if (!(*out)->success) {
		if ((*out)->cr_errmsg)
			snprintf(last_errmsg, sizeof(last_errmsg), "%s", (*out)->cr_errmsg);
		errno = (*out)->has_cr_errno ? (*out)->cr_errno : 0;
		return -EBADE;
	}
	return 0;
}

static int simple_request(criu_opts *o, CriuReqType type, CriuResp **resp)
{
	CriuReq req = CRIU_REQ__INIT;

	if (!o)
		return -EINVAL;
	req.type = type;
	req.opts = o->rpc;
	return transact(o, &req, resp);
}

/* ---- the calls -------------------------------------------------------------------------- */

API int criu_local_check(criu_opts *o)
{
	CriuResp *resp;
	int err = simple_request(o, CRIU_REQ_TYPE__CHECK, &resp);

	if (resp)
		criu_resp__free_unpacked(resp, NULL);
	return err;
}

API int criu_local_dump(criu_opts *o)
{
	CriuResp *resp;
	int err = simple_request(o, CRIU_REQ_TYPE__DUMP, &resp);

	if (!err && resp->dump && resp->dump->has_restored && resp->dump->restored)
		err = 1;
	if (resp)
		criu_resp__free_unpacked(resp, NULL);
	return err;
}

API int criu_local_pre_dump(criu_opts *o)
{
	CriuResp *resp;
	int err = simple_request(o, CRIU_REQ_TYPE__PRE_DUMP, &resp);

	if (resp)
		criu_resp__free_unpacked(resp, NULL);
	return err;
}

static int restore(criu_opts *o)
{
	CriuResp *resp;
	int err = simple_request(o, CRIU_REQ_TYPE__RESTORE, &resp);

	if (!err)
		err = resp->restore ? resp->restore->pid : -EBADMSG;
	if (resp)
		criu_resp__free_unpacked(resp, NULL);
	return err;
}

API int criu_local_restore(criu_opts *o)
{
	return restore(o);
}

/* The restored root becomes the caller's child: swrk is started as one, and restores its
 * tree as its sibling. */
API int criu_local_restore_child(criu_opts *o)
{
	enum criu_service_comm comm = o->comm;
	protobuf_c_boolean had = o->rpc->has_rst_sibling, was = o->rpc->rst_sibling;
	int ret;

	o->comm = CRIU_COMM_BIN;
	o->rpc->has_rst_sibling = o->rpc->rst_sibling = true;
	ret = restore(o);
	o->comm = comm;
	o->rpc->has_rst_sibling = had;
	o->rpc->rst_sibling = was;
	return ret;
}

API int criu_local_get_version(criu_opts *o)
{
	CriuResp *resp;
	int err = simple_request(o, CRIU_REQ_TYPE__VERSION, &resp);

	if (!err) {
		const CriuVersion *v = resp->version;
		err = v ? v->major_number * 10000 + v->minor_number * 100 +
				  (v->has_sublevel ? v->sublevel : 0)
			: -EBADMSG;
	}
	if (resp)
		criu_resp__free_unpacked(resp, NULL);
	return err;
}

API int criu_local_check_version(criu_opts *o, int minimum)
{
	int v = criu_local_get_version(o);

	return v < 0 ? v : v >= minimum;
}

API int criu_local_feature_check(criu_opts *o, struct criu_feature_check *features, size_t size)
{
	CriuReq req = CRIU_REQ__INIT;
	CriuFeatures asked = CRIU_FEATURES__INIT;
	struct criu_feature_check f = { 0 };
	CriuResp *resp;
	int err;

	if (!o || !features || size > sizeof(f))
		return -EINVAL;
	memcpy(&f, features, size);
	asked.has_mem_track = f.mem_track;
	asked.mem_track = f.mem_track;
	asked.has_lazy_pages = f.lazy_pages;
	asked.lazy_pages = f.lazy_pages;
	asked.has_pidfd_store = f.pidfd_store;
	asked.pidfd_store = f.pidfd_store;
	req.type = CRIU_REQ_TYPE__FEATURE_CHECK;
	req.features = &asked;
	if ((err = transact(o, &req, &resp))) {
		if (resp)
			criu_resp__free_unpacked(resp, NULL);
		return err;
	}
	if (!resp->features) {
		criu_resp__free_unpacked(resp, NULL);
		return -EBADMSG;
	}
	f.mem_track = f.mem_track && resp->features->mem_track;
	f.lazy_pages = f.lazy_pages && resp->features->lazy_pages;
	f.pidfd_store = f.pidfd_store && resp->features->pidfd_store;
	memcpy(features, &f, size);
	criu_resp__free_unpacked(resp, NULL);
	return 0;
}

API int criu_check(void) { return criu_local_check(global_opts); }
API int criu_dump(void) { return criu_local_dump(global_opts); }
API int criu_pre_dump(void) { return criu_local_pre_dump(global_opts); }
API int criu_restore(void) { return criu_local_restore(global_opts); }
API int criu_restore_child(void) { GLOBAL_INT(criu_local_restore_child(global_opts)); }
API int criu_get_version(void) { return criu_local_get_version(global_opts); }
API int criu_check_version(int minimum) { return criu_local_check_version(global_opts, minimum); }
API int criu_feature_check(struct criu_feature_check *f, size_t size) { return criu_local_feature_check(global_opts, f, size); }
