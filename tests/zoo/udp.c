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
 *   fd 68 a UDP-Lite socket with checksum coverage 20 (UDPLITE_SEND_CSCOV) and 24 (RECV);
 *   fd 69 bound to 0.0.0.0 with IP_PKTINFO, IP_RECVTOS and IP_RECVTTL on (as a DNS server
 *         answers from the address it was asked at): "to5" waits, sent by x to 127.0.0.5 with
 *         TOS 0x28 and TTL 17, then "late" from y to 127.0.0.1;
 *   fd 70 bound to 127.0.0.1: "late" from y waits, then fd 70 connected to x (a client that
 *         learnt its server from an answer: what came from others before stays);
 *   fd 71 bound to 127.0.0.1 with IP_RECVERR: it sent to a closed port (ECONNREFUSED pending,
 *         an ICMP error in its error queue), then "after" came from y (the error is not kept:
 *         the dump says so; the datagram is).
 * After restore and SIGTERM: each datagram is read again, in order, with its size, content
 * and sender; new datagrams go both ways; the ports and options (fd 68's coverages too) are as before; fd 64 is still
 * a member of the group; fd 66 cannot send (EPIPE); fd 67 gives its datagram, then poll()
 * says POLLRDHUP; fd 69 gives "to5" from x, sent to 127.0.0.5, TOS 0x28, TTL 17, then "late"
 * from y, to 127.0.0.1; fd 70 gives "late" from y; fd 71 gives "after" (past its error, if
 * it still has one).
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
static struct sockaddr_storage sa_x, sa_y;
static void c_info(ucontext_t *u)
{
	(void)u;
	char b[64];
	recv(69, b, sizeof(b), MSG_DONTWAIT);
	recv(70, b, sizeof(b), MSG_DONTWAIT);
}

static char info_seen[200];

/* The next datagram of fd 69: its bytes, sender, destination, TOS and TTL as expected? What it
 * was in info_seen. */
static int take_info(const char *want, const struct sockaddr_storage *from, const char *dst, int tos, int ttl)
{
	char buf[64] = "", ctl[256];
	struct sockaddr_in src = { 0 };
	struct iovec iov = { buf, sizeof(buf) - 1 };
	struct msghdr mh = { .msg_name = &src, .msg_namelen = sizeof(src), .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	ssize_t n = recvmsg(69, &mh, MSG_DONTWAIT);
	snprintf(info_seen, sizeof(info_seen), "'%s' (%zd) from %s:%d (expected port %d)", buf, n, inet_ntoa(src.sin_addr),
		 ntohs(src.sin_port), ntohs(((const struct sockaddr_in *)from)->sin_port));
	if (n != (ssize_t)strlen(want) || strcmp(buf, want) || memcmp(&src, from, sizeof(src)))
		return 0;
	int got_tos = -1, got_ttl = -1;
	char got_dst[32] = "";
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != IPPROTO_IP)
			continue;
		if (c->cmsg_type == IP_PKTINFO)
			inet_ntop(AF_INET, &((struct in_pktinfo *)CMSG_DATA(c))->ipi_addr, got_dst, sizeof(got_dst));
		else if (c->cmsg_type == IP_TOS)
			got_tos = *(unsigned char *)CMSG_DATA(c);
		else if (c->cmsg_type == IP_TTL)
			memcpy(&got_ttl, CMSG_DATA(c), sizeof(int));
	}
	snprintf(info_seen, sizeof(info_seen), "'%s' to %s, TOS %#x, TTL %d", buf, got_dst, got_tos, got_ttl);
	return !strcmp(got_dst, dst) && got_tos == tos && got_ttl == ttl;
}

