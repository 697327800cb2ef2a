/*
 * The tree's own IPC namespace (ipc-ns.img): its SysV message queues (cr/ipc-msg.c),
 * semaphore sets (cr/ipc-sem.c) and sysctls. These objects belong to a namespace, not to a process, so they are saved only
 * when the tree has an IPC namespace of its own (as every container does), and then all of
 * them. The one rule for SysV shm segments: shmem.img holds every segment stasis saves, so in
 * the tree's own namespace all its segments, attached or not, go through cr/shmem.c, and
 * ipc-ns.img only lists their ids.
 *
 * Dump: a forked helper joins the namespace (setns), reads every queue (the messages with
 * MSG_COPY, which leaves them queued), every semaphore set and the sysctls, writes the image,
 * and hands each shm segment to stasis with an fd to read it by (it attaches each one
 * read-only for a moment: the segment's attach time and last pid change, nothing else).
 *
 * Restore: the image is checked, then stasis moves its main thread into a new IPC namespace
 * (the tree, cloned later, inherits it) and makes every object again with its id
 * (kernel.*_next_id), key, mode, owner and creator; queues get their messages in order,
 * sets their values. The limits are raised first as far as the objects need and set to the
 * saved values last (a namespace may have lowered a limit below what it already uses).
 * Not recoverable: SEM_UNDO adjustments, the last pids and times of each object; and since
 * stasis is the creator of the segments it makes, with kernel.shm_rmid_forced=1 those nobody
 * has attached go when stasis exits.
 *
 * Asked to join a namespace instead (--join-ns ipc:PATH: a pod's, which a container shares
 * with its sandbox and the pod's other containers), stasis's main thread enters it and what it
 * holds is its own: its sysctls are left alone, a queue, set or segment of the images that is
 * there (same id and key) is used as it is, live (cr/shmem.c for segments); one that is gone is
 * made again from the images (a pod made anew, its containers restored into it one by one), and
 * removed if the restore fails; one whose id another object has refuses the restore before
 * anything is made.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipc-objects.h"
#include "join-ns.h"
#include "log.h"
#include "ns-helper.h"
#include "ns-make.h"
#include "pstree.h"
#include "restore-watchdog.h"
#include "shmem.h"
#include "tree-objects.h"
#include "util.h"

#define SYSCTL_VALUE_MAX IPC_SYSCTL_VALUE_MAX
#define SYSCTL_FIELDS_MAX 4

/* The sysctls of an IPC namespace; the limits are the ones that can stop an object being made. */
static const struct ipc_sysctl_desc {
	const char *name;
	unsigned fields;
	bool limit;
} sysctl_descs[] = {
	{ "kernel/msgmax", 1, true },
	{ "kernel/msgmnb", 1, true },  /* msg_qbytes above it needs CAP_SYS_RESOURCE */
	{ "kernel/msgmni", 1, true },
	{ "kernel/sem", 4, true },     /* semmsl semmns semopm semmni */
	{ "kernel/shmmax", 1, true },
	{ "kernel/shmall", 1, true },
	{ "kernel/shmmni", 1, true },
	{ "kernel/shm_rmid_forced", 1, false },
	{ "fs/mqueue/queues_max", 1, false },
	{ "fs/mqueue/msg_max", 1, false },
	{ "fs/mqueue/msgsize_max", 1, false },
	{ "fs/mqueue/msg_default", 1, false },
	{ "fs/mqueue/msgsize_default", 1, false },
	{ "kernel/msg_next_id", 1, false }, /* last: the objects are made with them */
	{ "kernel/sem_next_id", 1, false },
	{ "kernel/shm_next_id", 1, false },
};
_Static_assert(ARRAY_SIZE(sysctl_descs) <= IPC_SYSCTLS_MAX, "struct ipc_sysctl_values too small");

static const struct ipc_sysctl_desc *sysctl_desc(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(sysctl_descs); i++)
		if (!strcmp(sysctl_descs[i].name, name))
			return &sysctl_descs[i];
	return NULL;
}

/* ---- dump ---- */

/* One shm segment, from the helper to stasis, with an fd on it. */
struct seg_report {
	int32_t id;
	struct shmid_ds ds;
};

