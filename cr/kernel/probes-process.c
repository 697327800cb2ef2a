/*
 * Kernel features for making and describing processes: the mm layout (PR_SET_MM_MAP), a
 * chosen pid (clone3 set_tid), comparing and copying another process's files (kcmp,
 * pidfd_getfd), time namespaces, the vDSO layout, the capabilities stasis runs with, and
 * the cgroup v2 hierarchy. Probes that change process state run in a throwaway child.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/kcmp.h>

#include "compat/kernel-abi.h"
#include "kernel/probe.h"
#include "util.h"

static bool probe_mm_map_size(struct probe_result *r)
{
	unsigned int size = 0;

	if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, (unsigned long)&size, 0, 0) < 0)
		return probe_set(r, false,
				 "PR_SET_MM_MAP_SIZE: %m (kernel without CONFIG_CHECKPOINT_RESTORE?)");
	if (size != sizeof(struct prctl_mm_map))
		return probe_set(r, false, "struct prctl_mm_map is %u bytes here, stasis uses %zu",
				 size, sizeof(struct prctl_mm_map));
	return true;
}

/* Fields 26-28 and 45-51 of /proc/self/stat: the mm layout PR_SET_MM_MAP sets. */
static int read_mm_map(struct probe_result *r, struct prctl_mm_map *m)
{
	unsigned long long v[52] = { 0 };
	auto_free char *stat = probe_read_file(r, "/proc/self/stat");
	char *s = stat ? strrchr(stat, ')') : NULL;
	int field = 3;

	if (!s)
		return -EIO;
	for (s++; *s && field < 52; field++) {
		char *end;
		while (*s == ' ')
			s++;
		if (field == 3) { /* state: a letter */
			s++;
			continue;
		}
		v[field] = strtoull(s, &end, 10);
		if (end == s)
			return -EIO;
		s = end;
	}
	if (field < 52)
		return -EIO;
	memset(m, 0, sizeof(*m));
	m->start_code = v[26], m->end_code = v[27], m->start_stack = v[28];
	m->start_data = v[45], m->end_data = v[46], m->start_brk = v[47];
	m->arg_start = v[48], m->arg_end = v[49], m->env_start = v[50], m->env_end = v[51];
	m->brk = syscall(SYS_brk, 0);
	m->exe_fd = -1;
	return 0;
}

/*
 * In a child: sets the mm layout to what it already is. The executable stays (exe_fd -1):
 * the kernel refuses a new one while the old one is still mapped, as it is here.
 */
static bool mm_map_child(struct probe_result *r)
{
	struct prctl_mm_map m;

	if (read_mm_map(r, &m) < 0)
		return probe_set(r, false, "cannot parse /proc/self/stat");
	if (prctl(PR_SET_MM, PR_SET_MM_MAP, (unsigned long)&m, sizeof(m), 0) < 0)
		return probe_set(r, false, "PR_SET_MM_MAP: %m%s",
				 errno == EPERM ? " (not permitted for this user)" : "");
	return probe_set(r, true, "%s", "");
}

bool probe_mm_map(struct probe_result *r)
{
	if (!probe_mm_map_size(r))
		return false;
	return probe_in_child(mm_map_child, r);
}

/* A pid that no task, group or session uses right now; 0 if none was found. */
static pid_t free_pid(struct probe_result *r, unsigned attempt)
{
	auto_free char *last = probe_read_file(r, "/proc/sys/kernel/ns_last_pid");
	auto_free char *max = probe_read_file(r, "/proc/sys/kernel/pid_max");
	long lo = last ? atol(last) : 1000, hi = max ? atol(max) : 32768;

	if (hi <= 400)
		return 0;
	for (long i = 0; i < 1000; i++) {
		long pid = lo + 500 + (long)attempt * 1009 + i * 7;
		pid = 300 + pid % (hi - 300);
		if (kill(pid, 0) < 0 && errno == ESRCH && getpgid(pid) < 0 && getsid(pid) < 0)
			return pid;
	}
	return 0;
}

