/*
 * ldt: a local descriptor table (modify_ldt, as Wine and DOS emulators keep one): data segments
 * (entries 2 and 3), a code segment (entry 5, execute only, not present), entry 3000 (the table
 * larger than 16 KiB) with the "useable" bit and a limit in pages. (A segment register loaded
 * with one of its selectors faults on this machine, the LDT's use is not tried: its content is.)
 *   Checks: the whole table as modify_ldt reads it, against the one read before the dump.
 * Corruptions: table (entry 3000 cleared), entry (entry 2's base changed).
 * Blocks in: zoo_wait.
 */
#include "zoo.h"
#include <asm/ldt.h>

#define TABLE_BYTES (LDT_ENTRIES * LDT_ENTRY_SIZE)

static uint8_t table_before[TABLE_BYTES], table_after[TABLE_BYTES];

static int set_entry(unsigned number, uint32_t base, unsigned limit, int contents, int read_exec_only,
		     int not_present, int pages, int useable)
{
	struct user_desc d = {
		.entry_number = number, .base_addr = base, .limit = limit, .seg_32bit = 1,
		.contents = contents, .read_exec_only = read_exec_only, .limit_in_pages = pages,
		.seg_not_present = not_present, .useable = useable,
	};
	return syscall(SYS_modify_ldt, 0x11, &d, sizeof(d));
}

static void c_table(ucontext_t *u)
{
	(void)u;
	struct user_desc empty = { .entry_number = 3000, .read_exec_only = 1, .seg_not_present = 1 };
	syscall(SYS_modify_ldt, 0x11, &empty, sizeof(empty));
}
static void c_entry(ucontext_t *u)
{
	(void)u;
	set_entry(2, 0x7000, 0xfff, 0, 0, 0, 0, 0);
}
static const struct zoo_corruption corruptions[] = {
	{ "table", c_table, 0 },
	{ "entry", c_entry, 0 },
};

/* The first entry in which the table read now differs from the one before, or -1. */
static long first_difference(void)
{
	for (size_t i = 0; i < TABLE_BYTES; i++)
		if (table_before[i] != table_after[i])
			return i / LDT_ENTRY_SIZE;
	return -1;
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (set_entry(2, 0x10000, 0xfff, 0, 0, 0, 0, 0) || set_entry(3, 0x20000, 0xfff, 0, 1, 0, 0, 0) ||
	    set_entry(5, 0x30000, 0x1ffff, 2, 1, 1, 0, 0) || set_entry(3000, 0x12345000, 0x3f, 0, 1, 0, 1, 1))
		zoo_die("modify_ldt: %s", strerror(errno));
	if (syscall(SYS_modify_ldt, 0, table_before, TABLE_BYTES) != TABLE_BYTES)
		zoo_die("modify_ldt read: %s", strerror(errno));
	zoo_ready();
	zoo_wait();

	long n = syscall(SYS_modify_ldt, 0, table_after, TABLE_BYTES), entry = first_difference();
	CHECK("table", n == TABLE_BYTES && entry != 3000, "modify_ldt reads %ld bytes, entry %ld differs", n, entry);
	CHECK("entry", entry < 0 || entry == 3000, "entry %ld differs", entry);
	return zoo_finish(NULL);
}
