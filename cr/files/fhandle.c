/*
 * File handles (name_to_handle_at / open_by_handle_at): a way back to an inode without a
 * path, through any mount of its filesystem. Used for inotify watches and fanotify marks, and
 * for files deleted under the name a process used but still linked under another. A filesystem
 * that can give handles but not open them (overlayfs without nfs_export: every container's root
 * under Docker, Podman and containerd) is searched instead for the inode's number, as criu's
 * irmap does.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "mounts.h"
#include "util.h"

#define FHANDLE_MAX_BYTES 128 /* MAX_HANDLE_SZ */

int fhandle_of_fd(int fd, ProtobufCBinaryData *handle, int32_t *type)
{
	struct file_handle *fh = xzalloc(sizeof(*fh) + FHANDLE_MAX_BYTES);
	int mnt_id;

	if (!fh)
		return -ENOMEM;
	fh->handle_bytes = FHANDLE_MAX_BYTES;
	if (name_to_handle_at(fd, "", fh, &mnt_id, AT_EMPTY_PATH)) {
		int err = -errno;
		free(fh);
		return err;
	}
	if (!(handle->data = xzalloc(fh->handle_bytes))) {
		free(fh);
		return -ENOMEM;
	}
	*type = fh->handle_type;
	handle->len = fh->handle_bytes;
	memcpy(handle->data, fh->f_handle, fh->handle_bytes);
	free(fh);
	return 0;
}

int fhandle_open_at(int mount_fd, const void *handle, size_t len, int type, int flags)
{
	if (len > FHANDLE_MAX_BYTES)
		return -EINVAL;
	struct file_handle *fh = xzalloc(sizeof(*fh) + len);
	int fd;

	if (!fh)
		return -ENOMEM;
	fh->handle_bytes = len;
	fh->handle_type = type;
	memcpy(fh->f_handle, handle, len);
	if ((fd = open_by_handle_at(mount_fd, fh, flags | O_CLOEXEC)) < 0)
		fd = -errno;
	free(fh);
	return fd;
}

/*
 * The inode of a handle through a mount of its filesystem (device dev) in the mount table of
 * pid (PROC_SELF: stasis's): a mount of the whole filesystem (its root "/"), or one whose path
 * as that process sees it (read through its root) leads to the same inode (a bind mount of a
 * directory the inode is not under gives a path that does not). A removed file has no name
 * to check: only a mount of the whole filesystem names it. Its fd, its path in path; -ENOENT
 * if no mount does.
 */