static const struct zoo_corruption corruptions[] = {
	{ "info", c_info, 0 },
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
	int srv = socket(AF_INET, SOCK_DGRAM, 0), x = bound(AF_INET, &sa_x), y = bound(AF_INET, &sa_y), ttl = 17;
	struct sockaddr_in at = { .sin_family = AF_INET };
	socklen_t alen = sizeof(at);
	tos = 0x28;
	if (srv < 0 || setsockopt(srv, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) ||
	    setsockopt(srv, IPPROTO_IP, IP_RECVTOS, &one, sizeof(one)) ||
	    setsockopt(srv, IPPROTO_IP, IP_RECVTTL, &one, sizeof(one)) || bind(srv, (struct sockaddr *)&at, alen) ||
	    getsockname(srv, (struct sockaddr *)&at, &alen) || setsockopt(x, IPPROTO_IP, IP_TOS, &tos, sizeof(tos)) ||
	    setsockopt(x, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)))
		zoo_die("fd 69: %s", strerror(errno));
	at.sin_addr.s_addr = inet_addr("127.0.0.5");
	if (sendto(x, "to5", 3, 0, (struct sockaddr *)&at, alen) != 3)
		zoo_die("to 127.0.0.5: %s", strerror(errno));
	at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	zoo_sleep_ms(20);
	struct sockaddr_storage sa70;
	int late = bound(AF_INET, &sa70);
	if (sendto(y, "late", 4, 0, (struct sockaddr *)&at, alen) != 4 ||
	    sendto(y, "late", 4, 0, (struct sockaddr *)&sa70, sizeof(struct sockaddr_in)) != 4)
		zoo_die("from y: %s", strerror(errno));
	zoo_sleep_ms(20);
	if (connect(late, (struct sockaddr *)&sa_x, sizeof(struct sockaddr_in)))
		zoo_die("connect fd 70: %s", strerror(errno));
	close(x);
	close(y);
	zoo_place(srv, 69, O_CLOEXEC);
	zoo_place(late, 70, O_CLOEXEC);
	struct sockaddr_storage sa71, closed;
	int e71 = bound(AF_INET, &sa71), gone = bound(AF_INET, &closed);
	close(gone); /* its port: closed */
	if (setsockopt(e71, IPPROTO_IP, IP_RECVERR, &one, sizeof(one)) ||
	    sendto(e71, "?", 1, 0, (struct sockaddr *)&closed, sizeof(struct sockaddr_in)) != 1)
		zoo_die("fd 71: %s", strerror(errno));
	zoo_sleep_ms(20);
	struct sockaddr_storage sa_z;
	y = bound(AF_INET, &sa_z);
	if (sendto(y, "after", 5, 0, (struct sockaddr *)&sa71, sizeof(struct sockaddr_in)) != 5)
		zoo_die("to fd 71: %s", strerror(errno));
	close(y);
	zoo_place(e71, 71, O_CLOEXEC);
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
	CHECK("info", take_info("to5", &sa_x, "127.0.0.5", 0x28, 17) && take_info("late", &sa_y, "127.0.0.1", 0, 64) &&
			      recv(69, buf, 1, MSG_DONTWAIT) < 0,
	      "fd 69's datagrams are not \"to5\" (from x, to 127.0.0.5, TOS 0x28, TTL 17) then \"late\" (from y): %s",
	      info_seen);
	ssize_t n71 = -1;
	for (int i = 0; i < 3 && n71 < 0; i++) /* (an error first, if it is still there) */
		n71 = recv(71, buf, sizeof(buf), MSG_DONTWAIT);
	CHECK("info", n71 == 5 && !memcmp(buf, "after", 5), "fd 71 did not give \"after\" (%zd bytes)", n71);
	struct sockaddr_in from70 = { 0 };
	socklen_t flen = sizeof(from70);
	ssize_t n70 = recvfrom(70, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from70, &flen);
	CHECK("info", n70 == 4 && !memcmp(buf, "late", 4) && !memcmp(&from70, &sa_y, sizeof(from70)),
	      "fd 70 (connected to x after y's datagram came) did not give y's \"late\" (%zd bytes)", n70);
	return zoo_finish("queued v4/v6 with senders, connected, multicast, shut down, destinations, TOS and TTL");
}
