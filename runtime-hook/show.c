/*
 * stasis show DIR|FILE...: decode images to JSON.
 *
 * Generic over the protobuf-c descriptors: every field of every message is printed by
 * walking ProtobufCMessageDescriptor, so a field added to proto/image.proto shows up here
 * without code. Enums print as their names, bytes as hex strings (in full), 64-bit
 * unsigned values as plain JSON numbers, optional fields only when present. Page data
 * files (pages-PID.img) print as their header, not as data.
 *
 * A directory prints as one object keyed by file name, holding every *.img in it, sorted.
 * Several arguments print as one object keyed by argument. Every image is read and
 * checked by image_read_path() before anything of it is printed; an unreadable image is
 * reported on stderr, stands as {"error": ...} inside a directory, and makes the exit
 * code 1.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>

#include "commands.h"
#include "image.h"
#include "log.h"
#include "util.h"

static const char pages_magic[8] = { 'S', 'T', 'A', 'S', 'I', 'S', 'P', 'G' };

struct out {
	yajl_gen g;
	int err; /* first generator failure */
};

/* ---- JSON output helpers: the first generator failure is logged and kept in o->err ---- */

static void out_check(struct out *o, yajl_gen_status st)
{
	if (st == yajl_gen_status_ok || o->err)
		return;
	pr_err("show: JSON generator failed (yajl status %d)", (int)st);
	o->err = -EIO;
}

static void out_map_open(struct out *o)
{
	out_check(o, yajl_gen_map_open(o->g));
}

static void out_map_close(struct out *o)
{
	out_check(o, yajl_gen_map_close(o->g));
}

static void out_array_open(struct out *o)
{
	out_check(o, yajl_gen_array_open(o->g));
}

static void out_array_close(struct out *o)
{
	out_check(o, yajl_gen_array_close(o->g));
}

static void out_null(struct out *o)
{
	out_check(o, yajl_gen_null(o->g));
}

static void out_bool(struct out *o, bool v)
{
	out_check(o, yajl_gen_bool(o->g, v));
}

static void out_i64(struct out *o, int64_t v)
{
	out_check(o, yajl_gen_integer(o->g, v));
}

static void out_u64(struct out *o, uint64_t v)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%" PRIu64, v);

	out_check(o, yajl_gen_number(o->g, buf, n));
}

static void out_double(struct out *o, double v, int digits)
{
	char buf[40];
	int n;

	if (isnan(v)) {
		out_check(o, yajl_gen_string(o->g, (const unsigned char *)"NaN", 3));
		return;
	}
	if (isinf(v)) {
		const char *s = v < 0 ? "-Infinity" : "Infinity";
		out_check(o, yajl_gen_string(o->g, (const unsigned char *)s, strlen(s)));
		return;
	}
	n = snprintf(buf, sizeof(buf), "%.*g", digits, v);
	out_check(o, yajl_gen_number(o->g, buf, n));
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if it is not valid UTF-8. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	uint32_t cp, min;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2, cp = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3, cp = s[0] & 0x0f, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4, cp = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * *fixed: a copy of str with every byte that is not valid UTF-8 replaced by U+FFFD, or
 * NULL when str is valid as it is. 0, or -ENOMEM.
 */
static int utf8_sanitize(const char *str, size_t len, char **fixed, size_t *fixed_len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, j = 0, n;
	char *buf;

	*fixed = NULL;
	while (i < len && (n = utf8_seq_len(s + i, len - i)))
		i += n;
	if (i == len)
		return 0;
	buf = xmalloc(len * 3 + 1);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < len;) {
		n = utf8_seq_len(s + i, len - i);
		if (n) {
			memcpy(buf + j, s + i, n);
			i += n, j += n;
		} else {
			memcpy(buf + j, "\xef\xbf\xbd", 3);
			i++, j += 3;
		}
	}
	*fixed = buf;
	*fixed_len = j;
	return 0;
}

