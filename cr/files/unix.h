/*
 * Unix sockets, in layers; no file calls a file above it (the run's state is handed down):
 *   unix.c          the tree's unix sockets: which kind each fd is, sockets.img, the order in
 *                   which restore makes them, and the late step that fills their queues
 *   unix-named.c    sockets made by name: bound, listening, connected one way, external
 *   unix-pair.c     connected pairs (also with a closed peer): saved, made, filled
 *   unix-backlog.c  connections waiting to be accepted
 *   unix-queue.c    receive queues: messages peeked with their files and credentials, sent back
 *   unix-inflight.c files carried by waiting messages (SCM_RIGHTS)
 *   unix-held.c     which sockets are held: by the tree at dump, by stasis at restore
 *   unix-socket.c   one socket made again: type, options, name, shutdown
 *   unix-cred.c     peer credentials (SO_PEERCRED): read, and made again by who connects
 *   unix-diag.c     the kernel's view (NETLINK_SOCK_DIAG)
 *   unix-state.c    the run's state (unix_state_of), reached from every layer
 */
#ifndef STASIS_FILES_UNIX_H
#define STASIS_FILES_UNIX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "files.h"
#include "ino-map.h"

struct restore_tree;

#define TCP_ESTABLISHED_STATE 1
#define TCP_LISTEN_STATE 10

#define UNIX_DIAG_BUF (64u << 10) /* a listener's queue may hold thousands of connections */
#define UNIX_NAME_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

/* Dump: one socket's receive queue, read once (before any process's fds are saved). */
struct unix_queue {
	uint64_t ino;
	pid_t pid;        /* a process holding it (0: carried in flight only) */
	int fd;           /* its fd there; carried: the carried file's id */
	bool read;        /* its messages were read (sockets connected outside the tree are not) */
	UnixMsg **msgs;
	size_t n;
	bool reset;       /* an ECONNRESET waits to be read (stream, seqpacket) */
};

/* A file carried by a waiting message (SCM_RIGHTS). */
struct carried_file {
	int fd;           /* stasis's: dump, the duplicate a peek gave; restore, the file made again */
	uint64_t dev, ino;
	bool is_socket;
	pid_t pid;        /* dump: who holds the socket that carries it (for messages) */
	int via_fd;
	FdEntry *e;       /* dump: its entry, once saved */
};

/* Restore: a socket file made for the restore only, at a name whose file was gone. */
struct unix_file {
	char *path;     /* as the tree sees it; NULL: none */
	dev_t dev;      /* removed only if it is still this file */
	ino_t ino;
	struct made_dir { /* directories of the path that were gone too, made for it, outermost first */
		char *path;
		dev_t dev; /* removed only if it is still this directory (and empty) */
		ino_t ino;
	} *dirs;
	size_t n_dirs;
	char *scratch;  /* or: the scratch root (stasis's) the name was bound in, its file there */
};

/* Restore: a socket stasis made before the tree; every new process inherits it. */
struct held_socket {
	uint64_t ino, pair_id; /* pair_id 0: not one end of a pair; ino 0: its closed end */
	int fd;                /* stasis' own */
	const FdEntry *e;      /* made from this entry (bound sockets), or NULL */
	struct unix_file unlink_later; /* its socket file, made for the restore only */
	bool stand_in;         /* a socket standing at fd until the tree's root has made the real
				  one there (unix_remake_in_root) and stasis took it (unix_take_from_root) */
};

/*
 * Every unix socket of the dumping thread's network namespace, as one listing gave them (the
 * tree is frozen while its fds are dumped): a lookup is a search, not a walk of the kernel's
 * whole table, so that the dump's cost stays linear in the number of sockets.
 */
struct unix_snapshot {
	uint64_t netns;          /* the inode of the namespace listed */
	struct unix_info *socks; /* by inode; listeners with their waiting clients */
	size_t n, cap;
	struct unix_waiting {
		uint64_t client, listener;
	} *waiting;              /* by client */
	size_t nr_waiting;
	bool foreign; /* a namespace no process of the tree is in (unix_diag_add_own_netns) */
};

