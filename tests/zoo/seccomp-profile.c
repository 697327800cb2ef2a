/*
 * seccomp-profile: a container's seccomp profile, built like Docker's default one with
 * libseccomp (every other system call fails with EPERM; personality only with the
 * arguments Docker allows; clone without namespace flags; clone3 ENOSYS so that glibc falls
 * back to clone), loaded with TSYNC once a worker thread exists, so both threads share the
 * one filter. After restore and SIGTERM, in each thread: Seccomp: 2 and one filter more
 * than the process started with (a container's own profile may be there already) in its
 * status; swapoff of a missing file still fails with the profile's EPERM (ENOENT
 * without it); getpid works; personality(0xffffffff) works and personality(ADDR_NO_RANDOMIZE)
 * fails with EPERM; clone3 gives ENOSYS. A new thread can still be made (clone's argument
 * rule) and is filtered too. Last, a filter loaded with TSYNC from the main thread still
 * reaches the worker: the two threads still share their filter (had each got a copy of its
 * own, TSYNC would fail naming the worker).
 * Blocks in: nanosleep (zoo_wait loop); the worker in nanosleep.
 */
#include "zoo.h"
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdatomic.h>
#include <sys/personality.h>
#include <sys/prctl.h>

/* Docker's default allow list (moby profiles/seccomp/default.json), those of x86_64. */
static const char *const allowed[] = {
	"accept", "accept4", "access", "adjtimex", "alarm", "arch_prctl", "bind", "brk", "capget",
	"capset", "chdir", "chmod", "chown", "clock_adjtime", "clock_getres", "clock_gettime",
	"clock_nanosleep", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
	"dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2",
	"epoll_wait", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat",
	"faccessat2", "fadvise64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat",
	"fchown", "fchownat", "fcntl", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork",
	"fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync", "ftruncate", "futex", "futex_waitv",
	"futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "geteuid", "getgid",
	"getgroups", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
	"getpriority", "getrandom", "getresgid", "getresuid", "getrlimit", "get_robust_list",
	"getrusage", "getsid", "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid",
	"getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
	"io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "ioprio_get",
	"ioprio_set", "io_setup", "io_submit", "kill", "lchown", "lgetxattr", "link", "linkat",
	"listen", "listxattr", "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat", "madvise",
	"membarrier", "memfd_create", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
	"mlock2", "mlockall", "mmap", "modify_ldt", "mprotect", "mq_getsetattr", "mq_notify",
	"mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink", "mremap", "msgctl", "msgget",
	"msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at",
	"nanosleep", "newfstatat", "open", "openat", "openat2", "pause", "pidfd_open",
	"pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
	"ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "pselect6", "pwrite64",
	"pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recvfrom",
	"recvmmsg", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat", "renameat2",
	"restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
	"rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo",
	"sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
	"sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity",
	"sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
	"semctl", "semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto",
	"setfsgid", "setfsuid", "setgid", "setgroups", "setitimer", "setpgid", "setpriority",
	"setregid", "setresgid", "setresuid", "setreuid", "setrlimit", "set_robust_list", "setsid",
	"setsockopt", "set_tid_address", "setuid", "setxattr", "shmat", "shmctl", "shmdt", "shmget",
	"shutdown", "sigaltstack", "signalfd", "signalfd4", "socket", "socketpair", "splice", "stat",
	"statfs", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo",
	"tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
	"timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime", "times", "tkill",
	"truncate", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat", "utimes", "vfork",
	"vmsplice", "wait4", "waitid", "write", "writev",
};

#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | \
		  CLONE_NEWNET | CLONE_NEWCGROUP)
#define MISSING "/nonexistent/zoo-swap"

static pid_t worker_tid;
static atomic_int worker_go, worker_done, worker_diverge;
static char worker_failures[512];

static void load_profile(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	if (!ctx)
		zoo_die("seccomp_init");
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		int nr = seccomp_syscall_resolve_name(allowed[i]);
		if (nr != __NR_SCMP_ERROR && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0))
			zoo_die("seccomp_rule_add %s", allowed[i]);
	}
	static const unsigned long personas[] = { 0x0, 0x8, 0x20000, 0x20008, 0xffffffff };
	for (size_t i = 0; i < sizeof(personas) / sizeof(personas[0]); i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1,
				     SCMP_A0(SCMP_CMP_EQ, personas[i])))
			zoo_die("seccomp_rule_add personality");
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			     SCMP_A0(SCMP_CMP_MASKED_EQ, NS_FLAGS, 0)) ||
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) ||
	    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) || seccomp_load(ctx))
		zoo_die("loading the profile: %s", strerror(errno));
	seccomp_release(ctx);
}

