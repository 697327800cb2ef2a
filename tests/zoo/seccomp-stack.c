/*
 * seccomp-stack: stacked filters, and a thread with a filter of its own. The process installs
 * filter A (swapoff fails with EXDEV, acct with EL2HLT), then filter B with
 * SECCOMP_FILTER_FLAG_LOG (swapoff fails with ENOTBLK: of two answers of the same kind the
 * newer filter's wins, so the order shows); then it starts a thread, which adds filter C
 * (swapoff: ENOTNAM) to its own chain only. A helper child forked before any filter (it runs
 * without seccomp) looks at both threads through ptrace on request.
 * After restore and SIGTERM: the main thread has 2 filters more than the process started with
 * (status Seccomp: 2, Seccomp_filters; a container's profile may be there from the start),
 * swapoff gives ENOTBLK and acct EL2HLT; the thread has 3 more, swapoff gives ENOTNAM and acct
 * EL2HLT; through the helper's PTRACE_SECCOMP_GET_FILTER and PTRACE_SECCOMP_GET_METADATA each
 * chain has its filters in order (their lengths) with B's LOG flag and no other; the helper
 * itself is under seccomp as the process was at its start. (The kernel shows filters only to
 * a tracer outside seccomp: a process started under a filter cannot have the chains looked
 * at, and says so in its PASS line.)
 * --notify-listener: the started process stays outside as a supervisor holding a
 * user-notification listener of one more filter of the program (the program is its child):
 * the dump must fail naming the program (tests/failure-cases.sh).
 * Blocks in: nanosleep (zoo_wait loop); the thread in nanosleep; the helper in read.
 */
#include "zoo.h"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>

#ifndef PTRACE_SECCOMP_GET_METADATA
#define PTRACE_SECCOMP_GET_METADATA 0x420d
#endif
#define MISSING "/nonexistent/zoo-swap"
#define LD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define ANSWER(sys, err) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, sys, 0, 1), \
			 BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err))
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static struct sock_filter filter_a[] = { LD_NR, ANSWER(SYS_swapoff, EXDEV), ANSWER(SYS_acct, EL2HLT), ALLOW };
static struct sock_filter filter_b[] = { LD_NR, ANSWER(SYS_swapoff, ENOTBLK), ALLOW };
static struct sock_filter filter_c[] = { LD_NR, ANSWER(SYS_swapoff, ENOTNAM), ALLOW };
static struct sock_filter filter_x[] = { LD_NR, ANSWER(SYS_swapoff, EXDEV), ALLOW }; /* corruptions */
static struct sock_filter filter_notify[] = {
	LD_NR, BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_vhangup, 0, 1),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF), ALLOW,
};
#define LEN(f) (sizeof(f) / sizeof((f)[0]))

static int listener_mode; /* one filter more at the top of every chain */
static pid_t thread_tid;
static atomic_int thread_go, thread_done, thread_diverge;
static char thread_failures[512];
static int helper_req = -1, helper_resp = -1;

