/*
 * POSIX message queues (mq_open), each saved once in mqueues.img with its limits, mode, owner
 * and messages. The messages are read by taking them from a queue description of stasis's own
 * and sending them straight back in the order they came out (the kernel has no peek), which
 * leaves the queue as it was; a queue with a notification registered (mq_notify) is not
 * touched, since sending to an empty queue would fire and end that registration (and the
 * registration itself is not kept: its sigev_value cannot be read).
 * In the tree's own IPC namespace (a container's) the queues that no process holds open are
 * saved too: they belong to the namespace, and a process opens them by name later. stasis's
 * thread goes into the namespace for a moment, lists its queues (an mqueue filesystem of it,
 * fsmount) and saves each one no fd showed, by name.
 * Restore: a named queue that still exists (same host, no reboot) is used as it is, messages
 * and all; a named queue that is gone is made again and refilled; a queue that was unlinked is
 * made again under its name, refilled, and unlinked once every process has opened it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "files.h"
#include "log.h"
#include "ns-helper.h"
#include "pstree.h"
#include "restore-watchdog.h"
#include "tree-objects.h"
#include "util.h"

#define DELETED_SUFFIX " (deleted)"
#define MQ_PRIO_LIMIT 32768

#define QUEUE_NAME_MAX 64

/* The run's message queues (tree_mqueues): saved by the dump, or made again by the restore. */
struct mqueue_state {
	Mqueue **queues;      /* dump: each queue once */
	ino_t *inodes;        /* dump: st_ino per queue (one mqueue filesystem per ipc ns) */
	size_t n;

	MqueueTable *table;   /* restore: mqueues.img, checked */
	int *fds;             /* restore: stasis's fd on each queue, inherited by the tree */
	bool *made;           /* restore: the queue did not exist: stasis made it */
	char (*names)[QUEUE_NAME_MAX]; /* restore: the name each queue is open under */
};

static struct mqueue_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_mqueues);
}

/*
 * Takes every message out of q (stasis's own non-blocking description) and sends it back.
 * Room for the count messages it holds is made before the first is taken: running out of
 * memory half way would lose one.
 */
static int read_messages(int q, Mqueue *m, size_t count, const char *what)
{
	unsigned prio;
	ssize_t n;
	int err = 0;

	if (!(m->messages = xzalloc((count + 1) * sizeof(*m->messages))))
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		MqueueMessage *msg = m->messages[i] = xzalloc(sizeof(*msg));
		if (!msg)
			return -ENOMEM;
		mqueue_message__init(msg);
		if (!(msg->data.data = xzalloc(m->msgsize + 1)))
			return -ENOMEM;
	}
	while (m->n_messages < count) {
		MqueueMessage *msg = m->messages[m->n_messages];
		if ((n = mq_receive(q, (char *)msg->data.data, m->msgsize, &prio)) < 0) {
			if (errno != EAGAIN) {
				err = -errno;
				pr_perror("dump: message queue %s: cannot take message %zu", what,
					  m->n_messages);
			}
			break;
		}
		msg->prio = prio;
		msg->data.len = n;
		m->n_messages++;
	}
	for (size_t i = m->n_messages; i < count; i++) { /* room not needed */
		free(m->messages[i]->data.data);
		free(m->messages[i]);
		m->messages[i] = NULL;
	}
	for (size_t i = 0; i < m->n_messages; i++)
		if (mq_send(q, (char *)m->messages[i]->data.data, m->messages[i]->data.len,
			    m->messages[i]->prio) && !err) {
			err = -errno;
			pr_perror("dump: message queue %s: %zu messages could not be put back", what,
				  m->n_messages - i);
		}
	return err;
}

