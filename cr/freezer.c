/*
 * The cgroup freezer at dump. Order (criu's, checked on this kernel): freeze the cgroup, seize
 * every thread in it (PTRACE_SEIZE + PTRACE_INTERRUPT do not need the thread to run), thaw
 * it; each thread then stops for ptrace on its way back to user space, and the tree is seized
 * as usual with nobody able to fork meanwhile.
 *
 * One trap: with the v1 freezer, PTRACE_SEIZE of a thread that is stopped by a signal and
 * frozen waits inside the kernel until the cgroup thaws (the attach waits for the thread to
 * move from its stop to a ptrace stop). Such threads (their wait channel is do_signal_stop)
 * are left for the usual seizing after the thaw: a stopped thread forks nothing. Should a
 * seize block anyway, a guardian process thaws the cgroup after a second, and the tree's
 * seizing, which lists every process until nothing new appears, still catches everything.
 * The same guardian thaws the cgroup if stasis dies while it is frozen. A cgroup frozen before
 * (an engine's pause) is thawed only while its threads are held by ptrace, and frozen again
 * before they are let go; should stasis die meanwhile (the kernel lets its tracees go), the
 * guardian freezes it again at once.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "freezer.h"
#include "log.h"
#include "proc.h"
#include "seize.h"
#include "util.h"

#define FREEZER_SEIZE_GUARD_MS 1000
#define FREEZER_MAX_THREADS (1 << 20)
#define FREEZER_RELEASE_MS 10000

struct freezer {
	const char *path;
	int dirfd, ctl;
	bool v2;
};

static int freezer_open(const char *path, struct freezer *f)
{
	*f = (struct freezer){ .path = path, .ctl = -1 };
	if ((f->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		pr_perror("dump: --freeze-cgroup %s", path);
		return -errno;
	}
	f->v2 = faccessat(f->dirfd, "freezer.state", F_OK, 0) != 0;
	f->ctl = openat(f->dirfd, f->v2 ? "cgroup.freeze" : "freezer.state", O_RDWR | O_CLOEXEC);
	if (f->ctl < 0) {
		pr_err("dump: --freeze-cgroup %s: not a freezer cgroup (no freezer.state, no "
		       "cgroup.freeze)", path);
		close(f->dirfd);
		return -EINVAL;
	}
	return 0;
}

static void freezer_close(struct freezer *f)
{
	close(f->ctl);
	close(f->dirfd);
}

static int freezer_set(const struct freezer *f, bool frozen)
{
	const char *v = f->v2 ? (frozen ? "1" : "0") : (frozen ? "FROZEN" : "THAWED");

	if (pwrite(f->ctl, v, strlen(v), 0) != (ssize_t)strlen(v)) {
		pr_perror("dump: cannot %s cgroup %s", frozen ? "freeze" : "thaw", f->path);
		return -errno;
	}
	return 0;
}

/* 1 frozen, 0 not yet (its state to *state), or -errno. */
static int freezer_frozen(const struct freezer *f, char *state, size_t len)
{
	auto_free char *text = read_file_at(f->dirfd, f->v2 ? "cgroup.events" : "freezer.state", NULL);

	if (!text) {
		if (errno == ENOMEM)
			return -ENOMEM;
		pr_perror("dump: cannot read the freezer state of cgroup %s", f->path);
		return -errno;
	}
	if (f->v2) {
		const char *ev = strstr(text, "frozen ");
		snprintf(state, len, "%s", ev && ev[7] == '1' ? "frozen" : "freezing");
		return ev && ev[7] == '1';
	}
	text[strcspn(text, "\n")] = 0;
	snprintf(state, len, "%s", text);
	return !strcmp(text, "FROZEN");
}

static int freeze(const struct freezer *f, int timeout_s)
{
	uint64_t start = now_ns(CLOCK_MONOTONIC), last_kick = start;
	int limit_s = timeout_s > 0 ? timeout_s : FREEZE_TIMEOUT_DEFAULT_S;
	uint64_t deadline = start + (uint64_t)limit_s * 1000000000ull;
	unsigned backoff_us = 100;
	char state[32] = "";
	int err;

	if ((err = freezer_set(f, true)))
		return err;
	while ((err = freezer_frozen(f, state, sizeof(state))) == 0) {
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		if (now > deadline) {
			pr_err("dump: cgroup %s did not freeze within %d s (still %s); it is thawed again",
			       f->path, limit_s, state);
			freezer_set(f, false);
			return -ETIMEDOUT;
		}
		/* v1 may stay FREEZING when a task could not be frozen on the first try */
		if (!f->v2 && now - last_kick > 100000000ull) {
			freezer_set(f, true);
			last_kick = now;
		}
		usleep(backoff_us);
		backoff_us = backoff_us < 20000 ? backoff_us * 2 : 20000;
	}
	if (err < 0) {
		freezer_set(f, false);
		return err;
	}
	pr_debug("dump: cgroup %s frozen in %.1f ms", f->path, (now_ns(CLOCK_MONOTONIC) - start) / 1e6);
	return 0;
}

