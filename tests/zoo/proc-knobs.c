/*
 * proc-knobs: what a process sets about itself through /proc and a few system calls.
 *   The process: oom_score_adj 345, loginuid 1234, coredump_filter 0x7b, registered for
 *   membarrier's private and global expedited commands.
 *   Its child C: leads a session of its own whose scheduling group (autogroup) has nice 5,
 *   locks 64 KiB (mlock) and every later mapping (mlockall(MCL_FUTURE|MCL_ONFAULT)), sets its
 *   oom_score_adj to 200, then drops root (uids and gids 1000).
 * After restore and SIGTERM: the values read back the same; the membarrier expedited commands
 * work (the kernel refuses them unregistered: checked before registering, as registrations
 * cannot be undone for a corruption); C, still uid 1000, has its 64 KiB locked, and a new
 * mapping it makes is locked on fault (VmFlags lo lf), and reports it (corruption "mlock": C
 * calls munlockall() itself after SIGTERM); its session's group still has nice 5.
 * Blocks in: nanosleep (zoo_wait loop; C's sleep loop).
 */
#include "zoo.h"
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <grp.h>
#include <sys/wait.h>

#define LOCKED (64 * 1024)
static pid_t child;
static volatile sig_atomic_t child_term;
static unsigned char *locked;

/* Its own (/proc/self: also in a PID namespace whose /proc is another's) */
static long knob(const char *name, int base)
{
	char path[64], buf[64];
	snprintf(path, sizeof(path), "/proc/self/%s", name);
	if (zoo_read_file(path, buf, sizeof(buf)) < 0)
		return -99999;
	return strtol(buf, NULL, base);
}

static int set_knob(const char *name, const char *value)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/%s", name);
	int fd = open(path, O_WRONLY);
	int ok = fd >= 0 && write(fd, value, strlen(value)) == (ssize_t)strlen(value);
	close(fd);
	return ok ? 0 : -1;
}

static int vm_flag(const void *addr, const char *flag)
{
	static char smaps[1 << 18];
	char head[32], want[8];
	zoo_read_file("/proc/self/smaps", smaps, sizeof(smaps));
	snprintf(head, sizeof(head), "%lx-", (unsigned long)addr);
	char *at = strstr(smaps, head), *vf = at ? strstr(at, "VmFlags:") : NULL;
	if (!vf)
		return 0;
	char *eol = strchr(vf, '\n');
	if (eol)
		*eol = 0;
	snprintf(want, sizeof(want), " %s", flag);
	return strstr(vf, want) != NULL;
}

static void on_child_term(int sig) { (void)sig; child_term = 1; }
static int corrupting(const char *tag) { return zoo_corr && !strcmp(zoo_corr->tag, tag); }

/* Its session's scheduling group's nice (/proc/self/autogroup: "/autogroup-N nice X"), or -99. */
static int autogroup_nice(void)
{
	char text[64] = "";
	int nice = -99;
	zoo_read_file("/proc/self/autogroup", text, sizeof(text));
	return sscanf(text, "%*s nice %d", &nice) == 1 ? nice : -99;
}

/* Exit code: 0, or bits: 1 its lock, 2 a new mapping not locked, 4 its uid, 8 oom_score_adj,
 * 16 its autogroup's nice */
static void run_child(void)
{
	struct sigaction sa = { .sa_handler = on_child_term };
	sigaction(SIGTERM, &sa, NULL);
	if (setsid() < 0 || set_knob("autogroup", "5") || autogroup_nice() != 5)
		_exit(101);
	struct rlimit lim = { 1 << 20, 1 << 20 };
	locked = mmap(NULL, LOCKED, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (locked == MAP_FAILED || mlock(locked, LOCKED) || mlockall(MCL_FUTURE | MCL_ONFAULT) ||
	    setrlimit(RLIMIT_MEMLOCK, &lim) || set_knob("oom_score_adj", "200") || setgroups(0, NULL) ||
	    setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000))
		_exit(100);
	memset(locked, 3, LOCKED);
	while (!child_term)
		zoo_sleep_ms(10);
	if (corrupting("mlock"))
		munlockall();
	int code = 0;
	if (!vm_flag(locked, "lo") || vm_flag(locked, "lf"))
		code |= 1;
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || !vm_flag(m, "lo") || !vm_flag(m, "lf"))
		code |= 2;
	if (getuid() != 1000 || geteuid() != 1000)
		code |= 4;
	if (knob("oom_score_adj", 10) != 200)
		code |= 8;
	if (autogroup_nice() != 5)
		code |= 16;
	_exit(code);
}

static void c_oom(ucontext_t *u) { (void)u; set_knob("oom_score_adj", "100"); }
static void c_loginuid(ucontext_t *u) { (void)u; set_knob("loginuid", "4321"); }
static void c_filter(ucontext_t *u) { (void)u; set_knob("coredump_filter", "0x33"); }
static void c_mlock(ucontext_t *u) { (void)u; } /* C unlocks itself */
static void c_child(ucontext_t *u) { (void)u; kill(child, SIGKILL); }
/* C's session's group back to nice 0 (by root: C, uid 1000 since, may not write its /proc) */
static void c_autogroup(ucontext_t *u)
{
	char path[64];
	(void)u;
	snprintf(path, sizeof(path), "/proc/%d/autogroup", zoo_proc_pid(child));
	zoo_write_file(path, "0", 1);
}
static const struct zoo_corruption corruptions[] = {
	{ "oom", c_oom, 0 },
	{ "loginuid", c_loginuid, 0 },
	{ "filter", c_filter, 0 },
	{ "mlock", c_mlock, 0 },
	{ "child", c_child, 0 },
	{ "autogroup", c_autogroup, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	child = fork();
	if (child == 0)
		run_child();
	int loginuid = knob("loginuid", 10) != -99999 && set_knob("loginuid", "1234") == 0;
	if (set_knob("oom_score_adj", "345") || set_knob("coredump_filter", "0x7b"))
		zoo_die("/proc/self knobs: %s", strerror(errno));
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
		zoo_die("membarrier: the private expedited command works unregistered: the check cannot fail");
	int mb = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 &&
		 syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
	zoo_sleep_ms(50);
	zoo_ready();
	zoo_wait();

	CHECK("oom", knob("oom_score_adj", 10) == 345, "oom_score_adj %ld, expected 345", knob("oom_score_adj", 10));
	CHECK("loginuid", !loginuid || knob("loginuid", 10) == 1234, "loginuid %ld, expected 1234", knob("loginuid", 10));
	CHECK("filter", knob("coredump_filter", 16) == 0x7b, "coredump_filter %lx, expected 7b",
	      knob("coredump_filter", 16));
	CHECK("membarrier", !mb || (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0 &&
			     syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0),
	      "membarrier expedited commands fail: %s", strerror(errno));
	kill(child, SIGTERM);
	int st = 0;
	waitpid(child, &st, 0);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	CHECK("child", code >= 0 && !(code & ~19), "child C: status %#x (exit bits: 4 its uid, 8 oom_score_adj)", st);
	CHECK("autogroup", code >= 0 && !(code & 16), "child C: its session's autogroup lost its nice 5");
	CHECK("mlock", code >= 0 && !(code & 3), "child C: exit %d (bits: 1 its 64 KiB not locked, 2 a new "
	      "mapping not locked on fault)", code);
	return zoo_finish(loginuid ? "oom_score_adj, loginuid, coredump_filter, membarrier, mlock as uid 1000"
				   : "oom_score_adj, coredump_filter, membarrier, mlock as uid 1000");
}
