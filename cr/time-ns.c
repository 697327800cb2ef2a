/*
 * The tree's own time namespaces (time-ns.img): each runs CLOCK_MONOTONIC and CLOCK_BOOTTIME
 * at offsets of its own from the host's. A namespace's offsets can only be set before any
 * process is in it, and a process can only be put in one namespace with its children going to
 * another (a fresh one) by unsharing CLONE_NEWTIME itself: setns puts the caller and its
 * children in the same one. So every namespace some process of the tree sends its children to
 * while itself in another has that process as its maker: restored, the maker (in its own
 * namespace) unshares and sets the offsets, and only its descendants can get in. Every other
 * namespace of the tree stasis makes before the tree (a helper unshares, sets the offsets and
 * exits; stasis keeps the namespace's fd), and a process in it enters it (setns) right after
 * it is forked, before it forks its children. A process in stasis's own namespace goes back
 * there the same way. Dump refuses what no restore can make: a namespace with two makers, a
 * process in a namespace outside its maker's descendants, a process in one namespace with its
 * children going to stasis's own, threads of a process in different ones.
 *
 * As with criu, the tree's clocks go on from where they stood when it was frozen: the
 * offsets are made against the host's clocks at restore time, so that the tree's monotonic
 * and boot-time clocks never go back, after a host reboot either, and do not jump by the
 * time the tree spent in the images; the differences between its namespaces are kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "kernel/features.h"
#include "log.h"
#include "ns-helper.h"
#include "ns-make.h"
#include "pstree.h"
#include "time-ns.h"
#include "tree-plan.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

#define NSEC 1000000000LL
/* The kernel keeps a namespace's clocks below KTIME_SEC_MAX / 2 seconds. */
#define CLOCK_MAX_NS (((INT64_MAX / NSEC) / 2) * NSEC)

/* One time namespace of the tree. */
struct time_ns_one {
	uint64_t id;                /* its inode at dump: the tasks' NsIds name it so */
	int64_t mono, boot;         /* its clocks when the tree was frozen */
	int64_t mono_off, boot_off; /* its offsets from the host's then (informative) */
	ssize_t maker;              /* the task that makes it (an index in the tree), -1: stasis */
	int fd;                     /* restore: an fd of it, once made (in the process's copy) */
};

struct time_ns_state {
	TimeNs *img;                /* from the image */
	uint64_t dumper;            /* stasis's own namespace at dump (0: none of the tree's is) */
	struct time_ns_one *ns;
	size_t nr;
	const struct dump_task *tasks; /* dump: the tree's (makers are indices in it) */
	int dumper_fd, proc_fd;     /* restore: stasis's own namespace, stasis's /proc */
};

static struct time_ns_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_time_ns);
}

static ssize_t find_ns(const struct time_ns_state *st, uint64_t id)
{
	for (size_t i = 0; i < st->nr; i++)
		if (st->ns[i].id == id)
			return i;
	return -1;
}

static int add_ns(struct time_ns_state *st, uint64_t id)
{
	if (id == st->dumper || find_ns(st, id) >= 0)
		return 0;
	struct time_ns_one *ns = xreallocarray(st->ns, st->nr + 1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	st->ns = ns;
	st->ns[st->nr++] = (struct time_ns_one){ .id = id, .maker = -1, .fd = -1 };
	return 0;
}

/* WHO/timens_offsets (WHO: /proc/PID, or PID under a /proc dirfd): the offsets of the time
 * namespace WHO's children go to. */
static int read_offsets(int dirfd, const char *who, int64_t *mono, int64_t *boot)
{
	char path[64], name[16];
	long long sec;
	long nsec;
	int found = 0;

	snprintf(path, sizeof(path), "%s/timens_offsets", who);
	auto_free char *text = read_file_at(dirfd, path, NULL);
	if (!text && errno == ENOMEM)
		return -ENOMEM;
	for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
		if (sscanf(line, "%15s %lld %ld", name, &sec, &nsec) != 3)
			continue;
		if (!strcmp(name, "monotonic"))
			*mono = sec * NSEC + nsec, found |= 1;
		else if (!strcmp(name, "boottime"))
			*boot = sec * NSEC + nsec, found |= 2;
	}
	if (found != 3) {
		pr_err("cannot read the clock offsets of %s%s", dirfd == AT_FDCWD ? "" : "/proc/", path);
		return -EIO;
	}
	return 0;
}

