/*
 * pid-ns-nested: a PID namespace below the program's, as a sandbox or `unshare --pid --fork`
 * makes one: the root unshares CLONE_NEWPID, forks I (pid 1 there: its init), and goes back
 * to its own namespace for its next child (setns to its own pid namespace); I forks K (pid 2
 * there) and reaps it when it exits. Both stay in the root's process group and session (they
 * cannot name them: outside their namespace). A child S of the root, in the root's namespace,
 * is forked after (setns back).
 * After restore and SIGTERM: I is pid 1 and K pid 2 of one namespace whose parent is the
 * root's (NS_GET_PARENT), S is in the root's; I is K's parent; all in the root's group and
 * session; K exits when told (a pipe) and its init reaps it (waitpid in I: it reports K's
 * status 5 through a pipe).
 * pid-ns-session is this program with I in a session of its own (built with OWN_SESSION: I
 * calls setsid() before it forks K, as `bwrap --unshare-pid --new-session` does): I leads its
 * group and session, K is in them (each process names them by its own namespace's pids).
 * pid-ns-unshared is this program with the root staying with the new namespace for its
 * children (built with NO_SETNS_BACK, as `unshare --fork --pid` leaves itself; no S): after
 * restore its children's PID namespace (pid_for_children) is I's, and a child it forks then
 * is in it.
 * Blocks in: nanosleep (root), read (I, K, S).
 */
#include "zoo.h"
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#ifndef OWN_SESSION
#define OWN_SESSION 0
#endif
#ifndef NO_SETNS_BACK
#define NO_SETNS_BACK 0
#endif

static pid_t init_pid, k_pid, s_pid;
static int to_k[2], from_init[2], hold[2], creds[2], own_ns = -1;

static void c_ns(ucontext_t *u) { (void)u; kill(k_pid, SIGKILL); }
static const struct zoo_corruption corruptions[] = {
	{ "pidns", c_ns, 0 },
};

static ino_t ns_ino(pid_t pid, const char *kind)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", zoo_proc_pid(pid), kind);
	return stat(path, &st) ? 0 : st.st_ino;
}

/* The last id of pid's NSpid line (its pid in its own namespace), -1 if unknown */
static pid_t inner_pid(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", zoo_proc_pid(pid));
	return zoo_status_nspid(path);
}

static void run_k(void)
{
	char b = 'k';
	/* its pid as the root's namespace names it: the credentials the kernel puts on this */
	if (send(creds[1], &b, 1, 0) != 1)
		_exit(8);
	close(to_k[1]);
	if (read(to_k[0], &b, 1) != 1) /* nothing but the init's end: wait */
		_exit(9);
	_exit(5);
}

