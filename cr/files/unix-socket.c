/*
 * One unix socket, either side: its type and SO_PASSCRED read on a copy of a task's fd, and
 * where its path name's socket file is; made again with the saved type, flags and options,
 * bound to its saved name (listening if it was), connected to a name, or fresh; its shutdown
 * applied; and a duplicate of a socket stasis holds, for a new task.
 *
 * A name is what bind() was given, kept by the socket even when its file is gone. A path name
 * is the tree's: at dump it is looked for in the holder's root (a holder chroot()ed in
 * stasis's mount namespace: in stasis's root, where it bound it before the chroot; a name bound
 * inside the chroot is refused), at restore it is bound (and
 * connected to) by a child process whose root is the tree's (tree_run): bind() names the socket
 * by exactly the path it was given, so the path cannot be rewritten to reach the tree's root
 * from stasis's, and a name near sun_path's length would not fit with a prefix anyway. A
 * relative name is bound again in the directory its file was found in (the holder's working
 * directory); a name whose file was removed since is bound at its path (its directories made
 * again too if they were removed) and what was made removed once restore is done with it
 * (senders and one-way clients address it), or, if another file took its place (a FIFO, a
 * directory, ...: left untouched), another socket of the tree bound the same name first, or
 * the name is relative, bound inside a scratch root of stasis's in a child process (chroot),
 * where restore reaches it by the name (its clients, waiting connections, datagrams sent back
 * to it) until it removes that root: either way the socket has its name and no file is left.
 * An abstract name is bound in stasis itself, in the tree's network namespace where it lives.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "tree-path.h"
#include "unix.h"
#include "util.h"

int sock_options(pid_t pid, int fd, int *type, int *passcred)
{
	auto_close int s = task_fd_copy(pid, fd);
	socklen_t len = sizeof(int);

	if (s < 0)
		return s;
	if (getsockopt(s, SOL_SOCKET, SO_TYPE, type, &len))
		return -errno;
	len = sizeof(int);
	if (getsockopt(s, SOL_SOCKET, SO_PASSCRED, passcred, &len))
		return -errno;
	return 0;
}

int unix_addr(const void *name, size_t len, struct sockaddr_un *sa, socklen_t *salen)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if (len == 0 || len > sizeof(sa->sun_path))
		return -EINVAL;
	memcpy(sa->sun_path, name, len);
	*salen = offsetof(struct sockaddr_un, sun_path) + len;
	return 0;
}

int unix_saved_addr(const FdEntry *e, struct sockaddr_un *sa, socklen_t *len)
{
	return unix_addr(e->sock_name.data, e->sock_name.len, sa, len);
}

/* stat(2) of path as process pid sees it: in its root, a relative path from its working directory. */
static int stat_as(pid_t pid, const char *path, struct stat *st)
{
	char at[64];

	snprintf(at, sizeof(at), "/proc/%d/%s", pid, path[0] == '/' ? "root" : "cwd");
	auto_close int dir = open(at, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -errno;
	if (path[0] == '/')
		return path_stat_in_root(dir, path, st, 0);
	return fstatat(dir, path, st, 0) ? -errno : 0;
}

bool unix_is_its_file(const struct stat *st, const struct unix_info *ui)
{
	return S_ISSOCK(st->st_mode) && (uint32_t)st->st_ino == ui->vfs_ino &&
	       st->st_dev == makedev(ui->vfs_dev >> 20, ui->vfs_dev & 0xfffff);
}

/* Are /proc/A/name and /proc/B/name (0: stasis) one file (a root, a namespace)? */
static bool same_proc_file(pid_t a, pid_t b, const char *name)
{
	char pa[64], pb[64];
	struct stat sa, sb;

	proc_path(pa, sizeof(pa), a, name);
	proc_path(pb, sizeof(pb), b, name);
	return !stat(pa, &sa) && !stat(pb, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/*
 * The root the restore binds pid's names in, as the dump sees it: stasis's for a process of its
 * mount namespace (PROC_SELF), else the tree's root process's if pid is in that one's; -1 for a process
 * of a mount namespace of its own (the holder's root is taken as it is).
 */
static pid_t tree_root_of(pid_t pid, pid_t tree_root)
{
	if (same_proc_file(pid, PROC_SELF, "ns/mnt"))
		return PROC_SELF;
	return same_proc_file(pid, tree_root, "ns/mnt") ? tree_root : -1;
}

/*
 * The socket file of ui at absolute path in the tree's root, for pid chroot()ed elsewhere (its
 * name bound before the chroot, as lldpd does); -ENOENT if it is not there.
 */
static int stat_before_chroot(pid_t pid, pid_t tree_root, const char *path, const struct unix_info *ui,
			      struct stat *file)
{
	pid_t at = tree_root_of(pid, tree_root);
	char root[64];
	struct stat st;

	if (at < 0 || same_proc_file(pid, at, "root"))
		return -ENOENT;
	proc_path(root, sizeof(root), at, "root");
	auto_close int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || path_stat_in_root(fd, path, &st, 0) || !unix_is_its_file(&st, ui))
		return -ENOENT;
	*file = st;
	return 0;
}

/*
 * The socket file of ui under another name in the directory of its name path (bound, then
 * renamed: haproxy binds its stats socket to NAME.PID.tmp and renames it to NAME): that path
 * (malloc'd) and its file in *file; NULL if there is none (or no memory: *nomem).
 */
static char *renamed_file(pid_t pid, const struct unix_info *ui, const char *path, struct stat *file,
			  bool *nomem)
{
	const char *slash = strrchr(path, '/');
	int dir_len = slash ? (int)(slash - path) + 1 : 0; /* with its '/' */
	char at[64 + UNIX_NAME_MAX + 1], cand[UNIX_NAME_MAX + NAME_MAX + 2];
	char *found = NULL;

	snprintf(at, sizeof(at), "/proc/%d/%s/%.*s", pid, path[0] == '/' ? "root" : "cwd", dir_len, path);
	DIR *d = opendir(at); /* (for the names only: each is checked by stat_as) */
	if (!d)
		return NULL;
	for (struct dirent *de; !found && (de = readdir(d));) {
		if (de->d_type != DT_SOCK && de->d_type != DT_UNKNOWN)
			continue;
		snprintf(cand, sizeof(cand), "%.*s%s", dir_len, path, de->d_name);
		if (strlen(cand) <= UNIX_NAME_MAX && !stat_as(pid, cand, file) && unix_is_its_file(file, ui) &&
		    !(found = xstrdup(cand)))
			*nomem = true;
	}
	closedir(d);
	return found;
}

int unix_name_place(pid_t pid, pid_t tree_root, const struct unix_info *ui, bool *gone, char **dir,
		    struct stat *file, char **renamed)
{
	char path[UNIX_NAME_MAX + 1], link[64], cwd[PATH_MAX];
	bool nomem = false;

	*gone = false;
	*dir = NULL;
	if (renamed)
		*renamed = NULL;
	if (!ui->named || !ui->name_len || !ui->name[0] || !ui->has_vfs)
		return 0; /* abstract, or no file to look for */
	snprintf(path, sizeof(path), "%.*s", (int)ui->name_len, ui->name);
	int err = stat_as(pid, path, file);
	pid_t at = path[0] == '/' && !err && unix_is_its_file(file, ui) ? tree_root_of(pid, tree_root) : -1;
	if (at >= 0 && !same_proc_file(pid, at, "root")) {
		pr_err("dump pid %d: unix socket bound to %s inside its root directory (chroot): bound "
		       "again there is not supported yet", pid, path);
		return -ENOTSUP;
	}
	if (path[0] == '/' && (err || !unix_is_its_file(file, ui)) &&
	    !stat_before_chroot(pid, tree_root, path, ui, file))
		err = 0;
	/* (renamed, and only then: its name free to bind again at the restore, before the rename) */
	if ((err || !unix_is_its_file(file, ui)) &&
	    (!renamed || err != -ENOENT || !(*renamed = renamed_file(pid, ui, path, file, &nomem)))) {
		*gone = true;
		return nomem ? -ENOMEM : 0;
	}
	if (path[0] == '/')
		return 0;
	snprintf(link, sizeof(link), "/proc/%d/cwd", pid);
	ssize_t n = readlink(link, cwd, sizeof(cwd) - 1);
	if (n <= 0 || cwd[0] != '/') {
		*gone = true;
		return 0;
	}
	cwd[n] = 0;
	return (*dir = xstrdup(cwd)) ? 0 : -ENOMEM;
}

/* A stale socket file at the path (no socket bound to it any more) is in the way of bind. */
static void remove_stale(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* A bind or connect of a unix socket to a path, in tree_run's child. */
struct by_path {
	int s;
	struct sockaddr_un sa;
	socklen_t len;
	bool replace_stale; /* bind: a stale socket file at the path is removed first */
};

static int bind_here(void *arg)
{
	struct by_path *b = arg;

	if (b->replace_stale)
		remove_stale(b->sa.sun_path);
	return bind(b->s, (struct sockaddr *)&b->sa, b->len) ? -errno : 0;
}

static int connect_here(void *arg)
{
	struct by_path *b = arg;

	return connect(b->s, (struct sockaddr *)&b->sa, b->len) ? -errno : 0;
}

int unix_scratch_dirs(char *path)
{
	for (char *slash = strchr(path + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = 0;
		int err = mkdir(path, 0700) && errno != EEXIST ? -errno : 0;
		*slash = '/';
		if (err)
			return err;
	}
	return 0;
}

/* In a scratch root's child: the name's directories made, then the bind. */
static int bind_with_dirs(void *arg)
{
	struct by_path *b = arg;

	return unix_scratch_dirs(b->sa.sun_path) ?: bind_here(b);
}

int unix_run_at(const struct run_ctx *ctx, const char *scratch, const char *dir, int (*fn)(void *arg),
		void *arg)
{
	if (!scratch)
		return tree_run(ctx, dir, fn, arg);
	auto_close int root = open(scratch, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return root < 0 ? -errno : path_run_in_root(root, NULL, fn, arg);
}

/*
 * Binds in a scratch root of stasis's (chroot), with the name's directories: the name, with its
 * file where only restore reaches it (made->scratch, removed with made).
 */
static int bind_in_scratch(struct by_path *b, struct unix_file *made)
{
	char root[] = "/tmp/stasis-unix-XXXXXX";

	if (!mkdtemp(root))
		return -errno;
	if (!(made->scratch = xstrdup(root))) {
		rmdir(root);
		return -ENOMEM;
	}
	return unix_run_at(NULL, made->scratch, NULL, bind_with_dirs, b);
}

/*
 * The directories of made->path that are gone (a path bound in a directory removed since),
 * made again, outermost first, each noted in made->dirs before the next is made.
 */
static int make_gone_dirs(const struct run_ctx *ctx, struct unix_file *made)
{
	char *path = made->path;
	struct stat st;
	int err = 0;

	for (char *slash = strchr(path + 1, '/'); slash && !err; slash = strchr(slash + 1, '/')) {
		*slash = 0;
		if (tree_stat(ctx, path, &st, 0) == -ENOENT) {
			struct made_dir *d = realloc(made->dirs, (made->n_dirs + 1) * sizeof(*d));
			if (d)
				made->dirs = d;
			if (!d || !(d[made->n_dirs].path = xstrdup(path))) {
				err = -ENOMEM;
			} else if ((err = tree_mkdir(ctx, path, 0700, &st))) {
				free(d[made->n_dirs].path);
			} else {
				d[made->n_dirs].dev = st.st_dev;
				d[made->n_dirs++].ino = st.st_ino;
			}
		}
		*slash = '/';
	}
	return err;
}

/*
 * An abstract name may still be held by a socket of the dumped tree (killed after the dump)
 * that its sockets carried in flight among themselves: a loop the kernel frees only when its
 * garbage collector runs, asynchronously, after some unix socket is closed. Such a name is
 * tried again for a while, a socket closed before each try; a name a live socket holds stays
 * taken (-EADDRINUSE).
 */
static int bind_abstract(int s, const struct sockaddr_un *sa, socklen_t len)
{
	for (int tries = 50;; tries--) {
		if (!bind(s, (const struct sockaddr *)sa, len))
			return 0;
		if (errno != EADDRINUSE || !tries)
			return -errno;
		int kick = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (kick >= 0)
			close(kick);
		usleep(10000);
	}
}

int unix_bind_name(const struct run_ctx *ctx, int s, const void *name, size_t len, bool gone,
		   const char *dir, struct unix_file *made)
{
	struct by_path b = { .s = s, .replace_stale = !gone };
	struct stat st;
	int err;

	*made = (struct unix_file){ 0 };
	if (unix_addr(name, len, &b.sa, &b.len))
		return -EINVAL;
	if (!b.sa.sun_path[0]) /* abstract: in the network namespace the socket was made in */
		return bind_abstract(s, &b.sa, b.len);
	if (!gone)
		return tree_run(ctx, dir, bind_here, &b);
	if (b.sa.sun_path[0] != '/' || tree_stat(ctx, b.sa.sun_path, &st, AT_SYMLINK_NOFOLLOW) != -ENOENT)
	{
		if ((err = bind_in_scratch(&b, made))) /* another file took its path */
			unix_file_remove(ctx, made);
		return err;
	}
	if (!(made->path = xstrdup(b.sa.sun_path))) /* noted before the file is made */
		return -ENOMEM;
	if ((err = make_gone_dirs(ctx, made)) || (err = tree_run(ctx, NULL, bind_here, &b))) {
		unix_file_remove(ctx, made); /* no file made yet: only the directories go */
		return err;
	}
	if (tree_stat(ctx, made->path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		made->dev = st.st_dev;
		made->ino = st.st_ino;
	}
	return 0;
}

struct connect_batch {
	const int *s;
	size_t n;
	struct sockaddr_un sa;
	socklen_t len;
};

static int connect_batch_here(void *arg)
{
	const struct connect_batch *b = arg;

	for (size_t i = 0; i < b->n; i++)
		if (connect(b->s[i], (const struct sockaddr *)&b->sa, b->len))
			return -errno;
	return 0;
}

int unix_connect_all(const struct run_ctx *ctx, const int *s, size_t n, const void *name, size_t len,
		     const char *dir, const char *scratch)
{
	struct connect_batch b = { .s = s, .n = n };

	if (unix_addr(name, len, &b.sa, &b.len))
		return -EINVAL;
	if (!b.sa.sun_path[0])
		return connect_batch_here(&b);
	return unix_run_at(ctx, scratch, dir, connect_batch_here, &b);
}

int unix_connect_name(const struct run_ctx *ctx, int s, const void *name, size_t len, const char *dir,
		      const char *scratch, const struct unix_cred *as)
{
	struct by_path c = { .s = s };

	if (!as)
		return unix_connect_all(ctx, &s, 1, name, len, dir, scratch);
	if (unix_addr(name, len, &c.sa, &c.len))
		return -EINVAL;
	bool abstract = !c.sa.sun_path[0];
	auto_close int root = abstract || !scratch ? -1 : open(scratch, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (!abstract && scratch && root < 0)
		return -errno;
	return unix_run_as(ctx, as, abstract ? -1 : scratch ? root : ctx->tree_root_fd,
			   abstract || scratch ? NULL : dir, connect_here, &c, sizeof(c));
}

void unix_file_forget(struct unix_file *f)
{
	for (size_t i = 0; i < f->n_dirs; i++)
		free(f->dirs[i].path);
	free(f->dirs);
	free(f->path);
	free(f->scratch);
	*f = (struct unix_file){ 0 };
}

void unix_file_remove(const struct run_ctx *ctx, struct unix_file *f)
{
	struct stat was = { .st_dev = f->dev, .st_ino = f->ino };

	if (f->path)
		tree_unlink(ctx, f->path, &was);
	for (size_t i = f->n_dirs; i-- > 0;) {
		struct stat dir = { .st_dev = f->dirs[i].dev, .st_ino = f->dirs[i].ino };
		tree_rmdir(ctx, f->dirs[i].path, &dir);
	}
	if (f->scratch)
		nftw(f->scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	unix_file_forget(f);
}

static int saved_socket(const FdEntry *e)
{
	int passcred = e->sock_passcred;

	if (e->sock_type != SOCK_STREAM && e->sock_type != SOCK_DGRAM && e->sock_type != SOCK_SEQPACKET)
		return -EINVAL;
	int s = socket(AF_UNIX, e->sock_type | SOCK_CLOEXEC | (e->flags & O_NONBLOCK ? SOCK_NONBLOCK : 0), 0);
	if (s < 0)
		return -errno;
	if (setsockopt(s, SOL_SOCKET, SO_PASSCRED, &passcred, sizeof(passcred))) {
		int err = -errno;
		close(s);
		return err;
	}
	return s;
}

int unix_name_file_set(const struct run_ctx *ctx, const char *dir, const ProtobufCBinaryData *name,
		       const struct unix_file_attrs *a)
{
	char path[PATH_MAX], self[64];

	if (!name->len || !name->data[0] || (!a->has_owner && !a->has_mode))
		return 0;
	snprintf(path, sizeof(path), "%s%s%.*s", dir ? dir : "", dir ? "/" : "", (int)name->len,
		 (const char *)name->data);
	auto_close int file = tree_open(ctx, path, O_PATH | O_NOFOLLOW, 0);
	if (file < 0)
		return file;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", file);
	if ((a->has_owner && fchownat(file, "", a->uid, a->gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) ||
	    (a->has_mode && chmod(self, a->mode)))
		return -errno;
	return 0;
}

bool unix_renamed_valid(const FdEntry *e)
{
	const char *to = e->sock_file_renamed, *name = (const char *)e->sock_name.data;

	if (!to)
		return true;
	const char *slash = memrchr(name, '/', e->sock_name.len);
	size_t dir_len = slash ? (size_t)(slash - name) + 1 : 0;
	return !e->sock_file_gone && e->sock_name.len && name[0] && strlen(to) <= UNIX_NAME_MAX &&
	       strlen(to) > dir_len && !strncmp(to, name, dir_len) && !strchr(to + dir_len, '/');
}

struct rename_of {
	char from[UNIX_NAME_MAX + 1];
	const char *to;
};

/* In the tree (its root, the name's directory): the bound file to its name now, over a stale one. */
static int rename_here(void *arg)
{
	const struct rename_of *r = arg;
	struct stat st;

	if (!lstat(r->to, &st) && !S_ISSOCK(st.st_mode))
		return -EEXIST; /* not a socket file left by the dumped socket: not ours to replace */
	return rename(r->from, r->to) ? -errno : 0;
}

int unix_name_file_rename(const struct run_ctx *ctx, const FdEntry *e)
{
	struct rename_of r = { .to = e->sock_file_renamed };

	if (!r.to)
		return 0;
	snprintf(r.from, sizeof(r.from), "%.*s", (int)e->sock_name.len, (const char *)e->sock_name.data);
	int err = tree_run(ctx, e->sock_dir, rename_here, &r);
	if (err)
		pr_err("restore: cannot rename the file of unix socket %llu from %s to %s, its name "
		       "at the dump: %s", (unsigned long long)e->sock_ino, r.from, r.to, strerror(-err));
	return err;
}

int unix_bind_saved(const struct run_ctx *ctx, const FdEntry *e, struct unix_file *made)
{
	int s = saved_socket(e), err;
	struct unix_cred as;

	*made = (struct unix_file){ 0 };
	if (s < 0)
		return s;
	if ((err = unix_bind_name(ctx, s, e->sock_name.data, e->sock_name.len, e->sock_file_gone,
				  e->sock_dir, made)) ||
	    (!e->sock_file_gone &&
	     (err = unix_name_file_set(ctx, e->sock_dir, &e->sock_name,
				       &(struct unix_file_attrs){ e->has_sock_file_uid, e->sock_file_uid, e->sock_file_gid,
								  e->has_sock_file_mode, e->sock_file_mode }))) ||
	    (e->has_sock_backlog &&
	     (err = unix_listen_as(ctx, s, e->sock_backlog, unix_listener_cred(e, &as))))) {
		unix_file_remove(ctx, made);
		close(s);
		return err;
	}
	return s;
}

struct bind_listen_batch {
	const FdEntry *const *es;
	const int *s;
	size_t n;
	uint32_t fsuid, fsgid; /* stasis's: the socket files are made as by unix_bind_saved */
	int err[];
};

/* In the helper (its root the tree's): each socket bound to its name (from its directory), then listening. */
static int bind_listen_batch_here(void *arg)
{
	struct bind_listen_batch *b = arg;
	auto_close int start = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);

	syscall(SYS_setfsuid, b->fsuid); /* (raw: this thread's only) */
	syscall(SYS_setfsgid, b->fsgid);
	for (size_t i = 0; i < b->n; i++) {
		const FdEntry *e = b->es[i];
		struct by_path p = { .s = b->s[i], .replace_stale = true };
		int err = unix_saved_addr(e, &p.sa, &p.len);
		if (!err && !p.sa.sun_path[0])
			err = bind_abstract(p.s, &p.sa, p.len);
		else if (!err)
			err = start < 0 || fchdir(start) || (e->sock_dir && chdir(e->sock_dir)) ? -errno : bind_here(&p);
		if (!err && listen(p.s, (int)e->sock_backlog))
			err = -errno;
		b->err[i] = err;
	}
	return 0;
}

int unix_bind_listen_all(const struct run_ctx *ctx, const FdEntry *const *es, size_t n,
			 const struct unix_cred *as, int *s)
{
	size_t size = sizeof(struct bind_listen_batch) + n * sizeof(int);
	struct bind_listen_batch *b = calloc(1, size);
	int err;

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		s[i] = saved_socket(es[i]); /* (one that failed fails its bind, in the helper) */
	*b = (struct bind_listen_batch){ es, s, n, geteuid(), getegid() };
	err = unix_run_as(ctx, as, ctx->tree_root_fd, NULL, bind_listen_batch_here, b, size);
	for (size_t i = 0; i < n; i++) {
		const FdEntry *e = es[i];
		if (s[i] >= 0 &&
		    (err || b->err[i] ||
		     (!e->sock_file_gone &&
		      unix_name_file_set(ctx, e->sock_dir, &e->sock_name,
					 &(struct unix_file_attrs){ e->has_sock_file_uid, e->sock_file_uid,
								    e->sock_file_gid, e->has_sock_file_mode,
								    e->sock_file_mode })))) {
			close(s[i]);
			s[i] = -1;
		}
	}
	free(b);
	return err;
}

int unix_connect_saved(const struct run_ctx *ctx, const FdEntry *e)
{
	int s, err;

	if ((s = saved_socket(e)) < 0)
		return s;
	if ((err = unix_connect_name(ctx, s, e->sock_name.data, e->sock_name.len, NULL, NULL, NULL))) {
		close(s);
		return err;
	}
	return s;
}

int unix_fresh_socket(const FdEntry *e)
{
	if (e->sock_type != SOCK_STREAM && e->sock_type != SOCK_DGRAM && e->sock_type != SOCK_SEQPACKET)
		return -EINVAL;
	int s = socket(AF_UNIX, e->sock_type | SOCK_CLOEXEC | (e->flags & O_NONBLOCK ? SOCK_NONBLOCK : 0), 0);
	return s < 0 ? -errno : s;
}

int unix_apply_shutdown(int s, uint32_t bits)
{
	if ((bits & 2) && shutdown(s, SHUT_WR))
		return -errno;
	if ((bits & 1) && shutdown(s, SHUT_RD))
		return -errno;
	return 0;
}

int unix_dup_held(int fd, unsigned flags)
{
	if (fcntl(fd, F_SETFL, flags & O_NONBLOCK))
		return -errno;
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	return fd < 0 ? -errno : fd;
}
