/*
 * ctr-run: builds a real container without any engine, for the tests.
 *
 *   ctr-run --root DIR --pidfile FILE [--bind SRC[:DST][:ro]]... [--tmpfs DST[:SIZE]]...
 *           [--hostname NAME] [--netns] [--timens] [--cgroup PATH] [--memory-limit BYTES]
 *           [--pids-limit N] [--seccomp] [--cwd DIR] [--stdin F] [--stdout F] [--stderr F]
 *           [--no-setsid] [--proc-sys-rw] [--no-mountns | --only-pidns] [--userns MAP]
 *           -- CMD ARGS...
 *   ctr-run --cgroup-dirs PATH    print the directories --cgroup PATH uses, one a line
 *
 * The container's init (pid 1) is CMD itself (exec'd, PATH searched inside the container),
 * in new PID, mount, UTS, IPC and cgroup namespaces, with --netns a new network namespace
 * (loopback up), with --timens a new time namespace whose CLOCK_MONOTONIC is 2 days and
 * CLOCK_BOOTTIME 3 days ahead of the host's (so a restore that loses the offsets shows as a
 * jump back). --only-pidns makes only the PID namespace (and keeps the host's mount
 * namespace); --no-mountns keeps the host's mount namespace but makes the others.
 *
 * In the new mount namespace, before CMD runs: every mount is made rprivate; DIR is bind
 * mounted on itself and gets
 *   /proc (proc), /sys (sysfs, read-only), /dev (tmpfs with the nodes null, zero, full,
 *   random, urandom, tty, net/tun made with mknod, the symlinks fd, stdin, stdout, stderr, and ptmx
 *   -> pts/ptmx), /dev/pts (devpts, newinstance, ptmxmode=0666), /dev/shm (tmpfs),
 *   /dev/mqueue (mqueue), /tmp (tmpfs holding the files under /tmp/ctr listed at
 *   make_tmp_files), the --tmpfs mounts, then the --bind mounts in the order given (a bind's
 *   target may lie inside /tmp: it is made in the tmpfs), then runc's masked paths
 *   (/dev/null bound over /proc/kcore, /proc/keys, /proc/timer_list, ..., a read-only tmpfs
 *   over /proc/acpi, /proc/scsi, /sys/firmware, each where it exists) and read-only paths
 *   (/proc/bus, /proc/fs, /proc/irq, /proc/sys, /proc/sysrq-trigger bound read-only over
 *   themselves; --proc-sys-rw leaves /proc/sys writable, as LXC's proc:rw, for a program that
 *   sets its IPC namespace's sysctls); then pivot_root into DIR, the old root unmounted.
 * Device nodes are made with mknod rather than bound from the host: we are root in the
 * initial user namespace, so mknod works, as it does for runc outside a user namespace; the
 * nodes then live in the container's own /dev tmpfs (tmpfs contents, device nodes included,
 * are state the engine must carry) and no host mount is dragged into the container.
 *
 * --cgroup PATH: PATH is made under the launcher's own cgroup in every cgroup hierarchy
 * mounted on the host (each v1 hierarchy and a cgroup2 mount, e.g. the hybrid
 * /sys/fs/cgroup/unified); the memory limit (default 1 GiB) and pids limit (default 1024) are
 * set in the hierarchy that has that controller (v1 memory.limit_in_bytes / pids.max, v2
 * memory.max / pids.max, enabling it in the parents' cgroup.subtree_control); the init joins
 * every one before it makes its cgroup namespace, whose root is thus its own cgroup.
 * --userns INNER:OUTER:COUNT: the init is also in a new user namespace, made as runc makes it:
 * cloned with CLONE_NEWUSER beside the other namespaces (which the user namespace thus owns),
 * the launcher writes its uid_map and gid_map (both "INNER OUTER COUNT"; setgroups stays
 * allowed, as the launcher is privileged), and the init, once they are written, takes uid and
 * gid 0 of the namespace and no supplementary groups, then does its setup inside as root
 * there. mknod is refused inside, so /dev/null, zero, full, random, urandom and tty are the
 * host's bound onto empty files of the /dev tmpfs (runc does that too) and /tmp/ctr has no
 * device node. Host files the namespace has no id for show as nobody: --root, the --bind
 * sources the init writes to and its --stdout/--stderr files must belong to OUTER (the
 * caller's to arrange). With --timens the init makes the time namespace inside (so that the
 * user namespace owns it): it unshares it, writes its offsets and enters it itself (setns
 * into its time_for_children), as root of its user namespace.
 * --seccomp: a Docker-like default profile made with libseccomp (seccomp_filter below),
 * loaded with no_new_privs set, last before exec.
 *
 * Stdio is inherited, or reopened inside the container (--stdin/--stdout/--stderr, paths in
 * the container, opened after pivot_root, so that they belong to the container's mounts).
 * The environment is passed through, except ZOO_PIDFILE (zoo programs write their own
 * getpid(), 1 inside, there): it becomes /tmp/zoo.pid with a mount namespace, FILE.inner
 * without one; ctr-run writes the host pid of the init to --pidfile (temp file + rename) and
 * exits 0 once CMD is exec'd, or exits 1 with the reason on stderr, leaving nothing behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

#define MAX_ITEMS 64
#define MAX_HIER 32
#define TIMENS_MONOTONIC_S (2 * 86400)
#define TIMENS_BOOTTIME_S (3 * 86400)

struct bind {
	const char *src, *dst;
	int ro;
};
struct tmpfs_mnt {
	const char *dst, *size;
};

static struct {
	const char *root, *pidfile, *hostname, *cgroup, *cwd;
	const char *stdio[3];
	struct bind binds[MAX_ITEMS];
	int nbinds;
	struct tmpfs_mnt tmpfs[MAX_ITEMS];
	int ntmpfs;
	int netns, timens, seccomp, mountns, only_pidns, setsid, proc_sys_rw;
	const char *userns; /* --userns INNER:OUTER:COUNT */
	long long memory_limit, pids_limit;
	char **cmd;
} o = { .mountns = 1, .setsid = 1, .memory_limit = 1LL << 30, .pids_limit = 1024 };

