/*
 * stasis check: probe, at run time, what this kernel offers, one line per feature.
 *
 * Nothing here trusts the kernel version: each feature is used once, in a way that leaves
 * no trace. Probes that change process state (clear_refs, unshare, PR_SET_MM_MAP, writes
 * under userfaultfd) run in a forked child that exits at once; every child is reaped and
 * every fd and mapping is released before the next line is printed.
 *
 * Exit code: 0 when everything that a basic dump and restore of a process needs is there
 * ("Looks good."), 1 otherwise. Missing optional features (iterative or lazy migration,
 * time namespaces) are reported but do not fail the check.
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/kcmp.h>

#include "check.h"
#include "commands.h"
#include "compat/kernel-abi.h"
#include "log.h"
#include "options.h"
#include "util.h"

#define CHILD_TIMEOUT_S 5
#define TRACEE_MAGIC 0x5354415349532121ull /* "STASIS!!" */


/* A child stopped under ptrace, shared by the ptrace-based probes. */
struct tracee {
	pid_t pid;   /* -1 if it could not be set up */
	int ctl[2];  /* parent -> child: closing it lets the child exit */
	struct res seize;
};

/* Set in the tracee after fork, so the parent can tell its copy from the child's. */
static volatile uint64_t tracee_marker;

__attribute__((format(printf, 3, 4))) bool set(struct res *r, bool ok, const char *fmt, ...)
{
	va_list ap;

	r->ok = ok;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	return ok;
}

static void append(char *buf, size_t len, const char *name)
{
	size_t used = strlen(buf);

	snprintf(buf + used, len - used, "%s%s", used ? ", " : "", name);
}

void print_line(struct report *rep, const char *name, bool required, const struct res *r)
{
	printf("%s: %s%s%s%s\n", name, r->ok ? "yes" : "no", r->detail[0] ? " (" : "", r->detail,
	       r->detail[0] ? ")" : "");
	if (r->ok)
		return;
	if (required) {
		rep->missing_required++;
		append(rep->missing, sizeof(rep->missing), name);
	} else {
		append(rep->missing_optional, sizeof(rep->missing_optional), name);
	}
}

static void close_pair(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
	p[0] = p[1] = -1;
}

/* Waits for pid, retrying on EINTR; returns the wait status or -1. */
static int reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, __WALL) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return status;
}

/* ---- probes that run in a throwaway child ---- */

/*
 * Runs fn in a forked child (with a timeout). fn writes its words into r and returns
 * whether the feature is there; the child's exit code and detail come back to the parent.
 */
static bool run_in_child(bool (*fn)(struct res *r), struct res *r)
{
	int p[2];
	pid_t pid;
	ssize_t n;
	int status;

	if (pipe2(p, O_CLOEXEC) < 0)
		return set(r, false, "probe pipe: %m");
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close_pair(p);
		return set(r, false, "probe fork: %m");
	}
	if (pid == 0) {
		struct res cr = { 0 };
		bool ok;

		close(p[0]);
		alarm(CHILD_TIMEOUT_S);
		ok = fn(&cr);
		if (write(p[1], cr.detail, strlen(cr.detail)) < 0)
			_exit(3);
		_exit(ok ? 0 : 1);
	}
	close(p[1]);
	memset(r->detail, 0, sizeof(r->detail));
	n = read_all(p[0], r->detail, sizeof(r->detail) - 1);
	close(p[0]);
	status = reap(pid);
	if (n < 0)
		r->detail[0] = 0;
	if (status < 0)
		return set(r, false, "probe child lost: %m");
	if (WIFSIGNALED(status))
		return set(r, false, "probe child died of signal %d%s", WTERMSIG(status),
			   WTERMSIG(status) == SIGALRM ? ": timed out" : "");
	r->ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	return r->ok;
}

/* ---- the ptrace tracee ---- */

