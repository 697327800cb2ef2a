/*
 * tcp-connecting: a connect under way (SYN_SENT) to a listener whose accept queue is full
 * (dumped with --tcp-established).
 *   fd 60 listens on 127.0.0.1 with backlog 0: one connection fits its queue;
 *   fd 61 connected to it, never accepted: its connection fills the queue;
 *   fd 62 (O_NONBLOCK) connecting to it: its SYNs are dropped while the queue is full, so it
 *          stays in SYN_SENT.
 * After restore and SIGTERM: fd 62 is still connecting (SYN_SENT, O_NONBLOCK); the listener
 * accepts fd 61's connection first (its port); then fd 62's connect completes (POLLOUT,
 * SO_ERROR 0: the SYN sent again is taken once the queue has room), the listener accepts it
 * and bytes go both ways on both connections.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include "zoo-net.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

static struct sockaddr_in listen_sa;

static int tcp_state(int fd)
{
	struct tcp_info ti = { 0 };
	socklen_t len = sizeof(ti);
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ? -1 : ti.tcpi_state;
}

static int port_of(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	return getsockname(fd, (struct sockaddr *)&a, &len) ? -1 : ntohs(a.sin_port);
}

static int peer_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	return getpeername(fd, (struct sockaddr *)&a, &len) ? -1 : ntohs(a.sin_port);
}

/* what a restore that let fd 62's SYN take the queue's place would leave: fd 61's connection
 * is not the one waiting */
static void c_queue(ucontext_t *u)
{
	(void)u;
	int a = accept(60, NULL, NULL);
	if (a >= 0)
		close(a);
}
static void c_connect(ucontext_t *u)
{
	(void)u; /* a fresh socket where the connecting one was */
	zoo_place(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), 62, 0);
}
static const struct zoo_corruption corruptions[] = {
	{ "queue", c_queue, 0 },
	{ "connect", c_connect, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	int l = socket(AF_INET, SOCK_STREAM, 0);
	listen_sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(listen_sa);
	if (l < 0 || bind(l, (struct sockaddr *)&listen_sa, len) || listen(l, 0) ||
	    getsockname(l, (struct sockaddr *)&listen_sa, &len))
		zoo_die("listener: %s", strerror(errno));
	zoo_place(l, 60, O_CLOEXEC);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&listen_sa, sizeof(listen_sa)))
		zoo_die("connect: %s", strerror(errno));
	zoo_place(c, 61, O_CLOEXEC);
	zoo_sleep_ms(50);
	int w = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (w < 0 || !connect(w, (struct sockaddr *)&listen_sa, sizeof(listen_sa)) || errno != EINPROGRESS)
		zoo_die("connecting: %s", strerror(errno));
	zoo_place(w, 62, O_CLOEXEC);
	zoo_sleep_ms(200);
	if (tcp_state(62) != TCP_SYN_SENT)
		zoo_die("fd 62 is in TCP state %d, not SYN_SENT", tcp_state(62));
	int port61 = port_of(61), port62 = port_of(62);
	zoo_ready();
	zoo_wait();

	CHECK("connect", tcp_state(62) == TCP_SYN_SENT && (fcntl(62, F_GETFL) & O_NONBLOCK),
	      "fd 62 is in TCP state %d (flags %#x), not connecting", tcp_state(62), fcntl(62, F_GETFL));
	int a1 = accept(60, NULL, NULL);
	CHECK("queue", a1 >= 0 && peer_port(a1) == port61, "the first connection accepted is from port %d, not fd 61's %d",
	      a1 >= 0 ? peer_port(a1) : -1, port61);
	struct pollfd p = { 62, POLLOUT, 0 };
	int err = -1;
	socklen_t elen = sizeof(err);
	CHECK("connect", poll(&p, 1, 8000) == 1 && !getsockopt(62, SOL_SOCKET, SO_ERROR, &err, &elen) && !err,
	      "fd 62's connect did not complete within 8 s (revents %#x, error %d)", p.revents, err);
	struct pollfd lp = { 60, POLLIN, 0 };
	int a2 = poll(&lp, 1, 2000) == 1 ? accept(60, NULL, NULL) : -1;
	CHECK("connect", a2 >= 0 && peer_port(a2) == port62, "fd 62's connection was not accepted (port %d, not %d)",
	      a2 >= 0 ? peer_port(a2) : -1, port62);
	if (a1 >= 0)
		CHECK("queue", zoo_stream_carries(61, a1, "one") && zoo_stream_carries(a1, 61, "eno"),
		      "fd 61's connection carries nothing");
	if (a2 >= 0)
		CHECK("connect", zoo_stream_carries(62, a2, "two") && zoo_stream_carries(a2, 62, "owt"),
		      "fd 62's connection carries nothing");
	return zoo_finish("a connect under way to a listener whose queue is full");
}