static int ns_of(pid_t pid, pid_t tid, struct stat *st)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task/%d/ns/ipc", pid, tid);
	if (stat(path, st)) {
		pr_perror("dump pid %d: cannot read its IPC namespace (%s)", pid, path);
		return -errno;
	}
	return 0;
}

static bool same_ns(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* The tree shares the host's namespace: its queues and sets are host objects, not saved. */
static int warn_host_users(const struct dump_tree *tr)
{
	static const char why[] = "it is an object of the host's IPC namespace and is not saved "
				  "(only a tree with its own IPC namespace has its SysV message queues "
				  "and semaphores saved)";
	auto_free char *msg = NULL, *sem = NULL;
	char *line, *save = NULL;

	if ((!(msg = read_file_at(AT_FDCWD, "/proc/sysvipc/msg", NULL)) && errno == ENOMEM) ||
	    (!(sem = read_file_at(AT_FDCWD, "/proc/sysvipc/sem", NULL)) && errno == ENOMEM))
		return -ENOMEM;
	/* key msqid perms cbytes qnum lspid lrpid ... */
	for (line = msg ? strtok_r(msg, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		long key, id, cbytes, qnum, lspid, lrpid;
		unsigned perms;
		if (sscanf(line, "%ld %ld %o %ld %ld %ld %ld", &key, &id, &perms, &cbytes, &qnum, &lspid,
			   &lrpid) != 7)
			continue;
		if (dump_tree_task(tr, lspid) || dump_tree_task(tr, lrpid))
			pr_warn("dump pid %ld: used SysV message queue %ld (key %#x): %s",
				dump_tree_task(tr, lspid) ? lspid : lrpid, id, (unsigned)key, why);
	}
	/* key semid perms nsems ...: the last pid of each semaphore */
	save = NULL;
	for (line = sem ? strtok_r(sem, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		long key, id, nsems;
		unsigned perms;
		if (sscanf(line, "%ld %ld %o %ld", &key, &id, &perms, &nsems) != 4)
			continue;
		for (long k = 0; k < nsems; k++) {
			long pid = semctl(id, k, GETPID);
			if (dump_tree_task(tr, pid)) {
				pr_warn("dump pid %ld: used SysV semaphore set %ld (key %#x): %s", pid, id,
					(unsigned)key, why);
				break;
			}
		}
	}
	return 0;
}

/* An fd to read segment id by: attached read-only for as long as it takes to open it. */
static int segment_fd(int id, size_t size)
{
	char path[96];
	void *m = shmat(id, NULL, SHM_RDONLY);
	int fd;

	if (m == (void *)-1) {
		pr_perror("dump: cannot attach SysV shm segment %d to read it", id);
		return -errno;
	}
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)m,
		 (unsigned long)m + PAGE_ALIGN(size));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		pr_perror("dump: cannot open SysV shm segment %d (%s)", id, path);
	shmdt(m);
	return fd < 0 ? -errno : fd;
}

static int send_segment(int sock, const struct seg_report *r, int fd)
{
	if (send_with_fd(sock, r, sizeof(*r), fd)) {
		pr_perror("dump: cannot hand SysV shm segment %d to stasis", r->id);
		return -EIO;
	}
	return 0;
}

static int send_segments(IpcNs *ns, int sock)
{
	struct shm_info info;
	int max = shmctl(0, SHM_INFO, (struct shmid_ds *)&info), err;

	if (max < 0) {
		pr_perror("dump: cannot list SysV shm segments");
		return -errno;
	}
	if (!(ns->shm_ids = xzalloc((max + 1) * sizeof(*ns->shm_ids))))
		return -ENOMEM;
	for (int idx = 0; idx <= max; idx++) {
		struct seg_report r = { 0 };
		r.id = shmctl(idx, SHM_STAT_ANY, &r.ds);
		if (r.id < 0 && errno == EINVAL)
			continue;
		if (r.id < 0) {
			pr_perror("dump: cannot read SysV shm segment at index %d", idx);
			return -errno;
		}
		int fd = segment_fd(r.id, r.ds.shm_segsz);
		if (fd < 0)
			return fd;
		err = send_segment(sock, &r, fd);
		close(fd);
		if (err)
			return err;
		ns->shm_ids[ns->n_shm_ids++] = r.id;
	}
	return 0;
}

void ipc_sysctls_read(struct ipc_sysctl_values *v)
{
	for (size_t i = 0; i < ARRAY_SIZE(sysctl_descs); i++) {
		char path[96];
		snprintf(path, sizeof(path), "/proc/sys/%s", sysctl_descs[i].name);
		auto_free char *text = read_file_at(AT_FDCWD, path, NULL);
		v->value[i][0] = 0;
		if (!text)
			pr_debug("dump: this kernel has no sysctl %s", sysctl_descs[i].name);
		else
			snprintf(v->value[i], sizeof(v->value[i]), "%.*s", (int)strcspn(text, "\n"), text);
	}
}

int ipc_sysctls_fill(const struct ipc_sysctl_values *v, IpcSysctl ***out, size_t *n)
{
	if (!(*out = xzalloc(ARRAY_SIZE(sysctl_descs) * sizeof(**out))))
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(sysctl_descs); i++) {
		if (!v->value[i][0])
			continue;
		IpcSysctl *s = xzalloc(sizeof(*s));
		if (!s)
			return -ENOMEM;
		ipc_sysctl__init(s);
		(*out)[(*n)++] = s;
		if (!(s->name = xstrdup(sysctl_descs[i].name)) || !(s->value = xstrdup(v->value[i])))
			return -ENOMEM;
	}
	return 0;
}

