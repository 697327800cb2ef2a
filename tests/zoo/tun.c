/*
 * tun: tun/tap devices and their files, in a network namespace of the program's own (it
 * unshares one first: the tree's namespace, made again by the restore; with
 * ZOO_TUN_NETNS=keep it stays in the one it was started in, a container's).
 *   fd 50: attached to tun "zt0" (IFF_TUN | IFF_NO_PI, send buffer 123456), which has
 *          10.77.0.1/24 and is up, and a route of its own, 10.78.0.0/16 dev zt0 (a VPN's);
 *   fd 51: attached to tap "zp0" (IFF_TAP | IFF_VNET_HDR, vnet header size 12, MAC
 *          02:00:00:00:77:01), up;
 *   fd 52: /dev/net/tun attached to nothing;
 *   tap "zq0": persistent (TUNSETPERSIST), no file attached;
 *   fds 53, 54, 55: the three queues of multi-queue tap "zm0" (IFF_MULTI_QUEUE | IFF_NO_PI),
 *          fd 55's detached (TUNSETQUEUE IFF_DETACH_QUEUE, as QEMU leaves the queues a guest
 *          does not use).
 * After restore and SIGTERM: each file is attached to the same interface (index and name) with
 * the same flags, send buffer and header size (fd 52 to nothing); zt0 and zp0 are not
 * persistent, zq0 is (owner 4242); rtnetlink tells the same of each device (packet
 * information, vnet header, persistence, owner, group, multi-queue, queues and disabled queues:
 * zm0's 2 and 1, IPv6 address generation mode: zt0's is random, zp0's eui64); the MAC is the same; datagrams sent to 10.77.0.2 and 10.78.0.9 (the
 * route) come out of fd 50, and one written into fd 50 (from 10.77.0.2) reaches a socket bound
 * to 10.77.0.1; fd 55 tells it is detached (TUNGETIFF), and attached again (IFF_ATTACH_QUEUE)
 * zm0 has 3 queues.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#define SNDBUF 123456
#define HDR_SZ 12
static const unsigned char mac[6] = { 0x02, 0, 0, 0, 0x77, 0x01 };
#define N_DEVICES 4
static unsigned idx[N_DEVICES];
static short flags[N_DEVICES]; /* TUNGETIFF's of zt0, zp0 (not persistent), zq0 (persistent), zm0 */
static const char *const names[N_DEVICES] = { "zt0", "zp0", "zq0", "zm0" };

static int attach(const char *name, short flags)
{
	struct ifreq ifr = { .ifr_flags = flags };
	int fd = open("/dev/net/tun", O_RDWR);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr))
		zoo_die("%s: %s", name, strerror(errno));
	return fd;
}

static void ifreq_ioctl(int sk, unsigned long req, struct ifreq *ifr, const char *name)
{
	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", name);
	if (ioctl(sk, req, ifr))
		zoo_die("%s: ioctl %#lx: %s", name, req, strerror(errno));
}

static void set_up(int sk, const char *name, int up)
{
	struct ifreq ifr = { 0 };
	ifreq_ioctl(sk, SIOCGIFFLAGS, &ifr, name);
	ifr.ifr_flags = up ? ifr.ifr_flags | IFF_UP : ifr.ifr_flags & ~IFF_UP;
	ifreq_ioctl(sk, SIOCSIFFLAGS, &ifr, name);
}

