/*
 * packet-sock: packet sockets (AF_PACKET) on the loopback interface.
 *   fd 60 SOCK_RAW bound to lo for ETH_P_IP, with a classic BPF filter passing only UDP
 *         datagrams to port 47111, PACKET_AUXDATA, PACKET_ORIGDEV, PACKET_VERSION TPACKET_V2,
 *         PACKET_RESERVE 64, PACKET_TIMESTAMP 1 and a multicast membership (01:00:5e:11:22:33)
 *         on lo;
 *   fd 61, fd 62 SOCK_RAW for ETH_P_ALL in fanout group 4321 (PACKET_FANOUT_HASH, with
 *         rollover), fd 61 with PACKET_VNET_HDR;
 *   fd 63 SOCK_DGRAM for ETH_P_ARP, bound to no interface, a one-instruction filter (drop
 *         everything) locked on it (SO_LOCK_FILTER);
 *   fd 64 SOCK_PACKET (the obsolete kind) for ETH_P_ALL bound to lo (by name, sockaddr_pkt);
 *   fd 65 SOCK_PACKET for ETH_P_IP bound to no interface.
 * After restore and SIGTERM: fd 60 sees a datagram to 127.0.0.1:47111 sent after the restore,
 * with its auxiliary data, and not one to port 47112 (its filter still filters); its options
 * are as set and lo still has the multicast address (/proc/net/dev_mcast); fd 61 and 62 are
 * in the group; fd 63 has its type, protocol and locked filter; fd 64 and 65 are SOCK_PACKET
 * with their protocols and interfaces (/proc/net/packet), fd 64's name is lo and it reads a
 * datagram sent on lo after the restore.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#define PORT 47111
#define GROUP 4321
#define FANOUT (GROUP | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_ROLLOVER) << 16))

static const uint8_t mc[6] = { 0x01, 0x00, 0x5e, 0x11, 0x22, 0x33 };
static int lo_index;

static int has_mcast(void)
{
	char buf[8192];
	int fd = open("/proc/net/dev_mcast", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *save = NULL;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (strstr(l, " lo ") && strstr(l, "01005e112233"))
			return 1;
	return 0;
}

static void udp_to(int port)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	sendto(s, "stasis-pkt", 10, 0, (struct sockaddr *)&to, sizeof(to));
	close(s);
}

static void drain(int fd)
{
	char buf[2048];
	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* The next frame fd reads, within ms: its UDP destination port (0: none, -1: nothing),
 * whether it came with PACKET_AUXDATA. */
static int next_port(int fd, int ms, int *aux)
{
	uint8_t buf[2048];
	char ctl[256];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, ms) != 1)
		return -1;
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
	*aux = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA)
			*aux = 1;
	if (n < 38 || buf[23] != IPPROTO_UDP)
		return 0;
	return (buf[36] << 8) | buf[37];
}

static int opt(int fd, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);
	getsockopt(fd, SOL_PACKET, name, &v, &l);
	return v;
}

static void c_filter(ucontext_t *u) { (void)u; int z = 0; setsockopt(60, SOL_SOCKET, SO_DETACH_FILTER, &z, sizeof(z)); }
static void c_mcast(ucontext_t *u)
{
	(void)u;
	struct packet_mreq mr = { .mr_ifindex = lo_index, .mr_type = PACKET_MR_MULTICAST, .mr_alen = 6 };
	memcpy(mr.mr_address, mc, 6);
	setsockopt(60, SOL_PACKET, PACKET_DROP_MEMBERSHIP, &mr, sizeof(mr));
}
static void c_options(ucontext_t *u) { (void)u; int z = 0; setsockopt(60, SOL_PACKET, PACKET_AUXDATA, &z, sizeof(z)); }
static void c_fanout(ucontext_t *u) { (void)u; zoo_place(socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)), 62, O_CLOEXEC); }
static void c_bound(ucontext_t *u)
{
	(void)u;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IPV6), .sll_ifindex = lo_index };
	bind(60, (struct sockaddr *)&sll, sizeof(sll));
}
static void c_spkt(ucontext_t *u) { (void)u; zoo_place(socket(AF_PACKET, SOCK_PACKET, htons(ETH_P_ARP)), 64, O_CLOEXEC); }
static void c_spkt_proto(ucontext_t *u) { (void)u; zoo_place(socket(AF_PACKET, SOCK_PACKET, htons(ETH_P_ARP)), 65, O_CLOEXEC); }

