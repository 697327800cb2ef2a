/*
 * time-ns-nested: a tree spread over three time namespaces, two of them nested, with processes
 * in one namespace sending their children to another.
 *
 *   R   (the program)  in the host's namespace H, its children too
 *   A   child of R     unshared T1 (CLOCK_MONOTONIC +1 day, CLOCK_BOOTTIME +2 days), forked A1,
 *                      then went back to H (setns: itself and its children), as criu's
 *                      zdtm timens_nested does
 *   A1  child of A     in T1; unshared T2 (+3 days, +5 days): its children go to T2; holds an
 *                      fd of T1
 *   A2  child of A1    in T2; holds the fd of T1 it inherited
 *   B   child of R     entered T1 (setns on an fd of A1's namespace); holds an fd of H
 *
 * Every process reports (shared memory) the inodes of its namespace, of its children's, of the
 * namespace fd it holds, and the offsets of its children's namespace; the children read both
 * clocks every 5 ms and note the largest step back. After restore and SIGTERM: the same
 * processes share the same namespaces (the partition of {process} x {time, for children, held
 * fd} by inode is the one before the dump); H's offsets are unchanged; T1's and T2's are what
 * was set less what the tree spent in its images (the clocks go on from where they stood when
 * the tree was frozen), the same amount for both (their difference kept within 0.5 s); no clock
 * of a child stepped back; a child A1 forks now lands in T2, where A2 is.
 * Corruptions: layout (B goes back to H), offset (A2 moves to a namespace of its own 10 days
 * ahead), fork (A1 enters T1 before forking), backwards (a step back is noted).
 * Blocks in: nanosleep (zoo_wait loop); the children in nanosleep.
 * For tests/failure-cases.sh, layouts a dump must refuse: --outside (R is a subreaper; a
 * grandchild of A1's in T2 is orphaned and becomes R's child, outside A1's descendants, which
 * alone a restore can put in T2), --root-holds-t2 (R holds an fd of T2).
 */
#include "zoo.h"
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define SEC 1000000000LL
#define DAY (86400 * SEC)
#define MAX_IN_IMAGES (600 * SEC) /* what a checkpoint may take off the offsets */
#define SAME_SHIFT (SEC / 2)      /* how far the shifts of two namespaces may differ */

enum { P_R, P_A, P_A1, P_B, P_A2, P_FORKED, NR_P };
static const char *const names[NR_P] = { "R", "A", "A1", "B", "A2", "A1's new child" };
enum { CMD_NONE, CMD_REPORT, CMD_SETNS_HOST, CMD_REMAKE, CMD_FORK, CMD_FORK_IN_T1, CMD_STEP_BACK,
       CMD_EXIT };

struct report {
	uint64_t time, tfc, held;    /* inodes: its namespace, its children's, the fd it holds */
	int64_t mono_off, boot_off;  /* its children's namespace's offsets */
};

struct shared {
	struct report now[NR_P];
	volatile uint64_t seq[NR_P];
	volatile int64_t back[NR_P]; /* the largest step back of its clocks */
	volatile int cmd[NR_P];
	volatile pid_t a1, a2;
	volatile int quit; /* for the orphan of --outside */
};
static struct shared *sh;
static int host_fd = -1; /* H, opened by R before any fork */
static int outside, root_holds_t2; /* the layouts a dump refuses */
static pid_t r_pid;

static uint64_t fd_ino(int fd)
{
	struct stat st;
	return fd >= 0 && !fstat(fd, &st) ? st.st_ino : 0;
}

static uint64_t self_ino(const char *kind)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/self/ns/%s", kind);
	return stat(path, &st) ? 0 : st.st_ino;
}

static void read_offsets(int64_t *mono, int64_t *boot)
{
	char text[256], name[16];
	long long sec, nsec;
	*mono = *boot = INT64_MIN;
	if (zoo_read_file("/proc/self/timens_offsets", text, sizeof(text)) <= 0)
		return;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (sscanf(line, "%15s %lld %lld", name, &sec, &nsec) != 3)
			continue;
		if (!strcmp(name, "monotonic"))
			*mono = sec * SEC + nsec;
		else if (!strcmp(name, "boottime"))
			*boot = sec * SEC + nsec;
	}
}

