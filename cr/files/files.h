/* The fd table's common layer, and the registration of each kind of file. */
#ifndef STASIS_FILES_H
#define STASIS_FILES_H

#include <dirent.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "task.h"

#define MQUEUE_MAGIC 0x19800202 /* statfs f_type of a POSIX message queue */

/* What every fd has in common, read from /proc/PID/fd and /proc/PID/fdinfo (cr/files/fd-probe.c). */
struct fd_probe {
	int fd;
	unsigned flags;  /* fdinfo flags (open(2) flags, O_CLOEXEC included) */
	unsigned long long pos;
	const char *info; /* the whole /proc/PID/fdinfo/N text */
	/* what groups it with the open files that may be it (struct open_files): fdinfo's mount
	 * (bit 63 set) and inode, or, on a kernel without those lines, st's device and inode */
	uint64_t id_dev, id_ino;
	bool has_st;
	struct stat st;
	char link[4096]; /* readlink of /proc/PID/fd/N: a path, "pipe:[123]", "anon_inode:[...]" */
};

/* Fills p for fd of pid; *info_out is the fdinfo text to free. Says what failed. */
int fd_probe(pid_t pid, int fd, struct fd_probe *p, char **info_out);
/* The same in two steps, for many fds of one process: its /proc/PID/fd and fdinfo directories
 * open (-1: by whole path). info: fdinfo (pos, flags, the id), what an fd of an open file met
 * before needs; then file: its link and st. */
struct fd_dirs {
	pid_t pid;
	int fd_dir, info_dir;
};
int fd_probe_info(const struct fd_dirs *d, int fd, struct fd_probe *p, char **info_out);
/* A process of tasks (n of them) serving a FUSE file system (/dev/fuse open): refused naming it,
 * before any file of the tree is looked at: stat() of a file of that file system waits for its
 * frozen server for ever. Only links are read (readlink asks no file system). */
int fd_probe_refuse_fuse(const struct dump_task *tasks, size_t n);
/* fn(ino, pid, fd, arg) for each fd of process pid that holds a socket, lowest first (links
 * only: no file system is asked); a nonzero return of fn ends the walk and is returned. 0, or
 * -errno. */
int fd_each_socket(pid_t pid, int (*fn)(uint64_t ino, pid_t pid, int fd, void *arg), void *arg);
/* The lowest fd of t holding socket ino (links only: no file system is asked); -ENOENT: none,
 * or -errno. */
int fd_holding_socket(const struct dump_task *t, uint64_t ino);
/* Is a netlink socket of the frozen tree in the middle of a conversation with the kernel (a
 * reply not read yet, a dump being answered), which a restore cannot give back? 1 (said at
 * info level, naming it) or 0. */
int netlink_tree_talking(const struct dump_task *tasks, size_t n);
/* Is a unix connection from outside the frozen tree of a moment: a client outside waiting to be
 * accepted by a listener of the tree, or a connection a listener of the tree's network namespace
 * accepted from a client of the host's (without --ext-unix-sk)? 1 (said at info level, naming
 * it) or 0 (unix-moment.c). */
int unix_tree_outside_moment(const struct dump_task *tasks, size_t n);
int fd_probe_file(const struct fd_dirs *d, struct fd_probe *p);
/* The fd of t's (dumped) table that is the open file of fd of pid (a tid too), else -ENOENT;
 * st: that fd's file. */
int fd_table_holder(const struct dump_task *t, const struct fd_probe *p, pid_t pid);
/* The tree's open files (cr/files/open-files.c). find: the open file of p's fd of pid (a tid
 * too), or NULL. see: f's open file (f->pid, f->fd; p its probe) in x: 1 and *at the one
 * already there, or 0 and *at f added; <0 if kcmp failed or memory ran out. *at holds until
 * the next call. */
struct open_file *open_files_find(const struct open_files *x, const struct fd_probe *p, pid_t pid);
int open_files_see(struct open_files *x, const struct fd_probe *p, const struct open_file *f,
		   struct open_file **at);
/* The line of fdinfo text that starts with key ("lock:" is not "memlock:"), NULL if none. */
const char *fdinfo_key(const char *info, const char *key);
/* The number after "key" in fdinfo text (base 0: decimal, 0x hex, 0 octal); false if absent.
 * key is found anywhere, not only at a line's start ("events:" in an epoll target's line). */
