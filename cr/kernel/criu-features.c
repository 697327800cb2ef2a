/* What `criu check --feature NAME` answers for each name, as stasis answers it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kernel/criu-features.h"
#include "kernel/features.h"
#include "util.h"

#define NO_KERNEL_FEATURE KF_NR

#define NET "network interfaces other than lo (veth, bridges, tun) are not supported yet"

struct criu_feature {
	const char *name;
	enum kernel_feature needs; /* the kernel side, or NO_KERNEL_FEATURE */
	const char *stasis_lacks;  /* NULL: stasis does it, if the kernel lets it */
};

static const struct criu_feature criu_features[] = {
	{ "mnt_id", NO_KERNEL_FEATURE, NULL },
	{ "mem_dirty_track", KF_DIRTY_TRACKING, NULL }, /* uffd-wp + PAGEMAP_SCAN: no soft-dirty */
	{ "aio_remap", NO_KERNEL_FEATURE, NULL }, /* cr/aio.c: the ring moved back with mremap */
	{ "timerfd", KF_TIMERFD_SET_TICKS, NULL },
	{ "tun", NO_KERNEL_FEATURE, "tun/tap devices are not supported yet" },
	{ "tun_ns", NO_KERNEL_FEATURE, "tun/tap devices are not supported yet" },
	{ "userns", NO_KERNEL_FEATURE, NULL }, /* a tree in a child user namespace of stasis's */
	{ "fdinfo_lock", KF_FDINFO_LOCKS, NULL },
	{ "seccomp_suspend", KF_SECCOMP_SUSPEND, NULL },
	{ "seccomp_filters", KF_SECCOMP_GET_FILTER, NULL },
	{ "loginuid", NO_KERNEL_FEATURE, NULL }, /* cr/proc-knobs.c */
	{ "cgroupns", NO_KERNEL_FEATURE, NULL },
	{ "autofs", NO_KERNEL_FEATURE, "autofs mounts are not supported yet" },
	{ "tcp_half_closed", NO_KERNEL_FEATURE, NULL },
	{ "compat_cr", NO_KERNEL_FEATURE, "32-bit (ia32) processes are not supported" },
	{ "uffd", KF_USERFAULTFD, NULL },
	{ "uffd-noncoop", KF_USERFAULTFD, NULL }, /* fork, mremap, munmap, MADV_DONTNEED events */
	{ "can_map_vdso", NO_KERNEL_FEATURE, "stasis moves the vDSO with mremap, it maps no new one" },
	{ "sk_ns", NO_KERNEL_FEATURE, NULL },
	{ "sk_unix_file", NO_KERNEL_FEATURE, "unix socket files are not opened through their socket" },
	{ "net_diag_raw", NO_KERNEL_FEATURE, "raw sockets are not supported" },
	{ "nsid", NO_KERNEL_FEATURE, NET },
	{ "link_nsid", NO_KERNEL_FEATURE, NET },
	{ "kcmp_epoll", KF_KCMP, NULL }, /* epoll targets found with KCMP_EPOLL_TFD */
	{ "timens", KF_TIME_NS, NULL },
	{ "external_net_ns", NO_KERNEL_FEATURE, NULL },
	{ "clone3_set_tid", KF_CLONE3_SET_TID, NULL },
	{ "newifindex", NO_KERNEL_FEATURE, NET },
	{ "nftables", NO_KERNEL_FEATURE, NULL },
	{ "has_ipt_legacy", NO_KERNEL_FEATURE, "the network lock uses nftables (netlink), not iptables" },
	{ "pidfd_store", KF_PIDFD_GETFD, NULL }, /* pid reuse between pre-dumps: start times */
	{ "ns_pid", NO_KERNEL_FEATURE, NULL },
	{ "apparmor_stacking", NO_KERNEL_FEATURE, "AppArmor profiles are not restored yet" },
	{ "network_lock_nftables", NO_KERNEL_FEATURE, NULL },
	{ "sockopt_buf_lock", NO_KERNEL_FEATURE, "SO_BUF_LOCK is not saved yet" },
	{ "memfd_hugetlb", NO_KERNEL_FEATURE, NULL }, /* MFD_HUGETLB memfds (cr/shmem.c) */
	{ "move_mount_set_group", KF_MOVE_MOUNT_SET_GROUP, NULL },
	{ "openat2", KF_OPENAT2, NULL },
	{ "get_rseq_conf", KF_PTRACE_GET_RSEQ_CONF, NULL },
	/* asked for by engines through criu's RPC, or by newer criu versions */
	{ "lazy_pages", KF_USERFAULTFD, NULL },
	{ "ipv6_freebind", NO_KERNEL_FEATURE, NULL },
	{ "pagemap_scan_guard_pages", KF_PAGEMAP_SCAN_GUARD, NULL }, /* guard pages kept (cr/pages.c) */
};

size_t criu_feature_count(void)
{
	return ARRAY_SIZE(criu_features);
}

const char *criu_feature_name(size_t i)
{
	return i < ARRAY_SIZE(criu_features) ? criu_features[i].name : NULL;
}

int criu_feature_check(const char *name, char *why, size_t len)
{
	const struct criu_feature *c = NULL;
	const struct kernel_feature_report *k = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(criu_features) && !c; i++)
		if (!strcmp(criu_features[i].name, name))
			c = &criu_features[i];
	if (!c)
		return -ENOENT;
	if (c->needs != NO_KERNEL_FEATURE)
		k = kernel_feature_report(c->needs);
	if (!c->stasis_lacks && (!k || k->present))
		return 1;
	if (!c->stasis_lacks)
		snprintf(why, len, "this kernel lacks %s%s%s%s", k->name, k->detail[0] ? " (" : "",
			 k->detail, k->detail[0] ? ")" : "");
	else if (k)
		snprintf(why, len, "%s; the kernel %s %s", c->stasis_lacks,
			 k->present ? "has" : "lacks", k->name);
	else
		snprintf(why, len, "%s", c->stasis_lacks);
	return 0;
}
