/*
 * Credentials of each thread: uids and gids (real, effective, saved, filesystem),
 * supplementary groups, and the capability sets (inheritable, permitted, effective,
 * bounding, ambient), from /proc/PID/task/TID/status, and the secure bits (asked by
 * cr/proc-attrs.c and cr/threads.c: only the thread itself can tell them). The restorer blob
 * makes every thread take on its own as its last step, once nothing more needs the engine's
 * privileges, so that
 * a daemon that dropped root comes back without it. In a user namespace of the tree's own,
 * the images hold host ids and each thread takes on their names there (cr/user-ns.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>

#include "log.h"
#include "ns-make.h"
#include "restorer/restorer.h"
#include "task.h"
#include "util.h"

/* The numbers after "key" on its line of status, up to max of them; how many there were. */
static size_t status_numbers(const char *status, const char *key, int base, uint64_t *out, size_t max)
{
	const char *p = strstr(status, key);
	size_t n = 0;

	if (!p)
		return 0;
	p += strlen(key);
	while (n < max) {
		char *end;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\n' || !*p)
			break;
		out[n] = strtoull(p, &end, base);
		if (end == p)
			break;
		n++;
		p = end;
	}
	return n;
}

static int creds_read(pid_t pid, pid_t tid, Creds **out)
{
	char path[64];
	uint64_t ids[4], caps[5];
	const char *capnames[5] = { "\nCapInh:", "\nCapPrm:", "\nCapEff:", "\nCapBnd:", "\nCapAmb:" };

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	auto_free char *status = read_proc_record(path);
	if (!status) {
		if (errno != ENOMEM)
			pr_perror("dump tid %d: cannot read %s", tid, path);
		return -errno;
	}
	auto_free uint64_t *groups = xreallocarray(NULL, RST_MAX_GROUPS + 1, sizeof(*groups));
	Creds *c = groups ? xzalloc(sizeof(*c)) : NULL;
	if (!c)
		return -ENOMEM;
	creds__init(c);
	*out = c; /* freed with the image, whole or not */
	if (!(c->uids = xzalloc(4 * sizeof(uint32_t))) || !(c->gids = xzalloc(4 * sizeof(uint32_t))))
		return -ENOMEM;
	for (int k = 0; k < 5; k++)
		if (status_numbers(status, capnames[k], 16, &caps[k], 1) != 1)
			goto bad;
	if (status_numbers(status, "\nUid:", 10, ids, 4) != 4)
		goto bad;
	for (int k = 0; k < 4; k++)
		c->uids[c->n_uids++] = ids[k];
	if (status_numbers(status, "\nGid:", 10, ids, 4) != 4)
		goto bad;
	for (int k = 0; k < 4; k++)
		c->gids[c->n_gids++] = ids[k];
	size_t ng = status_numbers(status, "\nGroups:", 10, groups, RST_MAX_GROUPS + 1);
	if (ng > RST_MAX_GROUPS) {
		pr_err("dump tid %d: in more than %d supplementary groups", tid, RST_MAX_GROUPS);
		return -ENOTSUP;
	}
	if (!(c->groups = xreallocarray(NULL, ng + 1, sizeof(uint32_t))))
		return -ENOMEM;
	for (size_t k = 0; k < ng; k++)
		c->groups[c->n_groups++] = groups[k];
	c->cap_inh = caps[0];
	c->cap_prm = caps[1];
	c->cap_eff = caps[2];
	c->cap_bnd = caps[3];
	c->cap_amb = caps[4];
	return 0;
bad:
	pr_err("dump tid %d: cannot read its credentials from %s", tid, path);
	return -EIO;
}

static int dump_creds(struct dump_task *t)
{
	TaskCore *c = t->core;
	int err;

	if ((err = creds_read(t->pid, t->pid, &c->creds)))
		return err;
	for (size_t i = 0; i < c->n_threads; i++)
		if ((err = creds_read(t->pid, t->threads[i].tid, &c->threads[i]->creds))) /* the host tid */
			return err;
	return 0;
}

static bool creds_valid(const Creds *c)
{
	return !c || (c->n_uids == 4 && c->n_gids == 4 && c->n_groups <= RST_MAX_GROUPS &&
		      !(c->cap_eff & ~c->cap_prm) && !(c->cap_amb & ~(c->cap_prm & c->cap_inh)));
}

