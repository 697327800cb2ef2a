/*
 * A dump's image set: written into a directory of its own in the images directory and moved
 * into place when complete (see struct image_set in image.h); who may have written images.
 */
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

#define SET_PREFIX ".stasis-dump-"

/* Removes directory name of parent and the files in it (an image set's directory is flat). */
static void remove_flat_dir(int parent, const char *name)
{
	DIR *dir = opendir_at(parent, name, O_NOFOLLOW);
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(dir), de->d_name, 0);
	closedir(dir);
	unlinkat(parent, name, AT_REMOVEDIR);
}

/* Set directories whose stasis is gone (killed mid-dump). */
static void remove_stale_sets(int dirfd)
{
	DIR *dir = opendir_at(dirfd, ".", 0);
	struct dirent *de;

	if (!dir)
		return;
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
	char text[DUMP_ID_TEXT_LEN];
	int fd = safe_file_create(set->fd, DUMP_ID_FILE, O_WRONLY), err = 0;
	if (getrandom(id, sizeof(id), 0) != sizeof(id) || fd < 0 || write_all(fd, id, sizeof(id))) {
		err = fd < 0 ? fd : -EIO;
		pr_err("images directory %s: cannot make the dump id in %s", dir_name, set->name);
		image_set_abort(dirfd, set);
	} else {
		pr_info("dump id %s", dump_id_text(id, text));
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

/* An entry of an image set: an image file, or a chain's link to its parent. */
static bool set_entry(const struct dirent *de)
{
	if (de->d_type == DT_LNK)
		return !strcmp(de->d_name, "parent");
	return de->d_type == DT_REG && image_desc_by_filename(de->d_name);
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the set's files, malloc'd, NULL-terminated and sorted, *count of them; NULL if
 * it cannot be read. */
static char **set_files(const struct image_set *set, size_t *count)
{
	DIR *dir = opendir_at(set->fd, ".", 0);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;

	if (!dir)
		return NULL;
	while ((de = readdir(dir))) {
		char **more;
		if (!set_entry(de))
			continue;
		if ((more = xreallocarray(names, n + 2, sizeof(*names))))
			names = more;
		if (!more || !(names[n] = xstrdup(de->d_name))) {
			if (more)
				names[n] = NULL;
			free_names(names);
			names = NULL;
			break;
		}
		names[++n] = NULL;
	}
	closedir(dir);
	if (names)
		qsort(names, n, sizeof(*names), compare_names);
	*count = n;
	return names;
}

/*
 * The entries of the set these names replaced that the new one has none of (a process gone
 * since, a parent link no more), removed: left, they would pass for the new set's (a dump
 * reads its parent's pagemap by pid) and only be refused there, as of another dump.
 */
static void remove_leftovers(int dirfd, char **names, size_t n)
{
	DIR *dir = opendir_at(dirfd, ".", 0);
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		const char *name = de->d_name;
		if (set_entry(de) && !bsearch(&name, names, n, sizeof(*names), compare_names)) {
			pr_info("image %s: left by the set this one replaced, removed", name);
			unlinkat(dirfd, name, 0);
		}
	}
	closedir(dir);
}

int image_set_commit(int dirfd, struct image_set *set)
{
	size_t n = 0;
	char **names = set_files(set, &n);
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
	if (!err)
		remove_leftovers(dirfd, names, n);
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

	if (fstat(dirfd, &st) == 0)
		why = untrusted(&st, buf, sizeof(buf));
	if (!why)
		dir = opendir_at(dirfd, ".", 0);
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
