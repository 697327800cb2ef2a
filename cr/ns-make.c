/*
 * The helper that makes the tree's user namespace and the namespaces it owns, and the
 * launcher that clones the root into it (cr/ns-make.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "log.h"
#include "ns-helper.h"
#include "ns-make.h"
#include "tree-objects.h"
#include "util.h"

static struct user_ns_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_user_ns);
}

/* Its file in /proc/PID/ns. */
static const char *ns_file(int nstype)
{
	switch (nstype) {
	case CLONE_NEWNS: return "mnt";
	case CLONE_NEWNET: return "net";
	case CLONE_NEWIPC: return "ipc";
	default: return "?";
	}
}

bool id_map_inner(const IdMapLine *const *map, size_t n, uint32_t outer, uint32_t *inner)
{
	for (size_t i = 0; i < n; i++)
		if (outer >= map[i]->outer && outer - map[i]->outer < map[i]->count) {
			*inner = map[i]->inner + (outer - map[i]->outer);
			return true;
		}
	return false;
}

bool ns_make_tree_ids(const struct run_ctx *ctx, bool gid, uint32_t *ids, size_t n)
{
	const UserNs *ns = state_of(ctx)->img;
	bool all = true;

	for (size_t i = 0; ns && i < n; i++)
		all &= id_map_inner(gid ? (const IdMapLine *const *)ns->gid_map : (const IdMapLine *const *)ns->uid_map,
				    gid ? ns->n_gid_map : ns->n_uid_map, ids[i], &ids[i]);
	return all;
}

bool ns_make_groups_denied(const struct run_ctx *ctx)
{
	const UserNs *ns = state_of(ctx)->img;

	return ns && !ns->setgroups_allowed;
}

bool ns_make_tree_userns(const struct run_ctx *ctx)
{
	return state_of(ctx)->img != NULL;
}

bool ns_make_in_tree_userns(const struct run_ctx *ctx, int nstype)
{
	const struct user_ns_state *st = state_of(ctx);

	return st->img && (st->img->owned & (uint32_t)nstype);
}

/* The helper: unshares what stasis asks for, one kind at a time, and answers 0 or an errno. */
/* join: the user namespace to enter (-1: a new one, made as owner) */
static __attribute__((noreturn)) void serve(int sock, pid_t stasis, uid_t owner, int join)
{
	int32_t nstype, answer;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != stasis)
		_exit(1); /* stasis died before it could say */
	if (join >= 0)
		answer = setns(join, CLONE_NEWUSER) ? errno : 0;
	else
		answer = (owner && setresuid(-1, owner, -1)) || unshare(CLONE_NEWUSER) ? errno : 0;
	prctl(PR_SET_DUMPABLE, 1); /* its /proc files stay stasis's to write */
	if (write(sock, &answer, sizeof(answer)) != sizeof(answer) || answer)
		_exit(1);
	while (read(sock, &nstype, sizeof(nstype)) == sizeof(nstype)) {
		answer = unshare(nstype) ? errno : 0;
		if (write(sock, &answer, sizeof(answer)) != sizeof(answer))
			_exit(1);
	}
	_exit(0);
}

static int write_map(pid_t pid, const char *name, const IdMapLine *const *map, size_t n)
{
	char path[64], text[340 * 36];
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += snprintf(text + len, sizeof(text) - len, "%u %u %u\n", map[i]->inner,
				map[i]->outer, map[i]->count);
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	auto_close int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
		pr_perror("restore: cannot write the %s of the tree's user namespace", name);
		return -errno;
	}
	return 0;
}

/* A joined user namespace: its map (of process pid) is the image's, line for line. */
static int map_matches(pid_t pid, const char *name, const IdMapLine *const *map, size_t n)
{
	char path[64];
	unsigned inner, outer, count;
	size_t i = 0;
	bool same = true;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	FILE *f = fopen(path, "re");
	if (!f) {
		pr_perror("restore: cannot read %s", path);
		return -errno;
	}
	while (same && fscanf(f, "%u %u %u", &inner, &outer, &count) == 3) {
		same = i < n && map[i]->inner == inner && map[i]->outer == outer && map[i]->count == count;
		i++;
	}
	fclose(f);
	if (same && i == n)
		return 0;
	pr_err("restore: --join-ns user: the %s of the namespace given is not the one the tree had "
	       "(userns.img)", name);
	return -EINVAL;
}