/* Strings from images are not trusted to be UTF-8; JSON must be. */
static void out_str(struct out *o, const char *s)
{
	size_t len = strlen(s), fixed_len = 0;
	char *fixed;

	if (utf8_sanitize(s, len, &fixed, &fixed_len) < 0) {
		if (!o->err)
			o->err = -ENOMEM;
		return;
	}
	if (fixed)
		out_check(o, yajl_gen_string(o->g, (const unsigned char *)fixed, fixed_len));
	else
		out_check(o, yajl_gen_string(o->g, (const unsigned char *)s, len));
	free(fixed);
}

static void out_key(struct out *o, const char *key)
{
	out_str(o, key);
}

static void out_hex(struct out *o, const uint8_t *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	char *buf = xmalloc(len * 2 + 1);

	if (!buf) {
		if (!o->err)
			o->err = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < len; i++) {
		buf[2 * i] = digits[data[i] >> 4];
		buf[2 * i + 1] = digits[data[i] & 0xf];
	}
	out_check(o, yajl_gen_string(o->g, (const unsigned char *)buf, len * 2));
	free(buf);
}

/* ---- protobuf-c messages, walked through their descriptors ---- */

static void out_message(struct out *o, const ProtobufCMessage *msg);

/* Size of one element of a repeated field of this type, as protobuf-c lays it out. */
static size_t field_elem_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return 4;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

static void out_enum(struct out *o, const ProtobufCFieldDescriptor *f, int v)
{
	const ProtobufCEnumValue *ev = NULL;

	if (f->descriptor)
		ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
	if (ev && ev->name)
		out_str(o, ev->name);
	else
		out_i64(o, v); /* a value this schema does not name */
}

/* One value of field f stored at p. */
static void out_value(struct out *o, const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		out_i64(o, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		out_i64(o, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		out_i64(o, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		out_u64(o, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		out_double(o, *(const float *)p, 9);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		out_double(o, *(const double *)p, 17);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		out_bool(o, *(const protobuf_c_boolean *)p);
		break;
	case PROTOBUF_C_TYPE_ENUM:
		out_enum(o, f, *(const int *)p);
		break;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		if (s)
			out_str(o, s);
		else
			out_null(o);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		out_hex(o, b->data, b->data ? b->len : 0);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
		if (m)
			out_message(o, m);
		else
			out_null(o);
		break;
	}
	default:
		out_null(o);
	}
}

/* Whether a non-repeated field is set: required always, optional by has_/pointer/oneof case. */
static bool field_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	const char *base = (const char *)msg;

	if (f->label == PROTOBUF_C_LABEL_REQUIRED || f->label == PROTOBUF_C_LABEL_NONE)
		return true;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
	if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING) {
		const void *ptr = *(void *const *)(base + f->offset);
		return ptr && ptr != f->default_value;
	}
	return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
}

static void out_repeated(struct out *o, const ProtobufCMessage *msg,
			 const ProtobufCFieldDescriptor *f)
{
	const char *base = (const char *)msg;
	size_t n = *(const size_t *)(base + f->quantifier_offset);
	const char *arr = *(char *const *)(base + f->offset);
	size_t sz = field_elem_size(f->type);

	out_array_open(o);
	for (size_t i = 0; arr && i < n && !o->err; i++)
		out_value(o, f, arr + i * sz);
	out_array_close(o);
}

static void out_message(struct out *o, const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;

	out_map_open(o);
	for (unsigned i = 0; i < d->n_fields && !o->err; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			out_key(o, f->name);
			out_repeated(o, msg, f);
		} else if (field_present(msg, f)) {
			out_key(o, f->name);
			out_value(o, f, (const char *)msg + f->offset);
		}
	}
	out_map_close(o);
}

/* ---- page data files: the header ---- */

/* The pid a "pages-PID.img" name carries, 0 if the name is not one. */
static unsigned pages_name_pid(const char *path)
{
	const struct image_desc *d = image_desc_by_filename(path);
	const char *base = strrchr(path, '/');
	unsigned pid;

	base = base ? base + 1 : path;
	if (!d || d->msg_desc || sscanf(base + strlen(d->name), "-%u.img", &pid) != 1)
		return 0;
	return pid;
}

