/*
 * fanotify: two fanotify groups and their marks.
 *   fd 30: FAN_CLASS_NOTIF|FAN_NONBLOCK, events opened O_RDONLY|O_LARGEFILE; marks: file F
 *   (FAN_MODIFY|FAN_CLOSE_WRITE), directory D (FAN_OPEN|FAN_EVENT_ON_CHILD|FAN_ONDIR), file G
 *   with only an ignored mask (FAN_MODIFY, surviving modification), symlink L's own mark
 *   (FAN_MARK_DONT_FOLLOW, FAN_OPEN), the mount of the zoo's directory (FAN_CLOSE_NOWRITE).
 *   fd 31: FAN_CLASS_NOTIF|FAN_REPORT_DFID_NAME, a mark on the whole filesystem (FAN_CREATE|
 *   FAN_ONDIR) and an evictable mark on D (FAN_DELETE).
 * After restore and SIGTERM: each group's fdinfo lists the same flags and marks (same inodes,
 * masks and mark flags, the mount by its mount point: a container's mounts come back with new
 * ids), F_GETFL is the same, and a write to F comes out of fd 30 as
 * a FAN_MODIFY event on F.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/fanotify.h>

static char f_path[4100], g_path[4100], d_path[4100], l_path[4100];
static char info_before[2][4096];

static void c_marks(ucontext_t *u)
{
	(void)u;
	fanotify_mark(30, FAN_MARK_REMOVE, FAN_MODIFY | FAN_CLOSE_WRITE, AT_FDCWD, f_path);
}
static void c_group(ucontext_t *u)
{
	(void)u;
	int fd = fanotify_init(FAN_CLASS_NOTIF, O_RDONLY);
	dup2(fd, 31);
	close(fd);
}
static const struct zoo_corruption corruptions[] = {
	{ "marks", c_marks, 0 },
	{ "group", c_group, 0 },
};

/*
 * Where mount mnt_id (hex, as fdinfo says it) is mounted, from /proc/self/mountinfo, in buf:
 * a mount mark names its mount by its id, which a mount made again (a container's restored
 * mount namespace) does not keep.
 */
static const char *mount_point(const char *mnt_id, char *buf, size_t len)
{
	static char mountinfo[1 << 20];
	unsigned long id = strtoul(mnt_id, NULL, 16);
	snprintf(buf, len, "?");
	if (zoo_read_file("/proc/self/mountinfo", mountinfo, sizeof(mountinfo)) < 0)
		return buf;
	for (char *l = mountinfo; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		char point[4100];
		unsigned long m;
		if (sscanf(l, "%lu %*u %*u:%*u %*s %4099s", &m, point) == 2 && m == id) {
			snprintf(buf, len, "%s", point);
			break;
		}
	}
	return buf;
}

/* The "fanotify ..." lines of fd's fdinfo, a mount mark's mnt_id as the mount's mount point. */
static void marks_of(int fd, char *out, size_t len)
{
	char path[64], info[4096];
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	zoo_read_file(path, info, sizeof(info));
	out[0] = 0;
	for (char *l = strstr(info, "fanotify "); l && n + 1 < len; l = strstr(l + 1, "\nfanotify ")) {
		if (*l == '\n')
			l++;
		char *eol = strchr(l, '\n'), where[4100];
		size_t k = eol ? (size_t)(eol - l + 1) : strlen(l);
		if (!strncmp(l, "fanotify mnt_id:", 16)) {
			char *rest = l + 16 + strspn(l + 16, "0123456789abcdef");
			int w = snprintf(out + n, len - n, "fanotify mount:%s%.*s",
					 mount_point(l + 16, where, sizeof(where)),
					 (int)(k - (size_t)(rest - l)), rest);
			if (w < 0 || (size_t)w >= len - n)
				break;
			n += (size_t)w;
			continue;
		}
		if (n + k >= len)
			break;
		memcpy(out + n, l, k);
		n += k;
		out[n] = 0;
	}
}

