/*
 * Cgroups, shared by the files that handle them: cr/cgroups.c (which cgroups the tree's
 * processes are in, dump and restore), cr/cgroup-place.c (where a restored tree goes),
 * cr/cgroup-props.c (the control files of the tree's own cgroups) and cr/cgroup-fs.c
 * (hierarchies, paths and directories).
 *
 * A hierarchy is named as /proc/PID/cgroup names it: its v1 controllers ("cpu,cpuacct"),
 * "name=systemd" for a named one, "" for the v2 hierarchy. A cgroup is an absolute path in
 * its hierarchy ("/lxc/ct1"), as stasis sees it.
 */
#ifndef STASIS_CGROUPS_H
#define STASIS_CGROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "image.h"
#include "options.h"

/* ---- cr/cgroup-fs.c ---- */

/* One line of /proc/PID/cgroup: a hierarchy and the cgroup in it. */
struct cg_member {
	char *controllers, *path;
};
struct cg_members {
	struct cg_member *v;
	size_t n;
};

/* /proc/<who>/cgroup ("self", "1234", "1234/task/1235"); says what failed. */
int cg_members_read(const char *who, struct cg_members *out);
/* The same from its text (changed in place), read from what. */
int cg_members_parse(char *text, const char *what, struct cg_members *out);
void cg_members_free(struct cg_members *m);
/* The cgroup in hierarchy controllers, NULL if the hierarchy is not there. */
const char *cg_members_path(const struct cg_members *m, const char *controllers);

/* For messages: "memory", "name=systemd", "unified" (v2). */
const char *cg_hierarchy_name(const char *controllers);
/*
 * Does key (of --cgroup-root or --cgroup-dump-controller) name this hierarchy: one of its
 * controllers, its whole list, "name=X"; "unified", "cgroup2" or "" the v2 one.
 */
bool cg_hierarchy_named(const char *controllers, const char *key);
/* Is controller one of a v1 hierarchy's ("memory" in "memory", "cpu" in "cpu,cpuacct")? */
bool cg_has_controller(const char *controllers, const char *controller);

/*
 * The root directory of hierarchy controllers, a directory fd: DIR/<name> of --cgroup-yard
 * ("cpu,cpuacct", "systemd" for name=systemd, "unified" for v2), else a mount of it made for
 * stasis alone (fsmount, attached nowhere). Says what failed.
 */
int cg_hierarchy_open(const struct stasis_opts *o, const char *controllers);

/* A clean absolute path: "/" or "/a/b", no "." or ".." parts, no "//", no trailing "/". */
bool cg_path_ok(const char *path);
/* Is path dir itself or below it? */
bool cg_path_within(const char *path, const char *dir);
/* path relative to its hierarchy's root directory, for *at() calls ("." for "/"). */
const char *cg_rel(const char *path);
/* path with the prefix from replaced by to (path is within from); malloc'd, NULL: out of memory. */
char *cg_path_moved(const char *path, const char *from, const char *to);

/* Directories a restore made, to remove again if it fails. */
struct cg_made {
	struct {
		int hfd;
		char *path;
	} *v;
	size_t n;
};
/*
 * mkdir -p of path in the hierarchy at hfd; each directory made is added to made. A new v1
 * cpuset cgroup gets its parent's cpus and mems (it has none: no process could join it).
 */
int cg_make_dir(int hfd, const char *controllers, const char *path, struct cg_made *made);
/* Removes them, deepest first (waiting a little for killed processes to leave). */
void cg_remove_made(struct cg_made *made);

/* Calls fn for path and every cgroup below it, parents first; stops at fn's error. */
int cg_walk(int hfd, const char *path, int (*fn)(const char *path, void *arg), void *arg);

/* ---- cr/cgroup-place.c ---- */

/* A cgroup.procs stasis opened: a process writes "0" to it to move in; or, for threads, the
 * cgroup's tasks (v1) or cgroup.threads (v2), where a thread writes "0". */
struct cg_procs {
	size_t hier;
	char *path;
	bool threads;
	int fd;
};

/* Restore: where the tree's processes go, and the cgroups made for them. */
struct cg_place {
	const Cgroups *img;
	const struct stasis_opts *opts;
	enum cgroup_mode mode;
	const char **new_roots; /* per hierarchy: --cgroup-root's, or NULL */
	int *hfds;              /* per hierarchy: its root directory, or -1 */
	struct cg_procs *procs;
	size_t n_procs;
	int *enter_moves;       /* per hierarchy: the root's first cgroup (index of procs, -1: none) */
	int *set_moves;         /* per set and hierarchy: where its processes go (the same) */
	bool *thread_sets;      /* per set: some thread is in it (not its process's); NULL: none */
	int *thread_moves;      /* per set and hierarchy: where its threads go (tasks, cgroup.threads) */
	int *nested_moves;      /* per nested cgroup namespace and hierarchy: its root (or -1) */
	struct cg_made made;
};

/*
 * Makes or finds the images' cgroups as the mode says, with their properties, and opens the
 * cgroup.procs of each cgroup a process moves into. cgroup_ns: the tree has a cgroup namespace
 * of its own; root_set: the root's set of cgroups (0: none). Says what failed.
 */
int cg_place_tree(struct cg_place *p, bool cgroup_ns, uint32_t root_set);
/* In a new process: into the cgroup of procs[i]. */
int cg_place_move(const struct cg_place *p, int i, pid_t pid);
/* Where the threads of set ts go in hierarchy h when their process is in set ps (numbers of
 * the images' sets): an index of procs, or -1 (where the process is). */
int cg_place_thread_move(const struct cg_place *p, uint32_t ts, uint32_t ps, size_t h);
/* In the maker (pid) of the images' nested cgroup namespace i, before it forks: into the
 * namespace's root cgroups, then a new cgroup namespace. Says what failed. */
int cg_place_enter_nested(const struct cg_place *p, size_t i, pid_t pid);
/* Closes the cgroup.procs files (once the tree holds copies). */
void cg_place_close(struct cg_place *p);
/* The restore is over: if it failed, the cgroups made go. */
void cg_place_undo(struct cg_place *p, bool restored);
void cg_place_free(struct cg_place *p);

/* ---- cr/cgroup-props.c ---- */

/* The directory's mode and owners, delegated files and the properties stasis restores. */
int cg_dir_dump(int hfd, const char *controllers, CgroupDir *d);
/* Image check of one saved cgroup: only properties stasis restores, sane values. */
int cg_dir_check(const char *controllers, const CgroupDir *d);
/*
 * Gives the cgroup at path (d->path, or where --cgroup-root put it) d's properties and owners.
 * A value the host refuses is a warning, an error (naming it) when strict.
 */
int cg_dir_restore(int hfd, const char *controllers, const char *path, const CgroupDir *d,
		   bool strict);

#endif
