/*
 * unsupported-fd: holds at fd 42 a kind of file the engine does not checkpoint (yet), so a
 * dump must fail - with a message naming fd 42 - and leave the program running unharmed.
 *   $ZOO_UNSUPPORTED_KIND: eventfd (default; counter 7; now supported), signalfd (SIGUSR2,
 *   blocked), timerfd (disarmed), inotify, dnotify (its directory, F_NOTIFY DN_CREATE,
 *   SIGRTMIN+1),
 *   epoll, pidfd-outside (a pidfd of its parent, outside the tree), io_uring (an io_uring
 *   instance a kernel thread polls, IORING_SETUP_SQPOLL), io_uring-mapped (an io_uring
 *   instance whose rings are mapped, as liburing does, with a read of an empty pipe in
 *   flight: the dump meets the mapping first and must still name fd 42 and io_uring),
 *   io_uring-files (an io_uring instance with 2 registered files, /dev/zero held by no fd: a
 *   direct descriptor), io_uring-eventfd (with an
 *   eventfd registered), io_uring-buffers (with a ring of provided buffers of group 7 in the
 *   process's memory), io_uring-buffer-unmapped (a registered buffer
 *   whose page was unmapped since: the kernel still pins it), io_uring-single (IORING_SETUP_SINGLE_ISSUER, made by a thread that has
 *   exited since: no thread of the process is its submitter), io_uring-forked (its rings mapped,
 *   then a child forked that holds and maps them too, waiting until its parent dies),
 *   epoll-in-flight (an epoll watching a pipe's read end that only a message
 *   waiting in a unix socket holds: sockets at fds 77 and 78, the write end at 79),
 *   ebpf-filter (a UDP socket with an eBPF socket filter, SO_ATTACH_BPF), bpf-queue (a BPF
 *   queue map), bpf-map-twice (a BPF hash map, also at fd 43 through another open of it by
 *   its id), bpf-map-used (a BPF hash map a socket filter program, held by a socket at fd 50,
 *   uses), bpf-map-outside (a BPF hash map a process outside the tree holds too),
 *   netlink-reply (a NETLINK_ROUTE socket holding the kernel's unread reply to its
 *   RTM_GETLINK request for lo; checked to be still there after SIGTERM), tun-host
 *   (/dev/net/tun attached to tun device zunsup0 of the host's network namespace), vsock (an
 *   AF_VSOCK socket: its family named), fuse
 *   (/dev/fuse, as a FUSE server holds it).
 *   Checks after SIGTERM: fd 42 is still that object (and an eventfd still counts 7), a heap
 *   pattern, plus the generic maps/fdset checks (a failed dump must leave nothing behind).
 *   $ZOO_UNSUPPORTED_IN_CHILD=1: a child process holds fd 42 instead (its pid is written to
 *   $ZOO_TMPDIR/child.pid), so the dump of the tree fails on the child; after SIGTERM the
 *   child checks its fd 42 and the parent checks the child's verdict.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#define FD 42
static char *heap;
static const char *kind = "eventfd";
static char link_before[256];
static volatile uint32_t *sq_ring; /* io_uring-mapped: the submission ring's mapping */

static void c_fd(ucontext_t *u)
{
	(void)u;
	int n = open("/dev/null", O_RDONLY);
	dup2(n, FD);
	close(n);
}
static void c_pattern(ucontext_t *u) { (void)u; heap[100] ^= 1; }
static const struct zoo_corruption corruptions[] = {
	{ "fd42", c_fd, 0 },
	{ "pattern", c_pattern, 0 },
};

static void fd_link(char *buf, size_t len)
{
	ssize_t l = readlink("/proc/self/fd/42", buf, len - 1);
	buf[l > 0 ? l : 0] = 0;
}

/* io_uring-single: a ring whose one submitter is this thread */
static void *single_issuer_ring(void *unused)
{
	struct io_uring_params params = { .flags = IORING_SETUP_SINGLE_ISSUER };
	(void)unused;
	return (void *)(long)syscall(SYS_io_uring_setup, 4, &params);
}

static int open_kind(void);

