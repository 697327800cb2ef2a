/*
 * Security labels of a Linux security module (AppArmor's profile, SELinux's context: what
 * /proc/PID/attr/current says). The restore does not set labels yet: a restored process has
 * the label stasis runs under. So the dump refuses a thread whose label is another than
 * stasis's own, naming the thread and both labels (before anything is written: the tree runs
 * on), and the restore refuses --lsm-profile (the RPC's lsm_profile) unless it names the
 * label stasis has, and --lsm-mount-context. On a host without such a module the label cannot
 * be read: there is nothing to keep.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "options.h"
#include "task.h"
#include "tree-objects.h"
#include "util.h"

#define LABEL_MAX 256

/*
 * The label in the attr/current file at path, without AppArmor's mode (" (enforce)"):
 * 0, or -errno (EINVAL or ENOENT: no such module on this host).
 */
static int read_label(const char *path, char label[static LABEL_MAX])
{
	auto_free char *text = read_file_at(AT_FDCWD, path, NULL);
	char *mode;

	if (!text)
		return -errno;
	snprintf(label, LABEL_MAX, "%s", text);
	label[strcspn(label, "\n")] = 0; /* (SELinux ends it with a NUL, AppArmor with a newline) */
	if ((mode = strstr(label, " (")) && mode[strlen(mode) - 1] == ')')
		*mode = 0;
	return 0;
}

static int dump_lsm(struct dump_task *t)
{
	char own[LABEL_MAX], its[LABEL_MAX], path[64];

	int own_err = read_label("/proc/thread-self/attr/current", own);
	if (own_err)
		return own_err == -ENOMEM ? -ENOMEM : 0; /* (else no module that labels processes) */
	for (size_t i = 0; i <= t->nr_threads; i++) {
		pid_t tid = i < t->nr_threads ? t->threads[i].tid : t->pid;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/attr/current", t->tgid, tid);
		int err = read_label(path, its);
		if (err) {
			pr_err("dump pid %d thread %d: cannot read its security label (%s): %s", t->pid,
			       tid, path, strerror(-err));
			return err;
		}
		if (strcmp(its, own)) {
			pr_err("dump pid %d thread %d: it runs under the security label '%s', stasis under "
			       "'%s': setting labels at restore is not supported yet (it would run under "
			       "stasis's)", t->pid, tid, its, own);
			return -ENOTSUP;
		}
	}
	return 0;
}

const struct state_ops state_lsm = {
	.name = "security label",
	.dump = dump_lsm,
};

static int validate_lsm(struct run_ctx *ctx, struct restore_tree *rt)
{
	const char *want = ctx->opts->lsm_profile, *name = want ? strchr(want, ':') : NULL;
	char own[LABEL_MAX];

	(void)rt;
	if (ctx->opts->lsm_mount_context && *ctx->opts->lsm_mount_context) {
		pr_err("restore: --lsm-mount-context %s: setting the security context of the tree's "
		       "mounts is not supported yet", ctx->opts->lsm_mount_context);
		return -ENOTSUP;
	}
	if (!want || !*want)
		return 0;
	if (read_label("/proc/thread-self/attr/current", own)) {
		pr_err("restore: --lsm-profile %s: this host has no security module that labels "
		       "processes", want);
		return -ENOTSUP;
	}
	if (!name || strcmp(name + 1, own)) {
		pr_err("restore: --lsm-profile %s: setting a security label on the restored processes "
		       "is not supported yet (they run under stasis's, '%s')", want, own);
		return -ENOTSUP;
	}
	return 0;
}

const struct tree_object_ops tree_lsm = {
	.name = "security labels",
	.validate = validate_lsm,
};