static long install(struct sock_filter *f, unsigned short len, unsigned flags)
{
	struct sock_fprog prog = { len, f };
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

/* The status line "KEY\tVALUE" of the calling thread, as a number; -1 if absent. */
static long status_of(const char *key)
{
	char buf[8192], *p;
	if (zoo_read_file("/proc/thread-self/status", buf, sizeof(buf)) < 0 || !(p = strstr(buf, key)))
		return -1;
	return strtol(p + strlen(key), NULL, 10);
}

static long start_mode, start_filters; /* the process's seccomp at its start (a container's) */

/* The calling thread: its filters (beyond the start's) and what swapoff and acct answer. */
static void check_self(const char *who, long own_filters, int swap_errno, char *out, size_t len)
{
	long n = status_of("\nSeccomp_filters:\t"), mode = status_of("\nSeccomp:\t");
	long filters = start_filters + own_filters;
	if (mode != 2 || n != filters)
		snprintf(out + strlen(out), len - strlen(out), "%s: Seccomp %ld with %ld filters, expected 2 with %ld; ",
			 who, mode, n, filters);
	long r = syscall(SYS_swapoff, MISSING);
	int e = errno;
	if (r != -1 || e != swap_errno)
		snprintf(out + strlen(out), len - strlen(out), "%s: swapoff gave %ld (%s), expected %s; ", who, r,
			 strerror(e), strerror(swap_errno));
	r = syscall(SYS_acct, NULL), e = errno;
	if (r != -1 || e != EL2HLT)
		snprintf(out + strlen(out), len - strlen(out), "%s: acct gave %ld (%s), expected EL2HLT; ", who, r,
			 strerror(e));
}

static void *thread_main(void *arg)
{
	(void)arg;
	if (install(filter_c, LEN(filter_c), 0))
		zoo_die("thread filter: %s", strerror(errno));
	thread_tid = gettid();
	while (!atomic_load(&thread_go))
		zoo_sleep_ms(5);
	if (atomic_load(&thread_diverge))
		install(filter_x, LEN(filter_x), 0);
	check_self("thread", 3 + listener_mode, ENOTNAM, thread_failures, sizeof(thread_failures));
	atomic_store(&thread_done, 1);
	for (;;)
		zoo_sleep_ms(1000);
	return NULL;
}

/* ---- the helper: outside seccomp, it reads a thread's chain through ptrace ---- */

struct chain_view {
	int n;             /* filters, or -errno (the helper's own view: its Seccomp mode) */
	int len[8];        /* oldest first (PTRACE_SECCOMP_GET_FILTER's index 0 is the oldest) */
	unsigned flags[8];
};

static void view_chain(pid_t tid, struct chain_view *v)
{
	int status;
	memset(v, 0, sizeof(*v));
	if (ptrace(PTRACE_SEIZE, tid, 0, 0) || ptrace(PTRACE_INTERRUPT, tid, 0, 0) ||
	    waitpid(tid, &status, __WALL) != tid) {
		v->n = -errno;
		return;
	}
	for (; v->n < 8; v->n++) {
		struct { uint64_t off, flags; } md = { (uint64_t)v->n, 0 };
		long len = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, v->n, NULL);
		if (len < 0) {
			if (errno != ENOENT)
				v->n = -errno;
			break;
		}
		v->len[v->n] = len;
		v->flags[v->n] = ptrace(PTRACE_SECCOMP_GET_METADATA, tid, sizeof(md), &md) < 0 ? ~0u : md.flags;
	}
	ptrace(PTRACE_DETACH, tid, 0, 0);
}

static __attribute__((noreturn)) void helper_main(int req, int resp)
{
	pid_t tids[2];
	while (read(req, tids, sizeof(tids)) == sizeof(tids)) {
		struct chain_view v[3];
		view_chain(tids[0], &v[0]);
		view_chain(tids[1], &v[1]);
		v[2].n = (int)status_of("\nSeccomp:\t"); /* its own mode and filters */
		v[2].len[0] = (int)status_of("\nSeccomp_filters:\t");
		if (write(resp, v, sizeof(v)) != sizeof(v))
			break;
	}
	_exit(0);
}

/* What the helper sees of one thread against the expected chain (newest first). */
static void check_view(const char *who, const struct chain_view *v, int n, const int *len,
		       const unsigned *flags, char *out, size_t size)
{
	if (v->n != n) {
		snprintf(out + strlen(out), size - strlen(out), "%s: ptrace sees %d filters, expected %d; ", who, v->n, n);
		return;
	}
	for (int i = 0; i < n; i++)
		if (v->len[i] != len[i] || v->flags[i] != flags[i])
			snprintf(out + strlen(out), size - strlen(out),
				 "%s: filter %d (oldest first) has %d instructions and flags %#x, expected %d "
				 "and %#x; ", who, i, v->len[i], v->flags[i], len[i], flags[i]);
}

/*
 * --notify-listener: the caller becomes the supervisor, its child goes on as the program;
 * the socket the program sends the listener over.
 */
static int split_off_supervisor(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv))
		zoo_die("socketpair: %s", strerror(errno));
	pid_t child = fork();
	if (child < 0)
		zoo_die("fork: %s", strerror(errno));
	if (child) { /* the supervisor: keeps the listener until the program is gone */
		char c, ctl[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { &c, 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
				     .msg_controllen = sizeof(ctl) };
		int status = 0;
		close(sv[1]);
		if (recvmsg(sv[0], &mh, 0) != 1)
			_exit(1);
		while (waitpid(child, &status, 0) < 0 && errno == EINTR)
			;
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
	}
	close(sv[0]);
	return sv[1];
}

/* One more filter, which hands vhangup to a listener: the supervisor gets the listener. */
static void send_listener(int sock)
{
	struct sock_fprog prog = { LEN(filter_notify), filter_notify };
	int listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (listener < 0)
		zoo_die("a filter with a listener: %s", strerror(errno));
	char c = 'l', ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &c, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &listener, sizeof(int));
	if (sendmsg(sock, &mh, 0) != 1)
		zoo_die("sending the listener: %s", strerror(errno));
	close(listener);
	close(sock);
}

