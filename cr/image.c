#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "safe-file.h"
#include "util.h"

static const char image_magic[8] = { 'S', 'T', 'A', 'S', 'I', 'S', 'I', 'M' };

/* protobuf-c's allocations come from the engine's allocator too (counted, failures logged). */
static bool decode_out_of_memory;

static void *image_alloc(void *data, size_t size)
{
	void *p = xmalloc(size);

	(void)data;
	if (!p)
		decode_out_of_memory = true;
	return p;
}

static void image_alloc_free(void *data, void *p)
{
	(void)data;
	free(p);
}

static ProtobufCAllocator image_allocator = { image_alloc, image_alloc_free, NULL };

/* Frees all but the message it was given (allocator_data): that one is held by value. */
static void free_but_held(void *held, void *p)
{
	if (p != held)
		free(p);
}

void image_free_fields(ProtobufCMessage *msg)
{
	ProtobufCAllocator a = { image_alloc, free_but_held, msg };

	protobuf_c_message_free_unpacked(msg, &a);
}

static const struct image_desc image_descs[] = {
	{ IMG_INVENTORY, "inventory", 0, &inventory__descriptor },
	{ IMG_CORE, "core", 1, &task_core__descriptor },
	{ IMG_MM, "mm", 1, &mm__descriptor },
	{ IMG_PAGEMAP, "pagemap", 1, &pagemap__descriptor },
	{ IMG_FDS, "fds", 1, &fd_table__descriptor },
	{ IMG_PAGES, "pages", 1, NULL },
	{ IMG_SHMEM, "shmem", 0, &shmem_table__descriptor },
	{ IMG_PIPES, "pipes", 0, &pipe_table__descriptor },
	{ IMG_GHOSTS, "ghosts", 0, &ghost_table__descriptor },
	{ IMG_SOCKETS, "sockets", 0, &socket_table__descriptor },
	{ IMG_TTYS, "ttys", 0, &tty_table__descriptor },
	{ IMG_MQUEUES, "mqueues", 0, &mqueue_table__descriptor },
	{ IMG_IPC_NS, "ipc-ns", 0, &ipc_ns__descriptor },
	{ IMG_MOUNT_NS, "mount-ns", 0, &mount_ns__descriptor },
	{ IMG_TMPFS, "tmpfs", 1, &tmpfs_tree__descriptor },
	{ IMG_TMPFS_DATA, "tmpfsdata", 1, NULL },
	{ IMG_UTS_NS, "uts-ns", 0, &uts_ns__descriptor },
	{ IMG_NET_NS, "net-ns", 0, &net_ns__descriptor },
	{ IMG_SECCOMP, "seccomp", 0, &seccomp_table__descriptor },
	{ IMG_TIME_NS, "time-ns", 0, &time_ns__descriptor },
	{ IMG_CGROUPS, "cgroups", 0, &cgroups__descriptor },
	{ IMG_NET_LINKS, "net-links", 2, &net_links__descriptor },
	{ IMG_NET_ADDRS, "net-addrs", 2, &net_addrs__descriptor },
	{ IMG_NET_ROUTES, "net-routes", 2, &net_routes__descriptor },
	{ IMG_NET_RULES, "net-rules", 2, &net_rules__descriptor },
	{ IMG_NET_NEIGH, "net-neigh", 2, &net_neighs__descriptor },
	{ IMG_NET_SYSCTLS, "net-sysctls", 2, &net_sysctls__descriptor },
	{ IMG_NFTABLES, "nftables", 2, &nft_ruleset__descriptor },
	{ IMG_USER_NS, "userns", 0, &user_ns__descriptor },
	{ IMG_MOUNT_NESTED, "mount-nested", 0, &mount_nested__descriptor },
	{ IMG_UTS_NESTED, "uts-nested", 0, &uts_nested__descriptor },
	{ IMG_NET_NESTED, "net-nested", 0, &net_nested__descriptor },
	{ IMG_IPC_NESTED, "ipc-nested", 0, &ipc_nested__descriptor },
	{ IMG_HOST_SEMS, "host-sems", 0, &host_sems__descriptor },
	{ IMG_DETACHED_MOUNTS, "detached-mounts", 0, &detached_mount_table__descriptor },
	{ IMG_IPC_NESTED_OBJECTS, "ipc-nested-objects", 1, &ipc_ns__descriptor },
	{ IMG_XTABLES, "xtables", 2, &xtables__descriptor },
	{ IMG_NET_QDISCS, "net-qdiscs", 2, &net_qdiscs__descriptor },
	{ IMG_NET_NEXTHOPS, "net-nexthops", 2, &net_nexthops__descriptor },
	{ IMG_NET_FDB, "net-fdb", 2, &net_bridge_entries__descriptor },
	{ IMG_XFRM, "xfrm", 2, &net_xfrm__descriptor },
};