static int add_tid(struct freezer_catch *fc, pid_t tid)
{
	if (fc->n >= FREEZER_MAX_THREADS)
		return -E2BIG;
	pid_t *t = xreallocarray(fc->tids, fc->n + 1, sizeof(*t));
	bool *c = t ? xreallocarray(fc->claimed, fc->n + 1, sizeof(*c)) : NULL;
	if (t)
		fc->tids = t;
	if (!c)
		return -ENOMEM;
	fc->claimed = c;
	fc->tids[fc->n] = tid;
	fc->claimed[fc->n++] = false;
	return 0;
}

/* Every thread of the cgroup at dirfd and of those below it (v1: tasks, v2: cgroup.threads). */
static int list_threads(const struct freezer *f, int dirfd, struct freezer_catch *out, int depth)
{
	auto_free char *text = read_file_at(dirfd, f->v2 ? "cgroup.threads" : "tasks", NULL);
	int err = text ? 0 : -errno;
	unsigned logged = log_errors();

	for (char *p = text; !err && p && *p; p += strcspn(p, "\n"), p += *p == '\n') {
		pid_t tid = atoi(p);
		if (!proc_is_io_worker(tid)) /* (io_uring's: never in user space) */
			err = add_tid(out, tid);
	}
	DIR *dir = err ? NULL : opendir_at(dirfd, ".", 0);
	struct dirent *de;
	if (!err && !dir)
		err = -errno;
	while (!err && dir && (de = readdir(dir))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		auto_close int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		err = sub < 0 ? -errno : depth > 32 ? -ELOOP : list_threads(f, sub, out, depth + 1);
	}
	if (dir)
		closedir(dir);
	if (err && !depth)
		log_unnamed(logged, err, "dump: cannot list the threads of cgroup %s", f->path);
	return err;
}

/* A thread stopped by a signal (and perhaps frozen in that stop): 1, else 0, or -ENOMEM. */
static int in_signal_stop(pid_t tid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/wchan", tid);
	auto_free char *wchan = read_file_at(AT_FDCWD, path, NULL);

	if (!wchan && errno == ENOMEM)
		return -ENOMEM;
	return wchan && !strcmp(wchan, "do_signal_stop");
}

/*
 * A guardian process thaws the cgroup if stasis dies while it is frozen (stasis's tracees are
 * let go by the kernel), or if seizing takes longer than FREEZER_SEIZE_GUARD_MS. Stasis tells
 * it through a pipe: 's' seizing starts, 'p' the cgroup was paused (should stasis die now, it
 * is frozen again instead), 'e' all is done (stasis thaws or freezes the cgroup itself).
 */
static __attribute__((noreturn)) void guard(const struct freezer *f, int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	bool seizing = false, thawed = false, paused = false;

	for (;;) {
		char c = 0;
		int n = poll(&p, 1, seizing && !thawed && !paused ? FREEZER_SEIZE_GUARD_MS : -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0 && read(fd, &c, 1) == 1 && c != 'e') {
			seizing |= c == 's';
			paused |= c == 'p';
			continue;
		}
		if (c == 'e') /* stasis is done, and thaws or freezes the cgroup itself */
			_exit(thawed);
		if (paused) { /* stasis is gone: the paused cgroup is frozen again */
			freezer_set(f, true);
			_exit(1);
		}
		/* seizing blocks (the time is up), or stasis is gone (the pipe's end closed) */
		if (!thawed)
			freezer_set(f, false);
		thawed = true;
		if (n)
			_exit(1);
	}
}

static int guardian_start(const struct freezer *f, struct freezer_guardian *g)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	if ((g->pid = fork()) == 0) {
		close(p[1]);
		guard(f, p[0]);
	}
	close(p[0]);
	if (g->pid < 0) {
		close(p[1]);
		pr_perror("dump: cannot start the freezer's guardian");
		return -errno;
	}
	g->fd = p[1];
	return 0;
}

static void guardian_tell(const struct freezer_guardian *g, char c)
{
	if (write(g->fd, &c, 1) != 1)
		pr_warn("dump: cannot reach the freezer's guardian: %m");
}

