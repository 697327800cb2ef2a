/*
 * Every image decoder, through the engine's own read path (image_read: the file opened as the
 * restore opens it, header, version, length, CRC, dump id, then the type's protobuf message;
 * raw page files through raw_image_open: header, size, dump id, every page's checksum), then
 * through `stasis show` (cmd_show: the image as JSON, printed to /dev/null).
 *
 * The input: one byte that picks the image type (its low 7 bits modulo the number of types) and
 * the mode, then the payload. The harness writes the header itself, so that every mutation
 * of a payload reaches the decoder behind the CRC:
 *   byte & 0x80 clear  protobuf types: the payload is the message, the header made for it;
 *                      raw page types: the payload is the pages header (its magic and dump
 *                      id set by the harness), then page data: the header's count of pages
 *                      (at most MAX_PAGES) written with their checksums
 *   byte & 0x80 set    the payload is the whole file, as it is (the header checks themselves)
 */
#include "fuzz-common.h"
#include "../runtime-hook/commands.h"

#define MAX_PAGES 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_init();
	if (!freopen("/dev/null", "w", stdout)) /* (show's JSON) */
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum image_type type;
	const struct image_desc *d;
	ProtobufCMessage *msg = NULL;
	char name[64], path[128];
	int dir, fd;

	if (size < 1)
		return 0;
	dir = fuzz_scratch_dir();
	type = 1 + (data[0] & 0x7f) % (IMG_NR_TYPES - 1);
	d = image_desc(type);
	if (!d)
		abort(); /* a type without a descriptor: the harness is out of date */
	image_filename(name, sizeof(name), type, 1);
	if (data[0] & 0x80)
		fuzz_write_file(dir, name, data + 1, size - 1);
	else if (d->msg_desc)
		fuzz_write_image(dir, name, type, data + 1, size - 1);
	else {
		size_t h = size - 1 < sizeof(struct pages_header) ? size - 1 : sizeof(struct pages_header);
		fuzz_write_raw_image(dir, name, data + 1, h, data + 1 + h, size - 1 - h, MAX_PAGES);
	}
	if (d->msg_desc) {
		if (image_read(dir, type, 1, &msg) == 0)
			image_free(msg);
	} else {
		struct pages_header h = { 0 };
		fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || pread(fd, &h, sizeof(h), 0) < 0)
			abort();
		close(fd);
		/* the count its header says, as the pagemap that names it would */
		if ((fd = raw_image_open(dir, type, 1, h.nr_pages)) >= 0)
			close(fd);
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dir, name);
	cmd_show(2, (char *[]){ "show", path, NULL });
	unlinkat(dir, name, 0);
	log_captured_reset();
	return 0;
}
