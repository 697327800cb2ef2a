/*
 * mqueue: POSIX message queues.
 *   fd 80: queue "/stasis-zoo-PID-gone" (at most 5 messages of 64 bytes, mode 0640,
 *          O_RDWR|O_NONBLOCK) with 2 messages, priorities 1 and 7. mqueue.after-dump removes
 *          it between dump and restore, as a reboot would: restore must make it again, full.
 *   fd 83: queue "/stasis-zoo-PID-kept" with 3 messages of one priority: it stays, and
 *          restore must use it as it is (no message twice).
 *   fd 81: an unlinked queue (8 x 128 bytes) with 4 messages (binary, two priorities), and
 *          fd 82 a second open of it (O_RDONLY, through /proc/self/fd/81).
 *   "/stasis-zoo-PID-closed" (4 x 32 bytes, mode 0604) with 2 messages, open nowhere: a queue
 *          of the IPC namespace that a process opens by name later (in a container's own
 *          namespace the dump saves it with the namespace; in the host's it stays the host's).
 * After restore and SIGTERM: attributes, flags and modes are the same, every message comes out
 * exactly once in priority then arrival order, fd 81 and 82 are one queue that is still
 * unlinked, the closed queue opens by its name with its messages. The named queues are removed
 * at the end.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <mqueue.h>
#include <sys/stat.h>

static char gone[64], kept[64], closed[64];

static void c_drain(ucontext_t *u) { (void)u; char b[64]; mq_receive(80, b, sizeof(b), NULL); }
static void c_flags(ucontext_t *u) { (void)u; struct mq_attr a = { .mq_flags = 0 }; mq_setattr(80, &a, NULL); }
static void c_twice(ucontext_t *u) { (void)u; mq_send(83, "kept-0", 6, 2); }
static void c_unlinked(ucontext_t *u) { (void)u; char b[128]; mq_receive(82, b, sizeof(b), NULL); }
static void c_closed(ucontext_t *u)
{
	(void)u;
	char b[32];
	mqd_t q = mq_open(closed, O_RDONLY | O_NONBLOCK);
	mq_receive(q, b, sizeof(b), NULL);
	mq_close(q);
}
static const struct zoo_corruption corruptions[] = {
	{ "messages", c_drain, 0 },
	{ "flags", c_flags, 0 },
	{ "kept", c_twice, 0 },
	{ "unlinked", c_unlinked, 0 },
	{ "closed", c_closed, 0 },
};

static mqd_t make(const char *name, long maxmsg, long msgsize, int fd)
{
	struct mq_attr attr = { .mq_maxmsg = maxmsg, .mq_msgsize = msgsize };
	mq_unlink(name);
	mqd_t q = mq_open(name, O_RDWR | O_NONBLOCK | O_CREAT | O_EXCL | O_CLOEXEC, 0640, &attr);
	if (q < 0 || dup3(q, fd, O_CLOEXEC) != fd)
		zoo_die("mqueue %s: %s", name, strerror(errno));
	close(q);
	return fd;
}

/* The next message of fd must be want (len bytes) with priority prio. */
static void expect(const char *tag, int fd, const void *want, size_t len, unsigned prio)
{
	char b[128] = "";
	unsigned got = 0;
	ssize_t n = mq_receive(fd, b, sizeof(b), &got);
	CHECK(tag, n == (ssize_t)len && !memcmp(b, want, len) && got == prio,
	      "fd %d: message of %zd bytes prio %u ('%.*s'), expected %zu bytes prio %u", fd, n, got,
	      (int)(n > 0 ? n : 0), b, len, prio);
}

