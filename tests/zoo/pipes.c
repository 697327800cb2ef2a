/*
 * pipes: data in flight and open files shared across fork.
 *   P1 parent -> child, 64 KiB capacity: 1000 numbered messages written before the dump, the
 *      child has read 400; both processes hold both ends (fork).
 *   P2 child -> parent: 300 messages written by the child, none read yet; the parent also has
 *      its read end opened again through /proc (an open file of its own, O_NONBLOCK; the
 *      first stays blocking).
 *   P3 a pipe whose every write end is closed: 50 messages, then end-of-file.
 *   F  a regular file opened once before fork without O_APPEND: parent and child append to
 *      it through the one shared offset.
 *   Q  a named pipe (mkfifo) opened at both ends, 20 messages in it.
 *   P4 a pipe in packet mode (O_DIRECT writer): packets "one" and "three", then "tail" written
 *      as a byte stream (O_DIRECT off), then O_DIRECT on again.
 * After restore and SIGTERM: the child reads messages 400..1099 of P1 in order, exactly once
 * (1000..1099 written after the restore), the parent reads 0..299 of P2, then 50 messages and
 * EOF from P3, 0..19 from Q (then 20..29 written after restore, by path too), from P4 "one",
 * "three" and "tail" in three reads (its writer still O_DIRECT); P1 still has 64 KiB; both processes write 100 more records to F, whose size
 * must then be the sum of all records (a lost shared offset would overwrite some).
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define MSG 16
#define REC 32

static int p1[2], p2[2], p2nb, p3r, ffd, qr, qw;
static char qpath[4200];
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

static ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return done ? (ssize_t)done : n;
		done += n;
	}
	return done;
}

static void put(int fd, unsigned n)
{
	char m[MSG] = { 0 };
	snprintf(m, sizeof(m), "msg %010u", n);
	if (write(fd, m, MSG) != MSG)
		zoo_die("write msg %u: %s", n, strerror(errno));
}

static char last_read[MSG + 1]; /* for messages */

/* Reads n messages, expecting first..first+n-1; returns the number of good ones. */
static unsigned take(int fd, unsigned first, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char m[MSG + 1] = "", want[MSG + 1] = "";
		if (read_full(fd, m, MSG) != MSG)
			return i;
		memcpy(last_read, m, MSG);
		snprintf(want, sizeof(want), "msg %010u", first + i);
		if (memcmp(m, want, MSG))
			return i;
	}
	return n;
}

static void record(char who, unsigned n)
{
	char r[REC];
	memset(r, '.', REC);
	snprintf(r, REC, "%c %08u", who, n);
	r[REC - 1] = '\n';
	if (write(ffd, r, REC) != REC)
		zoo_die("write record: %s", strerror(errno));
}

/* Exit code: 0, or 1 P1 order, 2 F */
static void child(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	for (unsigned i = 0; i < 300; i++)
		put(p2[1], i);
	int code = take(p1[0], 0, 400) == 400 ? 0 : 1;
	for (unsigned i = 0; i < 100; i++)
		record('c', i);
	while (!child_term)
		zoo_sleep_ms(10);
	code |= take(p1[0], 400, 700) == 700 ? 0 : 1;
	for (unsigned i = 100; i < 200; i++)
		record('c', i);
	_exit(code);
}

static void c_lost(ucontext_t *u) { (void)u; char m[MSG]; read_full(p1[0], m, MSG); }
static void c_offset(ucontext_t *u) { (void)u; lseek(ffd, REC, SEEK_SET); }
static void c_eof(ucontext_t *u) { (void)u; char m[MSG]; read_full(p3r, m, MSG); }
static void c_fifo(ucontext_t *u) { (void)u; char m[MSG]; read_full(qr, m, MSG); }
static void c_files(ucontext_t *u) { (void)u; fcntl(p2[0], F_SETFL, O_NONBLOCK); }
static int p4[2];
static void c_packets(ucontext_t *u) { (void)u; char c; read(p4[0], &c, 1); /* drops "ne" */ }
static const struct zoo_corruption corruptions[] = {
	{ "packets", c_packets, 0 },
	{ "order", c_lost, 0 },
	{ "offset", c_offset, 0 },
	{ "eof", c_eof, 0 },
	{ "fifo", c_fifo, 0 },
	{ "files", c_files, 0 },
};

