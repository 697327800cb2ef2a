/*
 * madvise: mappings with the behaviour madvise() gave them (smaps VmFlags).
 *   W: 4 pages MADV_WIPEONFORK with a pattern (a fork's child sees zeros);
 *   D: 4 pages MADV_DONTFORK (a fork's child does not have them);
 *   H: 2 MiB MADV_HUGEPAGE and N: 4 pages MADV_NOHUGEPAGE; P: 4 pages MADV_DONTDUMP;
 *   L: 4 pages mlock()ed, the last never written (a zero page the dump skips);
 *   O: 4 pages mlock2(MLOCK_ONFAULT), one touched;
 *   S: 4 pages MADV_SEQUENTIAL and R: 4 pages MADV_RANDOM; V: 4 pages mapped MAP_NORESERVE;
 *   X: 4 pages mapped MAP_DROPPABLE (Linux 6.11) with a pattern;
 *   G: 4 pages with a guard page (MADV_GUARD_INSTALL, Linux 6.13) at the third, then mlock()ed
 *   (the lock is set, its filling in stops at the guard); E: 2 read-only pages sealed
 *   (mseal, Linux 6.10); locked although their pages cannot be filled in (mlock() says ENOMEM
 *   and sets the lock, as mlockall() does to a thread stack's guard): Z, 4 PROT_NONE pages,
 *   and F, 4 pages of a shared mapping of a file of one page, its first page written.
 * After restore and SIGTERM: each keeps its content and its VmFlags (wf, dc, hg, nh, dd, lo,
 * lf, sr, rr, nr, dp), L is wholly locked in memory, and a forked child sees W zeroed and D
 * missing. X, memory the kernel may free whenever it likes, holds its pattern or zeros (what
 * the kernel gives for dropped pages; a restore does not keep it, as criu), nothing else, is
 * still droppable (dp) and writable, and a forked child sees it zeroed. G is locked (lo), its
 * third page still faults; E is sealed (sl): mprotect() of it fails with EPERM; Z and F are
 * locked (lo), F's first page holds what was written.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define PAGES4 (4 * 4096)
#define HUGE (2u << 20)

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif

#define MADV_GUARD_INSTALL_ 102
#define MADV_GUARD_REMOVE_ 103

static unsigned char *w, *d, *h, *n, *p, *l, *o, *sq, *rn, *v, *x, *g, *e, *z, *f;
static sigjmp_buf guard_jmp;
static void on_guard_fault(int sig) { (void)sig; siglongjmp(guard_jmp, 1); }

/* Does reading addr fault? */
static int faults(const volatile unsigned char *addr)
{
	struct sigaction sa = { .sa_handler = on_guard_fault }, old;
	int faulted = 0;
	sigaction(SIGSEGV, &sa, &old);
	if (!sigsetjmp(guard_jmp, 1))
		(void)*addr;
	else
		faulted = 1;
	sigaction(SIGSEGV, &old, NULL);
	return faulted;
}

static unsigned char *region(size_t len, int advice, uint64_t seed)
{
	unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || madvise(m, len, advice))
		zoo_die("madvise %d: %s", advice, strerror(errno));
	zoo_fill(m, len, seed);
	return m;
}

/* Does the mapping at addr show flag (two letters) in its smaps VmFlags? */
static int has_flag(const void *addr, const char *flag)
{
	static char smaps[1 << 20];
	char head[32];
	zoo_read_file("/proc/self/smaps", smaps, sizeof(smaps));
	snprintf(head, sizeof(head), "%lx-", (unsigned long)addr);
	char *at = strstr(smaps, head), *vf = at ? strstr(at, "VmFlags:") : NULL;
	if (!vf)
		return 0;
	char *eol = strchr(vf, '\n'), want[8];
	if (eol)
		*eol = 0;
	snprintf(want, sizeof(want), " %s", flag);
	return strstr(vf, want) != NULL;
}

