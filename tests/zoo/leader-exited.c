/*
 * leader-exited: a process whose main thread has exited while its other threads run on
 * (/proc shows it as a zombie, the process lives), and POSIX timers whose thread has exited.
 *
 * The main thread names itself, forks a child that does the same (its main thread leaves with
 * SYS_exit(5), one thread waits on a pipe, then leaves with SYS_exit(7)), starts a thread that makes two timers signalling
 * itself (SIGEV_THREAD_ID, SIGUSR2) and exits, a sleeper blocked in sigwaitinfo(SIGRTMIN) and a
 * checker, then leaves with pthread_exit. The checker says READY once the main thread is a
 * zombie. After restore and SIGTERM (delivered to a live thread: the checker's handler):
 *   leader:  the main thread is a zombie still, with its name; the other threads are the same
 *            tids, with their names (tids, comm)
 *   pending: a signal sent to the sleeper alone (tgkill, blocked) is pending for it alone
 *   signal:  three sigqueue()s to the process reach the sleeper, in order, with their values
 *   timer:   the timers of the exited thread still exist, armed as they were (the slow one's
 *            time left went down, by no more than the time that passed; intervals the same)
 *   inert:   the fast one (5 ms, periodic) has signalled nobody
 *   child:   the child is alive with its main thread a zombie until its last thread exits;
 *            then its parent collects exit status 7 (the main thread's)
 *   memory:  a heap pattern is intact
 * Blocks in: sigwaitinfo (the sleeper), read (the child's thread), nanosleep (the checker).
 */
#include "zoo.h"
#include <pthread.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define MEM_LEN (256 * 1024)
#define SIGNALS 3
#define SLOW_VALUE_S 1000
#define SLOW_INTERVAL_S 7
#define FAST_NS 5000000L

static pid_t pid, child, tid_sleeper, tid_checker, before[8]; /* (in its own PID namespace) */
static volatile pid_t *child_proc_pid; /* the child's pid as /proc names it, kept by the child */
static int n_before;
static int child_pipe[2];
static unsigned char *mem;
static timer_t slow, fast;
static uint64_t armed_at;
static volatile int inert_hits, got[SIGNALS], nr_got;
static int want_child_status = 7, want_signals = SIGNALS;
static char want_leader_comm[16] = "zl-leader", want_sleeper_comm[16] = "zl-sleeper";
static long want_interval_s = SLOW_INTERVAL_S;
static uint64_t want_private; /* the sleeper's own pending signals (SigPnd) */

static void on_usr2(int sig) { (void)sig; inert_hits++; }

/* The calling process's pid as /proc names it (the host's in a PID namespace without a /proc
 * of its own: it changes with a restore there). */
static pid_t proc_pid(void)
{
	char link[32] = "";
	if (readlink("/proc/self", link, sizeof(link) - 1) < 0)
		zoo_die("cannot read /proc/self");
	return atoi(link);
}

/* The one letter of "State:" in a status file of /proc, or '?'. */
static char state_of(const char *path)
{
	char buf[4096];
	const char *s = zoo_read_file(path, buf, sizeof(buf)) > 0 ? strstr(buf, "\nState:\t") : NULL;
	return s ? s[8] : '?';
}

/* The threads of process p (as /proc names it) by their ids in its own PID namespace (NSpid),
 * in /proc's order, and by their names in /proc (procs, may be NULL). */
static int list_tids(pid_t p, pid_t *out, pid_t *procs, int max)
{
	char path[96];
	struct dirent *d;
	int n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", p);
	DIR *dir = opendir(path);
	while (dir && (d = readdir(dir)) && n < max) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/status", p, d->d_name);
		if (procs)
			procs[n] = atoi(d->d_name);
		out[n++] = zoo_status_nspid(path);
	}
	if (dir)
		closedir(dir);
	return n;
}

