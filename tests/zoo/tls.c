/*
 * tls: thread-local storage and fs_base.
 *   An initialised __thread variable (.tdata), a 4 KiB __thread array (.tbss) with a pattern,
 *   a __thread pointer to heap data. After restore: fs_base (arch_prctl ARCH_GET_FS) is the
 *   same, the TCB self pointer at %fs:0 equals it, the variables have the same addresses and
 *   values, and %fs-relative reads agree with the pointers.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <asm/prctl.h>
#include <sys/mman.h>

static __thread uint64_t t_init = 0x1122334455667788ull;
static __thread unsigned char t_arr[4096];
static __thread char *t_ptr;

static unsigned long fs_base, fs_copy_map, fs_copy_len;
static void *addr_init, *addr_arr;

static unsigned long get_fs(void)
{
	unsigned long v = 0;
	syscall(SYS_arch_prctl, ARCH_GET_FS, &v);
	return v;
}
static unsigned long fs0(void)
{
	unsigned long v;
	__asm__ volatile("mov %%fs:0, %0" : "=r"(v));
	return v;
}

static void c_tdata(ucontext_t *u) { (void)u; t_init ^= 0x100; }
static void c_tbss(ucontext_t *u) { (void)u; t_arr[2000] ^= 1; }
/*
 * Move the thread pointer to a copy of the whole mapping that holds the TCB and the static
 * TLS (what a restore that lost fs_base but kept the data would look like). The original
 * fs_base is put back before exiting.
 */
static void c_fsbase(ucontext_t *u)
{
	unsigned long s, e;
	(void)u;
	if (zoo_map_of(fs_base, &s, &e, NULL) < 0)
		zoo_die("no mapping holds fs_base");
	char *copy = mmap(NULL, e - s, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (copy == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	memcpy(copy, (void *)s, e - s);
	unsigned long nfs = (unsigned long)copy + (fs_base - s);
	memcpy((void *)nfs, &nfs, 8);         /* tcb->tcb */
	memcpy((void *)(nfs + 16), &nfs, 8);  /* tcb->self */
	fs_copy_map = (unsigned long)copy;
	fs_copy_len = e - s;
	syscall(SYS_arch_prctl, ARCH_SET_FS, nfs);
}
static void c_heap(ucontext_t *u) { (void)u; t_ptr[10] ^= 1; }

static const struct zoo_corruption corruptions[] = {
	{ "tdata", c_tdata, 0 },
	{ "tbss", c_tbss, 0 },
	{ "fsbase", c_fsbase, 0 },
	{ "tls-heap", c_heap, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));

	fs_base = get_fs();
	if (!fs_base || fs0() != fs_base)
		zoo_die("fs_base %#lx, %%fs:0 %#lx", fs_base, fs0());
	zoo_fill(t_arr, sizeof(t_arr), 31);
	t_ptr = malloc(100);
	zoo_fill(t_ptr, 100, 32);
	addr_init = &t_init;
	addr_arr = t_arr;
	t_init ^= 0xff; /* modified at run time too */

	zoo_ready();
	zoo_wait();

	unsigned long now = get_fs();
	CHECK("fsbase", now == fs_base, "fs_base is %#lx, was %#lx", now, fs_base);
	CHECK("fsbase", fs0() == now, "%%fs:0 is %#lx, fs_base %#lx", fs0(), now);
	CHECK("fsbase", (void *)&t_init == addr_init && (void *)t_arr == addr_arr,
	      "__thread variables moved: %p %p, were %p %p", (void *)&t_init, (void *)t_arr, addr_init, addr_arr);
	uint64_t v;
	__asm__ volatile("mov %%fs:t_init@tpoff, %0" : "=r"(v));
	CHECK("tdata", v == (0x1122334455667788ull ^ 0xff), "%%fs-relative read of t_init gives %#lx", (unsigned long)v);
	CHECK("tdata", t_init == (0x1122334455667788ull ^ 0xff), "t_init is %#lx", (unsigned long)t_init);
	long bad = zoo_check_fill(t_arr, sizeof(t_arr), 31);
	CHECK("tbss", bad < 0, "__thread array differs at offset %ld", bad);
	bad = zoo_check_fill(t_ptr, 100, 32);
	CHECK("tls-heap", bad < 0, "data behind the __thread pointer differs at offset %ld", bad);

	if (fs_copy_map) { /* undo the fsbase corruption */
		syscall(SYS_arch_prctl, ARCH_SET_FS, fs_base);
		munmap((void *)fs_copy_map, fs_copy_len);
	}
	return zoo_finish(NULL);
}
