/*
 * Unit tests for the image format (cr/image.c) and `stasis show` (runtime-hook/show.c).
 *
 * Writes one image of every type into a temp dir, reads them back, then damages them in
 * every way a disk, a copy or a person can (truncation at every length, every byte
 * flipped, wrong magic/version/type/length/CRC, garbage, wrong names) and checks that each
 * damaged file is rejected with a negative errno and an error message naming it - never a
 * crash, never a half-read message. Build it with ASan/UBSan (make run-asan) to make
 * "never a crash" mean something.
 *
 * Prints one line per group of checks, every failing check, and at the end exactly one
 * line "N passed, N failed". Exit code 1 on any failure.
 *
 * Also the small containers the engine's lookups use (cr/ino-map.c, xgrow in cr/util.c).
 *
 * KEEP_IMAGES=1 keeps the temp dir (good/ holds one image of each type) for a look.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "commands.h"
#include "image.h"
#include "files/io-uring-layout.h"
#include "ino-map.h"
#include "log.h"
#include "util.h"

/* ---- counting ---- */

static unsigned passed, failed;
static unsigned group_passed, group_failed;
static const char *group_name;

static void group_begin(const char *name)
{
	group_name = name;
	group_passed = group_failed = 0;
}

static void group_end(void)
{
	const char *tag = group_failed ? "FAIL" : "ok  ";

	printf("%s %s (%u check%s", tag, group_name, group_passed + group_failed,
	       group_passed + group_failed == 1 ? "" : "s");
	if (group_failed)
		printf(", %u failed", group_failed);
	printf(")\n");
	fflush(stdout);
}

static void vreport(const char *tag, int line, const char *fmt, va_list ap)
{
	/* Long loops report their first failures only. */
	if (group_failed > 12)
		return;
	printf("  %s line %d: ", tag, line);
	vprintf(fmt, ap);
	printf("\n");
}

static bool check_at(int line, bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		passed++, group_passed++;
		return true;
	}
	va_start(ap, fmt);
	vreport("FAIL", line, fmt, ap);
	va_end(ap);
	failed++, group_failed++;
	return false;
}

#define CHECK(ok, ...) check_at(__LINE__, (ok), __VA_ARGS__)

/* ---- small helpers ---- */

static char tmp_root[64], good_dir[128], bad_dir[128];
static int good_fd = -1, bad_fd = -1;
static uint64_t rng_state = 0x5eed5eed12345678ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

/* A new file each time: rewriting one in place makes ext4 flush it on close (slow). */
static void write_file(const char *path, const void *buf, size_t len)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0 || write_all(fd, buf, len) < 0)
		die(path);
	close(fd);
}

static uint8_t *read_whole(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0)
		die(path);
	buf = malloc(st.st_size ? st.st_size : 1);
	if (!buf || read_all(fd, buf, st.st_size) != st.st_size)
		die(path);
	close(fd);
	*len = st.st_size;
	return buf;
}

static char *path_in(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		die("asprintf");
	return p;
}

static void remove_tree(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *p;
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		p = path_in(dir, de->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			remove_tree(p);
		else
			unlink(p);
		free(p);
	}
	closedir(d);
	rmdir(dir);
}