/* The id of the queue open at /proc/PID/fd/FD in mqueues.img, saving it on first sight. */
static int note_queue(struct mqueue_state *dumped, const char *proc_path, const char *link,
		      const struct stat *st, pid_t pid, int fd)
{
	struct mq_attr attr;
	char status[128] = "", what[32] = "(open nowhere)";
	unsigned notify_pid = 0;

	if (fd >= 0)
		snprintf(what, sizeof(what), "fd %d", fd);

	for (size_t i = 0; i < dumped->n; i++)
		if (dumped->inodes[i] == st->st_ino)
			return dumped->queues[i]->id;
	auto_close int q = open(proc_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (q < 0 || mq_getattr(q, &attr) || read(q, status, sizeof(status) - 1) < 0) {
		pr_perror("dump pid %d %s: cannot read message queue %s", pid, what, link);
		return -errno;
	}
	Mqueue **queues = xreallocarray(dumped->queues, dumped->n + 1, sizeof(*dumped->queues));
	if (queues)
		dumped->queues = queues;
	ino_t *inodes = queues ? xreallocarray(dumped->inodes, dumped->n + 1, sizeof(*dumped->inodes))
			       : NULL;
	if (inodes)
		dumped->inodes = inodes;
	Mqueue *m = inodes ? xzalloc(sizeof(*m)) : NULL;
	if (!m)
		return -ENOMEM;
	mqueue__init(m);
	m->id = dumped->n;
	dumped->inodes[dumped->n] = st->st_ino;
	dumped->queues[dumped->n++] = m; /* (freed with the state, also if what follows fails) */
	if (!(m->name = xstrdup(link)))
		return -ENOMEM;
	m->deleted = ends_with(link, DELETED_SUFFIX);
	if (m->deleted)
		m->name[strlen(m->name) - strlen(DELETED_SUFFIX)] = 0;
	m->maxmsg = attr.mq_maxmsg;
	m->msgsize = attr.mq_msgsize;
	m->mode = st->st_mode & 07777;
	m->uid = st->st_uid;
	m->gid = st->st_gid;
	const char *np = strstr(status, "NOTIFY_PID:");
	if (np)
		notify_pid = strtoul(np + 11, NULL, 10);
	if (notify_pid)
		pr_warn("dump pid %d %s: message queue %s has a notification registered (by pid %u): the "
			"registration is not kept, and the messages are not saved (taking them would fire it; "
			"on this host they stay in the queue)", pid, what, link, notify_pid);
	else {
		int err = read_messages(q, m, attr.mq_curmsgs, link);
		if (err)
			return err;
		m->messages_saved = true;
	}
	return m->id;
}

static int dump_mqueue(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	char path[64];
	struct statfs sf;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", t->pid, p->fd);
	if (statfs(path, &sf) || sf.f_type != MQUEUE_MAGIC)
		return 0;
	int id = note_queue(state_of(t->ctx), path, p->link, &p->st, t->pid, p->fd);
	if (id < 0)
		return id;
	e->has_flags = e->has_mqueue_id = true;
	e->flags = p->flags;
	e->mqueue_id = id;
	return 1;
}

DIR *mqueue_fs_list(void)
{
	int fs = syscall(SYS_fsopen, "mqueue", FSOPEN_CLOEXEC), mnt = -1, dir = -1, err;

	if (fs >= 0 && !syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) &&
	    (mnt = syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0)) >= 0)
		dir = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* (holds the mount) */
	DIR *d = dir >= 0 ? fdopendir(dir) : NULL;
	err = errno;
	if (!d && dir >= 0)
		close(dir);
	if (mnt >= 0)
		close(mnt);
	if (fs >= 0)
		close(fs);
	errno = err;
	return d;
}

/* The queues of the calling thread's IPC namespace that no fd of the tree showed, saved. */
static int note_unheld(struct mqueue_state *st, pid_t root)
{
	DIR *d = mqueue_fs_list();
	int err = 0;

	if (!d) {
		pr_perror("dump pid %d: cannot list the message queues of its IPC namespace", root);
		return -errno;
	}
	for (struct dirent *e; !err && (e = readdir(d));) {
		char name[QUEUE_NAME_MAX + 2], proc[64];
		struct stat st_q;
		bool seen = false;
		if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st_q, AT_SYMLINK_NOFOLLOW))
			continue;
		for (size_t i = 0; i < st->n && !seen; i++)
			seen = st->inodes[i] == st_q.st_ino;
		if (seen || snprintf(name, sizeof(name), "/%s", e->d_name) >= QUEUE_NAME_MAX)
			continue;
		int q = mq_open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (q < 0) {
			err = -errno;
			pr_perror("dump pid %d: cannot open message queue %s of its IPC namespace", root, name);
			break;
		}
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", q);
		int id = note_queue(st, proc, name, &st_q, root, -1);
		close(q);
		err = id < 0 ? id : 0;
		if (!err)
			pr_info("dump pid %d: message queue %s of its IPC namespace, open nowhere, saved", root,
				name);
	}
	closedir(d);
	return err;
}

