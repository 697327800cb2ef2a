/*
 * SysV message queues of the tree's own IPC namespace (cr/ipc-ns.c runs these): every
 * message read in order with MSG_COPY, which leaves it queued; made again with the same id,
 * key, mode, owner and creator, refilled in order, msg_qbytes set last (a queue may hold more
 * than a lowered msg_qbytes allows).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>

#include "ipc-objects.h"
#include "log.h"
#include "task.h"
#include "util.h"

/* msgsnd() and msgrcv()'s buffer */
struct msg_buf {
	long mtype;
	char mtext[];
};

/* Every message of queue id, in order, left where it is. */
static int copy_messages(SysvMsgQueue *q, int id, const struct msqid_ds *ds)
{
	size_t cap = ds->msg_cbytes ? ds->msg_cbytes : 1;
	auto_free struct msg_buf *buf = xmalloc(sizeof(*buf) + cap);

	if (!buf || !(q->msgs = xzalloc(ds->msg_qnum * sizeof(*q->msgs))))
		return -ENOMEM;
	for (size_t n = 0; n < ds->msg_qnum; n++) {
		ssize_t len = msgrcv(id, buf, cap, (long)n, MSG_COPY | IPC_NOWAIT);
		if (len < 0) {
			pr_perror("dump: cannot copy message %zu of SysV message queue %d", n, id);
			return -errno;
		}
		SysvMsg *m = xzalloc(sizeof(*m));
		if (!m)
			return -ENOMEM;
		sysv_msg__init(m);
		q->msgs[q->n_msgs++] = m; /* freed with the image, whole or not */
		if (!(m->data.data = xzalloc(len)))
			return -ENOMEM;
		m->mtype = buf->mtype;
		m->data.len = len;
		memcpy(m->data.data, buf->mtext, len);
	}
	if (msgrcv(id, buf, cap, (long)ds->msg_qnum, MSG_COPY | IPC_NOWAIT) >= 0 || errno != ENOMSG) {
		pr_err("dump: SysV message queue %d changed while it was read", id);
		return -EAGAIN;
	}
	return 0;
}

int ipc_msg_save_all(IpcNs *ns)
{
	struct msginfo info;
	int max = msgctl(0, MSG_INFO, (struct msqid_ds *)&info), err;

	if (max < 0) {
		pr_perror("dump: cannot list SysV message queues");
		return -errno;
	}
	if (!(ns->msg_queues = xzalloc((max + 1) * sizeof(*ns->msg_queues))))
		return -ENOMEM;
	for (int idx = 0; idx <= max; idx++) {
		struct msqid_ds ds;
		int id = msgctl(idx, MSG_STAT_ANY, &ds);
		if (id < 0 && errno == EINVAL)
			continue; /* a free slot */
		if (id < 0) {
			pr_perror("dump: cannot read SysV message queue at index %d", idx);
			return -errno;
		}
		SysvMsgQueue *q = xzalloc(sizeof(*q));
		if (!q)
			return -ENOMEM;
		sysv_msg_queue__init(q);
		ns->msg_queues[ns->n_msg_queues++] = q;
		if (!(q->perm = ipc_perm_save(id, &ds.msg_perm)))
			return -ENOMEM;
		q->qbytes = ds.msg_qbytes;
		if ((err = copy_messages(q, id, &ds)))
			return err;
	}
	return 0;
}

int ipc_msg_validate(const char *image, const IpcNs *ns)
{
	auto_free const SysvPerm **perms = xzalloc((ns->n_msg_queues + 1) * sizeof(*perms));

	if (!perms)
		return -ENOMEM;
	for (size_t i = 0; i < ns->n_msg_queues; i++) {
		const SysvMsgQueue *q = ns->msg_queues[i];
		bool ok = ipc_perm_ok(q->perm, perms, i);
		for (size_t m = 0; ok && m < q->n_msgs; m++)
			ok = q->msgs[m]->mtype >= 1 && q->msgs[m]->mtype <= LONG_MAX &&
			     q->msgs[m]->data.len <= INT_MAX;
		if (!ok) {
			pr_err("image %s: message queue %zu (id %u) is invalid", image, i, q->perm->id);
			return -EINVAL;
		}
		perms[i] = q->perm;
	}
	return 0;
}

/* What queue q needs while it is refilled: its msg_qbytes may have been lowered under it. */
static unsigned long long queue_room(const SysvMsgQueue *q, unsigned long long *largest)
{
	unsigned long long bytes = 0;

	for (size_t m = 0; m < q->n_msgs; m++) {
		bytes += q->msgs[m]->data.len;
		*largest = ipc_max(*largest, q->msgs[m]->data.len);
	}
	return ipc_max(q->qbytes, ipc_max(bytes, q->n_msgs));
}

void ipc_msg_needs(const IpcNs *ns, unsigned long long *largest, unsigned long long *room)
{
	for (size_t i = 0; i < ns->n_msg_queues; i++)
		*room = ipc_max(*room, queue_room(ns->msg_queues[i], largest));
}

static int set_queue(int id, const SysvPerm *p, unsigned long qbytes)
{
	struct msqid_ds ds;

	if (msgctl(id, IPC_STAT, &ds) == 0) {
		ds.msg_perm.uid = p->uid;
		ds.msg_perm.gid = p->gid;
		ds.msg_perm.mode = p->mode;
		ds.msg_qbytes = qbytes;
		if (msgctl(id, IPC_SET, &ds) == 0)
			return 0;
	}
	pr_perror("restore: cannot set the owner, mode and size of SysV message queue %d", id);
	return -errno;
}

int ipc_msg_restore_one(const SysvMsgQueue *q)
{
	int id = q->perm->id, err;
	unsigned long long largest = 0, room = queue_room(q, &largest);

	/* room for every message first, then msg_qbytes as saved */
	if ((err = ipc_make_object(q->perm, 0)) || (err = set_queue(id, q->perm, room)))
		return err;
	auto_free struct msg_buf *buf = xzalloc(sizeof(*buf) + largest);
	if (!buf)
		return -ENOMEM;
	for (size_t m = 0; m < q->n_msgs; m++) {
		buf->mtype = q->msgs[m]->mtype;
		if (q->msgs[m]->data.len)
			memcpy(buf->mtext, q->msgs[m]->data.data, q->msgs[m]->data.len);
		if (msgsnd(id, buf, q->msgs[m]->data.len, IPC_NOWAIT)) {
			pr_perror("restore: cannot queue message %zu of SysV message queue %d", m, id);
			return -errno;
		}
	}
	return room == q->qbytes ? 0 : set_queue(id, q->perm, q->qbytes);
}

int ipc_msg_restore_all(const IpcNs *ns)
{
	int err;

	for (size_t i = 0; i < ns->n_msg_queues; i++)
		if ((err = ipc_msg_restore_one(ns->msg_queues[i])))
			return err;
	return 0;
}

int ipc_msg_key(int id, key_t *key)
{
	struct msqid_ds ds;

	if (msgctl(id, IPC_STAT, &ds))
		return -errno;
	*key = ds.msg_perm.__key;
	return 0;
}
