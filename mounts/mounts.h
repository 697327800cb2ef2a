/*
 * The tree's mount namespace (mounts/): what its files share. mount-ns.c is the tree-wide
 * kind (tree_mount_ns) and drives; mount-table.c reads and classifies a mount table with
 * libmount; mount-make.c makes mounts on restore; tmpfs.c saves and refills tmpfs contents.
 */
#ifndef STASIS_MOUNTS_H
#define STASIS_MOUNTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "image.h"
#include "run.h"

/* One line of a mountinfo, as libmount reads it. */
struct mount_info {
	uint32_t id, parent_id;
	dev_t dev;
	char *mountpoint; /* as the reading process sees it */
	char *root;       /* inside the filesystem */
	char *fstype, *source;
	char *fs_options; /* the superblock's options, minus those that are flags */
	uint64_t flags;   /* per-mount MS_* */
	bool sb_readonly; /* the superblock is read-only (its options say "ro") */
	uint32_t shared, master;
	bool unbindable;
	bool idmapped;    /* mount_setattr(MOUNT_ATTR_IDMAP): its owners seen through a user ns */
	/* a cgroup filesystem showing the root of the tree's own cgroup namespace: made anew
	 * inside the restored one (mount_table_cgroup_ns_roots) */
	bool cgroup_ns_root;
};

struct mount_table {
	struct mount_info *m;
	size_t n;
};

/* mount-table.c: /proc/PID/mountinfo (PROC_SELF: stasis's) into t. Says what failed. */
int mount_table_read(pid_t pid, struct mount_table *t);
/* Whether mount mnt_id is in pid's mount table (its mount namespace); true if the table
 * cannot be read (not known). */
bool mount_table_has(pid_t pid, uint64_t mnt_id);
void mount_table_free(struct mount_table *t);
/*
 * t being pid's table read from stasis's cgroup namespace, where pid has a cgroup namespace of
 * its own: the roots of t's cgroup filesystems as pid's namespace shows them (a cgroup
 * filesystem mounted inside that namespace shows "/", made anew on restore inside the
 * restored one; stasis sees its root as the namespace's cgroup). Says what failed.
 */
int mount_table_cgroup_ns_roots(pid_t pid, struct mount_table *t);
/*
 * The tree's mounts as images keep them: each classified as its root, made anew, a bind of
 * another of the tree's mounts, or a bind from outside (named by ctx's --external /
 * --ext-mount-map, or found on the host with --ext-mount-map auto). host is stasis's own
 * table (what is outside). Fails naming a mount that cannot be restored.
 */
int mount_table_classify(const struct run_ctx *ctx, pid_t root_pid, const struct mount_table *tree,
			 const struct mount_table *host, MountNs *out);
/* Entry e as mount m of pid's table shows it (is_root: the table's first), how left to classify. */
int mount_entry_fill(pid_t pid, const struct mount_info *m, bool is_root, MountEntry *e);
/*
 * Where pid sees the file dev:ino that absolute path names for stasis: path itself if pid's
 * root leads there too, else through a mount of pid's showing the same part of the filesystem
 * (a host directory bound elsewhere into a container). NULL if nowhere (errno ENOENT) or out of
 * memory (ENOMEM).
 */
char *mount_path_seen_by(pid_t pid, const char *path, dev_t dev, ino_t ino);
/* Does pid's root + path (absolute) lead to the file dev:ino? */
bool mount_path_leads_to(pid_t pid, const char *path, dev_t dev, ino_t ino);
/*
 * Does path, a file of pid as /proc/PID/fd/N or /proc/PID/cwd names it to stasis (from its
 * mount namespace's root, pid's root maybe below), still lead to that file st inside pid's
 * root (a last symlink not followed if st is one)? 1 yes, 0 no (a mount over it or above it, a
 * detached mount: its path reopens another file or none), -1 not known (outside pid's root).
 * root: pid's root as /proc/PID/root names it (TaskCore.root).
 */
int mount_task_path_holds(pid_t pid, const char *root, const char *path, const struct stat *st);
/*
 * Dump: 0, or -ENOTSUP, said, when mount_task_path_holds says path no longer leads to st: the
 * file (what names it after "dump pid PID": " fd 3:", ": mapped file") cannot be opened again
 * by its path.
 */
int mount_refuse_hidden(pid_t pid, const char *root, const char *path, const struct stat *st,
			const char *what);
/*
 * Dump: a file of process pid that stasis makes or opens again by its path before the tree
 * runs, in the tree's own mount namespace (a named pipe, a unix socket's name): does path lead
 * there (from the root of tree_root, the tree's first process) to that file st too? False only
 * when pid is in a mount namespace of its own whose mounts (one there alone, or over the file
 * there) make them differ: not there yet then.
 */
bool mount_tree_root_reaches(pid_t pid, pid_t tree_root, const char *path, const struct stat *st);
/*
 * e made a bind of mount of_id's rest (m's root below of_id's), as pid sees m: a removed
 * directory (mountinfo's "//deleted") marked to be made again empty, with its mode and owner.
 * Fails naming a bind of a removed file (its content is not saved).
 */
int mount_bind_fill(pid_t pid, const struct mount_info *m, uint32_t of_id, const char *rest,
		    MountEntry *e);
#define MOUNT_REMOVED_FILE_MAX (1 << 20)
/* A bind (mount m of pid's) of a regular file removed since, as MOUNT_REMOVED_FILE with its
 * data: 1; 0 if m is not one; -errno (said) if it cannot be kept (larger than the maximum). */
