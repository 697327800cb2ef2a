/*
 * proc-attrs: per-process attributes.
 *   rlimits (NOFILE 777/4096, CORE 1234567/unlimited, MSGQUEUE, STACK, SIGPENDING, LOCKS, CPU,
 *   FSIZE changed, hard limits only lowered; all 16 compared), cwd (a directory in $ZOO_TMPDIR, compared by
 *   path and dev/inode), root ("/", no chroot), umask 027, personality
 *   (PER_LINUX | ADDR_NO_RANDOMIZE), comm "zoo-attrs:42" (prctl PR_SET_NAME); prctl: not
 *   dumpable, no_new_privs, THP disabled, timer slack 123456 ns; a second thread's own timer
 *   slack 654321 ns (the kernel keeps one per thread), and no no_new_privs (made before the
 *   main thread set it: each thread has its own; unless the container's init had it).
 * Blocks in: nanosleep (zoo_wait loop); the thread in pause.
 */
#include "zoo.h"
#include <pthread.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#define COMM "zoo-attrs:42"
#define PERS (PER_LINUX | ADDR_NO_RANDOMIZE)

static struct rlimit lim_before[RLIM_NLIMITS];
static char cwd_path[600];
static struct stat cwd_st, root_st;

#define THREAD_SLACK 654321
static pthread_mutex_t slack_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slack_cond = PTHREAD_COND_INITIALIZER;
static int slack_ask, slack_set; /* main asks, the thread answers: -1 not yet, its slack */
static int slack_corrupt;        /* the thread takes the main thread's slack when next asked */
static int nnp_corrupt;          /* the thread sets no_new_privs when next asked */
static int thread_nnp = -1;      /* the thread's no_new_privs, with its slack */

/* Sets its own timer slack, then reports it each time main asks. */
static void *slack_thread(void *arg)
{
	(void)arg;
	if (prctl(PR_SET_TIMERSLACK, THREAD_SLACK))
		zoo_die("thread PR_SET_TIMERSLACK: %s", strerror(errno));
	pthread_mutex_lock(&slack_lock);
	for (;;) {
		if (slack_corrupt)
			prctl(PR_SET_TIMERSLACK, 123456);
		if (nnp_corrupt)
			prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		thread_nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
		slack_set = prctl(PR_GET_TIMERSLACK);
		pthread_cond_broadcast(&slack_cond);
		while (!slack_ask)
			pthread_cond_wait(&slack_cond, &slack_lock);
		slack_ask = 0;
	}
	return NULL;
}

/* The thread's timer slack, as it reads it now. */
static int thread_slack(void)
{
	int v;

	pthread_mutex_lock(&slack_lock);
	slack_set = -1;
	slack_ask = 1;
	pthread_cond_broadcast(&slack_cond);
	while (slack_set == -1)
		pthread_cond_wait(&slack_cond, &slack_lock);
	v = slack_set;
	pthread_mutex_unlock(&slack_lock);
	return v;
}

static void c_rlimit(ucontext_t *u)
{
	(void)u;
	struct rlimit r = { 778, 4096 };
	setrlimit(RLIMIT_NOFILE, &r);
}
static void c_cwd(ucontext_t *u) { (void)u; if (chdir("/")) zoo_die("chdir"); }
static void c_root(ucontext_t *u) { (void)u; if (chroot(cwd_path)) zoo_die("chroot: %s", strerror(errno)); }
static void c_umask(ucontext_t *u) { (void)u; umask(022); }
static void c_personality(ucontext_t *u) { (void)u; personality(PER_LINUX); }
static void c_comm(ucontext_t *u) { (void)u; prctl(PR_SET_NAME, "other-name"); }
static void c_prctl(ucontext_t *u) { (void)u; prctl(PR_SET_TIMERSLACK, 0); prctl(PR_SET_DUMPABLE, 1); }
/* the thread gets the main thread's slack, as a restore ignoring it would leave it */
static void c_thread_slack(ucontext_t *u)
{
	(void)u;
	pthread_mutex_lock(&slack_lock);
	slack_corrupt = 1;
	pthread_mutex_unlock(&slack_lock);
}
/* the thread takes no_new_privs, as a restore giving it the main thread's would leave it */
static void c_thread_nnp(ucontext_t *u)
{
	(void)u;
	pthread_mutex_lock(&slack_lock);
	nnp_corrupt = 1;
	pthread_mutex_unlock(&slack_lock);
}
static const struct zoo_corruption corruptions[] = {
	{ "thread-nnp", c_thread_nnp, 0 },
	{ "rlimit", c_rlimit, 0 }, { "cwd", c_cwd, 0 },		    { "umask", c_umask, 0 },
	{ "personality", c_personality, 0 }, { "comm", c_comm, 0 }, { "root", c_root, 0 },
	{ "prctl", c_prctl, 0 }, { "thread-slack", c_thread_slack, 0 },
};

/*
 * Never above the current hard limit: without CAP_SYS_RESOURCE (this machine's root lacks
 * it) a restore could not raise it back either.
 */