/* File name of thread tid (in the process's namespace) of process p (in /proc's) into buf. */
static int read_task_file(pid_t p, pid_t tid, const char *name, char *buf, size_t len)
{
	pid_t tids[8], procs[8];
	char path[96];
	int n = list_tids(p, tids, procs, 8);
	for (int i = 0; i < n; i++) {
		if (tids[i] != tid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", p, procs[i], name);
		return zoo_read_file(path, buf, len) > 0 ? 0 : -1;
	}
	return -1;
}

static int comm_is(pid_t p, pid_t tid, const char *want)
{
	char buf[64];
	if (read_task_file(p, tid, "comm", buf, sizeof(buf)))
		return 0;
	buf[strcspn(buf, "\n")] = 0;
	return !strcmp(buf, want);
}

/* A "Name:\thex" line of thread tid's status. */
static uint64_t status_hex(pid_t p, pid_t tid, const char *name)
{
	char buf[4096];
	const char *l = read_task_file(p, tid, "status", buf, sizeof(buf)) ? NULL : strstr(buf, name);
	return l ? strtoull(l + strlen(name), NULL, 16) : ~0ull;
}

static void *timer_maker(void *arg)
{
	struct sigevent ev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR2 };
	struct itimerspec slow_its = { { SLOW_INTERVAL_S, 0 }, { SLOW_VALUE_S, 0 } };
	struct itimerspec fast_its = { { 0, FAST_NS }, { 0, FAST_NS } };
	ev._sigev_un._tid = gettid();
	if (timer_create(CLOCK_MONOTONIC, &ev, &slow) || timer_create(CLOCK_MONOTONIC, &ev, &fast) ||
	    timer_settime(slow, 0, &slow_its, NULL) || timer_settime(fast, 0, &fast_its, NULL))
		zoo_die("timers: %s", strerror(errno));
	armed_at = zoo_now_ns(CLOCK_MONOTONIC);
	return arg;
}

static void *sleeper(void *arg)
{
	sigset_t rt;
	siginfo_t si;
	tid_sleeper = gettid();
	prctl(PR_SET_NAME, "zl-sleeper");
	sigemptyset(&rt);
	sigaddset(&rt, SIGRTMIN);
	for (;;) {
		if (sigwaitinfo(&rt, &si) != SIGRTMIN)
			continue;
		if (nr_got < SIGNALS)
			got[nr_got] = si.si_value.sival_int;
		__atomic_add_fetch(&nr_got, 1, __ATOMIC_SEQ_CST);
	}
	return arg;
}

/* The child's other thread: exits once told, the last of its process, whose status is then
 * this thread's. */
static void *child_waiter(void *arg)
{
	struct pollfd told = { .fd = child_pipe[0], .events = POLLIN };
	while (poll(&told, 1, 10) <= 0)
		*child_proc_pid = proc_pid(); /* (after a restore into a new PID namespace: new) */
	syscall(SYS_exit, 7); /* the last thread's status is the process's */
	return arg;
}

static void c_leader(ucontext_t *u) { (void)u; strcpy(want_leader_comm, "zl-other"); }
static void c_tids(ucontext_t *u) { (void)u; before[n_before - 1] += 1000; }
static void c_signal(ucontext_t *u) { (void)u; want_signals = SIGNALS + 1; }
static void c_timer(ucontext_t *u) { (void)u; want_interval_s = SLOW_INTERVAL_S + 1; }
static void c_inert(ucontext_t *u) { (void)u; inert_hits++; }
static void c_child(ucontext_t *u) { (void)u; want_child_status = 8; }
static void c_memory(ucontext_t *u) { (void)u; mem[MEM_LEN / 3] ^= 0x40; }
static void c_comm(ucontext_t *u) { (void)u; strcpy(want_sleeper_comm, "zl-other"); }
static void c_pending(ucontext_t *u) { (void)u; want_private = 0; }

static const struct zoo_corruption corruptions[] = {
	{ "leader", c_leader, 0 }, { "tids", c_tids, 0 },     { "signal", c_signal, 0 },
	{ "timer", c_timer, 0 },   { "inert", c_inert, 0 },   { "child", c_child, 0 },
	{ "memory", c_memory, 0 }, { "comm", c_comm, 0 },     { "pending", c_pending, 0 },
};

