#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "addr-ranges.h"
#include "log.h"
#include "proc.h"
#include "util.h"

static int parse_vma_line(const char *line, struct proc_vma *v)
{
	char perms[8];
	unsigned maj, min;
	unsigned long long ino;
	int pos = 0;

	memset(v, 0, sizeof(*v));
	if (sscanf(line, "%lx-%lx %7s %lx %x:%x %llu %n", &v->start, &v->end, perms, &v->pgoff, &maj,
		   &min, &ino, &pos) < 7)
		return -EINVAL;
	v->dev = makedev(maj, min);
	v->ino = ino;
	v->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
		  (perms[2] == 'x' ? PROT_EXEC : 0);
	v->shared = perms[3] == 's';
	size_t len = strcspn(line + pos, "\n");
	snprintf(v->path, sizeof(v->path), "%.*s", (int)len, line + pos);
	v->name_mangled = len >= sizeof(v->path) || strchr(v->path, '\\');
	return 0;
}

void proc_path(char *buf, size_t len, pid_t pid, const char *name)
{
	if (pid == PROC_SELF)
		snprintf(buf, len, "/proc/self/%s", name);
	else
		snprintf(buf, len, "/proc/%d/%s", pid, name);
}

/* The mappings listed in /proc/PID/name: smaps (with VmFlags) or maps (without). */
static int read_vma_file(pid_t pid, const char *name, struct proc_vmas *out)
{
	char path[64], *line = NULL;
	size_t cap = 0, alloc = 0;
	FILE *f;
	int ret = 0;

	out->v = NULL;
	out->n = 0;
	proc_path(path, sizeof(path), pid, name);
	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		pr_perror("dump pid %d: cannot open %s", pid, path);
		return ret;
	}
	/* (stdio's buffer for a /proc file is its st_blksize, 1 KiB: a read per 1 KiB of smaps) */
	setvbuf(f, NULL, _IOFBF, 64 * 1024);
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, "VmFlags:", 8) == 0) {
			if (out->n && strstr(line, " gd"))
				out->v[out->n - 1].growsdown = true;
			if (out->n)
				snprintf(out->v[out->n - 1].vmflags, sizeof(out->v[0].vmflags), "%s", line + 8);
			continue;
		}
		/* Header lines start with a hex address followed by '-'. */
		if (!strchr(line, '-') || strchr(line, ':') < strchr(line, '-'))
			continue;
		if (out->n == alloc) {
			alloc = alloc ? alloc * 2 : 64;
			struct proc_vma *nv = xreallocarray(out->v, alloc, sizeof(*nv));
			if (!nv) {
				ret = -ENOMEM;
				break;
			}
			out->v = nv;
		}
		if (parse_vma_line(line, &out->v[out->n]) == 0)
			out->n++;
	}
	if (!ret && !feof(f)) { /* getline could not grow its line */
		ret = -errno;
		pr_perror("dump pid %d: cannot read %s", pid, path);
	}
	free(line);
	fclose(f);
	if (ret)
		proc_vmas_free(out);
	return ret;
}

int proc_read_vmas(pid_t pid, struct proc_vmas *out)
{
	return read_vma_file(pid, "smaps", out);
}

int proc_read_layout(pid_t pid, struct proc_vmas *out)
{
	return read_vma_file(pid, "maps", out);
}

static uint64_t vma_end(const void *v, size_t i)
{
	return ((const struct proc_vma *)v)[i].end;
}

size_t proc_vma_index(const struct proc_vmas *l, uint64_t addr)
{
	return range_index(l->v, l->n, addr, NULL, vma_end);
}

const struct proc_vma *proc_vma_at(const struct proc_vmas *l, uint64_t start)
{
	size_t i = proc_vma_index(l, start);

	return i < l->n && l->v[i].start == start ? &l->v[i] : NULL;
}

void proc_vdso_range(const struct proc_vmas *l, uint64_t *start, uint64_t *end)
{
	*start = *end = 0;
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].path, "[vdso]")) {
			*start = l->v[i].start;
			*end = l->v[i].end;
		}
}

void proc_vmas_free(struct proc_vmas *vmas)
{
	free(vmas->v);
	vmas->v = NULL;
	vmas->n = 0;
}

int proc_read_stat(pid_t pid, struct proc_stat *st)
{
	char path[64];
	auto_free char *buf = NULL;
	char *p;
	unsigned long long f[64] = { 0 };
	int i;

	proc_path(path, sizeof(path), pid, "stat");
	buf = read_proc_record(path);
	if (!buf) {
		if (errno == ENOMEM)
			return -ENOMEM;
		if (errno != ENOENT && errno != ESRCH) /* gone: the caller says whether that is wrong */
			pr_perror("pid %d: cannot read %s", pid, path);
		return -ESRCH;
	}
	p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
	if (!p || p[1] != ' ') {
		pr_err("pid %d: %s cannot be parsed", pid, path);
		return -EINVAL;
	}
	st->state = p[2];
	p += 3;
	/* Field 4 onwards: f[4] is ppid. */
	for (i = 4; i < 64 && *p; i++) {
		f[i] = strtoull(p, &p, 10);
		while (*p == ' ')
			p++;
	}
	if (i < 53) {
		pr_err("pid %d: short %s (%d fields)", pid, path, i);
		return -EINVAL;
	}
	st->ppid = f[4];
	st->pgid = f[5];
	st->sid = f[6];
	st->tty_nr = f[7];
	st->flags = f[9];
	st->start_code = f[26];
	st->end_code = f[27];
	st->start_stack = f[28];
	st->start_data = f[45];
	st->end_data = f[46];
	st->start_brk = f[47];
	st->arg_start = f[48];
	st->arg_end = f[49];
	st->env_start = f[50];
	st->env_end = f[51];
	st->exit_code = f[52];
	st->exit_signal = f[38];
	return 0;
}

