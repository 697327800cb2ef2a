/*
 * fds-many: most of the fd limit taken by unix socket pairs and pipes, which stasis makes
 * itself and every new process inherits while it puts its own fds in place: with H the hard
 * limit (at most 65536 counted), 7/10 of H in fds from 3 up: pairs (6/10 of H, each end with
 * a byte from the other waiting) and pipes (1/10 of H, each with a byte waiting). The soft
 * limit is raised to H.
 * After restore and SIGTERM: every fd is still a socket or a pipe end as before, each pair's
 * ends are each other's peer and each holds its byte, each pipe its byte.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/socket.h>

static int nr_pairs, nr_pipes, first_pipe;

static void c_lost(ucontext_t *u) { (void)u; char b; read(first_pipe, &b, 1); }
static const struct zoo_corruption corruptions[] = {
	{ "data", c_lost, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	long h = zoo_nofile_raised();
	nr_pairs = (int)(h * 6 / 10 / 2);
	nr_pipes = (int)(h / 10 / 2);
	for (int i = 0; i < nr_pairs; i++) {
		int sv[2];
		char b[2] = { (char)i, (char)(i * 7) };
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || sv[0] != 3 + 2 * i || write(sv[0], &b[0], 1) != 1 ||
		    write(sv[1], &b[1], 1) != 1)
			zoo_die("socket pair %d: %s", i, strerror(errno));
	}
	first_pipe = 3 + 2 * nr_pairs;
	for (int i = 0; i < nr_pipes; i++) {
		int p[2];
		char b = (char)(i * 3);
		if (pipe(p) || p[0] != first_pipe + 2 * i || write(p[1], &b, 1) != 1)
			zoo_die("pipe %d: %s", i, strerror(errno));
	}

	zoo_ready();
	zoo_wait();

	int bad_pairs = 0, bad_pipes = 0, first_bad = -1;
	for (int i = 0; i < nr_pairs; i++) {
		int a = 3 + 2 * i, b = a + 1;
		char x = 0, y = 0;
		struct stat sa, sb;
		int ok = !fstat(a, &sa) && !fstat(b, &sb) && S_ISSOCK(sa.st_mode) && S_ISSOCK(sb.st_mode) &&
			 recv(a, &x, 1, MSG_DONTWAIT) == 1 && recv(b, &y, 1, MSG_DONTWAIT) == 1 && x == (char)(i * 7) &&
			 y == (char)i && send(a, "z", 1, 0) == 1 && recv(b, &y, 1, MSG_DONTWAIT) == 1 && y == 'z';
		if (!ok && !bad_pairs++)
			first_bad = a;
	}
	for (int i = 0; i < nr_pipes; i++) {
		int r = first_pipe + 2 * i;
		char x = 0;
		struct stat sr, sw;
		int ok = !fstat(r, &sr) && !fstat(r + 1, &sw) && S_ISFIFO(sr.st_mode) && sr.st_ino == sw.st_ino &&
			 !fcntl(r, F_SETFL, O_NONBLOCK) && read(r, &x, 1) == 1 && x == (char)(i * 3);
		if (!ok && !bad_pipes++ && first_bad < 0)
			first_bad = r;
	}
	CHECK("data", !bad_pairs && !bad_pipes, "%d of %d socket pairs and %d of %d pipes wrong (the first at fd %d)",
	      bad_pairs, nr_pairs, bad_pipes, nr_pipes, first_bad);
	char what[96];
	snprintf(what, sizeof(what), "%d socket pairs and %d pipes with their bytes (%d fds)", nr_pairs, nr_pipes,
		 2 * (nr_pairs + nr_pipes));
	return zoo_finish(what);
}
