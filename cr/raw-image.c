/*
 * Raw page files (pages-PID.img, tmpfsdata-ID.img): a header page, the pages, one checksum
 * per page (see image.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "safe-file.h"
#include "util.h"

#define SUMS_CHUNK_PAGES 256 /* pages read back or checked at a time (1 MiB) */

static const uint32_t *crc32c_table(void)
{
	static uint32_t table[256];

	if (!table[1]) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0x82f63b78u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	}
	return table;
}

/* Four CRC-32C chains over the page's quarters, one instruction each per step. */
__attribute__((target("sse4.2"))) static uint32_t page_sum_hw(const void *page)
{
	const uint64_t *q = page;
	uint64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;

	for (size_t i = 0; i < 128; i++) {
		c0 = __builtin_ia32_crc32di(c0, q[i]);
		c1 = __builtin_ia32_crc32di(c1, q[128 + i]);
		c2 = __builtin_ia32_crc32di(c2, q[256 + i]);
		c3 = __builtin_ia32_crc32di(c3, q[384 + i]);
	}
	return (uint32_t)c0 ^ ((uint32_t)c1 << 8 | (uint32_t)c1 >> 24) ^
	       ((uint32_t)c2 << 16 | (uint32_t)c2 >> 16) ^ ((uint32_t)c3 << 24 | (uint32_t)c3 >> 8);
}

/* The same, a byte at a time (a CPU without SSE 4.2). */
static uint32_t page_sum_sw(const void *page)
{
	const uint32_t *t = crc32c_table();
	const unsigned char *p = page;
	uint32_t c[4] = { 0 };

	for (int k = 0; k < 4; k++)
		for (size_t i = 0; i < 1024; i++)
			c[k] = t[(c[k] ^ p[k * 1024 + i]) & 0xff] ^ (c[k] >> 8);
	return c[0] ^ (c[1] << 8 | c[1] >> 24) ^ (c[2] << 16 | c[2] >> 16) ^ (c[3] << 24 | c[3] >> 8);
}

uint32_t page_sum(const void *page)
{
	static int hw = -1;

	if (hw < 0)
		hw = __builtin_cpu_supports("sse4.2");
	return hw ? page_sum_hw(page) : page_sum_sw(page);
}

void page_sums_add(struct page_sums *s, const void *pages, size_t len)
{
	size_t nr = len / 4096;
	uint64_t start = now_ns(CLOCK_MONOTONIC);

	if (s->n + nr > s->alloc) {
		uint64_t alloc = s->alloc ? s->alloc : 4096;
		while (alloc < s->n + nr)
			alloc *= 2;
		uint32_t *v = xreallocarray(s->v, alloc, sizeof(*v));
		if (!v) {
			s->nomem = true;
			s->n += nr;
			return;
		}
		s->v = v;
		s->alloc = alloc;
	}
	for (size_t i = 0; i < nr; i++, s->n++)
		if (!s->nomem)
			s->v[s->n] = page_sum((const char *)pages + i * 4096);
	s->ns += now_ns(CLOCK_MONOTONIC) - start;
}

void page_sums_free(struct page_sums *s)
{
	free(s->v);
	*s = (struct page_sums){ 0 };
}

static int write_raw_header(int fd, enum image_type type, unsigned id, uint64_t nr_pages,
			    const uint8_t dump_id[DUMP_ID_LEN])
{
	char page[PAGES_HEADER_SIZE] = { 0 };
	struct pages_header *h = (struct pages_header *)page;
	char name[64];

	memcpy(h->magic, PAGES_MAGIC, sizeof(h->magic));
	h->version = IMAGE_FORMAT_VERSION;
	h->page_size = 4096;
	h->nr_pages = nr_pages;
	h->pid = id;
	memcpy(h->dump_id, dump_id, DUMP_ID_LEN);
	if (pwrite(fd, page, sizeof(page), 0) != sizeof(page)) {
		image_filename(name, sizeof(name), type, id);
		pr_perror("cannot write the header of %s", name);
		return -EIO;
	}
	return 0;
}

