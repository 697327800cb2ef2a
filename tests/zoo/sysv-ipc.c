/*
 * sysv-ipc: SysV message queues, a semaphore set and shm segments in the program's own IPC
 * namespace (unshare(CLONE_NEWIPC) first, as in a container), and a child in it.
 *   Queue A: key KEY_A, mode 0640, owner 1234:5678, msg_qbytes 30000; 9 messages of types 1, 2,
 *            3 and LONG_MAX, 0 to 10000 bytes of binary data.
 *   Queue B: IPC_PRIVATE, mode 0600, id B_ID (kernel.msg_next_id: index 7, sequence 5);
 *            4 messages, then msg_qbytes lowered to 1000, below what it holds.
 *            The child waits in msgrcv() for a message of type 99 on it.
 *   Set S:   key KEY_S, mode 0660, made by uid 4321 gid 8765; 5 semaphores, 0 to 32767.
 *   Segment U: key KEY_U, mode 0604, 3 pages + 100 bytes of known content, made by 4321:8765,
 *            attached by nobody. Segment M: IPC_PRIVATE, 2 pages, attached by the parent (and
 *            by the child, through fork).
 *   POSIX message queue "/in-ns" of the namespace at fd 85 with 2 messages.
 *   Sysctls: kernel.msgmax 12000 (the 10000-byte message needs it), kernel.msgmnb 20000
 *            (below queue A's msg_qbytes), kernel.msgmni 1 (below the 2 queues in use).
 * After restore and SIGTERM: still in an IPC namespace other than its parent's; the same ids,
 * keys, modes, owners and creators, msg_qbytes; every message exactly once, in order; the
 * semaphore values; both segments' content; the sysctls; then the child gets its message.
 * ZOO_IPC_SPLIT=1: the child makes an IPC namespace of its own (a tree in two IPC namespaces,
 * which a dump must refuse) and writes its pid to $ZOO_TMPDIR/child.pid.
 * Blocks in: nanosleep (parent), msgrcv (child).
 */
#include "zoo.h"
#include <limits.h>
#include <mqueue.h>
#include <sched.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>

#define KEY_A 0x5a5a0001
#define KEY_S 0x5a5a0002
#define KEY_U 0x5a5a0003
#define QBYTES_A 30000
#define QBYTES_B 1000
#define B_ID "163847" /* 5 * 32768 + 7 */
#define U_SIZE (3 * 4096 + 100)
#define M_SIZE (2 * 4096)
#define CREATOR_UID 4321
#define CREATOR_GID 8765
#define NSEMS 5
#define WAKE "wake-up!"

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

struct zmsg {
	long type;
	size_t len;
	unsigned seed;
};

static const struct zmsg msgs_a[] = {
	{ 1, 0, 1 },	 { 2, 1, 2 },	  { 1, 100, 3 }, { 3, 3000, 4 },  { 2, 8, 5 },
	{ 1, 10000, 6 }, { LONG_MAX, 17, 7 }, { 3, 255, 8 }, { 2, 4096, 9 },
};
static const struct zmsg msgs_b[] = { { 5, 50, 11 }, { 4, 2000, 12 }, { 5, 0, 13 }, { 6, 700, 14 } };
static const unsigned short sem_values[NSEMS] = { 0, 1, 7, 32767, 12345 };
static const struct {
	const char *name, *value;
} sysctls[] = { { "msgmax", "12000" }, { "msgmnb", "20000" }, { "msgmni", "1" } };

static int qa, qb, sem, shm_u, shm_m;
static unsigned char *m_addr;
static ino_t host_ns;
static pid_t kid;
static int split;
static struct {
	long type;
	unsigned char data[16384];
} mbuf;
static unsigned char expect[16384];

static ino_t ipc_ns_ino_of(const char *pid)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%s/ns/ipc", pid);
	return stat(path, &st) ? 0 : st.st_ino;
}

static ino_t ipc_ns_ino(void)
{
	return ipc_ns_ino_of("self");
}

/* The namespace around the program: its parent's, where it can see it (the inode number of the
 * one it started in may be reused once that namespace is gone, across a dump). */
static ino_t around_ns_ino(void)
{
	char ppid[16];
	snprintf(ppid, sizeof(ppid), "%d", (int)getppid());
	ino_t ino = getppid() > 0 ? ipc_ns_ino_of(ppid) : 0;
	return ino ? ino : host_ns;
}

