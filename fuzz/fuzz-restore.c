/*
 * The restore's validation pass over a whole image set (cr_restore_check_images: the
 * inventory, every process's images with every per-task kind's checks, the tree, every
 * tree-wide kind's validate), nothing made, no process started.
 *
 * The input is an image set, serialized: records of [u8 name length][name][u32 data length]
 * [data], in the order written. A protobuf image's data is its payload: the harness writes its
 * header (type from the name, length, CRC, one dump id for the whole set), so that every
 * mutation reaches the checks behind the CRC. A raw page file's data is its pages header, then
 * page data: the harness writes the header's count of pages (at most MAX_PAGES; zeroes where
 * the data ends) with their checksums. Records whose names are not image names are skipped.
 *
 * The mutator keeps the records: it changes one record's data (libFuzzer's mutations), or now
 * and then the whole input (names, lengths, records dropped or repeated).
 */
#include "fuzz-common.h"
#include "options.h"
#include "run.h"

#define MAX_PAGES 16384
#define MAX_RECORDS 256

struct record {
	char name[256];
	const uint8_t *data;
	uint32_t len;
};

static size_t parse(const uint8_t *in, size_t size, struct record *r, size_t max)
{
	size_t n = 0, off = 0;

	while (n < max && off < size) {
		uint8_t nlen = in[off++];
		uint32_t dlen;
		if (!nlen || nlen > size - off || 4 > size - off - nlen)
			break;
		memcpy(r[n].name, in + off, nlen);
		r[n].name[nlen] = 0;
		off += nlen;
		memcpy(&dlen, in + off, 4);
		off += 4;
		if (dlen > size - off)
			break;
		r[n].data = in + off;
		r[n].len = dlen;
		off += dlen;
		n++;
	}
	return n;
}

static void write_record(int dir, const struct record *r)
{
	const struct image_desc *d = image_desc_by_filename(r->name);
	size_t h = sizeof(struct pages_header);

	if (!d || strchr(r->name, '/'))
		return;
	if (d->msg_desc)
		fuzz_write_image(dir, r->name, d->type, r->data, r->len);
	else if (r->len < h)
		fuzz_write_raw_image(dir, r->name, r->data, r->len, NULL, 0, MAX_PAGES);
	else
		fuzz_write_raw_image(dir, r->name, r->data, h, r->data + h, r->len - h, MAX_PAGES);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct record r[MAX_RECORDS];
	/* as a container's restore is run (--root, --ext-mount-map auto, --manage-cgroups): the
	 * root is only looked at */
	static const struct stasis_opts opts = {
		.root = "/", .ext_mount_auto = true, .manage_cgroups = true
	};
	struct run_ctx ctx;
	int dir, err;
	size_t n;

	dir = fuzz_scratch_dir();
	n = parse(data, size, r, MAX_RECORDS);
	for (size_t i = 0; i < n; i++)
		write_record(dir, &r[i]);
	run_ctx_init(&ctx, &opts, dir, dir);
	err = cr_restore_check_images(&ctx);
	run_ctx_fini(&ctx);
	if (getenv("FUZZ_SAY")) /* what a given input comes to: FUZZ_SAY=1 build-fuzz/fuzz-restore FILE */
		fprintf(stderr, "check: %d %s\n", err, log_captured_error() ? log_captured_error() : "");
	log_captured_reset();
	fuzz_clear_dir(dir);
	return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	static uint8_t out[8 << 20]; /* (run-fuzz.sh: -max_len 8 MiB; a TCP queue is big) */
	static struct record r[MAX_RECORDS];
	size_t n = parse(data, size, r, MAX_RECORDS), pick, off = 0, total = 0;

	if (!n || seed % 16 == 0 || max_size > sizeof(out))
		return LLVMFuzzerMutate(data, size, max_size);
	pick = (seed / 16) % n;
	for (size_t i = 0; i < n; i++)
		total += 1 + strlen(r[i].name) + 4 + r[i].len;
	for (size_t i = 0; i < n; i++) {
		size_t nlen = strlen(r[i].name), at = off + 1 + nlen + 4, len = r[i].len;
		out[off] = nlen;
		memcpy(out + off + 1, r[i].name, nlen);
		memcpy(out + at, r[i].data, len);
		if (i == pick) /* (what follows it still fits in max_size) */
			len = LLVMFuzzerMutate(out + at, len, len + (max_size - total));
		uint32_t len32 = len;
		memcpy(out + off + 1 + nlen, &len32, 4);
		off = at + len;
	}
	memcpy(data, out, off);
	return off;
}