/* /proc/net/packet's type, protocol and interface of the socket at fd; 0: not found. */
static int packet_line(int fd, unsigned *type, unsigned *proto, int *iface)
{
	static char buf[65536];
	struct stat st;
	if (fstat(fd, &st) || zoo_read_file("/proc/net/packet", buf, sizeof(buf)) < 0)
		return 0;
	char *save = NULL;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		unsigned long long sk, ino;
		unsigned refs, running, rmem, user;
		if (sscanf(l, "%llx %u %u %x %d %u %u %u %llu", &sk, &refs, type, proto, iface, &running, &rmem,
			   &user, &ino) == 9 && ino == (unsigned long long)st.st_ino)
			return 1;
	}
	return 0;
}

/* fd reads a frame holding what within ms, and from which device: 1, else 0. */
static int spkt_reads(int fd, const char *what, int ms, char *dev)
{
	uint8_t buf[2048];
	for (int waited = 0; waited <= ms; waited += 10) {
		struct sockaddr_pkt from;
		socklen_t fl = sizeof(from);
		ssize_t n;
		while ((n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl)) > 0) {
			if (memmem(buf, n, what, strlen(what))) {
				memcpy(dev, from.spkt_device, sizeof(from.spkt_device));
				dev[sizeof(from.spkt_device)] = 0;
				return 1;
			}
			fl = sizeof(from);
		}
		zoo_sleep_ms(10);
	}
	return 0;
}

static void c_locked(ucontext_t *u) { (void)u; zoo_place(socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_ARP)), 63, O_CLOEXEC); }
static const struct zoo_corruption corruptions[] = {
	{ "locked", c_locked, 0 },
	{ "filter", c_filter, 0 },
	{ "mcast", c_mcast, 0 },
	{ "options", c_options, 0 },
	{ "fanout", c_fanout, 0 },
	{ "bound", c_bound, 0 },
	{ "spkt", c_spkt, 0 },
	{ "spkt-proto", c_spkt_proto, 0 },
};

