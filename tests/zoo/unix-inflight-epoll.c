/*
 * unix-inflight-epoll: an epoll carried in flight (SCM_RIGHTS, no process holds it) whose items
 * share fd numbers. Pipes P1..P4, their write ends at 161..164.
 *   P1's read end registered as 60 (EPOLLIN, data 0x1), then moved to 61; P2's read end put at
 *   60 and registered as 60 too (EPOLLIN|EPOLLET, 0x2): two items of number 60, two files held.
 *   P3's read end at 63 registered as 63 (EPOLLIN, 0x3). The epoll and P3's read end go over
 *   fd 40 of a SOCK_STREAM pair (40, 41) in one message "ep" and are closed: only in flight.
 *   P4's read end then put at 63 and registered as 63 (EPOLLIN|EPOLLRDHUP, 0x4) through a
 *   peek of the message: number 63 has two items, one file in flight, one held.
 * After restore and SIGTERM: 41 gives "ep" with two files; the epoll's fdinfo lists exactly the
 * four items (number, events, data, the pipe's inode); nothing is ready; a byte in each pipe
 * fires exactly its item.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/epoll.h>
#include <sys/socket.h>

struct item {
	int tfd;
	uint32_t events;
	uint64_t data;
	int wfd;
};

static const struct item items[] = {
	{ 60, EPOLLIN, 0x1, 161 },
	{ 60, EPOLLIN | EPOLLET, 0x2, 162 },
	{ 63, EPOLLIN, 0x3, 163 },
	{ 63, EPOLLIN | EPOLLRDHUP, 0x4, 164 },
};
#define N_ITEMS ((int)(sizeof(items) / sizeof(items[0])))

/* A pipe with its read end at r and write end at w. */
static void make_pipe(int r, int w)
{
	int p[2];
	if (pipe(p))
		zoo_die("pipe: %s", strerror(errno));
	int hr = fcntl(p[0], F_DUPFD, 200), hw = fcntl(p[1], F_DUPFD, 200);
	close(p[0]);
	close(p[1]);
	zoo_place(hr, r, 0);
	zoo_place(hw, w, 0);
}

static void add(int ep, int fd, const struct item *it)
{
	struct epoll_event ev = { .events = it->events, .data.u64 = it->data };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
		zoo_die("epoll_ctl(ADD, %d): %s", fd, strerror(errno));
}

static uint64_t ino_of(int fd)
{
	struct stat st;
	return fstat(fd, &st) ? 0 : st.st_ino;
}

/* The message's files (n) into fds; its bytes' count, or -1. flags: MSG_PEEK, say. */
static int recv_fds(int via, int *fds, int n, int flags)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	char b[8];
	struct iovec iov = { b, sizeof(b) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl) };
	ssize_t got = recvmsg(via, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | flags);
	struct cmsghdr *cm = got > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(n * sizeof(int)))
		return -1;
	memcpy(fds, CMSG_DATA(cm), n * sizeof(int));
	return (int)got;
}

/* The epoll's items as fdinfo lists them are exactly items (the kernel adds EPOLLERR|EPOLLHUP). */
static int items_listed(int ep)
{
	char path[64], info[4096];
	int seen = 0, ok = 1;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
	if (zoo_read_file(path, info, sizeof(info)) < 0)
		return 0;
	for (const char *l = strstr(info, "tfd:"); l; l = strstr(l + 4, "tfd:")) {
		int tfd = -1, found = 0;
		unsigned events = 0;
		unsigned long long data = 0;
		unsigned long ino = 0;
		sscanf(l, "tfd: %d events: %x data: %llx pos:%*d ino:%lx", &tfd, &events, &data, &ino);
		seen++;
		for (int k = 0; k < N_ITEMS; k++)
			found |= items[k].tfd == tfd && items[k].events == (events & ~(EPOLLERR | EPOLLHUP)) &&
				 items[k].data == data && ino_of(items[k].wfd) == ino;
		ok &= CHECK("items", found, "item tfd %d events %#x data %#llx ino %lx not expected", tfd, events,
			    data, ino);
	}
	return CHECK("items", seen == N_ITEMS, "%d items in fdinfo, expected %d", seen, N_ITEMS) && ok;
}

/* Nothing is ready; a byte in each pipe fires exactly its item (then it is read out). */
static void fire(int ep, const int *read_end)
{
	struct epoll_event ev[8];
	int got = epoll_wait(ep, ev, 8, 0);
	if (!CHECK("fire", got == 0, "%d items ready before any write", got))
		return;
	for (int k = 0; k < N_ITEMS; k++) {
		char c;
		if (write(items[k].wfd, "x", 1) != 1)
			zoo_die("write %d: %s", items[k].wfd, strerror(errno));
		got = epoll_wait(ep, ev, 8, 0);
		CHECK("fire", got == 1 && ev[0].data.u64 == items[k].data,
		      "a byte in the pipe of item %#llx fired %d items (first %#llx)",
		      (unsigned long long)items[k].data, got, got > 0 ? (unsigned long long)ev[0].data.u64 : 0ull);
		if (read(read_end[k], &c, 1) != 1)
			zoo_die("read: %s", strerror(errno));
	}
}

/* P2's item (file at 60, number 60) takes other data. */
static void c_items(ucontext_t *u)
{
	(void)u;
	int f[2];
	if (recv_fds(41, f, 2, MSG_PEEK) < 0)
		return;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = 0xdead };
	epoll_ctl(f[0], EPOLL_CTL_MOD, 60, &ev);
	close(f[0]);
	close(f[1]);
}
static void c_fire(ucontext_t *u) { (void)u; if (write(163, "x", 1)) {} } /* P3 ready before the check */
static void c_message(ucontext_t *u)
{
	(void)u;
	int f[2];
	if (recv_fds(41, f, 2, 0) >= 0) {
		close(f[0]);
		close(f[1]);
	}
}
static const struct zoo_corruption corruptions[] = {
	{ "items", c_items, 0 },
	{ "fire", c_fire, 0 },
	{ "message", c_message, 0 },
};

int main(int argc, char **argv)
{
	int sv[2], f[2];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		zoo_die("socketpair: %s", strerror(errno));
	zoo_place(sv[0], 40, 0);
	zoo_place(sv[1], 41, 0);
	zoo_place(epoll_create1(EPOLL_CLOEXEC), 50, 0);
	make_pipe(60, 161);
	add(50, 60, &items[0]);
	zoo_place(dup(60), 61, 0);
	close(60);
	make_pipe(60, 162);
	add(50, 60, &items[1]);
	make_pipe(63, 163);
	add(50, 63, &items[2]);
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { "ep", 2 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
	memcpy(CMSG_DATA(cm), (int[]){ 50, 63 }, 2 * sizeof(int));
	if (sendmsg(40, &mh, 0) != 2)
		zoo_die("sendmsg: %s", strerror(errno));
	close(50);
	close(63);
	make_pipe(63, 164);
	/* P4 registered as 63: through a peek of the epoll in flight (no process holds it) */
	if (recv_fds(41, f, 2, MSG_PEEK) < 0)
		zoo_die("peek: %s", strerror(errno));
	add(f[0], 63, &items[3]);
	close(f[0]);
	close(f[1]);

	zoo_ready();
	zoo_wait();

	if (CHECK("message", recv_fds(41, f, 2, 0) == 2, "no message \"ep\" with 2 files")) {
		int read_end[N_ITEMS] = { 61, 60, f[1], 63 };
		if (items_listed(f[0]))
			fire(f[0], read_end);
		close(f[0]);
		close(f[1]);
	}
	return zoo_finish("an epoll in flight with two items under each of two numbers");
}