static __attribute__((noreturn)) void tracee_child(int ready_fd, int ctl_fd)
{
	sigset_t set;
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	tracee_marker = TRACEE_MAGIC;
	if (write(ready_fd, "r", 1) != 1)
		_exit(1);
	close(ready_fd);
	/* Blocks until the parent closes its end (or kills us). */
	while (read(ctl_fd, &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

/* Forks the tracee and waits until it has blocked SIGUSR1 and is waiting on ctl. */
static int tracee_start(struct tracee *t)
{
	int ready[2];
	char c;

	t->pid = -1;
	t->ctl[0] = t->ctl[1] = -1;
	if (pipe2(ready, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(t->ctl, O_CLOEXEC) < 0) {
		int err = -errno;
		close_pair(ready);
		return err;
	}
	fflush(NULL);
	t->pid = fork();
	if (t->pid < 0) {
		int err = -errno;
		close_pair(ready);
		close_pair(t->ctl);
		return err;
	}
	if (t->pid == 0) {
		close(ready[0]);
		close(t->ctl[1]);
		tracee_child(ready[1], t->ctl[0]);
	}
	close(ready[1]);
	close(t->ctl[0]);
	t->ctl[0] = -1;
	if (read_all(ready[0], &c, 1) != 1) {
		close(ready[0]);
		return -ECHILD;
	}
	close(ready[0]);
	return 0;
}

/* A thread-directed SIGUSR1 stays pending (blocked) for PTRACE_PEEKSIGINFO to find. */
static void tracee_seize(struct tracee *t)
{
	int status;

	if (syscall(SYS_tgkill, t->pid, t->pid, SIGUSR1) < 0) {
		set(&t->seize, false, "tgkill: %m");
		return;
	}
	if (ptrace(PTRACE_SEIZE, t->pid, 0, (void *)(long)PTRACE_O_EXITKILL) < 0) {
		set(&t->seize, false, "PTRACE_SEIZE: %m");
		return;
	}
	if (ptrace(PTRACE_INTERRUPT, t->pid, 0, 0) < 0) {
		set(&t->seize, false, "PTRACE_INTERRUPT: %m");
		return;
	}
	status = reap(t->pid);
	if (status < 0 || !WIFSTOPPED(status) || status >> 16 != PTRACE_EVENT_STOP) {
		set(&t->seize, false, "the tracee did not reach a PTRACE_EVENT_STOP (status 0x%x)",
		    status);
		return;
	}
	set(&t->seize, true, "%s", "");
}

static void tracee_stop(struct tracee *t)
{
	if (t->pid > 0) {
		kill(t->pid, SIGKILL);
		reap(t->pid);
	}
	t->pid = -1;
	close_pair(t->ctl);
}

static bool need_tracee(const struct tracee *t, struct res *r)
{
	if (t->pid > 0 && t->seize.ok)
		return true;
	return set(r, false, "no stopped tracee to probe with");
}

static bool probe_rseq(const struct tracee *t, struct res *r)
{
	struct ptrace_rseq_configuration conf = { 0 };
	long ret;

	if (!need_tracee(t, r))
		return false;
	ret = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, t->pid, (void *)sizeof(conf), &conf);
	if (ret < 0)
		return set(r, false, "%m");
	if (ret < (long)sizeof(conf))
		return set(r, false, "the kernel returned %ld bytes, expected %zu", ret, sizeof(conf));
	if (!conf.rseq_abi_pointer)
		return set(r, true, "the probe child has no rseq area registered");
	return set(r, true, "rseq area of %u bytes, signature 0x%x", conf.rseq_abi_size,
		   conf.signature);
}

static bool probe_peeksiginfo(const struct tracee *t, struct res *r)
{
	struct ptrace_peeksiginfo_args args = { .off = 0, .flags = 0, .nr = 1 };
	siginfo_t si;
	long ret;

	if (!need_tracee(t, r))
		return false;
	memset(&si, 0, sizeof(si));
	ret = ptrace(PTRACE_PEEKSIGINFO, t->pid, &args, &si);
	if (ret < 0)
		return set(r, false, "%m");
	if (ret != 1 || si.si_signo != SIGUSR1)
		return set(r, false, "read %ld entries (signal %d), expected the pending SIGUSR1", ret,
			   si.si_signo);
	return set(r, true, "%s", "");
}

#ifdef __x86_64__
static bool probe_xstate(const struct tracee *t, struct res *r)
{
	static uint8_t buf[64 * 1024];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };

	if (!need_tracee(t, r))
		return false;
	if (ptrace(PTRACE_GETREGSET, t->pid, (void *)NT_X86_XSTATE, &iov) < 0)
		return set(r, false, "%m");
	return set(r, true, "xsave area of %zu bytes", iov.iov_len);
}
#endif

static bool probe_process_vm_readv(const struct tracee *t, struct res *r)
{
	uint64_t val = 0;
	struct iovec local = { .iov_base = &val, .iov_len = sizeof(val) };
	struct iovec remote = { .iov_base = (void *)&tracee_marker, .iov_len = sizeof(val) };
	ssize_t n;

	if (t->pid <= 0)
		return set(r, false, "no tracee to read from");
	n = process_vm_readv(t->pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return set(r, false, "%m");
	if (n != sizeof(val) || val != TRACEE_MAGIC)
		return set(r, false, "read back the wrong data");
	return set(r, true, "%s", "");
}

static bool probe_map_files(const struct tracee *t, struct res *r)
{
	char dir[64], target[4096];
	struct dirent *de;
	DIR *d;
	int dfd, fd;
	bool ok = false;

	if (t->pid <= 0)
		return set(r, false, "no tracee to look at");
	snprintf(dir, sizeof(dir), "/proc/%d/map_files", (int)t->pid);
	d = opendir(dir);
	if (!d)
		return set(r, false, "%s: %m", dir);
	dfd = dirfd(d);
	set(r, false, "%s is empty", dir);
	while ((de = readdir(d)) && !ok) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		n = readlinkat(dfd, de->d_name, target, sizeof(target) - 1);
		if (n < 0) {
			set(r, false, "readlink %s/%s: %m", dir, de->d_name);
			break;
		}
		fd = openat(dfd, de->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			set(r, false, "open %s/%s: %m%s", dir, de->d_name,
			    errno == EPERM ? " (needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE)" : "");
			break;
		}
		close(fd);
		ok = set(r, true, "%s", "");
	}
	closedir(d);
	return ok;
}

/* ---- probes in this process, without side effects ---- */

/* The pagemap entry of one page of this process. */
static int read_pme(int fd, const void *addr, uint64_t *pme)
{
	off_t off = (uintptr_t)addr / PAGE_SIZE * sizeof(*pme);

	if (pread(fd, pme, sizeof(*pme), off) != sizeof(*pme))
		return -errno ? -errno : -EIO;
	return 0;
}

static bool probe_pagemap(struct res *r)
{
	static volatile char page[2 * PAGE_SIZE];
	volatile char *p = (char *)PAGE_ALIGN((uintptr_t)page);
	uint64_t pme;
	int fd, err;

	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return set(r, false, "/proc/self/pagemap: %m");
	*p = 1;
	err = read_pme(fd, (const void *)p, &pme);
	close(fd);
	if (err < 0)
		return set(r, false, "read: %s", strerror(-err));
	if (!(pme & PME_PRESENT))
		return set(r, false, "a touched page is not reported present");
	if (!(pme & PME_PFN_MASK))
		return set(r, false, "PFNs are hidden: needs CAP_SYS_ADMIN");
	return set(r, true, "%s", "");
}

static bool probe_mm_map_size(struct res *r)
{
	unsigned int size = 0;

	if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, (unsigned long)&size, 0, 0) < 0)
		return set(r, false, "PR_SET_MM_MAP_SIZE: %m (kernel without CONFIG_CHECKPOINT_RESTORE?)");
	if (size != sizeof(struct prctl_mm_map))
		return set(r, false, "struct prctl_mm_map is %u bytes here, stasis uses %zu", size,
			   sizeof(struct prctl_mm_map));
	return true;
}

