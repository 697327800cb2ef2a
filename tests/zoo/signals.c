/*
 * signals: signal dispositions, the blocked mask, pending signals, sigaltstack.
 *   Handlers with flags and masks: SIGUSR1 (SA_SIGINFO|SA_RESTART|SA_ONSTACK, mask USR2+WINCH),
 *   SIGUSR2 (SA_NODEFER|SA_RESETHAND, mask QUIT), SIGRTMIN+3 (SA_SIGINFO|SA_ONSTACK, mask
 *   RTMIN+4, RTMAX), SIGCHLD (SA_NOCLDSTOP), SIGHUP ignored. The whole table (rt_sigaction
 *   for 1..64: handler, flags, restorer, mask) must be identical after restore.
 *   Blocked: SIGWINCH, SIGURG, SIGRTMIN+1, +2, +4, +6. Pending at dump time (all blocked):
 *     process-wide: SIGRTMIN+1 x3 via sigqueue (si_value 1001, 1002, 1003, in that order),
 *                   SIGRTMIN+2 via sigqueue (2001), SIGWINCH via kill (SI_USER);
 *     thread:       SIGRTMIN+4 via rt_tgsigqueueinfo (SI_QUEUE, 4001), SIGURG via tgkill
 *                   (its si_code is learned at setup: 6.18 reports SI_USER for it).
 *   sigaltstack: 64 KiB mmap'ed, used by the SIGUSR1 and SIGRTMIN+3 handlers.
 *   After the table checks, the handlers are run (raise/sigqueue) and must see the altstack,
 *   the right mask and payload; SIGUSR2's SA_RESETHAND must reset it; SIGHUP must be ignored.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/mman.h>

struct ksigaction {
	unsigned long handler, flags, restorer, mask;
};
static struct ksigaction act_before[65];
static uint64_t blocked_before;
static char *altstack;
#define ALTSZ (64 * 1024)

static volatile int usr1_runs, usr1_onstack, usr1_ss_onstack, usr1_code, usr2_runs, rt3_runs, rt3_onstack,
	rt3_value;
static sigset_t usr1_mask, usr2_mask;
static int urg_code, raise_code;

static int on_altstack(void *p) { return (char *)p >= altstack && (char *)p < altstack + ALTSZ; }

static void usr1_handler(int sig, siginfo_t *si, void *uc)
{
	stack_t ss;
	char here;
	(void)sig;
	(void)uc;
	usr1_runs++;
	usr1_onstack = on_altstack(&here);
	sigaltstack(NULL, &ss);
	usr1_ss_onstack = !!(ss.ss_flags & SS_ONSTACK);
	usr1_code = si->si_code;
	sigprocmask(SIG_BLOCK, NULL, &usr1_mask);
}
static void usr2_handler(int sig)
{
	(void)sig;
	usr2_runs++;
	sigprocmask(SIG_BLOCK, NULL, &usr2_mask);
}
static void rt3_handler(int sig, siginfo_t *si, void *uc)
{
	char here;
	(void)sig;
	(void)uc;
	rt3_runs++;
	rt3_onstack = on_altstack(&here);
	rt3_value = si->si_value.sival_int;
}
static void chld_handler(int sig) { (void)sig; }

static int get_act(int sig, struct ksigaction *a)
{
	return (int)syscall(SYS_rt_sigaction, sig, NULL, a, 8);
}
static uint64_t get_blocked(void)
{
	uint64_t m = 0;
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &m, 8);
	return m;
}
static uint64_t bit(int sig) { return 1ull << (sig - 1); }

static void set_handler(int sig, void *fn, int flags, int m1, int m2)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	if (m1)
		sigaddset(&sa.sa_mask, m1);
	if (m2)
		sigaddset(&sa.sa_mask, m2);
	if (sigaction(sig, &sa, NULL) < 0)
		zoo_die("sigaction(%d): %s", sig, strerror(errno));
}

static void c_sigaction(ucontext_t *u)
{
	(void)u;
	set_handler(SIGUSR1, (void *)usr1_handler, SA_SIGINFO | SA_RESTART, SIGUSR2, SIGWINCH);
}
static void c_blocked(ucontext_t *u)
{
	sigset_t s;
	(void)u;
	sigemptyset(&s);
	sigaddset(&s, SIGTTIN);
	sigprocmask(SIG_BLOCK, &s, NULL);
}
static void c_pending(ucontext_t *u)
{
	sigset_t s;
	struct timespec zero = { 0, 0 };
	(void)u;
	sigemptyset(&s);
	sigaddset(&s, SIGRTMIN + 1);
	sigtimedwait(&s, NULL, &zero);
}
static void c_altstack(ucontext_t *u)
{
	stack_t ss = { .ss_flags = SS_DISABLE };
	(void)u;
	sigaltstack(&ss, NULL);
}
static const struct zoo_corruption corruptions[] = {
	{ "sigaction", c_sigaction, 0 },
	{ "blocked", c_blocked, 0 },
	{ "pending", c_pending, 0 },
	{ "altstack", c_altstack, 0 },
};

static uint64_t status_mask(const char *buf, const char *key)
{
	const char *p = strstr(buf, key);
	return p ? strtoull(p + strlen(key), NULL, 16) : ~0ull;
}

int main(int argc, char **argv)
{
	static char status[8192];
	pid_t pid = getpid();
	uid_t uid = getuid();
	int RT = SIGRTMIN;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));

	altstack = mmap(NULL, ALTSZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (altstack == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	stack_t ss = { .ss_sp = altstack, .ss_size = ALTSZ, .ss_flags = 0 };
	if (sigaltstack(&ss, NULL) < 0)
		zoo_die("sigaltstack: %s", strerror(errno));

	set_handler(SIGUSR1, (void *)usr1_handler, SA_SIGINFO | SA_RESTART | SA_ONSTACK, SIGUSR2, SIGWINCH);
	set_handler(SIGUSR2, (void *)usr2_handler, SA_NODEFER | SA_RESETHAND, SIGQUIT, 0);
	set_handler(RT + 3, (void *)rt3_handler, SA_SIGINFO | SA_ONSTACK, RT + 4, SIGRTMAX);
	set_handler(SIGCHLD, (void *)chld_handler, SA_NOCLDSTOP, 0, 0);
	set_handler(SIGHUP, (void *)SIG_IGN, 0, 0, 0);
	set_handler(SIGPIPE, (void *)SIG_DFL, 0, 0, 0);

	sigset_t blk;
	sigemptyset(&blk);
	int blocked_sigs[] = { SIGWINCH, SIGURG, RT + 1, RT + 2, RT + 4, RT + 6 };
	for (unsigned i = 0; i < sizeof(blocked_sigs) / sizeof(blocked_sigs[0]); i++)
		sigaddset(&blk, blocked_sigs[i]);
	sigprocmask(SIG_BLOCK, &blk, NULL);

	for (int v = 1001; v <= 1003; v++)
		sigqueue(pid, RT + 1, (union sigval){ .sival_int = v });
	sigqueue(pid, RT + 2, (union sigval){ .sival_int = 2001 });
	kill(pid, SIGWINCH);
	siginfo_t qi;
	memset(&qi, 0, sizeof(qi));
	qi.si_signo = RT + 4;
	qi.si_code = SI_QUEUE;
	qi.si_pid = pid;
	qi.si_uid = uid;
	qi.si_value.sival_int = 4001;
	if (syscall(SYS_rt_tgsigqueueinfo, pid, gettid(), RT + 4, &qi) < 0)
		zoo_die("rt_tgsigqueueinfo: %s", strerror(errno));
	/* the si_code this kernel gives a blocked tgkill'ed signal: learn it (SIGURG is blocked) */
	tgkill(pid, gettid(), SIGURG);
	siginfo_t cal;
	sigset_t urg;
	sigemptyset(&urg);
	sigaddset(&urg, SIGURG);
	if (sigwaitinfo(&urg, &cal) != SIGURG)
		zoo_die("calibration: SIGURG not pending");
	urg_code = cal.si_code;
	tgkill(pid, gettid(), SIGURG);
	/* and the si_code raise() gives the SIGUSR1 handler */
	raise(SIGUSR1);
	if (usr1_runs != 1)
		zoo_die("calibration: SIGUSR1 handler did not run");
	raise_code = usr1_code;
	usr1_runs = 0;

	for (int s = 1; s <= 64; s++)
		get_act(s, &act_before[s]);
	blocked_before = get_blocked();

	zoo_ready();
	zoo_wait();

	/* the disposition table */
	for (int s = 1; s <= 64; s++) {
		struct ksigaction a;
		memset(&a, 0, sizeof(a));
		get_act(s, &a);
		struct ksigaction *b = &act_before[s];
		CHECK("sigaction", !memcmp(&a, b, sizeof(a)),
		      "signal %d: handler %#lx flags %#lx restorer %#lx mask %#lx, was %#lx %#lx %#lx %#lx", s, a.handler,
		      a.flags, a.restorer, a.mask, b->handler, b->flags, b->restorer, b->mask);
	}

	/* blocked and pending */
	uint64_t blocked = get_blocked();
	CHECK("blocked", blocked == blocked_before, "blocked mask is %#lx, was %#lx", (unsigned long)blocked,
	      (unsigned long)blocked_before);
	uint64_t shd_expect = bit(RT + 1) | bit(RT + 2) | bit(SIGWINCH), thr_expect = bit(RT + 4) | bit(SIGURG);
	if (zoo_read_file("/proc/self/status", status, sizeof(status)) > 0) {
		uint64_t shd = status_mask(status, "ShdPnd:"), thr = status_mask(status, "SigPnd:");
		CHECK("pending", shd == shd_expect && thr == thr_expect,
		      "pending process-wide %#lx thread %#lx, expected %#lx %#lx", (unsigned long)shd, (unsigned long)thr,
		      (unsigned long)shd_expect, (unsigned long)thr_expect);
	}

	/* dequeue everything pending, check the payloads */
	sigset_t all;
	sigemptyset(&all);
	for (unsigned i = 0; i < sizeof(blocked_sigs) / sizeof(blocked_sigs[0]); i++)
		sigaddset(&all, blocked_sigs[i]);
	int n_rt1 = 0, n_rt2 = 0, n_rt4 = 0, n_winch = 0, n_urg = 0, n_other = 0;
	for (int i = 0; i < 20; i++) {
		siginfo_t si;
		struct timespec zero = { 0, 0 };
		int s = sigtimedwait(&all, &si, &zero);
		if (s < 0)
			break;
		CHECK("pending", si.si_pid == pid && si.si_uid == uid, "signal %d from pid %d uid %d", s, si.si_pid,
		      si.si_uid);
		if (s == RT + 1) {
			CHECK("pending", si.si_code == SI_QUEUE && si.si_value.sival_int == 1001 + n_rt1,
			      "SIGRTMIN+1 #%d: code %d value %d, expected SI_QUEUE %d", n_rt1 + 1, si.si_code,
			      si.si_value.sival_int, 1001 + n_rt1);
			n_rt1++;
		} else if (s == RT + 2) {
			CHECK("pending", si.si_code == SI_QUEUE && si.si_value.sival_int == 2001,
			      "SIGRTMIN+2: code %d value %d", si.si_code, si.si_value.sival_int);
			n_rt2++;
		} else if (s == RT + 4) {
			CHECK("pending", si.si_code == SI_QUEUE && si.si_value.sival_int == 4001,
			      "SIGRTMIN+4: code %d value %d", si.si_code, si.si_value.sival_int);
			n_rt4++;
		} else if (s == SIGWINCH) {
			CHECK("pending", si.si_code == SI_USER, "SIGWINCH: code %d, expected SI_USER", si.si_code);
			n_winch++;
		} else if (s == SIGURG) {
			CHECK("pending", si.si_code == urg_code, "SIGURG: code %d, expected %d", si.si_code, urg_code);
			n_urg++;
		} else {
			n_other++;
		}
	}
	CHECK("pending", n_rt1 == 3 && n_rt2 == 1 && n_rt4 == 1 && n_winch == 1 && n_urg == 1 && n_other == 0,
	      "dequeued RTMIN+1 x%d, RTMIN+2 x%d, RTMIN+4 x%d, WINCH x%d, URG x%d, other x%d; expected 3,1,1,1,1,0",
	      n_rt1, n_rt2, n_rt4, n_winch, n_urg, n_other);

	/* sigaltstack */
	stack_t cur;
	sigaltstack(NULL, &cur);
	CHECK("altstack", cur.ss_sp == altstack && cur.ss_size == ALTSZ && cur.ss_flags == 0,
	      "sigaltstack is sp %p size %zu flags %#x, expected %p %d 0", cur.ss_sp, cur.ss_size, cur.ss_flags,
	      (void *)altstack, ALTSZ);

	/* run the handlers */
	raise(SIGUSR1);
	CHECK("handler", usr1_runs == 1, "SIGUSR1 handler ran %d times", usr1_runs);
	CHECK("handler", usr1_onstack && usr1_ss_onstack, "SIGUSR1 handler not on the alternate stack");
	CHECK("handler", usr1_code == raise_code, "SIGUSR1 handler got si_code %d, expected %d", usr1_code, raise_code);
	CHECK("handler",
	      sigismember(&usr1_mask, SIGUSR1) && sigismember(&usr1_mask, SIGUSR2) && sigismember(&usr1_mask, SIGWINCH),
	      "SIGUSR1 handler ran without its mask (USR1 %d USR2 %d WINCH %d)", sigismember(&usr1_mask, SIGUSR1),
	      sigismember(&usr1_mask, SIGUSR2), sigismember(&usr1_mask, SIGWINCH));
	raise(SIGUSR2);
	CHECK("handler", usr2_runs == 1, "SIGUSR2 handler ran %d times", usr2_runs);
	CHECK("handler", !sigismember(&usr2_mask, SIGUSR2) && sigismember(&usr2_mask, SIGQUIT),
	      "SIGUSR2 handler mask: USR2 %d (SA_NODEFER) QUIT %d", sigismember(&usr2_mask, SIGUSR2),
	      sigismember(&usr2_mask, SIGQUIT));
	struct sigaction sa;
	sigaction(SIGUSR2, NULL, &sa);
	CHECK("handler", sa.sa_handler == SIG_DFL, "SIGUSR2 not reset by SA_RESETHAND");
	sigqueue(pid, RT + 3, (union sigval){ .sival_int = 3003 });
	CHECK("handler", rt3_runs == 1 && rt3_onstack && rt3_value == 3003,
	      "SIGRTMIN+3 handler: runs %d on altstack %d value %d", rt3_runs, rt3_onstack, rt3_value);
	raise(SIGHUP); /* ignored: must not kill us */

	return zoo_finish(NULL);
}
