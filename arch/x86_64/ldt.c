/*
 * The process's local descriptor table (modify_ldt(2): Wine's 32-bit code and DOS emulators keep
 * segments there). Read inside the task at dump; made again, entry by entry, by the new process
 * before its blob runs (the table belongs to the memory, which the blob empties and fills but
 * keeps). Its entries are saved as the kernel holds them, 8 bytes each, the empty ones at its
 * end left out.
 */
#include <asm/ldt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "seize.h"
#include "task.h"
#include "util.h"

#define LDT_TABLE_BYTES (LDT_ENTRIES * LDT_ENTRY_SIZE)
#define MODIFY_LDT_READ 0
#define MODIFY_LDT_WRITE 0x11 /* a whole entry, every field of user_desc */

/*
 * The table, read into a mapping of the task's own made for it (the scratch page is smaller than
 * the largest table; modify_ldt reads from its start only): buf gets LDT_TABLE_BYTES.
 */
static int read_table(struct dump_task *t, uint8_t *buf)
{
	uint64_t map[6] = { 0, LDT_TABLE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0 };
	int64_t at, ret;
	int err;

	if ((err = inject_syscall(&t->inj, SYS_mmap, map, &at)))
		return err;
	if (at < 0 && at > -4096) {
		pr_err("dump pid %d: no room for a copy of its local descriptor table: %s", t->pid, strerror(-at));
		return (int)at;
	}
	uint64_t read[6] = { MODIFY_LDT_READ, (uint64_t)at, LDT_TABLE_BYTES };
	if (!(err = inject_syscall(&t->inj, SYS_modify_ldt, read, &ret))) {
		if (ret != LDT_TABLE_BYTES) {
			err = inject_ret_err(ret);
			pr_err("dump pid %d: cannot read its local descriptor table: %s", t->pid, strerror(-err));
		} else if ((err = task_mem_read(t->pid, (uint64_t)at, buf, LDT_TABLE_BYTES))) {
			pr_err("dump pid %d: cannot read the copy of its local descriptor table: %s", t->pid,
			       strerror(-err));
		}
	}
	uint64_t unmap[6] = { (uint64_t)at, LDT_TABLE_BYTES };
	int unmapped = inject_syscall(&t->inj, SYS_munmap, unmap, &ret);
	if (!unmapped && ret) {
		pr_err("dump pid %d: munmap of the copy of its local descriptor table: %s", t->pid,
		       strerror(-inject_ret_err(ret)));
		unmapped = inject_ret_err(ret);
	}
	return err ? err : unmapped;
}

static bool entry_empty(const uint8_t *raw)
{
	for (unsigned i = 0; i < LDT_ENTRY_SIZE; i++)
		if (raw[i])
			return false;
	return true;
}

static int dump_ldt(struct dump_task *t)
{
	uint64_t probe[6] = { MODIFY_LDT_READ, t->inj.scratch, LDT_ENTRY_SIZE };
	auto_free uint8_t *buf = NULL;
	size_t len = LDT_TABLE_BYTES;
	int64_t ret;
	int err;

	/* 0: no table (nearly every process); the size asked: one is there */
	if ((err = inject_syscall(&t->inj, SYS_modify_ldt, probe, &ret)))
		return err;
	if (!ret || ret == -ENOSYS) /* (a kernel without modify_ldt: no process has a table) */
		return 0;
	if (ret != LDT_ENTRY_SIZE) {
		err = inject_ret_err(ret);
		pr_err("dump pid %d: cannot read its local descriptor table: %s", t->pid, strerror(-err));
		return err;
	}
	if (!(buf = xmalloc(LDT_TABLE_BYTES)))
		return -ENOMEM;
	if ((err = read_table(t, buf)))
		return err;
	while (len && entry_empty(buf + len - LDT_ENTRY_SIZE))
		len -= LDT_ENTRY_SIZE;
	if (!len) /* a table with every entry cleared since */
		return 0;
	t->core->has_ldt = true;
	t->core->ldt.len = len;
	t->core->ldt.data = buf;
	buf = NULL;
	return 0;
}

/* A descriptor as the kernel keeps it, back into what modify_ldt takes. */
static struct user_desc entry_desc(const uint8_t *raw, unsigned number)
{
	uint32_t lo, hi;

	memcpy(&lo, raw, 4);
	memcpy(&hi, raw + 4, 4);
	unsigned type = (hi >> 8) & 0xf;
	return (struct user_desc){
		.entry_number = number,
		.base_addr = (lo >> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000),
		.limit = (lo & 0xffff) | (hi & 0xf0000),
		.seg_32bit = (hi >> 22) & 1,
		.contents = (type >> 2) & 3,
		.read_exec_only = !(type & 2),
		.limit_in_pages = (hi >> 23) & 1,
		.seg_not_present = !((hi >> 15) & 1),
		.useable = (hi >> 20) & 1,
		.lm = (hi >> 21) & 1,
	};
}

static int validate_ldt(struct restore_task *t)
{
	const ProtobufCBinaryData *ldt = &t->core->ldt;

	if (!t->core->has_ldt)
		return 0;
	if (!ldt->len || ldt->len % LDT_ENTRY_SIZE || ldt->len > LDT_TABLE_BYTES) {
		pr_err("image core-%d.img: a local descriptor table of %zu bytes", t->pid, ldt->len);
		return -EINVAL;
	}
	for (size_t off = 0; off < ldt->len; off += LDT_ENTRY_SIZE) {
		uint32_t hi;
		memcpy(&hi, ldt->data + off + 4, 4);
		/* what modify_ldt makes: a code or data segment (S) of privilege level 3 */
		if (!entry_empty(ldt->data + off) && (!((hi >> 12) & 1) || ((hi >> 13) & 3) != 3)) {
			pr_err("image core-%d.img: local descriptor table entry %zu is not one modify_ldt makes",
			       t->pid, off / LDT_ENTRY_SIZE);
			return -EINVAL;
		}
	}
	return 0;
}

static int restore_ldt(struct restore_task *t)
{
	const ProtobufCBinaryData *ldt = &t->core->ldt;

	for (size_t off = 0; t->core->has_ldt && off < ldt->len; off += LDT_ENTRY_SIZE) {
		if (entry_empty(ldt->data + off))
			continue;
		struct user_desc d = entry_desc(ldt->data + off, off / LDT_ENTRY_SIZE);
		if (syscall(SYS_modify_ldt, MODIFY_LDT_WRITE, &d, sizeof(d))) {
			pr_perror("restore pid %d: cannot set entry %u of its local descriptor table", t->pid,
				  d.entry_number);
			return -errno;
		}
	}
	return 0;
}

const struct state_ops state_ldt = {
	.name = "local descriptor table",
	.dump = dump_ldt,
	.validate = validate_ldt,
	.restore = restore_ldt,
};
