#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#define SET_PREFIX ".stasis-dump-"

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
	int fd = dup(dirfd);
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
	return 0;
}

void image_set_abort(int dirfd, struct image_set *set)
{
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
		if (de->d_type != DT_REG || !image_desc_by_filename(de->d_name))
			continue;
		if (!(more = realloc(names, (n + 2) * sizeof(*names))) || !(more[n] = strdup(de->d_name))) {
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
		if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
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
	for (size_t i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
	image_set_abort(dirfd, set);
	return err;
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
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf);
	memcpy(hdr.magic, image_magic, sizeof(hdr.magic));
	hdr.payload_len = len;
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
	buf = malloc(hdr.payload_len ? hdr.payload_len : 1);
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
	*msg = protobuf_c_message_unpack(d->msg_desc, NULL, hdr.payload_len, buf);
	free(buf);
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
		protobuf_c_message_free_unpacked(msg, NULL);
}

int raw_image_create(int dirfd, enum image_type type, unsigned id)
{
	char name[64];
	int fd;

	image_filename(name, sizeof(name), type, id);
	fd = safe_file_create(dirfd, name, O_RDWR);
	if (fd < 0) {
		pr_err("cannot create image file %s: %s", name, safe_file_strerror(fd));
		return fd;
	}
	if (raw_image_finish(fd, type, id, 0) < 0 || lseek(fd, PAGES_HEADER_SIZE, SEEK_SET) < 0) {
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