static int open_through_mounts(pid_t pid, dev_t dev, const void *handle, size_t len, int type,
			       char *path, size_t path_len)
{
	struct mount_table tb;
	char root[32] = "", at[4200], proc[64];
	int found = -ENOENT;

	if (pid != PROC_SELF)
		snprintf(root, sizeof(root), "/proc/%d/root", pid);
	if (mount_table_read(pid, &tb))
		return -ENOENT;
	for (size_t k = 0; k < 2 * tb.n && found == -ENOENT; k++) {
		size_t i = k % tb.n;
		bool whole = !strcmp(tb.m[i].root, "/");
		struct stat got, named;
		if (tb.m[i].dev != dev || whole != (k < tb.n))
			continue;
		snprintf(at, sizeof(at), "%s%s", root, tb.m[i].mountpoint);
		auto_close int mfd = open(at, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int fd = mfd < 0 ? -ENOENT : fhandle_open_at(mfd, handle, len, type, O_PATH);
		if (fd < 0) {
			found = fd == -ENOMEM ? fd : -ENOENT;
			continue;
		}
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(proc, path, path_len - 1);
		if (n > 0)
			path[n] = 0;
		snprintf(at, sizeof(at), "%s%s", root, n > 0 ? path : "");
		if (n > 0 && !fstat(fd, &got) &&
		    ((whole && !got.st_nlink) ||
		     (!fstatat(AT_FDCWD, at, &named, AT_SYMLINK_NOFOLLOW) && got.st_dev == named.st_dev &&
		      got.st_ino == named.st_ino)))
			found = fd;
		else
			close(fd);
	}
	mount_table_free(&tb);
	return found;
}

#define SCAN_MAX_NAMES 1000000 /* names looked at in all: a bound on a search that fails */

/* Whether fd is the inode of handle: its number, and its handle where the filesystem gives one
 * (handle NULL: its number only). */
static bool is_inode(int fd, unsigned long ino, const void *handle, size_t len, int type)
{
	unsigned char buf[sizeof(struct file_handle) + FHANDLE_MAX_BYTES];
	struct file_handle *fh = (struct file_handle *)buf;
	struct stat st;
	int mnt_id;

	if (fstat(fd, &st) || st.st_ino != ino)
		return false;
	if (!handle)
		return true;
	fh->handle_bytes = FHANDLE_MAX_BYTES;
	if (name_to_handle_at(fd, "", fh, &mnt_id, AT_EMPTY_PATH))
		return true; /* (no handle to compare: the number says it) */
	return fh->handle_type == type && fh->handle_bytes == len && !memcmp(fh->f_handle, handle, len);
}

/*
 * Breadth first through the directories under the mount at `at` (not into the mounts on them,
 * which have another device): the inode, its fd (O_PATH) and its path below `at` in rel; -ENOENT.
 * *names counts the names looked at, for every mount searched.
 */
static int scan_mount(const char *at, unsigned long ino, const void *handle, size_t len, int type, char *rel,
		      size_t rel_len, size_t *names)
{
	auto_close int top = open(at, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct stat root;
	char **queue = NULL;
	size_t head = 0, tail = 0, cap = 0;
	int found = -ENOENT;

	if (top < 0 || fstat(top, &root))
		return -ENOENT;
	if (is_inode(top, ino, handle, len, type)) {
		int fd = fcntl(top, F_DUPFD_CLOEXEC, 0);
		rel[0] = 0;
		return fd < 0 ? -errno : fd;
	}
	if (!(queue = xzalloc(sizeof(*queue))) || !(queue[tail++] = xstrdup(".")))
		found = -ENOMEM;
	cap = 1;
	while (found == -ENOENT && head < tail && *names < SCAN_MAX_NAMES) {
		auto_free char *dir = queue[head++];
		/* (a directory replaced by a symlink meanwhile leads nowhere else) */
		struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
					.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
		int dfd = syscall(SYS_openat2, top, dir, &how, sizeof(how));
		struct stat ds;
		DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
		if (!d) {
			if (dfd >= 0)
				close(dfd);
			continue;
		}
		if (fstat(dfd, &ds) || ds.st_dev != root.st_dev) { /* another mount on it */
			closedir(d);
			continue;
		}
		for (struct dirent *de; found == -ENOENT && (de = readdir(d)) && ++*names < SCAN_MAX_NAMES;) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (de->d_ino == ino) {
				int fd = openat(dfd, de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
				if (fd >= 0 && is_inode(fd, ino, handle, len, type)) {
					snprintf(rel, rel_len, "%s/%s", dir + 1, de->d_name);
					found = fd;
					break;
				}
				if (fd >= 0)
					close(fd);
			}
			if (de->d_type != DT_DIR)
				continue;
			char **more = tail < cap ? queue : xreallocarray(queue, cap * 2, sizeof(*queue));
			if (!more) {
				found = -ENOMEM;
				break;
			}
			queue = more;
			cap = tail < cap ? cap : cap * 2;
			if (!(queue[tail] = xzalloc(strlen(dir) + strlen(de->d_name) + 2))) {
				found = -ENOMEM;
				break;
			}
			sprintf(queue[tail++], "%s/%s", dir, de->d_name);
		}
		closedir(d);
	}
	while (head < tail)
		free(queue[head++]);
	free(queue);
	return found;
}

/* Every mount of dev in pid's table searched by scan_mount: its fd, its path as pid sees it.
 * Only overlayfs is searched: a network or FUSE filesystem could take long to walk, and their
 * handles are not the ones that fail here. */
static int scan_mounts(pid_t pid, dev_t dev, unsigned long ino, const void *handle, size_t len, int type,
		       char *path, size_t path_len)
{
	struct mount_table tb;
	char root[32] = "", at[4200], rel[4096];
	size_t names = 0;
	int found = -ENOENT;

	if (pid != PROC_SELF)
		snprintf(root, sizeof(root), "/proc/%d/root", pid);
	if (mount_table_read(pid, &tb))
		return -ENOENT;
	for (size_t i = 0; i < tb.n && found == -ENOENT; i++) {
		if (tb.m[i].dev != dev)
			continue;
		struct statfs sfs;
		snprintf(at, sizeof(at), "%s%s", root, tb.m[i].mountpoint);
		if (statfs(at, &sfs) || sfs.f_type != OVERLAYFS_SUPER_MAGIC)
			continue;
		if ((found = scan_mount(at, ino, handle, len, type, rel, sizeof(rel), &names)) >= 0)
			snprintf(path, path_len, "%s%s", strcmp(tb.m[i].mountpoint, "/") ? tb.m[i].mountpoint : "",
				 rel[0] ? rel : (strcmp(tb.m[i].mountpoint, "/") ? "" : "/"));
	}
	mount_table_free(&tb);
	if (names >= SCAN_MAX_NAMES)
		pr_warn("searching device %u:%u for inode %lu: stopped after %d names", major(dev), minor(dev), ino,
			SCAN_MAX_NAMES);
	return found;
}

int fhandle_search_inode(pid_t pid, dev_t dev, unsigned long ino, char *path, size_t len)
{
	return scan_mounts(pid, dev, ino, NULL, 0, 0, path, len);
}

int fhandle_path_in(pid_t pid, int fd, const struct stat *st, char *path, size_t len)
{
	ProtobufCBinaryData handle = { 0 };
	int32_t type = 0;
	int err = fhandle_of_fd(fd, &handle, &type), found = -ENOENT;

	if (err == -ENOMEM)
		return err;
	if (!err)
		found = open_through_mounts(pid, st->st_dev, handle.data, handle.len, type, path, len);
	if (found == -ENOENT) /* (no handle, or none it opens: overlayfs) */
		found = scan_mounts(pid, st->st_dev, st->st_ino, err ? NULL : handle.data, handle.len, type, path, len);
	free(handle.data);
	return found;
}

int fhandle_path_fd(pid_t pid, unsigned long sdev, unsigned long ino, unsigned bytes, int type,
		    const char *hex, char *path, size_t len)
{
	unsigned char raw[FHANDLE_MAX_BYTES];
	dev_t dev = makedev(sdev >> 20, sdev & 0xfffff);

	if (bytes > sizeof(raw))
		return -EINVAL;
	for (unsigned i = 0; i < bytes; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &raw[i]) != 1)
			return -EINVAL;
	int fd = open_through_mounts(pid, dev, raw, bytes, type, path, len);
	if (fd == -ENOENT)
		fd = open_through_mounts(PROC_SELF, dev, raw, bytes, type, path, len);
	return fd == -ENOENT ? scan_mounts(pid, dev, ino, raw, bytes, type, path, len) : fd;
}
