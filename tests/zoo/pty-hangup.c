/*
 * pty-hangup: hung-up pty slaves. A pty whose master the program closed (SIGHUP ignored): its
 * two slave files, fds 60 (opened first, made the controlling terminal when the program leads
 * a session, which the hangup takes away) and 61 (a second open), are hung up and
 * /dev/pts/N is gone ("/dev/pts/N (deleted)"). A live pty whose master the program holds
 * (fd 70): one slave file (fd 71) hung up by vhangup (TIOCVHANGUP), one opened after that
 * (fd 72) that still works.
 * After restore and SIGTERM: fds 60, 61 and 71 read 0 (end of file) and give EIO on write
 * and TCGETS; 60 and 61 are still of the dead pty's index (their device and link), 71 of the
 * live one's; the master has its old index (TIOCGPTN) and what fd 72 writes comes out of it.
 * Blocks in: nanosleep.
 */
#include "zoo.h"
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>

static int dead_index, live_index;

/* fd is a hung-up file: reads give end of file, writes and ioctls EIO. */
static int hung_up(int fd, char *why, size_t len)
{
	char c;
	struct termios t;
	ssize_t r = read(fd, &c, 1);
	int read_errno = errno;
	ssize_t w = write(fd, "x", 1);
	int write_errno = errno;
	int g = ioctl(fd, TCGETS, &t);
	int ioctl_errno = errno;
	snprintf(why, len, "fd %d: read %zd (%s), write %zd (%s), TCGETS %d (%s)", fd, r,
		 r < 0 ? strerror(read_errno) : "-", w, w < 0 ? strerror(write_errno) : "-", g,
		 g < 0 ? strerror(ioctl_errno) : "-");
	return r == 0 && w < 0 && write_errno == EIO && g < 0 && ioctl_errno == EIO;
}

/* The pts index of slave file fd, -1 if it is none. */
static int slave_index(int fd)
{
	struct stat st;
	if (fstat(fd, &st) || !S_ISCHR(st.st_mode) || major(st.st_rdev) < 136 || major(st.st_rdev) > 143)
		return -1;
	return (major(st.st_rdev) - 136) * 256 + minor(st.st_rdev);
}

/* A new pty: its master, unlocked, with its slave opened at *slave. */
static int new_pty(int *slave)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m) || (*slave = open(ptsname(m), O_RDWR | O_NOCTTY | O_NONBLOCK)) < 0)
		zoo_die("pty: %s", strerror(errno));
	return m;
}

static void c_dead(ucontext_t *u) { (void)u; int s; new_pty(&s); dup2(s, 61); } /* master left open */
static void c_index(ucontext_t *u) { (void)u; int s; close(new_pty(&s)); dup2(s, 60); }
static void c_hung(ucontext_t *u) { (void)u; dup2(open(ptsname(70), O_RDWR | O_NOCTTY | O_NONBLOCK), 71); }
static void c_live(ucontext_t *u) { (void)u; dup2(71, 72); }
static void c_master(ucontext_t *u) { (void)u; int s; dup2(new_pty(&s), 70); }
static const struct zoo_corruption corruptions[] = {
	{ "dead", c_dead, 0 },
	{ "index", c_index, 0 },
	{ "hung", c_hung, 0 },
	{ "live", c_live, 0 },
	{ "master", c_master, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	signal(SIGHUP, SIG_IGN);

	int s, m = new_pty(&s);
	if (dup2(s, 60) != 60 || close(s) || (s = open(ptsname(m), O_RDWR | O_NOCTTY | O_NONBLOCK)) < 0 ||
	    dup2(s, 61) != 61 || close(s))
		zoo_die("slave of the first pty: %s", strerror(errno));
	ioctl(60, TIOCSCTTY, 0); /* a session leader without a terminal takes it; the hangup drops it */
	dead_index = slave_index(60);
	close(m);

	m = new_pty(&s);
	if (dup2(m, 70) != 70 || dup2(s, 71) != 71 || close(m) || close(s))
		zoo_die("second pty: %s", strerror(errno));
	if (ioctl(71, TIOCVHANGUP))
		zoo_die("TIOCVHANGUP: %s", strerror(errno));
	if ((s = open(ptsname(70), O_RDWR | O_NOCTTY | O_NONBLOCK)) < 0 || dup2(s, 72) != 72 || close(s))
		zoo_die("slave of the second pty: %s", strerror(errno));
	live_index = slave_index(72);
	fcntl(70, F_SETFL, O_RDWR | O_NONBLOCK);
	char why[200], link[128] = "", want[64];
	if (!hung_up(60, why, sizeof(why)) || !hung_up(71, why, sizeof(why)))
		zoo_die("not hung up: %s", why);
	zoo_ready();
	zoo_wait();

	for (int fd = 60; fd <= 61; fd++) {
		CHECK("dead", hung_up(fd, why, sizeof(why)), "the slave of the closed master: %s", why);
		snprintf(want, sizeof(want), "/dev/pts/%d (deleted)", dead_index);
		snprintf(why, sizeof(why), "/proc/self/fd/%d", fd);
		ssize_t l = readlink(why, link, sizeof(link) - 1);
		link[l > 0 ? l : 0] = 0;
		CHECK("index", slave_index(fd) == dead_index && !strcmp(link, want),
		      "fd %d is pts %d '%s', was %s", fd, slave_index(fd), link, want);
	}
	CHECK("hung", hung_up(71, why, sizeof(why)) && slave_index(71) == live_index,
	      "the slave file vhangup hung up: %s, pts %d (was %d)", why, slave_index(71), live_index);
	unsigned index = 0;
	CHECK("master", !ioctl(70, TIOCGPTN, &index) && index == (unsigned)live_index, "the master is of pts %u, was %d",
	      index, live_index);
	char out[16] = "";
	ssize_t n = write(72, "ok\n", 3) == 3 ? 0 : -1;
	for (int i = 0; i < 100 && n == 0; i++) {
		n = read(70, out, sizeof(out) - 1);
		if (n < 0 && errno == EAGAIN) {
			n = 0;
			zoo_sleep_ms(5);
		}
	}
	CHECK("live", slave_index(72) == live_index && n == 4 && !memcmp(out, "ok\r\n", 4),
	      "the slave opened after vhangup (pts %d): the master read %zd bytes '%.*s'", slave_index(72), n,
	      (int)(n > 0 ? n : 0), out);
	return zoo_finish("hung-up pty slaves");
}