/* The inode of /proc/WHO/ns/KIND, 0 if there is none. */
static uint64_t ns_ino(const char *who, const char *kind)
{
	char path[96];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%s/ns/%s", who, kind);
	return stat(path, &st) ? 0 : st.st_ino;
}

/* In a helper that has entered the namespace: its offsets (those of where its children go). */
static int offsets_here(void *out, size_t len)
{
	int64_t *off = out;

	(void)len;
	return read_offsets(AT_FDCWD, "/proc/self", &off[0], &off[1]);
}

/* Namespace k's offsets: from a process that sends its children there, or one inside it. */
static int ns_offsets(struct dump_tree *tr, const uint64_t (*ids)[2], struct time_ns_one *ns)
{
	char who[32];
	int64_t off[2];
	int err;

	for (size_t i = 0; i < tr->nr_tasks; i++) {
		if (ids[i][1] != ns->id)
			continue;
		snprintf(who, sizeof(who), "/proc/%d", tr->tasks[i].pid);
		return read_offsets(AT_FDCWD, who, &ns->mono_off, &ns->boot_off);
	}
	for (size_t i = 0; i < tr->nr_tasks; i++) {
		if (ids[i][0] != ns->id)
			continue;
		if ((err = ns_helper_run(tr->tasks[i].pid, CLONE_NEWTIME, offsets_here, off, sizeof(off))))
			return err;
		ns->mono_off = off[0], ns->boot_off = off[1];
		return 0;
	}
	return -EINVAL; /* (every namespace was found in some task's ids) */
}

static bool descends_from(const struct dump_task *t, const struct dump_task *anc)
{
	for (t = t->parent; t; t = t->parent)
		if (t == anc)
			return true;
	return false;
}

/*
 * Who makes each namespace of the tree (see the top): the process in another namespace than
 * the one its children go to, at most one for each; every process in a namespace made by a
 * process is that one's descendant.
 */
static int find_makers(struct time_ns_state *st, struct dump_tree *tr, const uint64_t (*ids)[2])
{
	for (size_t i = 0; i < tr->nr_tasks; i++) {
		if (ids[i][0] == ids[i][1])
			continue;
		ssize_t k = find_ns(st, ids[i][1]);
		if (k < 0) {
			pr_err("dump pid %d: it is in time namespace time:[%llu] and its children go to "
			       "stasis's own, time:[%llu]: no process can be put back in one namespace "
			       "with its children going to another that exists already",
			       tr->tasks[i].pid, (unsigned long long)ids[i][0],
			       (unsigned long long)ids[i][1]);
			return -ENOTSUP;
		}
		if (st->ns[k].maker >= 0) {
			pr_err("dump pid %d: it and pid %d both send their children to time namespace "
			       "time:[%llu] while in another one; a restore makes that namespace in one "
			       "process only (which unshares it)",
			       tr->tasks[i].pid, tr->tasks[st->ns[k].maker].pid,
			       (unsigned long long)ids[i][1]);
			return -ENOTSUP;
		}
		st->ns[k].maker = i;
	}
	for (size_t i = 0; i < tr->nr_tasks; i++) {
		ssize_t k = find_ns(st, ids[i][0]);
		if (k < 0 || st->ns[k].maker < 0 ||
		    descends_from(&tr->tasks[i], &tr->tasks[st->ns[k].maker]))
			continue;
		pr_err("dump pid %d: it is in time namespace time:[%llu], where pid %d sends its "
		       "children from time:[%llu], but it is not a descendant of pid %d: a restore "
		       "makes that namespace in pid %d (which unshares it), and only its descendants "
		       "can get in",
		       tr->tasks[i].pid, (unsigned long long)ids[i][0], tr->tasks[st->ns[k].maker].pid,
		       (unsigned long long)ids[st->ns[k].maker][0], tr->tasks[st->ns[k].maker].pid,
		       tr->tasks[st->ns[k].maker].pid);
		return -ENOTSUP;
	}
	return 0;
}

