/*
 * pty: a pseudo-terminal made by the program. The parent holds the master (fd 70, in packet
 * mode) and sets the slave's termios (no ECHO, VMIN 3), window size (33x99) and exclusive mode;
 * a child starts a session, opens the slave (fd 71) and so makes it its controlling terminal.
 * In flight at the checkpoint: the parent typed "early\n^Deof^Dpart" on the master (a whole
 * line, an end-of-file alone, a line an end-of-file ended, and an unfinished one) that the
 * child has not read; the child wrote "from-child\n" to the slave
 * that the parent has not read.
 * After restore and SIGTERM: the pty has its old index, termios and size; the child's
 * controlling terminal is still that pty (its session is the terminal's, and what it writes
 * to its fd 72, opened as /dev/tty, comes out of the master); the child reads
 * "early\n", an end-of-file (0 bytes), "eof", then "partial\n" once the parent types "ial\n"; the parent reads exactly
 * "from-child\r\n" (ONLCR) from the master, after packet mode's data byte; packet and
 * exclusive modes are still on (seen through the parent's slave fd 74: in a user namespace only
 * the host's CAP_SYS_ADMIN opens the slave of a pty in exclusive mode, the restore's own opens
 * of the slave included).
 * A second pty (master fd 73) was never unlocked (posix_openpt and grantpt, no unlockpt): after
 * restore it has its old index, its slave still refuses to open (EIO) until unlockpt(), then
 * opens.
 * Blocks in: nanosleep (parent), read on the slave (child).
 */
#include "zoo.h"
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

static char slave_name[64], locked_name[64];
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

/* Exit code bits: 1 not its controlling terminal, 2 wrong lines */
static void child(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	close(70);
	setsid();
	int s = open(slave_name, O_RDWR); /* the first tty a session leader opens: its ctty */
	if (s < 0 || dup2(s, 71) != 71)
		_exit(9);
	close(s);
	if ((s = open("/dev/tty", O_RDWR)) < 0 || dup2(s, 72) != 72) /* its controlling terminal */
		_exit(9);
	close(s);
	if (write(71, "from-child\n", 11) != 11)
		_exit(9);
	while (!child_term)
		zoo_sleep_ms(10);
	int code = tcgetsid(71) == getpid() ? 0 : 1;
	char line[16] = "";
	fcntl(71, F_SETFL, O_NONBLOCK);
	ssize_t n = read(71, line, sizeof(line) - 1); /* canonical: one whole line */
	if (n != 6 || memcmp(line, "early\n", 6))
		code |= 2;
	if (read(71, line, sizeof(line) - 1) != 0) /* the end-of-file typed alone */
		code |= 2;
	if (read(71, line, sizeof(line) - 1) != 3 || memcmp(line, "eof", 3)) /* ended by one */
		code |= 2;
	n = 0;
	for (int i = 0; i < 200 && n <= 0; i++) {
		n = read(71, line, sizeof(line) - 1);
		if (n <= 0)
			zoo_sleep_ms(5);
	}
	if (n != 8 || memcmp(line, "partial\n", 8))
		code |= 2;
	if (write(72, "tty!\n", 5) != 5)
		code |= 1;
	_exit(code);
}

