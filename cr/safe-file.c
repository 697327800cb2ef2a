#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safe-file.h"

int safe_file_create(int dirfd, const char *name, int flags)
{
	struct stat st;
	int fd;

	for (int attempt = 0; attempt < 2; attempt++) {
		fd = openat(dirfd, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -errno;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
			continue; /* gone meanwhile: try again */
		if (S_ISLNK(st.st_mode))
			return -ELOOP;
		if (!S_ISREG(st.st_mode) || attempt)
			return -EEXIST;
		/* an earlier run's file: replaced, not written into (it may have other links) */
		if (unlinkat(dirfd, name, 0) && errno != ENOENT)
			return -errno;
	}
	return -EEXIST;
}

int safe_file_not_link(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
		return -ELOOP;
	return 0;
}

const char *safe_file_strerror(int err)
{
	if (err == -ELOOP)
		return "a symbolic link is in its place (refusing to write through it)";
	if (err == -EEXIST)
		return "something other than a regular file is in its place";
	return strerror(-err);
}