static int move_to_fd42(int fd)
{
	if (dup3(fd, FD, O_CLOEXEC) != FD)
		return -1;
	close(fd);
	/* dnotify: its directory watched for created files, SIGRTMIN+1 (blocked) each time; armed
	 * here, as closing another fd of the file ends the watch */
	sigset_t rt;
	sigemptyset(&rt);
	sigaddset(&rt, SIGRTMIN + 1);
	if (!strcmp(kind, "dnotify") && (sigprocmask(SIG_BLOCK, &rt, NULL) || fcntl(FD, F_SETSIG, SIGRTMIN + 1) ||
					 fcntl(FD, F_NOTIFY, DN_CREATE | DN_MULTISHOT)))
		zoo_die("dnotify: %s", strerror(errno));
	return 0;
}
static int check_fd42(void);
static volatile sig_atomic_t child_term;
static void on_term(int sig) { (void)sig; child_term = 1; }

/* The child of ZOO_UNSUPPORTED_IN_CHILD: holds fd 42, exits 0 if it is intact after SIGTERM. */
static void run_child(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	if (move_to_fd42(open_kind()))
		_exit(2);
	fd_link(link_before, sizeof(link_before));
	while (!child_term)
		zoo_sleep_ms(10);
	_exit(check_fd42() ? 0 : 1);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	const char *k = getenv("ZOO_UNSUPPORTED_KIND");
	if (k && *k)
		kind = k;
	const char *in_child = getenv("ZOO_UNSUPPORTED_IN_CHILD");
	if (in_child && !strcmp(in_child, "1")) {
		char path[4096], pidbuf[32];
		pid_t child = fork();
		if (child == 0)
			run_child();
		snprintf(path, sizeof(path), "%s/child.pid", getenv("ZOO_TMPDIR"));
		snprintf(pidbuf, sizeof(pidbuf), "%d\n", child);
		zoo_write_file(path, pidbuf, strlen(pidbuf));
		heap = malloc(5000);
		zoo_fill(heap, 5000, 61);
		zoo_sleep_ms(100);
		zoo_ready();
		zoo_wait();
		int st = 0;
		kill(child, SIGTERM);
		waitpid(child, &st, 0);
		CHECK("fd42", WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's fd 42 changed (%#x)", st);
		CHECK("pattern", zoo_check_fill(heap, 5000, 61) < 0, "heap differs");
		return zoo_finish("(fd 42 in a child)");
	}
	if (move_to_fd42(open_kind()))
		zoo_die("dup3: %s", strerror(errno));
	fd_link(link_before, sizeof(link_before));
	if (!strcmp(kind, "io_uring-forked")) { /* its rings mapped, then a child holding both */
		sq_ring = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, FD, IORING_OFF_SQ_RING);
		if (sq_ring == MAP_FAILED)
			zoo_die("mmap of the io_uring's rings: %s", strerror(errno));
		sq_ring[0] = sq_ring[1] = 1; /* (what the check after SIGTERM reads, as io_uring-mapped leaves it) */
		zoo_waiting_child();
	}
	if (!strcmp(kind, "io_uring-mapped")) { /* its rings and entries, a read submitted */
		static int fds[2];
		static char buf[8];
		sq_ring = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, FD, IORING_OFF_SQ_RING);
		struct io_uring_sqe *sqes = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, FD, IORING_OFF_SQES);
		if (sq_ring == MAP_FAILED || sqes == MAP_FAILED || pipe(fds))
			zoo_die("mmap of the io_uring's rings: %s", strerror(errno));
		memset(sqes, 0, sizeof(*sqes));
		sqes->opcode = IORING_OP_READ;
		sqes->fd = fds[0];
		sqes->addr = (uintptr_t)buf;
		sqes->len = sizeof(buf);
		sq_ring[1] = 1; /* the tail (the index array is 0 already) */
		if (syscall(SYS_io_uring_enter, FD, 1, 0, 0, NULL, 0) != 1)
			zoo_die("io_uring_enter: %s", strerror(errno));
	}
	heap = malloc(5000);
	zoo_fill(heap, 5000, 61);

	zoo_ready();
	zoo_wait();

	check_fd42();
	/* the ring is still mapped: its head and tail (the read taken) read 1 */
	CHECK("ring", !sq_ring || (sq_ring[0] == 1 && sq_ring[1] == 1), "the io_uring's ring reads %u/%u",
	      sq_ring[0], sq_ring[1]);
	long bad = zoo_check_fill(heap, 5000, 61);
	CHECK("pattern", bad < 0, "heap differs at offset %ld", bad);
	char info[64];
	snprintf(info, sizeof(info), "(fd 42: %s)", kind);
	return zoo_finish(info);
}

