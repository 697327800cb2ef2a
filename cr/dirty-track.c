/*
 * Writes since the previous dump of a chain (cr/dirty-track.h). Each dump that keeps
 * tracking (pre-dump, or dump --track-mem --leave-running) leaves one userfaultfd in each
 * process, registered in asynchronous write-protect mode over its private anonymous
 * mappings, and writes down in the process's pagemap where it is (fd, inode, the process's
 * start time, the round). The next dump of the chain takes that one only if everything still
 * matches: otherwise the process's pages are all saved again. It then:
 *   - reads which ranges are still tracked (PAGEMAP_SCAN, category WPALLOWED): a mapping
 *     made or moved (mremap drops the registration) since is not, and is saved whole;
 *   - registers the mappings not tracked yet, so that the next dump can rely on them;
 *   - reads the pages written since and write-protects them again (PAGEMAP_SCAN with
 *     PM_SCAN_WP_MATCHING), before any page is copied: a page written while the dump copies
 *     it is written again after its protection, and the next dump sees it;
 *   - moves the tracker to another fd (so that a dump that names an older directory than the
 *     last one as its parent finds no tracker where it expects one), or closes it when
 *     tracking ends with this dump.
 * Userfaultfds of this shape that are not the process's own (inherited by a child through
 * fork, whose mappings fork leaves untracked, or left by another chain) are closed. None is
 * ever saved in the images: the restored process has neither the fd nor the registrations.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "dirty-track.h"
#include "addr-ranges.h"
#include "log.h"
#include "mm.h"
#include "pagemap-scan.h"
#include "proc.h"
#include "tree-objects.h"
#include "util.h"

#define TRACK_FEATURES (UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_ASYNC)
/* as fdinfo shows them: the kernel adds WP_UNPOPULATED to WP_ASYNC */
#define TRACK_FEATURES_SHOWN (TRACK_FEATURES | UFFD_FEATURE_WP_UNPOPULATED)
#define UFFD_FEATURE_INITIALIZED_BIT (1ULL << 31) /* the kernel's, in fdinfo only */
#define TRACK_SLOTS 64                             /* the fds a tracker moves between */
#define TASK_TOP 0x7ffffffff000ULL

struct track_state {
	int *uffds; /* every copy stasis took in this run */
	size_t n;
	bool close_later; /* dirty_track_close does it, not dump_done */
};

static struct track_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_dirty_track);
}

/* ---- the kernel ---- */

static int add_region(const struct page_region *r, void *ranges)
{
	return ranges_add(ranges, r->start, r->end);
}

/*
 * Every page of pid in a category (mask), ranges in address order (sorted after the walk
 * too: ranges_find relies on it); with protect, the pages found are write-protected again in
 * the same walk.
 */
static int scan_pages(int pagemap, uint64_t mask, bool protect, struct addr_ranges *out)
{
	struct pm_scan_arg how = {
		.flags = protect ? PM_SCAN_WP_MATCHING : 0,
		.category_mask = mask,
		.return_mask = mask,
	};
	int err = pagemap_scan_range(pagemap, how, 0, TASK_TOP, add_region, out);

	if (!err)
		ranges_sort(out);
	return err;
}

static int inject_close(struct dump_task *t, int fd)
{
	uint64_t args[6] = { (uint64_t)fd };
	int64_t ret;

	if (inject_syscall(&t->inj, SYS_close, args, &ret) || ret) {
		pr_err("dump pid %d: cannot close its memory tracker (fd %d)", t->pid, fd);
		return -EIO;
	}
	return 0;
}

/*
 * The fds trackers live at: the TRACK_SLOTS (fewer under a low limit) just below the
 * process's open files limit, or below 1024 (a huge limit would make the kernel grow its fd
 * table to it); with a higher limit, also the TRACK_SLOTS below it or below 65536, for a
 * process whose fds fill the first range (a server with a thousand connections). Sets tt's
 * base, base2 (-1: none) and slots; -EMFILE if the limit leaves no room.
 */
