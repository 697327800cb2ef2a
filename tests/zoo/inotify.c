/*
 * inotify: fd 50 watches a directory (IN_CREATE|IN_DELETE, wd 1), a file in it (IN_MODIFY,
 * wd 2) and the directory again for opens and closes (wd 3: merged with wd 1 by the kernel, so
 * it is wd 1 with both masks); fd 51 keeps the file open. After restore and SIGTERM: no event
 * is waiting (the restore itself, which reopens fd 51 and closes its own helper fds, must not
 * leave any), then creating a file in the directory and writing to the file produce events
 * with the old wds (and the new file's name).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/inotify.h>
#include <sys/stat.h>

static char dir[4200], file[4300];

static void c_watch(ucontext_t *u) { (void)u; inotify_rm_watch(50, 2); }
static void c_spurious(ucontext_t *u) { (void)u; close(open(file, O_RDONLY)); }
static const struct zoo_corruption corruptions[] = {
	{ "watch", c_watch, 0 },
	{ "spurious-event", c_spurious, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(dir, sizeof(dir), "%s/watched", getenv("ZOO_TMPDIR") ? getenv("ZOO_TMPDIR") : "/tmp");
	snprintf(file, sizeof(file), "%s/file", dir);
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
	zoo_ready();
	zoo_wait();

	char buf[4096] __attribute__((aligned(8)));
	ssize_t n = read(50, buf, sizeof(buf));
	CHECK("spurious-event", n < 0 && errno == EAGAIN, "%zd bytes of events before anything happened (first mask %#x)",
	      n, n > 0 ? ((struct inotify_event *)buf)->mask : 0);

	char newf[4400];
	snprintf(newf, sizeof(newf), "%s/new", dir);
	int nf = open(newf, O_WRONLY | O_CREAT, 0600);
	close(nf);
	f = open(file, O_WRONLY);
	if (write(f, "x", 1) != 1)
		zoo_failf("watch", "write: %s", strerror(errno));
	close(f);
	zoo_sleep_ms(20);
	n = read(50, buf, sizeof(buf));
	int created = 0, modified = 0;
	for (char *p = buf; n > 0 && p < buf + n;) {
		struct inotify_event *ev = (struct inotify_event *)p;
		created |= ev->wd == 1 && (ev->mask & IN_CREATE) && ev->len && !strcmp(ev->name, "new");
		modified |= ev->wd == 2 && (ev->mask & IN_MODIFY);
		p += sizeof(*ev) + ev->len;
	}
	CHECK("watch", created, "no IN_CREATE event on wd 1 for 'new'");
	CHECK("watch", modified, "no IN_MODIFY event on wd 2");
	unlink(newf);
	return zoo_finish("2 watches");
}