static void check_child(void)
{
	char path[64];
	int status = 0;
	pid_t tids[8];
	zoo_sleep_ms(30); /* (its thread has seen its /proc pid since the restore) */
	snprintf(path, sizeof(path), "/proc/%d/status", *child_proc_pid);
	CHECK("child", state_of(path) == 'Z' && list_tids(*child_proc_pid, tids, NULL, 8) == 2 &&
		       tids[0] == child && waitpid(child, &status, WNOHANG) == 0,
	      "before its last thread exits: state %c, %d threads", state_of(path),
	      list_tids(*child_proc_pid, tids, NULL, 8));
	if (write(child_pipe[1], "x", 1) != 1)
		zoo_failf("child", "cannot tell its thread to exit: %s", strerror(errno));
	pid_t r = 0;
	for (int i = 0; i < 5000 && (r = waitpid(child, &status, WNOHANG)) == 0; i++)
		zoo_sleep_ms(1);
	CHECK("child", r == child && WIFEXITED(status) && WEXITSTATUS(status) == want_child_status,
	      "waitpid returned %d, status %#x (want exit %d)", r, status, want_child_status);
}

static void check_timers(void)
{
	struct itimerspec s, f;
	uint64_t passed = zoo_now_ns(CLOCK_MONOTONIC) - armed_at;
	if (timer_gettime(slow, &s) || timer_gettime(fast, &f)) {
		zoo_failf("timer", "timer_gettime: %s", strerror(errno));
		return;
	}
	uint64_t left = (uint64_t)s.it_value.tv_sec * 1000000000ull + (uint64_t)s.it_value.tv_nsec;
	uint64_t full = SLOW_VALUE_S * 1000000000ull;
	CHECK("timer", s.it_interval.tv_sec == want_interval_s && s.it_interval.tv_nsec == 0 &&
			       left + 100000000ull <= full && left + passed + 1000000000ull >= full,
	      "slow timer: %ld.%09ld left, interval %ld.%09ld, %llu ns after arming", (long)s.it_value.tv_sec,
	      s.it_value.tv_nsec, (long)s.it_interval.tv_sec, s.it_interval.tv_nsec, (unsigned long long)passed);
	CHECK("timer", f.it_interval.tv_sec == 0 && f.it_interval.tv_nsec == FAST_NS &&
			       (f.it_value.tv_sec || f.it_value.tv_nsec),
	      "fast timer: %ld.%09ld left, interval %ld.%09ld", (long)f.it_value.tv_sec, f.it_value.tv_nsec,
	      (long)f.it_interval.tv_sec, f.it_interval.tv_nsec);
	CHECK("inert", inert_hits == 0, "the timers of an exited thread signalled %d times", inert_hits);
}