bool fdinfo_u64(const char *info, const char *key, int base, uint64_t *val);
/* The line of fdinfo text starting at l, without its newline, cut to fit len (sscanf a line
 * of it, not the text: sscanf measures its whole input first). */
char *fdinfo_line(const char *l, char *buf, size_t len);
/* fdinfo text on one line ("pos: 0; flags: 02; ..."), cut to fit len. */
const char *fdinfo_one_line(const char *text, char *buf, size_t len);

struct run_ctx;
struct fd_kind_ops {
	const char *name;
	/* Claims the fd (returns 1), declines (0), or fails naming the fd (<0; a failure the kind
	 * did not name is named by the fd table, with the fd, its link and the kind). */
	int (*dump)(struct dump_task *t, const struct fd_probe *p, FdEntry *e);
	/* Optional, before anything is started: 0, or <0 having said what is wrong. */
	int (*validate)(const struct restore_task *t, const FdEntry *e);
	/* Optional, once the tree's mounts exist (state_ops.check): its file is still there. */
	int (*check)(const struct restore_task *t, const FdEntry *e);
	/* In the new task: returns an fd (any number) holding the open file, or <0 (a failure the
	 * kind did not name is named by the fd table, with the fd, its path and the kind). */
	int (*open)(struct restore_task *t, const FdEntry *e);
	/* Optional, in the new task once every fd has its number, before locks are taken again
	 * (epoll registrations, which may put a file at a number for a moment). */
	int (*settle)(const struct restore_task *t, const FdEntry *e);
	/* Optional, by stasis once every task of the tree has reported, before any is finished
	 * (state_ops.ready): TCP connections' queues. */
	int (*ready)(const struct restore_task *t, const FdEntry *e);
	/* Optional, by stasis once the task waits to be let go (inotify: the restore's events). */
	int (*finish)(const struct restore_task *t, const FdEntry *e);
	/* Optional: a file the root opens once it is in the tree's own PID namespace (what it names
	 * is a pid there), not stasis before the tree; shared by several processes, it opens there
	 * too (cr/files/shared.c). */
	bool (*opens_in_tree_ns)(const struct run_ctx *ctx, const FdEntry *e);
	/* Optional: the pid of the process of the tree that names the file (a file of its
	 * /proc/PID, there only once it runs), 0 if none. Shared by several processes, that
	 * process opens it itself before it forks, at stasis's held number (cr/files/shared.c):
	 * each sharer must be it or forked below it. */
	pid_t (*opened_by_process)(const struct restore_task *t, const FdEntry *e);
	FdKind kind;
	bool open_in_stasis; /* opened by stasis before the tree, inherited (named pipes) */
};

/*
 * cr/files/packet.c: a mapping of a packet socket's rings (cr/mm.c). At dump, pv maps socket
 * ino: e made a VMA_PACKET_RING naming the fd holding it, or a socket of mm.ring_sockets (read
 * from sock_diag); refused naming pv if it is no whole mapping of a packet socket's rings. At
 * restore: a socket of mm.ring_sockets is valid; v's socket is there with rings of its size
 * (once every image is read); a socket of mm.ring_sockets opened above the task's fds.
 */
struct proc_vma;
int packet_ring_vma_dump(struct dump_task *t, const struct proc_vma *pv, uint64_t ino, VmaEntry *e);
bool packet_ring_socket_valid(const PacketSocket *ps);
int packet_ring_vma_check(const struct restore_task *t, const VmaEntry *v);
int packet_ring_socket_open(struct restore_task *t, const PacketSocket *ps);

/*
 * cr/files/io-uring.c: a mapping of an io_uring instance's rings or entries (cr/mm.c). At dump,
 * e made a VMA_IO_URING naming the fd holding it, or refused naming pv (a region other than
 * those, no fd holding it, a shared fd table); memfd: the same of a mapping of the memfd a
 * restore made for an instance's memory (mf its map_files path), 1 if pv is no such mapping.
 * At restore: v's fields are sound; v's fd is an io_uring instance of this process whose region
 * takes v's size (once every image is read); the memfd to map for v and where in it (made
 * once per instance, a helper fd, used by the fd's open).
 */