/* Empties bad_dir between tests. */
static void clean_bad_dir(void)
{
	remove_tree(bad_dir);
	if (mkdir(bad_dir, 0700) < 0)
		die(bad_dir);
	close(bad_fd);
	bad_fd = open(bad_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (bad_fd < 0)
		die(bad_dir);
}

/* Output of fd (1 or 2) while a call runs, caught in a memfd. */
struct capture {
	int fd, saved, mem;
};

static void cap_begin(struct capture *c, int fd)
{
	fflush(stdout);
	fflush(stderr);
	c->fd = fd;
	c->mem = memfd_create("capture", MFD_CLOEXEC);
	c->saved = dup(fd);
	if (c->mem < 0 || c->saved < 0 || dup2(c->mem, fd) < 0)
		die("capture");
}

static char *cap_end(struct capture *c)
{
	struct stat st;
	char *buf;

	fflush(stdout);
	fflush(stderr);
	if (dup2(c->saved, c->fd) < 0 || fstat(c->mem, &st) < 0)
		die("capture end");
	close(c->saved);
	buf = calloc(1, st.st_size + 1);
	if (!buf || pread(c->mem, buf, st.st_size, 0) != st.st_size)
		die("capture read");
	close(c->mem);
	return buf;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	uint8_t *buf;

	*len = protobuf_c_message_get_packed_size(m);
	buf = malloc(*len ? *len : 1);
	if (!buf)
		die("malloc");
	protobuf_c_message_pack(m, buf);
	return buf;
}

static bool same_message(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	size_t la, lb;
	uint8_t *pa = pack(a, &la), *pb = pack(b, &lb);
	bool same = la == lb && memcmp(pa, pb, la) == 0;

	free(pa);
	free(pb);
	return same;
}

/* ---- the images ---- */

static uint32_t inv_pids[] = { 42, 43 };
static Inventory inventory = INVENTORY__INIT;

static GpRegs regs = GP_REGS__INIT;
static SigactionEntry sa1 = SIGACTION_ENTRY__INIT, sa2 = SIGACTION_ENTRY__INIT;
static SigactionEntry *sas[] = { &sa1, &sa2 };
static uint8_t siginfo_bytes[128], xsave_bytes[4096];
static PendingSignal pend = PENDING_SIGNAL__INIT;
static PendingSignal *pends[] = { &pend };
static ItimerEntry itimer = ITIMER_ENTRY__INIT;
static ItimerEntry *itimers[] = { &itimer };
static RlimitEntry rlim = RLIMIT_ENTRY__INIT;
static RlimitEntry *rlims[] = { &rlim };
static RseqConfig rseq = RSEQ_CONFIG__INIT;
static uint64_t auxv[] = { 33, 0x7ffff7fc1000, 6, 4096, 0, 0 };
static MmFields mmf = MM_FIELDS__INIT;
static TaskCore core = TASK_CORE__INIT;
static TaskCore core_odd = TASK_CORE__INIT; /* strings that are not clean UTF-8 */

static VmaEntry vma_heap = VMA_ENTRY__INIT, vma_file = VMA_ENTRY__INIT, vma_vdso = VMA_ENTRY__INIT;
static VmaEntry *vmas[] = { &vma_heap, &vma_file, &vma_vdso };
static MappedFile mfile = MAPPED_FILE__INIT;
static MappedFile *mfiles[] = { &mfile };
static Mm mm = MM__INIT;

static PageRun run1 = PAGE_RUN__INIT, run2 = PAGE_RUN__INIT;
static PageRun *runs[] = { &run1, &run2 };
static Pagemap pagemap = PAGEMAP__INIT;

static FdEntry fd0 = FD_ENTRY__INIT, fd1 = FD_ENTRY__INIT, fd2 = FD_ENTRY__INIT;
static FdEntry *fdents[] = { &fd0, &fd1, &fd2 };
static FdTable fdtable = FD_TABLE__INIT;

#define PID 42
#define NR_PAGES 3

static void build_inventory(void)
{
	inventory.format_version = 1;
	inventory.tool_version = "0.1-test";
	inventory.root_pid = PID;
	inventory.n_pids = ARRAY_SIZE(inv_pids);
	inventory.pids = inv_pids;
	inventory.kernel_release = "6.18.0";
	inventory.page_size = 4096;
	inventory.dumped_at_ns = UINT64_MAX; /* must print as a plain JSON number */
	inventory.has_shell_job = 1;
	inventory.shell_job = 1;
}

static void build_core(void)
{
	for (size_t i = 0; i < sizeof(xsave_bytes); i++)
		xsave_bytes[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(siginfo_bytes); i++)
		siginfo_bytes[i] = (uint8_t)i;
	regs.rip = 0xffffffffffffffffull;
	regs.rsp = 0x7ffc12345678;
	regs.orig_rax = (uint64_t)-1;
	regs.rax = (uint64_t)-4; /* -EINTR */
	sa1.sig = 2, sa1.handler = 0x401000, sa1.flags = 0x4000000, sa1.restorer = 0x401100;
	sa2.sig = 15, sa2.handler = 1, sa2.mask = 0xffff;
	pend.sig = 10, pend.shared = 1;
	pend.siginfo.data = siginfo_bytes, pend.siginfo.len = sizeof(siginfo_bytes);
	itimer.which = 0, itimer.interval_us = 1000, itimer.value_us = 500;
	rlim.resource = 7, rlim.cur = 1024, rlim.max = UINT64_MAX;
	rseq.addr = 0x7f0000001000, rseq.len = 32, rseq.signature = 0x53053053;
	mmf.start_code = 0x400000, mmf.end_code = 0x401000, mmf.start_brk = 0x600000;
	mmf.brk = 0x621000, mmf.n_auxv = ARRAY_SIZE(auxv), mmf.auxv = auxv;

	core.pid = core.tid = PID, core.ppid = 1, core.pgid = core.sid = PID;
	core.comm = "counter";
	core.umask = 022;
	core.cwd = "/tmp", core.root = "/";
	core.regs = &regs;
	core.xsave.data = xsave_bytes, core.xsave.len = sizeof(xsave_bytes);
	core.sigmask = 1ull << 63;
	core.n_sigactions = ARRAY_SIZE(sas), core.sigactions = sas;
	core.n_pending = ARRAY_SIZE(pends), core.pending = pends;
	core.n_itimers = ARRAY_SIZE(itimers), core.itimers = itimers;
	core.n_rlimits = ARRAY_SIZE(rlims), core.rlimits = rlims;
	core.rseq = &rseq;
	core.mm = &mmf;
	core.has_stopped = 1, core.stopped = 0;

	core_odd = core;
	core_odd.pid = core_odd.tid = 7;
	core_odd.comm = "bad\xff\xfe utf8 \xc0\x80 \xed\xa0\x80 ok \xe2\x82\xac";
	core_odd.cwd = "/tmp/quote\"back\\slash\nnewline\ttab\x01";
	core_odd.rseq = NULL; /* optional message absent */
	core_odd.has_stopped = 0;
	core_odd.n_pending = 0;
}

static void build_mm(void)
{
	vma_heap.start = 0x600000, vma_heap.end = 0x621000, vma_heap.prot = 3;
	vma_heap.kind = VMA_KIND__VMA_ANON_PRIVATE, vma_heap.name = "[heap]";
	vma_file.start = 0x400000, vma_file.end = 0x401000, vma_file.prot = 5;
	vma_file.kind = VMA_KIND__VMA_FILE_PRIVATE;
	vma_file.has_pgoff = 1, vma_file.pgoff = 0;
	vma_file.has_file_id = 1, vma_file.file_id = 0;
	vma_vdso.start = 0x7fff00000000, vma_vdso.end = 0x7fff00002000, vma_vdso.prot = 5;
	vma_vdso.kind = VMA_KIND__VMA_VDSO, vma_vdso.has_growsdown = 1, vma_vdso.growsdown = 0;
	mfile.id = 0, mfile.path = "/usr/bin/counter", mfile.size = 16384;
	mfile.mtime_ns = 1700000000123456789ull, mfile.dev = 0x803, mfile.ino = 123456;
	mm.n_vmas = ARRAY_SIZE(vmas), mm.vmas = vmas;
	mm.n_files = ARRAY_SIZE(mfiles), mm.files = mfiles;
}

static void build_pagemap_fds(void)
{
	run1.vaddr = 0x600000, run1.nr_pages = 2, run1.file_off = 0;
	run2.vaddr = 0x7ffc12340000, run2.nr_pages = 1, run2.file_off = 2 * 4096;
	pagemap.n_runs = ARRAY_SIZE(runs), pagemap.runs = runs;
	pagemap.nr_pages = NR_PAGES;

	fd0.fd = 0, fd0.kind = FD_KIND__FD_INHERITED, fd0.has_inherit_from = 1, fd0.inherit_from = 0;
	fd1.fd = 3, fd1.kind = FD_KIND__FD_REGULAR, fd1.cloexec = 1, fd1.path = "/tmp/log";
	fd1.has_flags = 1, fd1.flags = 02101, fd1.has_pos = 1, fd1.pos = 1ull << 40;
	fd1.has_size = 1, fd1.size = 1ull << 41;
	fd2.fd = 4, fd2.kind = FD_KIND__FD_DUP, fd2.has_dup_of = 1, fd2.dup_of = 3;
	fdtable.n_fds = ARRAY_SIZE(fdents), fdtable.fds = fdents;
}

struct img {
	enum image_type type;
	unsigned pid;
	const ProtobufCMessage *msg;
	char name[64];
};

static struct img imgs[] = {
	{ IMG_INVENTORY, 0, &inventory.base, "" },
	{ IMG_CORE, PID, &core.base, "" },
	{ IMG_CORE, 7, &core_odd.base, "" },
	{ IMG_MM, PID, &mm.base, "" },
	{ IMG_PAGEMAP, PID, &pagemap.base, "" },
	{ IMG_FDS, PID, &fdtable.base, "" },
};

static void page_fill(uint8_t *page, unsigned n)
{
	for (unsigned i = 0; i < 4096; i++)
		page[i] = (uint8_t)(n * 31 + i);
}

/* ---- tests: writing and reading back ---- */

static void test_write_read(void)
{
	group_begin("image_write + image_read round trip of every image type");
	build_inventory();
	build_core();
	build_mm();
	build_pagemap_fds();
	for (size_t i = 0; i < ARRAY_SIZE(imgs); i++) {
		struct img *im = &imgs[i];
		ProtobufCMessage *back = NULL;
		const struct image_desc *d = NULL;
		char *path, tmpname[80];
		int ret;

		image_filename(im->name, sizeof(im->name), im->type, im->pid);
		ret = image_write(good_fd, im->type, im->pid, im->msg);
		CHECK(ret == 0, "image_write %s: %d", im->name, ret);
		snprintf(tmpname, sizeof(tmpname), ".%s.tmp", im->name);
		CHECK(faccessat(good_fd, tmpname, F_OK, 0) < 0, "%s: temp file left behind", im->name);

		ret = image_read(good_fd, im->type, im->pid, &back);
		CHECK(ret == 0 && back, "image_read %s: %d", im->name, ret);
		if (back)
			CHECK(same_message(im->msg, back), "%s reads back different", im->name);
		image_free(back);
		back = NULL;

		path = path_in(good_dir, im->name);
		ret = image_read_path(path, &d, &back);
		CHECK(ret == 0 && back && d && d->type == im->type, "image_read_path %s: %d", path,
		      ret);
		if (back)
			CHECK(same_message(im->msg, back), "%s reads back different by path", im->name);
		image_free(back);
		free(path);
	}
	{
		struct capture c;
		int ret;
		char *err;

		cap_begin(&c, 2);
		ret = image_write(-1, IMG_INVENTORY, 0, &inventory.base);
		err = cap_end(&c);
		CHECK(ret < 0 && strstr(err, "inventory.img"),
		      "image_write into a bad dirfd fails, naming the file: %d", ret);
		free(err);
	}
	group_end();
}

/*
 * Memory running out at each allocation in turn (cr/util.c's STASIS_FAULT=alloc-N): reading
 * an image fails with -ENOMEM, says "out of memory", and frees what it had decoded (ASan's
 * leak check in run-asan); writing one fails the same and leaves no file; a failed resize
 * keeps the old block.
 */
static void test_out_of_memory(void)
{
	group_begin("image_read, image_write and xreallocarray with each allocation failing");
	for (size_t i = 0; i < ARRAY_SIZE(imgs); i++) {
		struct img *im = &imgs[i];
		unsigned n, failures = 0;

		for (n = 1; n < 10000; n++) {
			ProtobufCMessage *back = NULL;
			struct capture c;
			char *err;
			int ret;

			alloc_fail_at(n);
			cap_begin(&c, 2);
			ret = image_read(good_fd, im->type, im->pid, &back);
			err = cap_end(&c);
			alloc_fail_at(0);
			if (ret == 0) { /* n is past the last allocation */
				CHECK(back && same_message(im->msg, back), "%s reads back different", im->name);
				image_free(back);
				free(err);
				break;
			}
			failures++;
			CHECK(ret == -ENOMEM && !back && strstr(err, "out of memory"),
			      "image_read %s with allocation %u failing: %d, '%s'", im->name, n, ret, err);
			free(err);
		}
		CHECK(failures > 0 && n < 10000, "%s: %u allocations made to fail", im->name, failures);
	}
	{
		struct capture c;
		char *err, tmpname[80];
		int ret;

		clean_bad_dir();
		alloc_fail_at(1);
		cap_begin(&c, 2);
		ret = image_write(bad_fd, IMG_INVENTORY, 0, &inventory.base);
		err = cap_end(&c);
		alloc_fail_at(0);
		snprintf(tmpname, sizeof(tmpname), ".%s.tmp", "inventory.img");
		CHECK(ret == -ENOMEM && strstr(err, "out of memory") &&
			      faccessat(bad_fd, "inventory.img", F_OK, 0) < 0 &&
			      faccessat(bad_fd, tmpname, F_OK, 0) < 0,
		      "image_write with its buffer failing: %d, '%s', no file left", ret, err);
		free(err);
	}
	{
		struct capture c;
		char *p = xmalloc(16), *q, *err;

		memcpy(p, "fifteen bytes..", 16);
		alloc_fail_at(1);
		cap_begin(&c, 2);
		q = xreallocarray(p, 1 << 20, 1);
		err = cap_end(&c);
		CHECK(!q && errno == ENOMEM && !strcmp(p, "fifteen bytes..") &&
			      strstr(err, "out of memory: 1048576 bytes"),
		      "a failed xreallocarray keeps the old block and says how much it wanted: '%s'", err);
		q = xreallocarray(p, 1 << 20, 1);
		CHECK(q && !strcmp(q, "fifteen bytes.."), "the next resize succeeds, content kept");
		free(q ? q : p);
		free(err);
	}
	group_end();
}

static void test_pages_roundtrip(void)
{
	uint8_t page[4096], back[4096];
	int fd, ret;

	group_begin("pages_image_create/finish/open round trip");
	fd = pages_image_create(good_fd, PID);
	CHECK(fd >= 0, "pages_image_create: %d", fd);
	if (fd < 0)
		goto out;
	for (unsigned i = 0; i < NR_PAGES; i++) {
		page_fill(page, i);
		CHECK(pwrite(fd, page, sizeof(page), PAGES_HEADER_SIZE + i * 4096) == sizeof(page),
		      "write page %u", i);
	}
	ret = pages_image_finish(fd, PID, NR_PAGES, NULL);
	CHECK(ret == 0, "pages_image_finish: %d", ret);
	close(fd);

	fd = pages_image_open(good_fd, PID, NR_PAGES);
	CHECK(fd >= 0, "pages_image_open: %d", fd);
	for (unsigned i = 0; fd >= 0 && i < NR_PAGES; i++) {
		page_fill(page, i);
		CHECK(pread(fd, back, sizeof(back), PAGES_HEADER_SIZE + i * 4096) == sizeof(back) &&
			      memcmp(page, back, sizeof(page)) == 0,
		      "page %u reads back", i);
		CHECK(raw_image_verify(fd, IMG_PAGES, PID, i, 1, back) == 0, "page %u matches its checksum", i);
		back[i % 4096] ^= 1;
		struct capture c;
		cap_begin(&c, 2);
		ret = raw_image_verify(fd, IMG_PAGES, PID, i, 1, back);
		char *err = cap_end(&c);
		CHECK(ret < 0 && strstr(err, "pages-42.img") && strstr(err, "checksum"),
		      "page %u with a bit flipped is refused, naming the file: %d", i, ret);
		free(err);
	}
	if (fd >= 0) {
		CHECK(raw_image_check_pages(fd, IMG_PAGES, PID, 0, NR_PAGES) == 0, "every page checks");
		close(fd);
	}
	/* the same pages with their sums kept as they are written */
	fd = pages_image_create(good_fd, PID + 1);
	struct page_sums sums = { 0 };
	for (unsigned i = 0; fd >= 0 && i < NR_PAGES; i++) {
		page_fill(page, i);
		page_sums_add(&sums, page, sizeof(page));
		CHECK(write(fd, page, sizeof(page)) == sizeof(page), "write page %u", i);
	}
	CHECK(fd >= 0 && pages_image_finish(fd, PID + 1, NR_PAGES, &sums) == 0, "finish with sums");
	if (fd >= 0)
		close(fd);
	page_sums_free(&sums);
	fd = raw_image_open(good_fd, IMG_PAGES, PID + 1, NR_PAGES);
	CHECK(fd >= 0, "raw_image_open checks every page: %d", fd);
	if (fd >= 0)
		close(fd);
	unlinkat(good_fd, "pages-43.img", 0);
out:
	group_end();
}

/* ---- tests: the file name table ---- */

static void test_desc_by_filename(void)
{
	static const struct {
		const char *name;
		int type; /* 0: not an image name */
	} good[] = {
		{ "inventory.img", IMG_INVENTORY },
		{ "core-1.img", IMG_CORE },
		{ "core-4294967295.img", IMG_CORE },
		{ "mm-42.img", IMG_MM },
		{ "pagemap-7.img", IMG_PAGEMAP },
		{ "fds-123.img", IMG_FDS },
		{ "pages-9.img", IMG_PAGES },
		{ "/some/dir/core-1.img", IMG_CORE },
		{ "dir/inventory.img", IMG_INVENTORY },
		{ "net-links.img", IMG_NET_LINKS },     /* (the tree's network namespace) */
		{ "net-links-42.img", IMG_NET_LINKS },  /* (one pid 42 made) */
		{ "nftables-7.img", IMG_NFTABLES },
		{ "net-links-.img", 0 },
		{ "net-links-x.img", 0 },
		{ "net-nested-1.img", 0 },
		{ "", 0 },
		{ ".img", 0 },
		{ "inventory", 0 },
		{ "inventory-1.img", 0 },
		{ "inventory.img.tmp", 0 },
		{ ".inventory.img.tmp", 0 },
		{ "core.img", 0 },
		{ "core-.img", 0 },
		{ "core-1", 0 },
		{ "core-1.im", 0 },
		{ "core-1.imgx", 0 },
		{ "core-1.IMG", 0 },
		{ "core-1x.img", 0 },
		{ "core-x1.img", 0 },
		{ "coredump-1.img", 0 },
		{ "Core-1.img", 0 },
		{ "foo-1.img", 0 },
		{ "pagemaps-1.img", 0 },
		{ "page-1.img", 0 },
		{ "core-1.img/", 0 },
		{ "core/1.img", 0 },
	};
	/* Names strtoul() accepts but that name no pid: reported against cr/image.c. */
	static const char *const odd[] = {
		"core--1.img", "core-+1.img", "core- 1.img", "core-4294967296.img",
		"core-99999999999999999999999.img",
	};

	group_begin("image_desc_by_filename on good and bad names");
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		const struct image_desc *d = image_desc_by_filename(good[i].name);
		int type = d ? (int)d->type : 0;
		CHECK(type == good[i].type, "\"%s\" -> type %d, expected %d", good[i].name, type,
		      good[i].type);
	}
	for (size_t i = 0; i < ARRAY_SIZE(odd); i++)
		CHECK(!image_desc_by_filename(odd[i]),
				"cr/image.c image_desc_by_filename(\"%s\") accepts it: the pid part "
				"is parsed with strtoul (sign, blanks, overflow)",
				odd[i]);
	for (size_t i = 0; i < ARRAY_SIZE(imgs); i++) {
		char name[64];
		const struct image_desc *d;

		image_filename(name, sizeof(name), imgs[i].type, imgs[i].pid);
		d = image_desc_by_filename(name);
		CHECK(d && d->type == imgs[i].type && d == image_desc(imgs[i].type),
		      "image_filename/image_desc_by_filename disagree on %s", name);
	}
	CHECK(image_desc(0) == NULL && image_desc(99) == NULL, "image_desc of unknown types");
	group_end();
}

