/*
 * Kernel features probed through ptrace: one child is forked, made to block SIGUSR1 and
 * leave one pending, seized and interrupted; every probe here then uses it the way a dump
 * uses a frozen task. The child is killed and reaped before the probe returns.
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "kernel/probe.h"
#include "util.h"

#define TRACEE_MAGIC 0x5354415349532121ull /* "STASIS!!" */
#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif
#ifndef PTRACE_O_SUSPEND_SECCOMP
#define PTRACE_O_SUSPEND_SECCOMP (1 << 21)
#endif

/* A child stopped under ptrace, shared by the probes below. */
struct tracee {
	pid_t pid;  /* -1 if it could not be set up */
	int ctl[2]; /* parent -> child: closing it lets the child exit */
	struct probe_result *seize;
};

/* Set in the tracee after fork, so the parent can tell its copy from the child's. */
static volatile uint64_t tracee_marker;

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
		probe_close_pair(ready);
		return err;
	}
	fflush(NULL);
	t->pid = fork();
	if (t->pid < 0) {
		int err = -errno;
		probe_close_pair(ready);
		probe_close_pair(t->ctl);
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
		probe_set(t->seize, false, "tgkill: %m");
		return;
	}
	if (ptrace(PTRACE_SEIZE, t->pid, 0, (void *)(long)PTRACE_O_EXITKILL) < 0) {
		probe_set(t->seize, false, "PTRACE_SEIZE: %m");
		return;
	}
	if (ptrace(PTRACE_INTERRUPT, t->pid, 0, 0) < 0) {
		probe_set(t->seize, false, "PTRACE_INTERRUPT: %m");
		return;
	}
	status = probe_reap(t->pid);
	if (status < 0 || !WIFSTOPPED(status) || status >> 16 != PTRACE_EVENT_STOP) {
		probe_set(t->seize, false,
			  "the tracee did not reach a PTRACE_EVENT_STOP (status 0x%x)", status);
		return;
	}
	probe_set(t->seize, true, "%s", "");
}

static void tracee_stop(struct tracee *t)
{
	if (t->pid > 0) {
		kill(t->pid, SIGKILL);
		probe_reap(t->pid);
	}
	t->pid = -1;
	probe_close_pair(t->ctl);
}

static bool need_tracee(const struct tracee *t, struct probe_result *r)
{
	if (t->pid > 0 && t->seize->ok)
		return true;
	return probe_set(r, false, "no stopped tracee to probe with");
}

static bool probe_rseq(const struct tracee *t, struct probe_result *r)
{
	struct ptrace_rseq_configuration conf = { 0 };
	long ret;

	if (!need_tracee(t, r))
		return false;
	ret = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, t->pid, (void *)sizeof(conf), &conf);
	if (ret < 0) {
		int err = errno;
		/* Without rseq itself no thread has an area to read. */
		if (syscall(SYS_rseq, NULL, 0, 0, 0) < 0 && errno == ENOSYS)
			return probe_set(r, true, "this kernel has no rseq: nothing to read");
		return probe_set(r, false, "%s", strerror(err));
	}
	if (ret < (long)sizeof(conf))
		return probe_set(r, false, "the kernel returned %ld bytes, expected %zu", ret,
				 sizeof(conf));
	if (!conf.rseq_abi_pointer)
		return probe_set(r, true, "the probe child has no rseq area registered");
	return probe_set(r, true, "rseq area of %u bytes, signature 0x%x", conf.rseq_abi_size,
			 conf.signature);
}

static bool probe_peeksiginfo(const struct tracee *t, struct probe_result *r)
{
	struct ptrace_peeksiginfo_args args = { .off = 0, .flags = 0, .nr = 1 };
	siginfo_t si;
	long ret;

	if (!need_tracee(t, r))
		return false;
	memset(&si, 0, sizeof(si));
	ret = ptrace(PTRACE_PEEKSIGINFO, t->pid, &args, &si);
	if (ret < 0)
		return probe_set(r, false, "%m");
	if (ret != 1 || si.si_signo != SIGUSR1)
		return probe_set(r, false, "read %ld entries (signal %d), expected the pending SIGUSR1",
				 ret, si.si_signo);
	return probe_set(r, true, "%s", "");
}

static bool probe_xstate(const struct tracee *t, struct probe_result *r)
{
#ifdef __x86_64__
	static uint8_t buf[64 * 1024];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };

	if (!need_tracee(t, r))
		return false;
	if (ptrace(PTRACE_GETREGSET, t->pid, (void *)NT_X86_XSTATE, &iov) < 0)
		return probe_set(r, false, "%m");
	return probe_set(r, true, "xsave area of %zu bytes", iov.iov_len);
