/*
 * zoo.h - the shared protocol of the process zoo.
 *
 * Every zoo program (tests/zoo/NAME.c -> tests/zoo/bin/NAME) follows one life cycle:
 *
 *   1. set up one kind of state and record what it expects;
 *   2. zoo_ready(): snapshot the generic state (the mappings of /proc/self/maps and the set
 *      of open fds), write its pid to $ZOO_PIDFILE (atomically, temp file + rename) and
 *      "READY\n" to stdout;
 *   3. wait for SIGTERM (zoo_wait(): a nanosleep loop; some programs block in their own
 *      system call or spin in assembly instead); the SIGTERM handler (SA_SIGINFO|SA_RESTART)
 *      only sets zoo_term and calls the program's zoo_term_hook, if any;
 *   4. zoo_begin_verify(): apply the selected corruption (see below), then compare the
 *      generic state with the snapshot (tags "maps" and "fdset"; a program can switch them
 *      off with zoo_check_maps / zoo_check_fds before zoo_ready());
 *   5. program specific checks (CHECK());
 *   6. zoo_finish(): print exactly one line "PASS[ info]" or "FAIL: tag: what; tag: what"
 *      to stdout and return the exit code (0 or 1).
 *
 * Corruptions prove that every check can fail. A program lists its corruptions in a table
 * { tag, function, in_handler }; "--list-corruptions" prints the tags, one a line, and
 * "--corrupt[=TAG]" (no TAG: the first one) damages that piece of state right after SIGTERM
 * (inside the SIGTERM handler, with its ucontext, when in_handler is set; otherwise in
 * zoo_begin_verify()). The FAIL line then has to contain "TAG:", which tests/run-zoo.sh
 * checks. Other arguments are left to the program.
 *
 * Environment: ZOO_PIDFILE (where the pid goes), ZOO_TMPDIR (a fresh directory the program
 * may use for its files; without it the program makes one under /tmp).
 *
 * Output goes through write(2) only (no stdio buffers), and nothing between zoo_ready() and
 * the generic checks allocates memory or opens files, so the snapshot stays comparable.
 */
#ifndef ZOO_H
#define ZOO_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define ZOO_UNUSED __attribute__((unused))

struct zoo_corruption {
	const char *tag;                /* the check that must then fail, e.g. "heap" */
	void (*fn)(ucontext_t *uc);     /* uc: the handler's ucontext when in_handler, else NULL */
	int in_handler;                 /* run inside the SIGTERM handler */
};

static volatile sig_atomic_t zoo_term ZOO_UNUSED;
static const struct zoo_corruption *zoo_corr ZOO_UNUSED;   /* selected corruption, or NULL */
static const char *zoo_prog ZOO_UNUSED = "zoo";
/* Called first in the SIGTERM handler, e.g. to wake the program's own blocking call. */
static void (*zoo_term_hook)(void) ZOO_UNUSED;
/* Programs may switch the generic checks off (before zoo_ready()). */
static int zoo_check_maps ZOO_UNUSED = 1;
static int zoo_check_fds ZOO_UNUSED = 1;

/* ---- small utilities ---------------------------------------------------------------- */

static inline void zoo_write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

/* Setup errors: the program cannot even start the test. */
static inline __attribute__((noreturn, format(printf, 1, 2))) void zoo_die(const char *fmt, ...)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "FAIL: setup: ");
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 2, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	zoo_write_all(1, buf, (size_t)n);
	exit(1);
}

/* A child that does nothing until its parent dies (PR_SET_PDEATHSIG, SIGKILL): its pid. */
static inline pid_t zoo_waiting_child(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	if (pid < 0)
		zoo_die("fork: %s", strerror(errno));
	return pid;
}

/* Puts open file fd at number at (flags: O_CLOEXEC or 0), closing fd; dies if it cannot. */
static inline void zoo_place(int fd, int at, int flags)
{
	if (fd < 0 || (fd != at && dup3(fd, at, flags) != at))
		zoo_die("fd %d: %s", at, strerror(errno));
	if (fd != at)
		close(fd);
}