static void send_all(int q, const struct zmsg *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		mbuf.type = m[i].type;
		zoo_fill(mbuf.data, m[i].len, m[i].seed);
		if (msgsnd(q, &mbuf, m[i].len, IPC_NOWAIT))
			zoo_die("msgsnd of message %zu (%zu bytes): %s", i, m[i].len, strerror(errno));
	}
}

static void set_sysctl(const char *name, const char *value)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/sys/kernel/%s", name);
	if (zoo_write_file(path, value, strlen(value)))
		zoo_die("cannot set %s: %s", path, strerror(errno));
}

/* Make objects as their creator: this thread's effective ids only (single-threaded here). */
static void as_creator(int on)
{
	if (on ? syscall(SYS_setresgid, -1, CREATOR_GID, -1) || syscall(SYS_setresuid, -1, CREATOR_UID, -1)
	       : syscall(SYS_setresuid, -1, 0, -1) || syscall(SYS_setresgid, -1, 0, -1))
		zoo_die("setresuid: %s", strerror(errno));
}

static void child_main(void)
{
	char path[600];
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (split) {
		snprintf(path, sizeof(path), "%s/child.pid", zoo_tmpdir());
		snprintf(path + 500, 100, "%d\n", (int)getpid());
		zoo_write_file(path, path + 500, strlen(path + 500));
		if (unshare(CLONE_NEWIPC))
			_exit(3);
		for (;;)
			pause();
	}
	struct {
		long type;
		char data[64];
	} m;
	ssize_t n = msgrcv(qb, &m, sizeof(m.data), 99, 0);
	_exit(n == (ssize_t)strlen(WAKE) && !memcmp(m.data, WAKE, n) ? 0 : 1);
}

/* Every message of queue q, read (and taken) in queue order, against the expected list. */
static void check_queue(const char *name, int q, const struct zmsg *m, size_t n)
{
	int used[16] = { 0 }, in_order = 1, got_n = 0;

	for (;;) {
		ssize_t len = msgrcv(q, &mbuf, sizeof(mbuf.data), 0, IPC_NOWAIT);
		if (len < 0) {
			CHECK("messages", errno == ENOMSG, "queue %s: msgrcv: %s", name, strerror(errno));
			break;
		}
		size_t k;
		for (k = 0; k < n; k++) {
			if (used[k] || m[k].type != mbuf.type || m[k].len != (size_t)len)
				continue;
			zoo_fill(expect, m[k].len, m[k].seed);
			if (!memcmp(expect, mbuf.data, len))
				break;
		}
		if (!CHECK("messages", k < n, "queue %s: message %d (type %ld, %zd bytes) is not one sent, or twice",
			   name, got_n, mbuf.type, len))
			break;
		used[k] = 1;
		in_order &= k == (size_t)got_n;
		got_n++;
	}
	CHECK("messages", got_n == (int)n, "queue %s: %d messages, expected %zu", name, got_n, n);
	CHECK("order", in_order, "queue %s: the messages are not in the order sent", name);
}

static int check_perm(const char *name, const struct ipc_perm *p, key_t key, unsigned mode, uid_t uid,
		      gid_t gid, uid_t cuid, gid_t cgid)
{
	CHECK("keys", p->__key == key, "%s: key %#x, expected %#x", name, p->__key, key);
	CHECK("modes", (p->mode & 0777) == mode, "%s: mode %o, expected %o", name, p->mode & 0777, mode);
	return CHECK("owner", p->uid == uid && p->gid == gid && p->cuid == cuid && p->cgid == cgid,
		     "%s: owner %u:%u creator %u:%u", name, p->uid, p->gid, p->cuid, p->cgid);
}

/* ---- corruptions, after SIGTERM ---- */

