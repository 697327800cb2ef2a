/*
 * udp: UDP sockets over loopback.
 *   fd 60 bound to 127.0.0.1 (SO_RCVBUF set), 3 datagrams waiting (1, 1000, 0 bytes) from
 *         fd 61, which is bound to 127.0.0.1 and connected to fd 60 (IP_TOS 0x20, SO_NO_CHECK:
 *         datagrams without UDP checksums);
 *   fd 62 bound to [::1], connected to fd 63, with 2 datagrams waiting from fd 63 (a
 *         connected socket takes only its peer's datagrams: they must come from fd 63's
 *         address again);
 *   fd 64 bound to 0.0.0.0 with a membership of group 239.1.2.3 on lo;
 *   fd 65 a fresh UDP socket;
 *   fd 66 and fd 67 bound to 127.0.0.1 and connected to each other: 66 shut for sending
 *         (SHUT_WR), 67 for receiving (SHUT_RD) with a datagram from 66 waiting;
 *   fd 68 a UDP-Lite socket with checksum coverage 20 (UDPLITE_SEND_CSCOV) and 24 (RECV).
 * After restore and SIGTERM: each datagram is read again, in order, with its size, content
 * and sender; new datagrams go both ways; the ports and options (fd 68's coverages too) are as before; fd 64 is still
 * a member of the group; fd 66 cannot send (EPIPE); fd 67 gives its datagram, then poll()
 * says POLLRDHUP.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <sys/socket.h>

static struct sockaddr_storage sa60, sa61, sa62, sa63, sa66, sa67;
static const size_t sizes[] = { 1, 1000, 0 };

static int bound(int family, struct sockaddr_storage *sa)
{
	socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int s = socket(family, SOCK_DGRAM, 0);
	memset(sa, 0, sizeof(*sa));
	sa->ss_family = family;
	if (family == AF_INET)
		((struct sockaddr_in *)sa)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)sa)->sin6_addr = in6addr_loopback;
	if (s < 0 || bind(s, (struct sockaddr *)sa, len) || getsockname(s, (struct sockaddr *)sa, &len))
		zoo_die("bind: %s", strerror(errno));
	return s;
}

static socklen_t sa_len(const struct sockaddr_storage *sa)
{
	return sa->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* One datagram of size n and pattern seed from `from`; 1 if so. */
static int take(int fd, size_t n, uint64_t seed, const struct sockaddr_storage *from)
{
	char buf[2000];
	struct sockaddr_storage src = { 0 };
	socklen_t len = sizeof(src);
	ssize_t got = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&src, &len);
	return got == (ssize_t)n && zoo_check_fill(buf, n, seed) < 0 && len == sa_len(from) &&
	       !memcmp(&src, from, len);
}

static void c_queued(ucontext_t *u) { (void)u; char b[2000]; recv(60, b, sizeof(b), MSG_DONTWAIT); }
static void c_v6(ucontext_t *u) { (void)u; char b[2000]; recv(62, b, sizeof(b), MSG_DONTWAIT); }
static void c_group(ucontext_t *u)
{
	(void)u;
	struct ip_mreqn m = { .imr_multiaddr.s_addr = inet_addr("239.1.2.3"), .imr_ifindex = (int)if_nametoindex("lo") };
	setsockopt(64, IPPROTO_IP, IP_DROP_MEMBERSHIP, &m, sizeof(m));
}
static void c_nocheck(ucontext_t *u)
{
	(void)u;
	int off = 0;
	setsockopt(61, SOL_SOCKET, SO_NO_CHECK, &off, sizeof(off));
}
static void c_shutdown(ucontext_t *u)
{
	(void)u;
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	connect(s, (struct sockaddr *)&sa67, sizeof(struct sockaddr_in));
	dup2(s, 66);
	close(s);
}
static const struct zoo_corruption corruptions[] = {
	{ "nocheck", c_nocheck, 0 },
	{ "shutdown", c_shutdown, 0 },
	{ "queued", c_queued, 0 },
	{ "v6", c_v6, 0 },
	{ "group", c_group, 0 },
};