/* Read a whole (small) file into buf, NUL-terminated. Returns the length or -1. */
static inline ssize_t zoo_read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	if (fd < 0)
		return -1;
	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = 0;
	return (ssize_t)len;
}

/* The last pid of the NSpid line of a status file of /proc (the task's id in its own PID
 * namespace), or -1. */
static inline pid_t zoo_status_nspid(const char *path)
{
	char status[16384]; /* the Groups line before it: 900 groups in zoo creds */
	const char *l = zoo_read_file(path, status, sizeof(status)) > 0 ? strstr(status, "\nNSpid:") : NULL;
	const char *eol = l ? strchr(l + 1, '\n') : NULL;
	if (!eol)
		return -1;
	while (eol > l && eol[-1] >= '0' && eol[-1] <= '9')
		eol--;
	return atoi(eol);
}

/* The state letter (R, S, T, Z...) of a /proc stat file (after the command name, which may
 * hold spaces and parentheses), or '?'. */
static inline char zoo_stat_state(const char *path)
{
	char buf[512];
	if (zoo_read_file(path, buf, sizeof(buf)) <= 0)
		return '?';
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

/* Waits up to 5 s until thread tid of this process is in system call nr (its
 * /proc/self/task/TID/syscall); 0, or -1. */
static inline int zoo_thread_in_syscall(pid_t tid, long nr)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	for (int tries = 0; tries < 5000; tries++) {
		if (zoo_read_file(path, buf, sizeof(buf)) > 0 && strtol(buf, NULL, 10) == nr)
			return 0;
		usleep(1000);
	}
	return -1;
}

/* Is the (small) file at path exactly text? */
static inline int zoo_file_is(const char *path, const char *text)
{
	char buf[256];
	ssize_t n = zoo_read_file(path, buf, sizeof(buf));
	return n == (ssize_t)strlen(text) && !memcmp(buf, text, n);
}

/* Sorts the lines of s in place (up to 128 of them, s up to 8 KiB). */
static inline void zoo_sort_lines(char *s)
{
	static char copy[8192], *lines[128];
	size_t n = 0, used = 0;

	snprintf(copy, sizeof(copy), "%s", s);
	for (char *l = strtok(copy, "\n"); l && n < 128; l = strtok(NULL, "\n"))
		lines[n++] = l;
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
			char *t = lines[j];
			lines[j] = lines[j - 1];
			lines[j - 1] = t;
		}
	s[0] = 0;
	for (size_t i = 0; i < n; i++)
		used += sprintf(s + used, "%s\n", lines[i]);
}

/*
 * A child that reports its checks as bits of its exit status, told to check (SIGTERM) and
 * reaped: its bits, or 255 if it was killed or failed ("child" check failed, naming *status).
 */
static inline int zoo_child_bits(pid_t child, int *status)
{
	*status = 0;
	kill(child, SIGTERM);
	if (waitpid(child, status, 0) != child)
		*status = 255 << 8;
	return WIFEXITED(*status) ? WEXITSTATUS(*status) : 255;
}

static inline int zoo_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	zoo_write_all(fd, data, len);
	return close(fd);
}

static inline void zoo_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * A child process of the program waits for its own SIGTERM (sent by the program after the
 * restore), under a plain handler of its own: zoo's runs corruptions and checks of the program.
 */
static volatile sig_atomic_t zoo_child_term ZOO_UNUSED;
static inline void zoo_on_child_term(int sig)
{
	(void)sig;
	zoo_child_term = 1;
}
static inline void zoo_child_wait_term(void)
{
	struct sigaction sa = { .sa_handler = zoo_on_child_term };
	sigaction(SIGTERM, &sa, NULL);
	while (!zoo_child_term)
		zoo_sleep_ms(5);
}

/* The soft fd limit raised to the hard one; the hard one, counted up to 65536. */
static inline long zoo_nofile_raised(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		zoo_die("getrlimit: %s", strerror(errno));
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		zoo_die("setrlimit: %s", strerror(errno));
	return rl.rlim_max > 65536 ? 65536 : (long)rl.rlim_max;
}

