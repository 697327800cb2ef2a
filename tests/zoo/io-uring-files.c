/*
 * io-uring-files: an io_uring instance with a table of 6 registered files (IORING_REGISTER_FILES,
 * as liburing's io_uring_register_files and fio's registerfiles make it), used by requests that
 * name a file by its slot (IOSQE_FIXED_FILE):
 *   0: a regular file of $ZOO_TMPDIR (O_RDWR), 8 KiB of known bytes;
 *   1: the read end of a pipe whose write end only a child held (it wrote 100 bytes and
 *      exited): the process holds one open file of that pipe, as stasis needs to tell it;
 *   2: empty;
 *   3: one end of a unix stream socket pair;
 *   4: a file opened O_RDONLY and dup'ed (two fds, one open file);
 *   5: empty.
 * Before the dump each slot was used once. After restore and SIGTERM: fdinfo counts a table of
 * 6; a READ through slot 0 at an offset returns the file's bytes; a WRITE through slot 0 lands in
 * the file (read back through the fd); a READ through slot 1 returns what the child wrote into
 * the pipe before the dump; a SEND through slot 3 arrives at the other end; a READ through slot
 * 4 returns that file's bytes; slots 2 and 5 are EBADF.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include "zoo-uring.h"
#include <sys/socket.h>

static struct zring U = { .name = "U" };
static int data_fd, pipe_rd, sv[2], ro_fd, ro_dup, table[6];
static uint8_t buf[8192];

/* A request on slot of the table (IOSQE_FIXED_FILE): the completion's res, INT32_MIN if none. */
static int32_t fixed_file(int opcode, unsigned slot, void *addr, unsigned len, uint64_t off)
{
	struct io_uring_cqe c;
	char err[128];
	struct io_uring_sqe *s = zring_sqe(&U);
	s->opcode = opcode;
	s->fd = slot;
	s->flags = IOSQE_FIXED_FILE;
	s->addr = (uintptr_t)addr;
	s->len = len;
	s->off = off;
	return zring_run(&U, -1, &c, err, sizeof(err)) ? c.res : INT32_MIN;
}

static int pattern_at(const uint8_t *p, size_t len, size_t from)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)((from + i) * 13))
			return 0;
	return 1;
}

/* A pipe whose write end only a child held: it wrote 100 bytes and exited. */
static void pipe_setup(void)
{
	int p[2];
	if (pipe(p))
		zoo_die("pipe: %s", strerror(errno));
	pid_t child = fork();
	if (child == 0) {
		memset(buf, 'p', 100);
		_exit(write(p[1], buf, 100) == 100 ? 0 : 1);
	}
	close(p[1]);
	int st;
	if (child < 0 || waitpid(child, &st, 0) != child || st)
		zoo_die("the pipe's writer failed");
	pipe_rd = p[0];
}

/* fdinfo counts a table of 6 registered files. */
static int counted(void)
{
	char l[64];
	return zring_fdinfo(&U, "UserFiles:", l, sizeof(l)) == 6;
}

static void c_files(ucontext_t *u)
{
	(void)u;
	syscall(SYS_io_uring_register, U.fd, IORING_UNREGISTER_FILES, NULL, 0);
}
static void c_swapped(ucontext_t *u) /* slots 0 and 4 swapped */
{
	(void)u;
	int swapped[6] = { table[4], table[1], -1, table[3], table[0], -1 };
	syscall(SYS_io_uring_register, U.fd, IORING_UNREGISTER_FILES, NULL, 0);
	syscall(SYS_io_uring_register, U.fd, IORING_REGISTER_FILES, swapped, 6);
}
static const struct zoo_corruption corruptions[] = {
	{ "files", c_files, 0 },
	{ "swapped", c_swapped, 0 },
};

int main(int argc, char **argv)
{
	char path[600];
	uint8_t back[256];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 13);
	snprintf(path, sizeof(path), "%s/data", zoo_tmpdir());
	if ((data_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
	    write(data_fd, buf, sizeof(buf)) != sizeof(buf))
		zoo_die("%s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "%s/ro", zoo_tmpdir());
	int w = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (w < 0 || write(w, "read-only file", 14) != 14 || close(w) ||
	    (ro_fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || (ro_dup = dup(ro_fd)) < 0)
		zoo_die("%s: %s", path, strerror(errno));
	pipe_setup();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		zoo_die("socketpair: %s", strerror(errno));
	int t[6] = { data_fd, pipe_rd, -1, sv[0], ro_fd, -1 };
	memcpy(table, t, sizeof(t));
	zring_make(&U, 8, 0, 1);
	if (syscall(SYS_io_uring_register, U.fd, IORING_REGISTER_FILES, table, 6))
		zoo_die("IORING_REGISTER_FILES: %s", strerror(errno));
	/* each used once before the dump */
	if (fixed_file(IORING_OP_READ, 0, back, 64, 1000) != 64 || !pattern_at(back, 64, 1000) ||
	    fixed_file(IORING_OP_READ, 1, back, 40, -1ULL) != 40 || fixed_file(IORING_OP_SEND, 3, "before", 6, 0) != 6 ||
	    recv(sv[1], back, sizeof(back), 0) != 6 || fixed_file(IORING_OP_READ, 4, back, 4, 0) != 4)
		zoo_die("a request through the table before the dump failed");
	zoo_check_maps = 0; /* the ring is a new inode */
	zoo_ready();
	zoo_wait();

	CHECK("files", counted(), "fdinfo does not count a table of 6 registered files");
	int32_t res = fixed_file(IORING_OP_READ, 0, back, 128, 5000);
	CHECK("swapped", res == 128 && pattern_at(back, 128, 5000), "a READ through slot 0 (the data file): %d", res);
	memset(back, 'w', 32);
	res = fixed_file(IORING_OP_WRITE, 0, back, 32, 100);
	uint8_t now[32];
	CHECK("files", res == 32 && pread(data_fd, now, 32, 100) == 32 && !memcmp(now, back, 32),
	      "a WRITE through slot 0 did not land in the data file: %d", res);
	res = fixed_file(IORING_OP_READ, 1, back, 100, -1ULL);
	CHECK("files", res == 60 && back[0] == 'p' && back[59] == 'p',
	      "a READ through slot 1 (the pipe) after the restore: %d, not the 60 bytes left", res);
	res = fixed_file(IORING_OP_SEND, 3, "after", 5, 0);
	CHECK("files", res == 5 && recv(sv[1], back, sizeof(back), MSG_DONTWAIT) == 5 && !memcmp(back, "after", 5),
	      "a SEND through slot 3 (the socket): %d, or it did not arrive", res);
	res = fixed_file(IORING_OP_READ, 4, back, 20, 5);
	CHECK("swapped", res == 9 && !memcmp(back, "only file", 9),
	      "a READ through slot 4 (the read-only file): %d", res);
	res = fixed_file(IORING_OP_READ, 2, back, 1, 0);
	int32_t res5 = fixed_file(IORING_OP_READ, 5, back, 1, 0);
	CHECK("files", res == -EBADF && res5 == -EBADF, "READs through empty slots 2 and 5: %d and %d, not -EBADF", res, res5);
	return zoo_finish("a table of 6 registered files (a data file, a pipe, a socket, a dup'ed file, 2 empty) "
			  "used through their slots");
}