/* Every process's namespace and its children's (every thread in its process's); the tree's. */
static int read_tree_ids(struct time_ns_state *st, struct dump_tree *tr, uint64_t (*ids)[2])
{
	int err;

	for (size_t i = 0; i < tr->nr_tasks; i++) {
		const struct dump_task *t = &tr->tasks[i];
		char who[48];
		snprintf(who, sizeof(who), "%d", t->pid);
		ids[i][0] = ns_ino(who, "time");
		ids[i][1] = ns_ino(who, "time_for_children");
		if (!ids[i][0] || !ids[i][1]) {
			pr_err("dump pid %d: cannot read its time namespaces", t->pid);
			return -ESRCH;
		}
		for (size_t j = 0; j < t->nr_threads; j++) {
			snprintf(who, sizeof(who), "%d/task/%d", t->pid, t->threads[j].tid);
			uint64_t th = ns_ino(who, "time"), thc = ns_ino(who, "time_for_children");
			if (th == ids[i][0] && thc == ids[i][1])
				continue;
			pr_err("dump pid %d thread %d: it is in time namespace time:[%llu] with its "
			       "children going to time:[%llu], its process in time:[%llu] with its "
			       "children going to time:[%llu]; the threads of a process are restored in "
			       "its namespaces", t->pid, t->threads[j].tid, (unsigned long long)th,
			       (unsigned long long)thc, (unsigned long long)ids[i][0],
			       (unsigned long long)ids[i][1]);
			return -ENOTSUP;
		}
		if ((err = add_ns(st, ids[i][0])) || (err = add_ns(st, ids[i][1])))
			return err;
	}
	return 0;
}

static int write_image(struct run_ctx *ctx, struct dump_tree *tr, const uint64_t (*ids)[2])
{
	struct time_ns_state *st = state_of(ctx);
	TimeNs img = TIME_NS__INIT;
	auto_free TimeNsOther *others = xzalloc(st->nr * sizeof(*others));
	auto_free TimeNsOther **ptrs = xzalloc(st->nr * sizeof(*ptrs));

	if (!others || !ptrs)
		return -ENOMEM;
	img.monotonic_ns = st->ns[0].mono;
	img.boottime_ns = st->ns[0].boot;
	img.monotonic_offset_ns = st->ns[0].mono_off;
	img.boottime_offset_ns = st->ns[0].boot_off;
	img.root_inside = ids[0][0] == st->ns[0].id;
	img.has_id = img.has_dumper_id = true;
	img.id = st->ns[0].id;
	img.dumper_id = st->dumper;
	for (size_t k = 1; k < st->nr; k++) {
		TimeNsOther *o = &others[k - 1];
		time_ns_other__init(o);
		o->id = st->ns[k].id;
		o->monotonic_ns = st->ns[k].mono;
		o->boottime_ns = st->ns[k].boot;
		o->monotonic_offset_ns = st->ns[k].mono_off;
		o->boottime_offset_ns = st->ns[k].boot_off;
		ptrs[img.n_others++] = o;
	}
	img.others = ptrs;
	tr->inv.has_time_ns = tr->inv.time_ns = true;
	return image_write(ctx->images_dir_fd, IMG_TIME_NS, 0, &img.base);
}

