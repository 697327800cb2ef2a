/*
 * POSIX message queues (mq_open), each saved once in mqueues.img with its limits, mode, owner
 * and messages. The messages are read by taking them from a queue description of stasis's own
 * and sending them straight back in the order they came out (the kernel has no peek), which
 * leaves the queue as it was; a queue with a notification registered (mq_notify) is not
 * touched, since sending to an empty queue would fire and end that registration (and the
 * registration itself is not kept: its sigev_value cannot be read).
 * Restore: a named queue that still exists (same host, no reboot) is used as it is, messages
 * and all; a named queue that is gone is made again and refilled; a queue that was unlinked is
 * made again under its name, refilled, and unlinked once every process has opened it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "util.h"

#define DELETED_SUFFIX " (deleted)"
#define MQ_PRIO_LIMIT 32768
#define KERNEL_O_LARGEFILE 0100000 /* glibc's O_LARGEFILE is 0 on x86_64 */

static MqueueTable dumped = MQUEUE_TABLE__INIT;
static ino_t *dumped_inodes; /* st_ino per dumped queue (one mqueue filesystem per ipc ns) */

/* Takes every message out of q (stasis's own non-blocking description) and sends it back. */
static int read_messages(int q, Mqueue *m, const char *what)
{
	char *buf = xzalloc(m->msgsize + 1);
	unsigned prio;
	ssize_t n;
	int err = 0;

	while ((n = mq_receive(q, buf, m->msgsize, &prio)) >= 0) {
		MqueueMessage *msg = xzalloc(sizeof(*msg));
		mqueue_message__init(msg);
		msg->prio = prio;
		msg->data.len = n;
		msg->data.data = xzalloc(n + 1);
		memcpy(msg->data.data, buf, n);
		m->messages = realloc(m->messages, (m->n_messages + 1) * sizeof(*m->messages));
		if (!m->messages)
			abort();
		m->messages[m->n_messages++] = msg;
	}
	if (errno != EAGAIN)
		err = -errno;
	for (size_t i = 0; i < m->n_messages; i++)
		if (mq_send(q, (char *)m->messages[i]->data.data, m->messages[i]->data.len,
			    m->messages[i]->prio) && !err) {
			err = -errno;
			pr_perror("dump: message queue %s: %zu messages could not be put back", what,
				  m->n_messages - i);
		}
	free(buf);
	return err;
}

