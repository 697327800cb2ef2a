/*
 * ipc-ns-nested: a child in an IPC namespace of its own, as `bwrap --unshare-ipc`, `unshare -i`
 * or systemd's PrivateIPC= make one: unshare(CLONE_NEWIPC), then its sysctls set apart from
 * the defaults (kernel.msgmax 4000, kernel.shm_rmid_forced 1, fs.mqueue.msg_max 20,
 * kernel.msg_next_id 1234: its next message queue gets that id), then a grandchild (in it).
 * Where /proc/sys is read-only (a container's) the sysctls stay as the kernel made them.
 * After restore and SIGTERM: the child is in another IPC namespace than the parent, the
 * grandchild in the child's; the sysctls are as before; a message queue the child makes gets
 * id 1234 (when it could set it), with a key the parent's namespace does not know.
 * --with-queue: the child makes a message queue first (tests/failure-cases.sh expects the dump
 * to refuse a nested namespace holding objects).
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sched.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#define KEY 0x5a6e0001

enum { B_NS = 1, B_SYSCTL = 2, B_NEXT_ID = 4, B_GRANDCHILD = 8 };

static volatile sig_atomic_t term;
static void on_term(int sig) { (void)sig; term = 1; }
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

static void wait_term(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	while (!term)
		zoo_sleep_ms(10);
}

static int child_checks(pid_t gc, ino_t parent_ns)
{
	int bits = 0, st = 0;

	if (corrupting("sysctl"))
		zoo_write_file(sysctls[0][0], "8192\n", 5);
	if (corrupting("ns"))
		unshare(CLONE_NEWIPC);
	bits |= ipc_ns(getpid()) == parent_ns || !ipc_ns(getpid()) ? B_NS : 0;
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
};

int main(int argc, char **argv)
{
	int ready[2];
	pid_t child;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	int with_queue = argc > 1 && !strcmp(argv[argc - 1], "--with-queue");
	settable = !access("/proc/sys/kernel/msgmax", W_OK); /* (the parent's view, for the message) */
	ino_t parent_ns = ipc_ns(getpid());
	if (pipe(ready))
		zoo_die("pipe");
	if ((child = fork()) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* (a failed run leaves nothing) */
		close(ready[0]);
		if (unshare(CLONE_NEWIPC))
			zoo_die("child: unshare(CLONE_NEWIPC): %s", strerror(errno));
		if (with_queue && msgget(KEY + 1, IPC_CREAT | 0600) < 0)
			zoo_die("child: msgget: %s", strerror(errno));
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
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			wait_term();
			_exit(ipc_ns(getpid()) != ipc_ns(getppid()));
		}
		if (gc < 0 || write(ready[1], "", 1) != 1)
			_exit(255);
		close(ready[1]);
		wait_term();
		_exit(child_checks(gc, parent_ns));
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
	}
	return zoo_finish(settable ? "a child in an IPC namespace of its own with its sysctls"
				   : "a child in an IPC namespace of its own (/proc/sys read-only)");
}
