/*
 * inotify-nested-mnt: inotify watches on files that only a child's mount namespace has (as
 * criu's zdtm inotify01 makes them, without its parent's fd on the file).
 *   child:  unshare(CLONE_NEWNS), every mount a slave (MS_REC | MS_SLAVE on /), a tmpfs on
 *           W/mnt with a file "f"; fd 60 keeps the tmpfs's root open; it then waits.
 *   parent: inotify fd 50 watches, through /proc/CHILD/fd/60, the tmpfs's root (IN_CREATE,
 *           wd 1) and its file f (IN_MODIFY, wd 2), then W/plain in its own namespace
 *           (IN_MODIFY, wd 3).
 * After restore and SIGTERM: no event is waiting; a file made in the child's tmpfs (through
 * /proc/CHILD/fd/60) is seen on wd 1 with its name, a write to f on wd 2, one to W/plain on
 * wd 3; the next watch added is wd 4 (the wd numbering goes on after the highest).
 * Blocks in: nanosleep (parent: zoo_wait loop; child: pause loop).
 */
#include "zoo.h"
#include <sched.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/prctl.h>

static char mnt[4200], plain[4200], extra[4200];

static void c_root(ucontext_t *u) { (void)u; inotify_rm_watch(50, 1); }
static void c_file(ucontext_t *u) { (void)u; inotify_rm_watch(50, 2); }
static void c_next(ucontext_t *u) { (void)u; int wd = inotify_add_watch(50, "/", IN_ATTRIB); (void)wd; }
static const struct zoo_corruption corruptions[] = {
	{ "nested-dir-watch", c_root, 0 },
	{ "nested-file-watch", c_file, 0 },
	{ "next-wd", c_next, 0 },
};

static void run_child(int ready)
{
	char f[4300], c = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) ||
	    mount("zoo-inotify", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m"))
		_exit(2);
	snprintf(f, sizeof(f), "%s/f", mnt);
	int fd = open(f, O_WRONLY | O_CREAT, 0600);
	close(fd);
	if (fd < 0 || (fd = open(mnt, O_RDONLY | O_DIRECTORY)) < 0 || dup2(fd, 60) != 60)
		_exit(3);
	close(fd);
	if (write(ready, &c, 1) != 1)
		_exit(4);
	close(ready);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	char p[4300];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(mnt, sizeof(mnt), "%s/mnt", zoo_tmpdir());
	snprintf(plain, sizeof(plain), "%s/plain", zoo_tmpdir());
	snprintf(extra, sizeof(extra), "%s/extra", zoo_tmpdir());
	if (mkdir(mnt, 0700) || zoo_write_file(plain, "", 0) || zoo_write_file(extra, "", 0))
		zoo_die("setup: %s", strerror(errno));
	pid_t child = zoo_child_when_ready(run_child, "mount its tmpfs");
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0 || dup3(fd, 50, O_CLOEXEC) != 50)
		zoo_die("inotify: %s", strerror(errno));
	close(fd);
	snprintf(p, sizeof(p), "/proc/%d/fd/60", child);
	if (inotify_add_watch(50, p, IN_CREATE) != 1)
		zoo_die("inotify_add_watch %s: %s", p, strerror(errno));
	snprintf(p, sizeof(p), "/proc/%d/fd/60/f", child);
	if (inotify_add_watch(50, p, IN_MODIFY) != 2 || inotify_add_watch(50, plain, IN_MODIFY) != 3)
		zoo_die("inotify_add_watch: %s", strerror(errno));
	zoo_ready();
	zoo_wait();

	char buf[4096] __attribute__((aligned(8)));
	ssize_t n = read(50, buf, sizeof(buf));
	CHECK("nested-dir-watch", n < 0 && errno == EAGAIN, "%zd bytes of events before anything happened", n);
	snprintf(p, sizeof(p), "/proc/%d/fd/60/new", child);
	close(open(p, O_WRONLY | O_CREAT, 0600));
	snprintf(p, sizeof(p), "/proc/%d/fd/60/f", child);
	if ((fd = open(p, O_WRONLY)) < 0 || write(fd, "x", 1) != 1)
		zoo_failf("nested-file-watch", "write to %s: %s", p, strerror(errno));
	close(fd);
	if ((fd = open(plain, O_WRONLY)) < 0 || write(fd, "y", 1) != 1)
		zoo_failf("next-wd", "write to %s: %s", plain, strerror(errno));
	close(fd);
	zoo_sleep_ms(20);
	n = read(50, buf, sizeof(buf));
	int created = 0, modified = 0, plain_modified = 0;
	for (char *q = buf; n > 0 && q < buf + n;) {
		struct inotify_event *ev = (struct inotify_event *)q;
		created |= ev->wd == 1 && (ev->mask & IN_CREATE) && ev->len && !strcmp(ev->name, "new");
		modified |= ev->wd == 2 && (ev->mask & IN_MODIFY);
		plain_modified |= ev->wd == 3 && (ev->mask & IN_MODIFY);
		q += sizeof(*ev) + ev->len;
	}
	CHECK("nested-dir-watch", created, "no IN_CREATE event on wd 1 (the child's tmpfs) for 'new'");
	CHECK("nested-file-watch", modified, "no IN_MODIFY event on wd 2 (the child's tmpfs's file)");
	CHECK("next-wd", plain_modified, "no IN_MODIFY event on wd 3 (%s)", plain);
	int next = inotify_add_watch(50, extra, IN_ATTRIB);
	CHECK("next-wd", next == 4, "the next watch is wd %d, expected 4", next);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return zoo_finish("3 watches, 2 in a child's mount namespace");
}