int io_uring_vma_dump(struct dump_task *t, const struct proc_vma *pv, VmaEntry *e);
int io_uring_memfd_vma_dump(struct dump_task *t, const struct proc_vma *pv, const char *mf, VmaEntry *e);
bool io_uring_vma_valid(const VmaEntry *v);
int io_uring_vma_check(const struct restore_task *t, const VmaEntry *v);
int io_uring_vma_memory(struct restore_task *t, const VmaEntry *v, int *memfd, uint64_t *offset);

/* The entry of t's fd (a dup's original; another process's: FD_SHARED), NULL if none. */
static inline const FdEntry *fd_entry_at(const struct restore_task *t, uint32_t fd)
{
	for (size_t i = t->fds->n_fds; i-- > 0;) {
		const FdEntry *e = t->fds->fds[i];
		if (e->fd == fd)
			return e->kind == FD_KIND__FD_DUP ? fd_entry_at(t, e->dup_of) : e; /* dup_of < fd (validated) */
	}
	return NULL;
}

/* Every kind, in the order each is offered an fd at dump (cr/files/fd-kinds.c). */
extern const struct fd_kind_ops *const fd_kinds[];
extern const unsigned fd_kinds_len;
/* The ops of a kind of fd, NULL if unknown. */
const struct fd_kind_ops *fd_kind_of(FdKind kind);

extern const struct fd_kind_ops fd_kind_regular, fd_kind_inherited, fd_kind_memfd, fd_kind_pipe,
	fd_kind_eventfd, fd_kind_signalfd, fd_kind_timerfd, fd_kind_epoll, fd_kind_unix, fd_kind_unix_bound, fd_kind_inotify,
	fd_kind_pty_master, fd_kind_pty_slave, fd_kind_mqueue, fd_kind_unix_external, fd_kind_pidfd,
	fd_kind_unix_pending, fd_kind_external, fd_kind_unix_fresh, fd_kind_netlink, fd_kind_inet, fd_kind_packet, fd_kind_nsfile,
	fd_kind_fanotify, fd_kind_bpf_map, fd_kind_tun, fd_kind_io_uring;

/* cr/files/external.c: the caller's fd given as --inherit-fd fd[N]:KEY; -ENOENT if none,
 * -EINVAL (said) if it is not the kind of file the key names. */
int inherit_fd_get(const struct run_ctx *ctx, const char *key);

/*
 * cr/files/pty.c: the ptys stasis saves and restores: those whose masters the tree holds, and
 * with orphan_pts_master (and no --shell-job) those of the tree's own devpts (its /dev/pts)
 * whose master is the engine's, and those whose master was closed (hung-up slave files whose
 * /dev/pts/N is gone). slave: the slave fd's probe, to tell the tree's pty index from another
 * devpts's (NULL: the index alone, for a controlling terminal).
 */
int pty_slave_index(const struct stat *st);
/* The pty index of a controlling terminal given as /proc/PID/stat's tty_nr, -1 if not a pty. */
int pty_ctty_index(unsigned long tty_nr);
int pty_kept(struct dump_task *t, int index, const struct fd_probe *slave); /* 1, 0, -ENOMEM */
/* In a new session leader: the controlling terminal, then the foreground group. */
int pty_take_as_ctty(const struct run_ctx *ctx, uint32_t index);
int pty_set_foreground(const struct run_ctx *ctx, uint32_t index);

/* cr/files/locks.c: the locks held through one fd (shared: the open file was saved with an
 * earlier process); and, in the new task once fds have their numbers, taking them again. */
int locks_dump_fd(struct dump_task *t, const struct fd_probe *p, FdEntry *e, bool shared);
bool locks_valid(const FdEntry *e);
int locks_restore(struct restore_task *t, const FdTable *tab);
/* Bytes of the blob's arguments the POSIX locks take (the blob takes them again last). */
size_t locks_args_size(const FdTable *tab);
/* By stasis once every process has its leases, before the file's owner is set back: the
 * leases being broken at the dump are broken again (no signal: the file has no owner yet). */
int locks_break_leases(const struct restore_task *t, const FdEntry *e);

/* cr/files/inode-owner.c: the owner of a pipe's or a socket's inode (fchown): read at dump,
 * set by stasis on a copy of the restored fd once the tree exists. */
