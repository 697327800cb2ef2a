/* Tun/tap interfaces of the tree's network namespace (netns/net-tun.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "log.h"
#include "net-tun.h"
#include "util.h"

#define TUN_DEVICE "/dev/net/tun"

/* linkinfo's IFLA_TUN_* attributes into a (absent ones NULL). */
static void tun_attrs(const struct nlattr *linkinfo, const struct nlattr **a)
{
	const struct nlattr *li[IFLA_INFO_MAX + 1];

	memset(a, 0, (IFLA_TUN_MAX + 1) * sizeof(*a));
	nl_parse(nl_data(linkinfo), nl_len(linkinfo), li, IFLA_INFO_MAX);
	if (li[IFLA_INFO_DATA])
		nl_parse(nl_data(li[IFLA_INFO_DATA]), nl_len(li[IFLA_INFO_DATA]), a, IFLA_TUN_MAX);
}

static unsigned tun_flags(const struct nlattr *const *a)
{
	return (nl_uint(a[IFLA_TUN_TYPE], 0) & (IFF_TUN | IFF_TAP)) | (nl_uint(a[IFLA_TUN_PI], 0) ? 0 : IFF_NO_PI) |
	       (nl_uint(a[IFLA_TUN_VNET_HDR], 0) ? IFF_VNET_HDR : 0) |
	       (nl_uint(a[IFLA_TUN_MULTI_QUEUE], 0) ? IFF_MULTI_QUEUE : 0);
}

int net_tun_keep(pid_t root, NetLink *l, const struct nlattr *linkinfo)
{
	const struct nlattr *a[IFLA_TUN_MAX + 1];
	NetTun *t;

	tun_attrs(linkinfo, a);
	if (!a[IFLA_TUN_TYPE]) {
		pr_err("dump pid %d: tun/tap device %s: the kernel tells nothing of it (no IFLA_TUN_TYPE)",
		       root, l->name);
		return -ENOTSUP;
	}
	if (!(t = l->tun = xzalloc(sizeof(*t))))
		return -ENOMEM;
	net_tun__init(t);
	t->flags = tun_flags(a);
	t->persist = nl_uint(a[IFLA_TUN_PERSIST], 0);
	if ((t->has_owner = a[IFLA_TUN_OWNER] != NULL))
		t->owner = nl_uint(a[IFLA_TUN_OWNER], 0);
	if ((t->has_group = a[IFLA_TUN_GROUP] != NULL))
		t->group = nl_uint(a[IFLA_TUN_GROUP], 0);
	return 0;
}

static int on_tun_link(const struct nlmsghdr *h, void *arg)
{
	const struct nlattr *tb[IFLA_MAX + 1], *a[IFLA_TUN_MAX + 1];

	if (h->nlmsg_type != RTM_NEWLINK)
		return 0;
	nl_parse_msg(h, sizeof(struct ifinfomsg), tb, IFLA_MAX);
	if (!tb[IFLA_LINKINFO])
		return -ENODEV;
	tun_attrs(tb[IFLA_LINKINFO], a);
	if (!a[IFLA_TUN_TYPE])
		return -ENODEV;
	*(unsigned *)arg = tun_flags(a);
	return 1;
}

int net_tun_flags(const char *name, unsigned *flags)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct nl_buf b = { 0 };
	auto_close int nl = nl_open(NETLINK_ROUTE);

	if (nl < 0)
		return nl;
	size_t m = nl_msg_begin(&b, RTM_GETLINK, 0, &ifi, sizeof(ifi));
	nl_put_str(&b, IFLA_IFNAME, name);
	nl_msg_end(&b, m);
	int ret = nl_get(nl, &b, on_tun_link, flags);
	nl_buf_free(&b);
	return ret == 1 ? 0 : ret ? ret : -ENODEV;
}

bool net_tun_valid(const NetLink *l)
{
	const NetTun *t = l->tun;
	unsigned type = t ? t->flags & (IFF_TUN | IFF_TAP) : 0;

	return t && (type == IFF_TUN || type == IFF_TAP) && !(t->flags & ~NET_TUN_FLAGS) &&
	       (!t->has_owner || t->owner != (uint32_t)-1) && (!t->has_group || t->group != (uint32_t)-1);
}

int net_tun_make(const NetLink *l, char *why, size_t len)
{
	const NetTun *t = l->tun;
	struct ifreq ifr = { .ifr_flags = (short)t->flags };
	unsigned index = l->ifindex;
	auto_close int fd = open(TUN_DEVICE, O_RDWR | O_CLOEXEC);
	const char *step = "open " TUN_DEVICE;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", l->name);
	if (fd >= 0 && !(step = "TUNSETIFINDEX", ioctl(fd, TUNSETIFINDEX, &index)) &&
	    !(step = "TUNSETIFF", ioctl(fd, TUNSETIFF, &ifr)) &&
	    !(step = "TUNSETOWNER", t->has_owner && ioctl(fd, TUNSETOWNER, (unsigned long)t->owner)) &&
	    !(step = "TUNSETGROUP", t->has_group && ioctl(fd, TUNSETGROUP, (unsigned long)t->group)) &&
	    !(step = "TUNSETPERSIST", ioctl(fd, TUNSETPERSIST, 1UL)))
		return 0;
	int err = -errno;
	snprintf(why, len, "%s", step);
	return err;
}