static void c_ids(ucontext_t *u)
{
	(void)u; /* U removed and made again: a new id */
	shmctl(shm_u, IPC_RMID, NULL);
	shmget(KEY_U, U_SIZE, IPC_CREAT | 0604);
}
static void c_keys(ucontext_t *u)
{
	(void)u; /* S made again with its id and another key */
	semctl(sem, 0, IPC_RMID);
	char id[16];
	snprintf(id, sizeof(id), "%d", sem);
	zoo_write_file("/proc/sys/kernel/sem_next_id", id, strlen(id));
	semget(KEY_S + 1, NSEMS, IPC_CREAT | 0660);
}
static void c_modes(ucontext_t *u)
{
	struct msqid_ds ds;
	(void)u;
	msgctl(qb, IPC_STAT, &ds);
	ds.msg_perm.mode = 0666;
	msgctl(qb, IPC_SET, &ds);
}
static void c_owner(ucontext_t *u)
{
	struct msqid_ds ds;
	(void)u; /* (not A: its msg_qbytes above msgmnb would need CAP_SYS_RESOURCE for IPC_SET) */
	msgctl(qb, IPC_STAT, &ds);
	ds.msg_perm.uid = 1;
	msgctl(qb, IPC_SET, &ds);
}
static void c_qbytes(ucontext_t *u)
{
	struct msqid_ds ds;
	(void)u;
	msgctl(qa, IPC_STAT, &ds);
	ds.msg_qbytes = QBYTES_A / 3;
	msgctl(qa, IPC_SET, &ds);
}
static void c_messages(ucontext_t *u)
{
	(void)u; /* the first message of type 2 is taken */
	msgrcv(qa, &mbuf, sizeof(mbuf.data), 2, IPC_NOWAIT);
}
static void c_order(ucontext_t *u)
{
	(void)u; /* the first message of type 1 goes to the end */
	ssize_t len = msgrcv(qa, &mbuf, sizeof(mbuf.data), 1, IPC_NOWAIT);
	if (len >= 0)
		msgsnd(qa, &mbuf, len, IPC_NOWAIT);
}
static void c_semaphores(ucontext_t *u)
{
	struct sembuf op = { .sem_num = 2, .sem_op = 1 };
	(void)u;
	semop(sem, &op, 1);
}
static void c_segment(ucontext_t *u)
{
	(void)u;
	unsigned char *p = shmat(shm_u, NULL, 0);
	if (p != (void *)-1) {
		p[U_SIZE - 1] ^= 1;
		shmdt(p);
	}
}
static void c_attached(ucontext_t *u) { (void)u; m_addr[4097] ^= 1; }
static void c_sysctl(ucontext_t *u) { (void)u; set_sysctl("msgmax", "8192"); }
static void c_namespace(ucontext_t *u)
{
	static char buf[32768]; /* getdents64: opendir would allocate */
	int dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long n;
	(void)u; /* into the host's namespace, that of any process still in it */
	while (dfd >= 0 && (n = syscall(SYS_getdents64, dfd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			char path[300];
			struct stat st;
			off += d->d_reclen;
			snprintf(path, sizeof(path), "/proc/%s/ns/ipc", d->d_name);
			if (d->d_name[0] < '1' || d->d_name[0] > '9' || stat(path, &st) || st.st_ino != host_ns)
				continue;
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			int ok = fd >= 0 && setns(fd, CLONE_NEWIPC) == 0;
			if (fd >= 0)
				close(fd);
			if (ok) {
				close(dfd);
				return;
			}
		}
	}
	if (dfd >= 0)
		close(dfd);
}
static void c_child(ucontext_t *u) { (void)u; kill(kid, SIGKILL); }
static void c_posix_mq(ucontext_t *u) { (void)u; char b[64]; mq_receive(85, b, sizeof(b), NULL); }

static const struct zoo_corruption corruptions[] = {
	{ "ids", c_ids, 0 },	       { "keys", c_keys, 0 },	   { "modes", c_modes, 0 },
	{ "owner", c_owner, 0 },       { "qbytes", c_qbytes, 0 },  { "messages", c_messages, 0 },
	{ "order", c_order, 0 },       { "semaphores", c_semaphores, 0 }, { "segment", c_segment, 0 },
	{ "attached", c_attached, 0 }, { "sysctl", c_sysctl, 0 },  { "namespace", c_namespace, 0 },
	{ "child", c_child, 0 },       { "posix-mq", c_posix_mq, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	const char *e = getenv("ZOO_IPC_SPLIT");
	split = e && *e == '1';
	host_ns = ipc_ns_ino();
	if (unshare(CLONE_NEWIPC))
		zoo_die("unshare(CLONE_NEWIPC): %s", strerror(errno));
	set_sysctl("msgmax", "12000");
	set_sysctl("msgmnb", "32000"); /* msg_qbytes above it would need CAP_SYS_RESOURCE */

	struct msqid_ds mds;
	qa = msgget(KEY_A, IPC_CREAT | IPC_EXCL | 0640);
	set_sysctl("msg_next_id", B_ID);
	qb = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (qa < 0 || qb != atoi(B_ID))
		zoo_die("msgget: %d, %d: %s", qa, qb, strerror(errno));
	msgctl(qa, IPC_STAT, &mds);
	mds.msg_perm.uid = 1234;
	mds.msg_perm.gid = 5678;
	mds.msg_qbytes = QBYTES_A;
	if (msgctl(qa, IPC_SET, &mds))
		zoo_die("msgctl IPC_SET: %s", strerror(errno));
	send_all(qa, msgs_a, sizeof(msgs_a) / sizeof(msgs_a[0]));
	send_all(qb, msgs_b, sizeof(msgs_b) / sizeof(msgs_b[0]));
	msgctl(qb, IPC_STAT, &mds);
	mds.msg_qbytes = QBYTES_B;
	if (msgctl(qb, IPC_SET, &mds))
		zoo_die("msgctl IPC_SET: %s", strerror(errno));

	as_creator(1);
	sem = semget(KEY_S, NSEMS, IPC_CREAT | IPC_EXCL | 0660);
	shm_u = shmget(KEY_U, U_SIZE, IPC_CREAT | IPC_EXCL | 0604);
	as_creator(0);
	shm_m = shmget(IPC_PRIVATE, M_SIZE, IPC_CREAT | 0600);
	if (sem < 0 || shm_u < 0 || shm_m < 0)
		zoo_die("semget/shmget: %s", strerror(errno));
	if (semctl(sem, 0, SETALL, (union semun){ .array = (unsigned short *)sem_values }))
		zoo_die("SETALL: %s", strerror(errno));
	unsigned char *u = shmat(shm_u, NULL, 0);
	m_addr = shmat(shm_m, NULL, 0);
	if (u == (void *)-1 || m_addr == (void *)-1)
		zoo_die("shmat: %s", strerror(errno));
	zoo_fill(u, U_SIZE, 91);
	zoo_fill(m_addr, M_SIZE, 92);
	shmdt(u);
	set_sysctl("msgmni", "1");
	set_sysctl("msgmnb", "20000");
	struct mq_attr mqa = { .mq_maxmsg = 4, .mq_msgsize = 64 };
	mqd_t pq = mq_open("/in-ns", O_RDWR | O_NONBLOCK | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &mqa);
	if (pq < 0 || dup2(pq, 85) != 85 || mq_send(85, "first", 5, 1) || mq_send(85, "second", 6, 1))
		zoo_die("POSIX mqueue in the namespace: %s", strerror(errno));
	close(pq);

	kid = fork();
	if (kid == 0)
		child_main();
	if (kid < 0)
		zoo_die("fork: %s", strerror(errno));
	if (split) { /* until the child is in its own namespace */
		char path[64];
		struct stat st;
		snprintf(path, sizeof(path), "/proc/%d/ns/ipc", (int)zoo_proc_pid(kid));
		for (int i = 0; i < 500 && (stat(path, &st) || st.st_ino == ipc_ns_ino()); i++)
			zoo_sleep_ms(10);
	}
	zoo_ready();
	zoo_wait();

	int st = 0;
	ino_t now = ipc_ns_ino();
	if (!CHECK("namespace", now && now != around_ns_ino(), "IPC namespace ipc:[%lu] is the host's", (unsigned long)now)) {
		kill(kid, SIGKILL); /* and not a look at the host's objects */
		waitpid(kid, &st, 0);
		return zoo_finish(NULL);
	}
	struct msginfo mi;
	struct seminfo si;
	struct shm_info hi;
	struct semid_ds sds;
	struct shmid_ds hds;
	msgctl(0, MSG_INFO, (struct msqid_ds *)&mi);
	semctl(0, 0, SEM_INFO, (union semun){ .buf = (struct semid_ds *)&si });
	shmctl(0, SHM_INFO, (struct shmid_ds *)&hi);
	CHECK("ids", mi.msgpool == 2 && si.semusz == 1 && hi.used_ids == 2,
	      "%d queues, %d semaphore sets, %d shm segments; expected 2, 1, 2", mi.msgpool, si.semusz, hi.used_ids);
	if (CHECK("ids", msgctl(qa, IPC_STAT, &mds) == 0, "queue A (id %d): %s", qa, strerror(errno))) {
		check_perm("queue A", &mds.msg_perm, KEY_A, 0640, 1234, 5678, 0, 0);
		CHECK("qbytes", mds.msg_qbytes == QBYTES_A, "queue A: msg_qbytes %lu", (unsigned long)mds.msg_qbytes);
	}
	if (CHECK("ids", msgctl(qb, IPC_STAT, &mds) == 0, "queue B (id %d): %s", qb, strerror(errno))) {
		check_perm("queue B", &mds.msg_perm, IPC_PRIVATE, 0600, 0, 0, 0, 0);
		CHECK("qbytes", mds.msg_qbytes == QBYTES_B, "queue B: msg_qbytes %lu", (unsigned long)mds.msg_qbytes);
	}
	if (CHECK("ids", semctl(sem, 0, IPC_STAT, (union semun){ .buf = &sds }) == 0, "set S (id %d): %s", sem,
		  strerror(errno))) {
		check_perm("set S", &sds.sem_perm, KEY_S, 0660, CREATOR_UID, CREATOR_GID, CREATOR_UID, CREATOR_GID);
		unsigned short vals[NSEMS] = { 0 };
		CHECK("semaphores", sds.sem_nsems == NSEMS &&
			      semctl(sem, 0, GETALL, (union semun){ .array = vals }) == 0 &&
			      !memcmp(vals, sem_values, sizeof(vals)),
		      "set S: %lu semaphores, values %u %u %u %u %u", (unsigned long)sds.sem_nsems, vals[0], vals[1],
		      vals[2], vals[3], vals[4]);
	}
	if (CHECK("ids", shmctl(shm_u, IPC_STAT, &hds) == 0, "segment U (id %d): %s", shm_u, strerror(errno))) {
		check_perm("segment U", &hds.shm_perm, KEY_U, 0604, CREATOR_UID, CREATOR_GID, CREATOR_UID,
			   CREATOR_GID);
		CHECK("ids", hds.shm_segsz == U_SIZE && hds.shm_nattch == 0, "segment U: %zu bytes, %lu attaches",
		      (size_t)hds.shm_segsz, (unsigned long)hds.shm_nattch);
		u = shmat(shm_u, NULL, SHM_RDONLY);
		CHECK("segment", u != (void *)-1 && zoo_check_fill(u, U_SIZE, 91) < 0, "segment U: content differs");
		if (u != (void *)-1)
			shmdt(u);
	}
	if (CHECK("ids", shmctl(shm_m, IPC_STAT, &hds) == 0, "segment M (id %d): %s", shm_m, strerror(errno))) {
		check_perm("segment M", &hds.shm_perm, IPC_PRIVATE, 0600, 0, 0, 0, 0);
		CHECK("ids", hds.shm_segsz == M_SIZE && hds.shm_nattch == 2, "segment M: %zu bytes, %lu attaches",
		      (size_t)hds.shm_segsz, (unsigned long)hds.shm_nattch);
	}
	CHECK("attached", zoo_check_fill(m_addr, M_SIZE, 92) < 0, "segment M: content differs");
	for (size_t i = 0; i < sizeof(sysctls) / sizeof(sysctls[0]); i++) {
		char path[64], val[64] = "";
		snprintf(path, sizeof(path), "/proc/sys/kernel/%s", sysctls[i].name);
		zoo_read_file(path, val, sizeof(val));
		val[strcspn(val, "\n")] = 0;
		CHECK("sysctl", !strcmp(val, sysctls[i].value), "kernel.%s is %s, expected %s", sysctls[i].name, val,
		      sysctls[i].value);
	}
	char pm1[64] = "", pm2[64] = "";
	ssize_t n1 = mq_receive(85, pm1, sizeof(pm1), NULL), n2 = mq_receive(85, pm2, sizeof(pm2), NULL);
	CHECK("posix-mq", n1 == 5 && !memcmp(pm1, "first", 5) && n2 == 6 && !memcmp(pm2, "second", 6),
	      "POSIX queue /in-ns gave %zd and %zd bytes", n1, n2);
	check_queue("A", qa, msgs_a, sizeof(msgs_a) / sizeof(msgs_a[0]));
	check_queue("B", qb, msgs_b, sizeof(msgs_b) / sizeof(msgs_b[0]));

	if (split) {
		kill(kid, SIGKILL);
		waitpid(kid, &st, 0);
	} else {
		mbuf.type = 99;
		memcpy(mbuf.data, WAKE, strlen(WAKE));
		msgsnd(qb, &mbuf, strlen(WAKE), IPC_NOWAIT);
		for (int i = 0; i < 500 && waitpid(kid, &st, WNOHANG) == 0; i++)
			zoo_sleep_ms(10);
		CHECK("child", WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child did not get its message (status %#x)", st);
		if (!WIFEXITED(st)) {
			kill(kid, SIGKILL);
			waitpid(kid, &st, 0);
		}
	}
	shmdt(m_addr);
	mq_unlink("/in-ns");
	return zoo_finish("2 queues, 13 messages, 1 semaphore set, 2 shm segments, a POSIX queue in its own IPC namespace");
}