static int slot_base(pid_t pid, struct task_tracking *tt)
{
	char path[64];
	auto_free char *limits = NULL;
	unsigned long long soft = 0;

	snprintf(path, sizeof(path), "/proc/%d/limits", pid);
	limits = read_proc_record(path);
	if (!limits && errno == ENOMEM)
		return -ENOMEM;
	const char *l = limits ? strstr(limits, "Max open files") : NULL;
	if (!l || sscanf(l + 14, "%llu", &soft) != 1)
		soft = 1024; /* "unlimited", or unreadable: below 1024 is as good */
	tt->slots = soft / 4 < TRACK_SLOTS ? (int)(soft / 4) : TRACK_SLOTS;
	tt->base2 = soft > 1024 + TRACK_SLOTS ? (int)((soft < 65536 ? soft : 65536) - TRACK_SLOTS) : -1;
	return tt->slots < 2 ? -EMFILE : (int)((soft < 1024 ? soft : 1024) - tt->slots);
}

/* How many fds trackers may live at, and the i-th of them. */
static int nr_slots(const struct task_tracking *tt)
{
	return tt->base2 >= 0 ? 2 * tt->slots : tt->slots;
}

static int slot_fd(const struct task_tracking *tt, int i)
{
	return i < tt->slots ? tt->base + i : tt->base2 + i - tt->slots;
}

/* fd of pid is a userfaultfd with exactly a tracker's features: *ino is its inode. */
static bool is_tracker(pid_t pid, int fd, uint64_t *ino)
{
	char path[64], link[64], info[512];
	struct stat st;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0 || (link[n] = 0, strcmp(link, "anon_inode:[userfaultfd]")) || stat(path, &st))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	n = f < 0 ? -1 : read(f, info, sizeof(info) - 1);
	if (f >= 0)
		close(f);
	if (n <= 0)
		return false;
	info[n] = 0;
	const char *api = strstr(info, "API:");
	char *end;
	if (!api || !(api = strchr(api, ':')) || !(api = strchr(api + 1, ':')))
		return false;
	uint64_t features = strtoull(api + 1, &end, 16) & ~UFFD_FEATURE_INITIALIZED_BIT;
	*ino = st.st_ino;
	return end != api + 1 && features == TRACK_FEATURES_SHOWN;
}

/* Field 22 of /proc/PID/stat: when the process started (a pid used again has another). */
static int start_time(pid_t pid, uint64_t *when)
{
	char path[64];
	auto_free char *stat = NULL;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	stat = read_proc_record(path);
	if (!stat && errno == ENOMEM)
		return -ENOMEM;
	char *p = stat ? strrchr(stat, ')') : NULL;
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return -EIO;
	*when = strtoull(p + 1, NULL, 10);
	return 0;
}

/* A new tracker made inside the process; stasis's copy, or -errno. */
static int make_tracker(struct dump_task *t, int *fd_in_task)
{
	uint64_t args[6] = { O_CLOEXEC | UFFD_USER_MODE_ONLY };
	struct uffdio_api api = { .api = UFFD_API, .features = TRACK_FEATURES };
	int64_t fd;
	int copy;

	if (inject_syscall(&t->inj, SYS_userfaultfd, args, &fd))
		return -EIO;
	if (fd < 0) {
		pr_err("dump pid %d: userfaultfd() inside it failed: %s (its writes cannot be "
		       "tracked)", t->pid, strerror(-fd));
		return fd;
	}
	copy = task_fd_copy(t->pid, fd);
	if (copy < 0 || ioctl(copy, UFFDIO_API, &api)) {
		int err = copy < 0 ? copy : -errno;
		pr_err("dump pid %d: cannot set up its memory tracker: %s", t->pid, strerror(-err));
		if (copy >= 0)
			close(copy);
		inject_close(t, fd);
		return err;
	}
	*fd_in_task = fd;
	return copy;
}