/* The run's unix sockets (tree_unix_sockets, cr/files/unix.c; unix_state_of: unix-state.c). */
struct unix_state {
	const struct run_ctx *ctx;
	struct restore_tree *rt; /* restore: the tree (its processes' host pids) */
	SocketTable tab; /* dump: pairs, pending connections, files in flight (set up on first use) */
	bool tab_ready;
	struct unix_holder {
		uint64_t ino;
		pid_t pid; /* the first process met holding it, at fd */
		int fd;
	} *held;        /* every socket the tree holds an fd of, read once when needed */
	size_t nr_held, cap_held;
	struct ino_map held_by_ino; /* held[] by inode */
	bool held_read;
	struct unix_snapshot snap; /* dump */
	struct unix_snapshot *nested; /* dump: the network namespaces processes of the tree made */
	size_t nr_nested;
	struct unix_queue *queues; /* dump: every socket of the tree (held or carried); they own
				      their messages, which fd entries and pair ends borrow */
	size_t nr_queues, cap_queues;
	struct ino_map queue_by_ino; /* queues[] by inode */
	char *peek_buf;              /* dump: where queues are peeked into (one datagram's room) */
	size_t cap_pairs;            /* dump: tab.pairs' room */
	struct ino_map pair_by_id;   /* dump: tab.pairs by id */
	FdEntry **borrowers;       /* dump: the fd entries that borrow a queue's messages */
	size_t nr_borrowers;
	struct unix_accept_later {
		uint64_t listener;
		pid_t pid;    /* a process of the tree holding it, at fd (stasis: carried) */
		int fd;
		size_t first; /* its waiting connections tab.pending[first, first + n) are accepted */
		size_t n;     /* at the write to read what their clients wrote (unix-backlog.c) */
	} *to_accept;     /* dump */
	size_t nr_to_accept;
	struct carried_file *carried; /* dump and restore: files in flight, by id */
	size_t nr_carried;

	SocketTable *rst; /* restore: sockets.img, checked */
	const FdEntry **bound; /* restore: the FD_UNIX_BOUND entries stasis makes (processes', in flight) */
	size_t nr_bound;
	struct held_socket *made;
	size_t nr_made;
	struct unix_file dirs_later; /* restore: the directories made for held sockets' files, in the
					order made; removed (if empty) after every file */
	bool filled; /* restore: queues filled once every process existed; stasis let go */
	bool root_connects; /* restore, a tree with a PID namespace of its own: its root makes the
			       connections whose peer pids are the tree's (unix_remake_in_root) */
	bool in_root;       /* restore: running in that root, in the tree's PID namespace */
};

/* The run's unix sockets (restore: their state as made before the tree). */
struct unix_state *unix_state_of(const struct run_ctx *ctx);

/* ---- cr/files/unix-diag.c ---- */

/* The kernel's view of one unix socket (NETLINK_SOCK_DIAG). */
struct unix_info {
	uint64_t ino;
	bool has_peer; /* connected; peer 0: to a connection not accepted yet, or a closed peer */
	uint64_t peer;
	uint32_t shutdown;
	bool named;
	uint32_t state;
	char name[UNIX_NAME_MAX];
	size_t name_len;
	bool has_vfs;            /* bound to a path: the socket file it made */
	uint32_t vfs_ino, vfs_dev;
	uint32_t rqueue, wqueue; /* listening: connections waiting, backlog; else bytes in, buffer out */
	uint32_t *icons; /* with_icons, listening: each waiting connection's client, oldest first
			    (0: closed); malloc'd */
	size_t n_icons;
	bool nested;     /* a socket of a network namespace a process of the tree made */
};

/* The socket ino (icons: a copy of a listener's waiting clients, the caller frees them), from
 * the snapshot (taken on first use, again if the thread is in another network namespace);
 * one the listing missed is asked for alone. */
int unix_look(struct unix_state *ud, uint64_t ino, struct unix_info *ui, bool with_icons);
/*
 * Dump: the unix sockets of a network namespace a process of the tree made (netns/net-nested.c),
 * entered through /proc/member/ns/net and listed once: unix_look and unix_waiting_listener find
 * them there (ui->nested) when the dumping thread's namespace has not the socket.
 */
int unix_diag_add_netns(struct run_ctx *ctx, pid_t member);
/*
 * Dump: the unix sockets of the network namespace socket fd of pid was made in, when that is
 * no namespace listed yet: a socket the tree was given from another one (a connection handed
 * over by --inherit-fd at an earlier restore, say). 0 when listed now, -ENOENT when there is
 * nothing more to list, else -errno.
 */
int unix_diag_add_own_netns(struct unix_state *ud, pid_t pid, int fd);
/* The listener whose queue the client waits in: 1 (found), 0 (none), <0 (failed). */
int unix_waiting_listener(struct unix_state *ud, uint64_t client, uint64_t *listener);
void unix_snapshot_free(struct unix_snapshot *snap);
/* Every unix socket of network namespace netns (nsfd: a file of it, -1: the thread's), with
 * listeners' waiting clients; snap is freed first. */