/* ---- stasis show, called in-process with stdout and stderr caught ---- */

struct shown {
	int ret;
	char *out, *err;
};

static struct shown show(int n, ...)
{
	char *argv[8] = { "show" };
	struct capture co, ce;
	struct shown r;
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n && i < 6; i++)
		argv[i + 1] = va_arg(ap, char *);
	va_end(ap);
	cap_begin(&co, 1);
	cap_begin(&ce, 2);
	r.ret = cmd_show(n + 1, argv);
	r.err = cap_end(&ce);
	r.out = cap_end(&co);
	return r;
}

static void shown_free(struct shown *r)
{
	free(r->out);
	free(r->err);
}

static yajl_val parse_json(const char *text)
{
	char err[256];

	return yajl_tree_parse(text, err, sizeof(err));
}

/* ---- tests: damaged protobuf images ---- */

enum { STRICT_REJECT, NAMED_WRONG };

/*
 * The damaged bytes are written as bad_dir/<name>. image_read() must reject them, and so
 * must image_read_path() and `stasis show`, each with a negative errno (nonzero exit), *msg
 * left NULL, and a message that names the file.
 *
 * The CRC covers the header too, so a damaged type field is rejected like any other byte.
 * NAMED_WRONG: a good image of another type under this name; image_read_path() reads it
 * for what its header says it is, which is right: it does not look at names.
 */