static int raw_image_create_as(int dirfd, enum image_type type, unsigned id,
				const uint8_t dump_id[DUMP_ID_LEN])
{
	char name[64];
	int fd;

	image_filename(name, sizeof(name), type, id);
	fd = safe_file_create(dirfd, name, O_RDWR);
	if (fd < 0) {
		pr_err("cannot create image file %s: %s", name, safe_file_strerror(fd));
		return fd;
	}
	if (write_raw_header(fd, type, id, 0, dump_id) < 0 || lseek(fd, PAGES_HEADER_SIZE, SEEK_SET) < 0) {
		close(fd);
		return -EIO;
	}
	return fd;
}

int raw_image_create(int dirfd, enum image_type type, unsigned id)
{
	uint8_t dump_id[DUMP_ID_LEN];

	image_dump_id(dirfd, dump_id);
	return raw_image_create_as(dirfd, type, id, dump_id);
}

int raw_image_finish_sums(int fd, enum image_type type, unsigned id, uint64_t nr_pages,
			  const struct page_sums *sums)
{
	struct pages_header h;
	char name[64];
	size_t len = nr_pages * sizeof(uint32_t);

	image_filename(name, sizeof(name), type, id);
	if (sums->nomem || sums->n != nr_pages) {
		pr_err("image %s: checksums of %llu pages for %llu written%s", name,
		       (unsigned long long)sums->n, (unsigned long long)nr_pages,
		       sums->nomem ? " (out of memory)" : "");
		return -EIO;
	}
	if (pread(fd, &h, sizeof(h), 0) != sizeof(h) ||
	    (len && pwrite(fd, sums->v, len, PAGES_HEADER_SIZE + nr_pages * 4096) != (ssize_t)len)) {
		pr_perror("cannot write the page checksums of %s", name);
		return -EIO;
	}
	return write_raw_header(fd, type, id, nr_pages, h.dump_id);
}

/* The sums of the pages written so far, read back from the file. */
int raw_image_finish(int fd, enum image_type type, unsigned id, uint64_t nr_pages)
{
	struct page_sums sums = { 0 };
	char *buf = xmalloc(SUMS_CHUNK_PAGES * 4096);
	int err = buf ? 0 : -ENOMEM;

	for (uint64_t p = 0; p < nr_pages && !err; p += SUMS_CHUNK_PAGES) {
		size_t len = (nr_pages - p < SUMS_CHUNK_PAGES ? nr_pages - p : SUMS_CHUNK_PAGES) * 4096;
		if (pread(fd, buf, len, PAGES_HEADER_SIZE + p * 4096) != (ssize_t)len) {
			err = -EIO;
			break;
		}
		page_sums_add(&sums, buf, len);
	}
	if (err) {
		char name[64];
		image_filename(name, sizeof(name), type, id);
		pr_err("image %s: cannot read back its pages for their checksums", name);
	} else {
		err = raw_image_finish_sums(fd, type, id, nr_pages, &sums);
	}
	free(buf);
	page_sums_free(&sums);
	return err;
}

int raw_image_verify(int fd, enum image_type type, unsigned id, uint64_t first, uint64_t nr,
		     const void *data)
{
	uint32_t sums[SUMS_CHUNK_PAGES];
	struct pages_header h;
	char name[64];

	image_filename(name, sizeof(name), type, id);
	if (pread(fd, &h, sizeof(h), 0) != sizeof(h) || first > h.nr_pages || nr > h.nr_pages - first) {
		pr_err("image %s: pages %llu-%llu are not in it", name, (unsigned long long)first,
		       (unsigned long long)(first + nr));
		return -EIO;
	}
	for (uint64_t done = 0; done < nr;) {
		size_t n = nr - done < SUMS_CHUNK_PAGES ? nr - done : SUMS_CHUNK_PAGES;
		if (pread(fd, sums, n * sizeof(*sums),
			  PAGES_HEADER_SIZE + h.nr_pages * 4096 + (first + done) * sizeof(*sums)) !=
		    (ssize_t)(n * sizeof(*sums))) {
			pr_err("image %s: cannot read its page checksums", name);
			return -EIO;
		}
		for (size_t i = 0; i < n; i++, done++) {
			if (page_sum((const char *)data + done * 4096) != sums[i]) {
				pr_err("image %s: page %llu (at offset %llu) does not match its checksum: "
				       "the file is corrupted",
				       name, (unsigned long long)(first + done),
				       (unsigned long long)(PAGES_HEADER_SIZE + (first + done) * 4096));
				return -EIO;
			}
		}
	}
	return 0;
}