static unsigned ifindex(const char *name)
{
	struct ifreq ifr = { 0 };
	int sk = socket(AF_INET, SOCK_DGRAM, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	int r = ioctl(sk, SIOCGIFINDEX, &ifr);
	close(sk);
	return r ? 0 : (unsigned)ifr.ifr_ifindex;
}

static uint16_t ip_csum(const void *p, size_t len)
{
	const uint16_t *w = p;
	uint32_t sum = 0;
	for (size_t i = 0; i < len / 2; i++)
		sum += w[i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

static void c_persist(ucontext_t *u) { (void)u; ioctl(50, TUNSETPERSIST, 1UL); }
static void c_sndbuf(ucontext_t *u) { (void)u; int v = 4096; ioctl(50, TUNSETSNDBUF, &v); }
static void c_down(ucontext_t *u)
{
	(void)u;
	int sk = socket(AF_INET, SOCK_DGRAM, 0);
	set_up(sk, "zt0", 0);
	close(sk);
}

/* 10.78.0.0/16 dev zt0 added (SIOCADDRT) or deleted (SIOCDELRT): 0 or -1 */
static int route(unsigned long req)
{
	struct rtentry rt = { .rt_flags = RTF_UP, .rt_dev = (char *)"zt0" };
	struct sockaddr_in *dst = (struct sockaddr_in *)&rt.rt_dst, *mask = (struct sockaddr_in *)&rt.rt_genmask;
	int sk = socket(AF_INET, SOCK_DGRAM, 0), r;

	dst->sin_family = mask->sin_family = AF_INET;
	inet_pton(AF_INET, "10.78.0.0", &dst->sin_addr);
	inet_pton(AF_INET, "255.255.0.0", &mask->sin_addr);
	r = ioctl(sk, req, &rt);
	close(sk);
	return r;
}
static void c_route(ucontext_t *u) { (void)u; route(SIOCDELRT); }
static void c_queue(ucontext_t *u)
{
	(void)u;
	struct ifreq ifr = { .ifr_flags = IFF_DETACH_QUEUE };
	ioctl(54, TUNSETQUEUE, &ifr);
}
static const struct zoo_corruption corruptions[] = {
	{ "persist", c_persist, 0 },
	{ "sndbuf", c_sndbuf, 0 },
	{ "down", c_down, 0 },
	{ "route", c_route, 0 },
	{ "queues", c_queue, 0 },
};

/* What rtnetlink tells of a tun/tap device: IFLA_TUN_PI, _VNET_HDR, _PERSIST, _OWNER, _GROUP,
 * _MULTI_QUEUE, _NUM_QUEUES, _NUM_DISABLED_QUEUES (-1: absent) and its IPv6 address generation
 * mode. */
struct tun_info {
	int pi, vnet_hdr, persist, gen_mode;
	long owner, group, multi_queue, queues, disabled;
};

static struct tun_info info[N_DEVICES];

static void attrs(const struct rtattr *rta, int len, const struct rtattr **tb, int max)
{
	memset(tb, 0, (max + 1) * sizeof(*tb));
	for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
		if (rta->rta_type <= max)
			tb[rta->rta_type] = rta;
}

static long rta_u(const struct rtattr *a)
{
	if (!a)
		return -1;
	return RTA_PAYLOAD(a) >= 4 ? (long)*(uint32_t *)RTA_DATA(a) : *(uint8_t *)RTA_DATA(a);
}

static struct tun_info tun_info(const char *name)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
		char attrs[64];
	} req = { .h = { .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST }, .i = { .ifi_family = AF_UNSPEC } };
	struct rtattr *n = (struct rtattr *)req.attrs;
	n->rta_type = IFLA_IFNAME;
	n->rta_len = RTA_LENGTH(strlen(name) + 1);
	strcpy(RTA_DATA(n), name);
	req.h.nlmsg_len = NLMSG_LENGTH(sizeof(req.i)) + RTA_ALIGN(n->rta_len);
	struct tun_info ti = { -1, -1, -1, -1, -1, -1, -1, -1, -1 };
	static char buf[16384];
	int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	ssize_t len = nl < 0 || send(nl, &req, req.h.nlmsg_len, 0) < 0 ? -1 : recv(nl, buf, sizeof(buf), 0);
	close(nl);
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	if (len <= 0 || !NLMSG_OK(h, len) || h->nlmsg_type != RTM_NEWLINK)
		return ti;
	const struct rtattr *tb[IFLA_MAX + 1], *li[IFLA_INFO_MAX + 1], *t[IFLA_TUN_MAX + 1], *af[AF_INET6 + 1],
		*in6[IFLA_INET6_MAX + 1];
	attrs(IFLA_RTA((struct ifinfomsg *)NLMSG_DATA(h)), IFLA_PAYLOAD(h), tb, IFLA_MAX);
	if (tb[IFLA_AF_SPEC]) {
		attrs(RTA_DATA(tb[IFLA_AF_SPEC]), RTA_PAYLOAD(tb[IFLA_AF_SPEC]), af, AF_INET6);
		if (af[AF_INET6]) {
			attrs(RTA_DATA(af[AF_INET6]), RTA_PAYLOAD(af[AF_INET6]), in6, IFLA_INET6_MAX);
			ti.gen_mode = rta_u(in6[IFLA_INET6_ADDR_GEN_MODE]);
		}
	}
	if (!tb[IFLA_LINKINFO])
		return ti;
	attrs(RTA_DATA(tb[IFLA_LINKINFO]), RTA_PAYLOAD(tb[IFLA_LINKINFO]), li, IFLA_INFO_MAX);
	if (!li[IFLA_INFO_DATA])
		return ti;
	attrs(RTA_DATA(li[IFLA_INFO_DATA]), RTA_PAYLOAD(li[IFLA_INFO_DATA]), t, IFLA_TUN_MAX);
	ti.pi = rta_u(t[IFLA_TUN_PI]);
	ti.vnet_hdr = rta_u(t[IFLA_TUN_VNET_HDR]);
	ti.persist = rta_u(t[IFLA_TUN_PERSIST]);
	ti.owner = rta_u(t[IFLA_TUN_OWNER]);
	ti.group = rta_u(t[IFLA_TUN_GROUP]);
	ti.multi_queue = rta_u(t[IFLA_TUN_MULTI_QUEUE]);
	ti.queues = rta_u(t[IFLA_TUN_NUM_QUEUES]);
	ti.disabled = rta_u(t[IFLA_TUN_NUM_DISABLED_QUEUES]);
	return ti;
}

static short flags_of(int fd)
{
	struct ifreq ifr = { 0 };
	if (ioctl(fd, TUNGETIFF, &ifr))
		zoo_die("fd %d: TUNGETIFF: %s", fd, strerror(errno));
	return ifr.ifr_flags;
}

/* fd is attached to name with flags (as TUNGETIFF tells them), or to nothing if !name */
static void check_file(int fd, const char *name, short flags)
{
	struct ifreq ifr = { 0 };
	int r = ioctl(fd, TUNGETIFF, &ifr);
	if (!name) {
		CHECK("attached", r < 0 && errno == EBADFD, "fd %d is attached to %s", fd, r ? "?" : ifr.ifr_name);
		return;
	}
	CHECK("attached", !r && !strcmp(ifr.ifr_name, name), "fd %d: TUNGETIFF %s, %s", fd, r ? strerror(errno) : "ok",
	      r ? "" : ifr.ifr_name);
	CHECK("persist", !r && ifr.ifr_flags == flags, "fd %d: flags %#x, expected %#x", fd,
	      r ? 0 : ifr.ifr_flags & 0xffff, flags & 0xffff);
}

/* A datagram of 11 bytes sent to dst comes out of fd 50 (check tag). */
static void comes_out(const char *tag, const char *dst, const char *payload)
{
	int out = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(7777) };
	inet_pton(AF_INET, dst, &to.sin_addr);
	ssize_t sent = sendto(out, payload, 11, 0, (struct sockaddr *)&to, sizeof(to));
	unsigned char pkt[2048];
	struct pollfd p = { .fd = 50, .events = POLLIN };
	ssize_t n = 0;
	/* (the interface may send something of its own first) */
	for (int tries = 0; sent == 11 && tries < 20 && poll(&p, 1, 1000) == 1; tries++) {
		n = read(50, pkt, sizeof(pkt));
		if (n >= 28 + 11 && pkt[0] == 0x45 && !memcmp(pkt + n - 11, payload, 11))
			break;
		n = 0;
	}
	CHECK(tag, sent == 11 && n > 0, "the datagram sent to %s (%zd: %s) did not come out of fd 50", dst,
	      sent, sent < 0 ? strerror(errno) : "sent");
	close(out);
}