static int save_sysctls(IpcNs *ns)
{
	struct ipc_sysctl_values v;

	ipc_sysctls_read(&v);
	return ipc_sysctls_fill(&v, &ns->sysctls, &ns->n_sysctls);
}

int ipc_ns_save_objects(IpcNs *ns)
{
	int err;

	if ((err = save_sysctls(ns)) || (err = ipc_msg_save_all(ns)))
		return err;
	return ipc_sem_save_all(ns);
}

/* The helper, in a child of stasis: joins the namespace, saves it, exits (1: it said why). */
static __attribute__((noreturn)) void helper_main(int nsfd, int sock, int dirfd, pid_t root)
{
	IpcNs ns = IPC_NS__INIT;
	int err;

	if (setns(nsfd, CLONE_NEWIPC)) {
		pr_perror("dump pid %d: cannot enter its IPC namespace", root);
		_exit(1);
	}
	if (!(err = ipc_ns_save_objects(&ns)) && !(err = send_segments(&ns, sock)))
		err = image_write(dirfd, IMG_IPC_NS, 0, &ns.base);
	if (!err)
		pr_info("dump pid %d: its IPC namespace: %zu message queues, %zu semaphore sets, %zu shm "
			"segments",
			root, ns.n_msg_queues, ns.n_sem_sets, ns.n_shm_ids);
	_exit(err ? 1 : 0);
}

/* The helper's segments, until it is done; each goes to shmem with its fd. */
static int recv_segments(int sock, struct run_ctx *ctx)
{
	for (;;) {
		struct seg_report r;
		int fd, err;
		ssize_t got = recv_with_fd(sock, &r, sizeof(r), &fd);

		if (got == 0)
			return 0;
		if (got != (ssize_t)sizeof(r) || fd < 0) {
			if (fd >= 0)
				close(fd);
			pr_err("dump: bad report from the IPC namespace helper");
			return -EIO;
		}
		if ((err = shmem_note_sysv(ctx, r.id, fd, &r.ds)))
			return err;
	}
}

/*
 * With the tree frozen: every task must be in the root's IPC namespace. If that is not
 * stasis's own, ipc-ns.img is written and every shm segment of the namespace noted for
 * shmem; in the host's namespace only a warning names the queues and sets the tree used.
 */
