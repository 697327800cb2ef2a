/*
 * pty-locked: a pty whose slave has settings of its own that plain termios does not carry:
 * a speed of its own (termios2, BOTHER: 123456 in, 654321 out) and locked bits
 * (TIOCSLCKTRMIOS, CAP_SYS_ADMIN: ICANON and ECHO locked, canonical and echo off; CSIZE
 * locked). In flight at the checkpoint: "abc" typed into the master (not a whole line: read
 * back only in non-canonical mode, which the lock refuses) and "xyz" written to the slave.
 * The slave is open twice: fd 71 (TIOCGPTPEER, non-blocking) and fd 72 (its path, blocking):
 * two open files.
 * After restore and SIGTERM: the speeds, the locked bits and the settings as they were; a
 * TCSETS turning ICANON on changes nothing (still locked); fds 71 and 72 are still two open
 * files with their own flags; the slave reads "abc", the master "xyz".
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <asm/termbits.h>
#include <sys/ioctl.h>

#define MASTER 70
#define SLAVE 71
#define SLAVE_AGAIN 72
#define ISPEED 123456
#define OSPEED 654321

static struct termios2 settings_before;
static struct termios locked_before;

static void c_locked(ucontext_t *u)
{
	(void)u;
	struct termios none = { 0 };
	ioctl(SLAVE, TIOCSLCKTRMIOS, &none);
}
static void c_speed(ucontext_t *u)
{
	(void)u;
	struct termios2 t;
	if (!ioctl(SLAVE, TCGETS2, &t)) {
		t.c_ospeed = 9600;
		ioctl(SLAVE, TCSETS2, &t);
	}
}

static void c_files(ucontext_t *u) { (void)u; dup2(SLAVE, SLAVE_AGAIN); }

static const struct zoo_corruption corruptions[] = {
	{ "locked", c_locked, 0 },
	{ "speed", c_speed, 0 },
	{ "files", c_files, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	int m = open("/dev/ptmx", O_RDWR | O_NOCTTY);
	int unlock = 0;
	if (m < 0 || ioctl(m, TIOCSPTLCK, &unlock))
		zoo_die("ptmx: %s", strerror(errno));
	zoo_place(m, MASTER, 0);
	zoo_place(ioctl(MASTER, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK), SLAVE, 0);
	char name[64];
	if (ioctl(MASTER, TIOCGPTN, &unlock))
		zoo_die("TIOCGPTN: %s", strerror(errno));
	snprintf(name, sizeof(name), "/dev/pts/%d", unlock);
	zoo_place(open(name, O_RDWR | O_NOCTTY), SLAVE_AGAIN, 0);
	struct termios2 t;
	if (ioctl(SLAVE, TCGETS2, &t))
		zoo_die("TCGETS2: %s", strerror(errno));
	t.c_cflag = (t.c_cflag & ~(CBAUD | (CBAUD << IBSHIFT))) | BOTHER | (BOTHER << IBSHIFT);
	t.c_ispeed = ISPEED;
	t.c_ospeed = OSPEED;
	t.c_lflag &= ~(ICANON | ECHO);
	if (ioctl(SLAVE, TCSETS2, &t))
		zoo_die("TCSETS2: %s", strerror(errno));
	struct termios lock = { .c_lflag = ICANON | ECHO, .c_cflag = CSIZE };
	if (ioctl(SLAVE, TIOCSLCKTRMIOS, &lock))
		zoo_die("TIOCSLCKTRMIOS: %s", strerror(errno));
	if (write(MASTER, "abc", 3) != 3 || write(SLAVE, "xyz", 3) != 3)
		zoo_die("write: %s", strerror(errno));
	if (ioctl(SLAVE, TCGETS2, &settings_before) || ioctl(SLAVE, TIOCGLCKTRMIOS, &locked_before))
		zoo_die("read back: %s", strerror(errno));
	zoo_ready();
	zoo_wait();
	zoo_begin_verify();

	struct termios2 now;
	struct termios locked_now = { 0 };
	int got = !ioctl(SLAVE, TCGETS2, &now);
	CHECK("speed", got && now.c_ispeed == ISPEED && now.c_ospeed == OSPEED,
	      "speeds %u in, %u out; expected %u, %u", got ? now.c_ispeed : 0, got ? now.c_ospeed : 0, ISPEED, OSPEED);
	CHECK("settings", got && now.c_cflag == settings_before.c_cflag && now.c_lflag == settings_before.c_lflag &&
	      now.c_iflag == settings_before.c_iflag && now.c_oflag == settings_before.c_oflag,
	      "termios flags differ (cflag %o, was %o; lflag %o, was %o)", now.c_cflag, settings_before.c_cflag,
	      now.c_lflag, settings_before.c_lflag);
	CHECK("locked", !ioctl(SLAVE, TIOCGLCKTRMIOS, &locked_now) && locked_now.c_lflag == locked_before.c_lflag &&
	      locked_now.c_cflag == locked_before.c_cflag,
	      "locked bits lflag %o cflag %o, were %o %o", locked_now.c_lflag, locked_now.c_cflag,
	      locked_before.c_lflag, locked_before.c_cflag);
	struct termios2 canon = now;
	canon.c_lflag |= ICANON;
	struct termios2 after = { 0 };
	CHECK("locked", !ioctl(SLAVE, TCSETS2, &canon) && !ioctl(SLAVE, TCGETS2, &after) && !(after.c_lflag & ICANON),
	      "ICANON could be turned on: it is not locked");
	int f71 = fcntl(SLAVE, F_GETFL), f72 = fcntl(SLAVE_AGAIN, F_GETFL);
	CHECK("files", (f71 & O_NONBLOCK) && !(f72 & O_NONBLOCK), "fd 71's flags %#o, fd 72's %#o: 71 alone "
	      "non-blocking", f71, f72);
	fcntl(SLAVE_AGAIN, F_SETFL, f72 | O_APPEND);
	CHECK("files", !(fcntl(SLAVE, F_GETFL) & O_APPEND), "fds 71 and 72 are one open file");
	char in[8] = "", out[8] = "";
	ssize_t n = read(SLAVE, in, sizeof(in));
	CHECK("in-flight", n == 3 && !memcmp(in, "abc", 3), "the slave read %zd bytes '%.*s'", n, n > 0 ? (int)n : 0, in);
	n = read(MASTER, out, sizeof(out));
	CHECK("in-flight", n == 3 && !memcmp(out, "xyz", 3), "the master read %zd bytes '%.*s'", n, n > 0 ? (int)n : 0, out);
	return zoo_finish("speeds 123456/654321, ICANON, ECHO and CSIZE locked, 3 + 3 bytes in flight");
}