static void mark(int fd, unsigned flags, uint64_t mask, const char *path)
{
	if (fanotify_mark(fd, FAN_MARK_ADD | flags, mask, AT_FDCWD, path))
		zoo_die("fanotify_mark %s: %s", path, strerror(errno));
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	const char *dir = zoo_tmpdir();
	snprintf(f_path, sizeof(f_path), "%s/F", dir);
	snprintf(g_path, sizeof(g_path), "%s/G", dir);
	snprintf(d_path, sizeof(d_path), "%s/D", dir);
	snprintf(l_path, sizeof(l_path), "%s/L", dir);
	if (zoo_write_file(f_path, "f", 1) || zoo_write_file(g_path, "g", 1) || mkdir(d_path, 0755) ||
	    symlink("F", l_path))
		zoo_die("files in %s: %s", dir, strerror(errno));
	int a = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE);
	int b = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME, O_RDONLY);
	if (a < 0 || b < 0 || dup2(a, 30) != 30 || dup2(b, 31) != 31)
		zoo_die("fanotify_init: %s", strerror(errno));
	close(a);
	close(b);
	mark(30, 0, FAN_MODIFY | FAN_CLOSE_WRITE, f_path);
	mark(30, 0, FAN_OPEN | FAN_EVENT_ON_CHILD | FAN_ONDIR, d_path);
	mark(30, FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_MODIFY, g_path);
	mark(30, FAN_MARK_DONT_FOLLOW, FAN_OPEN, l_path);
	mark(30, FAN_MARK_MOUNT, FAN_CLOSE_NOWRITE, dir);
	mark(31, FAN_MARK_FILESYSTEM, FAN_CREATE | FAN_ONDIR, dir);
	mark(31, FAN_MARK_EVICTABLE, FAN_DELETE, d_path);
	marks_of(30, info_before[0], sizeof(info_before[0]));
	marks_of(31, info_before[1], sizeof(info_before[1]));
	int fl30 = fcntl(30, F_GETFL), fl31 = fcntl(31, F_GETFL);
	zoo_ready();
	zoo_wait();

	char now[4096];
	marks_of(30, now, sizeof(now));
	CHECK("marks", !strcmp(now, info_before[0]), "fd 30's marks were '%s', are '%s'", info_before[0], now);
	marks_of(31, now, sizeof(now));
	CHECK("group", !strcmp(now, info_before[1]), "fd 31's group was '%s', is '%s'", info_before[1], now);
	CHECK("group", fcntl(30, F_GETFL) == fl30 && fcntl(31, F_GETFL) == fl31, "F_GETFL %#o %#o, was %#o %#o",
	      fcntl(30, F_GETFL), fcntl(31, F_GETFL), fl30, fl31);
	/* drain, then a write to F must come out as FAN_MODIFY of F */
	char buf[8192] __attribute__((aligned(8)));
	while (read(30, buf, sizeof(buf)) > 0)
		;
	int f = open(f_path, O_WRONLY | O_APPEND);
	if (write(f, "x", 1) != 1)
		zoo_die("write F: %s", strerror(errno));
	int seen = 0;
	ssize_t n = read(30, buf, sizeof(buf));
	for (struct fanotify_event_metadata *m = (void *)buf; n > 0 && FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
		char self[64], target[4200];
		snprintf(self, sizeof(self), "/proc/self/fd/%d", m->fd);
		ssize_t l = m->fd >= 0 ? readlink(self, target, sizeof(target) - 1) : -1;
		target[l > 0 ? l : 0] = 0;
		if ((m->mask & FAN_MODIFY) && !strcmp(target, f_path))
			seen = 1;
		if (m->fd >= 0)
			close(m->fd);
	}
	close(f);
	CHECK("marks", seen, "a write to F gave no FAN_MODIFY event on fd 30");
	return zoo_finish("2 fanotify groups, 7 marks");
}
