/*
 * Registered files of an io_uring instance (IORING_REGISTER_FILES, liburing's
 * io_uring_register_files, fio's registerfiles): a table of the instance's whose files requests
 * name by index (IOSQE_FIXED_FILE).
 *
 * fdinfo gives the table's size and, by index, the path of each file in it ("socket:[ino]" and
 * "pipe:[ino]" for those; empty slots are not listed). It lists them when the kernel takes the
 * instance's lock at once, which nothing holds while the process is frozen. Nothing tells which
 * open file a slot holds: it is saved as the process's fd whose file has that path, when the
 * process holds exactly one open file of it (its dups are the same one: kcmp). A socket has one
 * open file, so there the match is exact; for a regular file or an end of a pipe the slot is
 * taken to hold the open file the process holds (its flags and offset are that one's).
 * Refused by name: a slot whose file no fd of the process holds (a direct descriptor, opened
 * into the table: IORING_FILE_INDEX_ALLOC; or its fd closed since), one whose path several
 * open files of the process have (both ends of a pipe, a file opened twice).
 * Restore: the table is registered again, its size and its files at their slots (-1: empty), in
 * the new process once all its fds are in place. Not seen, so not kept: the range of slots the
 * kernel allocates from (IORING_REGISTER_FILE_ALLOC_RANGE; the whole table again).
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/io_uring.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "io-uring-files.h"
#include "log.h"
#include "proc.h"
#include "util.h"

#define MAX_FILES (1u << 20) /* IORING_MAX_FIXED_FILES */

/* A path as fdinfo shows it: ' ', '\t', '\n' and '\\' as \ooo (seq_file_path). */
static void escape(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in && o + 5 < len; in++)
		if (strchr(" \t\n\\", *in))
			o += snprintf(out + o, len - o, "\\%03o", (unsigned char)*in);
		else
			out[o++] = *in;
	out[o] = 0;
}

/* The fd of t whose file shows as path, when t holds one open file of it: >= 0, -ENOENT: none,
 * -ENOTUNIQ: several. */
static int fd_of_path(const struct dump_task *t, const int *fds, size_t n, const char *path)
{
	char link_path[64], link[PATH_MAX], shown[4 * PATH_MAX];
	int found = -ENOENT;

	for (size_t i = 0; i < n; i++) {
		snprintf(link_path, sizeof(link_path), "/proc/%d/fd/%d", t->pid, fds[i]);
		ssize_t len = readlink(link_path, link, sizeof(link) - 1);
		if (len < 0)
			continue;
		link[len] = 0;
		escape(link, shown, sizeof(shown));
		if (strcmp(shown, path))
			continue;
		if (found < 0)
			found = fds[i];
		else if (syscall(SYS_kcmp, t->pid, t->pid, KCMP_FILE, found, fds[i]))
			return -ENOTUNIQ; /* another open file of that path */
	}
	return found;
}

static int add_file(IoUringRing *r, uint32_t index, uint32_t fd)
{
	IoUringFile *f = xzalloc(sizeof(*f));
	IoUringFile **grown = xreallocarray(r->files, r->n_files + 1, sizeof(*grown));

	if (!f || !grown) {
		free(f);
		return -ENOMEM;
	}
	io_uring_file__init(f);
	f->index = index;
	f->fd = fd;
	r->files = grown;
	r->files[r->n_files++] = f;
	return 0;
}

int io_uring_files_dump(const struct dump_task *t, const char *info, uint64_t count, IoUringRing *r,
			const char *what)
{
	const char *l = fdinfo_key(info, "UserFiles:");
	auto_free int *fds = NULL;
	size_t n = 0;
	int err;

	if (!count)
		return 0;
	if (count > MAX_FILES) {
		pr_err("%s with a table of %" PRIu64 " registered files, more than the kernel allows", what, count);
		return -EINVAL;
	}
	if ((err = proc_list_numbers(t->pid, "fd", &fds, &n)))
		return err;
	r->has_files_table = true;
	r->files_table = count;
	/* its lines: "%5u: PATH", until the next heading */
	while (l && (l = strchr(l, '\n')) && (l[1] == ' ' || (l[1] >= '0' && l[1] <= '9'))) {
		char *end, line[4 * PATH_MAX];
		uint64_t index = strtoull(l + 1, &end, 10);
		if (*end != ':' || index >= count || (r->n_files && index <= r->files[r->n_files - 1]->index)) {
			pr_err("%s: its fdinfo's list of registered files is not one stasis reads", what);
			return -EINVAL;
		}
		fdinfo_line(end + 2, line, sizeof(line));
		int fd = fd_of_path(t, fds, n, line);
		if (fd < 0) {
			pr_err("%s: its registered file %" PRIu64 " (%s) is %s: not supported", what, index, line,
			       fd == -ENOTUNIQ
				       ? "one of several open files of the process with that path (both ends of a "
					 "pipe, a file opened twice): which one cannot be told"
				       : "held by no fd of the process (a direct descriptor, or its fd closed since)");
			return -ENOTSUP;
		}
		if ((err = add_file(r, index, fd)))
			return err;
		l = end;
	}
	return 0;
}

/* Whether fd is one of the process's fds (its table's owner's) that the kernel registers: not
 * an io_uring, nor a dup of one. */
static bool registrable(const struct restore_task *t, uint32_t fd)
{
	const FdEntry *e = fd_entry_at(t->fds_owner ? t->fds_owner : t, fd);
	return e && e->kind != FD_KIND__FD_IO_URING;
}

bool io_uring_files_valid(const struct restore_task *t, const IoUringRing *r)
{
	if (r->files_table > MAX_FILES || (r->n_files && !r->has_files_table))
		return false;
	for (size_t i = 0; i < r->n_files; i++)
		if (r->files[i]->index >= r->files_table || (i && r->files[i]->index <= r->files[i - 1]->index) ||
		    !registrable(t, r->files[i]->fd))
			return false;
	return true;
}

/* Once every fd of the process is in place, in the new process: each instance's table. */
static int restore_files(struct restore_task *t)
{
	for (size_t i = 0; i < t->fds->n_fds; i++) {
		const FdEntry *e = t->fds->fds[i];
		const IoUringRing *r = e->io_uring;
		if (e->kind != FD_KIND__FD_IO_URING || !r || !r->files_table)
			continue;
		int *table = xreallocarray(NULL, r->files_table, sizeof(*table));
		if (!table)
			return -ENOMEM;
		for (uint32_t k = 0; k < r->files_table; k++)
			table[k] = -1;
		for (size_t k = 0; k < r->n_files; k++)
			table[r->files[k]->index] = (int)r->files[k]->fd;
		long ret = syscall(SYS_io_uring_register, e->fd, IORING_REGISTER_FILES, table, r->files_table);
		int err = ret ? -errno : 0;
		free(table);
		if (err) {
			pr_err("restore pid %d fd %u: cannot register the %zu files of its io_uring instance again: %s",
			       t->pid, e->fd, r->n_files, strerror(-err));
			return err;
		}
	}
	return 0;
}

const struct state_ops state_io_uring_files = {
	.name = "io_uring registered files",
	.restore = restore_files,
};