/* Fields 26-28 and 45-51 of /proc/self/stat: the mm layout PR_SET_MM_MAP sets. */
static int read_mm_map(struct prctl_mm_map *m)
{
	unsigned long long v[52] = { 0 };
	auto_free char *stat = read_file_at(AT_FDCWD, "/proc/self/stat", NULL);
	char *s = stat ? strrchr(stat, ')') : NULL;
	int field = 3;

	if (!s)
		return -EIO;
	for (s++; *s && field < 52; field++) {
		char *end;
		while (*s == ' ')
			s++;
		if (field == 3) { /* state: a letter */
			s++;
			continue;
		}
		v[field] = strtoull(s, &end, 10);
		if (end == s)
			return -EIO;
		s = end;
	}
	if (field < 52)
		return -EIO;
	memset(m, 0, sizeof(*m));
	m->start_code = v[26], m->end_code = v[27], m->start_stack = v[28];
	m->start_data = v[45], m->end_data = v[46], m->start_brk = v[47];
	m->arg_start = v[48], m->arg_end = v[49], m->env_start = v[50], m->env_end = v[51];
	m->brk = syscall(SYS_brk, 0);
	m->exe_fd = -1;
	return 0;
}

/*
 * In a child: sets the mm layout to what it already is. The executable stays (exe_fd -1):
 * the kernel refuses a new one while the old one is still mapped, as it is here.
 */