/* The object of the selected kind, or exits. */
static int open_kind(void)
{
	int fd = -1;
	if (!strcmp(kind, "eventfd")) {
		fd = eventfd(7, EFD_CLOEXEC);
	} else if (!strcmp(kind, "signalfd")) {
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, SIGUSR2);
		sigprocmask(SIG_BLOCK, &s, NULL);
		fd = signalfd(-1, &s, SFD_CLOEXEC);
	} else if (!strcmp(kind, "timerfd")) {
		fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	} else if (!strcmp(kind, "inotify")) {
		fd = inotify_init1(IN_CLOEXEC);
	} else if (!strcmp(kind, "dnotify")) { /* (watched once at fd 42: move_to_fd42) */
		fd = open(zoo_tmpdir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} else if (!strcmp(kind, "epoll")) {
		fd = epoll_create1(EPOLL_CLOEXEC);
	} else if (!strcmp(kind, "pidfd-outside")) {
		fd = syscall(SYS_pidfd_open, getppid(), 0);
	} else if (!strcmp(kind, "epoll-in-flight")) {
		/* an epoll watching a pipe's read end that only a message waiting in a unix socket
		 * holds (sent from 77 to 78, closed since): no process of the tree holds that file */
		int pp[2], sk[2];
		char b = 0;
		union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } c = { 0 };
		struct iovec iov = { &b, 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
				    .msg_controllen = sizeof(c.buf) };
		fd = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN };
		if (fd < 0 || pipe(pp) || epoll_ctl(fd, EPOLL_CTL_ADD, pp[0], &ev) ||
		    socketpair(AF_UNIX, SOCK_STREAM, 0, sk) || dup2(sk[0], 77) != 77 || dup2(sk[1], 78) != 78 ||
		    dup2(pp[1], 79) != 79)
			zoo_die("epoll-in-flight: %s", strerror(errno));
		c.h.cmsg_level = SOL_SOCKET;
		c.h.cmsg_type = SCM_RIGHTS;
		c.h.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&c.h), &pp[0], sizeof(int));
		if (sendmsg(77, &m, 0) != 1)
			zoo_die("epoll-in-flight: sendmsg: %s", strerror(errno));
		close(pp[0]);
		close(pp[1]);
		close(sk[0]);
		close(sk[1]);
	} else if (!strcmp(kind, "ebpf-filter")) {
		/* a UDP socket filtered by an eBPF program (SO_ATTACH_BPF): "return 0", drop all */
		struct bpf_insn code[] = {
			{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
			{ .code = BPF_JMP | BPF_EXIT },
		};
		union bpf_attr attr = { .prog_type = BPF_PROG_TYPE_SOCKET_FILTER, .insn_cnt = 2,
					.insns = (uintptr_t)code, .license = (uintptr_t)"GPL" };
		int prog = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (prog < 0 || fd < 0 || setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, &prog, sizeof(prog)))
			zoo_die("ebpf-filter: %s", strerror(errno));
		close(prog);
	} else if (!strcmp(kind, "tun-host")) {
		/* attached to a tun device of the host's network namespace, not the tree's own */
		struct ifreq ifr = { .ifr_name = "zunsup0", .ifr_flags = IFF_TUN | IFF_NO_PI };
		fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
		if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr))
			zoo_die("tun-host: %s", strerror(errno));
	} else if (!strcmp(kind, "vsock")) {
		/* a socket of a family no kind takes (AF_VSOCK, as a guest agent holds): refused naming it */
		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			zoo_die("vsock: %s", strerror(errno));
	} else if (!strcmp(kind, "fuse")) {
		/* /dev/fuse, as a FUSE server holds it (the dump refuses it before looking at any
		 * file: those of the file system it serves would wait for it, frozen, for ever) */
		fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	} else if (!strcmp(kind, "bpf-queue")) {
		/* a BPF map of a type not saved: a queue (its entries only pop) */
		union bpf_attr attr = { .map_type = BPF_MAP_TYPE_QUEUE, .value_size = 4, .max_entries = 8 };
		fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
	} else if (!strcmp(kind, "bpf-map-twice")) {
		/* a hash map at fd 42 and at fd 43 through another open of it (by its id) */
		union bpf_attr attr = { .map_type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 4,
					.max_entries = 8 };
		struct bpf_map_info info = { 0 };
		fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
		union bpf_attr get = { .info = { .bpf_fd = fd, .info_len = sizeof(info), .info = (uintptr_t)&info } };
		if (fd < 0 || syscall(SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, &get, sizeof(get)))
			zoo_die("bpf-map-twice: %s", strerror(errno));
		union bpf_attr by_id = { .map_id = info.id };
		int again = syscall(SYS_bpf, BPF_MAP_GET_FD_BY_ID, &by_id, sizeof(by_id));
		if (again < 0 || dup2(again, 43) != 43 || close(again))
			zoo_die("bpf-map-twice: BPF_MAP_GET_FD_BY_ID: %s", strerror(errno));
	} else if (!strcmp(kind, "bpf-map-outside")) {
		/* a hash map also held by a process outside the tree (a double fork's orphan, which
		 * ends when this program does: it waits on a pipe only this program can write) */
		union bpf_attr attr = { .map_type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 4,
					.max_entries = 8 };
		int life[2], ready[2];
		char c;
		fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
		if (fd < 0 || pipe2(life, O_CLOEXEC) || pipe2(ready, O_CLOEXEC))
			zoo_die("bpf-map-outside: %s", strerror(errno));
		pid_t mid = fork();
		if (mid == 0) {
			if (fork() == 0) {
				close(life[1]);
				close(ready[0]);
				close(ready[1]); /* (the parent's read ends: it holds the map now) */
				while (read(life[0], &c, 1) < 0 && errno == EINTR)
					;
				_exit(0);
			}
			_exit(0);
		}
		close(life[0]);
		close(ready[1]);
		if (mid < 0 || waitpid(mid, NULL, 0) != mid || read(ready[0], &c, 1) != 0)
			zoo_die("bpf-map-outside: fork: %s", strerror(errno));
		close(ready[0]);
	} else if (!strcmp(kind, "bpf-map-used")) {
		/* a hash map that a socket filter program (held by a UDP socket at fd 50) looks up */
		union bpf_attr attr = { .map_type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 4,
					.max_entries = 8 };
		fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
		if (fd < 0)
			zoo_die("bpf-map-used: %s", strerror(errno));
		struct bpf_insn code[] = { /* r1 = map; return 0 */
			{ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = BPF_REG_1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = fd },
			{ 0 },
			{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
			{ .code = BPF_JMP | BPF_EXIT },
		};
		union bpf_attr load = { .prog_type = BPF_PROG_TYPE_SOCKET_FILTER, .insn_cnt = 4,
					.insns = (uintptr_t)code, .license = (uintptr_t)"GPL" };
		int prog = syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof(load));
		int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (prog < 0 || sk < 0 || setsockopt(sk, SOL_SOCKET, SO_ATTACH_BPF, &prog, sizeof(prog)) ||
		    dup2(sk, 50) != 50)
			zoo_die("bpf-map-used: %s", strerror(errno));
		close(prog);
		close(sk);
	} else if (!strcmp(kind, "netlink-reply")) {
		struct {
			struct nlmsghdr h;
			struct ifinfomsg i;
		} req = { .h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
				 .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 42 },
			  .i = { .ifi_family = AF_UNSPEC, .ifi_index = 1 } };
		fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
		if (fd >= 0 && send(fd, &req, sizeof(req), 0) != sizeof(req))
			zoo_die("netlink-reply: send: %s", strerror(errno));
	} else if (!strcmp(kind, "io_uring-single")) {
		pthread_t th;
		void *ret = (void *)-1L;
		if (pthread_create(&th, NULL, single_issuer_ring, NULL) || pthread_join(th, &ret))
			zoo_die("io_uring-single: a thread: %s", strerror(errno));
		fd = (int)(long)ret;
	} else if (!strncmp(kind, "io_uring", 8)) {
		struct io_uring_params params = { 0 };
		params.flags = !strcmp(kind, "io_uring") ? IORING_SETUP_SQPOLL : 0;
		fd = syscall(SYS_io_uring_setup, 4, &params);
		int files[2] = { 0, open("/dev/zero", O_RDONLY | O_CLOEXEC) }, efd = eventfd(0, EFD_CLOEXEC);
		static char ring_mem[4096] __attribute__((aligned(4096)));
		struct io_uring_buf_reg reg = { .ring_addr = (uintptr_t)ring_mem, .ring_entries = 8, .bgid = 7 };
		if (fd >= 0 && ((!strcmp(kind, "io_uring-files") &&
				 syscall(SYS_io_uring_register, fd, IORING_REGISTER_FILES, files, 2)) ||
				(!strcmp(kind, "io_uring-eventfd") &&
				 syscall(SYS_io_uring_register, fd, IORING_REGISTER_EVENTFD, &efd, 1)) ||
				(!strcmp(kind, "io_uring-buffers") &&
				 syscall(SYS_io_uring_register, fd, IORING_REGISTER_PBUF_RING, &reg, 1))))
			zoo_die("%s: io_uring_register: %s", kind, strerror(errno));
		close(files[1]); /* (io_uring-files: held by the table alone) */
		if (fd >= 0 && !strcmp(kind, "io_uring-buffer-unmapped")) {
			struct iovec buf = { mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), 4096 };
			if (buf.iov_base == MAP_FAILED || syscall(SYS_io_uring_register, fd, IORING_REGISTER_BUFFERS, &buf, 1) ||
			    munmap(buf.iov_base, 4096))
				zoo_die("%s: %s", kind, strerror(errno));
		}
	} else {
		zoo_die("unknown ZOO_UNSUPPORTED_KIND '%s'", kind);
	}
	if (fd < 0)
		zoo_die("%s: %s", kind, strerror(errno));
	return fd;
}

