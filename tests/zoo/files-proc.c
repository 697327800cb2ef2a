/*
 * files-proc: fds of /proc files of its own, and of its own namespaces.
 *   fd 30: /proc/self/status, read up to offset 20; fd 31: /proc/self (a directory);
 *   fd 32: /proc/self/fd (a directory); fd 33: /proc/<child>/stat of its child (which sleeps);
 *   fd 34: /proc/1/status, of the init of the PID namespace /proc belongs to (this program in a
 *   container with a /proc of its own; the host's init, outside the tree, when the program is
 *   pid 1 of a PID namespace on the host's /proc: --container=pidns);
 *   fds 40..: /proc/self/ns/{net,uts,ipc,mnt,pid,pid_for_children,cgroup,time,user} (O_RDONLY),
 *   fd 49: /proc/self/ns/net with O_PATH;
 *   fd 35: /proc/self/status opened before the fork, read up to offset 10: one open file of
 *   the parent's /proc/PID that its child shares (the parent must run before it is opened);
 *   with --sent-up, fd 36: the child's /proc/self/status, which the child holds too and sent
 *   to its parent (SCM_RIGHTS): only the child can open it, and the parent was not forked by
 *   it (a restore refuses that before anything starts, tests/failure-cases.sh).
 * After restore and SIGTERM: fd 30 is at offset 20 and reads the status of this very process
 * (its pid), fd 31 and 32 are its /proc directories, fd 33 reads the child's stat, fd 34 is
 * still the file /proc/1/status (same inode; "Pid: 1") and not the restored tree's init's; every
 * namespace fd is the namespace the process is in (same inode as /proc/self/ns/NAME), with the
 * same flags; fd 35 reads this process's status at offset 10 and is the child's fd 35 (kcmp). Pids as /proc names them (zoo_proc_pid): /proc may be of another PID namespace
 * than the program's (tests/run-zoo.sh --container=pidns).
 * Blocks in: nanosleep (zoo_wait loop; the child's sleep loop).
 */
#include "zoo.h"
#include "zoo-net.h"
#include <linux/kcmp.h>
#include <sys/wait.h>

static const char *const ns_names[] = { "net", "uts", "ipc", "mnt", "pid", "pid_for_children",
					 "cgroup", "time", "user" };
#define NNS (int)(sizeof(ns_names) / sizeof(ns_names[0]))
static pid_t child;

static void c_offset(ucontext_t *u) { (void)u; lseek(30, 0, SEEK_SET); }
static void c_namespace(ucontext_t *u)
{
	(void)u; /* a namespace of another kind at fd 40 */
	int fd = open("/proc/self/ns/uts", O_RDONLY);
	dup2(fd, 40);
	close(fd);
}
static void c_child(ucontext_t *u) { (void)u; int fd = open("/proc/self/stat", O_RDONLY); dup2(fd, 33); close(fd); }
static void c_init(ucontext_t *u) { (void)u; int fd = open("/proc/self/status", O_RDONLY); dup2(fd, 34); close(fd); }
static void c_shared(ucontext_t *u)
{
	(void)u; /* the same file at the same offset, but no longer the child's */
	int fd = open("/proc/self/status", O_RDONLY);
	dup2(fd, 35);
	close(fd);
	lseek(35, 10, SEEK_SET);
}
static const struct zoo_corruption corruptions[] = {
	{ "offset", c_offset, 0 },
	{ "shared", c_shared, 0 },
	{ "namespace", c_namespace, 0 },
	{ "child", c_child, 0 },
	{ "init", c_init, 0 },
};

static void at(int fd, int got)
{
	if (got < 0 || (got != fd && (dup2(got, fd) != fd || close(got))))
		zoo_die("fd %d: %s", fd, strerror(errno));
}