const struct image_desc *image_desc(enum image_type type)
{
	for (size_t i = 0; i < ARRAY_SIZE(image_descs); i++)
		if (image_descs[i].type == type)
			return &image_descs[i];
	return NULL;
}

const struct image_desc *image_desc_by_filename(const char *filename)
{
	const char *base = strrchr(filename, '/');
	base = base ? base + 1 : filename;
	for (size_t i = 0; i < ARRAY_SIZE(image_descs); i++) {
		size_t n = strlen(image_descs[i].name);
		if (strncmp(base, image_descs[i].name, n) != 0)
			continue;
		const char *rest = base + n;
		if (image_descs[i].per_task == 2 && !strcmp(rest, ".img"))
			return &image_descs[i];
		if (image_descs[i].per_task) {
			if (*rest++ != '-')
				continue;
			size_t digits = strspn(rest, "0123456789");
			if (digits == 0 || digits > 10 || (digits == 10 && strncmp(rest, "4294967295", 10) > 0))
				continue;
			rest += digits;
		}
		if (strcmp(rest, ".img") == 0)
			return &image_descs[i];
	}
	return NULL;
}

void image_filename(char *buf, size_t len, enum image_type type, unsigned pid)
{
	const struct image_desc *d = image_desc(type);
	if (d->per_task == 1 || (d->per_task == 2 && pid))
		snprintf(buf, len, "%s-%u.img", d->name, pid);
	else
		snprintf(buf, len, "%s.img", d->name);
}

/* CRC-32 (zlib's) eight bytes at a time: table k gives a byte's CRC k bytes further on. */
static uint32_t crc_tables[8][256];

static void crc_tables_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_tables[0][i] = c;
	}
	for (int k = 1; k < 8; k++)
		for (uint32_t i = 0; i < 256; i++)
			crc_tables[k][i] = (crc_tables[k - 1][i] >> 8) ^ crc_tables[0][crc_tables[k - 1][i] & 0xff];
}

uint32_t image_crc32(uint32_t crc, const void *buf, size_t len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const uint32_t(*t)[256] = crc_tables;
	const unsigned char *p = buf;

	pthread_once(&once, crc_tables_init);
	crc = ~crc;
	for (; len && ((uintptr_t)p & 7); len--)
		crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t v;
		memcpy(&v, p, 8); /* little-endian: the first byte lowest */
		uint32_t lo = (uint32_t)v ^ crc, hi = (uint32_t)(v >> 32);
		crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
		      t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
	}
	while (len--)
		crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

bool image_path_ok(const char *path)
{
	if (!path || path[0] != '/' || strnlen(path, PATH_MAX) >= PATH_MAX)
		return false;
	for (const char *p = path; (p = strstr(p, "..")); p += 2)
		if (p[-1] == '/' && (p[2] == '/' || p[2] == 0))
			return false;
	return true;
}

/* CRC-32 of the header (with its crc field zero) and the payload. */
static uint32_t image_checksum(const struct image_header *hdr, const void *payload, size_t len)
{
	struct image_header h = *hdr;

	h.payload_crc = 0;
	return image_crc32(image_crc32(0, &h, sizeof(h)), payload, len);
}

const char *dump_id_text(const uint8_t id[DUMP_ID_LEN], char out[DUMP_ID_TEXT_LEN])
{
	for (int i = 0; i < DUMP_ID_LEN; i++)
		sprintf(out + 2 * i, "%02x", id[i]);
	return out;
}

void image_dump_id(int dirfd, uint8_t id[DUMP_ID_LEN])
{
	int fd = openat(dirfd, DUMP_ID_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 || read_all(fd, id, DUMP_ID_LEN) != DUMP_ID_LEN)
		memset(id, 0, DUMP_ID_LEN);
	if (fd >= 0)
		close(fd);
}

/*
 * The dump id every image of dirfd must carry: its inventory's. Nonzero if there is no
 * readable inventory to say (the inventory's own reading says what is wrong with it).
 */