static bool mm_map_child(struct res *r)
{
	struct prctl_mm_map m;

	if (read_mm_map(&m) < 0)
		return set(r, false, "cannot parse /proc/self/stat");
	if (prctl(PR_SET_MM, PR_SET_MM_MAP, (unsigned long)&m, sizeof(m), 0) < 0)
		return set(r, false, "PR_SET_MM_MAP: %m%s",
			   errno == EPERM ? " (not permitted for this user)" : "");
	return set(r, true, "%s", "");
}

static bool probe_mm_map(struct res *r)
{
	if (!probe_mm_map_size(r))
		return false;
	return run_in_child(mm_map_child, r);
}

/* A pid that no task, group or session uses right now; 0 if none was found. */
static pid_t free_pid(unsigned attempt)
{
	auto_free char *last = read_file_at(AT_FDCWD, "/proc/sys/kernel/ns_last_pid", NULL);
	auto_free char *max = read_file_at(AT_FDCWD, "/proc/sys/kernel/pid_max", NULL);
	long lo = last ? atol(last) : 1000, hi = max ? atol(max) : 32768;

	if (hi <= 400)
		return 0;
	for (long i = 0; i < 1000; i++) {
		long pid = lo + 500 + (long)attempt * 1009 + i * 7;
		pid = 300 + pid % (hi - 300);
		if (kill(pid, 0) < 0 && errno == ESRCH && getpgid(pid) < 0 && getsid(pid) < 0)
			return pid;
	}
	return 0;
}

/* clone3 a child with a chosen pid that exits at once; -errno, or the pid it got. */
static long clone3_with_tid(pid_t want)
{
	struct clone_args args;
	pid_t tid = want;
	long ret;

	memset(&args, 0, sizeof(args));
	args.exit_signal = SIGCHLD;
	args.set_tid = (uintptr_t)&tid;
	args.set_tid_size = 1;
	fflush(NULL);
	ret = syscall(__NR_clone3, &args, CLONE_ARGS_SIZE_VER2);
	if (ret == 0)
		_exit(0);
	if (ret < 0)
		return -errno;
	reap(ret);
	return ret;
}

static bool probe_clone3(struct res *r)
{
	for (unsigned attempt = 0; attempt < 5; attempt++) {
		pid_t want = free_pid(attempt);
		long got;

		if (!want)
			return set(r, false, "found no free pid to try");
		got = clone3_with_tid(want);
		if (got == -EEXIST)
			continue; /* taken meanwhile: try another */
		if (got == -ENOSYS)
			return set(r, false, "no clone3 system call");
		if (got == -E2BIG)
			return set(r, false, "clone3 without set_tid (kernel older than 5.5)");
		if (got == -EPERM)
			return set(r, false, "needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE");
		if (got < 0)
			return set(r, false, "%s", strerror(-got));
		if (got != want)
			return set(r, false, "asked for pid %d, got %ld", (int)want, got);
		return set(r, true, "%s", "");
	}
	return set(r, false, "every pid tried was taken meanwhile");
}