int mount_removed_file_fill(pid_t pid, const struct mount_info *m, MountEntry *e);
/*
 * Dump: m, a namespace's file bound (`ip netns add`), into e as MOUNT_NSFS: a network
 * namespace's, the tree's own (root_pid's) or another that netns/net-nested.c saves; stasis's
 * own namespace and other kinds' files are refused, said naming the mount. 0 or <0.
 */
int mount_nsfs_fill(pid_t root_pid, const struct mount_info *m, MountEntry *e);
/*
 * Dump: is mount i of t a namespace's file bound where no path reaches it, below another mount of
 * its parent (a copy that propagation made under a shared mount: `ip netns add` binds /run/netns
 * on itself, shared, and each namespace's file mounted there is copied onto the /run below)?
 * Such a copy is not saved: propagation is not made again, and no path could name it.
 */
bool mount_nsfs_hidden(const struct mount_table *t, size_t i);
/* Restore: a MOUNT_NSFS entry as mount_nsfs_fill makes them. */
bool mount_nsfs_valid(const MountEntry *e);
/*
 * The MOUNT_NSFS mounts among n (of the tree's mount namespace, mnt_maker 0, or of the nested
 * one that pid mnt_maker made; not those it inherited) that bind another network namespace than
 * the tree's own, noted for netns/net-nested.c (net_nested_note_mount). -ENOMEM.
 */
int mounts_note_nsfs(const struct run_ctx *ctx, MountEntry *const *mounts, size_t n, uint32_t mnt_maker);
/* mountpoint and rest joined ("/" and "a" give "/a"; "/m" and "" give "/m"); NULL: no memory. */
char *mount_path_join(const char *mountpoint, const char *rest);
/* Is root a path at or below inside (both absolute, as mountinfo shows them)? Gives the rest. */
bool mount_path_below(const char *inside, const char *root, const char **rest);
/* Filesystems made anew on restore (their content is theirs: proc, sysfs, ...). */
bool mount_fstype_fresh(const char *fstype);
/* Those that must be mounted from inside the tree's new namespaces (by its root). */
bool mount_fstype_in_ns(const char *fstype);

/* tmpfs.c: every file of the tmpfs open (detached, whole) at mnt_fd into tmpfs-ID.img. */
int tmpfs_dump(int mnt_fd, int dirfd, uint32_t id, const char *mountpoint);
/*
 * Every mount of ns with contents (a tmpfs) into its images, each read through a detached copy
 * (open_tree OPEN_TREE_CLONE) that a helper makes inside the mount namespace of pid and hands
 * over: nothing mounted over it hides anything.
 */
int tmpfs_dump_mounts(struct run_ctx *ctx, pid_t pid, const MountNs *ns);
/*
 * A tmpfs mount's saved contents: tmpfs-ID.img read and checked, its data image open. Opened
 * by stasis when it checks the images: the tree's processes, which make some of the mounts,
 * may not reach the images directory (Podman's is mode 0600, searchable by host root only).
 */
struct tmpfs_image {
	TmpfsTree *tree;
	int data_fd; /* -1: not open */
};
int tmpfs_image_open(int dirfd, uint32_t id, struct tmpfs_image *img);
void tmpfs_image_close(struct tmpfs_image *img);
/*
 * fn(arg), in a child, as the root of the tree's user namespace: a filesystem a process of that
 * namespace mounted (a tmpfs) belongs to it, and a file made there needs an owner it maps,
 * which the process's host root is not (EOVERFLOW); it must stay host root to read the images.
 * what: for messages. 0 or -errno (fn's).
 */
int mount_as_ns_root(int (*fn)(void *), void *arg, const char *what);
/* img into the empty tmpfs at dir_fd. in_userns: made from inside the tree's user namespace,
 * its owners given in that one's view (NULL: as saved, stasis's). */
int tmpfs_restore(int dir_fd, struct tmpfs_image *img, const char *mountpoint,
		  const struct run_ctx *in_userns);

/* mount-ns.c: an absolute path of an image without "." or ".." parts (shorter than 4096). */
bool mount_path_ok(const char *p);
/* May filesystem fstype of an image be made anew (known, or allowed with --enable-fs)? */
bool mount_fs_allowed(const struct run_ctx *ctx, const char *fstype);

/* path (absolute, from an image) inside root_fd; flags for openat2. -errno if it is not there. */
int mount_open_in_root(int root_fd, const char *path, int flags);
/* mount-make.c, on restore: entry e of ns made under root_fd (the tree's root). */
/* ext_copy: a copy (open_tree) of its source made before: an external mount's outside the
 * namespace, a MOUNT_OUTER's, a bind's whose path a mount covers (-1: none, found by path); contents: a
 * tmpfs's (NULL without); in_userns: made from inside the tree's user namespace (ids in options
 * in its view). */
int mount_make(const MountNs *ns, size_t i, int root_fd, const struct run_ctx *ctx, int ext_copy,
	       struct tmpfs_image *contents, bool in_userns);
/* The first of mounts[0..n) in peer group g (its leader), NULL if none (or g is 0). */
const MountEntry *mount_group_leader(MountEntry *const *mounts, size_t n, uint32_t g);
/* Every mount's propagation (shared, slave, private, unbindable) set as saved. */
int mount_set_propagation(const MountNs *ns, int root_fd);
/* The host path an external mount is bound from on restore; NULL (said) if not given. */
const char *mount_external_source(const struct run_ctx *ctx, const MountEntry *e);

#endif