static int inventory_dump_id(int dirfd, uint8_t id[DUMP_ID_LEN])
{
	struct image_header h;
	int fd = openat(dirfd, "inventory.img", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	bool ok = fd >= 0 && pread(fd, &h, sizeof(h), 0) == sizeof(h) &&
		  !memcmp(h.magic, image_magic, sizeof(h.magic)) && h.version == IMAGE_FORMAT_VERSION &&
		  h.type == IMG_INVENTORY;

	if (fd >= 0)
		close(fd);
	if (ok)
		memcpy(id, h.dump_id, DUMP_ID_LEN);
	return !ok;
}

int image_inventory_dump_id(int dirfd, uint8_t id[DUMP_ID_LEN])
{
	return inventory_dump_id(dirfd, id) ? -EINVAL : 0;
}

int image_check_dump_id(int dirfd, const char *name, const uint8_t have[DUMP_ID_LEN])
{
	uint8_t want[DUMP_ID_LEN];
	char a[DUMP_ID_TEXT_LEN], b[DUMP_ID_TEXT_LEN];

	if (dirfd < 0 || inventory_dump_id(dirfd, want) || !memcmp(want, have, DUMP_ID_LEN))
		return 0;
	pr_err("image %s: belongs to another dump (its dump id is %s, the inventory's %s)", name,
	       dump_id_text(have, a), dump_id_text(want, b));
	return -EINVAL;
}

static int write_image(int dirfd, enum image_type type, unsigned pid, const ProtobufCMessage *msg,
		       bool in_place);

int image_write(int dirfd, enum image_type type, unsigned pid, const ProtobufCMessage *msg)
{
	return write_image(dirfd, type, pid, msg, false);
}

int image_write_in_place(int dirfd, enum image_type type, unsigned pid, const ProtobufCMessage *msg)
{
	return write_image(dirfd, type, pid, msg, true);
}

static int write_image(int dirfd, enum image_type type, unsigned pid, const ProtobufCMessage *msg,
		       bool in_place)
{
	char name[64], tmp[80];
	struct image_header hdr = { .type = type, .version = IMAGE_FORMAT_VERSION };
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf;
	int fd, ret = 0;

	image_filename(name, sizeof(name), type, pid);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	if (len > IMAGE_MAX_PAYLOAD) { /* (a restore would refuse it) */
		pr_err("image %s: %zu MiB of state, more than an image holds (%u MiB): data queued in "
		       "sockets or pipes, or deleted files under a raised --ghost-limit",
		       name, len >> 20, IMAGE_MAX_PAYLOAD >> 20);
		return -EFBIG;
	}
	buf = xmalloc(len);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf);
	memcpy(hdr.magic, image_magic, sizeof(hdr.magic));
	hdr.payload_len = len;
	if (!in_place)
		image_dump_id(dirfd, hdr.dump_id);
	else if (inventory_dump_id(dirfd, hdr.dump_id)) {
		pr_err("image %s: no inventory.img in place to take the dump id from", name);
		free(buf);
		return -EINVAL;
	}
	hdr.payload_crc = image_checksum(&hdr, buf, len);

	if ((ret = safe_file_not_link(dirfd, name))) {
		pr_err("cannot create image file %s: %s", name, safe_file_strerror(ret));
		goto out;
	}
	fd = safe_file_create(dirfd, tmp, O_WRONLY);
	if (fd < 0) {
		ret = fd;
		pr_err("cannot create image file %s (as %s): %s", name, tmp, safe_file_strerror(ret));
		goto out;
	}
	if (write_all(fd, &hdr, sizeof(hdr)) || write_all(fd, buf, len)) {
		ret = -errno;
		pr_perror("cannot write image file %s", name);
		close(fd);
		unlinkat(dirfd, tmp, 0);
		goto out;
	}
	close(fd);
	if (renameat(dirfd, tmp, dirfd, name)) {
		ret = -errno;
		pr_perror("cannot rename image file %s", name);
		unlinkat(dirfd, tmp, 0);
	}
out:
	free(buf);
	return ret;
}

/*
 * Reads and checks an open image; name is only for messages. dirfd: the images directory
 * whose inventory's dump id it must carry (-1: any).
 */
