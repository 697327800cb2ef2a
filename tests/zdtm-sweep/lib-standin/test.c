/* stand-in for criu's zdtm lib test.c: option parsing, daemonizing, logging */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdarg.h>
#include <signal.h>
#include <time.h>
#include <fcntl.h>
#include <sched.h>
#include <grp.h>
#include <limits.h>
#include <sys/wait.h>
#include <sys/time.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include "zdtmtst.h"
#include "lock.h"

futex_t sig_received;
static char *outfile;
TEST_OPTION(outfile, string, "output file", 1);
char *pidfile;
TEST_OPTION(pidfile, string, "file to store pid", 1);
static pid_t master_pid;
int zdtm_seccomp;

static struct long_opt *opts;
void __push_opt(struct long_opt *o) { o->next = opts; opts = o; }
int parse_opt_bool(char *p, void *a)
{
	if (!p || !strcmp(p, "1") || !strcmp(p, "on") || !strcmp(p, "yes") || !strcmp(p, "true")) { *(int *)a = 1; return 0; }
	if (!strcmp(p, "0") || !strcmp(p, "off") || !strcmp(p, "no") || !strcmp(p, "false")) { *(int *)a = 0; return 0; }
	return -1;
}
#define NUMPARSE(N, T, F) int parse_opt_##N(char *p, void *a) { char *e; if (!p) return -1; errno = 0; *(T *)a = F(p, &e, 0); return (errno || *e) ? -1 : 0; }
NUMPARSE(int, int, strtol)
NUMPARSE(uint, unsigned int, strtoul)
NUMPARSE(long, long, strtol)
NUMPARSE(ulong, unsigned long, strtoul)
int parse_opt_string(char *p, void *a) { if (!p) return -1; *(char **)a = p; return 0; }

void parseargs(int argc, char **argv)
{
	struct long_opt *o;
	for (int i = 1; i < argc; i++) {
		char *name = argv[i], *val;
		if (strncmp(name, "--", 2)) { fprintf(stderr, "bad arg %s\n", name); exit(1); }
		name += 2;
		val = strchr(name, '=');
		size_t len = val ? (size_t)(val - name) : strlen(name);
		if (val) val++;
		for (o = opts; o; o = o->next)
			if (strlen(o->name) == len && !strncmp(o->name, name, len))
				break;
		if (!o) { fprintf(stderr, "unknown option %s\n", argv[i]); exit(1); }
		if (!val && strcmp(o->type, "bool") && i + 1 < argc) val = argv[++i];
		if (o->parse_opt(val, o->value)) { fprintf(stderr, "bad value for %s\n", argv[i]); exit(1); }
		o->is_required = 0;
	}
	for (o = opts; o; o = o->next)
		if (o->is_required) { fprintf(stderr, "option --%s is required\n", o->name); exit(1); }
}

int test_log_init(const char *fname, const char *suffix)
{
	char path[PATH_MAX];
	int fd;
	snprintf(path, sizeof(path), "%s%s", fname, suffix);
	fd = open(path, O_WRONLY | O_EXCL | O_CREAT | O_APPEND, 0644);
	if (fd < 0) { fprintf(stderr, "Can't open %s: %m\n", path); return -1; }
	dup2(fd, 1); dup2(fd, 2);
	if (fd > 2) close(fd);
	setbuf(stdout, NULL); setbuf(stderr, NULL);
	return 0;
}

void test_msg(const char *format, ...)
{
	va_list arg;
	int off = 0, e = errno;
	char buf[TEST_MSG_BUFFER_SIZE];
	if (!zdtm_seccomp) {
		struct timeval tv;
		struct tm *tm;
		gettimeofday(&tv, NULL);
		tm = localtime(&tv.tv_sec);
		if (tm) off += strftime(buf, sizeof(buf), "%H:%M:%S", tm);
		off += sprintf(buf + off, ".%.3ld: %5d: ", tv.tv_usec / 1000, getpid());
	}
	va_start(arg, format);
	off += vsnprintf(buf + off, sizeof(buf) - off, format, arg);
	va_end(arg);
	if (off > (int)sizeof(buf)) off = sizeof(buf);
	if (write(2, buf, off) < 0) {}
	errno = e;
}

static void sig_hand(int signo) { futex_set_and_wake(&sig_received, signo); }
int test_fork_id(int id) { (void)id; return fork(); }

static void test_fini(void)
{
	char path[PATH_MAX];
	if (getpid() != master_pid) return;
	snprintf(path, sizeof(path), "%s%s", outfile, INPROGRESS);
	rename(path, outfile);
	unlink(pidfile);
}

static char *abs_path(char *p)
{
	char cwd[PATH_MAX], *r;
	if (!p || p[0] == '/' || !getcwd(cwd, sizeof(cwd))) return p;
	if (asprintf(&r, "%s/%s", cwd, p) < 0) return p;
	return r;
}

static void setup_outfile(void)
{
	/* tests may chdir() away: keep the outfile and pidfile where they were asked */
	outfile = abs_path(outfile);
	pidfile = abs_path(pidfile);
	if (!access(outfile, F_OK) || errno != ENOENT) { fprintf(stderr, "Output file %s exists\n", outfile); exit(1); }
	if (atexit(test_fini)) exit(1);
	if (test_log_init(outfile, INPROGRESS)) exit(1);
}