/* datagrams to 10.77.0.2 and 10.78.0.9 come out of fd 50; one written into it reaches 10.77.0.1:7778 */
static void check_traffic(void)
{
	int in = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(7777) },
			   here = { .sin_family = AF_INET, .sin_port = htons(7778) };
	ssize_t n;
	inet_pton(AF_INET, "10.77.0.2", &to.sin_addr);
	inet_pton(AF_INET, "10.77.0.1", &here.sin_addr);
	if (bind(in, (struct sockaddr *)&here, sizeof(here)))
		zoo_die("bind 10.77.0.1:7778: %s", strerror(errno));
	comes_out("down", "10.77.0.2", "zoo-tun-out");
	comes_out("route", "10.78.0.9", "zoo-tun-rte");

	/* 10.77.0.2:7777 -> 10.77.0.1:7778 "zoo-tun-in", no UDP checksum */
	unsigned char ip[28 + 10] = { 0x45, 0, 0, sizeof(ip), 0, 1, 0, 0, 64, IPPROTO_UDP };
	memcpy(ip + 12, &to.sin_addr, 4);
	memcpy(ip + 16, &here.sin_addr, 4);
	uint16_t csum = ip_csum(ip, 20), ulen = htons(8 + 10);
	memcpy(ip + 10, &csum, 2);
	ip[20] = 7777 >> 8, ip[21] = 7777 & 0xff, ip[22] = 7778 >> 8, ip[23] = 7778 & 0xff;
	memcpy(ip + 24, &ulen, 2);
	memcpy(ip + 28, "zoo-tun-in", 10);
	char got[32] = { 0 };
	struct pollfd q = { .fd = in, .events = POLLIN };
	n = write(50, ip, sizeof(ip));
	CHECK("attached", n == (ssize_t)sizeof(ip) && poll(&q, 1, 2000) == 1 && recv(in, got, sizeof(got), 0) == 10 &&
			      !strcmp(got, "zoo-tun-in"),
	      "a datagram written into fd 50 (%zd) did not reach 10.77.0.1:7778 (got '%s')", n, got);
	close(in);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	/* (ZOO_TUN_NETNS=keep: in the namespace it was started in, a container's) */
	const char *netns = getenv("ZOO_TUN_NETNS");
	if ((!netns || strcmp(netns, "keep")) && unshare(CLONE_NEWNET))
		zoo_die("a network namespace of its own: %s", strerror(errno));
	int sk = socket(AF_INET, SOCK_DGRAM, 0);
	zoo_place(attach("zt0", IFF_TUN | IFF_NO_PI), 50, 0);
	int v = SNDBUF;
	if (ioctl(50, TUNSETSNDBUF, &v))
		zoo_die("TUNSETSNDBUF: %s", strerror(errno));
	zoo_place(attach("zp0", IFF_TAP | IFF_VNET_HDR), 51, 0);
	v = HDR_SZ;
	if (ioctl(51, TUNSETVNETHDRSZ, &v))
		zoo_die("TUNSETVNETHDRSZ: %s", strerror(errno));
	zoo_place(open("/dev/net/tun", O_RDWR | O_NONBLOCK), 52, 0);
	int q = attach("zq0", IFF_TAP);
	if (ioctl(q, TUNSETPERSIST, 1UL) || ioctl(q, TUNSETOWNER, 4242UL))
		zoo_die("zq0: %s", strerror(errno));
	flags[2] = flags_of(q) | IFF_PERSIST; /* (what TUNSETIFF reports: persistent once set) */
	close(q);
	flags[0] = flags_of(50);
	flags[1] = flags_of(51);
	zoo_place(attach("zm0", IFF_TAP | IFF_MULTI_QUEUE | IFF_NO_PI), 53, 0);
	zoo_place(attach("zm0", IFF_TAP | IFF_MULTI_QUEUE | IFF_NO_PI), 54, 0);
	zoo_place(attach("zm0", IFF_TAP | IFF_MULTI_QUEUE | IFF_NO_PI), 55, 0);
	flags[3] = flags_of(53);
	struct ifreq detach = { .ifr_flags = IFF_DETACH_QUEUE };
	if (ioctl(55, TUNSETQUEUE, &detach))
		zoo_die("zm0: detach the queue of fd 55: %s", strerror(errno));

	struct ifreq ifr = { 0 };
	struct sockaddr_in *a = (struct sockaddr_in *)&ifr.ifr_addr;
	a->sin_family = AF_INET;
	inet_pton(AF_INET, "10.77.0.1", &a->sin_addr);
	ifreq_ioctl(sk, SIOCSIFADDR, &ifr, "zt0");
	inet_pton(AF_INET, "255.255.255.0", &a->sin_addr);
	ifreq_ioctl(sk, SIOCSIFNETMASK, &ifr, "zt0");
	set_up(sk, "zt0", 1);
	if (route(SIOCADDRT))
		zoo_die("route 10.78.0.0/16 dev zt0: %s", strerror(errno));
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, mac, sizeof(mac));
	ifreq_ioctl(sk, SIOCSIFHWADDR, &ifr, "zp0");
	set_up(sk, "zp0", 1);
	for (int i = 0; i < N_DEVICES; i++)
		if (!(idx[i] = ifindex(names[i])))
			zoo_die("%s: no index", names[i]);
	close(sk);
	for (int i = 0; i < N_DEVICES; i++)
		if ((info[i] = tun_info(names[i])).pi < 0)
			zoo_die("%s: rtnetlink tells nothing of it", names[i]);
	if (info[3].multi_queue != 1 || info[3].queues != 2 || info[3].disabled != 1)
		zoo_die("zm0: multi-queue %ld, %ld queues, %ld disabled (expected 1, 2, 1)", info[3].multi_queue,
			info[3].queues, info[3].disabled);
	zoo_ready();
	zoo_wait();

	for (int i = 0; i < N_DEVICES; i++)
		CHECK("attached", ifindex(names[i]) == idx[i], "%s: index %u, was %u", names[i], ifindex(names[i]),
		      idx[i]);
	for (int i = 0; i < N_DEVICES; i++) {
		struct tun_info now = tun_info(names[i]), *was = &info[i];
		CHECK(now.queues == was->queues && now.disabled == was->disabled ? "persist" : "queues",
		      !memcmp(&now, was, sizeof(now)),
		      "%s: pi %d vnet_hdr %d persist %d owner %ld group %ld addrgenmode %d multi-queue %ld queues "
		      "%ld disabled %ld, was %d %d %d %ld %ld %d %ld %ld %ld",
		      names[i], now.pi, now.vnet_hdr, now.persist, now.owner, now.group, now.gen_mode,
		      now.multi_queue, now.queues, now.disabled, was->pi, was->vnet_hdr, was->persist, was->owner,
		      was->group, was->gen_mode, was->multi_queue, was->queues, was->disabled);
	}
	check_file(50, "zt0", flags[0]);
	check_file(51, "zp0", flags[1]);
	check_file(52, NULL, 0);
	check_file(53, "zm0", flags[3]);
	check_file(54, "zm0", flags[3]);
	check_file(55, "zm0", flags[3] | IFF_DETACH_QUEUE);
	int got = 0;
	CHECK("sndbuf", !ioctl(50, TUNGETSNDBUF, &got) && got == SNDBUF, "fd 50: send buffer %d, expected %d", got,
	      SNDBUF);
	got = 0;
	CHECK("hdr", !ioctl(51, TUNGETVNETHDRSZ, &got) && got == HDR_SZ, "fd 51: vnet header size %d, expected %d",
	      got, HDR_SZ);
	q = attach("zq0", IFF_TAP);
	check_file(q, "zq0", flags[2]);
	close(q);
	sk = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "zp0");
	CHECK("mac", !ioctl(sk, SIOCGIFHWADDR, &ifr) && !memcmp(ifr.ifr_hwaddr.sa_data, mac, sizeof(mac)),
	      "zp0: its MAC changed");
	close(sk);
	check_traffic();
	struct ifreq reattach = { .ifr_flags = IFF_ATTACH_QUEUE };
	CHECK("queues", !ioctl(55, TUNSETQUEUE, &reattach) && tun_info("zm0").queues == 3,
	      "zm0: fd 55's queue could not be attached again (%s), or zm0 has not 3 queues then",
	      strerror(errno));
	return zoo_finish("tun zt0, tap zp0 (vnet header), persistent tap zq0, multi-queue tap zm0 (2 queues and "
			  "1 detached), a file attached to nothing");
}
