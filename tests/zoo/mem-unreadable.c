/*
 * mem-unreadable: memory the dump cannot read with process_vm_readv (the mapping does not
 * allow reading), each holding data.
 *   N: 4 private anonymous pages turned PROT_NONE; W: 2 pages PROT_WRITE only; X: 2 pages
 *   PROT_EXEC only; F: a private file mapping with a changed page, turned PROT_NONE;
 *   S: 2 pages of shared anonymous memory turned PROT_NONE; G: 4 pages with guard pages
 *   (MADV_GUARD_INSTALL, where the kernel has it) around the two in the middle.
 * After restore and SIGTERM: the same protections (generic maps check), and once readable
 * again, every page its data.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/mman.h>

#define PAGE 4096
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
static unsigned char *n, *w, *x, *f, *s, *g;
static int guards;

static unsigned char *anon(size_t pages, int shared, uint64_t seed)
{
	unsigned char *m = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
				(shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	zoo_fill(m, pages * PAGE, seed);
	return m;
}

static void c_none(ucontext_t *u) { (void)u; mprotect(n, PAGE, PROT_READ | PROT_WRITE); n[10] ^= 1; mprotect(n, PAGE, PROT_NONE); }
static void c_file(ucontext_t *u) { (void)u; mprotect(f, PAGE, PROT_READ | PROT_WRITE); f[20] ^= 1; mprotect(f, PAGE, PROT_NONE); }
static const struct zoo_corruption corruptions[] = {
	{ "none", c_none, 0 },
	{ "file", c_file, 0 },
};

int main(int argc, char **argv)
{
	char path[4200];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	n = anon(4, 0, 1);
	w = anon(2, 0, 2);
	x = anon(2, 0, 3);
	s = anon(2, 1, 4);
	g = anon(4, 0, 5);
	snprintf(path, sizeof(path), "%s/file", zoo_tmpdir());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	unsigned char page[2 * PAGE];
	zoo_fill(page, sizeof(page), 6);
	if (fd < 0 || write(fd, page, sizeof(page)) != (ssize_t)sizeof(page))
		zoo_die("%s: %s", path, strerror(errno));
	f = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (f == MAP_FAILED)
		zoo_die("mmap %s: %s", path, strerror(errno));
	zoo_fill(f, PAGE, 7); /* the first page is the process's own copy */
	if (mprotect(n, 4 * PAGE, PROT_NONE) || mprotect(w, 2 * PAGE, PROT_WRITE) || mprotect(x, 2 * PAGE, PROT_EXEC) ||
	    mprotect(f, 2 * PAGE, PROT_NONE) || mprotect(s, 2 * PAGE, PROT_NONE))
		zoo_die("mprotect: %s", strerror(errno));
	guards = madvise(g, PAGE, MADV_GUARD_INSTALL) == 0 && madvise(g + 3 * PAGE, PAGE, MADV_GUARD_INSTALL) == 0;
	zoo_ready();
	zoo_wait();

	mprotect(n, 4 * PAGE, PROT_READ);
	mprotect(w, 2 * PAGE, PROT_READ);
	mprotect(x, 2 * PAGE, PROT_READ);
	mprotect(f, 2 * PAGE, PROT_READ);
	mprotect(s, 2 * PAGE, PROT_READ);
	CHECK("none", zoo_check_fill(n, 4 * PAGE, 1) < 0, "the PROT_NONE pages differ");
	CHECK("none", zoo_check_fill(w, 2 * PAGE, 2) < 0 && zoo_check_fill(x, 2 * PAGE, 3) < 0,
	      "the write-only or execute-only pages differ");
	CHECK("none", zoo_check_fill(s, 2 * PAGE, 4) < 0, "the shared PROT_NONE pages differ");
	unsigned char all[4 * PAGE];
	zoo_fill(all, sizeof(all), 5);
	CHECK("none", !memcmp(g + PAGE, all + PAGE, 2 * PAGE), "the pages between guards differ");
	if (guards) { /* pagemap bit 58: a guard region */
		uint64_t pm[4] = { 0 };
		int pfd = open("/proc/self/pagemap", O_RDONLY);
		pread(pfd, pm, sizeof(pm), (uintptr_t)g / PAGE * 8);
		close(pfd);
		CHECK("none", (pm[0] >> 58 & 1) && (pm[3] >> 58 & 1) && !(pm[1] >> 58 & 1),
		      "the guard pages are gone (pagemap %#llx %#llx)", (unsigned long long)pm[0],
		      (unsigned long long)pm[3]);
	}
	zoo_fill(page, sizeof(page), 6);
	CHECK("file", zoo_check_fill(f, PAGE, 7) < 0 && !memcmp(f + PAGE, page + PAGE, PAGE),
	      "the PROT_NONE file mapping's pages differ");
	return zoo_finish(guards ? "6 unreadable mappings, guard pages" : "5 unreadable mappings");
}