/* The tree frozen: its namespaces, who makes each, and their clocks now. */
static int collect_time_ns(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct time_ns_state *st = state_of(ctx);
	int64_t own_mono, own_boot;
	int err;

	if (!(st->dumper = ns_ino("self", "time")))
		return 0; /* a kernel without time namespaces */
	st->tasks = tr->tasks;
	auto_free uint64_t (*ids)[2] = xzalloc(tr->nr_tasks * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	if ((err = read_tree_ids(st, tr, ids)) || !st->nr)
		return err;
	if (ns_ino("self", "time_for_children") != st->dumper) {
		pr_err("dump pid %d: the tree has a time namespace of its own, but stasis itself runs "
		       "in one its children would not: it cannot tell the tree's clocks from the host's",
		       tr->tasks[0].pid);
		return -ENOTSUP;
	}
	if ((err = find_makers(st, tr, ids)))
		return err;
	for (size_t k = 0; k < st->nr; k++)
		if ((err = ns_offsets(tr, ids, &st->ns[k])))
			return err;
	if ((err = read_offsets(AT_FDCWD, "/proc/self", &own_mono, &own_boot)))
		return err;
	/* own offsets taken off: the host's clocks, once for all (their differences kept) */
	int64_t host_mono = (int64_t)now_ns(CLOCK_MONOTONIC) - own_mono;
	int64_t host_boot = (int64_t)now_ns(CLOCK_BOOTTIME) - own_boot;
	for (size_t k = 0; k < st->nr; k++) {
		struct time_ns_one *ns = &st->ns[k];
		ns->mono = host_mono + ns->mono_off; /* the namespace's offsets added: its clocks */
		ns->boot = host_boot + ns->boot_off;
		pr_debug("dump: time namespace time:[%llu] (made by pid %d, 0: stasis), monotonic "
			 "%+lld ns, boottime %+lld ns from the host's", (unsigned long long)ns->id,
			 ns->maker < 0 ? 0 : tr->tasks[ns->maker].pid, (long long)ns->mono_off,
			 (long long)ns->boot_off);
	}
	return write_image(ctx, tr, ids);
}

static int clocks_valid(uint64_t id, uint64_t mono, uint64_t boot)
{
	if (mono <= CLOCK_MAX_NS && boot <= CLOCK_MAX_NS && id)
		return 0;
	pr_err("image time-ns.img: namespace time:[%llu]: no id, or a clock beyond what the kernel "
	       "keeps", (unsigned long long)id);
	return -EINVAL;
}

/* The image's namespaces into st->ns (an image of one namespace may name none). */
static int read_namespaces(struct time_ns_state *st, const NsIds *root)
{
	const TimeNs *img = st->img;
	int err;

	if (!(st->ns = xzalloc((1 + img->n_others) * sizeof(*st->ns))))
		return -ENOMEM;
	st->dumper = img->has_dumper_id ? img->dumper_id
		     : root->time != root->time_for_children ? root->time : 0;
	st->ns[0] = (struct time_ns_one){ .id = img->has_id ? img->id : root->time_for_children,
					  .mono = img->monotonic_ns, .boot = img->boottime_ns,
					  .maker = -1, .fd = -1 };
	if ((err = clocks_valid(st->ns[0].id, img->monotonic_ns, img->boottime_ns)))
		return err;
	st->nr = 1;
	for (size_t k = 0; k < img->n_others; k++) {
		const TimeNsOther *o = img->others[k];
		if ((err = clocks_valid(o->id, o->monotonic_ns, o->boottime_ns)))
			return err;
		if (find_ns(st, o->id) >= 0) {
			pr_err("image time-ns.img: namespace time:[%llu] is there twice",
			       (unsigned long long)o->id);
			return -EINVAL;
		}
		st->ns[st->nr++] = (struct time_ns_one){ .id = o->id, .mono = o->monotonic_ns,
							 .boot = o->boottime_ns, .maker = -1, .fd = -1 };
	}
	if (st->dumper && find_ns(st, st->dumper) >= 0) {
		pr_err("image time-ns.img: namespace time:[%llu] is stasis's own and the tree's",
		       (unsigned long long)st->dumper);
		return -EINVAL;
	}
	return 0;
}

static ssize_t entry_of(const Inventory *inv, pid_t pid)
{
	for (size_t e = 0; e < inv->n_tree; e++)
		if (inv->tree[e]->pid == (uint32_t)pid)
			return e;
	return -1;
}

/* Every task's namespaces are known ones; each namespace's maker, whose descendants its members are. */
static int check_tasks(struct time_ns_state *st, struct restore_tree *rt)
{
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const NsIds *ids = rt->tasks[i].core->ns;
		uint64_t id[2] = { ids->time, ids->time_for_children };
		for (int w = 0; w < 2; w++)
			if (id[w] != st->dumper && find_ns(st, id[w]) < 0) {
				pr_err("image core-%d.img: time namespace time:[%llu] is neither stasis's "
				       "nor one of time-ns.img", rt->tasks[i].pid,
				       (unsigned long long)id[w]);
				return -EINVAL;
			}
		if (id[0] == id[1])
			continue;
		ssize_t k = find_ns(st, id[1]);
		if (k < 0 || st->ns[k].maker >= 0) {
			pr_err("image core-%d.img: it is in time namespace time:[%llu] with its children "
			       "going to time:[%llu], %s", rt->tasks[i].pid, (unsigned long long)id[0],
			       (unsigned long long)id[1],
			       k < 0 ? "stasis's own: no restore can make that"
				     : "and so is another process: only one can make it");
			return -EINVAL;
		}
		st->ns[k].maker = i;
	}
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		ssize_t k = find_ns(st, rt->tasks[i].core->ns->time);
		if (k < 0 || st->ns[k].maker < 0)
			continue;
		const struct restore_task *m = &rt->tasks[st->ns[k].maker];
		ssize_t e = entry_of(rt->inv, rt->tasks[i].pid), me = entry_of(rt->inv, m->pid);
		if (e >= 0 && me >= 0 && e != me && tree_plan_forked_below(rt->inv, rt->plan, e, me))
			continue;
		pr_err("image core-%d.img: it is in time namespace time:[%llu], which pid %d makes, but "
		       "it is not forked below pid %d", rt->tasks[i].pid,
		       (unsigned long long)rt->tasks[i].core->ns->time, m->pid, m->pid);
		return -EINVAL;
	}
	return 0;
}

