/*
 * unix-inflight: files in flight, carried by messages (SCM_RIGHTS) waiting in unix sockets.
 *   fd 60 -> fd 61, a SOCK_STREAM pair: waiting in 61, in order: "aaa" (no files); "pipe" with
 *   both ends of a pipe holding "pipe-data" (no process holds them any more); "file" with a file
 *   opened O_RDWR|O_APPEND at offset 5 (closed since); "plain"; "epoll" with an epoll (closed
 *   since) watching the eventfd at fd 64 (data 0x1234); "self" with fd 61 itself; "sock" with
 *   one end of a stream pair whose other end is fd 65 ("z-data" waits in it; closed since).
 *   fd 66 -> fd 67, a SOCK_DGRAM pair: waiting in 67: "efd" with an eventfd of count 7 (closed
 *   since), "peer" with fd 66, "me" with fd 67.
 *   fds 62/63: a pipe of the tree's own (a tree holding no pipe cannot have one restored from
 *   messages only: see tests/failure-cases.sh dump/unix-inflight-pipe-alone).
 * After restore and SIGTERM: each message is read with its exact length and brings its files
 * at that read, no earlier: the pipe gives its data and carries more; the file is at offset 5
 * with its flags; the epoll reports the eventfd with its data; "self" is fd 61's open file
 * (kcmp); the stream end gives "z-data" and reaches fd 65; the eventfd counts 7; "peer" and
 * "me" are fds 66 and 67.
 * --pipe-alone: no pipe of the tree's own (fds 62/63 closed): the dump must refuse.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <linux/kcmp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#define MAX_FILES 4

static void send_files(int s, const char *data, const int *fds, int n)
{
	union {
		char buf[CMSG_SPACE(MAX_FILES * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { (void *)data, strlen(data) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = n ? ctl.buf : NULL,
			     .msg_controllen = n ? CMSG_SPACE(n * sizeof(int)) : 0 };
	if (n) {
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	}
	if (sendmsg(s, &mh, 0) != (ssize_t)strlen(data))
		zoo_die("sendmsg %s: %s", data, strerror(errno));
}

/* One message of exactly len bytes at s: it must read want and bring nfds files (into fds). */
static int take(int s, int flags, const char *want, int *fds, int nfds)
{
	union {
		char buf[CMSG_SPACE(MAX_FILES * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	char b[32] = "";
	struct iovec iov = { b, strlen(want) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl) };
	int got = 0;
	ssize_t n = recvmsg(s, &mh, flags | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n >= 0 && c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (int i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (got < MAX_FILES)
				fds[got++] = fd;
			else
				close(fd);
		}
	}
	return n == (ssize_t)strlen(want) && !memcmp(b, want, n) && got == nfds;
}

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* A read that does not wait (a check of data that is gone must not hang). */
static ssize_t read_now(int fd, void *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) == 1 ? read(fd, buf, len) : -1;
}

static int same_file(int a, int b)
{
	return syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, a, b) == 0;
}

/* Corruptions reach the files of a waiting message with a peek at its offset. */
static int peek_files(int off, const char *want, int *fds, int n)
{
	int none = -1, ok;
	setsockopt(61, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off));
	ok = take(61, MSG_PEEK, want, fds, n);
	setsockopt(61, SOL_SOCKET, SO_PEEK_OFF, &none, sizeof(none));
	return ok;
}
static void c_stream(ucontext_t *u) { (void)u; char b[3]; read(61, b, 3); }
static void c_pipe(ucontext_t *u) { (void)u; int f[2]; char b[16]; if (peek_files(3, "pipe", f, 2)) read(f[0], b, sizeof(b)); }
static void c_file(ucontext_t *u) { (void)u; int f[1]; if (peek_files(7, "file", f, 1)) lseek(f[0], 0, SEEK_SET); }
static void c_epoll(ucontext_t *u) { (void)u; int f[1]; if (peek_files(16, "epoll", f, 1)) epoll_ctl(f[0], EPOLL_CTL_DEL, 64, NULL); }
static void c_self(ucontext_t *u) { (void)u; dup3(60, 61, O_CLOEXEC); }
static void c_socket(ucontext_t *u) { (void)u; int f[1]; char b[8]; if (peek_files(25, "sock", f, 1)) read(f[0], b, sizeof(b)); }
static void c_dgram(ucontext_t *u) { (void)u; char b[8]; recv(67, b, sizeof(b), MSG_DONTWAIT); }
static const struct zoo_corruption corruptions[] = {
	{ "stream", c_stream, 0 },
	{ "pipe", c_pipe, 0 },
	{ "file", c_file, 0 },
	{ "epoll", c_epoll, 0 },
	{ "self", c_self, 0 },
	{ "socket", c_socket, 0 },
	{ "dgram", c_dgram, 0 },
};

