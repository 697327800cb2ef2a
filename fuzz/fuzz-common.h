/*
 * What the fuzz targets share: a scratch directory that exists nowhere on the host (a tmpfs
 * mounted nowhere, gone with the process), image files written there with their header made
 * by the harness (type, format version, payload length, CRC and dump id always right, so that
 * the decoding and the checks behind the CRC are what the fuzzer reaches), and an engine that
 * prints nothing and probes nothing.
 */
#ifndef STASIS_FUZZ_COMMON_H
#define STASIS_FUZZ_COMMON_H

#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "image.h"
#include "kernel/features.h"
#include "log.h"

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* The dump id every file the harnesses write carries (the inventory's too). */
static const uint8_t fuzz_dump_id[DUMP_ID_LEN] = "stasis-fuzzing!";

/* The scratch directory: a fresh tmpfs, never attached to any mount tree (root needed). */
static inline int fuzz_scratch_dir(void)
{
	static int dir = -1;

	if (dir < 0) {
		int fs = syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
		if (fs < 0 || syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) ||
		    (dir = syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0)) < 0) {
			perror("fuzz: a detached tmpfs (fsopen, fsconfig, fsmount; root needed)");
			abort();
		}
		close(fs);
	}
	return dir;
}

/* Every file of the scratch directory removed (it holds no directories). */
static inline void fuzz_clear_dir(int dir)
{
	int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;

	if (!d)
		abort();
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dir, de->d_name, 0);
	closedir(d);
}

static inline void fuzz_write_file(int dir, const char *name, const void *data, size_t len)
{
	int fd = openat(dir, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		abort();
	close(fd);
}

/* A protobuf image name of type: its header made for payload, then payload. */
static inline void fuzz_write_image(int dir, const char *name, enum image_type type,
				    const uint8_t *payload, size_t len)
{
	struct image_header h = { .type = type, .version = IMAGE_FORMAT_VERSION, .payload_len = len };
	uint8_t *buf = malloc(sizeof(h) + len);

	if (!buf)
		abort();
	memcpy(h.magic, "STASISIM", sizeof(h.magic));
	memcpy(h.dump_id, fuzz_dump_id, DUMP_ID_LEN);
	h.payload_crc = image_crc32(image_crc32(0, &h, sizeof(h)), payload, len);
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), payload, len);
	fuzz_write_file(dir, name, buf, sizeof(h) + len);
	free(buf);
}

/*
 * A raw page file name: its header from hdr (hdr_len bytes of it, the rest zero; the magic
 * and dump id set), then, if the header's nr_pages is at most max_pages, that many pages with
 * their checksums: the first taken from pages (pages_len bytes), the rest zeroes (a hole).
 */
static inline void fuzz_write_raw_image(int dir, const char *name, const uint8_t *hdr,
					size_t hdr_len, const uint8_t *pages, size_t pages_len,
					uint64_t max_pages)
{
	static uint8_t head[PAGES_HEADER_SIZE], page[4096];
	struct pages_header h;
	int fd = openat(dir, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		abort();
	memset(head, 0, sizeof(head));
	memcpy(head, hdr, hdr_len < sizeof(h) ? hdr_len : sizeof(h));
	memcpy(&h, head, sizeof(h));
	memcpy(h.magic, PAGES_MAGIC, sizeof(h.magic));
	memcpy(h.dump_id, fuzz_dump_id, DUMP_ID_LEN);
	memcpy(head, &h, sizeof(h));
	if (write(fd, head, sizeof(head)) != sizeof(head))
		abort();
	if (h.nr_pages <= max_pages) {
		uint32_t *sums = malloc(h.nr_pages * sizeof(*sums) + 1), zero_sum;
		if (!sums)
			abort();
		memset(page, 0, sizeof(page));
		zero_sum = page_sum(page);
		for (uint64_t i = 0; i < h.nr_pages; i++) {
			size_t at = i * 4096, n = at < pages_len ? pages_len - at : 0;
			sums[i] = zero_sum;
			if (!n)
				continue;
			memset(page, 0, sizeof(page));
			memcpy(page, pages + at, n < 4096 ? n : 4096);
			sums[i] = page_sum(page);
			if (pwrite(fd, page, sizeof(page), PAGES_HEADER_SIZE + at) != sizeof(page))
				abort();
		}
		if (ftruncate(fd, PAGES_HEADER_SIZE + h.nr_pages * 4096) ||
		    pwrite(fd, sums, h.nr_pages * sizeof(*sums), PAGES_HEADER_SIZE + h.nr_pages * 4096) !=
			    (ssize_t)(h.nr_pages * sizeof(*sums)))
			abort();
		free(sums);
	}
	close(fd);
}

/* Once, from LLVMFuzzerInitialize. */
static inline void fuzz_init(void)
{
	log_init(0, NULL);
	log_capture_errors(); /* errors kept, not printed */
	kernel_features_assume_present();
}

#endif