static int write_mqueues(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct mqueue_state *st = state_of(ctx);
	MqueueTable tab = MQUEUE_TABLE__INIT;
	pid_t root = tr->tasks[0].pid;
	int err = 0, home = 0;

	if (tr->inv.ipc_ns) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/ipc", root);
		auto_close int ns = open(path, O_RDONLY | O_CLOEXEC);
		if (ns < 0 || ns_enter_from_home(ns, CLONE_NEWIPC, &home)) {
			pr_perror("dump pid %d: cannot enter its IPC namespace", root);
			return -errno;
		}
		err = note_unheld(st, root);
		ns_go_home(&home, CLONE_NEWIPC, "dump");
		if (err)
			return err;
	}
	tab.n_queues = st->n;
	tab.queues = st->queues;
	return st->n ? image_write(ctx->images_dir_fd, IMG_MQUEUES, 0, &tab.base) : 0;
}

/* ---- restore ---- */

static bool valid_queue(const Mqueue *m, size_t i)
{
	size_t len = strlen(m->name);
	bool ok = m->id == i && m->name[0] == '/' && len > 1 && len < QUEUE_NAME_MAX &&
		  !strchr(m->name + 1, '/') && m->maxmsg && m->maxmsg <= INT_MAX && m->msgsize &&
		  m->msgsize <= INT_MAX && m->n_messages <= m->maxmsg && !(m->mode & ~0777u);
	for (size_t k = 0; ok && k < m->n_messages; k++)
		ok = m->messages[k]->prio < MQ_PRIO_LIMIT && m->messages[k]->data.len <= m->msgsize;
	return ok;
}

/* A new queue: created with the saved limits, mode and owner, and refilled. */
static int create_queue(const Mqueue *m, const char *name, const struct restore_watchdog *wd)
{
	struct mq_attr attr = { .mq_maxmsg = m->maxmsg, .mq_msgsize = m->msgsize };
	int flags = O_RDWR | O_NONBLOCK | O_CREAT | O_EXCL | O_CLOEXEC;
	int q = mq_open(name, flags, m->mode, &attr);

	/* the namespace's (of a user namespace of the tree's own) has no name for stasis's uid: made
	 * as its owner (this thread only: raw calls) */
	if (q < 0 && errno == EOVERFLOW) {
		uid_t fsuid = syscall(SYS_setfsuid, m->uid);
		gid_t fsgid = syscall(SYS_setfsgid, m->gid);
		q = mq_open(name, flags, m->mode, &attr);
		int err = errno;
		syscall(SYS_setfsuid, fsuid);
		syscall(SYS_setfsgid, fsgid);
		errno = err;
	}
	if (q < 0)
		return -errno;
	watchdog_undo_mqueue(wd, name); /* a retry must not find it half full */
	if (fchown(q, m->uid, m->gid) || fchmod(q, m->mode))
		pr_warn("restore: message queue %s: cannot set owner %u:%u and mode %o: %m", m->name,
			m->uid, m->gid, m->mode);
	for (size_t k = 0; k < m->n_messages; k++)
		if (mq_send(q, m->messages[k]->data.len ? (char *)m->messages[k]->data.data : "",
			    m->messages[k]->data.len, m->messages[k]->prio)) {
			int err = -errno;
			close(q);
			mq_unlink(name);
			return err;
		}
	return q;
}

/*
 * A named queue that still exists is used as it is; one that is gone is made again. An
 * unlinked queue is made under its old name (or a temporary one if that is taken) until
 * every process has opened it (mqueues_unlink_restored).
 */
static int prepare_queue(const Mqueue *m, size_t i, char *name, bool *made,
			 const struct restore_watchdog *wd)
{
	int q;

	snprintf(name, QUEUE_NAME_MAX, "%s", m->name);
	if (!m->deleted && (q = mq_open(name, O_RDWR | O_CLOEXEC)) >= 0)
		return q;
	if (!m->deleted && errno != ENOENT) {
		pr_perror("restore: cannot open message queue %s", m->name);
		return -errno;
	}
	q = create_queue(m, name, wd);
	for (int attempt = 0; m->deleted && q == -EEXIST && attempt < 100; attempt++) {
		snprintf(name, QUEUE_NAME_MAX, "/stasis-mq-%d-%zu-%d", getpid(), i, attempt);
		q = create_queue(m, name, wd);
	}
	*made = q >= 0;
	if (q < 0)
		pr_err("restore: cannot make message queue %s again: %s", m->name, strerror(-q));
	else if (!m->deleted && !m->messages_saved)
		pr_warn("restore: message queue %s was gone: made again, empty (its messages were not "
			"saved)", m->name);
	return q;
}

