/*
 * ns-files-tree: fds of namespaces of another process of the tree, as a sandbox or a test
 * harness keeps its child's to enter them later, and as a process that made its own keeps the
 * one it left.
 *   C: a child that first opens the tree's UTS namespace (/proc/self/ns/uts, fd 70), then
 *      unshares network, UTS, IPC and mount namespaces and names its host zoo-nsf-child.
 *   The parent (the root) then opens C's network, UTS, IPC and mount namespaces (fds 60-63).
 * After restore and SIGTERM: each of fds 60-63 is C's namespace of its kind (same inode as
 * /proc/C/ns/KIND) and not the parent's own; a process that joins fd 61 with setns finds the
 * host name zoo-nsf-child. C finds fd 70 the parent's UTS namespace, not its own, and joining
 * it gives the parent's host name.
 * --alone: the parent also holds at fd 64 the UTS namespace a child made and exited from (fds
 * alone hold it): tests/failure-cases.sh expects the dump to refuse it, naming the fd.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sched.h>

#define CHILD_HOST "zoo-nsf-child"

static const char *const kinds[] = { "net", "uts", "ipc", "mnt" };
enum { FIRST_FD = 60, OUTER_FD = 70 };

static void c_inode(ucontext_t *u)
{
	(void)u;
	int own = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	dup2(own, FIRST_FD + 1);
	close(own);
}
static void c_outer(ucontext_t *u) { (void)u; } /* C spoils its own fd 70 itself */
static const struct zoo_corruption corruptions[] = {
	{ "inode", c_inode, 0 },
	{ "outer", c_outer, 0 },
};

static char parent_host[65];
static volatile sig_atomic_t child_term;
static void on_child_term(int sig) { (void)sig; child_term = 1; }

static ino_t ino_of_fd(int fd)
{
	struct stat st;
	return fstat(fd, &st) ? 0 : st.st_ino;
}

static ino_t ino_of_path(const char *fmt, pid_t pid, const char *kind)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), fmt, pid, kind);
	return stat(path, &st) ? 0 : st.st_ino;
}

/* Does a process that joins UTS namespace fd find host name want? */
static int joined_host_is(int fd, const char *want)
{
	pid_t p = fork();
	if (p == 0) {
		char h[65] = "";
		_exit(setns(fd, CLONE_NEWUTS) || gethostname(h, sizeof(h) - 1) || strcmp(h, want));
	}
	int st = 0;
	return p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* A child in a UTS namespace of its own, until it is killed */
static void alone_child(int ready)
{
	if (unshare(CLONE_NEWUTS) || write(ready, "r", 1) != 1)
		_exit(1);
	pause();
	_exit(0);
}

/* fd 64: the UTS namespace of a child that made it and exited */
static void hold_alone_ns(void)
{
	char path[64];
	pid_t p = zoo_child_when_ready(alone_child, "unshare its UTS namespace");
	snprintf(path, sizeof(path), "/proc/%d/ns/uts", p);
	int fd = open(path, O_RDONLY);
	if (fd < 0 || dup2(fd, 64) != 64)
		zoo_die("%s: %s", path, strerror(errno));
	close(fd);
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
}

/* C: exits 0 if fd 70 is still the parent's UTS namespace after SIGTERM, else 1 */
static void child_main(int ready)
{
	struct sigaction sa = { .sa_handler = on_child_term };
	sigaction(SIGTERM, &sa, NULL);
	int outer = open("/proc/self/ns/uts", O_RDONLY);
	if (outer < 0 || dup2(outer, OUTER_FD) != OUTER_FD)
		_exit(2);
	close(outer);
	if (unshare(CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNS) ||
	    sethostname(CHILD_HOST, strlen(CHILD_HOST)) || write(ready, "r", 1) != 1)
		_exit(2);
	close(ready);
	while (!child_term)
		zoo_sleep_ms(5);
	if (zoo_corr && !strcmp(zoo_corr->tag, "outer")) {
		int own = open("/proc/self/ns/uts", O_RDONLY);
		dup2(own, OUTER_FD);
	}
	ino_t fd_ino = ino_of_fd(OUTER_FD);
	_exit(!(fd_ino && fd_ino == ino_of_path("/proc/%d/ns/%s", getppid(), "uts") &&
		fd_ino != ino_of_path("/proc/%d/ns/%s", getpid(), "uts") &&
		joined_host_is(OUTER_FD, parent_host)));
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (gethostname(parent_host, sizeof(parent_host) - 1))
		zoo_die("gethostname: %s", strerror(errno));
	pid_t c = zoo_child_when_ready(child_main, "unshare its namespaces");
	for (int k = 0; k < 4; k++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", c, kinds[k]);
		int fd = open(path, O_RDONLY);
		if (fd < 0 || dup2(fd, FIRST_FD + k) != FIRST_FD + k)
			zoo_die("%s: %s", path, strerror(errno));
		close(fd);
	}
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--alone"))
			hold_alone_ns();
	zoo_ready();
	zoo_wait();

	for (int k = 0; k < 4; k++) {
		ino_t fd_ino = ino_of_fd(FIRST_FD + k);
		CHECK("inode", fd_ino && fd_ino == ino_of_path("/proc/%d/ns/%s", c, kinds[k]) &&
			       fd_ino != ino_of_path("/proc/%d/ns/%s", getpid(), kinds[k]),
		      "fd %d is not the child's %s namespace (inode %lu; the child's %lu, the parent's %lu)",
		      FIRST_FD + k, kinds[k], (unsigned long)fd_ino,
		      (unsigned long)ino_of_path("/proc/%d/ns/%s", c, kinds[k]),
		      (unsigned long)ino_of_path("/proc/%d/ns/%s", getpid(), kinds[k]));
	}
	CHECK("inode", joined_host_is(FIRST_FD + 1, CHILD_HOST),
	      "joining fd %d does not give the host name " CHILD_HOST, FIRST_FD + 1);
	int st;
	CHECK("outer", zoo_child_bits(c, &st) == 0,
	      "the child's fd %d is not the parent's UTS namespace (status %#x)", OUTER_FD, st);
	return zoo_finish("4 namespaces of the child held by the parent, the parent's by the child");
}