static bool rejected(const struct img *im, const void *buf, size_t len, int mode,
		     const char *what, size_t arg)
{
	char *path = path_in(bad_dir, im->name);
	const struct image_desc *d = NULL;
	ProtobufCMessage *msg = NULL, *msg2 = NULL;
	struct capture c;
	struct shown sh;
	char *err;
	int r1, r2;
	bool ok;

	write_file(path, buf, len);
	cap_begin(&c, 2);
	r1 = image_read(bad_fd, im->type, im->pid, &msg);
	r2 = image_read_path(path, &d, &msg2);
	err = cap_end(&c);
	ok = CHECK(r1 < 0 && !msg, "%s: %s %zu: image_read accepted it (ret %d)", im->name, what,
		   arg, r1);
	if (mode == NAMED_WRONG && r2 == 0 && d && d->type != im->type)
		CHECK(true, "image_read_path reads it as what it holds");
	else
		ok &= CHECK(r2 < 0 && !msg2, "%s: %s %zu: image_read_path accepted it (ret %d)",
			    im->name, what, arg, r2);
	ok &= CHECK(strstr(err, im->name) && (r2 == 0 || strstr(err, path)),
		    "%s: %s %zu: no message naming the file", im->name, what, arg);
	image_free(msg);
	image_free(msg2);
	free(err);

	sh = show(1, path);
	ok &= CHECK(sh.ret != 0 && strstr(sh.err, path), "%s: %s %zu: show exit %d, stderr \"%s\"",
		    im->name, what, arg, sh.ret, sh.err);
	shown_free(&sh);
	free(path);
	return ok;
}

static void test_truncation(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(imgs); i++) {
		const struct img *im = &imgs[i];
		char *path = path_in(good_dir, im->name), title[128];
		size_t len;
		uint8_t *buf = read_whole(path, &len);

		snprintf(title, sizeof(title), "%s truncated at every length 0..%zu", im->name,
			 len - 1);
		group_begin(title);
		clean_bad_dir();
		for (size_t n = 0; n < len; n++)
			rejected(im, buf, n, STRICT_REJECT, "truncated to", n);
		group_end();
		free(buf);
		free(path);
	}
}

/* A damaged file that image_read_path() took must read as exactly the original message. */
static bool reads_as_original(const struct img *im)
{
	char *path = path_in(bad_dir, im->name);
	ProtobufCMessage *msg = NULL;
	struct capture c;
	char *err;
	int ret;
	bool same;

	cap_begin(&c, 2);
	ret = image_read_path(path, NULL, &msg);
	err = cap_end(&c);
	same = ret < 0 || (msg && same_message(msg, im->msg));
	image_free(msg);
	free(err);
	free(path);
	return same;
}

static void test_byte_flips(void)
{
	static const uint8_t masks[] = { 0x01, 0x80, 0xff };
	const size_t reserved = offsetof(struct image_header, reserved);

	for (size_t i = 0; i < ARRAY_SIZE(imgs); i++) {
		const struct img *im = &imgs[i];
		char *path = path_in(good_dir, im->name), title[128];
		size_t len;
		uint8_t *buf = read_whole(path, &len);

		snprintf(title, sizeof(title), "%s with each of its %zu bytes flipped (3 ways)",
			 im->name, len);
		group_begin(title);
		clean_bad_dir();
		for (size_t pos = 0; pos < len; pos++) {
			for (size_t m = 0; m < ARRAY_SIZE(masks); m++) {
				buf[pos] ^= masks[m];
				if (pos >= reserved && pos < reserved + 4) {
					/* reserved: may be ignored, never change the message */
					char *p = path_in(bad_dir, im->name);
					write_file(p, buf, len);
					free(p);
					CHECK(reads_as_original(im),
					      "%s: flip in reserved byte %zu changed the message",
					      im->name, pos);
				} else {
					rejected(im, buf, len, STRICT_REJECT,
						 "byte flipped at", pos);
				}
				buf[pos] ^= masks[m];
			}
		}
		group_end();
		free(buf);
		free(path);
	}
}

/* The good image of im with its header changed by edit(), or extended by extra bytes. */
static void reject_edited(const struct img *im, const char *what, size_t extra,
			  void (*edit)(struct image_header *h, uint64_t arg), uint64_t arg, int mode)
{
	char *path = path_in(good_dir, im->name);
	size_t len;
	uint8_t *buf = read_whole(path, &len);
	uint8_t *big = calloc(1, len + extra);

	if (!big)
		die("calloc");
	memcpy(big, buf, len);
	for (size_t i = 0; i < extra; i++)
		big[len + i] = (uint8_t)rnd();
	if (edit) {
		struct image_header h;
		memcpy(&h, big, sizeof(h));
		edit(&h, arg);
		memcpy(big, &h, sizeof(h));
	}
	rejected(im, big, len + extra, mode, what, (size_t)arg);
	free(big);
	free(buf);
	free(path);
}

static void set_magic(struct image_header *h, uint64_t which)
{
	static const char *const magics[] = { "STASISXX", "STASISPG", "\0\0\0\0\0\0\0\0",
					      "stasisim", "CRIUIMG!" };
	memcpy(h->magic, magics[which], sizeof(h->magic));
}

static void set_version(struct image_header *h, uint64_t v)
{
	h->version = (uint32_t)v;
}

static void set_type(struct image_header *h, uint64_t t)
{
	h->type = (uint32_t)t;
}

static void set_len(struct image_header *h, uint64_t len)
{
	h->payload_len = len;
}

static void add_len(struct image_header *h, uint64_t delta)
{
	h->payload_len += delta;
}

static void sub_len(struct image_header *h, uint64_t delta)
{
	h->payload_len -= delta;
}

static void flip_crc(struct image_header *h, uint64_t mask)
{
	h->payload_crc ^= (uint32_t)mask;
}