/* Ends it; true if it had to thaw the cgroup. */
static bool guardian_stop(struct freezer_guardian *g)
{
	int status = 0;

	guardian_tell(g, 'e');
	close(g->fd);
	while (waitpid(g->pid, &status, 0) < 0 && errno == EINTR)
		;
	return !WIFEXITED(status) || WEXITSTATUS(status);
}

/* Seizes each listed thread, but those stopped by a signal; fc keeps those seized. */
static int seize_frozen(const struct freezer *f, const struct freezer_guardian *g,
			const struct freezer_catch *listed, struct freezer_catch *fc)
{
	unsigned logged = log_errors();
	int err = 0;

	guardian_tell(g, 's');
	for (size_t i = 0; i < listed->n && !err; i++) {
		pid_t tid = listed->tids[i];
		int stopped = in_signal_stop(tid);
		if (stopped < 0) {
			err = stopped;
			break;
		}
		/* noted before it is seized: every thread seized is let go again */
		if (stopped || (err = add_tid(fc, tid)))
			continue;
		if (ptrace(PTRACE_SEIZE, tid, 0, (void *)PTRACE_O_TRACESYSGOOD)) {
			fc->n--; /* exiting, or traced by another: the tree's seizing judges */
			continue;
		}
		if (ptrace(PTRACE_INTERRUPT, tid, 0, 0))
			err = -errno;
	}
	if (err)
		log_unnamed(logged, err, "dump: cannot seize the threads of frozen cgroup %s", f->path);
	return err;
}

static int refreeze(const char *path, int timeout_s);

int freezer_catch_tree(const char *path, int timeout_s, pid_t root, struct freezer_catch *fc)
{
	struct freezer_catch listed = { 0 };
	struct freezer_guardian guard_proc = { .pid = -1, .fd = -1 };
	struct freezer f;
	bool has_root = false;
	int err;

	*fc = (struct freezer_catch){ 0 };
	if ((err = freezer_open(path, &f)))
		return err;
	/* stasis in it would freeze itself */
	if (!(err = list_threads(&f, f.dirfd, &listed, 0))) {
		for (size_t i = 0; i < listed.n && !err; i++) {
			if (listed.tids[i] == getpid()) {
				pr_err("dump: --freeze-cgroup %s: stasis itself is in that cgroup", path);
				err = -EINVAL;
			}
		}
	}
	free(listed.tids);
	free(listed.claimed);
	listed = (struct freezer_catch){ 0 };
	if (!err) {
		char state[32];
		int frozen = freezer_frozen(&f, state, sizeof(state));
		err = frozen < 0 ? frozen : 0;
		fc->was_frozen = frozen > 0;
	}
	if (!err && !(err = guardian_start(&f, &guard_proc))) {
		if (!(err = freeze(&f, timeout_s))) {
			if (!(err = list_threads(&f, f.dirfd, &listed, 0)))
				err = seize_frozen(&f, &guard_proc, &listed, fc);
			if (freezer_set(&f, false) && !err)
				err = -EIO;
		}
		if (!err && fc->was_frozen) { /* it stays until the cgroup is frozen again */
			guardian_tell(&guard_proc, 'p');
			fc->paused = guard_proc;
		} else if (guardian_stop(&guard_proc)) {
			pr_warn("dump: seizing the threads of frozen cgroup %s took over %d ms; it was "
				"thawed early, the tree is seized without its help", path,
				FREEZER_SEIZE_GUARD_MS);
		}
	}
	for (size_t i = 0; i < listed.n; i++)
		has_root |= listed.tids[i] == root;
	if (!err && !has_root)
		pr_warn("dump: the tree's root, pid %d, is not in cgroup %s: the freezer does not hold it",
			root, path);
	free(listed.tids);
	free(listed.claimed);
	freezer_close(&f);
	if (err) {
		freezer_release_unclaimed(fc);
		if (fc->was_frozen)
			refreeze(path, timeout_s);
		return err;
	}
	pr_debug("dump: caught %zu threads of cgroup %s", fc->n, path);
	return 0;
}

int freezer_is_frozen(const char *path)
{
	struct freezer f;
	char state[32];
	int frozen;

	if ((frozen = freezer_open(path, &f)))
		return frozen;
	frozen = freezer_frozen(&f, state, sizeof(state));
	freezer_close(&f);
	return frozen;
}

static int refreeze(const char *path, int timeout_s)
{
	struct freezer f;
	int err;

	if ((err = freezer_open(path, &f)))
		return err;
	err = freeze(&f, timeout_s);
	freezer_close(&f);
	if (!err)
		pr_info("dump: cgroup %s is frozen again, as it was before the dump", path);
	return err;
}

