/* What cr/files/inet.c, inet-tcp.c, inet-opts.c and inet-addr.c share: IPv4/IPv6 sockets. */
#ifndef STASIS_FILES_INET_H
#define STASIS_FILES_INET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "files.h"

/* inet-addr.c. An address of the image as a socket address of the family: false if the
 * image's is wrong. */
bool inet_sockaddr(uint32_t family, const ProtobufCBinaryData *addr, uint32_t port,
		   struct sockaddr_storage *sa, socklen_t *len);
/* "1.2.3.4:80", "[::1]:80" of an image's address, for messages. */
const char *inet_addr_str(uint32_t family, const ProtobufCBinaryData *addr, uint32_t port,
			  char *buf, size_t len);
/* A socket address into the image's bytes and port: 1; 0 if not of the family; -ENOMEM. */
int inet_from_sockaddr(const struct sockaddr_storage *sa, ProtobufCBinaryData *addr,
			uint32_t *port);

/* inet-opts.c. socket(family, type | SOCK_CLOEXEC, protocol), or -errno. A ping socket the caller's
 * groups may not make in its network namespace (net.ipv4.ping_group_range: a container's
 * root group, as the engines set it, is another group on the host) is made with the range's
 * first group as the calling thread's effective one for the moment. */
int inet_socket(int family, int type, int protocol);
/* inet-opts.c: TCP, or MPTCP (IPPROTO_MPTCP: a Go program's listeners by default since Go
 * 1.24), of which stasis keeps the sockets that are not connected: fresh, bound or listening. */
bool inet_tcp_like(uint32_t protocol);
/* inet-opts.c: is a connection of local port and address addr (the kernel's 16 bytes) one of
 * TCP listener listener's: the same port, its address or any? */
bool inet_listener_has(const InetSocket *listener, uint16_t port, const uint8_t addr[16]);
/* inet-opts.c: the options of sk that differ from a fresh socket's of its kind. */
int inet_opts_dump(int sk, InetSocket *in);
bool inet_opts_valid(const InetSocket *in);
/* Options of a level (IPPROTO_TCP after the connection is made), or every other level. */
int inet_opts_restore(int sk, const InetSocket *in, bool tcp_level);
/* SO_REUSEADDR as saved: turning repair mode off clears it. */
int inet_reuse_restore(int sk, const InetSocket *in);
/* Bound to the saved address with the port's reuse forced (as TCP repair does), so that
 * connections of the dumped tree waiting out TIME_WAIT do not keep it; to an address its
 * namespace lacks with IP_FREEBIND (as it was bound, or said: pid's fd). */
int inet_bind_saved(int sk, const InetSocket *in, pid_t pid, unsigned fd);
/* The multicast groups sk joined (found among the namespace's groups, /proc/net/igmp*). */
int inet_mcast_dump(int sk, InetSocket *in);
bool inet_mcast_valid(const InetSocket *in);
int inet_mcast_restore(int sk, const InetSocket *in);

/* inet-timewait.c: destroys a TIME_WAIT socket of exactly the connection's addresses and
 * ports (src -> dst) in the caller's network namespace: 1 if there was one, 0 if none, <0. */
int inet_timewait_clear(const InetSocket *in);
/* The connection of in's addresses, made in repair mode by this process, aborted (SOCK_DESTROY). */
int inet_ended_abort(const InetSocket *in);

/* inet-raw.c. Raw and ping sockets: connect() sets a peer that getpeername() does not tell (no
 * port: ENOTCONN), so it is read from the table of their kind in pid's network namespace
 * (/proc/PID/net/raw, raw6, icmp, icmp6), found by in's inode: 1 (in connected to it), 0 (not
 * connected), -ENOENT (not in the table), <0. */
int inet_table_peer(pid_t pid, InetSocket *in);

/* inet-raw.c: a raw socket's state (bound, connected), its multicast groups; 1 (claimed). */
int inet_raw_dump(struct dump_task *t, const struct fd_probe *p, int sk, InetSocket *in);

/* inet-diag.c: which sides of UDP or TCP socket in (its inode; sk, a copy of it) shutdown()
 * closed (TCP: the read side; the write side is its state), and TCP socket in's TCP_MD5SIG
 * keys, from the kernel's listing. */
int inet_shutdown_dump(const struct run_ctx *ctx, int sk, InetSocket *in);
int inet_md5_keys_dump(const struct run_ctx *ctx, int sk, InetSocket *in);
/* inet-diag.c: in *n, the connections being set up (SYN_RECV) for TCP listener listener (sk, a
 * copy of it): same local port, its address or any; from one listing per namespace and family. */
#define TCP_NEW_SYN_RECV_STATE 12 /* (the kernel's request sockets; no uapi name) */
int inet_syn_recv_count(const struct run_ctx *ctx, int sk, const InetSocket *listener, unsigned *n);
/* inet-tcp.c: are in's TCP_MD5SIG keys whole (TCP; address, prefix and key lengths)? */
bool inet_md5_keys_valid(const InetSocket *in);

/* inet-tcp.c */
int inet_tcp_dump(struct dump_task *t, const struct fd_probe *p, int sk, InetSocket *in);
int inet_tcp_validate(const struct restore_task *t, const FdEntry *e);
/* sk: new, with the options of every level but TCP's set. */
int inet_tcp_open(struct restore_task *t, const FdEntry *e, int sk);
int inet_tcp_ready(const struct restore_task *t, const FdEntry *e);
int inet_tcp_finish(const struct restore_task *t, const FdEntry *e);


#endif
