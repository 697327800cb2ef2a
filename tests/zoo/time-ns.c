/*
 * time-ns: a child in a time namespace of its own whose clocks run ahead of the host's, as in
 * a container: the parent (in the host's time namespace) unshares CLONE_NEWTIME, which only
 * its children enter, sets CLOCK_MONOTONIC 10 days and CLOCK_BOOTTIME 20 days ahead and
 * forks the child. Every 5 ms the child reads both clocks, notes the largest step back and
 * the largest step forward, and publishes its readings in shared memory.
 * After restore and SIGTERM: the child is still in the namespace its parent's children go to,
 * not its parent's; its clocks still run 10 and 20 days ahead of the host's, less at most the
 * few seconds the tree spent in its images (criu's rule: the clocks go on from where they
 * stood when the tree was frozen); they never stepped back, and never jumped more than 3 s
 * forward (time-ns.after-dump keeps the tree 4 s in its images: those must not count).
 * Blocks in: nanosleep (zoo_wait loop); the child in nanosleep.
 */
#include "zoo.h"
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define SEC 1000000000LL
#define MONO_AHEAD (10 * 86400 * SEC)
#define BOOT_AHEAD (20 * 86400 * SEC)
#define MAX_IN_IMAGES (600 * SEC) /* what a checkpoint may take off the offsets */
#define MAX_JUMP (3 * SEC)

enum { CMD_NONE, CMD_LEAVE_NS, CMD_STEP_BACK, CMD_JUMP, CMD_EXIT };

struct shared {
	volatile int64_t mono, boot; /* the child's latest readings */
	volatile uint64_t seq;
	volatile int64_t back, jump; /* its largest step back, its largest step forward */
	volatile int cmd;
};
static struct shared *sh;
static pid_t child;

static __attribute__((noreturn)) void child_main(void)
{
	int64_t last_mono = 0, last_boot = 0;

	for (;;) {
		int64_t mono = (int64_t)zoo_now_ns(CLOCK_MONOTONIC), boot = (int64_t)zoo_now_ns(CLOCK_BOOTTIME);
		if (last_mono) {
			int64_t back = last_mono - mono > last_boot - boot ? last_mono - mono : last_boot - boot;
			if (back > sh->back)
				sh->back = back;
			if (mono - last_mono > sh->jump)
				sh->jump = mono - last_mono;
		}
		last_mono = mono, last_boot = boot;
		sh->mono = mono, sh->boot = boot;
		__atomic_add_fetch(&sh->seq, 1, __ATOMIC_SEQ_CST);
		switch (sh->cmd) {
		case CMD_LEAVE_NS: { /* corruption: into the parent's (the host's) time namespace */
			char path[64];
			snprintf(path, sizeof(path), "/proc/%d/ns/time", zoo_proc_pid(getppid()));
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd >= 0 && setns(fd, CLONE_NEWTIME) == 0)
				sh->cmd = CMD_NONE;
			break;
		}
		case CMD_STEP_BACK:
			last_mono += 86400 * SEC, sh->cmd = CMD_NONE;
			break;
		case CMD_JUMP:
			last_mono -= 5 * SEC, sh->cmd = CMD_NONE;
			break;
		case CMD_EXIT:
			_exit(0);
		}
		zoo_sleep_ms(5);
	}
}

/* Two fresh readings of the child's, so that they are at most 5 ms old. */
static int fresh_readings(void)
{
	uint64_t seq = sh->seq;
	for (int i = 0; i < 400 && sh->seq < seq + 2; i++)
		zoo_sleep_ms(5);
	return sh->seq >= seq + 2;
}

static void command(int cmd)
{
	sh->cmd = cmd;
	for (int i = 0; i < 400 && sh->cmd == cmd; i++)
		zoo_sleep_ms(5);
}

/* The namespace of kind of process pid (of the program's namespace), 0 for the program's own. */
static uint64_t ns_ino(pid_t pid, const char *kind)
{
	char path[64];
	struct stat st;
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", zoo_proc_pid(pid), kind);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/%s", kind);
	return stat(path, &st) ? 0 : st.st_ino;
}

/* How far ahead of the host's clock the child's reads, within what a checkpoint may take off. */
static void check_ahead(const char *clock, int clk, int64_t theirs, int64_t ahead)
{
	int64_t diff = theirs - (int64_t)zoo_now_ns(clk);
	CHECK("offset", diff <= ahead + SEC && diff >= ahead - MAX_IN_IMAGES,
	      "the child's %s is %.3f s ahead of the host's, expected %lld s (less what the tree spent "
	      "in its images, at most %lld s)", clock, diff / 1e9, ahead / SEC, MAX_IN_IMAGES / SEC);
}

static void c_offset(ucontext_t *u) { (void)u; command(CMD_LEAVE_NS); }
static void c_backwards(ucontext_t *u) { (void)u; command(CMD_STEP_BACK); }
static void c_jump(ucontext_t *u) { (void)u; command(CMD_JUMP); }
static const struct zoo_corruption corruptions[] = {
	{ "offset", c_offset, 0 },
	{ "backwards", c_backwards, 0 },
	{ "jump", c_jump, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	if (unshare(CLONE_NEWTIME))
		zoo_die("unshare(CLONE_NEWTIME): %s", strerror(errno));
	char offsets[128];
	int len = snprintf(offsets, sizeof(offsets), "monotonic %lld 0\nboottime %lld 0\n",
			   MONO_AHEAD / SEC, BOOT_AHEAD / SEC);
	int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, offsets, len) != len)
		zoo_die("timens_offsets: %s", strerror(errno));
	close(fd);
	child = fork();
	if (child < 0)
		zoo_die("fork: %s", strerror(errno));
	if (!child)
		child_main();
	if (!fresh_readings())
		zoo_die("the child does not read its clocks");
	zoo_ready();
	zoo_wait();

	if (!CHECK("offset", fresh_readings(), "the child no longer reads its clocks"))
		return zoo_finish(NULL);
	uint64_t own = ns_ino(0, "time"), theirs = ns_ino(child, "time");
	CHECK("offset", theirs && theirs != own && theirs == ns_ino(0, "time_for_children"),
	      "the child is in time:[%llu], the parent in time:[%llu] with its children going to "
	      "time:[%llu]", (unsigned long long)theirs, (unsigned long long)own,
	      (unsigned long long)ns_ino(0, "time_for_children"));
	check_ahead("CLOCK_MONOTONIC", CLOCK_MONOTONIC, sh->mono, MONO_AHEAD);
	check_ahead("CLOCK_BOOTTIME", CLOCK_BOOTTIME, sh->boot, BOOT_AHEAD);
	CHECK("backwards", sh->back <= 0, "the child's clocks stepped back by %.3f s", sh->back / 1e9);
	CHECK("jump", sh->jump <= MAX_JUMP, "the child's CLOCK_MONOTONIC jumped %.3f s forward",
	      sh->jump / 1e9);
	sh->cmd = CMD_EXIT;
	waitpid(child, NULL, 0);
	return zoo_finish("clocks 10 and 20 days ahead in a child's time namespace");
}