static void test_header_fields(void)
{
	static const uint64_t versions[] = { 0, IMAGE_FORMAT_VERSION + 1, 0x100, UINT32_MAX };
	static const uint64_t types[] = { 0, IMG_PAGES, IMG_NR_TYPES, 99, UINT32_MAX };
	static const uint64_t lens[] = { IMAGE_MAX_PAYLOAD + 1ull, UINT64_MAX, UINT64_MAX - 31,
					 1ull << 63, 0 };

	group_begin("wrong magic, version, type, payload length, checksum; trailing bytes");
	clean_bad_dir();
	for (size_t i = 0; i < ARRAY_SIZE(imgs); i++) {
		const struct img *im = &imgs[i];

		for (uint64_t m = 0; m < 5; m++)
			reject_edited(im, "magic", 0, set_magic, m, STRICT_REJECT);
		for (size_t v = 0; v < ARRAY_SIZE(versions); v++)
			reject_edited(im, "version", 0, set_version, versions[v], STRICT_REJECT);
		for (size_t t = 0; t < ARRAY_SIZE(types); t++)
			reject_edited(im, "type", 0, set_type, types[t], STRICT_REJECT);
		for (uint64_t t = IMG_INVENTORY; t < IMG_PAGES; t++)
			if (t != im->type)
				reject_edited(im, "other image type", 0, set_type, t, STRICT_REJECT);
		for (size_t l = 0; l < ARRAY_SIZE(lens); l++)
			reject_edited(im, "payload length", 0, set_len, lens[l], STRICT_REJECT);
		reject_edited(im, "payload length +", 0, add_len, 1, STRICT_REJECT);
		reject_edited(im, "payload length +", 0, add_len, 4096, STRICT_REJECT);
		reject_edited(im, "payload length -", 0, sub_len, 1, STRICT_REJECT);
		reject_edited(im, "trailing bytes", 1, NULL, 1, STRICT_REJECT);
		reject_edited(im, "trailing bytes", 4096, NULL, 4096, STRICT_REJECT);
		reject_edited(im, "payload length + trailing", 1, add_len, 1, STRICT_REJECT);
		reject_edited(im, "crc", 0, flip_crc, 1, STRICT_REJECT);
		reject_edited(im, "crc", 0, flip_crc, 0xffffffff, STRICT_REJECT);
	}
	group_end();
}

static void test_wrong_names(void)
{
	group_begin("images under the name of another type");
	clean_bad_dir();
	for (size_t i = 0; i < ARRAY_SIZE(imgs); i++) {
		for (size_t j = 0; j < ARRAY_SIZE(imgs); j++) {
			const struct img *good = &imgs[i], *named = &imgs[j];
			char *src = path_in(good_dir, good->name);
			size_t len;
			uint8_t *buf = read_whole(src, &len);

			if (good->type != named->type)
				rejected(named, buf, len, NAMED_WRONG, "holds the image", i);
			free(buf);
			free(src);
		}
	}
	group_end();
}

/* Random files under image names: rejected, never a crash. */
static void test_garbage(void)
{
	static const size_t sizes[] = { 0,  1,  7,  8,   31,   32,   33,    100,
					511, 4095, 4096, 4097, 65536, 1 << 20 };

	group_begin("random garbage files under every image name");
	clean_bad_dir();
	for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
		uint8_t *buf = malloc(sizes[s] + 1);

		if (!buf)
			die("malloc");
		for (size_t i = 0; i < ARRAY_SIZE(imgs); i++) {
			for (size_t k = 0; k < sizes[s]; k++)
				buf[k] = (uint8_t)rnd();
			rejected(&imgs[i], buf, sizes[s], STRICT_REJECT, "garbage of size", sizes[s]);
			/* the same with a plausible header in front */
			if (sizes[s] >= sizeof(struct image_header)) {
				struct image_header h = { .type = imgs[i].type,
							  .version = IMAGE_FORMAT_VERSION };
				memcpy(h.magic, "STASISIM", 8);
				h.payload_len = sizes[s] - sizeof(h) + (rnd() & 1);
				memcpy(buf, &h, sizeof(h));
				rejected(&imgs[i], buf, sizes[s], STRICT_REJECT,
					 "garbage after a good header, size", sizes[s]);
			}
		}
		free(buf);
	}
	group_end();
}

/*
 * Payloads damaged behind a header with a correct length and CRC: only the protobuf
 * decoder stands between them and the engine. Each is either rejected or decodes to a
 * message that `stasis show` prints as valid JSON; nothing crashes.
 */
static void test_fuzzed_payloads(void)
{
	unsigned decoded = 0, total = 0;

	group_begin("damaged payloads with a valid CRC (decoder and show must not crash)");
	clean_bad_dir();
	for (size_t i = 0; i < ARRAY_SIZE(imgs); i++) {
		const struct img *im = &imgs[i];
		char *path = path_in(good_dir, im->name), *bad = path_in(bad_dir, im->name);
		size_t len;
		uint8_t *orig = read_whole(path, &len);
		size_t plen = len - sizeof(struct image_header);

		for (int iter = 0; iter < 300; iter++, total++) {
			uint8_t *buf = malloc(len + 64);
			size_t extra = 1 + rnd() % 64;
			struct image_header h;
			ProtobufCMessage *msg = NULL;
			struct capture c;
			struct shown sh;
			size_t n = plen;
			char *err;
			int ret;

			if (!buf)
				die("malloc");
			memcpy(buf, orig, len);
			switch (iter % 3) {
			case 0: /* a few random bytes */
				for (int k = 1 + rnd() % 8; k > 0 && plen; k--)
					buf[sizeof(h) + rnd() % plen] = (uint8_t)rnd();
				break;
			case 1: /* cut short */
				n = plen ? rnd() % plen : 0;
				break;
			case 2: /* random bytes appended */
				for (size_t k = 0; k < extra; k++)
					buf[len + k] = (uint8_t)rnd();
				n = plen + extra;
				break;
			}
			memcpy(&h, buf, sizeof(h));
			h.payload_len = n;
			h.payload_crc = image_crc32(0, buf + sizeof(h), n);
			memcpy(buf, &h, sizeof(h));
			write_file(bad, buf, sizeof(h) + n);
			free(buf);

			cap_begin(&c, 2);
			ret = image_read_path(bad, NULL, &msg);
			err = cap_end(&c);
			CHECK((ret == 0) == (msg != NULL), "%s fuzz %d: ret %d but msg %p", im->name,
			      iter, ret, (void *)msg);
			image_free(msg);
			free(err);

			decoded += ret == 0;
			sh = show(1, bad);
			if (ret == 0) {
				yajl_val v = parse_json(sh.out);
				CHECK(sh.ret == 0 && v, "%s fuzz %d: decoded but show failed (%d)",
				      im->name, iter, sh.ret);
				yajl_tree_free(v);
			} else {
				CHECK(sh.ret != 0, "%s fuzz %d: rejected but show exit 0", im->name,
				      iter);
			}
			shown_free(&sh);
		}
		free(orig);
		free(path);
		free(bad);
	}
	printf("  (%u of %u damaged payloads still decoded and were shown)\n", decoded, total);
	group_end();
}

static void test_missing(void)
{
	ProtobufCMessage *msg = NULL;
	struct capture c;
	char *err, *path = path_in(bad_dir, "core-999.img");
	int r1, r2, r3;

	group_begin("missing files and directories");
	clean_bad_dir();
	cap_begin(&c, 2);
	r1 = image_read(bad_fd, IMG_CORE, 999, &msg);
	r2 = image_read_path(path, NULL, &msg);
	r3 = pages_image_open(bad_fd, 999, 1);
	err = cap_end(&c);
	CHECK(r1 == -ENOENT && r2 == -ENOENT && r3 == -ENOENT && !msg,
	      "missing file: %d %d %d, expected -ENOENT", r1, r2, r3);
	CHECK(strstr(err, "core-999.img") && strstr(err, "pages-999.img"),
	      "missing file: messages name the files");
	free(err);

	cap_begin(&c, 2);
	r2 = image_read_path(bad_dir, NULL, &msg);
	err = cap_end(&c);
	CHECK(r2 < 0 && !msg, "image_read_path on a directory: %d", r2);
	free(err);
	free(path);
	group_end();
}

/* ---- tests: damaged page files ---- */

static void write_pages_file(int dirfd, unsigned pid, const struct pages_header *h,
			     uint64_t size)
{
	char name[64];
	uint8_t *buf = calloc(1, size > sizeof(*h) ? size : sizeof(*h));
	int fd;

	if (!buf)
		die("calloc");
	memcpy(buf, h, sizeof(*h));
	image_filename(name, sizeof(name), IMG_PAGES, pid);
	unlinkat(dirfd, name, 0);
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, buf, size) < 0)
		die(name);
	close(fd);
	free(buf);
}

static struct pages_header good_pages_header(void)
{
	struct pages_header h;

	memset(&h, 0, sizeof(h));
	memcpy(h.magic, "STASISPG", 8);
	h.version = IMAGE_FORMAT_VERSION;
	h.page_size = 4096;
	h.nr_pages = NR_PAGES;
	h.pid = PID;
	return h;
}