/* fd 42 is still the same object (and an eventfd still counts 7). */
static int check_fd42(void)
{
	char now[256];
	fd_link(now, sizeof(now));
	if (strcmp(now, link_before)) {
		zoo_failf("fd42", "fd 42 is '%s', was '%s'", now, link_before);
		return 0;
	}
	if (!strcmp(kind, "eventfd")) {
		uint64_t v = 0;
		int fl = fcntl(FD, F_GETFL);
		fcntl(FD, F_SETFL, fl | O_NONBLOCK);
		if (read(FD, &v, 8) != 8 || v != 7) {
			zoo_failf("fd42", "eventfd counter is %lu, expected 7", (unsigned long)v);
			return 0;
		}
	}
	if (!strcmp(kind, "dnotify")) { /* a file made in the directory still signals */
		char path[600];
		sigset_t rt;
		struct timespec second = { 1, 0 };
		sigemptyset(&rt);
		sigaddset(&rt, SIGRTMIN + 1);
		snprintf(path, sizeof(path), "%s/dnotify-probe", zoo_tmpdir());
		int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		siginfo_t si = { 0 };
		int got = sigtimedwait(&rt, &si, &second);
		if (f >= 0)
			close(f);
		unlink(path);
		if (got != SIGRTMIN + 1 || si.si_fd != FD) {
			zoo_failf("fd42", "no SIGRTMIN+1 for fd 42 after a file was made in its directory (%s)",
				  got < 0 ? strerror(errno) : "another signal");
			return 0;
		}
	}
	if (!strcmp(kind, "netlink-reply")) { /* the reply to request 42 still waits */
		char buf[8192];
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		ssize_t n = recv(FD, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < (ssize_t)sizeof(*h) || h->nlmsg_seq != 42 || h->nlmsg_type != RTM_NEWLINK) {
			zoo_failf("fd42", "no RTM_NEWLINK reply to request 42 waiting (%zd bytes)", n);
			return 0;
		}
	}
	return 1;
}
