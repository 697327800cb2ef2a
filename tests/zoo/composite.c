/*
 * composite: a small server. A parent and 4 workers exchange numbered messages all the time:
 * each worker sends to the parent through a pipe (workers 0-1) or a unix socket pair (2-3),
 * and the parent answers each message on a second channel of the same kind. The parent runs
 * an epoll loop over those channels, an eventfd the workers bump, a timerfd ticking every
 * 10 ms and an inotify watch on a directory that each worker touches now and then.
 * The checkpoint falls in the middle of the stream. After SIGTERM the loop stops; every
 * message must have arrived exactly once, in order, on both sides, the eventfd must count
 * exactly the bumps, the timer and the inotify watch must have gone on after the restore.
 * Blocks in: epoll_wait (parent), write/read and nanosleep (workers).
 */
#include "zoo.h"
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#define WORKERS 4

struct shared {
	uint64_t sent[WORKERS], answered_seen[WORKERS], bumps;
	int worker_bad[WORKERS];
};

static struct shared *sh;
static int up[WORKERS][2], down[WORKERS][2]; /* worker -> parent, parent -> worker */
static int efd, tfd, ifd;
static char dir[4200];
static volatile sig_atomic_t stop_workers;

static void on_term(int sig) { (void)sig; stop_workers = 1; }

static int channel(int kind_socket, int fds[2])
{
	return kind_socket ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) : pipe2(fds, O_CLOEXEC);
}

static int read_u64(int fd, uint64_t *v)
{
	size_t got = 0;
	while (got < 8) {
		ssize_t n = read(fd, (char *)v + got, 8 - got);
		if (n < 0 && errno == EINTR && !stop_workers)
			continue;
		if (n <= 0)
			return -1;
		got += n;
	}
	return 0;
}

static void worker(int w)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	int out = up[w][1], in = down[w][0];
	for (uint64_t n = 0; !stop_workers; n++) {
		if (write(out, &n, 8) != 8)
			break;
		sh->sent[w] = n + 1;
		uint64_t one = 1, echo;
		if (write(efd, &one, 8) == 8)
			__atomic_add_fetch(&sh->bumps, 1, __ATOMIC_SEQ_CST);
		if (read_u64(in, &echo)) {
			if (!stop_workers) /* interrupted by SIGTERM: the end, not an error */
				sh->worker_bad[w] = 1;
			break;
		}
		if (echo != n * 3 + (uint64_t)w)
			sh->worker_bad[w] = 1;
		sh->answered_seen[w] = n + 1;
		if (n % 50 == 0) {
			char p[4300];
			snprintf(p, sizeof(p), "%s/w%d", dir, w);
			int f = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			if (f >= 0)
				close(f);
		}
		zoo_sleep_ms(1);
	}
	_exit(0);
}

/* take one message from worker 0 without answering it (never blocks) */
static void c_lose(ucontext_t *u)
{
	(void)u;
	uint64_t v;
	fcntl(up[0][0], F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 1000 && read(up[0][0], &v, 8) != 8; i++)
		zoo_sleep_ms(1);
}
static void c_count(ucontext_t *u) { (void)u; uint64_t one = 1; write(efd, &one, 8); }
static const struct zoo_corruption corruptions[] = {
	{ "order", c_lose, 0 },
	{ "eventfd", c_count, 0 },
};

