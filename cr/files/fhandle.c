/*
 * File handles (name_to_handle_at / open_by_handle_at): a way back to an inode without a
 * path, through any mount of its filesystem. Used for inotify watches and fanotify marks, and
 * for files deleted under the name a process used but still linked under another.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int fhandle_path_fd(pid_t pid, unsigned long sdev, unsigned bytes, int type, const char *hex, char *path,
		    size_t len)
{
	unsigned char raw[FHANDLE_MAX_BYTES];
	dev_t dev = makedev(sdev >> 20, sdev & 0xfffff);

	if (bytes > sizeof(raw))
		return -EINVAL;
	for (unsigned i = 0; i < bytes; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &raw[i]) != 1)
			return -EINVAL;
	int fd = open_through_mounts(pid, dev, raw, bytes, type, path, len);
	return fd == -ENOENT ? open_through_mounts(PROC_SELF, dev, raw, bytes, type, path, len) : fd;
}
