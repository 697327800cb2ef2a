/*
 * The one compat header for kernel ABI that is newer than the installed kernel headers
 * (Debian 12 ships 6.1 uapi headers; the kernel we run on is 6.18).
 *
 * Every definition is guarded, so this works with old and new headers alike: when the
 * installed headers already have something, theirs is used. Values are the kernel's uapi
 * values, exactly (include/uapi/linux/{fs,userfaultfd,sched,ptrace,prctl}.h and
 * Documentation/admin-guide/mm/pagemap.rst).
 *
 * Include it instead of <linux/ptrace.h>: it pulls in <sys/ptrace.h> first and then
 * <linux/ptrace.h>, the only order in which glibc accepts both.
 */
#ifndef STASIS_COMPAT_KERNEL_ABI_H
#define STASIS_COMPAT_KERNEL_ABI_H

#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include <linux/fs.h>
#include <linux/prctl.h>
#include <linux/ptrace.h>
#include <linux/sched.h>
#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <linux/version.h>

#ifndef KERNEL_VERSION
#define KERNEL_VERSION(a, b, c) (((a) << 16) + ((b) << 8) + (c))
#endif

/* ---- system call numbers: the generic table (>= 424) is the same on every arch ---- */

#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif

/* ---- clone3 (linux/sched.h): struct clone_args with set_tid (5.5) and cgroup (5.7) ---- */

#ifndef CLONE_ARGS_SIZE_VER0
struct clone_args {
	__aligned_u64 flags;
	__aligned_u64 pidfd;
	__aligned_u64 child_tid;
	__aligned_u64 parent_tid;
	__aligned_u64 exit_signal;
	__aligned_u64 stack;
	__aligned_u64 stack_size;
	__aligned_u64 tls;
	__aligned_u64 set_tid;
	__aligned_u64 set_tid_size;
	__aligned_u64 cgroup;
};
#define CLONE_ARGS_SIZE_VER0 64 /* up to tls */
#define CLONE_ARGS_SIZE_VER1 80 /* + set_tid, set_tid_size */
#define CLONE_ARGS_SIZE_VER2 88 /* + cgroup */
#elif !defined(CLONE_ARGS_SIZE_VER1) || !defined(CLONE_ARGS_SIZE_VER2)
#error "kernel headers 5.3/5.4: struct clone_args has no set_tid/cgroup; install headers >= 5.7"
#endif

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/*
 * ---- pidfd information (linux/pidfd.h): PIDFD_GET_INFO (6.13), PIDFD_INFO_EXIT (6.15) ----
 * Our own name for the first version of the struct (64 bytes): 6.13/6.14 headers call its
 * exit_code field __spare0. The kernel answers for the size the command encodes. Of a process
 * that exited and was reaped it tells exit_code (the wait status) and the cgroup it was in;
 * older kernels fail with ENOTTY (no ioctl), EINVAL or ESRCH (no PIDFD_INFO_EXIT).
 */
struct pidfd_info_v0 {
	__u64 mask;
	__u64 cgroupid;
	__u32 pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	__s32 exit_code;
};
#define PIDFD_GET_INFO_V0 _IOWR(0xFF, 11, struct pidfd_info_v0)
#ifndef PIDFD_INFO_EXIT
#define PIDFD_INFO_EXIT (1UL << 3)
#endif

/* A namespace of a process by its pidfd (6.11): this one even before a process is in it
 * (/proc/PID/ns/pid_for_children is not there until the namespace has its init); the others
 * whatever the caller's /proc (cr/files/nsfile.c). */
#ifndef PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE
#define PIDFD_GET_CGROUP_NAMESPACE _IO(0xFF, 1)
#define PIDFD_GET_IPC_NAMESPACE _IO(0xFF, 2)
#define PIDFD_GET_MNT_NAMESPACE _IO(0xFF, 3)
#define PIDFD_GET_NET_NAMESPACE _IO(0xFF, 4)
#define PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE _IO(0xFF, 6)
#define PIDFD_GET_UTS_NAMESPACE _IO(0xFF, 10)
#endif

/* ---- ptrace (linux/ptrace.h, 5.13) ---- */

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 13, 0)
struct ptrace_rseq_configuration {
	__u64 rseq_abi_pointer;
	__u32 rseq_abi_size;
	__u32 signature;
	__u32 flags;
	__u32 pad;
};
#endif
/* Syscall user dispatch of a tracee (6.4); inclusive regions (PR_SYS_DISPATCH_INCLUSIVE_ON, newer)
 * are told as an exclusive one whose offset + len wraps around. */
#ifndef PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG
#define PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG 0x4210
#define PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG 0x4211
#endif
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 4, 0)
struct ptrace_sud_config {
	__u64 mode;
	__u64 selector;
	__u64 offset;
	__u64 len;
};
#endif
#ifndef PR_SYS_DISPATCH_INCLUSIVE_ON
#define PR_SYS_DISPATCH_INCLUSIVE_ON 2
#endif
#ifndef PTRACE_PEEKSIGINFO_SHARED
#define PTRACE_PEEKSIGINFO_SHARED (1 << 0)
#endif