/* ---- errors: the parent prints them; the child sends them through a pipe ---------------- */

static int err_fd = 2; /* the child: the write end of the error pipe */
static int in_child;
static pid_t init_pid; /* the launcher: the init to kill when it dies */
static void cgroups_undo(void);

/* Reports and exits; in the launcher, first removes the cgroups it made */
static __attribute__((format(printf, 1, 2), noreturn)) void die(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n = snprintf(buf, sizeof(buf), "ctr-run: ");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(err_fd, buf, (size_t)n) < 0) {
		/* nothing left to tell it to */
	}
	if (!in_child && init_pid > 0) {
		kill(init_pid, SIGKILL);
		waitpid(init_pid, NULL, 0);
	}
	if (!in_child)
		cgroups_undo();
	_exit(1);
}

/* The launcher: kills the init it started, then dies */
#define die_with_init(pid, ...) (init_pid = (pid), die(__VA_ARGS__))

static void write_file(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void write_file(const char *path, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, (size_t)n) != n)
		die("write '%.*s' to %s: %s", n > 0 && buf[n - 1] == '\n' ? n - 1 : n, buf, path,
		    strerror(errno));
	close(fd);
}

/* Read a small file; returns its length (0 if it does not exist) */
static size_t read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? 0 : read(fd, buf, size - 1);
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	return n > 0 ? (size_t)n : 0;
}

/* mkdir -p; returns 0 or dies */
static void mkdir_p(const char *path, mode_t mode)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1;; s++) {
		if (*s == '/' || !*s) {
			char c = *s;
			*s = 0;
			if (mkdir(p, mode) < 0 && errno != EEXIST)
				die("mkdir %s: %s", p, strerror(errno));
			*s = c;
			if (!c)
				break;
		}
	}
}

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags,
		     const char *data)
{
	if (mount(src, dst, type, flags, data) < 0)
		die("mount %s on %s (type %s, flags %#lx, '%s'): %s", src ? src : "none", dst,
		    type ? type : "-", flags, data ? data : "", strerror(errno));
}

/* The mount flags of the mount at path, to keep them on a read-only remount. */
static unsigned long mount_flags_of(const char *path)
{
	static const struct { unsigned long st, ms; } map[] = {
		{ ST_NOSUID, MS_NOSUID },     { ST_NODEV, MS_NODEV },
		{ ST_NOEXEC, MS_NOEXEC },     { ST_NOATIME, MS_NOATIME },
		{ ST_NODIRATIME, MS_NODIRATIME }, { ST_RELATIME, MS_RELATIME },
	};
	struct statvfs sv;
	unsigned long f = 0;
	if (statvfs(path, &sv) < 0)
		die("statvfs %s: %s", path, strerror(errno));
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (sv.f_flag & map[i].st)
			f |= map[i].ms;
	return f;
}

static void remount_ro(const char *path)
{
	do_mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | mount_flags_of(path), NULL);
}

/* ---- cgroups (the parent) ------------------------------------------------------------- */

struct hier {
	char dir[PATH_MAX]; /* PATH's directory in this hierarchy */
	int v2, has_memory, has_pids, made_from; /* made_from: where our mkdirs began (strlen) */
	char base[PATH_MAX]; /* the launcher's own cgroup directory */
};
static struct hier hiers[MAX_HIER];
static int nhiers;

/* Does the comma list contain word? */
static int list_has(const char *list, const char *word)
{
	size_t l = strlen(word);
	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == l && !strncmp(p, word, l))
			return 1;
		p = e ? e + 1 : NULL;
	}
	return 0;
}

/*
 * Every hierarchy of /proc/self/cgroup with a mount in /proc/self/mountinfo (the first mount
 * of each whose root contains our cgroup): fills hiers[] with PATH's directory in each.
 */
static void find_hierarchies(const char *path)
{
	static char cg[8192], mi[262144];
	if (!read_small("/proc/self/cgroup", cg, sizeof(cg)))
		die("cannot read /proc/self/cgroup");
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;
	while (fd >= 0 && len + 1 < sizeof(mi) && (n = read(fd, mi + len, sizeof(mi) - 1 - len)) > 0)
		len += (size_t)n;
	if (fd >= 0)
		close(fd);
	mi[len] = 0;
	if (!len)
		die("cannot read /proc/self/mountinfo");

	for (char *line = strtok(cg, "\n"); line; line = strtok(NULL, "\n")) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = 0;
		const char *ctrls = c1 + 1, *own = c2 + 1;
		int v2 = !*ctrls;
		/* find its mount: fields 4 (root) and 5 (mount point), then after " - " the type
		 * and the super options */
		for (char *l = mi; l && *l;) {
			char *nl = strchr(l, '\n');
			if (nl)
				*nl = 0;
			char root[PATH_MAX], mnt[PATH_MAX], type[32], sopts[1024];
			char *dash = strstr(l, " - ");
			int ok = dash && sscanf(l, "%*s %*s %*s %4095s %4095s", root, mnt) == 2 &&
				 sscanf(dash + 3, "%31s %*s %1023s", type, sopts) == 2;
			if (nl)
				*nl = '\n';
			l = nl ? nl + 1 : NULL;
			if (!ok || strcmp(type, v2 ? "cgroup2" : "cgroup"))
				continue;
			if (!v2) { /* every controller of the line must be in the super options */
				char want[256], *sp = NULL;
				snprintf(want, sizeof(want), "%s", ctrls);
				int all = 1;
				for (char *w = strtok_r(want, ",", &sp); w; w = strtok_r(NULL, ",", &sp))
					all &= list_has(sopts, w);
				if (!all)
					continue;
			}
			size_t rl = strcmp(root, "/") ? strlen(root) : 0;
			if (rl && (strncmp(own, root, rl) || (own[rl] && own[rl] != '/')))
				continue; /* this mount does not show our cgroup */
			if (nhiers == MAX_HIER)
				die("more than %d cgroup hierarchies", MAX_HIER);
			struct hier *h = &hiers[nhiers++];
			const char *rel = own + rl;
			snprintf(h->base, sizeof(h->base), "%s%s", mnt, strcmp(rel, "/") ? rel : "");
			snprintf(h->dir, sizeof(h->dir), "%s%s/%s", mnt, strcmp(rel, "/") ? rel : "", path);
			h->v2 = v2;
			if (v2) {
				char ctl[512], f[PATH_MAX + 32]; /* what our cgroup can give its children */
				snprintf(f, sizeof(f), "%s/cgroup.controllers", h->base);
				read_small(f, ctl, sizeof(ctl));
				h->has_memory = !!strstr(ctl, "memory");
				h->has_pids = !!strstr(ctl, "pids");
			} else {
				h->has_memory = list_has(ctrls, "memory");
				h->has_pids = list_has(ctrls, "pids");
			}
			break;
		}
	}
	if (!nhiers)
		die("--cgroup: no cgroup hierarchy is mounted (see /proc/self/mountinfo)");
}

