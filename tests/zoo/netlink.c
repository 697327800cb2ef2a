/*
 * netlink: netlink sockets as daemons keep them.
 *   fd 90: NETLINK_ROUTE, bound (port id chosen by the kernel), in RTMGRP_LINK and
 *          RTMGRP_IPV4_IFADDR, with NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK (as iproute2 and
 *          systemd's sd-netlink set them), NETLINK_NO_ENOBUFS, NETLINK_PKTINFO,
 *          NETLINK_BROADCAST_ERROR, NETLINK_CAP_ACK and NETLINK_LISTEN_ALL_NSID;
 *   fd 91: NETLINK_KOBJECT_UEVENT, in group 1 (as udev listeners are);
 *   fd 92: NETLINK_ROUTE, not bound.
 * After restore and SIGTERM: the port ids, group memberships and fd 90's options are the same
 * (fd 92 has none of them), and fd 90 still answers a RTM_GETLINK dump (the loopback link is in
 * it).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

static uint32_t portid[2], groups[2];
static const int flag_opts[] = { NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK, NETLINK_NO_ENOBUFS,
				 NETLINK_PKTINFO, NETLINK_BROADCAST_ERROR, NETLINK_CAP_ACK,
				 NETLINK_LISTEN_ALL_NSID };
#define N_FLAGS (sizeof(flag_opts) / sizeof(flag_opts[0]))

/* which of the options fd has on, a bit each in flag_opts' order */
static unsigned flags_on(int fd)
{
	unsigned on = 0;
	for (size_t i = 0; i < N_FLAGS; i++) {
		int v = 0;
		socklen_t len = sizeof(v);
		if (!getsockopt(fd, SOL_NETLINK, flag_opts[i], &v, &len) && v)
			on |= 1u << i;
	}
	return on;
}

static void names(int fd, uint32_t *pid, uint32_t *grp)
{
	struct sockaddr_nl sa = { 0 };
	socklen_t len = sizeof(sa), glen = sizeof(*grp);
	*grp = 0;
	getsockname(fd, (struct sockaddr *)&sa, &len);
	getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, grp, &glen);
	*pid = sa.nl_pid;
}

/* Does a RTM_GETLINK dump through fd name the loopback link? */
static int dump_links(int fd)
{
	struct { struct nlmsghdr h; struct ifinfomsg i; } req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		       .nlmsg_seq = 1 },
		.i = { .ifi_family = AF_UNSPEC },
	};
	char buf[32768];
	if (send(fd, &req, sizeof(req), 0) != sizeof(req))
		return 0;
	for (int round = 0; round < 50; round++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return 0;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR)
				return 0;
			if (h->nlmsg_type == RTM_NEWLINK && ((struct ifinfomsg *)NLMSG_DATA(h))->ifi_flags & 0x8 /* IFF_LOOPBACK */) {
				while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
					; /* the rest of the dump */
				return 1;
			}
		}
	}
	return 0;
}

static void c_groups(ucontext_t *u) { (void)u; int g = RTNLGRP_LINK; setsockopt(90, SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, &g, sizeof(g)); }
static void c_options(ucontext_t *u) { (void)u; int off = 0; setsockopt(90, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &off, sizeof(off)); }
static const struct zoo_corruption corruptions[] = {
	{ "groups", c_groups, 0 },
	{ "options", c_options, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	struct sockaddr_nl route = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR },
			   uevent = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	int r = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), u = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT);
	if (r < 0 || u < 0 || bind(r, (struct sockaddr *)&route, sizeof(route)) ||
	    bind(u, (struct sockaddr *)&uevent, sizeof(uevent)))
		zoo_die("netlink: %s", strerror(errno));
	for (size_t i = 0; i < N_FLAGS; i++) {
		int on = 1;
		if (setsockopt(r, SOL_NETLINK, flag_opts[i], &on, sizeof(on)))
			zoo_die("netlink option %d: %s", flag_opts[i], strerror(errno));
	}
	zoo_place(r, 90, O_CLOEXEC);
	zoo_place(u, 91, O_CLOEXEC);
	zoo_place(socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), 92, O_CLOEXEC);
	names(90, &portid[0], &groups[0]);
	names(91, &portid[1], &groups[1]);
	zoo_ready();
	zoo_wait();

	uint32_t p, g;
	names(90, &p, &g);
	CHECK("groups", p == portid[0] && g == groups[0], "fd 90: port id %u groups %#x, was %u %#x", p, g, portid[0], groups[0]);
	names(91, &p, &g);
	CHECK("groups", p == portid[1] && g == groups[1], "fd 91: port id %u groups %#x, was %u %#x", p, g, portid[1], groups[1]);
	CHECK("options", flags_on(90) == (1u << N_FLAGS) - 1 && !flags_on(92),
	      "fd 90's options %#x (all %#x expected), fd 92's %#x", flags_on(90), (1u << N_FLAGS) - 1, flags_on(92));
	CHECK("route", dump_links(90), "no RTM_GETLINK answer through fd 90: %s", strerror(errno));
	return zoo_finish("3 netlink sockets");
}
