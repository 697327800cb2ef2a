/*
 * mqueue: a POSIX message queue (at most 5 messages of 64 bytes, mode 0640) held at fd 80
 * (O_RDWR|O_NONBLOCK) with 2 messages in it, priorities 1 and 7.
 * After restore and SIGTERM: fd 80 is still that queue with its limits and flags, and the
 * messages come out by priority. The queue is removed at the end.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <mqueue.h>

static char name[64];

static void c_drain(ucontext_t *u) { (void)u; char b[64]; mq_receive(80, b, sizeof(b), NULL); }
static void c_flags(ucontext_t *u) { (void)u; struct mq_attr a = { .mq_flags = 0 }; mq_setattr(80, &a, NULL); }
static const struct zoo_corruption corruptions[] = {
	{ "messages", c_drain, 0 },
	{ "flags", c_flags, 0 },
};

int main(int argc, char **argv)
{
	struct mq_attr attr = { .mq_maxmsg = 5, .mq_msgsize = 64 };
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snprintf(name, sizeof(name), "/stasis-zoo-%d", getpid());
	mq_unlink(name);
	mqd_t q = mq_open(name, O_RDWR | O_NONBLOCK | O_CREAT | O_EXCL | O_CLOEXEC, 0640, &attr);
	if (q < 0 || dup3(q, 80, O_CLOEXEC) != 80 || mq_send(80, "low", 3, 1) || mq_send(80, "high", 4, 7))
		zoo_die("mqueue %s: %s", name, strerror(errno));
	close(q);
	zoo_ready();
	zoo_wait();

	struct mq_attr now = { 0 };
	CHECK("flags", mq_getattr(80, &now) == 0 && now.mq_maxmsg == 5 && now.mq_msgsize == 64 &&
			       (now.mq_flags & O_NONBLOCK),
	      "queue attributes: max %ld, size %ld, flags %#lx", now.mq_maxmsg, now.mq_msgsize, now.mq_flags);
	char b[64] = "";
	unsigned prio = 0;
	ssize_t n = mq_receive(80, b, sizeof(b), &prio);
	CHECK("messages", n == 4 && !memcmp(b, "high", 4) && prio == 7, "first message '%.*s' prio %u", (int)(n > 0 ? n : 0), b, prio);
	n = mq_receive(80, b, sizeof(b), &prio);
	CHECK("messages", n == 3 && !memcmp(b, "low", 3) && prio == 1, "second message '%.*s' prio %u", (int)(n > 0 ? n : 0), b, prio);
	mq_unlink(name);
	return zoo_finish("1 queue, 2 messages");
}