static void c_winsize(ucontext_t *u) { (void)u; struct winsize ws = { 10, 10, 0, 0 }; ioctl(70, TIOCSWINSZ, &ws); }
static void c_termios(ucontext_t *u)
{
	(void)u;
	int s = open(slave_name, O_RDWR | O_NOCTTY);
	struct termios t;
	tcgetattr(s, &t);
	t.c_lflag |= ECHO;
	tcsetattr(s, TCSANOW, &t);
	close(s);
}
static void c_output(ucontext_t *u) { (void)u; char b[64]; read(70, b, sizeof(b)); }
static void c_input(ucontext_t *u) { (void)u; write(70, "x", 1); }
static void c_modes(ucontext_t *u) { (void)u; int off = 0; ioctl(70, TIOCPKT, &off); }
static void c_locked(ucontext_t *u) { (void)u; unlockpt(73); }
static const struct zoo_corruption corruptions[] = {
	{ "modes", c_modes, 0 },
	{ "winsize", c_winsize, 0 },
	{ "termios", c_termios, 0 },
	{ "output", c_output, 0 },
	{ "line", c_input, 0 },
	{ "locked", c_locked, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m) || dup2(m, 70) != 70)
		zoo_die("pty: %s", strerror(errno));
	close(m);
	snprintf(slave_name, sizeof(slave_name), "%s", ptsname(70));
	if ((m = posix_openpt(O_RDWR | O_NOCTTY)) < 0 || grantpt(m) || dup2(m, 73) != 73)
		zoo_die("second pty: %s", strerror(errno));
	close(m);
	snprintf(locked_name, sizeof(locked_name), "%s", ptsname(73));
	int s = open(slave_name, O_RDWR | O_NOCTTY);
	struct termios t;
	struct winsize ws = { 33, 99, 0, 0 };
	if (s < 0 || tcgetattr(s, &t))
		zoo_die("%s: %s", slave_name, strerror(errno));
	t.c_lflag &= ~ECHO;
	t.c_cc[VMIN] = 3;
	int on = 1;
	if (tcsetattr(s, TCSANOW, &t) || ioctl(70, TIOCSWINSZ, &ws) || ioctl(70, TIOCPKT, &on))
		zoo_die("termios: %s", strerror(errno));
	close(s);
	pid_t kid = fork();
	if (kid == 0)
		child();
	zoo_sleep_ms(50); /* the child has opened the slave: now nobody else may */
	s = open(slave_name, O_RDWR | O_NOCTTY);
	if (s < 0 || ioctl(s, TIOCEXCL) || dup2(s, 74) != 74)
		zoo_die("TIOCEXCL: %s", strerror(errno));
	close(s);
	if (write(70, "early\n\004eof\004part", 15) != 15)
		zoo_die("write to the master: %s", strerror(errno));
	zoo_sleep_ms(100);
	zoo_ready();
	zoo_wait();

	CHECK("index", !strcmp(ptsname(70) ? ptsname(70) : "", slave_name), "the pty is %s, was %s",
	      ptsname(70), slave_name);
	struct winsize now = { 0 };
	ioctl(70, TIOCGWINSZ, &now);
	CHECK("winsize", now.ws_row == 33 && now.ws_col == 99, "window %ux%u", now.ws_row, now.ws_col);
	struct termios t2 = { 0 };
	CHECK("termios", tcgetattr(74, &t2) == 0 && !(t2.c_lflag & ECHO) && t2.c_cc[VMIN] == 3,
	      "termios lflag %#x VMIN %u", t2.c_lflag, t2.c_cc[VMIN]);
	char out[64] = "";
	fcntl(70, F_SETFL, O_NONBLOCK);
	ssize_t n = read(70, out, sizeof(out) - 1);
	CHECK("output", n == 13 && !memcmp(out, "\0from-child\r\n", 13), "the master read %zd bytes '%.*s'", n,
	      (int)(n > 0 ? n : 0), out);
	int pkt = 0, excl = 0;
	CHECK("modes", !ioctl(70, TIOCGPKT, &pkt) && pkt && !ioctl(74, TIOCGEXCL, &excl) && excl,
	      "packet mode %d, exclusive %d", pkt, excl);
	kill(kid, SIGTERM);
	zoo_sleep_ms(50);
	if (write(70, "ial\n", 4) != 4)
		zoo_failf("line", "write to the master: %s", strerror(errno));
	int st = 0;
	waitpid(kid, &st, 0);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	CHECK("ctty", code != 255 && code != 9 && !(code & 1), "the child lost its controlling terminal (%#x)", st);
	memset(out, 0, sizeof(out));
	n = read(70, out, sizeof(out) - 1);
	CHECK("ctty", n == 7 && !memcmp(out, "\0tty!\r\n", 7), "the master read %zd bytes '%.*s' after the child "
	      "wrote to /dev/tty", n, (int)(n > 0 ? n : 0), out);
	CHECK("line", code == 255 || !(code & 2), "the child did not read 'early', an end-of-file, 'eof' and 'partial'");
	int ls = open(locked_name, O_RDWR | O_NOCTTY), lerr = errno;
	CHECK("locked", ls < 0 && lerr == EIO && !strcmp(ptsname(73) ? ptsname(73) : "", locked_name),
	      "the never unlocked pty (was %s, now %s): its slave opens, or fails with %s", locked_name, ptsname(73),
	      ls < 0 ? strerror(lerr) : "no error");
	if (ls >= 0)
		close(ls);
	CHECK("locked", !unlockpt(73) && (ls = open(locked_name, O_RDWR | O_NOCTTY)) >= 0,
	      "the never unlocked pty's slave does not open after unlockpt: %s", strerror(errno));
	return zoo_finish("pty with a session, a pty never unlocked");
}