static bool probe_kcmp(struct res *r)
{
	int fds[3] = { -1, -1, -1 };
	pid_t me = getpid();
	long same, other;

	fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fds[1] = fds[0] >= 0 ? fcntl(fds[0], F_DUPFD_CLOEXEC, 0) : -1;
	fds[2] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0) {
		set(r, false, "/dev/null: %m");
		goto out;
	}
	same = syscall(SYS_kcmp, me, me, KCMP_FILE, fds[0], fds[1]);
	if (same < 0) {
		set(r, false, "%m%s", errno == ENOSYS ? " (kernel without CONFIG_KCMP)" : "");
		goto out;
	}
	other = syscall(SYS_kcmp, me, me, KCMP_FILE, fds[0], fds[2]);
	if (same == 0 && other > 0)
		set(r, true, "%s", "");
	else
		set(r, false, "wrong answers (%ld for a dup, %ld for another file)", same, other);
out:
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return r->ok;
}

static bool probe_pidfd(struct res *r)
{
	int pidfd, fd = -1, src;
	struct stat s1, s2;

	src = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return set(r, false, "/dev/null: %m");
	pidfd = syscall(__NR_pidfd_open, getpid(), 0);
	if (pidfd < 0) {
		set(r, false, "pidfd_open: %m");
		goto out;
	}
	fd = syscall(__NR_pidfd_getfd, pidfd, src, 0);
	if (fd < 0) {
		set(r, false, "pidfd_getfd: %m");
		goto out;
	}
	if (fstat(fd, &s1) || fstat(src, &s2) || s1.st_ino != s2.st_ino || s1.st_dev != s2.st_dev)
		set(r, false, "pidfd_getfd returned another file");
	else
		set(r, true, "%s", "");
out:
	if (fd >= 0)
		close(fd);
	if (pidfd >= 0)
		close(pidfd);
	close(src);
	return r->ok;
}

/* ---- userfaultfd and PAGEMAP_SCAN ---- */

static int uffd_open(void)
{
	int flags = O_CLOEXEC | O_NONBLOCK;
	int fd = syscall(SYS_userfaultfd, flags | UFFD_USER_MODE_ONLY);

	if (fd < 0 && errno == EINVAL) /* before 5.11 */
		fd = syscall(SYS_userfaultfd, flags);
	if (fd < 0 && errno == EPERM) { /* vm.unprivileged_userfaultfd=0: try the device */
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (dev >= 0) {
			fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
			close(dev);
		}
	}
	return fd;
}

/* Opens a userfaultfd with the given features enabled; *avail gets what the kernel has. */
static int uffd_open_api(uint64_t features, uint64_t *avail, struct res *r)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd = uffd_open();

	if (fd < 0) {
		set(r, false, "userfaultfd: %m");
		return -1;
	}
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		set(r, false, "UFFDIO_API with features 0x%" PRIx64 ": %m", features);
		close(fd);
		return -1;
	}
	if (avail)
		*avail = api.features;
	return fd;
}

struct uffd_probe {
	struct res base, wp, unpopulated, async;
};

static void probe_uffd(struct uffd_probe *u)
{
	uint64_t avail = 0, want = UFFD_FEATURE_PAGEFAULT_FLAG_WP;
	int fd = uffd_open_api(0, &avail, &u->base);

	if (fd < 0) {
		u->wp = u->unpopulated = u->async = u->base;
		return;
	}
	close(fd);
	set(&u->base, true, "features 0x%" PRIx64, avail);
	set(&u->wp, avail & UFFD_FEATURE_PAGEFAULT_FLAG_WP, "%s",
	    avail & UFFD_FEATURE_PAGEFAULT_FLAG_WP ? "" : "not offered");
	set(&u->unpopulated, avail & UFFD_FEATURE_WP_UNPOPULATED, "%s",
	    avail & UFFD_FEATURE_WP_UNPOPULATED ? "" : "not offered");
	if (!(avail & UFFD_FEATURE_WP_ASYNC)) {
		set(&u->async, false, "not offered");
		return;
	}
	/* Offered is not enabled: enable it once to be sure. */
	want |= UFFD_FEATURE_WP_ASYNC | (avail & UFFD_FEATURE_WP_UNPOPULATED);
	fd = uffd_open_api(want, NULL, &u->async);
	if (fd < 0)
		return;
	close(fd);
	set(&u->async, true, "%s", "");
}