static void copy_cpuset(const char *parent, const char *dir)
{
	static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
	for (int i = 0; i < 2; i++) {
		char from[PATH_MAX + 32], to[PATH_MAX + 32], v[4096];
		snprintf(to, sizeof(to), "%s/%s", dir, files[i]);
		if (read_small(to, v, sizeof(v)) > 1)
			continue;
		snprintf(from, sizeof(from), "%s/%s", parent, files[i]);
		if (read_small(from, v, sizeof(v)))
			write_file(to, "%s", v);
	}
}

/*
 * A new v1 cgroup: cpuset's cpus and mems copied from the parent (it takes no task without);
 * a real-time budget in the cpu hierarchy (with RT group scheduling a new cgroup has none,
 * and SCHED_FIFO fails with EPERM): 50 ms a second for a level above the container's, 5 ms
 * for the container's own (leaf), as docker's --cpu-rt-runtime would give.
 */
static void v1_fill_cpuset(const char *dir)
{
	char parent[PATH_MAX], f[PATH_MAX + 32];
	snprintf(parent, sizeof(parent), "%s", dir);
	*strrchr(parent, '/') = 0;
	snprintf(f, sizeof(f), "%s/cpuset.cpus", dir);
	if (access(f, F_OK) == 0)
		copy_cpuset(parent, dir);
}

#define RT_BUDGET_ABOVE_US 50000 /* a level above the container's */
#define RT_BUDGET_LEAF_US 5000    /* the container's own */

/* The real-time budget of a level above a container, made by a run beside this one that may
 * not have set it yet (a container's own budget would not fit: EINVAL) */
static void v1_fill_rt(const char *dir)
{
	char f[PATH_MAX + 32], buf[32];
	snprintf(f, sizeof(f), "%s/cpu.rt_runtime_us", dir);
	if (read_small(f, buf, sizeof(buf)) && atoi(buf) == 0)
		write_file(f, "%d\n", RT_BUDGET_ABOVE_US);
}

static void v1_init_cgroup(const char *dir, int leaf)
{
	char f[PATH_MAX + 32];
	v1_fill_cpuset(dir);
	snprintf(f, sizeof(f), "%s/cpu.rt_runtime_us", dir);
	if (access(f, F_OK) == 0)
		write_file(f, "%d\n", leaf ? RT_BUDGET_LEAF_US : RT_BUDGET_ABOVE_US);
}

/* v2: enables the controller in cgroup.subtree_control from base down to dir's parent */
static void enable_v2(const struct hier *h, const char *controller)
{
	char p[PATH_MAX], f[PATH_MAX + 32];
	size_t bl = strlen(h->base);
	snprintf(p, sizeof(p), "%s", h->dir);
	for (char *s = p + bl; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		snprintf(f, sizeof(f), "%s/cgroup.subtree_control", p);
		write_file(f, "+%s", controller);
		*s = '/';
	}
}

/* Makes PATH in every hierarchy with the limits; dies on failure (undone by die) */
static void cgroups_make(void)
{
	int have_mem = 0, have_pids = 0;
	for (int i = 0; i < nhiers; i++) {
		struct hier *h = &hiers[i];
		char p[PATH_MAX];
		size_t bl = strlen(h->base);
		snprintf(p, sizeof(p), "%s", h->dir);
		h->made_from = 0;
		/* each component under base, in order: made if missing (cpuset's files copied) */
		for (char *s = p + bl + 1;; s++) {
			if (*s != '/' && *s)
				continue;
			char c = *s;
			*s = 0;
			if (mkdir(p, 0755) == 0) {
				if (!h->made_from)
					h->made_from = (int)strlen(p);
				if (!h->v2)
					v1_init_cgroup(p, !c);
			} else if (errno != EEXIST) {
				die("--cgroup: mkdir %s: %s", p, strerror(errno));
			} else if (!h->v2) {
				/* made by a run beside this one, which may not have filled its cpuset yet:
				 * an empty one takes no task (ENOSPC) and gives a child none to copy */
				v1_fill_cpuset(p);
				if (c)
					v1_fill_rt(p);
			}
			*s = c;
			if (!c)
				break;
		}
		if (h->has_memory && !have_mem) {
			char f[PATH_MAX + 32];
			if (h->v2) {
				enable_v2(h, "memory");
				snprintf(f, sizeof(f), "%s/memory.max", h->dir);
			} else {
				snprintf(f, sizeof(f), "%s/memory.limit_in_bytes", h->dir);
			}
			write_file(f, "%lld\n", o.memory_limit);
			have_mem = 1;
		}
		if (h->has_pids && !have_pids) {
			char f[PATH_MAX + 32];
			if (h->v2)
				enable_v2(h, "pids");
			snprintf(f, sizeof(f), "%s/pids.max", h->dir);
			write_file(f, "%lld\n", o.pids_limit);
			have_pids = 1;
		}
	}
	if (!have_mem || !have_pids)
		die("--cgroup: no mounted hierarchy has the %s controller", have_mem ? "pids" : "memory");
}