static int check_cores(const struct restore_tree *rt)
{
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const NsIds *ids = rt->tasks[i].core->ns;
		if (!ids || !ids->has_time || !ids->has_time_for_children || !ids->time ||
		    !ids->time_for_children) {
			pr_err("image core-%d.img: the tree has time namespaces, but not the process's",
			       rt->tasks[i].pid);
			return -EINVAL;
		}
	}
	return 0;
}

/* Does some process use fd of pid (FD_SHARED: the file is opened by stasis)? */
static bool used_by_others(const struct restore_tree *rt, pid_t pid, uint32_t fd)
{
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const FdTable *tab = rt->tasks[i].fds;
		for (size_t f = 0; tab && f < tab->n_fds; f++)
			if (tab->fds[f]->kind == FD_KIND__FD_SHARED &&
			    tab->fds[f]->shared_pid == (uint32_t)pid && tab->fds[f]->shared_fd == fd)
				return true;
	}
	return false;
}

/*
 * Every fd of a time namespace (cr/files/nsfile.c) names one that is made again, where its
 * process can reach it: one a process makes only in that process or those forked below it,
 * and not an open file several share (stasis opens those, outside it).
 */
static int check_fds(const struct time_ns_state *st, const struct restore_tree *rt)
{
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const struct restore_task *t = &rt->tasks[i];
		for (size_t f = 0; t->fds && f < t->fds->n_fds; f++) {
			const FdEntry *e = t->fds->fds[f];
			if (!e->has_ns_id)
				continue;
			ssize_t k = find_ns(st, e->ns_id);
			if (!e->ns_id || (k < 0 && e->ns_id != st->dumper)) {
				pr_err("image fds-%d.img: fd %u is time namespace time:[%llu], which is "
				       "neither stasis's nor one of time-ns.img", t->pid, e->fd,
				       (unsigned long long)e->ns_id);
				return -EINVAL;
			}
			if (k < 0 || st->ns[k].maker < 0)
				continue;
			const struct restore_task *m = &rt->tasks[st->ns[k].maker];
			ssize_t te = entry_of(rt->inv, t->pid), me = entry_of(rt->inv, m->pid);
			if (te >= 0 && me >= 0 && !used_by_others(rt, t->pid, e->fd) &&
			    (te == me || tree_plan_forked_below(rt->inv, rt->plan, te, me)))
				continue;
			pr_err("image fds-%d.img: fd %u is time namespace time:[%llu], which pid %d makes: "
			       "only it and the processes forked below it can hold it, each an open file "
			       "of its own", t->pid, e->fd, (unsigned long long)e->ns_id, m->pid);
			return -EINVAL;
		}
	}
	return 0;
}