#else
	(void)t;
	return probe_set(r, false, "not an x86_64 build");
#endif
}

static bool probe_process_vm_readv(const struct tracee *t, struct probe_result *r)
{
	uint64_t val = 0;
	struct iovec local = { .iov_base = &val, .iov_len = sizeof(val) };
	struct iovec remote = { .iov_base = (void *)&tracee_marker, .iov_len = sizeof(val) };
	ssize_t n;

	if (t->pid <= 0)
		return probe_set(r, false, "no tracee to read from");
	n = process_vm_readv(t->pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return probe_set(r, false, "%m");
	if (n != sizeof(val) || val != TRACEE_MAGIC)
		return probe_set(r, false, "read back the wrong data");
	return probe_set(r, true, "%s", "");
}

static bool probe_map_files(const struct tracee *t, struct probe_result *r)
{
	char dir[64], target[4096];
	struct dirent *de;
	DIR *d;
	int dfd, fd;
	bool ok = false;

	if (t->pid <= 0)
		return probe_set(r, false, "no tracee to look at");
	snprintf(dir, sizeof(dir), "/proc/%d/map_files", (int)t->pid);
	d = opendir(dir);
	if (!d)
		return probe_set(r, false, "%s: %m", dir);
	dfd = dirfd(d);
	probe_set(r, false, "%s is empty", dir);
	while ((de = readdir(d)) && !ok) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		n = readlinkat(dfd, de->d_name, target, sizeof(target) - 1);
		if (n < 0) {
			probe_set(r, false, "readlink %s/%s: %m", dir, de->d_name);
			break;
		}
		fd = openat(dfd, de->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			probe_set(r, false, "open %s/%s: %m%s", dir, de->d_name,
				  errno == EPERM ? " (needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE)" : "");
			break;
		}
		close(fd);
		ok = probe_set(r, true, "%s", "");
	}
	closedir(d);
	return ok;
}

/*
 * The tracee has no seccomp filter: a kernel that knows the request says so (EINVAL); one
 * without it (no CONFIG_SECCOMP_FILTER or CONFIG_CHECKPOINT_RESTORE) does not know it (EIO).
 */
static bool probe_seccomp_filter(const struct tracee *t, struct probe_result *r)
{
	if (!need_tracee(t, r))
		return false;
	if (ptrace(PTRACE_SECCOMP_GET_FILTER, t->pid, 0, NULL) >= 0 || errno == EINVAL ||
	    errno == ENOENT)
		return probe_set(r, true, "%s", "");
	if (errno == EACCES)
		return probe_set(r, false, "refused: needs CAP_SYS_ADMIN, and stasis itself "
					   "outside seccomp");
	return probe_set(r, false, "%m");
}

/*
 * What dump and restore do to a tracee under seccomp: suspend it. A kernel without
 * CONFIG_CHECKPOINT_RESTORE does not know the option (EINVAL).
 */
static bool probe_seccomp_suspend(const struct tracee *t, struct probe_result *r)
{
	if (!need_tracee(t, r))
		return false;
	if (ptrace(PTRACE_SETOPTIONS, t->pid, 0,
		   (void *)(long)(PTRACE_O_EXITKILL | PTRACE_O_SUSPEND_SECCOMP)) == 0)
		return probe_set(r, true, "%s", "");
	if (errno == EPERM)
		return probe_set(r, false, "refused: needs CAP_SYS_ADMIN, and stasis itself "
					   "outside seccomp");
	return probe_set(r, false, "%m");
}

void probe_tracee(struct probe_result res[KF_NR])
{
	struct tracee t = { .seize = &res[KF_PTRACE_SEIZE] };
	int err = tracee_start(&t);

	if (err < 0)
		probe_set(t.seize, false, "cannot start a probe child: %s", strerror(-err));
	else
		tracee_seize(&t);
	probe_rseq(&t, &res[KF_PTRACE_GET_RSEQ_CONF]);
	probe_peeksiginfo(&t, &res[KF_PTRACE_PEEKSIGINFO]);
	probe_xstate(&t, &res[KF_PTRACE_XSTATE]);
	probe_process_vm_readv(&t, &res[KF_PROCESS_VM_READV]);
	probe_map_files(&t, &res[KF_MAP_FILES]);
	probe_seccomp_filter(&t, &res[KF_SECCOMP_GET_FILTER]);
	probe_seccomp_suspend(&t, &res[KF_SECCOMP_SUSPEND]);
	tracee_stop(&t);
}