/* The id of the queue open at /proc/PID/fd/FD in mqueues.img, saving it on first sight. */
static int note_queue(const char *proc_path, const char *link, const struct stat *st, pid_t pid, int fd)
{
	struct mq_attr attr;
	char status[128] = "";
	unsigned notify_pid = 0;

	for (size_t i = 0; i < dumped.n_queues; i++)
		if (dumped_inodes[i] == st->st_ino)
			return dumped.queues[i]->id;
	auto_close int q = open(proc_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (q < 0 || mq_getattr(q, &attr) || read(q, status, sizeof(status) - 1) < 0) {
		pr_perror("dump pid %d fd %d: cannot read message queue %s", pid, fd, link);
		return -errno;
	}
	Mqueue *m = xzalloc(sizeof(*m));
	mqueue__init(m);
	m->id = dumped.n_queues;
	m->name = xstrdup(link);
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
		pr_warn("dump pid %d fd %d: message queue %s has a notification registered (by pid %u): the "
			"registration is not kept, and the messages are not saved (taking them would fire it; "
			"on this host they stay in the queue)", pid, fd, link, notify_pid);
	else {
		int err = read_messages(q, m, link);
		if (err)
			return err;
		m->messages_saved = true;
	}
	dumped.queues = realloc(dumped.queues, (dumped.n_queues + 1) * sizeof(*dumped.queues));
	dumped_inodes = realloc(dumped_inodes, (dumped.n_queues + 1) * sizeof(*dumped_inodes));
	if (!dumped.queues || !dumped_inodes)
		abort();
	dumped_inodes[dumped.n_queues] = st->st_ino;
	dumped.queues[dumped.n_queues++] = m;
	return m->id;
}

static int dump_mqueue(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	char path[64];
	struct statfs sf;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", t->pid, p->fd);
	if (statfs(path, &sf) || sf.f_type != MQUEUE_MAGIC)
		return 0;
	int id = note_queue(path, p->link, &p->st, t->pid, p->fd);
	if (id < 0)
		return id;
	e->has_flags = e->has_mqueue_id = true;
	e->flags = p->flags;
	e->mqueue_id = id;
	return 1;
}

int mqueues_dump_all(int dirfd)
{
	return dumped.n_queues ? image_write(dirfd, IMG_MQUEUES, 0, &dumped.base) : 0;
}

/* ---- restore ---- */

static MqueueTable *table;
static int *queue_fds;       /* stasis's fd on each queue, inherited by the tree */
static char (*queue_names)[64]; /* the name each queue is open under during the restore */

static bool valid_queue(const Mqueue *m, size_t i)
{
	size_t len = strlen(m->name);
	bool ok = m->id == i && m->name[0] == '/' && len > 1 && len < sizeof(*queue_names) &&
		  !strchr(m->name + 1, '/') && m->maxmsg && m->maxmsg <= INT_MAX && m->msgsize &&
		  m->msgsize <= INT_MAX && m->n_messages <= m->maxmsg && !(m->mode & ~0777u);
	for (size_t k = 0; ok && k < m->n_messages; k++)
		ok = m->messages[k]->prio < MQ_PRIO_LIMIT && m->messages[k]->data.len <= m->msgsize;
	return ok;
}

/* A new queue: created with the saved limits, mode and owner, and refilled. */
static int create_queue(const Mqueue *m, const char *name)
{
	struct mq_attr attr = { .mq_maxmsg = m->maxmsg, .mq_msgsize = m->msgsize };
	int q = mq_open(name, O_RDWR | O_NONBLOCK | O_CREAT | O_EXCL | O_CLOEXEC, m->mode, &attr);

	if (q < 0)
		return -errno;
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
static int prepare_queue(const Mqueue *m, size_t i)
{
	char *name = queue_names[i];
	int q;

	snprintf(name, sizeof(*queue_names), "%s", m->name);
	if (!m->deleted && (q = mq_open(name, O_RDWR | O_CLOEXEC)) >= 0)
		return q;
	if (!m->deleted && errno != ENOENT) {
		pr_perror("restore: cannot open message queue %s", m->name);
		return -errno;
	}
	q = create_queue(m, name);
	for (int attempt = 0; m->deleted && q == -EEXIST && attempt < 100; attempt++) {
		snprintf(name, sizeof(*queue_names), "/stasis-mq-%d-%zu-%d", getpid(), i, attempt);
		q = create_queue(m, name);
	}
	if (q < 0)
		pr_err("restore: cannot make message queue %s again: %s", m->name, strerror(-q));
	else if (!m->deleted && !m->messages_saved)
		pr_warn("restore: message queue %s was gone: made again, empty (its messages were not "
			"saved)", m->name);
	return q;
}

int mqueues_restore_prepare(int dirfd, bool needed)
{
	int err;

	if (!needed)
		return 0;
	if ((err = image_read(dirfd, IMG_MQUEUES, 0, (ProtobufCMessage **)&table)))
		return err;
	queue_fds = xzalloc((table->n_queues + 1) * sizeof(*queue_fds));
	queue_names = xzalloc((table->n_queues + 1) * sizeof(*queue_names));
	for (size_t i = 0; i < table->n_queues; i++) {
		queue_fds[i] = -1;
		if (!valid_queue(table->queues[i], i)) {
			pr_err("image mqueues.img: queue %zu is invalid", i);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < table->n_queues; i++)
		if ((queue_fds[i] = prepare_queue(table->queues[i], i)) < 0)
			return queue_fds[i];
	return 0;
}

bool mqueue_known(uint32_t id)
{
	return table && id < table->n_queues;
}

/*
 * By name as mq_open did, or through stasis's fd as open(2) did: the file status flags show
 * which (open(2) adds O_LARGEFILE and drops O_CLOEXEC; mq_open keeps O_CLOEXEC in them).
 */
static int open_mqueue(struct restore_task *t, const FdEntry *e)
{
	int flags = e->flags & (O_ACCMODE | O_NONBLOCK), q;
	(void)t;

	if (!e->has_mqueue_id || !mqueue_known(e->mqueue_id))
		return -EINVAL;
	if (e->flags & KERNEL_O_LARGEFILE) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", queue_fds[e->mqueue_id]);
		q = open(path, flags | O_CLOEXEC);
	} else
		q = mq_open(queue_names[e->mqueue_id], flags | (e->flags & O_CLOEXEC));
	return q < 0 ? -errno : q;
}

void mqueues_close_all(void)
{
	for (size_t i = 0; table && i < table->n_queues; i++)
		if (queue_fds[i] >= 0)
			close(queue_fds[i]);
}

/* Once every process has its fds: the queues that were unlinked are unlinked again. */
void mqueues_unlink_restored(void)
{
	for (size_t i = 0; table && i < table->n_queues; i++)
		if (table->queues[i]->deleted && queue_fds[i] >= 0)
			mq_unlink(queue_names[i]);
}

const struct fd_kind_ops fd_kind_mqueue = {
	.name = "POSIX message queue",
	.dump = dump_mqueue,
	.open = open_mqueue,
	.kind = FD_KIND__FD_MQUEUE,
};
