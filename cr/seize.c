#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "log.h"
#include "proc.h"
#include "seize.h"
#include "util.h"

#define WAIT_STOP_TIMEOUT_MS (FREEZE_TIMEOUT_DEFAULT_S * 1000)
#define VFORK_WAIT_MS 1000
#define VFORK_PEEK_MS 20 /* a task not stopped by then may be in vfork() with a child caught */

/*
 * The wait for a stop blocks in waitpid(), under a timer of the waiting thread's own whose
 * signal (a handler that does nothing, without SA_RESTART) breaks it off at the deadline. The
 * timer is disarmed before waitpid's result is used: its signal, if it came meanwhile, was
 * taken on the way out of a syscall that does not wait, and interrupts nothing else.
 */
#define WAKE_SIGNAL (SIGRTMIN + 3)

static void wake_waiter(int sig)
{
	(void)sig;
}

static __thread struct {
	bool made; /* (a child forked since has none: pthread_atfork clears it) */
	int id;    /* the kernel's timer id */
} wait_timer;

static void forget_wait_timer(void)
{
	wait_timer.made = false;
}

static bool make_wait_timer(void)
{
	struct sigevent sev = { .sigev_signo = WAKE_SIGNAL, .sigev_notify = SIGEV_THREAD_ID };

	sev._sigev_un._tid = gettid();
	wait_timer.made = !syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &wait_timer.id);
	return wait_timer.made;
}

/* The calling thread's timer (made on its first wait), armed for ms; false: poll instead. */
static bool arm_wait_timer(unsigned ms)
{
	static int handler_set; /* 1: set, -1: failed */
	struct itimerspec its = { .it_value = { ms / 1000, (ms % 1000) * 1000000L } };

	if (!handler_set) {
		struct sigaction sa = { .sa_handler = wake_waiter };
		sigemptyset(&sa.sa_mask);
		handler_set = sigaction(WAKE_SIGNAL, &sa, NULL) || pthread_atfork(NULL, NULL, forget_wait_timer)
				      ? -1
				      : 1;
	}
	if (handler_set < 0 || (!wait_timer.made && !make_wait_timer()))
		return false;
	return syscall(SYS_timer_settime, wait_timer.id, 0, &its, NULL) == 0 ||
	       (make_wait_timer() && syscall(SYS_timer_settime, wait_timer.id, 0, &its, NULL) == 0);
}

static void disarm_wait_timer(void)
{
	struct itimerspec off = { { 0, 0 }, { 0, 0 } };

	syscall(SYS_timer_settime, wait_timer.id, 0, &off, NULL);
}

static int wait_stop_for(pid_t pid, int *status, unsigned timeout_ms)
{
	uint64_t start = now_ns(CLOCK_MONOTONIC), deadline = start + timeout_ms * 1000000ull;
	int r = waitpid(pid, status, __WALL | WNOHANG);

	while (r != pid) {
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		if (r < 0 && errno != EINTR) {
			pr_perror("pid %d: cannot wait for it to stop", pid);
			return -errno;
		}
		if (now >= deadline)
			return -ETIMEDOUT;
		unsigned left_ms = (deadline - now + 999999) / 1000000;
		if (arm_wait_timer(left_ms)) {
			r = waitpid(pid, status, __WALL);
			int saved = errno;
			disarm_wait_timer();
			errno = saved;
		} else { /* no timer: a poll every millisecond */
			usleep(1000);
			r = waitpid(pid, status, __WALL | WNOHANG);
		}
	}
	if (!WIFSTOPPED(*status))
		return -ESRCH; /* it exited: the caller decides whether that is an error */
	return 0;
}

/* task_wait_stop within ms, what else to say (hint) if it does not stop. */
static int wait_stop_said(pid_t pid, int *status, unsigned ms, const char *hint)
{
	int ret = wait_stop_for(pid, status, ms);

	if (ret == -ETIMEDOUT)
		pr_err("pid %d: did not stop within %u ms%s", pid, ms, hint);
	return ret;
}

int task_wait_stop(pid_t pid, int *status)
{
	return wait_stop_said(pid, status, WAIT_STOP_TIMEOUT_MS, "");
}

/* The child pid waits for in vfork() (one sharing its memory), or 0. */
static pid_t vfork_child_of(pid_t pid)
{
	char path[64];
	struct dirent *d;
	pid_t found = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *tasks = opendir(path);
	while (tasks && !found && (d = readdir(tasks))) {
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children", pid, d->d_name);
		auto_free char *list = d->d_name[0] == '.' ? NULL : read_file_at(AT_FDCWD, path, NULL);
		for (char *p = list, *end; p && !found && *p; p = end) {
			long child = strtol(p, &end, 10);
			if (end == p)
				break;
			if (syscall(SYS_kcmp, pid, (pid_t)child, KCMP_VM, 0, 0) == 0)
				found = child;
		}
	}
	if (tasks)
		closedir(tasks);
	return found;
}