int proc_status_field(pid_t pid, const char *name, int base, uint64_t *val)
{
	char path[64];
	auto_free char *buf = NULL;
	size_t nlen = strlen(name);

	proc_path(path, sizeof(path), pid, "status");
	buf = read_proc_record(path);
	if (!buf)
		return errno == ENOMEM ? -ENOMEM : -ESRCH;
	for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, name, nlen) == 0 && l[nlen] == ':') {
			*val = strtoull(l + nlen + 1, NULL, base);
			return 0;
		}
	}
	return -ENOENT;
}

int proc_nspids(pid_t pid, uint32_t **pids, size_t *n)
{
	char path[64];
	auto_free char *buf = NULL;
	char *l;

	*pids = NULL;
	*n = 0;
	proc_path(path, sizeof(path), pid, "status");
	buf = read_file_at(AT_FDCWD, path, NULL);
	if (!buf && errno == ENOMEM)
		return -ENOMEM;
	if (!buf)
		return -ESRCH; /* (gone: the caller says what that means; a restore walking its new
				* tree meets helpers that just died) */
	l = strstr(buf, "\nNSpid:");
	if (!l) {
		pr_err("pid %d: no NSpid line in %s", pid, path);
		return -ESRCH;
	}
	l += strlen("\nNSpid:");
	for (;;) {
		char *end;
		unsigned long v = strtoul(l, &end, 10);
		if (end == l || *n >= 32)
			break;
		uint32_t *more = xreallocarray(*pids, *n + 1, sizeof(**pids));
		if (!more)
			return -ENOMEM;
		*pids = more;
		(*pids)[(*n)++] = v;
		l = end;
	}
	if (!*n) {
		pr_err("dump pid %d: no pid in the NSpid line of %s", pid, path);
		return -EINVAL;
	}
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static int list_numbers(const char *path, int **out, size_t *n)
{
	struct dirent *de;
	size_t alloc = 0;
	DIR *d;

	*out = NULL;
	*n = 0;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		if (*n == alloc) {
			alloc = alloc ? alloc * 2 : 16;
			int *grown = xreallocarray(*out, alloc, sizeof(int));
			if (!grown) {
				closedir(d);
				return -ENOMEM;
			}
			*out = grown;
		}
		(*out)[(*n)++] = atoi(de->d_name);
	}
	closedir(d);
	if (*n) /* an empty directory (a kernel thread's fds) leaves *out NULL */
		qsort(*out, *n, sizeof(int), cmp_int);
	return 0;
}

bool proc_numbers_hold(const int *list, size_t n, int x)
{
	return n && bsearch(&x, list, n, sizeof(*list), cmp_int);
}

int proc_list_numbers(pid_t pid, const char *dir, int **out, size_t *n)
{
	char path[64];

	proc_path(path, sizeof(path), pid, dir);
	return list_numbers(path, out, n);
}

int proc_list_pids(int **out, size_t *n)
{
	return list_numbers("/proc", out, n);
}

void proc_sort_numbers(int *list, size_t n)
{
	qsort(list, n, sizeof(*list), cmp_int);
}

/* pid's group and session ids, read into a buffer of its own (no allocation); false: gone. */
static bool stat_ids(pid_t pid, int *pgid, int *sid)
{
	char path[64], buf[512];
	ssize_t len;
	int fd;

	proc_path(path, sizeof(path), pid, "stat");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[len > 0 ? len : 0] = 0;
	char *p = strrchr(buf, ')'); /* (comm, at most 16 bytes, may hold spaces and parentheses) */
	return p && sscanf(p + 1, " %*c %*d %d %d", pgid, sid) == 2;
}

bool proc_find_id_holder(const int *ids, size_t n, pid_t *holder, int *id, bool *session)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	bool found = false;

	while (d && !found && (de = readdir(d))) {
		pid_t pid = atoi(de->d_name);
		int pgid, sid;
		/* (one of them: a zombie of a tree killed, say) */
		if (pid <= 0 || proc_numbers_hold(ids, n, pid) || !stat_ids(pid, &pgid, &sid))
			continue;
		if ((found = proc_numbers_hold(ids, n, sid) || proc_numbers_hold(ids, n, pgid))) {
			*holder = pid;
			*session = proc_numbers_hold(ids, n, sid);
			*id = *session ? sid : pgid;
		}
	}
	if (d)
		closedir(d);
	return found;
}

int proc_readlink(pid_t pid, const char *name, char *buf, size_t len)
{
	char path[96];
	ssize_t n;

	proc_path(path, sizeof(path), pid, name);
	n = readlink(path, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

pid_t proc_live_thread(pid_t pid)
{
	auto_free int *tids = NULL;
	size_t n;
	int err = proc_list_numbers(pid, "task", &tids, &n);

	if (err)
		return err == -ENOMEM ? err : 0;
	for (size_t i = 0; i < n; i++) {
		struct proc_stat st;
		if (tids[i] != pid && !proc_read_stat(tids[i], &st) && st.state != 'Z' && st.state != 'X')
			return tids[i];
	}
	return 0;
}

bool proc_is_io_worker(pid_t tid)
{
	struct proc_stat st;
	return !proc_read_stat(tid, &st) && st.flags & 0x10; /* PF_IO_WORKER */
}

void map_files_path(char out[static MAP_FILES_PATH_SIZE], pid_t pid, uint64_t start, uint64_t end)
{
	snprintf(out, MAP_FILES_PATH_SIZE, "/proc/%d/map_files/%lx-%lx", pid, (unsigned long)start,
		 (unsigned long)end);
}
