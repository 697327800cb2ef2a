/*
 * What a process sets through its /proc/PID files: the OOM killer's adjustment
 * (oom_score_adj), the audit login uid (loginuid), which mappings a core dump holds
 * (coredump_filter), and a session leader's nice of its session's scheduling group
 * (autogroup: made by its setsid). Read from the files at dump; the new process writes its
 * own before the blob runs, while it still has every privilege (a lower oom_score_adj needs
 * CAP_SYS_RESOURCE, a loginuid once set CAP_AUDIT_CONTROL). The audit session id cannot be set:
 * the kernel gives a new one with the loginuid.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "ns-make.h"
#include "task.h"
#include "util.h"

#define LOGINUID_UNSET 4294967295u
#define COREDUMP_FILTER_BITS 0x1ffu /* the kernel's MMF_DUMP_FILTER_BITS (9) */

/* The number in /proc/PID/name (base 0); -ENOENT if this kernel has no such file. */
static int read_knob(pid_t pid, const char *name, long long *val)
{
	char path[64], *end;

	proc_path(path, sizeof(path), pid, name);
	auto_free char *text = read_file_at(AT_FDCWD, path, NULL);
	if (!text)
		return -errno;
	*val = strtoll(text, &end, !strcmp(name, "coredump_filter") ? 16 : 10);
	return end == text ? -EINVAL : 0;
}

static int dump_knobs(struct dump_task *t)
{
	TaskCore *c = t->core;
	long long v;
	int err;

	if ((err = read_knob(t->pid, "oom_score_adj", &v))) {
		pr_err("dump pid %d: cannot read its oom_score_adj: %s", t->pid, strerror(-err));
		return err;
	}
	c->has_oom_score_adj = true;
	c->oom_score_adj = v;
	if (!(err = read_knob(t->pid, "loginuid", &v))) {
		c->has_loginuid = true;
		c->loginuid = v;
	} else if (err != -ENOENT) { /* (no audit in this kernel: none to save) */
		pr_err("dump pid %d: cannot read its loginuid: %s", t->pid, strerror(-err));
		return err;
	}
	if ((err = read_knob(t->pid, "coredump_filter", &v))) {
		pr_err("dump pid %d: cannot read its coredump_filter: %s", t->pid, strerror(-err));
		return err;
	}
	c->has_coredump_filter = true;
	c->coredump_filter = v;
	char path[64];
	int nice = 0;
	proc_path(path, sizeof(path), t->pid, "autogroup");
	auto_free char *group = t->stat.sid == t->pid ? read_file_at(AT_FDCWD, path, NULL) : NULL;
	if (!group && t->stat.sid == t->pid && errno == ENOMEM)
		return -ENOMEM;
	if (group && sscanf(group, "%*s nice %d", &nice) == 1 && nice) {
		c->has_autogroup_nice = true;
		c->autogroup_nice = nice;
	}
	return 0;
}

static int validate_knobs(struct restore_task *t)
{
	const TaskCore *c = t->core;

	if (c->has_oom_score_adj && (c->oom_score_adj < -1000 || c->oom_score_adj > 1000)) {
		pr_err("image core-%d.img: oom_score_adj %d is out of range", t->pid, c->oom_score_adj);
		return -EINVAL;
	}
	if (c->has_autogroup_nice && (c->autogroup_nice < -20 || c->autogroup_nice > 19)) {
		pr_err("image core-%d.img: autogroup nice %d is out of range", t->pid, c->autogroup_nice);
		return -EINVAL;
	}
	if (c->coredump_filter & ~COREDUMP_FILTER_BITS) {
		pr_err("image core-%d.img: coredump_filter %#x has bits the kernel does not know", t->pid,
		       c->coredump_filter);
		return -EINVAL;
	}
	return 0;
}

static int write_knob(const char *name, const char *fmt, long long val)
{
	char path[64], text[32];
	int n = snprintf(text, sizeof(text), fmt, val);

	snprintf(path, sizeof(path), "/proc/self/%s", name);
	auto_close int fd = open(path, O_WRONLY | O_CLOEXEC);
	return fd < 0 ? -errno : write(fd, text, n) == n ? 0 : -errno;
}

/* In the new task: what it was (unchanged values are not written: a loginuid may be locked). */
static int restore_knobs(struct restore_task *t)
{
	const TaskCore *c = t->core;
	uint32_t loginuid = c->loginuid; /* saved as stasis sees it; in the tree's user namespace's view */
	long long now;
	int err;

	if (loginuid != LOGINUID_UNSET)
		ns_make_tree_ids(t->ctx, false, &loginuid, 1);
	if (c->has_oom_score_adj && (err = write_knob("oom_score_adj", "%lld", c->oom_score_adj))) {
		pr_err("restore pid %d: cannot set its oom_score_adj to %d: %s", t->pid, c->oom_score_adj,
		       strerror(-err));
		return err;
	}
	if (c->has_loginuid && (err = read_knob(PROC_SELF, "loginuid", &now)) == -ENOMEM)
		return err;
	if (c->has_loginuid && (err || now != loginuid) &&
	    (err = write_knob("loginuid", "%lld", loginuid == LOGINUID_UNSET ? -1 : (long long)loginuid))) {
		pr_err("restore pid %d: cannot set its loginuid to %u (stasis's is set, and the kernel's "
		       "audit rules keep it): %s", t->pid, c->loginuid, strerror(-err));
		return err;
	}
	if (c->has_coredump_filter && (err = write_knob("coredump_filter", "%#llx", c->coredump_filter))) {
		pr_err("restore pid %d: cannot set its coredump_filter to %#x: %s", t->pid, c->coredump_filter,
		       strerror(-err));
		return err;
	}
	/* (its session, made again by its setsid, has a group of its own again) */
	if (c->has_autogroup_nice && (err = write_knob("autogroup", "%lld", c->autogroup_nice)))
		pr_warn("restore pid %d: its session's scheduling group keeps nice 0, not %d: %s", t->pid,
			c->autogroup_nice, strerror(-err));
	return 0;
}

const struct state_ops state_knobs = {
	.name = "oom, audit and core dump settings",
	.dump = dump_knobs,
	.validate = validate_knobs,
	.restore = restore_knobs,
};
