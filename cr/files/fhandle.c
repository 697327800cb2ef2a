/*
 * File handles (name_to_handle_at / open_by_handle_at): a way back to an inode without a
 * path, through any mount of its filesystem. Used for inotify watches and fanotify marks, and
 * for files deleted under the name a process used but still linked under another.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "util.h"

#define FHANDLE_MAX_BYTES 128 /* MAX_HANDLE_SZ */

/* A mount point of the filesystem with device numbers maj:min, opened as a directory. */
static int mount_fd_of(unsigned maj, unsigned min)
{
	auto_free char *mi = read_file_at(AT_FDCWD, "/proc/self/mountinfo", NULL);

	if (!mi && errno == ENOMEM)
		return -ENOMEM;
	for (char *l = mi; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		unsigned a, b;
		char mnt[4096];
		if (sscanf(l, "%*d %*d %u:%u %*s %4095s", &a, &b, mnt) == 3 && a == maj && b == min)
			return open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	return -ENOENT;
}

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

int fhandle_open(dev_t dev, const void *handle, size_t len, int type, int flags)
{
	auto_close int mfd = mount_fd_of(major(dev), minor(dev));

	if (mfd == -ENOMEM)
		return -ENOMEM;
	return mfd < 0 ? -ENOENT : fhandle_open_at(mfd, handle, len, type, flags);
}

int fhandle_path(unsigned long sdev, unsigned bytes, int type, const char *hex, char *path, size_t len)
{
	int fd = fhandle_path_fd(sdev, bytes, type, hex, path, len);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int fhandle_path_fd(unsigned long sdev, unsigned bytes, int type, const char *hex, char *path, size_t len)
{
	unsigned char raw[FHANDLE_MAX_BYTES];
	char proc[64];

	if (bytes > sizeof(raw))
		return -EINVAL;
	for (unsigned i = 0; i < bytes; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &raw[i]) != 1)
			return -EINVAL;
	int fd = fhandle_open(makedev(sdev >> 20, sdev & 0xfffff), raw, bytes, type, O_PATH);
	if (fd < 0)
		return fd;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(proc, path, len - 1);
	if (n <= 0) {
		close(fd);
		return -ENOENT;
	}
	path[n] = 0;
	return fd;
}