static void report(int me, int held)
{
	struct report *r = &sh->now[me];
	r->time = self_ino("time");
	r->tfc = self_ino("time_for_children");
	r->held = fd_ino(held);
	int64_t mono, boot;
	read_offsets(&mono, &boot);
	r->mono_off = mono, r->boot_off = boot;
	__atomic_add_fetch(&sh->seq[me], 1, __ATOMIC_SEQ_CST);
}

/* A fresh namespace for our children, at these offsets from the host's clocks. */
static void new_ns(int64_t mono, int64_t boot)
{
	char text[128];
	if (unshare(CLONE_NEWTIME))
		zoo_die("unshare(CLONE_NEWTIME): %s", strerror(errno));
	int len = snprintf(text, sizeof(text), "monotonic %lld 0\nboottime %lld 0\n",
			   (long long)(mono / SEC), (long long)(boot / SEC));
	if (zoo_write_file("/proc/self/timens_offsets", text, len))
		zoo_die("timens_offsets: %s", strerror(errno));
}

static void enter_ns(int fd)
{
	if (setns(fd, CLONE_NEWTIME))
		zoo_die("setns(CLONE_NEWTIME): %s", strerror(errno));
}

static __attribute__((noreturn)) void child_loop(int me, int held, int t1_fd)
{
	int64_t last_mono = 0, last_boot = 0;

	report(me, held);
	for (;;) {
		int64_t mono = (int64_t)zoo_now_ns(CLOCK_MONOTONIC), boot = (int64_t)zoo_now_ns(CLOCK_BOOTTIME);
		int64_t back = last_mono - mono > last_boot - boot ? last_mono - mono : last_boot - boot;
		if (last_mono && back > sh->back[me])
			sh->back[me] = back;
		last_mono = mono, last_boot = boot;
		switch (sh->cmd[me]) {
		case CMD_REPORT:
			break;
		case CMD_SETNS_HOST: /* corruption */
			enter_ns(host_fd);
			break;
		case CMD_REMAKE: { /* corruption: into a namespace of its own */
			new_ns(10 * DAY, 10 * DAY);
			int fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				zoo_die("time_for_children: %s", strerror(errno));
			enter_ns(fd);
			close(fd);
			break;
		}
		case CMD_FORK_IN_T1: /* corruption: A1 is in T1, and now so are its children */
			enter_ns(t1_fd);
			/* fall through */
		case CMD_FORK: {
			pid_t pid = fork();
			if (pid < 0)
				zoo_die("fork: %s", strerror(errno));
			if (pid == 0) {
				report(P_FORKED, -1);
				_exit(0);
			}
			waitpid(pid, NULL, 0);
			break;
		}
		case CMD_STEP_BACK: /* corruption */
			sh->back[me] = SEC;
			break;
		case CMD_EXIT:
			_exit(0);
		default:
			zoo_sleep_ms(5);
			continue;
		}
		sh->cmd[me] = CMD_NONE;
		report(me, held);
	}
}

/* Process `me` carries out cmd and reports again; 0 if it did not. */
static int command(int me, int cmd)
{
	uint64_t seq = sh->seq[me];
	sh->cmd[me] = cmd;
	for (int i = 0; i < 1000 && sh->seq[me] == seq; i++)
		zoo_sleep_ms(5);
	return sh->seq[me] != seq;
}

static pid_t fork_or_die(void)
{
	pid_t pid = fork();
	if (pid < 0)
		zoo_die("fork: %s", strerror(errno));
	return pid;
}