/* Removes the directories cgroups_make made (deepest first) */
static void cgroups_undo(void)
{
	for (int i = 0; i < nhiers; i++) {
		struct hier *h = &hiers[i];
		if (!h->made_from)
			continue;
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s", h->dir);
		while ((int)strlen(p) >= h->made_from) {
			for (int k = 0; k < 100 && rmdir(p) < 0 && errno == EBUSY; k++)
				usleep(20000);
			*strrchr(p, '/') = 0;
		}
		h->made_from = 0;
	}
}

static void cgroups_join(pid_t pid)
{
	for (int i = 0; i < nhiers; i++) {
		char f[PATH_MAX + 32];
		snprintf(f, sizeof(f), "%s/cgroup.procs", hiers[i].dir);
		int fd = open(f, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || dprintf(fd, "%d\n", pid) < 0)
			die_with_init(pid, "--cgroup: cannot move pid %d into %s: %s", pid, f, strerror(errno));
		close(fd);
	}
}

/* ---- seccomp: a Docker-like default profile -------------------------------------------- */

/*
 * Docker's default profile in spirit: everything not listed fails with EPERM; the list is
 * Docker's allow list plus what Docker grants a container holding CAP_SYS_ADMIN,
 * CAP_SYS_PTRACE, CAP_SYS_CHROOT and CAP_SYS_NICE (ours keep root's capabilities: namespaces,
 * mount, kcmp, process_vm_*, mbind...). Never allowed, as in Docker: the keyring (add_key,
 * keyctl, request_key), ptrace, bpf, perf_event_open, userfaultfd, io_uring, kexec, modules,
 * reboot, swap, acct, setting the clock, iopl/ioperm, syslog, open_by_handle_at, quotactl.
 * With argument filters, as Docker: socket() except AF_VSOCK, personality() only for the
 * values Docker allows (0, PER_LINUX32, UNAME26 and their mix, the query 0xffffffff) plus
 * ADDR_NO_RANDOMIZE (the zoo's proc-attrs sets it). clone3 fails with ENOSYS as in Docker
 * (glibc then falls back to clone).
 */
static const char *const seccomp_allowed[] = {
	"accept", "accept4", "access", "adjtimex", "alarm", "arch_prctl", "bind", "brk", "cachestat",
	"capget", "capset", "chdir", "chmod", "chown", "chroot", "clock_getres", "clock_gettime",
	"clock_nanosleep", "clone", "close", "close_range", "connect", "copy_file_range", "creat",
	"dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait",
	"epoll_pwait2", "epoll_wait", "eventfd", "eventfd2", "execve", "execveat", "exit",
	"exit_group", "faccessat", "faccessat2", "fadvise64", "fallocate", "fanotify_init",
	"fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl",
	"fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsconfig", "fsetxattr",
	"fsmount", "fsopen", "fspick", "fstat",
	"fstatfs", "fsync", "ftruncate", "futex", "futex_requeue", "futex_wait", "futex_waitv",
	"futex_wake", "futimesat", "get_mempolicy", "get_robust_list", "get_thread_area", "getcpu",
	"getcwd", "getdents", "getdents64", "getegid", "geteuid", "getgid", "getgroups", "getitimer",
	"getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
	"getresgid", "getresuid", "getrlimit", "getrusage", "getsid", "getsockname", "getsockopt",
	"gettid", "gettimeofday", "getuid", "getxattr", "inotify_add_watch", "inotify_init",
	"inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy", "io_getevents",
	"io_pgetevents", "io_setup", "io_submit", "ioctl", "ioprio_get", "ioprio_set", "kcmp", "kill",
	"landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
	"lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "lremovexattr", "lseek",
	"lsetxattr", "lstat", "madvise", "map_shadow_stack", "mbind", "membarrier", "memfd_create",
	"memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2",
	"mlockall", "mmap", "modify_ldt", "mount", "mount_setattr", "move_mount", "mprotect",
	"mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink",
	"mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
	"name_to_handle_at", "nanosleep", "newfstatat", "open", "open_tree", "openat", "openat2",
	"pause", "pidfd_getfd", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pivot_root",
	"pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "prctl", "pread64", "preadv",
	"preadv2", "prlimit64", "process_madvise", "process_mrelease", "process_vm_readv",
	"process_vm_writev", "pselect6", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
	"readlink", "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages",
	"removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
	"rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
	"rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sched_get_priority_max",
	"sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
	"sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity", "sched_setattr",
	"sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
	"semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto",
	"set_mempolicy", "set_robust_list", "set_thread_area", "set_tid_address", "setdomainname",
	"setfsgid", "setfsuid", "setgid", "setgroups", "sethostname", "setitimer", "setns",
	"setpgid", "setpriority", "setregid", "setresgid", "setresuid", "setreuid", "setrlimit",
	"setsid", "setsockopt", "setuid", "setxattr", "shmat", "shmctl", "shmdt", "shmget",
	"shutdown", "sigaltstack", "signalfd", "signalfd4", "socketpair", "splice", "stat", "statfs",
	"statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee",
	"tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
	"timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime", "times", "tkill",
	"truncate", "umask", "umount2", "uname", "unlink", "unlinkat", "unshare", "utime",
	"utimensat", "utimes", "vfork", "vhangup", "vmsplice", "wait4", "waitid", "write", "writev",
};