void freezer_claim(struct freezer_catch *fc, pid_t tid)
{
	for (size_t i = 0; i < fc->n; i++)
		if (fc->tids[i] == tid)
			fc->claimed[i] = true;
}

void freezer_release_unclaimed(struct freezer_catch *fc)
{
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + FREEZER_RELEASE_MS * 1000000ull;
	size_t left = 0;

	for (size_t i = 0; i < fc->n; i++)
		left += !fc->claimed[i] && fc->tids[i];
	/*
	 * All at once, each as it stops for its interrupt: a parent in vfork() stops only once
	 * its child, caught too, has been let go.
	 */
	while (left) {
		for (size_t i = 0; i < fc->n; i++) {
			pid_t tid = fc->tids[i], got;
			int status;
			if (fc->claimed[i] || !tid || !(got = waitpid(tid, &status, __WALL | WNOHANG)))
				continue;
			/* a signal it stopped to take goes on with it */
			int sig = got == tid && WIFSTOPPED(status) && !(status >> 16) ? WSTOPSIG(status) : 0;
			if (got == tid && WIFSTOPPED(status) && ptrace(PTRACE_DETACH, tid, 0, (void *)(long)sig))
				pr_warn("dump: cannot let thread %d of the frozen cgroup go: %m", tid);
			else
				pr_debug("dump: thread %d was in the frozen cgroup, not in the tree", tid);
			fc->claimed[i] = true;
			left--;
		}
		if (!left || now_ns(CLOCK_MONOTONIC) > deadline)
			break;
		usleep(1000);
	}
	for (size_t i = 0; i < fc->n; i++)
		if (!fc->claimed[i] && fc->tids[i])
			pr_warn("dump: thread %d of the frozen cgroup did not stop within %d ms: it goes on "
				"once stasis exits", fc->tids[i], FREEZER_RELEASE_MS);
	free(fc->tids);
	free(fc->claimed);
	free(fc->stop_sigs);
	*fc = (struct freezer_catch){ .was_frozen = fc->was_frozen, .paused = fc->paused };
}

void freezer_hold_unclaimed(struct freezer_catch *fc)
{
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + FREEZER_RELEASE_MS * 1000000ull;
	size_t left = 0;

	if (!fc->n || !(fc->stop_sigs = xzalloc(fc->n * sizeof(*fc->stop_sigs))))
		return; /* (out of memory: freezer_refreeze_caught lets them go as they come) */
	for (size_t i = 0; i < fc->n; i++) {
		fc->stop_sigs[i] = -1;
		left += !fc->claimed[i] && fc->tids[i];
	}
	while (left && now_ns(CLOCK_MONOTONIC) < deadline) {
		for (size_t i = 0; i < fc->n; i++) {
			int status;
			if (fc->claimed[i] || !fc->tids[i] || fc->stop_sigs[i] >= 0 ||
			    !waitpid(fc->tids[i], &status, __WALL | WNOHANG))
				continue;
			/* a signal it stopped to take goes on with it (gone: nothing to let go) */
			fc->stop_sigs[i] = WIFSTOPPED(status) && !(status >> 16) ? WSTOPSIG(status) : 0;
			if (!WIFSTOPPED(status))
				fc->tids[i] = 0;
			left--;
		}
		if (left)
			usleep(1000);
	}
}

void freezer_let_go_held(const char *path, struct freezer_catch *fc)
{
	for (size_t i = 0; fc->stop_sigs && i < fc->n; i++) {
		if (fc->claimed[i] || !fc->tids[i])
			continue;
		if (fc->stop_sigs[i] < 0 ||
		    ptrace(PTRACE_DETACH, fc->tids[i], 0, (void *)(long)fc->stop_sigs[i]))
			pr_warn("dump: thread %d of the paused cgroup %s cannot be let go now (%s): it goes "
				"on, frozen, once stasis exits", fc->tids[i], path,
				fc->stop_sigs[i] < 0 ? "it did not stop" : strerror(errno));
		fc->claimed[i] = true;
	}
}

void freezer_refreeze_caught(const char *path, int timeout_s, struct freezer_catch *fc)
{
	refreeze(path, timeout_s);
	freezer_let_go_held(path, fc);
	freezer_release_unclaimed(fc); /* (none left but without stop_sigs: out of memory) */
	if (fc->paused.pid > 0)
		guardian_stop(&fc->paused);
	*fc = (struct freezer_catch){ 0 };
}