int main(int argc, char **argv)
{
	int sv[2], p[2], f, ep, efd;
	char path[600], b[32];
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	int pipe_alone = argc > 1 && !strcmp(argv[argc - 1], "--pipe-alone");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		zoo_die("socketpair: %s", strerror(errno));
	zoo_place(sv[0], 60, O_CLOEXEC);
	zoo_place(sv[1], 61, O_CLOEXEC);
	if (pipe(p))
		zoo_die("pipe: %s", strerror(errno));
	zoo_place(p[0], 62, O_CLOEXEC);
	zoo_place(p[1], 63, O_CLOEXEC);
	if (pipe_alone) {
		close(62);
		close(63);
	}
	zoo_place(eventfd(1, 0), 64, O_CLOEXEC);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || write(sv[1], "z-data", 6) != 6)
		zoo_die("socketpair: %s", strerror(errno));
	zoo_place(sv[1], 65, O_CLOEXEC);
	int z = sv[0];

	if (write(60, "aaa", 3) != 3 || pipe(p) || write(p[1], "pipe-data", 9) != 9)
		zoo_die("pipe: %s", strerror(errno));
	send_files(60, "pipe", p, 2);
	close(p[0]);
	close(p[1]);
	snprintf(path, sizeof(path), "%s/data", zoo_tmpdir());
	if (zoo_write_file(path, "0123456789", 10) || (f = open(path, O_RDWR | O_APPEND)) < 0 ||
	    lseek(f, 5, SEEK_SET) != 5)
		zoo_die("%s: %s", path, strerror(errno));
	send_files(60, "file", &f, 1);
	close(f);
	if (write(60, "plain", 5) != 5 || (ep = epoll_create1(0)) < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, 64, &(struct epoll_event){ .events = EPOLLIN, .data.u64 = 0x1234 }))
		zoo_die("epoll: %s", strerror(errno));
	send_files(60, "epoll", &ep, 1);
	close(ep);
	send_files(60, "self", (int[]){ 61 }, 1);
	send_files(60, "sock", &z, 1);
	close(z);

	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) || (efd = eventfd(7, 0)) < 0)
		zoo_die("socketpair: %s", strerror(errno));
	zoo_place(sv[0], 66, O_CLOEXEC);
	zoo_place(sv[1], 67, O_CLOEXEC);
	send_files(66, "efd", &efd, 1);
	close(efd);
	send_files(66, "peer", (int[]){ 66 }, 1);
	send_files(66, "me", (int[]){ 67 }, 1);
	zoo_ready();
	zoo_wait();

	int fds[MAX_FILES] = { -1, -1, -1, -1 };
	CHECK("stream", take(61, 0, "aaa", fds, 0), "the first 3 bytes are not aaa without files");
	if (CHECK("pipe", take(61, 0, "pipe", fds, 2), "no pipe message with 2 files")) {
		ssize_t n = read_now(fds[0], b, sizeof(b));
		CHECK("pipe", n == 9 && !memcmp(b, "pipe-data", 9), "the carried pipe gave %zd bytes", n);
		CHECK("pipe", write(fds[1], "more", 4) == 4 && read_now(fds[0], b, sizeof(b)) == 4,
		      "the carried pipe's ends are not one pipe");
		close_all(fds, 2);
	}
	if (CHECK("file", take(61, 0, "file", fds, 1), "no file message with 1 file")) {
		ssize_t n = read_now(fds[0], b, sizeof(b));
		CHECK("file", n == 5 && !memcmp(b, "56789", 5) && (fcntl(fds[0], F_GETFL) & (O_ACCMODE | O_APPEND)) ==
								     (O_RDWR | O_APPEND),
		      "the carried file read %zd bytes from its offset, flags %#o", n, fcntl(fds[0], F_GETFL));
		close_all(fds, 1);
	}
	CHECK("stream", take(61, 0, "plain", fds, 0), "no plain message without files after the file");
	if (CHECK("epoll", take(61, 0, "epoll", fds, 1), "no epoll message with 1 file")) {
		struct epoll_event ev = { 0 };
		int n = epoll_wait(fds[0], &ev, 1, 0);
		CHECK("epoll", n == 1 && ev.data.u64 == 0x1234 && (ev.events & EPOLLIN),
		      "the carried epoll reported %d events (data %#llx)", n, (unsigned long long)ev.data.u64);
		close_all(fds, 1);
	}
	if (CHECK("self", take(61, 0, "self", fds, 1), "no self message with 1 file")) {
		CHECK("self", same_file(fds[0], 61), "the carried socket is not fd 61's open file");
		close_all(fds, 1);
	}
	if (CHECK("socket", take(61, 0, "sock", fds, 1), "no sock message with 1 file")) {
		ssize_t n = read_now(fds[0], b, sizeof(b));
		CHECK("socket", n == 6 && !memcmp(b, "z-data", 6), "the carried socket gave %zd bytes", n);
		CHECK("socket", write(fds[0], "back", 4) == 4 && read_now(65, b, sizeof(b)) == 4 && !memcmp(b, "back", 4),
		      "the carried socket does not reach fd 65");
		close_all(fds, 1);
	}
	uint64_t count = 0;
	if (CHECK("dgram", take(67, 0, "efd", fds, 1), "no efd datagram with 1 file")) {
		CHECK("dgram", read_now(fds[0], &count, sizeof(count)) == sizeof(count) && count == 7,
		      "the carried eventfd counts %llu", (unsigned long long)count);
		close_all(fds, 1);
	}
	if (CHECK("dgram", take(67, 0, "peer", fds, 1), "no peer datagram with 1 file")) {
		CHECK("dgram", same_file(fds[0], 66), "the carried peer is not fd 66");
		close_all(fds, 1);
	}
	if (CHECK("dgram", take(67, 0, "me", fds, 1), "no me datagram with 1 file")) {
		CHECK("dgram", same_file(fds[0], 67), "the carried socket is not fd 67");
		close_all(fds, 1);
	}
	unlink(path);
	return zoo_finish("7 stream and 3 datagram messages, 8 files in flight");
}