static void seccomp_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
			 const struct scmp_arg_cmp *arg)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return; /* a name this libseccomp does not know (newer than it) */
	int err = seccomp_rule_add_array(ctx, action, nr, n, arg);
	if (err < 0)
		die("seccomp: rule for %s: %s", name, strerror(-err));
}

static void seccomp_load_profile(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	if (!ctx)
		die("seccomp_init failed");
	for (size_t i = 0; i < sizeof(seccomp_allowed) / sizeof(seccomp_allowed[0]); i++)
		seccomp_rule(ctx, SCMP_ACT_ALLOW, seccomp_allowed[i], 0, NULL);
	static const unsigned long personas[] = { 0x0, 0x8, 0x20000, 0x20008, 0x40000, 0xffffffff };
	for (size_t i = 0; i < sizeof(personas) / sizeof(personas[0]); i++) {
		struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_EQ, personas[i]);
		seccomp_rule(ctx, SCMP_ACT_ALLOW, "personality", 1, &a);
	}
	struct scmp_arg_cmp not_vsock = SCMP_A0(SCMP_CMP_NE, AF_VSOCK);
	seccomp_rule(ctx, SCMP_ACT_ALLOW, "socket", 1, &not_vsock);
	seccomp_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
	int err = seccomp_load(ctx);
	if (err < 0)
		die("seccomp_load: %s", strerror(-err));
	seccomp_release(ctx);
}

/* ---- the container's file system (the child, in its mount namespace) ------------------- */

static char rootp[PATH_MAX];

static const char *in_root(const char *path, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s", rootp, path[0] == '/' ? "" : "/", path);
	return buf;
}

