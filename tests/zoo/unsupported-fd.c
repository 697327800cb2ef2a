/*
 * unsupported-fd: holds at fd 42 a kind of file the engine does not checkpoint (yet), so a
 * dump must fail - with a message naming fd 42 - and leave the program running unharmed.
 *   $ZOO_UNSUPPORTED_KIND: eventfd (default; counter 7), socket (unbound AF_UNIX SOCK_DGRAM),
 *   signalfd (SIGUSR2, blocked), timerfd (disarmed), inotify, epoll.
 *   Checks after SIGTERM: fd 42 is still that object (and an eventfd still counts 7), a heap
 *   pattern, plus the generic maps/fdset checks (a failed dump must leave nothing behind).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#define FD 42
static char *heap;
static const char *kind = "eventfd";
static char link_before[256];

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

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	const char *k = getenv("ZOO_UNSUPPORTED_KIND");
	if (k && *k)
		kind = k;
	int fd = -1;
	if (!strcmp(kind, "eventfd")) {
		fd = eventfd(7, EFD_CLOEXEC);
	} else if (!strcmp(kind, "socket")) {
		fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
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
	} else if (!strcmp(kind, "epoll")) {
		fd = epoll_create1(EPOLL_CLOEXEC);
	} else {
		zoo_die("unknown ZOO_UNSUPPORTED_KIND '%s'", kind);
	}
	if (fd < 0)
		zoo_die("%s: %s", kind, strerror(errno));
	if (dup3(fd, FD, O_CLOEXEC) != FD)
		zoo_die("dup3: %s", strerror(errno));
	close(fd);
	fd_link(link_before, sizeof(link_before));
	heap = malloc(5000);
	zoo_fill(heap, 5000, 61);

	zoo_ready();
	zoo_wait();

	char now[256];
	fd_link(now, sizeof(now));
	CHECK("fd42", !strcmp(now, link_before), "fd 42 is '%s', was '%s'", now, link_before);
	if (!strcmp(kind, "eventfd")) {
		uint64_t v = 0;
		int fl = fcntl(FD, F_GETFL);
		fcntl(FD, F_SETFL, fl | O_NONBLOCK);
		CHECK("fd42", read(FD, &v, 8) == 8 && v == 7, "eventfd counter is %lu, expected 7", (unsigned long)v);
	}
	long bad = zoo_check_fill(heap, 5000, 61);
	CHECK("pattern", bad < 0, "heap differs at offset %ld", bad);
	char info[64];
	snprintf(info, sizeof(info), "(fd 42: %s)", kind);
	return zoo_finish(info);
}