/* A daemon out of our tree (double fork) running run(), once it wrote its pid to pid_path (it
 * writes it last, when it serves): 1 s at most. */
static inline void zoo_start_daemon(void (*run)(void), const char *pid_path)
{
	char pid[16];
	pid_t a = fork();
	if (a == 0) {
		if (fork() == 0)
			run();
		_exit(0);
	}
	waitpid(a, NULL, 0);
	for (int i = 0; i < 500 && zoo_read_file(pid_path, pid, sizeof(pid)) <= 0; i++)
		zoo_sleep_ms(2);
}

/* Whether tests/run-zoo.sh marked this run with the file $ZOO_TMPDIR/name. */
static inline int zoo_run_marked(const char *name)
{
	char mark[600];
	snprintf(mark, sizeof(mark), "%s/%s", getenv("ZOO_TMPDIR") ? getenv("ZOO_TMPDIR") : "/nonexistent", name);
	return access(mark, F_OK) == 0;
}

/* Whether this run's restore is a lazy one (tests/run-zoo.sh --lazy makes $ZOO_TMPDIR/lazy-restore). */
static inline int zoo_restored_lazily(void) { return zoo_run_marked("lazy-restore"); }

/*
 * Whether this run's dump leaves the program running, not restored (tests/run-zoo.sh
 * --leave-running makes $ZOO_TMPDIR/left-running): what only a restore puts back as it was
 * (a relative wait the dump's interruption left to restart_syscall) is not asked then.
 */
static inline int zoo_left_running(void) { return zoo_run_marked("left-running"); }

/*
 * A child running fn(ready), which writes one byte to ready once it is set up and does not
 * return: its pid once it did; else dies saying the child did not do what.
 */
static inline pid_t zoo_child_when_ready(void (*fn)(int ready), const char *what)
{
	int ready[2];
	char c;

	if (pipe(ready))
		zoo_die("pipe: %s", strerror(errno));
	pid_t child = fork();
	if (child == 0) {
		close(ready[0]);
		fn(ready[1]);
		_exit(1);
	}
	close(ready[1]);
	if (child < 0 || read(ready[0], &c, 1) != 1)
		zoo_die("the child did not %s", what);
	close(ready[0]);
	return child;
}

static inline uint64_t zoo_now_ns(int clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A position dependent pattern: a 64-bit mix of the offset and a seed. */
static inline uint64_t zoo_pattern(uint64_t off, uint64_t seed)
{
	uint64_t x = off * 0x9E3779B97F4A7C15ull ^ seed;
	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 32;
	return x;
}

static inline void zoo_fill(void *p, size_t len, uint64_t seed)
{
	unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		c[i] = (unsigned char)zoo_pattern(i, seed);
}

/* Index of the first byte that differs from zoo_fill(), or -1. */
static inline long zoo_check_fill(const void *p, size_t len, uint64_t seed)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		if (c[i] != (unsigned char)zoo_pattern(i, seed))
			return (long)i;
	return -1;
}

static char zoo_own_tmpdir[512] ZOO_UNUSED; /* made by zoo_tmpdir(), removed by zoo_finish() */

/* The directory for this program's files: $ZOO_TMPDIR or a fresh /tmp/zoo-NAME.XXXXXX. */
static inline const char *zoo_tmpdir(void)
{
	static char dir[512];
	if (dir[0])
		return dir;
	const char *e = getenv("ZOO_TMPDIR");
	if (e && *e) {
		snprintf(dir, sizeof(dir), "%s", e);
		mkdir(dir, 0755);
	} else {
		snprintf(dir, sizeof(dir), "/tmp/zoo-%s.XXXXXX", zoo_prog);
		if (!mkdtemp(dir))
			zoo_die("mkdtemp: %s", strerror(errno));
		memcpy(zoo_own_tmpdir, dir, sizeof(dir));
	}
	return dir;
}

static inline int zoo_rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* ---- verdict ---------------------------------------------------------------------- */

