/*
 * /dev/net/tun files. One attached to a tun/tap interface (TUNSETIFF) keeps the interface's
 * name, its flags (TUNGETIFF), send buffer and vnet header size, and is attached again at
 * restore, then detached again if it was a queue detached from its multi-queue device
 * (TUNSETQUEUE IFF_DETACH_QUEUE, as QEMU leaves the queues a guest does not use); one attached
 * to nothing is the device opened again. The interface itself belongs to
 * the tree's own network namespace (or the engine's, --external net) and is made again in the
 * one the restore makes or is given (netns/net-links.c, net-tun.c), persistent: a file attached
 * to one that was not takes that back. Refused, naming the fd: a file attached to an interface
 * of a network namespace that is not the tree's own (the host's or another's, as criu refuses
 * it too), and one with a socket filter (TUNATTACHFILTER). Packets queued in the file are not
 * kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "net-ns.h"
#include "net-tun.h"
#include "tree-path.h"
#include "util.h"

#define TUN_RDEV makedev(10, 200)
/* a file's own flags; the device's (NET_TUN_FLAGS) are read from rtnetlink */
#define TUN_FILE_OWN_FLAGS (IFF_NAPI | IFF_NAPI_FRAGS | IFF_PERSIST)
#define TUN_FILE_FLAGS (NET_TUN_FLAGS | TUN_FILE_OWN_FLAGS)

/* The file's interface is in the network namespace of process pid: 0, or <0 having said why. */
static int device_in_ns_of(pid_t pid, int fd, int copy, const char *name)
{
	char path[64];
	struct stat dev_ns, own_ns;
	auto_close int ns = ioctl(copy, TUNGETDEVNETNS);

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	if (ns < 0 || fstat(ns, &dev_ns) || stat(path, &own_ns)) {
		pr_perror("dump pid %d fd %d: cannot tell the network namespace of tun/tap interface %s",
			  pid, fd, name);
		return -errno;
	}
	if (dev_ns.st_ino != own_ns.st_ino) {
		pr_err("dump pid %d fd %d: attached to tun/tap interface %s of network namespace "
		       "net:[%llu], not its own (net:[%llu]): not supported", pid, fd, name,
		       (unsigned long long)dev_ns.st_ino, (unsigned long long)own_ns.st_ino);
		return -ENOTSUP;
	}
	return 0;
}

static int dump_tun(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	struct ifreq ifr = { 0 };
	struct sock_fprog filter = { 0 };
	int sndbuf, hdr_sz;

	if (!p->has_st || !S_ISCHR(p->st.st_mode) || p->st.st_rdev != TUN_RDEV || (p->flags & O_PATH))
		return 0;
	if (p->link[0] != '/') {
		pr_err("dump pid %d fd %d: /dev/net/tun opened as %s, not reachable by path: not supported",
		       t->pid, p->fd, p->link);
		return -ENOTSUP;
	}
	auto_close int copy = task_fd_copy(t->pid, p->fd);
	if (copy < 0) {
		pr_err("dump pid %d fd %d: cannot take a copy of /dev/net/tun: %s", t->pid, p->fd,
		       strerror(-copy));
		return copy;
	}
	if (!ioctl(copy, TUNGETIFF, &ifr)) {
		int err;
		if (!net_ns_interfaces(t->ctx)) {
			pr_err("dump pid %d fd %d: attached to tun/tap interface %s of a network namespace "
			       "that is not the tree's own: not supported", t->pid, p->fd, ifr.ifr_name);
			return -ENOTSUP;
		}
		if ((err = device_in_ns_of(t->pid, p->fd, copy, ifr.ifr_name)))
			return err;
		if (!ioctl(copy, TUNGETFILTER, &filter) && filter.len) {
			pr_err("dump pid %d fd %d: tun/tap interface %s has a socket filter "
			       "(TUNATTACHFILTER): not supported", t->pid, p->fd, ifr.ifr_name);
			return -ENOTSUP;
		}
		if (ioctl(copy, TUNGETSNDBUF, &sndbuf) || ioctl(copy, TUNGETVNETHDRSZ, &hdr_sz)) {
			pr_perror("dump pid %d fd %d: cannot read tun/tap interface %s's settings", t->pid,
				  p->fd, ifr.ifr_name);
			return -errno;
		}
		unsigned device_flags;
		if ((err = net_tun_flags(ifr.ifr_name, &device_flags))) {
			pr_err("dump pid %d fd %d: cannot read tun/tap interface %s over rtnetlink: %s",
			       t->pid, p->fd, ifr.ifr_name, strerror(-err));
			return err;
		}
		if (!(e->tun = xzalloc(sizeof(*e->tun))))
			return -ENOMEM;
		tun_file__init(e->tun);
		if (!(e->tun->name = xstrdup(ifr.ifr_name)))
			return -ENOMEM;
		/* (its IFF_NO_PI bit is IFF_NOFILTER there: the device tells it) */
		e->tun->flags = ((unsigned short)ifr.ifr_flags & TUN_FILE_OWN_FLAGS) | device_flags;
		e->tun->has_sndbuf = e->tun->has_vnet_hdr_sz = true;
		e->tun->sndbuf = sndbuf;
		e->tun->vnet_hdr_sz = hdr_sz;
		e->tun->has_detached = e->tun->detached = (ifr.ifr_flags & IFF_DETACH_QUEUE) != 0;
	} else if (errno != EBADFD) { /* EBADFD: attached to nothing */
		pr_perror("dump pid %d fd %d: cannot read what /dev/net/tun is attached to", t->pid, p->fd);
		return -errno;
	}
	if (!(e->path = xstrdup(p->link)))
		return -ENOMEM;
	e->has_flags = e->has_rdev = true;
	e->flags = p->flags;
	e->rdev = p->st.st_rdev;
	return 1;
}