/* pages_image_open() and show must both refuse the page file now in bad_dir. */
static void pages_rejected(uint64_t expect_pages, const char *what, uint64_t arg, bool known,
			   bool by_show)
{
	char *path = path_in(bad_dir, "pages-42.img");
	struct capture c;
	struct shown sh;
	char *err;
	int fd;

	cap_begin(&c, 2);
	fd = pages_image_open(bad_fd, PID, expect_pages);
	err = cap_end(&c);
	if (fd >= 0)
		close(fd);
	if (known)
		CHECK(fd < 0, "cr/image.c: pages_image_open accepts %s %llu (the size check "
				"PAGES_HEADER_SIZE + nr_pages * 4096 wraps around)", what,
				(unsigned long long)arg);
	else
		CHECK(fd < 0 && strstr(err, "pages-42.img"), "pages_image_open accepted %s %llu (%d)",
		      what, (unsigned long long)arg, fd);
	free(err);

	if (by_show) {
		sh = show(1, path);
		CHECK(sh.ret != 0 && strstr(sh.err, path), "show accepted a page file with %s %llu",
		      what, (unsigned long long)arg);
		shown_free(&sh);
	}
	free(path);
}

static void test_pages_damage(void)
{
	const uint64_t full = raw_image_size(NR_PAGES);
	const uint64_t sizes[] = { 0, 1, 8, 31, 32, 4095, 4096, 4096 * 3, 4096 * 4 - 1, 4096 * 4,
				   4096 * 4 + 1, 4096 * 5, full - 1, full + 1 };
	struct pages_header h;

	group_begin("damaged page files (pages_image_open and show)");
	clean_bad_dir();
	h = good_pages_header();
	write_pages_file(bad_fd, PID, &h, full);
	{
		int fd = pages_image_open(bad_fd, PID, NR_PAGES);
		CHECK(fd >= 0, "a hand-made good page file is accepted: %d", fd);
		if (fd >= 0)
			close(fd);
	}
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		write_pages_file(bad_fd, PID, &h, sizes[i]);
		pages_rejected(NR_PAGES, "file size", sizes[i], false, true);
	}
	write_pages_file(bad_fd, PID, &h, full);
	/* a consistent file, but not what pagemap-42.img says: show cannot know */
	pages_rejected(NR_PAGES + 1, "pagemap expecting pages:", NR_PAGES + 1, false, false);
	pages_rejected(NR_PAGES - 1, "pagemap expecting pages:", NR_PAGES - 1, false, false);

	h = good_pages_header();
	memcpy(h.magic, "STASISIM", 8);
	write_pages_file(bad_fd, PID, &h, full);
	pages_rejected(NR_PAGES, "protobuf magic", 0, false, true);
	h = good_pages_header();
	h.version = IMAGE_FORMAT_VERSION + 1;
	write_pages_file(bad_fd, PID, &h, full);
	pages_rejected(NR_PAGES, "version", IMAGE_FORMAT_VERSION + 1, false, true);
	h = good_pages_header();
	h.page_size = 65536;
	write_pages_file(bad_fd, PID, &h, full);
	pages_rejected(NR_PAGES, "page size", 65536, false, true);
	h = good_pages_header();
	h.pid = PID + 1;
	write_pages_file(bad_fd, PID, &h, full);
	pages_rejected(NR_PAGES, "header pid", PID + 1, false, true);
	h = good_pages_header();
	h.nr_pages = NR_PAGES + 1;
	write_pages_file(bad_fd, PID, &h, full);
	pages_rejected(NR_PAGES, "header nr_pages", NR_PAGES + 1, false, true);

	/* nr_pages * 4096 == 2^64: the size check must not wrap around to "4096 bytes" */
	h = good_pages_header();
	h.nr_pages = 1ull << 52;
	write_pages_file(bad_fd, PID, &h, PAGES_HEADER_SIZE);
	pages_rejected(1ull << 52, "nr_pages", 1ull << 52, true, true);
	group_end();
}

/* ---- tests: stasis show on good images ---- */

static yajl_val get(yajl_val v, const char *key)
{
	const char *path[] = { key, NULL };

	return v ? yajl_tree_get(v, path, yajl_t_any) : NULL;
}

static yajl_val idx(yajl_val v, size_t i)
{
	return YAJL_IS_ARRAY(v) && i < YAJL_GET_ARRAY(v)->len ? YAJL_GET_ARRAY(v)->values[i] : NULL;
}

/* The text of a string value, "" for anything else. */
static const char *sval(yajl_val v)
{
	return YAJL_IS_STRING(v) && v->u.string ? v->u.string : "";
}

static bool num_is(yajl_val v, const char *text)
{
	return YAJL_IS_NUMBER(v) && !strcmp(YAJL_GET_NUMBER(v), text);
}

static bool str_is(yajl_val v, const char *text)
{
	return YAJL_IS_STRING(v) && !strcmp(sval(v), text);
}

static void check_core_json(yajl_val core_v, yajl_val odd)
{
	yajl_val xs = get(core_v, "xsave");
	char hex[9];

	snprintf(hex, sizeof(hex), "%02x%02x%02x%02x", xsave_bytes[0], xsave_bytes[1],
		 xsave_bytes[2], xsave_bytes[3]);
	CHECK(YAJL_IS_STRING(xs) && strlen(sval(xs)) == 2 * sizeof(xsave_bytes) &&
		      !strncmp(sval(xs), hex, 8),
	      "core xsave is the whole 4096 bytes in hex");
	CHECK(num_is(get(get(core_v, "regs"), "rip"), "18446744073709551615"),
	      "core regs.rip prints as an unsigned number");
	CHECK(num_is(get(get(core_v, "rseq"), "signature"), "1392848979"), "core rseq.signature");
	CHECK(YAJL_IS_FALSE(get(core_v, "stopped")), "core: optional bool present and false");
	CHECK(num_is(get(idx(get(core_v, "sigactions"), 1), "sig"), "15"), "core sigactions[1]");
	CHECK(YAJL_IS_ARRAY(get(get(core_v, "mm"), "auxv")) &&
		      YAJL_GET_ARRAY(get(get(core_v, "mm"), "auxv"))->len == ARRAY_SIZE(auxv),
	      "core mm.auxv is an array of %zu", ARRAY_SIZE(auxv));
	CHECK(strlen(sval(get(idx(get(core_v, "pending"), 0), "siginfo"))) == 256,
	      "core pending[0].siginfo is 128 bytes of hex");

	CHECK(odd && !get(odd, "rseq") && !get(odd, "stopped"),
	      "core-7: absent optional fields are not printed");
	CHECK(YAJL_IS_ARRAY(get(odd, "pending")) && YAJL_GET_ARRAY(get(odd, "pending"))->len == 0,
	      "core-7: empty repeated field is []");
	CHECK(str_is(get(odd, "cwd"), core_odd.cwd), "core-7: quotes, backslashes and control "
						      "characters survive the JSON round trip");
	CHECK(YAJL_IS_STRING(get(odd, "comm")) && strstr(sval(get(odd, "comm")), "\xef\xbf\xbd") &&
		      strstr(sval(get(odd, "comm")), "ok \xe2\x82\xac"),
	      "core-7: invalid UTF-8 is replaced by U+FFFD, valid UTF-8 kept");
}