/* mqueues.img, if some fd of the tree is a message queue, checked with every such fd. */
static int validate_mqueues(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct mqueue_state *st = state_of(ctx);
	bool needed = false;
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++)
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++)
			needed |= rt->tasks[i].fds->fds[k]->kind == FD_KIND__FD_MQUEUE;
	/* (the queues of the tree's own namespace that none holds: in the image alone) */
	needed |= rt->inv->ipc_ns && !faccessat(ctx->images_dir_fd, "mqueues.img", F_OK, 0);
	if (!needed)
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_MQUEUES, 0, (ProtobufCMessage **)&st->table)))
		return err;
	for (size_t i = 0; i < st->table->n_queues; i++) {
		if (!valid_queue(st->table->queues[i], i)) {
			pr_err("image mqueues.img: queue %zu is invalid", i);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			if (e->kind == FD_KIND__FD_MQUEUE &&
			    (!e->has_mqueue_id || e->mqueue_id >= st->table->n_queues)) {
				pr_err("image fds-%d.img: fd %u is a message queue that mqueues.img does not "
				       "hold", rt->tasks[i].pid, e->fd);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int prepare_mqueues(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct mqueue_state *st = state_of(ctx);
	size_t n = st->table ? st->table->n_queues : 0;

	if (!st->table)
		return 0;
	if (!(st->fds = xzalloc((n + 1) * sizeof(*st->fds))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		st->fds[i] = -1;
	if (!(st->made = xzalloc((n + 1) * sizeof(*st->made))) ||
	    !(st->names = xzalloc((n + 1) * sizeof(*st->names))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if ((st->fds[i] = prepare_queue(st->table->queues[i], i, st->names[i], &st->made[i], rt->watchdog)) < 0)
			return st->fds[i];
	return 0;
}

/*
 * By name as mq_open did, or through stasis's fd as open(2) did: the file status flags show
 * which (open(2) adds O_LARGEFILE and drops O_CLOEXEC; mq_open keeps O_CLOEXEC in them).
 */
static int open_mqueue(struct restore_task *t, const FdEntry *e)
{
	const struct mqueue_state *st = state_of(t->ctx);
	int flags = e->flags & (O_ACCMODE | O_NONBLOCK), q;

	if (!e->has_mqueue_id || !st->table || e->mqueue_id >= st->table->n_queues)
		return -EINVAL;
	if (e->flags & KERNEL_O_LARGEFILE) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", st->fds[e->mqueue_id]);
		q = open(path, flags | O_CLOEXEC);
	} else
		q = mq_open(st->names[e->mqueue_id], flags | (e->flags & O_CLOEXEC));
	return q < 0 ? -errno : q;
}

static void close_mqueues(struct run_ctx *ctx)
{
	struct mqueue_state *st = state_of(ctx);

	for (size_t i = 0; st->fds && i < st->table->n_queues; i++) {
		if (st->fds[i] >= 0)
			close(st->fds[i]);
		st->fds[i] = -1;
	}
}

/*
 * Once every process has its fds, the queues that were unlinked are unlinked again; after a
 * failure, every queue stasis made goes too.
 */
static void undo_mqueues(struct run_ctx *ctx, bool restored)
{
	struct mqueue_state *st = state_of(ctx);

	for (size_t i = 0; st->names && i < st->table->n_queues; i++) {
		if (st->made[i] && (st->table->queues[i]->deleted || !restored))
			mq_unlink(st->names[i]);
		st->made[i] = false;
	}
	close_mqueues(ctx);
	free(st->fds);
	st->fds = NULL;
}

static void free_mqueues(void *state)
{
	struct mqueue_state *st = state;

	for (size_t i = 0; i < st->n; i++)
		mqueue__free_unpacked(st->queues[i], NULL);
	free(st->queues);
	free(st->inodes);
	if (st->table)
		image_free(&st->table->base);
	free(st->fds);
	free(st->made);
	free(st->names);
}

const struct tree_object_ops tree_mqueues = {
	.name = "POSIX message queues",
	.state_size = sizeof(struct mqueue_state),
	.free_state = free_mqueues,
	.write = write_mqueues,
	.validate = validate_mqueues,
	.prepare = prepare_mqueues,
	.close = close_mqueues,
	.undo = undo_mqueues,
};

const struct fd_kind_ops fd_kind_mqueue = {
	.name = "POSIX message queue",
	.dump = dump_mqueue,
	.open = open_mqueue,
	.kind = FD_KIND__FD_MQUEUE,
};