int main(int argc, char **argv)
{
	unsigned char bin[100];
	char path[64];

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(gone, sizeof(gone), "/stasis-zoo-%d-gone", getpid());
	snprintf(kept, sizeof(kept), "/stasis-zoo-%d-kept", getpid());
	make(gone, 5, 64, 80);
	make(kept, 5, 64, 83);
	make("/stasis-zoo-unlinked", 8, 128, 81);
	mq_unlink("/stasis-zoo-unlinked");
	snprintf(path, sizeof(path), "/proc/self/fd/81");
	int second = open(path, O_RDONLY | O_NONBLOCK);
	if (second < 0 || dup2(second, 82) != 82)
		zoo_die("reopen %s: %s", path, strerror(errno));
	close(second);
	zoo_fill(bin, sizeof(bin), 77);
	if (mq_send(80, "low", 3, 1) || mq_send(80, "high", 4, 7) || mq_send(83, "kept-1", 6, 2) ||
	    mq_send(83, "kept-2", 6, 2) || mq_send(83, "kept-3", 6, 2) || mq_send(81, "u-low-1", 7, 3) ||
	    mq_send(81, (char *)bin, sizeof(bin), 9) || mq_send(81, "u-low-2", 7, 3) || mq_send(81, "", 0, 9))
		zoo_die("mq_send: %s", strerror(errno));
	snprintf(closed, sizeof(closed), "/stasis-zoo-%d-closed", getpid());
	mq_unlink(closed);
	struct mq_attr small = { .mq_maxmsg = 4, .mq_msgsize = 32 };
	mqd_t c = mq_open(closed, O_WRONLY | O_CREAT | O_EXCL, 0604, &small);
	if (c < 0 || fchmod(c, 0604) || mq_send(c, "closed-1", 8, 5) || mq_send(c, "closed-2", 8, 6))
		zoo_die("mqueue %s: %s", closed, strerror(errno));
	mq_close(c);
	zoo_ready();
	zoo_wait();

	struct mq_attr now = { 0 };
	struct stat st;
	CHECK("flags", mq_getattr(80, &now) == 0 && now.mq_maxmsg == 5 && now.mq_msgsize == 64 &&
			       (now.mq_flags & O_NONBLOCK) && fstat(80, &st) == 0 && (st.st_mode & 0777) == 0640,
	      "queue attributes: max %ld, size %ld, flags %#lx, mode %o", now.mq_maxmsg, now.mq_msgsize,
	      now.mq_flags, st.st_mode & 0777);
	CHECK("flags", mq_getattr(81, &now) == 0 && now.mq_maxmsg == 8 && now.mq_msgsize == 128 && now.mq_curmsgs == 4,
	      "unlinked queue: max %ld, size %ld, %ld messages", now.mq_maxmsg, now.mq_msgsize, now.mq_curmsgs);
	expect("messages", 80, "high", 4, 7);
	expect("messages", 80, "low", 3, 1);
	CHECK("kept", mq_getattr(83, &now) == 0 && now.mq_curmsgs == 3, "kept queue holds %ld messages, expected 3",
	      now.mq_curmsgs);
	expect("kept", 83, "kept-1", 6, 2);
	expect("kept", 83, "kept-2", 6, 2);
	expect("kept", 83, "kept-3", 6, 2);
	char link[128] = "";
	ssize_t n = readlink("/proc/self/fd/82", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	CHECK("unlinked", strstr(link, " (deleted)") != NULL, "fd 82 is '%s', not an unlinked queue", link);
	expect("unlinked", 82, bin, sizeof(bin), 9);
	expect("unlinked", 81, "", 0, 9);
	expect("unlinked", 82, "u-low-1", 7, 3);
	mq_send(81, "after", 5, 1);
	expect("unlinked", 82, "u-low-2", 7, 3);
	expect("unlinked", 82, "after", 5, 1);
	c = mq_open(closed, O_RDONLY | O_NONBLOCK);
	CHECK("closed", c >= 0 && mq_getattr(c, &now) == 0 && now.mq_maxmsg == 4 && now.mq_msgsize == 32 &&
				now.mq_curmsgs == 2 && fstat(c, &st) == 0 && (st.st_mode & 0777) == 0604,
	      "queue %s: %s, max %ld, size %ld, %ld messages, mode %o", closed, c < 0 ? strerror(errno) : "open",
	      now.mq_maxmsg, now.mq_msgsize, now.mq_curmsgs, st.st_mode & 0777);
	if (c >= 0) {
		expect("closed", c, "closed-2", 8, 6);
		expect("closed", c, "closed-1", 8, 5);
		mq_close(c);
	}
	mq_unlink(closed);
	mq_unlink(gone);
	mq_unlink(kept);
	return zoo_finish("4 queues (one open nowhere), 11 messages");
}