static void check_dir_json(yajl_val root)
{
	yajl_val inv = get(root, "inventory.img"), mmv = get(root, "mm-42.img");
	yajl_val pg = get(root, "pages-42.img"), fds = get(root, "fds-42.img");
	yajl_val vma0 = idx(get(mmv, "vmas"), 0), vma1 = idx(get(mmv, "vmas"), 1);

	CHECK(YAJL_IS_OBJECT(root) && YAJL_GET_OBJECT(root)->len == ARRAY_SIZE(imgs) + 1,
	      "the directory shows as one object with %zu images", ARRAY_SIZE(imgs) + 1);
	for (size_t i = 1; YAJL_IS_OBJECT(root) && i < YAJL_GET_OBJECT(root)->len; i++)
		CHECK(strcmp(YAJL_GET_OBJECT(root)->keys[i - 1], YAJL_GET_OBJECT(root)->keys[i]) < 0,
		      "file names are sorted (%s, %s)", YAJL_GET_OBJECT(root)->keys[i - 1],
		      YAJL_GET_OBJECT(root)->keys[i]);
	CHECK(num_is(get(inv, "dumped_at_ns"), "18446744073709551615"),
	      "inventory.dumped_at_ns = 2^64-1 prints as a JSON number");
	CHECK(str_is(get(inv, "kernel_release"), "6.18.0") && YAJL_IS_TRUE(get(inv, "shell_job")),
	      "inventory strings and optional bools");
	CHECK(num_is(idx(get(inv, "pids"), 1), "43"), "inventory.pids[1]");
	CHECK(str_is(get(idx(get(mmv, "vmas"), 2), "kind"), "VMA_VDSO") &&
		      str_is(get(vma0, "kind"), "VMA_ANON_PRIVATE"),
	      "enums print as their names");
	CHECK(!get(vma0, "pgoff") && num_is(get(vma1, "pgoff"), "0") && !get(vma1, "name"),
	      "optional fields: printed when present (even as 0), absent otherwise");
	CHECK(num_is(get(idx(get(fds, "fds"), 1), "pos"), "1099511627776") &&
		      str_is(get(idx(get(fds, "fds"), 2), "kind"), "FD_DUP"),
	      "fds-42.img values");
	CHECK(YAJL_IS_TRUE(get(pg, "magic_ok")) && num_is(get(pg, "nr_pages"), "3") &&
		      num_is(get(pg, "pid"), "42") && num_is(get(pg, "page_size"), "4096") &&
		      num_is(get(pg, "version"), "2") && num_is(get(pg, "file_size"), "16396") &&
		      !get(pg, "error"),
	      "pages-42.img shows as its header");
	check_core_json(get(root, "core-42.img"), get(root, "core-7.img"));
}

static void test_show_good(void)
{
	struct shown sh;
	yajl_val root;

	group_begin("stasis show on good images");
	sh = show(1, good_dir);
	root = parse_json(sh.out);
	CHECK(sh.ret == 0 && root && !sh.err[0], "show DIR: exit %d, valid JSON %d, stderr \"%s\"",
	      sh.ret, root != NULL, sh.err);
	if (root)
		check_dir_json(root);
	yajl_tree_free(root);
	shown_free(&sh);

	for (size_t i = 0; i < ARRAY_SIZE(imgs); i++) {
		char *path = path_in(good_dir, imgs[i].name);
		sh = show(1, path);
		root = parse_json(sh.out);
		CHECK(sh.ret == 0 && YAJL_IS_OBJECT(root), "show %s: exit %d", imgs[i].name, sh.ret);
		yajl_tree_free(root);
		shown_free(&sh);
		free(path);
	}
	{
		char *pages = path_in(good_dir, "pages-42.img");
		sh = show(2, pages, good_dir);
		root = parse_json(sh.out);
		CHECK(sh.ret == 0 && get(get(root, pages), "nr_pages") &&
			      get(get(root, good_dir), "inventory.img"),
		      "show FILE DIR: one object keyed by argument (exit %d)", sh.ret);
		yajl_tree_free(root);
		shown_free(&sh);
		free(pages);
	}
	sh = show(1, "--help");
	CHECK(sh.ret == 0 && strstr(sh.out, "usage"), "show --help");
	shown_free(&sh);
	group_end();
}

/* ino_map: 100,000 keys (spread and adjacent) found with their values, absent ones not; xgrow
 * keeps every element while the capacity doubles. */
static void test_ino_map(void)
{
	struct ino_map m = { 0 };
	bool ok = true;
	size_t v = 0, *array = NULL, cap = 0;

	group_begin("ino-map and xgrow");
	for (size_t i = 0; i < 100000 && ok; i++)
		ok = ino_map_add(&m, (i % 2 ? i * 0x9e3779b1ull : i) + 1, i) == 1;
	CHECK(ok && m.n == 100000, "ino_map_add: %zu keys added", m.n);
	CHECK(ino_map_add(&m, 1, 7) == 0 && ino_map_get(&m, 1, &v) && v == 0, "a key added twice keeps its value");
	for (size_t i = 0; i < 100000 && ok; i++)
		ok = ino_map_get(&m, (i % 2 ? i * 0x9e3779b1ull : i) + 1, &v) && v == i;
	CHECK(ok, "ino_map_get: a key lost or of the wrong value (%zu)", v);
	CHECK(!ino_map_get(&m, 0, NULL) && !ino_map_get(&m, 3 * 0x9e3779b1ull + 2, NULL), "absent keys found");
	ino_map_free(&m);
	CHECK(!m.slots && !m.n && !ino_map_get(&m, 1, NULL), "ino_map_free leaves an empty map");
	ok = true;
	for (size_t i = 0; i < 5000 && ok; i++) {
		ok = !xgrow(&array, &cap, i, sizeof(*array)) && cap > i;
		if (ok)
			array[i] = i * 3;
	}
	for (size_t i = 0; i < 5000 && ok; i++)
		ok = array[i] == i * 3;
	CHECK(ok && cap < 2 * 5000 + 16, "xgrow: elements kept, capacity %zu for 5000", cap);
	free(array);
	group_end();
}

/* write_u32s: n 4-byte values v[] at off of p */
static void write_u32s(uint8_t *p, size_t off, const uint32_t *v, size_t n)
{
	memcpy(p + off, v, n * sizeof(*v));
}

/*
 * io_uring layouts (cr/files/io-uring-layout.c), the kernel's arithmetic checked against what
 * io_uring_setup reported on this machine (sq_off.array 320 for 8 entries, 640 with CQE32;
 * 8256 for 256), then the sizes told from pages and, in rings too small for pages to tell, from
 * what the memory holds.
 */
static void test_io_uring_layout(void)
{
	static uint8_t ring[3 * 4096], sqes[2 * 4096];
	const uint32_t identity[4] = { 0, 1, 2, 3 }, fio[4] = { 2, 0, 3, 1 };

	group_begin("io_uring layout");
	CHECK(io_uring_array_offset(16, 16) == 320 && io_uring_array_offset(16, 32) == 640 &&
		      io_uring_array_offset(512, 16) == 8256 && io_uring_array_offset(128, 32) == 4224,
	      "array offsets %zu %zu %zu %zu", io_uring_array_offset(16, 16), io_uring_array_offset(16, 32),
	      io_uring_array_offset(512, 16), io_uring_array_offset(128, 32));
	/* libuv's ring (256, 512 completions, no array): 3 pages, 16-byte completions only fit */
	CHECK(io_uring_completion_size(ring, 3, 256, 512) == 16, "256/512 in 3 pages: not 16-byte completions");
	CHECK(io_uring_completion_size(ring, 5, 256, 512) == 32, "256/512 in 5 pages: not 32-byte completions");
	/* 4 entries, 4 completions, 1 page either way: fio's array (written per submission, no
	 * identity) is the 16-byte layout's */
	memset(ring, 0, sizeof(ring));
	write_u32s(ring, io_uring_array_offset(4, 16), fio, 4);
	CHECK(io_uring_completion_size(ring, 1, 4, 4) == 16, "fio's ring taken for 32-byte completions");
	/* 8/16 with 32-byte completions: an array where that layout puts it */
	memset(ring, 0, sizeof(ring));
	write_u32s(ring, io_uring_array_offset(16, 32), identity, 4);
	CHECK(io_uring_completion_size(ring, 1, 8, 16) == 32, "an array past the 16-byte layout's end: not 32");
	/* ... or no array, completions posted past the first half */
	memset(ring, 0, sizeof(ring));
	ring[IO_URING_CQES + 12 * 32] = 7;
	CHECK(io_uring_completion_size(ring, 1, 8, 16) == 32, "a 13th 32-byte completion: not 32");
	/* a fresh ring: 16 */
	memset(ring, 0, sizeof(ring));
	write_u32s(ring, io_uring_array_offset(16, 16), identity, 4);
	CHECK(io_uring_completion_size(ring, 1, 8, 16) == 16, "8/16 with its array: not 16-byte completions");
	memset(ring, 0, sizeof(ring));
	CHECK(io_uring_completion_size(ring, 1, 8, 16) == 16, "an empty ring: not 16-byte completions");
	/* submissions: 64 entries take 1 or 2 pages; 8 take one either way */
	memset(sqes, 0, sizeof(sqes));
	CHECK(io_uring_submission_size(sqes, 1, 64) == 64 && io_uring_submission_size(sqes, 2, 64) == 128,
	      "64 entries in 1 and 2 pages: not 64 and 128 bytes");
	CHECK(io_uring_submission_size(sqes, 1, 8) == 64, "8 entries, nothing past 512 bytes: not 64 bytes");
	sqes[5 * 128] = 1; /* the 6th 128-byte entry's opcode */
	CHECK(io_uring_submission_size(sqes, 1, 8) == 128, "8 entries, the 6th at 640: not 128 bytes");
	group_end();
}