static int collect_ipc_ns(struct run_ctx *ctx, struct dump_tree *tr)
{
	pid_t root = tr->tasks[0].pid, helper;
	struct stat self, root_ns, opened;
	int dirfd = ctx->images_dir_fd;
	char path[64];
	int sk[2], status = 0, err;

	if (stat("/proc/thread-self/ns/ipc", &self)) {
		pr_perror("dump: cannot read stasis's own IPC namespace");
		return -errno;
	}
	if ((err = ns_of(tr->tasks[0].pid, tr->tasks[0].pid, &root_ns)))
		return err;
	if (same_ns(&self, &root_ns))
		return warn_host_users(tr);
	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", root);
	auto_close int nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || fstat(nsfd, &opened) || !same_ns(&opened, &root_ns)) {
		pr_perror("dump pid %d: cannot open its IPC namespace", root);
		return -EIO;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk)) {
		pr_perror("dump: socketpair");
		return -errno;
	}
	fflush(NULL);
	helper = fork();
	if (helper == 0) {
		close(sk[0]);
		helper_main(nsfd, sk[1], dirfd, root);
	}
	close(sk[1]);
	if (helper < 0) {
		pr_perror("dump pid %d: cannot start the helper that reads its IPC namespace", root);
		close(sk[0]);
		return -errno;
	}
	err = recv_segments(sk[0], ctx);
	close(sk[0]);
	while (waitpid(helper, &status, 0) < 0 && errno == EINTR)
		;
	if (!err && WIFEXITED(status) && WEXITSTATUS(status) == 1) {
		log_said_by_helper();
		err = -EIO;
	} else if (!err && (!WIFEXITED(status) || WEXITSTATUS(status))) {
		pr_err("dump pid %d: saving its IPC namespace ipc:[%lu] failed (helper status 0x%x)",
		       root, (unsigned long)root_ns.st_ino, status);
		err = -EIO;
	}
	if (err)
		return err;
	shmem_sysv_all_noted(ctx);
	tr->inv.has_ipc_ns = tr->inv.ipc_ns = true;
	return 0;
}

/* ---- restore ---- */


/* "N" or "N\tN\tN\tN": fields numbers, into v. */
static bool parse_sysctl(const char *value, unsigned fields, unsigned long long *v)
{
	const char *p = value;

	if (strlen(value) > SYSCTL_VALUE_MAX)
		return false;
	for (unsigned i = 0; i < fields; i++) {
		char *end;
		p += strspn(p, " \t");
		if (*p != '-' && (*p < '0' || *p > '9'))
			return false;
		errno = 0;
		v[i] = *p == '-' ? (unsigned long long)strtoll(p, &end, 10) : strtoull(p, &end, 10);
		if (errno || end == p)
			return false;
		p = end;
	}
	return p[strspn(p, " \t")] == 0;
}

int ipc_ns_validate_objects(const char *image, const IpcNs *ns)
{
	int err;

	if ((err = ipc_msg_validate(image, ns)) || (err = ipc_sem_validate(image, ns)))
		return err;
	return ipc_sysctls_validate(image, ns->sysctls, ns->n_sysctls);
}

static int validate(const IpcNs *ns)
{
	int err;

	if ((err = ipc_ns_validate_objects("ipc-ns.img", ns)))
		return err;
	for (size_t i = 0; i < ns->n_shm_ids; i++) {
		bool ok = ns->shm_ids[i] <= INT_MAX;
		for (size_t j = 0; ok && j < i; j++)
			ok = ns->shm_ids[j] != ns->shm_ids[i];
		if (!ok) {
			pr_err("image ipc-ns.img: shm segment id %u is invalid or listed twice", ns->shm_ids[i]);
			return -EINVAL;
		}
	}
	return 0;
}

int ipc_sysctls_validate(const char *image, IpcSysctl *const *sysctls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const IpcSysctl *s = sysctls[i];
		const struct ipc_sysctl_desc *d = sysctl_desc(s->name);
		unsigned long long v[SYSCTL_FIELDS_MAX];
		bool ok = d && parse_sysctl(s->value, d->fields, v);
		for (size_t j = 0; ok && j < i; j++)
			ok = strcmp(sysctls[j]->name, s->name) != 0;
		if (!ok) {
			pr_err("image %s: sysctl %zu (%.64s = '%.64s') is unknown, repeated or not a number",
			       image, i, s->name, s->value);
			return -EINVAL;
		}
	}
	return 0;
}

