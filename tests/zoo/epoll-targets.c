/*
 * epoll-targets: epoll items whose file is no longer open at the fd number they were
 * registered with (the kernel keys an item by file and number, and keeps it while the file
 * lives). Pipes A..I; "X at r/w" is a pipe's read and write end.
 *   E1 at fd 50, in the parent:
 *     - A registered as 60 (EPOLLIN, data 0xa1), then moved to 61 (dup2, close 60);
 *     - B at 63 registered as 63 (EPOLLIN, 0xb1) and, through a dup at 64 closed since, as 64
 *       (EPOLLIN|EPOLLET, 0xb2): one file, two items;
 *     - C registered as 65 (EPOLLIN|EPOLLRDHUP, 0xc1), moved to 66; then D put at 65 and
 *       registered as 65 too (EPOLLIN, 0xd1): two items of one number, two files;
 *     - E registered as 67 (EPOLLIN, 0xe1), moved to 68; 67 now holds an eventfd, not watched.
 *   E2 at fd 71, in the parent: G registered as 71 (EPOLLIN, 0x71), then moved to 73, and the
 *     epoll itself put at 71: it watches "fd 71", its own number.
 *   E3 at fd 80, parent and child (fork): H registered as 81 (EPOLLIN, 0x81); after the fork
 *     the parent closes 81: the file is open only in the child.
 *   E4 at fd 85, only in the child: I registered as 86 (EPOLLIN, 0x86) before the fork; the
 *     child closes 86 and the parent 85: the file is open only in the parent.
 * After restore and SIGTERM, for each epoll: /proc/self/fdinfo lists exactly its items (tfd,
 * events, data, the pipe's inode); nothing is ready; a byte written into each pipe makes
 * exactly the items of that pipe fire, with their data (E4 is checked by the child, which
 * exits with the result).
 * Blocks in: nanosleep (zoo_wait loop) in both processes.
 */
#include "zoo.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>

struct item {
	int tfd;
	uint32_t events;
	uint64_t data;
	int rfd, wfd; /* the pipe's ends, as the process holding the epoll knows them (-1: none) */
};

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

static void add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
		zoo_die("epoll_ctl(%d, ADD, %d): %s", ep, fd, strerror(errno));
}

static void move(int from, int to)
{
	zoo_place(dup(from), to, 0);
	close(from);
}

static uint64_t ino_of(int fd)
{
	struct stat st;
	return fstat(fd, &st) ? 0 : st.st_ino;
}

/*
 * The epoll's items as fdinfo lists them are exactly items (kernel adds EPOLLERR|EPOLLHUP);
 * nothing fires; a byte in each pipe fires exactly its items. Returns 0 or says what is wrong
 * under tag (through CHECK in the parent; the child only counts).
 */
static int check_epoll(const char *tag, int ep, const struct item *items, int n)
{
	char path[64], info[4096];
	int bad = 0, seen = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
	if (zoo_read_file(path, info, sizeof(info)) < 0)
		info[0] = 0;
	for (const char *l = strstr(info, "tfd:"); l; l = strstr(l + 4, "tfd:")) {
		int tfd = -1, found = 0;
		unsigned events = 0;
		unsigned long long data = 0;
		unsigned long ino = 0;
		sscanf(l, "tfd: %d events: %x data: %llx pos:%*d ino:%lx", &tfd, &events, &data, &ino);
		seen++;
		for (int k = 0; k < n; k++)
			found |= items[k].tfd == tfd && items[k].events == (events & ~(EPOLLERR | EPOLLHUP)) &&
				 (events & (EPOLLERR | EPOLLHUP)) == (EPOLLERR | EPOLLHUP) &&
				 items[k].data == data && ino_of(items[k].wfd) == ino;
		bad |= !CHECK(tag, found, "epoll %d: item tfd %d events %#x data %#llx ino %lx not expected", ep,
			      tfd, events, data, ino);
	}
	bad |= !CHECK(tag, seen == n, "epoll %d: %d items in fdinfo, expected %d", ep, seen, n);
	struct epoll_event ev[16];
	int got = epoll_wait(ep, ev, 16, 0);
	bad |= !CHECK(tag, got == 0, "epoll %d: %d items ready before any write", ep, got);
	for (int k = 0; k < n && !bad; k++) {
		int first = 1;
		for (int j = 0; j < k; j++)
			first &= ino_of(items[j].wfd) != ino_of(items[k].wfd);
		if (!first)
			continue; /* that pipe was tried with an earlier item */
		if (write(items[k].wfd, "x", 1) != 1)
			zoo_die("write %d: %s", items[k].wfd, strerror(errno));
		got = epoll_wait(ep, ev, 16, 0);
		int want = 0, match = 0;
		for (int j = 0; j < n; j++)
			if (ino_of(items[j].wfd) == ino_of(items[k].wfd)) {
				want++;
				for (int i = 0; i < got; i++)
					match += ev[i].data.u64 == items[j].data;
			}
		bad |= !CHECK(tag, got == want && match == want,
			      "epoll %d: a byte in the pipe of item tfd %d (data %#llx) fired %d items, %d "
			      "of its %d", ep, items[k].tfd, (unsigned long long)items[k].data, got, match, want);
		char c;
		if (items[k].rfd >= 0 && read(items[k].rfd, &c, 1) != 1)
			zoo_die("read %d: %s", items[k].rfd, strerror(errno));
	}
	return bad;
}

