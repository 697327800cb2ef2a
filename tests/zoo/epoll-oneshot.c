/*
 * epoll-oneshot: EPOLLONESHOT items that fired before the dump (the kernel then keeps only the
 * item's private bits: disarmed until EPOLL_CTL_MOD), next to armed and other kinds of items.
 * Epoll at fd 50; its items:
 *   A eventfd at 60, count 1: EPOLLIN|EPOLLONESHOT, fired (disarmed), still readable;
 *   B socketpair end at 61 (peer at 62): EPOLLIN|EPOLLRDHUP|EPOLLONESHOT|EPOLLET, fired on a
 *     byte, which was read (disarmed, writable);
 *   C pipe read end at 63 (write end 64): EPOLLIN|EPOLLONESHOT, never fired (armed);
 *   D eventfd at 65, count 1: EPOLLIN|EPOLLEXCLUSIVE (level-triggered, ready);
 *   E eventfd at 66, count 0: EPOLLIN|EPOLLET|EPOLLWAKEUP.
 * After restore and SIGTERM: fdinfo gives each item the events it had (A and B only their
 * private bits, not EPOLLERR|EPOLLHUP: armed for nothing); only D is ready; B's peer closed
 * (a hangup) fires nothing, a byte into C's pipe fires C once; EPOLL_CTL_MOD re-arms A, which
 * fires.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#define EP 50
enum { A = 60, B = 61, B_PEER = 62, C = 63, C_WRITE = 64, D = 65, E = 66 };

static const struct {
	int fd;
	uint32_t events;
} items[] = {
	{ A, EPOLLIN | EPOLLONESHOT },
	{ B, EPOLLIN | EPOLLRDHUP | EPOLLONESHOT | EPOLLET },
	{ C, EPOLLIN | EPOLLONESHOT },
	{ D, EPOLLIN | EPOLLEXCLUSIVE },
	{ E, EPOLLIN | EPOLLET | EPOLLWAKEUP },
};
#define N_ITEMS (int)(sizeof(items) / sizeof(items[0]))

static unsigned events_before[N_ITEMS];

/* The item of fd's events as fdinfo shows them (~0u: not listed). */
static unsigned listed_events(int fd)
{
	char info[4096], key[48];
	unsigned events = ~0u;

	if (zoo_read_file("/proc/self/fdinfo/50", info, sizeof(info)) < 0)
		return ~0u;
	snprintf(key, sizeof(key), "tfd: %8d events: ", fd);
	const char *l = strstr(info, key);
	if (l)
		sscanf(l + strlen(key), "%x", &events);
	return events;
}

/* Fired items' fds, as a bit mask of their index in items. */
static unsigned fired(void)
{
	struct epoll_event ev[8];
	unsigned mask = 0;
	int n = epoll_wait(EP, ev, 8, 0);

	for (int i = 0; i < n; i++)
		for (int k = 0; k < N_ITEMS; k++)
			mask |= ev[i].data.u64 == (uint64_t)items[k].fd ? 1u << k : 0;
	return mask;
}

static void c_rearmed(ucontext_t *u)
{
	(void)u;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT | EPOLLET, .data.u64 = B };
	epoll_ctl(EP, EPOLL_CTL_MOD, B, &ev);
}
static void c_fired(ucontext_t *u)
{
	(void)u;
	struct epoll_event ev[8];
	epoll_wait(EP, ev, 8, 0); /* C is armed: a byte, then a wait that disarms it */
	if (write(C_WRITE, "x", 1) == 1)
		epoll_wait(EP, ev, 8, 0);
}

static const struct zoo_corruption corruptions[] = {
	{ "disarmed", c_rearmed, 0 },
	{ "armed", c_fired, 0 },
};

int main(int argc, char **argv)
{
	int sp[2], p[2];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	zoo_place(epoll_create1(EPOLL_CLOEXEC), EP, 0);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || pipe(p))
		zoo_die("socketpair, pipe: %s", strerror(errno));
	zoo_place(eventfd(1, 0), A, 0);
	zoo_place(sp[0], B, 0);
	zoo_place(sp[1], B_PEER, 0);
	zoo_place(p[0], C, 0);
	zoo_place(p[1], C_WRITE, 0);
	zoo_place(eventfd(1, 0), D, 0);
	zoo_place(eventfd(0, 0), E, 0);
	for (int k = 0; k < N_ITEMS; k++) {
		struct epoll_event ev = { .events = items[k].events, .data.u64 = items[k].fd };
		if (epoll_ctl(EP, EPOLL_CTL_ADD, items[k].fd, &ev))
			zoo_die("epoll_ctl ADD %d: %s", items[k].fd, strerror(errno));
	}
	if (write(B_PEER, "b", 1) != 1)
		zoo_die("write: %s", strerror(errno));
	unsigned first = fired(); /* A, B (disarmed now), D */
	char c;
	if (first != 0x0b || read(B, &c, 1) != 1)
		zoo_die("first wait fired %#x, expected A, B and D (0xb)", first);
	for (int k = 0; k < N_ITEMS; k++)
		events_before[k] = listed_events(items[k].fd);
	if ((events_before[0] & ~(unsigned)EPOLLONESHOT) || (events_before[1] & ~(unsigned)(EPOLLONESHOT | EPOLLET)))
		zoo_die("fired oneshot items still armed: A %#x, B %#x", events_before[0], events_before[1]);
	zoo_ready();
	zoo_wait();
	zoo_begin_verify();

	for (int k = 0; k < N_ITEMS; k++) {
		unsigned now = listed_events(items[k].fd);
		CHECK(k < 2 ? "disarmed" : "armed", now == events_before[k], "item of fd %d: events %#x, were %#x",
		      items[k].fd, now, events_before[k]);
	}
	unsigned now = fired();
	CHECK("armed", now == 1u << 3, "ready items %#x, expected D alone (0x8)", now);
	close(B_PEER);
	now = fired();
	CHECK("disarmed", now == 1u << 3, "after B's hangup: ready items %#x, expected D alone (0x8)", now);
	if (write(C_WRITE, "x", 1) != 1)
		zoo_die("write: %s", strerror(errno));
	now = fired();
	CHECK("armed", now == (1u << 2 | 1u << 3), "after a byte for C: ready items %#x, expected C and D (0xc)", now);
	now = fired();
	CHECK("armed", now == 1u << 3, "C fired twice: ready items %#x", now);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = A };
	epoll_ctl(EP, EPOLL_CTL_MOD, A, &ev);
	now = fired();
	CHECK("disarmed", now == (1u << 0 | 1u << 3), "A re-armed: ready items %#x, expected A and D (0x9)", now);
	return zoo_finish("2 fired oneshot items disarmed, 1 armed, exclusive, edge-triggered");
}
