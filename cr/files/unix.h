/*
 * Unix sockets, in layers: unix.c (the tree's unix sockets: which kind each fd is, sockets.img,
 * the order of making them) uses unix-backlog.c (connections not accepted yet), which, like
 * unix.c, uses the files below it: unix-held.c (which sockets are held, by the tree at dump and
 * by stasis at restore), unix-socket.c (one socket made again) and unix-diag.c (the kernel's
 * view). No file calls a file above it: the run's state is handed down.
 */
#ifndef STASIS_FILES_UNIX_H
#define STASIS_FILES_UNIX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "files.h"

#define TCP_ESTABLISHED_STATE 1
#define TCP_LISTEN_STATE 10

#define UNIX_DIAG_BUF (64u << 10) /* a listener's queue may hold thousands of connections */

/* Restore: a socket stasis made before the tree; every new process inherits it. */
struct held_socket {
	uint64_t ino, pair_id; /* pair_id 0: not one end of a pair */
	int fd;                /* stasis' own */
};

/* The run's unix sockets (tree_unix_sockets, cr/files/unix.c). */
struct unix_state {
	SocketTable tab; /* dump: pairs and pending connections (initialised on first use) */
	bool tab_ready;
	uint64_t *seen; /* ends met in the tree (their queues are peeked then) */
	size_t nr_seen;
	uint64_t *held; /* every socket inode the tree holds an fd of, read once when needed */
	size_t nr_held;
	bool held_read;

	SocketTable *rst; /* restore: sockets.img, checked */
	struct held_socket *made;
	size_t nr_made;
};

/* ---- cr/files/unix-diag.c ---- */

/* The kernel's view of one unix socket (NETLINK_SOCK_DIAG). */
struct unix_info {
	uint64_t ino;
	bool has_peer; /* connected; peer 0: to a connection not accepted yet, or a closed peer */
	uint64_t peer;
	uint32_t shutdown;
	bool named;
	uint32_t state;
	char name[sizeof(((struct sockaddr_un *)0)->sun_path)];
	size_t name_len;
	uint32_t rqueue, wqueue; /* listening: connections waiting, backlog; else bytes in, buffer out */
	uint32_t *icons; /* with_icons, listening: each waiting connection's client, oldest first
			    (0: closed); malloc'd */
	size_t n_icons;
};

int sock_diag_unix(uint64_t ino, struct unix_info *ui, bool with_icons);
/* One SOCK_DIAG_BY_FAMILY answer (of a dump, say) into ui. */
struct nlmsghdr;
int unix_diag_parse(const struct nlmsghdr *h, struct unix_info *ui);
/* The listener whose queue the client waits in: 1 (found), 0 (none), <0 (failed). */
int unix_find_listener(uint64_t client, uint64_t *listener);
/* A socket name for messages: a path, or an abstract name shown with a leading '@'. */
const char *unix_name(const char *name, size_t name_len, char *buf, size_t len);

/* ---- cr/files/unix-socket.c ---- */

/* SO_TYPE and SO_PASSCRED, read on a copy of the task's fd. */
int sock_options(pid_t pid, int fd, int *type, int *passcred);
/* The saved name as an address. */
int unix_saved_addr(const FdEntry *e, struct sockaddr_un *sa, socklen_t *len);
/* A new socket of the saved type, flags and SO_PASSCRED, and the saved name as an address. */
int unix_named_socket(const FdEntry *e, struct sockaddr_un *sa, socklen_t *len);
/* A bound socket of the saved type, options and name; listening if it was. */
int unix_bind_saved(const FdEntry *e);
int unix_apply_shutdown(int s, uint32_t bits);
/* A duplicate of a held socket with the saved O_NONBLOCK, for the new task. */
int unix_dup_held(int held, unsigned flags);

/* ---- cr/files/unix-held.c ---- */

/* Does a process of the tree hold the socket? (<0: cannot tell, said) */
int unix_tree_holds(struct unix_state *ud, struct dump_task *t, uint64_t ino);
/* A socket connected to something outside the tree: external (--ext-unix-sk), or refused. */
int unix_dump_outside(struct dump_task *t, const struct fd_probe *p, FdEntry *e, const char *what);
/* Restore: sockets stasis made before the tree, by inode; every new process inherits them. */
int unix_hold(struct unix_state *st, uint64_t ino, uint64_t pair_id, int fd);
int unix_held_fd(const struct unix_state *st, uint64_t ino);

/* ---- cr/files/unix-backlog.c ---- */

int unix_dump_listener_queue(struct unix_state *ud, struct dump_task *t, const struct fd_probe *p,
			     FdEntry *e, const struct unix_info *ui);
int unix_dump_pending_client(struct unix_state *ud, struct dump_task *t, const struct fd_probe *p,
			     FdEntry *e, const struct unix_info *ui);
int unix_restore_pending(struct unix_state *st, const struct restore_task *tasks, size_t nr_tasks);

#endif
