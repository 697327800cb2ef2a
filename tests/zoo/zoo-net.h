/* Network helpers of the zoo's socket programs (after zoo.h). */
#ifndef ZOO_NET_H
#define ZOO_NET_H

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static inline socklen_t zoo_inet_len(int family)
{
	return family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* lo up or down (a socket of the caller's namespace) */
static inline int zoo_set_lo(int up)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ok;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	ok = s >= 0 && !ioctl(s, SIOCGIFFLAGS, &ifr);
	if (ok) {
		ifr.ifr_flags = up ? ifr.ifr_flags | IFF_UP : ifr.ifr_flags & ~IFF_UP;
		ok = !ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	if (s >= 0)
		close(s);
	return ok;
}

/* Into the network namespace of process pid (a corruption: best effort, no error). */
static inline void zoo_enter_netns_of(pid_t pid)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/ns/net", pid);
	int ns = open(p, O_RDONLY | O_CLOEXEC);
	if (ns >= 0) {
		setns(ns, CLONE_NEWNET);
		close(ns);
	}
}

/* An int socket option of fd's (-1 if it cannot be read) */
static inline int zoo_get_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);
	getsockopt(fd, level, name, &v, &len);
	return v;
}

/* An int socket option set on fd, or the program dies */
static inline void zoo_set_int(int fd, int level, int name, int v)
{
	if (setsockopt(fd, level, name, &v, sizeof(v)))
		zoo_die("setsockopt %d/%d on fd %d: %s", level, name, fd, strerror(errno));
}

/* A ping written to stream socket fd, "pong" expected back within 3 s. */
static inline int zoo_ping(int fd)
{
	char b[4];
	for (int i = 0; i < 100; i++) { /* (non-blocking: the peer may not be reading yet) */
		if (send(fd, "ping", 4, MSG_NOSIGNAL) == 4)
			break;
		zoo_sleep_ms(10);
	}
	for (int i = 0; i < 300; i++) {
		ssize_t n = recv(fd, b, 4, MSG_DONTWAIT);
		if (n == 4)
			return !memcmp(b, "pong", 4);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			return 0;
		zoo_sleep_ms(10);
	}
	return 0;
}

/* A ping read from stream socket fd (waiting up to 3 s), "pong" written back. */
static inline int zoo_answer(int fd)
{
	char b[4];
	for (int i = 0; i < 300; i++) {
		ssize_t n = recv(fd, b, 4, MSG_DONTWAIT);
		if (n == 4)
			return !memcmp(b, "ping", 4) && send(fd, "pong", 4, MSG_NOSIGNAL) == 4;
		if (n == 0 || (n < 0 && errno != EAGAIN))
			return 0;
		zoo_sleep_ms(10);
	}
	return 0;
}

/* A TCP connection over loopback of family: *c the client, *s the accepted side. */
static inline void zoo_tcp_loopback_pair(int family, int *c, int *s)
{
	struct sockaddr_storage sa = { .ss_family = family };
	socklen_t len = zoo_inet_len(family);
	int l = socket(family, SOCK_STREAM, 0);
	if (family == AF_INET)
		((struct sockaddr_in *)&sa)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&sa)->sin6_addr = in6addr_loopback;
	if (l < 0 || bind(l, (struct sockaddr *)&sa, len) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sa, &len))
		zoo_die("listener: %s", strerror(errno));
	*c = socket(family, SOCK_STREAM, 0);
	if (*c < 0 || connect(*c, (struct sockaddr *)&sa, len) || (*s = accept(l, NULL, NULL)) < 0)
		zoo_die("connect: %s", strerror(errno));
	close(l);
}

/* Does the stream from `from` to `to` carry what (sent, then read whole within 2 s)? */
static inline int zoo_stream_carries(int from, int to, const char *what)
{
	char buf[64] = "";
	size_t n = strlen(what);
	struct pollfd p = { to, POLLIN, 0 };
	return n <= sizeof(buf) && send(from, what, n, MSG_NOSIGNAL) == (ssize_t)n && poll(&p, 1, 2000) == 1 &&
	       recv(to, buf, n, MSG_WAITALL) == (ssize_t)n && !memcmp(buf, what, n);
}

/* fd sent over unix socket sk with one byte (SCM_RIGHTS); dies if it cannot be. */
static inline void zoo_send_fd(int sk, int fd)
{
	char c = 'f', ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &c, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(sk, &m, 0) != 1)
		zoo_die("send fd %d: %s", fd, strerror(errno));
}

/* The fd that the next message of unix socket sk carries (one byte, SCM_RIGHTS), or -1. */
static inline int zoo_recv_fd(int sk)
{
	char c, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &c, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm;
	int fd = -1;
	if (recvmsg(sk, &m, 0) == 1 && (cm = CMSG_FIRSTHDR(&m)) && cm->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

#endif