int main(int argc, char **argv)
{
	char buf[2000];
	int rcvbuf = 100000, tos = 0x20, one = 1;
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	int a = bound(AF_INET, &sa60), b = bound(AF_INET, &sa61);
	if (setsockopt(a, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) ||
	    setsockopt(b, IPPROTO_IP, IP_TOS, &tos, sizeof(tos)) ||
	    setsockopt(b, SOL_SOCKET, SO_NO_CHECK, &one, sizeof(one)) || connect(b, (struct sockaddr *)&sa60, sa_len(&sa60)))
		zoo_die("setup: %s", strerror(errno));
	for (size_t i = 0; i < 3; i++) {
		zoo_fill(buf, sizeof(buf), 10 + i);
		if (send(b, buf, sizes[i], 0) != (ssize_t)sizes[i])
			zoo_die("send: %s", strerror(errno));
	}
	zoo_place(a, 60, O_CLOEXEC);
	zoo_place(b, 61, O_CLOEXEC);
	int c = bound(AF_INET6, &sa62), d = bound(AF_INET6, &sa63);
	if (connect(c, (struct sockaddr *)&sa63, sa_len(&sa63)) || connect(d, (struct sockaddr *)&sa62, sa_len(&sa62)))
		zoo_die("connect v6: %s", strerror(errno));
	for (size_t i = 0; i < 2; i++) {
		zoo_fill(buf, sizeof(buf), 20 + i);
		if (send(d, buf, 500, 0) != 500)
			zoo_die("send v6: %s", strerror(errno));
	}
	zoo_place(c, 62, O_CLOEXEC);
	zoo_place(d, 63, O_CLOEXEC);
	int m = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in any = { .sin_family = AF_INET };
	struct ip_mreqn mr = { .imr_multiaddr.s_addr = inet_addr("239.1.2.3"), .imr_ifindex = (int)if_nametoindex("lo") };
	if (m < 0 || bind(m, (struct sockaddr *)&any, sizeof(any)) ||
	    setsockopt(m, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)))
		zoo_die("multicast: %s", strerror(errno));
	zoo_place(m, 64, O_CLOEXEC);
	zoo_place(socket(AF_INET, SOCK_DGRAM, 0), 65, O_CLOEXEC);
	int w = bound(AF_INET, &sa66), r = bound(AF_INET, &sa67);
	if (connect(w, (struct sockaddr *)&sa67, sa_len(&sa67)) || connect(r, (struct sockaddr *)&sa66, sa_len(&sa66)) ||
	    send(w, "r", 1, 0) != 1 || shutdown(w, SHUT_WR) || shutdown(r, SHUT_RD))
		zoo_die("shutdown: %s", strerror(errno));
	zoo_place(w, 66, O_CLOEXEC);
	zoo_place(r, 67, O_CLOEXEC);
	int lite = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE), send_cov = 20, recv_cov = 24;
	if (lite < 0 || setsockopt(lite, IPPROTO_UDPLITE, 10 /* UDPLITE_SEND_CSCOV */, &send_cov, sizeof(int)) ||
	    setsockopt(lite, IPPROTO_UDPLITE, 11 /* UDPLITE_RECV_CSCOV */, &recv_cov, sizeof(int)))
		zoo_die("UDP-Lite: %s", strerror(errno));
	zoo_place(lite, 68, O_CLOEXEC);
	zoo_sleep_ms(50);

	zoo_ready();
	zoo_wait();

	int ok = 1;
	for (size_t i = 0; i < 3; i++)
		ok &= take(60, sizes[i], 10 + i, &sa61);
	CHECK("queued", ok && recv(60, buf, 1, MSG_DONTWAIT) < 0, "the datagrams waiting in fd 60 changed");
	CHECK("v6", take(62, 500, 20, &sa63) && take(62, 500, 21, &sa63) && recv(62, buf, 1, MSG_DONTWAIT) < 0,
	      "the datagrams waiting in fd 62 changed");
	zoo_fill(buf, sizeof(buf), 30);
	CHECK("dgram", send(61, buf, 77, 0) == 77 && (zoo_sleep_ms(20), 1) && take(60, 77, 30, &sa61),
	      "fd 61 cannot send to fd 60 any more");
	CHECK("dgram", send(63, buf, 77, 0) == 77 && (zoo_sleep_ms(20), 1) && take(62, 77, 30, &sa63),
	      "fd 63 cannot send to fd 62 any more");
	int got_tos = 0, got_rcvbuf = 0;
	socklen_t l1 = sizeof(int), l2 = sizeof(int);
	getsockopt(61, IPPROTO_IP, IP_TOS, &got_tos, &l1);
	getsockopt(60, SOL_SOCKET, SO_RCVBUF, &got_rcvbuf, &l2);
	CHECK("options", got_tos == 0x20 && got_rcvbuf == 2 * rcvbuf, "tos %#x rcvbuf %d", got_tos, got_rcvbuf);
	int cov_s = 0, cov_r = 0;
	socklen_t l4 = sizeof(int), l5 = sizeof(int);
	getsockopt(68, IPPROTO_UDPLITE, 10, &cov_s, &l4);
	getsockopt(68, IPPROTO_UDPLITE, 11, &cov_r, &l5);
	CHECK("options", cov_s == 20 && cov_r == 24, "UDP-Lite coverage %d and %d, were 20 and 24", cov_s, cov_r);
	int no_check = 0;
	socklen_t l3 = sizeof(int);
	getsockopt(61, SOL_SOCKET, SO_NO_CHECK, &no_check, &l3);
	CHECK("nocheck", no_check == 1, "fd 61's SO_NO_CHECK is %d, was 1", no_check);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = inet_addr("239.1.2.3") };
	socklen_t len = sizeof(any);
	getsockname(64, (struct sockaddr *)&any, &len);
	to.sin_port = any.sin_port;
	int snd = socket(AF_INET, SOCK_DGRAM, 0);
	struct in_addr lo = { htonl(INADDR_LOOPBACK) };
	setsockopt(snd, IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof(lo));
	CHECK("group", sendto(snd, "m", 1, 0, (struct sockaddr *)&to, sizeof(to)) == 1 && (zoo_sleep_ms(20), 1) &&
			       recv(64, buf, 1, MSG_DONTWAIT) == 1,
	      "fd 64 no longer gets the group's datagrams");
	close(snd);
	ssize_t sent = send(66, "x", 1, MSG_NOSIGNAL);
	CHECK("shutdown", sent < 0 && errno == EPIPE, "fd 66, shut for sending, sent: %s",
	      sent < 0 ? strerror(errno) : "1 byte");
	ssize_t r1 = recv(67, buf, sizeof(buf), MSG_DONTWAIT);
	struct pollfd pf = { .fd = 67, .events = POLLIN | POLLRDHUP };
	CHECK("shutdown", r1 == 1 && poll(&pf, 1, 0) == 1 && (pf.revents & POLLRDHUP),
	      "fd 67, shut for receiving, gave %zd bytes (expected 1), then poll %#x (expected POLLRDHUP)", r1, pf.revents);
	return zoo_finish("queued v4/v6 with senders, connected, multicast, shut down");
}
