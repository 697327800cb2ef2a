/*
 * io-uring-buffers: an io_uring instance with registered buffers (IORING_REGISTER_BUFFERS, as
 * liburing's io_uring_register_buffers and fio's fixedbufs make them), used by
 * IORING_OP_READ_FIXED and WRITE_FIXED. Four slots:
 *   0: a page of private anonymous memory;
 *   1: two pages of shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS);
 *   2: empty (a sparse slot: NULL, 0);
 *   3: 300 bytes inside another private page, from its byte 100.
 * Before the dump each was used: a WRITE_FIXED from 0 and a READ_FIXED into 3, through a pipe.
 * After restore and SIGTERM: fdinfo lists the same four slots at the same addresses; a
 * WRITE_FIXED from 1 sends what the process wrote into that memory after the restore (the kernel
 * reads the process's pages); a READ_FIXED into 0 and into a piece of 3 lands in the process's
 * memory at those addresses; a READ_FIXED into 2 is refused (EFAULT), as an empty slot is.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include "zoo-uring.h"

#define PAGE 4096

static struct zring U = { .name = "U" };
static uint8_t *priv, *shm;
static struct iovec iov[4];
static int pipefd[2];

/* A READ_FIXED (write 0) or WRITE_FIXED of len bytes at addr, buffer index, through the pipe:
 * the completion's res, or INT32_MIN if it did not complete. */
static int32_t fixed(int write, unsigned index, void *addr, unsigned len)
{
	struct io_uring_cqe c;
	char err[128];
	struct io_uring_sqe *s = zring_sqe(&U);
	s->opcode = write ? IORING_OP_WRITE_FIXED : IORING_OP_READ_FIXED;
	s->fd = write ? pipefd[1] : pipefd[0];
	s->addr = (uintptr_t)addr;
	s->len = len;
	s->buf_index = index;
	s->off = -1ULL; /* (a pipe: no offset) */
	return zring_run(&U, -1, &c, err, sizeof(err)) ? c.res : INT32_MIN;
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static int filled(const uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(seed + i * 7))
			return 0;
	return 1;
}

/* fdinfo's list of U's registered buffers is iov's. */
static int listed(char *why, size_t len)
{
	char l[8192], want[64];
	if (zring_fdinfo(&U, "UserBufs:", l, sizeof(l)) != 4) {
		snprintf(why, len, "fdinfo does not count 4 registered buffers (or cannot be read)");
		return 0;
	}
	for (unsigned k = 0; k < 4; k++) {
		if (iov[k].iov_base)
			snprintf(want, sizeof(want), "%u: %p/%zu\n", k, iov[k].iov_base, iov[k].iov_len);
		else
			snprintf(want, sizeof(want), "%u: <none>\n", k);
		if (!strstr(l, want)) {
			snprintf(why, len, "fdinfo does not list buffer %s", want);
			return 0;
		}
	}
	return 1;
}

static void c_buffers(ucontext_t *u)
{
	(void)u;
	syscall(SYS_io_uring_register, U.fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
}
static void c_moved(ucontext_t *u) /* slot 0 given another page of the same mapping */
{
	(void)u;
	struct iovec moved[4] = { { priv + 2 * PAGE, PAGE }, iov[1], iov[2], iov[3] };
	syscall(SYS_io_uring_register, U.fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
	syscall(SYS_io_uring_register, U.fd, IORING_REGISTER_BUFFERS, moved, 4);
}
static const struct zoo_corruption corruptions[] = {
	{ "buffers", c_buffers, 0 },
	{ "moved", c_moved, 0 },
};

int main(int argc, char **argv)
{
	uint8_t back[2 * PAGE];
	char why[160] = "";

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	priv = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	shm = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (priv == MAP_FAILED || shm == MAP_FAILED || pipe2(pipefd, O_NONBLOCK))
		zoo_die("mmap or pipe2: %s", strerror(errno));
	fcntl(pipefd[1], F_SETPIPE_SZ, 4 * PAGE);
	iov[0] = (struct iovec){ priv, PAGE };
	iov[1] = (struct iovec){ shm, 2 * PAGE };
	iov[2] = (struct iovec){ NULL, 0 };
	iov[3] = (struct iovec){ priv + PAGE + 100, 300 };
	zring_make(&U, 8, 0, 1);
	if (syscall(SYS_io_uring_register, U.fd, IORING_REGISTER_BUFFERS, iov, 4))
		zoo_die("IORING_REGISTER_BUFFERS: %s", strerror(errno));
	fill(priv, PAGE, 1);
	if (fixed(1, 0, priv, PAGE) != PAGE || read(pipefd[0], back, PAGE) != PAGE || !filled(back, PAGE, 1))
		zoo_die("a WRITE_FIXED from buffer 0 before the dump: %s", strerror(errno));
	fill(back, 300, 2);
	if (write(pipefd[1], back, 300) != 300 || fixed(0, 3, iov[3].iov_base, 300) != 300 ||
	    !filled(iov[3].iov_base, 300, 2))
		zoo_die("a READ_FIXED into buffer 3 before the dump: %s", strerror(errno));
	zoo_check_maps = 0; /* the ring is a new inode */
	zoo_ready();
	zoo_wait();

	CHECK("buffers", listed(why, sizeof(why)), "%s", why);
	fill(shm, 2 * PAGE, 3);
	int32_t res = fixed(1, 1, shm, 2 * PAGE);
	CHECK("buffers", res == 2 * PAGE && read(pipefd[0], back, 2 * PAGE) == 2 * PAGE && filled(back, 2 * PAGE, 3),
	      "a WRITE_FIXED from buffer 1 (shared memory) after the restore: %d, or not what the process wrote there",
	      res);
	fill(back, PAGE, 4);
	res = write(pipefd[1], back, PAGE) == PAGE ? fixed(0, 0, priv, PAGE) : INT32_MIN;
	CHECK("moved", res == PAGE && filled(priv, PAGE, 4),
	      "a READ_FIXED into buffer 0 after the restore: %d, or its bytes are not in the process's page", res);
	fill(back, 100, 5);
	res = write(pipefd[1], back, 100) == 100 ? fixed(0, 3, (uint8_t *)iov[3].iov_base + 50, 100) : INT32_MIN;
	CHECK("buffers", res == 100 && filled((uint8_t *)iov[3].iov_base + 50, 100, 5) && filled(iov[3].iov_base, 50, 2),
	      "a READ_FIXED into part of buffer 3 after the restore: %d, or its bytes are not in place", res);
	res = fixed(0, 2, priv, 16);
	CHECK("buffers", res == -EFAULT, "a READ_FIXED into empty slot 2 after the restore: %d, not -EFAULT", res);
	return zoo_finish("4 registered buffers (private, shared, empty, part of a page) read and written by "
			  "fixed requests");
}
