/*
 * inotify: fd 50 watches a directory (IN_CREATE|IN_DELETE, wd 1) and a file in it (IN_MODIFY,
 * wd 2). After restore and SIGTERM: creating a file in the directory and writing to the file
 * produce events with the old wds (and the new file's name).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/inotify.h>
#include <sys/stat.h>

static char dir[4200], file[4300];

static void c_watch(ucontext_t *u) { (void)u; inotify_rm_watch(50, 2); }
static const struct zoo_corruption corruptions[] = {
	{ "watch", c_watch, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(dir, sizeof(dir), "%s/watched", getenv("ZOO_TMPDIR") ? getenv("ZOO_TMPDIR") : "/tmp");
	snprintf(file, sizeof(file), "%s/file", dir);
	mkdir(dir, 0700);
	int f = open(file, O_WRONLY | O_CREAT, 0600);
	close(f);
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0 || dup3(fd, 50, O_CLOEXEC) != 50)
		zoo_die("inotify: %s", strerror(errno));
	close(fd);
	if (inotify_add_watch(50, dir, IN_CREATE | IN_DELETE) != 1 || inotify_add_watch(50, file, IN_MODIFY) != 2)
		zoo_die("inotify_add_watch: %s", strerror(errno));
	zoo_ready();
	zoo_wait();

	char newf[4400];
	snprintf(newf, sizeof(newf), "%s/new", dir);
	int nf = open(newf, O_WRONLY | O_CREAT, 0600);
	close(nf);
	f = open(file, O_WRONLY);
	if (write(f, "x", 1) != 1)
		zoo_failf("watch", "write: %s", strerror(errno));
	close(f);
	zoo_sleep_ms(20);
	char buf[4096] __attribute__((aligned(8)));
	ssize_t n = read(50, buf, sizeof(buf));
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