static void setlim(int res, rlim_t cur, rlim_t max)
{
	struct rlimit old, r;
	getrlimit(res, &old);
	if (max > old.rlim_max)
		max = old.rlim_max;
	if (cur > max)
		cur = max;
	r.rlim_cur = cur;
	r.rlim_max = max;
	if (setrlimit(res, &r) < 0)
		zoo_die("setrlimit(%d, %lu, %lu): %s", res, (unsigned long)cur, (unsigned long)max, strerror(errno));
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));

	setlim(RLIMIT_NOFILE, 777, 4096);
	setlim(RLIMIT_CORE, 1234567, RLIM_INFINITY);
	setlim(RLIMIT_MSGQUEUE, 409601, 819000);
	setlim(RLIMIT_STACK, 16 << 20, RLIM_INFINITY);
	setlim(RLIMIT_SIGPENDING, 5000, 6000);
	setlim(RLIMIT_LOCKS, 100, 200);
	setlim(RLIMIT_CPU, 3600, 7200);
	setlim(RLIMIT_FSIZE, 1ul << 40, RLIM_INFINITY);
	for (int i = 0; i < RLIM_NLIMITS; i++)
		getrlimit(i, &lim_before[i]);

	snprintf(cwd_path, sizeof(cwd_path), "%s/cwd-dir", zoo_tmpdir());
	mkdir(cwd_path, 0755);
	if (chdir(cwd_path) < 0 || !getcwd(cwd_path, sizeof(cwd_path)) || stat(".", &cwd_st) < 0)
		zoo_die("chdir %s: %s", cwd_path, strerror(errno));
	if (stat("/", &root_st) < 0)
		zoo_die("stat /: %s", strerror(errno));
	umask(027);
	if (personality(PERS) < 0 || personality(0xffffffff) != PERS)
		zoo_die("personality: %s", strerror(errno));
	if (prctl(PR_SET_NAME, COMM) < 0)
		zoo_die("PR_SET_NAME: %s", strerror(errno));
	pthread_t th;
	if (pthread_create(&th, NULL, slack_thread, NULL))
		zoo_die("pthread_create");
	if (prctl(PR_SET_DUMPABLE, 0) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) || prctl(PR_SET_TIMERSLACK, 123456))
		zoo_die("prctl: %s", strerror(errno));
	if (thread_slack() != THREAD_SLACK)
		zoo_die("the thread's timer slack is not %d", THREAD_SLACK);
	int thread_nnp_before = thread_nnp; /* 0 (1 in a container started with it) */

	zoo_ready();
	zoo_wait();

	for (int i = 0; i < RLIM_NLIMITS; i++) {
		struct rlimit r;
		getrlimit(i, &r);
		CHECK("rlimit", r.rlim_cur == lim_before[i].rlim_cur && r.rlim_max == lim_before[i].rlim_max,
		      "rlimit %d is %lu/%lu, was %lu/%lu", i, (unsigned long)r.rlim_cur, (unsigned long)r.rlim_max,
		      (unsigned long)lim_before[i].rlim_cur, (unsigned long)lim_before[i].rlim_max);
	}

	char buf[600];
	struct stat st;
	CHECK("cwd", getcwd(buf, sizeof(buf)) && !strcmp(buf, cwd_path), "cwd is '%s', expected '%s'", buf, cwd_path);
	CHECK("cwd", stat(".", &st) == 0 && st.st_dev == cwd_st.st_dev && st.st_ino == cwd_st.st_ino,
	      "cwd is another directory (dev/inode differ)");
	CHECK("root", stat("/", &st) == 0 && st.st_dev == root_st.st_dev && st.st_ino == root_st.st_ino,
	      "/ is another directory (a chroot?)");
	ssize_t l = readlink("/proc/self/root", buf, sizeof(buf) - 1);
	buf[l > 0 ? l : 0] = 0;
	CHECK("root", !strcmp(buf, "/"), "/proc/self/root is '%s'", buf);

	mode_t m = umask(0);
	umask(m);
	CHECK("umask", m == 027, "umask is %03o, expected 027", (unsigned)m);

	int p = personality(0xffffffff);
	CHECK("personality", p == PERS, "personality is %#x, expected %#x", p, PERS);

	char comm[32] = "";
	prctl(PR_GET_NAME, comm);
	CHECK("comm", !strcmp(comm, COMM), "PR_GET_NAME gives '%s', expected '%s'", comm, COMM);
	int dumpable = prctl(PR_GET_DUMPABLE), nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
	    thp = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0), slack = prctl(PR_GET_TIMERSLACK);
	CHECK("prctl", dumpable == 0 && nnp == 1 && thp == 1 && slack == 123456,
	      "dumpable %d, no_new_privs %d, THP disabled %d, timer slack %d", dumpable, nnp, thp, slack);
	int tslack = thread_slack();
	CHECK("thread-slack", tslack == THREAD_SLACK, "the second thread's timer slack is %d, expected %d",
	      tslack, THREAD_SLACK);
	CHECK("thread-nnp", thread_nnp == thread_nnp_before,
	      "the second thread's no_new_privs is %d, not %d (the main thread's is %d)", thread_nnp,
	      thread_nnp_before, nnp);
	char pc[64] = "";
	if (zoo_read_file("/proc/self/comm", pc, sizeof(pc)) > 0) {
		pc[strcspn(pc, "\n")] = 0;
		CHECK("comm", !strcmp(pc, COMM), "/proc/self/comm is '%s'", pc);
	}

	return zoo_finish(NULL);
}