static void c_wipe(ucontext_t *u) { (void)u; madvise(w, PAGES4, MADV_KEEPONFORK); }
static void c_dontfork(ucontext_t *u) { (void)u; madvise(d, PAGES4, MADV_DOFORK); }
static void c_huge(ucontext_t *u) { (void)u; madvise(h, HUGE, MADV_NOHUGEPAGE); }
static void c_unlock(ucontext_t *u) { (void)u; munlock(l, PAGES4); }
static void c_unlock_unfilled(ucontext_t *u) { (void)u; munlock(z, PAGES4); munlock(f, PAGES4); }
static void c_readahead(ucontext_t *u) { (void)u; madvise(sq, PAGES4, MADV_NORMAL); }
/* X mapped again as plain private memory, its content kept */
static void c_droppable(ucontext_t *u)
{
	static unsigned char keep[PAGES4];
	(void)u;
	if (!x)
		return;
	memcpy(keep, x, PAGES4);
	mmap(x, PAGES4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	memcpy(x, keep, PAGES4);
}
static void c_guard(ucontext_t *u) { (void)u; if (g) madvise(g + 2 * 4096, 4096, MADV_GUARD_REMOVE_); }
/* E mapped again elsewhere, not sealed, its content kept */
static void c_sealed(ucontext_t *u)
{
	(void)u;
	unsigned char *copy = e ? mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : NULL;
	if (copy && copy != MAP_FAILED) {
		memcpy(copy, e, 2 * 4096);
		mprotect(copy, 2 * 4096, PROT_READ);
		e = copy;
	}
}
static const struct zoo_corruption corruptions[] = {
	{ "guard", c_guard, 0 },
	{ "sealed", c_sealed, 0 },
	{ "wipeonfork", c_wipe, 0 },
	{ "dontfork", c_dontfork, 0 },
	{ "flags", c_huge, 0 },
	{ "locked", c_unlock, 0 },
	{ "unfilled", c_unlock_unfilled, 0 },
	{ "readahead", c_readahead, 0 },
	{ "droppable", c_droppable, 0 },
};

/* X holds its pattern (seed 10) or zeros, nothing else */
static int pattern_or_zeros(const unsigned char *m)
{
	for (size_t i = 0; i < PAGES4; i++)
		if (m[i])
			return zoo_check_fill(m, PAGES4, 10) < 0;
	return 1;
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	w = region(PAGES4, MADV_WIPEONFORK, 1);
	d = region(PAGES4, MADV_DONTFORK, 2);
	h = region(HUGE, MADV_HUGEPAGE, 3);
	n = region(PAGES4, MADV_NOHUGEPAGE, 4);
	p = region(PAGES4, MADV_DONTDUMP, 5);
	sq = region(PAGES4, MADV_SEQUENTIAL, 7);
	rn = region(PAGES4, MADV_RANDOM, 8);
	if ((v = mmap(NULL, PAGES4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)) ==
	    MAP_FAILED)
		zoo_die("mmap MAP_NORESERVE: %s", strerror(errno));
	zoo_fill(v, PAGES4, 9);
	x = mmap(NULL, PAGES4, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
	if (x == MAP_FAILED && errno != EINVAL)
		zoo_die("mmap MAP_DROPPABLE: %s", strerror(errno));
	if (x == MAP_FAILED) /* (a kernel before 6.11) */
		x = NULL;
	else
		zoo_fill(x, PAGES4, 10);
	l = mmap(NULL, PAGES4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	o = mmap(NULL, PAGES4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (l == MAP_FAILED || o == MAP_FAILED || mlock(l, PAGES4) || mlock2(o, PAGES4, MLOCK_ONFAULT))
		zoo_die("mlock: %s", strerror(errno));
	zoo_fill(l, 3 * 4096, 6);
	o[0] = 0x5a;
	g = region(PAGES4, MADV_NORMAL, 11);
	if (madvise(g + 2 * 4096, 4096, MADV_GUARD_INSTALL_)) {
		if (errno != EINVAL)
			zoo_die("MADV_GUARD_INSTALL: %s", strerror(errno));
		munmap(g, PAGES4); /* (a kernel before 6.13) */
		g = NULL;
	} else if (mlock(g, PAGES4) && errno != ENOMEM) { /* (ENOMEM: filling in stopped at the guard) */
		zoo_die("mlock of a range with a guard page: %s", strerror(errno));
	}
	e = region(2 * 4096, MADV_NORMAL, 12);
	if (mprotect(e, 2 * 4096, PROT_READ) || syscall(462 /* mseal */, e, 2 * 4096, 0)) {
		if (errno != ENOSYS && errno != EPERM)
			zoo_die("mseal: %s", strerror(errno));
		e = NULL; /* (a kernel before 6.10, or a seccomp profile without it) */
	}
	z = mmap(NULL, PAGES4, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char path[600];
	snprintf(path, sizeof(path), "%s/one-page", zoo_tmpdir());
	int ff = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	f = ff < 0 || ftruncate(ff, 4096) ? MAP_FAILED : mmap(NULL, PAGES4, PROT_READ | PROT_WRITE, MAP_SHARED, ff, 0);
	if (z == MAP_FAILED || f == MAP_FAILED)
		zoo_die("Z or F: %s", strerror(errno));
	close(ff);
	memcpy(f, "first page", 10);
	if ((mlock(z, PAGES4) && errno != ENOMEM) || (mlock(f, PAGES4) && errno != ENOMEM) ||
	    !has_flag(z, "lo") || !has_flag(f, "lo"))
		zoo_die("mlock of Z or F: %s", strerror(errno));
	zoo_ready();
	zoo_wait();

	CHECK("content", zoo_check_fill(w, PAGES4, 1) < 0 && zoo_check_fill(d, PAGES4, 2) < 0 &&
				 zoo_check_fill(h, HUGE, 3) < 0 && zoo_check_fill(n, PAGES4, 4) < 0 &&
				 zoo_check_fill(p, PAGES4, 5) < 0,
	      "a region's content differs");
	CHECK("wipeonfork", has_flag(w, "wf"), "W lost MADV_WIPEONFORK (no 'wf' in VmFlags)");
	CHECK("dontfork", has_flag(d, "dc"), "D lost MADV_DONTFORK (no 'dc' in VmFlags)");
	CHECK("flags", has_flag(h, "hg") && has_flag(n, "nh") && has_flag(p, "dd"),
	      "VmFlags: H hg %d, N nh %d, P dd %d", has_flag(h, "hg"), has_flag(n, "nh"), has_flag(p, "dd"));
	CHECK("content", zoo_check_fill(l, 3 * 4096, 6) < 0 && o[0] == 0x5a, "L or O differs");
	CHECK("content", zoo_check_fill(sq, PAGES4, 7) < 0 && zoo_check_fill(rn, PAGES4, 8) < 0, "S or R differs");
	CHECK("readahead", has_flag(sq, "sr") && has_flag(rn, "rr") && !has_flag(sq, "rr"),
	      "VmFlags: S sr %d, R rr %d", has_flag(sq, "sr"), has_flag(rn, "rr"));
	CHECK("content", zoo_check_fill(v, PAGES4, 9) < 0, "V differs");
	CHECK("flags", has_flag(v, "nr") && !has_flag(rn, "nr"), "VmFlags: V nr %d, R nr %d", has_flag(v, "nr"),
	      has_flag(rn, "nr"));
	CHECK("locked", has_flag(l, "lo") && has_flag(o, "lo") && has_flag(o, "lf") && !has_flag(l, "lf"),
	      "VmFlags: L lo %d lf %d, O lo %d lf %d", has_flag(l, "lo"), has_flag(l, "lf"), has_flag(o, "lo"),
	      has_flag(o, "lf"));
	if (x) {
		CHECK("droppable", has_flag(x, "dp"), "X is not MAP_DROPPABLE any more (no 'dp' in VmFlags)");
		CHECK("droppable", pattern_or_zeros(x), "X holds neither its pattern nor zeros");
		zoo_fill(x, PAGES4, 10);
		CHECK("droppable", zoo_check_fill(x, PAGES4, 10) < 0, "X cannot be written again");
	}
	if (g) {
		CHECK("guard", faults(g + 2 * 4096) && !faults(g + 3 * 4096), "G's third page does not fault any more");
		CHECK("content", zoo_check_fill(g, 2 * 4096, 11) < 0, "G differs");
		CHECK("locked", has_flag(g, "lo"), "G is not locked any more (no 'lo' in VmFlags)");
	}
	if (e) {
		CHECK("content", zoo_check_fill(e, 2 * 4096, 12) < 0, "E differs");
		int r = mprotect(e, 2 * 4096, PROT_READ | PROT_WRITE);
		CHECK("sealed", r == -1 && errno == EPERM && has_flag(e, "sl"),
		      "E is not sealed: mprotect gave %d (%s), 'sl' in VmFlags %d", r, r ? strerror(errno) : "done",
		      has_flag(e, "sl"));
	}
	CHECK("unfilled", has_flag(z, "lo") && has_flag(f, "lo"), "VmFlags: Z lo %d, F lo %d", has_flag(z, "lo"),
	      has_flag(f, "lo"));
	CHECK("content", !memcmp(f, "first page", 10), "F's first page differs");
	pid_t kid = fork();
	if (kid == 0) {
		int code = 0;
		for (size_t i = 0; i < PAGES4; i++)
			if (w[i] || (x && x[i]))
				code |= 1;
		if (msync(d, PAGES4, MS_ASYNC) == 0 || errno != ENOMEM) /* mapped in the child? */
			code |= 2;
		_exit(code);
	}
	int st = 0;
	waitpid(kid, &st, 0);
	CHECK("wipeonfork", WIFEXITED(st) && !(WEXITSTATUS(st) & 1), "a forked child saw W's or X's content (%#x)", st);
	CHECK("dontfork", WIFEXITED(st) && !(WEXITSTATUS(st) & 2), "a forked child has D mapped (%#x)", st);
	return zoo_finish(x && g && e ? "15 mappings with madvise(), mlock(), mmap() flags, a guard page and a seal"
				      : "mappings with madvise(), mlock() and mmap() flags (no "
					"MAP_DROPPABLE, guard pages or mseal here)");
}
