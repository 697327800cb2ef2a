#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "util.h"

static const char image_magic[8] = { 'S', 'T', 'A', 'S', 'I', 'S', 'I', 'M' };
static const char pages_magic[8] = { 'S', 'T', 'A', 'S', 'I', 'S', 'P', 'G' };

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
	{ IMG_NET_LINKS, "net-links", 0, &net_links__descriptor },
	{ IMG_NET_ADDRS, "net-addrs", 0, &net_addrs__descriptor },
	{ IMG_NET_ROUTES, "net-routes", 0, &net_routes__descriptor },
	{ IMG_NET_RULES, "net-rules", 0, &net_rules__descriptor },
	{ IMG_NET_NEIGH, "net-neigh", 0, &net_neighs__descriptor },
	{ IMG_NET_SYSCTLS, "net-sysctls", 0, &net_sysctls__descriptor },
	{ IMG_NFTABLES, "nftables", 0, &nft_ruleset__descriptor },
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
	if (d->per_task)
		snprintf(buf, len, "%s-%u.img", d->name, pid);
	else
		snprintf(buf, len, "%s.img", d->name);
}

uint32_t image_crc32(uint32_t crc, const void *buf, size_t len)
{
	static uint32_t table[256];
	const unsigned char *p = buf;

	if (!table[1]) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	}
	crc = ~crc;
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* CRC-32 of the header (with its crc field zero) and the payload. */
static uint32_t image_checksum(const struct image_header *hdr, const void *payload, size_t len)
{
	struct image_header h = *hdr;

	h.payload_crc = 0;
	return image_crc32(image_crc32(0, &h, sizeof(h)), payload, len);
}

int image_write(int dirfd, enum image_type type, unsigned pid, const ProtobufCMessage *msg)
{
	char name[64], tmp[80];
	struct image_header hdr = { .type = type, .version = IMAGE_FORMAT_VERSION };
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf;
	int fd, ret = 0;

	image_filename(name, sizeof(name), type, pid);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	buf = xmalloc(len);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf);
	memcpy(hdr.magic, image_magic, sizeof(hdr.magic));
	hdr.payload_len = len;
	hdr.payload_crc = image_checksum(&hdr, buf, len);

	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		pr_perror("cannot create image file %s", name);
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

/* Reads and checks an open image; name is only for messages. */
static int image_read_fd(int fd, const char *name, const struct image_desc *want,
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
		if (memcmp(hdr.magic, pages_magic, sizeof(hdr.magic)) == 0)
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
	if (hdr.payload_len > IMAGE_MAX_PAYLOAD ||
	    (uint64_t)st.st_size != sizeof(hdr) + hdr.payload_len) {
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

int image_read(int dirfd, enum image_type type, unsigned pid, ProtobufCMessage **msg)
{
	char name[64];
	int fd, ret;

	*msg = NULL;
	image_filename(name, sizeof(name), type, pid);
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_perror("image %s: cannot open", name);
		return ret;
	}
	ret = image_read_fd(fd, name, image_desc(type), NULL, msg);
	close(fd);
	return ret;
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
	ret = image_read_fd(fd, path, NULL, desc_out, msg);
	close(fd);
	return ret;
}

void image_free(ProtobufCMessage *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, &image_allocator);
}

int raw_image_create(int dirfd, enum image_type type, unsigned id)
{
	char name[64];
	int fd;

	image_filename(name, sizeof(name), type, id);
	fd = openat(dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		pr_perror("cannot create image file %s", name);
		return -errno;
	}
	if (raw_image_finish(fd, type, id, 0) < 0) {
		close(fd);
		return -EIO;
	}
	if (lseek(fd, PAGES_HEADER_SIZE, SEEK_SET) < 0) {
		pr_perror("cannot seek in image file %s", name);
		close(fd);
		return -EIO;
	}
	return fd;
}

int raw_image_finish(int fd, enum image_type type, unsigned id, uint64_t nr_pages)
{
	static char page[PAGES_HEADER_SIZE];
	struct pages_header *h = (struct pages_header *)page;
	char name[64];

	memset(page, 0, sizeof(page));
	memcpy(h->magic, pages_magic, sizeof(h->magic));
	h->version = IMAGE_FORMAT_VERSION;
	h->page_size = 4096;
	h->nr_pages = nr_pages;
	h->pid = id;
	if (pwrite(fd, page, sizeof(page), 0) != sizeof(page)) {
		image_filename(name, sizeof(name), type, id);
		pr_perror("cannot write the header of %s", name);
		return -EIO;
	}
	return 0;
}

int raw_image_open(int dirfd, enum image_type type, unsigned id, uint64_t nr_pages)
{
	struct pages_header h;
	char name[64];
	struct stat st;
	int fd;

	image_filename(name, sizeof(name), type, id);
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("image %s: cannot open", name);
		return -errno;
	}
	if (fstat(fd, &st) || pread(fd, &h, sizeof(h), 0) != sizeof(h)) {
		pr_err("image %s: truncated header", name);
		goto bad;
	}
	if (memcmp(h.magic, pages_magic, sizeof(h.magic)) || h.version != IMAGE_FORMAT_VERSION ||
	    h.page_size != 4096) {
		pr_err("image %s: not a stasis page file of format version %u", name,
		       IMAGE_FORMAT_VERSION);
		goto bad;
	}
	if (h.pid != id || h.nr_pages != nr_pages ||
	    nr_pages > ((uint64_t)INT64_MAX - PAGES_HEADER_SIZE) / 4096 ||
	    (uint64_t)st.st_size != PAGES_HEADER_SIZE + nr_pages * 4096) {
		pr_err("image %s: holds %llu pages in %lld bytes, its table expects %llu pages "
		       "(truncated or foreign file)",
		       name, (unsigned long long)h.nr_pages, (long long)st.st_size,
		       (unsigned long long)nr_pages);
		goto bad;
	}
	return fd;
bad:
	close(fd);
	return -EINVAL;
}

int pages_image_create(int dirfd, unsigned pid)
{
	return raw_image_create(dirfd, IMG_PAGES, pid);
}

int pages_image_finish(int fd, unsigned pid, uint64_t nr_pages)
{
	return raw_image_finish(fd, IMG_PAGES, pid, nr_pages);
}

int pages_image_open(int dirfd, unsigned pid, uint64_t nr_pages)
{
	return raw_image_open(dirfd, IMG_PAGES, pid, nr_pages);
}