static void c_stack(ucontext_t *u) { (void)u; install(filter_x, LEN(filter_x), 0); }
static void c_thread(ucontext_t *u) { (void)u; atomic_store(&thread_diverge, 1); }
static const struct zoo_corruption corruptions[] = {
	{ "stack", c_stack, 0 },
	{ "thread", c_thread, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	start_mode = status_of("\nSeccomp:\t");
	start_filters = status_of("\nSeccomp_filters:\t");
	if (start_mode < 0 || start_filters < 0)
		zoo_die("no Seccomp in /proc/thread-self/status");
	for (int i = 1; i < argc; i++)
		listener_mode |= !strcmp(argv[i], "--notify-listener");
	int supervisor = listener_mode ? split_off_supervisor() : -1;

	int req[2], resp[2];
	if (pipe2(req, O_CLOEXEC) || pipe2(resp, O_CLOEXEC))
		zoo_die("pipe: %s", strerror(errno));
	pid_t helper = fork();
	if (helper < 0)
		zoo_die("fork: %s", strerror(errno));
	if (!helper) {
		close(req[1]);
		close(resp[0]);
		helper_main(req[0], resp[1]);
	}
	close(req[0]);
	close(resp[1]);
	helper_req = req[1];
	helper_resp = resp[0];
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY); /* the helper looks at us (Yama) */

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || install(filter_a, LEN(filter_a), 0) ||
	    install(filter_b, LEN(filter_b), SECCOMP_FILTER_FLAG_LOG))
		zoo_die("filters: %s", strerror(errno));
	if (listener_mode)
		send_listener(supervisor);
	pthread_t th;
	if (pthread_create(&th, NULL, thread_main, NULL))
		zoo_die("pthread_create");
	while (!thread_tid)
		zoo_sleep_ms(1);
	zoo_ready();
	zoo_wait();

	char main_failures[512] = "", view_failures[512] = "";
	check_self("main", 2 + listener_mode, ENOTBLK, main_failures, sizeof(main_failures));
	CHECK("stack", !main_failures[0], "%s", main_failures);
	atomic_store(&thread_go, 1);
	while (!atomic_load(&thread_done))
		zoo_sleep_ms(5);
	CHECK("thread", !thread_failures[0], "%s", thread_failures);

	pid_t tids[2] = { gettid(), thread_tid };
	struct chain_view v[3];
	if (!CHECK("stack", write(helper_req, tids, sizeof(tids)) == sizeof(tids) &&
				    read(helper_resp, v, sizeof(v)) == sizeof(v),
		   "the helper does not answer"))
		return zoo_finish(NULL);
	CHECK("stack", v[2].n == start_mode && v[2].len[0] == start_filters,
	      "the helper forked before any filter runs with Seccomp %d and %d filters, expected %ld "
	      "and %ld", v[2].n, v[2].len[0], start_mode, start_filters);
	if (start_mode) /* the helper is under seccomp: the kernel refuses it the filters */
		return zoo_finish("two stacked filters, a thread with a third of its own, on the "
				  "process's own (the chains' lengths and flags unseen: the kernel shows "
				  "them only to a tracer outside seccomp)");
	/* the chains, oldest first */
	int len_m[4], len_t[4], nm = 0, nt = 0;
	unsigned flags_m[4], flags_t[4];
	len_m[nm] = len_t[nt] = LEN(filter_a), flags_m[nm++] = flags_t[nt++] = 0;
	len_m[nm] = len_t[nt] = LEN(filter_b), flags_m[nm++] = flags_t[nt++] = SECCOMP_FILTER_FLAG_LOG;
	if (listener_mode)
		len_m[nm] = len_t[nt] = LEN(filter_notify), flags_m[nm++] = flags_t[nt++] = 0;
	len_t[nt] = LEN(filter_c), flags_t[nt++] = 0;
	check_view("main", &v[0], nm, len_m, flags_m, view_failures, sizeof(view_failures));
	CHECK("stack", !view_failures[0], "%s", view_failures);
	view_failures[0] = 0;
	check_view("thread", &v[1], nt, len_t, flags_t, view_failures, sizeof(view_failures));
	CHECK("thread", !view_failures[0], "%s", view_failures);
	return zoo_finish("two stacked filters, a thread with a third of its own");
}
