/*
 * aio: AIO contexts (io_setup) and completions not read yet.
 *   A: io_setup(128); five reads of a file submitted (each completes at once), two of them
 *   read with io_getevents: three wait in the ring (data 3, 4, 5).
 *   B: io_setup(1); three reads submitted and read: its ring's head and tail are 3.
 * After restore and SIGTERM: A and B are the same ids, their rings mapped there; A gives the
 * three completions waiting (data and result), then takes new requests; B takes a new request
 * and gives its completion; both can be destroyed.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <linux/aio_abi.h>

static aio_context_t a, b, a_before;
static char buf[8][16];
static int file;

static long io_setup(unsigned n, aio_context_t *c) { return syscall(SYS_io_setup, n, c); }
static long io_submit(aio_context_t c, long n, struct iocb **p) { return syscall(SYS_io_submit, c, n, p); }
static long io_getevents(aio_context_t c, long min, long max, struct io_event *e)
{
	struct timespec zero = { 0, 0 };
	return syscall(SYS_io_getevents, c, min, max, e, &zero);
}
static long io_destroy(aio_context_t c) { return syscall(SYS_io_destroy, c); }

static int submit_read(aio_context_t c, int data)
{
	struct iocb cb;
	struct iocb *p = &cb;
	memset(&cb, 0, sizeof(cb));
	cb.aio_data = data;
	cb.aio_lio_opcode = IOCB_CMD_PREAD;
	cb.aio_fildes = file;
	cb.aio_buf = (uint64_t)(uintptr_t)buf[data % 8];
	cb.aio_nbytes = 10 + data;
	return io_submit(c, 1, &p) == 1 ? 0 : -1;
}

static void c_events(ucontext_t *u) { (void)u; struct io_event e; io_getevents(a, 1, 1, &e); }
static void c_context(ucontext_t *u) { (void)u; aio_context_t n = 0; io_setup(128, &n); io_destroy(a); a = n; }
static const struct zoo_corruption corruptions[] = {
	{ "events", c_events, 0 },
	{ "context", c_context, 0 },
};

int main(int argc, char **argv)
{
	char path[4200];
	struct io_event ev[8];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(path, sizeof(path), "%s/data", zoo_tmpdir());
	if (zoo_write_file(path, "0123456789abcdefghijklmnopqrstuvwxyz", 36) || (file = open(path, O_RDONLY)) < 0)
		zoo_die("%s: %s", path, strerror(errno));
	if (io_setup(128, &a) || io_setup(1, &b))
		zoo_die("io_setup: %s", strerror(errno));
	for (int i = 1; i <= 5; i++)
		if (submit_read(a, i))
			zoo_die("io_submit: %s", strerror(errno));
	if (io_getevents(a, 2, 2, ev) != 2)
		zoo_die("io_getevents: %s", strerror(errno));
	for (int i = 1; i <= 3; i++)
		if (submit_read(b, i) || io_getevents(b, 1, 1, ev) != 1)
			zoo_die("context B: %s", strerror(errno));
	a_before = a;
	zoo_check_maps = 0; /* a ring is a new inode of the aio filesystem */
	zoo_ready();
	zoo_wait();

	unsigned long start, end;
	CHECK("context", a == a_before && zoo_map_of(a, &start, &end, NULL) == 0 && start == a,
	      "context A is %#lx, was %#lx, or no ring is mapped there", (unsigned long)a, (unsigned long)a_before);
	long n = io_getevents(a, 0, 8, ev);
	int ok = n == 3;
	for (int i = 0; ok && i < 3; i++)
		ok = ev[i].data == (uint64_t)(3 + i) && ev[i].res == 13 + i;
	CHECK("events", ok, "context A gave %ld completions (data %llu...), expected 3 (3, 4, 5)", n,
	      n > 0 ? (unsigned long long)ev[0].data : 0ull);
	CHECK("context", submit_read(a, 6) == 0 && io_getevents(a, 1, 1, ev) == 1 && ev[0].data == 6 && ev[0].res == 16,
	      "context A does not take a new request: %s", strerror(errno));
	CHECK("context", submit_read(b, 7) == 0 && io_getevents(b, 1, 1, ev) == 1 && ev[0].data == 7 &&
				 !memcmp(buf[7], "0123456789abcdef", 16),
	      "context B does not take a new request: %s", strerror(errno));
	CHECK("context", io_destroy(a) == 0 && io_destroy(b) == 0, "io_destroy: %s", strerror(errno));
	return zoo_finish("2 AIO contexts, 3 completions waiting");
}
