#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "safe-file.h"
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

#define SET_PREFIX ".stasis-dump-"
#define DUMP_ID_FILE "dump-id" /* in a set's directory: the id its files carry */

static const char *hex_id(const uint8_t id[DUMP_ID_LEN], char out[2 * DUMP_ID_LEN + 1])
{
	for (int i = 0; i < DUMP_ID_LEN; i++)
		sprintf(out + 2 * i, "%02x", id[i]);
	return out;
}

/* The dump id of the image set written in dirfd; zeroes outside a set (tests, tools). */
static void set_dump_id(int dirfd, uint8_t id[DUMP_ID_LEN])
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

/* A file of dirfd that carries dump id have: refused if the inventory's is another. */
static int check_dump_id(int dirfd, const char *name, const uint8_t have[DUMP_ID_LEN])
{
	uint8_t want[DUMP_ID_LEN];
	char a[2 * DUMP_ID_LEN + 1], b[2 * DUMP_ID_LEN + 1];

	if (dirfd < 0 || inventory_dump_id(dirfd, want) || !memcmp(want, have, DUMP_ID_LEN))
		return 0;
	pr_err("image %s: belongs to another dump (its dump id is %s, the inventory's %s)", name,
	       hex_id(have, a), hex_id(want, b));
	return -EINVAL;
}

/* Removes directory name of dirfd and the files in it (an image set's directory is flat). */
static void remove_flat_dir(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *dir = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(fd, de->d_name, 0);
	closedir(dir);
	unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* Set directories whose stasis is gone (killed mid-dump). */
static void remove_stale_sets(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dir))) {
		int pid;
		if (de->d_type == DT_DIR && sscanf(de->d_name, SET_PREFIX "%d-", &pid) == 1 && pid > 0 &&
		    kill(pid, 0) && errno == ESRCH)
			remove_flat_dir(dirfd, de->d_name);
	}
	closedir(dir);
}