int main(int argc, char **argv)
{
	pid_t kids[WORKERS];
	uint64_t expect[WORKERS] = { 0 }, ticks = 0, ticks_at_ready = 0, counted = 0;
	int bad_order = 0, notified = 0, notified_after = 0;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(dir, sizeof(dir), "%s/watched", getenv("ZOO_TMPDIR") ? getenv("ZOO_TMPDIR") : "/tmp");
	mkdir(dir, 0700);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct itimerspec every = { { 0, 10000000 }, { 0, 10000000 } };
	if (sh == MAP_FAILED || efd < 0 || tfd < 0 || ifd < 0 || ep < 0 || timerfd_settime(tfd, 0, &every, NULL) ||
	    inotify_add_watch(ifd, dir, IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE) < 0)
		zoo_die("setup: %s", strerror(errno));
	for (int w = 0; w < WORKERS; w++)
		if (channel(w >= 2, up[w]) || channel(w >= 2, down[w]))
			zoo_die("channel: %s", strerror(errno));
	for (int w = 0; w < WORKERS; w++) {
		if ((kids[w] = fork()) == 0)
			worker(w);
		struct epoll_event ev = { EPOLLIN, { .u64 = (uint64_t)w } };
		epoll_ctl(ep, EPOLL_CTL_ADD, up[w][0], &ev);
	}
	struct epoll_event e1 = { EPOLLIN, { .u64 = 100 } }, e2 = { EPOLLIN, { .u64 = 101 } },
			   e3 = { EPOLLIN, { .u64 = 102 } };
	epoll_ctl(ep, EPOLL_CTL_ADD, efd, &e1);
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &e2);
	epoll_ctl(ep, EPOLL_CTL_ADD, ifd, &e3);

	int ready = 0;
	while (!zoo_term) {
		struct epoll_event evs[16];
		int n = epoll_wait(ep, evs, 16, 100);
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64, v;
			if (tag < WORKERS) {
				int w = (int)tag;
				if (read_u64(up[w][0], &v))
					continue;
				if (v != expect[w])
					bad_order = 1;
				expect[w] = v + 1;
				uint64_t echo = v * 3 + (uint64_t)w;
				if (write(down[w][1], &echo, 8) != 8)
					bad_order = 1;
			} else if (tag == 100 && read(efd, &v, 8) == 8) {
				counted += v;
			} else if (tag == 101 && read(tfd, &v, 8) == 8) {
				ticks += v;
			} else if (tag == 102) {
				char buf[4096];
				if (read(ifd, buf, sizeof(buf)) > 0) {
					notified++;
					if (ready)
						notified_after++;
				}
			}
		}
		if (!ready && expect[0] > 100 && expect[3] > 100 && ticks > 5) {
			ready = 1;
			ticks_at_ready = ticks;
			zoo_ready();
		}
	}
	zoo_begin_verify();
	uint64_t ticks_at_term = ticks;
	for (int w = 0; w < WORKERS; w++)
		kill(kids[w], SIGTERM);
	/* drain what the workers still send until they have stopped, answering each */
	for (int w = 0; w < WORKERS; w++) {
		int st = 0;
		bool exited = false;
		fcntl(up[w][0], F_SETFL, O_NONBLOCK);
		for (int tries = 0; tries < 4000; tries++) {
			uint64_t v;
			if (read_u64(up[w][0], &v) == 0) {
				if (v != expect[w])
					bad_order = 1;
				expect[w] = v + 1;
				uint64_t echo = v * 3 + (uint64_t)w;
				write(down[w][1], &echo, 8);
			} else if (exited) {
				break; /* gone, and nothing left in its channel */
			} else {
				exited = waitpid(kids[w], &st, WNOHANG) == kids[w];
				zoo_sleep_ms(1);
			}
		}
		if (!exited)
			waitpid(kids[w], &st, 0);
	}
	uint64_t v = 0;
	while (read(efd, &v, 8) == 8)
		counted += v;
	for (int w = 0; w < WORKERS; w++) {
		CHECK("order", expect[w] == sh->sent[w], "worker %d sent %lu messages, the parent got %lu", w,
		      (unsigned long)sh->sent[w], (unsigned long)expect[w]);
		CHECK("order", !sh->worker_bad[w], "worker %d got a wrong or missing answer", w);
	}
	CHECK("order", !bad_order, "a message arrived out of order or twice");
	CHECK("eventfd", counted == sh->bumps, "eventfd counted %lu bumps, workers made %lu",
	      (unsigned long)counted, (unsigned long)sh->bumps);
	CHECK("timerfd", ticks_at_term > ticks_at_ready, "no timer tick after READY");
	CHECK("inotify", notified_after > 0, "no inotify event after READY");
	char info[96];
	snprintf(info, sizeof(info), "%lu messages, %lu ticks, %d inotify reads",
		 (unsigned long)(expect[0] + expect[1] + expect[2] + expect[3]), (unsigned long)ticks, notified);
	return zoo_finish(info);
}
