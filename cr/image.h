/*
 * Image files. Every protobuf image is: a 48-byte header (magic "STASISIM", image type,
 * format version, payload length, CRC-32 of the payload, the dump id), then one packed
 * message. Page data lives in pages-PID.img: one 4096-byte header page (magic "STASISPG",
 * the dump id), then raw pages, each at a page-aligned offset, then one 32-bit checksum per
 * page (page_sum()).
 *
 * The dump id (128 random bits, made when the dump begins) binds a dump's files together:
 * every file of an image set carries its inventory's; a restore refuses a file whose id is
 * not the inventory's, naming it, and a page whose checksum does not match.
 */
#ifndef STASIS_IMAGE_H
#define STASIS_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "image.pb-c.h"

#define IMAGE_FORMAT_VERSION 2
#define IMAGE_MAX_PAYLOAD (1u << 30) /* a protobuf image: socket queues and deleted files make the big ones */
#define PAGES_HEADER_SIZE 4096
#define DUMP_ID_LEN 16
#define DUMP_ID_TEXT_LEN (2 * DUMP_ID_LEN + 1)
#define PAGES_MAGIC "STASISPG" /* the first 8 bytes of a raw page file */

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
	IMG_USER_NS,
	IMG_MOUNT_NESTED, /* mount namespaces nested in the tree's (mounts/mount-nested.c) */
	IMG_UTS_NESTED,   /* UTS namespaces of processes of the tree (cr/uts-nested.c) */
	IMG_NET_NESTED,   /* network namespaces of processes of the tree (netns/net-nested.c) */
	IMG_IPC_NESTED,   /* IPC namespaces of processes of the tree (cr/ipc-nested.c) */
	IMG_HOST_SEMS,    /* SEM_UNDO adjustments on the host's semaphores (cr/ipc-host-sem.c) */
	IMG_DETACHED_MOUNTS, /* mounts no namespace holds that files are open on (cr/files/detached-mount.c) */
	IMG_IPC_NESTED_OBJECTS, /* SysV queues and semaphore sets of a nested IPC namespace (cr/ipc-nested.c) */
	IMG_XTABLES,     /* legacy iptables tables of the tree's network namespace (netns/xtables.c) */
	IMG_NET_QDISCS,  /* queueing disciplines of the tree's interfaces (netns/net-qdiscs.c) */
	IMG_NET_NEXTHOPS, /* nexthop objects of the tree's network namespace (netns/net-nexthops.c) */
	IMG_NET_FDB,     /* bridges' configured forwarding entries (netns/net-fdb.c) */
	IMG_XFRM,        /* IPsec policies of the tree's network namespace (netns/net-xfrm.c) */
	IMG_NR_TYPES /* not a type: one past the last */
};

struct image_desc {
	enum image_type type;
	const char *name;     /* "core" -> core-PID.img; "inventory" -> inventory.img */
	int per_task;         /* 1: NAME-ID.img; 2: NAME.img for id 0, else NAME-ID.img (a network
			       * namespace's configuration: the tree's, or one a process made) */
	const ProtobufCMessageDescriptor *msg_desc; /* NULL for IMG_PAGES */
};

struct image_header {
	char magic[8];
	uint32_t type;
	uint32_t version;
	uint64_t payload_len;
	uint32_t payload_crc;
	uint32_t reserved;
	uint8_t dump_id[DUMP_ID_LEN];
};

struct pages_header {
	char magic[8];
	uint32_t version;
	uint32_t page_size;
	uint64_t nr_pages;
	uint32_t pid;
	uint32_t reserved;
	uint8_t dump_id[DUMP_ID_LEN];
};

/* The size of a raw page file of nr_pages: header, pages, their checksums. */
static inline uint64_t raw_image_size(uint64_t nr_pages)
{
	return PAGES_HEADER_SIZE + nr_pages * (4096 + sizeof(uint32_t));
}

/* The checksum of one 4096-byte page of a raw page file (CRC-32C of its four quarters). */
uint32_t page_sum(const void *page);
/* The checksums of the pages written so far to a raw page file, in order. */
struct page_sums {
	uint32_t *v;
	uint64_t n, alloc;
	uint64_t ns; /* time spent summing (stats) */
	bool nomem;
};
void page_sums_add(struct page_sums *s, const void *pages, size_t len);
void page_sums_free(struct page_sums *s);

const struct image_desc *image_desc(enum image_type type);
/* The descriptor of a file name such as "core-42.img"; NULL if it is not an image name. */
const struct image_desc *image_desc_by_filename(const char *filename);
/* "core-42.img" into buf. */
void image_filename(char *buf, size_t len, enum image_type type, unsigned pid);

uint32_t image_crc32(uint32_t crc, const void *buf, size_t len);

/* A path from an image that may be used: absolute, shorter than PATH_MAX, no ".." component. */
bool image_path_ok(const char *path);

/*
 * A dump's image set is written into a directory of its own inside the images directory
 * (.stasis-dump-PID-RANDOM, mode 0700) and moved into place only once complete, the
 * inventory last: a failed or killed dump leaves the images directory's earlier dump as it
 * was. Leftovers of killed dumps (their stasis gone) are removed by the next begin.
 */