int image_set_begin(int dirfd, const char *dir_name, struct image_set *set)
{
	uint32_t rnd;

	set->fd = -1;
	set->moved = NULL;
	remove_stale_sets(dirfd);
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint32_t)now_ns(CLOCK_MONOTONIC);
	snprintf(set->name, sizeof(set->name), SET_PREFIX "%d-%08x", (int)getpid(), rnd);
	if (mkdirat(dirfd, set->name, 0700) ||
	    (set->fd = openat(dirfd, set->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		int err = -errno;
		pr_perror("images directory %s is not writable (cannot make %s in it)", dir_name,
			  set->name);
		unlinkat(dirfd, set->name, AT_REMOVEDIR);
		return err;
	}
	uint8_t id[DUMP_ID_LEN];
	char text[2 * DUMP_ID_LEN + 1];
	int fd = safe_file_create(set->fd, DUMP_ID_FILE, O_WRONLY), err = 0;
	if (getrandom(id, sizeof(id), 0) != sizeof(id) || fd < 0 || write_all(fd, id, sizeof(id))) {
		err = fd < 0 ? fd : -EIO;
		pr_err("images directory %s: cannot make the dump id in %s", dir_name, set->name);
		image_set_abort(dirfd, set);
	} else {
		pr_info("dump id %s", hex_id(id, text));
	}
	if (fd >= 0)
		close(fd);
	return err;
}

static void free_names(char **names)
{
	for (size_t i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
}

void image_set_abort(int dirfd, struct image_set *set)
{
	free_names(set->moved);
	set->moved = NULL;
	if (set->fd < 0)
		return;
	close(set->fd);
	set->fd = -1;
	remove_flat_dir(dirfd, set->name);
}

/* The names of the set's files, malloc'd, NULL-terminated; NULL if it cannot be read. */
static char **set_files(const struct image_set *set)
{
	int fd = openat(set->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while ((de = readdir(dir))) {
		char **more;
		bool parent_link = de->d_type == DT_LNK && !strcmp(de->d_name, "parent");
		if (!parent_link && (de->d_type != DT_REG || !image_desc_by_filename(de->d_name)))
			continue;
		if (!(more = xreallocarray(names, n + 2, sizeof(*names))) || !(more[n] = xstrdup(de->d_name))) {
			free(more ? more : names);
			names = NULL;
			break;
		}
		names = more;
		names[++n] = NULL;
	}
	closedir(dir);
	return names;
}

int image_set_commit(int dirfd, struct image_set *set)
{
	char **names = set_files(set);
	const char *inventory = "inventory.img";
	struct stat st;
	int err = names ? 0 : -ENOMEM;

	if (!names)
		pr_err("cannot list the new images in %s", set->name);
	/* every name checked before anything moves: the earlier dump stays whole on a refusal */
	for (size_t i = 0; !err && names[i]; i++) {
		bool parent_link = !strcmp(names[i], "parent"); /* a chain's link, replacing a link */
		if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    !(parent_link ? S_ISLNK(st.st_mode) : S_ISREG(st.st_mode))) {
			err = S_ISLNK(st.st_mode) ? -ELOOP : -EEXIST;
			pr_err("cannot put image file %s in place: %s", names[i], safe_file_strerror(err));
		}
	}
	for (int last = 0; last < 2 && !err; last++) {
		for (size_t i = 0; !err && names[i]; i++) {
			if ((strcmp(names[i], inventory) == 0) != last)
				continue;
			if (renameat(set->fd, names[i], dirfd, names[i])) {
				err = -errno;
				pr_perror("cannot put image file %s in place", names[i]);
			}
		}
	}
	image_set_abort(dirfd, set);
	if (err)
		free_names(names);
	else
		set->moved = names;
	return err;
}

void image_set_uncommit(int dirfd, struct image_set *set)
{
	for (int first = 1; first >= 0; first--) {
		for (size_t i = 0; set->moved && set->moved[i]; i++) {
			struct stat st;
			const char *name = set->moved[i];
			if ((strcmp(name, "inventory.img") == 0) != first ||
			    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
				continue;
			if (S_ISREG(st.st_mode) || (S_ISLNK(st.st_mode) && !strcmp(name, "parent")))
				unlinkat(dirfd, name, 0);
		}
	}
	free_names(set->moved);
	set->moved = NULL;
}

/* What makes st untrusted, in words; NULL if nothing. */
static const char *untrusted(const struct stat *st, char *buf, size_t len)
{
	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		snprintf(buf, len, "owned by uid %u", (unsigned)st->st_uid);
		return buf;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return st->st_mode & S_IWOTH ? "writable by anyone" : "writable by its group";
	return NULL;
}

int image_dir_check_owner(int dirfd, const char *dir_name)
{
	char buf[64], name[sizeof(((struct dirent *)0)->d_name) + 8] = "";
	const char *why = NULL;
	struct dirent *de;
	struct stat st;
	DIR *dir = NULL;
	int fd;

	if (fstat(dirfd, &st) == 0)
		why = untrusted(&st, buf, sizeof(buf));
	if (!why && (fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0 &&
	    !(dir = fdopendir(fd)))
		close(fd);
	while (dir && !why && (de = readdir(dir))) {
		/* (links and the like are refused when read, as not regular files) */
		if (image_desc_by_filename(de->d_name) &&
		    !fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) && S_ISREG(st.st_mode) &&
		    (why = untrusted(&st, buf, sizeof(buf))))
			snprintf(name, sizeof(name), "file %s", de->d_name);
	}
	if (dir)
		closedir(dir);
	if (!why)
		return 0;
	pr_err("images %s%s is %s: images someone other than root could have written are refused "
	       "(--allow-untrusted-images restores them anyway); nothing was started",
	       name[0] ? "" : "directory ", name[0] ? name : dir_name, why);
	return -EPERM;
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
	set_dump_id(dirfd, hdr.dump_id);
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
	if (hdr.type != IMG_INVENTORY && check_dump_id(dirfd, name, hdr.dump_id)) {
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

/* An image file of the directory, for reading: a regular file, not reached through a link. */
static int image_open(int dirfd, const char *name)
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

/* ---- raw page files ---- */

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

	memcpy(h->magic, pages_magic, sizeof(h->magic));
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

	set_dump_id(dirfd, dump_id);
	return raw_image_create_as(dirfd, type, id, dump_id);
}

void image_dump_id(int dirfd, uint8_t id[DUMP_ID_LEN])
{
	set_dump_id(dirfd, id);
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
	if (memcmp(h.magic, pages_magic, sizeof(h.magic)) || h.version != IMAGE_FORMAT_VERSION ||
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
	if (check_dump_id(dirfd, name, h.dump_id))
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