static long pagemap_scan(int fd, void *start, size_t len, struct page_region *vec, size_t n,
			 uint64_t flags, uint64_t mask)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = flags,
		.start = (uintptr_t)start,
		.end = (uintptr_t)start + len,
		.vec = (uintptr_t)vec,
		.vec_len = n,
		.category_mask = mask,
		.return_mask = mask,
	};

	return ioctl(fd, PAGEMAP_SCAN, &arg);
}

static bool probe_pagemap_scan(struct res *r)
{
	struct page_region vec[4];
	char *p;
	long n;
	int fd;

	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return set(r, false, "/proc/self/pagemap: %m");
	p = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return set(r, false, "mmap: %m");
	}
	p[0] = 1; /* page 0 present, page 1 not */
	n = pagemap_scan(fd, p, 2 * PAGE_SIZE, vec, 4, 0, PAGE_IS_PRESENT);
	if (n < 0)
		set(r, false, "%m%s", errno == ENOTTY ? " (kernel older than 6.7)" : "");
	else if (n != 1 || vec[0].start != (uintptr_t)p || vec[0].end != (uintptr_t)p + PAGE_SIZE)
		set(r, false, "reported %ld regions for one present page", n);
	else
		set(r, true, "%s", "");
	munmap(p, 2 * PAGE_SIZE);
	close(fd);
	return r->ok;
}

/*
 * In a child: write-protect 4 pages with async uffd-wp, write one, and find exactly that one
 * with PAGEMAP_SCAN (which protects it again) - the loop of iterative migration.
 */
static bool dirty_tracking_child(struct res *r)
{
	uint64_t feat = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_ASYNC;
	struct page_region vec[4];
	char *p;
	long n;
	int uffd, pm;

	uffd = uffd_open_api(feat, NULL, r);
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	p = mmap(NULL, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (uffd < 0 || pm < 0 || p == MAP_FAILED)
		return uffd < 0 ? false : set(r, false, "setup: %m");
	memset(p, 1, 4 * PAGE_SIZE);

	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)p, .len = 4 * PAGE_SIZE },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		return set(r, false, "UFFDIO_REGISTER (WP): %m");
	struct uffdio_writeprotect wp = { .range = reg.range, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
		return set(r, false, "UFFDIO_WRITEPROTECT: %m");

	p[2 * PAGE_SIZE] = 2; /* resolved by the kernel: async mode */
	n = pagemap_scan(pm, p, 4 * PAGE_SIZE, vec, 4, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			 PAGE_IS_WRITTEN);
	if (n < 0)
		return set(r, false, "PAGEMAP_SCAN: %m");
	if (n != 1 || vec[0].start != (uintptr_t)p + 2 * PAGE_SIZE ||
	    vec[0].end != (uintptr_t)p + 3 * PAGE_SIZE)
		return set(r, false, "found %ld written regions, expected exactly the page written", n);
	n = pagemap_scan(pm, p, 4 * PAGE_SIZE, vec, 4, 0, PAGE_IS_WRITTEN);
	if (n != 0)
		return set(r, false, "the written page was not protected again");
	return set(r, true, "one written page of 4 found");
}

static bool probe_dirty_tracking(const struct uffd_probe *u, const struct res *scan, struct res *r)
{
	if (!u->async.ok)
		return set(r, false, "needs UFFD_FEATURE_WP_ASYNC");
	if (!scan->ok)
		return set(r, false, "needs PAGEMAP_SCAN");
	return run_in_child(dirty_tracking_child, r);
}

