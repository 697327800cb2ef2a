/*
 * ipc-ns-nested: a child in an IPC namespace of its own, as `bwrap --unshare-ipc`, `unshare -i`
 * or systemd's PrivateIPC= make one: unshare(CLONE_NEWIPC), then its sysctls set apart from
 * the defaults (kernel.msgmax 4000, kernel.shm_rmid_forced 1, fs.mqueue.msg_max 20,
 * kernel.msg_next_id 1234: its next message queue gets that id), then a grandchild (in it).
 * Where /proc/sys is read-only (a container's) the sysctls stay as the kernel made them.
 * Before its sysctls the child makes, in its namespace, a message queue holding 3 messages
 * (types 1, 7, 1; the last 3000 bytes) and a set of 3 semaphores (5, 0, 9), the first taken by
 * the grandchild (no SEM_UNDO).
 * After restore and SIGTERM: the child is in another IPC namespace than the parent, the
 * grandchild in the child's; the sysctls are as before; the queue and the set have their ids,
 * keys, modes, messages in order and values; a message queue the child makes gets id 1234
 * (when it could set it), with a key the parent's namespace does not know.
 * --with-shm: the child makes a SysV shm segment too; --with-undo: the grandchild takes its
 * semaphore with SEM_UNDO (tests/failure-cases.sh expects the dump to refuse either).
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sched.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>

#define KEY 0x5a6e0001

enum { B_NS = 1, B_SYSCTL = 2, B_NEXT_ID = 4, B_GRANDCHILD = 8, B_OBJECTS = 16 };

static int corrupting(const char *tag) { return zoo_corr && !strcmp(zoo_corr->tag, tag); }

static ino_t ipc_ns(pid_t pid)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", pid);
	return stat(path, &st) ? 0 : st.st_ino;
}

static const char *const sysctls[][2] = {
	{ "/proc/sys/kernel/msgmax", "4000\n" },
	{ "/proc/sys/kernel/shm_rmid_forced", "1\n" },
	{ "/proc/sys/fs/mqueue/msg_max", "20\n" },
};
#define NR_SYSCTLS (sizeof(sysctls) / sizeof(sysctls[0]))
static char before[NR_SYSCTLS][32]; /* as read once set (or not: read-only) */
static int settable;

static int queue_id, set_id; /* the child's objects */
static int with_undo;
static unsigned char big[3000];

struct zoo_msg {
	long type;
	char text[3000];
};

static void make_objects(void)
{
	struct zoo_msg m = { 1, "first" };
	queue_id = msgget(KEY + 2, IPC_CREAT | IPC_EXCL | 0640);
	set_id = semget(KEY + 3, 3, IPC_CREAT | IPC_EXCL | 0604);
	unsigned short values[3] = { 5, 0, 9 };
	zoo_fill(big, sizeof(big), 71);
	if (queue_id < 0 || set_id < 0 || msgsnd(queue_id, &m, 6, 0) ||
	    (m.type = 7, strcpy(m.text, "seventh"), msgsnd(queue_id, &m, 8, 0)) ||
	    (m.type = 1, memcpy(m.text, big, sizeof(big)), msgsnd(queue_id, &m, sizeof(big), 0)) ||
	    semctl(set_id, 0, SETALL, values))
		zoo_die("child: its queue and set: %s", strerror(errno));
}

/* The queue's messages in order and the set's values (the grandchild took 1 of the first). */
static int objects_ok(void)
{
	struct zoo_msg m;
	unsigned short v[3];
	int ok = msgget(KEY + 2, 0) == queue_id && semget(KEY + 3, 0, 0) == set_id &&
		 msgrcv(queue_id, &m, sizeof(m.text), 0, IPC_NOWAIT) == 6 && m.type == 1 &&
		 !strcmp(m.text, "first") && msgrcv(queue_id, &m, sizeof(m.text), 0, IPC_NOWAIT) == 8 &&
		 m.type == 7 && !strcmp(m.text, "seventh") &&
		 msgrcv(queue_id, &m, sizeof(m.text), 0, IPC_NOWAIT) == (ssize_t)sizeof(big) && m.type == 1 &&
		 !memcmp(m.text, big, sizeof(big)) && msgrcv(queue_id, &m, sizeof(m.text), 0, IPC_NOWAIT) < 0 &&
		 !semctl(set_id, 0, GETALL, v) && v[0] == 4 && v[1] == 0 && v[2] == 9;
	struct msqid_ds q;
	return ok && !msgctl(queue_id, IPC_STAT, &q) && (q.msg_perm.mode & 0777) == 0640;
}

