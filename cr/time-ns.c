/*
 * The tree's own time namespace (time-ns.img): its CLOCK_MONOTONIC and CLOCK_BOOTTIME, which
 * run at an offset from the host's. A namespace's offsets can only be set before any process
 * is in it, so the restored root makes a new one (unshare, which only its children enter),
 * sets the offsets and, if the root itself ran in it, enters it (setns, which puts the
 * caller and its children there); every other process is cloned into it
 * (cr/namespaces.c refuses trees laid out otherwise).
 *
 * As with criu, the tree's clocks go on from where they stood when it was frozen: the
 * offsets are made against the host's clocks at restore time, so that the tree's monotonic
 * and boot-time clocks never go back, after a host reboot either, and do not jump by the
 * time the tree spent in the images.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "kernel/features.h"
#include "log.h"
#include "pstree.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

#define NSEC 1000000000LL
/* The kernel keeps a namespace's clocks below KTIME_SEC_MAX / 2 seconds. */
#define CLOCK_MAX_NS (((INT64_MAX / NSEC) / 2) * NSEC)

struct time_ns_state {
	TimeNs *ns;
	bool from_image;
};

static struct time_ns_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_time_ns);
}

/* /proc/WHO/timens_offsets: the offsets of the time namespace WHO's children go to. */
static int read_offsets(const char *who, int64_t *mono, int64_t *boot)
{
	char path[64], name[16];
	long long sec;
	long nsec;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%s/timens_offsets", who);
	auto_free char *text = read_file_at(AT_FDCWD, path, NULL);
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
		pr_err("cannot read the clock offsets of %s", path);
		return -EIO;
	}
	return 0;
}

static uint64_t ns_ino(const char *who, const char *kind)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%s/ns/%s", who, kind);
	return stat(path, &st) ? 0 : st.st_ino;
}

/* The tree frozen: its clocks now, from stasis's and both namespaces' offsets. */
static int collect_time_ns(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct time_ns_state *st = state_of(ctx);
	char root[16];
	int64_t own_mono, own_boot, mono_off, boot_off;
	int err;

	snprintf(root, sizeof(root), "%d", tr->tasks[0].pid);
	uint64_t own = ns_ino("self", "time"), tree = ns_ino(root, "time_for_children");
	if (!own || (tree == own && ns_ino(root, "time") == own))
		return 0;
	if (ns_ino("self", "time_for_children") != own) {
		pr_err("dump pid %s: the tree has a time namespace of its own, but stasis itself runs "
		       "in one its children would not: it cannot tell the tree's clocks from the host's",
		       root);
		return -ENOTSUP;
	}
	if ((err = read_offsets("self", &own_mono, &own_boot)) ||
	    (err = read_offsets(root, &mono_off, &boot_off)))
		return err;
	if (!(st->ns = xzalloc(sizeof(*st->ns))))
		return -ENOMEM;
	time_ns__init(st->ns);
	/* own offsets taken off: the host's clocks; the tree's added: the tree's */
	st->ns->monotonic_ns = (int64_t)now_ns(CLOCK_MONOTONIC) - own_mono + mono_off;
	st->ns->boottime_ns = (int64_t)now_ns(CLOCK_BOOTTIME) - own_boot + boot_off;
	st->ns->monotonic_offset_ns = mono_off;
	st->ns->boottime_offset_ns = boot_off;
	st->ns->root_inside = ns_ino(root, "time") == tree;
	pr_debug("dump pid %s: time namespace time:[%llu], monotonic %+lld ns, boottime %+lld ns from "
		 "the host's", root, (unsigned long long)tree, (long long)mono_off, (long long)boot_off);
	tr->inv.has_time_ns = tr->inv.time_ns = true;
	return image_write(ctx->images_dir_fd, IMG_TIME_NS, 0, &st->ns->base);
}

static int validate_time_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct time_ns_state *st = state_of(ctx);
	int err;

	if (!rt->inv->time_ns)
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_TIME_NS, 0, (ProtobufCMessage **)&st->ns)))
		return err;
	st->from_image = true;
	if (st->ns->monotonic_ns > CLOCK_MAX_NS || st->ns->boottime_ns > CLOCK_MAX_NS) {
		pr_err("image time-ns.img: a clock is beyond what the kernel keeps");
		return -EINVAL;
	}
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
 * In the root, right after it is created: a new time namespace for its children, whose clocks
 * read what the tree's read when it was frozen; the root enters it if it ran in it.
 */
static int enter_time_ns(struct run_ctx *ctx, struct restore_tree *rt)
{
	const TimeNs *ns = state_of(ctx)->ns;
	int64_t prev_mono, prev_boot;
	char text[128];
	int len, err;

	(void)rt;
	if (!ns)
		return 0;
	if (unshare(CLONE_NEWTIME)) {
		pr_perror("restore: cannot make the tree's time namespace");
		return -errno;
	}
	/* a new namespace starts with its parent's offsets: the host's clocks are ours less them */
	if ((err = read_offsets("self", &prev_mono, &prev_boot)))
		return err;
	int64_t mono = (int64_t)ns->monotonic_ns - ((int64_t)now_ns(CLOCK_MONOTONIC) - prev_mono);
	int64_t boot = (int64_t)ns->boottime_ns - ((int64_t)now_ns(CLOCK_BOOTTIME) - prev_boot);
	len = format_offset(text, sizeof(text), "monotonic", mono);
	len += format_offset(text + len, sizeof(text) - len, "boottime", boot);
	auto_close int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, text, len) != len) {
		pr_perror("restore: cannot set the clock offsets of the tree's time namespace");
		return -errno;
	}
	pr_debug("restore: the tree's time namespace: monotonic %+lld ns, boottime %+lld ns from the "
		 "host's clocks", (long long)mono, (long long)boot);
	if (!ns->root_inside)
		return 0;
	auto_close int nsfd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || setns(nsfd, CLONE_NEWTIME)) {
		pr_perror("restore: the root cannot enter the tree's time namespace");
		return -errno;
	}
	return 0;
}

static void free_time_ns(void *state)
{
	struct time_ns_state *st = state;

	if (!st->ns)
		return;
	if (st->from_image)
		image_free(&st->ns->base);
	else
		free(st->ns);
}

const struct tree_object_ops tree_time_ns = {
	.name = "time namespace",
	.state_size = sizeof(struct time_ns_state),
	.free_state = free_time_ns,
	.collect = collect_time_ns,
	.validate = validate_time_ns,
	.enter = enter_time_ns,
};