/* What is wrong with a page file's header, in words; "" if nothing. */
static void pages_problem(char *buf, size_t len, const char *path, const struct pages_header *h,
			  uint64_t file_size)
{
	unsigned name_pid = pages_name_pid(path);
	uint64_t max_pages = (UINT64_MAX - PAGES_HEADER_SIZE) / (4096 + sizeof(uint32_t));

	buf[0] = 0;
	if (memcmp(h->magic, pages_magic, sizeof(h->magic)) != 0)
		snprintf(buf, len, "bad magic, not a stasis page file");
	else if (h->version != IMAGE_FORMAT_VERSION)
		snprintf(buf, len, "format version %u, this stasis reads version %u", h->version,
			 IMAGE_FORMAT_VERSION);
	else if (h->page_size != 4096)
		snprintf(buf, len, "page size %u, expected 4096", h->page_size);
	else if (name_pid && h->pid != name_pid)
		snprintf(buf, len, "header is for pid %u, the file name says pid %u", h->pid, name_pid);
	else if (h->nr_pages > max_pages || file_size != raw_image_size(h->nr_pages))
		snprintf(buf, len, "header says %" PRIu64 " pages, but the file is %" PRIu64
			 " bytes (truncated or foreign file)", h->nr_pages, file_size);
}

static int show_pages(struct out *o, const char *path, bool *emitted)
{
	struct pages_header h;
	char problem[160];
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("image %s: cannot open", path);
		return -errno;
	}
	if (fstat(fd, &st) < 0) {
		pr_perror("image %s: cannot stat", path);
		close(fd);
		return -EIO;
	}
	n = pread(fd, &h, sizeof(h), 0);
	close(fd);
	if (n != (ssize_t)sizeof(h)) {
		pr_err("image %s: truncated page file header (file is %lld bytes)", path,
		       (long long)st.st_size);
		return -EINVAL;
	}
	pages_problem(problem, sizeof(problem), path, &h, st.st_size);

	out_map_open(o);
	out_key(o, "magic_ok");
	out_bool(o, memcmp(h.magic, pages_magic, sizeof(h.magic)) == 0);
	out_key(o, "version");
	out_i64(o, h.version);
	out_key(o, "page_size");
	out_i64(o, h.page_size);
	out_key(o, "nr_pages");
	out_u64(o, h.nr_pages);
	out_key(o, "pid");
	out_i64(o, h.pid);
	out_key(o, "file_size");
	out_u64(o, st.st_size);
	if (problem[0]) {
		out_key(o, "error");
		out_str(o, problem);
	}
	out_map_close(o);
	*emitted = true;

	if (problem[0]) {
		pr_err("image %s: %s", path, problem);
		return -EINVAL;
	}
	return o->err;
}

/* ---- protobuf images ---- */

static int show_image(struct out *o, const char *path, bool *emitted)
{
	const struct image_desc *d = NULL, *named;
	ProtobufCMessage *msg = NULL;
	int ret;

	ret = image_read_path(path, &d, &msg);
	if (ret < 0)
		return ret;
	named = image_desc_by_filename(path);
	if (named && named != d) {
		pr_err("image %s: holds a %s image, but is named like a %s image", path, d->name,
		       named->name);
		image_free(msg);
		return -EINVAL;
	}
	out_message(o, msg);
	*emitted = true;
	image_free(msg);
	return o->err;
}

static bool has_pages_magic(const char *path)
{
	char magic[sizeof(pages_magic)];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	ssize_t n;

	if (fd < 0)
		return false;
	n = pread(fd, magic, sizeof(magic), 0);
	close(fd);
	return n == (ssize_t)sizeof(magic) && memcmp(magic, pages_magic, sizeof(magic)) == 0;
}

/* One file: a page file's header or a decoded image. */
static int show_file(struct out *o, const char *path, bool *emitted)
{
	const struct image_desc *d = image_desc_by_filename(path);
	struct stat st;

	/* Let image_read_path() report a missing file; refuse FIFOs and devices (they block). */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		pr_err("image %s: not a regular file", path);
		return -EINVAL;
	}
	if (d && d->msg_desc && has_pages_magic(path)) {
		pr_err("image %s: holds page data, but is named like a %s image", path, d->name);
		return -EINVAL;
	}
	if ((d && !d->msg_desc) || has_pages_magic(path))
		return show_pages(o, path, emitted);
	return show_image(o, path, emitted);
}

