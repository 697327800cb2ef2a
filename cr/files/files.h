/* The fd table's common layer, and the registration of each kind of file. */
#ifndef STASIS_FILES_H
#define STASIS_FILES_H

#include <stdbool.h>
#include <sys/stat.h>

#include "task.h"

/* What every fd has in common, read from /proc/PID/fd and /proc/PID/fdinfo. */
#define MQUEUE_MAGIC 0x19800202 /* statfs f_type of a POSIX message queue */

struct fd_probe {
	int fd;
	struct stat st;
	char link[4096]; /* readlink of /proc/PID/fd/N: a path, "pipe:[123]", "anon_inode:[...]" */
	unsigned flags;  /* fdinfo flags (open(2) flags, O_CLOEXEC included) */
	unsigned long long pos;
	const char *info; /* the whole /proc/PID/fdinfo/N text */
};

/* The number after "key" in fdinfo text (base 0: decimal, 0x hex, 0 octal); false if absent. */
bool fdinfo_u64(const char *info, const char *key, int base, uint64_t *val);

struct fd_kind_ops {
	const char *name;
	/* Claims the fd (returns 1), declines (0), or fails naming the fd (<0). */
	int (*dump)(struct dump_task *t, const struct fd_probe *p, FdEntry *e);
	/* Optional, before anything is started: 0, or <0 having said what is wrong. */
	int (*validate)(const struct restore_task *t, const FdEntry *e);
	/* In the new task: returns an fd (any number) holding the open file, or <0. */
	int (*open)(struct restore_task *t, const FdEntry *e);
	FdKind kind;
	bool open_in_stasis; /* opened by stasis before the tree, inherited (named pipes) */
};

extern const struct fd_kind_ops fd_kind_regular, fd_kind_inherited, fd_kind_memfd, fd_kind_pipe,
	fd_kind_eventfd, fd_kind_signalfd, fd_kind_timerfd, fd_kind_epoll, fd_kind_unix, fd_kind_unix_bound, fd_kind_inotify,
	fd_kind_pty_master, fd_kind_pty_slave, fd_kind_mqueue, fd_kind_unix_external, fd_kind_pidfd,
	fd_kind_unix_pending, fd_kind_external, fd_kind_unix_fresh, fd_kind_netlink;

/* cr/files/external.c: the caller's fd given as --inherit-fd fd[N]:KEY; -ENOENT if none,
 * -EINVAL (said) if it is not the kind of file the key names. */
int inherit_fd_get(const char *key);

/* cr/files/pty.c: the ptys whose masters the tree holds. */
struct pty_dump *pty_dump_new(void);
int pty_slave_index(const struct stat *st);
bool pty_owned_by_tree(struct dump_task *t, int index);
int ptys_dump_all(struct pty_dump *pd, int dirfd);
int ptys_restore_prepare(int dirfd, bool needed);
bool pty_known(uint32_t index);
int pty_take_as_ctty(uint32_t index);
int pty_set_foreground(uint32_t index);
void ptys_close_all(void);

/* cr/files/unix.c: the tree's connected unix socket pairs and pending connections
 * (cr/files/unix-backlog.c), made by stasis before the tree. */
struct unix_dump *unix_dump_new(void);
int unix_dump_all(struct unix_dump *ud, int dirfd);
int unix_restore_prepare(int dirfd, bool needed, const struct restore_task *tasks, size_t nr_tasks);
bool unix_fd_known(const FdEntry *e);
void unix_close_all(void);

/* cr/files/locks.c: the locks held through one fd (shared: the open file was saved with an
 * earlier process); and, in the new task once fds have their numbers, taking them again. */
int locks_dump_fd(struct dump_task *t, const struct fd_probe *p, FdEntry *e, bool shared);
int locks_restore(const FdTable *tab);

/* cr/files/epoll.c: in the new task, once every fd has its number: the registrations. */
int epoll_register_targets(const FdTable *tab);

/* The ops of a kind of fd (cr/files/fdtable.c), NULL if unknown. */
const struct fd_kind_ops *fd_kind_of(FdKind kind);

/* cr/files/pipe.c: the tree's pipes, saved once each. */
struct pipe_dump *pipe_dump_new(void);
int pipes_dump_all(struct pipe_dump *pd, int dirfd);
int pipes_restore_prepare(int dirfd, bool needed);
bool pipe_known(uint64_t id);
/* After the root is created (it took copies): stasis must not keep pipes open. */
void pipes_close_all(void);

/* cr/files/fhandle.c: file handles. The handle of the inode open at fd (a filesystem that
 * cannot make one: negative errno); an fd of the inode of a handle on device dev. */
int fhandle_of_fd(int fd, ProtobufCBinaryData *handle, int32_t *type);
int fhandle_open(dev_t dev, const void *handle, size_t len, int type, int flags);

/* cr/files/inotify.c: drops the events the restore caused, before the tree runs. */
int inotify_drop_restore_events(pid_t pid, const FdTable *tab);

/* cr/files/ghost.c: deleted files still open or mapped. */
struct ghost_dump *ghost_dump_new(void);
bool ghost_path(const char *link);
int ghost_note(struct ghost_dump *gd, const char *read_path, const char *link, pid_t pid);
int ghosts_dump_all(struct ghost_dump *gd, int dirfd);
int ghosts_restore_prepare(int dirfd, bool needed);
bool ghost_known(uint32_t id);
int ghost_open(uint32_t id, int flags);
void ghosts_close_all(void);

/* cr/files/pidfd.c: a pidfd of a reaped process, made by stasis if some fd needs it. */
int pidfds_restore_prepare(bool needed);
void pidfds_close_all(void);
/* cr/files/sockopts.c: SOL_SOCKET options of the socket at fd of pid that differ from a fresh
 * socket's, saved in e (before any kind looks at it); checked and set on the new socket. */
int sockopts_dump(pid_t pid, int fd, FdEntry *e);
bool sockopts_valid(const FdEntry *e);
int sockopts_restore(int sk, const FdEntry *e);

/* cr/files/mqueue.c: the tree's POSIX message queues, saved once each. */
int mqueues_dump_all(int dirfd);
int mqueues_restore_prepare(int dirfd, bool needed);
bool mqueue_known(uint32_t id);
void mqueues_close_all(void);
void mqueues_unlink_restored(void);

/* cr/files/shared.c: open files shared by several processes of the tree. */
int shared_files_prepare(struct restore_task *tasks, size_t nr_tasks);
int shared_file_fd(pid_t pid, uint32_t fd);
void shared_files_close_all(void);

#endif