static void *checker(void *arg)
{
	char path[64];
	pid_t after[8];
	int n_after;

	tid_checker = gettid();
	prctl(PR_SET_NAME, "zl-checker");
	snprintf(path, sizeof(path), "/proc/%d/status", proc_pid());
	while (state_of(path) != 'Z')
		zoo_sleep_ms(1);
	n_before = list_tids(proc_pid(), before, NULL, 8);
	while (!tid_sleeper)
		zoo_sleep_ms(1);
	/* blocked everywhere: pending for the sleeper alone (the thread that stands for the
	 * process at the dump, the first that lives) */
	syscall(SYS_tgkill, pid, tid_sleeper, SIGRTMIN + 2);
	want_private = 1ull << (SIGRTMIN + 2 - 1);
	zoo_ready();
	zoo_wait();

	pid_t now = proc_pid();
	snprintf(path, sizeof(path), "/proc/%d/status", now);
	CHECK("leader", state_of(path) == 'Z' && comm_is(now, pid, want_leader_comm),
	      "main thread: state %c, comm not %s", state_of(path), want_leader_comm);
	n_after = list_tids(now, after, NULL, 8);
	int same = n_after == n_before && n_before == 3 && before[0] == pid;
	for (int i = 0; same && i < n_after; i++)
		same = after[i] == before[i];
	CHECK("tids", same && (after[1] == tid_sleeper || after[2] == tid_sleeper) &&
			      (after[1] == tid_checker || after[2] == tid_checker),
	      "%d threads (%d before READY), sleeper %d, checker %d", n_after, n_before, tid_sleeper, tid_checker);
	CHECK("comm", comm_is(now, tid_sleeper, want_sleeper_comm) && comm_is(now, tid_checker, "zl-checker"),
	      "thread names changed");
	uint64_t sleeper_pnd = status_hex(now, tid_sleeper, "\nSigPnd:\t"), checker_pnd = status_hex(now, tid_checker, "\nSigPnd:\t");
	uint64_t shared_pnd = status_hex(now, tid_checker, "\nShdPnd:\t");
	CHECK("pending", sleeper_pnd == want_private && checker_pnd == 0 && shared_pnd == 0,
	      "pending: sleeper %#llx (want %#llx), checker %#llx, process %#llx", (unsigned long long)sleeper_pnd,
	      (unsigned long long)want_private, (unsigned long long)checker_pnd, (unsigned long long)shared_pnd);
	for (int i = 0; i < SIGNALS; i++)
		sigqueue(getpid(), SIGRTMIN, (union sigval){ .sival_int = 100 + i });
	for (int i = 0; i < 2000 && __atomic_load_n(&nr_got, __ATOMIC_SEQ_CST) < SIGNALS; i++)
		zoo_sleep_ms(1);
	zoo_sleep_ms(20); /* (one more would come now) */
	int in_order = 1;
	for (int i = 0; i < SIGNALS && i < nr_got; i++)
		in_order &= got[i] == 100 + i;
	CHECK("signal", nr_got == want_signals && in_order, "the sleeper got %d of %d signals (in order: %d)",
	      nr_got, want_signals, in_order);
	check_timers();
	check_child();
	CHECK("memory", zoo_check_fill(mem, MEM_LEN, 0x1eade7) < 0, "heap pattern damaged at %ld",
	      zoo_check_fill(mem, MEM_LEN, 0x1eade7));
	exit(zoo_finish("main thread exited, 2 threads"));
	return arg;
}

int main(int argc, char **argv)
{
	pthread_t t;
	sigset_t rt;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	zoo_check_maps = zoo_check_fds = 0; /* /proc/self/{maps,fd} are empty once it exited */
	pid = getpid();
	if ((child_proc_pid = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	if (!(mem = malloc(MEM_LEN)))
		zoo_die("malloc");
	zoo_fill(mem, MEM_LEN, 0x1eade7);
	signal(SIGUSR2, on_usr2);
	if (pipe2(child_pipe, O_CLOEXEC))
		zoo_die("pipe: %s", strerror(errno));
	if ((child = fork()) < 0)
		zoo_die("fork: %s", strerror(errno));
	if (child == 0) {
		close(child_pipe[1]);
		*child_proc_pid = proc_pid();
		prctl(PR_SET_NAME, "zl-child");
		if (pthread_create(&t, NULL, child_waiter, NULL))
			_exit(1);
		syscall(SYS_exit, 5); /* this thread alone */
	}
	close(child_pipe[0]);
	if (pthread_create(&t, NULL, timer_maker, NULL) || pthread_join(t, NULL))
		zoo_die("timer thread");
	sigemptyset(&rt);
	sigaddset(&rt, SIGRTMIN);
	sigaddset(&rt, SIGRTMIN + 2);
	pthread_sigmask(SIG_BLOCK, &rt, NULL); /* inherited: only sigwaitinfo takes them */
	if (pthread_create(&t, NULL, sleeper, NULL))
		zoo_die("sleeper thread");
	if (pthread_create(&t, NULL, checker, NULL))
		zoo_die("checker thread");
	prctl(PR_SET_NAME, "zl-leader");
	pthread_exit(NULL);
}