static char zoo_failbuf[3000] ZOO_UNUSED;
static size_t zoo_faillen ZOO_UNUSED;
static int zoo_nfail ZOO_UNUSED;

static inline __attribute__((format(printf, 2, 3))) void zoo_failf(const char *tag, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	zoo_nfail++;
	if (zoo_faillen + 16 >= sizeof(zoo_failbuf))
		return;
	int n = snprintf(zoo_failbuf + zoo_faillen, sizeof(zoo_failbuf) - zoo_faillen, "%s%s: %s",
			 zoo_faillen ? "; " : "", tag, msg);
	if (n > 0)
		zoo_faillen += (size_t)n;
	if (zoo_faillen >= sizeof(zoo_failbuf))
		zoo_faillen = sizeof(zoo_failbuf) - 1;
}

/* Each "TAG: what" line of report (the checks a child of the program made, sent up) recorded
 * as a failure (report is cut up). */
static inline void zoo_fail_report(char *report)
{
	for (char *line = report, *end; *line && (end = strchr(line, '\n')); line = end + 1) {
		*end = 0;
		char *colon = strstr(line, ": ");
		if (colon)
			*colon = 0, zoo_failf(line, "%s", colon + 2);
	}
}

/* zoo_fail_report of what the child writes to fd until it closes it. */
static inline void zoo_fail_report_fd(int fd)
{
	static char report[4096];
	size_t n = 0;

	for (ssize_t r; n + 1 < sizeof(report) && (r = read(fd, report + n, sizeof(report) - 1 - n)) > 0;)
		n += (size_t)r;
	report[n] = 0;
	zoo_fail_report(report);
}

/* CHECK(tag, condition, printf-like explanation): records a failure, returns the condition. */
#define CHECK(tag, cond, ...) ((cond) ? 1 : (zoo_failf((tag), __VA_ARGS__), 0))