int main(int argc, char **argv)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 5),
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 23),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 3),
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 36),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PORT, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { sizeof(code) / sizeof(code[0]), code };
	int one = 1, v2 = TPACKET_V2, reserve = 64, fanout = FANOUT;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	lo_index = (int)if_nametoindex("lo");
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_ifindex = lo_index };
	struct packet_mreq mr = { .mr_ifindex = lo_index, .mr_type = PACKET_MR_MULTICAST, .mr_alen = 6 };
	memcpy(mr.mr_address, mc, 6);
	int a = socket(AF_PACKET, SOCK_RAW, 0);
	if (a < 0 || setsockopt(a, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) ||
	    bind(a, (struct sockaddr *)&sll, sizeof(sll)) ||
	    setsockopt(a, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) ||
	    setsockopt(a, SOL_PACKET, PACKET_ORIGDEV, &one, sizeof(one)) ||
	    setsockopt(a, SOL_PACKET, PACKET_VERSION, &v2, sizeof(v2)) ||
	    setsockopt(a, SOL_PACKET, PACKET_RESERVE, &reserve, sizeof(reserve)) ||
	    setsockopt(a, SOL_PACKET, PACKET_TIMESTAMP, &one, sizeof(one)) ||
	    setsockopt(a, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)))
		zoo_die("fd 60: %s", strerror(errno));
	int aux;
	drain(a);
	udp_to(PORT);
	if (next_port(a, 2000, &aux) != PORT)
		zoo_die("fd 60 does not see the datagram before the dump");
	drain(a);
	zoo_place(a, 60, O_CLOEXEC);
	int b = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)), c = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (b < 0 || c < 0 || setsockopt(b, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) ||
	    setsockopt(b, SOL_PACKET, PACKET_FANOUT, &fanout, sizeof(fanout)) ||
	    setsockopt(c, SOL_PACKET, PACKET_FANOUT, &fanout, sizeof(fanout)))
		zoo_die("fanout: %s", strerror(errno));
	zoo_place(b, 61, O_CLOEXEC);
	zoo_place(c, 62, O_CLOEXEC);
	struct sock_filter drop[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct sock_fprog drop_prog = { 1, drop };
	int d = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_ARP));
	if (d < 0 || setsockopt(d, SOL_SOCKET, SO_ATTACH_FILTER, &drop_prog, sizeof(drop_prog)) ||
	    setsockopt(d, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof(one)))
		zoo_die("fd 63: %s", strerror(errno));
	zoo_place(d, 63, O_CLOEXEC);
	int e = socket(AF_PACKET, SOCK_PACKET, htons(ETH_P_ALL)), f = socket(AF_PACKET, SOCK_PACKET, htons(ETH_P_IP));
	struct sockaddr spkt = { .sa_family = AF_PACKET, .sa_data = "lo" };
	if (e < 0 || f < 0 || bind(e, &spkt, sizeof(spkt)))
		zoo_die("SOCK_PACKET: %s", strerror(errno));
	zoo_place(e, 64, O_CLOEXEC);
	zoo_place(f, 65, O_CLOEXEC);

	zoo_ready();
	zoo_wait();

	drain(60);
	udp_to(PORT + 1);
	udp_to(PORT);
	int first = next_port(60, 2000, &aux);
	CHECK("filter", first == PORT, "fd 60 read a frame for port %d first, not %d", first, PORT);
	CHECK("options", aux, "fd 60's frame came without PACKET_AUXDATA");
	CHECK("options", opt(60, PACKET_ORIGDEV) == 1 && opt(60, PACKET_VERSION) == TPACKET_V2 &&
				 opt(60, PACKET_RESERVE) == 64 && opt(60, PACKET_TIMESTAMP) == 1,
	      "fd 60: origdev %d version %d reserve %d timestamp %d", opt(60, PACKET_ORIGDEV),
	      opt(60, PACKET_VERSION), opt(60, PACKET_RESERVE), opt(60, PACKET_TIMESTAMP));
	struct sockaddr_ll got = { 0 };
	socklen_t gl = sizeof(got);
	getsockname(60, (struct sockaddr *)&got, &gl);
	CHECK("bound", got.sll_ifindex == lo_index && got.sll_protocol == htons(ETH_P_IP),
	      "fd 60 bound to interface %d protocol %#x", got.sll_ifindex, ntohs(got.sll_protocol));
	CHECK("mcast", has_mcast(), "lo no longer has 01:00:5e:11:22:33 (/proc/net/dev_mcast)");
	CHECK("fanout", opt(61, PACKET_FANOUT) == FANOUT && opt(62, PACKET_FANOUT) == FANOUT,
	      "fanout of fd 61 %#x, fd 62 %#x", opt(61, PACKET_FANOUT), opt(62, PACKET_FANOUT));
	CHECK("options", opt(61, PACKET_VNET_HDR) == 1, "fd 61's PACKET_VNET_HDR is %d", opt(61, PACKET_VNET_HDR));
	int type = 0;
	socklen_t l1 = sizeof(int);
	gl = sizeof(got);
	getsockopt(63, SOL_SOCKET, SO_TYPE, &type, &l1);
	getsockname(63, (struct sockaddr *)&got, &gl);
	CHECK("dgram", type == SOCK_DGRAM && got.sll_protocol == htons(ETH_P_ARP) && !got.sll_ifindex,
	      "fd 63: type %d protocol %#x interface %d", type, ntohs(got.sll_protocol), got.sll_ifindex);
	int locked = 0;
	socklen_t ll = sizeof(locked), n = 0;
	getsockopt(63, SOL_SOCKET, SO_LOCK_FILTER, &locked, &ll);
	CHECK("locked", locked == 1 && !getsockopt(63, SOL_SOCKET, SO_GET_FILTER, NULL, &n) && n == 1,
	      "fd 63: SO_LOCK_FILTER %d, a filter of %u instructions", locked, (unsigned)n);
	unsigned ptype = 0, proto = 0;
	int iface = -1;
	char dev[16] = "";
	CHECK("spkt", packet_line(64, &ptype, &proto, &iface) && ptype == SOCK_PACKET && proto == ETH_P_ALL &&
			      iface == lo_index,
	      "fd 64: type %u protocol %#x interface %d (/proc/net/packet)", ptype, proto, iface);
	struct sockaddr name = { 0 };
	socklen_t nl = sizeof(name);
	getsockname(64, &name, &nl);
	CHECK("spkt", !strcmp(name.sa_data, "lo"), "fd 64's name is '%.14s', not lo", name.sa_data);
	drain(64);
	udp_to(PORT + 7);
	CHECK("spkt", spkt_reads(64, "stasis-pkt", 2000, dev) && !strcmp(dev, "lo"),
	      "fd 64 did not read the datagram sent on lo (device '%s')", dev);
	ptype = proto = 0;
	iface = -1;
	CHECK("spkt-proto", packet_line(65, &ptype, &proto, &iface) && ptype == SOCK_PACKET && proto == ETH_P_IP &&
				    iface == 0,
	      "fd 65: type %u protocol %#x interface %d (/proc/net/packet)", ptype, proto, iface);
	return zoo_finish("bpf filter, aux data, options, multicast, fanout, dgram, SOCK_PACKET");
}
