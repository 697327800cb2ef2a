/*
 * creds: a daemon that dropped root. Started as root, the program takes supplementary groups
 * 100 and 200 and 898 more (3000 to 3897: more than a fixed table of the restorer's held), gids 1001/1002/1003 and uids 1001/1002/1003 (real/effective/saved), keeping
 * CAP_NET_BIND_SERVICE (permitted, effective, inheritable, ambient) and a bounding set without
 * CAP_SYS_ADMIN, and CAP_SETPCAP, with which it set its secure bits last: keep-caps, noroot
 * (locked) and no ambient raise (locked; after raising its ambient one). One thread (raw
 * syscalls: its own) runs as uid 2000 with no capabilities and secure bits of its own:
 * no-setuid-fixup and keep-caps (both locked), set before it left root.
 * After restore and SIGTERM: every thread's Uid, Gid, Groups and Cap* lines in
 * /proc/self/task/TID/status and secure bits are as before; it is not root again.
 * Blocks in: nanosleep (zoo_wait loop and the thread's own loop).
 */
#include "zoo.h"
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/prctl.h>

static volatile pid_t thread_tid;
static volatile int thread_check, thread_bits_now = -1;
static int thread_bits;
#define MAIN_BITS (SECBIT_KEEP_CAPS | SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | \
		   SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED)
#define THREAD_BITS (SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS | \
		     SECBIT_KEEP_CAPS_LOCKED)
#define NR_GROUPS 900
static char before_main[16384], before_thread[16384];

/* The credential lines of thread tid's (gettid()'s) status, one string. */
static void creds_of(pid_t tid, char *out, size_t len)
{
	char path[64], status[65536] = "";
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", zoo_proc_tid(tid));
	zoo_read_file(path, status, sizeof(status));
	out[0] = 0;
	static const char *keys[] = { "Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:" };
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		char *l = strstr(status, keys[k]), *eol = l ? strchr(l, '\n') : NULL;
		if (l && eol)
			snprintf(out + strlen(out), len - strlen(out), "%.*s|", (int)(eol - l), l);
	}
}

static void *thread_main(void *arg)
{
	(void)arg;
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { { 0 } };
	/* this thread only: the raw calls, not glibc's (which change every thread) */
	if (prctl(PR_SET_SECUREBITS, THREAD_BITS) || syscall(SYS_setresuid, 2000, 2000, 2000) ||
	    syscall(SYS_capset, &h, d))
		zoo_die("thread creds: %s", strerror(errno));
	thread_bits = prctl(PR_GET_SECUREBITS);
	thread_tid = gettid();
	while (!thread_check)
		zoo_sleep_ms(10);
	thread_bits_now = prctl(PR_GET_SECUREBITS);
	return NULL;
}

static void c_root(ucontext_t *u) { (void)u; syscall(SYS_setresuid, 1001, 1001, 1001); }
static void c_keepcaps(ucontext_t *u) { (void)u; prctl(PR_SET_SECUREBITS, MAIN_BITS & ~SECBIT_KEEP_CAPS); }
static const struct zoo_corruption corruptions[] = {
	{ "creds", c_root, 0 },
	{ "securebits", c_keepcaps, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	pthread_t th;
	if (pthread_create(&th, NULL, thread_main, NULL))
		zoo_die("pthread_create");
	while (!thread_tid)
		zoo_sleep_ms(1);
	/* without root it could not write its pid file (temp file + rename) into the harness's directory */
	const char *pidfile = getenv("ZOO_PIDFILE");
	if (pidfile && strrchr(pidfile, '/')) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(pidfile, '/') - pidfile), pidfile);
		chmod(dir, 0777);
		char *up = strrchr(dir, '/'); /* the harness's temporary tree (0700): let it be crossed */
		if (up && up != dir) {
			*up = 0;
			chmod(dir, 0711);
		}
	}
	gid_t groups[NR_GROUPS] = { 100, 200 };
	for (int i = 2; i < NR_GROUPS; i++)
		groups[i] = 3000 + i - 2;
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { { 0 } };
	unsigned nbs = 1u << CAP_NET_BIND_SERVICE;
	d[0].effective = d[0].permitted = nbs | 1u << CAP_SETPCAP;
	d[0].inheritable = nbs;
	/* raw calls: the main thread only (the other thread has its own credentials already) */
	if (syscall(SYS_setgroups, NR_GROUPS, groups) || prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN) ||
	    prctl(PR_SET_KEEPCAPS, 1) || syscall(SYS_setresgid, 1001, 1002, 1003) ||
	    syscall(SYS_setresuid, 1001, 1002, 1003) || syscall(SYS_capset, &h, d) ||
	    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) ||
	    prctl(PR_SET_SECUREBITS, MAIN_BITS))
		zoo_die("dropping root: %s", strerror(errno));
	if (prctl(PR_GET_SECUREBITS) != MAIN_BITS || thread_bits != THREAD_BITS)
		zoo_die("secure bits %#x and %#x, not %#x and %#x", prctl(PR_GET_SECUREBITS), thread_bits,
			MAIN_BITS, THREAD_BITS);
	creds_of(gettid(), before_main, sizeof(before_main));
	creds_of(thread_tid, before_thread, sizeof(before_thread));
	if (!before_main[0] || !before_thread[0])
		zoo_die("cannot read the threads' status (main '%s', thread '%s')", before_main, before_thread);
	zoo_ready();
	zoo_wait();

	char now_main[16384], now_thread[16384];
	creds_of(gettid(), now_main, sizeof(now_main));
	creds_of(thread_tid, now_thread, sizeof(now_thread));
	thread_check = 1;
	for (int i = 0; i < 500 && thread_bits_now < 0; i++)
		zoo_sleep_ms(10);
	int bits = prctl(PR_GET_SECUREBITS);
	CHECK("securebits", bits == MAIN_BITS, "main thread's %#x, not %#x", bits, MAIN_BITS);
	CHECK("securebits", thread_bits_now == THREAD_BITS, "thread's %#x, not %#x", thread_bits_now,
	      THREAD_BITS);
	CHECK("creds", !strcmp(now_main, before_main), "main thread: %s, was %s", now_main, before_main);
	CHECK("creds", !strcmp(now_thread, before_thread), "thread: %s, was %s", now_thread, before_thread);
	CHECK("creds", syscall(SYS_geteuid) == 1002 && syscall(SYS_getegid) == 1002, "euid %ld egid %ld",
	      syscall(SYS_geteuid), syscall(SYS_getegid));
	return zoo_finish("a daemon without root in 900 groups, secure bits, a thread of its own");
}