/* A capability this kernel does not know (saved on a newer one), named; -1 if none. */
static int unknown_capability(const Creds *c)
{
	uint64_t all = c ? c->cap_inh | c->cap_prm | c->cap_eff | c->cap_bnd | c->cap_amb : 0;

	for (int bit = cap_max_bits(); bit < 64; bit++)
		if (all & (1ull << bit))
			return bit;
	return -1;
}

/* SECBIT_* with their locks: 0-5 (KEEP_CAPS, NOROOT, NO_SETUID_FIXUP), 6-7
 * (NO_CAP_AMBIENT_RAISE), 8-11 (EXEC_RESTRICT_FILE, EXEC_DENY_INTERACTIVE: Linux 6.14) */
#define KNOWN_SECUREBITS 0xfffu

static int validate_creds(struct restore_task *t)
{
	const TaskCore *c = t->core;
	bool ok = creds_valid(c->creds);
	int unknown = unknown_capability(c->creds);
	uint32_t bits = c->securebits;

	for (size_t i = 0; i < c->n_threads; i++) {
		ok = ok && creds_valid(c->threads[i]->creds);
		if (unknown < 0)
			unknown = unknown_capability(c->threads[i]->creds);
		bits |= c->threads[i]->securebits;
	}
	if (!ok) {
		pr_err("image core-%d.img: a thread's credentials are invalid", t->pid);
		return -EINVAL;
	}
	if (bits & ~KNOWN_SECUREBITS) {
		pr_err("image core-%d.img: a thread's secure bits (%#x) are not all SECBIT_* flags",
		       t->pid, bits);
		return -EINVAL;
	}
	if (unknown >= 0) {
		char *name = cap_to_name(unknown);
		pr_err("restore pid %d: it holds capability %s (bit %d), which this kernel does not "
		       "have (it knows %u); nothing was started", t->pid, name ? name : "?", unknown,
		       cap_max_bits());
		cap_free(name);
		return -EINVAL;
	}
	return 0;
}

static int creds_to_args(struct restore_task *t, const Creds *c, uint32_t securebits,
			 struct rst_creds *out, uint32_t cap_last)
{
	memset(out, 0, sizeof(*out));
	if (!c)
		return 0;
	out->set = 1;
	for (int k = 0; k < 4; k++) {
		out->uids[k] = c->uids[k];
		out->gids[k] = c->gids[k];
	}
	out->nr_groups = c->n_groups;
	uint32_t *groups = restorer_args_alloc(t, c->n_groups * sizeof(uint32_t), &out->groups_off);
	if (!groups)
		return -ENOMEM;
	if (c->n_groups)
		memcpy(groups, c->groups, c->n_groups * sizeof(uint32_t));
	/* in the tree's user namespace: in its view; the groups it inherited, if setgroups is denied */
	ns_make_tree_ids(t->ctx, false, out->uids, 4);
	ns_make_tree_ids(t->ctx, true, out->gids, 4);
	ns_make_tree_ids(t->ctx, true, groups, out->nr_groups);
	out->keep_groups = ns_make_groups_denied(t->ctx);
	out->cap_inh = c->cap_inh;
	out->cap_prm = c->cap_prm;
	out->cap_eff = c->cap_eff;
	out->cap_bnd = c->cap_bnd;
	out->cap_amb = c->cap_amb;
	out->cap_last = cap_last;
	out->securebits = securebits;
	return 0;
}

/* Each thread's groups (8 bytes of alignment each). */
static size_t creds_args_size(const struct restore_task *t)
{
	const TaskCore *c = t->core;
	size_t len = c->creds ? c->creds->n_groups * sizeof(uint32_t) + 8 : 0;

	for (size_t i = 0; i < c->n_threads; i++)
		if (c->threads[i]->creds)
			len += c->threads[i]->creds->n_groups * sizeof(uint32_t) + 8;
	return len;
}

/* In the new task, after the threads' table is made: each thread's credentials for the blob. */
static int restore_creds(struct restore_task *t)
{
	struct restorer_args *a = t->args;
	struct rst_thread *th = (struct rst_thread *)((char *)a + a->threads_off);
	uint32_t cap_last = cap_max_bits() - 1;

	const TaskCore *c = t->core;
	int err = creds_to_args(t, c->creds, c->securebits, &a->creds, cap_last);

	for (size_t i = 0; !err && i < c->n_threads; i++)
		err = creds_to_args(t, c->threads[i]->creds, c->threads[i]->securebits, &th[i].creds, cap_last);
	return err;
}

const struct state_ops state_creds = {
	.name = "credentials",
	.dump = dump_creds,
	.validate = validate_creds,
	.args_size = creds_args_size,
	.restore = restore_creds,
};