void inode_owner_dump(const struct fd_probe *p, FdEntry *e);
int inode_owner_restore(const struct restore_task *t, const FdEntry *e);
/* cr/files/fown.c: who gets the open file's signals (F_SETOWN_EX, F_SETSIG, O_ASYNC): read
 * from a copy of the file; O_ASYNC armed in the new task once fds have their numbers; the
 * owner and signal set by stasis once the tree exists. */
int fown_dump(struct dump_task *t, const struct fd_probe *p, FdEntry *e);
bool fown_valid(const FdEntry *e);
int fown_arm(const FdTable *tab);
int fown_restore(const struct restore_task *t, const FdEntry *e);

/* cr/files/fhandle.c: file handles. The handle of the inode open at fd (a filesystem that
 * cannot make one: negative errno); an fd of the inode of a handle through the mount of
 * mount_fd (a file or directory on its filesystem: the fd is on that mount). None names its
 * failure but -ENOMEM (the allocator did). */
int fhandle_of_fd(int fd, ProtobufCBinaryData *handle, int32_t *type);
int fhandle_open_at(int mount_fd, const void *handle, size_t len, int type, int flags);
/* An O_PATH fd (the caller's to close) on the inode of a handle as pid's fdinfo shows it
 * (sdev: the kernel's major << 20 | minor; hex: its bytes), found through a mount of its
 * filesystem in pid's mount namespace (a filesystem mounted in a container only, too) under
 * which it lies, and its path as pid sees it; else through stasis's mounts, its path as
 * stasis sees it; else (a filesystem that cannot open handles: overlayfs) by a search of pid's
 * mounts of it for inode number ino, confirmed by its handle. */
int fhandle_path_fd(pid_t pid, unsigned long sdev, unsigned long ino, unsigned bytes, int type, const char *hex,
		    char *path, size_t len);
/* An O_PATH fd on inode ino of device dev found by that search alone (a filesystem without
 * handles), its path as pid sees it in path; -ENOENT. */
int fhandle_search_inode(pid_t pid, dev_t dev, unsigned long ino, char *path, size_t len);
/* The same for the inode open at fd (st: its stat) through pid's mounts alone: by its handle,
 * else (no handle, or none that opens: overlayfs) by that search; -ENOENT. */
int fhandle_path_in(pid_t pid, int fd, const struct stat *st, char *path, size_t len);

/* cr/files/ghost.c: deleted files still open or mapped (tree_ghosts). ghost_note: the ghost
 * id of the removed file behind read_path (a /proc path), what names its use ("fd 5") in errors;
 * any_type: a directory, device node, FIFO or socket file too, else a regular file only. */
bool ghost_path(const char *link);
int ghost_note(struct run_ctx *ctx, const char *read_path, const char *link, pid_t pid,
	       const char *what, bool any_type);
int ghost_open(const struct run_ctx *ctx, uint32_t id, int flags);
uint64_t ghost_limit(const struct run_ctx *ctx);
/* A file of a mount that goes with the tree (cr/files/detached-mount.c), kept as a ghost is:
 * ghost_file_copy saves the inode open (O_PATH) at fd as path (type, mode, owner, times, data
 * or link target); ghost_file_valid checks one read from an image; ghost_file_make makes it
 * again as name in dir; ghost_file_attrs gives the inode at fd g's owner, mode and times. */
int ghost_file_copy(const struct run_ctx *ctx, int fd, const char *path, pid_t pid, const char *what,
		    GhostFile *g);
bool ghost_file_valid(const GhostFile *g);
int ghost_file_make(int dir, const char *name, const GhostFile *g);
int ghost_file_attrs(int fd, const GhostFile *g);
/* cr/files/detached-mount.c (tree_detached_mounts): files on mounts no namespace holds.
 * detached_mount_note: 0 if mnt_id (the mount of the file behind magic, a /proc path; link:
 * its readlink, st: its stat) is a mount of a namespace, 1 once *id is the detached mount it
 * is on (link its path from that mount's root), or an error said; what names its use ("fd 5",
 * "cwd"). detached_mount_open: that file opened again with flags, or an error said. */
int detached_mount_note(struct dump_task *t, const char *magic, const char *link, const struct stat *st,
			uint64_t mnt_id, const char *what, uint32_t *id);