/* The status line "KEY\tVALUE" of the calling thread, as a number; -1 if absent. */
static long status_of(const char *key)
{
	char buf[8192], *p;
	if (zoo_read_file("/proc/thread-self/status", buf, sizeof(buf)) < 0 || !(p = strstr(buf, key)))
		return -1;
	return strtol(p + strlen(key), NULL, 10);
}

static long start_filters; /* the filters the process started with (a container's) */

/* The profile as the calling thread sees it; failures appended to out. */
static void check_profile(const char *who, char *out, size_t len)
{
	long r, mode = status_of("\nSeccomp:\t"), filters = status_of("\nSeccomp_filters:\t");
	int e;
#define NOTE(...) snprintf(out + strlen(out), len - strlen(out), __VA_ARGS__)
	if (mode != 2 || filters != start_filters + 1)
		NOTE("%s: Seccomp %ld with %ld filters, expected 2 with %ld; ", who, mode, filters,
		     start_filters + 1);
	r = syscall(SYS_swapoff, MISSING), e = errno;
	if (r != -1 || e != EPERM)
		NOTE("%s: swapoff gave %ld (%s), expected EPERM; ", who, r, strerror(e));
	if (syscall(SYS_getpid) != getpid())
		NOTE("%s: getpid refused; ", who);
	r = syscall(SYS_personality, 0xffffffffUL), e = errno;
	if (r < 0)
		NOTE("%s: personality(query) refused (%s); ", who, strerror(e));
	r = syscall(SYS_personality, (unsigned long)ADDR_NO_RANDOMIZE), e = errno;
	if (r != -1 || e != EPERM)
		NOTE("%s: personality(ADDR_NO_RANDOMIZE) gave %ld (%s), expected EPERM; ", who, r,
		     strerror(e));
	r = syscall(SYS_clone3, NULL, 0), e = errno;
	if (r != -1 || e != ENOSYS)
		NOTE("%s: clone3 gave %ld (%s), expected ENOSYS; ", who, r, strerror(e));
#undef NOTE
}

static void *worker(void *arg)
{
	(void)arg;
	worker_tid = gettid();
	while (!atomic_load(&worker_go))
		zoo_sleep_ms(5);
	if (atomic_load(&worker_diverge)) { /* a filter of its own: it no longer shares the profile */
		struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
		struct sock_fprog prog = { 1, &allow };
		syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
	}
	check_profile("worker", worker_failures, sizeof(worker_failures));
	atomic_store(&worker_done, 1);
	for (;;)
		zoo_sleep_ms(1000);
	return NULL;
}

static void *new_thread(void *arg)
{
	check_profile("new thread", arg, 512);
	return NULL;
}

/* "filter": the main thread gets a filter more, one that answers swapoff with EXDEV. */
static void c_filter(ucontext_t *u)
{
	(void)u;
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_swapoff, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EXDEV),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };
	syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}
static void c_tsync(ucontext_t *u) { (void)u; atomic_store(&worker_diverge, 1); }
static const struct zoo_corruption corruptions[] = {
	{ "filter", c_filter, 0 },
	{ "tsync", c_tsync, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	pthread_t th, th2;
	if ((start_filters = status_of("\nSeccomp_filters:\t")) < 0)
		zoo_die("no Seccomp_filters in /proc/thread-self/status");
	if (pthread_create(&th, NULL, worker, NULL))
		zoo_die("pthread_create");
	while (!worker_tid)
		zoo_sleep_ms(1);
	load_profile();
	zoo_ready();
	zoo_wait();

	char failures[512] = "", new_failures[512] = "";
	check_profile("main", failures, sizeof(failures));
	CHECK("filter", !failures[0], "%s", failures);
	atomic_store(&worker_go, 1);
	while (!atomic_load(&worker_done))
		zoo_sleep_ms(5);
	CHECK("filter", !worker_failures[0], "%s", worker_failures);
	if (CHECK("filter", !pthread_create(&th2, NULL, new_thread, new_failures), "a new thread: %s",
		  strerror(errno))) {
		pthread_join(th2, NULL);
		CHECK("filter", !new_failures[0], "%s", new_failures);
	}
	/* last (it adds a filter): the worker still shares the main thread's filter */
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { 1, &allow };
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
	CHECK("tsync", r == 0, "a filter with TSYNC: %ld (%s): thread %ld no longer shares the filter",
	      r, r < 0 ? strerror(errno) : "a thread could not follow", r);
	return zoo_finish("a Docker-like profile on two threads");
}