int ipc_sysctls_write(IpcSysctl *const *sysctls, size_t n)
{
	int err;

	for (size_t i = 0; i < n; i++) {
		const IpcSysctl *s = sysctls[i];
		char path[96];
		/* a next id of -1 (none asked for) is the kernel's own state: it cannot be written */
		if (strstr(s->name, "_next_id") && !strcmp(s->value, "-1"))
			continue;
		/* (one as saved is left alone: /proc/sys may be read-only, as in a container) */
		snprintf(path, sizeof(path), "/proc/sys/%s", s->name);
		auto_free char *now = read_file_at(AT_FDCWD, path, NULL);
		if (now && (now[strcspn(now, "\n")] = 0, !strcmp(now, s->value)))
			continue;
		if ((err = ipc_write_sysctl(s->name, s->value)))
			return err;
	}
	return 0;
}

/*
 * Each limit raised (never lowered) to what the saved objects need and to its saved value, so
 * that every object can be made whatever the limits were when it was.
 */
static int raise_limits(const IpcNs *ns)
{
	unsigned long long largest_msg = 0, room = 0, largest_set = 0, sems = 0;

	ipc_msg_needs(ns, &largest_msg, &room);
	for (size_t i = 0; i < ns->n_sem_sets; i++) {
		largest_set = ipc_max(largest_set, ns->sem_sets[i]->n_values);
		sems += ns->sem_sets[i]->n_values;
	}
	for (size_t i = 0; i < ns->n_sysctls; i++) {
		const struct ipc_sysctl_desc *d = sysctl_desc(ns->sysctls[i]->name);
		unsigned long long need[SYSCTL_FIELDS_MAX], cur[SYSCTL_FIELDS_MAX];
		char path[96], value[SYSCTL_VALUE_MAX + 1];
		int n = 0;

		if (!d->limit)
			continue;
		parse_sysctl(ns->sysctls[i]->value, d->fields, need);
		if (!strcmp(d->name, "kernel/msgmax"))
			need[0] = ipc_max(need[0], largest_msg);
		if (!strcmp(d->name, "kernel/msgmnb"))
			need[0] = ipc_max(need[0], room);
		if (!strcmp(d->name, "kernel/msgmni"))
			need[0] = ipc_max(need[0], ns->n_msg_queues);
		if (!strcmp(d->name, "kernel/sem")) {
			need[0] = ipc_max(need[0], largest_set);
			need[1] = ipc_max(need[1], sems);
			need[3] = ipc_max(need[3], ns->n_sem_sets);
		}
		snprintf(path, sizeof(path), "/proc/sys/%s", d->name);
		auto_free char *now = read_file_at(AT_FDCWD, path, NULL);
		if (!now && errno == ENOMEM)
			return -ENOMEM;
		if (now)
			now[strcspn(now, "\n")] = 0;
		if (!now || !parse_sysctl(now, d->fields, cur)) {
			pr_err("restore: cannot read sysctl %s", d->name);
			return -EIO;
		}
		bool raise = false;
		for (unsigned f = 0; f < d->fields; f++) {
			raise |= need[f] > cur[f];
			n += snprintf(value + n, sizeof(value) - n, "%s%llu", f ? "\t" : "",
				      ipc_max(need[f], cur[f]));
		}
		/* (one high enough is left alone: /proc/sys may be read-only, as in a container) */
		int err = raise ? ipc_write_sysctl(d->name, value) : 0;
		if (err)
			return err;
	}
	return 0;
}

/* Restore: the tree's IPC namespace (ipc-ns.img) and stasis's own, to go back to. */
struct ipc_ns_state {
	IpcNs *ns;
	int own_ns; /* fd + 1 of stasis's namespace while it is in the tree's (0: not moved) */
	int join;   /* fd + 1 of the namespace to join (--join-ns ipc), 0: none */
	bool *gone; /* joining: which queues, then which sets, of the image are not there */
	int *made;  /* joining: the ids of those made again, queues first (nr_made_msgs of them) */
	size_t nr_made, nr_made_msgs;
};

static struct ipc_ns_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_ipc_ns);
}