int unix_snapshot_of_netns(struct unix_snapshot *snap, uint64_t netns, int nsfd);
/* Socket ino in snap, else NULL. */
const struct unix_info *unix_snapshot_find(const struct unix_snapshot *snap, uint64_t ino);
/* One SOCK_DIAG_BY_FAMILY answer (of a dump, say) into ui. */
struct nlmsghdr;
int unix_diag_parse(const struct nlmsghdr *h, struct unix_info *ui);
/* unix-socket.c. The socket file the kernel says ui is bound to (its own dev_t: major above
 * bit 20)? */
struct stat;
bool unix_is_its_file(const struct stat *st, const struct unix_info *ui);
/* A socket name for messages: a path, or an abstract name shown with a leading '@'. */
const char *unix_name(const char *name, size_t name_len, char *buf, size_t len);

/* ---- cr/files/unix-cred.c ---- */

/* Peer credentials: pid (as the tree's PID namespace numbers it), euid, egid. */
struct unix_cred {
	uint32_t pid, uid, gid;
};

/* Dump: socket s's SO_PEERCRED (pid 0: not known to the tree's namespace); false if it has none. */
bool unix_cred_read(const struct run_ctx *ctx, int s, struct unix_cred *c);
void unix_end_cred_set(UnixEnd *end, const struct unix_cred *c);
/* Restore: the end's saved peer credentials in *c (returned), or NULL if none were saved. */
const struct unix_cred *unix_end_cred(const UnixEnd *end, struct unix_cred *c);
void unix_listener_cred_set(FdEntry *e, const struct unix_cred *c);
/* Restore: the listener's saved credentials (of its listen()) in *c (returned), or NULL. */
const struct unix_cred *unix_listener_cred(const FdEntry *e, struct unix_cred *c);
/* listen(2) on s by a process with as's credentials (NULL: stasis): its and its clients' peer's. */
int unix_listen_as(const struct run_ctx *ctx, int s, int backlog, const struct unix_cred *as);
/*
 * Restore: the group of item i among n: those not taken whose listen()'s credentials (as
 * cred_of tells them; false: none) equal i's, i first, marked taken, their indexes into at[]
 * in order, *as their credentials; how many (0: i is taken or has none).
 */
size_t unix_cred_group(size_t n, size_t i, bool *taken,
		       bool (*cred_of)(void *arg, size_t j, struct unix_cred *c), void *arg,
		       size_t *at, struct unix_cred *as);
/* listen(2) on each of n sockets, in order, by one process with as's credentials (unix_run_as);
 * on failure, *failed is the socket whose listen() failed (the ones before it listen). */
int unix_listen_all_as(const struct run_ctx *ctx, const int *s, const int *backlog, size_t n,
		       const struct unix_cred *as, size_t *failed);
/*
 * In the new task, once its fds have their numbers (fd_kind_unix_bound's settle): a listener
 * whose listen() was this very process's, in a tree with a PID namespace of its own (where
 * no helper of stasis can have its pid), listens again as it did (its euid and egid for the
 * call), so that those who connect read its pid, not 0.
 */
int unix_relisten_in_task(const struct restore_task *t, const FdEntry *e);
/*
 * Restore: fn(arg) run by a helper process with as's pid, euid and egid (the kernel takes a
 * connection's peer credentials from its caller), sharing stasis's file table, with root_fd as
 * its root (-1: stasis's) and dir as working directory; arg (arg_size bytes) is copied back.
 * In the tree's root (in_root): a helper of the tree's PID namespace sharing the root's file
 * table, or, for pid 1, a thread of the root itself.
 */
int unix_run_as(const struct run_ctx *ctx, const struct unix_cred *as, int root_fd, const char *dir,
		int (*fn)(void *arg), void *arg, size_t arg_size);

/* ---- cr/files/unix-socket.c ---- */