static void make_dev(void)
{
	static const struct { const char *name; unsigned maj, min; } nodes[] = {
		{ "null", 1, 3 }, { "zero", 1, 5 },    { "full", 1, 7 },
		{ "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
		{ "net/tun", 10, 200 }, /* as `docker run --device /dev/net/tun` gives it */
	};
	static const struct { const char *name, *target; } links[] = {
		{ "fd", "/proc/self/fd" },	   { "stdin", "/proc/self/fd/0" },
		{ "stdout", "/proc/self/fd/1" }, { "stderr", "/proc/self/fd/2" },
		{ "ptmx", "pts/ptmx" },
	};
	char p[PATH_MAX], q[PATH_MAX];
	do_mount("tmpfs", in_root("/dev", p, sizeof(p)), "tmpfs", MS_NOSUID | MS_STRICTATIME,
		 "mode=755,size=65536k");
	if (mkdir(in_root("/dev/net", p, sizeof(p)), 0755) < 0)
		die("mkdir %s: %s", p, strerror(errno));
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		snprintf(q, sizeof(q), "/dev/%s", nodes[i].name);
		in_root(q, p, sizeof(p));
		if (o.userns) { /* no mknod in a user namespace: the host's node bound on a file */
			int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
			if (fd < 0)
				die("make %s: %s", p, strerror(errno));
			close(fd);
			do_mount(q, p, NULL, MS_BIND, NULL);
			continue;
		}
		if (mknod(p, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0 || chmod(p, 0666) < 0)
			die("mknod %s: %s", p, strerror(errno));
	}
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		snprintf(q, sizeof(q), "/dev/%s", links[i].name);
		if (symlink(links[i].target, in_root(q, p, sizeof(p))) < 0)
			die("symlink %s: %s", p, strerror(errno));
	}
	static const struct { const char *dir, *type; unsigned long flags; const char *data; } mnts[] = {
		{ "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5" },
		{ "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k" },
		{ "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL },
	};
	for (size_t i = 0; i < sizeof(mnts) / sizeof(mnts[0]); i++) {
		in_root(mnts[i].dir, p, sizeof(p));
		mkdir_p(p, 0755);
		do_mount(mnts[i].type, p, mnts[i].type, mnts[i].flags, mnts[i].data);
	}
}

/*
 * /tmp: a tmpfs holding /tmp/ctr with one of each kind of file (tests/container/ctr-lib.sh
 * and ctr-state compare them before the dump and after the restore):
 *   file      "the container's own file\n", 0640, owner 1000:1000
 *   hardlink  a second name of file
 *   dir/      0750, owner 1001:1001, holding inner ("inner\n", 0600)
 *   link      symlink -> file
 *   xattr     "x\n" 0644 with the extended attribute user.stasis=1
 *   fifo      a FIFO, 0620
 *   null      a character device node 1:3, 0666
 *   big       256 KiB of a byte pattern, 0644
 */
static void make_tmp(void)
{
	char p[PATH_MAX], d[PATH_MAX];
	do_mount("tmpfs", in_root("/tmp", p, sizeof(p)), "tmpfs", MS_NOSUID | MS_NODEV,
		 "mode=1777,size=65536k");
	in_root("/tmp/ctr", d, sizeof(d));
	if (mkdir(d, 0755) < 0)
		die("mkdir %s: %s", d, strerror(errno));
#define AT(name) (snprintf(p, sizeof(p), "%s/%s", d, name), p)
	struct { const char *name, *data; mode_t mode; uid_t uid; } files[] = {
		{ "file", "the container's own file\n", 0640, 1000 },
		{ "xattr", "x\n", 0644, 0 },
	};
	for (size_t i = 0; i < 2; i++) {
		int fd = open(AT(files[i].name), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		size_t l = strlen(files[i].data);
		if (fd < 0 || write(fd, files[i].data, l) != (ssize_t)l || fchmod(fd, files[i].mode) < 0 ||
		    fchown(fd, files[i].uid, files[i].uid) < 0)
			die("make %s: %s", p, strerror(errno));
		close(fd);
	}
	if (setxattr(AT("xattr"), "user.stasis", "1", 1, 0) < 0)
		die("setxattr user.stasis on %s: %s", p, strerror(errno));
	char f[PATH_MAX];
	snprintf(f, sizeof(f), "%s/file", d);
	if (link(f, AT("hardlink")) < 0)
		die("link %s: %s", p, strerror(errno));
	if (mkdir(AT("dir"), 0700) < 0 || chmod(p, 0750) < 0 || chown(p, 1001, 1001) < 0)
		die("mkdir %s: %s", p, strerror(errno));
	int fd = open(AT("dir/inner"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "inner\n", 6) != 6)
		die("make %s: %s", p, strerror(errno));
	close(fd);
	if (symlink("file", AT("link")) < 0)
		die("symlink %s: %s", p, strerror(errno));
	if (mkfifo(AT("fifo"), 0600) < 0 || chmod(p, 0620) < 0)
		die("mkfifo %s: %s", p, strerror(errno));
	if (!o.userns && (mknod(AT("null"), S_IFCHR | 0600, makedev(1, 3)) < 0 || chmod(p, 0666) < 0))
		die("mknod %s: %s", p, strerror(errno));
	static unsigned char big[256 * 1024];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 2654435761u >> 13);
	fd = open(AT("big"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, big, sizeof(big)) != (ssize_t)sizeof(big))
		die("make %s: %s", p, strerror(errno));
	close(fd);
#undef AT
}

static void make_bind(const struct bind *b)
{
	char dst[PATH_MAX];
	struct stat st;
	in_root(b->dst ? b->dst : b->src, dst, sizeof(dst));
	if (stat(b->src, &st) < 0)
		die("--bind %s: %s", b->src, strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		mkdir_p(dst, 0755);
	} else {
		char parent[PATH_MAX];
		snprintf(parent, sizeof(parent), "%s", dst);
		*strrchr(parent, '/') = 0;
		mkdir_p(parent, 0755);
		int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			die("--bind %s: cannot make the file %s: %s", b->src, dst, strerror(errno));
		close(fd);
	}
	do_mount(b->src, dst, NULL, MS_BIND, NULL);
	if (b->ro)
		remount_ro(dst);
}

/* runc's masked and read-only paths, each where it exists */
static void mask_paths(void)
{
	static const char *const masked[] = {
		"/proc/acpi",	     "/proc/asound",	  "/proc/kcore",      "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi",	     "/sys/firmware",	  "/sys/devices/virtual/powercap",
	};
	static const char *const readonly[] = {
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	};
	char p[PATH_MAX], null[PATH_MAX];
	struct stat st;
	in_root("/dev/null", null, sizeof(null));
	for (size_t i = 0; i < sizeof(masked) / sizeof(masked[0]); i++) {
		if (stat(in_root(masked[i], p, sizeof(p)), &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			do_mount("tmpfs", p, "tmpfs", MS_RDONLY, "mode=555");
		else
			do_mount(null, p, NULL, MS_BIND, NULL);
	}
	for (size_t i = 0; i < sizeof(readonly) / sizeof(readonly[0]); i++) {
		if (o.proc_sys_rw && !strcmp(readonly[i], "/proc/sys"))
			continue;
		if (stat(in_root(readonly[i], p, sizeof(p)), &st) < 0)
			continue;
		do_mount(p, p, NULL, MS_BIND | MS_REC, NULL);
		remount_ro(p);
	}
}

static void make_rootfs(void)
{
	char p[PATH_MAX];
	if (!realpath(o.root, rootp))
		die("--root %s: %s", o.root, strerror(errno));
	do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	do_mount(rootp, rootp, NULL, MS_BIND, NULL);

	mkdir_p(in_root("/proc", p, sizeof(p)), 0555);
	do_mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mkdir_p(in_root("/sys", p, sizeof(p)), 0555);
	do_mount("sysfs", p, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mkdir_p(in_root("/dev", p, sizeof(p)), 0755);
	make_dev();
	mkdir_p(in_root("/tmp", p, sizeof(p)), 01777);
	make_tmp();
	for (int i = 0; i < o.ntmpfs; i++) {
		char data[64];
		mkdir_p(in_root(o.tmpfs[i].dst, p, sizeof(p)), 0755);
		snprintf(data, sizeof(data), "mode=755%s%s", o.tmpfs[i].size ? ",size=" : "",
			 o.tmpfs[i].size ? o.tmpfs[i].size : "");
		do_mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, data);
	}
	for (int i = 0; i < o.nbinds; i++)
		make_bind(&o.binds[i]);
	mask_paths();

	if (chdir(rootp) < 0)
		die("chdir %s: %s", rootp, strerror(errno));
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		die("pivot_root into %s: %s", rootp, strerror(errno));
	if (umount2(".", MNT_DETACH) < 0)
		die("unmount the old root: %s", strerror(errno));
	if (chdir("/") < 0)
		die("chdir /: %s", strerror(errno));
}

static void loopback_up(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		die("--netns: loopback: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		die("--netns: bringing loopback up: %s", strerror(errno));
	close(s);
}

static void reopen_stdio(void)
{
	static const int flags[3] = { O_RDONLY, O_WRONLY, O_WRONLY };
	for (int i = 0; i < 3; i++) {
		if (!o.stdio[i])
			continue;
		int fd = open(o.stdio[i], flags[i]);
		if (fd < 0 || dup2(fd, i) < 0)
			die("open %s as fd %d in the container: %s", o.stdio[i], i, strerror(errno));
		if (fd != i)
			close(fd);
	}
}

static char **make_env(void)
{
	extern char **environ;
	static char pidvar[PATH_MAX + 32];
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 1, sizeof(*env));
	if (!env)
		die("out of memory");
	for (size_t i = 0; i < n; i++) {
		env[i] = environ[i];
		if (strncmp(environ[i], "ZOO_PIDFILE=", 12))
			continue;
		if (o.mountns)
			snprintf(pidvar, sizeof(pidvar), "ZOO_PIDFILE=/tmp/zoo.pid");
		else
			snprintf(pidvar, sizeof(pidvar), "%s.inner", environ[i]);
		env[i] = pidvar;
	}
	return env;
}

/* --userns --timens: a time namespace the user namespace owns, with the init in it. */
static void enter_own_time_ns(void)
{
	/* (taking uid 0 made it undumpable: its /proc files would be host root's) */
	if (prctl(PR_SET_DUMPABLE, 1) < 0 || unshare(CLONE_NEWTIME) < 0)
		die("unshare(CLONE_NEWTIME): %s", strerror(errno));
	write_file("/proc/self/timens_offsets", "monotonic %d 0\nboottime %d 0\n", TIMENS_MONOTONIC_S,
		   TIMENS_BOOTTIME_S);
	int fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWTIME) < 0)
		die("entering its time namespace: %s", strerror(errno));
	close(fd);
}

/* The container's init, up to exec. go: the parent's "cgroups joined" byte. */
static __attribute__((noreturn)) void child(int go)
{
	char c;
	mode_t um = umask(022);
	if (read(go, &c, 1) != 1)
		_exit(1); /* the parent gave up */
	close(go);
	/* root of its user namespace (the maps are written), with no groups of the host's */
	if (o.userns && (setresgid(0, 0, 0) < 0 || setgroups(0, NULL) < 0 || setresuid(0, 0, 0) < 0))
		die("--userns: cannot become root of the user namespace: %s", strerror(errno));
	if (o.userns && o.timens)
		enter_own_time_ns();
	if (o.cgroup && !o.only_pidns && unshare(CLONE_NEWCGROUP) < 0)
		die("unshare(CLONE_NEWCGROUP): %s", strerror(errno));
	if (o.setsid && setsid() < 0)
		die("setsid: %s", strerror(errno));
	if (o.mountns)
		make_rootfs();
	if (o.hostname && sethostname(o.hostname, strlen(o.hostname)) < 0)
		die("sethostname %s: %s", o.hostname, strerror(errno));
	if (o.netns)
		loopback_up();
	reopen_stdio();
	if (o.cwd && chdir(o.cwd) < 0)
		die("--cwd %s: %s", o.cwd, strerror(errno));
	char **env = make_env();
	umask(um);
	if (o.seccomp)
		seccomp_load_profile();
	execvpe(o.cmd[0], o.cmd, env);
	die("exec %s: %s", o.cmd[0], strerror(errno));
}

/* ---- the launcher --------------------------------------------------------------------- */

static __attribute__((noreturn)) void usage(const char *why)
{
	if (why)
		fprintf(stderr, "ctr-run: %s\n", why);
	fprintf(stderr,
		"usage: ctr-run --root DIR --pidfile FILE [--bind SRC[:DST][:ro]]... [--tmpfs DST[:SIZE]]...\n"
		"               [--hostname NAME] [--netns] [--timens] [--cgroup PATH] [--memory-limit BYTES]\n"
		"               [--pids-limit N] [--seccomp] [--cwd DIR] [--stdin F] [--stdout F] [--stderr F]\n"
		"               [--no-setsid] [--proc-sys-rw] [--no-mountns | --only-pidns] [--userns MAP]\n"
		"               -- CMD ARGS...\n"
		"       ctr-run --cgroup-dirs PATH\n");
	exit(2);
}

static void parse_bind(char *arg)
{
	if (o.nbinds == MAX_ITEMS)
		usage("too many --bind");
	struct bind *b = &o.binds[o.nbinds++];
	char *last = strrchr(arg, ':');
	if (last && (!strcmp(last, ":ro") || !strcmp(last, ":rw"))) {
		b->ro = !strcmp(last, ":ro");
		*last = 0;
	}
	char *colon = strchr(arg, ':');
	if (colon) {
		*colon = 0;
		b->dst = colon + 1;
	}
	b->src = arg;
	if (b->src[0] != '/' || (b->dst && b->dst[0] != '/'))
		usage("--bind paths must be absolute");
}

static long long parse_num(const char *opt, const char *arg)
{
	char *end;
	long long v = strtoll(arg, &end, 10);
	if (end == arg || v <= 0)
		usage(opt);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end)
		usage(opt);
	return v;
}