static int validate_tun(const struct restore_task *t, const FdEntry *e)
{
	const TunFile *tf = e->tun;
	unsigned type = tf ? tf->flags & (IFF_TUN | IFF_TAP) : IFF_TUN;

	if (!e->has_flags || !e->has_rdev || e->rdev != TUN_RDEV || !image_path_ok(e->path) ||
	    (tf && (!tf->name || !tf->name[0] || strlen(tf->name) >= IFNAMSIZ || strchr(tf->name, '/') ||
		    (tf->flags & ~TUN_FILE_FLAGS) || (tf->has_sndbuf && tf->sndbuf <= 0) ||
		    (tf->has_vnet_hdr_sz && tf->vnet_hdr_sz < 0) ||
		    (tf->detached && !(tf->flags & IFF_MULTI_QUEUE)))) ||
	    (type != IFF_TUN && type != IFF_TAP)) {
		pr_err("image fds-%d.img: fd %u: a /dev/net/tun file with a bad path, device, interface "
		       "name or flags (or a detached queue of a device without queues)", t->pid, e->fd);
		return -EINVAL;
	}
	return 0;
}

static int open_tun(struct restore_task *t, const FdEntry *e)
{
	const TunFile *tf = e->tun;
	struct stat st;
	int fd = tree_open(t->ctx, e->path, (e->flags & (O_ACCMODE | O_NONBLOCK)) | O_CLOEXEC, 0);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) || !S_ISCHR(st.st_mode) || st.st_rdev != TUN_RDEV) {
		pr_err("restore pid %d fd %u: %s is not /dev/net/tun (10:200)", t->pid, e->fd, e->path);
		close(fd);
		return -ENODEV;
	}
	if (!tf)
		return fd;
	struct ifreq ifr = { .ifr_flags = (short)(tf->flags & ~IFF_PERSIST) };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tf->name);
	const char *step;
	if (!(step = "TUNSETIFF", ioctl(fd, TUNSETIFF, &ifr)) &&
	    !(step = "TUNSETSNDBUF", tf->has_sndbuf && ioctl(fd, TUNSETSNDBUF, &tf->sndbuf)) &&
	    !(step = "TUNSETVNETHDRSZ", tf->has_vnet_hdr_sz && ioctl(fd, TUNSETVNETHDRSZ, &tf->vnet_hdr_sz)) &&
	    !(step = "TUNSETPERSIST", !(tf->flags & IFF_PERSIST) && ioctl(fd, TUNSETPERSIST, 0UL)) &&
	    !(step = "TUNSETQUEUE IFF_DETACH_QUEUE",
	      tf->detached && ioctl(fd, TUNSETQUEUE, &(struct ifreq){ .ifr_flags = IFF_DETACH_QUEUE })))
		return fd;
	int err = -errno;
	pr_err("restore pid %d fd %u: cannot attach to tun/tap interface %s (%s): %s", t->pid, e->fd,
	       tf->name, step, strerror(-err));
	close(fd);
	return err;
}

const struct fd_kind_ops fd_kind_tun = {
	.name = "tun",
	.dump = dump_tun,
	.validate = validate_tun,
	.open = open_tun,
	.kind = FD_KIND__FD_TUN,
};