/* E1: moved, registered twice, a number with two items, a number reused; E2: its own number. */
static const struct item e1[] = {
	{ 60, EPOLLIN, 0xa1, 61, 161 },
	{ 63, EPOLLIN, 0xb1, 63, 163 },
	{ 64, EPOLLIN | EPOLLET, 0xb2, 63, 163 },
	{ 65, EPOLLIN | EPOLLRDHUP, 0xc1, 66, 166 },
	{ 65, EPOLLIN, 0xd1, 65, 165 },
	{ 67, EPOLLIN, 0xe1, 68, 168 },
};
static const struct item e2[] = { { 71, EPOLLIN, 0x71, 73, 173 } };
static const struct item e3[] = { { 81, EPOLLIN, 0x81, -1, 181 } }; /* read end: the child's */
static const struct item e4[] = { { 86, EPOLLIN, 0x86, -1, 186 } }; /* read end: the parent's */

static volatile sig_atomic_t child_term;
static void on_term(int sig) { (void)sig; child_term = 1; }

static __attribute__((noreturn)) void child(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	close(86);
	while (!child_term)
		zoo_sleep_ms(10);
	_exit(check_epoll("child", 85, e4, 1) ? 1 : 0);
}

static void c_moved(ucontext_t *u)
{
	(void)u;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0xdead };
	epoll_ctl(50, EPOLL_CTL_MOD, 65, &ev); /* D's item takes other data */
}
static void c_self(ucontext_t *u)
{
	(void)u;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 1 };
	epoll_ctl(71, EPOLL_CTL_ADD, 73, &ev); /* a second item: G by its fd 73 */
}
static void c_inherited(ucontext_t *u) { (void)u; write(181, "x", 1); } /* H ready before the check */
static void c_child(ucontext_t *u) { (void)u; write(186, "x", 1); } /* I ready before the child looks */
static const struct zoo_corruption corruptions[] = {
	{ "moved", c_moved, 0 },
	{ "self", c_self, 0 },
	{ "inherited", c_inherited, 0 },
	{ "child", c_child, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	zoo_place(epoll_create1(EPOLL_CLOEXEC), 50, 0);
	make_pipe(60, 161);
	add(50, 60, EPOLLIN, 0xa1);
	move(60, 61);
	make_pipe(63, 163);
	add(50, 63, EPOLLIN, 0xb1);
	zoo_place(dup(63), 64, 0);
	add(50, 64, EPOLLIN | EPOLLET, 0xb2);
	close(64);
	make_pipe(65, 166);
	add(50, 65, EPOLLIN | EPOLLRDHUP, 0xc1);
	move(65, 66);
	make_pipe(65, 165);
	add(50, 65, EPOLLIN, 0xd1);
	make_pipe(67, 168);
	add(50, 67, EPOLLIN, 0xe1);
	move(67, 68);
	zoo_place(eventfd(0, EFD_CLOEXEC), 67, 0);

	make_pipe(71, 173);
	zoo_place(epoll_create1(0), 72, 0);
	add(72, 71, EPOLLIN, 0x71);
	move(71, 73);
	move(72, 71);

	zoo_place(epoll_create1(0), 80, 0);
	make_pipe(81, 181);
	add(80, 81, EPOLLIN, 0x81);
	zoo_place(epoll_create1(0), 85, 0);
	make_pipe(86, 186);
	add(85, 86, EPOLLIN, 0x86);
	pid_t kid = fork();
	if (kid < 0)
		zoo_die("fork: %s", strerror(errno));
	if (kid == 0)
		child();
	close(81);
	close(85);
	zoo_sleep_ms(50); /* the child has closed its 86 */
	zoo_ready();
	zoo_wait();

	check_epoll("moved", 50, e1, sizeof(e1) / sizeof(e1[0]));
	check_epoll("self", 71, e2, 1);
	check_epoll("inherited", 80, e3, 1);
	kill(kid, SIGTERM);
	int st = 0;
	waitpid(kid, &st, 0);
	CHECK("child", WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "the child's epoll (fd 85, its file open only in the parent) is wrong (status %#x)", st);
	return zoo_finish("4 epolls, 9 items whose file is not at their number");
}