int detached_mount_open(const struct run_ctx *ctx, uint32_t id, const char *path, int flags, pid_t pid,
			const char *what);

/* cr/files/mqueue.c: the POSIX message queues of the calling thread's IPC namespace, listed
 * through an mqueue filesystem of it (fsmount, not attached; closedir lets it go); NULL with
 * errno set if it cannot be made. */
DIR *mqueue_fs_list(void);

/* cr/files/sockopts.c: SOL_SOCKET options of the socket at fd of pid that differ from a fresh
 * socket's, saved in e (before any kind looks at it); checked and set on the new socket. */
int sockopts_dump(pid_t pid, int fd, FdEntry *e);
bool sockopts_valid(const FdEntry *e);
bool sockopts_saved(const FdEntry *e); /* anything to set: options, a filter, its lock */
int sockopts_restore(int sk, const FdEntry *e);
/*
 * The buffer sizes the program set (locked: SO_BUF_LOCK) set again, and the locks as they were:
 * a size the restore grew for the queues it filled (TCP repair) is the kernel's to change again
 * (autotuning), as sockopts_restore leaves one the kernel had chosen. Once a TCP connection's
 * queues are in.
 */
int sockopts_buffers_restore(int sk, const FdEntry *e);

/* cr/files/epoll.c, dump: the epoll item whose fdinfo line l starts ("tfd:") appended to
 * e->targets (the epoll's earlier items are there); *slot names it for kcmp (KCMP_EPOLL_TFD) on
 * efd, an fd of the epoll: its number, and its place among the items of that number (the
 * kernel lists them in the order kcmp counts). -EINVAL (not said): unreadable; -ENOMEM. */
struct kcmp_epoll_slot;
int epoll_item_read(FdEntry *e, const char *l, int efd, struct kcmp_epoll_slot *slot);

/* cr/files/shared.c: open files shared by several processes of the tree (tree_shared_files):
 * stasis's fd on the one saved as fd of pid, or -1. */
int shared_file_fd(const struct run_ctx *ctx, pid_t pid, uint32_t fd);
/* In each new process before it forks (the root: in the tree's own PID namespace once stasis
 * made the processes of reaped pids there, cr/proc-dead.c): the held files it opens itself at
 * their held numbers, the root those of /proc of reaped pids, a process those of its own /proc
 * (fd_kind_ops.opened_by_process). own_mounts: those on mounts of the mount namespace it made
 * (fd_entry.mntns_maker: once it made it), else the others (before). */
struct restore_tree;
struct restore_task;
int shared_files_open_later(struct restore_tree *rt, const struct restore_task *self, bool own_mounts);
/* cr/files/shared.c, a socket kind's opened_by_process: made in a network namespace a process of
 * the tree made (netns/net-nested.c), that maker, which opens it once it made the namespace. */
pid_t fd_netns_maker(const struct restore_task *t, const FdEntry *e);

/* cr/files/inherited.c: with --shell-job, the tree let go: when the caller's terminal has
 * another window size than one the tree's processes had saved, SIGWINCH to its foreground group. */
void inherited_tty_resized(const struct restore_tree *rt);

/* cr/files/unix.c, restore, in stasis, when the root of a tree with a PID namespace of its own
 * (host pid root) has reported from it: the unix sockets it made again there (their peer
 * pids the namespace's) taken in place of those standing in for them. */
int unix_take_from_root(struct run_ctx *ctx, pid_t root);

/*
 * cr/files/pidfd.c, restore: pidfds of threads other than a process's first (PIDFD_THREAD).
 * Their threads are made after the fds: a unix socket stands at each of their numbers until
 * then. Once every thread exists: does fd of t (its own entry, a dup, a file it shares) hold
 * one? 1 and *use (stasis has the pidfd open by now; the caller sends it through channel, and
 * t receives it there and puts it in the socket's place), 0, or <0 said.
 */
struct thread_pidfd_use {
	int channel; /* stasis's end of the socket standing at fd */
	int file;    /* stasis's pidfd of the thread */
};
int pidfd_thread_at(struct restore_tree *rt, const struct restore_task *t, uint32_t fd,
		    struct thread_pidfd_use *use);

#endif