static int ask(struct user_ns_state *st, int32_t nstype)
{
	int32_t answer;

	if (write(st->sock - 1, &nstype, sizeof(nstype)) != sizeof(nstype) ||
	    read(st->sock - 1, &answer, sizeof(answer)) != sizeof(answer)) {
		pr_err("restore: the helper of the tree's user namespace is gone");
		return -EIO;
	}
	return -answer;
}

int ns_make_start(struct run_ctx *ctx)
{
	struct user_ns_state *st = state_of(ctx);
	const UserNs *ns = st->img;
	pid_t self = getpid();
	int32_t answer;
	int sk[2], err;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk)) {
		pr_perror("restore: socketpair");
		return -errno;
	}
	fflush(NULL);
	if ((st->helper = fork()) == 0) {
		close(sk[0]);
		serve(sk[1], self, ns->owner_uid, st->join_fd - 1);
	}
	close(sk[1]);
	if (st->helper < 0) {
		st->helper = 0;
		close(sk[0]);
		pr_perror("restore: cannot fork the helper of the tree's user namespace");
		return -errno;
	}
	st->sock = sk[0] + 1;
	if (read(sk[0], &answer, sizeof(answer)) != sizeof(answer) || answer) {
		pr_err("restore: cannot %s the tree's user namespace (owner uid %u): %s",
		       st->join_fd ? "join" : "make", ns->owner_uid,
		       answer ? strerror(answer) : "the helper died");
		return answer ? -answer : -EIO;
	}
	char path[64];
	if (st->join_fd &&
	    ((err = map_matches(st->helper, "uid_map", (const IdMapLine *const *)ns->uid_map, ns->n_uid_map)) ||
	     (err = map_matches(st->helper, "gid_map", (const IdMapLine *const *)ns->gid_map, ns->n_gid_map))))
		return err;
	snprintf(path, sizeof(path), "/proc/%d/setgroups", st->helper);
	bool deny = !ns->setgroups_allowed && !st->join_fd; /* (a joined one's is its own) */
	auto_close int fd = deny ? open(path, O_WRONLY | O_CLOEXEC) : -1;
	if (deny && (fd < 0 || write(fd, "deny", 4) != 4)) {
		pr_perror("restore: cannot deny setgroups in the tree's user namespace");
		return -errno;
	}
	if (!st->join_fd &&
	    ((err = write_map(st->helper, "gid_map", (const IdMapLine *const *)ns->gid_map, ns->n_gid_map)) ||
	     (err = write_map(st->helper, "uid_map", (const IdMapLine *const *)ns->uid_map, ns->n_uid_map))))
		return err;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", st->helper);
	int user = open(path, O_RDONLY | O_CLOEXEC);
	if (user < 0) {
		pr_perror("restore: cannot open %s", path);
		return -errno;
	}
	st->user_fd = user + 1;
	/* the root's PID namespace, made by the helper: an fd of it through the helper's pidfd
	 * (before 6.11, none: a launcher clones the root, see ns_make_clone_root) */
	if ((err = ask(st, CLONE_NEWPID))) {
		pr_err("restore: the helper cannot make the tree's PID namespace in its user namespace: %s",
		       strerror(-err));
		return err;
	}
	auto_close int helper_fd = syscall(__NR_pidfd_open, st->helper, 0);
	int pid_ns = helper_fd < 0 ? -1 : ioctl(helper_fd, PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE, 0);
	if (pid_ns >= 0 && run_fault(ctx, "kernel-lacks:pidfd_pid_ns")) { /* (a test of the launcher) */
		close(pid_ns);
		pid_ns = -1;
		errno = ENOTTY;
	}
	if (pid_ns < 0 && errno != ENOTTY) {
		pr_perror("restore: cannot open the tree's PID namespace (of helper %d)", st->helper);
		return -errno;
	}
	st->pid_fd = pid_ns + 1; /* (0 before 6.11) */
	if (!st->pid_fd)
		pr_info("restore: no fd of a PID namespace before its init (6.11's PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE): "
			"a launcher clones the root");
	pr_debug("restore: the tree's user namespace %s by helper %d", st->join_fd ? "joined" : "made",
		 st->helper);
	return 0;
}