static void run_a1(void)
{
	int t1_fd = open("/proc/self/ns/time", O_RDONLY | O_CLOEXEC);
	if (t1_fd < 0)
		zoo_die("/proc/self/ns/time: %s", strerror(errno));
	new_ns(3 * DAY, 5 * DAY);
	if (fork_or_die() == 0) {
		sh->a2 = getpid();
		child_loop(P_A2, t1_fd, -1);
	}
	if (outside && fork_or_die() == 0) { /* its child in T2 becomes R's */
		if (fork_or_die() == 0)
			for (int reparented = 0;; zoo_sleep_ms(20)) {
				if (sh->quit || (reparented && getppid() != r_pid))
					_exit(0);
				reparented |= getppid() == r_pid;
			}
		_exit(0);
	}
	if (outside)
		wait(NULL);
	sh->a1 = getpid();
	child_loop(P_A1, t1_fd, t1_fd);
}

static struct report before[NR_P];

static void c_setns(ucontext_t *u) { (void)u; command(P_B, CMD_SETNS_HOST); }
static void c_offset(ucontext_t *u) { (void)u; command(P_A2, CMD_REMAKE); }
static void c_fork(ucontext_t *u) { (void)u; command(P_A1, CMD_FORK_IN_T1); }
static void c_backwards(ucontext_t *u) { (void)u; command(P_B, CMD_STEP_BACK); }
static const struct zoo_corruption corruptions[] = {
	{ "layout", c_setns, 0 },
	{ "offset", c_offset, 0 },
	{ "fork", c_fork, 0 },
	{ "backwards", c_backwards, 0 },
};

/* Item k of process p: its namespace, its children's, its held fd's (0: none). */
static uint64_t item(const struct report *r, int p, int k)
{
	return k == 0 ? r[p].time : k == 1 ? r[p].tfc : r[p].held;
}

static const char *const item_names[3] = { "namespace", "children's namespace", "held fd" };

/* The offsets of namespace ino, as a process sending its children there reports them. */
static int offsets_of(const struct report *r, uint64_t ino, int64_t *mono, int64_t *boot)
{
	for (int q = 0; q <= P_A2; q++)
		if (r[q].tfc == ino) {
			*mono = r[q].mono_off, *boot = r[q].boot_off;
			return 1;
		}
	return 0;
}

/*
 * Each process's namespace and its children's: H's offsets unchanged, every other one's moved
 * back by what the tree spent in its images, the same for all.
 */