/* clone3 a child with a chosen pid that exits at once; -errno, or the pid it got. */
static long clone3_with_tid(pid_t want)
{
	struct clone_args args;
	pid_t tid = want;
	long ret;

	memset(&args, 0, sizeof(args));
	args.exit_signal = SIGCHLD;
	args.set_tid = (uintptr_t)&tid;
	args.set_tid_size = 1;
	fflush(NULL);
	ret = syscall(__NR_clone3, &args, CLONE_ARGS_SIZE_VER2);
	if (ret == 0)
		_exit(0);
	if (ret < 0)
		return -errno;
	probe_reap(ret);
	return ret;
}

bool probe_clone3(struct probe_result *r)
{
	for (unsigned attempt = 0; attempt < 5; attempt++) {
		pid_t want = free_pid(r, attempt);
		long got;

		if (!want)
			return probe_set(r, false, "found no free pid to try");
		got = clone3_with_tid(want);
		if (got == -EEXIST)
			continue; /* taken meanwhile: try another */
		if (got == -ENOSYS)
			return probe_set(r, false, "no clone3 system call");
		if (got == -E2BIG)
			return probe_set(r, false, "clone3 without set_tid (kernel older than 5.5)");
		if (got == -EPERM)
			return probe_set(r, false, "needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE");
		if (got < 0)
			return probe_set(r, false, "%s", strerror(-got));
		if (got != want)
			return probe_set(r, false, "asked for pid %d, got %ld", (int)want, got);
		return probe_set(r, true, "%s", "");
	}
	return probe_set(r, false, "every pid tried was taken meanwhile");
}

bool probe_kcmp(struct probe_result *r)
{
	int fds[3] = { -1, -1, -1 };
	pid_t me = getpid();
	long same, other;

	fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fds[1] = fds[0] >= 0 ? fcntl(fds[0], F_DUPFD_CLOEXEC, 0) : -1;
	fds[2] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0) {
		probe_set(r, false, "/dev/null: %m");
		goto out;
	}
	same = syscall(SYS_kcmp, me, me, KCMP_FILE, fds[0], fds[1]);
	if (same < 0) {
		probe_set(r, false, "%m%s", errno == ENOSYS ? " (kernel without CONFIG_KCMP)" : "");
		goto out;
	}
	other = syscall(SYS_kcmp, me, me, KCMP_FILE, fds[0], fds[2]);
	if (same == 0 && other > 0)
		probe_set(r, true, "%s", "");
	else
		probe_set(r, false, "wrong answers (%ld for a dup, %ld for another file)", same, other);
out:
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return r->ok;
}

bool probe_pidfd(struct probe_result *r)
{
	int pidfd, fd = -1, src;
	struct stat s1, s2;

	src = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return probe_set(r, false, "/dev/null: %m");
	pidfd = syscall(__NR_pidfd_open, getpid(), 0);
	if (pidfd < 0) {
		probe_set(r, false, "pidfd_open: %m");
		goto out;
	}
	fd = syscall(__NR_pidfd_getfd, pidfd, src, 0);
	if (fd < 0) {
		probe_set(r, false, "pidfd_getfd: %m");
		goto out;
	}
	if (fstat(fd, &s1) || fstat(src, &s2) || s1.st_ino != s2.st_ino || s1.st_dev != s2.st_dev)
		probe_set(r, false, "pidfd_getfd returned another file");
	else
		probe_set(r, true, "%s", "");
out:
	if (fd >= 0)
		close(fd);
	if (pidfd >= 0)
		close(pidfd);
	close(src);
	return r->ok;
}

/* In a child: make a time namespace and set a clock offset, as restore would. */
static bool timens_child(struct probe_result *r)
{
	int fd;

	if (unshare(CLONE_NEWTIME) < 0)
		return probe_set(r, false, "unshare(CLONE_NEWTIME): %m");
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return probe_set(r, false, "/proc/self/timens_offsets: %m");
	if (write(fd, "monotonic 0 0", 13) != 13) {
		close(fd);
		return probe_set(r, false, "timens_offsets: %m");
	}
	close(fd);
	return probe_set(r, true, "%s", "");
}