/* A core image with a 1 MiB bytes field: printed in full. */
static void test_show_large_bytes(void)
{
	TaskCore big = core;
	size_t n = 1 << 20;
	uint8_t *data = malloc(n);
	char *path;
	struct shown sh;
	yajl_val root;

	group_begin("stasis show prints a 1 MiB bytes field in full");
	clean_bad_dir();
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i ^ (i >> 8));
	big.xsave.data = data, big.xsave.len = n;
	big.pid = 77;
	CHECK(image_write(bad_fd, IMG_CORE, 77, &big.base) == 0, "write core-77.img");
	path = path_in(bad_dir, "core-77.img");
	sh = show(1, path);
	root = parse_json(sh.out);
	CHECK(sh.ret == 0 && YAJL_IS_STRING(get(root, "xsave")) &&
		      strlen(sval(get(root, "xsave"))) == 2 * n &&
		      !strncmp(sval(get(root, "xsave")) + 2 * 0x1234, "2627", 4),
	      "xsave: %zu hex digits", 2 * n);
	yajl_tree_free(root);
	shown_free(&sh);
	free(path);
	free(data);
	group_end();
}

static void test_show_bad(void)
{
	struct shown sh;
	yajl_val root;
	char *p;

	group_begin("stasis show on bad input");
	clean_bad_dir();
	sh = show(0);
	CHECK(sh.ret != 0 && strstr(sh.err, "no image file or directory given"), "show without arguments");
	shown_free(&sh);
	sh = show(1, "-x");
	CHECK(sh.ret != 0 && strstr(sh.err, "unknown option -x") && !strstr(sh.err, "usage"),
	      "show with an unknown option: '%s'", sh.err);
	shown_free(&sh);

	p = path_in(bad_dir, "nonexistent");
	sh = show(1, p);
	CHECK(sh.ret != 0 && strstr(sh.err, p) && !sh.out[0], "show of a missing path: exit %d",
	      sh.ret);
	shown_free(&sh);
	free(p);

	sh = show(1, bad_dir);
	root = parse_json(sh.out);
	CHECK(sh.ret == 0 && YAJL_IS_OBJECT(root) && YAJL_GET_OBJECT(root)->len == 0,
	      "show of an empty directory: {} and exit 0");
	yajl_tree_free(root);
	shown_free(&sh);

	/* a directory with good images, one bad image, and things that are no images */
	for (size_t i = 0; i < ARRAY_SIZE(imgs); i++) {
		char *src = path_in(good_dir, imgs[i].name), *dst = path_in(bad_dir, imgs[i].name);
		size_t len;
		uint8_t *buf = read_whole(src, &len);

		if (imgs[i].type == IMG_MM)
			len /= 2;
		write_file(dst, buf, len);
		free(buf);
		free(src);
		free(dst);
	}
	p = path_in(bad_dir, "notes.txt");
	write_file(p, "not an image", 12);
	free(p);
	p = path_in(bad_dir, "subdir.img");
	mkdir(p, 0700);
	free(p);
	p = path_in(bad_dir, "fifo.img");
	mkfifo(p, 0600);
	sh = show(1, p);
	CHECK(sh.ret != 0, "show of a FIFO fails without blocking");
	shown_free(&sh);
	free(p);

	sh = show(1, bad_dir);
	root = parse_json(sh.out);
	CHECK(sh.ret != 0, "show DIR with a truncated mm-42.img: exit %d", sh.ret);
	CHECK(root && get(get(root, "mm-42.img"), "error") && get(root, "core-42.img") &&
		      get(get(root, "subdir.img"), "error") && get(get(root, "fifo.img"), "error") &&
		      !get(root, "notes.txt"),
	      "the bad files stand as {\"error\": ...}, the good ones are shown, non-images skipped");
	CHECK(strstr(sh.err, "mm-42.img"), "stderr names the bad file");
	yajl_tree_free(root);
	shown_free(&sh);

	/* page data under a protobuf image name, and a protobuf image under a page file name */
	clean_bad_dir();
	{
		char *src = path_in(good_dir, "pages-42.img"), *dst = path_in(bad_dir, "core-42.img");
		size_t len;
		uint8_t *buf = read_whole(src, &len);

		write_file(dst, buf, len);
		sh = show(1, dst);
		CHECK(sh.ret != 0 && strstr(sh.err, dst), "show of page data named core-42.img");
		shown_free(&sh);
		free(buf);
		free(src);
		free(dst);
		src = path_in(good_dir, "inventory.img");
		dst = path_in(bad_dir, "pages-42.img");
		buf = read_whole(src, &len);
		write_file(dst, buf, len);
		sh = show(1, dst);
		CHECK(sh.ret != 0 && strstr(sh.err, dst), "show of an image named pages-42.img");
		shown_free(&sh);
		free(buf);
		free(src);
		free(dst);
	}

	/* an enum value the schema does not name */
	{
		Mm odd = mm;
		VmaEntry v = vma_heap;
		VmaEntry *vp[] = { &v };
		ProtobufCMessage *msg = NULL;
		struct capture c;
		char *err;
		int ret;

		v.kind = (VmaKind)99;
		odd.n_vmas = 1, odd.vmas = vp;
		CHECK(image_write(bad_fd, IMG_MM, 9, &odd.base) == 0, "write mm-9.img");
		p = path_in(bad_dir, "mm-9.img");
		cap_begin(&c, 2);
		ret = image_read_path(p, NULL, &msg);
		err = cap_end(&c);
		image_free(msg);
		free(err);
		sh = show(1, p);
		root = parse_json(sh.out);
		if (ret == 0)
			CHECK(sh.ret == 0 && num_is(get(idx(get(root, "vmas"), 0), "kind"), "99"),
			      "an unnamed enum value prints as its number");
		else
			CHECK(sh.ret != 0, "an image the decoder refuses fails show too");
		yajl_tree_free(root);
		shown_free(&sh);
		free(p);
	}
	group_end();
}

/* ---- main ---- */

static void setup(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmp_root, sizeof(tmp_root), "%s/stasis-unit-XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(tmp_root))
		die("mkdtemp");
	snprintf(good_dir, sizeof(good_dir), "%s/good", tmp_root);
	snprintf(bad_dir, sizeof(bad_dir), "%s/bad", tmp_root);
	if (mkdir(good_dir, 0700) < 0 || mkdir(bad_dir, 0700) < 0)
		die("mkdir");
	good_fd = open(good_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bad_fd = open(bad_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (good_fd < 0 || bad_fd < 0)
		die("open dirs");
}

int main(void)
{
	log_init(LOG_WARN, NULL);
	setup();

	test_write_read();
	test_out_of_memory();
	test_pages_roundtrip();
	test_desc_by_filename();
	test_show_good();
	test_show_large_bytes();
	test_truncation();
	test_byte_flips();
	test_header_fields();
	test_wrong_names();
	test_garbage();
	test_fuzzed_payloads();
	test_missing();
	test_pages_damage();
	test_show_bad();
	test_ino_map();
	test_io_uring_layout();

	close(good_fd);
	close(bad_fd);
	if (getenv("KEEP_IMAGES"))
		printf("images kept in %s\n", tmp_root);
	else
		remove_tree(tmp_root);
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