/* In a child: soft-dirty bits work if a write after clearing them sets bit 55 again. */
static bool soft_dirty_child(struct res *r)
{
	static volatile char page[2 * PAGE_SIZE];
	volatile char *p = (char *)PAGE_ALIGN((uintptr_t)page);
	uint64_t pme = 0;
	int cr, pm;

	*p = 1;
	cr = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (cr < 0 || pm < 0)
		return set(r, false, "/proc/self/clear_refs or pagemap: %m");
	if (write(cr, CLEAR_REFS_SOFT_DIRTY, 1) != 1)
		return set(r, false, "clear_refs: %m");
	*p = 2;
	if (read_pme(pm, (const void *)p, &pme) < 0)
		return set(r, false, "pagemap: %m");
	return pme & PME_SOFT_DIRTY;
}

static bool probe_soft_dirty(struct res *r)
{
	if (run_in_child(soft_dirty_child, r))
		return set(r, true, "%s", "");
	if (!r->detail[0])
		set(r, false, "iterative migration will use PAGEMAP_SCAN + uffd-wp");
	return false;
}

/* In a child: make a time namespace and set a clock offset, as restore would. */
static bool timens_child(struct res *r)
{
	int fd;

	if (unshare(CLONE_NEWTIME) < 0)
		return set(r, false, "unshare(CLONE_NEWTIME): %m");
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return set(r, false, "/proc/self/timens_offsets: %m");
	if (write(fd, "monotonic 0 0", 13) != 13) {
		close(fd);
		return set(r, false, "timens_offsets: %m");
	}
	close(fd);
	return set(r, true, "%s", "");
}

static bool probe_timens(struct res *r)
{
	if (access("/proc/self/ns/time", F_OK) < 0)
		return set(r, false, "kernel without CONFIG_TIME_NS");
	return run_in_child(timens_child, r);
}

/* ---- what the process looks like ---- */

/* "[vvar] 4 pages, [vvar_vclock] 2 pages, [vdso] 2 pages" from /proc/self/maps. */
static bool probe_vdso(struct res *r)
{
	static const char *const names[] = { "[vvar]", "[vvar_vclock]", "[vdso]", "[vsyscall]" };
	auto_free char *maps = read_file_at(AT_FDCWD, "/proc/self/maps", NULL);
	bool have_vdso = false;

	if (!maps)
		return set(r, false, "/proc/self/maps: %m");
	r->detail[0] = 0;
	for (char *line = strtok(maps, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned long long start, end;
		char name[64] = "";

		if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %63s", &start, &end, name) < 3)
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
			if (strcmp(name, names[i]) != 0)
				continue;
			size_t used = strlen(r->detail);
			unsigned long long pages = (end - start) / PAGE_SIZE;
			snprintf(r->detail + used, sizeof(r->detail) - used, "%s%s %llu page%s",
				 used ? ", " : "", name, pages, pages == 1 ? "" : "s");
			have_vdso |= i == 2;
		}
	}
	r->ok = have_vdso;
	if (!have_vdso && !r->detail[0])
		set(r, false, "no [vdso] mapping");
	return r->ok;
}

static bool probe_caps(struct res *r)
{
	static const struct {
		int bit;
		const char *name;
	} caps[] = { { 21, "CAP_SYS_ADMIN" }, { 19, "CAP_SYS_PTRACE" },
		     { 24, "CAP_SYS_RESOURCE" }, { 40, "CAP_CHECKPOINT_RESTORE" } };
	auto_free char *status = read_file_at(AT_FDCWD, "/proc/self/status", NULL);
	char *line = status ? strstr(status, "\nCapEff:") : NULL;
	unsigned long long eff;
	char missing[128] = "";

	if (!line || sscanf(line, "\nCapEff: %llx", &eff) != 1)
		return set(r, false, "cannot read CapEff from /proc/self/status");
	for (size_t i = 0; i < ARRAY_SIZE(caps); i++)
		if (!(eff & (1ULL << caps[i].bit)))
			append(missing, sizeof(missing), caps[i].name);
	if (missing[0])
		return set(r, false, "missing %s", missing);
	return set(r, true, "%s", "");
}