/* ---- prctl memory-deny-write-execute (6.3) and KSM for a whole process (6.4) ---- */

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#endif
#ifndef PR_MDWE_REFUSE_EXEC_GAIN
#define PR_MDWE_REFUSE_EXEC_GAIN (1UL << 0)
#endif
#ifndef PR_MDWE_NO_INHERIT
#define PR_MDWE_NO_INHERIT (1UL << 1)
#endif
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif

/* ---- prctl(PR_SET_MM, PR_SET_MM_MAP) (linux/prctl.h, 3.18) ---- */

#ifndef PR_SET_MM
#define PR_SET_MM 35
#endif
#ifndef PR_SET_MM_MAP
#define PR_SET_MM_MAP 14
#define PR_SET_MM_MAP_SIZE 15
struct prctl_mm_map {
	__u64 start_code;
	__u64 end_code;
	__u64 start_data;
	__u64 end_data;
	__u64 start_brk;
	__u64 brk;
	__u64 start_stack;
	__u64 arg_start;
	__u64 arg_end;
	__u64 env_start;
	__u64 env_end;
	__u64 *auxv;
	__u32 auxv_size;
	__u32 exe_fd;
};
#endif

/* ---- userfaultfd (linux/userfaultfd.h) ---- */

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC 0xAA
#define USERFAULTFD_IOC_NEW _IO(USERFAULTFD_IOC, 0x00) /* on /dev/userfaultfd, 6.1 */
#endif
#ifndef UFFD_FEATURE_EXACT_ADDRESS
#define UFFD_FEATURE_EXACT_ADDRESS (1 << 11)
#endif
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13) /* 6.4 */
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14) /* 6.6 */
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15) /* 6.7; implies WP_UNPOPULATED */
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16) /* 6.8 */
#endif

#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif

#ifndef UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
struct uffdio_poison {
	struct uffdio_range range;
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
	__u64 mode;
	__s64 updated; /* written by the kernel */
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

#ifndef UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
struct uffdio_move {
	__u64 dst;
	__u64 src;
	__u64 len;
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
	__u64 mode;
	__s64 move; /* written by the kernel */
};
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif

/* ---- PAGEMAP_SCAN ioctl on /proc/PID/pagemap (linux/fs.h, 6.7) ---- */

#ifndef PAGEMAP_SCAN
#define PROCFS_IOCTL_MAGIC 'f'

/* Categories: masks in struct pm_scan_arg, reported in page_region.categories. */
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_HUGE (1 << 6)
#define PAGE_IS_SOFT_DIRTY (1 << 7)

/* One run of pages [start, end) that share the same categories. */
struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

/* Flags of struct pm_scan_arg */
#define PM_SCAN_WP_MATCHING (1 << 0)   /* write-protect the matched pages */
#define PM_SCAN_CHECK_WPASYNC (1 << 1) /* fail on a page without async uffd-wp */

struct pm_scan_arg {
	__u64 size;  /* sizeof(struct pm_scan_arg) */
	__u64 flags; /* PM_SCAN_* */
	__u64 start;
	__u64 end;
	__u64 walk_end; /* written by the kernel: where the walk stopped */
	__u64 vec;      /* struct page_region array */
	__u64 vec_len;
	__u64 max_pages; /* 0: no limit */
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};

#define PAGEMAP_SCAN _IOWR(PROCFS_IOCTL_MAGIC, 16, struct pm_scan_arg)
#endif

#ifndef PAGE_IS_GUARD
#define PAGE_IS_GUARD (1 << 8) /* 6.15: a MADV_GUARD_INSTALL guard page */
#endif

/* ---- madvise guard regions (asm-generic/mman-common.h, 6.13) ---- */

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103
#endif

/* ---- mmap() of memory the kernel may drop under pressure (linux/mman.h, 6.11) ---- */

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif

/*
 * ---- /proc/PID/pagemap entries: one __u64 per page (not in any uapi header; the ABI is
 * Documentation/admin-guide/mm/pagemap.rst) ----
 */
#define PME_PFN_MASK ((1ULL << 55) - 1) /* bits 0-54, zero without CAP_SYS_ADMIN */
#define PME_SOFT_DIRTY (1ULL << 55)
#define PME_EXCLUSIVE (1ULL << 56) /* page mapped exclusively */
#define PME_UFFD_WP (1ULL << 57)   /* pte is uffd write-protected */
#define PME_GUARD (1ULL << 58)     /* pte is a guard region (6.15) */
#define PME_FILE (1ULL << 61)      /* file page or shared anon */
#define PME_SWAP (1ULL << 62)
#define PME_PRESENT (1ULL << 63)

/* /proc/PID/clear_refs: "4" clears the soft-dirty bits */
#define CLEAR_REFS_SOFT_DIRTY "4"

/* ---- layout checks against the kernel ABI ---- */

_Static_assert(sizeof(struct clone_args) >= CLONE_ARGS_SIZE_VER2, "struct clone_args");
_Static_assert(sizeof(struct ptrace_rseq_configuration) == 24, "struct ptrace_rseq_configuration");
_Static_assert(sizeof(struct page_region) == 24, "struct page_region");
_Static_assert(sizeof(struct pm_scan_arg) == 96, "struct pm_scan_arg");
_Static_assert(PAGEMAP_SCAN == 0xc0606610, "PAGEMAP_SCAN ioctl number");
_Static_assert(sizeof(struct uffdio_move) == 40, "struct uffdio_move");
_Static_assert(sizeof(struct uffdio_poison) == 32, "struct uffdio_poison");
#ifdef __LP64__
_Static_assert(sizeof(struct prctl_mm_map) == 104, "struct prctl_mm_map");
#endif

/* ---- memfd: executable or not (6.3) ---- */

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

/* The open file flag the kernel shows in fdinfo (glibc's O_LARGEFILE is 0 on x86_64). */
#define KERNEL_O_LARGEFILE 0100000

/* linux/inotify.h (4.19; CONFIG_CHECKPOINT_RESTORE): the wd the next watch gets */
#ifndef INOTIFY_IOC_SETNEXTWD
#define INOTIFY_IOC_SETNEXTWD _IOW('I', 0, int32_t)
#endif

/* linux/in.h (6.3): the local ports a socket may be bound to, low | high << 16 */
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif

/* A unix socket's receiver gets a pidfd of each message's sender (SCM_PIDFD), 6.5 */
#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
/* Which of a socket's buffer sizes the user set (SOCK_SNDBUF_LOCK 1, SOCK_RCVBUF_LOCK 2), 5.14 */
#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif

/* linux/nexthop.h's NHA_OP_FLAGS (an enum constant, 6.10): in a group's dump, flags of the
 * reply (NHA_OP_FLAG_RESP_GRP_RESVD_0) that a new nexthop does not take */
#define STASIS_NHA_OP_FLAGS 14

/* linux/if_link.h's IFLA_BRPORT_* after 6.1 (enum constants): a bridge port's MAC authentication
 * bypass (6.2), its multicast group limit (6.3), per-VLAN neighbour suppression (6.7) and the
 * nexthop group it falls back to (6.7) */
#define STASIS_IFLA_BRPORT_MAB 40
#define STASIS_IFLA_BRPORT_MCAST_MAX_GROUPS 42
#define STASIS_IFLA_BRPORT_NEIGH_VLAN_SUPPRESS 43
#define STASIS_IFLA_BRPORT_BACKUP_NHID 44

/* linux/if_link.h's IFLA_* after 6.1 (enum constants): the largest GSO and GRO packets of
 * IPv4 (6.3; the IFLA_GSO_MAX_SIZE ones are IPv6's from then) */
#define STASIS_IFLA_GSO_IPV4_MAX_SIZE 64
#define STASIS_IFLA_GRO_IPV4_MAX_SIZE 65

/* linux/bpf.h's TCX attach points (enum constants, 6.6): a program on an interface's ingress
 * or egress through a BPF link, which tc does not list */
#define STASIS_BPF_TCX_INGRESS 46
#define STASIS_BPF_TCX_EGRESS 47

/* net/udplite.h (not exported): a UDP-Lite socket's checksum coverage, level IPPROTO_UDPLITE */
#ifndef UDPLITE_SEND_CSCOV
#define UDPLITE_SEND_CSCOV 10
#define UDPLITE_RECV_CSCOV 11
#endif

/* linux/io_uring.h after 6.1: rings in memory the process gives (6.5: the addresses go in
 * sq_off.user_addr and cq_off.user_addr, resv2 in 6.1's header), submission rings without an
 * index array (6.6), the state of a group of provided buffers (IORING_REGISTER_PBUF_STATUS,
 * 6.8; an enum constant), buffer rings in the kernel's memory (6.4), io_uring_register of a
 * registered ring (6.3) */
#ifndef IORING_SETUP_NO_MMAP
#define IORING_SETUP_NO_MMAP (1U << 14)
#endif
#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY (1U << 16)
#endif
#define STASIS_IORING_REGISTER_PBUF_STATUS 26
#ifndef IOU_PBUF_RING_MMAP
#define IOU_PBUF_RING_MMAP 1 /* 6.4: the kernel allocates a buffer ring's memory */
#endif
struct stasis_io_uring_buf_reg { /* 6.4's struct io_uring_buf_reg: flags, once pad */
	__u64 ring_addr;
	__u32 ring_entries;
	__u16 bgid;
	__u16 flags;
	__u64 resv[3];
};
#ifndef IORING_REGISTER_USE_REGISTERED_RING
#define IORING_REGISTER_USE_REGISTERED_RING (1U << 31) /* 6.3: io_uring_register by index */
#endif
struct stasis_io_uring_buf_status {
	__u32 buf_group;
	__u32 head;
	__u32 resv[8];
};

#endif