int main(int argc, char **argv)
{
	char buf[4096], path[64];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	int sent_up = argc > 1 && !strcmp(argv[argc - 1], "--sent-up"), sp[2];
	at(35, open("/proc/self/status", O_RDONLY));
	if (read(35, buf, 10) != 10)
		zoo_die("read /proc/self/status: %s", strerror(errno));
	if (sent_up && socketpair(AF_UNIX, SOCK_DGRAM, 0, sp))
		zoo_die("socketpair: %s", strerror(errno));
	child = fork();
	if (child == 0) {
		if (sent_up) { /* its own status, held and sent to the parent */
			at(36, open("/proc/self/status", O_RDONLY));
			zoo_send_fd(sp[1], 36);
		}
		for (;;)
			zoo_sleep_ms(100);
	}
	if (sent_up) {
		at(36, zoo_recv_fd(sp[0]));
		close(sp[0]);
		close(sp[1]);
	}
	at(30, open("/proc/self/status", O_RDONLY));
	if (read(30, buf, 20) != 20)
		zoo_die("read /proc/self/status: %s", strerror(errno));
	at(31, open("/proc/self", O_RDONLY | O_DIRECTORY));
	at(32, open("/proc/self/fd", O_RDONLY | O_DIRECTORY));
	snprintf(path, sizeof(path), "/proc/%d/stat", zoo_proc_pid(child));
	at(33, open(path, O_RDONLY));
	at(34, open("/proc/1/status", O_RDONLY));
	for (int i = 0; i < NNS; i++) {
		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns_names[i]);
		at(40 + i, open(path, O_RDONLY));
	}
	at(49, open("/proc/self/ns/net", O_PATH));
	zoo_ready();
	zoo_wait();

	CHECK("offset", lseek(30, 0, SEEK_CUR) == 20, "fd 30 at offset %ld, expected 20", (long)lseek(30, 0, SEEK_CUR));
	ssize_t n = pread(30, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	char want[64];
	snprintf(want, sizeof(want), "\nPid:\t%d\n", zoo_proc_pid(getpid()));
	CHECK("offset", strstr(buf, want) != NULL, "fd 30 does not read this process's status");
	struct stat a, b;
	CHECK("offset", fstat(31, &a) == 0 && stat("/proc/self", &b) == 0 && a.st_ino == b.st_ino,
	      "fd 31 is not /proc/self");
	CHECK("offset", fstatat(32, "30", &a, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(a.st_mode),
	      "fd 32 does not list this process's fds");
	CHECK("shared", lseek(35, 0, SEEK_CUR) == 10, "fd 35 at offset %ld, expected 10", (long)lseek(35, 0, SEEK_CUR));
	n = pread(35, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	CHECK("shared", strstr(buf, want) != NULL, "fd 35 does not read this process's status");
	CHECK("shared", syscall(SYS_kcmp, getpid(), child, KCMP_FILE, 35, 35) == 0,
	      "fd 35 is not the child's fd 35 (one open file shared since the fork)");
	n = pread(33, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	pid_t proc_child = zoo_proc_pid(child);
	CHECK("child", atoi(buf) == proc_child, "fd 33 reads the stat of pid %d, expected %d (pid %d here)",
	      atoi(buf), proc_child, child);
	n = pread(34, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	CHECK("init", fstat(34, &a) == 0 && stat("/proc/1/status", &b) == 0 && a.st_ino == b.st_ino &&
			      a.st_dev == b.st_dev && strstr(buf, "\nPid:\t1\n") != NULL,
	      "fd 34 is not /proc/1/status (the init of /proc's PID namespace)");
	for (int i = 0; i < NNS; i++) {
		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns_names[i]);
		CHECK("namespace", fstat(40 + i, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
					   a.st_dev == b.st_dev && (fcntl(40 + i, F_GETFL) & O_ACCMODE) == O_RDONLY,
		      "fd %d is not %s", 40 + i, path);
	}
	CHECK("namespace", fstat(49, &a) == 0 && stat("/proc/self/ns/net", &b) == 0 && a.st_ino == b.st_ino &&
				   (fcntl(49, F_GETFL) & O_PATH),
	      "fd 49 is not an O_PATH fd of /proc/self/ns/net");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return zoo_finish("6 fds of /proc (one shared with its child), 10 of its namespaces");
}
