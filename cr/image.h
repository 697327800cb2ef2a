/*
 * Image files. Every protobuf image is: a 32-byte header (magic "STASISIM", image type,
 * format version, payload length, CRC-32 of the payload), then one packed message.
 * Page data lives in pages-PID.img: one 4096-byte header page (magic "STASISPG"), then
 * raw pages, each at a page-aligned offset.
 */
#ifndef STASIS_IMAGE_H
#define STASIS_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "image.pb-c.h"

#define IMAGE_FORMAT_VERSION 1
#define IMAGE_MAX_PAYLOAD (256u << 20)
#define PAGES_HEADER_SIZE 4096

enum image_type {
	IMG_INVENTORY = 1,
	IMG_CORE,
	IMG_MM,
	IMG_PAGEMAP,
	IMG_FDS,
	IMG_PAGES, /* raw page data: no protobuf payload; pages-0.img holds shared objects */
	IMG_SHMEM,
	IMG_PIPES,
	IMG_GHOSTS,
	IMG_SOCKETS,
	IMG_TTYS,
	IMG_MQUEUES,
	IMG_IPC_NS,
	IMG_MOUNT_NS,
	IMG_TMPFS,      /* tmpfs-ID.img: a tmpfs mount's files (ID: its mount id) */
	IMG_TMPFS_DATA, /* tmpfsdata-ID.img: their data, raw pages like pages-PID.img */
	IMG_UTS_NS,
	IMG_NET_NS,
	IMG_SECCOMP,
	IMG_TIME_NS,
	IMG_CGROUPS,
	IMG_NET_LINKS,   /* the tree's network namespace: its interfaces, */
	IMG_NET_ADDRS,   /* addresses, */
	IMG_NET_ROUTES,  /* routes, */
	IMG_NET_RULES,   /* routing rules, */
	IMG_NET_NEIGH,   /* neighbour entries, */
	IMG_NET_SYSCTLS, /* sysctls */
	IMG_NFTABLES,    /* and nftables ruleset */
	IMG_NR_TYPES /* not a type: one past the last */
};

struct image_desc {
	enum image_type type;
	const char *name;     /* "core" -> core-PID.img; "inventory" -> inventory.img */
	int per_task;
	const ProtobufCMessageDescriptor *msg_desc; /* NULL for IMG_PAGES */
};

struct image_header {
	char magic[8];
	uint32_t type;
	uint32_t version;
	uint64_t payload_len;
	uint32_t payload_crc;
	uint32_t reserved;
};

struct pages_header {
	char magic[8];
	uint32_t version;
	uint32_t page_size;
	uint64_t nr_pages;
	uint32_t pid;
};

const struct image_desc *image_desc(enum image_type type);
/* The descriptor of a file name such as "core-42.img"; NULL if it is not an image name. */
const struct image_desc *image_desc_by_filename(const char *filename);
/* "core-42.img" into buf. */
void image_filename(char *buf, size_t len, enum image_type type, unsigned pid);

uint32_t image_crc32(uint32_t crc, const void *buf, size_t len);

/* Write one message atomically (temp file + rename) in dirfd. */
int image_write(int dirfd, enum image_type type, unsigned pid, const ProtobufCMessage *msg);
/*
 * Read and check one image: header, version, length, CRC, protobuf decoding. Errors name the
 * file. The message is freed with image_free().
 */
int image_read(int dirfd, enum image_type type, unsigned pid, ProtobufCMessage **msg);
/* Same for any image file given by path; *type_out says which kind it was. */
int image_read_path(const char *path, const struct image_desc **desc_out, ProtobufCMessage **msg);
void image_free(ProtobufCMessage *msg);

/*
 * Raw page files (a 4096-byte header, then pages): pages-PID.img, tmpfsdata-ID.img. Create
 * (header written), finish (header updated with the count), open and check (exactly nr_pages).
 */
int raw_image_create(int dirfd, enum image_type type, unsigned id);
int raw_image_finish(int fd, enum image_type type, unsigned id, uint64_t nr_pages);
int raw_image_open(int dirfd, enum image_type type, unsigned id, uint64_t nr_pages);
/* Pages file: open for writing (header written), finish (header updated), open and check. */
int pages_image_create(int dirfd, unsigned pid);
int pages_image_finish(int fd, unsigned pid, uint64_t nr_pages);
/* Opens pages-PID.img read-only, checks header and that it holds exactly nr_pages. */
int pages_image_open(int dirfd, unsigned pid, uint64_t nr_pages);

#endif