void ns_make_stop(struct run_ctx *ctx)
{
	struct user_ns_state *st = state_of(ctx);
	int status;

	if (st->sock)
		close(st->sock - 1);
	if (st->user_fd)
		close(st->user_fd - 1);
	if (st->pid_fd)
		close(st->pid_fd - 1);
	st->sock = st->user_fd = st->pid_fd = 0;
	if (!st->helper)
		return;
	kill(st->helper, SIGKILL);
	while (waitpid(st->helper, &status, 0) < 0 && errno == EINTR)
		;
	st->helper = 0;
}

/* The helper makes one of kind nstype; stasis joins it. */
static int join_new(struct user_ns_state *st, int nstype)
{
	char path[64];
	int err;

	if (!st->helper) {
		pr_err("restore: the helper of the tree's user namespace is gone");
		return -EIO;
	}
	if ((err = ask(st, nstype))) {
		pr_err("restore: the helper cannot make the tree's %s namespace in its user namespace: %s",
		       ns_file(nstype), strerror(-err));
		return err;
	}
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", st->helper, ns_file(nstype));
	auto_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, nstype)) {
		pr_perror("restore: cannot join the tree's %s namespace (%s)", ns_file(nstype), path);
		return -errno;
	}
	return 0;
}

int ns_make_enter_tree_userns(const struct run_ctx *ctx)
{
	const struct user_ns_state *st = state_of(ctx);

	if (!st->user_fd || setns(st->user_fd - 1, CLONE_NEWUSER)) {
		pr_perror("restore: cannot join the tree's user namespace");
		return -(errno ? errno : EIO);
	}
	return 0;
}