/* Stands in for a file that could not be shown, inside a directory or argument list. */
static void out_error(struct out *o, int err)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "cannot read image: %s", strerror(-err));
	out_map_open(o);
	out_key(o, "error");
	out_str(o, msg);
	out_map_close(o);
}

static int img_filter(const struct dirent *de)
{
	size_t len = strlen(de->d_name);

	return de->d_name[0] != '.' && len > 4 && strcmp(de->d_name + len - 4, ".img") == 0;
}

/* A directory: an object keyed by file name, with every *.img in it, sorted. */
static int show_dir(struct out *o, const char *dir, bool *emitted)
{
	struct dirent **list;
	int n, ret = 0;

	n = scandir(dir, &list, img_filter, alphasort);
	if (n < 0) {
		pr_perror("images directory %s: cannot list", dir);
		return -errno;
	}
	*emitted = true;
	out_map_open(o);
	for (int i = 0; i < n; i++) {
		bool emitted = false;
		char *path = NULL;
		int r;

		if (!(path = xasprintf("%s/%s", dir, list[i]->d_name))) {
			r = -ENOMEM;
		} else {
			out_key(o, list[i]->d_name);
			r = show_file(o, path, &emitted);
			if (!emitted)
				out_error(o, r < 0 ? r : -EIO);
		}
		if (r < 0 && !ret)
			ret = r;
		free(path);
		free(list[i]);
	}
	free(list);
	out_map_close(o);
	return ret ? ret : o->err;
}

static int show_path(struct out *o, const char *path, bool *emitted)
{
	struct stat st;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return show_dir(o, path, emitted);
	return show_file(o, path, emitted);
}

static void print_cb(void *ctx, const char *str, size_t len)
{
	fwrite(str, 1, len, ctx);
}

static int show_usage(FILE *f)
{
	fprintf(f, "usage: stasis show DIR|FILE...\n"
		   "  Prints images as JSON: a directory as an object keyed by file name with\n"
		   "  every *.img in it; page data files (pages-PID.img) as their header.\n");
	return f == stdout ? 0 : 1;
}

/* Several arguments: one object keyed by argument. */
static int show_args(struct out *o, int n, char **paths)
{
	int ret = 0;

	if (n == 1) {
		bool emitted = false;
		return show_path(o, paths[0], &emitted);
	}
	out_map_open(o);
	for (int i = 0; i < n; i++) {
		bool emitted = false;
		int r;

		out_key(o, paths[i]);
		r = show_path(o, paths[i], &emitted);
		if (!emitted)
			out_error(o, r < 0 ? r : -EIO);
		if (r < 0 && !ret)
			ret = r;
	}
	out_map_close(o);
	return ret;
}

int cmd_show(int argc, char **argv)
{
	struct out o = { 0 };
	int first = 1, ret;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		return show_usage(stdout);
	/* ("-f FILE": criu show's old form) */
	if (argc > 1 && (!strcmp(argv[1], "--") || !strcmp(argv[1], "-f") || !strcmp(argv[1], "--file")))
		first = 2;
	else if (argc > 1 && argv[1][0] == '-' && argv[1][1]) {
		fprintf(stderr, "stasis show: unknown option %s (it takes image files and directories, "
				"or -f FILE)\n", argv[1]);
		return 1;
	}
	if (argc <= first) {
		fprintf(stderr, "stasis show: no image file or directory given\n");
		return 1;
	}

	o.g = yajl_gen_alloc(NULL);
	if (!o.g) {
		pr_err("show: cannot allocate the JSON generator");
		return 1;
	}
	yajl_gen_config(o.g, yajl_gen_beautify, 1);
	yajl_gen_config(o.g, yajl_gen_indent_string, "  ");
	yajl_gen_config(o.g, yajl_gen_print_callback, print_cb, stdout);

	ret = show_args(&o, argc - first, argv + first);
	yajl_gen_free(o.g);
	if (fflush(stdout) || ferror(stdout)) {
		pr_perror("show: cannot write to stdout");
		ret = -EIO;
	}
	return ret < 0 || o.err ? 1 : 0;
}