/* Print the verdict line; returns the exit code. */
static inline int zoo_finish(const char *pass_info)
{
	char line[sizeof(zoo_failbuf) + 64];
	int n;
	if (zoo_nfail) {
		for (size_t i = 0; i < zoo_faillen; i++)   /* keep it one line */
			if (zoo_failbuf[i] == '\n' || zoo_failbuf[i] == '\r')
				zoo_failbuf[i] = ' ';
		n = snprintf(line, sizeof(line), "FAIL: %.*s\n", (int)zoo_faillen, zoo_failbuf);
	} else if (pass_info && *pass_info) {
		n = snprintf(line, sizeof(line), "PASS %s\n", pass_info);
	} else {
		n = snprintf(line, sizeof(line), "PASS\n");
	}
	if (n > (int)sizeof(line) - 1) {
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	zoo_write_all(1, line, (size_t)n);
	if (zoo_own_tmpdir[0])
		nftw(zoo_own_tmpdir, zoo_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return zoo_nfail ? 1 : 0;
}

/* ---- generic snapshot: mappings ------------------------------------------------------ */

#define ZOO_MAX_MAPS 1024
struct zoo_map {
	unsigned long start, end, off, ino;
	char perms[5], dev[12];
	char path[200];
};
struct zoo_maps {
	int n;
	struct zoo_map m[ZOO_MAX_MAPS];
};
static struct zoo_maps zoo_maps_before ZOO_UNUSED, zoo_maps_after ZOO_UNUSED;
static char zoo_maps_buf[4 << 20] ZOO_UNUSED; /* shared-anon-many: 22,000 lines */

static inline int zoo_map_is_stack(const struct zoo_map *m)
{
	return strcmp(m->path, "[stack]") == 0;
}

/*
 * Parse /proc/self/maps; adjacent entries that the kernel could have kept as one region
 * (same permissions, same backing, contiguous file offset) are merged, so a restore that
 * merges or splits VMAs differently is not a difference the program can see.
 */
static inline int zoo_read_maps(struct zoo_maps *out)
{
	ssize_t len = zoo_read_file("/proc/self/maps", zoo_maps_buf, sizeof(zoo_maps_buf));
	if (len < 0)
		return -1;
	/* a snapshot cut short would compare a different cut after the restore: refuse it */
	if ((size_t)len + 1 == sizeof(zoo_maps_buf)) {
		errno = EFBIG;
		return -1;
	}
	out->n = 0;
	for (char *line = zoo_maps_buf; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		struct zoo_map m;
		int pos = 0;
		memset(&m, 0, sizeof(m));
		if (sscanf(line, "%lx-%lx %4s %lx %11s %lu %n", &m.start, &m.end, m.perms, &m.off, m.dev,
			   &m.ino, &pos) >= 6) {
			snprintf(m.path, sizeof(m.path), "%s", pos ? line + pos : "");
			/* the kernel's area for stepping over probed instructions: made at a probe's
			 * hit, not the program's (tests/zoo/uprobes.c) */
			if (!strcmp(m.path, "[uprobes]")) {
				line = nl ? nl + 1 : NULL;
				continue;
			}
			/* a shared anonymous mapping, a memfd or memfd_secret() memory is a fresh
			 * inode after a restore */
			if (strncmp(m.path, "/dev/zero", 9) == 0 || strncmp(m.path, "/SYSV", 5) == 0 ||
			    strncmp(m.path, "/memfd:", 7) == 0 || strncmp(m.path, "/secretmem ", 11) == 0)
				m.ino = 0;
			/* a packet socket's rings: the socket is a new one after a restore */
			if (strncmp(m.path, "socket:[", 8) == 0) {
				m.ino = 0;
				strcpy(m.path, "socket:");
			}
			struct zoo_map *p = out->n ? &out->m[out->n - 1] : NULL;
			if (p && p->end == m.start && !strcmp(p->perms, m.perms) && !strcmp(p->dev, m.dev) &&
			    p->ino == m.ino && !strcmp(p->path, m.path) &&
			    (m.ino == 0 || p->off + (p->end - p->start) == m.off)) {
				p->end = m.end;
			} else if (out->n < ZOO_MAX_MAPS) {
				out->m[out->n++] = m;
			} else {
				errno = EFBIG;
				return -1;
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

static inline void zoo_fmt_map(char *buf, size_t len, const struct zoo_map *m)
{
	snprintf(buf, len, "%lx-%lx %s %lx %s %lu %s", m->start, m->end, m->perms, m->off, m->dev, m->ino,
		 m->path);
}

/* Compare the current mappings with the snapshot; reports under tag "maps". */
static inline void zoo_compare_maps(void)
{
	char a[300], b[300];
	if (zoo_read_maps(&zoo_maps_after) < 0) {
		zoo_failf("maps", "cannot read /proc/self/maps: %s", strerror(errno));
		return;
	}
	const struct zoo_maps *x = &zoo_maps_before, *y = &zoo_maps_after;
	int i = 0, j = 0;
	while (i < x->n || j < y->n) {
		const struct zoo_map *p = i < x->n ? &x->m[i] : NULL, *q = j < y->n ? &y->m[j] : NULL;
		if (p && q) {
			int same = !strcmp(p->perms, q->perms) && p->off == q->off && !strcmp(p->dev, q->dev) &&
				   p->ino == q->ino && !strcmp(p->path, q->path) && p->end == q->end &&
				   (p->start == q->start || zoo_map_is_stack(p)); /* the stack may grow */
			if (same) {
				i++, j++;
				continue;
			}
		}
		if (p)
			zoo_fmt_map(a, sizeof(a), p);
		if (q)
			zoo_fmt_map(b, sizeof(b), q);
		if (p && q && p->start < q->start)
			zoo_failf("maps", "mapping '%s' is gone or changed (next now: '%s')", a, b);
		else if (p && q && p->start > q->start)
			zoo_failf("maps", "new or changed mapping '%s' (expected next: '%s')", b, a);
		else if (p && q)
			zoo_failf("maps", "mapping was '%s', is '%s'", a, b);
		else if (p)
			zoo_failf("maps", "mapping '%s' is gone", a);
		else
			zoo_failf("maps", "new mapping '%s'", b);
		return;
	}
}

/* ---- generic snapshot: file descriptors ---------------------------------------------- */

#define ZOO_MAX_FDS 256
#define ZOO_TARGET_MAX 200
struct zoo_fd {
	int fd, fdflags, flflags;
	char target[ZOO_TARGET_MAX];
};
struct zoo_fds {
	int n;
	struct zoo_fd f[ZOO_MAX_FDS];
};
static struct zoo_fds zoo_fds_before ZOO_UNUSED, zoo_fds_after ZOO_UNUSED;

struct zoo_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* pipe:[1234] -> pipe: a restored pipe is a new pipe, the number means nothing. */
static inline void zoo_norm_target(char *t)
{
	static const char *const anon[] = { "pipe:[", "socket:[" };
	for (unsigned i = 0; i < sizeof(anon) / sizeof(anon[0]); i++) {
		size_t l = strlen(anon[i]);
		if (!strncmp(t, anon[i], l))
			t[l - 2] = 0;
	}
	/* a namespace the process is in: "KIND:[own]", the same after a restore into new ones of
	 * its kind (a container's); another one: "KIND:[other]" (a restored namespace is a new
	 * one too: the program checks which it is) */
	char ns[64], own_ns[64] = "";
	char *colon = strstr(t, ":[");
	if (colon && colon - t < 24 && t[strlen(t) - 1] == ']') {
		snprintf(ns, sizeof(ns), "/proc/self/ns/%.*s", (int)(colon - t), t);
		ssize_t l = readlink(ns, own_ns, sizeof(own_ns) - 1);
		own_ns[l > 0 ? l : 0] = 0;
		if (l > 0) {
			strcpy(colon + 2, strcmp(own_ns, t) ? "other]" : "own]");
			return;
		}
	}
	/* /proc/PID...: by the pid in the process's own namespace (the last of its NSpid), not by
	 * the pid /proc says, which is the host's when the program keeps the host's /proc */
	char *end, path[64], head[32];
	long pid = strncmp(t, "/proc/", 6) ? 0 : strtol(t + 6, &end, 10);
	pid_t own;
	if (pid <= 0 || (*end && *end != '/'))
		return;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((own = zoo_status_nspid(path)) < 0)
		return;
	size_t hl = (size_t)snprintf(head, sizeof(head), "/proc/%d", own), rl = strlen(end);
	if (hl + rl < ZOO_TARGET_MAX) {
		memmove(t + hl, end, rl + 1);
		memcpy(t, head, hl);
	}
}

/* List the open fds with getdents64 (no malloc, unlike opendir). */
static inline int zoo_read_fds(struct zoo_fds *out)
{
	static char buf[16384];
	int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	out->n = 0;
	for (;;) {
		long n = syscall(SYS_getdents64, dfd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (long off = 0; off < n;) {
			struct zoo_dirent64 *d = (struct zoo_dirent64 *)(buf + off);
			off += d->d_reclen;
			if (d->d_name[0] == '.')
				continue;
			int fd = atoi(d->d_name);
			if (fd == dfd || out->n >= ZOO_MAX_FDS)
				continue;
			struct zoo_fd *f = &out->f[out->n++];
			char path[64];
			memset(f, 0, sizeof(*f));
			f->fd = fd;
			f->fdflags = fcntl(fd, F_GETFD);
			f->flflags = fcntl(fd, F_GETFL);
			snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
			ssize_t l = readlink(path, f->target, sizeof(f->target) - 1);
			f->target[l > 0 ? l : 0] = 0;
			zoo_norm_target(f->target);
		}
	}
	close(dfd);
	/* sort by fd number (insertion sort, small n) */
	for (int i = 1; i < out->n; i++)
		for (int j = i; j > 0 && out->f[j - 1].fd > out->f[j].fd; j--) {
			struct zoo_fd t = out->f[j];
			out->f[j] = out->f[j - 1];
			out->f[j - 1] = t;
		}
	return 0;
}

/* Compare the open fds (numbers, targets, fd flags, file status flags); tag "fdset". */
static inline void zoo_compare_fds(void)
{
	if (zoo_read_fds(&zoo_fds_after) < 0) {
		zoo_failf("fdset", "cannot list /proc/self/fd: %s", strerror(errno));
		return;
	}
	const struct zoo_fds *x = &zoo_fds_before, *y = &zoo_fds_after;
	int i = 0, j = 0;
	while (i < x->n || j < y->n) {
		const struct zoo_fd *p = i < x->n ? &x->f[i] : NULL, *q = j < y->n ? &y->f[j] : NULL;
		if (p && q && p->fd == q->fd) {
			if (strcmp(p->target, q->target) || p->fdflags != q->fdflags || p->flflags != q->flflags) {
				zoo_failf("fdset", "fd %d was '%s' fd-flags %#x fl-flags %#o, is '%s' %#x %#o", p->fd,
					  p->target, p->fdflags, p->flflags, q->target, q->fdflags, q->flflags);
				return;
			}
			i++, j++;
		} else if (p && (!q || p->fd < q->fd)) {
			zoo_failf("fdset", "fd %d ('%s') is gone", p->fd, p->target);
			return;
		} else {
			zoo_failf("fdset", "unexpected fd %d ('%s')", q->fd, q->target);
			return;
		}
	}
}

/* ---- pids as /proc names them ------------------------------------------------------
 *
 * /proc may belong to another PID namespace than the program's own: the init of a PID
 * namespace may keep the host's /proc (tests/run-zoo.sh --container=pidns). There,
 * /proc/PID and /proc/self/task/TID name other processes than the ones getpid(), fork() and
 * gettid() return, while /proc/self and /proc/thread-self are always right. A program reads
 * its own state through those, and another process's or thread's through these helpers.
 */

/* Process pid of the program's namespace as /proc names it (its pidfd's fdinfo says), or -1. */
static inline pid_t zoo_proc_pid(pid_t pid)
{
	char path[64], text[512];
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	ssize_t n = zoo_read_file(path, text, sizeof(text));
	close(fd);
	const char *p = n > 0 ? strstr(text, "\nPid:") : NULL;
	return p ? (pid_t)strtol(p + 5, NULL, 10) : -1;
}

/*
 * Thread tid of process pid (as gettid() gave it; pid of the program's namespace, 0: this
 * process) as /proc/PID/task names it, or -1: the thread whose status ends its NSpid line
 * with tid (its id in its own, the program's, namespace).
 */
static inline pid_t zoo_proc_tid_of(pid_t pid, pid_t tid)
{
	char buf[4096], dir[48] = "/proc/self/task", path[96];
	pid_t found = -1;
	if (pid) {
		pid_t proc_pid = zoo_proc_pid(pid);
		if (proc_pid < 0)
			return -1;
		snprintf(dir, sizeof(dir), "/proc/%d/task", proc_pid);
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long n;
	while (dfd >= 0 && found < 0 && (n = syscall(SYS_getdents64, dfd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n && found < 0;) {
			struct zoo_dirent64 *d = (struct zoo_dirent64 *)(buf + off);
			const char *name = d->d_name;
			off += d->d_reclen;
			if (name[0] < '1' || name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "%s/%s/status", dir, name);
			if (zoo_status_nspid(path) == tid)
				found = atoi(name);
		}
	}
	if (dfd >= 0)
		close(dfd);
	return found;
}

/* Thread tid of this process (as gettid() gave it) as /proc/self/task names it, or -1. */
static inline pid_t zoo_proc_tid(pid_t tid)
{
	return zoo_proc_tid_of(0, tid);
}

/* ---- life cycle --------------------------------------------------------------------- */

static inline void zoo_term_handler(int sig, siginfo_t *si, void *uc)
{
	int saved_errno = errno;
	(void)sig;
	(void)si;
	zoo_term = 1;
	if (zoo_term_hook)
		zoo_term_hook();
	if (zoo_corr && zoo_corr->in_handler)
		zoo_corr->fn((ucontext_t *)uc);
	errno = saved_errno;
}

static inline void zoo_install_term_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = zoo_term_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0)
		zoo_die("sigaction(SIGTERM): %s", strerror(errno));
}

/*
 * Parse --corrupt[=TAG] and --list-corruptions, install the SIGTERM handler. Unknown
 * arguments are left to the program.
 */
static inline void zoo_init(int argc, char **argv, const struct zoo_corruption *corr, int ncorr)
{
	const char *p = strrchr(argv[0], '/');
	zoo_prog = p ? p + 1 : argv[0];
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--list-corruptions")) {
			for (int k = 0; k < ncorr; k++) {
				zoo_write_all(1, corr[k].tag, strlen(corr[k].tag));
				zoo_write_all(1, "\n", 1);
			}
			exit(0);
		}
		if (!strcmp(argv[i], "--corrupt")) {
			if (ncorr < 1)
				zoo_die("no corruptions defined");
			zoo_corr = &corr[0];
		} else if (!strncmp(argv[i], "--corrupt=", 10)) {
			zoo_corr = NULL;
			for (int k = 0; k < ncorr; k++)
				if (!strcmp(corr[k].tag, argv[i] + 10))
					zoo_corr = &corr[k];
			if (!zoo_corr)
				zoo_die("unknown corruption '%s'", argv[i] + 10);
		}
	}
	zoo_install_term_handler();
}

/* Snapshot, pid file, "READY". Call when all state is set up. */
static inline void zoo_ready(void)
{
	const char *pidfile = getenv("ZOO_PIDFILE");
	char buf[64], tmp[4200];
	int n;

	if (zoo_check_fds && zoo_read_fds(&zoo_fds_before) < 0)
		zoo_die("cannot list /proc/self/fd: %s", strerror(errno));
	if (pidfile && *pidfile) {
		n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
		snprintf(tmp, sizeof(tmp), "%s.tmp", pidfile);
		if (zoo_write_file(tmp, buf, (size_t)n) < 0 || rename(tmp, pidfile) < 0)
			zoo_die("cannot write pid file %s: %s", pidfile, strerror(errno));
	}
	/* last, so that the snapshot includes everything the steps above may have touched */
	if (zoo_check_maps && zoo_read_maps(&zoo_maps_before) < 0)
		zoo_die("cannot read /proc/self/maps: %s", strerror(errno));
	zoo_write_all(1, "READY\n", 6);
}

/* After SIGTERM: damage the selected piece of state, then compare the generic snapshot. */
static inline void zoo_begin_verify(void)
{
	if (zoo_corr && !zoo_corr->in_handler)
		zoo_corr->fn(NULL);
	if (zoo_check_maps)
		zoo_compare_maps();
	if (zoo_check_fds)
		zoo_compare_fds();
}

/* Sleep until SIGTERM, then zoo_begin_verify(). */
static inline void zoo_wait(void)
{
	while (!zoo_term) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	zoo_begin_verify();
}

/* Helpers for corruptions and checks that need /proc/self/maps. */
static inline int zoo_find_map(const char *name, unsigned long *start, unsigned long *end, char *perms)
{
	struct zoo_maps *m = &zoo_maps_after;
	if (zoo_read_maps(m) < 0)
		return -1;
	for (int i = 0; i < m->n; i++)
		if (!strcmp(m->m[i].path, name)) {
			*start = m->m[i].start;
			*end = m->m[i].end;
			if (perms)
				strcpy(perms, m->m[i].perms);
			return 0;
		}
	return -1;
}

/* The mapping containing addr: start, end, perms. */
static inline int zoo_map_of(unsigned long addr, unsigned long *start, unsigned long *end, char *perms)
{
	struct zoo_maps *m = &zoo_maps_after;
	if (zoo_read_maps(m) < 0)
		return -1;
	for (int i = 0; i < m->n; i++)
		if (m->m[i].start <= addr && addr < m->m[i].end) {
			*start = m->m[i].start;
			*end = m->m[i].end;
			if (perms)
				strcpy(perms, m->m[i].perms);
			return 0;
		}
	return -1;
}

#endif