static void redir_stdfds(void)
{
	int fd = open("/dev/null", O_RDWR);
	if (fd < 0) { test_msg("Can't open /dev/null: %m\n"); exit(1); }
	dup2(fd, 0);
	if (fd > 2) close(fd);
}

void test_ext_init(int argc, char **argv)
{
	parseargs(argc, argv);
	if (test_log_init(outfile, ".external")) exit(1);
}

void test_init(int argc, char **argv)
{
	pid_t pid;
	FILE *pidf;
	char *val;
	struct sigaction sa = { .sa_handler = sig_hand, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	parseargs(argc, argv);

	val = getenv("ZDTM_GROUPS");
	if (val) {
		gid_t g[64]; int n = 0; char *s = strdup(val), *t, *sp;
		for (t = strtok_r(s, " ", &sp); t && n < 64; t = strtok_r(NULL, " ", &sp)) g[n++] = atoi(t);
		if (setgroups(n, g)) { fprintf(stderr, "Can't set groups: %m\n"); exit(1); }
		free(s);
	}
	val = getenv("ZDTM_GID");
	if (val && setgid(atoi(val)) == -1) { fprintf(stderr, "Can't set gid: %m\n"); exit(1); }
	val = getenv("ZDTM_UID");
	if (val && setuid(atoi(val)) == -1) { fprintf(stderr, "Can't set uid: %m\n"); exit(1); }
	if (prctl(PR_SET_DUMPABLE, 1)) { fprintf(stderr, "Can't set dumpable\n"); exit(1); }
	if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGCHLD, &sa, NULL)) exit(1);
	setup_outfile();
	redir_stdfds();
	if (getenv("ZDTM_REEXEC")) goto skip_pid;
	pidf = fopen(pidfile, "wx");
	if (!pidf) { test_msg("Can't create pid file %s: %m\n", pidfile); exit(1); }
	pid = fork();
	if (pid < 0) { test_msg("Daemonizing failed: %m\n"); exit(1); }
	if (pid) {
		test_waitsig();
		if (futex_get(&sig_received) == SIGCHLD) {
			int st;
			waitpid(pid, &st, 0);
			if (WIFEXITED(st)) test_msg("Test exited unexpectedly with code %d\n", WEXITSTATUS(st));
			if (WIFSIGNALED(st)) test_msg("Test exited on unexpected signal %d\n", WTERMSIG(st));
			exit(1);
		}
		fprintf(pidf, "%d\n", pid);
		fclose(pidf);
		_exit(0);
	}
	fclose(pidf);
	if (setsid() < 0) { test_msg("Can't become session leader: %m\n"); exit(1); }
skip_pid:
	master_pid = getpid();
	sa.sa_handler = SIG_DFL;
	if (sigaction(SIGCHLD, &sa, NULL)) exit(1);
	srand48(time(NULL));
}

void test_daemon(void)
{
	pid_t ppid = getppid();
	if (ppid <= 1) { test_msg("Test orphaned\n"); goto out; }
	if (kill(ppid, SIGTERM)) goto out;
	return;
out:
	kill(0, SIGKILL);
	exit(1);
}

int test_go(void) { return !futex_get(&sig_received); }
void test_waitsig(void) { futex_wait_while(&sig_received, 0); }
/* The sweep does no pre-dumps, so no notification ever comes: wait for the end of the
 * test and fail as criu's lib does once its status pipe is gone (returning 0 at once made
 * pid_reuse fork forever and maps_newpage expect pages a pre-dump would have dropped). */
int test_wait_pre_dump(void) { test_waitsig(); return -1; }
int test_wait_pre_dump_ack(void) { return 0; }

int write_pidfile(int pid)
{
	int fd = open(pidfile, O_CREAT | O_EXCL | O_WRONLY, 0666);
	char buf[16];
	if (fd < 0) { pr_perror("open %s", pidfile); return -1; }
	snprintf(buf, sizeof(buf), "%d", pid);
	if (write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf)) { close(fd); return -1; }
	close(fd);
	return 0;
}

pid_t sys_clone_unified(unsigned long flags, void *stack, void *ptid, void *ctid, unsigned long tls)
{
	return syscall(SYS_clone, flags, stack, ptid, ctid, tls);
}

/* task waiter: a pipe carrying the id of the step reached */
void task_waiter_init(task_waiter_t *t)
{
	t->seed = getpid();
	if (pipe(t->pipes)) { pr_perror("task_waiter pipe"); exit(1); }
}
void task_waiter_fini(task_waiter_t *t) { close(t->pipes[0]); close(t->pipes[1]); }
void task_waiter_wait4(task_waiter_t *t, unsigned int lockid)
{
	struct timespec req = { 0, 10000000 };
	unsigned int v;
	for (;;) {
		if (read(t->pipes[0], &v, sizeof(v)) != sizeof(v)) { pr_perror("task_waiter read"); exit(1); }
		if (v == lockid) break;
		if (write(t->pipes[1], &v, sizeof(v)) != sizeof(v)) { pr_perror("task_waiter write"); exit(1); }
		nanosleep(&req, NULL);
		if (req.tv_nsec < 200000000) req.tv_nsec *= 2;
	}
}
void task_waiter_complete(task_waiter_t *t, unsigned int lockid)
{
	if (write(t->pipes[1], &lockid, sizeof(lockid)) != sizeof(lockid)) { pr_perror("task_waiter write"); exit(1); }
}
void task_waiter_complete_current(task_waiter_t *t) { task_waiter_complete(t, (unsigned)getpid()); }