/* SO_TYPE and SO_PASSCRED, read on a copy of the task's fd. */
int sock_options(pid_t pid, int fd, int *type, int *passcred);
/* A name (sun_path bytes) as an address; -EINVAL if empty or too long. */
int unix_addr(const void *name, size_t len, struct sockaddr_un *sa, socklen_t *salen);
int unix_saved_addr(const FdEntry *e, struct sockaddr_un *sa, socklen_t *len);
/*
 * Dump: where a socket's path name is (pid: a process of the tree, its holder if any;
 * tree_root: the tree's root process): *gone if its socket file was removed (or replaced)
 * since, else the file in *file; a relative name's directory in *dir (malloc'd), if found.
 * An absolute name of a holder chroot()ed away from the tree's root is looked for in the
 * tree's root too (bound before the chroot); one found in the chroot is refused (-ENOTSUP,
 * said). With renamed: a socket file renamed since in the name's directory is found there, its
 * path (the name's, its last part changed) in *renamed (malloc'd). -ENOMEM.
 */
int unix_name_place(pid_t pid, pid_t tree_root, const struct unix_info *ui, bool *gone, char **dir,
		    struct stat *file, char **renamed);
/*
 * Binds s to a saved name as the tree sees it (ctx's tree root): a path in dir (relative
 * names); a stale socket file at a path is replaced. gone: the name is kept, its file is not:
 * *made is a file made at its path for restore to remove once done, or, if another file took
 * that path, a scratch root the name was bound in (made->scratch), removed with it. Directories of its path that were gone are made for it too
 * (made->dirs), and removed with the file; a failed bind leaves nothing made.
 */
int unix_bind_name(const struct run_ctx *ctx, int s, const void *name, size_t len, bool gone,
		   const char *dir, struct unix_file *made);
/* In a scratch root's child (chrooted there): the directories of a path, made (0700) where missing. */
int unix_scratch_dirs(char *path);
/*
 * Runs fn(arg) in a child whose root is scratch (a scratch root a name was bound in), or else
 * the tree's with dir as working directory (tree_run): where a socket's name reaches it.
 */
int unix_run_at(const struct run_ctx *ctx, const char *scratch, const char *dir, int (*fn)(void *arg),
		void *arg);
/*
 * Connects s to a name as the tree sees it (a relative name: in dir), or in scratch (unix_run_at);
 * as: by a process with these credentials (unix_run_as), the accepted socket's peer's.
 */
int unix_connect_name(const struct run_ctx *ctx, int s, const void *name, size_t len, const char *dir,
		      const char *scratch, const struct unix_cred *as);
/* Connects each of n sockets to a name, in order, as unix_connect_name does without as: one
 * helper process for them all (a listener's waiting connections may be thousands). */
int unix_connect_all(const struct run_ctx *ctx, const int *s, size_t n, const void *name, size_t len,
		     const char *dir, const char *scratch);
/* Removes the file made for a name, if it is still that file, then its directories made, and forgets them. */
void unix_file_remove(const struct run_ctx *ctx, struct unix_file *f);
/* Forgets the file made for a name (and its directories) without removing them. */
void unix_file_forget(struct unix_file *f);
/* Restore: sock_file_renamed, if any, is a name in sock_name's directory (image check). */
bool unix_renamed_valid(const FdEntry *e);
/*
 * Restore: the file of a socket that was renamed since its bind (sock_file_renamed) is
 * renamed so once every connection to its name is made (a stale socket file there, the
 * dumped socket's, replaced). 0 or -errno (said).
 */
int unix_name_file_rename(const struct run_ctx *ctx, const FdEntry *e);
/* A socket of the entry's type, flags and SO_PASSCRED, bound to its name (listening if it was). */
int unix_bind_saved(const struct run_ctx *ctx, const FdEntry *e, struct unix_file *made);
/*
 * Restore: n saved listeners whose listen() as made (bound to a name whose file was there at
 * the dump, listening), bound and listening by one helper process with as's credentials
 * (unix_run_as; the binds with stasis's file system ids, as unix_bind_saved's), their socket
 * files' owner and mode set: s[i] each one's socket, -1 for one that failed (nothing said:
 * unix_bind_saved makes it again, and says why). -errno if the helper could not run at all.
 */
int unix_bind_listen_all(const struct run_ctx *ctx, const FdEntry *const *es, size_t n,
			 const struct unix_cred *as, int *s);
/* The owner and mode of a socket file, as saved. */
struct unix_file_attrs {
	bool has_owner;
	uint32_t uid, gid;
	bool has_mode;
	uint32_t mode;
};
/* The file of name (bound again in dir, if relative) given a's owner and mode. */
int unix_name_file_set(const struct run_ctx *ctx, const char *dir, const ProtobufCBinaryData *name,
		       const struct unix_file_attrs *a);