static int validate_time_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct time_ns_state *st = state_of(ctx);
	int err;

	st->dumper_fd = st->proc_fd = -1;
	if (rt->inv->time_ns &&
	    (err = image_read(ctx->images_dir_fd, IMG_TIME_NS, 0, (ProtobufCMessage **)&st->img)))
		return err;
	if (st->img && ((err = check_cores(rt)) || (err = read_namespaces(st, rt->tasks[0].core->ns)) ||
			(err = check_tasks(st, rt))))
		return err;
	if ((err = check_fds(st, rt)) || !st->img)
		return err;
	if (!kernel_has(KF_TIME_NS)) {
		pr_err("restore: the tree had a time namespace of its own, and this kernel cannot make "
		       "one (%s); nothing was started", kernel_feature_report(KF_TIME_NS)->detail);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* "monotonic SEC NSEC": nsec from 0 to 1e9 - 1 even for an offset below zero. */
static int format_offset(char *buf, size_t len, const char *clock, int64_t off)
{
	int64_t sec = off / NSEC, nsec = off % NSEC;

	if (nsec < 0)
		sec--, nsec += NSEC;
	return snprintf(buf, len, "%s %lld %lld\n", clock, (long long)sec, (long long)nsec);
}

/*
 * In a process that has just unshared a time namespace: the new one's clocks read what the
 * namespace's read when the tree was frozen.
 */
static int set_offsets(int proc_fd, const struct time_ns_one *ns)
{
	int64_t prev_mono, prev_boot;
	char text[128];
	int len, err;

	/* a new namespace starts with its parent's offsets: the host's clocks are ours less them */
	if ((err = read_offsets(proc_fd, "self", &prev_mono, &prev_boot)))
		return err;
	int64_t mono = ns->mono - ((int64_t)now_ns(CLOCK_MONOTONIC) - prev_mono);
	int64_t boot = ns->boot - ((int64_t)now_ns(CLOCK_BOOTTIME) - prev_boot);
	len = format_offset(text, sizeof(text), "monotonic", mono);
	len += format_offset(text + len, sizeof(text) - len, "boottime", boot);
	auto_close int fd = openat(proc_fd, "self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, text, len) != len) {
		pr_perror("restore: cannot set the clock offsets of time namespace time:[%llu]",
			  (unsigned long long)ns->id);
		return -errno;
	}
	pr_debug("restore: time namespace time:[%llu]: monotonic %+lld ns, boottime %+lld ns from "
		 "the host's clocks", (unsigned long long)ns->id, (long long)mono, (long long)boot);
	return 0;
}

/*
 * A namespace no process of the tree makes: a helper unshares it, stasis keeps an fd of it. In
 * the tree's user namespace if it has one: that one owns it, so that its processes may enter.
 */
static int make_by_helper(const struct run_ctx *ctx, struct time_ns_state *st, struct time_ns_one *ns)
{
	int ready[2], hold[2], err = 0;
	char path[64], c;

	if (pipe2(ready, O_CLOEXEC))
		return -errno;
	if (pipe2(hold, O_CLOEXEC)) {
		err = -errno;
		close(ready[0]), close(ready[1]);
		return err;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]), close(hold[1]);
		if (!ns_make_tree_userns(ctx) || !(err = ns_make_enter_tree_userns(ctx)))
			err = unshare(CLONE_NEWTIME) ? -errno : set_offsets(st->proc_fd, ns);
		if (write(ready[1], &err, sizeof(err)) == sizeof(err) && !err)
			err = read(hold[0], &c, 1); /* until stasis holds the namespace */
		_exit(0);
	}
	close(ready[1]), close(hold[0]);
	if (pid < 0)
		err = -errno;
	else if (read(ready[0], &err, sizeof(err)) != sizeof(err))
		err = -EIO;
	snprintf(path, sizeof(path), "%d/ns/time_for_children", pid);
	if (!err && (ns->fd = openat(st->proc_fd, path, O_RDONLY | O_CLOEXEC)) < 0)
		err = -errno;
	close(ready[0]), close(hold[1]);
	while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (err)
		pr_err("restore: cannot make time namespace time:[%llu]: %s", (unsigned long long)ns->id,
		       strerror(-err));
	return err;
}

static int prepare_time_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct time_ns_state *st = state_of(ctx);
	int err;

	(void)rt;
	if (!st->nr)
		return 0;
	if ((st->proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (st->dumper_fd = open("/proc/self/ns/time", O_RDONLY | O_CLOEXEC)) < 0) {
		pr_perror("restore: cannot open /proc or stasis's own time namespace");
		return -errno;
	}
	for (size_t k = 0; k < st->nr; k++)
		if (st->ns[k].maker < 0 && (err = make_by_helper(ctx, st, &st->ns[k])))
			return err;
	return 0;
}