/* ---- the report ---- */

static void check_tracee_features(struct report *rep)
{
	struct tracee t;
	struct res r;
	int err = tracee_start(&t);

	if (err < 0)
		set(&t.seize, false, "cannot start a probe child: %s", strerror(-err));
	else
		tracee_seize(&t);
	print_line(rep, "ptrace seize/interrupt", true, &t.seize);
	probe_rseq(&t, &r);
	print_line(rep, "PTRACE_GET_RSEQ_CONFIGURATION", true, &r);
	probe_peeksiginfo(&t, &r);
	print_line(rep, "PTRACE_PEEKSIGINFO", true, &r);
#ifdef __x86_64__
	probe_xstate(&t, &r);
	print_line(rep, "PTRACE_GETREGSET NT_X86_XSTATE", true, &r);
#endif
	probe_process_vm_readv(&t, &r);
	print_line(rep, "process_vm_readv", true, &r);
	probe_map_files(&t, &r);
	print_line(rep, "/proc/PID/map_files", true, &r);
	tracee_stop(&t);
}

static void check_memory_features(struct report *rep)
{
	struct uffd_probe u;
	struct res r, scan;

	probe_pagemap(&r);
	print_line(rep, "pagemap with PFNs", true, &r);

	probe_uffd(&u);
	print_line(rep, "userfaultfd", false, &u.base);
	print_line(rep, "userfaultfd write-protect (UFFD_FEATURE_PAGEFAULT_FLAG_WP)", false, &u.wp);
	print_line(rep, "userfaultfd WP of unpopulated pages (UFFD_FEATURE_WP_UNPOPULATED)", false,
		   &u.unpopulated);
	print_line(rep, "userfaultfd async write-protect (UFFD_FEATURE_WP_ASYNC)", false, &u.async);
	probe_pagemap_scan(&scan);
	print_line(rep, "PAGEMAP_SCAN ioctl", false, &scan);
	probe_dirty_tracking(&u, &scan, &r);
	print_line(rep, "dirty page tracking (uffd-wp + PAGEMAP_SCAN)", false, &r);

	/* Expected to be missing on this kernel, and not needed: not counted. */
	probe_soft_dirty(&r);
	printf("soft-dirty bits: %s (%s)\n", r.ok ? "yes" : "no",
	       r.ok ? "not used: stasis tracks writes with PAGEMAP_SCAN + uffd-wp" : r.detail);
}

static void check_process_features(struct report *rep)
{
	struct res r;

	probe_mm_map(&r);
	print_line(rep, "prctl PR_SET_MM_MAP", true, &r);
	probe_clone3(&r);
	print_line(rep, "clone3 with set_tid", true, &r);
	probe_kcmp(&r);
	print_line(rep, "kcmp", true, &r);
	probe_pidfd(&r);
	print_line(rep, "pidfd_open/pidfd_getfd", true, &r);
	probe_timens(&r);
	print_line(rep, "time namespaces", false, &r);
	probe_vdso(&r);
	print_line(rep, "vDSO layout", false, &r);
	probe_caps(&r);
	print_line(rep, "capabilities", false, &r);
}

int cmd_check(const struct stasis_opts *o)
{
	struct report rep = { 0 };
	struct utsname u;

	if (o->check_feature) {
		fprintf(stderr, "stasis: check --feature %s: feature checks by name are not supported yet\n",
			o->check_feature);
		return 1;
	}
	if (uname(&u) == 0)
		printf("kernel: %s %s\n", u.release, u.machine);

	check_tracee_features(&rep);
	check_process_features(&rep);
	check_memory_features(&rep);
	check_file_features(&rep);

	if (rep.missing_optional[0])
		printf("Optional features missing: %s.\n", rep.missing_optional);
	if (rep.missing_required) {
		printf("stasis cannot dump and restore processes here; missing: %s.\n", rep.missing);
		return 1;
	}
	printf("Looks good.\n");
	return 0;
}