/* A socket of the entry's type connected to sock_name. */
int unix_connect_saved(const struct run_ctx *ctx, const FdEntry *e);
/* A socket of the entry's type, neither bound nor connected. */
int unix_fresh_socket(const FdEntry *e);
int unix_apply_shutdown(int s, uint32_t bits);
/* A duplicate of a held socket with the saved O_NONBLOCK, for the new task. */
int unix_dup_held(int held, unsigned flags);

/* ---- cr/files/unix-held.c ---- */

/* Every unix socket the tree's processes hold (read once; the tree is frozen). */
int unix_read_tree_sockets(struct unix_state *ud, struct dump_task *t);
/* Does a process of the tree hold the socket, or a waiting message carry it? (<0: said) */
int unix_tree_holds(struct unix_state *ud, struct dump_task *t, uint64_t ino);
/* A socket connected to something outside the tree: external (--ext-unix-sk), or refused. */
int unix_dump_outside(struct dump_task *t, const struct fd_probe *p, FdEntry *e, const char *what);
/* Restore: sockets stasis made before the tree, by inode; every new process inherits them. */
int unix_hold(struct unix_state *st, uint64_t ino, uint64_t pair_id, int fd, const FdEntry *e);
/* The end of the pair whose inode is ino (0: its closed end), or -1. */
int unix_held_end(const struct unix_state *st, uint64_t pair_id, uint64_t ino);
/* A held listener of the type bound to the name (*e: its entry), or -1. */
int unix_held_listener(const struct unix_state *st, int type, const void *name, size_t len,
		       const FdEntry **e);
/* Restore, root_connects: a socket of the type stands in for the one of (pair_id, ino), held. */
int unix_hold_stand_in(struct unix_state *st, uint64_t ino, uint64_t pair_id, int type);
/* In the tree's root: *s put at the number of the stand-in of (pair_id, ino), and closed (-1). */
int unix_held_replace(const struct unix_state *st, uint64_t pair_id, uint64_t ino, int *s);
/* Stasis lets go of one held socket. */
void unix_held_drop(struct unix_state *st, int fd);
/* The held socket's file to remove when stasis lets go of it (*f is taken). */
void unix_held_unlink_later(struct unix_state *st, uint64_t ino, struct unix_file *f);
/* That file (or scratch root), if the socket is held: a name whose file was gone is reachable only there. */
const struct unix_file *unix_held_file(const struct unix_state *st, uint64_t ino);
/* Its scratch root, if it was bound in one (NULL: its name reaches it in the tree's root). */
const char *unix_held_scratch(const struct unix_state *st, uint64_t ino);
int unix_held_fd(const struct unix_state *st, uint64_t ino);
/* A held socket of the type bound to the address (getsockname), or -1. */
int unix_held_by_name(const struct unix_state *st, int type, const struct sockaddr_un *sa,
		      socklen_t len);
/* Stasis lets go of every socket it holds, and removes the files made for the restore only. */
void unix_close_held(struct unix_state *st);

/* ---- cr/files/unix-inflight.c ---- */

/* Dump: the id of a file a peek gave (fd is taken: kept, or closed if already known). */
int unix_carried_note(struct unix_state *ud, int fd, pid_t pid, int via_fd);
/* Dump: a process of the tree holds carried file id: 1 and *e names its fd; 0: none. */
int unix_carried_held_by_tree(struct unix_state *ud, struct dump_task *t, uint32_t id, FdEntry *e);
/* Dump: a carried file no process holds, saved by its kind (not sockets: unix.c's). */
int unix_carried_dump_file(struct unix_state *ud, struct dump_task *t, uint32_t id, FdEntry *e);
/* Dump, once every process is saved: what restore needs of the files in flight is there. */
int unix_carried_check(const struct unix_state *ud, struct dump_task *tasks, size_t nr_tasks);
/* Restore: the files in flight of sockets.img, checked. */
int unix_carried_validate(struct unix_state *st, const struct restore_task *tasks, size_t nr_tasks);
/* Restore, in stasis before the tree: the files only messages hold, made again. */
int unix_carried_open(struct unix_state *st, struct run_ctx *ctx);
/* Restore, the tree made: the files processes hold, taken from them; epolls' targets. */
int unix_carried_take(struct unix_state *st);
void unix_carried_close(struct unix_state *st);

/* ---- cr/files/unix-queue.c ---- */

