/*
 * netlink-talk: a program that keeps asking the kernel over rtnetlink, as a network daemon
 * does, and is dumped in the middle of a conversation about half of the time.
 *   fd 90: NETLINK_ROUTE, SO_RCVTIMEO 3 s. In a loop: a RTM_GETLINK dump request (the answer
 *          comes in parts; the loopback link must be in it, the last part is NLMSG_DONE), then
 *          a RTM_GETLINK request for link 1 alone with NLM_F_ACK (the link, then the ack).
 *          Each request has its own sequence number; every answer must come from the kernel
 *          (port 0) with that number. The program waits 4 ms with each request sent and not
 *          yet read, and 4 ms with nothing going on.
 * A reply lost by the dump or restore (the kernel keeps an unread reply, and the state of a
 * dump it is answering, with the socket) leaves the program waiting: after 3 s it fails.
 * The conversations are a second thread's. The main thread waits in epoll_wait without a
 * timeout on an eventfd the other writes once SIGTERM came (SIGTERM blocked in it): the dump
 * lets the tree go and seizes it again while a conversation is going on, and each seize breaks
 * that wait with an EINTR no signal caused, which stasis must make again.
 * After restore and SIGTERM: no reply lost or out of order, conversations went on after the
 * restore, one more conversation works, and the main thread's wait saw no EINTR.
 * Blocks in: epoll_wait (main), nanosleep and recvfrom (second thread).
 */
#include "zoo.h"
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#define FD 90

static uint32_t seq;
static uint64_t talks;
static char buf[65536];
static int ep, ev;
static pthread_t main_thread;
static volatile int talked = 1;
static volatile int eintrs;      /* the main thread's epoll_wait returns with EINTR */
static volatile int break_wait;  /* corruption "wait" chosen */

static int send_request(uint16_t flags, int ifindex)
{
	struct { struct nlmsghdr h; struct ifinfomsg i; } req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST | flags,
		       .nlmsg_seq = ++seq },
		.i = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex },
	};
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	for (;;) {
		if (sendto(FD, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) == sizeof(req))
			return 1;
		if (errno != EINTR) /* (the dump's seize may interrupt it) */
			return CHECK("talk", 0, "request %u not sent: %s", seq, strerror(errno));
	}
}

/*
 * Reads the answer to request seq: until NLMSG_DONE (dump) or the ack (single), the loopback
 * link in it. 1 done, 0 failed (said).
 */
static int read_answer(int dump)
{
	int saw_lo = 0;
	for (;;) {
		struct sockaddr_nl from = { 0 };
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(FD, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		if (n < 0 && errno == EINTR)
			continue; /* (SIGTERM, or the dump's seize: a wait with a timeout breaks) */
		if (n < 0)
			return CHECK("lost", 0, "no answer to request %u (%s) within 3 s: %s", seq,
				     dump ? "dump" : "single", strerror(errno));
		if (!CHECK("talk", from.nl_pid == 0 && from.nl_groups == 0, "request %u answered by port %u groups %#x",
			   seq, from.nl_pid, from.nl_groups))
			return 0;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (!CHECK("talk", h->nlmsg_seq == seq, "request %u: a message of request %u (type %u)", seq,
				   h->nlmsg_seq, h->nlmsg_type))
				return 0;
			if (h->nlmsg_type == RTM_NEWLINK)
				saw_lo |= ((struct ifinfomsg *)NLMSG_DATA(h))->ifi_index == 1;
			if (h->nlmsg_type == NLMSG_ERROR) {
				int e = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
				return CHECK("talk", !dump && e == 0 && saw_lo, "request %u: error %d (loopback %s)",
					     seq, e, saw_lo ? "seen" : "not seen");
			}
			if (h->nlmsg_type == NLMSG_DONE)
				return CHECK("talk", dump && saw_lo, "request %u: done without the loopback link", seq);
		}
	}
}

/* One conversation: a dump of the links, then link 1 with an ack. 1, or 0 failed. */
static int talk(void)
{
	for (int dump = 1; dump >= 0; dump--) {
		if (!send_request(dump ? NLM_F_DUMP : NLM_F_ACK, dump ? 0 : 1))
			return 0;
		zoo_sleep_ms(4); /* with the answer waiting */
		if (!read_answer(dump))
			return 0;
		zoo_sleep_ms(4);
	}
	talks++;
	return 1;
}

/* The second thread: conversations until SIGTERM, which it alone takes; then the main
 * thread's wait ends. */
static void *talker(void *arg)
{
	(void)arg;
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &term, NULL);
	while (!zoo_term && (talked = talk()))
		;
	/* (the main thread may not be in its wait yet when SIGTERM comes: until it broke) */
	while (break_wait && !eintrs) {
		pthread_kill(main_thread, SIGUSR1);
		zoo_sleep_ms(1);
	}
	uint64_t one = 1;
	if (write(ev, &one, sizeof(one)) != sizeof(one))
		zoo_die("eventfd: %s", strerror(errno));
	return NULL;
}

static void c_lost(ucontext_t *u)
{
	(void)u;
	/* a restore that gives the socket back without what the kernel had queued in it */
	int fresh = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	struct timeval tv = { 3, 0 };
	setsockopt(fresh, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	dup2(fresh, FD);
	close(fresh);
}
static void on_usr1(int sig) { (void)sig; }
static void c_wait(ucontext_t *u)
{
	(void)u;
	break_wait = 1; /* the talker breaks the main thread's wait with SIGUSR1, as a seize does */
}
static const struct zoo_corruption corruptions[] = {
	{ "lost", c_lost, 0 },
	{ "wait", c_wait, 1 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	struct timeval tv = { 3, 0 };
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		zoo_die("netlink: %s", strerror(errno));
	zoo_place(s, FD, O_CLOEXEC);
	struct epoll_event e = { .events = EPOLLIN };
	struct sigaction usr1 = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || (ev = eventfd(0, EFD_CLOEXEC)) < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) || sigaction(SIGUSR1, &usr1, NULL))
		zoo_die("epoll: %s", strerror(errno));
	if (talk() != 1)
		zoo_die("netlink-talk: the first conversation failed");
	main_thread = pthread_self();
	pthread_t t;
	pthread_sigmask(SIG_BLOCK, &term, NULL); /* (SIGTERM goes to the talker) */
	if (pthread_create(&t, NULL, talker, NULL))
		zoo_die("pthread_create");
	zoo_ready();
	int n;
	while ((n = epoll_wait(ep, &e, 1, -1)) <= 0)
		if (n < 0 && errno == EINTR)
			eintrs++;
		else if (n < 0)
			zoo_die("epoll_wait: %s", strerror(errno));
	pthread_join(t, NULL);
	uint64_t before = talks;
	/* one more, with the answer waiting in the socket while the corruption is made */
	int sent = talked && send_request(NLM_F_DUMP, 0);
	zoo_begin_verify();
	if (sent) {
		zoo_sleep_ms(4);
		read_answer(1);
	}
	CHECK("wait", !eintrs, "epoll_wait without a timeout returned EINTR %d times", eintrs);
	char info[64];
	snprintf(info, sizeof(info), "%llu conversations", (unsigned long long)before);
	CHECK("talk", before > 1, "only %llu conversations", (unsigned long long)before);
	return zoo_finish(info);
}