int main(int argc, char **argv)
{
	enum { O_ROOT = 256, O_PIDFILE, O_BIND, O_TMPFS, O_HOSTNAME, O_NETNS, O_TIMENS, O_CGROUP,
	       O_MEM, O_PIDS, O_SECCOMP, O_CWD, O_STDIN, O_STDOUT, O_STDERR, O_NOSETSID, O_NOMNT,
	       O_ONLYPID, O_CGDIRS, O_SYSRW, O_USERNS };
	static const struct option opts[] = {
		{ "root", required_argument, 0, O_ROOT },	  { "pidfile", required_argument, 0, O_PIDFILE },
		{ "bind", required_argument, 0, O_BIND },	  { "tmpfs", required_argument, 0, O_TMPFS },
		{ "hostname", required_argument, 0, O_HOSTNAME }, { "netns", no_argument, 0, O_NETNS },
		{ "timens", no_argument, 0, O_TIMENS },	  { "cgroup", required_argument, 0, O_CGROUP },
		{ "memory-limit", required_argument, 0, O_MEM },  { "pids-limit", required_argument, 0, O_PIDS },
		{ "seccomp", no_argument, 0, O_SECCOMP },	  { "cwd", required_argument, 0, O_CWD },
		{ "stdin", required_argument, 0, O_STDIN },	  { "stdout", required_argument, 0, O_STDOUT },
		{ "stderr", required_argument, 0, O_STDERR },	  { "no-setsid", no_argument, 0, O_NOSETSID },
		{ "no-mountns", no_argument, 0, O_NOMNT },	  { "only-pidns", no_argument, 0, O_ONLYPID },
		{ "cgroup-dirs", required_argument, 0, O_CGDIRS }, { "proc-sys-rw", no_argument, 0, O_SYSRW },
		{ "userns", required_argument, 0, O_USERNS },	  { "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case O_ROOT: o.root = optarg; break;
		case O_PIDFILE: o.pidfile = optarg; break;
		case O_BIND: parse_bind(optarg); break;
		case O_TMPFS: {
			if (o.ntmpfs == MAX_ITEMS)
				usage("too many --tmpfs");
			char *colon = strchr(optarg, ':');
			if (colon)
				*colon = 0;
			o.tmpfs[o.ntmpfs].dst = optarg;
			o.tmpfs[o.ntmpfs++].size = colon ? colon + 1 : NULL;
			break;
		}
		case O_HOSTNAME: o.hostname = optarg; break;
		case O_NETNS: o.netns = 1; break;
		case O_TIMENS: o.timens = 1; break;
		case O_CGROUP: o.cgroup = optarg; break;
		case O_MEM: o.memory_limit = parse_num("--memory-limit: expected a size", optarg); break;
		case O_PIDS: o.pids_limit = parse_num("--pids-limit: expected a number", optarg); break;
		case O_SECCOMP: o.seccomp = 1; break;
		case O_CWD: o.cwd = optarg; break;
		case O_STDIN: o.stdio[0] = optarg; break;
		case O_STDOUT: o.stdio[1] = optarg; break;
		case O_STDERR: o.stdio[2] = optarg; break;
		case O_NOSETSID: o.setsid = 0; break;
		case O_SYSRW: o.proc_sys_rw = 1; break;
		case O_USERNS: o.userns = optarg; break;
		case O_NOMNT: o.mountns = 0; break;
		case O_ONLYPID: o.only_pidns = 1, o.mountns = 0; break;
		case O_CGDIRS:
			if (optarg[0] == '/' || strstr(optarg, ".."))
				usage("--cgroup-dirs: PATH is relative to our own cgroup, without '..'");
			find_hierarchies(optarg);
			for (int i = 0; i < nhiers; i++)
				printf("%s\n", hiers[i].dir);
			return 0;
		default: usage(NULL);
		}
	}
	o.cmd = argv + optind;
	if (!o.cmd[0])
		usage("no command");
	if (!o.pidfile)
		usage("--pidfile is required");
	if (o.mountns && !o.root)
		usage("--root is required (or --no-mountns)");
	if (!o.mountns && (o.root || o.nbinds || o.ntmpfs || o.stdio[0] || o.stdio[1] || o.stdio[2]))
		usage("--root, --bind, --tmpfs, --stdin/out/err need a mount namespace");
	if (o.only_pidns && (o.hostname || o.netns || o.timens))
		usage("--only-pidns makes no UTS, net or time namespace");
	unsigned map[3];
	char map_text[64];
	if (o.userns) {
		char end;
		if (sscanf(o.userns, "%u:%u:%u%c", &map[0], &map[1], &map[2], &end) != 3 || !map[2])
			usage("--userns: expected INNER:OUTER:COUNT");
		snprintf(map_text, sizeof(map_text), "%u %u %u\n", map[0], map[1], map[2]);
	}
	if (o.cgroup && (o.cgroup[0] == '/' || strstr(o.cgroup, "..")))
		usage("--cgroup: PATH is relative to our own cgroup, without '..'");

	if (o.cgroup) {
		find_hierarchies(o.cgroup);
		cgroups_make();
	}
	/* the time namespace: only for children, with its offsets written before any enters */
	if (o.timens && !o.userns) {
		if (unshare(CLONE_NEWTIME) < 0)
			die("unshare(CLONE_NEWTIME): %s", strerror(errno));
		write_file("/proc/self/timens_offsets", "monotonic %d 0\nboottime %d 0\n",
			   TIMENS_MONOTONIC_S, TIMENS_BOOTTIME_S);
	}

	int go[2], errp[2];
	if (pipe2(go, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	unsigned long flags = CLONE_NEWPID;
	if (!o.only_pidns)
		flags |= CLONE_NEWUTS | CLONE_NEWIPC | (o.netns ? CLONE_NEWNET : 0);
	if (o.mountns)
		flags |= CLONE_NEWNS;
	if (o.userns)
		flags |= CLONE_NEWUSER;
	fflush(NULL);
	pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid < 0)
		die("clone(%#lx): %s", flags, strerror(errno));
	if (pid == 0) {
		in_child = 1;
		close(go[1]);
		close(errp[0]);
		err_fd = errp[1];
		child(go[0]);
	}
	close(go[0]);
	close(errp[1]);

	if (o.cgroup)
		cgroups_join(pid);
	if (o.userns) {
		char path[64];
		int fd;
		for (int i = 0; i < 2; i++) {
			snprintf(path, sizeof(path), "/proc/%d/%s", pid, i ? "uid_map" : "gid_map");
			if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0 ||
			    write(fd, map_text, strlen(map_text)) != (ssize_t)strlen(map_text))
				die_with_init(pid, "--userns: writing %s: %s", path, strerror(errno));
			close(fd);
		}
	}
	if (write(go[1], "g", 1) != 1)
		die_with_init(pid, "cannot start the init: %s", strerror(errno));
	close(go[1]);
	/* the init's error, if any; EOF when its exec closed the pipe */
	char msg[1100];
	size_t len = 0;
	ssize_t n;
	while (len + 1 < sizeof(msg) && (n = read(errp[0], msg + len, sizeof(msg) - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += (size_t)n;
	}
	if (len) {
		msg[len] = 0;
		if (write(2, msg, len) < 0) {
			/* the message is lost, the exit status says it */
		}
		die_with_init(pid, "the container's init failed before exec");
	}
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.tmp", o.pidfile);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", pid) < 0 || fclose(f) != 0 || rename(tmp, o.pidfile) < 0)
		die_with_init(pid, "writing --pidfile %s: %s", o.pidfile, strerror(errno));
	return 0;
}