/* Dump: the queue of socket s (pid's fd, or carried file fd), read once into q. */
int unix_queue_read(struct unix_state *ud, int s, const struct unix_info *ui, struct unix_queue *q);
/* Dump: the queue read for the socket (NULL if none). */
struct unix_queue *unix_queue_of(struct unix_state *ud, uint64_t ino);
/* Restore: the messages are well formed (n_carried files in flight). */
bool unix_msgs_valid(UnixMsg *const *msgs, size_t n, size_t n_carried, int type);
/* Restore: the messages sent from socket from (to the address, if given), in order. */
int unix_queue_send(const struct unix_state *st, int from, const struct sockaddr_un *to,
		    socklen_t to_len, UnixMsg *const *msgs, size_t n);
/*
 * Restore: datagrams sent to a named receiver, each from a socket of its sender's name, by a
 * child in the tree's root and network namespace (net_ns).
 */
int unix_queue_send_named(const struct unix_state *st, const FdEntry *receiver, int net_ns);

/* ---- cr/files/unix-named.c ---- */

/* A listener, or a socket bound to a name and not connected. */
int unix_dump_bound(struct unix_state *ud, struct dump_task *t, const struct fd_probe *p, FdEntry *e,
		    const struct unix_info *ui);
/* A datagram socket connected to a socket of the tree that is not connected back (pi). */
int unix_dump_one_way(struct unix_state *ud, struct dump_task *t, const struct fd_probe *p,
		      FdEntry *e, const struct unix_info *ui, const struct unix_info *pi);
/* Connected to a peer nobody of the tree holds (pi, if pi_ok): by name, external or refused. */
int unix_dump_peer_outside(struct dump_task *t, const struct fd_probe *p, FdEntry *e,
			   const struct unix_info *ui, const struct unix_info *pi, bool pi_ok);
/* Neither bound nor connected. */
int unix_dump_fresh(struct dump_task *t, const struct fd_probe *p, FdEntry *e);
bool unix_bound_valid(const FdEntry *e, size_t n_carried);
/* Restore: the entry's socket made and held (one-way ones once their peers are). */
int unix_make_bound(struct unix_state *st, const FdEntry *e);
/*
 * Restore: the listeners among the bound entries not made yet (made[i]: bound[i] is), those
 * whose listen() had the same pid and ids by one helper process for them all
 * (unix_bind_listen_all: a server's master may hold dozens), made and held, made[] set; a
 * listener alone of its kind, or one that failed, is left to unix_make_bound.
 */
int unix_make_listeners(struct unix_state *st, bool *made);

/* ---- cr/files/unix-pair.c ---- */

/* pi: the peer's view; NULL: the peer is closed. */
int unix_dump_pair(struct unix_state *ud, struct dump_task *t, const struct fd_probe *p, FdEntry *e,
		   const struct unix_info *ui, const struct unix_info *pi);
bool unix_pairs_valid(const SocketTable *tab, size_t n_carried);
/* Restore, before the tree: every pair made (accepted ones through a held listener); those
 * the tree's root makes (unix_pair_by_root) only stand in. */
int unix_make_pairs(struct unix_state *st);
/* Made by the tree's root (root_connects): a peer pid of the tree, nothing made for a name. */
bool unix_pair_by_root(const struct unix_state *st, const UnixPair *u);
/* In the tree's root: those pairs made again, each end at its stand-in's number. */
int unix_remake_pairs(struct unix_state *st);
/* Restore, the tree made: every pair's queues filled, closed ends closed, shutdowns applied. */
int unix_fill_pairs(struct unix_state *st);

/* ---- cr/files/unix-backlog.c ---- */

/* Restore: the connections to listener l are made by the tree's root (root_connects), its
 * name reaching it there (not bound in a scratch root of stasis's). */
bool unix_connects_in_root(const struct unix_state *st, const FdEntry *l);
int unix_dump_listener_queue(struct unix_state *ud, struct dump_task *t, const struct fd_probe *p,
			     FdEntry *e, const struct unix_info *ui);
int unix_dump_pending_client(struct unix_state *ud, struct dump_task *t, const struct fd_probe *p,
			     FdEntry *e, const struct unix_info *ui);
/*
 * Dump, the last step before sockets.img is written (every process saved): the waiting
 * connections whose clients wrote into them (or closed them) are accepted from a copy of their
 * listener and their queues read. Past this point the tree has lost them: only its kill ends
 * the dump.
 */
int unix_read_waiting_data(struct unix_state *ud);
/* Restore, before the tree, every listener made: the connections waiting in each, in order
 * (root_connects: their clients stand in, and the tree's root connects them, in_root). */
int unix_restore_pending(struct unix_state *st);

#endif