static int validate_ipc_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct ipc_ns_state *st = state_of(ctx);
	int err, fd;

	if ((err = join_ns_open(ctx->opts, "ipc", &fd)) < 0)
		return err;
	st->join = err ? fd + 1 : 0;
	if (st->join)
		shmem_sysv_keep_live(ctx);
	if (!rt->inv->ipc_ns) {
		if (faccessat(ctx->images_dir_fd, "ipc-ns.img", F_OK, 0) == 0) {
			pr_err("image ipc-ns.img: present, but inventory.img says the tree shared the host's "
			       "IPC namespace");
			return -EINVAL;
		}
		return 0;
	}
	if ((err = image_read(ctx->images_dir_fd, IMG_IPC_NS, 0, (ProtobufCMessage **)&st->ns)) ||
	    (err = validate(st->ns)))
		return err;
	if (st->ns->n_shm_ids)
		shmem_require(ctx);
	return 0;
}

/* Joining: is object p of the image there (0), gone (1), or is its id another's (<0, said)? */
static int joined_has(const char *what, const SysvPerm *p, int (*key_of)(int id, key_t *key))
{
	key_t key;
	int err = key_of((int)p->id, &key);

	if (err == -EINVAL || err == -EIDRM)
		return 1;
	if (!err && key == (key_t)p->key)
		return 0;
	if (err)
		pr_err("restore: --join-ns ipc: cannot read SysV %s %u of the namespace given: %s", what,
		       p->id, strerror(-err));
	else
		pr_err("restore: --join-ns ipc: SysV %s %u (key %#x) of ipc-ns.img: in the namespace "
		       "given another one (key %#x) has its id", what, p->id, p->key, (unsigned)key);
	return err ? err : -EEXIST;
}

/* Joining: which queues and sets of the image are gone (made again once the segments are). */
static int check_joined(struct ipc_ns_state *st)
{
	const IpcNs *ns = st->ns;
	size_t n = ns ? ns->n_msg_queues + ns->n_sem_sets : 0;
	int got;

	if (!n)
		return 0;
	if (!(st->gone = xzalloc(n * sizeof(*st->gone))) || !(st->made = xzalloc(n * sizeof(*st->made))))
		return -ENOMEM;
	for (size_t i = 0; i < ns->n_msg_queues; i++) {
		if ((got = joined_has("message queue", ns->msg_queues[i]->perm, ipc_msg_key)) < 0)
			return got;
		st->gone[i] = got;
	}
	for (size_t i = 0; i < ns->n_sem_sets; i++) {
		if ((got = joined_has("semaphore set", ns->sem_sets[i]->perm, ipc_sem_key)) < 0)
			return got;
		st->gone[ns->n_msg_queues + i] = got;
	}
	return 0;
}

/*
 * The segments checked against shmem.img, then stasis's main thread moves into a new IPC
 * namespace (the tree, cloned from it, inherits it) with its limits raised as far as the
 * saved objects need; shmem makes the segments there next. Or it joins the one given.
 */
static int prepare_ipc_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct ipc_ns_state *st = state_of(ctx);
	int own, err;

	(void)rt;
	if (!st->ns && !st->join)
		return 0;
	for (size_t i = 0; st->ns && i < st->ns->n_shm_ids; i++) {
		if (!shmem_sysv_known(ctx, st->ns->shm_ids[i])) {
			pr_err("image shmem.img: does not hold SysV shm segment %u, which ipc-ns.img lists",
			       st->ns->shm_ids[i]);
			return -EINVAL;
		}
	}
	own = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
	if (own < 0) {
		pr_perror("restore: cannot open stasis's own IPC namespace");
		return -errno;
	}
	/* this thread only; the tree, cloned from it, inherits the namespace */
	if (st->join && setns(st->join - 1, CLONE_NEWIPC)) {
		err = -errno;
		pr_perror("restore: cannot join the IPC namespace given (--join-ns ipc)");
		close(own);
		return err;
	}
	if (!st->join && (err = ns_make(ctx, CLONE_NEWIPC))) {
		close(own);
		return err;
	}
	st->own_ns = own + 1;
	return st->join ? check_joined(st) : raise_limits(st->ns);
}