bool probe_timens(struct probe_result *r)
{
	if (access("/proc/self/ns/time", F_OK) < 0)
		return probe_set(r, false, "kernel without CONFIG_TIME_NS");
	return probe_in_child(timens_child, r);
}

/* "[vvar] 4 pages, [vvar_vclock] 2 pages, [vdso] 2 pages" from /proc/self/maps. */
bool probe_vdso(struct probe_result *r)
{
	static const char *const names[] = { "[vvar]", "[vvar_vclock]", "[vdso]", "[vsyscall]" };
	auto_free char *maps = probe_read_file(r, "/proc/self/maps");
	bool have_vdso = false;

	if (!maps)
		return probe_set(r, false, "/proc/self/maps: %m");
	r->detail[0] = 0;
	for (char *line = strtok(maps, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned long long start, end;
		char name[64] = "";

		if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %63s", &start, &end, name) < 3)
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
			if (strcmp(name, names[i]) != 0)
				continue;
			size_t used = strlen(r->detail);
			unsigned long long pages = (end - start) / PAGE_SIZE;
			snprintf(r->detail + used, sizeof(r->detail) - used, "%s%s %llu page%s",
				 used ? ", " : "", name, pages, pages == 1 ? "" : "s");
			have_vdso |= i == 2;
		}
	}
	r->ok = have_vdso;
	if (!have_vdso && !r->detail[0])
		probe_set(r, false, "no [vdso] mapping");
	return r->ok;
}

bool probe_caps(struct probe_result *r)
{
	static const struct {
		int bit;
		const char *name;
	} caps[] = { { 21, "CAP_SYS_ADMIN" }, { 19, "CAP_SYS_PTRACE" },
		     { 24, "CAP_SYS_RESOURCE" }, { 40, "CAP_CHECKPOINT_RESTORE" } };
	auto_free char *status = probe_read_file(r, "/proc/self/status");
	char *line = status ? strstr(status, "\nCapEff:") : NULL;
	unsigned long long eff;
	char missing[128] = "";

	if (!line || sscanf(line, "\nCapEff: %llx", &eff) != 1)
		return probe_set(r, false, "cannot read CapEff from /proc/self/status");
	for (size_t i = 0; i < ARRAY_SIZE(caps); i++) {
		size_t used = strlen(missing);
		if (!(eff & (1ULL << caps[i].bit)))
			snprintf(missing + used, sizeof(missing) - used, "%s%s", used ? ", " : "",
				 caps[i].name);
	}
	if (missing[0])
		return probe_set(r, false, "missing %s", missing);
	return probe_set(r, true, "%s", "");
}

/* The unified hierarchy, from this process's mounts: alone, or beside v1 hierarchies. */
bool probe_cgroup2(struct probe_result *r)
{
	auto_free char *mounts = probe_read_file(r, "/proc/self/mountinfo");
	char where[128] = "";
	bool v1 = false;

	if (!mounts)
		return probe_set(r, false, "/proc/self/mountinfo: %m");
	for (char *line = strtok(mounts, "\n"); line; line = strtok(NULL, "\n")) {
		char point[128], fstype[32];
		char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %*s %127s", point) != 1 ||
		    sscanf(sep, " - %31s", fstype) != 1)
			continue;
		if (!strcmp(fstype, "cgroup2") && !where[0])
			snprintf(where, sizeof(where), "%s", point);
		v1 |= !strcmp(fstype, "cgroup");
	}
	if (!where[0])
		return probe_set(r, false, "no cgroup2 mount%s", v1 ? " (only v1 hierarchies)" : "");
	return probe_set(r, true, "at %s%s", where, v1 ? ", beside v1 hierarchies" : "");
}