/* Seized already by stasis, while its cgroup was frozen (cr/freezer.c)? */
static bool caught_by_freezer(pid_t pid)
{
	uint64_t tracer;

	return !proc_status_field(pid, "TracerPid", 10, &tracer) && tracer == (uint64_t)gettid();
}

/*
 * With --freeze-cgroup, the child that a task waits for in vfork() may be one the freezer
 * caught: seized, with an interrupt pending, so that neither of them can stop, or run on. The
 * child is let run under trace until it execs (its exec stops it before the new program runs,
 * and it is left with an interrupt pending, as the freezer left it) or exits. 0: it did.
 */
static int vfork_child_run_to_exec(pid_t child)
{
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + VFORK_WAIT_MS * 1000000ull;
	int status, ret, sig = 0;

	if ((ret = wait_stop_for(child, &status, VFORK_WAIT_MS)))
		return ret == -ESRCH ? 0 : ret; /* (it exited meanwhile) */
	for (;;) {
		if ((status >> 16) == PTRACE_EVENT_EXEC) {
			/* an interrupt pending before it goes on, as after the freezer */
			if (ptrace(PTRACE_SETOPTIONS, child, 0, (void *)PTRACE_O_TRACESYSGOOD) ||
			    ptrace(PTRACE_INTERRUPT, child, 0, 0) || ptrace(PTRACE_CONT, child, 0, 0))
				return -errno;
			pr_debug("pid %d: its vfork() child stopped by the freezer has exec'd", child);
			return 0;
		}
		if ((status >> 16) == PTRACE_EVENT_STOP && is_stop_signal(WSTOPSIG(status)))
			return -EAGAIN; /* stopped by a signal: it will not exec for now */
		/* a signal's delivery stop: the signal goes on with it */
		sig = (status >> 16) ? 0 : WSTOPSIG(status);
		if (ptrace(PTRACE_SETOPTIONS, child, 0, (void *)(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC)) ||
		    ptrace(PTRACE_CONT, child, 0, (void *)(long)sig))
			return -errno;
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		ret = now < deadline ? wait_stop_for(child, &status, (deadline - now) / 1000000 + 1) : -ETIMEDOUT;
		if (ret == -ESRCH)
			return 0; /* it exited */
		if (ret) {
			/* still before its exec: stopped again, as the freezer left it */
			ptrace(PTRACE_SETOPTIONS, child, 0, (void *)PTRACE_O_TRACESYSGOOD);
			ptrace(PTRACE_INTERRUPT, child, 0, 0);
			return ret;
		}
	}
}

int task_seize(pid_t pid, int *stop_sig, int timeout_s)
{
	struct proc_stat st;
	bool caught = false;
	int status, ret;

	if ((ret = proc_read_stat(pid, &st)))
		return ret; /* -ESRCH: gone, the caller judges */
	if (st.state == 'Z' || st.state == 'X')
		return -ESRCH; /* exiting: the caller judges */
	*stop_sig = 0;
	if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(PTRACE_O_TRACESYSGOOD))) {
		ret = -errno;
		if (!(caught = ret == -EPERM && caught_by_freezer(pid))) {
			/* a process that began to exit since its stat was read is refused (EPERM) */
			if (ret == -EPERM && (proc_read_stat(pid, &st) == -ESRCH || st.state == 'Z' || st.state == 'X'))
				ret = -ESRCH;
			uint64_t tracer = 0;
			if (ret == -EPERM && !proc_status_field(pid, "TracerPid", 10, &tracer) && tracer)
				pr_err("pid %d is traced by pid %llu (ptrace): a traced process cannot be "
				       "dumped", pid, (unsigned long long)tracer);
			else if (ret != -ESRCH) /* gone: the caller judges */
				pr_err("pid %d: cannot seize with ptrace: %s", pid, strerror(-ret));
			return ret;
		}
	}
	if (!caught && ptrace(PTRACE_INTERRUPT, pid, 0, 0)) {
		ret = -errno;
		pr_perror("pid %d: cannot interrupt", pid);
		ptrace(PTRACE_DETACH, pid, 0, 0);
		return ret;
	}
	/*
	 * A task that gets a signal just now reports a signal-delivery-stop first; put the
	 * signal back and wait for the interrupt's event stop.
	 */
	for (bool vfork_child_let_go = false;;) {
		/*
		 * A vfork() lasts until the child execs or exits: usually at once; a child that the
		 * freezer caught never does by itself, so it is looked for early.
		 */
		ret = wait_stop_for(pid, &status, VFORK_PEEK_MS);
		pid_t vfork_child = ret == -ETIMEDOUT ? vfork_child_of(pid) : 0;
		if (vfork_child && !vfork_child_let_go && caught_by_freezer(vfork_child)) {
			vfork_child_let_go = true;
			if (vfork_child_run_to_exec(vfork_child) == 0)
				continue; /* the parent stops now */
		}
		if (ret == -ETIMEDOUT) {
			ret = wait_stop_for(pid, &status, VFORK_WAIT_MS - VFORK_PEEK_MS);
			vfork_child = ret == -ETIMEDOUT ? vfork_child_of(pid) : 0;
		}
		if (vfork_child)
			pr_err("pid %d is in vfork(), waiting for its child %d to exec or exit: it "
			       "cannot be frozen until then (it was not within %d ms)", pid, vfork_child,
			       VFORK_WAIT_MS);
		else if (ret == -ETIMEDOUT)
			ret = wait_stop_said(pid, &status,
					     timeout_s > 0 ? (unsigned)timeout_s * 1000 : WAIT_STOP_TIMEOUT_MS,
					     " (a longer --timeout waits longer)");
		if (ret) {
			ptrace(PTRACE_DETACH, pid, 0, 0);
			if (ret == -ESRCH)
				pr_debug("pid %d: exited while being frozen", pid);
			return ret;
		}
		if ((status >> 16) == PTRACE_EVENT_STOP)
			break;
		int sig = WSTOPSIG(status);
		if (ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig) ||
		    ptrace(PTRACE_INTERRUPT, pid, 0, 0)) {
			ret = -errno;
			pr_perror("pid %d: cannot re-interrupt after signal %d", pid, sig);
			ptrace(PTRACE_DETACH, pid, 0, 0);
			return ret;
		}
	}
	/*
	 * A task in group stop (also one that a stop signal reached while being seized) reports
	 * it again, with the signal that stopped it; other interrupted tasks report SIGTRAP.
	 */
	if (is_stop_signal(WSTOPSIG(status)))
		*stop_sig = WSTOPSIG(status);
	else if (st.state == 'T')
		*stop_sig = SIGSTOP;
	pr_debug("pid %d: frozen%s", pid, *stop_sig ? " (was stopped)" : "");
	return 0;
}