static void run_init(void)
{
	int st = 0;
	close(own_ns);
	close(from_init[0]);
	if (OWN_SESSION && setsid() < 0)
		_exit(1);
	if ((k_pid = fork()) == 0)
		run_k();
	close(to_k[0]);
	/* tell the root K's pid as its namespace gives it, then wait for K's end and reap it */
	if (write(from_init[1], &k_pid, sizeof(k_pid)) != sizeof(k_pid))
		_exit(1);
	pid_t w = waitpid(k_pid, &st, 0);
	int code = w == k_pid && WIFEXITED(st) ? WEXITSTATUS(st) : 100;
	if (write(from_init[1], &code, sizeof(code)) != sizeof(code))
		_exit(1);
	char b;
	close(hold[1]);
	(void)!read(hold[0], &b, 1); /* until the root is done */
	_exit(0);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	signal(SIGPIPE, SIG_IGN); /* (K killed by the corruption: its pipe has no reader) */
	int on = 1;
	if (pipe(to_k) || pipe(from_init) || pipe(hold) || socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, creds) ||
	    setsockopt(creds[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)))
		zoo_die("pipe: %s", strerror(errno));
	own_ns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (own_ns < 0 || unshare(CLONE_NEWPID))
		zoo_die("unshare(CLONE_NEWPID): %s", strerror(errno));
	if ((init_pid = fork()) == 0)
		run_init();
	if (init_pid < 0 || (!NO_SETNS_BACK && setns(own_ns, CLONE_NEWPID)))
		zoo_die("fork or setns back: %s", strerror(errno));
	close(own_ns);
	if (!NO_SETNS_BACK && (s_pid = fork()) == 0) {
		char b;
		close(hold[1]);
		(void)!read(hold[0], &b, 1);
		_exit(0);
	}
	close(from_init[1]);
	close(to_k[0]);
	close(hold[0]);
	pid_t k_inner;
	if (read(from_init[0], &k_inner, sizeof(k_inner)) != sizeof(k_inner) || k_inner != 2)
		zoo_die("K is not pid 2 of the new namespace (%d)", k_inner);
	/* K as this namespace names it */
	char b, control[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = { &b, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control) };
	struct cmsghdr *c = recvmsg(creds[0], &m, 0) == 1 ? CMSG_FIRSTHDR(&m) : NULL;
	if (!c || c->cmsg_type != SCM_CREDENTIALS)
		zoo_die("K did not say its pid");
	k_pid = ((struct ucred *)CMSG_DATA(c))->pid;
	close(creds[0]);
	close(creds[1]);
	zoo_ready();
	zoo_wait();

	ino_t mine = ns_ino(getpid(), "pid");

	ino_t inner = ns_ino(init_pid, "pid");
	int parent_ok = 0, fd = -1;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", zoo_proc_pid(init_pid));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		int pfd = ioctl(fd, NS_GET_PARENT);
		struct stat st;
		parent_ok = pfd >= 0 && !fstat(pfd, &st) && st.st_ino == mine;
		if (pfd >= 0)
			close(pfd);
		close(fd);
	}
	CHECK("pidns", inner && inner != mine && ns_ino(k_pid, "pid") == inner &&
			       (NO_SETNS_BACK || ns_ino(s_pid, "pid") == mine) && parent_ok,
	      "namespaces: root %lu, I %lu, K %lu, S %lu, I's parent namespace %s", (unsigned long)mine,
	      (unsigned long)inner, (unsigned long)ns_ino(k_pid, "pid"), (unsigned long)ns_ino(s_pid, "pid"),
	      parent_ok ? "the root's" : "another");
	CHECK("pidns", inner_pid(init_pid) == 1 && inner_pid(k_pid) == 2, "I is pid %d, K pid %d of their namespace",
	      inner_pid(init_pid), inner_pid(k_pid));
	pid_t group = OWN_SESSION ? init_pid : getpgrp(), session = OWN_SESSION ? init_pid : getsid(0);
	CHECK("pidns", getpgid(init_pid) == group && getpgid(k_pid) == group && getsid(init_pid) == session &&
			       getsid(k_pid) == session,
	      "groups %d %d, sessions %d %d (the root's %d, %d)", getpgid(init_pid), getpgid(k_pid), getsid(init_pid),
	      getsid(k_pid), getpgrp(), getsid(0));
	if (NO_SETNS_BACK) { /* its children go into I's namespace (while I, its init, lives) */
		ino_t children = ns_ino(getpid(), "pid_for_children"), forked = 0;
		int fst = 0;
		pid_t f = fork();
		if (f == 0) {
			zoo_sleep_ms(200);
			_exit(0);
		}
		if (f > 0) {
			forked = ns_ino(f, "pid");
			waitpid(f, &fst, 0);
		}
		CHECK("pidns", children == inner && forked == inner,
		      "its children's PID namespace is %lu, a child forked now is in %lu, I's is %lu",
		      (unsigned long)children, (unsigned long)forked, (unsigned long)inner);
	}
	int code = -1;
	CHECK("pidns", write(to_k[1], "x", 1) == 1 && read(from_init[0], &code, sizeof(code)) == sizeof(code) && code == 5,
	      "K's init did not reap it with its status 5 (%d)", code);
	close(hold[1]);
	int st;
	CHECK("pidns", waitpid(init_pid, &st, 0) == init_pid && WIFEXITED(st) && !WEXITSTATUS(st) &&
			       (NO_SETNS_BACK || waitpid(s_pid, &st, 0) == s_pid),
	      "I or S did not end well (status %#x)", st);
	return zoo_finish(OWN_SESSION	  ? "a nested PID namespace: its init (pid 1) leading a session, pid 2 in it"
			  : NO_SETNS_BACK ? "a nested PID namespace its maker keeps for its children (unshare --fork --pid)"
					  : "a nested PID namespace: its init (pid 1) and pid 2, in the root's group");
}