static int image_read_fd(int fd, int dirfd, const char *name, const struct image_desc *want,
			 const struct image_desc **desc_out, ProtobufCMessage **msg)
{
	struct image_header hdr;
	const struct image_desc *d;
	struct stat st;
	uint8_t *buf;

	*msg = NULL;
	if (fstat(fd, &st)) {
		pr_perror("image %s: cannot stat", name);
		return -errno;
	}
	if (read_all(fd, &hdr, sizeof(hdr)) != sizeof(hdr)) {
		pr_err("image %s: truncated header (file is %lld bytes)", name, (long long)st.st_size);
		return -EINVAL;
	}
	if (memcmp(hdr.magic, image_magic, sizeof(hdr.magic)) != 0) {
		if (memcmp(hdr.magic, PAGES_MAGIC, sizeof(hdr.magic)) == 0)
			pr_err("image %s: is a page data file, not a protobuf image", name);
		else
			pr_err("image %s: bad magic, not a stasis image", name);
		return -EINVAL;
	}
	if (hdr.version != IMAGE_FORMAT_VERSION) {
		pr_err("image %s: format version %u, this stasis reads version %u", name, hdr.version,
		       IMAGE_FORMAT_VERSION);
		return -EINVAL;
	}
	d = image_desc(hdr.type);
	if (!d || !d->msg_desc || (want && d != want)) {
		pr_err("image %s: holds image type %u, expected %s", name, hdr.type,
		       want ? want->name : "a protobuf image");
		return -EINVAL;
	}
	if (hdr.payload_len > IMAGE_MAX_PAYLOAD) {
		pr_err("image %s: payload of %llu bytes, more than an image may hold (%u MiB)", name,
		       (unsigned long long)hdr.payload_len, IMAGE_MAX_PAYLOAD >> 20);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size != sizeof(hdr) + hdr.payload_len) {
		pr_err("image %s: payload length %llu does not match file size %lld (truncated?)", name,
		       (unsigned long long)hdr.payload_len, (long long)st.st_size);
		return -EINVAL;
	}
	buf = xmalloc(hdr.payload_len);
	if (!buf)
		return -ENOMEM;
	if (read_all(fd, buf, hdr.payload_len) != (ssize_t)hdr.payload_len) {
		pr_err("image %s: short read of payload", name);
		free(buf);
		return -EINVAL;
	}
	if (image_checksum(&hdr, buf, hdr.payload_len) != hdr.payload_crc) {
		pr_err("image %s: checksum mismatch, the file is corrupted", name);
		free(buf);
		return -EINVAL;
	}
	if (hdr.type != IMG_INVENTORY && image_check_dump_id(dirfd, name, hdr.dump_id)) {
		free(buf);
		return -EINVAL;
	}
	decode_out_of_memory = false;
	*msg = protobuf_c_message_unpack(d->msg_desc, &image_allocator, hdr.payload_len, buf);
	free(buf);
	if (!*msg && decode_out_of_memory)
		return -ENOMEM;
	if (!*msg) {
		pr_err("image %s: cannot decode %s message", name, d->name);
		return -EINVAL;
	}
	if (desc_out)
		*desc_out = d;
	return 0;
}

int image_open(int dirfd, const char *name)
{
	struct stat st;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), err;

	if (fd < 0) {
		err = -errno;
		if (err == -ELOOP)
			pr_err("image %s: is a symbolic link (refusing to follow it)", name);
		else
			pr_perror("image %s: cannot open", name);
		return err;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		pr_err("image %s: is not a regular file", name);
		close(fd);
		return -EINVAL;
	}
	return fd;
}

int image_read(int dirfd, enum image_type type, unsigned pid, ProtobufCMessage **msg)
{
	char name[64];
	int fd, ret;

	*msg = NULL;
	image_filename(name, sizeof(name), type, pid);
	if ((fd = image_open(dirfd, name)) < 0)
		return fd;
	ret = image_read_fd(fd, dirfd, name, image_desc(type), NULL, msg);
	close(fd);
	return ret;
}

int image_read_optional(int dirfd, enum image_type type, unsigned pid, ProtobufCMessage **msg)
{
	char name[64];

	*msg = NULL;
	image_filename(name, sizeof(name), type, pid);
	return faccessat(dirfd, name, F_OK, 0) ? 0 : image_read(dirfd, type, pid, msg);
}

int image_read_path(const char *path, const struct image_desc **desc_out, ProtobufCMessage **msg)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	*msg = NULL;
	if (fd < 0) {
		ret = -errno;
		pr_perror("image %s: cannot open", path);
		return ret;
	}
	ret = image_read_fd(fd, -1, path, NULL, desc_out, msg);
	close(fd);
	return ret;
}

void image_free(ProtobufCMessage *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, &image_allocator);
}
