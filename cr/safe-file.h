/*
 * Files stasis makes for itself (image files, the log, the pidfile) in directories that may
 * not be its own: made anew (O_CREAT | O_EXCL | O_NOFOLLOW), mode 0600, never written through
 * a symbolic link or into a file someone else left there. Below the log: says nothing, the
 * caller names the file.
 */
#ifndef STASIS_SAFE_FILE_H
#define STASIS_SAFE_FILE_H

/*
 * Creates name in dirfd with open flags (O_WRONLY, O_RDWR, O_APPEND...), mode 0600. A regular
 * file of that name (an earlier run's) is replaced by a new one; returns the fd, or -ELOOP if
 * a symbolic link is there, -EEXIST if something else is (a directory, a device) or something
 * appeared there meanwhile, or another -errno.
 */
int safe_file_create(int dirfd, const char *name, int flags);
/* -ELOOP if name in dirfd is a symbolic link; 0 if it is anything else or nothing. */
int safe_file_not_link(int dirfd, const char *name);
/* What a -errno of safe_file_create() means for a message. */
const char *safe_file_strerror(int err);

#endif