/* Once the tree holds the namespace (or the restore failed): stasis goes back to its own. */
static void undo_ipc_ns(struct run_ctx *ctx, bool restored)
{
	(void)restored;
	ns_go_home(&state_of(ctx)->own_ns, CLONE_NEWIPC, "restore");
}

/* Joining: the queues and sets that are gone, made again (the watchdog told: a joined
 * namespace outlives a failed restore). */
static int make_gone(struct ipc_ns_state *st, struct restore_tree *rt)
{
	const IpcNs *ns = st->ns;
	int err;

	for (size_t i = 0; i < ns->n_msg_queues; i++) {
		if (!st->gone[i])
			continue;
		/* (noted first: made, it may still fail to get its size or messages) */
		st->made[st->nr_made++] = (int)ns->msg_queues[i]->perm->id;
		st->nr_made_msgs++;
		watchdog_undo_sysv_msg(rt->watchdog, (int)ns->msg_queues[i]->perm->id);
		if ((err = ipc_msg_restore_one(ns->msg_queues[i])))
			return err;
	}
	for (size_t i = 0; i < ns->n_sem_sets; i++) {
		if (!st->gone[ns->n_msg_queues + i])
			continue;
		st->made[st->nr_made++] = (int)ns->sem_sets[i]->perm->id;
		watchdog_undo_sysv_sem(rt->watchdog, (int)ns->sem_sets[i]->perm->id);
		if ((err = ipc_sem_restore_one(ns->sem_sets[i])))
			return err;
	}
	pr_info("restore: joined IPC namespace: %zu of its queues and sets made again, the others "
		"used as they are", st->nr_made);
	return 0;
}

/* A failed restore: what make_gone made (or tried to: its ids were free) goes; stasis is
 * still in the joined namespace. */
static void undo_ipc_objects(struct run_ctx *ctx, bool restored)
{
	struct ipc_ns_state *st = state_of(ctx);

	for (size_t i = 0; !restored && i < st->nr_made; i++) {
		if (i < st->nr_made_msgs)
			msgctl(st->made[i], IPC_RMID, NULL);
		else
			semctl(st->made[i], 0, IPC_RMID);
	}
	st->nr_made = st->nr_made_msgs = 0;
}

/* After shmem made the segments: the queues and sets, then the sysctls as saved. */
int ipc_ns_make_objects(const IpcNs *ns)
{
	int err;

	if ((err = raise_limits(ns)) || (err = ipc_msg_restore_all(ns)) || (err = ipc_sem_restore_all(ns)))
		return err;
	return ipc_sysctls_write(ns->sysctls, ns->n_sysctls);
}

static int prepare_ipc_objects(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct ipc_ns_state *st = state_of(ctx);
	IpcNs *ns = st->ns;
	int err;

	if (!ns)
		return 0;
	if (st->join)
		return make_gone(st, rt);
	if ((err = ipc_msg_restore_all(ns)) || (err = ipc_sem_restore_all(ns)))
		return err;
	pr_info("restore: new IPC namespace with %zu message queues, %zu semaphore sets, %zu shm "
		"segments",
		ns->n_msg_queues, ns->n_sem_sets, ns->n_shm_ids);
	return ipc_sysctls_write(ns->sysctls, ns->n_sysctls);
}

static void free_ipc_ns(void *state)
{
	struct ipc_ns_state *st = state;

	if (st->ns)
		image_free(&st->ns->base);
	if (st->join)
		close(st->join - 1);
	free(st->gone);
	free(st->made);
}

const struct tree_object_ops tree_ipc_ns = {
	.name = "IPC namespace",
	.state_size = sizeof(struct ipc_ns_state),
	.free_state = free_ipc_ns,
	.collect = collect_ipc_ns,
	.validate = validate_ipc_ns,
	.prepare = prepare_ipc_ns,
	.undo = undo_ipc_ns,
};

/* Its own entry so that the registry orders it after shmem's segments. */
const struct tree_object_ops tree_ipc_objects = {
	.name = "IPC namespace objects",
	.prepare = prepare_ipc_objects,
	.undo = undo_ipc_objects,
};