int ns_make_run_in_tree_userns(const struct run_ctx *ctx, int (*fn)(void *arg), void *arg)
{
	int status, err;
	pid_t pid;

	fflush(NULL);
	if ((pid = fork()) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		err = ns_make_enter_tree_userns(ctx);
		_exit(-(err ? err : fn(arg)));
	}
	if (pid < 0) {
		pr_perror("restore: cannot fork a helper into the tree's user namespace");
		return -errno;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? -WEXITSTATUS(status) : -EIO;
}

int ns_make(struct run_ctx *ctx, int nstype)
{
	if (ns_make_in_tree_userns(ctx, nstype))
		return join_new(state_of(ctx), nstype);
	if (unshare(nstype)) {
		pr_perror("restore: cannot make the tree's %s namespace", ns_file(nstype));
		return -errno;
	}
	return 0;
}

int ns_make_nested(struct run_ctx *ctx, int nstype)
{
	if (ns_make_tree_userns(ctx))
		return join_new(state_of(ctx), nstype);
	if (unshare(nstype)) {
		pr_perror("restore: cannot make a %s namespace of the tree's", ns_file(nstype));
		return -errno;
	}
	return 0;
}

/* The calling process (single-threaded) into the tree's user namespace, having taken groups
 * first when setgroups is denied there: 0, or -1 with errno. */
static int join_tree_userns(const struct user_ns_state *st, const struct run_ctx *ctx, const uint32_t *groups,
			    size_t n_groups)
{
	return (ns_make_groups_denied(ctx) && setgroups(n_groups, groups)) || setns(st->user_fd - 1, CLONE_NEWUSER)
		       ? -1
		       : 0;
}

/*
 * The root is cloned by stasis itself (its child, or with --restore-sibling its parent's: the
 * caller's only new child, which LXC takes for the container's init) into the PID namespace the
 * helper made at its start (so the tree's user namespace owns it), stasis entering it for its
 * children only and leaving it at once. The root then joins the user namespace and makes its
 * own UTS namespace there; it says over a pipe whether it could.
 */
static pid_t clone_root_into(const struct user_ns_state *st, const struct run_ctx *ctx, uint64_t flags,
			     const uint32_t *groups, size_t n_groups)
{
	const uint32_t init = 1;
	int p[2], home = 0;
	int32_t answer = -EIO;
	pid_t root;

	if (ns_enter_from_home(st->pid_fd - 1, CLONE_NEWPID, &home)) {
		pr_perror("restore pid 1: cannot enter the tree's PID namespace");
		return -errno;
	}
	if (pipe2(p, O_CLOEXEC)) {
		pr_perror("restore: pipe");
		ns_go_home(&home, CLONE_NEWPID, "restore");
		return -errno;
	}
	fflush(NULL);
	root = clone_with_pid(&init, 1, flags & ~(uint64_t)(CLONE_NEWPID | CLONE_NEWUTS), SIGCHLD, -1);
	if (root == 0) {
		close(p[0]);
		if (!join_tree_userns(st, ctx, groups, n_groups) && (!(flags & CLONE_NEWUTS) || !unshare(CLONE_NEWUTS)))
			answer = 0;
		else
			answer = -errno;
		if (write(p[1], &answer, sizeof(answer)) != sizeof(answer) || answer)
			_exit(1);
		close(p[1]);
		return 0;
	}
	int clone_errno = errno;
	ns_go_home(&home, CLONE_NEWPID, "restore");
	close(p[1]);
	if (root < 0)
		answer = -clone_errno;
	else if (read(p[0], &answer, sizeof(answer)) != sizeof(answer))
		answer = -EIO;
	close(p[0]);
	int status;
	while (answer < 0 && root > 0 && !(flags & CLONE_PARENT) && waitpid(root, &status, 0) < 0 && errno == EINTR)
		;
	return answer < 0 ? answer : root;
}

/*
 * Before 6.11 (no fd of a PID namespace without its init): a launcher joins the user namespace
 * and clones the root there with CLONE_NEWPID | CLONE_PARENT, the root its sibling. With
 * --restore-sibling the launcher is itself made with CLONE_PARENT and ends as a zombie of
 * stasis's parent, listed before the root among its children (LXC takes it for the init).
 */
static pid_t clone_root_by_launcher(const struct user_ns_state *st, const struct run_ctx *ctx, uint64_t flags,
				    const uint32_t *groups, size_t n_groups)
{
	bool sibling = flags & CLONE_PARENT;
	struct clone_args ca = { .flags = sibling ? CLONE_PARENT : 0, .exit_signal = sibling ? 0 : SIGCHLD };
	const uint32_t init = 1;
	int p[2], status;
	int32_t answer = -EIO;
	pid_t launcher, root;

	if (pipe2(p, O_CLOEXEC)) {
		pr_perror("restore: pipe");
		return -errno;
	}
	fflush(NULL);
	if ((launcher = syscall(SYS_clone3, &ca, sizeof(ca))) == 0) {
		close(p[0]);
		if (!sibling)
			prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (!join_tree_userns(st, ctx, groups, n_groups)) {
			root = clone_with_pid(&init, 1, flags | CLONE_NEWPID | CLONE_PARENT, SIGCHLD, -1);
			if (root == 0) {
				close(p[1]);
				return 0;
			}
			answer = root > 0 ? root : -errno;
		} else {
			answer = -errno;
		}
		_exit(write(p[1], &answer, sizeof(answer)) == sizeof(answer) ? 0 : 1);
	}
	close(p[1]);
	if (launcher < 0 || read(p[0], &answer, sizeof(answer)) != sizeof(answer))
		answer = launcher < 0 ? -errno : -EIO;
	close(p[0]);
	while (launcher > 0 && !sibling && waitpid(launcher, &status, 0) < 0 && errno == EINTR)
		;
	return answer;
}

pid_t ns_make_clone_root(struct run_ctx *ctx, uint64_t flags, const uint32_t *groups, size_t n_groups)
{
	const struct user_ns_state *st = state_of(ctx);
	pid_t root = st->pid_fd ? clone_root_into(st, ctx, flags, groups, n_groups)
				: clone_root_by_launcher(st, ctx, flags, groups, n_groups);

	if (root < 0) {
		errno = -root;
		pr_perror("restore pid 1: cannot clone the root in the tree's user namespace");
	}
	return root;
}