static int child_checks(pid_t gc)
{
	int bits = 0, st = 0;

	if (corrupting("sysctl"))
		zoo_write_file(sysctls[0][0], "8192\n", 5);
	if (corrupting("ns"))
		unshare(CLONE_NEWIPC);
	if (corrupting("objects")) {
		struct zoo_msg m;
		msgrcv(queue_id, &m, sizeof(m.text), 7, IPC_NOWAIT);
	}
	bits |= objects_ok() ? 0 : B_OBJECTS;
	/* (the parent's namespace as it is now: a restore makes new ones, whose inode numbers may
	 * be those the dump freed) */
	bits |= ipc_ns(getpid()) == ipc_ns(getppid()) || !ipc_ns(getpid()) ? B_NS : 0;
	for (size_t i = 0; i < NR_SYSCTLS; i++)
		bits |= zoo_file_is(sysctls[i][0], before[i]) ? 0 : B_SYSCTL;
	int q = msgget(KEY, IPC_CREAT | IPC_EXCL | 0600);
	bits |= q < 0 || (settable && q != 1234) ? B_NEXT_ID : 0;
	if (q >= 0)
		msgctl(q, IPC_RMID, NULL);
	bits |= ipc_ns(gc) != ipc_ns(getpid()) ? B_GRANDCHILD : 0;
	kill(gc, SIGTERM);
	bits |= waitpid(gc, &st, 0) != gc || !WIFEXITED(st) || WEXITSTATUS(st) ? B_GRANDCHILD : 0;
	return bits;
}

static void c_child(ucontext_t *u) { (void)u; }

static const struct zoo_corruption corruptions[] = {
	{ "sysctl", c_child, 0 }, /* the child changes kernel.msgmax */
	{ "ns", c_child, 0 },     /* the child moves to yet another IPC namespace */
	{ "objects", c_child, 0 }, /* the child takes the queue's second message */
};

int main(int argc, char **argv)
{
	int ready[2];
	pid_t child;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	int with_shm = argc > 1 && !strcmp(argv[argc - 1], "--with-shm");
	with_undo = argc > 1 && !strcmp(argv[argc - 1], "--with-undo");
	settable = !access("/proc/sys/kernel/msgmax", W_OK); /* (the parent's view, for the message) */
	if (pipe(ready))
		zoo_die("pipe");
	if ((child = fork()) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* (a failed run leaves nothing) */
		close(ready[0]);
		if (unshare(CLONE_NEWIPC))
			zoo_die("child: unshare(CLONE_NEWIPC): %s", strerror(errno));
		if (with_shm && shmget(KEY + 1, 4096, IPC_CREAT | 0600) < 0)
			zoo_die("child: shmget: %s", strerror(errno));
		make_objects();
		settable = !access("/proc/sys/kernel/msgmax", W_OK);
		for (size_t i = 0; i < NR_SYSCTLS; i++) {
			if (settable && zoo_write_file(sysctls[i][0], sysctls[i][1], strlen(sysctls[i][1])))
				zoo_die("child: %s: %s", sysctls[i][0], strerror(errno));
			if (zoo_read_file(sysctls[i][0], before[i], sizeof(before[i])) <= 0)
				zoo_die("child: %s: %s", sysctls[i][0], strerror(errno));
		}
		if (settable && zoo_write_file("/proc/sys/kernel/msg_next_id", "1234\n", 5))
			zoo_die("child: msg_next_id: %s", strerror(errno));
		pid_t gc = fork();
		if (gc == 0) {
			struct sembuf take = { 0, -1, with_undo ? SEM_UNDO : 0 };
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (semop(set_id, &take, 1))
				_exit(2);
			zoo_child_wait_term();
			_exit(ipc_ns(getpid()) != ipc_ns(getppid()));
		}
		while (gc > 0 && semctl(set_id, 0, GETVAL) != 4) /* (the grandchild took its 1) */
			zoo_sleep_ms(1);
		if (gc < 0 || write(ready[1], "", 1) != 1)
			_exit(255);
		close(ready[1]);
		zoo_child_wait_term();
		_exit(child_checks(gc));
	}
	char c;
	close(ready[1]);
	if (child < 0 || read(ready[0], &c, 1) != 1)
		zoo_die("the child did not make its namespace");
	close(ready[0]);
	zoo_ready();
	zoo_wait();

	CHECK("ns", msgget(KEY, 0) < 0 && errno == ENOENT, "the parent's namespace has the child's queue");
	int st;
	int bits = zoo_child_bits(child, &st);
	CHECK("child", bits != 255, "the child was killed or failed (status %#x)", st);
	if (bits != 255) {
		CHECK("ns", !(bits & B_NS), "the child is in the parent's IPC namespace");
		CHECK("sysctl", !(bits & B_SYSCTL), "the child's IPC sysctls are not as it set them");
		CHECK("sysctl", !(bits & B_NEXT_ID), "the child's next message queue id is not 1234");
		CHECK("ns", !(bits & B_GRANDCHILD), "the grandchild is not in the child's IPC namespace");
		CHECK("objects", !(bits & B_OBJECTS), "the child's message queue or semaphore set is not as it was");
	}
	return zoo_finish(settable ? "a child in an IPC namespace of its own with its sysctls, a queue and a semaphore set"
				   : "a child in an IPC namespace of its own with a queue and a semaphore set (/proc/sys read-only)");
}