int main(int argc, char **argv)
{
	int p3[2];
	char path[4200];
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (pipe(p1) || pipe(p2) || pipe(p3) || fcntl(p1[1], F_SETPIPE_SZ, 65536) < 65536)
		zoo_die("pipe: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/records", getenv("ZOO_TMPDIR") ? getenv("ZOO_TMPDIR") : "/tmp");
	ffd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (ffd < 0)
		zoo_die("%s: %s", path, strerror(errno));
	snprintf(qpath, sizeof(qpath), "%s/fifo", getenv("ZOO_TMPDIR") ? getenv("ZOO_TMPDIR") : "/tmp");
	unlink(qpath);
	if (mkfifo(qpath, 0600) || (qr = open(qpath, O_RDONLY | O_NONBLOCK)) < 0 ||
	    (qw = open(qpath, O_WRONLY)) < 0)
		zoo_die("fifo %s: %s", qpath, strerror(errno));
	fcntl(qr, F_SETFL, 0);
	for (unsigned i = 0; i < 20; i++)
		put(qw, i);
	if (pipe2(p4, O_DIRECT) || write(p4[1], "one", 3) != 3 || write(p4[1], "three", 5) != 5 ||
	    fcntl(p4[1], F_SETFL, 0) || write(p4[1], "tail", 4) != 4 || fcntl(p4[1], F_SETFL, O_DIRECT))
		zoo_die("packet pipe: %s", strerror(errno));
	for (unsigned i = 0; i < 50; i++)
		put(p3[1], i);
	close(p3[1]);
	p3r = p3[0];
	for (unsigned i = 0; i < 1000; i++)
		put(p1[1], i);
	pid_t kid = fork();
	if (kid == 0)
		child();
	for (unsigned i = 0; i < 100; i++)
		record('p', i);
	/* the child has read its 400 and written its records */
	for (int tries = 0; tries < 1000; tries++) {
		int n = 0;
		ioctl(p1[0], FIONREAD, &n);
		if (n == 600 * MSG && lseek(ffd, 0, SEEK_CUR) == 200 * REC)
			break;
		zoo_sleep_ms(2);
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", p2[0]);
	if ((p2nb = open(path, O_RDONLY | O_NONBLOCK)) < 0)
		zoo_die("%s: %s", path, strerror(errno));
	zoo_ready();
	zoo_wait();

	CHECK("files", !(fcntl(p2[0], F_GETFL) & O_NONBLOCK) && (fcntl(p2nb, F_GETFL) & O_NONBLOCK),
	      "P2's read end and its second open file share their flags now (%#x, %#x)",
	      fcntl(p2[0], F_GETFL), fcntl(p2nb, F_GETFL));
	CHECK("capacity", fcntl(p1[1], F_GETPIPE_SZ) == 65536, "P1 holds %d bytes", fcntl(p1[1], F_GETPIPE_SZ));
	kill(kid, SIGTERM);
	for (unsigned i = 1000; i < 1100; i++)
		put(p1[1], i);
	unsigned got = take(p2[0], 0, 300);
	CHECK("order", got == 300, "P2: message %u of 300 is wrong or missing", got);
	got = take(p3r, 0, 50);
	char c;
	CHECK("eof", got == 50 && read(p3r, &c, 1) == 0, "P3: %u messages, then no end-of-file", got);
	char pk[3][16] = { "", "", "" };
	ssize_t pn[3];
	fcntl(p4[0], F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 3; i++)
		pk[i][(pn[i] = read(p4[0], pk[i], 15)) > 0 ? pn[i] : 0] = 0;
	CHECK("packets", !strcmp(pk[0], "one") && !strcmp(pk[1], "three") && !strcmp(pk[2], "tail") &&
				 (fcntl(p4[1], F_GETFL) & O_DIRECT),
	      "P4: reads gave '%s', '%s', '%s' (one, three, tail), writer flags %#x", pk[0], pk[1], pk[2],
	      fcntl(p4[1], F_GETFL));
	got = take(qr, 0, 20);
	CHECK("fifo", got == 20, "named pipe: message %u of 20 is wrong or missing", got);
	int qw2 = open(qpath, O_WRONLY | O_NONBLOCK); /* the same FIFO, by its path */
	for (unsigned i = 20; i < 30 && qw2 >= 0; i++)
		put(qw2, i);
	got = qw2 >= 0 ? take(qr, 20, 10) : 0;
	CHECK("fifo", got == 10, "named pipe by path: %u of 10 messages (%s)", got,
	      qw2 < 0 ? strerror(errno) : last_read);
	for (unsigned i = 100; i < 200; i++)
		record('p', i);
	int st = 0;
	waitpid(kid, &st, 0);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	CHECK("order", code != 255 && !(code & 1), "the child read P1 out of order or lost messages (%#x)", st);
	struct stat fst;
	fstat(ffd, &fst);
	CHECK("offset", fst.st_size == 400 * REC && lseek(ffd, 0, SEEK_CUR) == 400 * REC,
	      "the shared file is %ld bytes, offset %ld: records were overwritten", (long)fst.st_size,
	      (long)lseek(ffd, 0, SEEK_CUR));
	unlink(qpath);
	return zoo_finish("4 pipes (one in packet mode), 1 named pipe, 1 shared file, 2 processes");
}