/*
 * Opens a raw page file and checks its header, size and dump id (against the inventory of
 * dirfd: up a chain of dumps, each parent's own), not its pages; nr_pages: the count
 * expected, or NULL to take the header's (*found gets it).
 */
static int raw_image_open_header(int dirfd, enum image_type type, unsigned id,
				 const uint64_t *nr_pages, uint64_t *found)
{
	struct pages_header h;
	char name[64];
	struct stat st;
	int fd;

	image_filename(name, sizeof(name), type, id);
	if ((fd = image_open(dirfd, name)) < 0)
		return fd;
	if (fstat(fd, &st) || pread(fd, &h, sizeof(h), 0) != sizeof(h)) {
		pr_err("image %s: truncated header", name);
		goto bad;
	}
	if (memcmp(h.magic, PAGES_MAGIC, sizeof(h.magic)) || h.version != IMAGE_FORMAT_VERSION ||
	    h.page_size != 4096) {
		pr_err("image %s: not a stasis page file of format version %u", name,
		       IMAGE_FORMAT_VERSION);
		goto bad;
	}
	if (h.pid != id || (nr_pages && h.nr_pages != *nr_pages) ||
	    h.nr_pages > ((uint64_t)INT64_MAX - PAGES_HEADER_SIZE) / (4096 + sizeof(uint32_t)) ||
	    (uint64_t)st.st_size != raw_image_size(h.nr_pages)) {
		pr_err("image %s: holds %llu pages in %lld bytes, its table expects %llu pages "
		       "(truncated or foreign file)",
		       name, (unsigned long long)h.nr_pages, (long long)st.st_size,
		       (unsigned long long)(nr_pages ? *nr_pages : h.nr_pages));
		goto bad;
	}
	if (image_check_dump_id(dirfd, name, h.dump_id))
		goto bad;
	if (found)
		*found = h.nr_pages;
	return fd;
bad:
	close(fd);
	return -EINVAL;
}

int raw_image_check_pages(int fd, enum image_type type, unsigned id, uint64_t first, uint64_t nr)
{
	char *buf = xmalloc(SUMS_CHUNK_PAGES * 4096);
	int err = buf ? 0 : -ENOMEM;

	for (uint64_t p = first; p < first + nr && !err; p += SUMS_CHUNK_PAGES) {
		size_t n = first + nr - p < SUMS_CHUNK_PAGES ? first + nr - p : SUMS_CHUNK_PAGES;
		if (pread(fd, buf, n * 4096, PAGES_HEADER_SIZE + p * 4096) != (ssize_t)(n * 4096)) {
			char name[64];
			image_filename(name, sizeof(name), type, id);
			pr_err("image %s: cannot read pages %llu-%llu", name, (unsigned long long)p,
			       (unsigned long long)(p + n));
			err = -EIO;
		} else {
			err = raw_image_verify(fd, type, id, p, n, buf);
		}
	}
	free(buf);
	return err;
}

int raw_image_open(int dirfd, enum image_type type, unsigned id, uint64_t nr_pages)
{
	int fd = raw_image_open_header(dirfd, type, id, &nr_pages, NULL), err;

	if (fd >= 0 && (err = raw_image_check_pages(fd, type, id, 0, nr_pages))) {
		close(fd);
		return err;
	}
	return fd;
}

int pages_image_create(int dirfd, unsigned pid)
{
	return raw_image_create(dirfd, IMG_PAGES, pid);
}

int pages_image_finish(int fd, unsigned pid, uint64_t nr_pages, const struct page_sums *sums)
{
	return sums ? raw_image_finish_sums(fd, IMG_PAGES, pid, nr_pages, sums)
		    : raw_image_finish(fd, IMG_PAGES, pid, nr_pages);
}

int pages_image_open(int dirfd, unsigned pid, uint64_t nr_pages)
{
	return raw_image_open_header(dirfd, IMG_PAGES, pid, &nr_pages, NULL);
}

int pages_image_open_counted(int dirfd, unsigned pid, uint64_t *nr_pages)
{
	return raw_image_open_header(dirfd, IMG_PAGES, pid, NULL, nr_pages);
}

int pages_image_create_as(int dirfd, unsigned pid, const uint8_t dump_id[DUMP_ID_LEN])
{
	return raw_image_create_as(dirfd, IMG_PAGES, pid, dump_id);
}
