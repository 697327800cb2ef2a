/*
 * inotify: fd 50 watches a directory (IN_CREATE|IN_DELETE, wd 1), a file in it (IN_MODIFY,
 * wd 2) and the directory again for opens and closes (wd 3: merged with wd 1 by the kernel, so
 * it is wd 1 with both masks); fd 51 keeps the file open. wd 3 watches a file that fd 52 keeps
 * open after its name was removed (IN_MODIFY), wd 4 a symlink to the file as itself
 * (IN_DONT_FOLLOW, IN_ATTRIB). After restore and SIGTERM: no event is waiting (the restore
 * itself, which reopens fd 51 and closes its own helper fds, must not leave any), then
 * creating a file in the directory, writing to the file and to fd 52, and touching the
 * symlink produce events with the old wds (and the new file's name); the symlink's watch sees
 * nothing of the write to the file it points to. wd 5 watched a file and was removed; wd 6
 * watches a file in /dev/shm (IN_MODIFY), after that gap (as systemd's wds are):
 * in a container a tmpfs that only the container's mount namespace has, so that its watch is
 * found through the container's mounts; a write to it after restore is seen on wd 6, and the
 * watch is still wd 6 (inotify_add_watch of it again answers 6). wd 7 watches a symlink as
 * itself (IN_ATTRIB, IN_DONT_FOLLOW) that fd 53 holds O_PATH | O_NOFOLLOW, then removed: after
 * restore a chown through fd 53 is seen on wd 7. wd 8 watches a directory for no event at all
 * (IN_ONLYDIR alone, as stress-ng does): after restore it is still there (inotify_add_watch
 * with IN_MASK_CREATE answers EEXIST).
 * Dumped with --leave-running and not restored (zoo_left_running): the dump's reading of the
 * removed file "gone" (IN_OPEN, IN_CLOSE_NOWRITE on wd 1) is no spurious event.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/inotify.h>
#include <sys/stat.h>

#ifndef IN_MASK_CREATE
#define IN_MASK_CREATE 0x10000000
#endif

static char dir[4200], file[4300], gone[4300], link_path[4300], link_gone[4300], quiet[4300], shm_file[64];

static void c_watch(ucontext_t *u) { (void)u; inotify_rm_watch(50, 2); }
static void c_deleted(ucontext_t *u) { (void)u; inotify_rm_watch(50, 3); }
static void c_symlink(ucontext_t *u) { (void)u; inotify_rm_watch(50, 4); }
static void c_shm(ucontext_t *u) { (void)u; inotify_rm_watch(50, 6); }
static void c_gone_link(ucontext_t *u) { (void)u; inotify_rm_watch(50, 7); }
static void c_quiet(ucontext_t *u) { (void)u; inotify_rm_watch(50, 8); }
static void c_spurious(ucontext_t *u) { (void)u; close(open(file, O_RDONLY)); }
static const struct zoo_corruption corruptions[] = {
	{ "watch", c_watch, 0 },
	{ "spurious-event", c_spurious, 0 },
	{ "deleted-watch", c_deleted, 0 },
	{ "symlink-watch", c_symlink, 0 },
	{ "shm-watch", c_shm, 0 },
	{ "removed-symlink-watch", c_gone_link, 0 },
	{ "quiet-watch", c_quiet, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(dir, sizeof(dir), "%s/watched", getenv("ZOO_TMPDIR") ? getenv("ZOO_TMPDIR") : "/tmp");
	snprintf(file, sizeof(file), "%s/file", dir);
	snprintf(gone, sizeof(gone), "%s/gone", dir);
	snprintf(link_path, sizeof(link_path), "%s/link", dir);
	snprintf(link_gone, sizeof(link_gone), "%s/link-gone", dir);
	mkdir(dir, 0700);
	int f = open(file, O_WRONLY | O_CREAT, 0600);
	close(f);
	if ((f = open(file, O_RDONLY)) < 0 || dup2(f, 51) != 51)
		zoo_die("open %s: %s", file, strerror(errno));
	close(f);
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0 || dup3(fd, 50, O_CLOEXEC) != 50)
		zoo_die("inotify: %s", strerror(errno));
	close(fd);
	if (inotify_add_watch(50, dir, IN_CREATE | IN_DELETE) != 1 || inotify_add_watch(50, file, IN_MODIFY) != 2 ||
	    inotify_add_watch(50, dir, IN_OPEN | IN_CLOSE | IN_MASK_ADD) != 1)
		zoo_die("inotify_add_watch: %s", strerror(errno));
	unlink(gone);
	unlink(link_path);
	if ((f = open(gone, O_RDWR | O_CREAT, 0600)) < 0 || dup2(f, 52) != 52 || symlink("file", link_path))
		zoo_die("%s, %s: %s", gone, link_path, strerror(errno));
	close(f);
	if (inotify_add_watch(50, gone, IN_MODIFY) != 3 || unlink(gone) ||
	    inotify_add_watch(50, link_path, IN_ATTRIB | IN_DONT_FOLLOW) != 4)
		zoo_die("inotify_add_watch: %s", strerror(errno));
	snprintf(shm_file, sizeof(shm_file), "/dev/shm/zoo-inotify-%d", getpid());
	close(open(shm_file, O_WRONLY | O_CREAT, 0600));
	char tmp_file[4400];
	snprintf(tmp_file, sizeof(tmp_file), "%s/tmp", dir);
	close(open(tmp_file, O_WRONLY | O_CREAT, 0600));
	if (inotify_add_watch(50, tmp_file, IN_MODIFY) != 5 || inotify_rm_watch(50, 5) || unlink(tmp_file))
		zoo_die("inotify_add_watch %s: %s", tmp_file, strerror(errno));
	if (inotify_add_watch(50, shm_file, IN_MODIFY) != 6)
		zoo_die("inotify_add_watch %s: %s", shm_file, strerror(errno));
	unlink(link_gone);
	if (symlink("file", link_gone) || (f = open(link_gone, O_PATH | O_NOFOLLOW)) < 0 || dup2(f, 53) != 53 ||
	    inotify_add_watch(50, link_gone, IN_ATTRIB | IN_DONT_FOLLOW) != 7 || unlink(link_gone))
		zoo_die("%s: %s", link_gone, strerror(errno));
	close(f);
	snprintf(quiet, sizeof(quiet), "%s/quiet", dir);
	if ((mkdir(quiet, 0700) && errno != EEXIST) || inotify_add_watch(50, quiet, IN_ONLYDIR) != 8)
		zoo_die("%s: %s", quiet, strerror(errno));
	char buf[4096] __attribute__((aligned(8)));
	while (read(50, buf, sizeof(buf)) > 0) /* what the setting up caused */
		;
	zoo_ready();
	zoo_wait();

	ssize_t n = read(50, buf, sizeof(buf));
	int read_errno = errno;
	/* (left running, not restored: the dump read the removed file "gone" to save it, and wd 1
	 * saw it opened and closed) */
	struct inotify_event *first = n > 0 ? (struct inotify_event *)buf : NULL;
	while (zoo_left_running() && first && (char *)first < buf + n && first->wd == 1 && first->len &&
	       !strcmp(first->name, "gone") && !(first->mask & ~(IN_OPEN | IN_CLOSE_NOWRITE)))
		first = (struct inotify_event *)((char *)first + sizeof(*first) + first->len);
	if (first && (char *)first >= buf + n)
		first = NULL, n = -1, read_errno = EAGAIN;
	CHECK("spurious-event", n < 0 && read_errno == EAGAIN, "%zd bytes of events before anything happened (first mask %#x)",
	      n, first ? first->mask : 0);

	char newf[4400];
	snprintf(newf, sizeof(newf), "%s/new", dir);
	int nf = open(newf, O_WRONLY | O_CREAT, 0600);
	close(nf);
	f = open(file, O_WRONLY);
	if (write(f, "x", 1) != 1)
		zoo_failf("watch", "write: %s", strerror(errno));
	close(f);
	if (write(52, "y", 1) != 1)
		zoo_failf("deleted-watch", "write to fd 52: %s", strerror(errno));
	if ((f = open(shm_file, O_WRONLY)) < 0 || write(f, "z", 1) != 1)
		zoo_failf("shm-watch", "write to %s: %s", shm_file, strerror(errno));
	close(f);
	if (utimensat(AT_FDCWD, link_path, NULL, AT_SYMLINK_NOFOLLOW))
		zoo_failf("symlink-watch", "utimensat %s: %s", link_path, strerror(errno));
	if (fchownat(53, "", getuid(), getgid(), AT_EMPTY_PATH))
		zoo_failf("removed-symlink-watch", "chown of fd 53: %s", strerror(errno));
	zoo_sleep_ms(20);
	n = read(50, buf, sizeof(buf));
	int created = 0, modified = 0, deleted_modified = 0, link_attrib = 0, link_other = 0, shm_modified = 0;
	int gone_link_attrib = 0;
	for (char *p = buf; n > 0 && p < buf + n;) {
		struct inotify_event *ev = (struct inotify_event *)p;
		created |= ev->wd == 1 && (ev->mask & IN_CREATE) && ev->len && !strcmp(ev->name, "new");
		modified |= ev->wd == 2 && (ev->mask & IN_MODIFY);
		deleted_modified |= ev->wd == 3 && (ev->mask & IN_MODIFY);
		link_attrib |= ev->wd == 4 && (ev->mask & IN_ATTRIB);
		link_other |= ev->wd == 4 && !(ev->mask & IN_ATTRIB);
		shm_modified |= ev->wd == 6 && (ev->mask & IN_MODIFY);
		gone_link_attrib |= ev->wd == 7 && (ev->mask & IN_ATTRIB);
		p += sizeof(*ev) + ev->len;
	}
	CHECK("watch", created, "no IN_CREATE event on wd 1 for 'new'");
	CHECK("watch", modified, "no IN_MODIFY event on wd 2");
	CHECK("deleted-watch", deleted_modified, "no IN_MODIFY event on wd 3 (the deleted file)");
	CHECK("symlink-watch", link_attrib && !link_other,
	      "the symlink's wd 4 saw %s", link_attrib ? "other events too" : "no IN_ATTRIB");
	int again = inotify_add_watch(50, shm_file, IN_MODIFY);
	CHECK("shm-watch", shm_modified && again == 6, "no IN_MODIFY event on wd 6 (%s), or it is wd %d now", shm_file,
	      again);
	CHECK("removed-symlink-watch", gone_link_attrib, "no IN_ATTRIB event on wd 7 (the removed symlink of fd 53)");
	int quiet_wd = inotify_add_watch(50, quiet, IN_ONLYDIR | IN_MASK_CREATE);
	CHECK("quiet-watch", quiet_wd < 0 && errno == EEXIST, "the watch of %s for no event is gone (a new one: wd %d)",
	      quiet, quiet_wd);
	rmdir(quiet);
	unlink(newf);
	unlink(link_path);
	unlink(shm_file);
	return zoo_finish("7 watches (one for no event), a gap in their wds");
}