static void check_offsets(const struct report *after)
{
	int64_t ref = INT64_MIN;

	for (int p = 0; p <= P_A2; p++)
		for (int k = 0; k < 2; k++) {
			int64_t bm, bb, am, ab;
			if (!offsets_of(before, item(before, p, k), &bm, &bb) ||
			    !CHECK("offset", offsets_of(after, item(after, p, k), &am, &ab),
				   "no process reports the offsets of %s's %s", names[p], item_names[k]))
				continue;
			int64_t mono = am - bm, boot = ab - bb;
			if (item(before, p, k) == before[P_R].time) {
				CHECK("offset", !mono && !boot, "%s's %s (R's) moved by %.3f s and %.3f s",
				      names[p], item_names[k], mono / 1e9, boot / 1e9);
				continue;
			}
			if (ref == INT64_MIN)
				ref = mono;
			CHECK("offset", mono <= SEC && mono >= -MAX_IN_IMAGES &&
			      llabs(mono - ref) <= SAME_SHIFT && llabs(boot - ref) <= SAME_SHIFT,
			      "%s's %s moved by %.3f s (monotonic) and %.3f s (boottime), another of the "
			      "tree's by %.3f s: expected the same, at most the time in the images back",
			      names[p], item_names[k], mono / 1e9, boot / 1e9, ref / 1e9);
		}
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	for (int i = 1; i < argc; i++) {
		outside |= !strcmp(argv[i], "--outside");
		root_holds_t2 |= !strcmp(argv[i], "--root-holds-t2");
	}
	r_pid = getpid();
	if (outside && prctl(PR_SET_CHILD_SUBREAPER, 1))
		zoo_die("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	if ((host_fd = open("/proc/self/ns/time", O_RDONLY | O_CLOEXEC)) < 0)
		zoo_die("/proc/self/ns/time: %s", strerror(errno));

	if (fork_or_die() == 0) {
		new_ns(1 * DAY, 2 * DAY);
		if (fork_or_die() == 0)
			run_a1();
		enter_ns(host_fd); /* back to H, with its future children */
		child_loop(P_A, -1, -1);
	}
	for (int i = 0; i < 1000 && !sh->a1; i++)
		zoo_sleep_ms(5);
	if (!sh->a1)
		zoo_die("A1 did not start");
	if (fork_or_die() == 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/time", zoo_proc_pid(sh->a1));
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			zoo_die("%s: %s", path, strerror(errno));
		enter_ns(fd);
		close(fd);
		child_loop(P_B, host_fd, -1);
	}
	for (int p = P_A; p <= P_A2; p++)
		if (!command(p, CMD_REPORT))
			zoo_die("%s does not report", names[p]);
	if (root_holds_t2) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/time", zoo_proc_pid(sh->a2));
		if (open(path, O_RDONLY) < 0)
			zoo_die("%s: %s", path, strerror(errno));
	}
	report(P_R, host_fd);
	memcpy(before, sh->now, sizeof(before));
	/* the layout is what the program made */
	if (before[P_A1].time != before[P_B].time || before[P_A1].tfc != before[P_A2].time ||
	    before[P_A].time != before[P_R].time || before[P_A1].time == before[P_R].time ||
	    before[P_A2].time == before[P_A1].time || before[P_A2].held != before[P_A1].time)
		zoo_die("the namespaces are not laid out as planned");
	/* (a namespace's offsets are from the host's clocks, whatever namespace made it) */
	if (before[P_B].mono_off != DAY || before[P_B].boot_off != 2 * DAY ||
	    before[P_A1].mono_off != 3 * DAY || before[P_A1].boot_off != 5 * DAY)
		zoo_die("the offsets are not the ones set");
	zoo_ready();
	zoo_wait();

	int alive = 1;
	for (int p = P_A; p <= P_A2; p++)
		alive &= CHECK("layout", command(p, CMD_REPORT), "%s no longer reports", names[p]);
	if (!alive)
		return zoo_finish(NULL);
	report(P_R, host_fd);
	struct report after[NR_P];
	memcpy(after, sh->now, sizeof(after));

	/* the partition by inode: two items share a namespace after iff they did before */
	for (int p = 0; p <= P_A2; p++)
		for (int k = 0; k < 3; k++)
			for (int q = 0; q <= P_A2; q++)
				for (int l = 0; l < 3; l++) {
					uint64_t b1 = item(before, p, k), b2 = item(before, q, l);
					uint64_t a1 = item(after, p, k), a2 = item(after, q, l);
					if (!b1 || !b2 || (p * 3 + k) >= (q * 3 + l))
						continue;
					CHECK("layout", (b1 == b2) == (a1 == a2),
					      "%s's %s and %s's %s were %s, now %s", names[p],
					      item_names[k], names[q], item_names[l],
					      b1 == b2 ? "the same" : "different",
					      a1 == a2 ? "the same" : "different");
				}

	check_offsets(after);
	for (int p = P_A; p <= P_A2; p++)
		CHECK("backwards", sh->back[p] <= 0, "%s's clocks stepped back by %.3f s", names[p],
		      sh->back[p] / 1e9);

	/* a child A1 forks now is in T2 */
	uint64_t seq = sh->seq[P_FORKED];
	CHECK("fork", command(P_A1, CMD_FORK) && sh->seq[P_FORKED] != seq && sh->now[P_FORKED].time == after[P_A2].time &&
	      sh->now[P_FORKED].time != after[P_A1].time,
	      "A1's new child is in time:[%llu], A2 in time:[%llu], A1 in time:[%llu]",
	      (unsigned long long)sh->now[P_FORKED].time, (unsigned long long)after[P_A2].time,
	      (unsigned long long)after[P_A1].time);

	for (int p = P_A; p <= P_A2; p++)
		sh->cmd[p] = CMD_EXIT;
	sh->quit = 1;
	while (wait(NULL) > 0)
		;
	return zoo_finish("3 time namespaces, 2 nested; a process in T1 sending its children to T2");
}