/* Is the calling process's namespace of kind the one fd is? */
static bool is_ns(const struct time_ns_state *st, int fd, const char *kind)
{
	char path[48];
	struct stat a, b;

	snprintf(path, sizeof(path), "self/ns/%s", kind);
	return !fstat(fd, &a) && !fstatat(st->proc_fd, path, &b, 0) && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev;
}

int time_ns_join(struct run_ctx *ctx, const struct restore_task *t, int fd_floor)
{
	struct time_ns_state *st = state_of(ctx);
	int err;

	if (!st->nr)
		return 0;
	const NsIds *ids = t->core->ns;
	ssize_t own = find_ns(st, ids->time), kids = find_ns(st, ids->time_for_children);
	int fd = own < 0 ? st->dumper_fd : st->ns[own].fd;
	if (fd < 0) {
		pr_err("restore pid %d: its time namespace time:[%llu] was not made", t->pid,
		       (unsigned long long)ids->time);
		return -EINVAL;
	}
	if ((!is_ns(st, fd, "time") || !is_ns(st, fd, "time_for_children")) &&
	    setns(fd, CLONE_NEWTIME)) {
		pr_perror("restore pid %d: cannot enter time namespace time:[%llu]", t->pid,
			  (unsigned long long)ids->time);
		return -errno;
	}
	if (kids == own)
		return 0;
	if (unshare(CLONE_NEWTIME)) {
		pr_perror("restore pid %d: cannot make time namespace time:[%llu]", t->pid,
			  (unsigned long long)ids->time_for_children);
		return -errno;
	}
	if ((err = set_offsets(st->proc_fd, &st->ns[kids])))
		return err;
	/* (its descendants inside inherit the fd, and this copy of the table) */
	auto_close int made = openat(st->proc_fd, "self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
	if (made < 0 || (st->ns[kids].fd = fcntl(made, F_DUPFD_CLOEXEC, fd_floor)) < 0) {
		pr_perror("restore pid %d: cannot open its time namespace time:[%llu]", t->pid,
			  (unsigned long long)ids->time_for_children);
		return -errno;
	}
	return 0;
}

bool time_ns_reachable(const struct dump_task *t, uint64_t id)
{
	const struct time_ns_state *st = state_of(t->ctx);
	ssize_t k = find_ns(st, id);

	if (!st->nr || !id || (k < 0 && id != st->dumper))
		return false;
	const struct dump_task *m = k < 0 || st->ns[k].maker < 0 ? NULL : &st->tasks[st->ns[k].maker];
	return !m || m->pid == t->pid || descends_from(t, m);
}

int time_ns_fd(const struct run_ctx *ctx, pid_t pid, uint64_t id)
{
	const struct time_ns_state *st = state_of(ctx);
	ssize_t k = find_ns(st, id);
	int fd = k < 0 ? st->dumper_fd : st->ns[k].fd;

	if (fd < 0 || (fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		pr_err("restore pid %d: time namespace time:[%llu] is not made where it is forked",
		       pid, (unsigned long long)id);
		return -ENOENT;
	}
	return fd;
}

/* stasis's fds (the root holds copies; stasis never holds one a process makes). */
static void close_time_ns(struct run_ctx *ctx)
{
	struct time_ns_state *st = state_of(ctx);

	for (size_t k = 0; k < st->nr; k++)
		if (st->ns[k].fd >= 0)
			close(st->ns[k].fd), st->ns[k].fd = -1;
	if (st->dumper_fd >= 0)
		close(st->dumper_fd), st->dumper_fd = -1;
	if (st->proc_fd >= 0)
		close(st->proc_fd), st->proc_fd = -1;
}

static void undo_time_ns(struct run_ctx *ctx, bool restored)
{
	(void)restored;
	close_time_ns(ctx);
}

static void free_time_ns(void *state)
{
	struct time_ns_state *st = state;

	if (st->img)
		image_free(&st->img->base);
	free(st->ns);
}

const struct tree_object_ops tree_time_ns = {
	.name = "time namespace",
	.state_size = sizeof(struct time_ns_state),
	.free_state = free_time_ns,
	.collect = collect_time_ns,
	.validate = validate_time_ns,
	.prepare = prepare_time_ns,
	.close = close_time_ns,
	.undo = undo_time_ns,
};