bool is_stop_signal(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

int task_release(pid_t pid, int stop_sig)
{
	if (ptrace(PTRACE_DETACH, pid, 0, (void *)(long)stop_sig)) {
		pr_perror("pid %d: cannot detach", pid);
		return -errno;
	}
	return 0;
}

static int mem_via_fd(int fd, uint64_t addr, void *buf, size_t len, bool write_mem)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write_mem ? pwrite(fd, (char *)buf + done, len - done, addr + done)
				      : pread(fd, (char *)buf + done, len - done, addr + done);
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += n;
	}
	return 0;
}

/*
 * Through /proc/PID/mem, not process_vm_readv: that one pins the pages it reads (FOLL_PIN),
 * and since Linux 5.19 a read-only pin of an anonymous page shared copy-on-write with another
 * process unshares it, copying the page into the target: a dump would break every page a
 * process shares with its parent or children since fork (their memory doubled after
 * --leave-running or a pre-dump, and the dump could no longer see them shared), and run ten
 * times slower for the copies. /proc/PID/mem takes plain references, and reaches pages that
 * are not readable (PROT_NONE, write-only) too.
 */
static int mem_via_proc(pid_t pid, uint64_t addr, void *buf, size_t len, bool write_mem)
{
	char path[64];
	auto_close int fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, (write_mem ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return mem_via_fd(fd, addr, buf, len, write_mem);
}

int task_mem_open(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int task_mem_read_fd(int fd, uint64_t addr, void *buf, size_t len)
{
	return mem_via_fd(fd, addr, buf, len, false);
}

int task_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	return mem_via_proc(pid, addr, buf, len, false);
}

int task_mem_write(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	return mem_via_proc(pid, addr, (void *)buf, len, true);
}

int tasks_wait_gone(pid_t *tids, size_t n, int timeout_ms)
{
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + timeout_ms * 1000000ull;
	size_t left = 0;
	int status;

	for (size_t i = 0; i < n; i++)
		left += tids[i] > 0; /* (0: none to wait for, as a sibling root its parent reaps) */

	/* All at once: a dying init of a PID namespace waits for its traced threads' reaping. */
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			if (tids[i] <= 0)
				continue;
			pid_t got = waitpid(tids[i], &status, __WALL | WNOHANG);
			if (got == tids[i] || (got < 0 && errno == ECHILD)) {
				tids[i] = 0;
				left--;
			}
		}
		if (!left)
			return 0;
		if (now_ns(CLOCK_MONOTONIC) > deadline)
			break;
		usleep(1000);
	}
	for (size_t i = 0; i < n; i++)
		if (tids[i] > 0)
			pr_err("tid %d is still there %d ms after SIGKILL", tids[i], timeout_ms);
	return -ETIMEDOUT;
}