#define DUMP_ID_FILE "dump-id" /* in a set's directory: the id its files carry */
struct image_set {
	int fd;        /* the set's own directory, where the dump writes */
	char name[64]; /* its name in the images directory */
	char **moved;  /* after a commit: the names put in place (NULL-terminated) */
};
/* Makes the set's directory in dirfd (its failure said, naming dir_name). */
int image_set_begin(int dirfd, const char *dir_name, struct image_set *set);
/*
 * Moves every file of the set into dirfd, replacing files of the same names, the inventory
 * last; refuses (before moving anything) if a name there is a symbolic link or not a regular
 * file, naming it. A chain's link "parent" (cr/image-chain.c) moves too, replacing only a
 * link. The set's directory is gone afterwards, whatever the outcome.
 */
int image_set_commit(int dirfd, struct image_set *set);
/* Removes the set's directory with what the dump wrote there (and forgets what moved). */
void image_set_abort(int dirfd, struct image_set *set);
/* A dump that fails after its commit (the post-dump hook refused it): what the commit put in
 * place is removed, the inventory first. */
void image_set_uncommit(int dirfd, struct image_set *set);

/*
 * The images of dirfd can only have been written by root (or by whoever runs stasis): the
 * directory and every image file in it owned by uid 0 or ours and writable by neither group
 * nor others. Otherwise the first that is not is named (-EPERM).
 */
int image_dir_check_owner(int dirfd, const char *dir_name);

/* Write one message atomically (temp file + rename) in dirfd. */
int image_write(int dirfd, enum image_type type, unsigned pid, const ProtobufCMessage *msg);
/* The same, in a dump's images once in place (committed): with its inventory's dump id. */
int image_write_in_place(int dirfd, enum image_type type, unsigned pid, const ProtobufCMessage *msg);
/*
 * Read and check one image: header, version, length, CRC, protobuf decoding. Errors name the
 * file. The message is freed with image_free().
 */
int image_read(int dirfd, enum image_type type, unsigned pid, ProtobufCMessage **msg);
/* ... or, if the set has no such image (a stasis that did not write it), 0 with *msg NULL. */
int image_read_optional(int dirfd, enum image_type type, unsigned pid, ProtobufCMessage **msg);
/* Same for any image file given by path; *type_out says which kind it was. */
int image_read_path(const char *path, const struct image_desc **desc_out, ProtobufCMessage **msg);
void image_free(ProtobufCMessage *msg);
/* What the fields of msg point to (a message the dump built and holds by value: every string,
 * array and message in it malloc'd and its own), freed; msg itself is left, its fields stale. */
void image_free_fields(ProtobufCMessage *msg);

/*
 * Raw page files (a 4096-byte header, pages, their checksums): pages-PID.img,
 * tmpfsdata-ID.img. Create (header written, the writer appends pages), finish (checksums
 * appended, header updated with the count: from sums if the writer kept them as it wrote,
 * else read back from the file), open and check (exactly nr_pages, this dump's id, and every
 * page's checksum).
 */
int raw_image_create(int dirfd, enum image_type type, unsigned id);
int raw_image_finish(int fd, enum image_type type, unsigned id, uint64_t nr_pages);
int raw_image_finish_sums(int fd, enum image_type type, unsigned id, uint64_t nr_pages,
			  const struct page_sums *sums);
int raw_image_open(int dirfd, enum image_type type, unsigned id, uint64_t nr_pages);
/*
 * nr pages at data, read from page first of the raw image open at fd: 0 if each matches its
 * checksum, else -EIO, naming the file and the page.
 */
int raw_image_verify(int fd, enum image_type type, unsigned id, uint64_t first, uint64_t nr,
		     const void *data);
/* Reads nr pages from page first of the raw image open at fd and checks them (errors said). */
int raw_image_check_pages(int fd, enum image_type type, unsigned id, uint64_t first, uint64_t nr);
/* Pages file: open for writing (header written), finish (header updated), open and check. */
int pages_image_create(int dirfd, unsigned pid);
int pages_image_finish(int fd, unsigned pid, uint64_t nr_pages, const struct page_sums *sums);
/*
 * Opens pages-PID.img read-only, checks its header, dump id and that it holds exactly
 * nr_pages; the pages' checksums are checked by their readers (raw_image_verify).
 */
int pages_image_open(int dirfd, unsigned pid, uint64_t nr_pages);
/* The same for a pages image whose count only its header says (an earlier dump of a chain,
 * or one a page server wrote): *nr_pages gets it, checked against the file's size. */
int pages_image_open_counted(int dirfd, unsigned pid, uint64_t *nr_pages);
/* pages-PID.img made for another dump's id (a page server writing what a dump sends it). */
int pages_image_create_as(int dirfd, unsigned pid, const uint8_t dump_id[DUMP_ID_LEN]);
/* The dump id of dirfd's inventory.img (its header's): -EINVAL if it has no readable one. */
int image_inventory_dump_id(int dirfd, uint8_t id[DUMP_ID_LEN]);
/* The dump id the image set being written in dirfd gives its files (zeroes outside a set). */
void image_dump_id(int dirfd, uint8_t id[DUMP_ID_LEN]);
/* id in hex, for messages. */
const char *dump_id_text(const uint8_t id[DUMP_ID_LEN], char out[DUMP_ID_TEXT_LEN]);
/* A file name of dirfd that carries dump id have: -EINVAL, said, if the inventory's is another. */
int image_check_dump_id(int dirfd, const char *name, const uint8_t have[DUMP_ID_LEN]);
/* An image file of the directory, for reading: a regular file, not reached through a link
 * (its failure said, naming it). */
int image_open(int dirfd, const char *name);

#endif
