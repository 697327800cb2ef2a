/*
 * vdso-moved: a program that moved its vDSO block (and, built as tests/zoo/vdso-gone.c with
 * VDSO_UNMAP, one that removed it).
 *   [vvar], [vvar_vclock] and [vdso] moved together (mremap) 64 MiB lower; the program calls
 *   __vdso_clock_gettime at its new address (found in the vDSO's own symbol table). With
 *   VDSO_UNMAP the three are unmapped instead: the dump must run its system calls without it.
 * Neither may call glibc's clock_gettime, whose pointer into the vDSO is stale: time comes
 * from the raw system call.
 * After restore and SIGTERM: the block is where the program put it (or gone), the generic maps
 * check holds, and the moved __vdso_clock_gettime still gives the time (within 1 s of the
 * system call's).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <elf.h>
#include <sys/auxv.h>
#include <sys/mman.h>

typedef int (*gettime_fn)(clockid_t, struct timespec *);
static gettime_fn moved_gettime;
static unsigned long vdso_at;
#ifdef VDSO_UNMAP
static const int unmapped = 1;
#else
static const int unmapped = 0;
#endif

/* The offset of symbol name in the vDSO image at base (its section headers are mapped too). */
static long vdso_symbol(const unsigned char *base, const char *name)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(base + eh->e_shoff);
	for (int i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_DYNSYM)
			continue;
		const Elf64_Sym *sym = (const Elf64_Sym *)(base + sh[i].sh_offset);
		const char *str = (const char *)base + sh[sh[i].sh_link].sh_offset;
		for (size_t k = 0; k < sh[i].sh_size / sizeof(*sym); k++)
			if (!strcmp(str + sym[k].st_name, name))
				return (long)sym[k].st_value;
	}
	return -1;
}

static uint64_t sys_now(void)
{
	struct timespec ts;
	syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void c_place(ucontext_t *u)
{
	(void)u; /* a block at another place: move [vdso] once more */
	unsigned long s, e;
	if (zoo_find_map("[vdso]", &s, &e, NULL) == 0)
		mremap((void *)s, e - s, e - s, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(s - (128ul << 20)));
	else
		mmap((void *)vdso_at, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
}
static const struct zoo_corruption corruptions[] = {
	{ "place", c_place, 0 },
};

int main(int argc, char **argv)
{
	static const char *const names[] = { "[vvar]", "[vvar_vclock]", "[vdso]" };
	unsigned long start[3] = { 0 }, end[3] = { 0 };

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	for (int i = 0; i < 3; i++)
		zoo_find_map(names[i], &start[i], &end[i], NULL);
	if (!start[2])
		zoo_die("no [vdso]");
	vdso_at = start[2];
	const unsigned long delta = 64ul << 20;
	for (int i = 0; i < 3; i++) {
		if (!start[i])
			continue;
		void *r = unmapped ? (void *)(long)munmap((void *)start[i], end[i] - start[i])
				   : mremap((void *)start[i], end[i] - start[i], end[i] - start[i],
					    MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(start[i] - delta));
		if (r == MAP_FAILED || (unmapped && r))
			zoo_die("%s %s: %s", unmapped ? "munmap" : "mremap", names[i], strerror(errno));
	}
	if (!unmapped) {
		vdso_at = start[2] - delta;
		long off = vdso_symbol((const unsigned char *)vdso_at, "__vdso_clock_gettime");
		if (off < 0)
			zoo_die("no __vdso_clock_gettime in the vDSO");
		moved_gettime = (gettime_fn)(vdso_at + off);
		struct timespec ts;
		if (moved_gettime(CLOCK_REALTIME, &ts))
			zoo_die("the moved vDSO's clock_gettime fails");
	}
	zoo_ready();
	zoo_wait();

	unsigned long s, e;
	int found = zoo_find_map("[vdso]", &s, &e, NULL) == 0;
	CHECK("place", unmapped ? !found && zoo_map_of(vdso_at, &s, &e, NULL) != 0 : found && s == vdso_at,
	      "[vdso] is %s%lx, expected %s", found ? "at " : "gone, at ", found ? s : 0,
	      unmapped ? "none" : "where it was moved");
	if (!unmapped && found && s == vdso_at) {
		struct timespec ts;
		uint64_t now = sys_now();
		int r = moved_gettime(CLOCK_REALTIME, &ts);
		uint64_t t = ts.tv_sec * 1000000000ull + ts.tv_nsec;
		CHECK("place", r == 0 && (t > now ? t - now : now - t) < 1000000000ull,
		      "the moved vDSO's clock_gettime gives %llu, the system call %llu", (unsigned long long)t,
		      (unsigned long long)now);
	}
	return zoo_finish(unmapped ? "no vDSO" : "vDSO block moved 64 MiB down");
}