/* A tracker made now moves to the first free fd of its slots (-errno if none is). */
static int place_tracker(struct dump_task *t, int from)
{
	const struct task_tracking *tt = t->track;

	for (int i = 0; i < nr_slots(tt); i++) {
		int to = slot_fd(tt, i);
		char path[64];
		uint64_t args[6] = { (uint64_t)from, (uint64_t)to, O_CLOEXEC };
		int64_t ret;

		snprintf(path, sizeof(path), "/proc/%d/fd/%d", t->pid, to);
		if (faccessat(AT_FDCWD, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		if (inject_syscall(&t->inj, SYS_dup3, args, &ret) || ret != to) {
			pr_err("dump pid %d: cannot move its memory tracker to fd %d", t->pid, to);
			return -EIO;
		}
		return inject_close(t, from) ?: to;
	}
	pr_err("dump pid %d: fds %d-%d%s are all taken: no room for its memory tracker", t->pid, tt->base,
	       tt->base + tt->slots - 1, tt->base2 < 0 ? "" : " and the range below its open files limit");
	return -EMFILE;
}

/*
 * Which round of its chain a tracker last served, in the flags of its open file (fcntl on
 * stasis's copy sets them for the process's fd too): a dump whose parent is not the last
 * round of the chain finds another number there.
 */
static const int round_flags[] = { O_NONBLOCK, O_APPEND, O_NOATIME };

static uint32_t tracker_round(int uffd)
{
	int flags = fcntl(uffd, F_GETFL);
	uint32_t round = 0;

	for (unsigned i = 0; flags >= 0 && i < ARRAY_SIZE(round_flags); i++)
		if (flags & round_flags[i])
			round |= 1u << i;
	return round;
}

static int set_tracker_round(int uffd, uint32_t round)
{
	int flags = fcntl(uffd, F_GETFL);

	for (unsigned i = 0; flags >= 0 && i < ARRAY_SIZE(round_flags); i++)
		flags = round & (1u << i) ? flags | round_flags[i] : flags & ~round_flags[i];
	return flags < 0 || fcntl(uffd, F_SETFL, flags) ? -errno : 0;
}

#define ROUND_MASK ((1u << ARRAY_SIZE(round_flags)) - 1)

/* A private mapping of protection prot in after, n, that was not one in before. */
static bool new_neighbour(const struct proc_vmas *before, const struct proc_vma *n, uint32_t prot)
{
	const struct proc_vma *was;

	if (!n || n->shared || n->prot != prot)
		return false;
	was = proc_vma_at(before, n->start);
	return !was || was->end != n->end;
}

/* After registering r: a private mapping of its protection touches it that was not there
 * before, a piece of a mapping that grew or merged over r in between, split by registering. */
static bool split_by_registering(const struct proc_vmas *before, const struct proc_vmas *after,
				 const struct addr_range *r, uint32_t prot)
{
	size_t i = proc_vma_index(after, r->start);
	const struct proc_vma *below = i && after->v[i - 1].end == r->start ? &after->v[i - 1] : NULL;

	return new_neighbour(before, below, prot) ||
	       new_neighbour(before, proc_vma_at(after, r->end), prot);
}

static void changed_meanwhile(const struct dump_task *t, uint64_t start, uint64_t end)
{
	pr_info("dump pid %d: %#llx-%#llx changed meanwhile (the process runs): the next dump "
		"saves it whole", t->pid, (unsigned long long)start, (unsigned long long)end);
}

/*
 * Tracking write-protects every page of a mapping, a hole too (the kernel's
 * WP_UNPOPULATED: a marker in a page table): 8 bytes a page of its size, whatever it holds. A
 * runtime's reservation (GHC's RTS maps 1 TiB PROT_NONE, 2 GiB of page tables then) is
 * not tracked: its pages, the few it holds, are saved whole every time.
 */
#define TRACK_MAX_BYTES (64ULL << 30)

/*
 * Every private anonymous mapping not tracked yet is registered (warned: saved whole). The
 * process may run meanwhile (a pre-dump; the threads of one whose main thread alone is
 * stopped), and registering a range that is no longer a whole mapping splits the mapping:
 * the process's next mremap() of the whole would fail (EFAULT). So a range is registered
 * only if the layout read just before has it exactly, and let go again (which merges the
 * mapping back) if the layout after shows it was split all the same.
 */
static void register_mappings(const struct dump_task *t, struct addr_ranges *tracked)
{
	struct proc_vmas before, after;
	struct addr_ranges done = { 0 };

	if (proc_read_layout(t->pid, &before))
		return; /* gone: nothing to track */
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *v = t->mm->vmas[i];
		const struct addr_range *r = ranges_find(tracked, v->start);
		/* (PROT_NONE: no write reaches it before an mprotect(), and what that makes writable
		 * is untracked, saved whole by the next dump and tracked from there) */
		if (!vma_has_pages(v) || v->kind != VMA_KIND__VMA_ANON_PRIVATE || (r && r->end >= v->end) ||
		    v->prot == PROT_NONE)
			continue;
		if (v->end - v->start > TRACK_MAX_BYTES) {
			pr_info("dump pid %d: %#llx-%#llx (%llu GiB) is not tracked (its page tables would "
				"take %llu MiB): its pages are saved whole every time", t->pid,
				(unsigned long long)v->start, (unsigned long long)v->end,
				(unsigned long long)((v->end - v->start) >> 30),
				(unsigned long long)((v->end - v->start) >> 29));
			continue;
		}
		const struct proc_vma *now = proc_vma_at(&before, v->start);
		if (!now || now->end != v->end || now->shared) {
			changed_meanwhile(t, v->start, v->end);
			continue;
		}
		struct uffdio_register reg = {
			.range = { .start = v->start, .len = v->end - v->start },
			.mode = UFFDIO_REGISTER_MODE_WP,
		};
		if (!ioctl(t->track->uffd, UFFDIO_REGISTER, &reg)) {
			if (ranges_add(&done, v->start, v->end))
				break;
			continue;
		}
		if (t->ctx->opts->pre_dump && (errno == EINVAL || errno == ENOMEM))
			changed_meanwhile(t, v->start, v->end);
		else
			pr_warn("dump pid %d: writes to %#llx-%#llx cannot be tracked (%m): it is saved "
				"whole every time", t->pid, (unsigned long long)v->start,
				(unsigned long long)v->end);
	}
	if (done.n && !proc_read_layout(t->pid, &after)) {
		for (size_t i = 0; i < done.n; i++) {
			const struct proc_vma *was = proc_vma_at(&before, done.v[i].start);
			if (!was || !split_by_registering(&before, &after, &done.v[i], was->prot))
				continue;
			struct uffdio_range range = { done.v[i].start, done.v[i].end - done.v[i].start };
			ioctl(t->track->uffd, UFFDIO_UNREGISTER, &range);
			changed_meanwhile(t, done.v[i].start, done.v[i].end);
		}
		proc_vmas_free(&after);
	}
	ranges_free(&done);
	proc_vmas_free(&before);
}

static int keep_copy(const struct run_ctx *ctx, int uffd)
{
	struct track_state *st = state_of(ctx);
	int *more = xreallocarray(st->uffds, st->n + 1, sizeof(int));

	if (!more) {
		close(uffd);
		return -ENOMEM;
	}
	st->uffds = more;
	st->uffds[st->n++] = uffd;
	return 0;
}

/* Tracking goes on after this dump: a pre-dump, or dump --track-mem that leaves the tree. */
static bool keeps_tracking(const struct stasis_opts *o)
{
	return o->pre_dump || (o->track_mem && o->leave_running);
}

/*
 * The trackers in the process: the one the parent names (same fd, inode, process start
 * time, and its last round the parent's) is tt->own and gets copied; tt->strays counts the
 * others. *why says what did not match when the parent names one that is not there.
 */
static int find_trackers(struct dump_task *t, const char **why)
{
	struct task_tracking *tt = t->track;
	const WriteTracking *rec = tt->rec;
	auto_free int *open_fds = NULL;
	size_t n_open;
	uint64_t started, ino;
	int err;

	*why = rec ? "its tracker is gone" : "the parent dump did not track it";
	if ((err = start_time(t->pid, &started)))
		return err;
	if (rec && rec->start_time != started)
		*why = "it is another process with the same pid";
	/* (its open fds listed once: a slot that is none holds no tracker) */
	if ((err = proc_list_numbers(t->pid, "fd", &open_fds, &n_open)))
		return err;
	for (int i = 0; i < nr_slots(tt); i++) {
		int fd = slot_fd(tt, i);
		if (!proc_numbers_hold(open_fds, n_open, fd) || !is_tracker(t->pid, fd, &ino))
			continue;
		if (tt->own < 0 && rec && (uint32_t)fd == rec->fd && ino == rec->uffd_ino &&
		    started == rec->start_time) {
			tt->uffd = task_fd_copy(t->pid, fd);
			if (tt->uffd < 0 || (err = keep_copy(t->ctx, tt->uffd)))
				return tt->uffd < 0 ? tt->uffd : err;
			if (tracker_round(tt->uffd) == (rec->round & ROUND_MASK)) {
				tt->own = fd;
				continue;
			}
			*why = "a later dump of the chain than the parent tracked it since: name the last "
			       "one as the parent";
			tt->uffd = -1;
		}
		tt->strays++;
	}
	return 0;
}

int dirty_track_find(struct dump_task *t, bool *needs_inject)
{
	struct task_tracking *tt = xzalloc(sizeof(*tt));
	const char *why;
	int err;

	*needs_inject = false;
	if (!tt)
		return -ENOMEM;
	tt->fd_in_task = tt->uffd = tt->own = -1;
	tt->keep = keeps_tracking(t->ctx->opts);
	t->track = tt;
	if ((tt->base = slot_base(t->pid, tt)) < 0) {
		if (tt->base == -ENOMEM)
			return tt->base;
		if (!tt->keep)
			return 0;
		pr_err("dump pid %d: its open files limit leaves no room for a memory tracker", t->pid);
		return tt->base;
	}
	if ((err = chain_parent_pagemap(t->ctx, t->vpid, &tt->parent)))
		return err;
	tt->rec = tt->parent ? tt->parent->tracking : NULL;
	if ((err = find_trackers(t, &why)))
		return err;
	if (tt->parent && tt->own < 0) {
		pr_warn("dump pid %d: its writes since the parent dump are unknown (%s): every page "
			"is saved again", t->pid, why);
		image_free(&tt->parent->base);
		tt->parent = NULL;
		tt->rec = NULL;
	}
	*needs_inject = tt->strays || (tt->keep ? tt->own < 0 : tt->own >= 0);
	return 0;
}

/* The trackers that are not the process's own are closed inside it. */
static int close_strays(struct dump_task *t)
{
	const struct task_tracking *tt = t->track;
	uint64_t ino;
	int err;

	for (int i = 0; tt->strays && i < nr_slots(tt); i++) {
		int fd = slot_fd(tt, i);
		if (fd != tt->own && is_tracker(t->pid, fd, &ino) && (err = inject_close(t, fd)))
			return err;
	}
	return 0;
}

static int write_down(struct dump_task *t, int fd)
{
	struct task_tracking *tt = t->track;
	WriteTracking *rec = xzalloc(sizeof(*rec));
	struct stat st;
	int err;

	write_tracking__init(rec);
	if (fstat(tt->uffd, &st))
		return -errno;
	if ((err = start_time(t->pid, &rec->start_time)))
		return err;
	rec->fd = fd;
	rec->uffd_ino = st.st_ino;
	rec->round = tt->rec ? tt->rec->round + 1 : 0;
	if ((err = set_tracker_round(tt->uffd, rec->round & ROUND_MASK))) {
		pr_err("dump pid %d: cannot mark its memory tracker: %s", t->pid, strerror(-err));
		return err;
	}
	t->pagemap->tracking = rec;
	tt->fd_in_task = fd;
	return 0;
}

int dirty_track_arm(struct dump_task *t)
{
	struct task_tracking *tt = t->track;
	char path[64];
	int err;

	if (!tt || tt->base < 0)
		return 0;
	if ((err = close_strays(t)))
		return err;
	if (tt->own < 0 && !tt->keep)
		return 0;
	if (tt->own < 0) {
		int made = -1;
		tt->uffd = make_tracker(t, &made);
		if (tt->uffd < 0 || (err = keep_copy(t->ctx, tt->uffd)))
			return tt->uffd < 0 ? tt->uffd : err;
		if ((tt->own = place_tracker(t, made)) < 0)
			return tt->own;
	}
	snprintf(path, sizeof(path), "/proc/%d/pagemap", t->pid);
	auto_close int pagemap = open(path, O_RDONLY | O_CLOEXEC);
	if (pagemap < 0 ||
	    (tt->parent && (err = scan_pages(pagemap, PAGE_IS_WPALLOWED, false, &tt->tracked)))) {
		err = pagemap < 0 ? -errno : err;
		pr_err("dump pid %d: cannot read which of its mappings are tracked: %s", t->pid,
		       strerror(-err));
		return err;
	}
	if (tt->keep)
		register_mappings(t, &tt->tracked);
	if ((err = scan_pages(pagemap, PAGE_IS_WRITTEN, true, &tt->written))) {
		pr_err("dump pid %d: cannot read the pages it wrote (PAGEMAP_SCAN): %s", t->pid,
		       strerror(-err));
		return err;
	}
	if (tt->parent)
		pr_info("dump pid %d: %zu ranges of pages written since the parent dump", t->pid,
			tt->written.n);
	if (!tt->keep)
		return inject_close(t, tt->own); /* tracking ends with this dump */
	return write_down(t, tt->own);
}

static int dump_tracking(struct dump_task *t)
{
	bool needs_inject;
	int err = dirty_track_find(t, &needs_inject);

	return err ? err : dirty_track_arm(t);
}

bool dirty_track_owns_fd(const struct dump_task *t, int fd)
{
	return t->track && t->track->fd_in_task >= 0 && t->track->fd_in_task == fd;
}

bool dirty_track_unchanged(const struct dump_task *t, uint64_t vaddr, struct page_loc *loc)
{
	struct task_tracking *tt = t->track;

	if (!tt || !tt->parent || !ranges_find(&tt->tracked, vaddr) || ranges_find(&tt->written, vaddr))
		return false;
	return chain_parent_page(tt->parent, t->vpid, vaddr, loc, &tt->parent_hint);
}

void dirty_track_abort(struct dump_task *tasks, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct task_tracking *tt = tasks[i].track;
		struct addr_ranges registered = { 0 };
		char path[64];

		if (!tt || tt->uffd < 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/pagemap", tasks[i].pid);
		int pagemap = open(path, O_RDONLY | O_CLOEXEC);
		if (pagemap >= 0 && !scan_pages(pagemap, PAGE_IS_WPALLOWED, false, &registered)) {
			for (size_t k = 0; k < registered.n; k++) {
				struct uffdio_range r = { registered.v[k].start,
							  registered.v[k].end - registered.v[k].start };
				ioctl(tt->uffd, UFFDIO_UNREGISTER, &r);
			}
		}
		if (pagemap >= 0)
			close(pagemap);
		ranges_free(&registered);
		pr_info("dump pid %d: its memory tracking starts over with the next dump", tasks[i].pid);
	}
}

void dirty_track_free(struct task_tracking *tt)
{
	if (!tt)
		return;
	if (tt->parent)
		image_free(&tt->parent->base);
	ranges_free(&tt->tracked);
	ranges_free(&tt->written);
	free(tt);
}

void dirty_track_close(struct run_ctx *ctx)
{
	struct track_state *st = state_of(ctx);

	for (size_t i = 0; i < st->n; i++)
		close(st->uffds[i]);
	free(st->uffds);
	*st = (struct track_state){ 0 };
}

void dirty_track_close_later(struct run_ctx *ctx)
{
	state_of(ctx)->close_later = true;
}

static void track_dump_done(struct run_ctx *ctx)
{
	if (!state_of(ctx)->close_later)
		dirty_track_close(ctx);
}

const struct state_ops state_dirty_track = {
	.name = "memory write tracking",
	.dump = dump_tracking,
};

const struct tree_object_ops tree_dirty_track = {
	.name = "memory write tracking",
	.state_size = sizeof(struct track_state),
	.dump_done = track_dump_done,
};
