/*
 * The buffer group stasis adds to an io_uring instance for a moment to tell it from others
 * (cr/files/io-uring-ring-fds.c): group IO_URING_PROBE_GROUP, a ring of one entry in the kernel's
 * memory (IOU_PBUF_RING_MMAP: Linux >= 6.4), its first entry marked as stasis's (the ring stays
 * empty: the kernel reads no entry). A stasis killed before it takes the group back leaves it
 * there; the next dump knows it by its mark and takes it back (cr/files/io-uring.c, which
 * refuses any other group).
 */
#include <errno.h>
#include <linux/io_uring.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../compat/kernel-abi.h"
#include "io-uring-probe-group.h"
#include "log.h"
#include "seize.h"
#include "util.h"

#define PBUF_RING_OFFSET(group) (0x80000000ull | ((uint64_t)(group) << 16)) /* IORING_OFF_PBUF_RING */
#define MARK_ADDR 0x702d736973617473ull /* "stasis-p", the first entry's address */
#define MARK_LEN 0x65626f72u            /* "robe", its length */

long io_uring_register_as(struct dump_task *t, struct inject_ctx *inj, int copy, int fd, unsigned opcode,
			  const void *arg, size_t len)
{
	if (!inj)
		return syscall(SYS_io_uring_register, copy, opcode, arg, 1) < 0 ? -errno : 0;
	uint64_t args[6] = { fd, opcode, inj->scratch, 1 };
	int64_t ret;
	int err = task_mem_write(t->pid, inj->scratch, arg, len);
	if (!err)
		err = inject_syscall(inj, SYS_io_uring_register, args, &ret);
	return err ? err : ret;
}

/* The group's first entry, mapped through stasis's fd copy of the instance, or NULL. */
static struct io_uring_buf *first_entry(int copy)
{
	void *m = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, copy,
		       PBUF_RING_OFFSET(IO_URING_PROBE_GROUP));
	return m == MAP_FAILED ? NULL : m;
}

int io_uring_probe_group_remove(struct dump_task *t, struct inject_ctx *inj, int copy, int fd)
{
	struct stasis_io_uring_buf_reg back = { .bgid = IO_URING_PROBE_GROUP };
	return (int)io_uring_register_as(t, inj, copy, fd, IORING_UNREGISTER_PBUF_RING, &back, sizeof(back));
}

int io_uring_probe_group_add(struct dump_task *t, struct inject_ctx *inj, int copy, int fd)
{
	struct stasis_io_uring_buf_reg reg = { .ring_entries = 1, .bgid = IO_URING_PROBE_GROUP,
					       .flags = IOU_PBUF_RING_MMAP };
	long r = io_uring_register_as(t, inj, copy, fd, IORING_REGISTER_PBUF_RING, &reg, sizeof(reg));
	if (r)
		return (int)r;
	struct io_uring_buf *b = first_entry(copy);
	if (b) {
		b->addr = MARK_ADDR;
		b->len = MARK_LEN;
		munmap(b, PAGE_SIZE);
		return 0;
	}
	pr_perror("dump pid %d fd %d: cannot map buffer group %d it added to the io_uring instance", t->pid, fd,
		  IO_URING_PROBE_GROUP);
	io_uring_probe_group_remove(t, inj, copy, fd);
	return -EIO; /* (not the registration's errors, which mean more to the caller) */
}

int io_uring_probe_group_take_back(struct dump_task *t, struct inject_ctx *inj, int copy, int fd)
{
	struct io_uring_buf *b = first_entry(copy);
	bool marked = b && b->addr == MARK_ADDR && b->len == MARK_LEN;

	if (b)
		munmap(b, PAGE_SIZE);
	if (!marked)
		return 0;
	int err = io_uring_probe_group_remove(t, inj, copy, fd);
	if (err) {
		pr_err("dump pid %d fd %d: cannot take back buffer group %d, left on its io_uring instance by a stasis "
		       "killed during a dump: %s", t->pid, fd, IO_URING_PROBE_GROUP, strerror(-err));
		return err;
	}
	pr_info("dump pid %d fd %d: took back buffer group %d, left on its io_uring instance by a stasis killed "
		"during a dump", t->pid, fd, IO_URING_PROBE_GROUP);
	return 1;
}
